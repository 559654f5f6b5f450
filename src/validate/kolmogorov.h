#pragma once

// The one-sample two-sided Kolmogorov-Smirnov distribution and its one-sided
// (Smirnov) part: what scipy.stats.kstwo and scipy.special.smirnov compute,
// and what the asymptotic two-sample KS p-value (drift.h) is made of.
//
// Pure functions: no I/O, no global state, safe to call concurrently from
// any number of threads.

#include <cstdint>

namespace keel::validate {

// Survival function P(D_n >= d) of the one-sample two-sided Kolmogorov-Smirnov
// statistic D_n = sup |F_n - F| for a sample of size n, i.e.
// scipy.stats.kstwo.sf(d, n). Uses the algorithm selection of Simard &
// L'Ecuyer (2011) exactly as SciPy 1.10.1 does, so the two agree to ~1e-11
// relative (4e-12 measured over all branches):
//   n d <= 1 or n d >= n - 1 : Ruben-Gambino closed forms (exact);
//   d >= 0.5                 : 2 * Smirnov one-sided sf (exact, the two tails
//                              cannot both be reached);
//   n <= 140, n d^2 <= 4     : Durbin's matrix in Marsaglia-Tsang-Wang form
//                              (exact; SciPy uses Pomeranz for 0.75 < n d^2,
//                              equal to rounding);
//   n <= 140, n d^2 > 4      : 2 * Smirnov sf (error < 1e-13, the omitted term
//                              of both tails is ~2 exp(-8 n d^2));
//   n > 140, n d^2 >= 370    : 0 (true value < 1e-300);
//   n > 140, n d^2 >= 2.2    : 2 * Smirnov sf (absolute error up to ~5e-8 at
//                              n d^2 = 2.2, falling as 2 exp(-8 n d^2));
//   n <= 100000, n d^1.5 <= 1.4 : 1 - Durbin matrix (exact);
//   otherwise                : 1 - Pelz-Good asymptotic series (absolute error
//                              3e-6 at n = 141, 6e-8 at n = 1000, falling
//                              like n^-2).
// The Smirnov sf is the exact Birnbaum-Tingey sum for n <= 1e6 and SciPy's
// approximation exp(-(6 n d + 1)^2 / (18 n)) above.
// Returns a value in [0, 1]; 1 for d <= 0.5 / n, 0 for d >= 1; NaN for n == 0
// or NaN d.
double KolmogorovSmirnovSf(double d, uint64_t n);

// P(D_n^+ >= x), the one-sided Smirnov survival function,
// scipy.special.smirnov(n, x), for n >= 2 and 1 < n x < n - 1 (the region
// KolmogorovSmirnovSf uses; outside it the result is unspecified):
//  - 0 once -2 n x^2 < log(2^-1022) (as Cephes' MINLOG rule);
//  - for n > 1e6 SciPy's approximation exp(-(6 n x + 1)^2 / (18 n));
//  - otherwise the Birnbaum-Tingey sum
//      x sum_{j=0}^{n - floor(n x) - 1} C(n,j) (1 - x - j/n)^(n-j) (x + j/n)^(j-1)
//    of positive terms. For n x^2 >= 0.5 the terms rise to one peak and fall
//    (checked by kolmogorov_test.cc), so the sum starts at the largest term
//    and stops on each side once the terms left there could add less than
//    2^-54 of the sum (SciPy's rule for its upper side); the dropped terms
//    change the result by less than 1e-15 relative. Below n x^2 = 0.5 every
//    term is summed. Each term is exp(L_j - L_peak): L_peak and every 64th
//    L_j in long double (Stirling's series for the binomial), the others by a
//    double step from their neighbour. Relative error: ~1e-15 against
//    30-digit arithmetic, below 1e-12 against SciPy (kolmogorov_test.cc).
// Cost: one exp and three logs (double) per term kept: about n / 2 terms at
// n x^2 = 2.2, n / 4 at n x^2 = 300.
double SmirnovSf(uint64_t n, double x);

}  // namespace keel::validate
