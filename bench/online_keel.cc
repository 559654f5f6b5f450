// bench_online: keel's online path on the flights repository (issue 4's
// targets), every figure measured in this one process:
//   lookup   1 entity x 3 views (11 features) read in-process, p50/p99/p999,
//            with RocksDB and with Redis; beside the Redis figure, a bare
//            GET round trip of a value of the same size on the same server
//            (what redis-benchmark measures), so the overhead keel adds is a
//            difference measured in the same run;
//   ingest   flights events applied through the online kernels (batches of
//            --batch events in time order, RocksDB; one run per batch size
//            given, each on its own consecutive share of the days), events/s.
//
// Usage: bench_online --repo examples/flights [--redis redis://127.0.0.1:6390]
//                     [--lookups 20000] [--batch 2000,10000] [--ingest-days 30]
//                     [--only lookup|ingest] [--store DIR]
//        bench_online --handler-repo DIR [--handler-body JSON] [--lookups 20000]
// The second form times keel serve's /v1/features handler in-process
// (serve::FeatureLookup::Lookup: JSON request in, JSON answer out, no HTTP)
// on a repository that was applied and materialized (bench/serve_bench.py's,
// under .cache/bench/serve/repo: 1 entity x 50 features from Redis).
// --store keeps the RocksDB store in DIR and materializes only when DIR holds
// no watermark yet (for profiling the lookups alone; the ingest runs change it).
// The repository must have been applied (keel apply). Prints a summary and a
// last line of JSON for bench/run.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "bench_util.h"
#include "features/catalog.h"
#include "features/online.h"
#include "serve/feature_resolver.h"
#include "serve/lookup.h"
#include "table/duckdb_bridge.h"

namespace keel::bench {
namespace {

using features::OnlineView;
using table::Column;
using table::DataType;
using table::Table;

// CPU time of the calling thread.
double ThreadCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

struct Percentiles {
  double p50 = 0, p99 = 0, p999 = 0;
};

Percentiles Summarise(std::vector<double> micros) {
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) { return micros[static_cast<size_t>(q * (micros.size() - 1))]; };
  return {at(0.5), at(0.99), at(0.999)};
}

nlohmann::json ToJson(const Percentiles& p) {
  return {{"p50_us", p.p50}, {"p99_us", p.p99}, {"p999_us", p.p999}};
}

struct LookupSetup {
  std::vector<features::ResolvedUse> uses;
  std::vector<std::shared_ptr<const OnlineView>> views;
  std::vector<std::string> airports;  // the busiest origins
};

Result<LookupSetup> Setup(features::Catalog* catalog, table::DuckDb* duckdb,
                          const features::RepoConfig& config) {
  LookupSetup setup;
  ASSIGN_OR_RETURN(
      std::vector<features::FeatureUse> uses,
      features::ParseFeatureUses("origin_delay, destination_delay:mean_delay_1h|flights_1h, "
                                 "airport_info(iata=origin) as origin"));
  Table entities;
  RETURN_IF_ERROR(entities.AddColumn("origin", Column(DataType::kString, 0)));
  RETURN_IF_ERROR(entities.AddColumn("destination", Column(DataType::kString, 0)));
  for (const features::FeatureUse& use : uses) {
    ASSIGN_OR_RETURN(features::ViewVersionInfo info, catalog->Resolve(use.view, use.version));
    ASSIGN_OR_RETURN(features::ResolvedUse resolved,
                     features::ResolveUse(use, info.definition, info.version, entities.fields()));
    ASSIGN_OR_RETURN(std::shared_ptr<const OnlineView> view,
                     OnlineView::Make(info.definition, info.version));
    setup.uses.push_back(std::move(resolved));
    setup.views.push_back(std::move(view));
  }
  (void)config;
  ASSIGN_OR_RETURN(Table top, duckdb->Query("SELECT origin FROM flights GROUP BY origin "
                                            "ORDER BY count(*) DESC LIMIT 100"));
  for (size_t row = 0; row < top.num_rows(); ++row) {
    setup.airports.emplace_back(top.column(0).StringAt(row));
  }
  return setup;
}

Result<Percentiles> MeasureLookups(store::OnlineStore* store, const LookupSetup& setup,
                                   Timestamp at, int lookups, size_t* features_read) {
  std::mt19937_64 random(42);
  std::vector<double> micros;
  micros.reserve(static_cast<size_t>(lookups));
  features::OnlineFeatures out;
  for (int i = -lookups / 10; i < lookups; ++i) {  // the first tenth warms up
    Table entities;
    Column origin(DataType::kString, 0), destination(DataType::kString, 0);
    origin.AppendString(setup.airports[random() % setup.airports.size()]);
    destination.AppendString(setup.airports[random() % setup.airports.size()]);
    RETURN_IF_ERROR(entities.AddColumn("origin", std::move(origin)));
    RETURN_IF_ERROR(entities.AddColumn("destination", std::move(destination)));
    Stopwatch watch;
    RETURN_IF_ERROR(
        features::ReadOnlineFeatures(store, entities, setup.uses, setup.views, at, &out));
    double elapsed = watch.Seconds() * 1e6;
    if (i >= 0) micros.push_back(elapsed);
  }
  *features_read = out.names.size();
  return Summarise(micros);
}

// A bare GET round trip through hiredis, of a value as large as a stored one.
Result<Percentiles> MeasureBareGet(const std::string& url, size_t value_size, int gets) {
  std::string host = "127.0.0.1";
  int port = 6390;
  std::string rest = url.substr(url.find("//") + 2);
  host = rest.substr(0, rest.find(':'));
  port = std::stoi(rest.substr(rest.find(':') + 1));
  redisContext* context = redisConnect(host.c_str(), port);
  if (context == nullptr || context->err) return Unavailable("bare GET: cannot connect to " + url);
  std::string value(value_size, 'x');
  redisReply* reply = static_cast<redisReply*>(
      redisCommand(context, "SET %s %b", "keel_bench_bare_get", value.data(), value.size()));
  freeReplyObject(reply);
  std::vector<double> micros;
  for (int i = -gets / 10; i < gets; ++i) {
    Stopwatch watch;
    reply = static_cast<redisReply*>(redisCommand(context, "GET %s", "keel_bench_bare_get"));
    double elapsed = watch.Seconds() * 1e6;
    if (reply == nullptr) {
      redisFree(context);
      return Unavailable("bare GET failed");
    }
    freeReplyObject(reply);
    if (i >= 0) micros.push_back(elapsed);
  }
  redisFree(context);
  return Summarise(micros);
}

// Applies `events` in batches of `batch` rows through every updater; with
// `event_ids` (parallel to the events), as streaming does: de-duplicated.
Status Ingest(const Table& events, size_t batch,
              std::vector<std::unique_ptr<features::OnlineUpdater>>& updaters,
              store::OnlineStore* store, const table::Column* event_ids) {
  features::ApplyStats stats;
  for (size_t begin = 0; begin < events.num_rows(); begin += batch) {
    std::vector<uint32_t> rows;
    for (size_t row = begin; row < std::min(events.num_rows(), begin + batch); ++row) {
      rows.push_back(static_cast<uint32_t>(row));
    }
    Table slice;
    for (size_t c = 0; c < events.num_columns(); ++c) {
      RETURN_IF_ERROR(slice.AddColumn(events.fields()[c].name, events.column(c).Gather(rows)));
    }
    table::Column ids;
    // As keel serve's POST /v1/events: every view's update in one store write.
    features::PendingWrites pending;
    features::ApplyOptions options;
    options.pending = &pending;
    if (event_ids != nullptr) {
      ids = event_ids->Gather(rows);
      options.event_ids = &ids;
    }
    for (auto& updater : updaters) RETURN_IF_ERROR(updater->Apply(slice, store, &stats, options));
    RETURN_IF_ERROR(pending.Commit(store));
  }
  return Status::Ok();
}

// Times serve::FeatureLookup::Lookup on one request body, as keel serve
// answers POST /v1/features (minus HTTP).
Status RunHandler(const Flags& flags) {
  std::string repo_dir = flags.Get("handler-repo");
  int lookups = std::stoi(flags.Get("lookups", "20000"));
  std::string body = flags.Get(
      "handler-body",
      R"({"features":["origin_stats"],"entities":{"iata":["ATL"]},"at":"2001-06-01 00:00:00"})");
  ASSIGN_OR_RETURN(features::Repository repo, features::LoadRepository(repo_dir));
  ASSIGN_OR_RETURN(std::unique_ptr<features::Catalog> catalog,
                   features::Catalog::Open(repo.config.catalog_path));
  store::StoreOptions options;
  options.type = repo.config.online_type;
  options.path = repo.config.online_path;
  options.url = repo.config.online_url;
  options.project = repo.config.project;
  ASSIGN_OR_RETURN(std::unique_ptr<store::OnlineStore> store, store::OpenOnlineStore(options));
  serve::FeatureResolver resolver(std::move(catalog));
  RETURN_IF_ERROR(resolver.Refresh());
  serve::FeatureLookup lookup(&resolver, store.get(), serve::LookupLimits{});
  std::vector<double> micros;
  size_t bytes = 0;
  for (int i = -lookups / 10; i < lookups; ++i) {
    Stopwatch watch;
    serve::Reply reply = lookup.Lookup(body, serve::LookupShape::kKeel);
    double elapsed = watch.Seconds() * 1e6;
    if (reply.http_status != 200) {
      return Internal("handler answered " + std::to_string(reply.http_status) + ": " + reply.body);
    }
    bytes = reply.body.size();
    if (i >= 0) micros.push_back(elapsed);
  }
  Percentiles p = Summarise(micros);
  std::printf(
      "handler /v1/features in-process (%s store): p50 %.1f us, p99 %.1f us, p99.9 %.1f us, "
      "answer %zu bytes\n",
      store->type().data(), p.p50, p.p99, p.p999, bytes);
  nlohmann::json result;
  result["handler"] = ToJson(p);
  std::printf("%s\n", result.dump().c_str());
  return Status::Ok();
}

Status Run(const Flags& flags) {
  if (!flags.Get("handler-repo").empty()) return RunHandler(flags);
  ASSIGN_OR_RETURN(std::string repo_dir, flags.Require("repo"));
  int lookups = std::stoi(flags.Get("lookups", "20000"));
  std::vector<size_t> batches;  // --batch 2000,10000: one ingest run per size
  {
    std::string list = flags.Get("batch", "2000,10000") + ",";
    for (size_t begin = 0, comma; (comma = list.find(',', begin)) != std::string::npos;
         begin = comma + 1) {
      if (comma > begin) batches.push_back(std::stoul(list.substr(begin, comma - begin)));
    }
  }
  int ingest_days = std::stoi(flags.Get("ingest-days", "30"));
  std::string redis_url = flags.Get("redis", "");
  std::string only = flags.Get("only", "");
  if (!only.empty() && only != "lookup" && only != "ingest") {
    return InvalidArgument("--only: expected lookup or ingest, got '" + only + "'");
  }
  std::string kept_store = flags.Get("store", "");
  ASSIGN_OR_RETURN(features::Repository repo, features::LoadRepository(repo_dir));
  ASSIGN_OR_RETURN(std::unique_ptr<features::Catalog> catalog,
                   features::Catalog::Open(repo.config.catalog_path));
  ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open());
  std::map<std::string, features::SourceDef> inputs;
  for (const features::SourceDef& source : repo.sources) inputs[source.name] = source;
  for (const features::SourceDef& source : repo.sources) {
    RETURN_IF_ERROR(features::RegisterSource(source, inputs, repo.config, duckdb.get()).status());
  }
  ASSIGN_OR_RETURN(LookupSetup setup, Setup(catalog.get(), duckdb.get(), repo.config));
  ASSIGN_OR_RETURN(Timestamp at, ParseTimestamp("2001-06-01 00:00:00"));

  nlohmann::json result;
  std::string scratch = std::filesystem::temp_directory_path() / "keel_bench_online";
  if (kept_store.empty()) std::filesystem::remove_all(scratch);
  // RocksDB: materialize as of `at`, then look up.
  {
    ASSIGN_OR_RETURN(
        std::unique_ptr<store::OnlineStore> store,
        store::OpenRocksDbStore(kept_store.empty() ? scratch + "/rocksdb" : kept_store, "bench"));
    std::set<std::string> done;
    for (const auto& view : setup.views) {
      if (!done.insert(view->store_view()).second) continue;
      if (!kept_store.empty()) {
        ASSIGN_OR_RETURN(std::optional<Timestamp> watermark,
                         features::MaterializedWatermark(store.get(), *view));
        if (watermark.has_value()) continue;
      }
      RETURN_IF_ERROR(
          features::Materialize(repo.config, duckdb.get(), view, at, false, store.get()).status());
    }
    if (only != "ingest") {
      size_t features_read = 0;
      ASSIGN_OR_RETURN(Percentiles p,
                       MeasureLookups(store.get(), setup, at, lookups, &features_read));
      std::printf(
          "lookup, RocksDB in-process: 1 entity x %zu views (%zu features): p50 %.1f us, "
          "p99 %.1f us, p99.9 %.1f us (target p99 <= 20 us)\n",
          setup.views.size(), features_read, p.p50, p.p99, p.p999);
      result["lookup_rocksdb"] = ToJson(p);
      result["features"] = features_read;
    }

    // Ingest: the next `ingest_days` of flights through the window views.
    if (only == "lookup") ingest_days = 0;
    ASSIGN_OR_RETURN(Timestamp until,
                     ParseTimestamp("2001-06-01 00:00:00"));  // start of the replay
    Timestamp end = until + static_cast<Timestamp>(ingest_days) * kMicrosPerDay;
    ASSIGN_OR_RETURN(
        Table events,
        duckdb->Query("SELECT * FROM flights WHERE date >= TIMESTAMP '" + FormatTimestamp(until) +
                      "' AND date < TIMESTAMP '" + FormatTimestamp(end) + "' ORDER BY date"));
    std::vector<std::unique_ptr<features::OnlineUpdater>> updaters;
    for (const auto& view : setup.views) {
      if (view->def().kind != features::ViewKind::kWindow) continue;
      ASSIGN_OR_RETURN(std::unique_ptr<features::OnlineUpdater> updater,
                       features::OnlineUpdater::Make(view, events.fields()));
      updaters.push_back(std::move(updater));
    }
    // The events are split in consecutive time ranges, one per (batch size,
    // with or without event ids) run, so every run applies new events on top
    // of the state the previous left.
    result["ingest"] = nlohmann::json::array();
    size_t runs = only == "lookup" ? 0 : batches.size() * 2;
    for (size_t run = 0; run < runs; ++run) {
      size_t batch = batches[run / 2];
      bool with_ids = run % 2 == 1;
      size_t begin = events.num_rows() * run / runs;
      size_t end = events.num_rows() * (run + 1) / runs;
      std::vector<uint32_t> rows;
      table::Column event_ids(table::DataType::kString, 0);
      for (size_t row = begin; row < end; ++row) {
        rows.push_back(static_cast<uint32_t>(row));
        event_ids.AppendString("flight-" + std::to_string(row));
      }
      Table part;
      for (size_t c = 0; c < events.num_columns(); ++c) {
        RETURN_IF_ERROR(part.AddColumn(events.fields()[c].name, events.column(c).Gather(rows)));
      }
      Stopwatch watch;
      double cpu_before = ThreadCpuSeconds();
      RETURN_IF_ERROR(Ingest(part, batch, updaters, store.get(), with_ids ? &event_ids : nullptr));
      double seconds = watch.Seconds();
      double cpu = ThreadCpuSeconds() - cpu_before;
      double rate = static_cast<double>(part.num_rows()) / seconds;
      // The ingesting thread's CPU time leaves out waits (the WAL's fsync, a
      // busy machine) and RocksDB's background threads: steadier on a shared machine.
      std::printf(
          "ingest, RocksDB: %zu events x %zu window views in batches of %zu%s: %.2f s, "
          "%.0f events/s (target >= 200 000); thread CPU %.2f s, %.0f events per CPU second\n",
          part.num_rows(), updaters.size(), batch, with_ids ? ", with event ids (de-dup)" : "",
          seconds, rate, cpu, static_cast<double>(part.num_rows()) / cpu);
      result["ingest"].push_back({{"events", part.num_rows()},
                                  {"views", updaters.size()},
                                  {"batch", batch},
                                  {"event_ids", with_ids},
                                  {"seconds", seconds},
                                  {"thread_cpu_seconds", cpu},
                                  {"events_per_second", rate}});
    }
  }
  if (!redis_url.empty() && only != "ingest") {
    ASSIGN_OR_RETURN(std::unique_ptr<store::OnlineStore> store,
                     store::OpenRedisStore(redis_url, "keel_bench", false));
    std::set<std::string> done;
    for (const auto& view : setup.views) {
      if (!done.insert(view->store_view()).second) continue;
      RETURN_IF_ERROR(
          features::Materialize(repo.config, duckdb.get(), view, at, false, store.get()).status());
    }
    size_t features_read = 0;
    ASSIGN_OR_RETURN(Percentiles p,
                     MeasureLookups(store.get(), setup, at, lookups, &features_read));
    ASSIGN_OR_RETURN(Percentiles bare, MeasureBareGet(redis_url, 4096, lookups));
    std::printf(
        "lookup, Redis (%s): p50 %.1f us, p99 %.1f us; bare GET round trip: p50 %.1f "
        "us, p99 %.1f us; keel adds %.1f us at p99 (target <= 100 us)\n",
        redis_url.c_str(), p.p50, p.p99, bare.p50, bare.p99, p.p99 - bare.p99);
    result["lookup_redis"] = ToJson(p);
    result["bare_get"] = ToJson(bare);
  }
  if (kept_store.empty()) std::filesystem::remove_all(scratch);
  std::printf("%s\n", result.dump().c_str());
  return Status::Ok();
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) { return keel::bench::Main(argc, argv, keel::bench::Run); }
