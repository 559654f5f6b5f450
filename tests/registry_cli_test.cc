// End-to-end tests of `keel runs ...` and `keel models ...`: the registry
// keel.yaml configures (the default SQLite file, or the PostgreSQL server
// scripts/services starts, KEEL_TEST_POSTGRES_URL), JSON output, and the exit
// codes and messages of the errors users meet (unknown model or version,
// missing sign-off, nothing to roll back to, bad keel.yaml).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e_util.h"

namespace keel::e2e {
namespace {

using Json = nlohmann::json;

::testing::AssertionResult Contains(const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected to find \"" << needle << "\" in:\n" << text;
}

std::string PostgresUrl() {
  const char* value = std::getenv("KEEL_TEST_POSTGRES_URL");
  return value != nullptr && *value != '\0' ? value
                                            : "postgresql://postgres@127.0.0.1:5440/keel_test";
}

// Exit codes of main.cc: 2 invalid argument, 3 not found, 4 failed precondition.
constexpr int kInvalid = 2;
constexpr int kNotFound = 3;
constexpr int kPrecondition = 4;

class RegistryCli : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    repo_ = temp_.Path("repo");
    std::string yaml = "project: demo\n";
    if (GetParam() == "postgres") {
      yaml += "registry:\n  type: postgres\n  url: " + PostgresUrl() + "\n";
    }
    WriteFile(repo_ + "/keel.yaml", yaml);
    // The PostgreSQL database outlives the test: names are unique per run.
    suffix_ = std::to_string(::getpid()) + "_" +
              std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
    model_ = "delay_" + suffix_;
    experiment_ = "exp_" + suffix_;
  }

  CommandResult Keel(std::vector<std::string> args) const { return RunKeel(args, repo_); }

  Json KeelJson(std::vector<std::string> args) const {
    args.push_back("--json");
    CommandResult result = Keel(args);
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    return result.exit_code == 0 ? Json::parse(result.out) : Json();
  }

  std::string LogRun(const std::string& name, const std::string& lr, const std::string& auc) {
    CommandResult result =
        Keel({"runs", "log", "-e", experiment_, "--name", name, "--param", "lr=" + lr, "--metric",
              "auc=" + auc, "--metric", "loss=0.9@0", "--metric", "loss=0.4@5", "--tag", "team=ml",
              "--artifact", "model.ubj=/bundles/x/model.ubj#xxh128:0f"});
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    std::string id = result.out;
    while (!id.empty() && id.back() == '\n') id.pop_back();
    EXPECT_EQ(id.size(), 32u) << result.out;
    return id;
  }

  void Register(const std::string& run) {
    CommandResult result = Keel({"models", "register", model_, "--run", run, "--bundle-hash",
                                 "bh-" + run, "--data-hash", "dh", "--feature", "origin_stats@abc",
                                 "--code-version", "c0ffee", "--actor", "trainer"});
    ASSERT_EQ(result.exit_code, 0) << result.Describe();
  }

  CommandResult Promote(const std::string& version, const std::string& sign_off) {
    std::vector<std::string> args = {"models",  "promote", model_,     version,
                                     "--actor", "alice",   "--reason", "better auc"};
    if (!sign_off.empty()) {
      args.push_back("--sign-off");
      args.push_back(sign_off);
    }
    return Keel(args);
  }

  TempDir temp_;
  std::string repo_, suffix_, model_, experiment_;
};

TEST_P(RegistryCli, RunsAreLoggedListedShownAndCompared) {
  std::string first = LogRun("first", "0.1", "0.71");
  std::string second = LogRun("second", "0.2", "0.74");

  Json listed = KeelJson({"runs", "list", "-e", experiment_, "--order-by", "auc"});
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0]["id"], second);
  EXPECT_EQ(listed[0]["metrics"]["auc"]["value"], 0.74);
  EXPECT_EQ(listed[0]["metrics"]["loss"]["step"], 5);
  EXPECT_EQ(listed[0]["status"], "finished");
  EXPECT_EQ(listed[1]["params"]["lr"], "0.1");

  Json filtered = KeelJson({"runs", "list", "-e", experiment_, "--where", "params.lr = 0.1"});
  ASSERT_EQ(filtered.size(), 1u);
  EXPECT_EQ(filtered[0]["name"], "first");

  CommandResult table = Keel({"runs", "list", "-e", experiment_, "--order-by", "auc"});
  ASSERT_EQ(table.exit_code, 0) << table.Describe();
  EXPECT_TRUE(Contains(table.out, "run           experiment"));
  EXPECT_TRUE(Contains(table.out, second.substr(0, 12)));
  EXPECT_TRUE(Contains(table.out, "2 runs"));

  Json shown = KeelJson({"runs", "show", first.substr(0, 10)});
  EXPECT_EQ(shown["id"], first);
  EXPECT_EQ(shown["artifacts"][0]["checksum"], "xxh128:0f");
  EXPECT_EQ(shown["tags"]["team"], "ml");

  Json compared = KeelJson({"runs", "compare", first, second});
  EXPECT_EQ(compared["rows"]["params.lr"]["differs"], true);
  EXPECT_EQ(compared["rows"]["metrics.loss"]["differs"], false);

  CommandResult missing = Keel({"runs", "show", "ffffffffffffffffffffffffffffffff"});
  EXPECT_EQ(missing.exit_code, kNotFound) << missing.Describe();
  EXPECT_TRUE(Contains(missing.err, "run 'ffffffffffffffffffffffffffffffff' does not exist"));
  CommandResult bad_filter = Keel({"runs", "list", "--where", "params.lr > 0.1"});
  EXPECT_EQ(bad_filter.exit_code, kInvalid) << bad_filter.Describe();
  EXPECT_TRUE(Contains(bad_filter.err, "= or !="));
}

TEST_P(RegistryCli, PromotionNeedsSignOffAndErrorsNameModelAndVersion) {
  std::string run = LogRun("first", "0.1", "0.71");
  Register(run);
  Register(run);

  CommandResult unknown_model = Keel({"models", "show", "nope_" + suffix_});
  EXPECT_EQ(unknown_model.exit_code, kNotFound) << unknown_model.Describe();
  EXPECT_TRUE(
      Contains(unknown_model.err, "keel: error: model 'nope_" + suffix_ + "' does not exist"));
  CommandResult unknown_version = Keel({"models", "show", model_, "9"});
  EXPECT_EQ(unknown_version.exit_code, kNotFound) << unknown_version.Describe();
  EXPECT_TRUE(Contains(unknown_version.err,
                       "model '" + model_ + "' version 9 does not exist (latest is 2)"));
  CommandResult promote_unknown = Promote("7", "bob: ok");
  EXPECT_EQ(promote_unknown.exit_code, kNotFound) << promote_unknown.Describe();
  EXPECT_TRUE(Contains(promote_unknown.err, "model '" + model_ + "' version 7"));

  // Skipping staging is refused, and so is production without a sign-off.
  CommandResult skip = Promote("1", "bob: ok");
  EXPECT_EQ(skip.exit_code, kPrecondition) << skip.Describe();
  EXPECT_TRUE(Contains(skip.err, "cannot move from trained to production"));
  ASSERT_EQ(
      Keel({"models", "promote", model_, "1", "--to", "staging", "--actor", "alice"}).exit_code, 0);
  CommandResult unsigned_promotion = Promote("1", "");
  EXPECT_EQ(unsigned_promotion.exit_code, kPrecondition) << unsigned_promotion.Describe();
  EXPECT_TRUE(Contains(unsigned_promotion.err, "needs --sign-off"));
  CommandResult bad_sign_off = Promote("1", "nobody");
  EXPECT_EQ(bad_sign_off.exit_code, kInvalid) << bad_sign_off.Describe();

  Json promoted = KeelJson({"models", "promote", model_, "v1", "--actor", "alice", "--sign-off",
                            "bob: metrics reviewed", "--reason", "launch"});
  EXPECT_EQ(promoted["stage"], "production");
  EXPECT_EQ(promoted["lineage"]["feature_versions"], Json::array({"origin_stats@abc"}));

  // Nothing to roll back to yet.
  CommandResult no_reason = Keel({"models", "promote", model_, "1", "--sign-off", "bob: ok"});
  EXPECT_EQ(no_reason.exit_code, kInvalid) << no_reason.Describe();
  EXPECT_TRUE(Contains(no_reason.err, "needs --reason"));
  CommandResult rollback =
      Keel({"models", "rollback", model_, "--actor", "oncall", "--reason", "canary"});
  EXPECT_EQ(rollback.exit_code, kPrecondition) << rollback.Describe();
  EXPECT_TRUE(Contains(rollback.err, "nothing to roll back to"));

  // Version 2 replaces 1; a rollback restores 1.
  ASSERT_EQ(
      Keel({"models", "promote", model_, "2", "--to", "staging", "--actor", "alice"}).exit_code, 0);
  ASSERT_EQ(Promote("2", "carol: better").exit_code, 0);
  ASSERT_EQ(Keel({"models", "alias", model_, "champion", "2"}).exit_code, 0);
  Json by_alias = KeelJson({"models", "show", model_, "champion"});
  EXPECT_EQ(by_alias["version"], 2);
  Json model = KeelJson({"models", "show", model_});
  EXPECT_EQ(model["production_version"], 2);
  Json restored =
      KeelJson({"models", "rollback", model_, "--actor", "oncall", "--reason", "error rate up"});
  EXPECT_EQ(restored["version"], 1);
  EXPECT_EQ(restored["stage"], "production");

  Json history = KeelJson({"models", "history", model_});
  ASSERT_EQ(history.size(), 9u) << history.dump(2);
  EXPECT_EQ(history[3]["to"], "production");
  EXPECT_EQ(history[3]["sign_off"]["by"], "bob");
  EXPECT_EQ(history[3]["sign_off"]["note"], "metrics reviewed");
  EXPECT_EQ(history[3]["actor"], "alice");
  EXPECT_EQ(history[3]["reason"], "launch");
  EXPECT_EQ(history.back()["kind"], "rollback");
  EXPECT_EQ(history.back()["actor"], "oncall");

  Json now = KeelJson({"models", "history", model_, "--at", "2100-01-01"});
  EXPECT_EQ(now["production_version"], 1);
  Json before = KeelJson({"models", "history", model_, "--at", "2000-01-01"});
  EXPECT_TRUE(before["production_version"].is_null());

  CommandResult table = Keel({"models", "history", model_});
  ASSERT_EQ(table.exit_code, 0);
  EXPECT_TRUE(Contains(table.out, "bob: metrics reviewed"));
  Json models = KeelJson({"models", "list"});
  bool listed = false;
  for (const Json& entry : models) listed = listed || entry["name"] == model_;
  EXPECT_TRUE(listed);
}

INSTANTIATE_TEST_SUITE_P(Backends, RegistryCli, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(RegistryConfig, DefaultsToSqliteInTheRepoAndRejectsBadSettings) {
  TempDir temp;
  std::string repo = temp.Path("repo");
  WriteFile(repo + "/keel.yaml", "project: demo\n");
  ASSERT_EQ(RunKeel({"runs", "log", "-e", "x"}, repo).exit_code, 0);
  EXPECT_TRUE(Exists(repo + "/.keel/registry.db"));

  WriteFile(repo + "/keel.yaml", "project: demo\nregistry:\n  type: mysql\n");
  CommandResult unknown = RunKeel({"models", "list"}, repo);
  EXPECT_EQ(unknown.exit_code, kInvalid) << unknown.Describe();
  EXPECT_TRUE(Contains(unknown.err, "unknown registry 'mysql'"));

  WriteFile(repo + "/keel.yaml", "project: demo\nregistry:\n  type: postgres\n");
  CommandResult no_url = RunKeel({"models", "list"}, repo);
  EXPECT_EQ(no_url.exit_code, kInvalid) << no_url.Describe();
  EXPECT_TRUE(Contains(no_url.err, "keel.yaml.registry.url"));

  WriteFile(repo + "/keel.yaml",
            "project: demo\nregistry:\n  type: postgres\n  url: "
            "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2\n");
  CommandResult unreachable = RunKeel({"models", "list"}, repo);
  EXPECT_EQ(unreachable.exit_code, 1) << unreachable.Describe();
  EXPECT_TRUE(Contains(unreachable.err, "cannot connect"));
}

}  // namespace
}  // namespace keel::e2e
