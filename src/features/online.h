#pragma once

// The online path: the same kernels as the offline engine (window_kernel.h's
// BucketedSeries and Finalize, expr.h's evaluator), applied to events as they
// arrive and read at "now" from an online store.
//
// Parity with the offline engine (tested on the real flight data): a feature
// read online at time t, after every source row with ts < t and none with
// ts >= t has been applied, equals bit for bit the value `keel dataset build`
// computes for a spine row at t. Rows with equal timestamps are ordered by
// arrival online; offline by the created column, then row order; feeding
// events in the offline order (materialize and Replay do) makes them agree.
//
// Late events: an event lands in its own hop bucket and counts exactly as the
// offline engine counts it, whatever order events arrive in, unless it is
// older than the entity's retention horizon: FloorToHop(newest - longest
// window of its stream, hop), where newest is the newest event applied to the
// entity. Such an event lies outside every window any later read can cover,
// so it is dropped (and counted in ApplyStats::late) without changing any
// value a reader at a time after `newest` can see.

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "features/definitions.h"
#include "features/expr.h"
#include "features/offline_engine.h"
#include "features/window_kernel.h"
#include "store/online_store.h"
#include "table/column.h"

namespace keel::table {
class DuckDb;
}

namespace keel::features {

// Feast's feature statuses (FieldStatus in its serving proto).
enum class FeatureStatus : uint8_t { kPresent, kNullValue, kNotFound, kOutsideMaxAge, kInvalid };
// "PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE", "INVALID".
std::string_view FeatureStatusName(FeatureStatus status);

// Appends the store encoding of one entity key - the entity's name, then each
// key value tagged with its type (int64 as 8 bytes, strings length-prefixed) -
// read from row `row` of `keys` (the entity's key columns, in key order).
// Returns false (appending nothing) when a key is null.
bool EncodeEntityKey(std::string_view entity, const std::vector<const table::Column*>& keys,
                     size_t row, std::string* out);

// One output feature of a view as the online path computes it.
struct OnlineOutput {
  std::string name;  // as FeatureViewDef::FeatureNames spells it
  table::DataType type = table::DataType::kDouble;
  // Window views:
  size_t stream = 0;
  Aggregation aggregation = Aggregation::kCount;
  Duration length = 0;
  // Snapshot views: index into FeatureViewDef::snapshot_features.
  size_t snapshot_feature = 0;
};

// A view at one version, compiled for the online path: its value streams
// (one BucketedSeries per distinct (expression, hop) pair), its outputs and
// their types. Immutable once made; thread-safe to share.
class OnlineView {
 public:
  struct StreamDef {
    std::string expression;  // canonical; empty = a row count
    Duration hop = 0;
    Duration retention = 0;  // the longest window reading this stream
  };

  // Errors: InvalidArgument for an expression that does not parse.
  static Result<std::shared_ptr<const OnlineView>> Make(FeatureViewDef view, std::string version);

  const FeatureViewDef& def() const { return def_; }
  const std::string& version() const { return version_; }
  // The store's view key: "name@version".
  const std::string& store_view() const { return store_view_; }
  const std::vector<StreamDef>& streams() const { return streams_; }
  const std::vector<OnlineOutput>& outputs() const { return outputs_; }
  // Index into outputs(), or -1.
  int FindOutput(std::string_view name) const;
  // Housekeeping TTL of stored values (store::StoreEntry::ttl): windows keep an
  // idle entity for their longest window plus a hop, snapshots for twice their
  // ttl; 0 = forever (snapshot views without a ttl).
  Duration store_ttl() const { return store_ttl_; }

 private:
  OnlineView() = default;
  FeatureViewDef def_;
  std::string version_;
  std::string store_view_;
  std::vector<StreamDef> streams_;
  std::vector<OnlineOutput> outputs_;
  Duration store_ttl_ = 0;
};

// One typed value of a snapshot row.
struct ScalarValue {
  bool valid = false;
  int64_t int_value = 0;  // int64, timestamp, bool (0/1)
  double double_value = 0;
  std::string string_value;
};

// The decoded store value of one entity of one view.
struct EntityState {
  Timestamp newest_ts = kMinTimestamp;        // newest event applied
  uint64_t next_arrival = 0;                  // the arrival number of the next event
  Timestamp applied_through = kMinTimestamp;  // materialize: every row with ts < this is in
  std::vector<BucketedSeries> series;         // window views: one per stream
  bool has_row = false;                       // snapshot views: the latest row
  Timestamp row_ts = kMinTimestamp;
  uint64_t row_arrival = 0;
  std::vector<ScalarValue> row;  // one per snapshot feature
};

// An empty state shaped for `view`.
EntityState NewEntityState(const OnlineView& view);
// Compact binary encoding (versioned, little-endian; equal states give equal bytes).
std::string EncodeEntityState(const OnlineView& view, const EntityState& state);
// Errors: InvalidArgument on malformed bytes or bytes of another view shape;
// never crashes on any input.
Result<EntityState> DecodeEntityState(const OnlineView& view, std::string_view bytes);

// Counts of one apply or materialize call.
struct ApplyStats {
  uint64_t rows = 0;        // rows applied
  uint64_t late = 0;        // dropped: older than the entity's retention horizon
  uint64_t no_key = 0;      // dropped: a null key or a null timestamp
  uint64_t entities = 0;    // entity values written
  uint64_t duplicates = 0;  // skipped per entity: event id already applied (online_events.h)
  Timestamp newest = kMinTimestamp;  // the newest event time applied
};

// Store writes gathered from several OnlineUpdater::Apply calls (one per
// view of a source), so that one batch of events reaches the store in one
// write: one WAL sync instead of one per view, and on RocksDB (one write
// batch) all views or none after a crash. Holds copies of what it is given.
// Thread-safety: none; one per batch.
class PendingWrites {
 public:
  // Copies `entries` and `meta` in.
  void Add(std::span<const store::StoreEntry> entries, std::span<const store::MetaEntry> meta);
  // Writes everything added, in the order added (store::OnlineStore::Write's
  // guarantees: durable when OK), then empties itself. Errors: the store's.
  Status Commit(store::OnlineStore* store);
  bool empty() const { return entries_.empty() && meta_.empty(); }

 private:
  std::deque<std::string> bytes_;  // stable addresses for the views below
  std::vector<store::StoreEntry> entries_;
  std::vector<store::MetaEntry> meta_;
};

// How OnlineUpdater::Apply treats stored states.
struct ApplyOptions {
  // Stored states are ignored (replaced), as full materialization does.
  bool fresh = false;
  // Materialization's watermark (kMinTimestamp: none): recorded in every state
  // written; entities whose stored applied_through is already >= it are
  // skipped, and rows older than an entity's stored applied_through are
  // skipped for it (so a resumed incremental materialization never applies a
  // row twice, whatever --end it resumes with).
  Timestamp applied_through = kMinTimestamp;
  // Written with the last store write.
  std::span<const store::MetaEntry> meta = {};
  // Streaming: the rows' event ids (a string or int64 column parallel to the
  // rows; a null id is not de-duplicated). Each is applied at most once per
  // entity state (online_events.h) while it is remembered: `dedup_ttl` of
  // wall-clock time from its application.
  const table::Column* event_ids = nullptr;
  Duration dedup_ttl = kMicrosPerDay;
  // Record the newest event time applied to the view (NewestEventApplied) in
  // the same write as the states.
  bool record_newest = false;
  // When set, Apply adds its write (states, recent event ids, meta) here
  // instead of writing it; the caller commits (PendingWrites::Commit), and
  // nothing is durable before. Applying the same rows to a view twice
  // before a commit is not supported (the second Apply reads the store).
  PendingWrites* pending = nullptr;
};

// Applies source rows to entity states, and reads features from them.
// Thread-safety: none for Apply (callers serialise writers of one view; the
// server does it with one writer per view); Read may run concurrently with
// other Reads.
class OnlineUpdater {
 public:
  // Rows passed to Apply must have `source_fields`' schema (the view's source).
  // Errors: InvalidArgument when an expression does not bind.
  static Result<std::unique_ptr<OnlineUpdater>> Make(
      std::shared_ptr<const OnlineView> view, const std::vector<table::Field>& source_fields);

  // Applies `rows` (ordered among equal timestamps as they should arrive) to
  // the stored states as `options` say: one batched store read (two with
  // event ids), the kernels, one batched write of states, recent event ids and
  // meta records. Errors: the store's; InvalidArgument for rows of another
  // schema or a corrupt stored state.
  Status Apply(const table::Table& rows, store::OnlineStore* store, ApplyStats* stats,
               const ApplyOptions& options = {});

  const OnlineView& view() const { return *view_; }
  // When set, Apply draws a progress bar over the entities of each call on
  // stderr (materialization sets it; streaming does not).
  void set_progress_label(std::string label) { progress_label_ = std::move(label); }

 private:
  OnlineUpdater() = default;
  std::shared_ptr<const OnlineView> view_;
  std::vector<table::Field> fields_;
  std::vector<Expression> stream_expressions_;    // one per stream
  std::vector<Expression> snapshot_expressions_;  // one per snapshot feature
  std::string progress_label_;
};

// The result of an online lookup, column-oriented like Feast's response:
// features[i] over entities j.
struct OnlineFeatures {
  std::vector<std::string> names;  // "<prefix>__<feature>" as training sets name them
  std::vector<table::Column> values;
  std::vector<std::vector<FeatureStatus>> statuses;
  std::vector<std::vector<Timestamp>> event_timestamps;  // kMinTimestamp: none
};

// Reads features for every row of `entities` (columns named as `uses` map
// their keys; see ResolveUse) as of `now`: one batched store read for all
// uses and entities. Window values are Finalize over the buckets a window read
// at `now` covers; a snapshot row older than the view's ttl reads as
// OUTSIDE_MAX_AGE with a null value. An entity the store does not hold reads as
// NOT_FOUND with the values the offline engine gives an unknown entity (count
// 0, everything else null); a null key as INVALID.
// Errors: Unavailable / IoError from the store; InvalidArgument for a corrupt
// stored value (naming view and entity).
Status ReadOnlineFeatures(store::OnlineStore* store, const table::Table& entities,
                          const std::vector<ResolvedUse>& uses,
                          const std::vector<std::shared_ptr<const OnlineView>>& views,
                          Timestamp now, OnlineFeatures* out);

// Materialization: loads the state of `view` as of `end` (source rows with
// ts < end) into `store` and records the watermark `end` (meta
// "watermark/<name>@<version>"). Full: every entity's state is rebuilt from
// the source and overwritten (idempotent). Incremental: continues from the
// recorded watermark (rows with watermark <= ts < end applied to the stored
// states); without a watermark it is a full run. Progress on stderr.
// Errors: FailedPrecondition when end is before the recorded watermark (a
// full run could not remove newer values of entities without earlier rows);
// source and store errors.
struct MaterializeResult {
  Timestamp from = kMinTimestamp;  // the watermark it continued from (incremental)
  ApplyStats stats;
  double seconds = 0;
};
Result<MaterializeResult> Materialize(const RepoConfig& config, table::DuckDb* duckdb,
                                      std::shared_ptr<const OnlineView> view, Timestamp end,
                                      bool incremental, store::OnlineStore* store);

// The watermark Materialize recorded for `view`, if any.
Result<std::optional<Timestamp>> MaterializedWatermark(store::OnlineStore* store,
                                                       const OnlineView& view);

}  // namespace keel::features
