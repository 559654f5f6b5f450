#include "validate/profile.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <thread>

#include "common/hash.h"
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

// Adds `values` to `distinct`, skipping values that a direct-mapped cache
// shows were just added. DistinctCounter::Add is idempotent, so the counter
// ends in the same state; low-cardinality columns (codes, hours, integers
// with ties) skip most of the hashing. The rest is hashed in batches. When
// the first kProbe values hit the cache less than 1 time in 8 (continuous
// measures: nearly every value is new), the remaining values skip the cache.
void AddDistinct(std::span<const double> values, DistinctCounter* distinct) {
  constexpr int kCacheBits = 12;
  constexpr size_t kBatch = 1024;
  constexpr size_t kProbe = 4096;
  std::array<uint64_t, size_t{1} << kCacheBits> seen;
  seen.fill(std::bit_cast<uint64_t>(std::numeric_limits<double>::quiet_NaN()));  // never added
  std::array<double, kBatch> fresh;
  size_t pending = 0;
  size_t hits = 0;
  size_t index = 0;
  for (; index < values.size(); ++index) {
    if (index == kProbe && hits < kProbe / 8) break;
    const double value = values[index];
    const uint64_t bits = std::bit_cast<uint64_t>(value);
    uint64_t& slot = seen[(bits * 0x9e3779b97f4a7c15ULL) >> (64 - kCacheBits)];
    if (slot == bits) {
      ++hits;
      continue;
    }
    slot = bits;
    fresh[pending++] = value;
    if (pending == kBatch) {
      distinct->AddMany(std::span<const double>(fresh.data(), pending));
      pending = 0;
    }
  }
  distinct->AddMany(std::span<const double>(fresh.data(), pending));
  distinct->AddMany(values.subspan(index));
}

// The distinct strings of one batch of rows, numbered in first-seen order,
// with their row counts: an open-addressing table over views into the
// column's characters (valid for the batch). A string of at most 8 bytes is
// hashed and compared as one 64-bit word, so the common short codes cost a
// load, a multiply and a compare per row; longer strings go through
// keel::Hash64 and a byte comparison.
class BatchDictionary {
 public:
  // `chars`: the column's whole character buffer (string_chars()).
  explicit BatchDictionary(std::string_view chars) : chars_(chars) { Grow(); }

  // The id of the string at chars[offset, offset + length), counted once more.
  uint32_t Add(size_t offset, size_t length) {
    uint64_t word = 0;
    uint64_t key = 0;
    if (length <= 8) {
      word = ShortWord(offset, length);
      key = (word ^ length) * 0x9e3779b97f4a7c15ULL;
    } else {
      key = Hash64(chars_.substr(offset, length));
    }
    for (size_t slot = key >> shift_;; slot = (slot + 1) & mask_) {
      const uint32_t index = slots_[slot];
      if (index == 0) return Insert(slot, key, word, offset, length);
      Entry& entry = entries_[index - 1];
      if (entry.key == key && entry.length == length &&
          (length <= 8 ? entry.word == word
                       : chars_.substr(entry.offset, length) == chars_.substr(offset, length))) {
        ++entry.count;
        return index - 1;
      }
    }
  }

  size_t size() const { return entries_.size(); }
  std::string_view value(uint32_t id) const {
    return chars_.substr(entries_[id].offset, entries_[id].length);
  }
  uint64_t count(uint32_t id) const { return entries_[id].count; }

 private:
  struct Entry {
    uint64_t key;
    uint64_t word;  // the bytes of a string of <= 8 bytes, zero-padded
    size_t offset;
    uint32_t length;
    uint64_t count;
  };

  // The `length` (<= 8) bytes at `offset` as a little-endian word, zero-padded.
  uint64_t ShortWord(size_t offset, size_t length) const {
    uint64_t word = 0;
    if (std::endian::native == std::endian::little && offset + 8 <= chars_.size()) {
      std::memcpy(&word, chars_.data() + offset, 8);  // one load, then keep `length` bytes
      return length == 8 ? word : word & ((uint64_t{1} << (8 * length)) - 1);
    }
    for (size_t byte = 0; byte < length; ++byte) {
      word |= uint64_t{static_cast<uint8_t>(chars_[offset + byte])} << (8 * byte);
    }
    return word;
  }

  uint32_t Insert(size_t slot, uint64_t key, uint64_t word, size_t offset, size_t length) {
    entries_.push_back({key, word, offset, static_cast<uint32_t>(length), 1});
    slots_[slot] = static_cast<uint32_t>(entries_.size());
    if (2 * entries_.size() > slots_.size()) Grow();
    return static_cast<uint32_t>(entries_.size() - 1);
  }

  // Doubles the table (64 slots at first): the load stays at most 1/2.
  void Grow() {
    const size_t size = std::max<size_t>(64, 2 * slots_.size());
    slots_.assign(size, 0);
    mask_ = size - 1;
    shift_ = 64 - std::countr_zero(size);
    for (size_t index = 0; index < entries_.size(); ++index) {
      size_t slot = entries_[index].key >> shift_;
      while (slots_[slot] != 0) slot = (slot + 1) & mask_;
      slots_[slot] = static_cast<uint32_t>(index + 1);
    }
  }

  std::string_view chars_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> slots_;  // entry index + 1; 0 = empty
  size_t mask_ = 0;
  int shift_ = 64;  // slot = key >> shift_: the key's top bits
};

// Histogram counting for a batch of NaN-free values. Three ways to the same
// counts (each value's bin is the number of edges <= it, as BinIndex):
//  - integer columns with a small range: a table from (value - low) to the bin;
//  - up to 63 edges: a branch-free binary search over the edges padded with
//    NaN (never <= a value) to 2^d - 1 entries;
//  - more edges: std::upper_bound.
// Four interleaved count arrays keep runs of one bin from waiting on the
// previous increment of the same counter.
class BinCounter {
 public:
  static constexpr size_t kMaxSearchEdges = 63;
  static constexpr double kMaxTableRange = 1 << 14;

  explicit BinCounter(const std::vector<double>& edges) : edges_(edges) {
    if (edges.size() <= kMaxSearchEdges) {
      depth_ = std::bit_width(edges.size());  // 2^depth - 1 >= edges.size()
      padded_.fill(std::numeric_limits<double>::quiet_NaN());
      std::copy(edges.begin(), edges.end(), padded_.begin());
    }
  }

  // Adds the bins of `values` to `counts` (edges.size() + 1 entries). With
  // `integers`, every value is an integer and low <= value <= high (the
  // batch's min and max), which allows the table.
  void Count(std::span<const double> values, bool integers, double low, double high,
             std::vector<uint64_t>* counts) {
    if (values.empty()) return;
    if (edges_.size() > kMaxSearchEdges) {
      for (const double value : values) ++(*counts)[BinIndex(edges_, value)];
      return;
    }
    std::array<std::array<uint64_t, kMaxSearchEdges + 1>, 4> local{};
    constexpr double kExact = 0x1p52;  // integers here are exact, and so are their differences
    const double range = high - low;
    if (integers && low >= -kExact && high <= kExact && range <= kMaxTableRange &&
        range <= 4.0 * static_cast<double>(values.size())) {
      table_.resize(static_cast<size_t>(range) + 1);
      size_t bin = BinIndex(edges_, low);
      for (size_t offset = 0; offset < table_.size(); ++offset) {
        const double value = low + static_cast<double>(offset);
        while (bin < edges_.size() && edges_[bin] <= value) ++bin;
        table_[offset] = static_cast<uint8_t>(bin);
      }
      CountLanes(values, local, [&](double value) {
        return table_[static_cast<size_t>(static_cast<int64_t>(value - low))];
      });
    } else {
      CountLanes(values, local, [&](double value) { return Search(value); });
    }
    for (size_t bin = 0; bin < counts->size(); ++bin) {
      (*counts)[bin] += (local[0][bin] + local[1][bin]) + (local[2][bin] + local[3][bin]);
    }
  }

 private:
  template <typename BinOf>
  static void CountLanes(std::span<const double> values,
                         std::array<std::array<uint64_t, kMaxSearchEdges + 1>, 4>& local,
                         BinOf bin_of) {
    const size_t whole = values.size() - values.size() % 4;
    for (size_t index = 0; index < whole; index += 4) {
      ++local[0][bin_of(values[index])];
      ++local[1][bin_of(values[index + 1])];
      ++local[2][bin_of(values[index + 2])];
      ++local[3][bin_of(values[index + 3])];
    }
    for (size_t index = whole; index < values.size(); ++index) ++local[0][bin_of(values[index])];
  }

  // The number of edges <= value: the edges are increasing and padded with
  // NaN, so "padded_[i] <= value" holds for a prefix of the 2^depth_ - 1 slots.
  size_t Search(double value) const {
    size_t position = 0;
    for (size_t step = (size_t{1} << depth_) >> 1; step > 0; step >>= 1) {
      position += padded_[position + step - 1] <= value ? step : 0;
    }
    return position;
  }

  const std::vector<double>& edges_;
  size_t depth_ = 0;
  std::array<double, kMaxSearchEdges> padded_;
  std::vector<uint8_t> table_;
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
  const RowScan scan = AddRowStatistics(column, begin, end);
  if (!numeric() || buffer_.empty()) return;
  if (scan.clean) {
    quantiles_.AddManyScanned(buffer_, scan.min, scan.max);
  } else {
    quantiles_.AddMany(buffer_);  // skips the NaNs
  }
}

void ColumnProfile::AddRowQuantiles(const table::Column& column, size_t begin, size_t end,
                                    std::vector<double>* values) {
  if (column.type() == DataType::kDouble || !column.validity().empty()) {
    GatherValid(column, begin, end, values);
    quantiles_.AddMany(*values);  // scans for NaNs, min and max
    return;
  }
  // Integers without nulls: no NaN, and min and max taken while converting.
  values->resize(end - begin);
  const int64_t* ints = column.ints().data() + begin;
  double* out = values->data();
  int64_t low = ints[0];
  int64_t high = ints[0];
  for (size_t index = 0; index < end - begin; ++index) {
    low = std::min(low, ints[index]);
    high = std::max(high, ints[index]);
    out[index] = static_cast<double>(ints[index]);
  }
  quantiles_.AddManyScanned(*values, static_cast<double>(low), static_cast<double>(high));
}

void ColumnProfile::GatherValid(const table::Column& column, size_t begin, size_t end,
                                std::vector<double>* values) {
  const bool all_valid = column.validity().empty();
  if (column.type() == DataType::kDouble) {
    if (all_valid) {
      values->assign(column.doubles().begin() + begin, column.doubles().begin() + end);
    } else {
      values->clear();
      for (size_t row = begin; row < end; ++row) {
        if (column.IsValid(row)) values->push_back(column.doubles()[row]);
      }
    }
    return;
  }
  if (all_valid) {
    // Usually no resize: the buffer keeps the previous batch's size, and
    // resize would zero what the loop overwrites anyway.
    values->resize(end - begin);
    const int64_t* ints = column.ints().data() + begin;
    double* out = values->data();
    for (size_t index = 0; index < end - begin; ++index)
      out[index] = static_cast<double>(ints[index]);
  } else {
    values->clear();
    for (size_t row = begin; row < end; ++row) {
      if (column.IsValid(row)) values->push_back(static_cast<double>(column.ints()[row]));
    }
  }
}

ColumnProfile::RowScan ColumnProfile::AddRowStatistics(const table::Column& column, size_t begin,
                                                       size_t end) {
  rows_ += end - begin;
  const bool all_valid = column.validity().empty();
  switch (type_) {
    case DataType::kString: {
      // Each row becomes the id of its string in a dictionary of the batch.
      // Top-k then sees every value in order (by id, each string hashed
      // once); the distinct counter (idempotent) and the category counts
      // (sums) take each string of the batch once, which ends in the same
      // state as AddCategory per row.
      BatchDictionary dictionary(column.string_chars());
      std::vector<uint32_t> ids;
      ids.reserve(end - begin);
      const uint64_t* offsets = column.string_offsets().data();
      for (size_t row = begin; row < end; ++row) {
        if (all_valid || column.IsValid(row)) {
          ids.push_back(dictionary.Add(offsets[row], offsets[row + 1] - offsets[row]));
        }
      }
      nulls_ += (end - begin) - ids.size();
      std::vector<std::string_view> values(dictionary.size());
      std::vector<uint64_t> hashes(dictionary.size());
      for (uint32_t id = 0; id < dictionary.size(); ++id) {
        values[id] = dictionary.value(id);
        hashes[id] = Hash64(values[id]);
      }
      top_.AddIds(ids, values, hashes);
      for (uint32_t id = 0; id < dictionary.size(); ++id) {
        distinct_.AddHash(hashes[id]);  // = Add(values[id])
        if (!categories_) continue;
        auto it = categories_->find(values[id]);
        if (it != categories_->end()) {
          it->second += dictionary.count(id);
        } else if (categories_->size() < max_categories_) {
          categories_->emplace(std::string(values[id]), dictionary.count(id));
        } else {
          categories_.reset();  // too many: top-k only from here on
        }
      }
      return {};
    }
    case DataType::kBool:
      for (size_t row = begin; row < end; ++row) {
        if (all_valid || column.IsValid(row)) {
          AddCategory(column.bools()[row] ? "true" : "false");
        } else {
          ++nulls_;
        }
      }
      return {};
    default:
      GatherValid(column, begin, end, &buffer_);
  }
  nulls_ += (end - begin) - buffer_.size();
  if (std::any_of(buffer_.begin(), buffer_.end(), [](double value) { return std::isnan(value); })) {
    for (const double value : buffer_) AddNumeric(value);  // rare: counts the NaNs
    return {.clean = false};
  }
  // The same updates as AddNumeric, one statistic at a time: tight loops
  // instead of one call per value. The batch's moments come from two passes
  // (mean, then squared deviations; no division per value, and more accurate
  // than Welford's update) and join the running ones by Chan's merge.
  if (buffer_.empty()) return {};
  if (moments_.count == 0) min_ = max_ = buffer_[0];
  const BatchSummary batch = Summarise(buffer_);
  min_ = std::min(min_, batch.min);
  max_ = std::max(max_, batch.max);
  moments_.Merge(batch.moments);
  AddDistinct(buffer_, &distinct_);
  if (fixed_bins_) {
    BinCounter(histogram_.edges)
        .Count(buffer_, type_ != DataType::kDouble, batch.min, batch.max, &histogram_.counts);
  }
  return {.clean = true, .min = batch.min, .max = batch.max};
}

void ColumnProfile::SetBinsAndCount(std::vector<double> edges, const table::Column& column) {
  SetBinsAndCount(std::move(edges), column, column.size());
}

void ColumnProfile::SetBinsAndCount(std::vector<double> edges, const table::Column& column,
                                    size_t rows) {
  histogram_.edges = std::move(edges);
  histogram_.counts.assign(histogram_.edges.size() + 1, 0);
  fixed_bins_ = true;
  BinCounter counter(histogram_.edges);
  const bool all_valid = column.validity().empty();
  const bool doubles = column.type() == DataType::kDouble;
  const bool ints = column.type() == DataType::kInt64 || column.type() == DataType::kTimestamp;
  // The counted values of each block of rows (valid, not NaN) go through a
  // small buffer to the counter, with their own min and max for its table.
  constexpr size_t kBlock = 1 << 16;
  std::vector<double> block(std::min(kBlock, rows));
  for (size_t begin = 0; begin < rows; begin += kBlock) {
    const size_t end = std::min(rows, begin + kBlock);
    size_t size = 0;
    if (ints && all_valid) {
      const int64_t* values = column.ints().data();
      for (size_t row = begin; row < end; ++row) block[size++] = static_cast<double>(values[row]);
    } else if (doubles && all_valid) {
      const double* values = column.doubles().data();
      for (size_t row = begin; row < end; ++row) {
        block[size] = values[row];
        size += std::isnan(values[row]) ? 0 : 1;
      }
    } else {
      for (size_t row = begin; row < end; ++row) {
        if (!all_valid && !column.IsValid(row)) continue;
        const double value = doubles ? column.doubles()[row]
                             : ints  ? static_cast<double>(column.ints()[row])
                                     : column.NumericAt(row);
        block[size] = value;
        size += std::isnan(value) ? 0 : 1;
      }
    }
    if (size == 0) continue;
    const std::span<const double> values(block.data(), size);
    double low = values[0];
    double high = values[0];
    if (ints) {
      for (const double value : values) {
        low = std::min(low, value);
        high = std::max(high, value);
      }
    }
    counter.Count(values, ints, low, high, &histogram_.counts);
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
  std::vector<NamedColumn> columns;
  for (size_t index = 0; index < table.num_columns(); ++index) {
    columns.push_back({table.fields()[index].name, &table.column(index)});
  }
  return OfColumns(columns, table.num_rows(), time_column, options);
}

Result<Profile> Profile::OfPrefix(const std::vector<NamedColumn>& columns, size_t rows,
                                  const ProfileOptions& options) {
  for (const NamedColumn& column : columns) {
    if (column.column->size() < rows) {
      return InvalidArgument("column '" + column.name + "' has " +
                             std::to_string(column.column->size()) + " rows, fewer than the " +
                             std::to_string(rows) + " to profile");
    }
  }
  return OfColumns(columns, rows, "", options);
}

Result<Profile> Profile::OfColumns(const std::vector<NamedColumn>& columns, size_t rows,
                                   const std::string& time_column, const ProfileOptions& options) {
  Profile profile;
  profile.rows_ = rows;
  profile.time_column_ = time_column;
  const size_t count = columns.size();
  for (size_t index = 0; index < count; ++index) {
    profile.columns_.emplace_back(columns[index].name, columns[index].column->type(), options);
  }

  // Tasks, biggest first: whole string and bool columns, then the numeric
  // columns. When there are too few columns to keep every thread busy to
  // the end, a numeric column is two tasks - its sketch, and its other
  // statistics - plus a histogram task (when it has no fixed bins), queued
  // once both parts are done, since it needs the sketch and changes whether
  // rows are binned. Splitting reads the values twice, so many columns stay
  // whole (the whole task bins its column itself).
  enum class Kind { kWhole, kQuantiles, kStatistics, kBins };
  struct Task {
    size_t column;
    Kind kind;
  };
  const size_t threads = static_cast<size_t>(std::max(options.threads, 1));
  const bool split = threads > 1 && count < 8 * threads;
  std::deque<Task> queue;
  std::vector<int> unfinished(count, 0);  // numeric parts not yet done, per column
  size_t total = 0;
  for (size_t index = 0; index < count; ++index) {
    if (!profile.columns_[index].numeric()) queue.push_back({index, Kind::kWhole});
  }
  for (const Kind kind : split ? std::vector<Kind>{Kind::kQuantiles, Kind::kStatistics}
                               : std::vector<Kind>{Kind::kWhole}) {
    for (size_t index = 0; index < count; ++index) {
      if (!profile.columns_[index].numeric()) continue;
      queue.push_back({index, kind});
      if (split) ++unfinished[index];
    }
  }
  total = queue.size();
  for (size_t index = 0; index < count; ++index) {
    const ColumnProfile& column = profile.columns_[index];
    if (split && column.numeric() && !column.fixed_bins_) ++total;  // a kBins task to come
  }

  constexpr size_t kChunk = 1 << 16;  // rows per call: bounds the value buffers
  auto run = [&](const Task& task, std::vector<double>* values) {
    ColumnProfile& column_profile = profile.columns_[task.column];
    const Column& column = *columns[task.column].column;
    for (size_t begin = 0; task.kind != Kind::kBins && begin < rows; begin += kChunk) {
      const size_t end = std::min(rows, begin + kChunk);
      switch (task.kind) {
        case Kind::kWhole:
          column_profile.AddColumn(column, begin, end);
          break;
        case Kind::kQuantiles:
          column_profile.AddRowQuantiles(column, begin, end, values);
          break;
        default:
          column_profile.AddRowStatistics(column, begin, end);
      }
    }
    const bool last =
        task.kind == Kind::kBins ||
        (task.kind == Kind::kWhole && column_profile.numeric() && !column_profile.fixed_bins_);
    if (last) column_profile.SetQuantileBins(column, rows);
    if (task.kind == Kind::kStatistics || task.kind == Kind::kWhole) column_profile.buffer_ = {};
  };

  std::mutex mutex;
  std::condition_variable changed;
  size_t done = 0;
  auto worker = [&] {
    std::vector<double> values;  // this thread's sketch buffer
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      changed.wait(lock, [&] { return !queue.empty() || done == total; });
      if (queue.empty()) return;
      const Task task = queue.front();
      queue.pop_front();
      lock.unlock();
      run(task, &values);
      lock.lock();
      ++done;
      if ((task.kind == Kind::kQuantiles || task.kind == Kind::kStatistics) &&
          --unfinished[task.column] == 0 && !profile.columns_[task.column].fixed_bins_) {
        queue.push_back({task.column, Kind::kBins});
      }
      changed.notify_all();
    }
  };
  const size_t helpers = std::min(threads, std::max<size_t>(total, 1)) - 1;
  std::vector<std::thread> pool;
  for (size_t helper = 0; helper < helpers; ++helper) pool.emplace_back(worker);
  worker();
  for (std::thread& thread : pool) thread.join();
  return profile;
}

void ColumnProfile::SetQuantileBins(const Column& column, size_t rows) {
  std::vector<double> values, weights;
  quantiles_.SortedItems(&values, &weights);
  std::vector<double> edges;
  if (!values.empty()) edges = QuantileBinEdges(WeightedSample{values, weights}, bins_);
  // JSON has no infinities; an infinite decile just merges two outer bins.
  std::erase_if(edges, [](double edge) { return !std::isfinite(edge); });
  SetBinsAndCount(std::move(edges), column, rows);
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
