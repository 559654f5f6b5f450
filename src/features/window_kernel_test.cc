#include "features/window_kernel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <new>
#include <random>
#include <string>
#include <vector>

// Counts heap allocations, to prove that SlidingWindow::Reset and AdvanceTo do
// not allocate once their buffers are large enough.
namespace {
std::atomic<int64_t> g_allocations{0};
}  // namespace

// Out of line, so that the compiler does not pair our malloc and free with the
// library's new and delete (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* pointer = std::malloc(size == 0 ? 1 : size)) return pointer;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* pointer) noexcept { std::free(pointer); }
[[gnu::noinline]] void operator delete(void* pointer, size_t) noexcept { std::free(pointer); }

namespace keel::features {
namespace {

constexpr Aggregation kAllAggregations[] = {
    Aggregation::kCount, Aggregation::kSum,  Aggregation::kMean,  Aggregation::kMin,
    Aggregation::kMax,   Aggregation::kLast, Aggregation::kStddev};

uint64_t Bits(double x) { return std::bit_cast<uint64_t>(x); }

// --- Independent references ------------------------------------------------

// Shewchuk's partials with Python's math.fsum final rounding: the correctly
// rounded sum. The values in these tests never overflow it.
double ReferenceSum(const std::vector<double>& values) {
  std::vector<double> partials;
  for (double x : values) {
    size_t kept = 0;
    for (double y : partials) {
      if (std::fabs(x) < std::fabs(y)) std::swap(x, y);
      const double hi = x + y;
      const double lo = y - (hi - x);
      if (lo != 0.0) partials[kept++] = lo;
      x = hi;
    }
    partials.resize(kept);
    if (x != 0.0) partials.push_back(x);
  }
  if (partials.empty()) return 0.0;
  size_t n = partials.size();
  double hi = partials[--n];
  double lo = 0.0;
  while (n > 0) {
    const double x = hi;
    const double y = partials[--n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo != 0.0) break;
  }
  if (n > 0 && ((lo < 0.0 && partials[n - 1] < 0.0) || (lo > 0.0 && partials[n - 1] > 0.0))) {
    const double y = lo * 2.0;
    const double x = hi + y;
    if (y == x - hi) hi = x;
  }
  return hi == 0.0 ? 0.0 : hi;
}

DoubleDouble ReferenceDoubleDouble(std::vector<double> values) {
  DoubleDouble result;
  result.hi = ReferenceSum(values);
  values.push_back(-result.hi);
  result.lo = ReferenceSum(values);
  return result;
}

// The documented stddev formula, (S2 - S1 * (S1 / n)) / (n - 1) in
// double-double arithmetic (QD library algorithms), written out again here.
double ReferenceStddev(DoubleDouble s1, DoubleDouble s2, int64_t count) {
  const auto two_sum = [](double a, double b) {
    const double s = a + b;
    const double v = s - a;
    return DoubleDouble{s, (a - (s - v)) + (b - v)};
  };
  const auto quick_two_sum = [](double a, double b) {
    const double s = a + b;
    return DoubleDouble{s, b - (s - a)};
  };
  const auto two_prod = [](double a, double b) {
    const double p = a * b;
    return DoubleDouble{p, std::fma(a, b, -p)};
  };
  const auto divide = [&](DoubleDouble x, double d) {
    const double q = x.hi / d;
    const DoubleDouble p = two_prod(q, d);
    return quick_two_sum(q, (((x.hi - p.hi) - p.lo) + x.lo) / d);
  };
  const double n = static_cast<double>(count);
  const DoubleDouble mean = divide(s1, n);
  const DoubleDouble p = two_prod(s1.hi, mean.hi);
  const DoubleDouble square = quick_two_sum(p.hi, p.lo + (s1.hi * mean.lo + s1.lo * mean.hi));
  const DoubleDouble high = two_sum(s2.hi, -square.hi);
  const DoubleDouble low = two_sum(s2.lo, -square.lo);
  DoubleDouble difference = quick_two_sum(high.hi, high.lo + low.hi);
  difference = quick_two_sum(difference.hi, difference.lo + low.lo);
  const double variance = divide(difference, n - 1.0).hi;
  return variance > 0.0 ? std::sqrt(variance) : 0.0;
}

bool TotalLess(double a, double b) {  // -0.0 < +0.0
  if (a != b) return a < b;
  return std::signbit(a) && !std::signbit(b);
}

struct Series {
  std::vector<Timestamp> ts;
  std::vector<double> values;
  std::vector<uint8_t> valid;

  size_t size() const { return ts.size(); }
  EventSeries View() const { return {ts.data(), values.data(), valid.data(), ts.size()}; }
};

struct Expected {
  FeatureValue values[std::size(kAllAggregations)];
  size_t rows = 0;
  double stddev_long_double = 0.0;  // two-pass, for an accuracy check
  double magnitude = 0.0;           // root mean square of the values
};

// The window at t computed row by row: rows with Start(t) <= ts < t.
Expected ReferenceWindow(const Series& series, WindowSpec window, Timestamp t) {
  Expected expected;
  std::vector<double> values;
  std::vector<double> square_terms;
  double min = 0.0, max = 0.0, last = 0.0;
  for (size_t row = 0; row < series.size(); ++row) {
    if (series.ts[row] < window.Start(t) || series.ts[row] >= t) continue;
    ++expected.rows;
    if (!series.valid[row]) continue;
    const double x = series.values[row];
    if (values.empty() || TotalLess(x, min)) min = x;
    if (values.empty() || TotalLess(max, x)) max = x;
    last = x;  // rows are sorted by (ts, arrival)
    values.push_back(x);
    square_terms.push_back(x * x);
    square_terms.push_back(std::fma(x, x, -(x * x)));
  }
  const int64_t count = static_cast<int64_t>(values.size());
  expected.values[0] = {static_cast<double>(count), true};
  if (count == 0) return expected;
  const double sum = ReferenceSum(values);
  expected.values[1] = {sum, true};
  expected.values[2] = {sum / static_cast<double>(count), true};
  expected.values[3] = {min, true};
  expected.values[4] = {max, true};
  expected.values[5] = {last, true};
  if (count >= 2) {
    expected.values[6] = {
        ReferenceStddev(ReferenceDoubleDouble(values), ReferenceDoubleDouble(square_terms), count),
        true};
  }
  long double mean = 0.0L, squares = 0.0L;
  for (double x : values) mean += x;
  mean /= count;
  for (double x : values) {
    squares += (x - mean) * (x - mean);
    expected.magnitude += x * x;
  }
  expected.magnitude = std::sqrt(expected.magnitude / count);
  if (count >= 2)
    expected.stddev_long_double = static_cast<double>(std::sqrt(squares / (count - 1)));
  return expected;
}

::testing::AssertionResult SameFeatureValue(const FeatureValue& expected,
                                            const FeatureValue& actual) {
  if (expected.valid == actual.valid && Bits(expected.value) == Bits(actual.value)) {
    return ::testing::AssertionSuccess();
  }
  char text[200];
  std::snprintf(text, sizeof(text), "expected %s%a (%.17g), got %s%a (%.17g)",
                expected.valid ? "" : "null ", expected.value, expected.value,
                actual.valid ? "" : "null ", actual.value, actual.value);
  return ::testing::AssertionFailure() << text;
}

// --- Random data ----------------------------------------------------------

constexpr Timestamp kBase = 19676 * kMicrosPerDay;  // 2023-11-14, a whole day

// kSmallIntegers, kSignedZeros and kLargeIntegers mostly take SlidingWindow's
// integer fast path; the others the ExactSum path.
enum class ValueKind { kSmallIntegers, kCents, kWide, kSignedZeros, kLargeIntegers, kMixed };
constexpr int kValueKinds = 6;

double RandomValue(std::mt19937_64& rng, ValueKind kind) {
  switch (kind) {
    case ValueKind::kSmallIntegers:
      return static_cast<double>(static_cast<int>(rng() % 21) - 10);
    case ValueKind::kCents:
      return static_cast<double>(static_cast<int64_t>(rng() % 200001) - 100000) / 100.0;
    case ValueKind::kWide: {
      const double mantissa = std::uniform_real_distribution<double>(-1.0, 1.0)(rng);
      return std::ldexp(mantissa, static_cast<int>(rng() % 120) - 60);
    }
    case ValueKind::kSignedZeros:
      return rng() % 3 == 0 ? 0.0 : (rng() % 2 == 0 ? -0.0 : static_cast<double>(rng() % 3));
    case ValueKind::kLargeIntegers: {  // up to 2^48 (the fast path's limit), rarely beyond
      const double magnitude = rng() % 50 == 0 ? 0x1p48 + 2 * (rng() % 4) : 0x1p48;
      return std::trunc(std::uniform_real_distribution<double>(-magnitude, magnitude)(rng));
    }
    case ValueKind::kMixed:
      return RandomValue(rng, static_cast<ValueKind>(rng() % (kValueKinds - 1)));
  }
  return 0.0;
}

// Timestamps on a coarse grid (so that events fall on hop and window
// boundaries and share timestamps), starting at a random, possibly late, point.
Series RandomSeries(std::mt19937_64& rng, Timestamp base) {
  static constexpr Duration kGrids[] = {30 * kMicrosPerSecond, kMicrosPerMinute,
                                        5 * kMicrosPerMinute, 7 * kMicrosPerMinute};
  const Duration grid = kGrids[rng() % std::size(kGrids)];
  const int64_t first_point = static_cast<int64_t>(rng() % 300);
  const int64_t points = 1 + static_cast<int64_t>(rng() % 400);
  const size_t size = rng() % 8 == 0 ? rng() % 3 : rng() % 250;
  const ValueKind kind = static_cast<ValueKind>(rng() % kValueKinds);
  const uint64_t null_per_mille = rng() % 2 == 0 ? 0 : rng() % 500;
  Series series;
  for (size_t row = 0; row < size; ++row) {
    series.ts.push_back(base + (first_point + static_cast<int64_t>(rng() % points)) * grid);
  }
  std::sort(series.ts.begin(), series.ts.end());
  for (size_t row = 0; row < size; ++row) {
    series.values.push_back(RandomValue(rng, kind));
    series.valid.push_back(rng() % 1000 >= null_per_mille);
  }
  return series;
}

// Ascending query times: random ones, event times exactly, event times plus
// the window length (the tail boundary), and multiples of the hop.
std::vector<Timestamp> QueryTimes(std::mt19937_64& rng, const Series& series, WindowSpec window,
                                  Timestamp base, size_t count) {
  const Timestamp low = base - window.length;
  const Timestamp high = base + 800 * 7 * kMicrosPerMinute + window.length + 2 * window.hop;
  std::vector<Timestamp> times;
  for (size_t i = 0; i < count; ++i) {
    const uint64_t roll = rng() % 5;
    const bool have_rows = series.size() > 0;
    if (roll == 0 || !have_rows) {
      times.push_back(low + static_cast<Timestamp>(rng() % static_cast<uint64_t>(high - low)));
    } else if (roll == 1) {
      times.push_back(series.ts[rng() % series.size()]);
    } else if (roll == 2) {
      times.push_back(series.ts[rng() % series.size()] + window.length + (rng() % 3 == 0 ? 1 : 0));
    } else if (roll == 3) {
      const Timestamp t = series.ts[rng() % series.size()] + static_cast<Timestamp>(rng() % 3) - 1;
      times.push_back(t);
    } else {
      const Timestamp t = low + static_cast<Timestamp>(rng() % static_cast<uint64_t>(high - low));
      times.push_back(FloorToHop(t, window.hop));
    }
  }
  std::sort(times.begin(), times.end());
  return times;
}

std::vector<WindowSpec> TestWindows() {
  const Duration minute = kMicrosPerMinute;
  return {
      {10 * minute, 5 * minute},
      {60 * minute, minute},
      {30 * minute, 30 * minute},  // hop == length
      {5 * minute, 15 * minute},   // hop > length
      {kMicrosPerDay, kMicrosPerHour},
      {7 * minute, 3 * minute},
      {2 * kMicrosPerHour, DefaultHop(2 * kMicrosPerHour)},
      {minute, minute},
  };
}

std::string Describe(WindowSpec window, Timestamp t, Aggregation aggregation) {
  return "window " + FormatDuration(window.length) + " hop " + FormatDuration(window.hop) +
         " at t = base + " + std::to_string(t - kBase) + "us, " +
         std::string(AggregationName(aggregation));
}

// --- Aggregation names and hops ------------------------------------------

TEST(Aggregation, ParsesNamesAndAliases) {
  for (Aggregation aggregation : kAllAggregations) {
    Result<Aggregation> parsed = ParseAggregation(AggregationName(aggregation));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(aggregation, *parsed);
  }
  EXPECT_EQ(Aggregation::kMean, *ParseAggregation("avg"));
  EXPECT_EQ(Aggregation::kStddev, *ParseAggregation("std"));
  EXPECT_EQ(Aggregation::kStddev, *ParseAggregation("stddev_samp"));
  Result<Aggregation> unknown = ParseAggregation("median");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(StatusCode::kInvalidArgument, unknown.status().code());
  EXPECT_NE(std::string::npos, unknown.status().message().find("median"));
  EXPECT_NE(std::string::npos, unknown.status().message().find("stddev"));
}

TEST(WindowSpec, DefaultHopFollowsChronon) {
  EXPECT_EQ(kMicrosPerDay, DefaultHop(30 * kMicrosPerDay));
  EXPECT_EQ(kMicrosPerDay, DefaultHop(12 * kMicrosPerDay));
  EXPECT_EQ(kMicrosPerHour, DefaultHop(12 * kMicrosPerDay - 1));
  EXPECT_EQ(kMicrosPerHour, DefaultHop(12 * kMicrosPerHour));
  EXPECT_EQ(5 * kMicrosPerMinute, DefaultHop(12 * kMicrosPerHour - 1));
  EXPECT_EQ(5 * kMicrosPerMinute, DefaultHop(kMicrosPerMinute));
}

TEST(WindowSpec, StartRoundsTheTailDownToTheHop) {
  const WindowSpec window{10 * kMicrosPerMinute, 5 * kMicrosPerMinute};
  EXPECT_EQ(kBase, window.Start(kBase + 10 * kMicrosPerMinute));
  EXPECT_EQ(kBase, window.Start(kBase + 15 * kMicrosPerMinute - 1));
  EXPECT_EQ(kBase + 5 * kMicrosPerMinute, window.Start(kBase + 15 * kMicrosPerMinute));
  EXPECT_EQ(-15 * kMicrosPerMinute, window.Start(-1));  // floors below zero too
}

// --- AggregateState -------------------------------------------------------

TEST(AggregateState, FinalizeOfKnownRows) {
  AggregateState state;
  for (Aggregation aggregation : kAllAggregations) {
    const FeatureValue value = Finalize(aggregation, state);
    EXPECT_EQ(aggregation == Aggregation::kCount, value.valid);
    EXPECT_EQ(0.0, value.value);
  }
  state.Add(kBase + 2, 0, 4.0);
  state.Add(kBase + 1, 1, -0.0);
  state.Add(kBase + 2, 2, 0.0);
  state.Add(kBase + 1, 3, 8.0);
  EXPECT_TRUE(SameFeatureValue({4.0, true}, Finalize(Aggregation::kCount, state)));
  EXPECT_TRUE(SameFeatureValue({12.0, true}, Finalize(Aggregation::kSum, state)));
  EXPECT_TRUE(SameFeatureValue({3.0, true}, Finalize(Aggregation::kMean, state)));
  EXPECT_TRUE(SameFeatureValue({-0.0, true}, Finalize(Aggregation::kMin, state)));
  EXPECT_TRUE(SameFeatureValue({8.0, true}, Finalize(Aggregation::kMax, state)));
  EXPECT_TRUE(SameFeatureValue({0.0, true}, Finalize(Aggregation::kLast, state)));  // (ts+2, #2)
  EXPECT_TRUE(
      SameFeatureValue({std::sqrt(44.0 / 3.0), true}, Finalize(Aggregation::kStddev, state)));
  // One value: stddev is null; constant values: exactly 0.
  AggregateState one;
  one.Add(kBase, 0, 0.1);
  EXPECT_FALSE(Finalize(Aggregation::kStddev, one).valid);
  one.Add(kBase, 1, 0.1);
  EXPECT_TRUE(SameFeatureValue({0.0, true}, Finalize(Aggregation::kStddev, one)));
}

TEST(AggregateState, OverflowingValuesGiveNulls) {
  AggregateState state;
  state.Add(kBase, 0, 1e200);  // its square overflows
  state.Add(kBase, 1, 1.0);
  EXPECT_TRUE(Finalize(Aggregation::kSum, state).valid);
  EXPECT_FALSE(Finalize(Aggregation::kStddev, state).valid);
  AggregateState huge;
  huge.Add(kBase, 0, DBL_MAX);
  huge.Add(kBase, 1, DBL_MAX);
  EXPECT_FALSE(Finalize(Aggregation::kSum, huge).valid);
  EXPECT_FALSE(Finalize(Aggregation::kMean, huge).valid);
  EXPECT_TRUE(SameFeatureValue({DBL_MAX, true}, Finalize(Aggregation::kMax, huge)));
}

TEST(AggregateState, MergeInAnyGroupingGivesTheSameState) {
  std::mt19937_64 rng(21);
  for (int trial = 0; trial < 500; ++trial) {
    const Series series = RandomSeries(rng, kBase);
    AggregateState whole;
    std::vector<AggregateState> parts(1 + rng() % 5);
    for (size_t row = 0; row < series.size(); ++row) {
      if (!series.valid[row]) continue;
      whole.Add(series.ts[row], row, series.values[row]);
      parts[rng() % parts.size()].Add(series.ts[row], row, series.values[row]);
    }
    std::shuffle(parts.begin(), parts.end(), rng);
    AggregateState merged;
    for (const AggregateState& part : parts) merged.Merge(part);
    ASSERT_TRUE(merged == whole);
    for (Aggregation aggregation : kAllAggregations) {
      ASSERT_TRUE(SameFeatureValue(Finalize(aggregation, whole), Finalize(aggregation, merged)));
    }
  }
}

// --- SlidingWindow ----------------------------------------------------------

TEST(SlidingWindow, HopBoundariesByHand) {
  const Duration minute = kMicrosPerMinute;
  const Series series{{kBase, kBase + 5 * minute, kBase + 10 * minute}, {1.0, 2.0, 4.0}, {1, 1, 1}};
  SlidingWindow window({10 * minute, 5 * minute});
  window.Reset(series.View());
  window.AdvanceTo(kBase);  // nothing strictly before the first row
  EXPECT_TRUE(SameFeatureValue({0.0, true}, window.Read(Aggregation::kCount)));
  EXPECT_FALSE(window.Read(Aggregation::kSum).valid);
  window.AdvanceTo(kBase + 10 * minute);  // [base, base + 10m): the row at +10m is excluded
  EXPECT_TRUE(SameFeatureValue({3.0, true}, window.Read(Aggregation::kSum)));
  window.AdvanceTo(kBase + 15 * minute - 1);  // tail still at base: all three
  EXPECT_TRUE(SameFeatureValue({7.0, true}, window.Read(Aggregation::kSum)));
  EXPECT_EQ(3u, window.WindowRows());
  window.AdvanceTo(kBase + 15 * minute);  // tail hops to base + 5m
  EXPECT_TRUE(SameFeatureValue({6.0, true}, window.Read(Aggregation::kSum)));
  EXPECT_TRUE(SameFeatureValue({2.0, true}, window.Read(Aggregation::kMin)));
  window.AdvanceTo(kBase + 25 * minute);  // tail at base + 15m: empty
  EXPECT_TRUE(SameFeatureValue({0.0, true}, window.Read(Aggregation::kCount)));
  EXPECT_FALSE(window.Read(Aggregation::kLast).valid);
  EXPECT_FALSE(window.Read(Aggregation::kMin).valid);
}

TEST(SlidingWindow, MatchesRowByRowReference) {
  std::mt19937_64 rng(22);
  int64_t checks = 0;
  for (int trial = 0; trial < 150; ++trial) {
    const Timestamp base = trial % 10 == 9 ? -kBase / 1000 : kBase;  // some before 1970
    const Series series = RandomSeries(rng, base);
    for (const WindowSpec& spec : TestWindows()) {
      SlidingWindow window(spec);
      window.Reset(series.View());
      for (Timestamp t : QueryTimes(rng, series, spec, base, 60)) {
        window.AdvanceTo(t);
        const Expected expected = ReferenceWindow(series, spec, t);
        ASSERT_EQ(expected.rows, window.WindowRows()) << Describe(spec, t, Aggregation::kCount);
        for (size_t index = 0; index < std::size(kAllAggregations); ++index) {
          const Aggregation aggregation = kAllAggregations[index];
          const FeatureValue actual = window.Read(aggregation);
          ASSERT_TRUE(SameFeatureValue(expected.values[index], actual))
              << Describe(spec, t, aggregation) << ", trial " << trial;
          ++checks;
        }
        const FeatureValue stddev = window.Read(Aggregation::kStddev);
        if (stddev.valid) {  // accuracy against a two-pass long double computation
          ASSERT_NEAR(expected.stddev_long_double, stddev.value,
                      1e-14 * expected.magnitude + 1e-12 * expected.stddev_long_double);
        }
      }
    }
  }
  EXPECT_GT(checks, 100000);
}

// A kernel that keeps only what one aggregation needs reads exactly what a
// kernel that keeps everything reads.
TEST(SlidingWindow, MaskedKernelsReadLikeFullOnes) {
  std::mt19937_64 rng(23);
  int64_t checks = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const Series series = RandomSeries(rng, kBase);
    for (const WindowSpec& spec : TestWindows()) {
      for (Aggregation aggregation : kAllAggregations) {
        SlidingWindow full(spec);
        SlidingWindow masked(spec, SlidingWindow::NeedsOf(aggregation));
        full.Reset(series.View());
        masked.Reset(series.View());
        for (Timestamp t : QueryTimes(rng, series, spec, kBase, 30)) {
          full.AdvanceTo(t);
          masked.AdvanceTo(t);
          ASSERT_TRUE(SameFeatureValue(full.Read(aggregation), masked.Read(aggregation)))
              << Describe(spec, t, aggregation) << ", trial " << trial;
          ++checks;
        }
      }
    }
  }
  EXPECT_GT(checks, 10000);
}

TEST(SlidingWindow, IgnoresRowsAtOrAfterTheQueryTime) {
  std::mt19937_64 rng(23);
  for (int trial = 0; trial < 200; ++trial) {
    const Series series = RandomSeries(rng, kBase);
    const std::vector<WindowSpec> windows = TestWindows();
    const WindowSpec spec = windows[rng() % windows.size()];
    const std::vector<Timestamp> times = QueryTimes(rng, series, spec, kBase, 30);
    for (size_t query = 0; query < times.size(); query += 1 + rng() % 5) {
      const Timestamp t = times[query];
      Series mutated = series;  // the future changes completely
      for (size_t row = 0; row < mutated.size(); ++row) {
        if (mutated.ts[row] < t) continue;
        mutated.values[row] = static_cast<double>(rng() % 1000) - 1e6;
        mutated.valid[row] = rng() % 2;
      }
      SlidingWindow original(spec), changed(spec);
      original.Reset(series.View());
      changed.Reset(mutated.View());
      for (size_t earlier = 0; earlier <= query; ++earlier) {
        original.AdvanceTo(times[earlier]);
        changed.AdvanceTo(times[earlier]);
      }
      for (Aggregation aggregation : kAllAggregations) {
        ASSERT_TRUE(SameFeatureValue(original.Read(aggregation), changed.Read(aggregation)))
            << Describe(spec, t, aggregation);
      }
    }
  }
}

TEST(SlidingWindow, ResetDoesNotAllocateOnceWarm) {
  std::mt19937_64 rng(24);
  Series big;
  for (int row = 0; row < 5000; ++row) {
    big.ts.push_back(kBase + row * kMicrosPerMinute);
    // Long rising and falling runs fill both deques.
    big.values.push_back(static_cast<double>(row % 400 < 200 ? row % 200 : 200 - row % 200));
    big.valid.push_back(1);
  }
  const Series small = RandomSeries(rng, kBase);
  SlidingWindow window({kMicrosPerDay, kMicrosPerHour});
  int64_t allocations_when_warm = 0;
  for (int round = 0; round < 4; ++round) {
    if (round == 1) allocations_when_warm = g_allocations.load();
    for (const Series* series : {&small, static_cast<const Series*>(&big)}) {
      window.Reset(series->View());
      for (size_t row = 0; row < series->size(); ++row) {
        window.AdvanceTo(series->ts[row]);
        for (Aggregation aggregation : kAllAggregations) (void)window.Read(aggregation);
      }
    }
  }
  EXPECT_EQ(allocations_when_warm, g_allocations.load());
}

TEST(SlidingWindow, NullValidityMeansAllValid) {
  const Series series{{kBase, kBase + 1, kBase + 2}, {3.0, 1.0, 2.0}, {1, 1, 1}};
  EventSeries view = series.View();
  view.valid = nullptr;
  SlidingWindow window({kMicrosPerHour, kMicrosPerMinute});
  window.Reset(view);
  window.AdvanceTo(kBase + kMicrosPerMinute);
  EXPECT_TRUE(SameFeatureValue({3.0, true}, window.Read(Aggregation::kCount)));
  EXPECT_TRUE(SameFeatureValue({2.0, true}, window.Read(Aggregation::kLast)));
  EXPECT_TRUE(SameFeatureValue({1.0, true}, window.Read(Aggregation::kMin)));
}

// --- WindowBounds and IntegerPrefixSums --------------------------------------

constexpr Aggregation kPrefixAggregations[] = {Aggregation::kCount, Aggregation::kSum,
                                               Aggregation::kMean, Aggregation::kStddev};

// Whether IntegerPrefixSums takes `series` for sums: every valid value an
// integer within kMaxValue.
bool PrefixEligible(const Series& series) {
  for (size_t row = 0; row < series.size(); ++row) {
    const double x = series.values[row];
    if (series.valid[row] &&
        !(std::fabs(x) <= IntegerPrefixSums::kMaxValue && x == std::trunc(x))) {
      return false;
    }
  }
  return true;
}

// Random series whose values mostly suit the prefix sums: small and large
// (up to 2^31) integers, signed zeros, and now and then a fraction or a value
// beyond the limit (then Reset must refuse), with ties, nulls, empty and late
// series from RandomSeries.
Series RandomIntegerSeries(std::mt19937_64& rng, Timestamp base) {
  Series series = RandomSeries(rng, base);
  const uint64_t kind = rng() % 5;
  for (size_t row = 0; row < series.size(); ++row) {
    double& x = series.values[row];
    if (kind == 0) x = static_cast<double>(static_cast<int>(rng() % 41) - 20);
    if (kind == 1) x = rng() % 2 == 0 ? 0x1p31 : -0x1p31 + static_cast<double>(rng() % 5);
    if (kind == 2) x = rng() % 3 == 0 ? -0.0 : static_cast<double>(rng() % 2);
    if (kind == 3) x = static_cast<double>(static_cast<int64_t>(rng() % 2001) - 1000);
    if (kind == 4 && rng() % 50 == 0) x = rng() % 2 == 0 ? 0.5 : 0x1p31 + 1;
  }
  return series;
}

// Several windows in one pass (shared head, one tail per window, prefix sums
// shared by every window) read bit for bit what one SlidingWindow per window
// reads, for every aggregation the prefix sums cover and any subset of needs.
TEST(IntegerPrefixSums, SharedPassEqualsEachWindowComputedAlone) {
  std::mt19937_64 rng(51);
  const std::vector<WindowSpec> windows = TestWindows();
  int64_t checks = 0, refused = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const Timestamp base = trial % 10 == 9 ? -kBase / 1000 : kBase;  // some before 1970
    const Series series = RandomIntegerSeries(rng, base);
    EventSeries view = series.View();
    if (trial % 7 == 3) view.valid = nullptr;  // all valid
    const uint32_t needs_choices[] = {0, SlidingWindow::kNeedSum,
                                      SlidingWindow::kNeedSum | SlidingWindow::kNeedSquares};
    const uint32_t needs = needs_choices[rng() % 3];
    IntegerPrefixSums prefix;
    const bool accepted = prefix.Reset(view, needs);
    Series all_valid = series;
    std::fill(all_valid.valid.begin(), all_valid.valid.end(), 1);
    const bool eligible = needs == 0 || PrefixEligible(view.valid == nullptr ? all_valid : series);
    ASSERT_EQ(eligible, accepted) << "trial " << trial;
    if (!accepted) {
      ++refused;
      continue;
    }
    WindowBounds bounds(windows);
    bounds.Reset(series.ts.data(), series.size());
    std::vector<SlidingWindow> alone;
    for (const WindowSpec& spec : windows) {
      alone.emplace_back(spec);
      alone.back().Reset(view);
    }
    // Query times of all the windows' kinds, merged in ascending order.
    std::vector<Timestamp> times;
    for (const WindowSpec& spec : windows) {
      for (Timestamp t : QueryTimes(rng, series, spec, base, 8)) times.push_back(t);
    }
    std::sort(times.begin(), times.end());
    for (Timestamp t : times) {
      bounds.AdvanceTo(t);
      for (size_t k = 0; k < windows.size(); ++k) {
        alone[k].AdvanceTo(t);
        ASSERT_LE(bounds.Tail(k), bounds.Head());
        ASSERT_EQ(alone[k].WindowRows(), bounds.Head() - bounds.Tail(k))
            << Describe(windows[k], t, Aggregation::kCount);
        for (Aggregation aggregation : kPrefixAggregations) {
          if ((SlidingWindow::NeedsOf(aggregation) & ~needs) != 0) continue;
          ASSERT_TRUE(SameFeatureValue(alone[k].Read(aggregation),
                                       prefix.Read(aggregation, bounds.Tail(k), bounds.Head())))
              << Describe(windows[k], t, aggregation) << ", trial " << trial;
          ++checks;
        }
      }
    }
  }
  EXPECT_GT(checks, 50000);
  EXPECT_GT(refused, 5);
}

// Against the row-by-row reference directly, on values near the limit: sums
// beyond 2^53 (rounded once, to nearest even) and squares near 2^62.
TEST(IntegerPrefixSums, MatchesRowByRowReferenceNearTheLimit) {
  std::mt19937_64 rng(52);
  int64_t checks = 0;
  for (int trial = 0; trial < 60; ++trial) {
    Series series;
    const size_t size = 1 + rng() % 3000;
    Timestamp now = kBase;
    for (size_t row = 0; row < size; ++row) {
      now += static_cast<Timestamp>(rng() % 3) * kMicrosPerMinute;
      series.ts.push_back(now);
      const double magnitude = 0x1p31 - static_cast<double>(rng() % 3);
      series.values.push_back(rng() % 4 == 0 ? -magnitude : magnitude);
      series.valid.push_back(rng() % 10 != 0);
    }
    IntegerPrefixSums prefix;
    ASSERT_TRUE(prefix.Reset(series.View(), SlidingWindow::kNeedSum | SlidingWindow::kNeedSquares));
    const WindowSpec spec{kMicrosPerDay, kMicrosPerHour};
    WindowBounds bounds({spec});
    bounds.Reset(series.ts.data(), series.size());
    for (Timestamp t : QueryTimes(rng, series, spec, kBase, 20)) {
      bounds.AdvanceTo(t);
      const Expected expected = ReferenceWindow(series, spec, t);
      ASSERT_EQ(expected.rows, bounds.Head() - bounds.Tail(0));
      const size_t indexes[] = {0, 1, 2, 6};  // count, sum, mean, stddev in kAllAggregations
      for (size_t index : indexes) {
        const Aggregation aggregation = kAllAggregations[index];
        ASSERT_TRUE(SameFeatureValue(expected.values[index],
                                     prefix.Read(aggregation, bounds.Tail(0), bounds.Head())))
            << Describe(spec, t, aggregation) << ", trial " << trial;
        ++checks;
      }
    }
  }
  EXPECT_GT(checks, 1000);
}

TEST(IntegerPrefixSums, RefusesWhatItCannotSumExactly) {
  const std::vector<Timestamp> ts = {kBase, kBase + 1, kBase + 2};
  const auto accepts = [&](std::vector<double> values, std::vector<uint8_t> valid, uint32_t needs) {
    IntegerPrefixSums prefix;
    return prefix.Reset({ts.data(), values.data(), valid.data(), ts.size()}, needs);
  };
  const uint32_t sum = SlidingWindow::kNeedSum;
  EXPECT_TRUE(accepts({0x1p31, -0x1p31, -0.0}, {1, 1, 1}, sum));
  EXPECT_FALSE(accepts({0x1p31 + 1, 0, 0}, {1, 1, 1}, sum));
  EXPECT_FALSE(accepts({1, 0.5, 0}, {1, 1, 1}, sum));
  EXPECT_TRUE(accepts({1, 0.5, 1e300}, {1, 0, 0}, sum));  // nulls are never read
  EXPECT_TRUE(accepts({1, 0.5, 1e300}, {1, 1, 1}, 0));    // a count reads no value
  EXPECT_FALSE(IntegerPrefixSums::Covers(SlidingWindow::kNeedMin));
  EXPECT_FALSE(IntegerPrefixSums::Covers(SlidingWindow::kNeedLast | SlidingWindow::kNeedSum));
  EXPECT_TRUE(IntegerPrefixSums::Covers(SlidingWindow::kNeedSum | SlidingWindow::kNeedSquares));
  // A count without validity needs no values at all.
  IntegerPrefixSums rows;
  ASSERT_TRUE(rows.Reset({ts.data(), nullptr, nullptr, ts.size()}, 0));
  EXPECT_TRUE(SameFeatureValue({2.0, true}, rows.Read(Aggregation::kCount, 1, 3)));
}

TEST(IntegerPrefixSums, ResetDoesNotAllocateOnceWarm) {
  std::mt19937_64 rng(53);
  Series big;
  for (int row = 0; row < 5000; ++row) {
    big.ts.push_back(kBase + row * kMicrosPerMinute);
    big.values.push_back(static_cast<double>(row % 7));
    big.valid.push_back(row % 5 != 0);
  }
  const Series small = RandomSeries(rng, kBase);
  IntegerPrefixSums prefix;
  WindowBounds bounds({{kMicrosPerHour, kMicrosPerMinute}, {kMicrosPerDay, kMicrosPerHour}});
  int64_t allocations_when_warm = 0;
  for (int round = 0; round < 4; ++round) {
    if (round == 1) allocations_when_warm = g_allocations.load();
    for (const Series* series : {&small, static_cast<const Series*>(&big)}) {
      (void)prefix.Reset(series->View(), SlidingWindow::kNeedSum | SlidingWindow::kNeedSquares);
      bounds.Reset(series->ts.data(), series->size());
      for (size_t row = 0; row < series->size(); ++row) bounds.AdvanceTo(series->ts[row]);
    }
  }
  EXPECT_EQ(allocations_when_warm, g_allocations.load());
}

// --- BucketedSeries: online/offline parity -----------------------------------

enum class Feeding { kInOrder, kShuffledBatches };

struct ParityOptions {
  Feeding feeding = Feeding::kInOrder;
  bool round_trip_encoding = false;
  bool evict = false;
  size_t queries = 60;
};

void CheckParity(std::mt19937_64& rng, const ParityOptions& options, int trials) {
  for (int trial = 0; trial < trials; ++trial) {
    const Series series = RandomSeries(rng, kBase);
    for (const WindowSpec& spec : TestWindows()) {
      BucketedSeries online(spec.hop);
      SlidingWindow offline(spec);
      offline.Reset(series.View());
      size_t next_row = 0;
      std::vector<size_t> batch;
      for (Timestamp t : QueryTimes(rng, series, spec, kBase, options.queries)) {
        batch.clear();
        while (next_row < series.size() && series.ts[next_row] < t) batch.push_back(next_row++);
        if (options.feeding == Feeding::kShuffledBatches) {
          std::shuffle(batch.begin(), batch.end(), rng);
        }
        for (size_t row : batch) {
          ASSERT_TRUE(online.Add(series.ts[row], row, series.values[row], series.valid[row]));
        }
        if (options.round_trip_encoding && rng() % 4 == 0) {
          std::string bytes;
          online.AppendEncoded(&bytes);
          Result<BucketedSeries> decoded = BucketedSeries::Decode(bytes);
          ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
          std::string again;
          decoded->AppendEncoded(&again);
          ASSERT_EQ(bytes, again);
          online = std::move(decoded).value();
        }
        offline.AdvanceTo(t);
        const AggregateState state = online.Read(spec.length, t);
        for (Aggregation aggregation : kAllAggregations) {
          ASSERT_TRUE(SameFeatureValue(offline.Read(aggregation), Finalize(aggregation, state)))
              << Describe(spec, t, aggregation) << ", trial " << trial;
        }
        if (options.round_trip_encoding) {
          // The online read path reads straight from the encoding.
          std::string bytes;
          online.AppendEncoded(&bytes);
          AggregateState direct;
          direct.sum.Add(3.0);  // stale contents are overwritten
          Status read = BucketedSeries::ReadEncoded(bytes, spec.length, t, &direct);
          ASSERT_TRUE(read.ok()) << read.ToString();
          for (Aggregation aggregation : kAllAggregations) {
            ASSERT_TRUE(
                SameFeatureValue(Finalize(aggregation, state), Finalize(aggregation, direct)))
                << Describe(spec, t, aggregation) << ", encoded, trial " << trial;
          }
        }
        if (options.evict) {
          // Later reads start at or after Start(t): older buckets are dead.
          const Timestamp horizon = spec.Start(t);
          online.EvictBefore(horizon);
          const size_t buckets = online.num_buckets();
          EXPECT_FALSE(online.Add(horizon - 1, 0, 1.0, true));
          EXPECT_FALSE(online.Add(horizon - 1, 0, 1.0, false));
          EXPECT_EQ(buckets, online.num_buckets());
        }
      }
    }
  }
}

TEST(BucketedSeries, MatchesSlidingWindowBitForBit) {
  std::mt19937_64 rng(31);
  CheckParity(rng, {}, 120);
}

TEST(BucketedSeries, LateEventsInAnyOrderGiveTheSameValues) {
  std::mt19937_64 rng(32);
  CheckParity(rng, {Feeding::kShuffledBatches, false, false, 60}, 80);
  CheckParity(rng, {Feeding::kShuffledBatches, false, false, 4}, 80);  // long batches
}

TEST(BucketedSeries, EncodingMidStreamChangesNothing) {
  std::mt19937_64 rng(33);
  CheckParity(rng, {Feeding::kShuffledBatches, true, false, 30}, 60);
}

TEST(BucketedSeries, EvictionKeepsWhatLaterReadsNeed) {
  std::mt19937_64 rng(34);
  CheckParity(rng, {Feeding::kShuffledBatches, true, true, 30}, 60);
}

TEST(BucketedSeries, NullRowsAddNoBucket) {
  BucketedSeries series(kMicrosPerMinute);
  EXPECT_TRUE(series.Add(kBase, 0, 5.0, false));
  EXPECT_EQ(0u, series.num_buckets());
  EXPECT_TRUE(series.Add(kBase + 1, 1, 5.0, true));
  EXPECT_TRUE(series.Add(kBase + kMicrosPerMinute, 2, 6.0, true));
  EXPECT_EQ(2u, series.num_buckets());
  series.EvictBefore(kBase + kMicrosPerMinute);  // the first bucket ends exactly there
  EXPECT_EQ(1u, series.num_buckets());
  EXPECT_FALSE(series.Add(kBase + kMicrosPerMinute - 1, 3, 1.0, true));
  EXPECT_TRUE(series.Add(kBase + kMicrosPerMinute, 3, 1.0, true));
  const AggregateState state = series.Read(kMicrosPerHour, kBase + kMicrosPerHour);
  EXPECT_EQ(2, state.count);
}

TEST(BucketedSeries, ApplyEncodedEqualsDecodeAddEvictEncode) {
  std::mt19937_64 rng(37);
  for (int trial = 0; trial < 300; ++trial) {
    const Duration hop = (trial % 3 == 0 ? 1 : 5) * kMicrosPerMinute;
    const Series rows = RandomSeries(rng, kBase);
    BucketedSeries series(hop);
    size_t split = rows.size() == 0 ? 0 : rng() % (rows.size() + 1);
    for (size_t row = 0; row < split; ++row) {
      series.Add(rows.ts[row], row, rows.values[row], rows.valid[row]);
    }
    if (rng() % 2 == 0 && split > 0) series.EvictBefore(rows.ts[split / 2]);
    std::string bytes;
    series.AppendEncoded(&bytes);
    // A batch: the remaining rows, plus some old ones (late), in random order.
    std::vector<BucketedSeries::Row> batch;
    for (size_t row = split; row < rows.size(); ++row) {
      batch.push_back({rows.ts[row], row, rows.values[row], rows.valid[row] != 0});
    }
    for (size_t row = 0; row < split && row < 5; ++row) {
      batch.push_back({rows.ts[row], 1000 + row, rows.values[row], true});
    }
    std::shuffle(batch.begin(), batch.end(), rng);
    Timestamp evict = kMinTimestamp;
    if (rows.size() > 0 && rng() % 3 != 0) {
      evict = rows.ts[rng() % rows.size()] + static_cast<Timestamp>(rng() % hop);
    }
    BucketedSeries expected = BucketedSeries::Decode(bytes).value();
    for (const BucketedSeries::Row& row : batch) {
      expected.Add(row.ts, row.arrival, row.value, row.valid);
    }
    if (evict != kMinTimestamp) expected.EvictBefore(evict);
    std::string expected_bytes;
    expected.AppendEncoded(&expected_bytes);
    std::string actual;
    Status applied = BucketedSeries::ApplyEncoded(bytes, batch, evict, &actual);
    ASSERT_TRUE(applied.ok()) << applied.ToString();
    ASSERT_EQ(actual, expected_bytes) << "trial " << trial;
    EXPECT_EQ(BucketedSeries::EncodedHorizon(bytes).value(),
              BucketedSeries::Decode(bytes).value().horizon());
  }
  std::string out;
  EXPECT_FALSE(BucketedSeries::ApplyEncoded("garbage", {}, kMinTimestamp, &out).ok());
}

TEST(BucketedSeries, ReadEncodedWindowsEqualsOneReadPerWindow) {
  std::mt19937_64 rng(36);
  const Duration hop = 5 * kMicrosPerMinute;
  const std::vector<Duration> lengths = {6 * kMicrosPerHour, 2 * kMicrosPerHour,
                                         kMicrosPerHour + 7 * kMicrosPerMinute, hop};
  for (int trial = 0; trial < 40; ++trial) {
    const Series rows = RandomSeries(rng, kBase);
    BucketedSeries series(hop);
    for (size_t row = 0; row < rows.size(); ++row) {
      series.Add(rows.ts[row], row, rows.values[row], rows.valid[row]);
    }
    std::string bytes;
    series.AppendEncoded(&bytes);
    const Timestamp last = rows.size() == 0 ? kBase : rows.ts[rows.size() - 1];
    for (int query = 0; query < 20; ++query) {
      const Timestamp t = last + 1 + static_cast<Timestamp>(rng() % (8 * kMicrosPerHour));
      std::vector<AggregateState> states(lengths.size());
      states[2].sum.Add(1.0);  // stale contents are overwritten
      ASSERT_TRUE(BucketedSeries::ReadEncodedWindows(bytes, lengths, t, states).ok());
      for (size_t k = 0; k < lengths.size(); ++k) {
        const AggregateState expected = series.Read(lengths[k], t);
        for (Aggregation aggregation : kAllAggregations) {
          ASSERT_TRUE(
              SameFeatureValue(Finalize(aggregation, expected), Finalize(aggregation, states[k])))
              << "window " << k << ", trial " << trial;
        }
      }
    }
  }
  std::vector<AggregateState> none;
  EXPECT_FALSE(BucketedSeries::ReadEncodedWindows("", {}, kBase, none).ok());
}

// Reading only what the aggregations need gives their values bit for bit;
// the fields not asked for read as in a fresh state, even in reused states.
TEST(BucketedSeries, ReadEncodedWindowsWithNeedsEqualsTheFullRead) {
  std::mt19937_64 rng(37);
  const Duration hop = 5 * kMicrosPerMinute;
  const std::vector<Duration> lengths = {3 * kMicrosPerHour, kMicrosPerHour, hop};
  for (int trial = 0; trial < 30; ++trial) {
    const Series rows = RandomSeries(rng, kBase);
    BucketedSeries series(hop);
    for (size_t row = 0; row < rows.size(); ++row) {
      series.Add(rows.ts[row], row, rows.values[row], rows.valid[row]);
    }
    std::string bytes;
    series.AppendEncoded(&bytes);
    const Timestamp last = rows.size() == 0 ? kBase : rows.ts[rows.size() - 1];
    const Timestamp t = last + 1 + static_cast<Timestamp>(rng() % (4 * kMicrosPerHour));
    std::vector<AggregateState> full(lengths.size());
    ASSERT_TRUE(BucketedSeries::ReadEncodedWindows(bytes, lengths, t, full).ok());
    for (Aggregation aggregation : kAllAggregations) {
      const uint32_t needs = SlidingWindow::NeedsOf(aggregation);
      std::vector<AggregateState> partial(lengths.size());
      partial[1].sum.Add(3.0);  // stale contents are overwritten
      partial[1].sum_squares.Add(9.0);
      partial[1].min = -7.0;
      ASSERT_TRUE(BucketedSeries::ReadEncodedWindows(bytes, lengths, t, partial, needs).ok());
      for (size_t k = 0; k < lengths.size(); ++k) {
        ASSERT_TRUE(
            SameFeatureValue(Finalize(aggregation, full[k]), Finalize(aggregation, partial[k])))
            << AggregationName(aggregation) << ", window " << k << ", trial " << trial;
        EXPECT_EQ(partial[k].count, full[k].count);
        if ((needs & SlidingWindow::kNeedSquares) == 0) {
          EXPECT_TRUE(partial[k].sum_squares == ExactSum());
        }
        if ((needs &
             (SlidingWindow::kNeedMin | SlidingWindow::kNeedMax | SlidingWindow::kNeedLast)) == 0) {
          EXPECT_EQ(partial[k].min, 0.0);
        }
      }
    }
  }
}

TEST(BucketedSeries, DecodeRejectsMalformedBytes) {
  std::mt19937_64 rng(35);
  BucketedSeries series(5 * kMicrosPerMinute);
  const Series rows = RandomSeries(rng, kBase);
  for (size_t row = 0; row < rows.size(); ++row) {
    ASSERT_TRUE(series.Add(rows.ts[row], row, rows.values[row], true));
  }
  series.Add(kBase, 0, 1e-300, true);
  std::string valid;
  series.AppendEncoded(&valid);
  ASSERT_TRUE(BucketedSeries::Decode(valid).ok());
  for (size_t length = 0; length < valid.size(); ++length) {
    Result<BucketedSeries> truncated = BucketedSeries::Decode(valid.substr(0, length));
    ASSERT_FALSE(truncated.ok()) << length;
    EXPECT_EQ(StatusCode::kInvalidArgument, truncated.status().code());
    AggregateState ignored;
    EXPECT_FALSE(BucketedSeries::ReadEncoded(valid.substr(0, length), kMicrosPerDay,
                                             kBase + kMicrosPerDay, &ignored)
                     .ok())
        << length;
  }
  EXPECT_FALSE(BucketedSeries::Decode(valid + '\0').ok());
  int rejected = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    std::string bytes;
    if (trial % 3 == 0) {
      bytes.resize(rng() % 200);
      for (char& byte : bytes) byte = static_cast<char>(rng());
      if (!bytes.empty()) bytes[0] = 1;  // the right version
    } else {
      bytes = valid;
      for (uint64_t flips = 1 + rng() % 3; flips > 0; --flips) {
        bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
      }
    }
    // Reading straight from corrupt bytes never crashes (ASan/UBSan run this).
    AggregateState direct;
    if (BucketedSeries::ReadEncoded(bytes, kMicrosPerDay, kBase + kMicrosPerDay, &direct).ok()) {
      for (Aggregation aggregation : kAllAggregations) (void)Finalize(aggregation, direct);
    }
    Result<BucketedSeries> decoded = BucketedSeries::Decode(bytes);
    if (!decoded.ok()) {
      ++rejected;
      EXPECT_EQ(StatusCode::kInvalidArgument, decoded.status().code());
      continue;
    }
    std::string again;
    decoded->AppendEncoded(&again);
    EXPECT_EQ(bytes, again);  // whatever is accepted is canonical
    const AggregateState state = decoded->Read(kMicrosPerDay, kBase + kMicrosPerDay);
    for (Aggregation aggregation : kAllAggregations) (void)Finalize(aggregation, state);
  }
  EXPECT_GT(rejected, 10000);
}

// --- Timing -----------------------------------------------------------------

// CPU time of this thread: steadier than wall time on a shared machine.
double ThreadCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

// Prints the cost per event of a backfill-like sweep: every event is also a
// query time, and all 7 aggregations of 3 windows are read there. Asserts
// nothing about time. Unoptimised builds time a tenth of the events.
TEST(SlidingWindow, TimingThreeMillionEvents) {
#ifdef NDEBUG
  constexpr size_t kEntities = 1000;
#else
  constexpr size_t kEntities = 100;
#endif
  constexpr size_t kEventsPerEntity = 3000;
  std::mt19937_64 rng(41);
  std::vector<Timestamp> ts(kEntities * kEventsPerEntity);
  std::vector<double> doubles(ts.size());
  std::vector<double> integers(ts.size());
  std::exponential_distribution<double> gap(1.0 / (10 * kMicrosPerMinute));
  std::uniform_real_distribution<double> value(0.0, 1000.0);
  for (size_t entity = 0; entity < kEntities; ++entity) {
    Timestamp now = kBase;
    for (size_t event = 0; event < kEventsPerEntity; ++event) {
      now += static_cast<Timestamp>(gap(rng));
      ts[entity * kEventsPerEntity + event] = now;
      doubles[entity * kEventsPerEntity + event] = value(rng);
      integers[entity * kEventsPerEntity + event] = std::floor(value(rng));
    }
  }
  const WindowSpec windows[] = {{kMicrosPerHour, DefaultHop(kMicrosPerHour)},
                                {kMicrosPerDay, DefaultHop(kMicrosPerDay)},
                                {30 * kMicrosPerDay, DefaultHop(30 * kMicrosPerDay)}};
  for (const auto& [label, values] : {std::pair{"random doubles in [0, 1000)", &doubles},
                                      std::pair{"integers in [0, 1000)", &integers}}) {
    double checksum = 0.0;
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = ThreadCpuSeconds();
    for (const WindowSpec& spec : windows) {
      SlidingWindow window(spec);
      for (size_t entity = 0; entity < kEntities; ++entity) {
        const size_t offset = entity * kEventsPerEntity;
        window.Reset({ts.data() + offset, values->data() + offset, nullptr, kEventsPerEntity});
        for (size_t event = 0; event < kEventsPerEntity; ++event) {
          window.AdvanceTo(ts[offset + event]);  // a query at each event's own time
          for (Aggregation aggregation : kAllAggregations) {
            checksum += window.Read(aggregation).value;
          }
        }
      }
    }
    const double cpu_seconds = ThreadCpuSeconds() - cpu_start;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double events = static_cast<double>(ts.size());
    std::printf(
        "SlidingWindow, %s: %zu events, 3 windows (1h, 1d, 30d), query per event, 7 "
        "aggregations: %.1f ns/event of CPU time (%.1f per event and window), %.1f wall; "
        "checksum %g\n",
        label, ts.size(), cpu_seconds * 1e9 / events, cpu_seconds * 1e9 / (events * 3),
        seconds * 1e9 / events, checksum);
    EXPECT_TRUE(std::isfinite(checksum));
  }
}

}  // namespace
}  // namespace keel::features
