#include "train/tree_runtime.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "train/xgboost_model.h"

namespace keel::train {
namespace {

// Random features with missing values (NaN) and a label depending on them.
DenseMatrix RandomMatrix(std::mt19937_64& random, size_t rows, size_t cols,
                         std::vector<double>* labels, Task task) {
  DenseMatrix matrix;
  matrix.rows = rows;
  matrix.cols = cols;
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::uniform_real_distribution<double> noise(-1.0, 1.0);
  for (size_t row = 0; row < rows; ++row) {
    double score = 0;
    for (size_t col = 0; col < cols; ++col) {
      float value = random() % 9 == 0 ? NAN : normal(random);
      // Some ties: a coarse grid in one column.
      if (col == 1 && !std::isnan(value)) value = std::round(value * 4) / 4;
      matrix.values.push_back(value);
      if (!std::isnan(value)) score += (col % 3 == 0 ? 1.0 : -0.5) * value * (col + 1) / cols;
    }
    score += noise(random);
    labels->push_back(task == Task::kBinaryClassification ? (score > 0 ? 1.0 : 0.0) : score);
  }
  for (size_t col = 0; col < cols; ++col) matrix.feature_names.push_back("f" + std::to_string(col));
  return matrix;
}

struct Case {
  Task task;
  int depth;
  int rounds;
};

class CompiledTreesTest : public testing::TestWithParam<Case> {};

TEST_P(CompiledTreesTest, EqualsXgboostOnRandomRowsWithMissingValues) {
  const Case& c = GetParam();
  std::mt19937_64 random(static_cast<uint64_t>(c.depth * 100 + c.rounds));
  std::vector<double> labels, unused;
  DenseMatrix train_matrix = RandomMatrix(random, 5000, 12, &labels, c.task);
  XgboostParams params;
  params.task = c.task;
  params.max_depth = c.depth;
  params.num_rounds = c.rounds;
  params.eta = 0.2;
  params.seed = 7;
  auto model = XgboostModel::Train(params, train_matrix, labels);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Result<std::string> json = (*model)->SaveJson();
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  Result<CompiledTrees> compiled = CompiledTrees::FromXgboostJson(*json);
  ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
  EXPECT_EQ(compiled->num_features(), 12u);
  // Depth <= 10 compiles to the complete layout, deeper to the linked one;
  // both are checked against XGBoost below, and against each other.
  EXPECT_EQ(std::string(compiled->layout_name()),
            c.depth <= 10 ? "complete depth " + std::to_string(c.depth) : "linked");
  // The UBJSON form (a bundle's model.ubj) compiles to the same trees.
  Result<std::string> ubjson = (*model)->Save();
  ASSERT_TRUE(ubjson.ok()) << ubjson.status().ToString();
  ASSERT_NE(*ubjson, *json);  // binary, not the JSON text
  Result<CompiledTrees> from_ubjson = CompiledTrees::FromXgboostUbjson(*ubjson);
  ASSERT_TRUE(from_ubjson.ok()) << from_ubjson.status().ToString();
  EXPECT_STREQ(from_ubjson->layout_name(), compiled->layout_name());
  Result<CompiledTrees> linked = CompiledTrees::FromXgboostJson(*json, -1);
  ASSERT_TRUE(linked.ok()) << linked.status().ToString();
  EXPECT_STREQ(linked->layout_name(), "linked");

  DenseMatrix test = RandomMatrix(random, 100000, 12, &unused, c.task);
  // Half the rows take their values from the model's own split conditions,
  // so values equal to a threshold (which go right) are common.
  std::vector<std::vector<float>> thresholds(12);
  const nlohmann::json parsed = nlohmann::json::parse(*json);
  for (const auto& tree : parsed["learner"]["gradient_booster"]["model"]["trees"]) {
    for (size_t node = 0; node < tree["left_children"].size(); ++node) {
      if (tree["left_children"][node].get<int>() < 0) continue;
      thresholds[tree["split_indices"][node].get<size_t>()].push_back(
          tree["split_conditions"][node].get<float>());
    }
  }
  size_t injected = 0;
  for (size_t row = 0; row < test.rows; row += 2) {
    for (size_t col = 0; col < test.cols; ++col) {
      const std::vector<float>& options = thresholds[col];
      if (!options.empty() && random() % 4 != 0) {
        test.values[row * test.cols + col] = options[random() % options.size()];
        ++injected;
      }
    }
  }
  ASSERT_GT(injected, test.rows);
  auto margins = (*model)->PredictMargin(test);
  auto outputs = (*model)->Predict(test);
  ASSERT_TRUE(margins.ok() && outputs.ok());
  std::vector<float> batch(test.rows), batch_threads(test.rows), batch_linked(test.rows);
  compiled->PredictMargins(test.values.data(), test.rows, test.cols, batch.data());
  compiled->PredictMargins(test.values.data(), test.rows, test.cols, batch_threads.data(), 3);
  linked->PredictMargins(test.values.data(), test.rows, test.cols, batch_linked.data());
  double worst_margin = 0, worst_output = 0;
  size_t bit_equal = 0;
  for (size_t row = 0; row < test.rows; ++row) {
    float single = compiled->PredictMargin(test.row(row));
    ASSERT_EQ(single, batch[row]) << "row " << row;  // one code path, one answer
    ASSERT_EQ(single, batch_threads[row]) << "row " << row;
    ASSERT_EQ(single, batch_linked[row]) << "row " << row;
    ASSERT_EQ(single, linked->PredictMargin(test.row(row))) << "row " << row;
    ASSERT_EQ(single, from_ubjson->PredictMargin(test.row(row))) << "row " << row;
    worst_margin = std::max(worst_margin, std::abs(single - (*margins)[row]));
    worst_output = std::max(worst_output, std::abs(compiled->Transform(single) - (*outputs)[row]));
    bit_equal += single == static_cast<float>((*margins)[row]);
  }
  EXPECT_LE(worst_margin, 1e-6);
  EXPECT_LE(worst_output, 1e-6);
  // The same float additions in the same order, from the same base margin
  // (XGBoost 1.7 keeps base_score 0.5 unless told otherwise): bit-equal.
  EXPECT_EQ(bit_equal, test.rows);
}

INSTANTIATE_TEST_SUITE_P(Models, CompiledTreesTest,
                         testing::Values(Case{Task::kBinaryClassification, 3, 20},
                                         Case{Task::kBinaryClassification, 10, 30},
                                         Case{Task::kRegression, 6, 40},
                                         Case{Task::kRegression, 12, 15}));

// The layouts agree on what XGBoost cannot be asked about here: infinite
// values (+inf goes right, -inf left), odd row strides, tails of batches.
TEST(CompiledTrees, LayoutsAgreeOnInfinitiesStridesAndTails) {
  std::mt19937_64 random(5);
  std::vector<double> labels, unused;
  DenseMatrix train_matrix = RandomMatrix(random, 3000, 7, &labels, Task::kRegression);
  XgboostParams params;
  params.task = Task::kRegression;
  params.max_depth = 5;
  params.num_rounds = 37;  // not a multiple of the lanes
  auto model = XgboostModel::Train(params, train_matrix, labels);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  std::string json = *(*model)->SaveJson();
  Result<CompiledTrees> complete = CompiledTrees::FromXgboostJson(json);
  Result<CompiledTrees> linked = CompiledTrees::FromXgboostJson(json, -1);
  ASSERT_TRUE(complete.ok() && linked.ok());
  EXPECT_STREQ(complete->layout_name(), "complete depth 5");
  const size_t rows = 1037, stride = 9;  // two padding floats per row
  DenseMatrix test = RandomMatrix(random, rows, stride, &unused, Task::kRegression);
  for (size_t row = 0; row < rows; ++row) {
    for (size_t col = 0; col < 7; ++col) {
      if (random() % 7 == 0) test.values[row * stride + col] = (random() % 2 ? 1 : -1) * INFINITY;
    }
  }
  std::vector<float> batch_complete(rows), batch_linked(rows), batch_threads(rows);
  complete->PredictMargins(test.values.data(), rows, stride, batch_complete.data());
  complete->PredictMargins(test.values.data(), rows, stride, batch_threads.data(), 2);
  linked->PredictMargins(test.values.data(), rows, stride, batch_linked.data());
  for (size_t row = 0; row < rows; ++row) {
    std::span<const float> values(test.values.data() + row * stride, 7);
    float single = linked->PredictMargin(values);
    ASSERT_EQ(complete->PredictMargin(values), single) << "row " << row;
    ASSERT_EQ(batch_complete[row], single) << "row " << row;
    ASSERT_EQ(batch_threads[row], single) << "row " << row;
    ASSERT_EQ(batch_linked[row], single) << "row " << row;
  }
}

// Trees that are a single leaf (nothing worth splitting): depth 0.
TEST(CompiledTrees, EvaluatesTreesWithoutSplits) {
  std::mt19937_64 random(9);
  std::vector<double> labels;
  DenseMatrix matrix = RandomMatrix(random, 500, 4, &labels, Task::kBinaryClassification);
  XgboostParams params;
  params.num_rounds = 5;
  params.min_child_weight = 1e9;
  auto model = XgboostModel::Train(params, matrix, labels);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Result<CompiledTrees> compiled = CompiledTrees::FromXgboostJson(*(*model)->SaveJson());
  ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
  EXPECT_STREQ(compiled->layout_name(), "complete depth 0");
  auto margins = (*model)->PredictMargin(matrix);
  ASSERT_TRUE(margins.ok());
  std::vector<float> batch(matrix.rows);
  compiled->PredictMargins(matrix.values.data(), matrix.rows, matrix.cols, batch.data());
  for (size_t row = 0; row < matrix.rows; ++row) {
    EXPECT_EQ(compiled->PredictMargin(matrix.row(row)), static_cast<float>((*margins)[row]));
    EXPECT_EQ(batch[row], static_cast<float>((*margins)[row]));
  }
}

TEST(CompiledTrees, RefusesWhatItCannotEvaluate) {
  EXPECT_EQ(CompiledTrees::FromXgboostJson("{").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CompiledTrees::FromXgboostJson("{}").status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(CompiledTrees::FromXgboostUbjson("{\"learner\": 1}").status().message().find("UBJSON"),
            std::string::npos);
  EXPECT_EQ(CompiledTrees::FromXgboostUbjson("").status().code(), StatusCode::kInvalidArgument);
  std::mt19937_64 random(3);
  std::vector<double> labels;
  DenseMatrix matrix = RandomMatrix(random, 300, 3, &labels, Task::kRegression);
  XgboostParams params;
  params.task = Task::kRegression;
  params.num_rounds = 2;
  auto model = XgboostModel::Train(params, matrix, labels);
  ASSERT_TRUE(model.ok());
  std::string json = *(*model)->SaveJson();
  auto edited = [&](const std::string& from, const std::string& to) {
    std::string copy = json;
    size_t at = copy.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) copy.replace(at, from.size(), to);
    return CompiledTrees::FromXgboostJson(copy).status();
  };
  EXPECT_NE(edited("reg:squarederror", "multi:softprob").message().find("not supported"),
            std::string::npos);
  EXPECT_NE(edited("\"left_children\":[1", "\"left_children\":[0").message().find("malformed"),
            std::string::npos);
  EXPECT_NE(edited("\"split_type\":[0", "\"split_type\":[1").message().find("categorical"),
            std::string::npos);
}

}  // namespace
}  // namespace keel::train
