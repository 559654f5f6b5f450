#include "validate/sketch.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <utility>

#include "common/hash.h"

namespace keel::validate {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Encoding: two magic bytes naming the summary, then a format version.
constexpr uint8_t kFormatVersion = 1;
constexpr char kQuantileMagic[2] = {'K', 'Q'};
constexpr char kDistinctMagic[2] = {'K', 'H'};
constexpr char kTopKMagic[2] = {'K', 'T'};

// KLL compactors never shrink below this many items (as in Apache
// DataSketches): smaller ones would compact too often for too little gain.
constexpr uint32_t kMinLevelWidth = 8;

// Decode rejects larger counts: no real stream gets there, and a corrupted
// count near 2^64 would overflow in later merges.
constexpr uint64_t kMaxDecodedCount = uint64_t{1} << 62;

// Sampler replacement positions are capped here, far beyond any block size.
constexpr uint64_t kMaxReplacePosition = uint64_t{1} << 62;

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void PutU8(std::string* out, uint8_t value) { out->push_back(static_cast<char>(value)); }

void PutU32(std::string* out, uint32_t value) {
  for (int byte = 0; byte < 4; ++byte) out->push_back(static_cast<char>(value >> (8 * byte)));
}

void PutU64(std::string* out, uint64_t value) {
  for (int byte = 0; byte < 8; ++byte) out->push_back(static_cast<char>(value >> (8 * byte)));
}

void PutF64(std::string* out, double value) { PutU64(out, std::bit_cast<uint64_t>(value)); }

void PutHeader(std::string* out, const char (&magic)[2]) {
  out->append(magic, 2);
  PutU8(out, kFormatVersion);
}

// Bounds-checked little-endian reads; every method returns false when the
// input is too short and then leaves the output unspecified.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}

  size_t remaining() const { return bytes_.size() - position_; }
  std::string_view rest() const { return bytes_.substr(position_); }
  bool done() const { return position_ == bytes_.size(); }

  bool U8(uint8_t* value) {
    uint64_t wide = 0;
    if (!Little(1, &wide)) return false;
    *value = static_cast<uint8_t>(wide);
    return true;
  }
  bool U32(uint32_t* value) {
    uint64_t wide = 0;
    if (!Little(4, &wide)) return false;
    *value = static_cast<uint32_t>(wide);
    return true;
  }
  bool U64(uint64_t* value) { return Little(8, value); }
  bool F64(double* value) {
    uint64_t bits = 0;
    if (!Little(8, &bits)) return false;
    *value = std::bit_cast<double>(bits);
    return true;
  }
  bool Bytes(size_t size, std::string_view* value) {
    if (size > remaining()) return false;
    *value = bytes_.substr(position_, size);
    position_ += size;
    return true;
  }
  bool Header(const char (&magic)[2]) {
    std::string_view found;
    uint8_t version = 0;
    return Bytes(2, &found) && found == std::string_view(magic, 2) && U8(&version) &&
           version == kFormatVersion;
  }

 private:
  bool Little(size_t size, uint64_t* value) {
    if (size > remaining()) return false;
    uint64_t result = 0;
    for (size_t byte = 0; byte < size; ++byte) {
      result |= uint64_t{static_cast<uint8_t>(bytes_[position_ + byte])} << (8 * byte);
    }
    position_ += size;
    *value = result;
    return true;
  }

  std::string_view bytes_;
  size_t position_ = 0;
};

// A stored sketch value: not NaN, and zero only as +0.0.
bool IsCanonicalValue(double value) {
  return !std::isnan(value) && std::bit_cast<uint64_t>(value) != std::bit_cast<uint64_t>(-0.0);
}

// Merges sorted src[0, count) into the sorted vector *dst, back to front, so
// no scratch buffer is needed (dst grows within its reserved capacity).
void MergeSortedInto(std::vector<double>* dst, const double* src, size_t count) {
  size_t dst_index = dst->size();
  dst->resize(dst_index + count);
  double* out = dst->data();
  size_t write = dst_index + count;
  size_t src_index = count;
  while (src_index > 0) {
    if (dst_index > 0 && out[dst_index - 1] > src[src_index - 1]) {
      out[--write] = out[--dst_index];
    } else {
      out[--write] = src[--src_index];
    }
  }
}

// Appends values with -0.0 turned into +0.0.
void AppendCanonical(std::span<const double> values, std::vector<double>* out) {
  const size_t start = out->size();
  out->resize(start + values.size());
  double* target = out->data() + start;
  for (size_t index = 0; index < values.size(); ++index) target[index] = values[index] + 0.0;
}

// Sorts (value, weight) pairs by value and merges equal values.
void SortAndCombine(std::vector<std::pair<double, uint64_t>>* items) {
  std::sort(items->begin(), items->end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t kept = 0;
  for (const auto& item : *items) {
    if (kept > 0 && (*items)[kept - 1].first == item.first) {
      (*items)[kept - 1].second += item.second;
    } else {
      (*items)[kept++] = item;
    }
  }
  items->resize(kept);
}

Status QuantileError(std::string_view what) {
  return InvalidArgument("quantile sketch: " + std::string(what));
}

}  // namespace

// ---------------------------------------------------------------------------
// QuantileSketch

QuantileSketch::QuantileSketch(uint64_t exact_limit, uint32_t k, uint64_t seed)
    : exact_limit_(std::min(exact_limit, kMaxExactLimit)),
      k_(std::clamp(k, kMinK, kMaxK)),
      min_(kInfinity),
      max_(-kInfinity),
      rng_state_(seed) {
  // Level capacities k (2/3)^depth, computed in integers so that every
  // platform agrees; the deepest active level has the minimum width.
  uint64_t numerator = k_;
  uint64_t denominator = 1;
  while (depth_count_ < kMaxDepth) {
    const uint64_t capacity = std::max<uint64_t>(numerator / denominator, kMinLevelWidth);
    depth_capacity_[depth_count_] = static_cast<uint32_t>(capacity);
    total_capacity_[depth_count_ + 1] = total_capacity_[depth_count_] + capacity;
    ++depth_count_;
    if (capacity <= kMinLevelWidth) break;
    numerator *= 2;
    denominator *= 3;
  }
}

double QuantileSketch::min() const { return count_ == 0 ? kNaN : min_; }
double QuantileSketch::max() const { return count_ == 0 ? kNaN : max_; }

void QuantileSketch::Add(double value) {
  if (std::isnan(value)) return;
  value += 0.0;  // -0.0 becomes +0.0: equal values must have equal bits
  ++count_;
  if (value < min_) min_ = value;
  if (value > max_) max_ = value;
  if (!kll_) {
    if (count_ <= exact_limit_) {
      exact_.push_back(value);
      return;
    }
    ConvertToKll();
  }
  KllAdd(value);
}

void QuantileSketch::AddMany(std::span<const double> values) {
  constexpr size_t kChunk = 4096;
  constexpr size_t kLanes = 4;
  while (!values.empty()) {
    const std::span<const double> chunk = values.first(std::min(kChunk, values.size()));
    values = values.subspan(chunk.size());
    // Independent lanes: a single running min/max would wait on the latency
    // of each comparison. NaN compares false, so it never enters a lane.
    std::array<double, kLanes> low;
    std::array<double, kLanes> high;
    low.fill(min_);
    high.fill(max_);
    bool has_nan = false;
    size_t index = 0;
    for (; index + kLanes <= chunk.size(); index += kLanes) {
      for (size_t lane = 0; lane < kLanes; ++lane) {
        const double value = chunk[index + lane] + 0.0;
        has_nan |= value != value;
        low[lane] = value < low[lane] ? value : low[lane];
        high[lane] = value > high[lane] ? value : high[lane];
      }
    }
    for (; index < chunk.size(); ++index) {
      const double value = chunk[index] + 0.0;
      has_nan |= value != value;
      low[0] = value < low[0] ? value : low[0];
      high[0] = value > high[0] ? value : high[0];
    }
    if (has_nan) {
      for (const double value : chunk) Add(value);  // rare: keep Add's exact semantics
      continue;
    }
    for (size_t lane = 0; lane < kLanes; ++lane) {
      if (low[lane] < min_) min_ = low[lane];
      if (high[lane] > max_) max_ = high[lane];
    }
    AddClean(chunk);
  }
}

void QuantileSketch::AddManyScanned(std::span<const double> values, double min, double max) {
  // As AddMany's lanes: -0.0 counts as +0.0, and the running extremes only
  // move on a strict comparison.
  min += 0.0;
  max += 0.0;
  if (min < min_) min_ = min;
  if (max > max_) max_ = max;
  AddClean(values);
}

void QuantileSketch::AddClean(std::span<const double> values) {
  if (values.empty()) return;
  count_ += values.size();
  if (!kll_) {
    const size_t room = static_cast<size_t>(exact_limit_ - exact_.size());
    const size_t take = std::min(room, values.size());
    AppendCanonical(values.first(take), &exact_);
    if (take == values.size()) return;
    values = values.subspan(take);
    ConvertToKll();
  }
  KllAddMany(values);
}

void QuantileSketch::ConvertToKll() {
  kll_ = true;
  levels_.clear();
  levels_.reserve(kMaxLevels);
  sampler_level_ = 0;
  retained_ = 0;
  block_weight_ = 0;
  next_replace_ = 1;
  AddTopLevel();
  std::vector<double> values;
  values.swap(exact_);
  KllAddMany(values);
}

void QuantileSketch::KllAdd(double value) {
  if (sampler_level_ == 0) {
    levels_[0].push_back(value);
    if (++retained_ >= capacity_) Compress();
    return;
  }
  ++block_weight_;
  if (block_weight_ == next_replace_) {
    candidate_ = value;
    next_replace_ = NextReplacement(block_weight_);
  }
  if (block_weight_ == (uint64_t{1} << sampler_level_)) {
    levels_[sampler_level_].push_back(candidate_);
    block_weight_ = 0;
    next_replace_ = 1;
    if (++retained_ >= capacity_) Compress();
  }
}

void QuantileSketch::KllAddMany(std::span<const double> values) {
  size_t position = 0;
  while (position < values.size()) {
    if (sampler_level_ == 0) {
      const size_t take = std::min<size_t>(capacity_ - retained_, values.size() - position);
      AppendCanonical(values.subspan(position, take), &levels_[0]);
      retained_ += take;
      position += take;
      if (retained_ >= capacity_) Compress();
      continue;
    }
    // The same decisions as KllAdd, made only at the positions where the
    // reservoir's candidate changes and at the end of each block; block after
    // block with the sampler's state in locals, until the values run out or
    // the sketch is full (Compress may then raise the sampler level).
    const uint64_t block = uint64_t{1} << sampler_level_;
    std::vector<double>& level = levels_[sampler_level_];
    uint64_t weight = block_weight_;
    uint64_t next = next_replace_;
    double candidate = candidate_;
    bool full = false;
    while (position < values.size() && !full) {
      const uint64_t take = std::min<uint64_t>(block - weight, values.size() - position);
      const uint64_t end = weight + take;
      while (next <= end) {
        candidate = values[position + static_cast<size_t>(next - weight - 1)] + 0.0;
        next = NextReplacement(next);
      }
      weight = end;
      position += static_cast<size_t>(take);
      if (weight == block) {
        level.push_back(candidate);
        weight = 0;
        next = 1;
        full = ++retained_ >= capacity_;
      }
    }
    block_weight_ = weight;
    next_replace_ = next;
    candidate_ = candidate;
    if (full) Compress();
  }
}

uint64_t QuantileSketch::NextRandom() { return SplitMix64(&rng_state_); }

// Reservoir sampling of one item with skips: when item `seen` of a block is
// the candidate, the next item that replaces it is number m > seen with
// P(m > j) = seen / j, i.e. m = floor(seen / U) + 1 for U uniform in (0, 1].
//
// Every integer here is below 2^63, so the conversions go through int64_t
// (one instruction each on x86-64, where unsigned ones take a branch and a
// fix-up), and floor is a truncation (the ratio is positive): the same
// doubles as std::floor(double(seen) / uniform) + 1.0. That sum reaches 2^62
// exactly when the ratio does (doubles below 2^62 are 512 apart there).
uint64_t QuantileSketch::NextReplacement(uint64_t seen) {
  const double uniform =
      static_cast<double>(static_cast<int64_t>((NextRandom() >> 11) + 1)) * 0x1.0p-53;
  const double ratio = static_cast<double>(static_cast<int64_t>(seen)) / uniform;
  if (ratio >= static_cast<double>(kMaxReplacePosition)) return kMaxReplacePosition;
  const double next = static_cast<double>(static_cast<int64_t>(ratio)) + 1.0;
  return std::max(static_cast<uint64_t>(static_cast<int64_t>(next)), seen + 1);
}

void QuantileSketch::SampleWeighted(double value, uint64_t weight) {
  // A weighted reservoir step per piece of the block: the value replaces the
  // candidate with probability (its weight) / (block weight so far). A weight
  // that overflows the block is split: copies of one value may sit in two
  // blocks, which keeps the total weight exact.
  const uint64_t block = uint64_t{1} << sampler_level_;
  while (weight > 0) {
    const uint64_t take = std::min(weight, block - block_weight_);
    block_weight_ += take;
    weight -= take;
    const double uniform = static_cast<double>(NextRandom() >> 11) * 0x1.0p-53;
    if (uniform * static_cast<double>(block_weight_) < static_cast<double>(take)) {
      candidate_ = value;
    }
    if (block_weight_ == block) {
      levels_[sampler_level_].push_back(candidate_);
      ++retained_;
      block_weight_ = 0;
    }
  }
  next_replace_ = block_weight_ == 0 ? 1 : NextReplacement(block_weight_);
}

uint32_t QuantileSketch::LevelCapacity(size_t level) const {
  const size_t depth = levels_.size() - 1 - level;
  return depth_capacity_[std::min(depth, depth_count_ - 1)];
}

void QuantileSketch::UpdateCapacity() {
  const size_t active = levels_.size() - sampler_level_;
  capacity_ = total_capacity_[std::min(active, depth_count_)];
}

void QuantileSketch::AddTopLevel() {
  // Between compressions no level holds more than the total capacity, so a
  // level reserved to that never reallocates on the Add path.
  std::vector<double> level;
  level.swap(spare_level_);
  level.clear();
  level.reserve(total_capacity_[depth_count_]);
  levels_.push_back(std::move(level));
  UpdateCapacity();
}

bool QuantileSketch::HalveIntoNext(size_t level) {
  std::vector<double>& items = levels_[level];
  if (level == sampler_level_) std::sort(items.begin(), items.end());
  const size_t pairs = items.size() / 2;
  const bool odd = items.size() % 2 != 0;
  const double leftover = odd ? items.back() : 0.0;
  // Each adjacent pair keeps one item, the same side for the whole level:
  // rank estimates stay unbiased and each pair errs by at most its weight.
  const size_t offset = NextRandom() & 1;
  for (size_t pair = 0; pair < pairs; ++pair) items[pair] = items[2 * pair + offset];
  MergeSortedInto(&levels_[level + 1], items.data(), pairs);
  items.clear();
  if (odd) items.push_back(leftover);
  retained_ -= pairs;
  return odd;
}

void QuantileSketch::CompactLevel(size_t level) {
  if (level + 1 == levels_.size()) AddTopLevel();
  HalveIntoNext(level);
}

void QuantileSketch::RaiseSamplerIfDeep() {
  // Levels deeper than depth_count_ below the top would sit at the minimum
  // width; the sampler replaces them (the KLL paper's construction), which
  // costs about as much accuracy as one more minimum-width level.
  while (levels_.size() - sampler_level_ > depth_count_) {
    const size_t level = sampler_level_;
    const bool odd = HalveIntoNext(level);
    double leftover = 0.0;
    if (odd) {
      leftover = levels_[level].back();
      levels_[level].pop_back();
      --retained_;
    }
    if (levels_[level].capacity() > spare_level_.capacity()) spare_level_.swap(levels_[level]);
    std::vector<double>().swap(levels_[level]);
    ++sampler_level_;
    UpdateCapacity();
    if (odd) SampleWeighted(leftover, uint64_t{1} << level);
  }
}

void QuantileSketch::Compress() {
  // Lazy compaction (as in DataSketches): only when the whole sketch is full,
  // compact the lowest level at or over its capacity. One always exists:
  // the sizes sum to at least the capacities.
  while (retained_ >= capacity_) {
    size_t level = sampler_level_;
    while (level + 1 < levels_.size() && levels_[level].size() < LevelCapacity(level)) ++level;
    CompactLevel(level);
    RaiseSamplerIfDeep();
  }
}

void QuantileSketch::PlaceWeighted(double value, size_t level) {
  if (level < sampler_level_) {
    SampleWeighted(value, uint64_t{1} << level);
    return;
  }
  std::vector<double>& items = levels_[level];
  if (level == sampler_level_) {
    items.push_back(value);
  } else {
    items.insert(std::upper_bound(items.begin(), items.end(), value), value);
  }
  ++retained_;
}

void QuantileSketch::MergeKll(const QuantileSketch& other) {
  while (levels_.size() < other.levels_.size()) AddTopLevel();
  std::vector<double> sorted;
  for (size_t level = other.sampler_level_; level < other.levels_.size(); ++level) {
    const std::vector<double>& items = other.levels_[level];
    if (level < sampler_level_) {
      for (const double value : items) SampleWeighted(value, uint64_t{1} << level);
      continue;
    }
    std::vector<double>& target = levels_[level];
    if (level == sampler_level_) {
      target.insert(target.end(), items.begin(), items.end());
    } else if (level == other.sampler_level_) {
      sorted.assign(items.begin(), items.end());
      std::sort(sorted.begin(), sorted.end());
      MergeSortedInto(&target, sorted.data(), sorted.size());
    } else {
      MergeSortedInto(&target, items.data(), items.size());
    }
    retained_ += items.size();
  }
  // The other sampler's partial block: its candidate stands for block_weight_
  // values; one copy per set bit puts that weight on power-of-two levels.
  for (size_t bit = 0; bit < 64; ++bit) {
    if ((other.block_weight_ >> bit) & 1) PlaceWeighted(other.candidate_, bit);
  }
  UpdateCapacity();
  RaiseSamplerIfDeep();
  Compress();
}

Status QuantileSketch::Merge(const QuantileSketch& other) {
  if (other.k_ != k_ || other.exact_limit_ != exact_limit_) {
    return InvalidArgument(
        "quantile sketch: cannot merge sketches with different k or exact limit");
  }
  if (other.count_ == 0) return Status::Ok();
  if (&other == this) {
    const QuantileSketch copy = other;
    return Merge(copy);
  }
  const double low = std::min(min_, other.min_);
  const double high = std::max(max_, other.max_);
  if (!other.kll_) {
    AddClean(other.exact_);
  } else if (!kll_) {
    QuantileSketch merged = other;
    merged.levels_.reserve(kMaxLevels);
    merged.AddClean(exact_);
    *this = std::move(merged);
  } else {
    MergeKll(other);
    count_ += other.count_;
  }
  min_ = low;
  max_ = high;
  return Status::Ok();
}

void QuantileSketch::CollectWeighted(std::vector<std::pair<double, uint64_t>>* items) const {
  items->clear();
  items->reserve(retained_ + 1);
  for (size_t level = sampler_level_; level < levels_.size(); ++level) {
    for (const double value : levels_[level]) items->emplace_back(value, uint64_t{1} << level);
  }
  if (block_weight_ > 0) items->emplace_back(candidate_, block_weight_);
}

double QuantileSketch::Quantile(double q) const {
  if (count_ == 0 || std::isnan(q)) return kNaN;
  q = std::clamp(q, 0.0, 1.0);
  if (q == 0.0) return min_;
  if (q == 1.0) return max_;
  if (!kll_) {
    // numpy's 'linear' method, step for step (see the header).
    const size_t n = exact_.size();
    const double virtual_index = static_cast<double>(n - 1) * q;
    if (virtual_index >= static_cast<double>(n - 1)) return max_;
    const double floor_index = std::floor(virtual_index);
    const size_t index = static_cast<size_t>(floor_index);
    const double gamma = virtual_index - floor_index;
    std::vector<double> copy(exact_);
    std::nth_element(copy.begin(), copy.begin() + index, copy.end());
    const double lower = copy[index];
    const double upper = *std::min_element(copy.begin() + index + 1, copy.end());
    if (lower == upper) return lower;
    const double diff = upper - lower;
    return gamma < 0.5 ? lower + diff * gamma : upper - diff * (1.0 - gamma);
  }
  std::vector<std::pair<double, uint64_t>> items;
  CollectWeighted(&items);
  SortAndCombine(&items);
  const double target = q * static_cast<double>(count_);
  uint64_t cumulative = 0;
  for (const auto& [value, weight] : items) {
    cumulative += weight;
    if (static_cast<double>(cumulative) >= target) return value;
  }
  return max_;
}

double QuantileSketch::Rank(double x) const {
  if (std::isnan(x)) return kNaN;
  if (count_ == 0) return 0.0;
  uint64_t at_most = 0;
  if (!kll_) {
    for (const double value : exact_) at_most += value <= x ? 1 : 0;
  } else {
    for (size_t level = sampler_level_; level < levels_.size(); ++level) {
      const std::vector<double>& items = levels_[level];
      const uint64_t below =
          level == sampler_level_
              ? static_cast<uint64_t>(std::count_if(items.begin(), items.end(),
                                                    [x](double value) { return value <= x; }))
              : static_cast<uint64_t>(std::upper_bound(items.begin(), items.end(), x) -
                                      items.begin());
      at_most += below << level;
    }
    if (block_weight_ > 0 && candidate_ <= x) at_most += block_weight_;
  }
  return static_cast<double>(at_most) / static_cast<double>(count_);
}

double QuantileSketch::RankError() const {
  return kll_ ? kRankErrorConstant / static_cast<double>(k_) : 0.0;
}

void QuantileSketch::SortedItems(std::vector<double>* values, std::vector<double>* weights) const {
  std::vector<std::pair<double, uint64_t>> items;
  if (!kll_) {
    items.reserve(exact_.size());
    for (const double value : exact_) items.emplace_back(value, 1);
  } else {
    CollectWeighted(&items);
  }
  SortAndCombine(&items);
  values->clear();
  weights->clear();
  values->reserve(items.size());
  weights->reserve(items.size());
  for (const auto& [value, weight] : items) {
    values->push_back(value);
    weights->push_back(static_cast<double>(weight));
  }
}

// Layout: "KQ" version k:u32 exact_limit:u64 count:u64 rng:u64 mode:u8, then
//   exact (mode 0): count values (f64, insertion order);
//   KLL (mode 1): min max:f64 levels:u8 sampler_level:u8, per level
//   from sampler_level up: size:u32 and its values; block_weight:u64 and,
//   when it is non-zero, candidate:f64 next_replace:u64.
std::string QuantileSketch::Encode() const {
  std::string out;
  PutHeader(&out, kQuantileMagic);
  PutU32(&out, k_);
  PutU64(&out, exact_limit_);
  PutU64(&out, count_);
  PutU64(&out, rng_state_);
  PutU8(&out, kll_ ? 1 : 0);
  if (!kll_) {
    out.reserve(out.size() + 8 * exact_.size());
    for (const double value : exact_) PutF64(&out, value);
    return out;
  }
  PutF64(&out, min_);
  PutF64(&out, max_);
  PutU8(&out, static_cast<uint8_t>(levels_.size()));
  PutU8(&out, static_cast<uint8_t>(sampler_level_));
  for (size_t level = sampler_level_; level < levels_.size(); ++level) {
    PutU32(&out, static_cast<uint32_t>(levels_[level].size()));
    for (const double value : levels_[level]) PutF64(&out, value);
  }
  PutU64(&out, block_weight_);
  if (block_weight_ > 0) {
    PutF64(&out, candidate_);
    PutU64(&out, next_replace_);
  }
  return out;
}

Result<QuantileSketch> QuantileSketch::Decode(std::string_view bytes) {
  ByteReader reader(bytes);
  uint32_t k = 0;
  uint64_t exact_limit = 0;
  uint64_t count = 0;
  uint64_t rng_state = 0;
  uint8_t mode = 0;
  if (!reader.Header(kQuantileMagic)) return QuantileError("bad header");
  if (!reader.U32(&k) || !reader.U64(&exact_limit) || !reader.U64(&count) ||
      !reader.U64(&rng_state) || !reader.U8(&mode)) {
    return QuantileError("truncated");
  }
  if (k < kMinK || k > kMaxK) return QuantileError("k out of range");
  if (exact_limit > kMaxExactLimit) return QuantileError("exact limit out of range");
  if (count > kMaxDecodedCount) return QuantileError("implausible count");
  QuantileSketch sketch(exact_limit, k, rng_state);
  sketch.count_ = count;
  if (mode == 0) {
    RETURN_IF_ERROR(sketch.DecodeExact(reader.rest()));
  } else if (mode == 1) {
    RETURN_IF_ERROR(sketch.DecodeKll(reader.rest()));
  } else {
    return QuantileError("unknown mode");
  }
  return sketch;
}

Status QuantileSketch::DecodeExact(std::string_view bytes) {
  ByteReader reader(bytes);
  if (count_ > exact_limit_) return QuantileError("exact sketch over its limit");
  if (count_ != reader.remaining() / 8 || reader.remaining() % 8 != 0) {
    return QuantileError("value bytes do not match the count");
  }
  exact_.resize(static_cast<size_t>(count_));
  for (double& value : exact_) {
    if (!reader.F64(&value) || !IsCanonicalValue(value)) return QuantileError("bad value");
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  return Status::Ok();
}

Status QuantileSketch::DecodeKll(std::string_view bytes) {
  ByteReader reader(bytes);
  if (count_ <= exact_limit_) return QuantileError("KLL sketch under the exact limit");
  uint8_t level_count = 0;
  uint8_t sampler_level = 0;
  if (!reader.F64(&min_) || !reader.F64(&max_) || !reader.U8(&level_count) ||
      !reader.U8(&sampler_level)) {
    return QuantileError("truncated");
  }
  if (!IsCanonicalValue(min_) || !IsCanonicalValue(max_) || min_ > max_) {
    return QuantileError("bad min/max");
  }
  if (level_count == 0 || level_count > kMaxLevels || sampler_level >= level_count ||
      level_count - sampler_level > static_cast<int>(depth_count_)) {
    return QuantileError("bad level structure");
  }
  kll_ = true;
  sampler_level_ = sampler_level;
  levels_.reserve(kMaxLevels);
  levels_.resize(level_count);
  auto in_range = [this](double value) {
    return IsCanonicalValue(value) && value >= min_ && value <= max_;
  };
  uint64_t weight_sum = 0;
  for (size_t level = sampler_level; level < level_count; ++level) {
    uint32_t size = 0;
    if (!reader.U32(&size) || size > reader.remaining() / 8) {
      return QuantileError("truncated level");
    }
    std::vector<double>& items = levels_[level];
    items.resize(size);  // not more: the input bounds what Decode allocates
    for (double& value : items) {
      if (!reader.F64(&value) || !in_range(value)) return QuantileError("bad value");
    }
    if (level > sampler_level && !std::is_sorted(items.begin(), items.end())) {
      return QuantileError("unsorted level");
    }
    uint64_t level_weight = 0;
    if (__builtin_mul_overflow(uint64_t{size}, uint64_t{1} << level, &level_weight) ||
        __builtin_add_overflow(weight_sum, level_weight, &weight_sum)) {
      return QuantileError("weights overflow");
    }
    retained_ += size;
  }
  if (!reader.U64(&block_weight_)) return QuantileError("truncated sampler");
  if (block_weight_ != 0) {
    if (block_weight_ >= (uint64_t{1} << sampler_level)) return QuantileError("bad sampler block");
    if (!reader.F64(&candidate_) || !reader.U64(&next_replace_)) {
      return QuantileError("truncated sampler");
    }
    if (!in_range(candidate_) || next_replace_ <= block_weight_ ||
        next_replace_ > kMaxReplacePosition) {
      return QuantileError("bad sampler state");
    }
  }
  if (__builtin_add_overflow(weight_sum, block_weight_, &weight_sum) || weight_sum != count_) {
    return QuantileError("weights do not add up to the count");
  }
  UpdateCapacity();
  if (retained_ >= capacity_) return QuantileError("over capacity");
  if (!reader.done()) return QuantileError("trailing bytes");
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// DistinctCounter

namespace {

// Ertl, "New cardinality estimation algorithms for HyperLogLog sketches"
// (2017), equations for the improved raw estimator; both series converge in
// a few dozen steps.
double ErtlSigma(double x) {
  if (x == 1.0) return kInfinity;
  double y = 1.0;
  double z = x;
  for (;;) {
    x *= x;
    const double previous = z;
    z += x * y;
    y += y;
    if (z == previous) return z;
  }
}

double ErtlTau(double x) {
  if (x == 0.0 || x == 1.0) return 0.0;
  double y = 1.0;
  double z = 1.0 - x;
  for (;;) {
    x = std::sqrt(x);
    const double previous = z;
    y *= 0.5;
    z -= (1.0 - x) * (1.0 - x) * y;
    if (z == previous) return z / 3.0;
  }
}

void StoreLittle64(uint64_t value, char* bytes) {
  for (int byte = 0; byte < 8; ++byte) bytes[byte] = static_cast<char>(value >> (8 * byte));
}

Status DistinctError(std::string_view what) {
  return InvalidArgument("distinct counter: " + std::string(what));
}

}  // namespace

DistinctCounter::DistinctCounter(int precision, uint32_t exact_limit)
    : precision_(std::clamp(precision, kMinPrecision, kMaxPrecision)),
      exact_limit_(std::min(exact_limit, kMaxExactLimit)) {
  if (exact_limit_ == 0) registers_.assign(size_t{1} << precision_, 0);
}

void DistinctCounter::AddHash(uint64_t hash) {
  if (!registers_.empty()) {
    UpdateRegister(hash);
  } else {
    InsertExact(hash);
  }
}

void DistinctCounter::Add(std::string_view value) { AddHash(Hash64(value)); }

void DistinctCounter::Add(double value) {
  uint64_t bits = std::bit_cast<uint64_t>(value);
  if (value == 0.0) bits = 0;                        // -0.0 and +0.0
  if (std::isnan(value)) bits = 0x7ff8000000000000;  // every NaN
  char bytes[8];
  StoreLittle64(bits, bytes);
  AddHash(Hash64(std::string_view(bytes, 8)));
}

namespace {

// The 64 bits DistinctCounter::Add(double) hashes: one zero and one NaN.
uint64_t CanonicalBits(double value) {
  if (value == 0.0) return 0;                        // -0.0 and +0.0
  if (std::isnan(value)) return 0x7ff8000000000000;  // every NaN
  return std::bit_cast<uint64_t>(value);
}

}  // namespace

void DistinctCounter::AddMany(std::span<const double> values) {
  constexpr size_t kBatch = 256;
  uint64_t words[kBatch];
  uint64_t hashes[kBatch];
  for (size_t begin = 0; begin < values.size(); begin += kBatch) {
    const size_t size = std::min(kBatch, values.size() - begin);
    for (size_t index = 0; index < size; ++index)
      words[index] = CanonicalBits(values[begin + index]);
    Hash64EachWord(std::span<const uint64_t>(words, size), hashes);
    if (!registers_.empty()) {
      for (size_t index = 0; index < size; ++index) UpdateRegister(hashes[index]);
    } else {
      for (size_t index = 0; index < size; ++index) AddHash(hashes[index]);
    }
  }
}

void DistinctCounter::Add(int64_t value) {
  char bytes[8];
  StoreLittle64(static_cast<uint64_t>(value), bytes);
  AddHash(Hash64(std::string_view(bytes, 8)));
}

void DistinctCounter::UpdateRegister(uint64_t hash) {
  // The top `precision` bits pick the register; the register keeps the
  // largest (leading zeros + 1) seen among the remaining 64 - precision bits.
  const size_t index = static_cast<size_t>(hash >> (64 - precision_));
  const uint64_t rest = hash << precision_;
  const uint8_t rank =
      static_cast<uint8_t>(rest == 0 ? 64 - precision_ + 1 : std::countl_zero(rest) + 1);
  if (rank > registers_[index]) registers_[index] = rank;
}

void DistinctCounter::InsertExact(uint64_t hash) {
  if (hash == 0) {
    if (has_zero_) return;
    if (exact_size_ == exact_limit_) {
      ConvertToRegisters();
      UpdateRegister(hash);
      return;
    }
    has_zero_ = true;
    ++exact_size_;
    return;
  }
  if (!table_.empty()) {
    const size_t mask = table_.size() - 1;
    for (size_t slot = hash & mask; table_[slot] != 0; slot = (slot + 1) & mask) {
      if (table_[slot] == hash) return;
    }
  }
  if (exact_size_ == exact_limit_) {
    ConvertToRegisters();
    UpdateRegister(hash);
    return;
  }
  // Load factor at most 1/2 keeps probe sequences short.
  if (2 * (exact_size_ + 1) > table_.size()) GrowExactTable();
  const size_t mask = table_.size() - 1;
  size_t slot = hash & mask;
  while (table_[slot] != 0) slot = (slot + 1) & mask;
  table_[slot] = hash;
  ++exact_size_;
}

void DistinctCounter::GrowExactTable() {
  std::vector<uint64_t> old;
  old.swap(table_);
  table_.assign(std::max<size_t>(16, 2 * old.size()), 0);
  const size_t mask = table_.size() - 1;
  for (const uint64_t hash : old) {
    if (hash == 0) continue;
    size_t slot = hash & mask;
    while (table_[slot] != 0) slot = (slot + 1) & mask;
    table_[slot] = hash;
  }
}

void DistinctCounter::ConvertToRegisters() {
  registers_.assign(size_t{1} << precision_, 0);
  for (const uint64_t hash : table_) {
    if (hash != 0) UpdateRegister(hash);
  }
  if (has_zero_) UpdateRegister(0);
  std::vector<uint64_t>().swap(table_);
  exact_size_ = 0;
  has_zero_ = false;
}

std::vector<uint64_t> DistinctCounter::SortedExactHashes() const {
  std::vector<uint64_t> hashes;
  hashes.reserve(exact_size_);
  if (has_zero_) hashes.push_back(0);
  for (const uint64_t hash : table_) {
    if (hash != 0) hashes.push_back(hash);
  }
  std::sort(hashes.begin(), hashes.end());
  return hashes;
}

Status DistinctCounter::Merge(const DistinctCounter& other) {
  if (other.precision_ != precision_) {
    return InvalidArgument("distinct counter: cannot merge counters of different precision");
  }
  if (&other == this) return Status::Ok();  // a union with itself changes nothing
  if (other.registers_.empty()) {
    for (const uint64_t hash : other.SortedExactHashes()) AddHash(hash);
    return Status::Ok();
  }
  if (registers_.empty()) ConvertToRegisters();
  for (size_t index = 0; index < registers_.size(); ++index) {
    registers_[index] = std::max(registers_[index], other.registers_[index]);
  }
  return Status::Ok();
}

double DistinctCounter::Estimate() const {
  if (registers_.empty()) return static_cast<double>(exact_size_);
  const int q = 64 - precision_;
  std::array<uint32_t, 66> histogram{};
  for (const uint8_t value : registers_) ++histogram[value];
  const double m = static_cast<double>(registers_.size());
  double z = m * ErtlTau((m - histogram[q + 1]) / m);
  for (int value = q; value >= 1; --value) z = 0.5 * (z + histogram[value]);
  z += m * ErtlSigma(histogram[0] / m);
  const double alpha_infinity = 0.5 / std::log(2.0);
  return alpha_infinity * m * m / z;
}

double DistinctCounter::RelativeError() const {
  if (registers_.empty()) return 0.0;
  return 1.04 / std::sqrt(static_cast<double>(registers_.size()));
}

// Layout: "KH" version precision:u8 exact_limit:u32 mode:u8, then
//   exact (mode 0): size:u32 and the hashes ascending (u64);
//   registers (mode 1): 2^precision bytes.
std::string DistinctCounter::Encode() const {
  std::string out;
  PutHeader(&out, kDistinctMagic);
  PutU8(&out, static_cast<uint8_t>(precision_));
  PutU32(&out, exact_limit_);
  PutU8(&out, registers_.empty() ? 0 : 1);
  if (registers_.empty()) {
    const std::vector<uint64_t> hashes = SortedExactHashes();
    PutU32(&out, static_cast<uint32_t>(hashes.size()));
    for (const uint64_t hash : hashes) PutU64(&out, hash);
  } else {
    out.append(reinterpret_cast<const char*>(registers_.data()), registers_.size());
  }
  return out;
}

Result<DistinctCounter> DistinctCounter::Decode(std::string_view bytes) {
  ByteReader reader(bytes);
  uint8_t precision = 0;
  uint32_t exact_limit = 0;
  uint8_t mode = 0;
  if (!reader.Header(kDistinctMagic)) return DistinctError("bad header");
  if (!reader.U8(&precision) || !reader.U32(&exact_limit) || !reader.U8(&mode)) {
    return DistinctError("truncated");
  }
  if (precision < kMinPrecision || precision > kMaxPrecision) {
    return DistinctError("precision out of range");
  }
  if (exact_limit > kMaxExactLimit) return DistinctError("exact limit out of range");
  DistinctCounter counter(precision, exact_limit);
  if (mode == 0) {
    uint32_t size = 0;
    if (exact_limit == 0) return DistinctError("exact set without an exact limit");
    if (!reader.U32(&size)) return DistinctError("truncated");
    if (size > exact_limit) return DistinctError("exact set over its limit");
    uint64_t previous = 0;
    for (uint32_t index = 0; index < size; ++index) {
      uint64_t hash = 0;
      if (!reader.U64(&hash)) return DistinctError("truncated hashes");
      if (index > 0 && hash <= previous) return DistinctError("hashes not strictly ascending");
      counter.InsertExact(hash);
      previous = hash;
    }
  } else if (mode == 1) {
    std::string_view registers;
    if (!reader.Bytes(size_t{1} << precision, &registers)) return DistinctError("truncated");
    counter.registers_.assign(registers.begin(), registers.end());
    for (const uint8_t value : counter.registers_) {
      if (value > 64 - precision + 1) return DistinctError("register out of range");
    }
  } else {
    return DistinctError("unknown mode");
  }
  if (!reader.done()) return DistinctError("trailing bytes");
  return counter;
}

// ---------------------------------------------------------------------------
// TopK

namespace {

Status TopKError(std::string_view what) { return InvalidArgument("top-k: " + std::string(what)); }

// A table with at least twice as many slots as the 2k tracked values.
size_t TableSize(uint32_t k) { return std::bit_ceil(size_t{4} * k + 2); }

}  // namespace

TopK::TopK(uint32_t k) : k_(std::clamp<uint32_t>(k, 1, kMaxK)) {
  entries_.reserve(2 * size_t{k_});
  scratch_counts_.reserve(2 * size_t{k_} + 1);
  table_.assign(TableSize(k_), 0);
}

size_t TopK::FindSlot(uint64_t hash, std::string_view value) const {
  const size_t mask = table_.size() - 1;
  size_t slot = hash & mask;
  while (table_[slot] != 0) {
    const Counter& counter = entries_[table_[slot] - 1];
    if (counter.hash == hash && ValueOf(counter) == value) return slot;
    slot = (slot + 1) & mask;
  }
  return slot;
}

void TopK::Insert(uint64_t hash, std::string_view value, uint64_t count) {
  const size_t slot = FindSlot(hash, value);
  entries_.push_back(Counter{count, hash, static_cast<uint32_t>(arena_.size()),
                             static_cast<uint32_t>(value.size())});
  arena_.append(value);
  table_[slot] = static_cast<uint32_t>(entries_.size());
}

void TopK::Add(std::string_view value, uint64_t count) {
  if (count == 0) return;
  bool moved = false;
  AddHashed(Hash64(value), value, count, &moved);
}

void TopK::AddIds(std::span<const uint32_t> ids, std::span<const std::string_view> values,
                  std::span<const uint64_t> hashes) {
  id_entries_.assign(values.size(), 0);
  for (const uint32_t id : ids) {
    const uint32_t entry = id_entries_[id];
    if (entry != 0) {  // tracked, and no rebuild since: Add's first branch
      ++entries_[entry - 1].count;
      ++total_;
      continue;
    }
    bool moved = false;
    const uint32_t added = AddHashed(hashes[id], values[id], 1, &moved);
    if (moved) std::fill(id_entries_.begin(), id_entries_.end(), 0);
    id_entries_[id] = added;
  }
}

uint32_t TopK::AddHashed(uint64_t hash, std::string_view value, uint64_t count, bool* moved) {
  total_ += count;
  const size_t slot = FindSlot(hash, value);
  if (table_[slot] != 0) {
    entries_[table_[slot] - 1].count += count;
    return table_[slot];
  }
  if (entries_.size() < 2 * size_t{k_}) {
    Insert(hash, value, count);
    return static_cast<uint32_t>(entries_.size());
  }
  // Full: the new value is counter 2k+1. Subtracting the (k+1)-th largest
  // count from all of them removes at least (k+1) times that amount, which is
  // what bounds the total subtracted by total / (k+1).
  scratch_counts_.clear();
  for (const Counter& counter : entries_) scratch_counts_.push_back(counter.count);
  scratch_counts_.push_back(count);
  std::nth_element(scratch_counts_.begin(), scratch_counts_.begin() + k_, scratch_counts_.end(),
                   std::greater<>());
  const uint64_t cut = scratch_counts_[k_];
  overcount_ += cut;
  SubtractAndRebuild(cut);
  *moved = true;
  if (count <= cut) return 0;
  Insert(hash, value, count - cut);
  return static_cast<uint32_t>(entries_.size());
}

void TopK::SubtractAndRebuild(uint64_t amount) {
  spare_arena_.clear();
  size_t kept = 0;
  for (const Counter& counter : entries_) {
    if (counter.count <= amount) continue;
    Counter moved = counter;
    moved.count -= amount;
    moved.offset = static_cast<uint32_t>(spare_arena_.size());
    spare_arena_.append(ValueOf(counter));
    entries_[kept++] = moved;
  }
  entries_.resize(kept);
  arena_.swap(spare_arena_);
  std::fill(table_.begin(), table_.end(), 0);
  const size_t mask = table_.size() - 1;
  for (size_t index = 0; index < entries_.size(); ++index) {
    size_t slot = entries_[index].hash & mask;
    while (table_[slot] != 0) slot = (slot + 1) & mask;
    table_[slot] = static_cast<uint32_t>(index + 1);
  }
}

Status TopK::Merge(const TopK& other) {
  if (other.k_ != k_) return InvalidArgument("top-k: cannot merge summaries with different k");
  if (&other == this) {
    const TopK copy = other;
    return Merge(copy);
  }
  struct Item {
    std::string_view value;
    uint64_t hash;
    uint64_t count;
  };
  std::vector<Item> items;
  items.reserve(entries_.size() + other.entries_.size());
  for (const Counter& counter : entries_) {
    items.push_back({ValueOf(counter), counter.hash, counter.count});
  }
  for (const Counter& counter : other.entries_) {
    items.push_back({other.ValueOf(counter), counter.hash, counter.count});
  }
  std::sort(items.begin(), items.end(),
            [](const Item& a, const Item& b) { return a.value < b.value; });
  size_t combined = 0;
  for (const Item& item : items) {
    if (combined > 0 && items[combined - 1].value == item.value) {
      items[combined - 1].count += item.count;
    } else {
      items[combined++] = item;
    }
  }
  items.resize(combined);
  // Agarwal et al.: subtract the (k+1)-th largest combined count; here only
  // when the union would not fit the 2k tracked values.
  uint64_t cut = 0;
  if (items.size() > 2 * size_t{k_}) {
    std::vector<uint64_t> counts;
    counts.reserve(items.size());
    for (const Item& item : items) counts.push_back(item.count);
    std::nth_element(counts.begin(), counts.begin() + k_, counts.end(), std::greater<>());
    cut = counts[k_];
  }
  std::vector<Counter> entries;
  entries.reserve(2 * size_t{k_});
  std::string arena;
  for (const Item& item : items) {
    if (item.count <= cut) continue;
    entries.push_back(Counter{item.count - cut, item.hash, static_cast<uint32_t>(arena.size()),
                              static_cast<uint32_t>(item.value.size())});
    arena.append(item.value);
  }
  // The views in `items` point into arena_: swap only after copying.
  entries_.swap(entries);
  arena_.swap(arena);
  SubtractAndRebuild(0);
  total_ += other.total_;
  overcount_ += other.overcount_ + cut;
  return Status::Ok();
}

std::vector<TopK::Entry> TopK::Top(size_t n) const {
  std::vector<Entry> top;
  top.reserve(entries_.size());
  for (const Counter& counter : entries_) {
    top.push_back(Entry{std::string(ValueOf(counter)), counter.count + overcount_, overcount_});
  }
  std::sort(top.begin(), top.end(), [](const Entry& a, const Entry& b) {
    if (a.count != b.count) return a.count > b.count;
    return a.value < b.value;
  });
  if (top.size() > n) top.resize(n);
  return top;
}

// Layout: "KT" version k:u32 total:u64 overcount:u64 size:u32, then per
// entry in ascending value order: count:u64 length:u32 bytes.
std::string TopK::Encode() const {
  std::vector<const Counter*> sorted;
  sorted.reserve(entries_.size());
  for (const Counter& counter : entries_) sorted.push_back(&counter);
  std::sort(sorted.begin(), sorted.end(),
            [this](const Counter* a, const Counter* b) { return ValueOf(*a) < ValueOf(*b); });
  std::string out;
  PutHeader(&out, kTopKMagic);
  PutU32(&out, k_);
  PutU64(&out, total_);
  PutU64(&out, overcount_);
  PutU32(&out, static_cast<uint32_t>(sorted.size()));
  for (const Counter* counter : sorted) {
    PutU64(&out, counter->count);
    PutU32(&out, counter->length);
    out.append(ValueOf(*counter));
  }
  return out;
}

Result<TopK> TopK::Decode(std::string_view bytes) {
  ByteReader reader(bytes);
  uint32_t k = 0;
  uint64_t total = 0;
  uint64_t overcount = 0;
  uint32_t size = 0;
  if (!reader.Header(kTopKMagic)) return TopKError("bad header");
  if (!reader.U32(&k) || !reader.U64(&total) || !reader.U64(&overcount) || !reader.U32(&size)) {
    return TopKError("truncated");
  }
  if (k < 1 || k > kMaxK) return TopKError("k out of range");
  if (total > kMaxDecodedCount) return TopKError("implausible total");
  if (size > 2 * uint64_t{k}) return TopKError("too many entries");
  TopK summary(k);
  uint64_t counted = 0;
  std::string_view previous;
  for (uint32_t index = 0; index < size; ++index) {
    uint64_t count = 0;
    uint32_t length = 0;
    std::string_view value;
    if (!reader.U64(&count) || !reader.U32(&length) || !reader.Bytes(length, &value)) {
      return TopKError("truncated entry");
    }
    if (count == 0) return TopKError("zero count");
    if (index > 0 && value <= previous) return TopKError("values not strictly ascending");
    if (__builtin_add_overflow(counted, count, &counted)) return TopKError("counts overflow");
    summary.Insert(Hash64(value), value, count);
    previous = value;
  }
  if (counted > total) return TopKError("counts exceed the total");
  if (overcount > (total - counted) / (uint64_t{k} + 1)) return TopKError("overcount too large");
  if (!reader.done()) return TopKError("trailing bytes");
  summary.total_ = total;
  summary.overcount_ = overcount;
  return summary;
}

}  // namespace keel::validate
