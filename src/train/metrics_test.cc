#include "train/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "train/python_oracle.h"

// Every metric against scikit-learn 1.2.1 (and ECE against a NumPy
// transcription of the header's definition), answered by one python3 run for
// the whole binary. Tolerance: |keel - sklearn| <= 1e-9 (absolute; all metrics
// here are O(1)).

namespace keel::train {
namespace {

using nlohmann::json;

constexpr double kTolerance = 1e-9;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Case {
  std::string name;
  std::vector<double> labels;
  std::vector<double> scores;
  std::vector<double> weights;  // empty: unweighted
  double threshold = 0.5;
  bool regression = false;
};

Case Random(std::string name, int rows, double positive_rate, int decimals, bool weighted,
            uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  Case c;
  c.name = std::move(name);
  for (int row = 0; row < rows; ++row) {
    const double label = uniform(rng) < positive_rate ? 1.0 : 0.0;
    // Scores correlate with the label so AUCs are not all near 0.5.
    double score = std::clamp(0.35 * label + 0.65 * uniform(rng), 0.0, 1.0);
    if (decimals > 0) score = std::round(score * std::pow(10, decimals)) / std::pow(10, decimals);
    c.labels.push_back(label);
    c.scores.push_back(score);
    if (weighted) c.weights.push_back(uniform(rng) < 0.1 ? 0.0 : 0.1 + 3.0 * uniform(rng));
  }
  c.threshold = 0.3 + 0.4 * uniform(rng);
  return c;
}

Case RandomRegression(std::string name, int rows, bool weighted, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Case c;
  c.name = std::move(name);
  c.regression = true;
  for (int row = 0; row < rows; ++row) {
    const double label = 10.0 + 5.0 * normal(rng);
    c.labels.push_back(label);
    c.scores.push_back(label + 2.0 * normal(rng));
    if (weighted) c.weights.push_back(std::abs(normal(rng)) + 0.01);
  }
  return c;
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  uint32_t seed = 1;
  for (int rows : {2, 3, 5, 10, 37, 100, 1000, 5000}) {
    for (bool weighted : {false, true}) {
      const std::string suffix = std::to_string(rows) + (weighted ? "_weighted" : "");
      cases.push_back(Random("continuous_" + suffix, rows, 0.4, 0, weighted, seed++));
      cases.push_back(Random("ties1_" + suffix, rows, 0.5, 1, weighted, seed++));
      cases.push_back(Random("ties2_" + suffix, rows, 0.3, 2, weighted, seed++));
      if (rows >= 100) {
        cases.push_back(Random("imbalanced_" + suffix, rows, 0.02, 0, weighted, seed++));
      }
      cases.push_back(RandomRegression("regression_" + suffix, rows, weighted, seed++));
    }
  }
  // Hand-made edges: extreme probabilities (clipping), all scores equal, perfect ranking.
  cases.push_back({"extremes", {0, 1, 1, 0, 1}, {0.0, 1.0, 0.0, 1.0, 0.5}, {}, 0.5});
  cases.push_back({"all_tied", {0, 1, 1, 0, 1, 0}, {0.3, 0.3, 0.3, 0.3, 0.3, 0.3}, {}, 0.3});
  cases.push_back({"perfect", {0, 0, 1, 1}, {0.1, 0.2, 0.8, 0.9}, {}, 0.5});
  cases.push_back({"nothing_predicted", {0, 1, 1}, {0.1, 0.2, 0.3}, {}, 0.9});
  // One class: ROC AUC is an error in both; the rest are defined.
  cases.push_back({"all_negative", {0, 0, 0, 0}, {0.1, 0.4, 0.4, 0.8}, {}, 0.5});
  cases.push_back({"all_positive", {1, 1, 1}, {0.1, 0.4, 0.9}, {}, 0.5});
  cases.push_back({"one_row_regression", {3.0}, {2.0}, {}, 0.5, true});
  cases.push_back({"constant_label_regression", {2.0, 2.0, 2.0}, {2.0, 2.0, 2.0}, {}, 0.5, true});
  cases.push_back({"constant_label_off", {2.0, 2.0, 2.0}, {2.0, 1.0, 2.0}, {}, 0.5, true});
  return cases;
}

constexpr const char* kScript = R"PY(
import json, math, sys, warnings
import numpy as np
import sklearn
from sklearn import metrics as m
warnings.simplefilter("ignore")

def num(x):
    x = float(x)
    return "nan" if math.isnan(x) else x

def ece(y, p, w, bins=10):
    b = np.minimum(np.floor(p * bins).astype(np.int64), bins - 1)
    total = w.sum()
    out = 0.0
    for k in range(bins):
        sel = b == k
        wk = w[sel].sum()
        if wk == 0:
            continue
        out += wk / total * abs((w[sel] * p[sel]).sum() / wk - (w[sel] * y[sel]).sum() / wk)
    return out

def guarded(f):
    try:
        return num(f())
    except ValueError as e:
        return "error"

request = json.load(open(sys.argv[1]))
answers = []
for c in request["cases"]:
    y = np.array(c["labels"], dtype=np.float64)
    p = np.array(c["scores"], dtype=np.float64)
    w = np.array(c["weights"], dtype=np.float64) if c["weights"] else None
    if c["regression"]:
        answers.append({
            "rmse": num(m.mean_squared_error(y, p, sample_weight=w, squared=False)),
            "mae": num(m.mean_absolute_error(y, p, sample_weight=w)),
            "r2": num(m.r2_score(y, p, sample_weight=w)),
        })
        continue
    pred = (p >= c["threshold"]).astype(np.float64)
    def pr_trapezoid():
        # keel refuses PR AUC without positives (scikit-learn warns and answers 0.5).
        if (y * (w if w is not None else 1.0)).sum() == 0:
            raise ValueError("no positives")
        precision, recall, _ = m.precision_recall_curve(y, p, sample_weight=w)
        return m.auc(recall, precision)
    answers.append({
        "roc_auc": guarded(lambda: m.roc_auc_score(y, p, sample_weight=w)),
        "average_precision": num(m.average_precision_score(y, p, sample_weight=w)),
        "pr_trapezoid": guarded(pr_trapezoid),
        "log_loss": num(m.log_loss(y, p, sample_weight=w, labels=[0, 1])),
        "brier": num(m.brier_score_loss(y, p, sample_weight=w)),
        "ece": num(ece(y, p, w if w is not None else np.ones_like(y))),
        "precision": num(m.precision_score(y, pred, sample_weight=w, zero_division=0)),
        "recall": num(m.recall_score(y, pred, sample_weight=w, zero_division=0)),
        "f1": num(m.f1_score(y, pred, sample_weight=w, zero_division=0)),
    })
print(json.dumps({"sklearn": sklearn.__version__, "answers": answers}))
)PY";

const json& Oracle() {
  static const json* answer = [] {
    json request = {{"cases", json::array()}};
    for (const Case& c : AllCases()) {
      request["cases"].push_back({{"labels", c.labels},
                                  {"scores", c.scores},
                                  {"weights", c.weights},
                                  {"threshold", c.threshold},
                                  {"regression", c.regression}});
    }
    return new json(testing::RunPythonOracle(kScript, request));
  }();
  return *answer;
}

double Number(const json& value) {
  if (value.is_string()) return value.get<std::string>() == "nan" ? kNaN : -1e300;
  return value.get<double>();
}

// Compares one keel result with the oracle's answer ("error" = must fail).
void ExpectMatches(const Result<double>& actual, const json& expected, const std::string& what,
                   double* max_error) {
  if (expected.is_string() && expected.get<std::string>() == "error") {
    EXPECT_FALSE(actual.ok()) << what << ": scikit-learn raised, keel answered";
    return;
  }
  ASSERT_TRUE(actual.ok()) << what << ": " << actual.status().ToString();
  const double want = Number(expected);
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(*actual)) << what << ": expected NaN, got " << *actual;
    return;
  }
  const double error = std::abs(*actual - want);
  *max_error = std::max(*max_error, error);
  EXPECT_LE(error, kTolerance) << what << ": keel " << *actual << " vs sklearn " << want;
}

TEST(MetricsOracle, UsesScikitLearn121) {
  ASSERT_FALSE(Oracle().contains("error")) << Oracle()["error"].get<std::string>();
  EXPECT_EQ(Oracle()["sklearn"].get<std::string>(), "1.2.1");
}

TEST(MetricsOracle, EveryMetricEqualsScikitLearn) {
  ASSERT_FALSE(Oracle().contains("error")) << Oracle()["error"].get<std::string>();
  const std::vector<Case> cases = AllCases();
  const json& answers = Oracle()["answers"];
  ASSERT_EQ(answers.size(), cases.size());
  double max_error = 0.0;
  int comparisons = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const json& want = answers[i];
    auto check = [&](const Result<double>& actual, const char* metric) {
      ExpectMatches(actual, want[metric], c.name + " " + metric, &max_error);
      ++comparisons;
    };
    if (c.regression) {
      check(Rmse(c.labels, c.scores, c.weights), "rmse");
      check(Mae(c.labels, c.scores, c.weights), "mae");
      check(R2(c.labels, c.scores, c.weights), "r2");
      continue;
    }
    check(RocAuc(c.labels, c.scores, c.weights), "roc_auc");
    check(AveragePrecision(c.labels, c.scores, c.weights), "average_precision");
    check(PrAucTrapezoid(c.labels, c.scores, c.weights), "pr_trapezoid");
    check(LogLoss(c.labels, c.scores, c.weights), "log_loss");
    check(BrierScore(c.labels, c.scores, c.weights), "brier");
    check(ExpectedCalibrationError(c.labels, c.scores, c.weights), "ece");
    Result<ThresholdMetrics> at = MetricsAtThreshold(c.labels, c.scores, c.threshold, c.weights);
    ASSERT_TRUE(at.ok()) << at.status().ToString();
    check(at->precision, "precision");
    check(at->recall, "recall");
    check(at->f1, "f1");
  }
  std::cout << "[ oracle   ] " << comparisons << " comparisons with scikit-learn, max abs error "
            << max_error << "\n";
}

TEST(Metrics, RocAucOfOneClassIsAnErrorNamingIt) {
  Result<double> auc = RocAuc(std::vector<double>{1, 1}, std::vector<double>{0.2, 0.4});
  ASSERT_FALSE(auc.ok());
  EXPECT_EQ(auc.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(auc.status().message().find("only one class"), std::string::npos);
}

TEST(Metrics, RejectsBadInput) {
  const std::vector<double> labels = {0, 1, 1};
  EXPECT_FALSE(RocAuc(labels, std::vector<double>{0.1, 0.2}).ok());  // length
  EXPECT_FALSE(RocAuc(std::vector<double>{0, 2, 1}, std::vector<double>{0.1, 0.2, 0.3}).ok());
  EXPECT_FALSE(RocAuc(labels, std::vector<double>{0.1, kNaN, 0.3}).ok());
  EXPECT_FALSE(LogLoss(labels, std::vector<double>{0.1, 1.2, 0.3}).ok());      // > 1
  EXPECT_FALSE(BrierScore(labels, std::vector<double>{-0.1, 0.2, 0.3}).ok());  // < 0
  EXPECT_FALSE(LogLoss(labels, std::vector<double>{0.1, 0.2, 0.3}, std::vector<double>{1, -1, 1})
                   .ok());  // weight < 0
  EXPECT_FALSE(LogLoss(labels, std::vector<double>{0.1, 0.2, 0.3}, std::vector<double>{0, 0, 0})
                   .ok());                                                // zero sum
  EXPECT_FALSE(Rmse(std::vector<double>{}, std::vector<double>{}).ok());  // empty
  EXPECT_FALSE(ExpectedCalibrationError(labels, std::vector<double>{0.1, 0.2, 0.3}, {}, 0).ok());
}

TEST(Metrics, EvaluateBinaryAgreesWithTheSingleMetricsAndMarksOneClassAsNaN) {
  const Case c = Random("x", 500, 0.3, 2, true, 99);
  Result<BinaryMetrics> all = EvaluateBinary(c.labels, c.scores, 0.4, c.weights);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->count, 500);
  EXPECT_DOUBLE_EQ(all->roc_auc, *RocAuc(c.labels, c.scores, c.weights));
  EXPECT_DOUBLE_EQ(all->pr_auc, *AveragePrecision(c.labels, c.scores, c.weights));
  EXPECT_DOUBLE_EQ(all->log_loss, *LogLoss(c.labels, c.scores, c.weights));
  EXPECT_DOUBLE_EQ(all->ece, *ExpectedCalibrationError(c.labels, c.scores, c.weights));
  EXPECT_DOUBLE_EQ(all->at_threshold.f1,
                   MetricsAtThreshold(c.labels, c.scores, 0.4, c.weights)->f1);

  Result<BinaryMetrics> negatives =
      EvaluateBinary(std::vector<double>{0, 0}, std::vector<double>{0.2, 0.3});
  ASSERT_TRUE(negatives.ok());
  EXPECT_TRUE(std::isnan(negatives->roc_auc));
  EXPECT_TRUE(std::isnan(negatives->pr_auc));
  EXPECT_EQ(negatives->positives, 0.0);
}

// Per-slice metrics equal the metrics of the rows picked by hand.
TEST(Metrics, SlicesEqualMetricsOfTheirRowsInKeyOrderWithNullsLast) {
  const Case c = Random("x", 3000, 0.3, 2, false, 7);
  table::Column key(table::DataType::kString, 0);
  table::Column int_key(table::DataType::kInt64, 0);
  const std::vector<std::string> states = {"TX", "CA", "NY", "AK"};
  for (size_t row = 0; row < c.labels.size(); ++row) {
    if (row % 97 == 5) {
      key.AppendNull();
      int_key.AppendNull();
    } else {
      key.AppendString(states[(row * 7919) % states.size()]);
      int_key.AppendInt64(static_cast<int64_t>((row * 31) % 24) - 5);
    }
  }
  for (const table::Column* column : {&key, &int_key}) {
    Result<std::vector<Slice<BinaryMetrics>>> slices =
        EvaluateBinaryBySlice(*column, c.labels, c.scores, 0.5);
    ASSERT_TRUE(slices.ok()) << slices.status().ToString();
    int64_t total = 0;
    for (size_t i = 0; i < slices->size(); ++i) {
      const Slice<BinaryMetrics>& slice = (*slices)[i];
      std::vector<double> labels;
      std::vector<double> scores;
      for (size_t row = 0; row < c.labels.size(); ++row) {
        if (column->ValueToString(row) == slice.value) {
          labels.push_back(c.labels[row]);
          scores.push_back(c.scores[row]);
        }
      }
      EXPECT_EQ(slice.metrics.count, static_cast<int64_t>(labels.size()));
      EXPECT_DOUBLE_EQ(slice.metrics.roc_auc, *RocAuc(labels, scores)) << slice.value;
      EXPECT_DOUBLE_EQ(slice.metrics.log_loss, *LogLoss(labels, scores)) << slice.value;
      total += slice.metrics.count;
      if (i + 1 < slices->size() && column == &int_key && (*slices)[i + 1].value != "null") {
        EXPECT_LT(std::stoll(slice.value), std::stoll((*slices)[i + 1].value));
      }
    }
    EXPECT_EQ(total, 3000);
    EXPECT_EQ(slices->back().value, "null");
  }
  EXPECT_EQ((*EvaluateBinaryBySlice(key, c.labels, c.scores))[0].value, "AK");
}

// Unweighted curves come from a radix sort, weighted ones from a comparison
// sort: with every weight 1 both must give the very same bits (the counts
// are whole numbers), on ties, -0.0 beside 0.0, tiny and one-class samples,
// and scores spanning many exponents. EvaluateBinary checks its inputs once:
// it must equal the metrics one by one.
TEST(Metrics, UnweightedCurvesEqualTheWeightedSortWithUnitWeights) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 60; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    const size_t rows = trial < 10 ? 1 + trial : 10 + rng() % 3000;
    const int kind = trial % 4;
    const double positive_rate = trial % 7 == 0 ? 0.0 : trial % 7 == 1 ? 1.0 : 0.3;
    std::vector<double> labels(rows);
    std::vector<double> scores(rows);
    for (size_t row = 0; row < rows; ++row) {
      labels[row] = std::uniform_real_distribution<double>(0, 1)(rng) < positive_rate ? 1.0 : 0.0;
      const double u = std::uniform_real_distribution<double>(0, 1)(rng);
      switch (kind) {
        case 0:  // heavy ties
          scores[row] = std::round(u * 8) / 8;
          break;
        case 1:  // signed zeros among few values
          scores[row] = rng() % 3 == 0 ? (rng() % 2 ? -0.0 : 0.0) : std::round(u * 4) / 4;
          break;
        case 2:  // many exponents
          scores[row] = std::ldexp(u, -static_cast<int>(rng() % 60));
          break;
        default:
          scores[row] = u;
      }
    }
    const std::vector<double> ones(rows, 1.0);
    for (auto metric : {&RocAuc, &AveragePrecision, &PrAucTrapezoid}) {
      Result<double> unweighted = metric(labels, scores, {});
      Result<double> weighted = metric(labels, scores, ones);
      ASSERT_EQ(unweighted.ok(), weighted.ok());
      if (unweighted.ok()) {
        EXPECT_EQ(std::bit_cast<uint64_t>(*unweighted), std::bit_cast<uint64_t>(*weighted))
            << *unweighted << " vs " << *weighted;
      }
    }
    std::vector<double> probabilities = scores;
    for (double& p : probabilities) p = std::abs(p);
    for (const std::vector<double>* weights :
         {&ones, static_cast<const std::vector<double>*>(nullptr)}) {
      std::span<const double> w = weights == nullptr ? std::span<const double>() : *weights;
      Result<BinaryMetrics> all = EvaluateBinary(labels, probabilities, 0.25, w);
      ASSERT_TRUE(all.ok()) << all.status().ToString();
      EXPECT_EQ(all->log_loss, *LogLoss(labels, probabilities, w));
      EXPECT_EQ(all->brier, *BrierScore(labels, probabilities, w));
      EXPECT_EQ(all->ece, *ExpectedCalibrationError(labels, probabilities, w));
      const ThresholdMetrics at = *MetricsAtThreshold(labels, probabilities, 0.25, w);
      EXPECT_EQ(all->at_threshold.precision, at.precision);
      EXPECT_EQ(all->at_threshold.recall, at.recall);
      EXPECT_EQ(all->at_threshold.f1, at.f1);
      Result<double> roc = RocAuc(labels, probabilities, w);
      if (roc.ok()) {
        EXPECT_EQ(std::bit_cast<uint64_t>(all->roc_auc), std::bit_cast<uint64_t>(*roc));
      } else {
        EXPECT_TRUE(std::isnan(all->roc_auc));
      }
      if (all->positives > 0) {
        EXPECT_EQ(all->pr_auc, *AveragePrecision(labels, probabilities, w));
      }
    }
  }
  // Errors still come first, named as before.
  const std::vector<double> labels = {0.0, 1.0};
  EXPECT_NE(EvaluateBinary(labels, std::vector<double>{0.5, 1.5})
                .status()
                .message()
                .find("outside [0, 1]"),
            std::string::npos);
  EXPECT_NE(
      EvaluateBinary(labels, std::vector<double>{0.5, kNaN}).status().message().find("not finite"),
      std::string::npos);
}

// GroupRowsByText is the evaluate step's grouping: it must equal a
// std::map<std::string, positions> filled row by row with ValueToString (the
// step's former way, whose order metrics.json keeps), for every key type,
// nulls, a string "null" (merged with the nulls), NaNs of both signs,
// -0.0 and 0.0, and row ids in any order.
TEST(Metrics, GroupRowsByTextEqualsAMapOfEveryRowsText) {
  std::mt19937_64 rng(11);
  const double kNegativeNaN = -std::numeric_limits<double>::quiet_NaN();
  for (const table::DataType type :
       {table::DataType::kString, table::DataType::kInt64, table::DataType::kBool,
        table::DataType::kDouble, table::DataType::kTimestamp}) {
    for (const int distinct : {1, 3, 40}) {
      SCOPED_TRACE(std::string(table::DataTypeName(type)) + ", " + std::to_string(distinct));
      table::Column key(type, 0);
      const size_t size = 2000;
      for (size_t row = 0; row < size; ++row) {
        const int value = static_cast<int>(rng() % distinct) - distinct / 3;
        if (rng() % 13 == 0) {
          key.AppendNull();
          continue;
        }
        switch (type) {
          case table::DataType::kString:
            key.AppendString(rng() % 17 == 0 ? "null" : "s" + std::to_string(value));
            break;
          case table::DataType::kBool:
            key.AppendBool(value % 2 != 0);
            break;
          case table::DataType::kDouble: {
            const double specials[] = {0.0, -0.0, kNaN, kNegativeNaN, 0.1 + 0.2};
            key.AppendDouble(rng() % 5 == 0 ? specials[rng() % 5] : value / 4.0);
            break;
          }
          default:
            key.AppendInt64(int64_t{value} * 86'400'000'000LL);
        }
      }
      // Some rows, some twice, in a random order.
      std::vector<uint32_t> rows;
      for (uint32_t row = 0; row < size; ++row) {
        if (rng() % 3 != 0) rows.push_back(row);
        if (rng() % 10 == 0) rows.push_back(row);
      }
      std::shuffle(rows.begin(), rows.end(), rng);
      std::map<std::string, std::vector<uint32_t>> expected;
      for (uint32_t position = 0; position < rows.size(); ++position) {
        const uint32_t row = rows[position];
        expected[key.IsValid(row) ? key.ValueToString(row) : "null"].push_back(position);
      }
      const std::vector<SliceRows> groups = GroupRowsByText(key, rows);
      ASSERT_EQ(groups.size(), expected.size());
      size_t index = 0;
      for (const auto& [value, positions] : expected) {
        EXPECT_EQ(groups[index].value, value);
        EXPECT_EQ(groups[index].rows, positions) << value;
        ++index;
      }
    }
  }
  EXPECT_TRUE(GroupRowsByText(table::Column(table::DataType::kInt64, 3), {}).empty());
}

TEST(Metrics, RegressionSlicesAndBadKeys) {
  table::Column key(table::DataType::kInt64, 0);
  for (int64_t value : {2, 1, 2, 1, 2}) key.AppendInt64(value);
  const std::vector<double> labels = {1, 2, 3, 4, 5};
  const std::vector<double> predictions = {1, 2, 2, 5, 5};
  Result<std::vector<Slice<RegressionMetrics>>> slices =
      EvaluateRegressionBySlice(key, labels, predictions);
  ASSERT_TRUE(slices.ok()) << slices.status().ToString();
  ASSERT_EQ(slices->size(), 2u);
  EXPECT_EQ((*slices)[0].value, "1");
  EXPECT_EQ((*slices)[0].metrics.count, 2);
  EXPECT_DOUBLE_EQ((*slices)[0].metrics.mae, 0.5);
  EXPECT_DOUBLE_EQ((*slices)[1].metrics.rmse, std::sqrt(1.0 / 3.0));
  table::Column doubles(table::DataType::kDouble, 5);
  EXPECT_FALSE(EvaluateRegressionBySlice(doubles, labels, predictions).ok());
  table::Column short_key(table::DataType::kInt64, 4);
  EXPECT_FALSE(EvaluateRegressionBySlice(short_key, labels, predictions).ok());
}

}  // namespace
}  // namespace keel::train
