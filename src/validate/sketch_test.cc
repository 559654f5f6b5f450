#include "validate/sketch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <new>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/hash.h"

// Counts every allocation of this test binary, so the steady-state Add paths
// can be shown not to allocate (this executable holds only the sketch tests).
namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// Not inlined: GCC would otherwise see free() applied to operator new's
// result at every call site and warn (-Wmismatched-new-delete).
__attribute__((noinline)) void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* pointer = std::malloc(size == 0 ? 1 : size)) return pointer;
  throw std::bad_alloc();
}
__attribute__((noinline)) void* operator new[](std::size_t size) { return ::operator new(size); }
__attribute__((noinline)) void operator delete(void* pointer) noexcept { std::free(pointer); }
__attribute__((noinline)) void operator delete[](void* pointer) noexcept { std::free(pointer); }
__attribute__((noinline)) void operator delete(void* pointer, std::size_t) noexcept {
  std::free(pointer);
}
__attribute__((noinline)) void operator delete[](void* pointer, std::size_t) noexcept {
  std::free(pointer);
}

namespace keel::validate {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// np.quantile(x, q) with the default method='linear', written from numpy's
// source (_compute_virtual_index, _get_indexes, _lerp) over a sorted copy.
double NumpyLinearQuantile(const std::vector<double>& sorted, double q) {
  const size_t n = sorted.size();
  const double virtual_index = static_cast<double>(n - 1) * q;
  if (virtual_index >= static_cast<double>(n - 1)) return sorted[n - 1];
  const double previous = std::floor(virtual_index);
  const double a = sorted[static_cast<size_t>(previous)];
  const double b = sorted[static_cast<size_t>(previous) + 1];
  const double t = virtual_index - previous;
  const double diff = b - a;
  return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}

double TrueRankAtMost(const std::vector<double>& sorted, double x) {
  return static_cast<double>(std::upper_bound(sorted.begin(), sorted.end(), x) - sorted.begin()) /
         static_cast<double>(sorted.size());
}

double TrueRankBelow(const std::vector<double>& sorted, double x) {
  return static_cast<double>(std::lower_bound(sorted.begin(), sorted.end(), x) - sorted.begin()) /
         static_cast<double>(sorted.size());
}

struct BoundCheck {
  double max_rank_error = 0.0;
  double max_quantile_error = 0.0;
};

// Checks Rank at 1001 data points and Quantile at 1001 levels against the
// sorted data; returns the largest errors seen (normalised ranks).
BoundCheck CheckWithinBound(const QuantileSketch& sketch, const std::vector<double>& sorted,
                            const std::string& label) {
  BoundCheck check;
  const double bound = sketch.RankError();
  EXPECT_EQ(sketch.count(), sorted.size()) << label;
  EXPECT_EQ(sketch.min(), sorted.front()) << label;
  EXPECT_EQ(sketch.max(), sorted.back()) << label;
  constexpr int kQueries = 1000;
  for (int query = 0; query <= kQueries; ++query) {
    const double x = sorted[(sorted.size() - 1) * query / kQueries];
    const double error = std::abs(sketch.Rank(x) - TrueRankAtMost(sorted, x));
    check.max_rank_error = std::max(check.max_rank_error, error);
    EXPECT_LE(error, bound) << label << " Rank(" << x << ")";
    const double q = static_cast<double>(query) / kQueries;
    const double y = sketch.Quantile(q);
    const double too_low = q - TrueRankAtMost(sorted, y);
    const double too_high = TrueRankBelow(sorted, y) - q;
    check.max_quantile_error = std::max({check.max_quantile_error, too_low, too_high});
    EXPECT_LE(too_low, bound) << label << " Quantile(" << q << ")";
    EXPECT_LE(too_high, bound) << label << " Quantile(" << q << ")";
  }
  return check;
}

std::vector<double> RandomValues(const std::string& distribution, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> values(n);
  if (distribution == "uniform") {
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    for (double& value : values) value = uniform(rng);
  } else if (distribution == "normal") {
    std::normal_distribution<double> normal(5.0, 2.0);
    for (double& value : values) value = normal(rng);
  } else if (distribution == "lognormal") {
    std::lognormal_distribution<double> lognormal(0.0, 2.0);
    for (double& value : values) value = lognormal(rng);
  } else if (distribution == "exponential") {
    std::exponential_distribution<double> exponential(0.1);
    for (double& value : values) value = -exponential(rng);
  } else {  // "ties": a few hundred distinct integers, many repeats
    std::binomial_distribution<int> binomial(600, 0.5);
    for (double& value : values) value = binomial(rng) - 300;
  }
  return values;
}

std::vector<double> Sorted(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values;
}

// ---------------------------------------------------------------------------
// QuantileSketch, exact mode

TEST(QuantileSketch, ExactQuantileMatchesNumpyLinear) {
  std::mt19937_64 rng(42);
  for (const size_t n : {1, 2, 3, 7, 100, 1001, 5000}) {
    for (int trial = 0; trial < 4; ++trial) {
      std::vector<double> values(n);
      std::uniform_int_distribution<int> small(-20, 20);
      std::normal_distribution<double> normal(-3.0, 10.0);
      for (double& value : values) value = trial % 2 == 0 ? small(rng) : normal(rng);  // ties
      QuantileSketch sketch;
      sketch.AddMany(values);
      ASSERT_TRUE(sketch.is_exact());
      EXPECT_EQ(sketch.RankError(), 0.0);
      const std::vector<double> sorted = Sorted(values);
      for (int step = 0; step <= 200; ++step) {
        const double q = step / 200.0;
        EXPECT_EQ(sketch.Quantile(q), NumpyLinearQuantile(sorted, q)) << "n=" << n << " q=" << q;
      }
      for (const double q : {1e-9, 0.123456789, 0.999999, 1.0 / 3.0}) {
        EXPECT_EQ(sketch.Quantile(q), NumpyLinearQuantile(sorted, q)) << "n=" << n << " q=" << q;
      }
      for (int probe = 0; probe < 50; ++probe) {
        const double x = normal(rng);
        EXPECT_EQ(sketch.Rank(x), TrueRankAtMost(sorted, x));
      }
    }
  }
}

TEST(QuantileSketch, ExactQuantileGoldenValuesFromNumpy) {
  // Printed by numpy 1.24: np.quantile(x, q) for each q.
  QuantileSketch sketch;
  for (const double value : {3.0, 1.0, 4.0, 2.0}) sketch.Add(value);
  EXPECT_EQ(sketch.Quantile(0.1), 1.3);
  EXPECT_EQ(sketch.Quantile(0.25), 1.75);
  EXPECT_EQ(sketch.Quantile(0.5), 2.5);
  EXPECT_EQ(sketch.Quantile(0.9), 3.7);
  EXPECT_EQ(sketch.Quantile(1.0), 4.0);
  QuantileSketch ties;
  for (const double value : {10.0, -5.0, 0.0, 0.0, 0.1}) ties.Add(value);
  EXPECT_EQ(ties.Quantile(0.3), 0.0);
  EXPECT_EQ(ties.Quantile(0.7), 0.07999999999999999);
  EXPECT_EQ(ties.Quantile(0.95), 8.019999999999998);
  EXPECT_EQ(ties.Quantile(0.05), -4.0);
  const std::vector<double> data = {
      -11.788, -11.482, 6.695,  -22.939, -1.434, -22.561, 11.01, 2.029,  13.563, -5.042, 3.982,
      -2.859,  -7.383,  1.453,  -12.572, -3.547, 6.966,   0.575, -4.103, 21.895, 0.582,  -5.868,
      1.596,   -5.228,  -3.851, -3.502,  20.253, 0.226,   1.756, 6.742,  20.169, -2.237, -6.239,
      24.746,  -14.596, -3.672, 6.669,   1.5,    1.5,     1.5,   1.5,    1.5};
  const std::vector<std::pair<double, double>> expected = {
      {0.0, -0x1.6f0624dd2f1aap+4},   {0.013, -0x1.6bcce8101f31fp+4}, {0.1, -0x1.783c9eecbfb16p+3},
      {0.25, -0x1.33a9fbe76c8b4p+2},  {0.333, -0x1.cb916872b020cp+1}, {0.5, 0x1.283126e978d50p-1},
      {0.5123, 0x1.2be6ced69248bp-1}, {0.75, 0x1.bf33333333334p+1},   {0.9, 0x1.a9d8adab9f558p+3},
      {0.987, 0x1.739f676ea4227p+4},  {1.0, 0x1.8bef9db22d0e5p+4}};
  QuantileSketch random;
  random.AddMany(data);
  for (const auto& [q, quantile] : expected) EXPECT_EQ(random.Quantile(q), quantile) << q;
  QuantileSketch single;
  single.Add(-7.5);
  EXPECT_EQ(single.Quantile(0.0), -7.5);
  EXPECT_EQ(single.Quantile(0.5), -7.5);
  EXPECT_EQ(single.Quantile(1.0), -7.5);
}

TEST(QuantileSketch, ExactSortedItemsAreDistinctValuesWithMultiplicities) {
  QuantileSketch sketch;
  for (const double value : {2.0, -1.0, 2.0, 5.0, -0.0, 0.0, 2.0}) sketch.Add(value);
  std::vector<double> values;
  std::vector<double> weights;
  sketch.SortedItems(&values, &weights);
  EXPECT_EQ(values, (std::vector<double>{-1.0, 0.0, 2.0, 5.0}));
  EXPECT_EQ(weights, (std::vector<double>{1.0, 2.0, 3.0, 1.0}));
  EXPECT_EQ(std::signbit(values[1]), false);  // -0.0 is stored as +0.0
  EXPECT_EQ(sketch.Rank(2.0), 6.0 / 7.0);
  EXPECT_EQ(sketch.Rank(-2.0), 0.0);
}

TEST(QuantileSketch, EmptyNanAndInfinity) {
  QuantileSketch sketch;
  EXPECT_TRUE(std::isnan(sketch.Quantile(0.5)));
  EXPECT_TRUE(std::isnan(sketch.min()));
  EXPECT_EQ(sketch.Rank(1.0), 0.0);
  sketch.Add(kNaN);
  const double with_nan[] = {1.0, kNaN, -kInf, 2.0};
  sketch.AddMany(with_nan);
  EXPECT_EQ(sketch.count(), 3u);  // NaN is not counted
  EXPECT_EQ(sketch.min(), -kInf);
  EXPECT_EQ(sketch.max(), 2.0);
  EXPECT_EQ(sketch.Quantile(0.0), -kInf);
  EXPECT_EQ(sketch.Quantile(0.75), 1.5);
  EXPECT_TRUE(std::isnan(sketch.Quantile(kNaN)));
  EXPECT_TRUE(std::isnan(sketch.Rank(kNaN)));
  EXPECT_EQ(sketch.Quantile(-3.0), -kInf);  // q is clamped
  EXPECT_EQ(sketch.Quantile(7.0), 2.0);
}

TEST(QuantileSketch, ExactMergeStaysExactAndEqualsSketchOfUnion) {
  const std::vector<double> first = RandomValues("ties", 30000, 1);
  const std::vector<double> second = RandomValues("normal", 30000, 2);
  QuantileSketch left;
  QuantileSketch right;
  QuantileSketch both;
  left.AddMany(first);
  right.AddMany(second);
  both.AddMany(first);
  both.AddMany(second);
  ASSERT_TRUE(left.Merge(right).ok());
  EXPECT_TRUE(left.is_exact());
  EXPECT_EQ(left.Encode(), both.Encode());
  // Over the limit the merge turns into KLL, still within the bound.
  QuantileSketch third;
  third.AddMany(RandomValues("uniform", 30000, 3));
  ASSERT_TRUE(left.Merge(third).ok());
  EXPECT_FALSE(left.is_exact());
  std::vector<double> all = first;
  all.insert(all.end(), second.begin(), second.end());
  const std::vector<double> extra = RandomValues("uniform", 30000, 3);
  all.insert(all.end(), extra.begin(), extra.end());
  CheckWithinBound(left, Sorted(all), "exact+exact over the limit");
}

TEST(QuantileSketch, MergeRejectsDifferentParameters) {
  QuantileSketch sketch(1000, 200);
  sketch.Add(1.0);
  EXPECT_EQ(sketch.Merge(QuantileSketch(1000, 100)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(sketch.Merge(QuantileSketch(999, 200)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(sketch.count(), 1u);
  ASSERT_TRUE(sketch.Merge(sketch).ok());  // self-merge doubles every value
  EXPECT_EQ(sketch.count(), 2u);
}

// ---------------------------------------------------------------------------
// QuantileSketch, KLL mode

TEST(QuantileSketch, KllRanksAndQuantilesWithinBoundOnMillionValues) {
  constexpr size_t kCount = 1000000;
  double worst_rank = 0.0;
  double worst_quantile = 0.0;
  for (const std::string distribution : {"uniform", "normal", "lognormal", "exponential", "ties"}) {
    const std::vector<double> values = RandomValues(distribution, kCount, 7);
    const std::vector<double> sorted = Sorted(values);
    std::vector<double> reversed(sorted.rbegin(), sorted.rend());
    // Short sorted runs (as from sorted batches) correlate a value with its place in
    // a sampler block: a biased sampler shows up here and nowhere else.
    std::vector<double> runs = values;
    for (size_t start = 0; start < runs.size(); start += 64) {
      std::sort(runs.begin() + start, runs.begin() + std::min(start + 64, runs.size()));
    }
    for (const auto& [order, input] : {std::pair{"random", &values},
                                       {"ascending", &sorted},
                                       {"descending", &reversed},
                                       {"sorted runs", &runs}}) {
      QuantileSketch sketch;
      sketch.AddMany(*input);
      ASSERT_FALSE(sketch.is_exact());
      EXPECT_EQ(sketch.RankError(), 3.0 / 200);
      const BoundCheck check = CheckWithinBound(sketch, sorted, distribution + "/" + order);
      worst_rank = std::max(worst_rank, check.max_rank_error);
      worst_quantile = std::max(worst_quantile, check.max_quantile_error);
      std::vector<double> items;
      std::vector<double> weights;
      sketch.SortedItems(&items, &weights);
      EXPECT_TRUE(std::adjacent_find(items.begin(), items.end(), std::greater_equal<>()) ==
                  items.end());
      double weight_sum = 0.0;
      for (const double weight : weights) weight_sum += weight;
      EXPECT_EQ(weight_sum, static_cast<double>(kCount));
      EXPECT_LT(items.size(), 1000u);  // about 3k retained
    }
  }
  std::printf("KLL k=200, 10^6 values: bound %.4f, largest rank error %.4f, quantile error %.4f\n",
              3.0 / 200, worst_rank, worst_quantile);
}

TEST(QuantileSketch, KllBoundHoldsForOtherSeedsAndK) {
  const std::vector<double> values = RandomValues("uniform", 300000, 8);
  const std::vector<double> sorted = Sorted(values);
  for (const uint32_t k : {50u, 100u, 400u}) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      QuantileSketch sketch(QuantileSketch::kDefaultExactLimit, k, seed);
      sketch.AddMany(values);
      EXPECT_EQ(sketch.RankError(), 3.0 / k);
      CheckWithinBound(sketch, sorted, "k=" + std::to_string(k) + " seed=" + std::to_string(seed));
    }
  }
}

TEST(QuantileSketch, SamplersAreUnbiasedOnAlternatingStream) {
  // Values alternate between two clusters, so a sampler that favours any
  // position in its block sees only one cluster. Rank(0) must stay near 1/2
  // both through Add and through merging one-value sketches (which offers
  // each value to the weighted sampler).
  constexpr size_t kCount = 200000;
  std::mt19937_64 rng(81);
  std::uniform_real_distribution<double> uniform(1.0, 2.0);
  std::vector<double> values(kCount);
  for (size_t index = 0; index < kCount; ++index) {
    values[index] = index % 2 == 0 ? -uniform(rng) : uniform(rng);
  }
  QuantileSketch added;
  added.AddMany(values);
  QuantileSketch merged(0);
  for (const double value : values) {
    QuantileSketch single(0);
    single.Add(value);
    ASSERT_TRUE(merged.Merge(single).ok());
  }
  for (const QuantileSketch* sketch : {&added, &merged}) {
    ASSERT_FALSE(sketch->is_exact());
    EXPECT_EQ(sketch->count(), kCount);
    EXPECT_LE(std::abs(sketch->Rank(0.0) - 0.5), sketch->RankError());
  }
  CheckWithinBound(merged, Sorted(values), "merged one-value sketches");
}

TEST(QuantileSketch, MergeOfTwoSketchesWithinBound) {
  const std::vector<double> first = RandomValues("lognormal", 700000, 11);
  const std::vector<double> second = RandomValues("normal", 500000, 12);
  QuantileSketch left;
  QuantileSketch right;
  QuantileSketch whole;
  left.AddMany(first);
  right.AddMany(second);
  whole.AddMany(first);
  whole.AddMany(second);
  ASSERT_TRUE(left.Merge(right).ok());
  std::vector<double> all = first;
  all.insert(all.end(), second.begin(), second.end());
  const std::vector<double> sorted = Sorted(all);
  CheckWithinBound(left, sorted, "merged");
  CheckWithinBound(whole, sorted, "whole");
  // Exact into KLL and KLL into exact.
  QuantileSketch small;
  small.AddMany(RandomValues("uniform", 1000, 13));
  QuantileSketch kll_then_exact = whole;
  ASSERT_TRUE(kll_then_exact.Merge(small).ok());
  QuantileSketch exact_then_kll = small;
  ASSERT_TRUE(exact_then_kll.Merge(whole).ok());
  const std::vector<double> extra = RandomValues("uniform", 1000, 13);
  all.insert(all.end(), extra.begin(), extra.end());
  const std::vector<double> sorted_all = Sorted(all);
  CheckWithinBound(kll_then_exact, sorted_all, "kll+exact");
  CheckWithinBound(exact_then_kll, sorted_all, "exact+kll");
}

TEST(QuantileSketch, MergeOfHundredPartitionsWithinBound) {
  const std::vector<double> values = RandomValues("normal", 1000000, 21);
  const std::vector<double> sorted = Sorted(values);
  // Partitions of 10^4 are exact sketches; with a limit of 1000 they are KLL
  // sketches themselves, merged as a balanced tree.
  for (const uint64_t exact_limit : {QuantileSketch::kDefaultExactLimit, uint64_t{1000}}) {
    std::vector<QuantileSketch> partitions;
    for (size_t part = 0; part < 100; ++part) {
      QuantileSketch sketch(exact_limit, 200, 100 + part);
      sketch.AddMany(std::span<const double>(values).subspan(part * 10000, 10000));
      partitions.push_back(std::move(sketch));
    }
    QuantileSketch sequential(exact_limit);
    for (const QuantileSketch& partition : partitions)
      ASSERT_TRUE(sequential.Merge(partition).ok());
    CheckWithinBound(sequential, sorted, "sequential, limit " + std::to_string(exact_limit));
    while (partitions.size() > 1) {
      std::vector<QuantileSketch> next;
      for (size_t index = 0; index + 1 < partitions.size(); index += 2) {
        ASSERT_TRUE(partitions[index].Merge(partitions[index + 1]).ok());
        next.push_back(std::move(partitions[index]));
      }
      if (partitions.size() % 2 == 1) next.push_back(std::move(partitions.back()));
      partitions = std::move(next);
    }
    CheckWithinBound(partitions[0], sorted, "tree, limit " + std::to_string(exact_limit));
  }
}

TEST(QuantileSketch, SameInputGivesIdenticalBytes) {
  std::vector<double> values = RandomValues("lognormal", 400000, 31);
  for (size_t index = 0; index < values.size(); index += 997) values[index] = kNaN;
  values[5] = -0.0;
  QuantileSketch bulk;
  QuantileSketch again;
  QuantileSketch one_by_one;
  bulk.AddMany(values);
  again.AddMany(std::span<const double>(values).first(123457));
  again.AddMany(std::span<const double>(values).subspan(123457));
  for (const double value : values) one_by_one.Add(value);
  const std::string bytes = bulk.Encode();
  EXPECT_EQ(bytes, again.Encode());
  EXPECT_EQ(bytes, one_by_one.Encode());
  QuantileSketch merged_into_empty;
  ASSERT_TRUE(merged_into_empty.Merge(bulk).ok());
  EXPECT_EQ(merged_into_empty.Encode(), bytes);
  // A decoded sketch continues exactly like the original.
  Result<QuantileSketch> decoded = QuantileSketch::Decode(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  const std::vector<double> more = RandomValues("uniform", 100000, 32);
  decoded->AddMany(more);
  bulk.AddMany(more);
  EXPECT_EQ(decoded->Encode(), bulk.Encode());
  // Another seed gives another (equally valid) sketch.
  QuantileSketch other_seed(QuantileSketch::kDefaultExactLimit, 200, 99);
  other_seed.AddMany(values);
  EXPECT_NE(other_seed.Encode(), bytes);
}

TEST(QuantileSketch, EncodeDecodeRoundTrip) {
  QuantileSketch empty;
  QuantileSketch exact;
  exact.AddMany(RandomValues("ties", 5000, 41));
  QuantileSketch kll(1000, 64, 5);
  kll.AddMany(RandomValues("normal", 77777, 42));  // leaves a partial sampler block
  for (const QuantileSketch* sketch : {&empty, &exact, &kll}) {
    const std::string bytes = sketch->Encode();
    Result<QuantileSketch> decoded = QuantileSketch::Decode(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->Encode(), bytes);
    EXPECT_EQ(decoded->count(), sketch->count());
    EXPECT_EQ(decoded->is_exact(), sketch->is_exact());
    for (const double q : {0.0, 0.1, 0.5, 0.99, 1.0}) {
      EXPECT_EQ(std::isnan(decoded->Quantile(q)), std::isnan(sketch->Quantile(q)));
      if (!std::isnan(sketch->Quantile(q))) {
        EXPECT_EQ(decoded->Quantile(q), sketch->Quantile(q));
      }
    }
  }
  EXPECT_LT(kll.Encode().size(), 3000u);
  // The seed travels with an exact sketch: after decoding, the conversion to
  // KLL makes the same choices as the original would.
  QuantileSketch seeded(1000, 200, 12345);
  seeded.AddMany(RandomValues("normal", 500, 43));
  Result<QuantileSketch> seeded_copy = QuantileSketch::Decode(seeded.Encode());
  ASSERT_TRUE(seeded_copy.ok());
  const std::vector<double> more = RandomValues("normal", 50000, 44);
  seeded.AddMany(more);
  seeded_copy->AddMany(more);
  EXPECT_EQ(seeded_copy->Encode(), seeded.Encode());
}

// Every strict prefix must be rejected; random corruptions must be rejected or
// decode to a sketch that works (under ASan this is the no-crash check).
template <typename Sketch, typename Exercise>
void FuzzDecode(const std::string& bytes, Exercise exercise) {
  ASSERT_TRUE(Sketch::Decode(bytes).ok());
  for (size_t length = 0; length < bytes.size(); ++length) {
    const Result<Sketch> decoded = Sketch::Decode(std::string_view(bytes).substr(0, length));
    ASSERT_FALSE(decoded.ok()) << "prefix of " << length << " bytes accepted";
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
  }
  std::mt19937_64 rng(bytes.size());
  for (int trial = 0; trial < 3000; ++trial) {
    std::string corrupt = bytes;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int flip = 0; flip < flips; ++flip) {
      corrupt[rng() % corrupt.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    if (trial % 10 == 0) corrupt += static_cast<char>(rng());
    Result<Sketch> decoded = Sketch::Decode(corrupt);
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
      continue;
    }
    EXPECT_EQ(decoded->Encode(), corrupt);  // whatever is accepted is canonical
    exercise(*decoded);
  }
  for (int trial = 0; trial < 300; ++trial) {
    std::string garbage(rng() % 64, '\0');
    for (char& byte : garbage) byte = static_cast<char>(rng());
    EXPECT_FALSE(Sketch::Decode(garbage).ok());
  }
}

TEST(QuantileSketch, DecodeRejectsTruncatedAndCorruptBytes) {
  auto exercise = [](QuantileSketch& sketch) {
    (void)sketch.Quantile(0.5);
    (void)sketch.Rank(0.0);
    std::vector<double> values;
    std::vector<double> weights;
    sketch.SortedItems(&values, &weights);
    sketch.AddMany(RandomValues("normal", 3000, 1));
    ASSERT_TRUE(sketch.Merge(QuantileSketch(sketch)).ok());
  };
  QuantileSketch exact(1000, 16);
  exact.AddMany(RandomValues("ties", 300, 51));
  FuzzDecode<QuantileSketch>(exact.Encode(), exercise);
  QuantileSketch kll(1000, 16);
  kll.AddMany(RandomValues("normal", 100003, 52));
  FuzzDecode<QuantileSketch>(kll.Encode(), exercise);
  FuzzDecode<QuantileSketch>(QuantileSketch().Encode(), exercise);
}

TEST(QuantileSketch, AddManySpeed) {
  const std::vector<double> values = RandomValues("normal", 10000000, 61);
  QuantileSketch bulk;
  auto start = std::chrono::steady_clock::now();
  bulk.AddMany(values);
  const double bulk_ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
      static_cast<double>(values.size());
  QuantileSketch single;
  start = std::chrono::steady_clock::now();
  for (const double value : values) single.Add(value);
  const double single_ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
      static_cast<double>(values.size());
  std::printf("QuantileSketch on 10^7 values: AddMany %.2f ns/value, Add %.2f ns/value\n", bulk_ns,
              single_ns);
  EXPECT_EQ(bulk.Encode(), single.Encode());
}

// ---------------------------------------------------------------------------
// DistinctCounter

TEST(DistinctCounter, EstimateWithinThreeSigma) {
  for (const uint32_t exact_limit : {DistinctCounter::kDefaultExactLimit, uint32_t{0}}) {
    for (const int64_t cardinality : {0, 1, 10, 1000, 100000, 1000000}) {
      DistinctCounter counter(14, exact_limit);
      for (int64_t value = 0; value < cardinality; ++value) {
        counter.Add(value * 7919);
        if (value % 3 == 0) counter.Add(value * 7919);  // repeats change nothing
      }
      const double estimate = counter.Estimate();
      const double sigma = 1.04 / 128.0;
      if (counter.is_exact()) {
        EXPECT_EQ(estimate, static_cast<double>(cardinality));
        EXPECT_EQ(counter.RelativeError(), 0.0);
      } else {
        EXPECT_EQ(counter.RelativeError(), sigma);
      }
      const double relative = cardinality == 0 ? estimate : std::abs(estimate / cardinality - 1.0);
      EXPECT_LE(relative, 3 * sigma) << "cardinality " << cardinality << " estimate " << estimate
                                     << " exact limit " << exact_limit;
    }
  }
}

TEST(DistinctCounter, ErrorAcrossManyRunsMatchesStatedSigma) {
  // 40 independent streams of 200000 distinct strings: the spread of the
  // relative errors must look like the stated standard error.
  double sum_squares = 0.0;
  constexpr int kRuns = 40;
  for (int run = 0; run < kRuns; ++run) {
    DistinctCounter counter;
    for (int value = 0; value < 200000; ++value) {
      counter.Add("run" + std::to_string(run) + "/" + std::to_string(value));
    }
    const double relative = counter.Estimate() / 200000.0 - 1.0;
    sum_squares += relative * relative;
  }
  const double observed = std::sqrt(sum_squares / kRuns);
  std::printf("HLL p=14: stated sigma %.4f, observed rms error %.4f over %d runs\n", 1.04 / 128,
              observed, kRuns);
  EXPECT_LT(observed, 1.5 * 1.04 / 128);
}

TEST(DistinctCounter, MergeOfDisjointAndOverlappingSetsEstimatesUnion) {
  auto counter_of = [](int64_t begin, int64_t end) {
    DistinctCounter counter;
    for (int64_t value = begin; value < end; ++value) counter.Add(value);
    return counter;
  };
  const double sigma = 1.04 / 128.0;
  DistinctCounter disjoint = counter_of(0, 300000);
  ASSERT_TRUE(disjoint.Merge(counter_of(300000, 500000)).ok());
  EXPECT_LE(std::abs(disjoint.Estimate() / 500000 - 1.0), 3 * sigma);
  DistinctCounter overlapping = counter_of(0, 600000);
  ASSERT_TRUE(overlapping.Merge(counter_of(400000, 1000000)).ok());
  EXPECT_LE(std::abs(overlapping.Estimate() / 1000000 - 1.0), 3 * sigma);
  // Registers of a union are those of the counter of the union.
  EXPECT_EQ(overlapping.Encode(), counter_of(0, 1000000).Encode());
  // Small exact sets merge exactly.
  DistinctCounter small = counter_of(0, 300);
  ASSERT_TRUE(small.Merge(counter_of(200, 600)).ok());
  EXPECT_TRUE(small.is_exact());
  EXPECT_EQ(small.Estimate(), 600.0);
  EXPECT_EQ(small.Merge(DistinctCounter(12)).code(), StatusCode::kInvalidArgument);
}

TEST(DistinctCounter, MergeIsCommutative) {
  auto counter_of = [](const std::string& prefix, int count) {
    DistinctCounter counter;
    for (int value = 0; value < count; ++value) counter.Add(prefix + std::to_string(value));
    return counter;
  };
  for (const auto& [left_count, right_count] :
       {std::pair{100, 200}, {900, 900}, {50, 50000}, {70000, 30000}}) {
    DistinctCounter ab = counter_of("a", left_count);
    DistinctCounter ba = counter_of("b", right_count);
    ASSERT_TRUE(ab.Merge(counter_of("b", right_count)).ok());
    ASSERT_TRUE(ba.Merge(counter_of("a", left_count)).ok());
    EXPECT_EQ(ab.Encode(), ba.Encode()) << left_count << "+" << right_count;
  }
}

TEST(DistinctCounter, ItemNormalisation) {
  DistinctCounter counter;
  counter.Add(0.0);
  counter.Add(-0.0);
  EXPECT_EQ(counter.Estimate(), 1.0);
  counter.Add(kNaN);
  counter.Add(-kNaN);
  counter.Add(std::bit_cast<double>(uint64_t{0x7ff0000000000123}));
  EXPECT_EQ(counter.Estimate(), 2.0);  // all NaNs are one item
  counter.Add(int64_t{3});
  counter.Add(3.0);
  EXPECT_EQ(counter.Estimate(), 4.0);  // int64 3 and double 3.0 differ
  counter.Add(std::string_view("3"));
  counter.AddHash(0);
  counter.AddHash(0);
  EXPECT_EQ(counter.Estimate(), 6.0);
}

TEST(DistinctCounter, AddManyEqualsAddPerValue) {
  std::vector<double> values = {0.0, -0.0, kNaN, -kNaN, 1.5, -2.25};
  std::mt19937_64 rng(17);
  for (int i = 0; i < 5000; ++i) values.push_back(double(rng() % 3000) / 7.0);
  // Exact mode throughout, then across the switch to registers.
  for (size_t size : {size_t{6}, size_t{700}, values.size()}) {
    DistinctCounter one_by_one;
    DistinctCounter batched;
    for (size_t index = 0; index < size; ++index) one_by_one.Add(values[index]);
    batched.AddMany(std::span<const double>(values.data(), size));
    EXPECT_EQ(batched.Encode(), one_by_one.Encode()) << size;
    EXPECT_EQ(batched.is_exact(), one_by_one.is_exact()) << size;
  }
}

TEST(DistinctCounter, RoundTripAndDecodeRejectsGarbage) {
  DistinctCounter exact;
  for (int value = 0; value < 500; ++value) exact.Add(int64_t{value});
  exact.AddHash(0);
  DistinctCounter dense(10);
  for (int value = 0; value < 5000; ++value) dense.Add(int64_t{value});
  for (const DistinctCounter* counter : {&exact, &dense}) {
    Result<DistinctCounter> decoded = DistinctCounter::Decode(counter->Encode());
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->Encode(), counter->Encode());
    EXPECT_EQ(decoded->Estimate(), counter->Estimate());
  }
  auto exercise = [](DistinctCounter& counter) {
    (void)counter.Estimate();
    for (int value = 0; value < 2000; ++value) counter.Add(int64_t{value});
    ASSERT_TRUE(counter.Merge(DistinctCounter(counter)).ok());
  };
  DistinctCounter small(4, 20);
  for (int value = 0; value < 15; ++value) small.Add(int64_t{value});
  FuzzDecode<DistinctCounter>(small.Encode(), exercise);
  FuzzDecode<DistinctCounter>(dense.Encode(), exercise);
}

TEST(DistinctCounter, AddSpeed) {
  DistinctCounter counter;
  constexpr int64_t kCount = 5000000;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t value = 0; value < kCount; ++value) counter.Add(value);
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
      kCount;
  DistinctCounter hashes;
  const auto hash_start = std::chrono::steady_clock::now();
  for (int64_t value = 0; value < kCount; ++value) {
    hashes.AddHash(static_cast<uint64_t>(value) * 0x9e3779b97f4a7c15ULL);
  }
  const double hash_ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - hash_start)
          .count() /
      kCount;
  std::printf("DistinctCounter: Add(int64) %.2f ns/value (keel::Hash64 included), AddHash %.2f\n",
              ns, hash_ns);
  EXPECT_GT(counter.Estimate(), 0.0);
  EXPECT_GT(hashes.Estimate(), 0.0);
}

// ---------------------------------------------------------------------------
// TopK

// A Zipf(1.1) stream over `distinct` values named in a seed-dependent order.
std::vector<std::string> ZipfStream(size_t length, size_t distinct, uint64_t seed) {
  std::vector<double> cumulative(distinct);
  double sum = 0.0;
  for (size_t rank = 0; rank < distinct; ++rank) {
    sum += 1.0 / std::pow(static_cast<double>(rank + 1), 1.1);
    cumulative[rank] = sum;
  }
  std::mt19937_64 rng(seed);
  std::vector<size_t> names(distinct);
  for (size_t index = 0; index < distinct; ++index) names[index] = index;
  std::shuffle(names.begin(), names.end(), rng);
  std::uniform_real_distribution<double> uniform(0.0, sum);
  std::vector<std::string> stream;
  stream.reserve(length);
  for (size_t index = 0; index < length; ++index) {
    const size_t rank = std::min<size_t>(
        std::lower_bound(cumulative.begin(), cumulative.end(), uniform(rng)) - cumulative.begin(),
        distinct - 1);
    stream.push_back("v" + std::to_string(names[rank]));
  }
  return stream;
}

std::unordered_map<std::string, uint64_t> TrueCounts(const std::vector<std::string>& stream) {
  std::unordered_map<std::string, uint64_t> counts;
  for (const std::string& value : stream) ++counts[value];
  return counts;
}

void CheckTopKGuarantee(const TopK& summary, const std::unordered_map<std::string, uint64_t>& truth,
                        uint64_t total, const std::string& label) {
  ASSERT_EQ(summary.total(), total) << label;
  const uint64_t overcount = summary.max_overcount();
  const std::vector<TopK::Entry> top = summary.Top(summary.size());
  uint64_t counters = 0;
  std::unordered_map<std::string, uint64_t> reported;
  for (const TopK::Entry& entry : top) {
    EXPECT_EQ(entry.max_overcount, overcount);
    const auto found = truth.find(entry.value);
    const uint64_t true_count = found == truth.end() ? 0 : found->second;
    EXPECT_LE(true_count, entry.count) << label << " " << entry.value;
    EXPECT_GE(true_count + entry.max_overcount, entry.count) << label << " " << entry.value;
    counters += entry.count - overcount;
    reported[entry.value] = entry.count;
  }
  EXPECT_LE(overcount * (summary.k() + 1), total - counters) << label;
  for (const auto& [value, count] : truth) {
    if (count > total / summary.k()) {
      EXPECT_TRUE(reported.contains(value)) << label << " misses " << value << " x" << count;
    }
    if (!reported.contains(value)) {
      EXPECT_LE(count, overcount) << label;
    }
  }
  for (size_t index = 1; index < top.size(); ++index) {
    EXPECT_TRUE(
        top[index - 1].count > top[index].count ||
        (top[index - 1].count == top[index].count && top[index - 1].value < top[index].value));
  }
}

TEST(TopK, ExactWhileFewDistinctValues) {
  TopK summary(4);
  for (int round = 0; round < 100; ++round) {
    summary.Add("a");
    summary.Add("b", 2);
    if (round % 2 == 0) summary.Add("c");
  }
  summary.Add("a", 0);
  EXPECT_EQ(summary.max_overcount(), 0u);
  EXPECT_EQ(summary.Top(2), (std::vector<TopK::Entry>{{"b", 200, 0}, {"a", 100, 0}}));
  EXPECT_EQ(summary.Top(10).size(), 3u);
  EXPECT_EQ(summary.total(), 350u);
}

TEST(TopK, ZipfHeavyHittersWithinBound) {
  for (const uint32_t k : {16u, 64u}) {
    for (const size_t distinct : {size_t{1000}, size_t{100000}}) {
      const std::vector<std::string> stream = ZipfStream(1000000, distinct, k + distinct);
      TopK summary(k);
      for (const std::string& value : stream) summary.Add(value);
      const std::string label = "k=" + std::to_string(k) + " distinct=" + std::to_string(distinct);
      CheckTopKGuarantee(summary, TrueCounts(stream), stream.size(), label);
      std::printf("TopK %s: max overcount %llu (bound total/(k+1) = %zu)\n", label.c_str(),
                  static_cast<unsigned long long>(summary.max_overcount()),
                  stream.size() / (k + 1));
    }
  }
}

TEST(TopK, MergedPartitionsWithinBoundAgainstUnion) {
  std::vector<std::string> all;
  std::vector<TopK> partitions;
  for (uint64_t part = 0; part < 8; ++part) {
    // Partitions rank the values differently, so heavy hitters differ.
    const std::vector<std::string> stream = ZipfStream(100000, 20000, part % 3);
    TopK summary(32);
    for (const std::string& value : stream) summary.Add(value);
    partitions.push_back(summary);
    all.insert(all.end(), stream.begin(), stream.end());
  }
  const auto truth = TrueCounts(all);
  TopK sequential(32);
  for (const TopK& partition : partitions) ASSERT_TRUE(sequential.Merge(partition).ok());
  CheckTopKGuarantee(sequential, truth, all.size(), "sequential");
  TopK reversed(32);
  for (auto partition = partitions.rbegin(); partition != partitions.rend(); ++partition) {
    ASSERT_TRUE(reversed.Merge(*partition).ok());
  }
  CheckTopKGuarantee(reversed, truth, all.size(), "reversed");
  TopK ab = partitions[0];
  TopK ba = partitions[1];
  ASSERT_TRUE(ab.Merge(partitions[1]).ok());
  ASSERT_TRUE(ba.Merge(partitions[0]).ok());
  EXPECT_EQ(ab.Encode(), ba.Encode());
  EXPECT_EQ(ab.Merge(TopK(31)).code(), StatusCode::kInvalidArgument);
}

TEST(TopK, SameInputGivesIdenticalBytesAndRoundTrips) {
  const std::vector<std::string> stream = ZipfStream(200000, 5000, 3);
  TopK first(16);
  TopK second(16);
  for (const std::string& value : stream) first.Add(value);
  for (const std::string& value : stream) second.Add(value);
  EXPECT_EQ(first.Encode(), second.Encode());
  Result<TopK> decoded = TopK::Decode(first.Encode());
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->Top(100), first.Top(100));
  EXPECT_EQ(decoded->Encode(), first.Encode());
  for (const std::string& value : stream) {
    decoded->Add(value);
    first.Add(value);
  }
  EXPECT_EQ(decoded->Encode(), first.Encode());
  auto exercise = [&stream](TopK& summary) {
    (void)summary.Top(5);
    for (size_t index = 0; index < 500; ++index) summary.Add(stream[index]);
    ASSERT_TRUE(summary.Merge(TopK(summary)).ok());
  };
  TopK small(2);
  for (const std::string value : {"x", "y", "", "zz"}) small.Add(value);
  FuzzDecode<TopK>(small.Encode(), exercise);
  FuzzDecode<TopK>(first.Encode(), exercise);
}

TEST(TopK, AddIdsEqualsAddPerValue) {
  // A dictionary of 3000 values over Zipf rows: the 2k = 32 counters are
  // purged (entries rebuilt) many times, so the cached entry indices of
  // AddIds must be dropped at the right moments to end in the same state.
  const std::vector<std::string> stream = ZipfStream(300000, 3000, 11);
  std::vector<std::string> dictionary;
  std::unordered_map<std::string, uint32_t> id_of;
  std::vector<uint32_t> ids;
  for (const std::string& value : stream) {
    auto [it, added] = id_of.emplace(value, static_cast<uint32_t>(dictionary.size()));
    if (added) dictionary.push_back(value);
    ids.push_back(it->second);
  }
  std::vector<std::string_view> views(dictionary.begin(), dictionary.end());
  std::vector<uint64_t> hashes;
  for (const std::string& value : dictionary) hashes.push_back(Hash64(value));
  TopK one_by_one(16);
  TopK by_ids(16);
  for (size_t begin = 0; begin < stream.size(); begin += 70000) {  // several calls
    const size_t end = std::min(stream.size(), begin + 70000);
    for (size_t row = begin; row < end; ++row) one_by_one.Add(stream[row]);
    by_ids.AddIds(std::span<const uint32_t>(ids).subspan(begin, end - begin), views, hashes);
    ASSERT_EQ(by_ids.Encode(), one_by_one.Encode()) << "after row " << end;
  }
  EXPECT_GT(one_by_one.max_overcount(), 0u);  // purges did happen
  // Few values (no purge at all) and an empty batch.
  TopK small_by_ids(16);
  TopK small(16);
  const std::vector<uint32_t> few = {0, 1, 0, 2, 2, 2, 1};
  small_by_ids.AddIds(few, views, hashes);
  small_by_ids.AddIds({}, views, hashes);
  for (const uint32_t id : few) small.Add(dictionary[id]);
  EXPECT_EQ(small_by_ids.Encode(), small.Encode());
}

TEST(TopK, AddSpeed) {
  const std::vector<std::string> stream = ZipfStream(2000000, 100000, 9);
  TopK summary;
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& value : stream) summary.Add(value);
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
      static_cast<double>(stream.size());
  std::printf("TopK(64) on Zipf(1.1) over 10^5 values: Add %.2f ns/value\n", ns);
  EXPECT_EQ(summary.total(), stream.size());
}

TEST(QuantileSketch, AddManyScannedEqualsAddMany) {
  // Exact mode, the switch to KLL, and KLL mode; batches whose extremes are
  // -0.0 (stored as +0.0) or infinite.
  const std::vector<double> values = RandomValues("normal", 300000, 29);
  for (const uint64_t exact_limit : {uint64_t{0}, uint64_t{1000}, uint64_t{1} << 20}) {
    QuantileSketch plain(exact_limit);
    QuantileSketch scanned(exact_limit);
    std::vector<std::vector<double>> batches = {{-0.0, 0.0, -0.0}, {-0.0}, {5.0, -0.0}};
    for (size_t begin = 0; begin < values.size(); begin += 65536) {
      batches.emplace_back(values.begin() + begin,
                           values.begin() + std::min(values.size(), begin + 65536));
    }
    batches.push_back({-kInf, 1.0, kInf});
    for (const std::vector<double>& batch : batches) {
      plain.AddMany(batch);
      scanned.AddManyScanned(batch, *std::min_element(batch.begin(), batch.end()),
                             *std::max_element(batch.begin(), batch.end()));
      ASSERT_EQ(scanned.Encode(), plain.Encode()) << "exact limit " << exact_limit;
      ASSERT_EQ(std::signbit(scanned.min()), std::signbit(plain.min()));
      ASSERT_EQ(scanned.max(), plain.max());
    }
  }
}

// ---------------------------------------------------------------------------

TEST(Sketches, SteadyStateAddDoesNotAllocate) {
  const std::vector<double> values = RandomValues("normal", 3000000, 71);
  const std::span<const double> warm_up = std::span<const double>(values).first(2000000);
  const std::span<const double> steady = std::span<const double>(values).subspan(2000000);
  QuantileSketch one_by_one;
  QuantileSketch bulk;
  for (const double value : warm_up) one_by_one.Add(value);
  bulk.AddMany(warm_up);
  DistinctCounter dense;
  DistinctCounter exact;
  for (int64_t value = 0; value < 100000; ++value) {
    dense.Add(value);
    exact.Add(value % 100);
  }
  const std::vector<std::string> stream = ZipfStream(400000, 50000, 72);
  TopK top;
  for (size_t index = 0; index < 200000; ++index) top.Add(stream[index]);

  const uint64_t before = g_allocations.load();
  for (const double value : steady) one_by_one.Add(value);
  bulk.AddMany(steady);
  for (int64_t value = 0; value < 100000; ++value) {
    dense.Add(value + 100000);
    dense.Add(values[value]);
    exact.Add(value % 100);
  }
  for (size_t index = 200000; index < stream.size(); ++index) top.Add(stream[index]);
  EXPECT_EQ(g_allocations.load() - before, 0u);
  EXPECT_EQ(one_by_one.count(), values.size());
}

}  // namespace
}  // namespace keel::validate
