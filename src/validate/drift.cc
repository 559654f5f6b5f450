#include "validate/drift.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

namespace keel::validate {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// ks_2samp(method='auto') is exact up to this sample size (SciPy's MAX_AUTO_N).
constexpr uint64_t kMaxAutoExactSize = 10000;

// ---------------------------------------------------------------------------
// Weighted samples

double WeightAt(const WeightedSample& sample, size_t index) {
  return sample.weights.empty() ? 1.0 : sample.weights[index];
}

// The total weight, or NaN if `sample` breaks the WeightedSample contract.
// The weights are summed in index order, the order in which the CDF walks
// accumulate them, so the last CDF value is exactly 1.
double ValidatedTotalWeight(const WeightedSample& sample) {
  const std::span<const double> values = sample.values;
  if (values.empty()) return kNaN;
  if (!sample.weights.empty() && sample.weights.size() != values.size()) return kNaN;
  for (size_t index = 0; index < values.size(); ++index) {
    if (std::isnan(values[index])) return kNaN;
    if (index > 0 && values[index] < values[index - 1]) return kNaN;
  }
  if (sample.weights.empty()) return static_cast<double>(values.size());
  double total = 0.0;
  for (double weight : sample.weights) {
    if (!(weight >= 0.0) || std::isinf(weight)) return kNaN;
    total += weight;
  }
  if (!(total > 0.0) || std::isinf(total)) return kNaN;
  return total;
}

// Indices of the first and last items with positive weight. Precondition: the
// sample is valid (so its total weight is positive).
std::pair<size_t, size_t> PositiveWeightRange(const WeightedSample& sample) {
  size_t first = 0;
  size_t last = sample.values.size() - 1;
  while (first < last && WeightAt(sample, first) == 0.0) ++first;
  while (last > first && WeightAt(sample, last) == 0.0) --last;
  return {first, last};
}

// Visits the distinct values of a and b in ascending order, calling
// visit(value, cdf_a, cdf_b) with both right-continuous CDFs evaluated after
// every jump at that value. With unit weights each CDF is count / size, the
// same division NumPy's searchsorted(side='right') / size performs.
template <typename Visit>
void WalkJointCdf(const WeightedSample& a, double total_a, const WeightedSample& b, double total_b,
                  Visit&& visit) {
  const size_t size_a = a.values.size();
  const size_t size_b = b.values.size();
  size_t index_a = 0;
  size_t index_b = 0;
  double cumulative_a = 0.0;
  double cumulative_b = 0.0;
  while (index_a < size_a || index_b < size_b) {
    const bool take_a =
        index_b == size_b || (index_a < size_a && a.values[index_a] <= b.values[index_b]);
    const double value = take_a ? a.values[index_a] : b.values[index_b];
    while (index_a < size_a && a.values[index_a] == value) cumulative_a += WeightAt(a, index_a++);
    while (index_b < size_b && b.values[index_b] == value) cumulative_b += WeightAt(b, index_b++);
    visit(value, cumulative_a / total_a, cumulative_b / total_b);
  }
}

// The sum of a histogram, or NaN if it has a negative, NaN or infinite entry
// or sums to 0.
double HistogramTotal(std::span<const double> counts) {
  double total = 0.0;
  for (double count : counts) {
    if (!(count >= 0.0) || std::isinf(count)) return kNaN;
    total += count;
  }
  if (!(total > 0.0) || std::isinf(total)) return kNaN;
  return total;
}

// A histogram normalised to sum 1, or empty if HistogramTotal is NaN.
std::vector<double> NormalizedHistogram(std::span<const double> counts) {
  const double total = HistogramTotal(counts);
  if (std::isnan(total)) return {};
  std::vector<double> shares(counts.size());
  for (size_t index = 0; index < counts.size(); ++index) shares[index] = counts[index] / total;
  return shares;
}

// ---------------------------------------------------------------------------
// Exact two-sample KS distribution (Hodges 1958)

// P(D_{n,n} >= h / n) for two samples of equal size n, 1 <= h <= n. By the
// reflection principle it is 2 sum_{k>=1} (-1)^(k-1) C(2n, n - k h) / C(2n, n).
// With rho_k = C(2n, n - k h) / C(2n, n - (k-1) h), a product of h factors in
// (0, 1), the series is rho_1 (1 - rho_2 (1 - rho_3 (1 - ...))), evaluated
// from the innermost term outwards so that nothing cancels catastrophically
// and small p-values keep their relative accuracy. The factors are multiplied
// in the same order as SciPy's _compute_prob_outside_square, so the two agree
// to the last bit or two (which matters when the result rounds above 1).
double EqualSizeTailProbability(uint64_t n, uint64_t h) {
  double nested = 0.0;
  for (uint64_t k = n / h + 1; k >= 1; --k) {
    // rho_k; for k = n/h + 1 one factor is 0 or the term is past the lattice.
    const uint64_t offset = (k - 1) * h;
    double ratio = 1.0;
    for (uint64_t factor = 0; factor < h; ++factor) {
      const double numerator = static_cast<double>(n) - static_cast<double>(offset + factor);
      ratio = numerator * ratio / static_cast<double>(n + offset + factor + 1);
    }
    nested = ratio * (1.0 - nested);
  }
  return 2.0 * nested;
}

// P(D_{n,m} >= h / lcm(n, m)) for samples of sizes n and m, 1 <= h <= lcm.
// A random monotone lattice path from (0, 0) to (cols, rows) (all C(cols +
// rows, rows) equally likely under H0) passes through point (i, j) inside the
// band iff |i rows/g - j cols/g| < h. Instead of counting paths that stay
// inside (and returning 1 - share, which loses all relative accuracy for
// small p-values) the recursion carries, per point, the probability that a
// random path to it has already left the band (Viehmann 2021): 1 outside the
// band, and inside
//   outside(i, j) = (i outside(i-1, j) + j outside(i, j-1)) / (i + j),
// a convex combination, so the error grows only by a few ulp per step
// (relative error < 2e-11 for n, m <= 10000). One column of the band is kept.
double LatticePathTailProbability(uint64_t n, uint64_t m, uint64_t h) {
  const uint64_t cols = std::max(n, m);
  const uint64_t rows = std::min(n, m);
  const uint64_t g = std::gcd(n, m);
  const auto col_coeff = static_cast<int64_t>(rows / g);
  const auto row_coeff = static_cast<int64_t>(cols / g);
  const auto band = static_cast<int64_t>(h);
  const auto max_row = static_cast<int64_t>(rows);

  std::vector<double> outside(rows + 1, 1.0);
  int64_t low = 0;
  int64_t high = std::min(max_row, (band - 1) / row_coeff);
  std::fill(outside.begin(), outside.begin() + high + 1, 0.0);
  for (uint64_t col = 1; col <= cols; ++col) {
    const int64_t center = static_cast<int64_t>(col) * col_coeff;
    // Inside rows j satisfy center - band < j row_coeff < center + band.
    const int64_t new_low = center - band < 0 ? 0 : (center - band) / row_coeff + 1;
    const int64_t new_high = std::min(max_row, (center + band - 1) / row_coeff);
    if (new_low > new_high) return 1.0;  // every path leaves the band here
    for (int64_t row = low; row < new_low; ++row) outside[row] = 1.0;
    const auto i = static_cast<double>(col);
    int64_t row = new_low;
    if (row == 0) ++row;  // outside(i, 0) = outside(i - 1, 0): one path, straight along
    for (; row <= new_high; ++row) {
      // The weights do not depend on the previous row, so their division
      // stays off the loop-carried dependency (about 3x faster than dividing
      // the combination).
      const auto j = static_cast<double>(row);
      const double reciprocal = 1.0 / (i + j);
      outside[row] = (i * reciprocal) * outside[row] + (j * reciprocal) * outside[row - 1];
    }
    low = new_low;
    high = new_high;
  }
  return outside[rows];
}

double Clamp01(double p) { return std::isnan(p) ? p : std::clamp(p, 0.0, 1.0); }

// The asymptotic two-sample p-value: the one-sample distribution at the
// effective size n m / (n + m), rounded half to even as NumPy's round.
double AsymptoticKsPValue(double statistic, uint64_t n, uint64_t m) {
  const auto larger = static_cast<double>(std::max(n, m));
  const auto smaller = static_cast<double>(std::min(n, m));
  const double effective = std::nearbyint(larger * smaller / (larger + smaller));
  if (effective < 1.0) return kNaN;
  return Clamp01(KolmogorovSmirnovSf(statistic, static_cast<uint64_t>(effective)));
}

// The interpolation NumPy's quantile uses (numpy.lib.function_base._lerp):
// from the nearer end, so that t = 1 returns `high` exactly.
double Lerp(double low, double high, double t) {
  const double diff = high - low;
  return t >= 0.5 ? high - diff * (1.0 - t) : low + diff * t;
}

// Maps ascending ranks of the weight-expanded sample to values: the value at
// rank r is the item whose cumulative-weight interval [C_{i-1}, C_i) holds r.
class RankCursor {
 public:
  // Precondition: `sample` is valid and outlives the cursor.
  explicit RankCursor(const WeightedSample& sample)
      : sample_(sample), last_(PositiveWeightRange(sample).second) {}

  // Precondition: rank is not below the previous call's rank. Zero-weight
  // items are skipped; ranks past the total weight give the last item.
  double ValueAt(double rank) {
    while (index_ < last_ && weight_before_ + WeightAt(sample_, index_) <= rank) {
      weight_before_ += WeightAt(sample_, index_);
      ++index_;
    }
    return sample_.values[index_];
  }

 private:
  const WeightedSample& sample_;
  size_t last_;
  size_t index_ = 0;
  double weight_before_ = 0.0;
};

// (1 + d) ln(1 + d) + (1 - d) ln(1 - d) for |d| <= 1, without the cancellation
// of the two logarithms near d = 0: there it is sum_k d^(2k) / (k (2k - 1)).
double SymmetricEntropyGap(double delta) {
  const double square = delta * delta;
  if (square < 1.0 / 64.0) {
    double sum = 0.0;
    double power = square;
    for (int k = 1; k <= 40; ++k) {
      const double term = power / (k * (2.0 * k - 1.0));
      sum += term;
      if (term < 1e-18 * sum) break;
      power *= square;
    }
    return sum;
  }
  return (1.0 + delta) * std::log1p(delta) + (1.0 - delta) * std::log1p(-delta);
}

}  // namespace

// ---------------------------------------------------------------------------
// Kolmogorov-Smirnov

double KsStatistic(WeightedSample a, WeightedSample b) {
  const double total_a = ValidatedTotalWeight(a);
  const double total_b = ValidatedTotalWeight(b);
  if (std::isnan(total_a) || std::isnan(total_b)) return kNaN;
  double statistic = 0.0;
  WalkJointCdf(a, total_a, b, total_b, [&](double, double cdf_a, double cdf_b) {
    statistic = std::max(statistic, std::abs(cdf_a - cdf_b));
  });
  return std::min(statistic, 1.0);
}

double KsPValue(double statistic, uint64_t n, uint64_t m, KsMethod method) {
  if (n == 0 || m == 0 || !(statistic >= 0.0 && statistic <= 1.0)) return kNaN;
  const uint64_t g = std::gcd(n, m);
  bool exact = false;
  switch (method) {
    case KsMethod::kAuto:
      exact = std::max(n, m) <= kMaxAutoExactSize;
      break;
    case KsMethod::kExact:
      // SciPy gives up on the exact count when (n/g)(m/g) reaches INT32_MAX.
      exact = static_cast<double>(n / g) <
              static_cast<double>(std::numeric_limits<int32_t>::max()) / static_cast<double>(m / g);
      break;
    case KsMethod::kAsymptotic:
      break;
  }
  if (exact) {
    const double lcm = static_cast<double>(n / g) * static_cast<double>(m);
    const double h = std::nearbyint(statistic * lcm);
    if (h == 0.0) return 1.0;
    const auto band = static_cast<uint64_t>(h);
    const double p =
        n == m ? EqualSizeTailProbability(n, band) : LatticePathTailProbability(n, m, band);
    if (p >= 0.0 && p <= 1.0) return p;
    // Rounding pushed the count out of [0, 1]; SciPy then uses the asymptotic
    // distribution at the lattice-snapped statistic.
    statistic = h / lcm;
  }
  return AsymptoticKsPValue(statistic, n, m);
}

KsResult KsTwoSample(std::span<const double> sorted_a, std::span<const double> sorted_b) {
  const double statistic = KsStatistic({sorted_a, {}}, {sorted_b, {}});
  if (std::isnan(statistic)) return {kNaN, kNaN};
  return {statistic, KsPValue(statistic, sorted_a.size(), sorted_b.size(), KsMethod::kAuto)};
}

// ---------------------------------------------------------------------------
// Population stability index

std::vector<double> QuantileBinEdges(WeightedSample reference, int bins) {
  if (bins < 2) return {};
  const double total = ValidatedTotalWeight(reference);
  if (std::isnan(total)) return {kNaN};
  const auto [first, last] = PositiveWeightRange(reference);
  const double smallest = reference.values[first];
  const double largest = reference.values[last];
  if (!std::isfinite(smallest) || !std::isfinite(largest)) return {kNaN};
  std::vector<double> edges;
  edges.reserve(static_cast<size_t>(bins) - 1);
  RankCursor lower(reference);
  RankCursor upper(reference);
  for (int k = 1; k < bins; ++k) {
    const double q = static_cast<double>(k) / bins;
    // NumPy's virtual index for method 'linear': (n - 1) * q, evaluated as
    // NumPy does (its 'linear' method bypasses the alpha/beta formula).
    const double rank = (total - 1.0) * q;
    if (rank >= total - 1.0) {
      edges.push_back(largest);
    } else if (rank < 0.0) {
      edges.push_back(smallest);
    } else {
      const double floor_rank = std::floor(rank);
      edges.push_back(
          Lerp(lower.ValueAt(floor_rank), upper.ValueAt(floor_rank + 1.0), rank - floor_rank));
    }
  }
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  return edges;
}

std::vector<double> BinShares(WeightedSample sample, std::span<const double> edges) {
  std::vector<double> shares(edges.size() + 1, 0.0);
  const double total = ValidatedTotalWeight(sample);
  bool valid_edges = true;
  for (size_t index = 0; index < edges.size(); ++index) {
    if (std::isnan(edges[index]) || (index > 0 && !(edges[index] > edges[index - 1]))) {
      valid_edges = false;
    }
  }
  if (std::isnan(total) || !valid_edges) {
    std::fill(shares.begin(), shares.end(), kNaN);
    return shares;
  }
  size_t bin = 0;
  for (size_t index = 0; index < sample.values.size(); ++index) {
    while (bin < edges.size() && edges[bin] <= sample.values[index]) ++bin;
    shares[bin] += WeightAt(sample, index);
  }
  for (double& share : shares) share /= total;
  return shares;
}

double PopulationStabilityIndex(std::span<const double> reference_shares,
                                std::span<const double> current_shares, double epsilon) {
  if (reference_shares.empty() || reference_shares.size() != current_shares.size() ||
      !(epsilon > 0.0)) {
    return kNaN;
  }
  double psi = 0.0;
  for (size_t bin = 0; bin < reference_shares.size(); ++bin) {
    if (!(reference_shares[bin] >= 0.0) || !(current_shares[bin] >= 0.0)) return kNaN;
    const double reference = std::max(reference_shares[bin], epsilon);
    const double current = std::max(current_shares[bin], epsilon);
    psi += (current - reference) * std::log(current / reference);
  }
  return psi;
}

// ---------------------------------------------------------------------------
// Distances

double JensenShannonDistance(std::span<const double> p, std::span<const double> q, double base) {
  if (p.empty() || p.size() != q.size() || !(base > 1.0) || std::isinf(base)) {
    return kNaN;
  }
  const std::vector<double> p_shares = NormalizedHistogram(p);
  const std::vector<double> q_shares = NormalizedHistogram(q);
  if (p_shares.empty() || q_shares.empty()) return kNaN;
  // KL(p || mean) + KL(q || mean), summed per bin; each bin's share of it,
  // mean * [(1 + d) ln(1 + d) + (1 - d) ln(1 - d)] with d = (p - q) / (p + q),
  // is non-negative, so the sum never cancels.
  double divergence = 0.0;
  for (size_t bin = 0; bin < p_shares.size(); ++bin) {
    const double p_share = p_shares[bin];
    const double q_share = q_shares[bin];
    if (p_share == 0.0 || q_share == 0.0) {
      divergence += (p_share + q_share) * std::numbers::ln2;
      continue;
    }
    const double sum = p_share + q_share;
    divergence += sum / 2.0 * SymmetricEntropyGap((p_share - q_share) / sum);
  }
  return std::sqrt(divergence / std::log(base) / 2.0);
}

double WassersteinDistance(WeightedSample a, WeightedSample b) {
  const double total_a = ValidatedTotalWeight(a);
  const double total_b = ValidatedTotalWeight(b);
  if (std::isnan(total_a) || std::isnan(total_b)) return kNaN;
  double distance = 0.0;
  double previous_value = 0.0;
  double previous_gap = 0.0;  // |F_a - F_b| on [previous_value, value)
  WalkJointCdf(a, total_a, b, total_b, [&](double value, double cdf_a, double cdf_b) {
    if (previous_gap != 0.0) distance += previous_gap * (value - previous_value);
    previous_value = value;
    previous_gap = std::abs(cdf_a - cdf_b);
  });
  return distance;
}

double NormalizedWasserstein(WeightedSample reference, WeightedSample current) {
  const double distance = WassersteinDistance(reference, current);
  if (std::isnan(distance)) return kNaN;
  // Constant iff the smallest and largest weighted values are equal, decided
  // exactly (a computed variance of a constant can come out as 1e-34).
  const std::span<const double> values = reference.values;
  const auto [first, last] = PositiveWeightRange(reference);
  if (values[first] == values[last]) return distance == 0.0 ? 0.0 : kInf;

  double total = 0.0;
  double weighted_sum = 0.0;
  for (size_t index = 0; index < values.size(); ++index) {
    total += WeightAt(reference, index);
    weighted_sum += WeightAt(reference, index) * values[index];
  }
  const double mean = weighted_sum / total;
  double squares = 0.0;
  for (size_t index = 0; index < values.size(); ++index) {
    const double deviation = values[index] - mean;
    squares += WeightAt(reference, index) * deviation * deviation;
  }
  return distance / std::sqrt(squares / total);
}

double LInfinityDistance(std::span<const double> p, std::span<const double> q) {
  if (p.empty() || p.size() != q.size()) return kNaN;
  const std::vector<double> p_shares = NormalizedHistogram(p);
  const std::vector<double> q_shares = NormalizedHistogram(q);
  if (p_shares.empty() || q_shares.empty()) return kNaN;
  double distance = 0.0;
  for (size_t bin = 0; bin < p_shares.size(); ++bin) {
    distance = std::max(distance, std::abs(p_shares[bin] - q_shares[bin]));
  }
  return distance;
}

ChiSquareResult ChiSquareTest(std::span<const double> observed_counts,
                              std::span<const double> expected_shares) {
  if (observed_counts.empty() || observed_counts.size() != expected_shares.size()) {
    return {kNaN, kNaN};
  }
  const std::vector<double> shares = NormalizedHistogram(expected_shares);
  const double observed_total = HistogramTotal(observed_counts);
  if (shares.empty() || std::isnan(observed_total)) return {kNaN, kNaN};

  double statistic = 0.0;
  int categories = 0;
  for (size_t index = 0; index < observed_counts.size(); ++index) {
    const double observed = observed_counts[index];
    const double expected = shares[index] * observed_total;
    if (observed == 0.0 && expected == 0.0) continue;
    ++categories;
    const double difference = observed - expected;
    statistic += expected == 0.0 ? kInf : difference * difference / expected;
  }
  if (categories < 2) return {statistic, kNaN};
  const double dof = categories - 1;
  return {statistic, RegularizedUpperGamma(dof / 2.0, statistic / 2.0)};
}

double RegularizedUpperGamma(double a, double x) {
  if (std::isnan(a) || std::isnan(x) || !(a > 0.0) || x < 0.0) return kNaN;
  if (x == 0.0) return 1.0;
  if (std::isinf(x)) return 0.0;
  if (std::isinf(a)) return 1.0;
  // x^a e^-x / Gamma(a) in long double: its logarithm is a difference of
  // terms of size ~a ln x, which double would leave with ~a * 1e-16 error.
  const long double big_a = a;
  const long double big_x = x;
  const long double prefactor = std::exp(big_a * std::log(big_x) - big_x - std::lgamma(big_a));
  constexpr int kMaxIterations = 1000000;
  constexpr long double kTolerance = 1e-18L;
  if (x < a + 1.0) {
    // P(a, x) = prefactor * sum_k x^k / (a (a+1) ... (a+k)); Q = 1 - P is at
    // least ~0.08 here, so the subtraction costs no relative accuracy.
    long double term = 1.0L / big_a;
    long double sum = term;
    for (int k = 1; k < kMaxIterations; ++k) {
      term *= big_x / (big_a + k);
      sum += term;
      if (term < sum * kTolerance) break;
    }
    return static_cast<double>(std::max(0.0L, 1.0L - prefactor * sum));
  }
  // Q(a, x) = prefactor / (x + 1 - a - 1 (1 - a) / (x + 3 - a - 2 (2 - a) / ...)),
  // evaluated with the modified Lentz method.
  constexpr long double kTiny = 1e-4000L;
  long double b = big_x + 1.0L - big_a;
  long double c = 1.0L / kTiny;
  long double d = 1.0L / b;
  long double fraction = d;
  for (int k = 1; k < kMaxIterations; ++k) {
    const long double numerator = -k * (k - big_a);
    b += 2.0L;
    d = numerator * d + b;
    if (std::abs(d) < kTiny) d = kTiny;
    c = b + numerator / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1.0L / d;
    const long double delta = d * c;
    fraction *= delta;
    if (std::abs(delta - 1.0L) < kTolerance) break;
  }
  return static_cast<double>(prefactor * fraction);
}

}  // namespace keel::validate
