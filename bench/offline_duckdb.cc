// The DuckDB peer of the offline benchmarks: the same features written as
// DuckDB SQL (window functions with RANGE frames, ASOF JOIN), run through
// keel's DuckDB bridge in a process of its own so its peak memory is its own.
//
//   bench_offline_duckdb windows --flights FILE.parquet [--out FILE.parquet]
//   bench_offline_duckdb asof --flights FILE.parquet --hourly FILE.parquet [--out ...]
//   bench_offline_duckdb feast --dir DIR --views N --features N --ttl-days N [--out ...]
//
// "read" loads the Parquet files into DuckDB tables; "compute" is the feature
// query, including handing its result over as a keel Table (what a caller of
// DuckDB gets). Prints one "BENCH_RESULT {json}" line (bench_util.h).

#include <cstdio>
#include <memory>
#include <string>

#include "bench_util.h"
#include "table/duckdb_bridge.h"

namespace keel::bench {
namespace {

using table::QuoteSqlString;

// Strictly before each flight: the frame ends one microsecond before its time,
// so flights at the same minute are excluded, as keel's rule demands.
std::string Frame(const std::string& length) {
  return "(PARTITION BY origin ORDER BY date RANGE BETWEEN INTERVAL " + length +
         " PRECEDING AND INTERVAL 1 MICROSECOND PRECEDING)";
}

std::string WindowsSql() {
  return "SELECT id,"
         " avg(delay) OVER " +
         Frame("1 HOUR") +
         " AS mean_delay_1h,"
         " count(*) OVER " +
         Frame("24 HOUR") +
         " AS flights_24h,"
         " avg(delay) OVER " +
         Frame("7 DAY") +
         " AS mean_delay_7d"
         " FROM flights";
}

std::string AsofSql() {
  return "SELECT s.id, h.flights, h.mean_delay FROM flights s"
         " ASOF LEFT JOIN hourly h ON s.origin = h.origin AND s.date > h.ts";
}

// Feast's point-in-time join with keel's strict boundary: per view, the latest
// row strictly before the entity row's time, null when older than the TTL.
// Output columns are named as keel names them ("fv03__f042").
std::string FeastSql(int views, int features, long long ttl_us) {
  std::string select = "SELECT e.id";
  std::string from = " FROM entities e";
  for (int view = 0; view < views; ++view) {
    char name[16];
    std::snprintf(name, sizeof(name), "fv%02d", view);
    std::string alias = std::string("v") + name;
    std::string fresh = "(epoch_us(e.event_timestamp) - epoch_us(" + alias +
                        ".event_timestamp) <= " + std::to_string(ttl_us) + ")";
    for (int feature = 0; feature < features; ++feature) {
      char column[16];
      std::snprintf(column, sizeof(column), "f%03d", feature);
      select += ", CASE WHEN " + fresh + " THEN " + alias + "." + column + " END AS " + name +
                "__" + column;
    }
    from += " ASOF LEFT JOIN " + std::string(name) + " " + alias + " ON e.customer_id = " + alias +
            ".customer_id AND e.event_timestamp > " + alias + ".event_timestamp";
  }
  return select + from;
}

Status Load(table::DuckDb* duckdb, const std::string& name, const std::string& path,
            const std::string& columns = "*") {
  Status status = duckdb->Execute("CREATE TABLE " + name + " AS SELECT " + columns +
                                  " FROM read_parquet(" + QuoteSqlString(path) + ")");
  return status.WithContext("loading " + path);
}

Status Run(const Flags& flags) {
  Stopwatch total;
  ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open());
  Stopwatch read_watch;
  std::string sql;
  if (flags.mode() == "windows") {
    ASSIGN_OR_RETURN(std::string flights, flags.Require("flights"));
    RETURN_IF_ERROR(Load(duckdb.get(), "flights", flights, "id, date, origin, delay"));
    sql = WindowsSql();
  } else if (flags.mode() == "asof") {
    ASSIGN_OR_RETURN(std::string flights, flags.Require("flights"));
    ASSIGN_OR_RETURN(std::string hourly, flags.Require("hourly"));
    RETURN_IF_ERROR(Load(duckdb.get(), "flights", flights, "id, date, origin"));
    RETURN_IF_ERROR(Load(duckdb.get(), "hourly", hourly));
    sql = AsofSql();
  } else if (flags.mode() == "feast") {
    ASSIGN_OR_RETURN(std::string dir, flags.Require("dir"));
    int views = std::stoi(flags.Get("views", "10"));
    int features = std::stoi(flags.Get("features", "100"));
    long long ttl_us = std::stoll(flags.Get("ttl-days", "30")) * 86'400'000'000LL;
    RETURN_IF_ERROR(Load(duckdb.get(), "entities", dir + "/entities.parquet"));
    for (int view = 0; view < views; ++view) {
      char name[16];
      std::snprintf(name, sizeof(name), "fv%02d", view);
      RETURN_IF_ERROR(Load(duckdb.get(), name, dir + "/" + name + ".parquet"));
    }
    sql = FeastSql(views, features, ttl_us);
  } else {
    return InvalidArgument("unknown benchmark '" + flags.mode() + "' (windows, asof, feast)");
  }
  double read_seconds = read_watch.Seconds();

  Stopwatch compute_watch;
  Result<table::Table> result = duckdb->Query(sql);
  if (!result.ok()) return result.status().WithContext(flags.mode() + " query");
  double compute_seconds = compute_watch.Seconds();
  double total_seconds = total.Seconds();

  Report report;
  report.tool = "duckdb";
  report.bench = flags.mode();
  report.seconds = {{"read", read_seconds}, {"compute", compute_seconds}, {"total", total_seconds}};
  report.numbers = {{"rows", static_cast<double>(result->num_rows())},
                    {"peak_rss_before_output_mib", PeakRssMiB()}};
  if (flags.Has("out")) RETURN_IF_ERROR(duckdb->WriteParquet(*result, flags.Get("out")));
  report.Print();
  return Status::Ok();
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) { return keel::bench::Main(argc, argv, keel::bench::Run); }
