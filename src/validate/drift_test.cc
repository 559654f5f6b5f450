#include "validate/drift.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

// Random cases are generated here (fixed seeds), written to a temporary file
// and answered by SciPy / NumPy in ONE python3 subprocess for the whole
// binary (importing SciPy costs ~0.5 s); every test then compares against its
// part of the answer. The oracle is Debian's /usr/bin/python3; if it or SciPy
// is missing the tests fail, they never skip.
//
// Tolerances (|actual - expected| <= abs + rel |expected|):
//   statistics, distances, edges, shares: rel 1e-9, abs 1e-15 (near zero);
//     the chi-square statistic has abs 1e-12, as observed == expected leaves
//     rounding noise in f_exp (~1e-30 on one side, 0 on the other);
//   p-values and survival functions:     rel 1e-9, abs 1e-15. SciPy's exact
//     algorithms carry relative accuracy even for tiny p (the two-sample
//     lattice count computes 1 - p directly), so a relative bound applies
//     throughout; where SciPy approximates (Pelz-Good, Miller's 2 * Smirnov,
//     n > 1e6) keel reproduces the same approximation, so no looser bound is
//     needed.

namespace keel::validate {
namespace {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kRelTolerance = 1e-9;
constexpr double kAbsTolerance = 1e-15;

// ---------------------------------------------------------------------------
// Comparison helpers

::testing::AssertionResult Near(double actual, double expected, double rel = kRelTolerance,
                                double abs = kAbsTolerance) {
  if (std::isnan(expected) && std::isnan(actual)) return ::testing::AssertionSuccess();
  if (std::isinf(expected) && actual == expected) return ::testing::AssertionSuccess();
  const double error = std::abs(actual - expected);
  if (error <= abs + rel * std::abs(expected)) return ::testing::AssertionSuccess();
  std::ostringstream message;
  message.precision(17);
  message << "actual " << actual << " vs expected " << expected << " (error " << error << ")";
  return ::testing::AssertionFailure() << message.str();
}

// Tracks the largest relative deviation in a test so the log shows how close
// keel and SciPy actually are.
class Deviation {
 public:
  explicit Deviation(std::string name) : name_(std::move(name)) {}
  ~Deviation() {
    std::cout << "[ oracle   ] " << name_ << ": " << count_ << " comparisons, max rel deviation "
              << max_ << "\n";
  }
  void Record(double actual, double expected) {
    ++count_;
    if (std::isnan(actual) || std::isnan(expected) || std::isinf(expected)) return;
    const double scale = std::max(std::abs(expected), 1e-300);
    max_ = std::max(max_, std::abs(actual - expected) / scale);
  }

 private:
  std::string name_;
  int count_ = 0;
  double max_ = 0.0;
};

// JSON cannot carry NaN / inf; the oracle writes them as strings.
double Number(const json& value) {
  if (value.is_number()) return value.get<double>();
  const std::string text = value.get<std::string>();
  if (text == "nan") return kNaN;
  if (text == "inf") return kInf;
  if (text == "-inf") return -kInf;
  ADD_FAILURE() << "unexpected oracle value " << text;
  return kNaN;
}

std::vector<double> Numbers(const json& values) {
  std::vector<double> out;
  for (const json& value : values) out.push_back(Number(value));
  return out;
}

// ---------------------------------------------------------------------------
// Random samples

enum class Shape {
  kNormal,         // N(0, 1)
  kShifted,        // N(0.1, 1): a small drift
  kFarShifted,     // N(1, 1): p-values down to 1e-300
  kExponential,    // Exp(1), skewed
  kCauchy,         // heavy tails
  kSmallIntegers,  // Poisson(3): many ties within and across samples
  kConstant,       // 2.5 everywhere
};

std::vector<double> Draw(Shape shape, size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::exponential_distribution<double> exponential(1.0);
  std::cauchy_distribution<double> cauchy(0.0, 1.0);
  std::poisson_distribution<int> poisson(3.0);
  std::vector<double> values(size);
  for (double& value : values) {
    switch (shape) {
      case Shape::kNormal:
        value = normal(rng);
        break;
      case Shape::kShifted:
        value = normal(rng) + 0.1;
        break;
      case Shape::kFarShifted:
        value = normal(rng) + 1.0;
        break;
      case Shape::kExponential:
        value = exponential(rng);
        break;
      case Shape::kCauchy:
        value = cauchy(rng);
        break;
      case Shape::kSmallIntegers:
        value = poisson(rng);
        break;
      case Shape::kConstant:
        value = 2.5;
        break;
    }
  }
  std::sort(values.begin(), values.end());
  return values;
}

// Integer weights 1..max_weight (a KLL sketch's items), or fractional ones.
std::vector<double> DrawWeights(size_t size, uint64_t seed, bool integer) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> integer_weight(1, 8);
  std::uniform_real_distribution<double> real_weight(0.05, 3.0);
  std::vector<double> weights(size);
  for (double& weight : weights) weight = integer ? integer_weight(rng) : real_weight(rng);
  return weights;
}

struct SamplePair {
  std::vector<double> a;
  std::vector<double> a_weights;  // empty: unit weights
  std::vector<double> b;
  std::vector<double> b_weights;
};

struct Histograms {
  std::vector<double> p;
  std::vector<double> q;
};

struct PsiCase {
  SamplePair samples;  // a = reference, b = current
  int bins;
};

struct JsCase {
  Histograms histograms;
  double base;
};

// Every randomly generated case, built once.
struct Cases {
  std::vector<SamplePair> ks;
  std::vector<SamplePair> ks_weighted;  // integer weights first, then fractional
  std::vector<bool> ks_weighted_integer;
  std::vector<std::pair<double, uint64_t>> kstwo;  // (d, n)
  std::vector<std::pair<double, double>> gamma;    // (a, x)
  std::vector<SamplePair> wasserstein;
  std::vector<PsiCase> psi;
  std::vector<JsCase> js;
  std::vector<Histograms> linf;
  std::vector<Histograms> chisquare;  // p = observed counts, q = expected shares
};

SamplePair MakePair(size_t n, Shape a, size_t m, Shape b, uint64_t seed) {
  return {Draw(a, n, seed), {}, Draw(b, m, seed + 1), {}};
}

void AddKsCases(Cases& cases) {
  // Size pairs cover tiny samples, the exact regime (n != m: path counting;
  // n == m: reflection series), auto's switch at max(n, m) = 10000, large
  // unequal samples and SciPy's int32 fallback from 'exact' to 'asymp'.
  const std::vector<std::pair<size_t, size_t>> small = {
      {1, 1}, {1, 2}, {2, 7}, {7, 7}, {7, 50}, {50, 50}, {50, 300}, {300, 300}, {300, 1000}};
  const std::vector<std::pair<size_t, size_t>> large = {
      {1000, 1000},  {1000, 5000},   {5000, 5000}, {7, 20000},   {300, 20000},
      {5000, 20000}, {20000, 20000}, {10000, 300}, {10001, 300}, {10000, 10000}};
  const std::vector<std::pair<Shape, Shape>> all_shapes = {
      {Shape::kNormal, Shape::kNormal},
      {Shape::kNormal, Shape::kShifted},
      {Shape::kNormal, Shape::kFarShifted},
      {Shape::kExponential, Shape::kCauchy},
      {Shape::kSmallIntegers, Shape::kSmallIntegers},
      {Shape::kConstant, Shape::kSmallIntegers},
      {Shape::kConstant, Shape::kConstant}};
  const std::vector<std::pair<Shape, Shape>> few_shapes = {
      {Shape::kNormal, Shape::kShifted},
      {Shape::kNormal, Shape::kFarShifted},
      {Shape::kSmallIntegers, Shape::kSmallIntegers}};
  uint64_t seed = 1000;
  for (auto [n, m] : small) {
    for (auto [a, b] : all_shapes) cases.ks.push_back(MakePair(n, a, m, b, seed += 2));
  }
  for (auto [n, m] : large) {
    for (auto [a, b] : few_shapes) cases.ks.push_back(MakePair(n, a, m, b, seed += 2));
  }
  // lcm(9999, 10000) ~ 1e8: the widest path-counting band auto meets.
  cases.ks.push_back(MakePair(9999, Shape::kNormal, 10000, Shape::kShifted, seed += 2));
  // 46342 * 46341 >= 2^31 - 1 (coprime): method='exact' falls back to 'asymp'.
  cases.ks.push_back(MakePair(46342, Shape::kNormal, 46341, Shape::kShifted, seed += 2));

  for (bool integer : {true, false}) {
    for (auto [n, m] : std::vector<std::pair<size_t, size_t>>{
             {1, 1}, {2, 7}, {7, 50}, {50, 300}, {300, 1000}, {1000, 5000}}) {
      for (auto [a, b] : few_shapes) {
        SamplePair pair = MakePair(n, a, m, b, seed += 2);
        pair.a_weights = DrawWeights(n, seed + 7, integer);
        pair.b_weights = DrawWeights(m, seed + 9, integer);
        cases.ks_weighted.push_back(std::move(pair));
        cases.ks_weighted_integer.push_back(integer);
      }
    }
  }
}

void AddKolmogorovCases(Cases& cases) {
  // Points on both sides of every branch of KolmogorovSmirnovSf. SciPy's
  // Durbin and Smirnov code is slow in Python for large n, so large n get the
  // branch boundaries only.
  for (uint64_t n :
       {1, 2, 3, 5, 10, 50, 139, 140, 141, 500, 1000, 5000, 20000, 100000, 1000001, 3000000}) {
    const auto size = static_cast<double>(n);
    const bool large = n > 5000;
    std::vector<double> points = {
        0.0,  0.3 / size, 0.5 / size, 0.7 / size, 1.0 / size,          1.5 / size,       0.2,
        0.49, 0.5,        0.51,       0.75,       (size - 1.0) / size, 1.0 - 0.3 / size, 1.0};
    const std::vector<double> nd2_points =
        large ? std::vector<double>{0.3, 2.1, 2.3, 50.0, 369.0, 371.0}
              : std::vector<double>{0.3, 0.754, 0.755, 1.0,   2.1,   2.3,   3.9,
                                    4.1, 10.0,  50.0,  200.0, 369.0, 371.0, 400.0};
    for (double nd2 : nd2_points) points.push_back(std::sqrt(nd2 / size));
    const std::vector<double> factors = large ? std::vector<double>{0.999, 1.001}
                                              : std::vector<double>{0.9, 0.999, 1.001, 1.1, 2.0};
    for (double factor : factors) {
      points.push_back(factor * std::pow(1.4 / size, 2.0 / 3.0));  // n d^1.5 = 1.4
    }
    for (double d : points) {
      if (d <= 1.0) cases.kstwo.push_back({d, n});
    }
  }
  for (double a : {0.5, 1.0, 1.5, 2.5, 4.5, 10.0, 49.5, 500.0, 4999.5}) {
    for (double ratio : {1e-6, 0.01, 0.3, 0.8, 0.99, 1.0, 1.01, 1.2, 2.0, 5.0, 20.0}) {
      cases.gamma.push_back({a, a * ratio});
    }
    cases.gamma.push_back({a, a + 1.0});
    cases.gamma.push_back({a, a + 1.0 - 1e-9});
  }
}

void AddSampleDistanceCases(Cases& cases) {
  uint64_t seed = 5000;
  const std::vector<std::pair<size_t, size_t>> sizes = {
      {1, 1}, {1, 2}, {2, 7}, {7, 50}, {50, 300}, {300, 1000}, {1000, 5000}, {5000, 20000}};
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {Shape::kNormal, Shape::kShifted},
      {Shape::kExponential, Shape::kCauchy},
      {Shape::kSmallIntegers, Shape::kSmallIntegers},
      {Shape::kConstant, Shape::kNormal},
      {Shape::kConstant, Shape::kConstant}};
  for (auto [n, m] : sizes) {
    for (auto [a, b] : shapes) {
      cases.wasserstein.push_back(MakePair(n, a, m, b, seed += 2));
      SamplePair weighted = MakePair(n, a, m, b, seed += 2);
      weighted.a_weights = DrawWeights(n, seed + 5, /*integer=*/n % 2 == 0);
      weighted.b_weights = DrawWeights(m, seed + 6, /*integer=*/false);
      cases.wasserstein.push_back(std::move(weighted));
    }
  }
  for (auto [n, m] : sizes) {
    for (auto [a, b] : shapes) {
      for (int bins : {10, 4}) {
        cases.psi.push_back({MakePair(n, a, m, b, seed += 2), bins});
      }
      // Integer weights: quantiles of the weight-expanded sample.
      PsiCase weighted{MakePair(n, a, m, b, seed += 2), 10};
      weighted.samples.a_weights = DrawWeights(n, seed + 5, /*integer=*/true);
      weighted.samples.b_weights = DrawWeights(m, seed + 6, /*integer=*/true);
      cases.psi.push_back(std::move(weighted));
    }
  }
}

// Histograms with some exactly-zero bins (categories seen on one side only).
Histograms DrawHistograms(size_t bins, uint64_t seed, double zero_share) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::poisson_distribution<int> counts(40.0);
  Histograms histograms{std::vector<double>(bins), std::vector<double>(bins)};
  for (size_t bin = 0; bin < bins; ++bin) {
    histograms.p[bin] = unit(rng) < zero_share ? 0.0 : counts(rng);
    histograms.q[bin] = unit(rng) < zero_share ? 0.0 : counts(rng) * (1.0 + 0.3 * unit(rng));
  }
  histograms.p[0] = 5.0;  // never all zero
  histograms.q[0] = 3.0;
  return histograms;
}

void AddHistogramCases(Cases& cases) {
  uint64_t seed = 9000;
  for (size_t bins : {1, 2, 3, 10, 50, 1000}) {
    for (double zero_share : {0.0, 0.2, 0.6}) {
      Histograms histograms = DrawHistograms(bins, seed += 3, zero_share);
      cases.js.push_back({histograms, 2.0});
      cases.js.push_back({histograms, std::exp(1.0)});
      cases.js.push_back({histograms, 10.0});
      cases.linf.push_back(histograms);
      // Chi-square: observed counts against shares (q normalised). Zero
      // shares with positive counts give +inf; zero/zero bins are dropped.
      Histograms chi = DrawHistograms(bins, seed += 3, zero_share / 2);
      for (double& count : chi.p) count = std::round(count);
      cases.chisquare.push_back(chi);
      Histograms same = chi;
      same.q = chi.p;  // observed exactly as expected
      cases.chisquare.push_back(same);
    }
  }
}

const Cases& AllCases() {
  static const Cases* cases = [] {
    auto* built = new Cases;
    AddKsCases(*built);
    AddKolmogorovCases(*built);
    AddSampleDistanceCases(*built);
    AddHistogramCases(*built);
    return built;
  }();
  return *cases;
}

// ---------------------------------------------------------------------------
// The oracle

constexpr const char* kOracleScript = R"PY(
import json
import sys
import warnings

import numpy as np
import scipy
from scipy import special, stats
from scipy.spatial import distance

warnings.simplefilter("ignore")  # ks_2samp warns when 'exact' falls back


def enc(x):
    x = float(x)
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


# Arrays travel as [offset, length] into a file of little-endian float64.
blob = np.fromfile(sys.argv[2], dtype="<f8")


def arr(ref):
    return blob[ref[0]:ref[0] + ref[1]]


def weighted_cdf(values, weights, at):
    cumulative = np.concatenate(([0.0], np.cumsum(weights)))
    return cumulative[np.searchsorted(values, at, side="right")] / cumulative[-1]


req = json.load(open(sys.argv[1]))
out = {"scipy": scipy.__version__, "numpy": np.__version__}

out["ks"] = []
for case in req["ks"]:
    a, b = arr(case["a"]), arr(case["b"])
    row = {}
    for method in ("auto", "exact", "asymp"):
        result = stats.ks_2samp(a, b, method=method)
        row[method] = [enc(result.statistic), enc(result.pvalue)]
    out["ks"].append(row)

out["ks_weighted"] = []
for case in req["ks_weighted"]:
    a, wa, b, wb = arr(case["a"]), arr(case["wa"]), arr(case["b"]), arr(case["wb"])
    grid = np.unique(np.concatenate((a, b)))
    direct = np.max(np.abs(weighted_cdf(a, wa, grid) - weighted_cdf(b, wb, grid)))
    row = {"direct": enc(direct)}
    if case["integer"]:
        expanded = stats.ks_2samp(np.repeat(a, wa.astype(int)), np.repeat(b, wb.astype(int)))
        row["expanded"] = enc(expanded.statistic)
    out["ks_weighted"].append(row)

out["kstwo"] = [enc(stats.kstwo.sf(d, n)) for d, n in req["kstwo"]]
out["gammaincc"] = [enc(special.gammaincc(a, x)) for a, x in req["gammaincc"]]

out["wasserstein"] = []
for case in req["wasserstein"]:
    a, b = arr(case["a"]), arr(case["b"])
    wa = arr(case["wa"]) if case["wa"][1] else None
    wb = arr(case["wb"]) if case["wb"][1] else None
    w = stats.wasserstein_distance(a, b, wa, wb)
    if a.min() == a.max():
        normalized = 0.0 if w == 0 else np.inf
    else:
        mean = np.average(a, weights=wa)
        normalized = w / np.sqrt(np.average((a - mean) ** 2, weights=wa))
    out["wasserstein"].append([enc(w), enc(normalized)])

out["psi"] = []
for case in req["psi"]:
    ref, cur, bins = arr(case["ref"]), arr(case["cur"]), case["bins"]
    wref = arr(case["wref"]) if case["wref"][1] else np.ones(len(ref))
    wcur = arr(case["wcur"]) if case["wcur"][1] else np.ones(len(cur))
    expanded = np.repeat(ref, wref.astype(int))
    edges = np.unique(np.quantile(expanded, np.arange(1, bins) / bins))

    def shares(values, weights):
        index = np.searchsorted(edges, values, side="right")
        return np.bincount(index, weights=weights, minlength=len(edges) + 1) / weights.sum()

    ref_shares, cur_shares = shares(ref, wref), shares(cur, wcur)
    r, c = np.maximum(ref_shares, 1e-4), np.maximum(cur_shares, 1e-4)
    psi = np.sum((c - r) * np.log(c / r))
    out["psi"].append({"edges": [enc(x) for x in edges],
                       "ref_shares": [enc(x) for x in ref_shares],
                       "cur_shares": [enc(x) for x in cur_shares],
                       "psi": enc(psi)})

out["js"] = [enc(distance.jensenshannon(arr(c["p"]), arr(c["q"]), c["base"])) for c in req["js"]]

out["linf"] = []
for case in req["linf"]:
    p, q = arr(case["p"]), arr(case["q"])
    out["linf"].append(enc(np.max(np.abs(p / p.sum() - q / q.sum()))))

out["chisquare"] = []
for case in req["chisquare"]:
    observed, shares = arr(case["p"]), arr(case["q"])
    keep = (observed != 0) | (shares != 0)  # keel drops 0/0 categories
    observed, shares = observed[keep], shares[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        result = stats.chisquare(observed, f_exp=shares / shares.sum() * observed.sum())
    out["chisquare"].append([enc(result.statistic), enc(result.pvalue)])

json.dump(out, sys.stdout)
)PY";

// The arrays of a request, stored back to back; JSON refers to them by
// [offset, length] (a 20 MB JSON text would cost more than the oracle).
class Blob {
 public:
  json Add(const std::vector<double>& values) {
    const json ref = {data_.size(), values.size()};
    data_.insert(data_.end(), values.begin(), values.end());
    return ref;
  }
  void Write(const std::filesystem::path& path) const {
    static_assert(std::endian::native == std::endian::little);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(data_.data()),
               static_cast<std::streamsize>(data_.size() * sizeof(double)));
  }

 private:
  std::vector<double> data_;
};

json ToJson(const SamplePair& pair, Blob& blob) {
  return {{"a", blob.Add(pair.a)},
          {"b", blob.Add(pair.b)},
          {"wa", blob.Add(pair.a_weights)},
          {"wb", blob.Add(pair.b_weights)}};
}

json BuildRequest(const Cases& cases, Blob& blob) {
  json request;
  request["ks"] = json::array();
  for (const SamplePair& pair : cases.ks) request["ks"].push_back(ToJson(pair, blob));
  request["ks_weighted"] = json::array();
  for (size_t index = 0; index < cases.ks_weighted.size(); ++index) {
    json item = ToJson(cases.ks_weighted[index], blob);
    item["integer"] = static_cast<bool>(cases.ks_weighted_integer[index]);
    request["ks_weighted"].push_back(item);
  }
  request["kstwo"] = json::array();
  for (auto [d, n] : cases.kstwo) request["kstwo"].push_back({d, n});
  request["gammaincc"] = json::array();
  for (auto [a, x] : cases.gamma) request["gammaincc"].push_back({a, x});
  request["wasserstein"] = json::array();
  for (const SamplePair& pair : cases.wasserstein) {
    request["wasserstein"].push_back(ToJson(pair, blob));
  }
  request["psi"] = json::array();
  for (const PsiCase& psi : cases.psi) {
    request["psi"].push_back({{"ref", blob.Add(psi.samples.a)},
                              {"wref", blob.Add(psi.samples.a_weights)},
                              {"cur", blob.Add(psi.samples.b)},
                              {"wcur", blob.Add(psi.samples.b_weights)},
                              {"bins", psi.bins}});
  }
  request["js"] = json::array();
  for (const JsCase& js : cases.js) {
    request["js"].push_back(
        {{"p", blob.Add(js.histograms.p)}, {"q", blob.Add(js.histograms.q)}, {"base", js.base}});
  }
  request["linf"] = json::array();
  for (const Histograms& h : cases.linf) {
    request["linf"].push_back({{"p", blob.Add(h.p)}, {"q", blob.Add(h.q)}});
  }
  request["chisquare"] = json::array();
  for (const Histograms& h : cases.chisquare) {
    request["chisquare"].push_back({{"p", blob.Add(h.p)}, {"q", blob.Add(h.q)}});
  }
  return request;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// Runs the oracle once; on failure returns {"error": ...}.
json RunOracle() {
  std::string pattern = (std::filesystem::temp_directory_path() / "keel_drift_XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) return {{"error", "mkdtemp failed"}};
  const std::filesystem::path dir = pattern;
  const std::filesystem::path script = dir / "oracle.py";
  const std::filesystem::path input = dir / "request.json";
  const std::filesystem::path arrays = dir / "arrays.f64";
  const std::filesystem::path output = dir / "answer.json";
  const std::filesystem::path errors = dir / "stderr.txt";
  std::ofstream(script) << kOracleScript;
  Blob blob;
  std::ofstream(input) << BuildRequest(AllCases(), blob).dump();
  blob.Write(arrays);
  const std::string command = "/usr/bin/python3 " + script.string() + " " + input.string() + " " +
                              arrays.string() + " > " + output.string() + " 2> " + errors.string();
  const int status = std::system(command.c_str());
  json answer;
  if (status != 0) {
    answer = {{"error", "oracle exited with " + std::to_string(status) + ": " + ReadFile(errors)}};
  } else {
    try {
      answer = json::parse(ReadFile(output));
    } catch (const json::exception& error) {
      answer = {{"error", std::string("unparsable oracle answer: ") + error.what()}};
    }
  }
  std::filesystem::remove_all(dir);
  return answer;
}

const json& Oracle() {
  static const json* answer = new json(RunOracle());
  return *answer;
}

#define ASSERT_ORACLE()                                                               \
  do {                                                                                \
    ASSERT_FALSE(Oracle().contains("error")) << Oracle()["error"].get<std::string>(); \
  } while (0)

WeightedSample Sample(const std::vector<double>& values, const std::vector<double>& weights) {
  return {values, weights};
}

std::string Describe(const SamplePair& pair) {
  return "sizes " + std::to_string(pair.a.size()) + " x " + std::to_string(pair.b.size());
}

// ---------------------------------------------------------------------------
// Against SciPy / NumPy

TEST(DriftOracle, UsesTheSciPyVersionTheHeaderDocuments) {
  ASSERT_ORACLE();
  std::cout << "[ oracle   ] scipy " << Oracle()["scipy"].get<std::string>() << ", numpy "
            << Oracle()["numpy"].get<std::string>() << "\n";
  EXPECT_EQ(Oracle()["scipy"].get<std::string>(), "1.10.1");
}

TEST(KsTwoSample, MatchesScipyKs2sampForEveryMethod) {
  ASSERT_ORACLE();
  const Cases& cases = AllCases();
  const json& answers = Oracle()["ks"];
  ASSERT_EQ(answers.size(), cases.ks.size());
  Deviation statistic_deviation("ks_2samp statistic");
  Deviation p_deviation("ks_2samp p-value (auto, exact, asymp)");
  for (size_t index = 0; index < cases.ks.size(); ++index) {
    const SamplePair& pair = cases.ks[index];
    SCOPED_TRACE(Describe(pair) + ", case " + std::to_string(index));
    const KsResult result = KsTwoSample(pair.a, pair.b);
    const double expected_statistic = Number(answers[index]["auto"][0]);
    EXPECT_TRUE(Near(result.statistic, expected_statistic));
    statistic_deviation.Record(result.statistic, expected_statistic);
    // KsTwoSample's p-value is method 'auto'.
    EXPECT_TRUE(Near(result.p_value, Number(answers[index]["auto"][1])));
    p_deviation.Record(result.p_value, Number(answers[index]["auto"][1]));
    const std::pair<const char*, KsMethod> methods[] = {{"exact", KsMethod::kExact},
                                                        {"asymp", KsMethod::kAsymptotic}};
    for (auto [name, method] : methods) {
      const double p = KsPValue(result.statistic, pair.a.size(), pair.b.size(), method);
      const double expected = Number(answers[index][name][1]);
      EXPECT_TRUE(Near(p, expected)) << "method " << name;
      p_deviation.Record(p, expected);
    }
  }
}

TEST(KsStatistic, MatchesWeightedCdfsAndExpandedSamples) {
  ASSERT_ORACLE();
  const Cases& cases = AllCases();
  const json& answers = Oracle()["ks_weighted"];
  ASSERT_EQ(answers.size(), cases.ks_weighted.size());
  Deviation deviation("weighted KS statistic");
  for (size_t index = 0; index < cases.ks_weighted.size(); ++index) {
    const SamplePair& pair = cases.ks_weighted[index];
    SCOPED_TRACE(Describe(pair) + ", case " + std::to_string(index));
    const double statistic =
        KsStatistic(Sample(pair.a, pair.a_weights), Sample(pair.b, pair.b_weights));
    const double direct = Number(answers[index]["direct"]);
    EXPECT_TRUE(Near(statistic, direct));
    deviation.Record(statistic, direct);
    if (cases.ks_weighted_integer[index]) {
      EXPECT_TRUE(Near(statistic, Number(answers[index]["expanded"])));
    }
  }
}

TEST(KolmogorovSmirnovSf, MatchesScipyKstwoSfInEveryRegime) {
  ASSERT_ORACLE();
  const Cases& cases = AllCases();
  const json& answers = Oracle()["kstwo"];
  ASSERT_EQ(answers.size(), cases.kstwo.size());
  Deviation deviation("kstwo.sf");
  for (size_t index = 0; index < cases.kstwo.size(); ++index) {
    const auto [d, n] = cases.kstwo[index];
    const double sf = KolmogorovSmirnovSf(d, n);
    const double expected = Number(answers[index]);
    EXPECT_TRUE(Near(sf, expected)) << "d = " << d << ", n = " << n;
    deviation.Record(sf, expected);
  }
}

TEST(RegularizedUpperGamma, MatchesScipyGammaincc) {
  ASSERT_ORACLE();
  const Cases& cases = AllCases();
  const json& answers = Oracle()["gammaincc"];
  ASSERT_EQ(answers.size(), cases.gamma.size());
  Deviation deviation("gammaincc");
  for (size_t index = 0; index < cases.gamma.size(); ++index) {
    const auto [a, x] = cases.gamma[index];
    const double q = RegularizedUpperGamma(a, x);
    const double expected = Number(answers[index]);
    EXPECT_TRUE(Near(q, expected)) << "a = " << a << ", x = " << x;
    deviation.Record(q, expected);
  }
}

TEST(WassersteinDistance, MatchesScipyWithAndWithoutWeights) {
  ASSERT_ORACLE();
  const Cases& cases = AllCases();
  const json& answers = Oracle()["wasserstein"];
  ASSERT_EQ(answers.size(), cases.wasserstein.size());
  Deviation distance_deviation("wasserstein_distance");
  Deviation normalized_deviation("normed wasserstein");
  for (size_t index = 0; index < cases.wasserstein.size(); ++index) {
    const SamplePair& pair = cases.wasserstein[index];
    SCOPED_TRACE(Describe(pair) + ", case " + std::to_string(index));
    const WeightedSample a = Sample(pair.a, pair.a_weights);
    const WeightedSample b = Sample(pair.b, pair.b_weights);
    const double distance = WassersteinDistance(a, b);
    const double normalized = NormalizedWasserstein(a, b);
    EXPECT_TRUE(Near(distance, Number(answers[index][0])));
    EXPECT_TRUE(Near(normalized, Number(answers[index][1])));
    distance_deviation.Record(distance, Number(answers[index][0]));
    normalized_deviation.Record(normalized, Number(answers[index][1]));
  }
}

TEST(PopulationStabilityIndex, MatchesNumpyQuantileEdgesAndSearchsortedBins) {
  ASSERT_ORACLE();
  const Cases& cases = AllCases();
  const json& answers = Oracle()["psi"];
  ASSERT_EQ(answers.size(), cases.psi.size());
  Deviation deviation("psi (edges, shares, index)");
  for (size_t index = 0; index < cases.psi.size(); ++index) {
    const PsiCase& psi_case = cases.psi[index];
    SCOPED_TRACE(Describe(psi_case.samples) + ", bins " + std::to_string(psi_case.bins) +
                 ", case " + std::to_string(index));
    const WeightedSample reference = Sample(psi_case.samples.a, psi_case.samples.a_weights);
    const WeightedSample current = Sample(psi_case.samples.b, psi_case.samples.b_weights);
    const std::vector<double> edges = QuantileBinEdges(reference, psi_case.bins);
    const std::vector<double> expected_edges = Numbers(answers[index]["edges"]);
    ASSERT_EQ(edges.size(), expected_edges.size());
    for (size_t edge = 0; edge < edges.size(); ++edge) {
      // Bit for bit: the same virtual index and interpolation as NumPy's 'linear'.
      EXPECT_EQ(edges[edge], expected_edges[edge]) << "edge " << edge;
      deviation.Record(edges[edge], expected_edges[edge]);
    }
    const std::vector<double> reference_shares = BinShares(reference, edges);
    const std::vector<double> current_shares = BinShares(current, edges);
    const std::vector<double> expected_reference = Numbers(answers[index]["ref_shares"]);
    const std::vector<double> expected_current = Numbers(answers[index]["cur_shares"]);
    ASSERT_EQ(reference_shares.size(), expected_reference.size());
    ASSERT_EQ(current_shares.size(), expected_current.size());
    for (size_t bin = 0; bin < reference_shares.size(); ++bin) {
      EXPECT_TRUE(Near(reference_shares[bin], expected_reference[bin])) << "bin " << bin;
      EXPECT_TRUE(Near(current_shares[bin], expected_current[bin])) << "bin " << bin;
    }
    const double psi = PopulationStabilityIndex(reference_shares, current_shares);
    EXPECT_TRUE(Near(psi, Number(answers[index]["psi"])));
    deviation.Record(psi, Number(answers[index]["psi"]));
  }
}

TEST(JensenShannonDistance, MatchesScipyForBases2EAnd10WithZeroBins) {
  ASSERT_ORACLE();
  const Cases& cases = AllCases();
  const json& answers = Oracle()["js"];
  ASSERT_EQ(answers.size(), cases.js.size());
  Deviation deviation("jensenshannon");
  for (size_t index = 0; index < cases.js.size(); ++index) {
    const JsCase& js = cases.js[index];
    const double distance = JensenShannonDistance(js.histograms.p, js.histograms.q, js.base);
    EXPECT_TRUE(Near(distance, Number(answers[index])))
        << "bins " << js.histograms.p.size() << ", base " << js.base;
    deviation.Record(distance, Number(answers[index]));
  }
}

TEST(LInfinityDistance, MatchesNumpyOnNormalisedHistograms) {
  ASSERT_ORACLE();
  const Cases& cases = AllCases();
  const json& answers = Oracle()["linf"];
  ASSERT_EQ(answers.size(), cases.linf.size());
  for (size_t index = 0; index < cases.linf.size(); ++index) {
    EXPECT_TRUE(
        Near(LInfinityDistance(cases.linf[index].p, cases.linf[index].q), Number(answers[index])))
        << "bins " << cases.linf[index].p.size();
  }
}

TEST(ChiSquareTest, MatchesScipyChisquare) {
  ASSERT_ORACLE();
  const Cases& cases = AllCases();
  const json& answers = Oracle()["chisquare"];
  ASSERT_EQ(answers.size(), cases.chisquare.size());
  Deviation deviation("chisquare (statistic, p-value)");
  for (size_t index = 0; index < cases.chisquare.size(); ++index) {
    const Histograms& h = cases.chisquare[index];
    SCOPED_TRACE("bins " + std::to_string(h.p.size()) + ", case " + std::to_string(index));
    const ChiSquareResult result = ChiSquareTest(h.p, h.q);
    // When observed equals expected the statistic is rounding noise in f_exp
    // (~1e-30 against 0), so it gets an absolute floor of 1e-12.
    EXPECT_TRUE(Near(result.statistic, Number(answers[index][0]), kRelTolerance, 1e-12));
    EXPECT_TRUE(Near(result.p_value, Number(answers[index][1])));
    deviation.Record(result.statistic, Number(answers[index][0]));
    deviation.Record(result.p_value, Number(answers[index][1]));
  }
}

// ---------------------------------------------------------------------------
// Hand-checked cases

TEST(KsTwoSample, IdenticalSamplesHaveZeroStatisticAndPValueOne) {
  const std::vector<double> sample = {0.5, 1.0, 1.0, 2.0, 7.0};
  const KsResult result = KsTwoSample(sample, sample);
  EXPECT_EQ(result.statistic, 0.0);
  EXPECT_EQ(result.p_value, 1.0);
  for (KsMethod method : {KsMethod::kAuto, KsMethod::kExact, KsMethod::kAsymptotic}) {
    EXPECT_EQ(KsPValue(0.0, 5, 5, method), 1.0);
    EXPECT_EQ(KsPValue(0.0, 20000, 30000, method), 1.0);
  }
}

TEST(KsTwoSample, DisjointSamplesGiveStatisticOneAndTheShareOfExtremePaths) {
  // Only the 2 paths "all of a first" and "all of b first" reach D = 1, out of
  // C(n + m, n) equally likely orders.
  const std::vector<double> low = {1.0, 2.0, 3.0};
  const std::vector<double> high = {4.0, 5.0, 6.0};
  EXPECT_EQ(KsTwoSample(low, high).statistic, 1.0);
  EXPECT_NEAR(KsTwoSample(low, high).p_value, 2.0 / 20.0, 1e-15);
  EXPECT_NEAR(KsTwoSample(high, low).p_value, 2.0 / 20.0, 1e-15);
  const std::vector<double> two = {10.0, 11.0};
  EXPECT_EQ(KsTwoSample(low, two).statistic, 1.0);
  EXPECT_NEAR(KsTwoSample(low, two).p_value, 2.0 / 10.0, 1e-15);
  EXPECT_NEAR(KsPValue(1.0, 3, 2, KsMethod::kExact), 0.2, 1e-15);
}

TEST(KsStatistic, EvaluatesTiesAfterBothSamplesJump) {
  // F_a(1) = 2/3, F_b(1) = 1/3; at 2 both are 1.
  const std::vector<double> a = {1.0, 1.0, 2.0};
  const std::vector<double> b = {1.0, 2.0, 2.0};
  EXPECT_DOUBLE_EQ(KsStatistic({a, {}}, {b, {}}), 1.0 / 3.0);
  // Weights: F_a(1) = 3/4, F_b(1) = 1/4.
  const std::vector<double> values = {1.0, 2.0};
  const std::vector<double> heavy_low = {3.0, 1.0};
  const std::vector<double> heavy_high = {1.0, 3.0};
  EXPECT_DOUBLE_EQ(KsStatistic({values, heavy_low}, {values, heavy_high}), 0.5);
}

TEST(KsStatistic, IntegerWeightsEqualTheExpandedSample) {
  const std::vector<double> a = Draw(Shape::kSmallIntegers, 40, 77);
  const std::vector<double> b = Draw(Shape::kNormal, 30, 78);
  const std::vector<double> a_weights = DrawWeights(a.size(), 79, true);
  const std::vector<double> b_weights = DrawWeights(b.size(), 80, true);
  std::vector<double> a_expanded;
  std::vector<double> b_expanded;
  for (size_t i = 0; i < a.size(); ++i)
    a_expanded.insert(a_expanded.end(), static_cast<size_t>(a_weights[i]), a[i]);
  for (size_t i = 0; i < b.size(); ++i)
    b_expanded.insert(b_expanded.end(), static_cast<size_t>(b_weights[i]), b[i]);
  EXPECT_DOUBLE_EQ(KsStatistic({a, a_weights}, {b, b_weights}),
                   KsStatistic({a_expanded, {}}, {b_expanded, {}}));
  EXPECT_DOUBLE_EQ(WassersteinDistance({a, a_weights}, {b, b_weights}),
                   WassersteinDistance({a_expanded, {}}, {b_expanded, {}}));
  EXPECT_EQ(QuantileBinEdges({a, a_weights}), QuantileBinEdges({a_expanded, {}}));
}

TEST(KsPValue, ReportsUndefinedInputsAsNaN) {
  EXPECT_TRUE(std::isnan(KsPValue(0.5, 0, 10)));
  EXPECT_TRUE(std::isnan(KsPValue(kNaN, 10, 10)));
  EXPECT_TRUE(std::isnan(KsPValue(1.5, 10, 10)));
  EXPECT_TRUE(std::isnan(KsPValue(-0.1, 10, 10)));
  // As SciPy: the effective size round(1 * 1 / 2) is 0.
  EXPECT_TRUE(std::isnan(KsPValue(1.0, 1, 1, KsMethod::kAsymptotic)));
  EXPECT_EQ(KsPValue(1.0, 1, 1, KsMethod::kExact), 1.0);
}

TEST(KolmogorovSmirnovSf, SampleOfOneIsTwiceTheDistanceToOne) {
  // D_1 = max(F(x), 1 - F(x)) is uniform on [1/2, 1].
  for (double d : {0.5000001, 0.6, 0.75, 0.9, 0.999}) {
    EXPECT_NEAR(KolmogorovSmirnovSf(d, 1), 2.0 * (1.0 - d), 1e-15) << d;
  }
  EXPECT_EQ(KolmogorovSmirnovSf(0.3, 1), 1.0);
  EXPECT_EQ(KolmogorovSmirnovSf(1.0, 10), 0.0);
  EXPECT_TRUE(std::isnan(KolmogorovSmirnovSf(0.3, 0)));
  EXPECT_TRUE(std::isnan(KolmogorovSmirnovSf(kNaN, 5)));
}

TEST(KsStatistic, RejectsEmptyUnsortedAndNaNSamples) {
  const std::vector<double> sample = {1.0, 2.0};
  const std::vector<double> empty;
  const std::vector<double> unsorted = {2.0, 1.0};
  const std::vector<double> with_nan = {1.0, kNaN};
  const std::vector<double> one_weight = {1.0};
  const std::vector<double> negative_weights = {1.0, -1.0};
  const std::vector<double> zero_weights = {0.0, 0.0};
  EXPECT_TRUE(std::isnan(KsStatistic({empty, {}}, {sample, {}})));
  EXPECT_TRUE(std::isnan(KsStatistic({unsorted, {}}, {sample, {}})));
  EXPECT_TRUE(std::isnan(KsStatistic({with_nan, {}}, {sample, {}})));
  EXPECT_TRUE(std::isnan(KsStatistic({sample, one_weight}, {sample, {}})));
  EXPECT_TRUE(std::isnan(KsStatistic({sample, negative_weights}, {sample, {}})));
  EXPECT_TRUE(std::isnan(KsStatistic({sample, zero_weights}, {sample, {}})));
  const KsResult result = KsTwoSample(empty, sample);
  EXPECT_TRUE(std::isnan(result.statistic));
  EXPECT_TRUE(std::isnan(result.p_value));
  EXPECT_TRUE(std::isnan(WassersteinDistance({sample, {}}, {unsorted, {}})));
  EXPECT_TRUE(std::isnan(NormalizedWasserstein({empty, {}}, {sample, {}})));
}

TEST(WassersteinDistance, IsTheAreaBetweenTheCdfs) {
  const std::vector<double> zero = {0.0};
  const std::vector<double> one = {1.0};
  EXPECT_DOUBLE_EQ(WassersteinDistance({zero, {}}, {one, {}}), 1.0);
  const std::vector<double> values = {0.0, 1.0};
  const std::vector<double> low = {3.0, 1.0};
  const std::vector<double> high = {1.0, 3.0};
  EXPECT_DOUBLE_EQ(WassersteinDistance({values, low}, {values, high}), 0.5);
  EXPECT_EQ(WassersteinDistance({values, {}}, {values, {}}), 0.0);
}

TEST(NormalizedWasserstein, DividesByThePopulationStdAndHandlesConstantReference) {
  const std::vector<double> reference = {0.0, 2.0};  // std 1 (ddof = 0)
  const std::vector<double> current = {3.0, 5.0};
  EXPECT_DOUBLE_EQ(NormalizedWasserstein({reference, {}}, {current, {}}), 3.0);
  const std::vector<double> constant = {0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1};
  EXPECT_EQ(NormalizedWasserstein({constant, {}}, {constant, {}}), 0.0);
  EXPECT_EQ(NormalizedWasserstein({constant, {}}, {current, {}}), kInf);
}

TEST(QuantileBinEdges, DeduplicatesTiesAndConstantColumns) {
  const std::vector<double> constant(100, 4.0);
  EXPECT_EQ(QuantileBinEdges({constant, {}}), std::vector<double>{4.0});
  const std::vector<double> shares = BinShares({constant, {}}, QuantileBinEdges({constant, {}}));
  EXPECT_EQ(shares, (std::vector<double>{0.0, 1.0}));
  const std::vector<double> two_values = {0.0, 0.0, 0.0, 1.0};
  // np.quantile([0, 0, 0, 1], [.25, .5, .75]) = [0, 0, 0.25]
  EXPECT_EQ(QuantileBinEdges({two_values, {}}, 4), (std::vector<double>{0.0, 0.25}));
  EXPECT_TRUE(QuantileBinEdges({two_values, {}}, 1).empty());
  const std::vector<double> empty;
  const std::vector<double> edges = QuantileBinEdges({empty, {}});
  ASSERT_EQ(edges.size(), 1u);
  EXPECT_TRUE(std::isnan(edges[0]));
}

TEST(BinShares, PutsEdgeValuesInTheUpperBinAndRejectsBadEdges) {
  const std::vector<double> values = {-5.0, 1.0, 1.5, 2.0, 9.0};
  const std::vector<double> edges = {1.0, 2.0};
  EXPECT_EQ(BinShares({values, {}}, edges), (std::vector<double>{0.2, 0.4, 0.4}));
  const std::vector<double> unsorted_edges = {2.0, 1.0};
  for (double share : BinShares({values, {}}, unsorted_edges)) EXPECT_TRUE(std::isnan(share));
  const std::vector<double> empty;
  const std::vector<double> empty_shares = BinShares({empty, {}}, edges);
  ASSERT_EQ(empty_shares.size(), 3u);
  EXPECT_TRUE(std::isnan(empty_shares[0]));
}

TEST(PopulationStabilityIndex, SumsTheSymmetrisedLogRatioWithFlooredShares) {
  const std::vector<double> half = {0.5, 0.5};
  const std::vector<double> skewed = {0.25, 0.75};
  EXPECT_EQ(PopulationStabilityIndex(half, half), 0.0);
  EXPECT_NEAR(PopulationStabilityIndex(half, skewed), -0.25 * std::log(0.5) + 0.25 * std::log(1.5),
              1e-15);
  const std::vector<double> reference = {0.0, 1.0};
  const std::vector<double> current = {1.0, 0.0};
  EXPECT_NEAR(PopulationStabilityIndex(reference, current),
              2.0 * (1.0 - 1e-4) * std::log(1.0 / 1e-4), 1e-12);
  EXPECT_TRUE(std::isnan(PopulationStabilityIndex(half, std::vector<double>{1.0})));
  EXPECT_TRUE(std::isnan(PopulationStabilityIndex(std::vector<double>{}, {})));
  EXPECT_TRUE(std::isnan(PopulationStabilityIndex(half, std::vector<double>{-0.5, 1.5})));
}

TEST(JensenShannonDistance, IsOneForDisjointAndZeroForEqualHistograms) {
  const std::vector<double> left = {1.0, 0.0};
  const std::vector<double> right = {0.0, 1.0};
  EXPECT_DOUBLE_EQ(JensenShannonDistance(left, right), 1.0);
  EXPECT_DOUBLE_EQ(JensenShannonDistance(left, right, std::exp(1.0)), std::sqrt(std::log(2.0)));
  const std::vector<double> counts = {3.0, 5.0, 0.0};
  const std::vector<double> scaled = {6.0, 10.0, 0.0};
  EXPECT_EQ(JensenShannonDistance(counts, scaled), 0.0);
  // Nearly equal histograms: positive, of the order of the difference.
  const std::vector<double> nudged = {3.0, 5.0 + 1e-9, 0.0};
  const double tiny = JensenShannonDistance(counts, nudged);
  EXPECT_GT(tiny, 0.0);
  EXPECT_LT(tiny, 1e-9);
  const std::vector<double> zeros = {0.0, 0.0};
  EXPECT_TRUE(std::isnan(JensenShannonDistance(zeros, right)));
  EXPECT_TRUE(std::isnan(JensenShannonDistance(left, counts)));
  EXPECT_TRUE(std::isnan(JensenShannonDistance(left, right, 1.0)));
}

TEST(LInfinityDistance, ComparesNormalisedFrequencies) {
  const std::vector<double> p = {2.0, 2.0, 0.0};
  const std::vector<double> q = {1.0, 2.0, 1.0};
  EXPECT_DOUBLE_EQ(LInfinityDistance(p, q), 0.25);
  EXPECT_TRUE(std::isnan(LInfinityDistance(p, std::vector<double>{1.0})));
  EXPECT_TRUE(std::isnan(LInfinityDistance(std::vector<double>{0.0, 0.0, 0.0}, q)));
}

TEST(ChiSquareTest, HandChecksAndDegenerateCategories) {
  const std::vector<double> even = {0.5, 0.5};
  const ChiSquareResult none = ChiSquareTest(std::vector<double>{10.0, 10.0}, even);
  EXPECT_EQ(none.statistic, 0.0);
  EXPECT_EQ(none.p_value, 1.0);
  // (0 - 5)^2 / 5 + (10 - 5)^2 / 5 = 10 with one degree of freedom:
  // p = Q(1/2, 5) = erfc(sqrt(5)).
  const ChiSquareResult lopsided = ChiSquareTest(std::vector<double>{0.0, 10.0}, even);
  EXPECT_DOUBLE_EQ(lopsided.statistic, 10.0);
  EXPECT_NEAR(lopsided.p_value, std::erfc(std::sqrt(5.0)), 1e-15);
  // A category the reference never saw.
  const ChiSquareResult novel =
      ChiSquareTest(std::vector<double>{5.0, 5.0, 1.0}, std::vector<double>{0.5, 0.5, 0.0});
  EXPECT_EQ(novel.statistic, kInf);
  EXPECT_EQ(novel.p_value, 0.0);
  // A category neither side has is ignored.
  const ChiSquareResult padded =
      ChiSquareTest(std::vector<double>{0.0, 10.0, 0.0}, std::vector<double>{0.5, 0.5, 0.0});
  EXPECT_DOUBLE_EQ(padded.statistic, 10.0);
  EXPECT_NEAR(padded.p_value, std::erfc(std::sqrt(5.0)), 1e-15);
  const ChiSquareResult single = ChiSquareTest(std::vector<double>{4.0}, std::vector<double>{1.0});
  EXPECT_EQ(single.statistic, 0.0);
  EXPECT_TRUE(std::isnan(single.p_value));
  EXPECT_TRUE(std::isnan(ChiSquareTest(std::vector<double>{1.0}, even).statistic));
  EXPECT_TRUE(std::isnan(ChiSquareTest(std::vector<double>{0.0, 0.0}, even).p_value));
}

TEST(RegularizedUpperGamma, KnownClosedForms) {
  for (double x : {0.0, 0.1, 1.0, 2.0, 7.5, 40.0}) {
    EXPECT_NEAR(RegularizedUpperGamma(1.0, x), std::exp(-x), 1e-15 * std::exp(-x) + 1e-300);
    EXPECT_NEAR(RegularizedUpperGamma(0.5, x), std::erfc(std::sqrt(x)),
                1e-14 * std::erfc(std::sqrt(x)) + 1e-300);
  }
  EXPECT_EQ(RegularizedUpperGamma(3.0, kInf), 0.0);
  EXPECT_TRUE(std::isnan(RegularizedUpperGamma(0.0, 1.0)));
  EXPECT_TRUE(std::isnan(RegularizedUpperGamma(1.0, -1.0)));
}

}  // namespace
}  // namespace keel::validate
