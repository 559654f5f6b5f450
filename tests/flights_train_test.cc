// The flights delay pipeline (examples/flights/pipelines/delay.yaml) on the
// real data: the model beats both baselines on the June test month, and an
// unchanged re-run is fully cached with the same bundle hash.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "e2e_util.h"

namespace keel::e2e {
namespace {

using Json = nlohmann::json;

TEST(FlightsTrain, ModelBeatsBothBaselinesOnJuneAndRerunIsCached) {
  TempDir temp;
  std::string repo = temp.Path("flights");
  CopyTree(SourceDir() + "/examples/flights", repo);
  std::vector<std::pair<std::string, std::string>> env = {{"KEEL_DATA", DataDir()}};
  CommandResult apply = RunKeel({"apply", "--repo", repo}, "", env);
  ASSERT_EQ(apply.exit_code, 0) << apply.Describe();

  std::vector<std::string> train = {"train", repo + "/pipelines/delay.yaml", "--json"};
  CommandResult first = RunKeel(train, "", env, 600);
  ASSERT_EQ(first.exit_code, 0) << first.Describe();
  Json one = Json::parse(first.out);
  double model = one["metrics"]["model"]["roc_auc"].get<double>();
  double constant = one["metrics"]["constant"]["roc_auc"].get<double>();
  double linear = one["metrics"]["linear"]["roc_auc"].get<double>();
  std::printf("June test ROC AUC: model %.4f, linear %.4f, constant %.4f\n", model, linear,
              constant);
  EXPECT_GT(model, linear);
  EXPECT_GT(model, constant);
  EXPECT_GT(one["split_rows"]["test"].get<int64_t>(), 50000);
  EXPECT_EQ(one["slice_metrics"]["weekday"].size(), 7u);
  // The flights file is read once for the source checks and the window views
  // (the spine's query reads it on its own).
  EXPECT_EQ(one["source_reads"], (Json{{"airports", {{"readers", 1}, {"reads", 1}}},
                                       {"flights", {{"readers", 2}, {"reads", 1}}}}))
      << one["source_reads"];

  CommandResult second = RunKeel(train, "", env, 600);
  ASSERT_EQ(second.exit_code, 0) << second.Describe();
  Json two = Json::parse(second.out);
  for (const Json& step : two["steps"]) EXPECT_TRUE(step["cached"].get<bool>()) << step;
  EXPECT_EQ(two["bundle_hash"], one["bundle_hash"]);
  CommandResult verify = RunKeel({"bundle", "verify", two["bundle"].get<std::string>()});
  EXPECT_EQ(verify.exit_code, 0) << verify.Describe();

  // The serving runtime on this real model: serving_model_test's row path vs
  // table path vs XGBoost check, on the bundle just trained and rows of the
  // feature service it was trained on.
  std::string rows = temp.Path("rows.parquet");
  CommandResult dataset = RunKeel({"dataset", "build", "--repo", repo, "--spine", "flight_spine",
                                   "--service", "flight_delay", "--out", rows},
                                  "", env, 600);
  ASSERT_EQ(dataset.exit_code, 0) << dataset.Describe();
  CommandResult serving = RunProgram(
      {KEEL_SERVING_MODEL_TEST,
       "--gtest_filter=ServingModel.RowPathEqualsTablePathAndXgboostOnFlights"},
      "", {{"KEEL_FLIGHTS_BUNDLE", two["bundle"].get<std::string>()}, {"KEEL_FLIGHTS_ROWS", rows}},
      600);
  EXPECT_EQ(serving.exit_code, 0) << serving.Describe();
  EXPECT_NE(serving.out.find("[  PASSED  ] 1 test"), std::string::npos) << serving.out;
  EXPECT_EQ(serving.out.find("SKIPPED"), std::string::npos) << serving.out;
}

}  // namespace
}  // namespace keel::e2e
