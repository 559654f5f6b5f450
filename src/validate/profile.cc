#include "validate/profile.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <thread>

#include "validate/drift.h"

namespace keel::validate {

namespace {

using table::Column;
using table::DataType;

// Histogram::BinOf, inlined into the counting loops. Profiles have about ten
// edges: counting the edges <= value, without branches, beats a binary search
// whose comparisons cannot be predicted; both give the upper bound's index in
// increasing edges.
inline size_t BinIndex(const std::vector<double>& edges, double value) {
  if (edges.size() <= 16) {
    size_t bin = 0;
    for (const double edge : edges) bin += edge <= value ? 1 : 0;
    return bin;
  }
  return static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), value) - edges.begin());
}

// Min, max and moments of a NaN-free, non-empty batch. Four independent
// accumulators per pass, so the loops run at the adders' throughput rather
// than their latency.
struct BatchSummary {
  double min;
  double max;
  Moments moments;
};

BatchSummary Summarise(std::span<const double> values) {
  double low[4] = {values[0], values[0], values[0], values[0]};
  double high[4] = {values[0], values[0], values[0], values[0]};
  double sums[4] = {0.0, 0.0, 0.0, 0.0};
  const size_t size = values.size();
  const size_t whole = size - size % 4;
  for (size_t index = 0; index < whole; index += 4) {
    for (size_t lane = 0; lane < 4; ++lane) {
      const double value = values[index + lane];
      low[lane] = std::min(low[lane], value);
      high[lane] = std::max(high[lane], value);
      sums[lane] += value;
    }
  }
  for (size_t index = whole; index < size; ++index) {
    low[0] = std::min(low[0], values[index]);
    high[0] = std::max(high[0], values[index]);
    sums[0] += values[index];
  }
  const double mean = ((sums[0] + sums[1]) + (sums[2] + sums[3])) / static_cast<double>(size);
  double squares[4] = {0.0, 0.0, 0.0, 0.0};
  double deviations[4] = {0.0, 0.0, 0.0, 0.0};
  for (size_t index = 0; index < whole; index += 4) {
    for (size_t lane = 0; lane < 4; ++lane) {
      const double deviation = values[index + lane] - mean;
      deviations[lane] += deviation;
      squares[lane] += deviation * deviation;
    }
  }
  for (size_t index = whole; index < size; ++index) {
    const double deviation = values[index] - mean;
    deviations[0] += deviation;
    squares[0] += deviation * deviation;
  }
  // The deviations' sum corrects the mean's rounding (the "corrected
  // two-pass" algorithm of Chan, Golub & LeVeque).
  const double deviation_sum = (deviations[0] + deviations[1]) + (deviations[2] + deviations[3]);
  const double square_sum = (squares[0] + squares[1]) + (squares[2] + squares[3]);
  BatchSummary summary;
  summary.min = std::min(std::min(low[0], low[1]), std::min(low[2], low[3]));
  summary.max = std::max(std::max(high[0], high[1]), std::max(high[2], high[3]));
  summary.moments.count = size;
  summary.moments.mean = mean + deviation_sum / static_cast<double>(size);
  summary.moments.m2 =
      std::max(0.0, square_sum - deviation_sum * deviation_sum / static_cast<double>(size));
  return summary;
}

// Adds `values` to `distinct`, skipping values that a small direct-mapped
// cache shows were just added. DistinctCounter::Add is idempotent, so the
// counter ends in the same state; low-cardinality columns (codes, hours,
// integers with ties) skip most of the hashing. The rest is hashed in batches.
void AddDistinct(std::span<const double> values, DistinctCounter* distinct) {
  constexpr int kCacheBits = 8;
  constexpr size_t kBatch = 1024;
  std::array<uint64_t, size_t{1} << kCacheBits> seen;
  seen.fill(std::bit_cast<uint64_t>(std::numeric_limits<double>::quiet_NaN()));  // never added
  std::array<double, kBatch> fresh;
  size_t pending = 0;
  for (double value : values) {
    const uint64_t bits = std::bit_cast<uint64_t>(value);
    uint64_t& slot = seen[(bits * 0x9e3779b97f4a7c15ULL) >> (64 - kCacheBits)];
    if (slot == bits) continue;
    slot = bits;
    fresh[pending++] = value;
    if (pending == kBatch) {
      distinct->AddMany(std::span<const double>(fresh.data(), pending));
      pending = 0;
    }
  }
  distinct->AddMany(std::span<const double>(fresh.data(), pending));
}

// Counts of distinct strings in one batch of rows, in first-seen order: an
// open-addressing table over views into the column (valid for the batch).
class BatchCounts {
 public:
  void Add(std::string_view value) {
    if (2 * (entries_.size() + 1) > slots_.size()) Grow();
    const size_t mask = slots_.size() - 1;
    const uint64_t hash = std::hash<std::string_view>()(value);
    for (size_t slot = hash & mask;; slot = (slot + 1) & mask) {
      uint32_t& index = slots_[slot];
      if (index == 0) {
        entries_.push_back({value, hash, 1});
        index = static_cast<uint32_t>(entries_.size());
        return;
      }
      Entry& entry = entries_[index - 1];
      if (entry.hash == hash && entry.value == value) {
        ++entry.count;
        return;
      }
    }
  }

  struct Entry {
    std::string_view value;
    uint64_t hash;
    uint64_t count;
  };
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  void Grow() {
    slots_.assign(std::max<size_t>(64, 2 * slots_.size()), 0);
    const size_t mask = slots_.size() - 1;
    for (size_t index = 0; index < entries_.size(); ++index) {
      size_t slot = entries_[index].hash & mask;
      while (slots_[slot] != 0) slot = (slot + 1) & mask;
      slots_[slot] = static_cast<uint32_t>(index + 1);
    }
  }

  std::vector<Entry> entries_;
  std::vector<uint32_t> slots_;  // entry index + 1; 0 = empty
};

}  // namespace

void Moments::Merge(const Moments& other) {
  if (other.count == 0) return;
  if (count == 0) {
    *this = other;
    return;
  }
  double n_a = double(count), n_b = double(other.count), n = n_a + n_b;
  double delta = other.mean - mean;
  mean += delta * (n_b / n);
  m2 += other.m2 + delta * delta * (n_a * n_b / n);
  count += other.count;
}

double Moments::Variance() const { return count == 0 ? std::nan("") : m2 / double(count); }

double Moments::SampleVariance() const { return count < 2 ? std::nan("") : m2 / double(count - 1); }

size_t Histogram::BinOf(double value) const { return BinIndex(edges, value); }

ColumnProfile::ColumnProfile(std::string name, table::DataType type, const ProfileOptions& options)
    : name_(std::move(name)),
      type_(type),
      max_categories_(options.max_categories),
      quantiles_(options.exact_quantile_limit),
      bins_(options.bins) {
  if (numeric()) {
    auto it = options.bin_edges.find(name_);
    if (it != options.bin_edges.end()) {
      histogram_.edges = it->second;
      histogram_.counts.assign(histogram_.edges.size() + 1, 0);
      fixed_bins_ = true;
    }
  } else {
    categories_.emplace();
  }
}

void ColumnProfile::AddNumeric(double value) {
  if (std::isnan(value)) {
    ++nans_;
    return;
  }
  if (moments_.count == 0) {
    min_ = max_ = value;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  moments_.Add(value);
  distinct_.Add(value);
  if (fixed_bins_) ++histogram_.counts[BinIndex(histogram_.edges, value)];
  buffer_.push_back(value);
}

void ColumnProfile::AddCategory(std::string_view value) {
  top_.Add(value);
  distinct_.Add(value);
  if (categories_) {
    auto it = categories_->find(value);
    if (it != categories_->end()) {
      ++it->second;
    } else if (categories_->size() < max_categories_) {
      categories_->emplace(std::string(value), 1);
    } else {
      categories_.reset();  // too many: top-k only from here on
    }
  }
}

void ColumnProfile::AddColumn(const table::Column& column, size_t begin, size_t end) {
  rows_ += end - begin;
  buffer_.clear();
  const bool all_valid = column.validity().empty();
  switch (type_) {
    case DataType::kString: {
      // Top-k sees every value in order; the distinct counter (idempotent)
      // and the category counts (sums) take each value of the batch once,
      // which ends in the same state as AddCategory per row.
      BatchCounts batch;
      for (size_t row = begin; row < end; ++row) {
        if (all_valid || column.IsValid(row)) {
          const std::string_view value = column.StringAt(row);
          top_.Add(value);
          batch.Add(value);
        } else {
          ++nulls_;
        }
      }
      for (const BatchCounts::Entry& entry : batch.entries()) {
        distinct_.Add(entry.value);
        if (!categories_) continue;
        auto it = categories_->find(entry.value);
        if (it != categories_->end()) {
          it->second += entry.count;
        } else if (categories_->size() < max_categories_) {
          categories_->emplace(std::string(entry.value), entry.count);
        } else {
          categories_.reset();  // too many: top-k only from here on
        }
      }
      return;
    }
    case DataType::kBool:
      for (size_t row = begin; row < end; ++row) {
        if (all_valid || column.IsValid(row)) {
          AddCategory(column.bools()[row] ? "true" : "false");
        } else {
          ++nulls_;
        }
      }
      return;
    case DataType::kDouble:
      if (all_valid) {
        buffer_.assign(column.doubles().begin() + begin, column.doubles().begin() + end);
      } else {
        for (size_t row = begin; row < end; ++row) {
          if (column.IsValid(row)) buffer_.push_back(column.doubles()[row]);
        }
      }
      break;
    default:
      for (size_t row = begin; row < end; ++row) {
        if (all_valid || column.IsValid(row)) {
          buffer_.push_back(static_cast<double>(column.ints()[row]));
        }
      }
  }
  nulls_ += (end - begin) - buffer_.size();
  if (std::any_of(buffer_.begin(), buffer_.end(), [](double value) { return std::isnan(value); })) {
    // Rare: AddNumeric per value counts the NaNs and refills buffer_.
    std::vector<double> values;
    values.swap(buffer_);
    for (const double value : values) AddNumeric(value);
    quantiles_.AddMany(buffer_);
    return;
  }
  // The same updates as AddNumeric, one statistic at a time: tight loops
  // instead of one call per value. The batch's moments come from two passes
  // (mean, then squared deviations; no division per value, and more accurate
  // than Welford's update) and join the running ones by Chan's merge.
  if (buffer_.empty()) return;
  if (moments_.count == 0) min_ = max_ = buffer_[0];
  const BatchSummary batch = Summarise(buffer_);
  min_ = std::min(min_, batch.min);
  max_ = std::max(max_, batch.max);
  moments_.Merge(batch.moments);
  AddDistinct(buffer_, &distinct_);
  if (fixed_bins_) {
    for (const double value : buffer_) ++histogram_.counts[BinIndex(histogram_.edges, value)];
  }
  quantiles_.AddMany(buffer_);
}

void ColumnProfile::SetBinsAndCount(std::vector<double> edges, const table::Column& column) {
  histogram_.edges = std::move(edges);
  histogram_.counts.assign(histogram_.edges.size() + 1, 0);
  fixed_bins_ = true;
  const bool all_valid = column.validity().empty();
  if (column.type() == DataType::kDouble) {
    for (size_t row = 0; row < column.size(); ++row) {
      const double value = column.doubles()[row];
      if ((all_valid || column.IsValid(row)) && !std::isnan(value)) {
        ++histogram_.counts[BinIndex(histogram_.edges, value)];
      }
    }
    return;
  }
  const bool ints = column.type() == DataType::kInt64 || column.type() == DataType::kTimestamp;
  for (size_t row = 0; row < column.size(); ++row) {
    if (all_valid || column.IsValid(row)) {
      const double value = ints ? static_cast<double>(column.ints()[row]) : column.NumericAt(row);
      ++histogram_.counts[BinIndex(histogram_.edges, value)];
    }
  }
}

Status ColumnProfile::Merge(const ColumnProfile& other) {
  if (other.name_ != name_ || other.type_ != type_) {
    return InvalidArgument("column '" + name_ + "' (" + std::string(table::DataTypeName(type_)) +
                           ") cannot merge with '" + other.name_ + "' (" +
                           std::string(table::DataTypeName(other.type_)) + ")");
  }
  if (histogram_.edges != other.histogram_.edges) {
    return InvalidArgument("column '" + name_ +
                           "': histograms have different bins; profile both parts against the "
                           "same reference (--reference)");
  }
  // Sketches first: they are the only parts that can refuse (different
  // parameters), and a refused merge must leave this profile unchanged.
  QuantileSketch quantiles = quantiles_;
  RETURN_IF_ERROR(quantiles.Merge(other.quantiles_).WithContext("column '" + name_ + "'"));
  TopK top = top_;
  RETURN_IF_ERROR(top.Merge(other.top_).WithContext("column '" + name_ + "'"));
  DistinctCounter distinct = distinct_;
  RETURN_IF_ERROR(distinct.Merge(other.distinct_).WithContext("column '" + name_ + "'"));
  quantiles_ = std::move(quantiles);
  top_ = std::move(top);
  distinct_ = std::move(distinct);
  if (other.moments_.count > 0) {
    if (moments_.count == 0) {
      min_ = other.min_;
      max_ = other.max_;
    } else {
      min_ = std::min(min_, other.min_);
      max_ = std::max(max_, other.max_);
    }
  }
  rows_ += other.rows_;
  nulls_ += other.nulls_;
  nans_ += other.nans_;
  moments_.Merge(other.moments_);
  for (size_t bin = 0; bin < histogram_.counts.size(); ++bin) {
    histogram_.counts[bin] += other.histogram_.counts[bin];
  }
  if (categories_ && other.categories_) {
    for (const auto& [value, count] : *other.categories_) (*categories_)[value] += count;
    if (categories_->size() > max_categories_) categories_.reset();
  } else {
    categories_.reset();
  }
  return Status::Ok();
}

std::optional<double> ColumnProfile::min() const {
  if (moments_.count == 0) return std::nullopt;
  return min_;
}

std::optional<double> ColumnProfile::max() const {
  if (moments_.count == 0) return std::nullopt;
  return max_;
}

Result<Profile> Profile::Of(const table::Table& table, const std::string& time_column,
                            const ProfileOptions& options) {
  if (!time_column.empty() && table.FindColumn(time_column) < 0) {
    return InvalidArgument("no time column '" + time_column +
                           "' (columns: " + table.SchemaToString() + ")");
  }
  Profile profile;
  profile.rows_ = table.num_rows();
  profile.time_column_ = time_column;
  std::vector<std::optional<ColumnProfile>> columns(table.num_columns());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t index = next++; index < columns.size(); index = next++) {
      columns[index] = OfColumn(table.fields()[index], table.column(index), options);
    }
  };
  const size_t helpers =
      std::min<size_t>(static_cast<size_t>(std::max(options.threads, 1)), columns.size()) - 1;
  std::vector<std::thread> pool;
  for (size_t helper = 0; helper < helpers && columns.size() > 1; ++helper) {
    pool.emplace_back(worker);
  }
  worker();
  for (std::thread& thread : pool) thread.join();
  for (std::optional<ColumnProfile>& column : columns)
    profile.columns_.push_back(std::move(*column));
  return profile;
}

ColumnProfile Profile::OfColumn(const table::Field& field, const Column& column,
                                const ProfileOptions& options) {
  constexpr size_t kChunk = 1 << 16;  // bounds the per-call value buffer
  ColumnProfile column_profile(field.name, field.type, options);
  for (size_t begin = 0; begin < column.size(); begin += kChunk) {
    column_profile.AddColumn(column, begin, std::min(column.size(), begin + kChunk));
  }
  if (column_profile.numeric() && !column_profile.fixed_bins_) {
    std::vector<double> values, weights;
    column_profile.quantiles_.SortedItems(&values, &weights);
    std::vector<double> edges;
    if (!values.empty()) {
      edges = QuantileBinEdges(WeightedSample{values, weights}, column_profile.bins_);
    }
    // JSON has no infinities; an infinite decile just merges two outer bins.
    std::erase_if(edges, [](double edge) { return !std::isfinite(edge); });
    column_profile.SetBinsAndCount(std::move(edges), column);
  }
  column_profile.buffer_ = {};
  return column_profile;
}

Status Profile::Merge(const Profile& other) {
  if (other.columns_.size() != columns_.size()) {
    return InvalidArgument("profiles have different columns (" + std::to_string(columns_.size()) +
                           " vs " + std::to_string(other.columns_.size()) + ")");
  }
  for (size_t index = 0; index < columns_.size(); ++index) {
    RETURN_IF_ERROR(columns_[index].Merge(other.columns_[index]));
  }
  rows_ += other.rows_;
  return Status::Ok();
}

const ColumnProfile* Profile::Find(std::string_view name) const {
  for (const ColumnProfile& column : columns_) {
    if (column.name() == name) return &column;
  }
  return nullptr;
}

ProfileOptions Profile::ReferenceOptions() const {
  ProfileOptions options;
  for (const ColumnProfile& column : columns_) {
    if (column.numeric()) options.bin_edges[column.name()] = column.histogram().edges;
  }
  return options;
}

}  // namespace keel::validate
