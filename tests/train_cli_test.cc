// `keel train` end to end on the repository `keel init` writes: the first run
// runs every step, an unchanged re-run runs none and gives the same bundle
// hash, a changed model parameter reruns only the steps after the split.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "e2e_util.h"

namespace keel::e2e {
namespace {

using Json = nlohmann::json;

constexpr const char* kPipeline = R"yaml(name: big_fare
spine: {source: trips, keys: [driver_id]}
label: {expression: "fare > 20", name: big_fare}
features:
  service: trip_model
request_inputs:
  - distance_km
  - {name: hour, expression: "hour(ts)"}
split: {kind: time, train_until: 2024-03-10, validation_until: 2024-03-13}
transforms:
  - {kind: ordinal, column: driver_profile__city, unknown: ignore}
model: {max_depth: 3, eta: 0.3, rounds: 40, early_stopping_rounds: 5, seed: 3}
slices: [driver_profile__city]
)yaml";

std::vector<std::string> Ran(const Json& result) {
  std::vector<std::string> ran;
  for (const Json& step : result["steps"]) {
    if (!step["cached"].get<bool>()) ran.push_back(step["step"].get<std::string>());
  }
  return ran;
}

TEST(TrainCli, RunsTwiceCachedThenReusesStepsAfterAParameterChange) {
  TempDir temp;
  std::string dir = temp.Path("rides");
  ASSERT_EQ(RunKeel({"init", dir}).exit_code, 0);
  ASSERT_EQ(RunKeel({"apply"}, dir).exit_code, 0);
  WriteFile(dir + "/pipeline.yaml", kPipeline);

  CommandResult first = RunKeel({"train", "pipeline.yaml", "--json"}, dir);
  ASSERT_EQ(first.exit_code, 0) << first.Describe();
  Json one = Json::parse(first.out);
  EXPECT_EQ(Ran(one), (std::vector<std::string>{"dataset", "validate", "split", "transforms",
                                                "train", "evaluate", "bundle"}));
  EXPECT_GT(one["metrics"]["model"]["roc_auc"].get<double>(),
            one["metrics"]["constant"]["roc_auc"].get<double>());
  std::string bundle = one["bundle"].get<std::string>();
  for (const char* file : {"manifest.json", "bundle.hash", "model.ubj", "transforms.json",
                           "profile.json", "golden_cases.json"}) {
    EXPECT_TRUE(Exists(bundle + "/" + file)) << file;
  }
  Json manifest = Json::parse(ReadFile(bundle + "/manifest.json"));
  ASSERT_EQ(manifest["features"].size(), 2u);
  EXPECT_EQ(manifest["features"][0]["version"].get<std::string>().size(), 12u);

  CommandResult second = RunKeel({"train", "pipeline.yaml", "--json"}, dir);
  ASSERT_EQ(second.exit_code, 0) << second.Describe();
  Json two = Json::parse(second.out);
  EXPECT_TRUE(Ran(two).empty()) << second.out;
  EXPECT_EQ(two["bundle_hash"], one["bundle_hash"]);

  CommandResult text = RunKeel({"train", "pipeline.yaml"}, dir);
  ASSERT_EQ(text.exit_code, 0) << text.Describe();
  EXPECT_NE(text.out.find("cached"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("roc_auc"), std::string::npos) << text.out;

  EditFile(dir + "/pipeline.yaml", "eta: 0.3", "eta: 0.2");
  CommandResult third = RunKeel({"train", "pipeline.yaml", "--json"}, dir);
  ASSERT_EQ(third.exit_code, 0) << third.Describe();
  Json three = Json::parse(third.out);
  EXPECT_EQ(Ran(three), (std::vector<std::string>{"train", "evaluate", "bundle"}));
  EXPECT_NE(three["bundle_hash"], one["bundle_hash"]);

  CommandResult forced = RunKeel({"train", "pipeline.yaml", "--json", "--force"}, dir);
  ASSERT_EQ(forced.exit_code, 0) << forced.Describe();
  EXPECT_EQ(Ran(Json::parse(forced.out)).size(), 7u);
  EXPECT_EQ(Json::parse(forced.out)["bundle_hash"], three["bundle_hash"]);

  // The bundle travels as one archive; a tampered copy is refused, naming the file.
  std::string archive = temp.Path("model.keelbundle");
  ASSERT_EQ(RunKeel({"bundle", "export", bundle, archive}).exit_code, 0);
  CommandResult imported = RunKeel({"bundle", "import", archive, temp.Path("imported")});
  ASSERT_EQ(imported.exit_code, 0) << imported.Describe();
  EXPECT_NE(imported.out.find(three["bundle_hash"].get<std::string>()), std::string::npos);
  std::string golden = temp.Path("imported/golden_cases.json");
  WriteFile(golden, ReadFile(golden) + " ");
  CommandResult tampered = RunKeel({"bundle", "verify", temp.Path("imported")});
  EXPECT_EQ(tampered.exit_code, 4) << tampered.Describe();
  EXPECT_NE(tampered.err.find("checksum mismatch in golden_cases.json"), std::string::npos)
      << tampered.err;
}

TEST(TrainCli, UnknownFeatureAndBadPipelineAreClearErrors) {
  TempDir temp;
  std::string dir = temp.Path("rides");
  ASSERT_EQ(RunKeel({"init", dir}).exit_code, 0);
  ASSERT_EQ(RunKeel({"apply"}, dir).exit_code, 0);
  WriteFile(dir + "/unknown.yaml",
            ReplaceOnce(kPipeline, "service: trip_model", "views: [no_such_view]"));
  CommandResult unknown = RunKeel({"train", "unknown.yaml"}, dir);
  EXPECT_EQ(unknown.exit_code, 3) << unknown.Describe();
  EXPECT_NE(unknown.err.find("no_such_view"), std::string::npos) << unknown.err;

  WriteFile(dir + "/bad.yaml", ReplaceOnce(kPipeline, "rounds: 40", "rounds: many"));
  CommandResult bad = RunKeel({"train", "bad.yaml"}, dir);
  EXPECT_EQ(bad.exit_code, 2) << bad.Describe();
  EXPECT_NE(bad.err.find("bad.yaml:12:41:"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("model.rounds"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace keel::e2e
