// keel validate / profile / drift and the checks `dataset build` runs first,
// end to end through the real binary on a small generated repository.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "e2e_util.h"

namespace keel::e2e {
namespace {

// Events over ten days in March 2024, 48 a day; `amount` grows with `shift`.
std::string EventsCsv(double shift = 0.0, int days = 10) {
  std::string csv = "ts,user_id,amount,channel\n";
  for (int day = 0; day < days; ++day) {
    for (int i = 0; i < 48; ++i) {
      char line[128];
      std::snprintf(line, sizeof(line), "2024-03-%02d %02d:%02d:00,%d,%.2f,%s\n", day + 1, i / 2,
                    (i % 2) * 30, i % 7, 10.0 + (i * 37 % 50) + shift, i % 3 ? "web" : "app");
      csv += line;
    }
  }
  return csv;
}

constexpr char kDefinitions[] = R"(entities:
  - name: user
    keys: {user_id: int64}
sources:
  - name: events
    path: data/events.csv
    timestamp: ts
    checks:
      - {check: schema, columns: {ts: timestamp, user_id: int64, amount: double, channel: string}}
      - {check: not_null, columns: [ts, user_id]}
      - {check: null_share, column: amount, max: 0.1}
      - {check: range, column: amount, min: 0, max: 1000}
      - {check: values, column: channel, in: [web, app]}
      - {check: unique, columns: [user_id]}
      - {check: volume, per: day, min: 10}
      - {check: freshness, max_age: 2d, severity: warn}
window_views:
  - name: activity
    entity: user
    source: events
    features:
      - {name: amount, aggregation: sum, expression: amount, windows: [1d]}
)";

class ValidateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_.Path("keel.yaml"), "project: checks\ndefinitions: [features.yaml]\n");
    WriteFile(dir_.Path("features.yaml"), kDefinitions);
    std::filesystem::create_directories(dir_.Path("data"));
    WriteFile(dir_.Path("data/events.csv"), EventsCsv());
  }
  CommandResult Keel(std::vector<std::string> args) {
    args.push_back("--repo");
    args.push_back(dir_.path());
    return RunKeel(args);
  }
  std::string Report() { return dir_.Path("report.json"); }
  CommandResult Validate(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"validate", "events", "--report", Report()};
    if (std::find(extra.begin(), extra.end(), "--as-of") == extra.end()) {
      extra.push_back("--as-of");
      extra.push_back("2024-03-11T00:00:00");
    }
    args.insert(args.end(), extra.begin(), extra.end());
    return Keel(args);
  }
  TempDir dir_;
};

TEST_F(ValidateCli, CleanDataPassesAndWritesAReport) {
  CommandResult result = Validate();
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_NE(result.out.find("null_share"), std::string::npos);
  nlohmann::json report = nlohmann::json::parse(ReadFile(Report()));
  EXPECT_TRUE(report["passed"].get<bool>());
  EXPECT_EQ(report["rows"].get<int>(), 480);
  for (const auto& check : report["checks"]) EXPECT_EQ(check["outcome"], "pass") << check.dump();
}

TEST_F(ValidateCli, EachBrokenBatchFailsLoud) {
  struct Case {
    std::string name;
    std::string csv;
    std::string needle;  // in stderr
  };
  std::string base = EventsCsv();
  std::string twice = base + base.substr(base.find('\n') + 1);  // the same events ingested twice
  std::string nulls = "ts,user_id,amount,channel\n";
  for (int day = 0; day < 10; ++day) {
    for (int i = 0; i < 48; ++i) {
      char line[96];
      std::snprintf(line, sizeof(line), "2024-03-%02d %02d:%02d:00,%d,%s,web\n", day + 1, i / 2,
                    (i % 2) * 30, i % 7, day >= 5 ? "" : "12.5");  // all null after midnight
      nulls += line;
    }
  }
  std::string typed = "ts,user_id,amount,channel\n2024-03-01 00:00:00,u1,1.0,web\n";
  for (const Case& item : std::vector<Case>{
           {"twice", twice, "unique"},
           {"all null after midnight", nulls, "null_share amount"},
           {"int became string", typed, "schema user_id"},
           {"0 new rows", EventsCsv(0.0, 8), "volume"},  // two days short of --as-of
           {"out of range", EventsCsv(2000.0), "range amount"},
       }) {
    SCOPED_TRACE(item.name);
    WriteFile(dir_.Path("data/events.csv"), item.csv);
    CommandResult result = Validate();
    EXPECT_EQ(result.exit_code, 4) << result.Describe();
    EXPECT_NE(result.err.find("failed"), std::string::npos) << result.Describe();
    EXPECT_NE(result.err.find(item.needle), std::string::npos) << result.Describe();
    nlohmann::json report = nlohmann::json::parse(ReadFile(Report()));
    EXPECT_FALSE(report["passed"].get<bool>());
  }
}

TEST_F(ValidateCli, StaleByThreeDaysWarnsOrFailsBySeverity) {
  CommandResult result = Validate({"--as-of", "2024-03-14T00:00:00"});
  // volume also fails (three days of 0 rows), freshness is a warning.
  EXPECT_EQ(result.exit_code, 4) << result.Describe();
  EXPECT_NE(result.out.find("stale by"), std::string::npos) << result.Describe();
  EditFile(dir_.Path("features.yaml"), "      - {check: volume, per: day, min: 10}\n", "");
  EditFile(dir_.Path("features.yaml"), "max_age: 2d, severity: warn}", "max_age: 2d}");
  result = Validate({"--as-of", "2024-03-14T00:00:00"});
  EXPECT_EQ(result.exit_code, 4) << result.Describe();
  EXPECT_NE(result.err.find("freshness"), std::string::npos) << result.Describe();
}

TEST_F(ValidateCli, BadFilesGetClearMessages) {
  struct Case {
    std::string name;
    std::string path;
    std::string contents;
    std::string needle;
  };
  for (const Case& item : std::vector<Case>{
           {"empty csv", "data/events.csv", "", "events"},
           {"truncated parquet", "data/events.parquet", std::string("PAR1\x15\x04", 6), "events"},
           {"corrupt parquet", "data/events.parquet",
            std::string("PAR1") + std::string(200, 'x') + "PAR1", "events"},
       }) {
    SCOPED_TRACE(item.name);
    WriteFile(dir_.Path("features.yaml"), kDefinitions);
    if (item.path != "data/events.csv") {
      EditFile(dir_.Path("features.yaml"), "data/events.csv", item.path);
    }
    WriteFile(dir_.Path(item.path), item.contents);
    CommandResult result = Validate();
    EXPECT_NE(result.exit_code, 0) << result.Describe();
    EXPECT_EQ(result.signal, 0) << result.Describe();
    EXPECT_NE(result.err.find(item.needle), std::string::npos) << result.Describe();
    EXPECT_NE(result.err.find(item.path.substr(5)), std::string::npos) << result.Describe();
  }
}

TEST_F(ValidateCli, BadCheckDefinitionsNameFileLineAndField) {
  EditFile(dir_.Path("features.yaml"), "{check: null_share, column: amount, max: 0.1}",
           "{check: null_share, column: amount, max: lots}");
  CommandResult result = Keel({"apply"});
  EXPECT_EQ(result.exit_code, 2) << result.Describe();
  EXPECT_NE(result.err.find("features.yaml:11:"), std::string::npos) << result.Describe();
  EXPECT_NE(result.err.find("checks[2].max"), std::string::npos) << result.Describe();
  WriteFile(dir_.Path("features.yaml"), kDefinitions);
  EditFile(dir_.Path("features.yaml"), "{check: unique,", "{check: uniq,");
  result = Keel({"apply"});
  EXPECT_EQ(result.exit_code, 2) << result.Describe();
  EXPECT_NE(result.err.find("unknown check 'uniq'"), std::string::npos) << result.Describe();
}

TEST_F(ValidateCli, DatasetBuildRefusesFailedChecksUnlessAllowed) {
  ASSERT_EQ(Keel({"apply"}).exit_code, 0);
  std::string spine = dir_.Path("spine.csv");
  WriteFile(spine, "ts,user_id\n2024-03-05 12:00:00,1\n2024-03-06 12:00:00,2\n");
  std::string out = dir_.Path("train.parquet");
  CommandResult result =
      Keel({"dataset", "build", "--spine", spine, "--features", "activity", "--out", out});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_FALSE(Exists(out + ".checks.json"));

  std::string base = EventsCsv();
  WriteFile(dir_.Path("data/events.csv"), base + base.substr(base.find('\n') + 1));
  std::filesystem::remove(out);
  result = Keel({"dataset", "build", "--spine", spine, "--features", "activity", "--out", out});
  EXPECT_EQ(result.exit_code, 4) << result.Describe();
  EXPECT_NE(result.err.find("refusing to build"), std::string::npos) << result.Describe();
  EXPECT_NE(result.err.find("unique"), std::string::npos) << result.Describe();
  EXPECT_FALSE(Exists(out));

  result = Keel({"dataset", "build", "--spine", spine, "--features", "activity", "--out", out,
                 "--allow-failed-checks", "replayed batch, deduplicated downstream"});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  ASSERT_TRUE(Exists(out + ".checks.json"));
  nlohmann::json record = nlohmann::json::parse(ReadFile(out + ".checks.json"));
  EXPECT_EQ(record["allowed_failed_checks"], "replayed batch, deduplicated downstream");
  EXPECT_GT(record["checks"][0]["failed"].get<int>(), 0);
}

TEST_F(ValidateCli, ProfileAndDriftShowAShift) {
  std::string reference = dir_.Path("ref.json"), same = dir_.Path("same.json"),
              shifted = dir_.Path("shifted.json");
  CommandResult result =
      Keel({"profile", "events", "--where", "ts < '2024-03-06'", "--out", reference});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  nlohmann::json profile = nlohmann::json::parse(ReadFile(reference));
  EXPECT_EQ(profile["rows"].get<int>(), 240);
  result = Keel({"profile", "events", "--where", "ts >= '2024-03-06'", "--reference", reference,
                 "--out", same});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  result = RunKeel({"drift", reference, same, "--fail-on-drift"});
  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  WriteFile(dir_.Path("data/events.csv"), EventsCsv(30.0));
  result = Keel({"profile", "events", "--reference", reference, "--out", shifted});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  result = RunKeel({"drift", reference, shifted, "--fail-on-drift"});
  EXPECT_EQ(result.exit_code, 4) << result.Describe();
  EXPECT_NE(result.out.find("DRIFT"), std::string::npos) << result.Describe();
  // validate --reference adds a drift check over every column.
  result = Validate({"--reference", reference});
  EXPECT_EQ(result.exit_code, 4) << result.Describe();
  EXPECT_NE(result.err.find("drift"), std::string::npos) << result.Describe();
  // A broken reference profile is named.
  WriteFile(reference, "{\"format\": \"keel.profile.v1\"}");
  result = Validate({"--reference", reference});
  EXPECT_EQ(result.exit_code, 2) << result.Describe();
  EXPECT_NE(result.err.find("ref.json"), std::string::npos) << result.Describe();
}

}  // namespace
}  // namespace keel::e2e
