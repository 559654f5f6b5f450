// The contract every Registry implementation passes. SQLite runs everywhere;
// PostgreSQL runs against the server scripts/services starts
// (KEEL_TEST_POSTGRES_URL; the test fails, never skips, when it is
// unreachable). Every test works in a fresh database (SQLite: a new file;
// PostgreSQL: a new schema, dropped afterwards), so tests can run repeatedly.
#include "registry/registry.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>

#include "registry/sql_connection.h"

namespace keel::registry {
namespace {

std::string PostgresUrl() {
  const char* value = std::getenv("KEEL_TEST_POSTGRES_URL");
  return value != nullptr && *value != '\0' ? value
                                            : "postgresql://postgres@127.0.0.1:5440/keel_test";
}

// A name no other test or earlier run uses.
std::string FreshName() {
  static std::atomic<int> counter{0};
  return "t" + std::to_string(::getpid()) + "_" +
         std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000000) +
         "_" + std::to_string(counter++);
}

// Aggregate helpers (every field named, so -Wextra stays quiet).
NewRun MakeRun(const std::string& experiment, const std::string& name,
               std::map<std::string, std::string> params = {},
               std::map<std::string, std::string> tags = {}) {
  NewRun run;
  run.experiment = experiment;
  run.name = name;
  run.params = std::move(params);
  run.tags = std::move(tags);
  return run;
}

TransitionRequest Move(const std::string& model, int64_t version, Stage to,
                       const std::string& actor, const std::string& reason = "",
                       std::optional<SignOff> sign_off = std::nullopt) {
  TransitionRequest request;
  request.model = model;
  request.version = version;
  request.to = to;
  request.actor = actor;
  request.reason = reason;
  request.sign_off = std::move(sign_off);
  return request;
}

RunLog Params(std::map<std::string, std::string> params) {
  RunLog log;
  log.params = std::move(params);
  return log;
}

RunLog Metrics(std::vector<Metric> metrics) {
  RunLog log;
  log.metrics = std::move(metrics);
  return log;
}

struct Backend {
  std::string name;
  // Options of the database called `database` (created on first open).
  std::function<RegistryOptions(const std::string& database)> options;
  // Removes the database.
  std::function<void(const std::string& database)> drop;
  // A raw connection to the database, to tamper with it.
  std::function<Result<std::unique_ptr<SqlConnection>>(const std::string& database)> raw;
};

void PrintTo(const Backend& backend, std::ostream* os) { *os << backend.name; }

std::vector<Backend> Backends() {
  static const std::string dir =
      (std::filesystem::temp_directory_path() / ("keel_registry_" + FreshName())).string();
  return {
      {"sqlite",
       [](const std::string& database) {
         RegistryOptions options;
         options.type = "sqlite";
         options.path = dir + "/" + database + ".db";
         return options;
       },
       [](const std::string& database) {
         std::error_code error;
         for (const char* suffix : {".db", ".db-wal", ".db-shm"}) {
           std::filesystem::remove(dir + "/" + database + suffix, error);
         }
         std::filesystem::remove(dir, error);  // succeeds only once it is empty
       },
       [](const std::string& database) {
         return OpenSqliteConnection(dir + "/" + database + ".db", true);
       }},
      {"postgres",
       [](const std::string& database) {
         RegistryOptions options;
         options.type = "postgres";
         options.url = PostgresUrl();
         options.schema = database;
         return options;
       },
       [](const std::string& database) {
         Result<std::unique_ptr<SqlConnection>> connection =
             OpenPostgresConnection(PostgresUrl(), database);
         if (connection.ok()) {
           Status dropped = (*connection)->Execute("DROP SCHEMA \"" + database + "\" CASCADE");
           EXPECT_TRUE(dropped.ok()) << dropped.ToString();
         }
       },
       [](const std::string& database) { return OpenPostgresConnection(PostgresUrl(), database); }},
  };
}

class RegistryContract : public testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    database_ = FreshName();
    registry_ = Open();
    ASSERT_NE(registry_, nullptr);
  }
  void TearDown() override {
    registry_.reset();
    GetParam().drop(database_);
  }

  // Opens the test's database (again); the clock is the test's fake one.
  std::unique_ptr<Registry> Open() {
    RegistryOptions options = GetParam().options(database_);
    options.clock = [this] { return now_.load(); };
    Result<std::unique_ptr<Registry>> opened = OpenRegistry(options);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  void Advance(Duration by = kMicrosPerSecond) { now_ += by; }

  // Registers a version of `model` and moves it to staging.
  int64_t StagedVersion(const std::string& model) {
    Lineage lineage;
    lineage.bundle_hash = "bundle-" + std::to_string(++bundles_);
    Result<ModelVersion> version = registry_->CreateModelVersion(model, lineage, "trainer");
    EXPECT_TRUE(version.ok()) << version.status().ToString();
    if (!version.ok()) return 0;
    Result<ModelVersion> staged = registry_->TransitionStage(
        Move(model, version->version, Stage::kStaging, "alice", "tests"));
    EXPECT_TRUE(staged.ok()) << staged.status().ToString();
    return version->version;
  }

  Status Promote(const std::string& model, int64_t version, const std::string& reason = "better") {
    return registry_
        ->TransitionStage(Move(model, version, Stage::kProduction, "alice", reason,
                               SignOff{"bob", "reviewed the metrics"}))
        .status();
  }

  std::optional<int64_t> Production(const std::string& model) {
    Result<RegisteredModel> loaded = registry_->GetModel(model);
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
    return loaded.ok() ? loaded->production_version : std::nullopt;
  }

  std::string database_;
  std::atomic<Timestamp> now_{1'700'000'000LL * kMicrosPerSecond};
  std::unique_ptr<Registry> registry_;
  int bundles_ = 0;
};

::testing::AssertionResult HasError(const Status& status, StatusCode code,
                                    const std::vector<std::string>& needles) {
  if (status.code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << StatusCodeName(code) << ", got " << status.ToString();
  }
  for (const std::string& needle : needles) {
    if (status.message().find(needle) == std::string::npos) {
      return ::testing::AssertionFailure() << "\"" << needle << "\" not in " << status.ToString();
    }
  }
  return ::testing::AssertionSuccess();
}

TEST_P(RegistryContract, ExperimentsAreCreatedOnceAndListed) {
  ASSERT_TRUE(registry_->CreateExperiment("delay").ok());
  EXPECT_TRUE(HasError(registry_->CreateExperiment("delay").status(), StatusCode::kAlreadyExists,
                       {"delay"}));
  EXPECT_TRUE(HasError(registry_->GetExperiment("nope").status(), StatusCode::kNotFound, {"nope"}));
  ASSERT_TRUE(registry_->CreateRun(MakeRun("auto", "r")).ok());  // creates "auto"
  Result<std::vector<Experiment>> all = registry_->ListExperiments();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "auto");
  EXPECT_EQ((*all)[1].name, "delay");
  EXPECT_EQ(registry_->GetExperiment("delay")->created_at, now_.load());
}

TEST_P(RegistryContract, RunRecordsParamsMetricsTagsArtifactsAndStatus) {
  NewRun new_run = MakeRun("delay", "first", {{"lr", "0.1"}, {"depth", "6"}}, {{"team", "ml"}});
  Result<registry::Run> created = registry_->CreateRun(new_run);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::string id = created->id;
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(created->status, RunStatus::kRunning);
  RunLog log;
  log.params = {{"seed", "7"}, {"lr", "0.1"}};  // the same value again is fine
  log.metrics = {
      {"loss", 0.9, 0, 0}, {"loss", 0.5, 2, 0}, {"loss", 0.7, 1, 0}, {"auc", 0.75, 0, 0}};
  log.tags = {{"team", "ranking"}};
  log.artifacts = {{"model.ubj", "/bundles/a/model.ubj", "xxh128:abc", 1234},
                   {"manifest.json", "/bundles/a/manifest.json", "xxh128:def", 10}};
  ASSERT_TRUE(registry_->LogToRun(id, log).ok());
  Advance();
  ASSERT_TRUE(registry_->EndRun(id, RunStatus::kFinished).ok());

  Result<registry::Run> run = registry_->GetRun(id);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->experiment, "delay");
  EXPECT_EQ(run->name, "first");
  EXPECT_EQ(run->status, RunStatus::kFinished);
  EXPECT_EQ(run->end_time, run->start_time + kMicrosPerSecond);
  EXPECT_EQ(run->params,
            (std::map<std::string, std::string>{{"depth", "6"}, {"lr", "0.1"}, {"seed", "7"}}));
  EXPECT_EQ(run->tags.at("team"), "ranking");
  EXPECT_EQ(run->metrics.at("loss").value, 0.5);  // the largest step wins
  EXPECT_EQ(run->metrics.at("loss").step, 2);
  EXPECT_EQ(run->metrics.at("auc").value, 0.75);
  ASSERT_EQ(run->artifacts.size(), 2u);
  EXPECT_EQ(run->artifacts[0].path, "manifest.json");
  EXPECT_EQ(run->artifacts[1].checksum, "xxh128:abc");
  EXPECT_EQ(run->artifacts[1].size_bytes, 1234);

  Result<std::vector<Metric>> history = registry_->GetMetricHistory(id, "loss");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].value, 0.9);
  EXPECT_EQ((*history)[1].value, 0.7);
  EXPECT_EQ((*history)[2].value, 0.5);
  EXPECT_TRUE(registry_->GetMetricHistory(id, "none")->empty());

  // Doubles round-trip exactly.
  double exact = 0.1 + 0.2;
  ASSERT_TRUE(registry_->LogToRun(id, Metrics({{"exact", exact, 0, 0}})).ok());
  EXPECT_EQ(registry_->GetRun(id)->metrics.at("exact").value, exact);

  // A unique prefix finds the run.
  EXPECT_EQ(registry_->GetRun(id.substr(0, 8))->id, id);
}

TEST_P(RegistryContract, RunErrorsNameTheRun) {
  Result<registry::Run> run = registry_->CreateRun(MakeRun("delay", "r", {{"lr", "0.1"}}));
  ASSERT_TRUE(run.ok());
  EXPECT_TRUE(HasError(registry_->LogToRun(run->id, Params({{"lr", "0.2"}})),
                       StatusCode::kInvalidArgument, {run->id, "lr", "0.1", "0.2"}));
  EXPECT_TRUE(HasError(registry_->LogToRun(run->id, Metrics({{"bad", std::nan(""), 0, 0}})),
                       StatusCode::kInvalidArgument, {"bad"}));
  // A failed log changes nothing (all or nothing).
  EXPECT_TRUE(HasError(registry_->LogToRun(run->id, Params({{"new", "1"}, {"lr", "0.3"}})),
                       StatusCode::kInvalidArgument, {"lr"}));
  EXPECT_EQ(registry_->GetRun(run->id)->params.count("new"), 0u);
  EXPECT_TRUE(HasError(registry_->GetRun("0123456789abcdef").status(), StatusCode::kNotFound,
                       {"0123456789abcdef"}));
  EXPECT_TRUE(
      HasError(registry_->LogToRun("feedbeef", RunLog()), StatusCode::kNotFound, {"feedbeef"}));
  EXPECT_TRUE(HasError(registry_->EndRun(run->id, RunStatus::kRunning),
                       StatusCode::kInvalidArgument, {run->id}));
  ASSERT_TRUE(registry_->EndRun(run->id, RunStatus::kFailed).ok());
  EXPECT_TRUE(HasError(registry_->EndRun(run->id, RunStatus::kFinished),
                       StatusCode::kFailedPrecondition, {run->id, "failed"}));
}

TEST_P(RegistryContract, SearchFiltersAndOrdersRuns) {
  // 30 runs in "a" (lr cycles 0.1/0.2/0.3, auc = i/100 except every 10th run,
  // which has none; every 4th failed), 5 runs in "b".
  std::vector<std::string> ids;
  for (int i = 0; i < 30; ++i) {
    Advance();
    std::string lr = i % 3 == 0 ? "0.1" : i % 3 == 1 ? "0.2" : "0.3";
    Result<registry::Run> run = registry_->CreateRun(MakeRun(
        "a", "run" + std::to_string(i), {{"lr", lr}}, {{"parity", i % 2 ? "odd" : "even"}}));
    ASSERT_TRUE(run.ok());
    ids.push_back(run->id);
    if (i % 10 != 0) {
      ASSERT_TRUE(registry_->LogToRun(run->id, Metrics({{"auc", i / 100.0, 0, 0}})).ok());
    }
    ASSERT_TRUE(
        registry_->EndRun(run->id, i % 4 == 0 ? RunStatus::kFailed : RunStatus::kFinished).ok());
  }
  for (int i = 0; i < 5; ++i) {
    Advance();
    Result<registry::Run> run = registry_->CreateRun(MakeRun("b", "other", {{"lr", "0.1"}}));
    ASSERT_TRUE(registry_->LogToRun(run->id, Metrics({{"auc", 0.99, 0, 0}})).ok());
  }
  auto names = [&](const RunQuery& query) {
    std::vector<std::string> out;
    Result<std::vector<registry::Run>> runs = registry_->SearchRuns(query);
    EXPECT_TRUE(runs.ok()) << runs.status().ToString();
    if (runs.ok()) {
      for (const registry::Run& run : *runs) out.push_back(run.name);
    }
    return out;
  };
  auto predicate = [](const std::string& text) { return ParseRunPredicate(text).value(); };

  RunQuery newest;
  newest.experiment = "a";
  newest.limit = 3;
  EXPECT_EQ(names(newest), (std::vector<std::string>{"run29", "run28", "run27"}));

  RunQuery everything;
  everything.limit = 1000;
  EXPECT_EQ(names(everything).size(), 35u);

  RunQuery failed;
  failed.experiment = "a";
  failed.status = RunStatus::kFailed;
  failed.limit = 100;
  EXPECT_EQ(names(failed), (std::vector<std::string>{"run28", "run24", "run20", "run16", "run12",
                                                     "run8", "run4", "run0"}));

  RunQuery best;
  best.experiment = "a";
  best.order_by_metric = "auc";
  best.limit = 4;
  EXPECT_EQ(names(best), (std::vector<std::string>{"run29", "run28", "run27", "run26"}));
  best.ascending = true;
  EXPECT_EQ(names(best), (std::vector<std::string>{"run1", "run2", "run3", "run4"}));
  // Runs without the metric come last.
  best.limit = 30;
  std::vector<std::string> all_by_auc = names(best);
  ASSERT_EQ(all_by_auc.size(), 30u);
  EXPECT_EQ(std::vector<std::string>(all_by_auc.end() - 3, all_by_auc.end()),
            (std::vector<std::string>{"run20", "run10", "run0"}));

  RunQuery filtered;
  filtered.experiment = "a";
  filtered.where = {predicate("params.lr = 0.2"), predicate("metrics.auc >= 0.2"),
                    predicate("tags.parity != odd")};
  filtered.order_by_metric = "auc";
  filtered.limit = 100;
  // lr 0.2: i % 3 == 1; auc >= 0.2: i >= 20 (not 20, no auc); even: 22, 28.
  EXPECT_EQ(names(filtered), (std::vector<std::string>{"run28", "run22"}));

  // Two equalities (found by intersecting index ranges), with and without a
  // metric order.
  RunQuery both;
  both.experiment = "a";
  both.where = {predicate("params.lr = 0.1"), predicate("tags.parity = even")};
  EXPECT_EQ(names(both), (std::vector<std::string>{"run24", "run18", "run12", "run6", "run0"}));
  both.order_by_metric = "auc";
  both.ascending = true;
  EXPECT_EQ(names(both), (std::vector<std::string>{"run6", "run12", "run18", "run24", "run0"}));
  both.where.push_back(predicate("metrics.auc > 0.1"));
  both.where.push_back(predicate("params.lr != 0.2"));
  EXPECT_EQ(names(both), (std::vector<std::string>{"run12", "run18", "run24"}));

  RunQuery across;
  across.where = {predicate("metrics.auc > 0.95")};
  EXPECT_EQ(names(across).size(), 5u);

  RunQuery missing;
  missing.experiment = "zzz";
  EXPECT_TRUE(HasError(registry_->SearchRuns(missing).status(), StatusCode::kNotFound, {"zzz"}));
  RunQuery bad_limit;
  bad_limit.limit = 0;
  EXPECT_EQ(registry_->SearchRuns(bad_limit).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseRunPredicate("params.lr > 0.1").ok());
  EXPECT_FALSE(ParseRunPredicate("metrics.auc > high").ok());
  EXPECT_FALSE(ParseRunPredicate("auc > 1").ok());
}

TEST_P(RegistryContract, VersionsCarryLineageAndNumbersGrow) {
  Result<registry::Run> run = registry_->CreateRun(MakeRun("delay", "train"));
  ASSERT_TRUE(run.ok());
  Lineage lineage{run->id,
                  "bundle-hash",
                  "/bundles/delay/1",
                  "data-hash",
                  {"origin_stats@abc123", "dest_stats@def456"},
                  "0123abcd"};
  Result<ModelVersion> first = registry_->CreateModelVersion("delay", lineage, "trainer", "first");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->version, 1);
  EXPECT_EQ(first->stage, Stage::kTrained);
  Result<ModelVersion> second = registry_->CreateModelVersion("delay", lineage, "trainer");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->version, 2);

  Result<ModelVersion> loaded = registry_->GetModelVersion("delay", 1);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->lineage.run_id, run->id);
  EXPECT_EQ(loaded->lineage.bundle_hash, "bundle-hash");
  EXPECT_EQ(loaded->lineage.bundle_uri, "/bundles/delay/1");
  EXPECT_EQ(loaded->lineage.data_hash, "data-hash");
  EXPECT_EQ(loaded->lineage.feature_versions, lineage.feature_versions);
  EXPECT_EQ(loaded->lineage.code_version, "0123abcd");
  EXPECT_EQ(loaded->description, "first");

  Result<RegisteredModel> model = registry_->GetModel("delay");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->latest_version, 2);
  EXPECT_EQ(model->production_version, std::nullopt);
  EXPECT_EQ(registry_->ListModelVersions("delay")->size(), 2u);
  EXPECT_EQ(registry_->ListModels()->size(), 1u);

  EXPECT_TRUE(HasError(registry_->GetModelVersion("delay", 9).status(), StatusCode::kNotFound,
                       {"delay", "version 9", "latest is 2"}));
  EXPECT_TRUE(
      HasError(registry_->GetModelVersion("nope", 1).status(), StatusCode::kNotFound, {"nope"}));
  EXPECT_TRUE(
      HasError(registry_->CreateModel("delay").status(), StatusCode::kAlreadyExists, {"delay"}));
  lineage.run_id = "ffffffffffffffffffffffffffffffff";
  EXPECT_TRUE(HasError(registry_->CreateModelVersion("delay", lineage, "trainer").status(),
                       StatusCode::kNotFound, {"delay", "ffffffff"}));
  EXPECT_EQ(registry_->GetModel("delay")->latest_version, 2);
}

TEST_P(RegistryContract, RegisterBundleReusesTheVersionOfTheSameBundle) {
  Result<registry::Run> run = registry_->CreateRun(MakeRun("delay", "train"));
  ASSERT_TRUE(run.ok());
  Lineage lineage{run->id, "bundle-a", "/bundles/a", "data", {"view@1"}, "code"};
  Result<BundleRegistration> first = registry_->RegisterBundle("delay", lineage, "trainer");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->created);
  EXPECT_EQ(first->version.version, 1);
  EXPECT_EQ(first->version.lineage.run_id, run->id);

  Result<registry::Run> rerun = registry_->CreateRun(MakeRun("delay", "train"));
  ASSERT_TRUE(rerun.ok());
  lineage.run_id = rerun->id;
  Result<BundleRegistration> again = registry_->RegisterBundle("delay", lineage, "trainer");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->version.version, 1);
  EXPECT_EQ(again->version.lineage.run_id, run->id) << "the run that registered it";
  EXPECT_EQ(registry_->History("delay")->size(), 1u) << "nothing recorded for the repeat";

  lineage.bundle_hash = "bundle-b";
  Result<BundleRegistration> other = registry_->RegisterBundle("delay", lineage, "trainer");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->created);
  EXPECT_EQ(other->version.version, 2);
  // The same bundle under another model is another model's first version.
  Result<BundleRegistration> elsewhere = registry_->RegisterBundle("delay_v2", lineage, "trainer");
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_TRUE(elsewhere->created);
  EXPECT_EQ(elsewhere->version.version, 1);

  lineage.bundle_hash = "";
  EXPECT_TRUE(HasError(registry_->RegisterBundle("delay", lineage, "trainer").status(),
                       StatusCode::kInvalidArgument, {"delay", "bundle hash"}));
  lineage.bundle_hash = "bundle-c";
  EXPECT_EQ(registry_->RegisterBundle("delay", lineage, "").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_->GetModel("delay")->latest_version, 2);
}

// N processes register one new bundle at once (the model does not exist yet
// either): exactly one makes version 1, the others get it back as already
// registered.
TEST_P(RegistryContract, ConcurrentRegistrationsOfOneBundleMakeOneVersion) {
  constexpr int kProcesses = 8;
  registry_.reset();  // children open their own connections
  RegistryOptions options = GetParam().options(database_);
  std::vector<pid_t> children;
  for (int child = 0; child < kProcesses; ++child) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Exit codes: 20 + version when this child created it, 60 + version
      // when it found it registered; 10+ the step that failed.
      Result<std::unique_ptr<Registry>> opened = OpenRegistry(options);
      if (!opened.ok()) ::_exit(10);
      Lineage lineage;
      lineage.bundle_hash = "the-one-bundle";
      lineage.bundle_uri = "/bundles/by-hash/the-one-bundle";
      Result<BundleRegistration> registered =
          (*opened)->RegisterBundle("raced_bundle", lineage, "trainer-" + std::to_string(child));
      if (!registered.ok()) {
        std::fprintf(stderr, "child %d: %s\n", child, registered.status().ToString().c_str());
        ::_exit(11);
      }
      const int64_t version = registered->version.version;
      if (version < 1 || version > 30) ::_exit(12);
      ::_exit(static_cast<int>((registered->created ? 20 : 60) + version));
    }
    children.push_back(pid);
  }
  int created = 0, found = 0;
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child killed";
    int code = WEXITSTATUS(status);
    EXPECT_TRUE(code == 21 || code == 61) << "child exit " << code << " (21/61: version 1)";
    if (code == 21) ++created;
    if (code == 61) ++found;
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(found, kProcesses - 1);
  registry_ = Open();
  ASSERT_NE(registry_, nullptr);
  Result<std::vector<ModelVersion>> versions = registry_->ListModelVersions("raced_bundle");
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  ASSERT_EQ(versions->size(), 1u);
  EXPECT_EQ(versions->front().lineage.bundle_hash, "the-one-bundle");
  EXPECT_EQ(registry_->History("raced_bundle")->size(), 1u);
}

TEST_P(RegistryContract, IllegalTransitionsAreRefused) {
  Lineage lineage;
  ASSERT_TRUE(registry_->CreateModelVersion("m", lineage, "trainer").ok());
  SignOff sign_off{"bob", "ok"};
  // trained -> production skips staging.
  EXPECT_TRUE(HasError(
      registry_->TransitionStage(Move("m", 1, Stage::kProduction, "alice", "", sign_off)).status(),
      StatusCode::kFailedPrecondition,
      {"model 'm' version 1", "trained", "production", "staging"}));
  EXPECT_TRUE(HasError(registry_->TransitionStage(Move("m", 1, Stage::kTrained, "alice")).status(),
                       StatusCode::kFailedPrecondition, {"already in trained"}));
  ASSERT_TRUE(registry_->TransitionStage(Move("m", 1, Stage::kStaging, "alice")).ok());
  EXPECT_TRUE(HasError(registry_->TransitionStage(Move("m", 1, Stage::kTrained, "alice")).status(),
                       StatusCode::kFailedPrecondition, {"staging", "trained"}));
  ASSERT_TRUE(
      registry_->TransitionStage(Move("m", 1, Stage::kProduction, "alice", "", sign_off)).ok());
  EXPECT_TRUE(HasError(registry_->TransitionStage(Move("m", 1, Stage::kStaging, "alice")).status(),
                       StatusCode::kFailedPrecondition, {"production", "staging", "archived"}));
  EXPECT_TRUE(HasError(registry_->TransitionStage(Move("m", 1, Stage::kArchived, "")).status(),
                       StatusCode::kInvalidArgument, {"actor"}));
  EXPECT_TRUE(HasError(registry_->TransitionStage(Move("m", 7, Stage::kStaging, "alice")).status(),
                       StatusCode::kNotFound, {"model 'm' version 7"}));
  EXPECT_TRUE(HasError(registry_->TransitionStage(Move("x", 1, Stage::kStaging, "alice")).status(),
                       StatusCode::kNotFound, {"model 'x'"}));
  ASSERT_TRUE(registry_->TransitionStage(Move("m", 1, Stage::kArchived, "alice")).ok());
  // archived -> production only by rollback.
  EXPECT_TRUE(HasError(
      registry_->TransitionStage(Move("m", 1, Stage::kProduction, "alice", "", sign_off)).status(),
      StatusCode::kFailedPrecondition, {"archived", "production"}));
  ASSERT_TRUE(registry_->TransitionStage(Move("m", 1, Stage::kStaging, "alice")).ok());
  // Refusals recorded nothing: register + 4 accepted moves.
  EXPECT_EQ(registry_->History("m")->size(), 5u);
}

TEST_P(RegistryContract, ProductionNeedsASignOff) {
  int64_t version = StagedVersion("m");
  TransitionRequest request = Move("m", version, Stage::kProduction, "alice", "ship it");
  EXPECT_TRUE(HasError(registry_->TransitionStage(request).status(),
                       StatusCode::kFailedPrecondition, {"model 'm' version 1", "sign-off"}));
  request.sign_off = SignOff{"bob", ""};
  EXPECT_TRUE(HasError(registry_->TransitionStage(request).status(),
                       StatusCode::kFailedPrecondition, {"sign-off"}));
  request.sign_off = SignOff{"", "looks good"};
  EXPECT_TRUE(HasError(registry_->TransitionStage(request).status(),
                       StatusCode::kFailedPrecondition, {"sign-off"}));
  EXPECT_EQ(registry_->GetModelVersion("m", version)->stage, Stage::kStaging);
  EXPECT_EQ(Production("m"), std::nullopt);
  request.sign_off = SignOff{"bob", "looks good"};
  Result<ModelVersion> promoted = registry_->TransitionStage(request);
  ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
  EXPECT_EQ(promoted->stage, Stage::kProduction);
  EXPECT_EQ(Production("m"), version);
}

TEST_P(RegistryContract, OneProductionVersionAndAFullAuditTrail) {
  int64_t first = StagedVersion("m");
  Advance();
  ASSERT_TRUE(Promote("m", first, "first launch").ok());
  Timestamp first_promoted = now_;
  int64_t second = StagedVersion("m");
  Advance();
  ASSERT_TRUE(Promote("m", second, "higher auc").ok());
  EXPECT_EQ(Production("m"), second);
  EXPECT_EQ(registry_->GetModelVersion("m", first)->stage, Stage::kArchived);

  Result<std::vector<StageTransition>> history = registry_->History("m");
  ASSERT_TRUE(history.ok());
  // register 1, 1->staging, 1->production, register 2, 2->staging,
  // 1 production->archived (replaced), 2->production.
  ASSERT_EQ(history->size(), 7u);
  const auto& h = *history;
  EXPECT_EQ(h[0].kind, "register");
  EXPECT_EQ(h[0].from, std::nullopt);
  EXPECT_EQ(h[0].to, Stage::kTrained);
  EXPECT_EQ(h[0].actor, "trainer");
  EXPECT_EQ(h[2].version, first);
  EXPECT_EQ(h[2].from, Stage::kStaging);
  EXPECT_EQ(h[2].to, Stage::kProduction);
  EXPECT_EQ(h[2].actor, "alice");
  EXPECT_EQ(h[2].reason, "first launch");
  EXPECT_EQ(h[2].time, first_promoted);
  ASSERT_TRUE(h[2].sign_off.has_value());
  EXPECT_EQ(h[2].sign_off->by, "bob");
  EXPECT_EQ(h[2].sign_off->note, "reviewed the metrics");
  EXPECT_EQ(h[2].previous_production, std::nullopt);
  EXPECT_EQ(h[5].version, first);
  EXPECT_EQ(h[5].kind, "replaced");
  EXPECT_EQ(h[5].from, Stage::kProduction);
  EXPECT_EQ(h[5].to, Stage::kArchived);
  EXPECT_NE(h[5].reason.find("replaced by version 2"), std::string::npos) << h[5].reason;
  EXPECT_EQ(h[6].version, second);
  EXPECT_EQ(h[6].to, Stage::kProduction);
  EXPECT_EQ(h[6].previous_production, first);
  EXPECT_EQ(h[6].time, h[5].time);  // one transaction
  for (size_t i = 1; i < h.size(); ++i) EXPECT_LT(h[i - 1].id, h[i].id);
  EXPECT_TRUE(HasError(registry_->History("none").status(), StatusCode::kNotFound, {"none"}));
}

TEST_P(RegistryContract, ProductionVersionAtTimeT) {
  Timestamp before = now_;
  int64_t first = StagedVersion("m");
  Advance();
  ASSERT_TRUE(Promote("m", first).ok());
  Timestamp during_first = now_ + kMicrosPerSecond / 2;
  int64_t second = StagedVersion("m");
  Advance(kMicrosPerSecond * 10);
  ASSERT_TRUE(Promote("m", second).ok());
  Timestamp second_at = now_;
  Advance();
  ASSERT_TRUE(
      registry_->TransitionStage(Move("m", second, Stage::kArchived, "alice", "incident")).ok());
  Timestamp after = now_;

  EXPECT_EQ(*registry_->ProductionVersionAt("m", before), std::nullopt);
  EXPECT_EQ(*registry_->ProductionVersionAt("m", during_first), first);
  EXPECT_EQ(*registry_->ProductionVersionAt("m", second_at - 1), first);
  EXPECT_EQ(*registry_->ProductionVersionAt("m", second_at), second);
  EXPECT_EQ(*registry_->ProductionVersionAt("m", after - 1), second);
  EXPECT_EQ(*registry_->ProductionVersionAt("m", after), std::nullopt);
  EXPECT_TRUE(HasError(registry_->ProductionVersionAt("none", after).status(),
                       StatusCode::kNotFound, {"none"}));
}

TEST_P(RegistryContract, RollbackRestoresThePreviousProductionVersion) {
  ASSERT_TRUE(registry_->CreateModel("m", "delays").ok());
  EXPECT_TRUE(HasError(registry_->Rollback("m", "alice", "why").status(),
                       StatusCode::kFailedPrecondition, {"model 'm'", "no production version"}));
  int64_t v1 = StagedVersion("m");
  ASSERT_TRUE(Promote("m", v1).ok());
  EXPECT_TRUE(HasError(registry_->Rollback("m", "alice", "why").status(),
                       StatusCode::kFailedPrecondition,
                       {"model 'm' version 1", "nothing to roll"}));
  int64_t v2 = StagedVersion("m");
  ASSERT_TRUE(Promote("m", v2).ok());
  int64_t v3 = StagedVersion("m");
  Advance();
  ASSERT_TRUE(Promote("m", v3).ok());
  Timestamp v3_live = now_;

  Advance();
  Result<ModelVersion> restored = registry_->Rollback("m", "oncall", "error rate up");
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->version, v2);
  EXPECT_EQ(restored->stage, Stage::kProduction);
  EXPECT_EQ(Production("m"), v2);
  EXPECT_EQ(registry_->GetModelVersion("m", v3)->stage, Stage::kArchived);
  EXPECT_EQ(*registry_->ProductionVersionAt("m", v3_live), v3);
  EXPECT_EQ(*registry_->ProductionVersionAt("m", now_), v2);

  Result<std::vector<StageTransition>> history = registry_->History("m");
  ASSERT_TRUE(history.ok());
  const StageTransition& out = (*history)[history->size() - 2];
  const StageTransition& in = history->back();
  EXPECT_EQ(out.version, v3);
  EXPECT_EQ(out.kind, "rollback");
  EXPECT_EQ(out.to, Stage::kArchived);
  EXPECT_EQ(out.actor, "oncall");
  EXPECT_NE(out.reason.find("error rate up"), std::string::npos);
  EXPECT_EQ(in.version, v2);
  EXPECT_EQ(in.kind, "rollback");
  EXPECT_EQ(in.from, Stage::kArchived);
  EXPECT_EQ(in.to, Stage::kProduction);
  EXPECT_EQ(in.time, out.time);

  // Rolling back again walks further back, then runs out.
  ASSERT_EQ(registry_->Rollback("m", "oncall", "still bad")->version, v1);
  EXPECT_EQ(Production("m"), v1);
  EXPECT_TRUE(HasError(registry_->Rollback("m", "oncall", "again").status(),
                       StatusCode::kFailedPrecondition, {"nothing to roll back"}));
  EXPECT_EQ(Production("m"), v1);
  EXPECT_TRUE(HasError(registry_->Rollback("none", "oncall", "").status(), StatusCode::kNotFound,
                       {"none"}));
  EXPECT_TRUE(
      HasError(registry_->Rollback("m", "", "").status(), StatusCode::kInvalidArgument, {"actor"}));
}

TEST_P(RegistryContract, AliasesAreUniquePerModelAndMovable) {
  int64_t v1 = StagedVersion("m");
  int64_t v2 = StagedVersion("m");
  StagedVersion("other");
  ASSERT_TRUE(registry_->SetAlias("m", "champion", v1).ok());
  ASSERT_TRUE(registry_->SetAlias("m", "challenger", v2).ok());
  ASSERT_TRUE(registry_->SetAlias("other", "champion", 1).ok());  // per model
  EXPECT_EQ(registry_->GetVersionByAlias("m", "champion")->version, v1);
  EXPECT_EQ(registry_->GetModelVersion("m", v1)->aliases, std::vector<std::string>{"champion"});

  ASSERT_TRUE(registry_->SetAlias("m", "champion", v2).ok());  // moves
  EXPECT_EQ(registry_->GetVersionByAlias("m", "champion")->version, v2);
  EXPECT_TRUE(registry_->GetModelVersion("m", v1)->aliases.empty());
  EXPECT_EQ(registry_->GetModelVersion("m", v2)->aliases,
            (std::vector<std::string>{"challenger", "champion"}));
  EXPECT_EQ(registry_->GetVersionByAlias("other", "champion")->version, 1);

  ASSERT_TRUE(registry_->DeleteAlias("m", "challenger").ok());
  EXPECT_TRUE(HasError(registry_->GetVersionByAlias("m", "challenger").status(),
                       StatusCode::kNotFound, {"model 'm'", "challenger"}));
  EXPECT_TRUE(
      HasError(registry_->DeleteAlias("m", "challenger"), StatusCode::kNotFound, {"challenger"}));
  EXPECT_TRUE(HasError(registry_->SetAlias("m", "champion", 9), StatusCode::kNotFound,
                       {"model 'm' version 9"}));
  EXPECT_EQ(registry_->SetAlias("m", "3", v1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_->SetAlias("m", "v3", v1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_->SetAlias("m", "", v1).code(), StatusCode::kInvalidArgument);
}

TEST_P(RegistryContract, VersionTagsAreSetReplacedAndDeleted) {
  int64_t v1 = StagedVersion("m");
  ASSERT_TRUE(registry_->SetVersionTag("m", v1, "validated", "no").ok());
  ASSERT_TRUE(registry_->SetVersionTag("m", v1, "validated", "yes").ok());
  ASSERT_TRUE(registry_->SetVersionTag("m", v1, "owner", "ml").ok());
  EXPECT_EQ(registry_->GetModelVersion("m", v1)->tags,
            (std::map<std::string, std::string>{{"owner", "ml"}, {"validated", "yes"}}));
  ASSERT_TRUE(registry_->DeleteVersionTag("m", v1, "owner").ok());
  EXPECT_EQ(registry_->GetModelVersion("m", v1)->tags.size(), 1u);
  EXPECT_TRUE(HasError(registry_->DeleteVersionTag("m", v1, "owner"), StatusCode::kNotFound,
                       {"model 'm' version 1", "owner"}));
  EXPECT_TRUE(
      HasError(registry_->SetVersionTag("m", 5, "k", "v"), StatusCode::kNotFound, {"version 5"}));
}

TEST_P(RegistryContract, EverythingSurvivesReopening) {
  Result<registry::Run> run = registry_->CreateRun(MakeRun("delay", "r", {{"lr", "0.1"}}));
  ASSERT_TRUE(run.ok());
  int64_t v1 = StagedVersion("m");
  ASSERT_TRUE(Promote("m", v1).ok());
  registry_.reset();
  registry_ = Open();
  ASSERT_NE(registry_, nullptr);
  EXPECT_EQ(registry_->GetRun(run->id)->params.at("lr"), "0.1");
  EXPECT_EQ(Production("m"), v1);
  EXPECT_EQ(registry_->History("m")->size(), 3u);
}

TEST_P(RegistryContract, SearchReturnsMoreRunsThanOneLoadHolds) {
  for (int i = 0; i < 600; ++i) {
    Advance();
    ASSERT_TRUE(registry_->CreateRun(MakeRun("many", "run" + std::to_string(i))).ok());
  }
  RunQuery query;
  query.limit = 1000;
  Result<std::vector<registry::Run>> runs = registry_->SearchRuns(query);
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  ASSERT_EQ(runs->size(), 600u);
  EXPECT_EQ(runs->front().name, "run599");
  EXPECT_EQ(runs->back().name, "run0");
}

TEST_P(RegistryContract, RefusesADatabaseOfAnotherSchemaVersion) {
  registry_.reset();
  Result<std::unique_ptr<SqlConnection>> raw = GetParam().raw(database_);
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  ASSERT_TRUE(
      (*raw)->Execute("UPDATE registry_meta SET value = '99' WHERE key = 'schema_version'").ok());
  raw->reset();
  RegistryOptions options = GetParam().options(database_);
  EXPECT_TRUE(HasError(OpenRegistry(options).status(), StatusCode::kFailedPrecondition,
                       {"schema version 99"}));
}

// N processes, at once and three times over, each register a version of one
// model, stage it and promote it; then N processes roll back at once. Afterwards: N distinct
// version numbers, exactly one production version, and an audit trail in which every entry into
// production names the version it replaced, and that version left production in the same
// transaction.
TEST_P(RegistryContract, ConcurrentPromotionsLeaveOneProductionVersion) {
  constexpr int kProcesses = 6;
  constexpr int kRounds = 3;
  ASSERT_TRUE(registry_->CreateModel("raced").ok());
  registry_.reset();  // children open their own connections
  RegistryOptions options = GetParam().options(database_);
  std::vector<pid_t> children;
  for (int child = 0; child < kProcesses; ++child) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Exit codes: 0 success, 10+ the step that failed.
      Result<std::unique_ptr<Registry>> opened = OpenRegistry(options);
      if (!opened.ok()) ::_exit(10);
      Registry& registry = **opened;
      for (int round = 0; round < kRounds; ++round) {
        Lineage lineage;
        lineage.bundle_hash = "child-" + std::to_string(child) + "-" + std::to_string(round);
        Result<ModelVersion> version = registry.CreateModelVersion("raced", lineage, "trainer");
        if (!version.ok()) ::_exit(11);
        if (!registry.TransitionStage(Move("raced", version->version, Stage::kStaging, "ci"))
                 .ok()) {
          ::_exit(12);
        }
        TransitionRequest promote =
            Move("raced", version->version, Stage::kProduction, "child-" + std::to_string(child),
                 "race", SignOff{"bob", "race test"});
        Result<ModelVersion> promoted = registry.TransitionStage(promote);
        if (!promoted.ok()) {
          std::fprintf(stderr, "child %d: %s\n", child, promoted.status().ToString().c_str());
          ::_exit(13);
        }
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status)) << "child killed";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "a child failed at step " << WEXITSTATUS(status);
  }
  registry_ = Open();
  ASSERT_NE(registry_, nullptr);
  Result<std::vector<ModelVersion>> versions = registry_->ListModelVersions("raced");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), static_cast<size_t>(kProcesses * kRounds));
  std::set<std::string> bundles;
  int in_production = 0;
  for (const ModelVersion& version : *versions) {
    bundles.insert(version.lineage.bundle_hash);
    if (version.stage == Stage::kProduction) ++in_production;
  }
  EXPECT_EQ(bundles.size(), static_cast<size_t>(kProcesses * kRounds));
  EXPECT_EQ(in_production, 1);

  // Replay the audit trail: it must agree with the final state.
  Result<std::vector<StageTransition>> history = registry_->History("raced");
  ASSERT_TRUE(history.ok());
  std::optional<int64_t> live;
  int promotions = 0;
  for (const StageTransition& entry : *history) {
    if (entry.to == Stage::kProduction) {
      ++promotions;
      EXPECT_EQ(live, std::nullopt)
          << "version " << entry.version << " entered production while another was live";
      EXPECT_TRUE(entry.sign_off.has_value());
      live = entry.version;
    } else if (entry.from == Stage::kProduction) {
      EXPECT_EQ(live, entry.version);
      EXPECT_EQ(entry.kind, "replaced");
      live.reset();
    }
  }
  EXPECT_EQ(promotions, kProcesses * kRounds);
  EXPECT_EQ(live, Production("raced"));
  // Every promotion after the first replaced the version live before it.
  std::optional<int64_t> previous;
  std::vector<int64_t> chain;  // versions in the order they entered production
  for (const StageTransition& entry : *history) {
    if (entry.to != Stage::kProduction) continue;
    EXPECT_EQ(entry.previous_production, previous) << "version " << entry.version;
    previous = entry.version;
    chain.push_back(entry.version);
  }

  // Then N processes roll back at once: each rollback is one step back along
  // the chain, so N of them land exactly N versions back.
  registry_.reset();
  children.clear();
  for (int child = 0; child < kProcesses; ++child) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Result<std::unique_ptr<Registry>> opened = OpenRegistry(options);
      if (!opened.ok()) ::_exit(10);
      Result<ModelVersion> restored =
          (*opened)->Rollback("raced", "oncall-" + std::to_string(child), "race");
      if (!restored.ok()) {
        std::fprintf(stderr, "child %d: %s\n", child, restored.status().ToString().c_str());
        ::_exit(14);
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a rollback failed";
  }
  registry_ = Open();
  ASSERT_NE(registry_, nullptr);
  ASSERT_GT(chain.size(), static_cast<size_t>(kProcesses));
  EXPECT_EQ(Production("raced"), chain[chain.size() - 1 - kProcesses]);
  int in_production_after = 0;
  Result<std::vector<ModelVersion>> after = registry_->ListModelVersions("raced");
  ASSERT_TRUE(after.ok());
  for (const ModelVersion& version : *after) {
    if (version.stage == Stage::kProduction) ++in_production_after;
  }
  EXPECT_EQ(in_production_after, 1);
  int rollback_entries = 0;
  Result<std::vector<StageTransition>> final_history = registry_->History("raced");
  ASSERT_TRUE(final_history.ok());
  for (const StageTransition& entry : *final_history) {
    if (entry.kind == "rollback") ++rollback_entries;
  }
  EXPECT_EQ(rollback_entries, 2 * kProcesses);
}

INSTANTIATE_TEST_SUITE_P(Backends, RegistryContract, testing::ValuesIn(Backends()),
                         [](const testing::TestParamInfo<Backend>& info) {
                           return info.param.name;
                         });

TEST(OpenRegistry, RefusesUnknownTypesAndMissingLocations) {
  RegistryOptions options;
  options.type = "mysql";
  EXPECT_TRUE(HasError(OpenRegistry(options).status(), StatusCode::kInvalidArgument, {"mysql"}));
  options.type = "sqlite";
  EXPECT_EQ(OpenRegistry(options).status().code(), StatusCode::kInvalidArgument);
  options.type = "postgres";
  EXPECT_EQ(OpenRegistry(options).status().code(), StatusCode::kInvalidArgument);
  options.url = "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2";
  EXPECT_TRUE(HasError(OpenRegistry(options).status(), StatusCode::kUnavailable,
                       {"127.0.0.1:1", "cannot connect"}));
  options.url = PostgresUrl();
  options.schema = "bad-name;";
  EXPECT_EQ(OpenRegistry(options).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace keel::registry
