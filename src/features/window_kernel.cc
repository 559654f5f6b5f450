#include "features/window_kernel.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cfloat>
#include <cmath>
#include <utility>

#include "common/bytes.h"

namespace keel::features {
namespace {

// A key whose signed order is the total order of doubles with -0.0 < +0.0.
int64_t OrderKey(double x) {
  const int64_t bits = std::bit_cast<int64_t>(x);
  return bits ^ ((bits >> 63) & INT64_MAX);
}

// x*x = product + error exactly (fma), unless the square leaves the double
// range. A square that overflows is recorded as 2 * DBL_MAX, which makes the
// sum of squares (all of whose terms are >= 0) read as +inf and stddev null; one
// that underflows keeps its deterministic, nearly exact rounding.
std::pair<double, double> SquareTerms(double x) {
  const double product = x * x;
  if (!std::isfinite(product)) return {DBL_MAX, DBL_MAX};
  return {product, std::fma(x, x, -product)};
}

void AddSquare(ExactSum* sum_squares, double x) {
  const auto [product, error] = SquareTerms(x);
  sum_squares->Add(product);
  sum_squares->Add(error);
}

void RemoveSquare(ExactSum* sum_squares, double x) {
  const auto [product, error] = SquareTerms(x);
  sum_squares->Remove(product);
  sum_squares->Remove(error);
}

// Double-double arithmetic (Dekker, Knuth; as in the QD library). Every step is
// a fixed sequence of IEEE operations, so results are deterministic.
DoubleDouble QuickTwoSum(double a, double b) {  // requires |a| >= |b| or a == 0
  const double sum = a + b;
  return {sum, b - (sum - a)};
}

DoubleDouble TwoSum(double a, double b) {
  const double sum = a + b;
  const double b_virtual = sum - a;
  return {sum, (a - (sum - b_virtual)) + (b - b_virtual)};
}

DoubleDouble TwoProd(double a, double b) {
  const double product = a * b;
  return {product, std::fma(a, b, -product)};
}

DoubleDouble Subtract(DoubleDouble x, DoubleDouble y) {
  const DoubleDouble high = TwoSum(x.hi, -y.hi);
  const DoubleDouble low = TwoSum(x.lo, -y.lo);
  DoubleDouble result = QuickTwoSum(high.hi, high.lo + low.hi);
  return QuickTwoSum(result.hi, result.lo + low.lo);
}

DoubleDouble Multiply(DoubleDouble x, DoubleDouble y) {
  const DoubleDouble product = TwoProd(x.hi, y.hi);
  return QuickTwoSum(product.hi, product.lo + (x.hi * y.lo + x.lo * y.hi));
}

DoubleDouble Divide(DoubleDouble x, double divisor) {
  const double quotient = x.hi / divisor;
  const DoubleDouble back = TwoProd(quotient, divisor);
  const double remainder = ((x.hi - back.hi) - back.lo) + x.lo;
  return QuickTwoSum(quotient, remainder / divisor);
}

// Sample standard deviation from n and the rounded exact sums:
// (S2 - S1 * (S1 / n)) / (n - 1). S1 * (S1 / n) <= S2 up to rounding, so
// nothing overflows when S2 is finite.
FeatureValue StandardDeviation(int64_t count, DoubleDouble sum, DoubleDouble sum_squares) {
  if (!std::isfinite(sum_squares.hi)) return {};
  const double n = static_cast<double>(count);
  const DoubleDouble deviations = Subtract(sum_squares, Multiply(sum, Divide(sum, n)));
  const double variance = Divide(deviations, n - 1.0).hi;
  if (std::isnan(variance)) return {};
  return {variance > 0.0 ? std::sqrt(variance) : 0.0, true};
}

// The one definition of every aggregation's final value. The sums come from
// callables (double(), DoubleDouble(), DoubleDouble()) so that only the
// aggregations that need them pay for rounding them; sum() must equal
// sum_dd().hi.
template <typename SumFn, typename SumDoubleDoubleFn, typename SquaresDoubleDoubleFn>
FeatureValue FinalizeWith(Aggregation aggregation, int64_t count, const SumFn& sum,
                          const SumDoubleDoubleFn& sum_dd, const SquaresDoubleDoubleFn& squares_dd,
                          double min, double max, double last) {
  if (aggregation == Aggregation::kCount) return {static_cast<double>(count), true};
  if (count == 0) return {};
  switch (aggregation) {
    case Aggregation::kSum:
    case Aggregation::kMean: {
      const double total = sum();
      if (!std::isfinite(total)) return {};  // the exact sum overflows a double
      if (aggregation == Aggregation::kSum) return {total, true};
      return {total / static_cast<double>(count), true};
    }
    case Aggregation::kMin:
      return {min, true};
    case Aggregation::kMax:
      return {max, true};
    case Aggregation::kLast:
      return {last, true};
    case Aggregation::kStddev:
      if (count < 2) return {};
      return StandardDeviation(count, sum_dd(), squares_dd());
    case Aggregation::kCount:
      break;
  }
  return {};
}

// The canonical double-double of an exact integer: the int -> double
// conversions round to nearest even (libgcc's __floattidf is correctly
// rounded), and v - hi is exact in 128 bits.
DoubleDouble RoundInteger(__int128 value) {
  const double hi = static_cast<double>(value);
  return {hi, static_cast<double>(value - static_cast<__int128>(hi))};
}

// Largest |x| for the integer fast path, and most rows: 2^30 * (2^48)^2 < 2^127.
constexpr double kMaxIntegerModeValue = 0x1p48;
constexpr size_t kMaxIntegerModeRows = size_t{1} << 30;

// Drops rows before `tail` from the front of a monotonic deque kept as a vector
// and a front index. Once the dead prefix is at least as long as the live part
// it is erased (moving at most as many entries as were popped, so amortised
// O(1)), which keeps the vector within twice the window's rows.
void PopExpired(size_t tail, std::vector<size_t>* deque, size_t* front) {
  while (*front < deque->size() && (*deque)[*front] < tail) ++*front;
  if (*front >= 64 && *front * 2 >= deque->size()) {
    deque->erase(deque->begin(), deque->begin() + static_cast<ptrdiff_t>(*front));
    *front = 0;
  }
}

// Counts above this cannot come from a real stream; bounding them keeps merged
// counts far from overflow.
constexpr int64_t kMaxEncodedCount = int64_t{1} << 53;

// Latest by (ts, arrival); the value's order key breaks exact ties so that Merge
// stays commutative even for duplicated arrival numbers.
bool IsLater(Timestamp ts, uint64_t arrival, double value, const AggregateState& state) {
  if (ts != state.last_ts) return ts > state.last_ts;
  if (arrival != state.last_arrival) return arrival > state.last_arrival;
  return OrderKey(value) > OrderKey(state.last);
}

}  // namespace

std::string_view AggregationName(Aggregation aggregation) {
  switch (aggregation) {
    case Aggregation::kCount:
      return "count";
    case Aggregation::kSum:
      return "sum";
    case Aggregation::kMean:
      return "mean";
    case Aggregation::kMin:
      return "min";
    case Aggregation::kMax:
      return "max";
    case Aggregation::kLast:
      return "last";
    case Aggregation::kStddev:
      return "stddev";
  }
  return "unknown";
}

Result<Aggregation> ParseAggregation(std::string_view name) {
  static constexpr std::pair<std::string_view, Aggregation> kNames[] = {
      {"count", Aggregation::kCount}, {"sum", Aggregation::kSum},
      {"mean", Aggregation::kMean},   {"avg", Aggregation::kMean},
      {"min", Aggregation::kMin},     {"max", Aggregation::kMax},
      {"last", Aggregation::kLast},   {"stddev", Aggregation::kStddev},
      {"std", Aggregation::kStddev},  {"stddev_samp", Aggregation::kStddev},
  };
  for (const auto& [known, aggregation] : kNames) {
    if (name == known) return aggregation;
  }
  return InvalidArgument("unknown aggregation '" + std::string(name) +
                         "' (known: count, sum, mean or avg, min, max, last, "
                         "stddev or std or stddev_samp)");
}

Duration DefaultHop(Duration length) {
  if (length >= 12 * kMicrosPerDay) return kMicrosPerDay;
  if (length >= 12 * kMicrosPerHour) return kMicrosPerHour;
  return 5 * kMicrosPerMinute;
}

void AggregateState::Add(Timestamp ts, uint64_t arrival, double value) {
  if (count == 0) {
    min = max = last = value;
    last_ts = ts;
    last_arrival = arrival;
  } else {
    if (OrderKey(value) < OrderKey(min)) min = value;
    if (OrderKey(value) > OrderKey(max)) max = value;
    if (IsLater(ts, arrival, value, *this)) {
      last = value;
      last_ts = ts;
      last_arrival = arrival;
    }
  }
  ++count;
  sum.Add(value);
  AddSquare(&sum_squares, value);
}

void AggregateState::Merge(const AggregateState& other) {
  if (other.count == 0) return;
  if (count == 0) {
    *this = other;
    return;
  }
  if (OrderKey(other.min) < OrderKey(min)) min = other.min;
  if (OrderKey(other.max) > OrderKey(max)) max = other.max;
  if (IsLater(other.last_ts, other.last_arrival, other.last, *this)) {
    last = other.last;
    last_ts = other.last_ts;
    last_arrival = other.last_arrival;
  }
  count += other.count;
  sum.Merge(other.sum);
  sum_squares.Merge(other.sum_squares);
}

bool AggregateState::operator==(const AggregateState& other) const {
  if (count != other.count || !(sum == other.sum) || !(sum_squares == other.sum_squares)) {
    return false;
  }
  if (count == 0) return true;  // the remaining fields are meaningless
  return std::bit_cast<uint64_t>(min) == std::bit_cast<uint64_t>(other.min) &&
         std::bit_cast<uint64_t>(max) == std::bit_cast<uint64_t>(other.max) &&
         std::bit_cast<uint64_t>(last) == std::bit_cast<uint64_t>(other.last) &&
         last_ts == other.last_ts && last_arrival == other.last_arrival;
}

FeatureValue Finalize(Aggregation aggregation, const AggregateState& state) {
  return FinalizeWith(
      aggregation, state.count, [&] { return state.sum.Value(); },
      [&] { return state.sum.ValueDoubleDouble(); },
      [&] { return state.sum_squares.ValueDoubleDouble(); }, state.min, state.max, state.last);
}

// --- SlidingWindow ---------------------------------------------------------

uint32_t SlidingWindow::NeedsOf(Aggregation aggregation) {
  switch (aggregation) {
    case Aggregation::kCount:
      return 0;
    case Aggregation::kSum:
    case Aggregation::kMean:
      return kNeedSum;
    case Aggregation::kStddev:
      return kNeedSum | kNeedSquares;
    case Aggregation::kMin:
      return kNeedMin;
    case Aggregation::kMax:
      return kNeedMax;
    case Aggregation::kLast:
      return kNeedLast;
  }
  return kNeedAll;
}

SlidingWindow::SlidingWindow(WindowSpec window, uint32_t needs) : window_(window), needs_(needs) {
  assert(window.length > 0 && window.hop > 0);
}

void SlidingWindow::Reset(const EventSeries& series) {
  series_ = series;
  head_ = 0;
  tail_ = 0;
  state_.count = 0;
  state_.sum.Clear();
  state_.sum_squares.Clear();
  min_deque_.clear();  // keeps the capacity: no allocation once warmed up
  max_deque_.clear();
  min_front_ = 0;
  max_front_ = 0;
  last_valid_row_ = SIZE_MAX;
  integer_sum_ = 0;
  integer_squares_ = 0;
  rounded_ = 0;
  // Without sums to keep, there is nothing for the integer path to speed up.
  integer_mode_ = (needs_ & (kNeedSum | kNeedSquares)) != 0 && series.size <= kMaxIntegerModeRows;
  for (size_t row = 0; integer_mode_ && row < series.size; ++row) {
    const double value = series.values[row];
    integer_mode_ =
        !IsValid(row) || (std::fabs(value) <= kMaxIntegerModeValue && value == std::trunc(value));
  }
}

void SlidingWindow::AdvanceTo(Timestamp t) {
  const Timestamp start = window_.Start(t);
  const Timestamp* ts = series_.ts;
  // The tail first: rows that the window has already passed are skipped
  // without being added and removed again.
  while (tail_ < series_.size && ts[tail_] < start) {
    if (tail_ < head_ && IsValid(tail_)) RemoveRow(tail_);
    ++tail_;
  }
  if (head_ < tail_) head_ = tail_;
  while (head_ < series_.size && ts[head_] < t) {
    if (IsValid(head_)) AddRow(head_);
    ++head_;
  }
  if (needs_ & kNeedMin) PopExpired(tail_, &min_deque_, &min_front_);
  if (needs_ & kNeedMax) PopExpired(tail_, &max_deque_, &max_front_);
  if (state_.count == 0 && !integer_mode_ && (needs_ & (kNeedSum | kNeedSquares))) {
    // Exact: what was added has all been removed. Keeps the chunk range tight.
    state_.sum.Clear();
    state_.sum_squares.Clear();
  }
}

void SlidingWindow::AddRow(size_t row) {
  ++state_.count;
  rounded_ = 0;
  last_valid_row_ = row;
  if (needs_ == 0) return;  // a plain count
  const double value = series_.values[row];
  if (integer_mode_) {
    const auto integer = static_cast<__int128>(static_cast<int64_t>(value));
    integer_sum_ += integer;
    integer_squares_ += integer * integer;
  } else if (needs_ & (kNeedSum | kNeedSquares)) {
    state_.sum.Add(value);
    if (needs_ & kNeedSquares) AddSquare(&state_.sum_squares, value);
  }
  if ((needs_ & (kNeedMin | kNeedMax)) == 0) return;
  const int64_t key = OrderKey(value);
  // Deques hold rows whose values strictly increase (min) / decrease (max)
  // from front to back; a newer row dominates older equal ones.
  if (needs_ & kNeedMin) {
    while (min_deque_.size() > min_front_ && OrderKey(series_.values[min_deque_.back()]) >= key) {
      min_deque_.pop_back();
    }
    min_deque_.push_back(row);
  }
  if (needs_ & kNeedMax) {
    while (max_deque_.size() > max_front_ && OrderKey(series_.values[max_deque_.back()]) <= key) {
      max_deque_.pop_back();
    }
    max_deque_.push_back(row);
  }
}

void SlidingWindow::RemoveRow(size_t row) {
  --state_.count;
  rounded_ = 0;
  if ((needs_ & (kNeedSum | kNeedSquares)) == 0) return;
  const double value = series_.values[row];
  if (integer_mode_) {
    const auto integer = static_cast<__int128>(static_cast<int64_t>(value));
    integer_sum_ -= integer;
    integer_squares_ -= integer * integer;
  } else {
    state_.sum.Remove(value);
    if (needs_ & kNeedSquares) RemoveSquare(&state_.sum_squares, value);
  }
}

double SlidingWindow::SumValue() const {
  if ((rounded_ & 1) == 0) {
    sum_rounded_.hi = integer_mode_ ? static_cast<double>(integer_sum_) : state_.sum.Value();
    rounded_ |= 1;
  }
  return sum_rounded_.hi;
}

DoubleDouble SlidingWindow::SumDoubleDouble() const {
  if ((rounded_ & 2) == 0) {
    sum_rounded_ = integer_mode_ ? RoundInteger(integer_sum_) : state_.sum.ValueDoubleDouble();
    rounded_ |= 3;
  }
  return sum_rounded_;
}

DoubleDouble SlidingWindow::SquaresDoubleDouble() const {
  if ((rounded_ & 4) == 0) {
    squares_rounded_ =
        integer_mode_ ? RoundInteger(integer_squares_) : state_.sum_squares.ValueDoubleDouble();
    rounded_ |= 4;
  }
  return squares_rounded_;
}

FeatureValue SlidingWindow::Read(Aggregation aggregation) const {
  assert((NeedsOf(aggregation) & ~needs_) == 0 &&
         "Read of an aggregation the kernel does not keep");
  // With count > 0 the deques' fronts and the latest valid row added are all
  // inside the window. Only the aggregation asked for is looked up.
  double min = 0.0, max = 0.0, last = 0.0;
  if (state_.count > 0) {
    if (aggregation == Aggregation::kMin) min = series_.values[min_deque_[min_front_]];
    if (aggregation == Aggregation::kMax) max = series_.values[max_deque_[max_front_]];
    if (aggregation == Aggregation::kLast) last = series_.values[last_valid_row_];
  }
  return FinalizeWith(
      aggregation, state_.count, [this] { return SumValue(); },
      [this] { return SumDoubleDouble(); }, [this] { return SquaresDoubleDouble(); }, min, max,
      last);
}

// --- WindowBounds ----------------------------------------------------------

WindowBounds::WindowBounds(std::vector<WindowSpec> windows)
    : windows_(std::move(windows)),
      tails_(windows_.size(), 0),
      starts_(windows_.size(), 0),
      start_ends_(windows_.size(), kMinTimestamp) {
  for (const WindowSpec& window : windows_) {
    assert(window.length > 0 && window.hop > 0);
    (void)window;
  }
}

void WindowBounds::Reset(const Timestamp* ts, size_t size) {
  ts_ = ts;
  size_ = size;
  head_ = 0;
  std::fill(tails_.begin(), tails_.end(), 0);
  std::fill(start_ends_.begin(), start_ends_.end(), kMinTimestamp);  // recomputed at the first t
}

void WindowBounds::AdvanceTo(Timestamp t) {
  while (head_ < size_ && ts_[head_] < t) ++head_;
  for (size_t k = 0; k < windows_.size(); ++k) {
    // Start(t) = FloorToHop(t - length, hop) stays the same while t - length
    // is below the end of its hop (t only grows).
    if (t - windows_[k].length >= start_ends_[k]) {
      starts_[k] = windows_[k].Start(t);
      if (__builtin_add_overflow(starts_[k], windows_[k].hop, &start_ends_[k])) {
        start_ends_[k] = INT64_MAX;  // t - length < t <= INT64_MAX: never reached
      }
    }
    // start < t, so the tail never passes the head.
    const Timestamp start = starts_[k];
    size_t tail = tails_[k];
    while (tail < head_ && ts_[tail] < start) ++tail;
    tails_[k] = tail;
  }
}

// --- IntegerPrefixSums -------------------------------------------------------

namespace {

// The prefix entries of rows [0, size): kHasValid reads `valid`, kSums the
// values (and kSquares their squares). Returns false on a valid value that is
// not an integer within kMaxValue.
template <bool kHasValid, bool kSums, bool kSquares, typename Entry>
bool BuildPrefix(const EventSeries& series, Entry* prefix, __int128* squares) {
  constexpr double kLimit = IntegerPrefixSums::kMaxValue;
  int64_t count = 0, sum = 0;
  __int128 square_sum = 0;
  bool bad = false;
  prefix[0] = Entry{0, 0};
  if constexpr (kSquares) squares[0] = 0;
  for (size_t row = 0; row < series.size; ++row) {
    const bool valid = !kHasValid || series.valid[row] != 0;
    count += valid ? 1 : 0;
    if constexpr (kSums) {
      const double value = series.values[row];
      const bool in_range = std::fabs(value) <= kLimit;
      // Converted only when in range (out-of-range conversions are undefined).
      const auto integer = static_cast<int64_t>(valid && in_range ? value : 0.0);
      bad |= valid && !(in_range && static_cast<double>(integer) == value);
      sum += integer;
      if constexpr (kSquares) {
        square_sum += static_cast<__int128>(integer * integer);
        squares[row + 1] = square_sum;
      }
    }
    prefix[row + 1] = Entry{count, sum};
  }
  return !bad;
}

}  // namespace

bool IntegerPrefixSums::Covers(uint32_t needs) {
  return (needs & (SlidingWindow::kNeedMin | SlidingWindow::kNeedMax | SlidingWindow::kNeedLast)) ==
         0;
}

bool IntegerPrefixSums::Reset(const EventSeries& series, uint32_t needs) {
  assert(Covers(needs));
  needs_ = needs;
  const bool sums = (needs & (SlidingWindow::kNeedSum | SlidingWindow::kNeedSquares)) != 0;
  const bool squares = (needs & SlidingWindow::kNeedSquares) != 0;
  const bool has_valid = series.valid != nullptr;
  counts_only_rows_ = !has_valid && !sums;
  if (counts_only_rows_) return true;
  if (series.size >= (size_t{1} << 31)) return false;
  if (prefix_.size() < series.size + 1) prefix_.resize(series.size + 1);
  if (squares && squares_.size() < series.size + 1) squares_.resize(series.size + 1);
  Entry* prefix = prefix_.data();
  __int128* square_prefix = squares_.data();
  if (!sums) {
    return BuildPrefix<true, false, false>(series, prefix, square_prefix);
  }
  if (squares) {
    return has_valid ? BuildPrefix<true, true, true>(series, prefix, square_prefix)
                     : BuildPrefix<false, true, true>(series, prefix, square_prefix);
  }
  return has_valid ? BuildPrefix<true, true, false>(series, prefix, square_prefix)
                   : BuildPrefix<false, true, false>(series, prefix, square_prefix);
}

FeatureValue IntegerPrefixSums::Read(Aggregation aggregation, size_t begin, size_t end) const {
  assert((SlidingWindow::NeedsOf(aggregation) & ~needs_) == 0 && Covers(needs_) &&
         "Read of an aggregation the prefix sums do not keep");
  if (counts_only_rows_) {
    return FinalizeWith(
        aggregation, static_cast<int64_t>(end - begin), [] { return 0.0; },
        [] { return DoubleDouble{}; }, [] { return DoubleDouble{}; }, 0.0, 0.0, 0.0);
  }
  const Entry& first = prefix_[begin];
  const Entry& last = prefix_[end];
  const int64_t sum = last.sum - first.sum;
  return FinalizeWith(
      aggregation, last.count - first.count, [sum] { return static_cast<double>(sum); },
      [sum] { return RoundInteger(sum); },
      [&] { return RoundInteger(squares_[end] - squares_[begin]); }, 0.0, 0.0, 0.0);
}

// --- BucketedSeries --------------------------------------------------------

BucketedSeries::BucketedSeries(Duration hop) : hop_(hop) { assert(hop > 0); }

bool BucketedSeries::Add(Timestamp ts, uint64_t arrival, double value, bool valid) {
  // The second test keeps FloorToHop from overflowing at the bottom of the range.
  if (ts < horizon_ || ts < kMinTimestamp + hop_) return false;
  if (valid && std::isfinite(value)) buckets_[FloorToHop(ts, hop_)].Add(ts, arrival, value);
  return true;
}

AggregateState BucketedSeries::Read(Duration length, Timestamp t) const {
  AggregateState result;
  for (auto it = buckets_.lower_bound(FloorToHop(t - length, hop_)); it != buckets_.end(); ++it) {
    result.Merge(it->second);
  }
  return result;
}

void BucketedSeries::EvictBefore(Timestamp horizon) {
  if (horizon <= horizon_) return;
  horizon_ = horizon;
  // A bucket [start, start + hop) goes when start + hop <= horizon.
  if (horizon < kMinTimestamp + hop_) return;
  const Timestamp last_evicted_start = horizon - hop_;
  while (!buckets_.empty() && buckets_.begin()->first <= last_evicted_start) {
    buckets_.erase(buckets_.begin());
  }
}

// Format (little-endian): u8 version = 1, i64 hop, i64 horizon, u32 bucket
// count, then per bucket in ascending start order: i64 start, i64 count, f64
// min, max and last, i64 last_ts, u64 last_arrival, and the two exact sums, each
// as u16 length + ExactSum encoding.
constexpr uint8_t kEncodingVersion = 1;

void BucketedSeries::AppendEncoded(std::string* out) const {
  PutU8(out, kEncodingVersion);
  PutU64(out, static_cast<uint64_t>(hop_));
  PutU64(out, static_cast<uint64_t>(horizon_));
  PutU32(out, static_cast<uint32_t>(buckets_.size()));
  std::string sum_bytes;
  for (const auto& [start, state] : buckets_) {
    PutU64(out, static_cast<uint64_t>(start));
    PutU64(out, static_cast<uint64_t>(state.count));
    PutU64(out, std::bit_cast<uint64_t>(state.min));
    PutU64(out, std::bit_cast<uint64_t>(state.max));
    PutU64(out, std::bit_cast<uint64_t>(state.last));
    PutU64(out, static_cast<uint64_t>(state.last_ts));
    PutU64(out, state.last_arrival);
    for (const ExactSum* sum : {&state.sum, &state.sum_squares}) {
      sum_bytes.clear();
      sum->AppendEncoded(&sum_bytes);
      PutU16(out, static_cast<uint16_t>(sum_bytes.size()));
      out->append(sum_bytes);
    }
  }
}

Result<BucketedSeries> BucketedSeries::Decode(std::string_view bytes) {
  ByteReader reader(bytes);
  const auto bad = [](std::string why) {
    return InvalidArgument("bucketed series encoding: " + std::move(why));
  };
  uint8_t version = 0;
  int64_t hop = 0;
  int64_t horizon = 0;
  uint32_t num_buckets = 0;
  if (!reader.U8(&version) || !reader.I64(&hop) || !reader.I64(&horizon) ||
      !reader.U32(&num_buckets)) {
    return bad("truncated header");
  }
  if (version != kEncodingVersion) return bad("unknown version " + std::to_string(version));
  if (hop <= 0) return bad("hop must be positive");
  BucketedSeries series(hop);
  series.horizon_ = horizon;
  for (uint32_t bucket = 0; bucket < num_buckets; ++bucket) {
    const std::string where = "bucket " + std::to_string(bucket);
    int64_t start = 0;
    AggregateState state;
    uint64_t min_bits = 0, max_bits = 0, last_bits = 0;
    if (!reader.I64(&start) || !reader.I64(&state.count) || !reader.U64(&min_bits) ||
        !reader.U64(&max_bits) || !reader.U64(&last_bits) || !reader.I64(&state.last_ts) ||
        !reader.U64(&state.last_arrival)) {
      return bad(where + ": truncated");
    }
    if (start % hop != 0) return bad(where + ": start is not a multiple of the hop");
    if (!series.buckets_.empty() && start <= series.buckets_.rbegin()->first) {
      return bad(where + ": starts out of order");
    }
    if (horizon >= kMinTimestamp + hop && start <= horizon - hop) {
      return bad(where + ": ends before the eviction horizon");
    }
    if (state.count < 1 || state.count > kMaxEncodedCount) return bad(where + ": bad count");
    state.min = std::bit_cast<double>(min_bits);
    state.max = std::bit_cast<double>(max_bits);
    state.last = std::bit_cast<double>(last_bits);
    if (!std::isfinite(state.min) || !std::isfinite(state.max) || !std::isfinite(state.last) ||
        OrderKey(state.min) > OrderKey(state.last) || OrderKey(state.last) > OrderKey(state.max)) {
      return bad(where + ": inconsistent min/max/last");
    }
    if (state.last_ts < start ||
        static_cast<uint64_t>(state.last_ts) - static_cast<uint64_t>(start) >=
            static_cast<uint64_t>(hop)) {
      return bad(where + ": last timestamp outside the bucket");
    }
    for (ExactSum* sum : {&state.sum, &state.sum_squares}) {
      uint16_t length = 0;
      std::string_view sum_bytes;
      if (!reader.U16(&length) || !reader.Bytes(length, &sum_bytes)) {
        return bad(where + ": truncated");
      }
      Result<ExactSum> decoded = ExactSum::Decode(sum_bytes);
      if (!decoded.ok()) return decoded.status().WithContext("bucketed series encoding: " + where);
      *sum = std::move(decoded).value();
    }
    series.buckets_.emplace_hint(series.buckets_.end(), start, std::move(state));
  }
  if (!reader.AtEnd()) return bad("trailing bytes");
  return series;
}

namespace {

// The encoding's header: u8 version, i64 hop, i64 horizon, u32 bucket count.
Status ReadSeriesHeader(ByteReader* reader, int64_t* hop, int64_t* horizon, uint32_t* num_buckets) {
  const auto bad = [](std::string why) {
    return InvalidArgument("bucketed series encoding: " + std::move(why));
  };
  uint8_t version = 0;
  if (!reader->U8(&version) || !reader->I64(hop) || !reader->I64(horizon) ||
      !reader->U32(num_buckets)) {
    return bad("truncated header");
  }
  if (version != kEncodingVersion) return bad("unknown version " + std::to_string(version));
  if (*hop <= 0) return bad("hop must be positive");
  return Status::Ok();
}

// One bucket, undecoded: its start, its fixed fields (count, min, max, last,
// last_ts, last_arrival: 6 x 8 bytes) and its two exact-sum encodings.
// Returns false when the bytes end too early.
bool NextBucket(ByteReader* reader, int64_t* start, std::string_view* fixed,
                std::string_view sums[2]) {
  if (!reader->I64(start) || !reader->Bytes(6 * 8, fixed)) return false;
  for (int sum = 0; sum < 2; ++sum) {
    uint16_t size = 0;
    if (!reader->U16(&size) || !reader->Bytes(size, &sums[sum])) return false;
  }
  return true;
}

}  // namespace

Result<Timestamp> BucketedSeries::EncodedHorizon(std::string_view bytes) {
  ByteReader reader(bytes);
  int64_t hop = 0, horizon = 0;
  uint32_t num_buckets = 0;
  RETURN_IF_ERROR(ReadSeriesHeader(&reader, &hop, &horizon, &num_buckets));
  return horizon;
}

Status BucketedSeries::ApplyEncoded(std::string_view bytes, std::span<const Row> rows,
                                    Timestamp evict_before, std::string* out) {
  ByteReader reader(bytes);
  const auto bad = [](std::string why) {
    return InvalidArgument("bucketed series encoding: " + std::move(why));
  };
  int64_t hop = 0, horizon = 0;
  uint32_t num_buckets = 0;
  RETURN_IF_ERROR(ReadSeriesHeader(&reader, &hop, &horizon, &num_buckets));
  constexpr size_t kHeader = 1 + 8 + 8 + 4;
  // Every stored bucket as (start, its bytes), without decoding.
  std::vector<std::pair<Timestamp, std::string_view>> spans;
  spans.reserve(num_buckets);
  for (uint32_t i = 0; i < num_buckets; ++i) {
    const size_t begin = bytes.size() - reader.remaining();
    int64_t start = 0;
    std::string_view fixed, sums[2];
    if (!NextBucket(&reader, &start, &fixed, sums)) return bad("truncated bucket");
    if (!spans.empty() && start <= spans.back().first) return bad("starts out of order");
    spans.emplace_back(start, bytes.substr(begin, bytes.size() - reader.remaining() - begin));
  }
  if (!reader.AtEnd()) return bad("trailing bytes");
  // The touched buckets, decoded (through Decode, so they are validated) or new.
  BucketedSeries touched(hop);
  touched.horizon_ = horizon;
  std::string one;
  for (const Row& row : rows) {
    if (row.ts < horizon || row.ts < kMinTimestamp + hop) continue;  // as Add: too old
    if (!row.valid || !std::isfinite(row.value)) continue;           // as Add: null
    const Timestamp start = FloorToHop(row.ts, hop);
    auto it = touched.buckets_.find(start);
    if (it == touched.buckets_.end()) {
      auto stored = std::lower_bound(spans.begin(), spans.end(), start,
                                     [](const std::pair<Timestamp, std::string_view>& span,
                                        Timestamp key) { return span.first < key; });
      AggregateState state;
      if (stored != spans.end() && stored->first == start) {
        one.assign(bytes.substr(0, 1 + 8 + 8));
        PutU32(&one, 1);
        one.append(stored->second);
        ASSIGN_OR_RETURN(BucketedSeries decoded, Decode(one));
        state = std::move(decoded.buckets_.begin()->second);
      }
      it = touched.buckets_.emplace(start, std::move(state)).first;
    }
    it->second.Add(row.ts, row.arrival, row.value);
  }
  // EvictBefore's rule: the horizon only moves forward; a bucket goes when it
  // ends at or before it.
  Timestamp new_horizon = std::max(horizon, evict_before);
  Timestamp first_kept = kMinTimestamp;  // keep buckets with start >= first_kept
  if (new_horizon > horizon && new_horizon >= kMinTimestamp + hop)
    first_kept = new_horizon - hop + 1;
  out->clear();
  PutU8(out, kEncodingVersion);
  PutU64(out, static_cast<uint64_t>(hop));
  PutU64(out, static_cast<uint64_t>(new_horizon));
  const size_t count_at = out->size();
  PutU32(out, 0);
  uint32_t written = 0;
  auto stored = spans.begin();
  auto fresh = touched.buckets_.begin();
  BucketedSeries single(hop);
  while (stored != spans.end() || fresh != touched.buckets_.end()) {
    bool take_fresh =
        stored == spans.end() || (fresh != touched.buckets_.end() && fresh->first <= stored->first);
    Timestamp start = take_fresh ? fresh->first : stored->first;
    if (take_fresh && stored != spans.end() && stored->first == start) ++stored;  // replaced
    if (start >= first_kept) {
      if (take_fresh) {
        single.buckets_.clear();
        single.buckets_.emplace(start, fresh->second);
        one.clear();
        single.AppendEncoded(&one);
        out->append(one, kHeader, std::string::npos);
      } else {
        out->append(stored->second);
      }
      ++written;
    }
    if (take_fresh) {
      ++fresh;
    } else {
      ++stored;
    }
  }
  for (size_t byte = 0; byte < 4; ++byte) {
    (*out)[count_at + byte] = static_cast<char>(written >> (8 * byte));
  }
  return Status::Ok();
}

Status BucketedSeries::ReadEncoded(std::string_view bytes, Duration length, Timestamp t,
                                   AggregateState* out) {
  return ReadEncodedWindows(bytes, std::span(&length, 1), t, std::span(out, 1));
}

Status BucketedSeries::ReadEncodedWindows(std::string_view bytes, std::span<const Duration> lengths,
                                          Timestamp t, std::span<AggregateState> out) {
  return ReadEncodedWindows(bytes, lengths, t, out, SlidingWindow::kNeedAll);
}

Status BucketedSeries::ReadEncodedWindows(std::string_view bytes, std::span<const Duration> lengths,
                                          Timestamp t, std::span<AggregateState> out,
                                          uint32_t needs) {
  const bool merge_sum = (needs & SlidingWindow::kNeedSum) != 0;
  const bool merge_squares = (needs & SlidingWindow::kNeedSquares) != 0;
  const bool merge_fixed =
      (needs & (SlidingWindow::kNeedMin | SlidingWindow::kNeedMax | SlidingWindow::kNeedLast)) != 0;
  ByteReader reader(bytes);
  const auto bad = [](std::string why) {
    return InvalidArgument("bucketed series encoding: " + std::move(why));
  };
  int64_t hop = 0, horizon = 0;
  uint32_t num_buckets = 0;
  RETURN_IF_ERROR(ReadSeriesHeader(&reader, &hop, &horizon, &num_buckets));
  // Window k covers buckets starting at or after from[k]; from[] ascends.
  constexpr size_t kMaxWindows = 16;
  Timestamp from[kMaxWindows];
  const size_t windows = lengths.size();
  if (windows == 0 || windows > kMaxWindows || out.size() != windows) {
    return InvalidArgument("ReadEncodedWindows: 1 to 16 windows, one state each");
  }
  for (size_t k = 0; k < windows; ++k) {
    from[k] = FloorToHop(t - lengths[k], hop);
    out[k].count = 0;
    out[k].sum.Clear();
    out[k].sum_squares.Clear();
    out[k].min = out[k].max = out[k].last = 0.0;
    out[k].last_ts = kMinTimestamp;
    out[k].last_arrival = 0;
  }
  size_t segment = 0;
  for (uint32_t i = 0; i < num_buckets; ++i) {
    int64_t start = 0;
    std::string_view fixed, sums[2];
    if (!NextBucket(&reader, &start, &fixed, sums)) {
      return bad("bucket " + std::to_string(i) + ": truncated");
    }
    if (start < from[0]) continue;
    while (segment + 1 < windows && from[segment + 1] <= start) ++segment;
    AggregateState& result = out[segment];
    ByteReader fields(fixed);
    int64_t count = 0, last_ts = 0;
    double min = 0, max = 0, last = 0;
    uint64_t last_arrival = 0;
    fields.I64(&count);
    fields.F64(&min);
    fields.F64(&max);
    fields.F64(&last);
    fields.I64(&last_ts);
    fields.U64(&last_arrival);
    if (count < 1 || count > kMaxEncodedCount || result.count > kMaxEncodedCount) {
      return bad("bucket " + std::to_string(i) + ": bad count");
    }
    if (!std::isfinite(min) || !std::isfinite(max) || !std::isfinite(last)) {
      return bad("bucket " + std::to_string(i) + ": non-finite min/max/last");
    }
    // AggregateState::Merge, field by field (the sums come from the bytes).
    if (!merge_fixed) {
      // Only the count and the sums are read (e.g. count and mean).
    } else if (result.count == 0) {
      result.min = min;
      result.max = max;
      result.last = last;
      result.last_ts = last_ts;
      result.last_arrival = last_arrival;
    } else {
      if (OrderKey(min) < OrderKey(result.min)) result.min = min;
      if (OrderKey(max) > OrderKey(result.max)) result.max = max;
      if (IsLater(last_ts, last_arrival, last, result)) {
        result.last = last;
        result.last_ts = last_ts;
        result.last_arrival = last_arrival;
      }
    }
    result.count += count;
    if (merge_sum) RETURN_IF_ERROR(result.sum.MergeEncoded(sums[0]));
    if (merge_squares) RETURN_IF_ERROR(result.sum_squares.MergeEncoded(sums[1]));
  }
  if (!reader.AtEnd()) return bad("trailing bytes");
  for (size_t k = windows; k-- > 1;) out[k - 1].Merge(out[k]);
  return Status::Ok();
}

}  // namespace keel::features
