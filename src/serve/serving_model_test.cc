// ServingModel's row path (ScoreRow, what POST /v1/models/{name}:predict
// uses) against its table path (Score, what batch-predict and the Open
// Inference Protocol use) and against XGBoost itself, on real rows of the
// flights training set with missing values, NaN and unknown categories added.
// Needs a flights bundle and its training rows: KEEL_FLIGHTS_BUNDLE and
// KEEL_FLIGHTS_ROWS (tests/flights_train_test runs this test so on the bundle
// it trains, in every test run), else what the main job writes in .cache/out
// (scripts/main); skipped without either.
#include "serve/serving_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "table/duckdb_bridge.h"
#include "train/bundle.h"
#include "train/xgboost_model.h"

namespace keel::serve {
namespace {

const std::string kOut = std::string(KEEL_SOURCE_DIR) + "/.cache/out";

TEST(ServingModel, RowPathEqualsTablePathAndXgboostOnFlights) {
  const char* bundle_env = std::getenv("KEEL_FLIGHTS_BUNDLE");
  const char* rows_env = std::getenv("KEEL_FLIGHTS_ROWS");
  std::string bundle = bundle_env != nullptr ? bundle_env : kOut + "/flight_delay_bundle";
  std::string rows_file = rows_env != nullptr ? rows_env : kOut + "/flights_training.parquet";
  if (!std::filesystem::exists(bundle + "/manifest.json") || !std::filesystem::exists(rows_file)) {
    GTEST_SKIP() << "no flights bundle in " << kOut << " (scripts/main trains it)";
  }
  auto model = ServingModel::Load(bundle);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const ServingModel& serving = **model;
  ASSERT_TRUE(serving.row_path_status().ok()) << serving.row_path_status().ToString();

  // Real rows; every 7th input value null, every 11th double NaN, every 13th
  // state unknown to training.
  // Request inputs computed as serving computes them (hour(date), ...).
  std::string select = "src.date";
  int index = 0;
  for (const ModelInput& input : serving.inputs()) {
    if (input.from_request && input.name != "distance") continue;
    std::string name = "\"" + input.name + "\"";
    std::string value = "src." + name;
    if (input.type == table::DataType::kString) {
      value = "CASE WHEN (src.n + " + std::to_string(index) + ") % 13 = 0 THEN 'ZZ' ELSE " + value +
              " END";
    } else if (input.type == table::DataType::kDouble) {
      value = "CASE WHEN (src.n + " + std::to_string(index) +
              ") % 11 = 0 THEN 'NaN'::DOUBLE ELSE " + value + " END";
    }
    value = "CASE WHEN (src.n + " + std::to_string(index) + ") % 7 = 0 THEN NULL ELSE " + value +
            " END AS " + name;
    select += ", " + value;
    ++index;
  }
  auto duckdb = table::DuckDb::Open(1);
  ASSERT_TRUE(duckdb.ok());
  auto rows = (*duckdb)->Query("SELECT " + select +
                               " FROM (SELECT *, row_number() OVER () AS n FROM read_parquet('" +
                               rows_file + "') LIMIT 4000) AS src ORDER BY src.n");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->num_rows(), 4000u);
  ASSERT_TRUE(serving.request_plan().AddTo(&*rows).ok());
  std::vector<const table::Column*> columns;  // inputs() order
  for (const ModelInput& input : serving.inputs()) {
    int found = rows->FindColumn(input.name);
    ASSERT_GE(found, 0) << input.name;
    columns.push_back(&rows->column(static_cast<size_t>(found)));
    ASSERT_EQ(columns.back()->type(), input.type) << input.name;
  }

  auto by_score = serving.Score(*rows, Scorer::kModel);
  ASSERT_TRUE(by_score.ok()) << by_score.status().ToString();
  // The reference: training's own transforms over the table.
  auto matrix = serving.TableMatrix(*rows);
  ASSERT_TRUE(matrix.ok());
  auto by_rows = serving.Matrix(*rows);  // the row path, the batch form
  ASSERT_TRUE(by_rows.ok());
  ASSERT_EQ(by_rows->values.size(), matrix->values.size());
  for (size_t i = 0; i < matrix->values.size(); ++i) {
    ASSERT_TRUE(std::isnan(matrix->values[i]) ? std::isnan(by_rows->values[i])
                                              : by_rows->values[i] == matrix->values[i])
        << i;
  }
  // The compiled trees over the reference matrix.
  auto by_reference = serving.ScoreMatrix(matrix->values, Scorer::kModel);
  ASSERT_TRUE(by_reference.ok());
  auto bundle_info = train::VerifyBundle(bundle);
  ASSERT_TRUE(bundle_info.ok());
  auto bytes = train::ReadBundleFile(*bundle_info, "model.ubj");
  ASSERT_TRUE(bytes.ok());
  auto xgboost = train::XgboostModel::Load(*bytes, 1);
  ASSERT_TRUE(xgboost.ok());
  auto by_xgboost = (*xgboost)->Predict(*matrix);
  ASSERT_TRUE(by_xgboost.ok());

  std::vector<RowValue> values(serving.inputs().size());
  std::vector<float> model_row(serving.model_columns().size());
  size_t missing = 0;
  for (size_t row = 0; row < rows->num_rows(); ++row) {
    for (size_t col = 0; col < values.size(); ++col) {
      values[col] = RowValueAt(*columns[col], row);
      missing += !values[col].valid;
    }
    double prediction = -1;
    ASSERT_TRUE(serving.ScoreRow(values, &prediction)) << row;
    ASSERT_EQ(prediction, (*by_score)[row]) << "row " << row;  // bit for bit
    ASSERT_EQ(prediction, (*by_reference)[row]) << "row " << row;
    ASSERT_NEAR(prediction, (*by_xgboost)[row], 1e-6) << "row " << row;
    ASSERT_TRUE(serving.RowMatrix(values, model_row.data()));
    for (size_t col = 0; col < model_row.size(); ++col) {
      float table_value = matrix->values[row * matrix->cols + col];
      ASSERT_TRUE(std::isnan(table_value) ? std::isnan(model_row[col])
                                          : model_row[col] == table_value)
          << "row " << row << " column " << serving.model_columns()[col];
    }
  }
  EXPECT_GT(missing, 4000u);

  // A value of another type than trained: the row path leaves it to the table path.
  values[0].type = values[0].type == table::DataType::kDouble ? table::DataType::kInt64
                                                              : table::DataType::kDouble;
  double prediction = 0;
  EXPECT_FALSE(serving.ScoreRow(values, &prediction));
}

}  // namespace
}  // namespace keel::serve
