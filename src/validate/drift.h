#pragma once

// Drift statistics between a reference and a current distribution: the
// two-sample Kolmogorov-Smirnov test, PSI, Jensen-Shannon, Wasserstein, L-inf
// and the chi-square goodness-of-fit test.
//
// Every function here is pure: no I/O, no global state, no allocation beyond
// the returned vectors and small scratch buffers. All of them are safe to call
// concurrently from any number of threads. Inputs are non-owning spans; the
// caller keeps the data alive for the duration of the call.
//
// Reference implementation: each function names the SciPy / NumPy expression
// it reproduces (SciPy 1.10.1, NumPy 1.24; drift_test.cc checks them against
// those versions). Where SciPy itself approximates (the asymptotic KS p-value
// for large samples), we reproduce SciPy's approximation, not a more exact
// value, so that keel and a notebook agree.
//
// Error convention: a statistic that is undefined for its inputs (empty
// sample, all-zero histogram, lengths that differ, unsorted or NaN values,
// negative weights) is returned as NaN, never as an exception or a crash.
// Functions that return vectors return NaN entries (or no entries, where
// stated) in the same situations.

#include <cstdint>
#include <span>
#include <vector>

#include "validate/kolmogorov.h"

namespace keel::validate {

// A sample sorted ascending, optionally weighted. The same type serves exact
// samples (every weight 1) and quantile sketches (a KLL sketch is a sorted list
// of items with integer weights).
//   values:  ascending, no NaN (+-inf are allowed where noted).
//   weights: empty (every weight is 1) or one per value; finite and >= 0 with
//            a positive total. Zero-weight items are ignored.
// Functions given a sample that breaks these rules return NaN.
// A non-owning view, like the result structs below a plain value type.
struct WeightedSample {
  std::span<const double> values;
  std::span<const double> weights;
};

struct KsResult {
  double statistic;
  double p_value;
};

struct ChiSquareResult {
  double statistic;
  double p_value;
};

// How KsPValue computes the two-sided p-value; the names and the choice made by
// kAuto follow scipy.stats.ks_2samp(method=...).
enum class KsMethod {
  kAuto,        // kExact when max(n, m) <= 10000, else kAsymptotic.
  kExact,       // lattice-path count; kAsymptotic if lcm(n, m) is too large.
  kAsymptotic,  // kstwo.sf(D, round(n m / (n + m))).
};

// ---------------------------------------------------------------------------
// Kolmogorov-Smirnov

// The two-sample KS statistic sup_x |F_a(x) - F_b(x)|, where F is the
// right-continuous weighted empirical CDF (sum of weights <= x over the total
// weight). Both CDFs are evaluated after all jumps at every distinct value, so
// ties within and across samples are handled as in scipy.stats.ks_2samp. With
// unit weights the result is bit-identical to ks_2samp(a, b).statistic.
// Infinite values are allowed.
// Returns a value in [0, 1]; NaN if either sample is empty or invalid.
// O(|a| + |b|).
double KsStatistic(WeightedSample a, WeightedSample b);

// The two-sided p-value of a two-sample KS statistic D for sample sizes n and
// m, as scipy.stats.ks_2samp(alternative='two-sided', method=...) computes it:
//   kExact: D is snapped to the lattice h / lcm(n, m), h = round(D lcm);
//     P(D_{n,m} >= h / lcm) is the share of monotone lattice paths from (0,0)
//     to (n,m) that leave the band |x/n - y/m| < h / lcm. For n == m it is the
//     closed-form reflection series; otherwise a dynamic program over the band
//     that carries the probability of having left it (Viehmann 2021), so every
//     step is a convex combination and small p-values keep their relative
//     accuracy (better than 2e-11 relative for n, m <= 10000).
//     Cost: O(max(n, m) * band width) time, at most O(n m); O(min(n, m)) space.
//     Falls back to kAsymptotic (like SciPy) when (n/g)(m/g) >= 2^31 - 1,
//     g = gcd(n, m).
//   kAsymptotic: KolmogorovSmirnovSf(D, round(n m / (n + m))), rounding half
//     to even; NaN when that effective size rounds to 0 (n = m = 1), as SciPy.
//   kAuto: kExact when max(n, m) <= 10000, else kAsymptotic.
// For weighted samples pass the number of observations each sample summarises
// (a sketch's stream length); the p-value then treats the samples as if they
// were exact, which is an approximation.
// Returns a value in [0, 1]; NaN if n or m is 0 or D is NaN or outside [0, 1].
double KsPValue(double statistic, uint64_t n, uint64_t m, KsMethod method = KsMethod::kAuto);

// scipy.stats.ks_2samp(sorted_a, sorted_b) with the default method 'auto':
// {KsStatistic, KsPValue(statistic, |a|, |b|, kAuto)}. Inputs ascending, no
// NaN; {NaN, NaN} if either is empty or invalid.
KsResult KsTwoSample(std::span<const double> sorted_a, std::span<const double> sorted_b);

// KolmogorovSmirnovSf (the one-sample distribution the asymptotic p-value
// uses) is declared in validate/kolmogorov.h.

// ---------------------------------------------------------------------------
// Population stability index

// The interior cut points of `bins` equal-weight bins of the reference: the
// quantiles at q = k / bins, k = 1 .. bins - 1, sorted and with duplicates
// removed, so ties and constant columns give fewer (possibly zero) edges.
// Quantile definition: NumPy's default ('linear', Hyndman & Fan type 7) on the
// sample expanded by its weights: with W the total weight, rank
// r = W q + (1 - q) - 1 (= (W - 1) q, evaluated as NumPy does), the value is
// x[floor(r)] + frac(r) (x[floor(r) + 1] - x[floor(r)]) where x[i] is the value
// whose cumulative-weight interval [C_{i-1}, C_i) contains rank i. For unit
// weights this is numpy.unique(numpy.quantile(values, np.arange(1, bins) /
// bins)); for integer weights the same on numpy.repeat(values, weights).
// Returns no edges (one bin) if bins < 2, and a single NaN edge, which
// BinShares rejects so that the PSI comes out NaN, if the reference is empty,
// invalid or has infinite values.
std::vector<double> QuantileBinEdges(WeightedSample reference, int bins = 10);

// The weight share of `sample` in each of edges.size() + 1 bins: bin i holds
// values v with edges[i-1] <= v < edges[i], the first bin is open to -inf and
// the last to +inf (numpy.searchsorted(edges, v, side='right') is the bin).
// `edges` must be strictly increasing and NaN-free. Shares sum to 1. Returns
// edges.size() + 1 NaNs if the sample is empty or invalid or the edges are not
// strictly increasing.
std::vector<double> BinShares(WeightedSample sample, std::span<const double> edges);

// PSI = sum_i (c_i - r_i) ln(c_i / r_i) over bins, where r_i = max(reference
// share, epsilon) and c_i = max(current share, epsilon): empty bins are floored
// at epsilon so that a bin empty on one side adds a large but finite term (the
// convention of Evidently and most PSI write-ups, default 1e-4). Shares are used
// as given (not renormalised). Returns >= 0; NaN if the lengths differ, are 0,
// any share is negative or NaN, or epsilon is not positive.
double PopulationStabilityIndex(std::span<const double> reference_shares,
                                std::span<const double> current_shares, double epsilon = 1e-4);

// ---------------------------------------------------------------------------
// Distances between histograms and between samples

// Jensen-Shannon distance (the square root of the divergence) between the
// histograms p and q, each first normalised to sum 1:
// scipy.spatial.distance.jensenshannon(p, q, base). Zero bins are allowed.
// Each bin's contribution is computed in a cancellation-free form, so nearly
// equal histograms give a small positive value where SciPy may round to a
// slightly negative divergence and return NaN. Result in [0, sqrt(ln 2 /
// ln base)] (1 for base 2). NaN if the lengths differ or are 0, an entry is
// negative or not finite, either histogram sums to 0, or base is not a finite
// number > 1 (SciPy returns NaN for 0 < base < 1 as well).
double JensenShannonDistance(std::span<const double> p, std::span<const double> q,
                             double base = 2.0);

// First Wasserstein (earth mover's) distance, the integral over x of
// |F_a(x) - F_b(x)| for the weighted empirical CDFs:
// scipy.stats.wasserstein_distance(a.values, b.values, a.weights, b.weights)
// (weights omitted when empty). NaN if either sample is empty or invalid;
// infinite values give inf or NaN. O(|a| + |b|).
double WassersteinDistance(WeightedSample a, WeightedSample b);

// WassersteinDistance(reference, current) divided by the weighted population
// standard deviation of the reference (ddof = 0: sqrt(sum w (x - mean)^2 /
// sum w)), Evidently's "normed Wasserstein" drift score, which makes the
// distance unit-free. If the reference is constant (std 0) the result is 0
// when the distance is 0 and +inf otherwise. NaN if either sample is empty or
// invalid.
double NormalizedWasserstein(WeightedSample reference, WeightedSample current);

// max_i |p_i - q_i| after normalising p and q to sum 1 (for category
// frequencies). Callers align categories first; a category seen on one side
// only is a 0 on the other. NaN under the same conditions as
// JensenShannonDistance (except base).
double LInfinityDistance(std::span<const double> p, std::span<const double> q);

// Pearson's chi-square goodness-of-fit test of observed category counts
// against expected category shares: scipy.stats.chisquare(f_obs,
// f_exp=expected_shares / sum(expected_shares) * sum(f_obs)), with
// k - 1 degrees of freedom.
// Categories where both the count and the share are 0 are left out (they are
// no category of either distribution; SciPy would return NaN) and do not count
// towards k. A category with share 0 but a positive count gives statistic +inf
// and p-value 0. If fewer than 2 categories remain, the statistic is computed
// but the p-value is NaN (SciPy: chi2 with 0 degrees of freedom). Returns
// {NaN, NaN} if the lengths differ or are 0, an entry is negative or not
// finite, or either side sums to 0.
ChiSquareResult ChiSquareTest(std::span<const double> observed_counts,
                              std::span<const double> expected_shares);

// The regularised upper incomplete gamma function Q(a, x) =
// Gamma(a, x) / Gamma(a), i.e. scipy.special.gammaincc(a, x), which gives the
// chi-square survival function chi2.sf(s, k) = Q(k / 2, s / 2). Series for
// x < a + 1 (Q = 1 - P), Lentz's continued fraction otherwise, with the
// prefactor x^a e^-x / Gamma(a) in extended precision: relative error about
// 1e-14 for a <= 1e4 except where Q < 1e-300 (underflow). Q(a, 0) = 1,
// Q(a, +inf) = 0; NaN if a <= 0, x < 0 or either is NaN.
double RegularizedUpperGamma(double a, double x);

}  // namespace keel::validate
