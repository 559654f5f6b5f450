// End-to-end tests of the online path through the `keel` command: materialize
// into the configured store (RocksDB by default, Redis when keel.yaml says
// so), read features back (Feast's response shape), prove parity with the
// offline engine, and fail loudly on bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e_util.h"
#include "table/duckdb_bridge.h"

namespace keel::e2e {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

::testing::AssertionResult Contains(const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected to find \"" << needle << "\" in:\n" << text;
}

constexpr const char* kEntities =
    R"({"user_id": [1, 2, 3, 4, 99, null], "channel": ["app", "web", "app", "web", "app", "web"]})";
constexpr const char* kAt = "2024-03-03 12:00:00";

class OnlineRepo : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = temp_.Path("repo");
    CopyTree(FixtureDir() + "/mini", repo_);
    CommandResult apply = Keel({"apply"});
    ASSERT_EQ(apply.exit_code, 0) << apply.Describe();
  }

  CommandResult Keel(const std::vector<std::string>& args) const { return RunKeel(args, repo_); }

  Json GetJson(const std::string& at = kAt) const {
    CommandResult get = Keel(
        {"features", "get", "--service", "model", "--entities", kEntities, "--at", at, "--json"});
    EXPECT_EQ(get.exit_code, 0) << get.Describe();
    return get.exit_code == 0 ? Json::parse(get.out) : Json();
  }

  // The offline engine's values for the same entities at the same time, by
  // feature name, as JSON values (null for null).
  std::map<std::string, std::vector<Json>> OfflineValues(const std::string& at = kAt) const {
    std::string spine = temp_.Path("spine.csv");
    Json entities = Json::parse(kEntities);
    std::string csv = "user_id,channel,ts\n";
    for (size_t i = 0; i < entities["user_id"].size(); ++i) {
      csv += (entities["user_id"][i].is_null() ? "" : entities["user_id"][i].dump()) + "," +
             entities["channel"][i].get<std::string>() + "," + at + "\n";
    }
    WriteFile(spine, csv);
    std::string out = temp_.Path("offline.parquet");
    CommandResult build = Keel({"dataset", "build", "--spine", spine, "--service", "model",
                                "--spine-time", "ts", "--out", out});
    EXPECT_EQ(build.exit_code, 0) << build.Describe();
    std::map<std::string, std::vector<Json>> values;
    std::unique_ptr<table::DuckDb> duckdb = std::move(table::DuckDb::Open(1).value());
    Result<table::Table> rows =
        duckdb->Query("SELECT * FROM read_parquet(" + table::QuoteSqlString(out) + ")");
    EXPECT_TRUE(rows.ok());
    for (size_t c = 0; c < rows->num_columns(); ++c) {
      const table::Column& column = rows->column(c);
      std::vector<Json>& out_values = values[rows->fields()[c].name];
      for (size_t row = 0; row < rows->num_rows(); ++row) {
        if (!column.IsValid(row)) {
          out_values.push_back(nullptr);
        } else if (column.type() == table::DataType::kDouble) {
          out_values.push_back(column.doubles()[row]);
        } else if (column.type() == table::DataType::kString) {
          out_values.push_back(std::string(column.StringAt(row)));
        } else if (column.type() == table::DataType::kBool) {
          out_values.push_back(column.bools()[row] != 0);
        } else {
          out_values.push_back(column.ints()[row]);
        }
      }
    }
    return values;
  }

  void ExpectOnlineEqualsOffline(const Json& online, const std::string& at = kAt) const {
    std::map<std::string, std::vector<Json>> offline = OfflineValues(at);
    const Json& names = online["metadata"]["feature_names"];
    ASSERT_EQ(names.size(), online["results"].size());
    ASSERT_GT(names.size(), 15u);
    for (size_t f = 0; f < names.size(); ++f) {
      std::string name = names[f].get<std::string>();
      ASSERT_TRUE(offline.count(name)) << name;
      const Json& values = online["results"][f]["values"];
      for (size_t row = 0; row + 1 < values.size(); ++row) {  // the last key is null
        EXPECT_EQ(values[row], offline[name][row]) << name << " row " << row;
      }
    }
  }

  TempDir temp_;
  std::string repo_;
};

TEST_F(OnlineRepo, MaterializedFeaturesEqualTheTrainingSetValues) {
  CommandResult materialize = Keel({"materialize", "--end", kAt});
  ASSERT_EQ(materialize.exit_code, 0) << materialize.Describe();
  EXPECT_TRUE(Contains(materialize.out, "rocksdb"));
  EXPECT_TRUE(fs::exists(repo_ + "/.keel/online"));
  Json online = GetJson();
  ExpectOnlineEqualsOffline(online);
  // Feast's statuses: user 99 is unknown (NOT_FOUND, count 0 as offline), the
  // null key is INVALID, and recent_profile (ttl 20h) is stale for user 4.
  const Json& names = online["metadata"]["feature_names"];
  for (size_t f = 0; f < names.size(); ++f) {
    const Json& statuses = online["results"][f]["statuses"];
    EXPECT_EQ(statuses[4], "NOT_FOUND") << names[f];
    EXPECT_EQ(statuses[5], "INVALID") << names[f];
    if (names[f] == "activity__events_1h") {
      EXPECT_EQ(online["results"][f]["values"][4], 0);
    }
    if (names[f] == "recent_profile__country") {
      EXPECT_EQ(statuses[3], "OUTSIDE_MAX_AGE");
    }
    if (names[f] == "profile__country") {
      EXPECT_EQ(statuses[3], "PRESENT");
    }
  }
  // The human table too.
  CommandResult table = Keel({"features", "get", "--features", "activity:events_24h", "--entities",
                              R"({"user_id": [1, 99]})", "--at", kAt});
  ASSERT_EQ(table.exit_code, 0) << table.Describe();
  EXPECT_TRUE(Contains(table.out, "activity__events_24h"));
  EXPECT_TRUE(Contains(table.out, "NOT_FOUND"));
}

TEST_F(OnlineRepo, MaterializeTwiceChangesNothingAndIncrementalEqualsFull) {
  ASSERT_EQ(Keel({"materialize", "--end", kAt}).exit_code, 0);
  Json once = GetJson();
  ASSERT_EQ(Keel({"materialize", "--end", kAt}).exit_code, 0);
  EXPECT_EQ(GetJson(), once);
  // Start over: to an earlier time, then incrementally on to kAt.
  fs::remove_all(repo_ + "/.keel/online");
  ASSERT_EQ(Keel({"materialize", "--end", "2024-03-02 10:00:00"}).exit_code, 0);
  CommandResult incremental = Keel({"materialize", "--incremental", "--end", kAt, "--json"});
  ASSERT_EQ(incremental.exit_code, 0) << incremental.Describe();
  Json report = Json::parse(incremental.out);
  EXPECT_EQ(report["views"][0]["from"], "2024-03-02 10:00:00");
  EXPECT_EQ(GetJson(), once);
  // And again: nothing new.
  ASSERT_EQ(Keel({"materialize", "--incremental", "--end", kAt}).exit_code, 0);
  EXPECT_EQ(GetJson(), once);
  // Backwards is refused, naming the watermark.
  CommandResult back = Keel({"materialize", "--incremental", "--end", "2024-03-01 00:00:00"});
  EXPECT_NE(back.exit_code, 0);
  EXPECT_TRUE(Contains(back.err, "watermark"));
}

TEST_F(OnlineRepo, ParityWithTheOfflineEngineInMemoryAndInRocksDb) {
  for (const char* store : {"memory", "repo"}) {
    CommandResult parity =
        Keel({"parity", "--spine", "events", "--service", "model", "--spine-time", "ts",
              "--materialize-until", "2024-03-02 12:00:00", "--store", store, "--json"});
    ASSERT_EQ(parity.exit_code, 0) << parity.Describe();
    Json report = Json::parse(parity.out);
    EXPECT_EQ(report["mismatches"], 0) << report.dump(2);
    EXPECT_GT(report["values_compared"].get<int>(), 100);
    EXPECT_GT(report["events_streamed"].get<int>(), 10);
  }
}

TEST_F(OnlineRepo, TwoVersionsOfAViewAreServedSideBySide) {
  ASSERT_EQ(Keel({"materialize", "--end", kAt}).exit_code, 0);
  // A new version of `activity` (a different 1d window hop), materialized too.
  EditFile(repo_ + "/features.yaml", "{name: events, aggregation: count, windows: [1h, 1d]}",
           "{name: events, aggregation: count, windows: [1h, 1d, 2d]}");
  ASSERT_EQ(Keel({"apply"}).exit_code, 0);
  ASSERT_EQ(Keel({"materialize", "--views", "activity", "--end", kAt}).exit_code, 0);
  CommandResult both = Keel({"features", "get", "--features",
                             "activity@1 as v1:events_24h, activity@2 as v2:events_24h",
                             "--entities", R"({"user_id": [3]})", "--at", kAt, "--json"});
  ASSERT_EQ(both.exit_code, 0) << both.Describe();
  Json out = Json::parse(both.out);
  EXPECT_EQ(out["metadata"]["feature_names"], Json({"v1__events_24h", "v2__events_24h"}));
  EXPECT_EQ(out["results"][0]["statuses"][0], "PRESENT");
  EXPECT_EQ(out["results"][1]["statuses"][0], "PRESENT");
}

TEST_F(OnlineRepo, BadRequestsNameTheField) {
  ASSERT_EQ(Keel({"materialize", "--end", kAt}).exit_code, 0);
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases = {
      {{"--features", "activity", "--entities", "{not json"}, "--entities"},
      {{"--features", "activity", "--entities", R"({"user_id": ["x"]})"}, "user_id"},
      {{"--features", "activity", "--entities", R"({"account": [1]})"}, "user_id"},
      {{"--features", "nope", "--entities", R"({"user_id": [1]})"}, "nope"},
      {{"--features", "activity:nope", "--entities", R"({"user_id": [1]})"}, "nope"},
      {{"--features", "activity", "--entities", R"({"user_id": 1})"}, "entities.user_id"},
      {{"--features", "channel_activity", "--entities", R"({"user_id": [1], "channel": []})"},
       "entities.channel"},
      {{"--features", "activity", "--entities", R"({"user_id": [1]})", "--at", "yesterday"},
       "--at"},
  };
  for (const Case& bad : cases) {
    std::vector<std::string> args = {"features", "get"};
    args.insert(args.end(), bad.args.begin(), bad.args.end());
    CommandResult result = Keel(args);
    EXPECT_NE(result.exit_code, 0) << result.Describe();
    EXPECT_EQ(result.signal, 0);
    EXPECT_TRUE(Contains(result.err, bad.message)) << bad.args[3];
  }
  CommandResult unknown = Keel({"materialize", "--views", "nope"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_TRUE(Contains(unknown.err, "nope"));
  WriteFile(repo_ + "/keel.yaml", ReadFile(repo_ + "/keel.yaml") + "online: {type: cassandra}\n");
  CommandResult store = Keel({"materialize"});
  EXPECT_NE(store.exit_code, 0);
  EXPECT_TRUE(Contains(store.err, "cassandra"));
}

TEST_F(OnlineRepo, RedisStoreServesTheSameValues) {
  const char* url = std::getenv("KEEL_TEST_REDIS_URL");
  std::string redis = url != nullptr && *url != '\0' ? url : "redis://127.0.0.1:6390";
  // A project of its own, so runs never see each other's keys.
  std::string config = ReadFile(repo_ + "/keel.yaml");
  config =
      ReplaceOnce(config, "project: mini",
                  "project: mini_" + std::to_string(::getpid()) + "_" +
                      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  WriteFile(repo_ + "/keel.yaml", config + "online: {type: redis, url: \"" + redis + "\"}\n");
  CommandResult materialize = Keel({"materialize", "--end", kAt});
  ASSERT_EQ(materialize.exit_code, 0) << materialize.Describe();
  EXPECT_TRUE(Contains(materialize.out, "redis"));
  ExpectOnlineEqualsOffline(GetJson());
}

}  // namespace
}  // namespace keel::e2e
