#include <chrono>
#include <string>

#include "common/progress.h"
#include "features/online.h"
#include "features/online_events.h"
#include "table/duckdb_bridge.h"

namespace keel::features {

using table::Table;

// --- Materialization ---------------------------------------------------------

namespace {

std::string WatermarkName(const OnlineView& view) { return "watermark/" + view.store_view(); }

}  // namespace

Result<std::optional<Timestamp>> MaterializedWatermark(store::OnlineStore* store,
                                                       const OnlineView& view) {
  return ReadTimestampMeta(store, WatermarkName(view));
}

Result<MaterializeResult> Materialize(const RepoConfig& config, table::DuckDb* duckdb,
                                      std::shared_ptr<const OnlineView> view, Timestamp end,
                                      bool incremental, store::OnlineStore* store) {
  auto started = std::chrono::steady_clock::now();
  const FeatureViewDef& def = view->def();
  MaterializeResult result;
  ASSIGN_OR_RETURN(std::optional<Timestamp> recorded, MaterializedWatermark(store, *view));
  if (recorded.has_value() && end < *recorded) {
    // A full run rewrites the entities with rows before `end`; entities whose
    // rows all come later would keep their newer values. Refuse rather than
    // leave a store that is as of no single time.
    return FailedPrecondition("view " + view->store_view() + ": --end " + FormatTimestamp(end) +
                              " is before its watermark " + FormatTimestamp(*recorded) +
                              " (materialize into an empty store to go back in time)");
  }
  std::optional<Timestamp> watermark;
  if (incremental) watermark = recorded;
  ASSIGN_OR_RETURN(std::string sql, RegisterSource(def.source, def.source_inputs, config, duckdb));
  std::string query = "SELECT * FROM (" + sql + ") AS keel_source";
  const std::string& ts_column = def.source.timestamp_column;
  if (!ts_column.empty()) {
    query += " WHERE " + table::QuoteSqlIdentifier(ts_column) + " < TIMESTAMP '" +
             FormatTimestamp(end) + "'";
    if (watermark.has_value()) {
      query += " AND " + table::QuoteSqlIdentifier(ts_column) + " >= TIMESTAMP '" +
               FormatTimestamp(*watermark) + "'";
    }
  }
  Result<Table> rows = duckdb->Query(query);
  if (!rows.ok()) return rows.status().WithContext("reading source '" + def.source.name + "'");
  ASSIGN_OR_RETURN(std::unique_ptr<OnlineUpdater> updater,
                   OnlineUpdater::Make(view, rows->fields()));
  std::string watermark_name = WatermarkName(*view);
  std::string watermark_value = std::to_string(end);
  std::vector<store::MetaEntry> meta = {{watermark_name, watermark_value}};
  bool fresh = !watermark.has_value();
  result.from = watermark.value_or(kMinTimestamp);
  // Large sources go in slices of whole entities would need a second grouping;
  // instead the whole table is applied at once (states are small), and the
  // watermark is written with the last store write.
  updater->set_progress_label("  " + view->store_view());
  Status status =
      updater->Apply(*rows, store, &result.stats,
                     {.fresh = fresh, .applied_through = end, .meta = meta, .record_newest = true});
  if (!status.ok()) return status.WithContext("view '" + def.name + "'");
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace keel::features
