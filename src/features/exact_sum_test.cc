#include "features/exact_sum.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace keel::features {
namespace {

// An independent exact sum: Shewchuk's partials with Python's math.fsum final
// rounding (correctly rounded, ties to even). Precondition: no intermediate
// overflow, which holds when the sum of magnitudes stays below DBL_MAX / 2.
double FsumReference(const std::vector<double>& values) {
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
  // Half-way cases: the partials below lo push the rounding past the tie.
  if (n > 0 && ((lo < 0.0 && partials[n - 1] < 0.0) || (lo > 0.0 && partials[n - 1] > 0.0))) {
    const double y = lo * 2.0;
    const double x = hi + y;
    if (y == x - hi) hi = x;
  }
  return hi == 0.0 ? 0.0 : hi;  // an exact zero is +0.0
}

constexpr double kScaleDown = 0x1p-64;
constexpr double kScaleUp = 0x1p64;

// The correctly rounded sum of `values`. Sets whose magnitudes could overflow
// the reference's partials are summed scaled by 2^-64, which is exact when
// every non-zero |x| >= 2^-958 and the scaled result is normal or zero; returns
// false when that does not hold (the caller then skips the check).
bool ReferenceSum(const std::vector<double>& values, double* result) {
  long double magnitudes = 0.0L;
  for (double x : values) magnitudes += std::fabs(static_cast<long double>(x));
  if (magnitudes < 0x1p1020L) {
    *result = FsumReference(values);
    return true;
  }
  std::vector<double> scaled;
  for (double x : values) {
    if (x != 0.0 && std::fabs(x) < 0x1p-958) return false;
    scaled.push_back(x * kScaleDown);
  }
  const double sum = FsumReference(scaled);
  if (sum != 0.0 && std::fabs(sum) < DBL_MIN) return false;
  *result = sum * kScaleUp;  // overflows to inf exactly when the true sum rounds to inf
  return true;
}

uint64_t Bits(double x) { return std::bit_cast<uint64_t>(x); }

#define EXPECT_SAME_DOUBLE(expected, actual)                                                   \
  EXPECT_EQ(Bits(expected), Bits(actual))                                                      \
      << "expected " << (expected) << " (hexfloat " << std::hexfloat << (expected) << ") got " \
      << (actual) << std::defaultfloat

// A double with a random mantissa, random sign and a biased exponent in
// [lowest, highest] (0 = subnormal).
double RandomDouble(std::mt19937_64& rng, int lowest, int highest) {
  const uint64_t exponent = std::uniform_int_distribution<int>(lowest, highest)(rng);
  uint64_t mantissa = rng() & ((uint64_t{1} << 52) - 1);
  // Short mantissas make exact cancellations and ties more likely.
  if (rng() % 3 == 0) mantissa &= ~((uint64_t{1} << (rng() % 52)) - 1);
  const uint64_t sign = rng() & 1;
  return std::bit_cast<double>((sign << 63) | (exponent << 52) | mantissa);
}

enum class Spread { kSubnormal, kTiny, kModerate, kWide, kHuge, kIntegers, kEverything };

std::vector<double> RandomValues(std::mt19937_64& rng, size_t size, Spread spread) {
  std::vector<double> values;
  while (values.size() < size) {
    double x = 0.0;
    switch (spread) {
      case Spread::kSubnormal:
        x = RandomDouble(rng, 0, 2);
        break;
      case Spread::kTiny:
        x = RandomDouble(rng, 0, 80);
        break;
      case Spread::kModerate:
        x = RandomDouble(rng, 1023 - 40, 1023 + 40);
        break;
      case Spread::kWide:
        x = RandomDouble(rng, 0, 2000);
        break;
      case Spread::kHuge:  // near 1e308 plus smaller values, all >= 2^-958
        x = rng() % 4 == 0 ? RandomDouble(rng, 2040, 2046) : RandomDouble(rng, 66, 2046);
        break;
      case Spread::kIntegers:
        x = static_cast<double>(static_cast<int64_t>(rng() % 2001) - 1000);
        break;
      case Spread::kEverything:
        x = RandomDouble(rng, 0, 2046);
        break;
    }
    if (std::isinf(x) || std::isnan(x)) continue;
    values.push_back(x);
    const uint64_t roll = rng() % 10;
    if (roll == 0 && values.size() < size) values.push_back(-x);  // exact cancellation
    if (roll == 1 && values.size() < size) values.push_back(-std::nextafter(x, 0.0));
    if (roll == 2 && values.size() < size) values.push_back(rng() % 2 ? 0.0 : -0.0);
  }
  std::shuffle(values.begin(), values.end(), rng);
  return values;
}

ExactSum SumOf(const std::vector<double>& values) {
  ExactSum sum;
  for (double x : values) sum.Add(x);
  return sum;
}

std::string Encoded(const ExactSum& sum) {
  std::string bytes;
  sum.AppendEncoded(&bytes);
  return bytes;
}

constexpr Spread kSpreads[] = {Spread::kSubnormal, Spread::kTiny, Spread::kModerate,
                               Spread::kWide,      Spread::kHuge, Spread::kIntegers,
                               Spread::kEverything};

TEST(ExactSum, MatchesCorrectlyRoundedReference) {
  std::mt19937_64 rng(20240601);
  int checked = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    const Spread spread = kSpreads[trial % std::size(kSpreads)];
    const std::vector<double> values = RandomValues(rng, rng() % 120, spread);
    double expected = 0.0;
    if (!ReferenceSum(values, &expected)) continue;
    ++checked;
    const ExactSum sum = SumOf(values);
    EXPECT_SAME_DOUBLE(expected, sum.Value()) << " trial " << trial;
  }
  EXPECT_GT(checked, 3500);
}

TEST(ExactSum, RoundsTiesToEvenAcrossFarApartTerms) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 3000; ++trial) {
    // a + half an ulp of a is a tie; a tiny third term decides it.
    const double a = RandomDouble(rng, 1, 2040);
    const double half_ulp = (std::nextafter(std::fabs(a), INFINITY) - std::fabs(a)) / 2;
    if (half_ulp == 0.0 || !std::isfinite(half_ulp)) continue;
    const double nudge = RandomDouble(rng, 0, 1023);
    for (const std::vector<double>& values :
         {std::vector<double>{a, half_ulp}, std::vector<double>{a, -half_ulp},
          std::vector<double>{a, half_ulp, nudge}, std::vector<double>{nudge, a, -half_ulp}}) {
      double expected = 0.0;
      if (!ReferenceSum(values, &expected)) continue;
      EXPECT_SAME_DOUBLE(expected, SumOf(values).Value());
    }
  }
}

TEST(ExactSum, KnownValues) {
  const double kMinSubnormal = std::numeric_limits<double>::denorm_min();
  EXPECT_SAME_DOUBLE(0.0, ExactSum().Value());
  EXPECT_SAME_DOUBLE(0.0, SumOf({-0.0}).Value());
  EXPECT_SAME_DOUBLE(0.0, SumOf({1.0, -1.0}).Value());
  EXPECT_SAME_DOUBLE(0.0, SumOf({-3.5, 1.25, 2.25}).Value());
  EXPECT_SAME_DOUBLE(0.30000000000000004, SumOf({0.1, 0.2}).Value());
  EXPECT_SAME_DOUBLE(10000000000000002.0, SumOf({1e-16, 1.0, 1e16}).Value());
  EXPECT_SAME_DOUBLE(2.0, SumOf({1e-16, 1.0, 1e16, -1e16, 1.0}).Value());
  EXPECT_SAME_DOUBLE(1e-100, SumOf({1e100, 1e-100, -1e100}).Value());
  EXPECT_SAME_DOUBLE(2 * kMinSubnormal, SumOf({kMinSubnormal, kMinSubnormal}).Value());
  EXPECT_SAME_DOUBLE(-kMinSubnormal, SumOf({DBL_MIN, -DBL_MIN, -kMinSubnormal}).Value());
  EXPECT_SAME_DOUBLE(DBL_MIN, SumOf({DBL_MIN - kMinSubnormal, kMinSubnormal}).Value());
  // Beyond the reference's reach: intermediate sums overflow a double.
  EXPECT_SAME_DOUBLE(DBL_MAX, SumOf({DBL_MAX, DBL_MAX, -DBL_MAX}).Value());
  EXPECT_SAME_DOUBLE(1e308, SumOf({1e308, 1e308, 1e308, -1e308, -1e308, 1.0}).Value());
  EXPECT_SAME_DOUBLE(INFINITY, SumOf({DBL_MAX, DBL_MAX}).Value());
  EXPECT_SAME_DOUBLE(-INFINITY, SumOf({-DBL_MAX, -DBL_MAX}).Value());
  // DBL_MAX has an odd mantissa: half an ulp more is a tie that rounds to inf.
  EXPECT_SAME_DOUBLE(INFINITY, SumOf({DBL_MAX, 0x1p970}).Value());
  EXPECT_SAME_DOUBLE(DBL_MAX, SumOf({DBL_MAX, 0x1p970, -kMinSubnormal}).Value());
  EXPECT_SAME_DOUBLE(DBL_MAX, SumOf({DBL_MAX, 0x1p969}).Value());
  // 2^53 + 1 is a tie between 2^53 and 2^53 + 2: even wins, extra bits decide.
  EXPECT_SAME_DOUBLE(0x1p53, SumOf({0x1p53, 1.0}).Value());
  EXPECT_SAME_DOUBLE(0x1p53 + 2, SumOf({0x1p53, 1.0, kMinSubnormal}).Value());
  EXPECT_SAME_DOUBLE(0x1p53 + 4, SumOf({0x1p53 + 2, 1.0}).Value());
  EXPECT_TRUE(ExactSum().IsZero());
  EXPECT_TRUE(SumOf({1e300, -1e300}).IsZero());
  EXPECT_FALSE(SumOf({kMinSubnormal}).IsZero());
}

TEST(ExactSum, OrderIndependent) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 1000; ++trial) {
    std::vector<double> values =
        RandomValues(rng, 1 + rng() % 100, kSpreads[trial % std::size(kSpreads)]);
    const ExactSum first = SumOf(values);
    std::shuffle(values.begin(), values.end(), rng);
    const ExactSum second = SumOf(values);
    EXPECT_SAME_DOUBLE(first.Value(), second.Value());
    EXPECT_EQ(Encoded(first), Encoded(second));
    EXPECT_TRUE(first == second);
  }
}

TEST(ExactSum, MergedRandomSplitsEqualOneSum) {
  std::mt19937_64 rng(12);
  for (int trial = 0; trial < 1000; ++trial) {
    const std::vector<double> values =
        RandomValues(rng, rng() % 100, kSpreads[trial % std::size(kSpreads)]);
    std::vector<ExactSum> parts(1 + rng() % 6);
    for (double x : values) parts[rng() % parts.size()].Add(x);
    std::shuffle(parts.begin(), parts.end(), rng);
    ExactSum merged;
    for (const ExactSum& part : parts) merged.Merge(part);
    const ExactSum whole = SumOf(values);
    EXPECT_SAME_DOUBLE(whole.Value(), merged.Value());
    EXPECT_EQ(Encoded(whole), Encoded(merged));
    EXPECT_TRUE(whole == merged);
  }
}

TEST(ExactSum, RemovingWhatWasAddedLeavesNoTrace) {
  std::mt19937_64 rng(13);
  for (int trial = 0; trial < 1000; ++trial) {
    const Spread spread = kSpreads[trial % std::size(kSpreads)];
    const std::vector<double> kept = RandomValues(rng, rng() % 80, spread);
    const std::vector<double> transient = RandomValues(rng, rng() % 80, Spread::kEverything);
    // Interleave: adds of both, and removals of transient values once added.
    ExactSum sum;
    std::vector<double> added_transient;
    size_t kept_index = 0, transient_index = 0;
    while (kept_index < kept.size() || transient_index < transient.size() ||
           !added_transient.empty()) {
      const uint64_t roll = rng() % 3;
      if (roll == 0 && kept_index < kept.size()) {
        sum.Add(kept[kept_index++]);
      } else if (roll == 1 && transient_index < transient.size()) {
        sum.Add(transient[transient_index]);
        added_transient.push_back(transient[transient_index++]);
      } else if (!added_transient.empty()) {
        const size_t pick = rng() % added_transient.size();
        sum.Remove(added_transient[pick]);
        added_transient.erase(added_transient.begin() + pick);
      }
    }
    const ExactSum never = SumOf(kept);
    EXPECT_SAME_DOUBLE(never.Value(), sum.Value());
    EXPECT_EQ(Encoded(never), Encoded(sum));
    EXPECT_TRUE(never == sum);
    EXPECT_EQ(kept.empty() || never.IsZero(), sum.IsZero());
  }
}

TEST(ExactSum, ValueDoubleDoubleIsCanonical) {
  std::mt19937_64 rng(14);
  for (int trial = 0; trial < 2000; ++trial) {
    const Spread spread = kSpreads[trial % std::size(kSpreads)];
    std::vector<double> values = RandomValues(rng, rng() % 60, spread);
    const ExactSum sum = SumOf(values);
    const DoubleDouble dd = sum.ValueDoubleDouble();
    EXPECT_SAME_DOUBLE(sum.Value(), dd.hi);
    if (!std::isfinite(dd.hi)) {
      EXPECT_SAME_DOUBLE(0.0, dd.lo);
      continue;
    }
    values.push_back(-dd.hi);
    double expected_lo = 0.0;
    if (!ReferenceSum(values, &expected_lo)) continue;
    EXPECT_SAME_DOUBLE(expected_lo, dd.lo);
    if (dd.hi != 0.0) {  // |lo| <= half an ulp of hi (equality possible: lo is rounded)
      EXPECT_LE(std::fabs(dd.lo), std::ldexp(1.0, std::ilogb(dd.hi) - 53));
    }
  }
}

TEST(ExactSum, MergeEncodedEqualsMergeOfTheDecodedSum) {
  std::mt19937_64 rng(17);
  for (int trial = 0; trial < 1000; ++trial) {
    std::vector<ExactSum> parts(1 + rng() % 8);
    std::vector<double> all;
    for (ExactSum& part : parts) {
      const std::vector<double> values =
          RandomValues(rng, rng() % 60, kSpreads[(trial + all.size()) % std::size(kSpreads)]);
      for (double x : values) part.Add(x);
      all.insert(all.end(), values.begin(), values.end());
    }
    ExactSum merged;
    for (const ExactSum& part : parts) ASSERT_TRUE(merged.MergeEncoded(Encoded(part)).ok());
    const ExactSum whole = SumOf(all);
    EXPECT_SAME_DOUBLE(whole.Value(), merged.Value());
    EXPECT_TRUE(whole == merged);
    EXPECT_EQ(Encoded(whole), Encoded(merged));
  }
  // Sums at the top of the range take the careful path and stay exact.
  ExactSum huge;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(huge.MergeEncoded(Encoded(SumOf({DBL_MAX}))).ok());
  ASSERT_TRUE(huge.MergeEncoded(Encoded(SumOf({-DBL_MAX, 1.0}))).ok());
  ExactSum expected;
  for (int i = 0; i < 999; ++i) expected.Add(DBL_MAX);
  expected.Add(1.0);
  EXPECT_TRUE(huge == expected);
  ExactSum untouched = SumOf({2.5});
  EXPECT_FALSE(untouched.MergeEncoded("\x01").ok());
  EXPECT_FALSE(untouched.MergeEncoded(Encoded(SumOf({1.5})) + "x").ok());
  EXPECT_SAME_DOUBLE(2.5, untouched.Value());
}

TEST(ExactSum, ManyMergesNormaliseWithoutOverflow) {
  std::mt19937_64 rng(15);
  for (int trial = 0; trial < 50; ++trial) {
    // Self-merging doubles the pending-operation count each time, so this
    // crosses the normalisation threshold (2^30) several times.
    const std::vector<double> values = RandomValues(rng, 1 + rng() % 40, Spread::kModerate);
    ExactSum sum = SumOf(values);
    const double base = sum.Value();
    for (int doubling = 1; doubling <= 60; ++doubling) {
      sum.Merge(sum);
      EXPECT_SAME_DOUBLE(std::ldexp(base, doubling), sum.Value()) << doubling;
    }
    for (double x : values) sum.Remove(std::ldexp(x, 60));
    EXPECT_TRUE(sum.IsZero());
    EXPECT_SAME_DOUBLE(0.0, sum.Value());
  }
}

TEST(ExactSum, LargeMagnitudesCancelExactly) {
  ExactSum sum;
  for (int i = 0; i < 100000; ++i) sum.Add(DBL_MAX);
  sum.Add(1.0);
  for (int i = 0; i < 100000; ++i) sum.Remove(DBL_MAX);
  EXPECT_SAME_DOUBLE(1.0, sum.Value());
  sum.Remove(1.0);
  sum.Remove(DBL_MAX);
  EXPECT_SAME_DOUBLE(-DBL_MAX, sum.Value());
  EXPECT_EQ(Encoded(sum), Encoded(SumOf({-DBL_MAX})));
}

TEST(ExactSum, EncodeDecodeRoundTrip) {
  std::mt19937_64 rng(16);
  for (int trial = 0; trial < 1000; ++trial) {
    const Spread spread = kSpreads[trial % std::size(kSpreads)];
    const ExactSum sum = SumOf(RandomValues(rng, rng() % 80, spread));
    const std::string bytes = Encoded(sum);
    Result<ExactSum> decoded = ExactSum::Decode(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_TRUE(*decoded == sum);
    EXPECT_SAME_DOUBLE(sum.Value(), decoded->Value());
    EXPECT_EQ(bytes, Encoded(*decoded));
  }
  EXPECT_EQ(2u, Encoded(ExactSum()).size());
  EXPECT_EQ(2u + 8, Encoded(SumOf({1.5})).size());              // 3 * 2^-1: one chunk
  EXPECT_EQ(2u + 4 + 8, Encoded(SumOf({1.5, 0x1p40})).size());  // bits 2^-1 to 2^40: two chunks
}

TEST(ExactSum, DecodeRejectsMalformedBytes) {
  std::mt19937_64 rng(17);
  EXPECT_FALSE(ExactSum::Decode("").ok());
  EXPECT_FALSE(ExactSum::Decode(std::string(1, '\0')).ok());
  EXPECT_FALSE(ExactSum::Decode(std::string("\x05\x00", 2)).ok());  // zero with a range
  EXPECT_FALSE(ExactSum::Decode(std::string("\x00\x00\x00", 3)).ok());
  EXPECT_FALSE(ExactSum::Decode(std::string("\x42\x02", 2) + std::string(12, '\0')).ok());
  // A zero lowest chunk is not canonical.
  EXPECT_FALSE(ExactSum::Decode(std::string("\x00\x02", 2) + std::string(12, '\x01')).ok());
  const std::string valid = Encoded(SumOf({1.5, -1e-300, 7e200}));
  for (size_t length = 0; length < valid.size(); ++length) {
    EXPECT_FALSE(ExactSum::Decode(valid.substr(0, length)).ok()) << length;
  }
  EXPECT_FALSE(ExactSum::Decode(valid + "x").ok());
  int accepted = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    std::string bytes;
    if (trial % 2 == 0) {
      bytes.resize(rng() % 40);
      for (char& byte : bytes) byte = static_cast<char>(rng());
      if (bytes.size() >= 2 && trial % 4 == 0) {  // plausible header and length
        bytes[0] = static_cast<char>(rng() % 70);
        bytes[1] = static_cast<char>(1 + rng() % 8);
        bytes.resize(2 + 4 * (static_cast<uint8_t>(bytes[1]) - 1) + 8, '\0');
      }
    } else {
      bytes = Encoded(SumOf(RandomValues(rng, 1 + rng() % 10, Spread::kEverything)));
      bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    Result<ExactSum> decoded = ExactSum::Decode(bytes);
    if (decoded.ok()) {
      ++accepted;
      EXPECT_EQ(bytes, Encoded(*decoded));  // only canonical bytes are accepted
      (void)decoded->Value();
    } else {
      EXPECT_EQ(StatusCode::kInvalidArgument, decoded.status().code());
    }
  }
  EXPECT_GT(accepted, 0);
}

}  // namespace
}  // namespace keel::features
