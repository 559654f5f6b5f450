#pragma once

// Evaluation metrics for binary classifiers and regressors, each equal to
// scikit-learn 1.2.1's function of the same name (Debian's python3-sklearn) to
// 1e-9; metrics_test.cc checks every one against it on random data with ties,
// tiny and imbalanced samples and weights.
//
// Common contract:
// - `labels` are 0.0 or 1.0 for binary metrics (anything else is InvalidArgument);
// - `scores` are predicted probabilities of class 1 (or any real score for the
//   ranking metrics RocAuc / AveragePrecision / PrAucTrapezoid);
// - `weights` are optional sample weights: empty means every row weighs 1;
//   otherwise one finite, non-negative weight per row with a positive sum;
// - sizes must agree and be non-zero; NaN or infinite labels or scores are
//   InvalidArgument (scikit-learn raises ValueError for them too).
// All functions are O(n log n) or better and allocate O(n) at most.
// Thread-safety: free functions without shared state; safe from any thread.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "table/column.h"

namespace keel::train {

// ---------------------------------------------------------------------------
// Ranking metrics (binary labels, real-valued scores)

// Area under the ROC curve: sklearn.metrics.roc_auc_score(labels, scores,
// sample_weight=weights). Tied scores form one point of the curve (the
// trapezoid between neighbours counts a tie as half).
// Zero-weight rows are left out of the curve, as scikit-learn does.
// Errors: InvalidArgument as above; FailedPrecondition when the labels hold
// only one class, as scikit-learn raises "Only one class present in y_true".
// When both classes occur but one has zero total weight the answer is NaN
// (scikit-learn warns and answers nan).
Result<double> RocAuc(std::span<const double> labels, std::span<const double> scores,
                      std::span<const double> weights = {});

// PR AUC as average precision: sklearn.metrics.average_precision_score,
// sum over distinct thresholds (descending) of (R_k - R_{k-1}) * P_k. This is
// keel's "PR AUC". With no positive label scikit-learn warns and answers 0
// (recall is defined as 1 everywhere); keel answers 0.0 too.
Result<double> AveragePrecision(std::span<const double> labels, std::span<const double> scores,
                                std::span<const double> weights = {});

// PR AUC by the trapezoid rule over the precision-recall curve:
// sklearn.metrics.auc(recall, precision) of precision_recall_curve (which ends
// in the point recall 0, precision 1). Optimistic for few thresholds; prefer
// AveragePrecision. Errors: FailedPrecondition without positive labels (where
// scikit-learn warns and answers a meaningless 0.5).
Result<double> PrAucTrapezoid(std::span<const double> labels, std::span<const double> scores,
                              std::span<const double> weights = {});

// ---------------------------------------------------------------------------
// Probability metrics (binary labels, scores in [0, 1])

// Mean negative log-likelihood: sklearn.metrics.log_loss(labels, scores,
// sample_weight=weights, labels=[0, 1]) with 1.2.1's eps="auto": scores are
// clipped to [eps, 1 - eps], eps = 2^-52 (float64 machine epsilon), and the two
// class probabilities renormalised to sum 1, as scikit-learn does. Passing
// labels=[0, 1] is what lets one-class samples through: keel's labels are
// always {0, 1}, so a sample of one class has a well-defined log loss.
// Errors: InvalidArgument for scores outside [0, 1].
Result<double> LogLoss(std::span<const double> labels, std::span<const double> scores,
                       std::span<const double> weights = {});

// Weighted mean of (label - score)^2: sklearn.metrics.brier_score_loss.
// Errors: InvalidArgument for scores outside [0, 1] (scikit-learn raises too).
Result<double> BrierScore(std::span<const double> labels, std::span<const double> scores,
                          std::span<const double> weights = {});

// Expected calibration error (no scikit-learn function; checked against a
// NumPy transcription of this definition). Scores in [0, 1] fall into
// `num_bins` equal-width bins: bin b = min(floor(score * num_bins), num_bins - 1),
// so bin b holds [b / num_bins, (b + 1) / num_bins) and the last bin also holds
// 1.0. ECE = sum over non-empty bins of (W_b / W) * |mean score_b - positive
// fraction_b|, where W_b is the bin's weight (its count without weights), W the
// total, and means are weighted. Errors: InvalidArgument for scores outside
// [0, 1] or num_bins < 1.
Result<double> ExpectedCalibrationError(std::span<const double> labels,
                                        std::span<const double> scores,
                                        std::span<const double> weights = {}, int num_bins = 10);

// Precision, recall and F1 of the decision "score >= threshold":
// sklearn.metrics.precision_score / recall_score / f1_score (binary, pos_label
// 1) of (scores >= threshold). A zero denominator yields 0.0, scikit-learn's
// zero_division="warn" value (it warns; keel does not).
struct ThresholdMetrics {
  double threshold = 0.5;
  double precision = 0.0;
  double recall = 0.0;
  double f1 = 0.0;
};
Result<ThresholdMetrics> MetricsAtThreshold(std::span<const double> labels,
                                            std::span<const double> scores, double threshold,
                                            std::span<const double> weights = {});

// ---------------------------------------------------------------------------
// Regression metrics (real labels and predictions)

// sqrt(sklearn.metrics.mean_squared_error(labels, predictions, sample_weight)).
Result<double> Rmse(std::span<const double> labels, std::span<const double> predictions,
                    std::span<const double> weights = {});
// sklearn.metrics.mean_absolute_error.
Result<double> Mae(std::span<const double> labels, std::span<const double> predictions,
                   std::span<const double> weights = {});
// sklearn.metrics.r2_score (force_finite=True): 1 - SSE / SST with weighted
// sums around the weighted mean. A constant label column gives 1.0 when the
// predictions are perfect and 0.0 otherwise; fewer than two rows give NaN
// (scikit-learn warns and answers NaN).
Result<double> R2(std::span<const double> labels, std::span<const double> predictions,
                  std::span<const double> weights = {});

// ---------------------------------------------------------------------------
// Metric sets and slices

// Every binary metric above at once. roc_auc is NaN (not an error) when the
// sample holds one class only, which is common within small slices; so is
// pr_auc (average precision) when it holds no positive label.
struct BinaryMetrics {
  int64_t count = 0;       // rows
  double weight = 0.0;     // sum of weights (== count without weights)
  double positives = 0.0;  // weight of rows with label 1
  double roc_auc = 0.0;
  double pr_auc = 0.0;  // average precision
  double log_loss = 0.0;
  double brier = 0.0;
  double ece = 0.0;  // 10 bins
  ThresholdMetrics at_threshold;
};
// Errors: as the individual metrics (one class only is not an error here).
Result<BinaryMetrics> EvaluateBinary(std::span<const double> labels, std::span<const double> scores,
                                     double threshold = 0.5, std::span<const double> weights = {});

struct RegressionMetrics {
  int64_t count = 0;
  double weight = 0.0;
  double rmse = 0.0;
  double mae = 0.0;
  double r2 = 0.0;
};
Result<RegressionMetrics> EvaluateRegression(std::span<const double> labels,
                                             std::span<const double> predictions,
                                             std::span<const double> weights = {});

// Metrics of the rows sharing one value of a slice key.
template <typename Metrics>
struct Slice {
  std::string value;  // the key as text (Column::ValueToString); "null" for nulls
  Metrics metrics;
};

// Groups rows by `slice_key` (a string, int64, bool or timestamp column of the
// same length as labels; nulls form their own slice "null") and evaluates every
// group. Slices come ordered by key value (numerically for integer keys, bytewise
// for strings), the null slice last. O(n log n).
// Errors: InvalidArgument for a double key column or a length mismatch; the
// metric errors of any slice, with the slice named.
Result<std::vector<Slice<BinaryMetrics>>> EvaluateBinaryBySlice(
    const table::Column& slice_key, std::span<const double> labels, std::span<const double> scores,
    double threshold = 0.5, std::span<const double> weights = {});
Result<std::vector<Slice<RegressionMetrics>>> EvaluateRegressionBySlice(
    const table::Column& slice_key, std::span<const double> labels,
    std::span<const double> predictions, std::span<const double> weights = {});

// The positions 0..rows.size()-1 of `rows` (row ids into `key`) grouped by
// the key's value as text, Column::ValueToString ("null" for nulls): groups
// in bytewise order of that text, each group's positions increasing. Values
// with the same text form one group (a string "null" and nulls; doubles that
// print alike). Equal to filling a std::map<std::string, positions> row by
// row, but it formats one string per distinct raw value, not one per row.
// Any column type. Precondition: every id < key.size().
struct SliceRows {
  std::string value;
  std::vector<uint32_t> rows;
};
std::vector<SliceRows> GroupRowsByText(const table::Column& key, std::span<const uint32_t> rows);

}  // namespace keel::train
