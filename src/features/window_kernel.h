#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "features/exact_sum.h"

namespace keel::features {

// The aggregations a window view offers. All ignore null values:
//   count  -> int64, number of non-null values (a row count when the feature
//             has no expression: the engine then feeds 1.0 for every row); 0 on
//             an empty window, never null;
//   sum    -> exact sum of the values, correctly rounded; null on no values
//             and when the exact sum lies beyond the double range;
//   mean   -> sum / count (the rounded sum divided, rounded again); null when
//             sum is;
//   min, max -> null on no values (-0.0 < +0.0 for ordering);
//   last   -> the value of the latest row by (timestamp, arrival) with a
//             non-null value; null on none;
//   stddev -> sample standard deviation (n - 1), null when count < 2; computed
//             as (S2 - S1 * (S1 / n)) / (n - 1) in double-double arithmetic
//             from the canonical double-doubles of the exact sum S1 and the
//             exact sum of squares S2, so it too is a function of the multiset
//             alone; 0 when rounding makes the variance negative; null when
//             S2 overflows (any |x| above about 1.3e154).
enum class Aggregation : uint8_t { kCount, kSum, kMean, kMin, kMax, kLast, kStddev };

std::string_view AggregationName(Aggregation aggregation);
// Errors: InvalidArgument listing the known names.
Result<Aggregation> ParseAggregation(std::string_view name);

// A sliding window of `length` that moves in `hop` steps (DESIGN.md): read at
// time t it covers rows with FloorToHop(t - length, hop) <= ts < t.
struct WindowSpec {
  Duration length = 0;
  Duration hop = 0;
  Timestamp Start(Timestamp t) const { return FloorToHop(t - length, hop); }
};

// Chronon's defaults: 1 day for windows of 12 days or more, 1 hour for 12
// hours or more, 5 minutes below that.
Duration DefaultHop(Duration length);

// The value of one aggregation, as the feature column stores it.
struct FeatureValue {
  double value = 0.0;  // count is exact in a double up to 2^53
  bool valid = false;  // false = null
};

// The mergeable partial aggregate of a set of rows: what an online hop bucket
// stores and what the offline sweep maintains for the current window. Merging
// is associative and commutative bit for bit (exact sums, total-order min/max,
// latest-by-(ts, arrival) last), so any grouping of the same rows gives the same
// state and the same Finalize results. Exact ties in (ts, arrival) for `last`
// are broken by the value's total order, so even duplicated arrival numbers
// keep Merge commutative. Thread-safety: a value type.
struct AggregateState {
  int64_t count = 0;  // non-null values
  ExactSum sum;
  // Of x*x, each product split exactly with fma (exact unless |x| < 2^-511,
  // where the split is still deterministic); an overflowing square adds
  // 2 * DBL_MAX, which makes this read as +inf.
  ExactSum sum_squares;
  double min = 0.0;  // meaningful when count > 0
  double max = 0.0;
  Timestamp last_ts = kMinTimestamp;  // of the latest non-null value
  uint64_t last_arrival = 0;
  double last = 0.0;

  void Add(Timestamp ts, uint64_t arrival, double value);  // a non-null, finite value
  void Merge(const AggregateState& other);
  bool operator==(const AggregateState& other) const;
};

// The final value of `aggregation` over a window whose rows are summarised by `state`.
FeatureValue Finalize(Aggregation aggregation, const AggregateState& state);

// One entity's rows for one value stream, sorted by (ts, arrival) ascending.
// `valid` may be null (all valid). Values of valid rows are finite.
struct EventSeries {
  const Timestamp* ts = nullptr;
  const double* values = nullptr;
  const uint8_t* valid = nullptr;
  size_t size = 0;
};

// Offline kernel: one window over one entity's EventSeries, read at ascending
// query times. Internally it adds rows at the head and removes them at the tail
// (exact sums, monotonic deques for min/max), so each row is touched O(1)
// amortised times per window; the state it exposes equals the AggregateState
// of exactly the rows in the window, and Read(a) is bit for bit
// Finalize(a, that state). Reset and AdvanceTo allocate nothing once the
// internal buffers have grown to the largest window seen.
// Thread-safety: none; one instance per thread (Read caches rounded sums).
class SlidingWindow {
 public:
  // What a kernel maintains besides the count; a group of features asks only
  // for what it reads (a plain count needs none of it).
  enum Needs : uint32_t {
    kNeedSum = 1,
    kNeedSquares = 2,
    kNeedMin = 4,
    kNeedMax = 8,
    kNeedLast = 16,
    kNeedAll = 31,
  };
  // The Needs bits `aggregation` reads.
  static uint32_t NeedsOf(Aggregation aggregation);

  // Precondition for Read(a) later: NeedsOf(a) is a subset of `needs`.
  explicit SlidingWindow(WindowSpec window, uint32_t needs = kNeedAll);

  // Starts a new entity's series. The series must outlive the reads.
  void Reset(const EventSeries& series);

  // Moves the window to cover FloorToHop(t - length) <= ts < t.
  // Precondition: t >= the previous t since Reset.
  void AdvanceTo(Timestamp t);

  // The value of `aggregation` over the current window.
  FeatureValue Read(Aggregation aggregation) const;

  // Rows in the window right now (for tests and for the engine's progress).
  size_t WindowRows() const { return head_ - tail_; }

 private:
  bool IsValid(size_t row) const { return series_.valid == nullptr || series_.valid[row] != 0; }
  void AddRow(size_t row);     // a valid row entering at the head
  void RemoveRow(size_t row);  // a valid row leaving at the tail
  // The window's sums rounded as ExactSum::Value / ValueDoubleDouble would,
  // cached until the window's rows change.
  double SumValue() const;
  DoubleDouble SumDoubleDouble() const;
  DoubleDouble SquaresDoubleDouble() const;

  WindowSpec window_;
  uint32_t needs_;
  EventSeries series_;
  size_t head_ = 0;                // first row not yet added (ts >= t)
  size_t tail_ = 0;                // first row still in the window
  AggregateState state_;           // count/sum/sum_squares only; min/max/last via below
  std::vector<size_t> min_deque_;  // row indices, increasing values
  std::vector<size_t> max_deque_;
  size_t min_front_ = 0;
  size_t max_front_ = 0;
  size_t last_valid_row_ = SIZE_MAX;  // latest valid row in [0, head_)

  // Integer fast path, chosen at Reset when every valid value of the series is
  // an integer with |x| <= 2^48: the exact sums then live in 128-bit integers
  // (no overflow below 2^30 rows) instead of state_'s ExactSums. Converting an
  // exact integer to double rounds to nearest even just as ExactSum does, so
  // the results are bit-identical (the tests check it against both).
  bool integer_mode_ = false;
  __int128 integer_sum_ = 0;
  __int128 integer_squares_ = 0;

  // Read's cache: bit 0 = sum_rounded_.hi, bit 1 = sum_rounded_, bit 2 =
  // squares_rounded_ are current.
  mutable uint8_t rounded_ = 0;
  mutable DoubleDouble sum_rounded_;
  mutable DoubleDouble squares_rounded_;
};

// The rows several windows cover over one entity's timestamps, read at the
// same ascending query times: window k read at t covers rows [Tail(k), Head())
// = the rows with windows[k].Start(t) <= ts < t, exactly the rows a
// SlidingWindow of windows[k] holds after AdvanceTo(t). The head (the first row
// with ts >= t) is shared by every window and found once; each window keeps
// its own tail. Each row is passed once by the head and once per tail, with
// one comparison, so the cost does not depend on the values or aggregations.
// Thread-safety: none; one instance per thread.
class WindowBounds {
 public:
  // Precondition: every window has length > 0 and hop > 0.
  explicit WindowBounds(std::vector<WindowSpec> windows);

  // Starts a new entity: `ts` (ascending, `size` rows) must outlive the reads.
  void Reset(const Timestamp* ts, size_t size);
  // Moves every window to t. Precondition: t >= the previous t since Reset.
  void AdvanceTo(Timestamp t);

  size_t Head() const { return head_; }
  size_t Tail(size_t window) const { return tails_[window]; }
  size_t num_windows() const { return windows_.size(); }

 private:
  std::vector<WindowSpec> windows_;
  std::vector<size_t> tails_;
  // Per window: its start at the last t, and the end of that start's hop
  // (t - length below it keeps the start: no division until it is reached).
  std::vector<Timestamp> starts_;
  std::vector<Timestamp> start_ends_;
  const Timestamp* ts_ = nullptr;
  size_t size_ = 0;
  size_t head_ = 0;
};

// Offline kernel for count, sum, mean and stddev over integer-valued rows: the
// prefix counts and exact integer prefix sums of one entity's EventSeries, so
// that any window's state is two subtractions, whatever its length, and
// several windows over the same stream share one pass over the values. Read
// over rows [begin, end) is bit for bit SlidingWindow::Read of a window holding
// exactly those rows (the sums are exact integers, rounded to double once, as
// SlidingWindow's integer path and ExactSum both round: to nearest even).
// Reset allocates nothing once the buffers have grown to the largest series.
// Thread-safety: none; one instance per thread.
class IntegerPrefixSums {
 public:
  // Whether the aggregations a kernel keeping `needs` reads are all covered
  // (count, sum, mean, stddev: no min, max or last).
  static bool Covers(uint32_t needs);
  // Largest |x| of a valid value: sums of up to 2^31 rows stay below 2^62.
  static constexpr double kMaxValue = 0x1p31;

  // Builds the prefix sums of `series` for `needs` (Covers(needs) must hold;
  // series.values may be null when needs asks for no sum). Returns false, and
  // Read must not be called, when a sum is asked for and a valid value is not
  // an integer with |x| <= kMaxValue, or the series has 2^31 rows or more:
  // the caller then uses a SlidingWindow.
  bool Reset(const EventSeries& series, uint32_t needs);

  // The value of `aggregation` over rows [begin, end) of the series (begin <=
  // end <= size). Precondition: NeedsOf(aggregation) is within Reset's needs.
  FeatureValue Read(Aggregation aggregation, size_t begin, size_t end) const;

 private:
  struct Entry {
    int64_t count = 0;  // valid rows before this row
    int64_t sum = 0;    // of their values
  };
  uint32_t needs_ = 0;
  bool counts_only_rows_ = false;  // no validity and no sums: count = end - begin
  std::vector<Entry> prefix_;      // size + 1 entries
  std::vector<__int128> squares_;  // size + 1 prefix sums of x * x, with kNeedSquares
};

// Online kernel: one entity's value stream kept as hop buckets (bucket start ->
// AggregateState). Events may arrive in any order: a late event lands in its own
// bucket and is counted exactly as the offline engine counts it, as long as that
// bucket has not been evicted (EvictBefore); an event older than the eviction
// horizon is rejected (Add returns false) so the caller can count it.
// Thread-safety: none; callers serialise access per entity.
class BucketedSeries {
 public:
  explicit BucketedSeries(Duration hop);

  // Applies one row. Returns false (and changes nothing) when ts is older than
  // the eviction horizon (or within one hop of kMinTimestamp). Null rows, and
  // non-finite values, which count as null, change no state and add no bucket.
  bool Add(Timestamp ts, uint64_t arrival, double value, bool valid);

  // The merged state of every bucket the window of `length` read at t covers
  // (bucket start >= FloorToHop(t - length, hop)). Precondition: every row
  // added has ts < t (the online path reads "now"); rows in buckets at or after
  // FloorToHop(t, hop) are included whole.
  AggregateState Read(Duration length, Timestamp t) const;

  // Drops buckets that end at or before `horizon`; later Adds older than it fail.
  void EvictBefore(Timestamp horizon);

  Duration hop() const { return hop_; }
  // Adds of rows older than this fail (EvictBefore moves it forward).
  Timestamp horizon() const { return horizon_; }
  size_t num_buckets() const { return buckets_.size(); }

  // Deterministic binary encoding for the online store (little-endian fixed
  // width fields and ExactSum encodings; equal series give equal bytes).
  // Decode validates every field and returns InvalidArgument on malformed or
  // non-canonical bytes; it never crashes on any input.
  void AppendEncoded(std::string* out) const;
  static Result<BucketedSeries> Decode(std::string_view bytes);

  // Decode(bytes)->Read(length, t), straight from the encoding: skips the
  // buckets before the window and merges the rest without building the
  // series (the online read path). The same state, so the same Finalize
  // results bit for bit. Errors: InvalidArgument on malformed bytes (the
  // checks of Decode that reading needs; it never crashes on any input).
  // `out` is overwritten (reusing it across calls avoids copying its sums).
  static Status ReadEncoded(std::string_view bytes, Duration length, Timestamp t,
                            AggregateState* out);
  // One row for ApplyEncoded, as Add takes it.
  struct Row {
    Timestamp ts = 0;
    uint64_t arrival = 0;
    double value = 0;
    bool valid = false;
  };
  // The eviction horizon an encoding records (Add rejects rows older than it).
  // Errors: InvalidArgument on a malformed header.
  static Result<Timestamp> EncodedHorizon(std::string_view bytes);
  // Decode(bytes), Add(row) for every row, EvictBefore(evict_before), then
  // AppendEncoded - byte for byte the same result - while decoding and
  // re-encoding only the buckets the rows touch: the online writer's path,
  // where a batch usually touches one or two of an entity's hundreds of
  // buckets. `out` is overwritten. Errors: InvalidArgument on malformed bytes.
  static Status ApplyEncoded(std::string_view bytes, std::span<const Row> rows,
                             Timestamp evict_before, std::string* out);

  // ReadEncoded for several windows of one series in one pass: `lengths`
  // strictly decreasing, out[k] the state of the window of lengths[k]. Each
  // bucket is merged once, into the segment between two window starts; the
  // segments are then folded from the shortest window outwards. Merging is
  // exact, so out[k] reads exactly as ReadEncoded(bytes, lengths[k], t).
  // Errors: InvalidArgument unless 1 <= lengths.size() <= 16 == out.size(),
  // and as ReadEncoded.
  static Status ReadEncodedWindows(std::string_view bytes, std::span<const Duration> lengths,
                                   Timestamp t, std::span<AggregateState> out);
  // The same, merging only what `needs` (SlidingWindow::Needs bits) asks for:
  // the count always; min, max and last when any of kNeedMin, kNeedMax,
  // kNeedLast is asked for; the exact sum with kNeedSum and the sum of squares
  // with kNeedSquares. A field not merged is left as in a fresh AggregateState
  // (zero); the bytes of a sum not merged are not checked.
  // Finalize(a, out[k]) is exact for every aggregation a with NeedsOf(a) a
  // subset of `needs`.
  static Status ReadEncodedWindows(std::string_view bytes, std::span<const Duration> lengths,
                                   Timestamp t, std::span<AggregateState> out, uint32_t needs);

 private:
  Duration hop_;
  Timestamp horizon_ = kMinTimestamp;
  std::map<Timestamp, AggregateState> buckets_;
};

}  // namespace keel::features
