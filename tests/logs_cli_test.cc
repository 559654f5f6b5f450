// `keel logs export` end to end: a prediction log written with the library
// (serve/prediction_log.h) is exported by the real binary and read back with
// DuckDB; bad arguments fail with a named error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "e2e_util.h"
#include "serve/prediction_log.h"
#include "table/duckdb_bridge.h"

namespace keel::e2e {
namespace {

using serve::PredictionLog;
using serve::PredictionRecord;

// 2024-03-01 00:00:00 UTC.
constexpr Timestamp kBase = 1'709'251'200'000'000;

PredictionRecord MakeRecord(int index) {
  static auto delay_names = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"dep_hour", "distance", "origin_delay_7d"});
  static auto fare_names =
      std::make_shared<const std::vector<std::string>>(std::vector<std::string>{"km"});
  PredictionRecord record;
  record.request_id = "r" + std::to_string(index);
  record.time = kBase + index * kMicrosPerMinute;  // one a minute
  if (index % 4 == 3) {
    record.model = "fare";
    record.version = 1;
    record.feature_names = fare_names;
    record.features = {index * 1.5};
  } else {
    record.model = "delay";
    record.version = 2 + index % 2;
    record.variant = index % 2 == 0 ? "production" : "canary";
    record.feature_names = delay_names;
    // Values that text could round: an inexact decimal, -0, a denormal, infinity.
    double third = index % 5 == 0   ? std::nan("")
                   : index % 5 == 1 ? index * 0.1
                   : index % 5 == 2 ? -0.0
                   : index % 5 == 3 ? 4.9e-324 * index
                                    : std::numeric_limits<double>::infinity();
    record.features = {static_cast<double>(index % 24), 100.0 + index / 3.0, third};
  }
  record.entity_keys_json = R"({"origin":"SFO","flight":)" + std::to_string(index) + "}";
  record.output = index / 100.0;
  record.latency_us = 500 + index;
  record.fallback = index % 7 == 0 ? "baseline" : "";
  return record;
}

// Writes records [first, first + count) with one writer.
void WriteLog(const std::string& dir, int first, int count) {
  Result<std::unique_ptr<PredictionLog>> log = PredictionLog::Open(dir);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  for (int index = first; index < first + count; ++index) {
    ASSERT_TRUE((*log)->Append(MakeRecord(index)));
  }
  ASSERT_TRUE((*log)->Close().ok());
}

table::Table Query(const std::string& sql) {
  Result<std::unique_ptr<table::DuckDb>> duckdb = table::DuckDb::Open(1);
  EXPECT_TRUE(duckdb.ok());
  Result<table::Table> result = (*duckdb)->Query(sql);
  EXPECT_TRUE(result.ok()) << result.status().ToString() << "\n" << sql;
  return result.ok() ? std::move(result).value() : table::Table();
}

class LogsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = temp_.Path("repo");
    ASSERT_EQ(RunKeel({"init", repo_}).exit_code, 0);
    log_dir_ = repo_ + "/.keel/predictions";
    WriteLog(log_dir_, 0, 60);   // 00:00 .. 00:59, first segment
    WriteLog(log_dir_, 60, 60);  // 01:00 .. 01:59, second segment
    // A crash tore the last segment's tail.
    std::string last = serve::ListPredictionLogSegments(log_dir_)->back();
    std::ofstream(last, std::ios::app) << "\x4b\x50\x4c\x47torn";
  }

  TempDir temp_;
  std::string repo_;
  std::string log_dir_;
};

TEST_F(LogsCli, ExportsATimeRangeWithEveryField) {
  std::string out = temp_.Path("range.parquet");
  CommandResult result = RunKeel({"logs", "export", "--repo", repo_, "--since", "2024-03-01 00:30",
                                  "--until", "2024-03-01T01:30:00Z", "--out", out, "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  nlohmann::json summary = nlohmann::json::parse(result.out);
  EXPECT_EQ(summary["records"], 60);
  EXPECT_EQ(summary["segments"], 2);
  EXPECT_EQ(summary["outside_range"], 60);
  EXPECT_EQ(summary["damaged_bytes"], 8);
  EXPECT_NE(result.err.find("skipped damage"), std::string::npos) << result.err;
  EXPECT_EQ(ListDir(temp_.path()), (std::vector<std::string>{"range.parquet", "repo"}));

  std::string file = table::QuoteSqlString(out);
  table::Table schema =
      Query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM " + file + ")");
  std::vector<std::string> columns;
  for (size_t row = 0; row < schema.num_rows(); ++row) {
    columns.push_back(std::string(schema.column(0).StringAt(row)) + " " +
                      std::string(schema.column(1).StringAt(row)));
  }
  EXPECT_EQ(columns, (std::vector<std::string>{
                         "request_id VARCHAR", "time TIMESTAMP", "model VARCHAR", "version BIGINT",
                         "variant VARCHAR", "entity_keys VARCHAR", "features MAP(VARCHAR, DOUBLE)",
                         "output DOUBLE", "latency_us BIGINT", "fallback VARCHAR"}));

  table::Table rows = Query(
      "SELECT request_id, time, model, version, variant, entity_keys, output, latency_us, "
      "fallback, cardinality(features) AS n, "
      "map_extract_value(features, 'dep_hour') AS dep_hour, "
      "map_extract_value(features, 'distance') AS distance, "
      "map_extract_value(features, 'origin_delay_7d') AS origin_delay_7d, "
      "map_extract_value(features, 'km') AS km, "
      "array_to_string(map_keys(features), ',') AS names FROM " +
      file);
  ASSERT_EQ(rows.num_rows(), 60u);
  auto text = [&](const char* column, size_t row) {
    const table::Column& values = **rows.GetColumn(column);
    return values.IsValid(row) ? std::string(values.StringAt(row)) : std::string("<null>");
  };
  auto number = [&](const char* column, size_t row) -> std::optional<double> {
    const table::Column& values = **rows.GetColumn(column);
    if (!values.IsValid(row)) return std::nullopt;
    return values.NumericAt(row);
  };
  for (size_t row = 0; row < rows.num_rows(); ++row) {
    int index = 30 + static_cast<int>(row);  // in time order
    PredictionRecord want = MakeRecord(index);
    SCOPED_TRACE(want.request_id);
    EXPECT_EQ(text("request_id", row), want.request_id);
    EXPECT_EQ((*rows.GetColumn("time"))->ints()[row], want.time);
    EXPECT_EQ(text("model", row), want.model);
    EXPECT_EQ(number("version", row), want.version);
    EXPECT_EQ(text("variant", row), want.variant.empty() ? "<null>" : want.variant);
    EXPECT_EQ(text("entity_keys", row), want.entity_keys_json);
    EXPECT_EQ(number("output", row), want.output);
    EXPECT_EQ(number("latency_us", row), want.latency_us);
    EXPECT_EQ(text("fallback", row), want.fallback.empty() ? "<null>" : want.fallback);
    EXPECT_EQ(number("n", row), static_cast<double>(want.features.size()));
    std::string names;
    for (const std::string& name : *want.feature_names) names += (names.empty() ? "" : ",") + name;
    EXPECT_EQ(text("names", row), names);  // in the model's order
    for (size_t position = 0; position < want.features.size(); ++position) {
      const std::string& name = (*want.feature_names)[position];
      std::optional<double> got = number(name.c_str(), row);
      if (std::isnan(want.features[position])) {
        EXPECT_FALSE(got.has_value()) << name;  // missing -> NULL
      } else {
        ASSERT_TRUE(got.has_value()) << name;
        // Bit for bit (-0 included).
        EXPECT_EQ(std::memcmp(&*got, &want.features[position], sizeof(double)), 0)
            << name << ": " << *got << " vs " << want.features[position];
      }
    }
  }
}

TEST_F(LogsCli, ExportsOneModelFromAnExplicitFolder) {
  std::string out = temp_.Path("fare.parquet");
  CommandResult result =
      RunKeel({"logs", "export", "--dir", log_dir_, "--model", "fare", "--out", out});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_NE(result.out.find("30 records"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("8 damaged bytes skipped in 1 places"), std::string::npos)
      << result.out;
  table::Table rows = Query(
      "SELECT count(*) AS n, count(DISTINCT model) AS models, "
      "sum(map_extract_value(features, 'km')) AS km FROM " +
      table::QuoteSqlString(out));
  EXPECT_EQ(rows.column(0).NumericAt(0), 30);
  EXPECT_EQ(rows.column(1).NumericAt(0), 1);
  double km = 0;
  for (int index = 3; index < 120; index += 4) km += index * 1.5;
  EXPECT_EQ(rows.column(2).NumericAt(0), km);
}

TEST_F(LogsCli, AnEmptyRangeWritesAnEmptyFileWithTheSchema) {
  std::string out = temp_.Path("empty.parquet");
  CommandResult result = RunKeel({"logs", "export", "--repo", repo_, "--since", "2030-01-01",
                                  "--until", "2030-01-02", "--out", out});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  table::Table rows =
      Query("SELECT count(*) AS n, count(features) AS f FROM " + table::QuoteSqlString(out));
  EXPECT_EQ(rows.column(0).NumericAt(0), 0);
}

TEST_F(LogsCli, RepeatedFeatureNamesGetDistinctKeys) {
  std::string dir = temp_.Path("dup");
  Result<std::unique_ptr<PredictionLog>> log = PredictionLog::Open(dir);
  ASSERT_TRUE(log.ok());
  PredictionRecord record = MakeRecord(1);
  record.feature_names =
      std::make_shared<const std::vector<std::string>>(std::vector<std::string>{"x", "x", "y"});
  record.features = {1, 2, 3};
  ASSERT_TRUE((*log)->Append(std::move(record)));
  ASSERT_TRUE((*log)->Close().ok());
  std::string out = temp_.Path("dup.parquet");
  CommandResult result = RunKeel({"logs", "export", "--dir", dir, "--out", out});
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  table::Table rows =
      Query("SELECT CAST(features AS VARCHAR) AS f FROM " + table::QuoteSqlString(out));
  ASSERT_EQ(rows.num_rows(), 1u);
  EXPECT_EQ(rows.column(0).StringAt(0), "{x=1.0, x#2=2.0, y=3.0}");
}

TEST_F(LogsCli, BadArgumentsFailWithANamedError) {
  std::string out = temp_.Path("bad.parquet");
  CommandResult bad_since =
      RunKeel({"logs", "export", "--repo", repo_, "--since", "yesterday", "--out", out});
  EXPECT_EQ(bad_since.exit_code, 2) << bad_since.Describe();
  EXPECT_NE(bad_since.err.find("--since"), std::string::npos) << bad_since.err;

  CommandResult bad_until =
      RunKeel({"logs", "export", "--repo", repo_, "--until", "2024-13-45", "--out", out});
  EXPECT_EQ(bad_until.exit_code, 2) << bad_until.Describe();
  EXPECT_NE(bad_until.err.find("--until"), std::string::npos) << bad_until.err;

  CommandResult reversed = RunKeel({"logs", "export", "--repo", repo_, "--since", "2024-03-02",
                                    "--until", "2024-03-01", "--out", out});
  EXPECT_EQ(reversed.exit_code, 2) << reversed.Describe();
  EXPECT_NE(reversed.err.find("is not before --until"), std::string::npos) << reversed.err;

  CommandResult missing = RunKeel({"logs", "export", "--dir", temp_.Path("nowhere"), "--out", out});
  EXPECT_EQ(missing.exit_code, 3) << missing.Describe();
  EXPECT_NE(missing.err.find("nowhere does not exist"), std::string::npos) << missing.err;

  CommandResult no_repo = RunKeel({"logs", "export", "--out", out}, temp_.path());
  EXPECT_NE(no_repo.exit_code, 0) << no_repo.Describe();
  EXPECT_NE(no_repo.err.find("--dir"), std::string::npos) << no_repo.err;

  CommandResult no_out = RunKeel({"logs", "export", "--repo", repo_});
  EXPECT_NE(no_out.exit_code, 0) << no_out.Describe();
  EXPECT_NE(no_out.err.find("--out"), std::string::npos) << no_out.err;

  EXPECT_FALSE(Exists(out));
}

}  // namespace
}  // namespace keel::e2e
