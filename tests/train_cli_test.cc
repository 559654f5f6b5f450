// `keel train` end to end on the repository `keel init` writes: the first run
// runs every step, an unchanged re-run runs none and gives the same bundle
// hash, a changed model parameter reruns only the steps after the split.
#include <gtest/gtest.h>
#include <stdio.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

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
  // XGBoost's own time is reported when the train step ran, within the run's total.
  double total = 0;
  for (const Json& step : one["steps"]) total += step["seconds"].get<double>();
  EXPECT_GT(one["xgboost_seconds"].get<double>(), 0.0);
  EXPECT_LT(one["xgboost_seconds"].get<double>(), total);
  EXPECT_EQ(two["xgboost_seconds"].get<double>(), 0.0);
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

Json KeelJson(const std::vector<std::string>& args, const std::string& dir) {
  CommandResult result = RunKeel(args, dir);
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  return result.exit_code == 0 ? Json::parse(result.out) : Json();
}

// keel train records each run in the registry and registers each new bundle
// hash once, with its lineage pointing at an immutable copy of the bundle.
TEST(TrainCli, RegistersTheRunAndOneVersionPerBundleHash) {
  TempDir temp;
  std::string dir = temp.Path("rides");
  ASSERT_EQ(RunKeel({"init", dir}).exit_code, 0);
  ASSERT_EQ(RunKeel({"apply"}, dir).exit_code, 0);
  WriteFile(dir + "/pipeline.yaml", kPipeline);

  Json one = KeelJson({"train", "pipeline.yaml", "--json", "--actor", "alice"}, dir);
  ASSERT_TRUE(one["registry"].is_object()) << one.dump(2);
  std::string hash = one["bundle_hash"].get<std::string>();
  std::string run_id = one["registry"]["run_id"].get<std::string>();
  EXPECT_EQ(one["registry"]["model"], "big_fare");
  EXPECT_EQ(one["registry"]["experiment"], "big_fare");
  EXPECT_EQ(one["registry"]["version"], 1);
  EXPECT_EQ(one["registry"]["new_version"], true);
  std::string stored = dir + "/.keel/bundles/by-hash/" + hash;
  EXPECT_EQ(one["registry"]["bundle_uri"], stored);

  // The version's lineage, against the bundle's manifest.
  Json manifest = Json::parse(ReadFile(stored + "/manifest.json"));
  Json version = KeelJson({"models", "show", "big_fare", "1", "--json"}, dir);
  EXPECT_EQ(version["stage"], "trained");
  const Json& lineage = version["lineage"];
  EXPECT_EQ(lineage["run_id"], run_id);
  EXPECT_EQ(lineage["bundle_hash"], hash);
  EXPECT_EQ(lineage["bundle_uri"], stored);
  EXPECT_EQ(lineage["data_hash"], manifest["training_data_hash"]);
  EXPECT_EQ(lineage["code_version"], manifest["code_version"]);
  std::vector<std::string> features;
  for (const Json& feature : manifest["features"]) {
    features.push_back(feature["view"].get<std::string>() + "@" +
                       feature["version"].get<std::string>());
  }
  ASSERT_EQ(features.size(), 2u);
  EXPECT_EQ(lineage["feature_versions"], Json(features));
  Json history = KeelJson({"models", "history", "big_fare", "--json"}, dir);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0]["actor"], "alice");
  // The stored copy is a whole, verified bundle, independent of --out.
  CommandResult verify = RunKeel({"bundle", "verify", stored});
  EXPECT_EQ(verify.exit_code, 0) << verify.Describe();

  // The run: params, test metrics of the model and both baselines, tags, artifacts.
  Json run = KeelJson({"runs", "show", run_id, "--json"}, dir);
  EXPECT_EQ(run["status"], "finished");
  EXPECT_EQ(run["experiment"], "big_fare");
  EXPECT_EQ(run["params"]["model.eta"], "0.3");
  EXPECT_EQ(run["params"]["model.max_depth"], "3");
  EXPECT_EQ(run["params"]["seeds.model"], "3");
  for (const char* model : {"model", "constant", "linear"}) {
    EXPECT_DOUBLE_EQ(
        run["metrics"][std::string("test.") + model + ".roc_auc"]["value"].get<double>(),
        one["metrics"][model]["roc_auc"].get<double>())
        << model;
  }
  EXPECT_EQ(run["tags"]["bundle_hash"], hash);
  EXPECT_EQ(run["tags"]["code_version"], manifest["code_version"]);
  EXPECT_EQ(run["tags"]["training_data_hash"], manifest["training_data_hash"]);
  EXPECT_EQ(run["tags"]["steps.ran"], "dataset,validate,split,transforms,train,evaluate,bundle");
  EXPECT_EQ(run["tags"]["steps.cached"], "");
  EXPECT_EQ(run["tags"]["cached"], "none");
  EXPECT_EQ(one["registry"]["cached"], "none");
  EXPECT_EQ(one["registry"]["version_run_id"], run_id);
  EXPECT_EQ(run["tags"]["user"], "alice");
  bool saw_model = false;
  for (const Json& artifact : run["artifacts"]) {
    if (artifact["path"] != "model.ubj") continue;
    saw_model = true;
    EXPECT_EQ(artifact["uri"], stored + "/model.ubj");
    EXPECT_EQ(artifact["checksum"],
              "xxh128:" + manifest["files"]["model.ubj"]["xxh128"].get<std::string>());
    EXPECT_EQ(artifact["size_bytes"], manifest["files"]["model.ubj"]["bytes"]);
  }
  EXPECT_TRUE(saw_model) << run["artifacts"].dump(2);
  EXPECT_EQ(run["artifacts"].size(), manifest["files"].size() + 2);  // + manifest.json, bundle.hash

  // An unchanged re-run is a new (cached) run but registers nothing new.
  CommandResult again = RunKeel({"train", "pipeline.yaml"}, dir);
  ASSERT_EQ(again.exit_code, 0) << again.Describe();
  EXPECT_NE(again.out.find("model big_fare: already registered as version 1"), std::string::npos)
      << again.out;
  EXPECT_NE(again.out.find("\nrun "), std::string::npos) << again.out;
  EXPECT_EQ(KeelJson({"models", "show", "big_fare", "--json"}, dir)["versions"].size(), 1u);
  // Recorded as an audit trail entry that says it trained nothing and names
  // the run that registered the bundle.
  Json cached = KeelJson({"train", "pipeline.yaml", "--json"}, dir);
  EXPECT_EQ(cached["registry"]["cached"], "all");
  EXPECT_EQ(cached["registry"]["new_version"], false);
  EXPECT_EQ(cached["registry"]["version"], 1);
  EXPECT_EQ(cached["registry"]["version_run_id"], run_id);
  EXPECT_NE(cached["registry"]["run_id"], run_id);
  Json cached_run =
      KeelJson({"runs", "show", cached["registry"]["run_id"].get<std::string>(), "--json"}, dir);
  EXPECT_EQ(cached_run["status"], "finished");
  EXPECT_EQ(cached_run["tags"]["cached"], "all");
  EXPECT_EQ(cached_run["tags"]["version_run_id"], run_id);
  EXPECT_EQ(cached_run["tags"]["steps.ran"], "");
  EXPECT_EQ(cached_run["tags"]["registered_version"], "1 (already registered)");
  EXPECT_NE(again.out.find("every step was cached"), std::string::npos) << again.out;

  // A changed parameter: a new bundle hash, version 2.
  EditFile(dir + "/pipeline.yaml", "eta: 0.3", "eta: 0.2");
  Json two = KeelJson({"train", "pipeline.yaml", "--json"}, dir);
  EXPECT_EQ(two["registry"]["version"], 2);
  EXPECT_EQ(two["registry"]["new_version"], true);
  Json second = KeelJson({"models", "show", "big_fare", "2", "--json"}, dir);
  EXPECT_EQ(second["lineage"]["bundle_hash"], two["bundle_hash"]);
  EXPECT_EQ(second["lineage"]["run_id"], two["registry"]["run_id"]);
  EXPECT_EQ(two["registry"]["cached"], "some");  // dataset to transforms were cached
  EXPECT_TRUE(Exists(dir + "/.keel/bundles/by-hash/" + two["bundle_hash"].get<std::string>()));
  size_t runs = KeelJson({"runs", "list", "-e", "big_fare", "--json"}, dir).size();
  EXPECT_EQ(runs, 4u);

  // --no-register: neither a run nor a version.
  EditFile(dir + "/pipeline.yaml", "eta: 0.2", "eta: 0.1");
  Json unregistered = KeelJson({"train", "pipeline.yaml", "--json", "--no-register"}, dir);
  EXPECT_TRUE(unregistered["registry"].is_null()) << unregistered.dump(2);
  EXPECT_EQ(KeelJson({"models", "show", "big_fare", "--json"}, dir)["versions"].size(), 2u);
  EXPECT_EQ(KeelJson({"runs", "list", "-e", "big_fare", "--json"}, dir).size(), runs);
  EXPECT_FALSE(
      Exists(dir + "/.keel/bundles/by-hash/" + unregistered["bundle_hash"].get<std::string>()));

  // Training that fails after the run started leaves the run failed, with the error.
  WriteFile(dir + "/unknown.yaml",
            ReplaceOnce(kPipeline, "service: trip_model", "views: [no_such_view]"));
  EXPECT_EQ(RunKeel({"train", "unknown.yaml"}, dir).exit_code, 3);
  Json failed = KeelJson({"runs", "list", "-e", "big_fare", "--status", "failed", "--json"}, dir);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_NE(failed[0]["tags"]["error"].get<std::string>().find("no_such_view"), std::string::npos)
      << failed[0].dump(2);
  EXPECT_EQ(KeelJson({"models", "show", "big_fare", "--json"}, dir)["versions"].size(), 2u);
}

// Several `keel train` processes finish the same new bundle at once (here:
// trained before with --no-register, so each run is cached and they race on
// registering it): exactly one registers version 1, the others are told it
// is already registered as version 1.
TEST(TrainCli, ConcurrentRunsOfOneNewBundleRegisterItOnce) {
  TempDir temp;
  std::string dir = temp.Path("rides");
  ASSERT_EQ(RunKeel({"init", dir}).exit_code, 0);
  ASSERT_EQ(RunKeel({"apply"}, dir).exit_code, 0);
  WriteFile(dir + "/pipeline.yaml", kPipeline);
  Json trained = KeelJson({"train", "pipeline.yaml", "--json", "--no-register"}, dir);
  constexpr int kRuns = 4;
  std::vector<CommandResult> results(kRuns);
  std::vector<std::thread> threads;
  for (int index = 0; index < kRuns; ++index) {
    threads.emplace_back([&, index] {
      results[index] = RunKeel(
          {"train", "pipeline.yaml", "--json", "--out", temp.Path("out" + std::to_string(index))},
          dir);
    });
  }
  for (std::thread& thread : threads) thread.join();
  int created = 0;
  std::set<std::string> runs;
  for (const CommandResult& result : results) {
    ASSERT_EQ(result.exit_code, 0) << result.Describe();
    Json json = Json::parse(result.out);
    EXPECT_EQ(json["bundle_hash"], trained["bundle_hash"]);
    EXPECT_EQ(json["registry"]["version"], 1);
    EXPECT_EQ(json["registry"]["cached"], "all");
    if (json["registry"]["new_version"].get<bool>()) ++created;
    runs.insert(json["registry"]["run_id"].get<std::string>());
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(runs.size(), static_cast<size_t>(kRuns));
  Json versions = KeelJson({"models", "show", "big_fare", "--json"}, dir)["versions"];
  EXPECT_EQ(versions.size(), 1u) << versions.dump(2);
  EXPECT_EQ(KeelJson({"models", "history", "big_fare", "--json"}, dir).size(), 1u);
}

// The output of a shell command, trailing newline removed.
std::string Shell(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[256];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) out += buffer;
  ::pclose(pipe);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// The code version bundles and lineage record is the commit the binary was
// built from, taken at build time (not when cmake configured): HEAD, with
// "-dirty" when tracked files differ from it.
TEST(CodeVersion, IsTheCheckedOutCommitAtBuildTime) {
  const std::string git = "git -C '" + SourceDir() + "' ";
  std::string commit = Shell(git + "rev-parse --short=12 HEAD 2>/dev/null");
  ASSERT_EQ(commit.size(), 12u) << "run from a git checkout of keel: " << commit;
  bool dirty = !Shell(git + "status --porcelain --untracked-files=no").empty();
  std::string expected = commit + (dirty ? "-dirty" : "");
  CommandResult version = RunKeel({"--version"});
  ASSERT_EQ(version.exit_code, 0) << version.Describe();
  EXPECT_NE(version.out.find("(" + expected + ")"), std::string::npos)
      << version.out << " is not the checkout's " << expected
      << " (rebuild keel after committing or changing files)";
}

// The source checks run beside the dataset step and read the same rows as
// the offline engine: `keel train` reads each source once for both, and the
// checks still see every row (a warning on all of them).
TEST(TrainCli, ChecksAndFeaturesReadEachSourceOnce) {
  TempDir temp;
  std::string dir = temp.Path("rides");
  ASSERT_EQ(RunKeel({"init", dir}).exit_code, 0);
  EditFile(dir + "/features.yaml", "    path: data/trips.csv\n",
           "    path: data/trips.csv\n    checks:\n"
           "      - {check: range, column: fare, max: 0, severity: warn}\n");
  ASSERT_EQ(RunKeel({"apply"}, dir).exit_code, 0);
  WriteFile(dir + "/pipeline.yaml", kPipeline);
  CommandResult trained = RunKeel({"train", "pipeline.yaml", "--json"}, dir);
  ASSERT_EQ(trained.exit_code, 0) << trained.Describe();
  EXPECT_NE(trained.err.find("checks of source 'trips': 0 passed, 1 warnings, 0 failed"),
            std::string::npos)
      << trained.err;
  Json reads = Json::parse(trained.out)["source_reads"];
  // trips: the checks and the engine asked, one read; drivers: the engine only.
  EXPECT_EQ(reads, (Json{{"drivers", {{"readers", 1}, {"reads", 1}}},
                         {"trips", {{"readers", 2}, {"reads", 1}}}}))
      << reads;
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
