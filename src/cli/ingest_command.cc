// `keel ingest`: a Redis Streams consumer feeding the online store.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "features/catalog.h"
#include "serve/event_ingest.h"
#include "store/redis_stream.h"
#include "table/duckdb_bridge.h"

namespace keel::cli {

namespace {

std::atomic<bool> stop_requested{false};

// Consecutive lost connections to Redis waited out before giving up.
constexpr int kMaxRetries = 20;

void RequestStop(int) { stop_requested = true; }

struct IngestTotals {
  uint64_t entries = 0;
  uint64_t accepted = 0;    // events handed to the views
  uint64_t duplicates = 0;  // view states that had already applied the event
  uint64_t late = 0;
  uint64_t dead = 0;  // dead-lettered
};

// Applies one batch of entries and acknowledges them. Store errors leave the
// batch unacknowledged (it comes back on the next start).
Status ProcessBatch(const std::vector<store::StreamEntry>& entries,
                    const std::string& default_source, serve::EventIngestor* ingestor,
                    store::RedisStreamConsumer* consumer, IngestTotals* totals) {
  using Json = nlohmann::ordered_json;
  std::vector<Json> parsed(entries.size());
  std::vector<std::string> ids;
  // Sources in order of first appearance, each with its entries.
  std::vector<std::pair<std::string, std::vector<size_t>>> by_source;
  for (size_t i = 0; i < entries.size(); ++i) {
    const store::StreamEntry& entry = entries[i];
    ids.push_back(entry.id);
    const std::string* source = entry.Field("source");
    const std::string* event = entry.Field("event");
    std::string problem;
    if (event == nullptr) {
      problem = "no \"event\" field (the event as a JSON object)";
    } else if (source == nullptr && default_source.empty()) {
      problem = "no \"source\" field and no --source";
    } else {
      try {
        parsed[i] = Json::parse(*event);
      } catch (const Json::exception& error) {
        problem = std::string("event: not valid JSON: ") + error.what();
      }
    }
    if (!problem.empty()) {
      RETURN_IF_ERROR(consumer->DeadLetter(entry, problem));
      ++totals->dead;
      continue;
    }
    std::string name = source != nullptr ? *source : default_source;
    auto found = std::find_if(by_source.begin(), by_source.end(),
                              [&](const auto& item) { return item.first == name; });
    if (found == by_source.end()) {
      by_source.push_back({name, {}});
      found = by_source.end() - 1;
    }
    found->second.push_back(i);
  }
  for (const auto& [source, indices] : by_source) {
    std::vector<const Json*> events;
    std::vector<std::string> default_ids;
    for (size_t i : indices) {
      events.push_back(&parsed[i]);
      default_ids.push_back(entries[i].id);
    }
    Result<serve::IngestReport> report =
        ingestor->Ingest(source, events, /*all_or_nothing=*/false, default_ids);
    if (!report.ok() && report.status().code() == StatusCode::kNotFound) {
      for (size_t i : indices) {
        RETURN_IF_ERROR(consumer->DeadLetter(entries[i], report.status().message()));
        ++totals->dead;
      }
      continue;
    }
    if (!report.ok()) return report.status();
    for (const serve::RejectedEvent& rejected : report->rejected) {
      RETURN_IF_ERROR(consumer->DeadLetter(entries[indices[rejected.index]], rejected.reason));
      ++totals->dead;
    }
    totals->accepted += report->accepted;
    for (const serve::IngestReport::View& view : report->views) {
      totals->duplicates += view.stats.duplicates;
      totals->late += view.stats.late;
    }
  }
  // Only now: every event above is in the store, or dead-lettered.
  RETURN_IF_ERROR(consumer->Ack(ids));
  totals->entries += entries.size();
  return Status::Ok();
}

}  // namespace

Status RunIngest(const IngestOptions& options) {
  struct sigaction action {};
  action.sa_handler = RequestStop;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  if (options.batch < 1) return InvalidArgument("--batch: must be at least 1");
  ASSIGN_OR_RETURN(features::Repository repo, features::LoadRepository(options.repo.repo));
  ASSIGN_OR_RETURN(std::unique_ptr<features::Catalog> catalog,
                   features::Catalog::Open(repo.config.catalog_path));
  ASSIGN_OR_RETURN(std::unique_ptr<store::OnlineStore> store, OpenRepoOnlineStore(repo.config));
  std::unique_ptr<serve::EventIngestor> ingestor;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open());
    serve::IngestOptions ingest_options;
    ingest_options.dedup_ttl = options.dedup_ttl;
    ASSIGN_OR_RETURN(ingestor, serve::EventIngestor::Make(repo, catalog.get(), duckdb.get(),
                                                          store.get(), ingest_options));
  }
  Result<std::unique_ptr<store::RedisStreamConsumer>> opened = store::RedisStreamConsumer::Open(
      options.from, options.stream, options.group, options.consumer);
  if (!opened.ok()) return opened.status().WithContext("--from " + options.from);
  std::unique_ptr<store::RedisStreamConsumer> consumer = std::move(opened).value();
  std::fprintf(stderr, "keel ingest: reading %s stream '%s' as %s/%s\n", options.from.c_str(),
               options.stream.c_str(), options.group.c_str(), options.consumer.c_str());
  std::fflush(stderr);

  IngestTotals totals;
  auto started = std::chrono::steady_clock::now();
  auto last_entry = std::chrono::steady_clock::now();
  const Duration block = std::min<Duration>(
      kMicrosPerSecond, options.idle_exit_ms > 0 ? options.idle_exit_ms * 1000 : kMicrosPerSecond);
  // First what this consumer read before and never acknowledged (a crash, or
  // a connection lost mid-batch), then new entries. A lost connection to
  // Redis is waited out (the entries in hand were not acknowledged, so they
  // are read again from the pending list); other errors stop the consumer.
  bool read_pending = true;
  std::string cursor = "0";
  int failures = 0;
  while (!stop_requested) {
    Result<std::vector<store::StreamEntry>> read =
        read_pending ? consumer->ReadPending(options.batch, &cursor)
                     : consumer->ReadNew(options.batch, block);
    Status status = read.status();
    if (read.ok()) {
      if (read->empty()) {
        if (read_pending) {
          read_pending = false;
          continue;
        }
        auto idle = std::chrono::steady_clock::now() - last_entry;
        if (options.idle_exit_ms > 0 && idle >= std::chrono::milliseconds(options.idle_exit_ms)) {
          break;
        }
        continue;
      }
      last_entry = std::chrono::steady_clock::now();
      status = ProcessBatch(*read, options.source, ingestor.get(), consumer.get(), &totals);
    }
    if (status.ok()) {
      failures = 0;
      continue;
    }
    if (status.code() != StatusCode::kUnavailable || ++failures > kMaxRetries) return status;
    std::fprintf(stderr, "keel ingest: %s; retrying (%d/%d)\n", status.message().c_str(), failures,
                 kMaxRetries);
    std::this_thread::sleep_for(std::chrono::milliseconds(200 * failures));
    read_pending = true;
    cursor = "0";
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (options.json) {
    nlohmann::json out = {{"entries", totals.entries},       {"accepted", totals.accepted},
                          {"duplicates", totals.duplicates}, {"late", totals.late},
                          {"dead_lettered", totals.dead},    {"seconds", seconds}};
    std::printf("%s\n", out.dump().c_str());
  }
  std::fprintf(stderr,
               "keel ingest: %llu entries, %llu events accepted, %llu duplicate applications "
               "skipped, %llu late, %llu dead-lettered to %s:dead, %.1f s\n",
               static_cast<unsigned long long>(totals.entries),
               static_cast<unsigned long long>(totals.accepted),
               static_cast<unsigned long long>(totals.duplicates),
               static_cast<unsigned long long>(totals.late),
               static_cast<unsigned long long>(totals.dead), options.stream.c_str(), seconds);
  return Status::Ok();
}

}  // namespace keel::cli
