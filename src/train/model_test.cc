#include "train/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "table/column.h"
#include "train/baselines.h"
#include "train/matrix.h"
#include "train/python_oracle.h"
#include "train/xgboost_model.h"

// XGBoostModel against python3-xgboost 1.7.4 (same matrix, same parameters,
// trained in Python) and the linear baselines against scikit-learn 1.2.1.
// Predictions must agree to 1e-6 (absolute; probabilities and margins are O(1)
// to O(10)); linear coefficients to 1e-6.

namespace keel::train {
namespace {

using nlohmann::json;

constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();

struct Split {
  DenseMatrix x;
  std::vector<double> y;
};

// Random features (column 2 and 4 with ~15 % missing when `with_missing`) and
// a noisy label from a non-linear rule; `noise` makes early stopping trigger.
Split MakeSplit(Task task, size_t rows, size_t cols, bool with_missing, uint32_t seed,
                double feature_scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  Split split;
  split.x.rows = rows;
  split.x.cols = cols;
  for (size_t col = 0; col < cols; ++col)
    split.x.feature_names.push_back("f" + std::to_string(col));
  for (size_t row = 0; row < rows; ++row) {
    std::vector<double> values(cols);
    for (size_t col = 0; col < cols; ++col) values[col] = normal(rng);
    // Precondition: cols >= 3.
    const double signal = 1.5 * values[0] - values[1] +
                          (cols > 3 ? 0.8 * values[2] * values[3] : 0.5 * values[2]) +
                          (cols > 4 ? 0.5 * std::abs(values[4]) : 0.0);
    for (size_t col = 0; col < cols; ++col) {
      float value = static_cast<float>(values[col] * (col == 1 ? feature_scale : 1.0) +
                                       (col == 1 ? 50.0 * feature_scale : 0.0));
      if (with_missing && (col == 2 || col == 4) && uniform(rng) < 0.15) value = kMissing;
      split.x.values.push_back(value);
    }
    if (task == Task::kBinaryClassification) {
      split.y.push_back(uniform(rng) < 1.0 / (1.0 + std::exp(-signal)) ? 1.0 : 0.0);
    } else {
      split.y.push_back(3.0 * signal + 2.0 * normal(rng));
    }
  }
  return split;
}

std::string Bytes(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}
std::string Bytes(const std::vector<double>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double));
}

double MaxAbsDifference(const std::vector<double>& actual, const json& expected) {
  EXPECT_EQ(actual.size(), expected.size());
  double max = 0.0;
  for (size_t i = 0; i < actual.size() && i < expected.size(); ++i) {
    max = std::max(max, std::abs(actual[i] - expected[i].get<double>()));
  }
  return max;
}

constexpr const char* kXgboostScript = R"PY(
import json, sys
import numpy as np
import xgboost as xgb
request = json.load(open(sys.argv[1]))
def load(name, dtype, cols=None):
    array = np.fromfile(name, dtype=dtype)
    return array.reshape(-1, cols) if cols else array
answers = []
for case in request["cases"]:
    p, cols = case["prefix"], case["cols"]
    dtrain = xgb.DMatrix(load(p + "train_x", np.float32, cols), label=load(p + "train_y", np.float64))
    dvalid = xgb.DMatrix(load(p + "valid_x", np.float32, cols), label=load(p + "valid_y", np.float64))
    dtest = xgb.DMatrix(load(p + "test_x", np.float32, cols))
    history = {}
    booster = xgb.train(case["params"], dtrain, num_boost_round=case["rounds"],
                        evals=[(dvalid, "valid")], evals_result=history,
                        early_stopping_rounds=case["early_stopping_rounds"] or None,
                        verbose_eval=False)
    best = booster.best_iteration if case["early_stopping_rounds"] else case["rounds"] - 1
    window = (0, best + 1)
    keel_booster = xgb.Booster(model_file=bytearray(open(p + "keel_model", "rb").read()))
    answers.append({
        "best_iteration": best,
        "curve": list(history["valid"].values())[0],
        "probability": booster.predict(dtest, iteration_range=window).astype(float).tolist(),
        "margin": booster.predict(dtest, iteration_range=window, output_margin=True).astype(float).tolist(),
        "keel_model_probability": keel_booster.predict(dtest).astype(float).tolist(),
    })
print(json.dumps({"xgboost": xgb.__version__, "answers": answers}))
)PY";

struct XgboostCase {
  std::string name;
  XgboostParams params;
  Split train, valid, test;
};

XgboostCase MakeCase(std::string name, Split train, Split valid, Split test) {
  XgboostCase c;
  c.name = std::move(name);
  c.train = std::move(train);
  c.valid = std::move(valid);
  c.test = std::move(test);
  return c;
}

// The booster parameters as keel sets them, for XGBoost's Python package.
json PythonParams(const XgboostParams& params) {
  json out = json::object();
  for (const auto& [name, value] : XgboostBoosterParams(params)) out[name] = value;
  return out;
}

TEST(XgboostOracle, PredictionsEqualPythonXgboostWithEarlyStoppingAndMissingValues) {
  std::vector<XgboostCase> cases;
  {
    XgboostCase c = MakeCase("binary", MakeSplit(Task::kBinaryClassification, 3000, 6, true, 1),
                             MakeSplit(Task::kBinaryClassification, 800, 6, true, 2),
                             MakeSplit(Task::kBinaryClassification, 1000, 6, true, 3));
    c.params.num_rounds = 300;
    c.params.eta = 0.3;
    c.params.max_depth = 5;
    c.params.subsample = 0.8;
    c.params.colsample_bytree = 0.8;
    c.params.seed = 42;
    c.params.early_stopping_rounds = 5;
    cases.push_back(std::move(c));
  }
  {
    XgboostCase c = MakeCase("regression", MakeSplit(Task::kRegression, 2500, 5, true, 4),
                             MakeSplit(Task::kRegression, 600, 5, true, 5),
                             MakeSplit(Task::kRegression, 700, 5, true, 6));
    c.params.task = Task::kRegression;
    c.params.num_rounds = 400;
    c.params.eta = 0.2;
    c.params.max_depth = 8;
    c.params.seed = 7;
    c.params.early_stopping_rounds = 10;
    cases.push_back(std::move(c));
  }
  {  // No early stopping, deep trees, many missing values.
    XgboostCase c =
        MakeCase("binary_full", MakeSplit(Task::kBinaryClassification, 1500, 5, true, 8),
                 MakeSplit(Task::kBinaryClassification, 300, 5, true, 9),
                 MakeSplit(Task::kBinaryClassification, 500, 5, true, 10));
    c.params.num_rounds = 30;
    c.params.max_depth = 10;
    c.params.seed = 3;
    cases.push_back(std::move(c));
  }
  json request = {{"cases", json::array()}};
  std::vector<std::pair<std::string, std::string>> files;
  std::vector<XgboostTrainingReport> reports(cases.size());
  std::vector<std::unique_ptr<XgboostModel>> models;
  for (size_t i = 0; i < cases.size(); ++i) {
    XgboostCase& c = cases[i];
    Result<std::unique_ptr<XgboostModel>> model =
        XgboostModel::Train(c.params, c.train.x, c.train.y, &c.valid.x, c.valid.y, &reports[i]);
    ASSERT_TRUE(model.ok()) << c.name << ": " << model.status().ToString();
    Result<std::string> bytes = (*model)->Save();
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    const std::string prefix = c.name + "_";
    files.push_back({prefix + "train_x", Bytes(c.train.x.values)});
    files.push_back({prefix + "train_y", Bytes(c.train.y)});
    files.push_back({prefix + "valid_x", Bytes(c.valid.x.values)});
    files.push_back({prefix + "valid_y", Bytes(c.valid.y)});
    files.push_back({prefix + "test_x", Bytes(c.test.x.values)});
    files.push_back({prefix + "keel_model", *bytes});
    request["cases"].push_back({{"prefix", prefix},
                                {"cols", c.train.x.cols},
                                {"params", PythonParams(c.params)},
                                {"rounds", c.params.num_rounds},
                                {"early_stopping_rounds", c.params.early_stopping_rounds}});
    models.push_back(std::move(model).value());
  }
  const json oracle = testing::RunPythonOracle(kXgboostScript, request, files);
  ASSERT_FALSE(oracle.contains("error")) << oracle["error"].get<std::string>();
  EXPECT_EQ(oracle["xgboost"].get<std::string>(), "1.7.4");
  for (size_t i = 0; i < cases.size(); ++i) {
    const XgboostCase& c = cases[i];
    const json& want = oracle["answers"][i];
    const XgboostTrainingReport& report = reports[i];
    if (c.params.early_stopping_rounds > 0) {
      EXPECT_EQ(report.best_iteration, want["best_iteration"].get<int>()) << c.name;
      EXPECT_LT(report.rounds_boosted, c.params.num_rounds) << c.name << ": never stopped early";
      EXPECT_EQ(models[i]->num_rounds(), report.best_iteration + 1) << c.name;
    } else {
      EXPECT_EQ(models[i]->num_rounds(), c.params.num_rounds);
    }
    // Python boosts every round it evaluated; keel's curve is the same prefix.
    EXPECT_EQ(report.validation_curve, want["curve"].get<std::vector<double>>()) << c.name;
    Result<std::vector<double>> probability = models[i]->Predict(c.test.x);
    Result<std::vector<double>> margin = models[i]->PredictMargin(c.test.x);
    ASSERT_TRUE(probability.ok() && margin.ok());
    const double probability_error = MaxAbsDifference(*probability, want["probability"]);
    const double margin_error = MaxAbsDifference(*margin, want["margin"]);
    const double reload_error = MaxAbsDifference(*probability, want["keel_model_probability"]);
    std::cout << "[ oracle   ] " << c.name << ": " << models[i]->num_rounds() << " rounds kept, "
              << c.test.x.rows << " rows, max |keel - xgboost.py| prediction " << probability_error
              << ", margin " << margin_error << ", keel model in python " << reload_error << "\n";
    EXPECT_LE(probability_error, 1e-6) << c.name;
    EXPECT_LE(margin_error, 1e-6) << c.name;
    EXPECT_LE(reload_error, 1e-6) << c.name;
  }
}

TEST(XgboostModel, SameSeedAndDataGiveByteIdenticalModelsWithTwoThreads) {
  const Split train = MakeSplit(Task::kBinaryClassification, 4000, 6, true, 11);
  const Split valid = MakeSplit(Task::kBinaryClassification, 1000, 6, true, 12);
  XgboostParams params;
  params.num_rounds = 60;
  params.subsample = 0.7;
  params.colsample_bytree = 0.7;
  params.seed = 5;
  params.nthread = 2;
  params.early_stopping_rounds = 8;
  std::string first_bytes;
  for (const std::string format : {"ubj", "json"}) {
    params.model_format = format;
    auto first = XgboostModel::Train(params, train.x, train.y, &valid.x, valid.y);
    auto second = XgboostModel::Train(params, train.x, train.y, &valid.x, valid.y);
    ASSERT_TRUE(first.ok() && second.ok());
    const std::string a = *(*first)->Save();
    const std::string b = *(*second)->Save();
    EXPECT_GT(a.size(), 1000u);
    EXPECT_EQ(a, b) << format << " bytes differ between two identical runs";
    if (format == "ubj") first_bytes = a;
  }
  // A different seed (with row and column sampling) gives a different model.
  params.model_format = "ubj";
  params.seed = 6;
  auto other = XgboostModel::Train(params, train.x, train.y, &valid.x, valid.y);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*(*other)->Save(), first_bytes);
}

// The training margins Train keeps (read from XGBoost's prediction cache)
// are exactly the kept model's margins of the training rows, and
// OutputFromMargin turns them into exactly XGBoost's predictions, with early
// stopping (the model cut to its best round), without it, with missing
// values, row subsampling, both tasks. Keeping them changes no model byte.
TEST(XgboostModel, KeptTrainingMarginsEqualATreeWalkBitForBit) {
  for (Task task : {Task::kBinaryClassification, Task::kRegression}) {
    for (int early_stopping : {0, 6}) {
      const Split train = MakeSplit(task, 5000, 7, true, 21);
      const Split valid = MakeSplit(task, 1500, 7, true, 22);
      XgboostParams params;
      params.task = task;
      params.num_rounds = 80;
      params.max_depth = 5;
      params.subsample = 0.8;
      params.seed = 3;
      params.nthread = 2;
      params.early_stopping_rounds = early_stopping;
      XgboostTrainingReport report;
      auto model = XgboostModel::Train(params, train.x, train.y, &valid.x, valid.y, &report,
                                       /*keep_training_margins=*/true);
      ASSERT_TRUE(model.ok()) << model.status().ToString();
      if (early_stopping > 0) {
        EXPECT_LT((*model)->num_rounds(), report.rounds_boosted) << "the test needs a cut model";
      }
      auto margins = (*model)->PredictMargin(train.x);
      auto predictions = (*model)->Predict(train.x);
      ASSERT_TRUE(margins.ok() && predictions.ok());
      ASSERT_EQ(report.training_margins.size(), train.x.rows);
      size_t margin_mismatches = 0, output_mismatches = 0;
      for (size_t row = 0; row < train.x.rows; ++row) {
        if (std::bit_cast<uint32_t>(report.training_margins[row]) !=
            std::bit_cast<uint32_t>(static_cast<float>((*margins)[row]))) {
          ++margin_mismatches;
        }
        if (std::bit_cast<uint64_t>(OutputFromMargin(task, report.training_margins[row])) !=
            std::bit_cast<uint64_t>((*predictions)[row])) {
          ++output_mismatches;
        }
      }
      EXPECT_EQ(margin_mismatches, 0u) << TaskName(task) << " early stopping " << early_stopping;
      EXPECT_EQ(output_mismatches, 0u) << TaskName(task) << " early stopping " << early_stopping;
      auto plain = XgboostModel::Train(params, train.x, train.y, &valid.x, valid.y);
      ASSERT_TRUE(plain.ok());
      EXPECT_EQ(*(*plain)->Save(), *(*model)->Save()) << "keeping margins changed the model";
    }
  }
}

TEST(XgboostModel, SaveLoadRoundTripKeepsPredictionsAndTask) {
  const Split train = MakeSplit(Task::kRegression, 1000, 4, true, 13);
  XgboostParams params;
  params.task = Task::kRegression;
  params.num_rounds = 20;
  auto model = XgboostModel::Train(params, train.x, train.y);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  for (bool json_format : {false, true}) {
    const std::string bytes = json_format ? *(*model)->SaveJson() : *(*model)->Save();
    if (json_format) {
      EXPECT_EQ(bytes.front(), '{');
    }
    Result<std::unique_ptr<Model>> loaded = LoadModel("xgboost", bytes);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ((*loaded)->task(), Task::kRegression);
    EXPECT_EQ((*loaded)->num_features(), 4u);
    EXPECT_EQ(*(*loaded)->Predict(train.x), *(*model)->Predict(train.x));
  }
}

TEST(XgboostModel, ErrorsAreStatusesWithXgboostsMessage) {
  const Split train = MakeSplit(Task::kBinaryClassification, 100, 3, false, 14);
  XgboostParams params;
  params.early_stopping_rounds = 3;
  EXPECT_EQ(XgboostModel::Train(params, train.x, train.y).status().code(),
            StatusCode::kInvalidArgument);  // early stopping without validation
  params.early_stopping_rounds = 0;
  std::vector<double> bad_labels = train.y;
  bad_labels[7] = 2.0;
  Result<std::unique_ptr<XgboostModel>> bad = XgboostModel::Train(params, train.x, bad_labels);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("row 7"), std::string::npos) << bad.status().ToString();
  params.max_bin = 1;
  EXPECT_FALSE(XgboostModel::Train(params, train.x, train.y).ok());
  params.max_bin = 256;
  params.min_child_weight = -1.0;  // only XGBoost itself checks this one
  Result<std::unique_ptr<XgboostModel>> rejected = XgboostModel::Train(params, train.x, train.y);
  ASSERT_FALSE(rejected.ok());
  EXPECT_NE(rejected.status().message().find("XGBoost"), std::string::npos);
  Result<std::unique_ptr<Model>> garbage = LoadModel("xgboost", "not a model");
  EXPECT_EQ(garbage.status().code(), StatusCode::kInvalidArgument);
  params.min_child_weight = 1.0;
  auto model = XgboostModel::Train(params, train.x, train.y);
  ASSERT_TRUE(model.ok());
  const Split wide = MakeSplit(Task::kBinaryClassification, 10, 4, false, 15);
  EXPECT_EQ((*model)->Predict(wide.x).status().code(), StatusCode::kInvalidArgument);
}

TEST(Models, OneClassTrainingLabelsAreRefusedByEveryModel) {
  Split data = MakeSplit(Task::kBinaryClassification, 50, 3, false, 51);
  std::fill(data.y.begin(), data.y.end(), 1.0);
  XgboostParams params;
  params.num_rounds = 2;
  const Status xgboost = XgboostModel::Train(params, data.x, data.y).status();
  const Status linear = LinearModel::Train({}, data.x, data.y).status();
  const Status constant =
      ConstantModel::Train(Task::kBinaryClassification, data.x, data.y).status();
  for (const Status& status : {xgboost, linear, constant}) {
    EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
    EXPECT_NE(status.message().find("one class only (all 1)"), std::string::npos);
  }
  // Regression labels may be constant.
  EXPECT_TRUE(ConstantModel::Train(Task::kRegression, data.x, data.y).ok());
}

// Issue 5's reproducibility claim end to end: the same rows, arriving in two
// different orders, are put into the pinned training order and give
// byte-identical XGBoost models.
TEST(Models, PinnedRowOrderMakesModelBytesIndependentOfArrivalOrder) {
  const Split data = MakeSplit(Task::kBinaryClassification, 3000, 4, true, 61);
  table::Table spine;
  table::Column time(table::DataType::kTimestamp, 0);
  table::Column key(table::DataType::kString, 0);
  table::Column label(table::DataType::kDouble, 0);
  std::vector<table::Column> features(4, table::Column(table::DataType::kDouble, 0));
  for (size_t row = 0; row < data.x.rows; ++row) {
    time.AppendInt64(static_cast<int64_t>(row % 50) * 60'000'000);  // many rows per time
    key.AppendString("k" + std::to_string(row % 37));
    label.AppendDouble(data.y[row]);
    for (size_t col = 0; col < 4; ++col) {
      const float value = data.x.at(row, col);
      if (std::isnan(value)) {
        features[col].AppendNull();
      } else {
        features[col].AppendDouble(value);
      }
    }
  }
  ASSERT_TRUE(spine.AddColumn("ts", std::move(time)).ok());
  ASSERT_TRUE(spine.AddColumn("key", std::move(key)).ok());
  ASSERT_TRUE(spine.AddColumn("label", std::move(label)).ok());
  for (size_t col = 0; col < 4; ++col) {
    ASSERT_TRUE(spine.AddColumn("f" + std::to_string(col), std::move(features[col])).ok());
  }
  // Two arrival orders of the same rows. Rows equal in time and key keep their
  // arrival order (the documented last tie-break), so only the first row of
  // each (time, key) pair is kept: then the pinned order is a function of the rows.
  std::vector<uint32_t> forward;
  std::vector<uint32_t> seen(50 * 37, 0);
  for (uint32_t row = 0; row < data.x.rows; ++row) {
    if (seen[(row % 50) * 37 + row % 37]++ == 0) forward.push_back(row);
  }
  std::vector<uint32_t> backward(forward.rbegin(), forward.rend());
  std::mt19937 rng(3);
  std::shuffle(backward.begin(), backward.end(), rng);
  XgboostParams params;
  params.num_rounds = 15;
  params.subsample = 0.8;
  params.seed = 9;
  std::vector<std::string> model_bytes;
  for (const std::vector<uint32_t>* arrival : {&forward, &backward}) {
    const table::Table arrived = GatherRows(spine, *arrival);
    Result<std::vector<uint32_t>> order = TrainingRowOrder(arrived, "ts", {"key"});
    ASSERT_TRUE(order.ok()) << order.status().ToString();
    const table::Table ordered = GatherRows(arrived, *order);
    Result<DenseMatrix> matrix = BuildDenseMatrix(ordered, {"f0", "f1", "f2", "f3"});
    ASSERT_TRUE(matrix.ok()) << matrix.status().ToString();
    Result<std::vector<double>> labels = LabelValues(ordered.column(2));
    ASSERT_TRUE(labels.ok());
    auto model = XgboostModel::Train(params, *matrix, *labels);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_bytes.push_back(*(*model)->Save());
  }
  EXPECT_EQ(model_bytes[0], model_bytes[1]);
  // Without the pinned order, the arrival order changes the model.
  const table::Table unordered = GatherRows(spine, backward);
  auto unordered_model =
      XgboostModel::Train(params, *BuildDenseMatrix(unordered, {"f0", "f1", "f2", "f3"}),
                          *LabelValues(unordered.column(2)));
  ASSERT_TRUE(unordered_model.ok());
  EXPECT_NE(*(*unordered_model)->Save(), model_bytes[0]);
}

// ---------------------------------------------------------------------------
// Baselines

constexpr const char* kLinearScript = R"PY(
import json, sys, warnings
import numpy as np
from sklearn.linear_model import LogisticRegression, LinearRegression, Ridge
warnings.simplefilter("ignore")
request = json.load(open(sys.argv[1]))
answers = []
for case in request["cases"]:
    x = np.fromfile(case["prefix"] + "x", dtype=np.float32).reshape(-1, case["cols"]).astype(np.float64)
    y = np.fromfile(case["prefix"] + "y", dtype=np.float64)
    l2 = case["l2"]
    if case["task"] == "binary":
        model = LogisticRegression(C=1.0 / l2, solver="newton-cg", tol=1e-12, max_iter=10000)
        model.fit(x, y)
        prediction = model.predict_proba(x)[:, 1]
        coefficients = model.coef_[0]
        intercept = model.intercept_[0]
    else:
        model = LinearRegression() if l2 == 0 else Ridge(alpha=l2, solver="cholesky")
        model.fit(x, y)
        prediction = model.predict(x)
        coefficients = model.coef_
        intercept = model.intercept_
    answers.append({"coefficients": np.asarray(coefficients).tolist(), "intercept": float(intercept),
                    "prediction": prediction.tolist()})
print(json.dumps({"answers": answers}))
)PY";

TEST(LinearOracle, CoefficientsAndPredictionsEqualScikitLearn) {
  struct LinearCase {
    std::string name;
    LinearParams params;
    Split data;
  };
  std::vector<LinearCase> cases = {
      {"logistic_default",
       {Task::kBinaryClassification, 1.0},
       MakeSplit(Task::kBinaryClassification, 2000, 5, false, 21)},
      {"logistic_scaled",
       {Task::kBinaryClassification, 0.01},
       MakeSplit(Task::kBinaryClassification, 800, 4, false, 22, 30.0)},
      {"logistic_strong",
       {Task::kBinaryClassification, 50.0},
       MakeSplit(Task::kBinaryClassification, 300, 6, false, 23)},
      {"least_squares", {Task::kRegression, 0.0}, MakeSplit(Task::kRegression, 1500, 5, false, 24)},
      {"ridge", {Task::kRegression, 3.0}, MakeSplit(Task::kRegression, 500, 6, false, 25, 10.0)},
  };
  json request = {{"cases", json::array()}};
  std::vector<std::pair<std::string, std::string>> files;
  std::vector<std::unique_ptr<LinearModel>> models;
  for (const LinearCase& c : cases) {
    Result<std::unique_ptr<LinearModel>> model = LinearModel::Train(c.params, c.data.x, c.data.y);
    ASSERT_TRUE(model.ok()) << c.name << ": " << model.status().ToString();
    models.push_back(std::move(model).value());
    files.push_back({c.name + "_x", Bytes(c.data.x.values)});
    files.push_back({c.name + "_y", Bytes(c.data.y)});
    request["cases"].push_back({{"prefix", c.name + "_"},
                                {"cols", c.data.x.cols},
                                {"l2", c.params.l2},
                                {"task", TaskName(c.params.task)}});
  }
  const json oracle = testing::RunPythonOracle(kLinearScript, request, files);
  ASSERT_FALSE(oracle.contains("error")) << oracle["error"].get<std::string>();
  for (size_t i = 0; i < cases.size(); ++i) {
    const json& want = oracle["answers"][i];
    const double coefficient_error =
        MaxAbsDifference(models[i]->coefficients(), want["coefficients"]);
    const double intercept_error =
        std::abs(models[i]->intercept() - want["intercept"].get<double>());
    const double prediction_error =
        MaxAbsDifference(*models[i]->Predict(cases[i].data.x), want["prediction"]);
    std::cout << "[ oracle   ] " << cases[i].name << ": max |keel - sklearn| coefficient "
              << coefficient_error << ", intercept " << intercept_error << ", prediction "
              << prediction_error << "\n";
    EXPECT_LE(coefficient_error, 1e-6) << cases[i].name;
    EXPECT_LE(intercept_error, 1e-6) << cases[i].name;
    EXPECT_LE(prediction_error, 1e-6) << cases[i].name;
  }
}

TEST(LinearModel, RefusesMissingValuesAndSingularSystems) {
  Split data = MakeSplit(Task::kBinaryClassification, 200, 3, false, 31);
  data.x.values[5 * 3 + 1] = kMissing;
  Result<std::unique_ptr<LinearModel>> model = LinearModel::Train({}, data.x, data.y);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("'f1' is missing (NaN) in row 5"), std::string::npos)
      << model.status().ToString();
  data.x.values[5 * 3 + 1] = 0.0f;
  // Column 2 a copy of column 0: singular without a penalty.
  Split regression = MakeSplit(Task::kRegression, 100, 3, false, 32);
  for (size_t row = 0; row < regression.x.rows; ++row) {
    regression.x.values[row * 3 + 2] = regression.x.values[row * 3];
  }
  EXPECT_EQ(
      LinearModel::Train({Task::kRegression, 0.0}, regression.x, regression.y).status().code(),
      StatusCode::kFailedPrecondition);
  EXPECT_TRUE(LinearModel::Train({Task::kRegression, 1e-3}, regression.x, regression.y).ok());
  auto trained = LinearModel::Train({}, data.x, data.y);
  ASSERT_TRUE(trained.ok());
  data.x.values[0] = kMissing;
  EXPECT_EQ((*trained)->Predict(data.x).status().code(), StatusCode::kInvalidArgument);
}

TEST(Baselines, SaveLoadIsBitIdenticalAndConstantPredictsThePrior) {
  const Split data = MakeSplit(Task::kBinaryClassification, 500, 4, false, 41);
  auto linear = LinearModel::Train({}, data.x, data.y);
  auto constant = ConstantModel::Train(Task::kBinaryClassification, data.x, data.y);
  ASSERT_TRUE(linear.ok() && constant.ok());
  double positives = 0.0;
  for (double label : data.y) positives += label;
  EXPECT_DOUBLE_EQ((*constant)->value(), positives / 500.0);
  EXPECT_DOUBLE_EQ((*(*constant)->PredictMargin(data.x))[3],
                   std::log((*constant)->value() / (1.0 - (*constant)->value())));
  for (const Model* model :
       {static_cast<const Model*>(linear->get()), static_cast<const Model*>(constant->get())}) {
    const std::string bytes = *model->Save();
    Result<std::unique_ptr<Model>> loaded = LoadModel(model->kind(), bytes);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(*(*loaded)->Save(), bytes) << model->kind();
    const std::vector<double> before = *model->Predict(data.x);
    const std::vector<double> after = *(*loaded)->Predict(data.x);
    for (size_t row = 0; row < before.size(); ++row) {
      ASSERT_EQ(std::bit_cast<uint64_t>(before[row]), std::bit_cast<uint64_t>(after[row]));
    }
  }
  EXPECT_FALSE(LoadModel("linear", "{\"format\": \"keel-constant-1\"}").ok());
  EXPECT_FALSE(LoadModel("forest", "{}").ok());
}

// ---------------------------------------------------------------------------
// The linear baseline's fast paths against the plain loops they replaced
// (kept here as the reference): same coefficients and intercept, bit for bit.

namespace reference {

double Sigmoid(double z) {
  if (z >= 0.0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

double Softplus(double z) {
  return z > 0.0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

bool CholeskySolve(std::vector<double>& a, std::vector<double>& b, size_t n) {
  for (size_t col = 0; col < n; ++col) {
    double diagonal = a[col * n + col];
    for (size_t k = 0; k < col; ++k) diagonal -= a[col * n + k] * a[col * n + k];
    if (!(diagonal > 0.0)) return false;
    const double root = std::sqrt(diagonal);
    a[col * n + col] = root;
    for (size_t row = col + 1; row < n; ++row) {
      double value = a[row * n + col];
      for (size_t k = 0; k < col; ++k) value -= a[row * n + k] * a[col * n + k];
      a[row * n + col] = value / root;
    }
  }
  for (size_t row = 0; row < n; ++row) {
    double value = b[row];
    for (size_t k = 0; k < row; ++k) value -= a[row * n + k] * b[k];
    b[row] = value / a[row * n + row];
  }
  for (size_t row = n; row-- > 0;) {
    double value = b[row];
    for (size_t k = row + 1; k < n; ++k) value -= a[k * n + row] * b[k];
    b[row] = value / a[row * n + row];
  }
  return true;
}

double Objective(const std::vector<double>& x, size_t rows, size_t cols,
                 const std::vector<double>& labels, double l2, const std::vector<double>& theta) {
  double objective = 0.0;
  for (size_t row = 0; row < rows; ++row) {
    double z = theta[0];
    for (size_t col = 0; col < cols; ++col) z += theta[col + 1] * x[row * cols + col];
    objective += Softplus(z) - labels[row] * z;
  }
  for (size_t col = 0; col < cols; ++col) objective += 0.5 * l2 * theta[col + 1] * theta[col + 1];
  return objective;
}

// keel 9698f43's logistic regression: {intercept, coefficients...}, or an
// empty vector when it fails.
std::vector<double> Logistic(const DenseMatrix& features, const std::vector<double>& labels,
                             double l2) {
  const size_t rows = features.rows, cols = features.cols, n = cols + 1;
  std::vector<double> means(cols, 0.0), x(rows * cols);
  for (size_t row = 0; row < rows; ++row) {
    for (size_t col = 0; col < cols; ++col) means[col] += features.at(row, col);
  }
  for (double& mean : means) mean /= static_cast<double>(rows);
  for (size_t row = 0; row < rows; ++row) {
    for (size_t col = 0; col < cols; ++col) {
      x[row * cols + col] = features.at(row, col) - means[col];
    }
  }
  std::vector<double> theta(n, 0.0);
  double objective = Objective(x, rows, cols, labels, l2, theta);
  for (int step = 0; step < 100; ++step) {
    std::vector<double> hessian(n * n, 0.0), gradient(n, 0.0), augmented(n);
    augmented[0] = 1.0;
    for (size_t row = 0; row < rows; ++row) {
      std::copy_n(x.data() + row * cols, cols, augmented.begin() + 1);
      double z = 0.0;
      for (size_t i = 0; i < n; ++i) z += theta[i] * augmented[i];
      const double p = Sigmoid(z);
      const double residual = p - labels[row];
      const double curvature = p * (1.0 - p);
      for (size_t i = 0; i < n; ++i) {
        gradient[i] += residual * augmented[i];
        for (size_t j = 0; j <= i; ++j)
          hessian[i * n + j] += curvature * augmented[i] * augmented[j];
      }
    }
    for (size_t i = 1; i < n; ++i) {
      gradient[i] += l2 * theta[i];
      hessian[i * n + i] += l2;
    }
    if (!CholeskySolve(hessian, gradient, n)) return {};
    double largest_move = 0.0, largest_theta = 1.0;
    for (size_t i = 0; i < n; ++i) {
      largest_move = std::max(largest_move, std::abs(gradient[i]));
      largest_theta = std::max(largest_theta, std::abs(theta[i]));
    }
    std::vector<double> candidate(n);
    double scale = 1.0;
    for (int halving = 0; halving < 40; ++halving, scale /= 2.0) {
      for (size_t i = 0; i < n; ++i) candidate[i] = theta[i] - scale * gradient[i];
      if (largest_move < 1e-4 * largest_theta) break;
      const double candidate_objective = Objective(x, rows, cols, labels, l2, candidate);
      if (candidate_objective <= objective) {
        objective = candidate_objective;
        break;
      }
    }
    theta = candidate;
    if (largest_move <= 1e-10 * largest_theta) {
      for (size_t col = 0; col < cols; ++col) theta[0] -= theta[col + 1] * means[col];
      return theta;
    }
  }
  return {};
}

}  // namespace reference

// Random features of mixed scales and offsets, labels from a noisy logistic rule.
Split MakeLogisticSplit(size_t rows, size_t cols, uint32_t seed, double separation) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  Split split;
  split.x.rows = rows;
  split.x.cols = cols;
  for (size_t col = 0; col < cols; ++col) {
    split.x.feature_names.push_back("f" + std::to_string(col));
  }
  for (size_t row = 0; row < rows; ++row) {
    double z = -0.5;
    for (size_t col = 0; col < cols; ++col) {
      const double value = normal(rng);
      z += separation * value * (col % 3 == 0 ? 1.0 : -0.5) / std::sqrt(double(cols));
      split.x.values.push_back(static_cast<float>(value * (1.0 + col) + 3.0 * (col % 4)));
    }
    split.y.push_back(uniform(rng) < 1.0 / (1.0 + std::exp(-z)) ? 1.0 : 0.0);
  }
  // Both classes, whatever the draw.
  split.y[0] = 0.0;
  split.y[rows - 1] = 1.0;
  return split;
}

TEST(LinearModel, LogisticIsBitIdenticalToThePlainLoops) {
  struct Case {
    size_t rows, cols;
    double separation, l2;
  };
  // Row counts around the solver's chunk (256) and the two threads' split;
  // column counts around its blocks of 4 and 8; nearly separable data with a
  // small penalty takes halved steps.
  const Case cases[] = {{2, 1, 1.0, 1.0},      {5, 2, 1.0, 1.0},      {255, 3, 2.0, 1.0},
                        {256, 7, 2.0, 1.0},    {257, 8, 2.0, 0.5},    {513, 9, 2.0, 1.0},
                        {1000, 15, 3.0, 1.0},  {3001, 21, 2.0, 1.0},  {2048, 33, 1.0, 2.0},
                        {4000, 4, 25.0, 1e-3}, {1500, 12, 40.0, 1e-4}};
  uint32_t seed = 100;
  for (const Case& c : cases) {
    const Split data = MakeLogisticSplit(c.rows, c.cols, ++seed, c.separation);
    const std::vector<double> expected = reference::Logistic(data.x, data.y, c.l2);
    auto model = LinearModel::Train({Task::kBinaryClassification, c.l2}, data.x, data.y);
    const std::string name = std::to_string(c.rows) + " x " + std::to_string(c.cols);
    ASSERT_EQ(model.ok(), !expected.empty()) << name;
    if (expected.empty()) continue;
    EXPECT_EQ(std::bit_cast<uint64_t>((*model)->intercept()), std::bit_cast<uint64_t>(expected[0]))
        << name;
    ASSERT_EQ((*model)->coefficients().size(), c.cols);
    for (size_t col = 0; col < c.cols; ++col) {
      EXPECT_EQ(std::bit_cast<uint64_t>((*model)->coefficients()[col]),
                std::bit_cast<uint64_t>(expected[col + 1]))
          << name << " column " << col;
    }
  }
}

TEST(LinearModel, NamesTheFirstMissingValueInRowOrder) {
  Split data = MakeLogisticSplit(600, 5, 7, 1.0);
  data.x.values[400 * 5 + 1] = kMissing;
  data.x.values[300 * 5 + 4] = kMissing;
  data.x.values[300 * 5 + 3] = kMissing;
  Result<std::unique_ptr<LinearModel>> model = LinearModel::Train({}, data.x, data.y);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("'f3' is missing (NaN) in row 300"), std::string::npos)
      << model.status().ToString();
}

TEST(LinearScaling, IsBitIdenticalToTheColumnByColumnLoops) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (size_t cols : {1, 2, 3, 8, 21}) {
    DenseMatrix matrix;
    matrix.rows = 1001;
    matrix.cols = cols;
    for (size_t col = 0; col < cols; ++col) matrix.feature_names.push_back(std::to_string(col));
    for (size_t row = 0; row < matrix.rows; ++row) {
      for (size_t col = 0; col < cols; ++col) {
        float value = static_cast<float>(normal(rng) * (col + 1) * 10.0 + 100.0 * col);
        if (col == 1) value = kMissing;  // a column with no value
        if (col == 2) value = 4.5f;      // a constant column
        if (uniform(rng) < 0.1) value = kMissing;
        matrix.values.push_back(value);
      }
    }
    // The reference: column by column, as keel 9698f43 fitted and applied.
    std::vector<double> mean(cols, 0.0), scale(cols, 1.0);
    for (size_t col = 0; col < cols; ++col) {
      double sum = 0, sum_sq = 0;
      size_t count = 0;
      for (size_t row = 0; row < matrix.rows; ++row) {
        double value = matrix.at(row, col);
        if (std::isnan(value)) continue;
        sum += value;
        ++count;
      }
      if (count == 0) continue;
      double column_mean = sum / count;
      for (size_t row = 0; row < matrix.rows; ++row) {
        double value = matrix.at(row, col);
        if (!std::isnan(value)) sum_sq += (value - column_mean) * (value - column_mean);
      }
      double deviation = std::sqrt(sum_sq / count);
      mean[col] = column_mean;
      scale[col] = deviation > 0 ? deviation : 1.0;
    }
    const LinearScaling scaling = LinearScaling::Fit(matrix);
    ASSERT_EQ(scaling.mean.size(), cols);
    for (size_t col = 0; col < cols; ++col) {
      EXPECT_EQ(std::bit_cast<uint64_t>(scaling.mean[col]), std::bit_cast<uint64_t>(mean[col]));
      EXPECT_EQ(std::bit_cast<uint64_t>(scaling.scale[col]), std::bit_cast<uint64_t>(scale[col]));
    }
    const DenseMatrix applied = scaling.Apply(matrix);
    ASSERT_EQ(applied.values.size(), matrix.values.size());
    EXPECT_EQ(applied.feature_names, matrix.feature_names);
    for (size_t index = 0; index < matrix.values.size(); ++index) {
      const float value = matrix.values[index];
      const size_t col = index % cols;
      const float expected =
          std::isnan(value) ? 0.0f : static_cast<float>((value - mean[col]) / scale[col]);
      ASSERT_EQ(std::bit_cast<uint32_t>(applied.values[index]), std::bit_cast<uint32_t>(expected))
          << index;
    }
  }
}

}  // namespace
}  // namespace keel::train
