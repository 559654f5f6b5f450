#include "features/parity.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <map>
#include <numeric>

#include "common/progress.h"
#include "features/online.h"
#include "table/duckdb_bridge.h"

namespace keel::features {

using table::Column;
using table::DataType;
using table::Table;

namespace {

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Table GatherRows(const Table& table, const std::vector<uint32_t>& rows) {
  Table out;
  for (size_t c = 0; c < table.num_columns(); ++c) {
    Status added = out.AddColumn(table.fields()[c].name, table.column(c).Gather(rows));
    (void)added;  // names are unique in `table`
  }
  return out;
}

bool SameValue(const Column& a, size_t row_a, const Column& b, size_t row_b) {
  if (a.IsValid(row_a) != b.IsValid(row_b)) return false;
  if (!a.IsValid(row_a)) return true;
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case DataType::kDouble:
      return std::bit_cast<uint64_t>(a.doubles()[row_a]) ==
             std::bit_cast<uint64_t>(b.doubles()[row_b]);
    case DataType::kBool:
      return a.bools()[row_a] == b.bools()[row_b];
    case DataType::kString:
      return a.StringAt(row_a) == b.StringAt(row_b);
    default:
      return a.ints()[row_a] == b.ints()[row_b];
  }
}

// One source's rows to stream, in the offline order, and the views fed from it.
struct Feed {
  Table rows;
  std::vector<uint32_t> order;  // by (ts, created), stable
  std::vector<Timestamp> ts;    // ts of order[i]
  size_t next = 0;
  std::vector<std::unique_ptr<OnlineUpdater>> updaters;
};

}  // namespace

Result<ParityReport> CheckOnlineParity(const RepoConfig& config, table::DuckDb* duckdb,
                                       store::OnlineStore* store, const Table& spine,
                                       const std::string& time_column,
                                       const std::vector<ResolvedUse>& uses,
                                       Timestamp materialize_end) {
  ParityReport report;
  auto started = std::chrono::steady_clock::now();
  OfflineEngine engine(config, duckdb);
  ASSIGN_OR_RETURN(Table offline, engine.Build(spine, time_column, uses));
  report.offline_seconds = Since(started);

  // Distinct views, materialized once each.
  std::map<std::string, std::shared_ptr<const OnlineView>> views;
  std::vector<std::shared_ptr<const OnlineView>> use_views;
  started = std::chrono::steady_clock::now();
  for (const ResolvedUse& use : uses) {
    std::shared_ptr<const OnlineView>& view = views[use.view.name + "@" + use.version];
    if (view == nullptr) {
      ASSIGN_OR_RETURN(view, OnlineView::Make(use.view, use.version));
      Result<MaterializeResult> done =
          Materialize(config, duckdb, view, materialize_end, false, store);
      if (!done.ok()) return done.status();
    }
    use_views.push_back(view);
  }
  report.materialize_seconds = Since(started);

  // The rows to stream, per source (views on one source share it).
  std::map<std::string, Feed> feeds;
  for (const auto& [name, view] : views) {
    const FeatureViewDef& def = view->def();
    if (def.source.timestamp_column.empty()) continue;  // static: fully materialized
    FeatureViewDef only_source;
    only_source.source = def.source;
    only_source.source_inputs = def.source_inputs;
    Feed& feed = feeds[CanonicalJson(only_source)];
    if (feed.order.empty() && feed.rows.num_columns() == 0) {
      ASSIGN_OR_RETURN(std::string sql,
                       RegisterSource(def.source, def.source_inputs, config, duckdb));
      const std::string ts = table::QuoteSqlIdentifier(def.source.timestamp_column);
      Result<Table> rows =
          duckdb->Query("SELECT * FROM (" + sql + ") AS keel_source WHERE " + ts +
                        " >= TIMESTAMP '" + FormatTimestamp(materialize_end) + "'");
      if (!rows.ok()) return rows.status().WithContext("reading source '" + def.source.name + "'");
      feed.rows = std::move(rows).value();
      ASSIGN_OR_RETURN(const Column* ts_column, feed.rows.GetColumn(def.source.timestamp_column));
      std::vector<int64_t> created(feed.rows.num_rows(), 0);
      if (!def.source.created_column.empty()) {
        ASSIGN_OR_RETURN(const Column* column, feed.rows.GetColumn(def.source.created_column));
        for (size_t row = 0; row < created.size(); ++row) {
          created[row] = column->IsValid(row) ? column->ints()[row] : INT64_MIN;
        }
      }
      for (uint32_t row = 0; row < feed.rows.num_rows(); ++row) {
        if (ts_column->IsValid(row)) feed.order.push_back(row);
      }
      const std::vector<int64_t>& times = ts_column->ints();
      std::stable_sort(feed.order.begin(), feed.order.end(), [&](uint32_t a, uint32_t b) {
        return std::pair(times[a], created[a]) < std::pair(times[b], created[b]);
      });
      for (uint32_t row : feed.order) feed.ts.push_back(times[row]);
    }
    ASSIGN_OR_RETURN(std::unique_ptr<OnlineUpdater> updater,
                     OnlineUpdater::Make(view, feed.rows.fields()));
    feed.updaters.push_back(std::move(updater));
  }

  // Spine rows read online, by time.
  ASSIGN_OR_RETURN(const Column* times, spine.GetColumn(time_column));
  std::vector<uint32_t> spine_rows;
  for (uint32_t row = 0; row < spine.num_rows(); ++row) {
    if (times->IsValid(row) && times->ints()[row] >= materialize_end) spine_rows.push_back(row);
  }
  std::stable_sort(spine_rows.begin(), spine_rows.end(),
                   [&](uint32_t a, uint32_t b) { return times->ints()[a] < times->ints()[b]; });
  report.spine_rows = spine_rows.size();

  std::vector<const Column*> expected;
  ProgressBar progress("  online replay", spine_rows.size());
  double stream_seconds = 0, read_seconds = 0;
  for (size_t i = 0; i < spine_rows.size();) {
    Timestamp t = times->ints()[spine_rows[i]];
    auto stream_started = std::chrono::steady_clock::now();
    for (auto& [key, feed] : feeds) {
      size_t end = feed.next;
      while (end < feed.order.size() && feed.ts[end] < t) ++end;
      if (end == feed.next) continue;
      Table batch = GatherRows(
          feed.rows, std::vector<uint32_t>(feed.order.begin() + static_cast<ptrdiff_t>(feed.next),
                                           feed.order.begin() + static_cast<ptrdiff_t>(end)));
      for (std::unique_ptr<OnlineUpdater>& updater : feed.updaters) {
        ApplyStats stats;
        RETURN_IF_ERROR(updater->Apply(batch, store, &stats));
        report.late_events += stats.late;
      }
      report.events_streamed += end - feed.next;
      feed.next = end;
    }
    stream_seconds += Since(stream_started);
    size_t group_end = i;
    while (group_end < spine_rows.size() && times->ints()[spine_rows[group_end]] == t) ++group_end;
    std::vector<uint32_t> at_t(spine_rows.begin() + static_cast<ptrdiff_t>(i),
                               spine_rows.begin() + static_cast<ptrdiff_t>(group_end));
    Table entities = GatherRows(spine, at_t);
    auto read_started = std::chrono::steady_clock::now();
    OnlineFeatures online;
    RETURN_IF_ERROR(ReadOnlineFeatures(store, entities, uses, use_views, t, &online));
    read_seconds += Since(read_started);
    if (expected.empty()) {
      for (const std::string& name : online.names) {
        ASSIGN_OR_RETURN(const Column* column, offline.GetColumn(name));
        expected.push_back(column);
      }
    }
    for (size_t j = 0; j < at_t.size(); ++j) {
      for (size_t f = 0; f < online.names.size(); ++f) {
        ++report.values_compared;
        if (SameValue(*expected[f], at_t[j], online.values[f], j)) continue;
        if (++report.mismatches <= 10) {
          report.examples.push_back("spine row " + std::to_string(at_t[j]) + " at " +
                                    FormatTimestamp(t) + ": " + online.names[f] + " offline " +
                                    expected[f]->ValueToString(at_t[j]) + ", online " +
                                    online.values[f].ValueToString(j));
        }
      }
    }
    i = group_end;
    progress.Update(i);
  }
  progress.Finish();
  report.stream_seconds = stream_seconds;
  report.read_seconds = read_seconds;
  return report;
}

}  // namespace keel::features
