// Prepares the benchmarks' inputs once, with DuckDB SQL, into a cache folder:
//
//   flights.parquet / flights.csv  every flight of flights-3m with a row id
//                                  (its row number in the original file):
//                                  id, date, origin, delay
//   hourly.parquet / hourly.csv    per origin and hour: flights, mean_delay,
//                                  stamped ts = the END of the hour (known only
//                                  once the hour is over)
//   feast/fvNN.parquet             the shape of Feast issue #3003: `views` files
//                                  of `features` DOUBLE features + customer_id +
//                                  event_timestamp, seeded pseudo-random values;
//                                  `rows-per-view` rows cycle through the
//                                  entities (25 000 rows: ~37 MB in all, as the
//                                  issue's files)
//   feast/entities.parquet         the entity frame: id, customer_id,
//                                  event_timestamp, label
//   feast/repo/                    a keel repository with one snapshot view
//                                  per file (ttl `ttl-days`)
//
//   bench_prepare --data flights-3m.parquet --dir DIR [--views 10]
//                 [--features 100] [--entities 17000] [--rows-per-view 25000]
//                 [--ttl-days 30] [--force]
//
// Skips the work when DIR/prepared.json records the same inputs. Prints one
// "BENCH_RESULT {json}" line with the files' sizes.

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "bench_util.h"
#include "common/files.h"
#include "table/duckdb_bridge.h"

namespace keel::bench {
namespace {

using table::QuoteSqlString;

// Bump when the generated data changes, so old caches are rebuilt.
constexpr int kFormatVersion = 1;
// The seed of the Feast-shaped data: every value is a hash of (seed, view, row, column).
constexpr int kSeed = 3003;

struct FeastShape {
  int views = 10;
  int features = 100;
  int entities = 17000;
  int rows_per_view = 25000;
  int ttl_days = 30;
};

std::string ViewName(int view) {
  char name[16];
  std::snprintf(name, sizeof(name), "fv%02d", view);
  return name;
}

std::string FeatureName(int feature) {
  char name[16];
  std::snprintf(name, sizeof(name), "f%03d", feature);
  return name;
}

int64_t FileSize(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 ? static_cast<int64_t>(info.st_size) : -1;
}

Status PrepareFlights(table::DuckDb* duckdb, const std::string& data, const std::string& dir) {
  // file_row_number: the row's position in the file, independent of threads.
  RETURN_IF_ERROR(duckdb->Execute(
      "CREATE TABLE flights AS SELECT file_row_number AS id, date, origin, delay FROM "
      "read_parquet(" +
      QuoteSqlString(data) + ", file_row_number = true) ORDER BY id"));
  RETURN_IF_ERROR(duckdb->Execute("COPY (SELECT * FROM flights ORDER BY id) TO " +
                                  QuoteSqlString(dir + "/flights.parquet") + " (FORMAT parquet)"));
  RETURN_IF_ERROR(duckdb->Execute("COPY (SELECT * FROM flights ORDER BY id) TO " +
                                  QuoteSqlString(dir + "/flights.csv") + " (HEADER)"));
  RETURN_IF_ERROR(duckdb->Execute(
      "CREATE TABLE hourly AS SELECT origin, date_trunc('hour', date) + INTERVAL 1 HOUR AS ts,"
      " count(*) AS flights, avg(delay) AS mean_delay FROM flights GROUP BY ALL ORDER BY origin, "
      "ts"));
  RETURN_IF_ERROR(duckdb->Execute("COPY hourly TO " + QuoteSqlString(dir + "/hourly.parquet") +
                                  " (FORMAT parquet)"));
  return duckdb->Execute("COPY hourly TO " + QuoteSqlString(dir + "/hourly.csv") + " (HEADER)");
}

// Values with the low entropy of real feature tables (rounded measurements,
// counters, flags): most columns take 1 000 distinct values, every tenth is a
// 0/1 flag, and 5% of values are missing.
std::string FeatureExpression(int view, int feature) {
  std::string h = "hash(" + std::to_string(kSeed) + ", " + std::to_string(view) + ", e, k, " +
                  std::to_string(feature) + ")";
  std::string value = feature % 10 == 9 ? "CAST((" + h + " >> 7) % 2 AS DOUBLE)"
                                        : "CAST((" + h + " >> 7) % 1000 AS DOUBLE) / 10.0";
  return "CASE WHEN " + h + " % 20 = 0 THEN NULL ELSE " + value + " END AS " + FeatureName(feature);
}

constexpr const char* kStart = "TIMESTAMP '2022-01-01'";
constexpr int64_t kSpanMicros = 180LL * 86'400'000'000LL;

Status PrepareFeast(table::DuckDb* duckdb, const FeastShape& shape, const std::string& dir) {
  std::filesystem::create_directories(dir + "/repo");
  std::string span = std::to_string(kSpanMicros);
  std::string half_span = std::to_string(kSpanMicros / 2);
  // The entity frame: one row per customer, at a time in the second half of
  // the period (so most customers have history), with a label.
  RETURN_IF_ERROR(duckdb->Execute(
      "COPY (SELECT e AS id, 'C' || lpad(CAST(e AS VARCHAR), 6, '0') AS customer_id, " +
      std::string(kStart) + " + to_microseconds(CAST(" + half_span + " + hash(" +
      std::to_string(kSeed) + ", 'spine', e) % " + half_span +
      " AS BIGINT)) AS event_timestamp,"
      " hash(" +
      std::to_string(kSeed) + ", 'label', e) % 2 = 0 AS label FROM range(" +
      std::to_string(shape.entities) + ") t(e) ORDER BY e) TO " +
      QuoteSqlString(dir + "/entities.parquet") + " (FORMAT parquet)"));
  for (int view = 0; view < shape.views; ++view) {
    std::string select = "SELECT 'C' || lpad(CAST(e AS VARCHAR), 6, '0') AS customer_id, " +
                         std::string(kStart) + " + to_microseconds(CAST(hash(" +
                         std::to_string(kSeed) + ", " + std::to_string(view) + ", e, k, 'ts') % " +
                         span + " AS BIGINT)) AS event_timestamp";
    std::string entities = std::to_string(shape.entities);
    for (int feature = 0; feature < shape.features; ++feature) {
      select += ", " + FeatureExpression(view, feature);
    }
    // Row i is the (i / entities)-th row of entity i % entities.
    select += " FROM (SELECT i % " + entities + " AS e, i // " + entities + " AS k FROM range(" +
              std::to_string(shape.rows_per_view) + ") r(i)) ORDER BY event_timestamp, e, k";
    RETURN_IF_ERROR(duckdb->Execute("COPY (" + select + ") TO " +
                                    QuoteSqlString(dir + "/" + ViewName(view) + ".parquet") +
                                    " (FORMAT parquet)"));
  }
  // The keel repository: one snapshot view per file.
  std::string keel_yaml =
      "# Generated by bench_prepare: the shape of Feast issue #3003.\n"
      "project: feast_3003_shape\n"
      "definitions: [features.yaml]\n"
      "variables:\n"
      "  FEAST_DATA: ..\n";
  std::string features_yaml =
      "entities:\n"
      "  - name: customer\n"
      "    keys: {customer_id: string}\n"
      "sources:\n";
  for (int view = 0; view < shape.views; ++view) {
    features_yaml += "  - name: " + ViewName(view) + "_source\n    path: ${FEAST_DATA}/" +
                     ViewName(view) + ".parquet\n    timestamp: event_timestamp\n";
  }
  features_yaml += "snapshot_views:\n";
  for (int view = 0; view < shape.views; ++view) {
    features_yaml +=
        "  - name: " + ViewName(view) + "\n    entity: customer\n    source: " + ViewName(view) +
        "_source\n    keys: [customer_id]\n    ttl: " + std::to_string(shape.ttl_days) +
        "d\n    features: [";
    for (int feature = 0; feature < shape.features; ++feature) {
      features_yaml += (feature == 0 ? "" : ", ") + FeatureName(feature);
    }
    features_yaml += "]\n";
  }
  RETURN_IF_ERROR(WriteFileAtomically(dir + "/repo/keel.yaml", keel_yaml));
  return WriteFileAtomically(dir + "/repo/features.yaml", features_yaml);
}

Status Run(const Flags& flags) {
  Stopwatch watch;
  ASSIGN_OR_RETURN(std::string data, flags.Require("data"));
  ASSIGN_OR_RETURN(std::string dir, flags.Require("dir"));
  if (!FileExists(data)) return NotFound("no flight data at " + data + " (run scripts/setup)");
  FeastShape shape;
  shape.views = std::stoi(flags.Get("views", "10"));
  shape.features = std::stoi(flags.Get("features", "100"));
  shape.entities = std::stoi(flags.Get("entities", "17000"));
  shape.rows_per_view = std::stoi(flags.Get("rows-per-view", "25000"));
  shape.ttl_days = std::stoi(flags.Get("ttl-days", "30"));
  std::filesystem::create_directories(dir);

  nlohmann::json stamp = {{"version", kFormatVersion},
                          {"data", data},
                          {"data_bytes", FileSize(data)},
                          {"views", shape.views},
                          {"features", shape.features},
                          {"entities", shape.entities},
                          {"rows_per_view", shape.rows_per_view},
                          {"ttl_days", shape.ttl_days},
                          {"seed", kSeed}};
  std::string stamp_path = dir + "/prepared.json";
  bool fresh = !flags.Has("force");
  if (fresh) {
    Result<std::string> old = ReadFileToString(stamp_path);
    fresh = old.ok() && *old == stamp.dump();
  }
  bool prepared = false;
  if (!fresh) {
    std::fprintf(stderr, "[bench] preparing inputs in %s\n", dir.c_str());
    RemoveFileQuietly(stamp_path);
    ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open());
    RETURN_IF_ERROR(PrepareFlights(duckdb.get(), data, dir).WithContext("preparing flights"));
    RETURN_IF_ERROR(PrepareFeast(duckdb.get(), shape, dir + "/feast")
                        .WithContext("preparing the Feast #3003 shape"));
    RETURN_IF_ERROR(WriteFileAtomically(stamp_path, stamp.dump()));
    prepared = true;
  }
  int64_t feast_bytes = 0;
  for (int view = 0; view < shape.views; ++view) {
    feast_bytes += FileSize(dir + "/feast/" + ViewName(view) + ".parquet");
  }
  nlohmann::json out = {{"tool", "prepare"},
                        {"prepared", prepared},
                        {"seconds", watch.Seconds()},
                        {"flights_csv_bytes", FileSize(dir + "/flights.csv")},
                        {"feast_parquet_bytes", feast_bytes},
                        {"feast_rows_per_view", shape.rows_per_view},
                        {"feast_entities", shape.entities},
                        {"feast_views", shape.views},
                        {"feast_features", shape.views * shape.features}};
  std::printf("BENCH_RESULT %s\n", out.dump().c_str());
  return Status::Ok();
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) { return keel::bench::Main(argc, argv, keel::bench::Run); }
