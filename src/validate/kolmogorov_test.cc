#include "validate/kolmogorov.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "validate/drift.h"

// SmirnovSf sums only the Birnbaum-Tingey terms that matter, outwards from
// the largest. These tests hold it to the full sum and to SciPy on (n, x)
// pairs from n = 2 to the exact sum's limit n = 1e6, x from just above 1/n
// to near 1; and the asymptotic two-sample p-value built on it to SciPy's
// ks_2samp formula for unequal sample sizes. The oracle is Debian's
// /usr/bin/python3 with SciPy 1.10.1 (drift_test.cc checks the version); the
// tests fail, never skip, without it.

namespace keel::validate {
namespace {

using nlohmann::json;

// The logarithm of Birnbaum-Tingey term j, independently of kolmogorov.cc:
// the binomial from lgamma (absolute error ~1e-12 at n = 1e6, the reference's
// accuracy limit).
long double ReferenceLogTerm(uint64_t n, long double nx, uint64_t j) {
  const auto big_n = static_cast<long double>(n);
  const auto big_j = static_cast<long double>(j);
  return std::lgamma(big_n + 1.0L) - std::lgamma(big_j + 1.0L) - std::lgamma(big_n - big_j + 1.0L) +
         (big_n - big_j) * std::log((big_n - big_j - nx) / big_n) +
         (big_j - 1.0L) * std::log((nx + big_j) / big_n);
}

uint64_t TermCount(uint64_t n, double x) {
  return n - static_cast<uint64_t>(std::floor(static_cast<long double>(n) * x));
}

// Every term, none left out.
double FullSum(uint64_t n, double x) {
  const long double nx = static_cast<long double>(n) * x;
  long double sum = 0.0L;
  for (uint64_t j = 0; j < TermCount(n, x); ++j) sum += std::exp(ReferenceLogTerm(n, nx, j));
  return static_cast<double>(x * sum);
}

// (n, x) with 1 < n x < n - 1 and a result above Cephes' underflow cut: the
// domain of SmirnovSf's sum.
std::vector<std::pair<uint64_t, double>> SumCases() {
  std::vector<std::pair<uint64_t, double>> cases;
  auto add = [&](uint64_t n, double x) {
    const auto size = static_cast<double>(n);
    const double nx = size * x;
    if (nx <= 1.0 || nx >= size - 1.0 || -2.0 * size * x * x < -708.39) return;
    cases.push_back({n, x});
  };
  for (uint64_t n : {2, 3, 5, 10, 50, 139, 140, 141, 500, 1000, 5000, 20000}) {
    const auto size = static_cast<double>(n);
    for (double x : {1.01 / size, 1.5 / size, 2.0 / size, 0.3, 0.5, 0.75, 1.0 - 2.5 / size}) {
      add(n, x);
    }
    for (double nd2 : {0.05, 0.3, 0.5, 1.0, 2.2, 4.0, 10.0, 50.0, 200.0, 369.0}) {
      add(n, std::sqrt(nd2 / size));
    }
  }
  // SciPy's smirnov costs ~2.5 us per term, the reference ~0.2 us: a few large
  // cases, the two-sample sizes drift checks meet (n m / (n + m) ~ 252,000) and
  // the exact sum's limit.
  for (uint64_t n : {100000, 252000, 1000000}) {
    for (double nd2 : {0.05, 2.2, 50.0}) add(n, std::sqrt(nd2 / static_cast<double>(n)));
  }
  add(100000, 0.75);
  return cases;
}

// Runs `script` (reading request.json, writing answer.json) in Debian's
// Python with SciPy; returns the answer or {"error": ...}.
json RunScipy(const std::string& script, const json& request) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "keel_kolmogorov_XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) return {{"error", "mkdtemp failed"}};
  const std::filesystem::path dir = pattern;
  std::ofstream(dir / "oracle.py") << script;
  std::ofstream(dir / "request.json") << request.dump();
  const std::string command =
      "/usr/bin/python3 " + (dir / "oracle.py").string() + " " + (dir / "request.json").string() +
      " " + (dir / "answer.json").string() + " 2>" + (dir / "stderr.txt").string();
  json answer;
  if (std::system(command.c_str()) != 0) {
    std::stringstream errors;
    errors << std::ifstream(dir / "stderr.txt").rdbuf();
    answer = {{"error", "oracle failed: " + errors.str()}};
  } else {
    answer = json::parse(std::ifstream(dir / "answer.json"));
  }
  std::filesystem::remove_all(dir);
  return answer;
}

constexpr char kOracle[] = R"(
import json, sys
import numpy as np
from scipy import special, stats
req = json.load(open(sys.argv[1]))
out = {"smirnov": [float(special.smirnov(int(n), x)) for n, x in req["smirnov"]],
       "ks_asymp": [float(stats.kstwo.sf(d, np.round(max(n, m) * min(n, m) / (n + m))))
                    for d, n, m in req["ks_asymp"]]}
json.dump(out, open(sys.argv[2], "w"))
)";

double RelativeError(double actual, double expected) {
  return std::abs(actual - expected) / std::max(std::abs(expected), 1e-300);
}

TEST(SmirnovSf, TruncatedSumMatchesTheFullSum) {
  double worst = 0.0;
  for (const auto& [n, x] : SumCases()) {
    const double full = FullSum(n, x);
    const double sum = SmirnovSf(n, x);
    worst = std::max(worst, RelativeError(sum, full));
    // The reference itself is good to ~1e-12 relative (lgamma at n = 1e6).
    EXPECT_LE(RelativeError(sum, full), 2e-11)
        << "n = " << n << ", x = " << x << ": " << sum << " vs full sum " << full;
  }
  std::cout << "[ full sum ] " << SumCases().size() << " (n, x) pairs, max rel deviation " << worst
            << "\n";
}

// The stopping rule assumes the terms fall on both sides of the largest one.
TEST(SmirnovSf, TermsRiseToOnePeakAndFall) {
  for (const auto& [n, x] : SumCases()) {
    // SmirnovSf relies on it from n x^2 = 0.5 (a single peak) and sums every
    // term below.
    if (n > 100000 || static_cast<double>(n) * x * x < 0.5) continue;
    const long double nx = static_cast<long double>(n) * x;
    int descents_then_ascents = 0;
    bool descending = false;
    long double previous = ReferenceLogTerm(n, nx, 0);
    for (uint64_t j = 1; j < TermCount(n, x); ++j) {
      const long double current = ReferenceLogTerm(n, nx, j);
      // Steps below the reference's rounding (near a flat peak) carry no sign.
      if (std::abs(current - previous) > 1e-9L) {
        if (current < previous) descending = true;
        if (current > previous && descending) ++descents_then_ascents;
      }
      previous = current;
    }
    EXPECT_EQ(descents_then_ascents, 0) << "n = " << n << ", x = " << x;
  }
}

TEST(SmirnovSf, MatchesScipySmirnovAndTheTwoSampleAsymptoticPValue) {
  json request = {{"smirnov", json::array()}, {"ks_asymp", json::array()}};
  const std::vector<std::pair<uint64_t, double>> cases = SumCases();
  for (const auto& [n, x] : cases) request["smirnov"].push_back({n, x});
  // Unequal sample sizes as drift checks meet them (flights: 508,239 vs
  // 502,222; synthetic columns with nulls), and extremes of both sizes.
  const std::vector<std::pair<uint64_t, uint64_t>> sizes = {
      {508239, 502222}, {475013, 465212}, {500000, 500000}, {10001, 300},
      {1000000, 10},    {3000000, 7},     {300001, 299999}};
  std::vector<std::tuple<double, uint64_t, uint64_t>> pairs;
  for (const auto& [n, m] : sizes) {
    const double effective = std::nearbyint(double(n) * double(m) / double(n + m));
    for (double nd2 : {1e-4, 0.3, 1.0, 2.1, 2.3, 10.0, 50.0, 300.0, 369.0, 371.0}) {
      pairs.push_back({std::sqrt(nd2 / effective), n, m});
    }
    for (double d : {0.4 / effective, 0.49, 0.5, 0.75, 0.999}) pairs.push_back({d, n, m});
    std::erase_if(pairs, [](const auto& pair) { return std::get<0>(pair) > 1.0; });
  }
  for (const auto& [d, n, m] : pairs) request["ks_asymp"].push_back({d, n, m});
  const json answer = RunScipy(kOracle, request);
  ASSERT_FALSE(answer.contains("error")) << answer["error"].get<std::string>();
  double worst = 0.0;
  for (size_t index = 0; index < cases.size(); ++index) {
    const auto [n, x] = cases[index];
    const double expected = answer["smirnov"][index].get<double>();
    worst = std::max(worst, RelativeError(SmirnovSf(n, x), expected));
    EXPECT_LE(RelativeError(SmirnovSf(n, x), expected), 1e-12)
        << "n = " << n << ", x = " << x << ": " << SmirnovSf(n, x) << " vs " << expected;
  }
  std::cout << "[ oracle   ] scipy.special.smirnov: max rel deviation " << worst << "\n";
  worst = 0.0;
  for (size_t index = 0; index < pairs.size(); ++index) {
    const auto [d, n, m] = pairs[index];
    const double expected = answer["ks_asymp"][index].get<double>();
    const double p = KsPValue(d, n, m, KsMethod::kAsymptotic);
    worst = std::max(worst, RelativeError(p, expected));
    // 1e-9 as drift_test: where SciPy approximates (Pelz-Good), keel does too.
    EXPECT_LE(std::abs(p - expected), 1e-15 + 1e-9 * expected)
        << "d = " << d << ", sizes " << n << " x " << m << ": " << p << " vs " << expected;
  }
  std::cout << "[ oracle   ] kstwo.sf(d, round(n m / (n + m))): max rel deviation " << worst
            << "\n";
}

}  // namespace
}  // namespace keel::validate
