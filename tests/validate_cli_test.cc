// keel validate / profile / drift and the checks `dataset build` runs first,
// end to end through the real binary on a small generated repository.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "e2e_util.h"
#include "table/duckdb_bridge.h"

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
  // Makes the source read data/events.parquet, written by DuckDB from
  // `select`, a query over the events CSV named `events`.
  void UseParquet(const std::string& select) {
    Result<std::unique_ptr<table::DuckDb>> duckdb = table::DuckDb::Open(1);
    ASSERT_TRUE(duckdb.ok()) << duckdb.status().message();
    std::string csv = table::QuoteSqlString(dir_.Path("data/events.csv"));
    std::string out = table::QuoteSqlString(dir_.Path("data/events.parquet"));
    Status written =
        (*duckdb)->Execute("COPY (WITH events AS (SELECT * FROM read_csv(" + csv +
                           ", header = true)) " + select + ") TO " + out + " (FORMAT parquet)");
    ASSERT_TRUE(written.ok()) << written.message();
    std::string definitions = ReadFile(dir_.Path("features.yaml"));
    if (definitions.find("data/events.csv") != std::string::npos) {
      EditFile(dir_.Path("features.yaml"), "data/events.csv", "data/events.parquet");
    }
  }
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

// The report entry of `check` on `column`, or null JSON when there is none.
nlohmann::json FindCheck(const nlohmann::json& report, const std::string& check,
                         const std::string& column) {
  for (const nlohmann::json& item : report["checks"]) {
    if (item["check"] == check && item["column"] == column) return item;
  }
  ADD_FAILURE() << "no " << check << " check of " << column << " in " << report.dump(2);
  return nullptr;
}

// Every command that reads a source names the file when it is not Parquet.
TEST_F(ValidateCli, CutOrGarbledParquetNamesTheFile) {
  UseParquet("SELECT * FROM events");
  ASSERT_EQ(Validate().exit_code, 0);
  ASSERT_EQ(Keel({"apply"}).exit_code, 0);
  std::string spine = dir_.Path("spine.csv");
  WriteFile(spine, "ts,user_id\n2024-03-05 12:00:00,1\n");
  std::string out = dir_.Path("train.parquet");
  std::string parquet = ReadFile(dir_.Path("data/events.parquet"));
  std::string garbage(parquet.size(), '\0');
  std::mt19937 random(7);
  for (char& byte : garbage) byte = static_cast<char>(random());
  struct Case {
    std::string name;
    std::string contents;
  };
  for (const Case& item : std::vector<Case>{{"cut in half", parquet.substr(0, parquet.size() / 2)},
                                            {"random bytes", garbage},
                                            {"empty", ""}}) {
    SCOPED_TRACE(item.name);
    WriteFile(dir_.Path("data/events.parquet"), item.contents);
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"validate", "events"},
             {"profile", "events", "--out", dir_.Path("profile.json")},
             {"dataset", "build", "--spine", spine, "--features", "activity", "--out", out}}) {
      SCOPED_TRACE(args[0]);
      CommandResult result = Keel(args);
      EXPECT_NE(result.exit_code, 0) << result.Describe();
      EXPECT_EQ(result.signal, 0) << result.Describe();
      EXPECT_NE(result.err.find("source 'events'"), std::string::npos) << result.Describe();
      EXPECT_NE(result.err.find("data/events.parquet"), std::string::npos) << result.Describe();
    }
    EXPECT_FALSE(Exists(out));
    EXPECT_FALSE(Exists(dir_.Path("profile.json")));
  }
}

TEST_F(ValidateCli, HeaderOnlyCsvFailsOnZeroRows) {
  WriteFile(dir_.Path("data/events.csv"), "ts,user_id,amount,channel\n");
  CommandResult result = Validate();
  EXPECT_EQ(result.exit_code, 4) << result.Describe();
  EXPECT_NE(result.err.find("volume ts (0 rows"), std::string::npos) << result.Describe();
  nlohmann::json report = nlohmann::json::parse(ReadFile(Report()));
  EXPECT_EQ(report["rows"].get<int>(), 0);
  EXPECT_EQ(FindCheck(report, "volume", "ts")["detail"], "no rows at all") << report.dump(2);
  EXPECT_EQ(FindCheck(report, "freshness", "ts")["value"], "no rows") << report.dump(2);
  result = Keel({"profile", "events", "--out", dir_.Path("profile.json")});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_EQ(nlohmann::json::parse(ReadFile(dir_.Path("profile.json")))["rows"].get<int>(), 0);
}

TEST_F(ValidateCli, AllNullColumnIsNamedNeverNaN) {
  std::string reference = dir_.Path("ref.json"), empty = dir_.Path("empty.json");
  UseParquet("SELECT * FROM events");
  ASSERT_EQ(Keel({"profile", "events", "--out", reference}).exit_code, 0);
  UseParquet("SELECT ts, user_id, CAST(NULL AS DOUBLE) AS amount, channel FROM events");

  CommandResult result = Validate();
  EXPECT_EQ(result.exit_code, 4) << result.Describe();
  EXPECT_NE(result.err.find("null_share amount (100% (480 of 480)"), std::string::npos)
      << result.Describe();
  EXPECT_EQ(result.out.find("nan"), std::string::npos) << result.Describe();
  std::string report_text = ReadFile(Report());
  EXPECT_EQ(report_text.find("nan"), std::string::npos) << report_text;
  nlohmann::json report = nlohmann::json::parse(report_text);
  nlohmann::json null_share = FindCheck(report, "null_share", "amount");
  EXPECT_EQ(null_share["measured"].get<double>(), 1.0) << null_share.dump();
  EXPECT_EQ(null_share["detail"], "every value is null") << null_share.dump();
  nlohmann::json range = FindCheck(report, "range", "amount");
  EXPECT_EQ(range["value"], "no values (480 null)") << range.dump();
  EXPECT_EQ(range["outcome"], "pass") << range.dump();

  result = Keel({"profile", "events", "--reference", reference, "--out", empty});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_EQ(result.out.find("nan"), std::string::npos) << result.Describe();
  std::string profile_text = ReadFile(empty);
  EXPECT_EQ(profile_text.find("NaN"), std::string::npos) << profile_text;
  nlohmann::json profile = nlohmann::json::parse(profile_text), amount;
  for (const nlohmann::json& column : profile["columns"]) {
    if (column["name"] == "amount") amount = column;
  }
  ASSERT_TRUE(amount.is_object()) << profile_text;
  EXPECT_EQ(amount["count"].get<int>(), 0) << amount.dump();
  EXPECT_EQ(amount["nulls"].get<int>(), 480) << amount.dump();
  for (const char* key : {"min", "max", "mean"}) {
    ASSERT_TRUE(amount.contains(key)) << key << " in " << amount.dump();
    EXPECT_TRUE(amount[key].is_null()) << key << " in " << amount.dump();
  }

  // Drift either way round: amount has no values on one side, said so.
  for (const auto& [from, to] : {std::pair{reference, empty}, std::pair{empty, reference}}) {
    result = RunKeel({"drift", from, to});
    ASSERT_EQ(result.exit_code, 0) << result.Describe();
    EXPECT_EQ(result.out.find("nan"), std::string::npos) << result.Describe();
    std::string side =
        from == empty ? "no values in the reference profile" : "no values in the current profile";
    EXPECT_NE(result.out.find(side), std::string::npos) << result.Describe();
    result = RunKeel({"drift", from, to, "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.Describe();
    for (const nlohmann::json& item : nlohmann::json::parse(result.out)) {
      if (item["column"] != "amount") continue;
      EXPECT_EQ(item["default"], side) << item.dump();
      EXPECT_FALSE(item["drifted"].get<bool>()) << item.dump();
      EXPECT_FALSE(item.contains("psi")) << item.dump();
    }
  }
  // validate --reference with the all-null profile on data with values.
  UseParquet("SELECT * FROM events");
  result = Validate({"--reference", empty});
  EXPECT_EQ(result.out.find("nan"), std::string::npos) << result.Describe();
  nlohmann::json drift = FindCheck(nlohmann::json::parse(ReadFile(Report())), "drift", "amount");
  EXPECT_EQ(drift["outcome"], "warn") << drift.dump();
  EXPECT_EQ(drift["detail"], "the reference has no values to compare with") << drift.dump();
}

TEST_F(ValidateCli, ChangedTypesNameColumnAndBothTypes) {
  std::string ids = EventsCsv();
  for (size_t at = ids.find('\n'); at != std::string::npos; at = ids.find('\n', at + 1)) {
    size_t comma = ids.find(',', at);
    if (comma != std::string::npos) ids.insert(comma + 1, "u");
  }
  WriteFile(dir_.Path("data/events.csv"), ids);
  CommandResult result = Validate();
  EXPECT_EQ(result.exit_code, 4) << result.Describe();
  EXPECT_NE(result.err.find("schema user_id (string, int64"), std::string::npos)
      << result.Describe();
  nlohmann::json schema = FindCheck(nlohmann::json::parse(ReadFile(Report())), "schema", "user_id");
  EXPECT_EQ(schema["detail"], "column 'user_id' changed type: string, expected int64");

  // One unreadable timestamp makes the whole column text: the time-based
  // checks say so instead of reading strings as times.
  WriteFile(dir_.Path("data/events.csv"), EventsCsv() + "not a time,1,12.5,web\n");
  result = Validate();
  EXPECT_EQ(result.exit_code, 4) << result.Describe();
  EXPECT_EQ(result.signal, 0) << result.Describe();
  EXPECT_NE(result.err.find("schema ts (string, timestamp"), std::string::npos)
      << result.Describe();
  nlohmann::json report = nlohmann::json::parse(ReadFile(Report()));
  for (const char* check : {"volume", "freshness"}) {
    nlohmann::json item = FindCheck(report, check, "ts");
    EXPECT_EQ(item["detail"], "column 'ts' is string, not a timestamp") << item.dump();
  }
}

TEST_F(ValidateCli, ReferenceWithOtherColumnsIsNamed) {
  std::string reference = dir_.Path("ref.json"), current = dir_.Path("cur.json");
  ASSERT_EQ(Keel({"profile", "events", "--out", reference}).exit_code, 0);
  // channel dropped, amount now text.
  UseParquet("SELECT ts, user_id, 'x' || amount AS amount FROM events");
  EditFile(dir_.Path("features.yaml"), "      - {check: values, column: channel, in: [web, app]}\n",
           "");
  CommandResult result = Validate({"--reference", reference});
  EXPECT_EQ(result.exit_code, 4) << result.Describe();
  EXPECT_NE(result.err.find("drift channel (missing, column present"), std::string::npos)
      << result.Describe();
  EXPECT_NE(result.err.find("drift amount (string, double"), std::string::npos)
      << result.Describe();

  result = Keel({"profile", "events", "--reference", reference, "--out", current});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  result = RunKeel({"drift", reference, current, "--fail-on-drift"});
  EXPECT_EQ(result.exit_code, 4) << result.Describe();
  EXPECT_NE(result.out.find("missing in the current profile"), std::string::npos)
      << result.Describe();
  EXPECT_NE(result.out.find("type changed from double to string"), std::string::npos)
      << result.Describe();
  EXPECT_NE(result.err.find("2 columns drifted"), std::string::npos) << result.Describe();
}

TEST_F(ValidateCli, MalformedProfileNamesTheFile) {
  std::string good = dir_.Path("good.json"), bad = dir_.Path("bad.json");
  ASSERT_EQ(Keel({"profile", "events", "--out", good}).exit_code, 0);
  std::string profile = ReadFile(good);
  struct Case {
    std::string name;
    std::string contents;
    std::string needle;
  };
  for (const Case& item : std::vector<Case>{
           {"not json", "rows,columns\n1,2\n", "not valid JSON"},
           {"empty", "", "not valid JSON"},
           {"truncated", profile.substr(0, profile.size() / 2), "not valid JSON"},
           {"other version", ReplaceOnce(profile, "keel.profile.v1", "keel.profile.v9"),
            "'keel.profile.v9' (expected keel.profile.v1)"},
       }) {
    SCOPED_TRACE(item.name);
    WriteFile(bad, item.contents);
    for (const auto& [args, role] : std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"validate", "events", "--repo", dir_.path(), "--reference", bad}, "reference"},
             {{"profile", "events", "--repo", dir_.path(), "--reference", bad, "--out",
               dir_.Path("p.json")},
              "reference"},
             {{"drift", bad, good}, "reference"},
             {{"drift", good, bad}, "current"}}) {
      SCOPED_TRACE(args[0]);
      CommandResult result = RunKeel(args);
      EXPECT_EQ(result.exit_code, 2) << result.Describe();
      EXPECT_NE(result.err.find(role + " profile " + bad + ": "), std::string::npos)
          << result.Describe();
      EXPECT_NE(result.err.find(item.needle), std::string::npos) << result.Describe();
    }
  }
}

}  // namespace
}  // namespace keel::e2e
