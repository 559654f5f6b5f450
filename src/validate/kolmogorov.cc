#include "validate/kolmogorov.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <vector>

namespace keel::validate {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kEpsilon = std::numeric_limits<double>::epsilon();

double Clamp01(double p) { return std::isnan(p) ? p : std::clamp(p, 0.0, 1.0); }

// ---------------------------------------------------------------------------
// One-sample Kolmogorov distribution pieces (see KolmogorovSmirnovSf)

// Cephes' MINLOG, log(2^-1022): below it scipy.special.smirnov returns 0.
constexpr double kMinLog = -708.3964185322641;

// log(m!) - (m log m - m + log(2 pi m) / 2), Stirling's remainder, for m >= 1:
// lgamma for small m, the asymptotic series (error < 1e-19 at m >= 32) above.
long double StirlingRemainder(uint64_t m) {
  const auto big_m = static_cast<long double>(m);
  if (m < 32) {
    return std::lgamma(big_m + 1.0L) -
           (big_m * std::log(big_m) - big_m +
            0.5L * std::log(2.0L * std::numbers::pi_v<long double> * big_m));
  }
  const long double inverse = 1.0L / big_m;
  const long double square = inverse * inverse;
  return inverse *
         (1.0L / 12 -
          square * (1.0L / 360 - square * (1.0L / 1260 - square * (1.0L / 1680 - square / 1188))));
}

// log C(n, j) in long double without the cancellation of log-gamma values of
// size n log n: the entropy form -j log(j/n) - (n-j) log((n-j)/n) plus
// Stirling's remainders; absolute error ~1e-19 n.
long double LogBinomial(uint64_t n, uint64_t j) {
  if (j == 0 || j == n) return 0.0L;
  const auto big_n = static_cast<long double>(n);
  const auto big_j = static_cast<long double>(j);
  const long double rest = big_n - big_j;
  return -big_j * std::log(big_j / big_n) - rest * std::log(rest / big_n) +
         0.5L * std::log(big_n / (2.0L * std::numbers::pi_v<long double> * big_j * rest)) +
         StirlingRemainder(n) - StirlingRemainder(j) - StirlingRemainder(n - j);
}

// The logarithms of the Birnbaum-Tingey terms of SmirnovSf,
//   L(j) = log C(n,j) + (n-j) log(A_j / n) + (j-1) log(B_j / n),
// A_j = n - j - n x, B_j = n x + j, for 0 <= j < n - floor(n x) (so A_j > 0).
class BirnbaumTingeyLogTerms {
 public:
  BirnbaumTingeyLogTerms(uint64_t n, long double nx) : n_(n), nx_(nx), nx_double_(double(nx)) {}

  // L(j), absolute error ~1e-19 n (long double throughout).
  long double At(uint64_t j) const {
    const auto big_n = static_cast<long double>(n_);
    const auto big_j = static_cast<long double>(j);
    return LogBinomial(n_, j) + (big_n - big_j) * std::log((big_n - big_j - nx_) / big_n) +
           (big_j - 1.0L) * std::log((nx_ + big_j) / big_n);
  }

  // L(j + 1) - L(j) in double, from terms of size O(log n) (absolute error
  // a few 1e-16):
  //   log((n-j) B_j / ((j+1) A_j)) + (n-j-1) log1p(-1/A_j) + j log1p(1/B_j).
  double Step(uint64_t j) const {
    const auto size = static_cast<double>(n_);
    const auto index = static_cast<double>(j);
    const double below = size - index - nx_double_;
    const double above = nx_double_ + index;
    return std::log((size - index) * above / ((index + 1.0) * below)) +
           (size - index - 1.0) * std::log1p(-1.0 / below) + index * std::log1p(1.0 / above);
  }

 private:
  uint64_t n_;
  long double nx_;
  double nx_double_;
};

// Sums exp(L(j) - peak_log) for j from `first` stepping by `direction` (+1 or
// -1) while 0 <= j < terms, into *sum. The terms decrease away from the peak
// (they are log-concave in j), so the walk stops once `remaining` terms of
// the current size could add less than 2^-54 of the sum (SciPy's rule).
// L is carried in double from the previous term with Step, and recomputed
// exactly every kAnchor terms, so Step's errors cannot pile up.
void SumSide(const BirnbaumTingeyLogTerms& logs, long double peak_log, uint64_t first,
             int direction, uint64_t terms, long double* sum) {
  constexpr uint64_t kAnchor = 64;
  double relative = 0.0;  // L(j) - peak_log
  for (uint64_t j = first, walked = 1; j < terms; j += direction, ++walked) {
    if (walked % kAnchor == 1) {
      relative = static_cast<double>(logs.At(j) - peak_log);
    } else {
      relative += direction > 0 ? logs.Step(j - 1) : -logs.Step(j);
    }
    const double term = std::exp(relative);
    *sum += term;
    const uint64_t remaining = direction > 0 ? terms - 1 - j : j;
    if (4.0L * static_cast<long double>(remaining) * term < kEpsilon * *sum) break;
    if (j == 0 && direction < 0) break;
  }
}

// Below this n x^2 the terms need not be unimodal (term 0 can outweigh its
// neighbours; kolmogorov_test.cc finds it at n x^2 = 0.05), so SmirnovSf sums
// all of them. KolmogorovSmirnovSf only asks for n x^2 > 2.
constexpr double kUnimodalNx2 = 0.5;

// Calls visit(L(j)) for j = 0 .. terms - 1 in order (long double, anchored
// every 64 terms as in SumSide).
template <typename Visit>
void ForEachLogTerm(const BirnbaumTingeyLogTerms& logs, uint64_t terms, Visit&& visit) {
  long double log_term = 0.0L;
  for (uint64_t j = 0; j < terms; ++j) {
    log_term = j % 64 == 0 ? logs.At(j) : log_term + logs.Step(j - 1);
    visit(log_term);
  }
}

long double MaxLogTerm(const BirnbaumTingeyLogTerms& logs, uint64_t terms) {
  long double largest = -std::numeric_limits<long double>::infinity();
  ForEachLogTerm(logs, terms, [&](long double log_term) { largest = std::max(largest, log_term); });
  return largest;
}

}  // namespace

double SmirnovSf(uint64_t n, double x) {
  const auto size = static_cast<double>(n);
  if (-2.0 * size * x * x < kMinLog) return 0.0;
  const long double nx = static_cast<long double>(n) * x;
  const auto nx_floor = static_cast<uint64_t>(std::floor(nx));
  if (nx_floor >= n - 1) return std::pow(1.0 - x, size);
  if (n > 1000000) {
    const double log_p = -std::pow(6.0 * size * x + 1.0, 2.0) / 18.0 / size;
    return log_p < -std::numbers::ln2 ? std::exp(log_p) : 1.0 + std::expm1(log_p);
  }
  const uint64_t terms = n - nx_floor;  // j = 0 .. n - floor(n x) - 1
  const BirnbaumTingeyLogTerms logs(n, nx);
  if (size * x * x < kUnimodalNx2) {
    const long double peak_log = MaxLogTerm(logs, terms);
    long double sum = 0.0L;
    ForEachLogTerm(logs, terms,
                   [&](long double log_term) { sum += std::exp(log_term - peak_log); });
    return static_cast<double>(static_cast<long double>(x) * std::exp(peak_log) * sum);
  }
  // The largest term: the first j whose step is not an ascent.
  uint64_t low = 0;
  uint64_t high = terms - 1;
  while (low < high) {
    const uint64_t middle = low + (high - low) / 2;
    if (logs.Step(middle) > 0.0) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  const uint64_t peak = low;
  const long double peak_log = logs.At(peak);
  long double sum = 1.0L;
  if (peak + 1 < terms) SumSide(logs, peak_log, peak + 1, +1, terms, &sum);
  if (peak > 0) SumSide(logs, peak_log, peak - 1, -1, terms, &sum);
  return static_cast<double>(static_cast<long double>(x) * std::exp(peak_log) * sum);
}

namespace {

// A square matrix scaled by a power of two: value = 2^exponent * entries.
struct ScaledMatrix {
  int size = 0;
  std::vector<double> entries;
  int64_t exponent = 0;
};

// product = left * right with the largest entry rescaled into [0.5, 1) by an
// exact power of two (the entries of Durbin's matrix powers outgrow double).
ScaledMatrix Multiply(const ScaledMatrix& left, const ScaledMatrix& right) {
  const int size = left.size;
  ScaledMatrix product{size, std::vector<double>(static_cast<size_t>(size) * size, 0.0),
                       left.exponent + right.exponent};
  for (int row = 0; row < size; ++row) {
    double* out = &product.entries[static_cast<size_t>(row) * size];
    for (int inner = 0; inner < size; ++inner) {
      const double factor = left.entries[static_cast<size_t>(row) * size + inner];
      if (factor == 0.0) continue;
      const double* in = &right.entries[static_cast<size_t>(inner) * size];
      for (int col = 0; col < size; ++col) out[col] += factor * in[col];
    }
  }
  const double largest = *std::max_element(product.entries.begin(), product.entries.end());
  if (largest > 0.0 && std::isfinite(largest)) {
    int shift = 0;
    std::frexp(largest, &shift);
    const double scale = std::ldexp(1.0, -shift);  // exact: a power of two
    for (double& entry : product.entries) entry *= scale;
    product.exponent += shift;
  }
  return product;
}

// P(D_n < d) by Durbin's matrix formula as arranged by Marsaglia, Tsang & Wang
// (2003): with n d = k - h (k integer, 0 <= h < 1) and the (2k-1)-square
// matrix H, P = n!/n^n (H^n)_{k,k}. H and all its powers are non-negative, so
// the power loses only ~size * log2(n) ulp; exponents are tracked separately.
// Cost O(k^3 log n): KolmogorovSmirnovSf uses it only where k <= ~60.
double DurbinCdf(uint64_t n, double d) {
  const double nd = static_cast<double>(n) * d;
  const int k = static_cast<int>(std::ceil(nd));
  const double h = k - nd;
  const int size = 2 * k - 1;
  std::vector<double> inverse_factorial(size + 1, 1.0);
  for (int r = 1; r <= size; ++r) inverse_factorial[r] = inverse_factorial[r - 1] / r;

  ScaledMatrix base{size, std::vector<double>(static_cast<size_t>(size) * size, 0.0), 0};
  auto at = [&](int row, int col) -> double& {
    return base.entries[static_cast<size_t>(row) * size + col];
  };
  for (int row = 0; row < size; ++row) {
    for (int col = 0; col <= std::min(size - 1, row + 1); ++col) {
      at(row, col) = inverse_factorial[row - col + 1];
    }
  }
  for (int index = 0; index < size; ++index) {
    at(index, 0) = (1.0 - std::pow(h, index + 1)) * inverse_factorial[index + 1];
    at(size - 1, index) = (1.0 - std::pow(h, size - index)) * inverse_factorial[size - index];
  }
  const double corner = 2.0 * h - 1.0 > 0.0 ? std::pow(2.0 * h - 1.0, size) : 0.0;
  at(size - 1, 0) = (1.0 - 2.0 * std::pow(h, size) + corner) * inverse_factorial[size];

  ScaledMatrix power{size, std::vector<double>(static_cast<size_t>(size) * size, 0.0), 0};
  for (int index = 0; index < size; ++index) {
    power.entries[static_cast<size_t>(index) * size + index] = 1.0;
  }
  for (uint64_t remaining = n; remaining > 0; remaining >>= 1) {
    if (remaining & 1) power = Multiply(power, base);
    if (remaining > 1) base = Multiply(base, base);
  }
  const double central = power.entries[static_cast<size_t>(k - 1) * size + (k - 1)];

  // n!/n^n as a running product with its own power-of-two exponent.
  long double factorial_ratio = 1.0L;
  int64_t exponent = power.exponent;
  const long double big_n = n;
  for (uint64_t i = 1; i <= n; ++i) {
    factorial_ratio *= static_cast<long double>(i) / big_n;
    if (factorial_ratio < 0x1p-8000L) {
      int shift = 0;
      factorial_ratio = std::frexp(factorial_ratio, &shift);
      exponent += shift;
    }
  }
  int shift = 0;
  const long double mantissa = std::frexp(factorial_ratio * central, &shift);
  exponent += shift;
  // The probability is at most 1, so the exponent is at most 1.
  if (exponent < -20000) return 0.0;
  return static_cast<double>(
      std::ldexp(mantissa, static_cast<int>(std::min<int64_t>(exponent, 1))));
}

// The Pelz-Good (1976) asymptotic expansion of P(D_n <= x),
//   K0(z) + K1(z)/sqrt(n) + K2(z)/n + K3(z)/n^1.5,  z = x sqrt(n),
// each K written in its theta-function form suited to small z, truncated at
// ceil(16 z / pi) terms as SciPy does. An approximation: against the exact
// Durbin value its absolute error is 3e-6 at n = 141 (the smallest n it is
// used for), 6e-8 at n = 1000, 3e-9 at n = 5000, falling like n^-2.
double PelzGoodCdf(uint64_t n, double x) {
  constexpr double kPi = std::numbers::pi;
  constexpr double kPi2 = kPi * kPi;
  constexpr double kPi4 = kPi2 * kPi2;
  constexpr double kPi6 = kPi4 * kPi2;
  const double kSqrt2Pi = std::sqrt(2.0 * kPi);
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double root_n = std::sqrt(static_cast<double>(n));
  const double z = root_n * x;
  const double z2 = z * z;
  const double z4 = z2 * z2;
  const double z6 = z4 * z2;
  const double log_q = -kPi2 / 8.0 / z2;
  if (log_q < -708.0) return 0.0;

  // Polynomial coefficients in m^2 (m odd) of the q^(m^2) sums of K1..K3.
  const double k1[2] = {-z2, kPi2 / 4.0};
  const double k2[3] = {6.0 * z6 + 2.0 * z4, (2.0 * z4 - 5.0 * z2) * kPi2 / 4.0,
                        kPi4 * (1.0 - 2.0 * z2) / 16.0};
  const double k3[4] = {-30.0 * z6 - 90.0 * z6 * z2, kPi2 * (135.0 * z4 - 96.0 * z6) / 4.0,
                        kPi4 * (-60.0 * z2 + 212.0 * z4) / 16.0, kPi6 * (5.0 - 30.0 * z2) / 64.0};
  const int terms = static_cast<int>(std::ceil(16.0 * z / kPi));
  double odd_sums[4] = {0.0, 0.0, 0.0, 0.0};
  double even_k2 = 0.0;
  double even_k3 = 0.0;
  for (int k = terms; k >= 1; --k) {  // smallest terms first
    const double m2 = static_cast<double>(2 * k - 1) * (2 * k - 1);
    const double weight = std::exp(log_q * m2);
    odd_sums[0] += weight;
    odd_sums[1] += (k1[0] + k1[1] * m2) * weight;
    odd_sums[2] += (k2[0] + (k2[1] + k2[2] * m2) * m2) * weight;
    odd_sums[3] += (k3[0] + (k3[1] + (k3[2] + k3[3] * m2) * m2) * m2) * weight;
    const double k_sq = static_cast<double>(k) * k;
    const double even_weight = std::exp(-kPi2 * k_sq / 2.0 / z2);
    even_k2 += k_sq * even_weight;
    even_k3 += (3.0 * z2 - kPi2 * k_sq) * k_sq * even_weight;
  }
  const double k0_term = kSqrt2Pi * odd_sums[0] / z;
  const double k1_term = kSqrt2Pi * odd_sums[1] / (6.0 * z4);
  const double k2_term =
      kSqrt2Pi * odd_sums[2] / (72.0 * z6 * z) - kPi2 * kSqrt2Pi * even_k2 / (36.0 * z2 * z);
  const double k3_term =
      kSqrt2Pi * odd_sums[3] / (6480.0 * z6 * z4) + kPi2 * kSqrt2Pi * even_k3 / (216.0 * z6);
  const auto size = static_cast<double>(n);
  return k0_term + k1_term / root_n + k2_term / size + k3_term / (size * root_n);
}

}  // namespace

double KolmogorovSmirnovSf(double d, uint64_t n) {
  if (n == 0 || std::isnan(d)) return kNaN;
  const auto size = static_cast<double>(n);
  if (d <= 0.5 / size) return 1.0;
  if (d >= 1.0) return 0.0;
  const double t = size * d;
  if (t <= 1.0) {
    // Ruben-Gambino: P(D_n < d) = n!/n^n (2t - 1)^n for 1/(2n) < d <= 1/n.
    double cdf = 1.0;
    for (uint64_t i = 1; i <= n && cdf > 1e-300; ++i) {
      cdf *= static_cast<double>(i) * (1.0 / size) * (2.0 * t - 1.0);
    }
    return Clamp01(1.0 - cdf);
  }
  if (t >= size - 1.0) return Clamp01(2.0 * std::pow(1.0 - d, size));  // Ruben-Gambino
  if (d >= 0.5) return Clamp01(2.0 * SmirnovSf(n, d));
  const double nd2 = t * d;
  if (n <= 140) {
    if (nd2 <= 4.0) return Clamp01(1.0 - DurbinCdf(n, d));
    return Clamp01(2.0 * SmirnovSf(n, d));
  }
  if (nd2 >= 370.0) return 0.0;
  if (nd2 >= 2.2) return Clamp01(2.0 * SmirnovSf(n, d));
  if (n <= 100000 && size * std::pow(d, 1.5) <= 1.4) return Clamp01(1.0 - DurbinCdf(n, d));
  return Clamp01(1.0 - PelzGoodCdf(n, d));
}

}  // namespace keel::validate
