#include "train/metrics.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <string_view>
#include <unordered_map>

namespace keel::train {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

enum class LabelKind { kBinary, kReal };
enum class ScoreKind { kProbability, kReal };

Status CheckInputs(std::span<const double> labels, std::span<const double> scores,
                   std::span<const double> weights, LabelKind label_kind, ScoreKind score_kind) {
  if (labels.empty()) return InvalidArgument("no rows to evaluate");
  if (scores.size() != labels.size()) {
    return InvalidArgument("labels and scores differ in length (" + std::to_string(labels.size()) +
                           " vs " + std::to_string(scores.size()) + ")");
  }
  if (!weights.empty() && weights.size() != labels.size()) {
    return InvalidArgument("labels and weights differ in length (" + std::to_string(labels.size()) +
                           " vs " + std::to_string(weights.size()) + ")");
  }
  for (size_t row = 0; row < labels.size(); ++row) {
    const double label = labels[row];
    if (label_kind == LabelKind::kBinary ? (label != 0.0 && label != 1.0) : !std::isfinite(label)) {
      return InvalidArgument("label of row " + std::to_string(row) + " is " +
                             std::to_string(label) +
                             (label_kind == LabelKind::kBinary ? ", not 0 or 1" : ""));
    }
    const double score = scores[row];
    if (!std::isfinite(score)) {
      return InvalidArgument("score of row " + std::to_string(row) + " is not finite");
    }
    if (score_kind == ScoreKind::kProbability && (score < 0.0 || score > 1.0)) {
      return InvalidArgument("score of row " + std::to_string(row) + " is " +
                             std::to_string(score) + ", outside [0, 1]");
    }
  }
  if (!weights.empty()) {
    double total = 0.0;
    for (size_t row = 0; row < weights.size(); ++row) {
      if (!std::isfinite(weights[row]) || weights[row] < 0.0) {
        return InvalidArgument("weight of row " + std::to_string(row) +
                               " is negative or not finite");
      }
      total += weights[row];
    }
    if (!(total > 0.0)) return InvalidArgument("the weights sum to zero");
  }
  return Status::Ok();
}

double WeightAt(std::span<const double> weights, size_t row) {
  return weights.empty() ? 1.0 : weights[row];
}

// Cumulative weighted true and false positives at each distinct score, highest
// score first (scikit-learn's _binary_clf_curve).
struct Curve {
  std::vector<double> tps;
  std::vector<double> fps;
};

// The curve of unweighted rows: the same points as the sort below (every
// count is a whole number, exact in any order), from an LSD radix sort of
// the scores' bits with the labels alongside, digits all rows share skipped.
// Precondition: finite scores.
Curve BuildCurveUnweighted(std::span<const double> labels, std::span<const double> scores) {
  struct Item {
    uint64_t key;  // increasing in the order of decreasing score
    uint64_t positive;
  };
  const size_t size = labels.size();
  std::vector<Item> items(size);
  std::vector<Item> spare(size);
  uint64_t all_or = 0;
  uint64_t all_and = ~uint64_t{0};
  for (size_t row = 0; row < size; ++row) {
    // +0.0: -0.0 and 0.0 are one score. Increasing scores map to increasing
    // unsigned keys (sign bit flipped for positives, all bits for negatives);
    // the complement makes them decreasing.
    const uint64_t bits = std::bit_cast<uint64_t>(scores[row] + 0.0);
    const uint64_t increasing = (bits >> 63) != 0 ? ~bits : bits | (uint64_t{1} << 63);
    items[row] = {~increasing, labels[row] == 1.0 ? uint64_t{1} : uint64_t{0}};
    all_or |= items[row].key;
    all_and &= items[row].key;
  }
  constexpr int kDigitBits = 11;
  constexpr size_t kDigits = size_t{1} << kDigitBits;
  std::vector<uint32_t> counts(kDigits);
  for (int shift = 0; shift < 64; shift += kDigitBits) {
    const uint64_t mask = (kDigits - 1) << shift;
    if (((all_or ^ all_and) & mask) == 0) continue;  // one digit value: already in order
    std::fill(counts.begin(), counts.end(), 0u);
    for (const Item& item : items) ++counts[(item.key >> shift) & (kDigits - 1)];
    uint32_t total = 0;
    for (uint32_t& count : counts) {
      const uint32_t here = count;
      count = total;
      total += here;
    }
    for (const Item& item : items) spare[counts[(item.key >> shift) & (kDigits - 1)]++] = item;
    items.swap(spare);
  }
  Curve curve;
  double tp = 0.0;
  double fp = 0.0;
  for (size_t i = 0; i < size; ++i) {
    if (items[i].positive != 0) {
      tp += 1.0;
    } else {
      fp += 1.0;
    }
    if (i + 1 == size || items[i + 1].key != items[i].key) {
      curve.tps.push_back(tp);
      curve.fps.push_back(fp);
    }
  }
  return curve;
}

Curve BuildCurve(std::span<const double> labels, std::span<const double> scores,
                 std::span<const double> weights) {
  if (weights.empty()) return BuildCurveUnweighted(labels, scores);
  // Zero-weight rows are left out, as scikit-learn does: kept, they would add
  // curve points with no mass (a precision of 0/0 at the top of the PR curve).
  std::vector<uint32_t> order;
  order.reserve(labels.size());
  for (size_t row = 0; row < labels.size(); ++row) {
    if (WeightAt(weights, row) != 0.0) order.push_back(static_cast<uint32_t>(row));
  }
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return scores[a] > scores[b]; });
  Curve curve;
  double tp = 0.0;
  double fp = 0.0;
  for (size_t i = 0; i < order.size(); ++i) {
    const uint32_t row = order[i];
    const double weight = WeightAt(weights, row);
    if (labels[row] == 1.0) {
      tp += weight;
    } else {
      fp += weight;
    }
    if (i + 1 == order.size() || scores[order[i + 1]] != scores[row]) {
      curve.tps.push_back(tp);
      curve.fps.push_back(fp);
    }
  }
  return curve;
}

bool HasBothClasses(std::span<const double> labels) {
  bool seen[2] = {false, false};
  for (double label : labels) seen[label == 1.0 ? 1 : 0] = true;
  return seen[0] && seen[1];
}

double RocAucOfCurve(const Curve& curve) {
  const double positives = curve.tps.back();
  const double negatives = curve.fps.back();
  if (positives == 0.0 || negatives == 0.0) return kNaN;  // scikit-learn: nan with a warning
  double area = 0.0;
  double previous_tpr = 0.0;
  double previous_fpr = 0.0;
  for (size_t k = 0; k < curve.tps.size(); ++k) {
    const double tpr = curve.tps[k] / positives;
    const double fpr = curve.fps[k] / negatives;
    area += (fpr - previous_fpr) * (tpr + previous_tpr) / 2.0;
    previous_tpr = tpr;
    previous_fpr = fpr;
  }
  return area;
}

double PrecisionAt(const Curve& curve, size_t k) {
  const double predicted = curve.tps[k] + curve.fps[k];
  return predicted == 0.0 ? 0.0 : curve.tps[k] / predicted;
}

double AveragePrecisionOfCurve(const Curve& curve) {
  const double positives = curve.tps.back();
  if (positives == 0.0) return 0.0;
  double sum = 0.0;
  double previous_recall = 0.0;
  for (size_t k = 0; k < curve.tps.size(); ++k) {
    const double recall = curve.tps[k] / positives;
    sum += (recall - previous_recall) * PrecisionAt(curve, k);
    previous_recall = recall;
  }
  return sum;
}

}  // namespace

Result<double> RocAuc(std::span<const double> labels, std::span<const double> scores,
                      std::span<const double> weights) {
  RETURN_IF_ERROR(CheckInputs(labels, scores, weights, LabelKind::kBinary, ScoreKind::kReal));
  if (!HasBothClasses(labels)) {
    return FailedPrecondition("ROC AUC is not defined when the labels hold only one class (all " +
                              std::string(labels[0] == 1.0 ? "positive" : "negative") + ")");
  }
  return RocAucOfCurve(BuildCurve(labels, scores, weights));
}

Result<double> AveragePrecision(std::span<const double> labels, std::span<const double> scores,
                                std::span<const double> weights) {
  RETURN_IF_ERROR(CheckInputs(labels, scores, weights, LabelKind::kBinary, ScoreKind::kReal));
  return AveragePrecisionOfCurve(BuildCurve(labels, scores, weights));
}

Result<double> PrAucTrapezoid(std::span<const double> labels, std::span<const double> scores,
                              std::span<const double> weights) {
  RETURN_IF_ERROR(CheckInputs(labels, scores, weights, LabelKind::kBinary, ScoreKind::kReal));
  const Curve curve = BuildCurve(labels, scores, weights);
  const double positives = curve.tps.back();
  if (positives == 0.0) {
    return FailedPrecondition("PR AUC is not defined without positive labels");
  }
  double area = 0.0;
  double previous_recall = 0.0;
  double previous_precision = 1.0;
  for (size_t k = 0; k < curve.tps.size(); ++k) {
    const double recall = curve.tps[k] / positives;
    const double precision = PrecisionAt(curve, k);
    area += (recall - previous_recall) * (precision + previous_precision) / 2.0;
    previous_recall = recall;
    previous_precision = precision;
  }
  return area;
}

namespace {

// LogLoss of inputs CheckInputs accepted.
double LogLossOf(std::span<const double> labels, std::span<const double> scores,
                 std::span<const double> weights) {
  constexpr double kEps = std::numeric_limits<double>::epsilon();
  double sum = 0.0;
  double total_weight = 0.0;
  for (size_t row = 0; row < labels.size(); ++row) {
    // scikit-learn clips p, builds (1 - p, p) and divides by their sum.
    const double p = std::clamp(scores[row], kEps, 1.0 - kEps);
    const double q = 1.0 - p;
    const double normaliser = q + p;
    const double probability = labels[row] == 1.0 ? p / normaliser : q / normaliser;
    const double weight = WeightAt(weights, row);
    sum += -std::log(probability) * weight;
    total_weight += weight;
  }
  return sum / total_weight;
}

}  // namespace

Result<double> LogLoss(std::span<const double> labels, std::span<const double> scores,
                       std::span<const double> weights) {
  RETURN_IF_ERROR(
      CheckInputs(labels, scores, weights, LabelKind::kBinary, ScoreKind::kProbability));
  return LogLossOf(labels, scores, weights);
}

namespace {

// BrierScore of inputs CheckInputs accepted.
double BrierScoreOf(std::span<const double> labels, std::span<const double> scores,
                    std::span<const double> weights) {
  double sum = 0.0;
  double total_weight = 0.0;
  for (size_t row = 0; row < labels.size(); ++row) {
    const double error = labels[row] - scores[row];
    const double weight = WeightAt(weights, row);
    sum += error * error * weight;
    total_weight += weight;
  }
  return sum / total_weight;
}

}  // namespace

Result<double> BrierScore(std::span<const double> labels, std::span<const double> scores,
                          std::span<const double> weights) {
  RETURN_IF_ERROR(
      CheckInputs(labels, scores, weights, LabelKind::kBinary, ScoreKind::kProbability));
  return BrierScoreOf(labels, scores, weights);
}

namespace {

// ExpectedCalibrationError of inputs CheckInputs accepted.
double ExpectedCalibrationErrorOf(std::span<const double> labels, std::span<const double> scores,
                                  std::span<const double> weights, int num_bins) {
  std::vector<double> bin_weight(num_bins, 0.0);
  std::vector<double> bin_score(num_bins, 0.0);
  std::vector<double> bin_positive(num_bins, 0.0);
  double total_weight = 0.0;
  for (size_t row = 0; row < labels.size(); ++row) {
    const int bin = std::min(static_cast<int>(std::floor(scores[row] * num_bins)), num_bins - 1);
    const double weight = WeightAt(weights, row);
    bin_weight[bin] += weight;
    bin_score[bin] += weight * scores[row];
    bin_positive[bin] += weight * labels[row];
    total_weight += weight;
  }
  double ece = 0.0;
  for (int bin = 0; bin < num_bins; ++bin) {
    if (bin_weight[bin] == 0.0) continue;
    const double gap =
        std::abs(bin_score[bin] / bin_weight[bin] - bin_positive[bin] / bin_weight[bin]);
    ece += bin_weight[bin] / total_weight * gap;
  }
  return ece;
}

}  // namespace

Result<double> ExpectedCalibrationError(std::span<const double> labels,
                                        std::span<const double> scores,
                                        std::span<const double> weights, int num_bins) {
  if (num_bins < 1) return InvalidArgument("ECE needs at least one bin");
  RETURN_IF_ERROR(
      CheckInputs(labels, scores, weights, LabelKind::kBinary, ScoreKind::kProbability));
  return ExpectedCalibrationErrorOf(labels, scores, weights, num_bins);
}

namespace {

// MetricsAtThreshold of inputs CheckInputs accepted.
ThresholdMetrics MetricsAtThresholdOf(std::span<const double> labels,
                                      std::span<const double> scores, double threshold,
                                      std::span<const double> weights) {
  double true_positive = 0.0;
  double predicted_positive = 0.0;
  double actual_positive = 0.0;
  for (size_t row = 0; row < labels.size(); ++row) {
    const double weight = WeightAt(weights, row);
    const bool predicted = scores[row] >= threshold;
    const bool actual = labels[row] == 1.0;
    if (predicted) predicted_positive += weight;
    if (actual) actual_positive += weight;
    if (predicted && actual) true_positive += weight;
  }
  ThresholdMetrics metrics;
  metrics.threshold = threshold;
  metrics.precision = predicted_positive == 0.0 ? 0.0 : true_positive / predicted_positive;
  metrics.recall = actual_positive == 0.0 ? 0.0 : true_positive / actual_positive;
  // scikit-learn's F-beta with beta = 1, a zero denominator replaced by 1.
  double denominator = metrics.precision + metrics.recall;
  if (denominator == 0.0) denominator = 1.0;
  metrics.f1 = 2.0 * metrics.precision * metrics.recall / denominator;
  return metrics;
}

}  // namespace

Result<ThresholdMetrics> MetricsAtThreshold(std::span<const double> labels,
                                            std::span<const double> scores, double threshold,
                                            std::span<const double> weights) {
  RETURN_IF_ERROR(CheckInputs(labels, scores, weights, LabelKind::kBinary, ScoreKind::kReal));
  return MetricsAtThresholdOf(labels, scores, threshold, weights);
}

Result<double> Rmse(std::span<const double> labels, std::span<const double> predictions,
                    std::span<const double> weights) {
  RETURN_IF_ERROR(CheckInputs(labels, predictions, weights, LabelKind::kReal, ScoreKind::kReal));
  double sum = 0.0;
  double total_weight = 0.0;
  for (size_t row = 0; row < labels.size(); ++row) {
    const double error = labels[row] - predictions[row];
    const double weight = WeightAt(weights, row);
    sum += error * error * weight;
    total_weight += weight;
  }
  return std::sqrt(sum / total_weight);
}

Result<double> Mae(std::span<const double> labels, std::span<const double> predictions,
                   std::span<const double> weights) {
  RETURN_IF_ERROR(CheckInputs(labels, predictions, weights, LabelKind::kReal, ScoreKind::kReal));
  double sum = 0.0;
  double total_weight = 0.0;
  for (size_t row = 0; row < labels.size(); ++row) {
    const double weight = WeightAt(weights, row);
    sum += std::abs(labels[row] - predictions[row]) * weight;
    total_weight += weight;
  }
  return sum / total_weight;
}

Result<double> R2(std::span<const double> labels, std::span<const double> predictions,
                  std::span<const double> weights) {
  RETURN_IF_ERROR(CheckInputs(labels, predictions, weights, LabelKind::kReal, ScoreKind::kReal));
  if (labels.size() < 2) return kNaN;
  double weighted_sum = 0.0;
  double total_weight = 0.0;
  for (size_t row = 0; row < labels.size(); ++row) {
    weighted_sum += labels[row] * WeightAt(weights, row);
    total_weight += WeightAt(weights, row);
  }
  const double mean = weighted_sum / total_weight;
  double residual = 0.0;
  double total = 0.0;
  for (size_t row = 0; row < labels.size(); ++row) {
    const double weight = WeightAt(weights, row);
    const double error = labels[row] - predictions[row];
    const double deviation = labels[row] - mean;
    residual += weight * error * error;
    total += weight * deviation * deviation;
  }
  if (total == 0.0) return residual == 0.0 ? 1.0 : 0.0;
  return 1.0 - residual / total;
}

Result<BinaryMetrics> EvaluateBinary(std::span<const double> labels, std::span<const double> scores,
                                     double threshold, std::span<const double> weights) {
  // One check for all: probability scores pass every metric's check.
  RETURN_IF_ERROR(
      CheckInputs(labels, scores, weights, LabelKind::kBinary, ScoreKind::kProbability));
  BinaryMetrics metrics;
  metrics.log_loss = LogLossOf(labels, scores, weights);
  metrics.brier = BrierScoreOf(labels, scores, weights);
  metrics.ece = ExpectedCalibrationErrorOf(labels, scores, weights, 10);
  metrics.at_threshold = MetricsAtThresholdOf(labels, scores, threshold, weights);
  const Curve curve = BuildCurve(labels, scores, weights);
  metrics.count = static_cast<int64_t>(labels.size());
  metrics.weight = curve.tps.back() + curve.fps.back();
  metrics.positives = curve.tps.back();
  metrics.roc_auc = HasBothClasses(labels) ? RocAucOfCurve(curve) : kNaN;
  metrics.pr_auc = curve.tps.back() > 0.0 ? AveragePrecisionOfCurve(curve) : kNaN;
  return metrics;
}

Result<RegressionMetrics> EvaluateRegression(std::span<const double> labels,
                                             std::span<const double> predictions,
                                             std::span<const double> weights) {
  RegressionMetrics metrics;
  ASSIGN_OR_RETURN(metrics.rmse, Rmse(labels, predictions, weights));
  ASSIGN_OR_RETURN(metrics.mae, Mae(labels, predictions, weights));
  ASSIGN_OR_RETURN(metrics.r2, R2(labels, predictions, weights));
  metrics.count = static_cast<int64_t>(labels.size());
  metrics.weight = 0.0;
  for (size_t row = 0; row < labels.size(); ++row) metrics.weight += WeightAt(weights, row);
  return metrics;
}

namespace {

// Row ids grouped by key value: groups in key order, the null group last.
Result<std::vector<std::vector<uint32_t>>> GroupRows(const table::Column& key, size_t rows) {
  if (key.size() != rows) {
    return InvalidArgument("the slice key has " + std::to_string(key.size()) +
                           " rows, the labels " + std::to_string(rows));
  }
  if (key.type() == table::DataType::kDouble) {
    return InvalidArgument("a slice key must be a string, integer, bool or timestamp column");
  }
  std::vector<uint32_t> order(rows);
  std::iota(order.begin(), order.end(), 0u);
  const bool is_string = key.type() == table::DataType::kString;
  const bool is_bool = key.type() == table::DataType::kBool;
  auto less = [&](uint32_t a, uint32_t b) {
    const bool a_valid = key.IsValid(a);
    const bool b_valid = key.IsValid(b);
    if (a_valid != b_valid) return a_valid;  // nulls last
    if (!a_valid) return false;
    if (is_string) return key.StringAt(a) < key.StringAt(b);
    if (is_bool) return key.bools()[a] < key.bools()[b];
    return key.ints()[a] < key.ints()[b];
  };
  std::stable_sort(order.begin(), order.end(), less);
  std::vector<std::vector<uint32_t>> groups;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i == 0 || less(order[i - 1], order[i])) groups.emplace_back();
    groups.back().push_back(order[i]);
  }
  return groups;
}

std::vector<double> Pick(std::span<const double> values, const std::vector<uint32_t>& rows) {
  std::vector<double> out;
  if (values.empty()) return out;
  out.reserve(rows.size());
  for (uint32_t row : rows) out.push_back(values[row]);
  return out;
}

template <typename Metrics, typename Evaluate>
Result<std::vector<Slice<Metrics>>> EvaluateSlices(const table::Column& key,
                                                   std::span<const double> labels,
                                                   std::span<const double> scores,
                                                   std::span<const double> weights,
                                                   Evaluate evaluate) {
  ASSIGN_OR_RETURN(std::vector<std::vector<uint32_t>> groups, GroupRows(key, labels.size()));
  std::vector<Slice<Metrics>> slices;
  slices.reserve(groups.size());
  for (const std::vector<uint32_t>& rows : groups) {
    const std::string value = key.ValueToString(rows.front());
    const std::vector<double> slice_weights = Pick(weights, rows);
    Result<Metrics> metrics = evaluate(Pick(labels, rows), Pick(scores, rows), slice_weights);
    if (!metrics.ok()) return metrics.status().WithContext("slice '" + value + "'");
    slices.push_back({value, std::move(metrics).value()});
  }
  return slices;
}

}  // namespace

Result<std::vector<Slice<BinaryMetrics>>> EvaluateBinaryBySlice(const table::Column& slice_key,
                                                                std::span<const double> labels,
                                                                std::span<const double> scores,
                                                                double threshold,
                                                                std::span<const double> weights) {
  return EvaluateSlices<BinaryMetrics>(
      slice_key, labels, scores, weights,
      [threshold](const std::vector<double>& l, const std::vector<double>& s,
                  const std::vector<double>& w) { return EvaluateBinary(l, s, threshold, w); });
}

Result<std::vector<Slice<RegressionMetrics>>> EvaluateRegressionBySlice(
    const table::Column& slice_key, std::span<const double> labels,
    std::span<const double> predictions, std::span<const double> weights) {
  return EvaluateSlices<RegressionMetrics>(
      slice_key, labels, predictions, weights,
      [](const std::vector<double>& l, const std::vector<double>& s, const std::vector<double>& w) {
        return EvaluateRegression(l, s, w);
      });
}

}  // namespace keel::train

namespace keel::train {

std::vector<SliceRows> GroupRowsByText(const table::Column& key, std::span<const uint32_t> rows) {
  // Each position gets the id of its raw value (first-seen order): a hash of
  // the string's bytes, of the value's bits, or the one null id.
  constexpr uint32_t kNone = 0xFFFFFFFFu;
  std::vector<uint32_t> ids(rows.size());
  std::vector<uint32_t> first;  // the first position of each id
  uint32_t null_id = kNone;
  auto id_of_null = [&](uint32_t position) {
    if (null_id == kNone) {
      null_id = static_cast<uint32_t>(first.size());
      first.push_back(position);
    }
    return null_id;
  };
  if (key.type() == table::DataType::kString) {
    std::unordered_map<std::string_view, uint32_t> seen;
    for (uint32_t position = 0; position < rows.size(); ++position) {
      const uint32_t row = rows[position];
      if (!key.IsValid(row)) {
        ids[position] = id_of_null(position);
        continue;
      }
      auto [it, added] = seen.try_emplace(key.StringAt(row), static_cast<uint32_t>(first.size()));
      if (added) first.push_back(position);
      ids[position] = it->second;
    }
  } else {
    std::unordered_map<uint64_t, uint32_t> seen;
    for (uint32_t position = 0; position < rows.size(); ++position) {
      const uint32_t row = rows[position];
      if (!key.IsValid(row)) {
        ids[position] = id_of_null(position);
        continue;
      }
      uint64_t bits = 0;
      switch (key.type()) {
        case table::DataType::kBool:
          bits = key.bools()[row];
          break;
        case table::DataType::kDouble:
          bits = std::bit_cast<uint64_t>(key.doubles()[row]);
          break;
        default:
          bits = static_cast<uint64_t>(key.ints()[row]);
      }
      auto [it, added] = seen.try_emplace(bits, static_cast<uint32_t>(first.size()));
      if (added) first.push_back(position);
      ids[position] = it->second;
    }
  }
  // The positions of each id, increasing.
  std::vector<std::vector<uint32_t>> positions(first.size());
  {
    std::vector<uint32_t> counts(first.size(), 0);
    for (const uint32_t id : ids) ++counts[id];
    for (size_t id = 0; id < first.size(); ++id) positions[id].reserve(counts[id]);
  }
  for (uint32_t position = 0; position < ids.size(); ++position) {
    positions[ids[position]].push_back(position);
  }
  // Ids by text; ids printing alike share a group.
  std::map<std::string, std::vector<uint32_t>> by_text;
  for (uint32_t id = 0; id < first.size(); ++id) {
    by_text[key.ValueToString(rows[first[id]])].push_back(id);
  }
  std::vector<SliceRows> groups;
  groups.reserve(by_text.size());
  for (auto& [text, members] : by_text) {
    SliceRows group{text, std::move(positions[members[0]])};
    if (members.size() > 1) {
      for (size_t member = 1; member < members.size(); ++member) {
        group.rows.insert(group.rows.end(), positions[members[member]].begin(),
                          positions[members[member]].end());
      }
      std::sort(group.rows.begin(), group.rows.end());
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

}  // namespace keel::train
