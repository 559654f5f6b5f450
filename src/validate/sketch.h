#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

// Mergeable summaries of one column, the building blocks of column profiles:
// QuantileSketch (distribution), DistinctCounter (number of distinct values)
// and TopK (frequent values). Each one is incremental (Add rows, Merge the
// summaries of two partitions into the summary of their union), does not
// allocate per row once warmed up, and is deterministic: the same calls in the
// same order give byte-identical Encode() output. The randomness some of them
// need comes from a splitmix64 generator with a fixed seed held in the object
// (and encoded with it), never from the environment.
namespace keel::validate {

// The distribution of a stream of doubles, for quantiles, ranks and drift
// statistics.
//
// Exact mode: while count() <= exact_limit the sketch keeps every value, and
// Quantile/Rank/SortedItems are exact. The first value beyond the limit turns
// it into a KLL sketch (Karnin, Lang, Liberty 2016) with parameter k: a stack
// of compactors, level h holding items of weight 2^h, whose capacities shrink
// by 2/3 from the top; a full level is sorted and every other item (random
// offset) is promoted to the next level. Below the compactors a reservoir
// sampler keeps one uniformly chosen value of each block of 2^s values, as in
// the KLL paper, so Add costs O(1) amortised even though compaction sorts.
// The sketch then retains at most about 3k values (plus the exact mode's buffer
// until it converts), independently of count().
//
// Accuracy (KLL mode): RankError() = kRankErrorConstant / k = 3 / k, 1.5% at
// the default k = 200. With probability >= 99% over the sketch's coin flips,
// |Rank(x) - true rank(x)| <= RankError() for all x at once, and Quantile(q)
// returns a retained value y with true rank(< y) - RankError() <= q <=
// true rank(<= y) + RankError() for all q. The constant is empirical (the KLL
// analysis proves O(1/k) with loose constants): over about 3,100 runs with
// other seeds (k from 50 to 400, 2*10^5 to 3*10^6 values, random and sorted
// orders, single sketches and merges of 2 or 100 partitions) the largest
// error over all x had a 99th percentile of 2.4/k to 2.7/k and exceeded 3/k
// in 2 runs; the error at one fixed rank has a 99th percentile near 1.6/k.
// sketch_test.cc checks the bound on fixed inputs and seeds.
//
// Values: NaN is ignored (not counted, not stored); callers count missing
// values themselves. +-inf are ordinary values. -0.0 is stored as +0.0.
//
// Thread-safety: a value type without internal synchronisation. Const methods
// do not modify the object (no caches), so concurrent const calls are safe;
// any non-const call needs exclusive access.
class QuantileSketch {
 public:
  static constexpr uint64_t kDefaultExactLimit = uint64_t{1} << 16;
  static constexpr uint32_t kDefaultK = 200;
  static constexpr uint64_t kDefaultSeed = 0x6b65656c2d6b6c6cULL;  // "keel-kll"
  static constexpr uint32_t kMinK = 8;
  static constexpr uint32_t kMaxK = 65535;
  static constexpr uint64_t kMaxExactLimit = uint64_t{1} << 28;
  static constexpr double kRankErrorConstant = 3.0;

  // exact_limit: the largest count kept exactly (clamped to kMaxExactLimit;
  // 0 = always KLL). k: the KLL accuracy parameter (clamped to [kMinK, kMaxK]).
  // seed: the generator's seed; sketches built with different seeds are
  // equally accurate but encode differently.
  explicit QuantileSketch(uint64_t exact_limit = kDefaultExactLimit, uint32_t k = kDefaultK,
                          uint64_t seed = kDefaultSeed);

  // Adds one value; NaN is ignored. Amortised O(1); allocates only while the
  // sketch grows (exact buffer, new compactor levels), never in steady state.
  void Add(double value);
  // Same state as calling Add on each value in order (byte-identical
  // encoding), but much faster: in KLL mode it skips straight to the values
  // the sampler keeps.
  void AddMany(std::span<const double> values);
  // AddMany for a batch the caller has already scanned: `values` holds no
  // NaN, and `min` and `max` are its smallest and largest values (either sign
  // of zero). The same state as AddMany(values), without AddMany's own scan.
  // Precondition: !values.empty().
  void AddManyScanned(std::span<const double> values, double min, double max);

  // Makes *this the sketch of the union of both streams (this one's values
  // followed by other's). exact + exact stays exact while the total count is
  // <= exact_limit; any other mix yields a KLL sketch with the same error bound.
  // Errors: InvalidArgument if k or exact_limit differ (nothing is changed).
  Status Merge(const QuantileSketch& other);

  // Number of (non-NaN) values added.
  uint64_t count() const { return count_; }
  // True while every value is kept (count() <= exact_limit()).
  bool is_exact() const { return !kll_; }
  // The parameters after clamping.
  uint32_t k() const { return k_; }
  uint64_t exact_limit() const { return exact_limit_; }
  // Smallest / largest value added, exact in both modes; NaN when empty.
  double min() const;
  double max() const;

  // The q-quantile, q clamped to [0, 1]; NaN when empty or q is NaN.
  // Exact mode: numpy's default ('linear', type 7): with the values sorted
  // as x[0..n-1], h = (n-1) q, i = floor(h), g = h - i, the result is
  // x[i] + (x[i+1]-x[i]) g for g < 0.5 and x[i+1] - (x[i+1]-x[i]) (1-g)
  // otherwise (x[n-1] when h >= n-1) - bit-identical to np.quantile(x, q)
  // for finite values (with infinities numpy may return NaN where this returns
  // the infinity). KLL mode: the smallest retained value whose cumulative
  // weight reaches q * count() (see the class comment for the guarantee).
  // Quantile(0) = min() and Quantile(1) = max() in both modes.
  // Cost: O(count()) in exact mode (a selection on a copy), O(k log k) else.
  double Quantile(double q) const;

  // Fraction of the values that are <= x (exact, or within RankError());
  // 0 when empty, NaN when x is NaN.
  double Rank(double x) const;

  // 0 in exact mode, else kRankErrorConstant / k (the normalised rank error
  // bound of the class comment).
  double RankError() const;

  // The retained values sorted strictly ascending, each with its weight (the
  // number of input values it stands for); the weights sum to count(). In
  // exact mode these are the distinct values and their multiplicities.
  // Both outputs are overwritten; both pointers must be non-null.
  void SortedItems(std::vector<double>* values, std::vector<double>* weights) const;

  // Compact little-endian binary form, versioned; equal states give equal
  // bytes. Decode accepts exactly what Encode produces (the whole view) and
  // returns InvalidArgument on anything else (truncated, corrupted, or
  // inconsistent bytes, counts above 2^62); it never crashes and never
  // allocates more than the input size justifies.
  std::string Encode() const;
  static Result<QuantileSketch> Decode(std::string_view bytes);

 private:
  static constexpr size_t kMaxLevels = 64;
  static constexpr size_t kMaxDepth = 32;

  // Adds NaN-free values whose min/max the caller has already taken into
  // min_/max_ (-0.0 is canonicalised here).
  void AddClean(std::span<const double> values);
  void ConvertToKll();
  // KLL-mode insertion of values already counted in count_/min_/max_.
  void KllAdd(double value);
  void KllAddMany(std::span<const double> values);
  void MergeKll(const QuantileSketch& other);
  // Places one value of weight 2^level (in a merge).
  void PlaceWeighted(double value, size_t level);
  // Offers a value of weight w <= 2^sampler_level_ to the sampler.
  void SampleWeighted(double value, uint64_t weight);
  void Compress();
  void CompactLevel(size_t level);
  // Halves level `level` (sorting it first if it is the input level) into
  // level + 1; returns whether one item (the largest) was left behind.
  bool HalveIntoNext(size_t level);
  void RaiseSamplerIfDeep();
  void AddTopLevel();
  void UpdateCapacity();
  uint32_t LevelCapacity(size_t level) const;
  uint64_t NextRandom();
  uint64_t NextReplacement(uint64_t seen);
  // Decode's second half: reads the mode's part (all of `bytes`) into a
  // sketch built from the header (parameters, count_).
  Status DecodeExact(std::string_view bytes);
  Status DecodeKll(std::string_view bytes);
  // All retained (value, weight) pairs in KLL mode, unsorted.
  void CollectWeighted(std::vector<std::pair<double, uint64_t>>* items) const;

  uint64_t exact_limit_;
  uint32_t k_;
  uint64_t count_ = 0;
  double min_;
  double max_;
  bool kll_ = false;
  std::vector<double> exact_;  // exact mode: every value, in insertion order

  // KLL mode. levels_[h] holds items of weight 2^h; levels below
  // sampler_level_ are empty; sampler_level_ is the unsorted input level, the
  // ones above are sorted ascending.
  std::vector<std::vector<double>> levels_;
  std::vector<double> spare_level_;  // a released level buffer, reused for a new top
  // Capacity of a level by its distance from the top (depth); at most
  // depth_count_ levels are active, the deepest one at the minimum width.
  std::array<uint32_t, kMaxDepth> depth_capacity_{};
  std::array<uint64_t, kMaxDepth + 1> total_capacity_{};  // [n]: of the n top levels
  size_t depth_count_ = 0;
  size_t sampler_level_ = 0;
  size_t retained_ = 0;    // items in levels_
  uint64_t capacity_ = 0;  // total capacity of the active levels
  // Sampler: block_weight_ of the current block of 2^sampler_level_ seen so far,
  // candidate_ a uniform choice among them; the next unweighted value that
  // replaces it is number next_replace_ of the block (1-based).
  uint64_t block_weight_ = 0;
  uint64_t next_replace_ = 1;
  double candidate_ = 0.0;
  uint64_t rng_state_;
};

// Approximate number of distinct values: HyperLogLog over 64-bit hashes with
// 2^precision one-byte registers, estimated with Ertl's improved raw estimator
// (2017), which needs no empirical bias tables or linear-counting switch and
// is unbiased over the whole range (tested from 1 to 10^6). Up to exact_limit distinct hashes are
// kept in a small hash set instead, and counted exactly (up to 64-bit hash collisions).
//
// Items: AddHash takes a caller's 64-bit hash (it must be well mixed, e.g.
// keel::Hash64). The helpers hash the item's bytes with keel::Hash64: a
// string's bytes; an int64's 8 little-endian bytes; a double's 8 little-endian
// IEEE bytes after mapping -0.0 to +0.0 and every NaN to one quiet NaN. So
// 0.0 and -0.0 are one item, all NaNs are one item, and int64 3 and double 3.0
// are two different items: a column feeds one type, and normalising would
// cost a branch per row. Hashes are stable across machines and releases.
//
// Thread-safety: a value type without internal synchronisation; concurrent
// const calls are safe, non-const calls need exclusive access.
class DistinctCounter {
 public:
  static constexpr int kDefaultPrecision = 14;
  static constexpr int kMinPrecision = 4;
  static constexpr int kMaxPrecision = 18;
  static constexpr uint32_t kDefaultExactLimit = 1024;
  static constexpr uint32_t kMaxExactLimit = uint32_t{1} << 16;

  // precision: log2 of the register count, clamped to [kMinPrecision,
  // kMaxPrecision]. exact_limit: most distinct hashes kept exactly (clamped to
  // kMaxExactLimit; 0 = registers from the start).
  explicit DistinctCounter(int precision = kDefaultPrecision,
                           uint32_t exact_limit = kDefaultExactLimit);

  // Adds an item. Amortised O(1); no allocation once the registers exist (or
  // while the exact set does not grow).
  void AddHash(uint64_t hash);
  void Add(std::string_view value);
  void Add(double value);
  void Add(int64_t value);
  // Add(value) for every value, in order (the same state), hashing in batches.
  void AddMany(std::span<const double> values);

  // Makes *this the counter of the union. Registers merge by maximum, so the
  // result does not depend on the order of merges: a.Merge(b) and b.Merge(a)
  // encode identically (given equal exact limits). Errors: InvalidArgument if
  // the precisions differ (nothing is changed).
  Status Merge(const DistinctCounter& other);

  // Estimated number of distinct items; exact while is_exact(). 0 when empty.
  double Estimate() const;
  // Relative standard error of Estimate(): 1.04 / sqrt(2^precision) (0.81% at
  // precision 14), or 0 while exact.
  double RelativeError() const;
  // True while the distinct hashes are kept in the exact set.
  bool is_exact() const { return registers_.empty(); }
  // log2 of the register count, after clamping.
  int precision() const { return precision_; }

  // Versioned little-endian binary form (sorted hashes while exact, raw
  // registers after); equal states give equal bytes. Decode returns
  // InvalidArgument on any malformed or truncated input and never crashes.
  std::string Encode() const;
  static Result<DistinctCounter> Decode(std::string_view bytes);

 private:
  void InsertExact(uint64_t hash);
  void GrowExactTable();
  void ConvertToRegisters();
  void UpdateRegister(uint64_t hash);
  std::vector<uint64_t> SortedExactHashes() const;

  int precision_;
  uint32_t exact_limit_;
  // Exact mode: open-addressing set of hashes (0 marks an empty slot; the
  // hash 0 itself is tracked by has_zero_).
  std::vector<uint64_t> table_;
  size_t exact_size_ = 0;
  bool has_zero_ = false;
  std::vector<uint8_t> registers_;  // dense mode: 2^precision_ registers
};

// Frequent values of a stream of strings (numbers formatted by the caller):
// the mergeable Misra-Gries summary (Agarwal et al., "Mergeable summaries",
// 2012) with k counters.
//
// It tracks at most 2k values. When a new value arrives while 2k are tracked,
// the (k+1)-th largest count c (the new value's included) is subtracted from
// every counter and the values left with nothing are dropped, so at most k
// remain; this batches Misra-Gries decrements (amortised O(1) per Add) with
// the same guarantee. Merge adds the counters and purges the same way when
// more than 2k values result.
//
// Guarantee: with D = max_overcount() (the total subtracted so far), every
// reported count is an upper bound and true count >= count - D, and
// D <= (total() - sum of counters) / (k + 1) <= total() / (k + 1). A value
// occurring more than total() / (k + 1) times is always tracked; a value not
// tracked occurred at most D times. With the default k = 64, every value above
// 1/65 of the total is reported, with its count known to within total / 65.
//
// Thread-safety: a value type without internal synchronisation; concurrent
// const calls are safe, non-const calls need exclusive access.
class TopK {
 public:
  static constexpr uint32_t kDefaultK = 64;
  static constexpr uint32_t kMaxK = uint32_t{1} << 16;

  struct Entry {
    std::string value;
    uint64_t count = 0;          // upper bound on the true count
    uint64_t max_overcount = 0;  // true count >= count - max_overcount
    bool operator==(const Entry&) const = default;
  };

  // k: the number of counters of the guarantee, clamped to [1, kMaxK].
  explicit TopK(uint32_t k = kDefaultK);

  // Adds `count` occurrences of `value` (0 does nothing). No allocation when
  // the value is already tracked; amortised O(1) (one hash of the bytes).
  // Precondition: total() + count < 2^64.
  void Add(std::string_view value, uint64_t count = 1);
  // Adds values[ids[i]] once for each i, in order: the same state as calling
  // Add(values[ids[i]]) for each i, but each value is hashed by the caller
  // once (hashes[id] == keel::Hash64(values[id])) and a value already tracked
  // is counted without a lookup. For a batch of rows dictionary-encoded by the
  // caller. Preconditions: values.size() == hashes.size() < 2^32, every id <
  // values.size(), and the views stay valid during the call.
  void AddIds(std::span<const uint32_t> ids, std::span<const std::string_view> values,
              std::span<const uint64_t> hashes);

  // Makes *this the summary of the union, with the guarantee above relative to
  // the union's total. Commutative: a.Merge(b) and b.Merge(a) encode
  // identically. Errors: InvalidArgument if k differs (nothing is changed).
  Status Merge(const TopK& other);

  // Up to n tracked values, by count descending then value ascending (bytes).
  std::vector<Entry> Top(size_t n) const;

  // Sum of all counts added.
  uint64_t total() const { return total_; }
  // D of the class comment (0 while nothing was ever dropped: counts exact).
  uint64_t max_overcount() const { return overcount_; }
  // The parameter after clamping.
  uint32_t k() const { return k_; }
  // Number of values currently tracked (<= 2k).
  size_t size() const { return entries_.size(); }

  // Versioned little-endian binary form (entries sorted by value); equal
  // states give equal bytes. Decode returns InvalidArgument on any malformed,
  // truncated or inconsistent input (or a total above 2^62) and never crashes.
  std::string Encode() const;
  static Result<TopK> Decode(std::string_view bytes);

 private:
  struct Counter {
    uint64_t count;
    uint64_t hash;
    uint32_t offset;  // of the value's bytes in arena_
    uint32_t length;
  };

  std::string_view ValueOf(const Counter& counter) const {
    return std::string_view(arena_).substr(counter.offset, counter.length);
  }
  // Index of the table slot holding `value`, or of the empty slot where it
  // would go.
  size_t FindSlot(uint64_t hash, std::string_view value) const;
  void Insert(uint64_t hash, std::string_view value, uint64_t count);
  // Add with the value's hash known. Returns the entry index + 1 that holds
  // `value` afterwards (0 when it was not kept); sets *moved when entries
  // were rebuilt (every earlier entry index is then stale).
  uint32_t AddHashed(uint64_t hash, std::string_view value, uint64_t count, bool* moved);
  // Subtracts `amount` from every counter, drops the empty ones, and rebuilds
  // the arena and the table.
  void SubtractAndRebuild(uint64_t amount);

  uint32_t k_;
  uint64_t total_ = 0;
  uint64_t overcount_ = 0;
  std::vector<Counter> entries_;
  std::vector<uint32_t> table_;  // entry index + 1; 0 = empty
  std::string arena_;            // the tracked values' bytes
  std::string spare_arena_;      // reused when rebuilding
  std::vector<uint64_t> scratch_counts_;
  std::vector<uint32_t> id_entries_;  // AddIds: entry index + 1 per id, 0 = unknown
};

}  // namespace keel::validate
