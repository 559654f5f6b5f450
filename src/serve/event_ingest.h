#pragma once

// Streaming ingestion: events of a source, as JSON objects, checked against
// the source's schema and row-level expectations, then applied to the online
// state of every view that reads the source - through the same
// features::OnlineUpdater (and so the same kernels) as materialization.
// `keel serve` takes them on POST /v1/events; `keel ingest` from a Redis
// Stream.
//
// An event is one JSON object: a member per source column (a missing column
// is null; an unknown member is an error, naming it), plus an optional
// "event_id" (a string or an integer) for de-duplication: an event applied
// once is skipped when it comes again (features/online_events.h), so a
// client may resend a batch it got no answer for, and a stream may redeliver.
// Column values: int64 - an integer; double - a number; bool - true/false;
// string - a string; timestamp - a string ParseTimestamp reads
// ("2001-06-15 10:30:00", RFC 3339 with "Z"). The source's timestamp column
// is required.
//
// Expectations (validate/checks.h) that judge single rows run on every batch:
// range, values, regex, and null_share with a maximum of 0 ("never null").
// Expectations about many rows (volume, freshness, drift, duplicates by key,
// null shares above 0) are for whole partitions (`keel validate`) and live
// monitoring, not for one event. An error-level failure rejects the events
// that fail it (found by checking each event alone), naming the check; a
// warn-level failure is reported and the events are applied.
//
// Which views: the current version of every view whose source is the
// event's source, and every other version of those views that has been
// materialized into the store (so two versions served side by side both stay
// fresh). Views over a SQL-query source are not updated by events.

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "features/catalog.h"
#include "features/definitions.h"
#include "features/online.h"
#include "store/online_store.h"
#include "table/column.h"
#include "table/duckdb_bridge.h"
#include "validate/checks.h"

namespace keel::serve {

struct IngestOptions {
  // How long an applied event id is remembered for de-duplication.
  Duration dedup_ttl = kMicrosPerDay;
};

// One event that was not applied, and why ("events[3].delay: expected a
// number, got \"late\"", "range check on delay failed: 9999 > 2000").
struct RejectedEvent {
  size_t index = 0;
  std::string reason;
};

// What one Ingest call did.
struct IngestReport {
  size_t events = 0;    // events received
  size_t accepted = 0;  // events that passed their checks and were handed to the views
  std::vector<RejectedEvent> rejected;
  std::vector<validate::CheckResult> warnings;  // warn-level failures
  struct View {
    std::string view;  // "name@version"
    features::ApplyStats stats;
  };
  std::vector<View> views;
};

// The newest event applied to a view, and how old it is.
struct ViewFreshness {
  std::string view;  // "name@version"
  std::string source;
  std::optional<Timestamp> newest_event;  // nullopt: nothing applied yet
};

// Thread-safety: Ingest calls are serialised internally (one writer per
// store); every method may be called from many threads at once.
class EventIngestor {
 public:
  // Reads the sources' schemas through `duckdb` (a zero-row query each) and
  // compiles the views. The repository gives the sources' expectations; the
  // catalog the views. `store` must outlive the ingestor.
  // Errors: from the catalog, DuckDB (a source that cannot be read), the store.
  static Result<std::unique_ptr<EventIngestor>> Make(const features::Repository& repo,
                                                     features::Catalog* catalog,
                                                     table::DuckDb* duckdb,
                                                     store::OnlineStore* store,
                                                     IngestOptions options = {});
  ~EventIngestor();
  EventIngestor(const EventIngestor&) = delete;
  EventIngestor& operator=(const EventIngestor&) = delete;

  // The sources that take events, sorted.
  std::vector<std::string> sources() const;

  // Checks `events` (JSON objects) for `source` and applies the valid ones.
  // With `all_or_nothing`, nothing is applied when any event is rejected (the
  // HTTP endpoint: a client fixes and resends its batch); otherwise the valid
  // events are applied and the rejected ones reported (a stream consumer
  // dead-letters them). `default_ids[i]`, when given and not empty, is event
  // i's id if it carries none (a stream entry's id). Durable when it returns
  // OK with events applied.
  // Errors: NotFound for an unknown source (naming the known ones); the
  // store's errors (nothing acknowledged: the caller retries, and
  // de-duplication makes the retry safe).
  Result<IngestReport> Ingest(std::string_view source,
                              const std::vector<const nlohmann::ordered_json*>& events,
                              bool all_or_nothing,
                              const std::vector<std::string>& default_ids = {});

  // Every view's newest applied event (read from the store).
  Result<std::vector<ViewFreshness>> Freshness();

 private:
  struct Target;
  EventIngestor() = default;
  Status ParseEvents(const Target& target, const std::vector<const nlohmann::ordered_json*>& events,
                     const std::vector<std::string>& default_ids, std::vector<uint8_t>* valid,
                     table::Table* rows, table::Column* ids, IngestReport* report) const;
  // Runs the row-level checks on `parsed` (the valid events, as ParseEvents
  // made them); when an error-level check fails, finds the failing events by
  // checking each alone, marks them invalid and reports them.
  Status CheckRows(const Target& target, const std::vector<const nlohmann::ordered_json*>& events,
                   const std::vector<std::string>& default_ids, const table::Table& parsed,
                   std::vector<uint8_t>* valid, IngestReport* report) const;

  std::vector<std::unique_ptr<Target>> targets_;  // sorted by source name
  store::OnlineStore* store_ = nullptr;
  IngestOptions options_;
  std::mutex write_mutex_;  // one Ingest at a time
};

}  // namespace keel::serve
