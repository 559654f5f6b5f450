#include "features/offline_engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <thread>

#include "common/progress.h"
#include "features/entity_index.h"
#include "features/expr.h"
#include "features/grouping.h"
#include "features/shared_sources.h"
#include "features/window_kernel.h"
#include "table/duckdb_bridge.h"

namespace keel::features {

using table::Column;
using table::DataType;
using table::Table;

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Spine rows grouped by entity id of one Grouping, sorted by time within an entity.
struct SpineGroups {
  std::vector<uint32_t> rows;
  std::vector<Timestamp> ts;  // ts[i] = the time of spine row rows[i]: read sequentially
  std::vector<uint32_t> offsets;
  std::vector<uint32_t> unknown_rows;  // valid key and time, entity not in the source
};

}  // namespace

struct OfflineEngine::Cache {
  std::map<std::string, std::shared_ptr<const Table>> sources;  // by canonical source JSON
  std::map<std::string, std::shared_ptr<Grouping>> groupings;
  std::map<std::string, std::shared_ptr<Column>> expressions;
  std::map<std::string, std::shared_ptr<SpineGroups>> spine_groups;
  double load_seconds = 0;
  // Sources StartLoading read: counted in the next Build's report.
  size_t prefetched_rows = 0;
  double prefetched_seconds = 0;
  std::thread loader;  // StartLoading's; joined by Build and the destructor
};

OfflineEngine::OfflineEngine(const RepoConfig& config, table::DuckDb* duckdb, int threads)
    : config_(config),
      duckdb_(duckdb),
      threads_(threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency())),
      cache_(std::make_unique<Cache>()) {}

OfflineEngine::~OfflineEngine() {
  if (cache_->loader.joinable()) cache_->loader.join();
}

Result<ResolvedUse> ResolveUse(const FeatureUse& use, FeatureViewDef view, std::string version,
                               const std::vector<table::Field>& spine_fields) {
  auto has = [&](const std::string& name) {
    return std::any_of(spine_fields.begin(), spine_fields.end(),
                       [&](const table::Field& field) { return field.name == name; });
  };
  std::string what = "view '" + view.name + "'";
  ResolvedUse resolved;
  for (const auto& [key, column] : use.key_map) {
    bool known = std::any_of(view.entity.keys.begin(), view.entity.keys.end(),
                             [&](const table::Field& field) { return field.name == key; });
    if (!known) {
      return InvalidArgument(what + ": entity '" + view.entity.name + "' has no key '" + key + "'");
    }
  }
  for (size_t i = 0; i < view.entity.keys.size(); ++i) {
    const std::string& key = view.entity.keys[i].name;
    std::string column;
    if (auto it = use.key_map.find(key); it != use.key_map.end()) {
      column = it->second;
    } else if (has(view.key_columns[i])) {
      column = view.key_columns[i];
    } else if (has(key)) {
      column = key;
    } else {
      return InvalidArgument(what + ": the spine has no column for entity key '" + key +
                             "' (map one: " + view.name + "(" + key + "=column))");
    }
    auto field = std::find_if(spine_fields.begin(), spine_fields.end(),
                              [&](const table::Field& f) { return f.name == column; });
    if (field == spine_fields.end()) {
      return InvalidArgument(what + ": key '" + key + "' maps to '" + column +
                             "', which the spine does not have");
    }
    if (field->type != view.entity.keys[i].type) {
      return InvalidArgument(what + ": spine column '" + column + "' is " +
                             std::string(table::DataTypeName(field->type)) + " but entity key '" +
                             key + "' is " +
                             std::string(table::DataTypeName(view.entity.keys[i].type)));
    }
    resolved.spine_keys.push_back(column);
  }
  std::vector<std::string> names = view.FeatureNames();
  for (const std::string& feature : use.features) {
    if (std::find(names.begin(), names.end(), feature) == names.end()) {
      std::string list;
      for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
      return InvalidArgument(what + ": no feature '" + feature + "' (features: " + list + ")");
    }
  }
  resolved.features = use.features;
  resolved.prefix = use.alias.empty() ? view.name : use.alias;
  resolved.version = std::move(version);
  resolved.view = std::move(view);
  return resolved;
}

namespace {

std::string SourceKey(const FeatureViewDef& view) {
  // The source and its inputs decide the rows; reuse the canonical form.
  FeatureViewDef only_source;
  only_source.source = view.source;
  only_source.source_inputs = view.source_inputs;
  return CanonicalJson(only_source);
}

// Everything one Build call needs to compute a use's columns.
struct UseContext {
  const ResolvedUse* use;
  const Table* source;
  const Grouping* grouping;
  const SpineGroups* spine;
  const std::vector<Timestamp>* spine_ts;
  int threads;
};

Result<std::shared_ptr<SpineGroups>> BuildSpineGroups(const Table& spine,
                                                      const std::vector<Timestamp>& spine_ts,
                                                      const std::vector<uint8_t>& ts_valid,
                                                      const ResolvedUse& use,
                                                      const Grouping& grouping, int threads) {
  ASSIGN_OR_RETURN(std::vector<const Column*> keys, KeyColumns(spine, use.spine_keys, "spine"));
  std::vector<uint32_t> ids;
  Status status = grouping.index->Lookup(keys, &ids);
  if (!status.ok()) return status.WithContext("view '" + use.view.name + "' keys on the spine");
  auto groups = std::make_shared<SpineGroups>();
  GroupRows(ids, grouping.index->size(), &groups->rows, &groups->offsets, &ts_valid);
  SortWithinGroups(groups->offsets, &groups->rows, threads,
                   [&](uint32_t row) { return spine_ts[row]; });
  groups->ts.resize(groups->rows.size());
  for (size_t i = 0; i < groups->rows.size(); ++i) groups->ts[i] = spine_ts[groups->rows[i]];
  for (size_t row = 0; row < ids.size(); ++row) {
    if (ids[row] == EntityIndex::kNoEntity && ts_valid[row]) {
      groups->unknown_rows.push_back(static_cast<uint32_t>(row));
    }
  }
  return groups;
}

bool Selected(const ResolvedUse& use, const std::string& feature) {
  return use.features.empty() ||
         std::find(use.features.begin(), use.features.end(), feature) != use.features.end();
}

// The sliding-window kernels of one (value stream, window), with the outputs that read them.
struct WindowGroup {
  size_t stream = 0;
  WindowSpec window;
  uint32_t needs = 0;                                   // SlidingWindow::Needs of its outputs
  std::vector<std::pair<Aggregation, size_t>> outputs;  // aggregation, output column
  // With IntegerPrefixSums::Covers(needs): read from its stream's prefix sums
  // between the bounds of window `bounds` of the shared WindowBounds, when the
  // entity's values allow it (else through a SlidingWindow, as the others).
  bool prefix = false;
  size_t bounds = 0;
};

// One worker's kernels, reused across entities (Reset does not allocate once warm).
struct WindowWorker {
  std::vector<SlidingWindow> kernels;       // one per window group
  std::vector<IntegerPrefixSums> prefixes;  // one per stream
  std::vector<uint8_t> prefix_ready;        // per stream: its prefix sums hold this entity
  WindowBounds bounds;
};

// One output column. Workers write it densely in grouped (entity, time) order,
// which keeps their writes sequential; one scatter pass puts it in spine order.
struct WindowOutput {
  std::string name;
  bool is_count;
  std::vector<double> values;  // indexed like SpineGroups::rows
  std::vector<uint8_t> valid;
};

Status ComputeWindowView(const UseContext& context,
                         const std::vector<std::shared_ptr<Column>>& stream_columns, Table* out) {
  const ResolvedUse& use = *context.use;
  const Grouping& grouping = *context.grouping;
  const SpineGroups& spine = *context.spine;
  size_t spine_rows = context.spine_ts->size();
  std::vector<WindowGroup> groups;
  std::vector<WindowOutput> outputs;
  size_t stream_index = 0;
  for (const WindowFeatureDef& feature : use.view.window_features) {
    size_t stream = stream_index++;
    for (const WindowSpec& window : feature.windows) {
      std::string name = feature.OutputName(window);
      if (!Selected(use, name)) continue;
      auto group = std::find_if(groups.begin(), groups.end(), [&](const WindowGroup& g) {
        return stream_columns[g.stream] == stream_columns[stream] &&
               g.window.length == window.length && g.window.hop == window.hop;
      });
      if (group == groups.end()) {
        groups.push_back({stream, window, 0, {}});
        group = groups.end() - 1;
      }
      bool is_count = feature.aggregation == Aggregation::kCount;
      group->outputs.emplace_back(feature.aggregation, outputs.size());
      group->needs |= SlidingWindow::NeedsOf(feature.aggregation);
      outputs.push_back({name, is_count, {}, {}});
    }
  }
  // Groups of count, sum, mean and stddev share one pass: per stream, prefix
  // sums over the union of their needs; per distinct window, one tail.
  std::vector<uint32_t> prefix_needs(stream_columns.size(), 0);
  std::vector<uint8_t> has_prefix(stream_columns.size(), 0);
  std::vector<uint8_t> values_needed(stream_columns.size(), 0);
  std::vector<WindowSpec> bound_windows;
  for (WindowGroup& group : groups) {
    if (group.needs != 0) values_needed[group.stream] = 1;
    if (!IntegerPrefixSums::Covers(group.needs)) continue;
    group.prefix = true;
    prefix_needs[group.stream] |= group.needs;
    has_prefix[group.stream] = 1;
    auto known = std::find_if(bound_windows.begin(), bound_windows.end(), [&](WindowSpec w) {
      return w.length == group.window.length && w.hop == group.window.hop;
    });
    group.bounds = static_cast<size_t>(known - bound_windows.begin());
    if (known == bound_windows.end()) bound_windows.push_back(group.window);
  }
  std::vector<Stream> streams;
  for (size_t i = 0; i < stream_columns.size(); ++i) {
    // A stream only counted needs no values, only validity.
    streams.push_back(MakeStream(*stream_columns[i], grouping.order, values_needed[i] != 0));
  }
  for (WindowOutput& output : outputs) {
    output.values.resize(spine.rows.size());
    output.valid.resize(spine.rows.size());
  }
  ProgressBar progress("  " + use.prefix, spine.rows.size());
  std::atomic<uint64_t> done{0};
  size_t entities = grouping.index->size();
  std::vector<WindowWorker> workers;
  for (int worker = 0; worker < context.threads; ++worker) {
    workers.push_back({{},
                       std::vector<IntegerPrefixSums>(streams.size()),
                       std::vector<uint8_t>(streams.size(), 0),
                       WindowBounds(bound_windows)});
    for (const WindowGroup& group : groups) {
      workers.back().kernels.emplace_back(group.window, group.needs);
    }
  }
  ParallelForWorkers(entities, context.threads, [&](size_t entity, int worker_index) {
    size_t query_begin = spine.offsets[entity], query_end = spine.offsets[entity + 1];
    if (query_begin == query_end) return;
    WindowWorker& worker = workers[static_cast<size_t>(worker_index)];
    size_t row_begin = grouping.offsets[entity], row_end = grouping.offsets[entity + 1];
    auto series_of = [&](size_t stream_idx) {
      const Stream& stream = streams[stream_idx];
      EventSeries series;
      series.ts = grouping.sorted_ts.data() + row_begin;
      series.values = stream.values.empty() ? nullptr : stream.values.data() + row_begin;
      series.valid = stream.valid.empty() ? nullptr : stream.valid.data() + row_begin;
      series.size = row_end - row_begin;
      return series;
    };
    bool any_prefix = false;
    for (size_t stream_idx = 0; stream_idx < streams.size(); ++stream_idx) {
      worker.prefix_ready[stream_idx] =
          has_prefix[stream_idx] &&
          worker.prefixes[stream_idx].Reset(series_of(stream_idx), prefix_needs[stream_idx]);
      any_prefix = any_prefix || worker.prefix_ready[stream_idx];
    }
    if (any_prefix) {
      worker.bounds.Reset(grouping.sorted_ts.data() + row_begin, row_end - row_begin);
      for (size_t query = query_begin; query < query_end; ++query) {
        worker.bounds.AdvanceTo(spine.ts[query]);
        const size_t head = worker.bounds.Head();
        for (const WindowGroup& group : groups) {
          if (!group.prefix || !worker.prefix_ready[group.stream]) continue;
          const IntegerPrefixSums& prefix = worker.prefixes[group.stream];
          const size_t tail = worker.bounds.Tail(group.bounds);
          for (const auto& [aggregation, output] : group.outputs) {
            FeatureValue value = prefix.Read(aggregation, tail, head);
            outputs[output].values[query] = value.value;
            outputs[output].valid[query] = value.valid ? 1 : 0;
          }
        }
      }
    }
    for (size_t group_idx = 0; group_idx < groups.size(); ++group_idx) {
      const WindowGroup& group = groups[group_idx];
      if (group.prefix && worker.prefix_ready[group.stream]) continue;
      SlidingWindow& window = worker.kernels[group_idx];
      window.Reset(series_of(group.stream));
      for (size_t query = query_begin; query < query_end; ++query) {
        window.AdvanceTo(spine.ts[query]);
        for (const auto& [aggregation, output] : group.outputs) {
          FeatureValue value = window.Read(aggregation);
          outputs[output].values[query] = value.value;
          outputs[output].valid[query] = value.valid ? 1 : 0;
        }
      }
    }
    uint64_t total = done.fetch_add(query_end - query_begin) + (query_end - query_begin);
    if (worker_index == 0) progress.Update(total);
  });
  for (WindowOutput& output : outputs) {
    Column column(output.is_count ? DataType::kInt64 : DataType::kDouble, spine_rows);
    std::vector<uint8_t>& validity = column.mutable_validity();
    validity.assign(spine_rows, 0);  // rows without an entity or a time stay null
    for (size_t query = 0; query < spine.rows.size(); ++query) {
      uint32_t row = spine.rows[query];
      if (output.is_count) {
        column.ints()[row] = static_cast<int64_t>(output.values[query]);
      } else {
        column.doubles()[row] = output.values[query];
      }
      validity[row] = output.valid[query];
    }
    if (output.is_count) {
      for (uint32_t row : spine.unknown_rows) validity[row] = 1;  // count 0
    }
    std::vector<double>().swap(output.values);
    std::vector<uint8_t>().swap(output.valid);
    RETURN_IF_ERROR(out->AddColumn(use.ColumnName(output.name), std::move(column)));
  }
  return Status::Ok();
}

Status ComputeSnapshotView(const UseContext& context,
                           const std::vector<std::shared_ptr<Column>>& feature_columns,
                           Table* out) {
  const ResolvedUse& use = *context.use;
  const Grouping& grouping = *context.grouping;
  const SpineGroups& spine = *context.spine;
  std::vector<uint32_t> chosen(context.spine_ts->size(), Column::kNullRow);
  Duration ttl = use.view.ttl;
  ParallelFor(grouping.index->size(), context.threads, [&](size_t entity) {
    size_t position = grouping.offsets[entity], row_end = grouping.offsets[entity + 1];
    size_t row_begin = position;
    for (size_t query = spine.offsets[entity]; query < spine.offsets[entity + 1]; ++query) {
      uint32_t row = spine.rows[query];
      Timestamp t = spine.ts[query];
      while (position < row_end && grouping.sorted_ts[position] < t) ++position;
      if (position == row_begin) continue;  // nothing strictly before t
      Timestamp ts = grouping.sorted_ts[position - 1];
      if (ttl > 0 && ts != kMinTimestamp && t - ts > ttl) continue;  // too old
      chosen[row] = grouping.order[position - 1];
    }
  });
  for (size_t i = 0; i < use.view.snapshot_features.size(); ++i) {
    const std::string& name = use.view.snapshot_features[i].name;
    if (!Selected(use, name)) continue;
    RETURN_IF_ERROR(out->AddColumn(use.ColumnName(name), feature_columns[i]->Gather(chosen)));
  }
  return Status::Ok();
}

}  // namespace

namespace {

// Runs fn(task, inner_threads) for task in [0, tasks) on up to `threads`
// threads, one task at a time per thread (the tasks here are few and large).
// Each task gets the threads left over when there are fewer tasks than
// threads, so one large task still uses every thread.
template <typename Fn>
void RunTasks(size_t tasks, int threads, Fn&& fn) {
  if (tasks == 0) return;
  int outer = static_cast<int>(std::min<size_t>(tasks, static_cast<size_t>(threads)));
  int inner = std::max(1, threads / outer);
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t task = next.fetch_add(1); task < tasks; task = next.fetch_add(1)) fn(task, inner);
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < outer; ++i) pool.emplace_back(worker);
  worker();
  for (std::thread& thread : pool) thread.join();
}

// One use's share of a Build: what it reads and the columns it computes.
struct UsePlan {
  std::string source_key, grouping_key, spine_key;
  std::shared_ptr<const Table> source;
  std::vector<std::shared_ptr<Column>> columns;  // window features', then snapshot features'
  Table features;                                // the use's output columns
  Status status;
};

// The key of a grouping in the cache: the source and the view's key columns.
std::string GroupingKey(const std::string& source_key, const FeatureViewDef& view) {
  std::string key = source_key + "|";
  for (const std::string& column : view.key_columns) key += column + ",";
  return key;
}

// Reads the source of `view` through DuckDB.
Result<Table> ReadSource(const FeatureViewDef& view, const RepoConfig& config,
                         table::DuckDb* duckdb) {
  ASSIGN_OR_RETURN(std::string sql,
                   RegisterSource(view.source, view.source_inputs, config, duckdb));
  Result<Table> table = duckdb->Query(sql);
  if (!table.ok()) return table.status().WithContext("reading source '" + view.source.name + "'");
  return table;
}

// Reads the source of `view` through DuckDB, or takes it from `shared` (when
// not null) if another reader holds it or is reading it.
Result<std::shared_ptr<const Table>> ReadSharedSource(const FeatureViewDef& view,
                                                      const RepoConfig& config,
                                                      table::DuckDb* duckdb,
                                                      SharedSources* shared) {
  auto load = [&] { return ReadSource(view, config, duckdb); };
  if (shared != nullptr) return shared->Read(view.source, view.source_inputs, config, load);
  ASSIGN_OR_RETURN(Table table, load());
  return std::shared_ptr<const Table>(std::make_shared<Table>(std::move(table)));
}

}  // namespace

void OfflineEngine::StartLoading(std::vector<FeatureViewDef> views) {
  if (cache_->loader.joinable()) cache_->loader.join();
  cache_->loader = std::thread([this, views = std::move(views)] {
    // A database of its own: the caller may keep using its DuckDb meanwhile.
    Result<std::unique_ptr<table::DuckDb>> own = table::DuckDb::Open(threads_);
    if (!own.ok()) return;  // Build reads the sources itself
    for (const FeatureViewDef& view : views) {
      std::shared_ptr<const Table>& source = cache_->sources[SourceKey(view)];
      if (source != nullptr) continue;
      auto load_started = std::chrono::steady_clock::now();
      Result<std::shared_ptr<const Table>> table =
          ReadSharedSource(view, config_, own->get(), shared_);
      // A source that fails to load is read again by Build, which reports it.
      if (!table.ok()) continue;
      source = std::move(table).value();
      cache_->prefetched_rows += source->num_rows();
      cache_->prefetched_seconds += Seconds(load_started);
      cache_->load_seconds += Seconds(load_started);
    }
    // The groupings depend on the sources only: build them too while the
    // caller is busy with the spine (errors: Build builds it again and reports).
    // Side by side, each into a cache slot made before the workers start.
    std::vector<std::pair<const FeatureViewDef*, std::shared_ptr<Grouping>*>> pending;
    for (const FeatureViewDef& view : views) {
      std::string source_key = SourceKey(view);
      std::string grouping_key = GroupingKey(source_key, view);
      bool queued = cache_->groupings.count(grouping_key) > 0;
      std::shared_ptr<Grouping>& grouping = cache_->groupings[grouping_key];
      if (cache_->sources[source_key] == nullptr || queued) continue;
      pending.emplace_back(&view, &grouping);
    }
    RunTasks(pending.size(), threads_, [&](size_t task, int threads) {
      const FeatureViewDef& view = *pending[task].first;
      Result<std::shared_ptr<Grouping>> built =
          BuildGrouping(*cache_->sources.at(SourceKey(view)), view, threads);
      if (built.ok()) *pending[task].second = *built;
    });
  });
}

Result<Table> OfflineEngine::Build(Table spine, const std::string& time_column,
                                   const std::vector<ResolvedUse>& uses, BuildReport* report) {
  auto started = std::chrono::steady_clock::now();
  if (cache_->loader.joinable()) cache_->loader.join();
  double load_before = cache_->load_seconds - cache_->prefetched_seconds;
  size_t source_rows = cache_->prefetched_rows, features = 0;
  cache_->prefetched_rows = 0;
  cache_->prefetched_seconds = 0;
  Result<const Column*> time = spine.GetColumn(time_column);
  if (!time.ok()) return time.status().WithContext("spine time column");
  if ((*time)->type() != DataType::kTimestamp) {
    return InvalidArgument("spine time column '" + time_column + "' is " +
                           std::string(table::DataTypeName((*time)->type())) + ", not a timestamp");
  }
  if (spine.num_rows() == 0) return InvalidArgument("the spine is empty: no rows to build");
  if (spine.num_rows() >= Column::kNullRow) return InvalidArgument("the spine has too many rows");
  // Spine groups belong to one spine: a later Build on another spine (batch
  // prediction builds a spine in chunks) must not reuse them. Sources,
  // groupings and expressions depend on the sources only and stay cached.
  cache_->spine_groups.clear();
  // A private copy: the spine's columns move into the output, which then grows.
  const std::vector<Timestamp> spine_ts = (*time)->ints();
  std::vector<uint8_t> ts_valid(spine.num_rows(), 1);
  for (size_t row = 0; row < spine.num_rows(); ++row) ts_valid[row] = (*time)->IsValid(row);

  Table out = std::move(spine);  // features are appended to the spine's own columns
  // Stage 1, one use after the other (DuckDB and the expression cache are
  // shared): read sources, evaluate row expressions.
  std::vector<UsePlan> plans(uses.size());
  for (size_t index = 0; index < uses.size(); ++index) {
    const ResolvedUse& use = uses[index];
    const FeatureViewDef& view = use.view;
    UsePlan& plan = plans[index];
    plan.source_key = SourceKey(view);
    std::shared_ptr<const Table>& source = cache_->sources[plan.source_key];
    if (source == nullptr) {
      auto load_started = std::chrono::steady_clock::now();
      ASSIGN_OR_RETURN(source, ReadSharedSource(view, config_, duckdb_, shared_));
      cache_->load_seconds += Seconds(load_started);
      source_rows += source->num_rows();
    }
    plan.source = source;
    plan.grouping_key = GroupingKey(plan.source_key, view);
    plan.spine_key = plan.grouping_key + "|" + time_column + "|";
    for (const std::string& key : use.spine_keys) plan.spine_key += key + ",";
    // Row expressions run through keel's evaluator, once per source and expression.
    auto evaluate = [&](const std::string& text, const std::string& feature) -> Status {
      std::shared_ptr<Column>& column = cache_->expressions[plan.source_key + "|" + text];
      if (column == nullptr) {
        std::string what = "view '" + view.name + "' feature '" + feature + "'";
        ASSIGN_OR_RETURN(Expression expression, Expression::Parse(text.empty() ? "true" : text));
        Status bound = expression.Bind(source->fields());
        if (!bound.ok()) return bound.WithContext(what);
        ASSIGN_OR_RETURN(Column values, expression.Evaluate(*source));
        column = std::make_shared<Column>(std::move(values));
      }
      plan.columns.push_back(column);
      return Status::Ok();
    };
    for (const WindowFeatureDef& feature : view.window_features) {
      RETURN_IF_ERROR(evaluate(feature.expression, feature.name));
    }
    for (const SnapshotFeatureDef& feature : view.snapshot_features) {
      RETURN_IF_ERROR(evaluate(feature.expression, feature.name));
    }
  }
  // Stages 2-4 run independent pieces side by side (the uses of a service
  // are many and their serial parts - entity indexes, counting sorts, value
  // streams - would otherwise leave threads idle). Each piece's result does
  // not depend on the thread count, and errors are reported in use order.
  // Stage 2: the groupings not cached yet, each built once.
  std::vector<size_t> grouping_owner;  // the first use of each grouping to build
  for (size_t index = 0; index < uses.size(); ++index) {
    std::shared_ptr<Grouping>& grouping = cache_->groupings[plans[index].grouping_key];
    bool queued = std::any_of(grouping_owner.begin(), grouping_owner.end(), [&](size_t owner) {
      return plans[owner].grouping_key == plans[index].grouping_key;
    });
    if (grouping == nullptr && !queued) grouping_owner.push_back(index);
  }
  RunTasks(grouping_owner.size(), threads_, [&](size_t task, int threads) {
    size_t index = grouping_owner[task];
    Result<std::shared_ptr<Grouping>> built =
        BuildGrouping(*plans[index].source, uses[index].view, threads);
    if (!built.ok()) {
      plans[index].status = built.status().WithContext("view '" + uses[index].view.name + "'");
    } else {
      cache_->groupings.at(plans[index].grouping_key) = *built;  // the key exists: no rehash
    }
  });
  for (const UsePlan& plan : plans) RETURN_IF_ERROR(plan.status);
  // Stage 3: the spine's rows grouped the way each grouping needs them.
  std::vector<size_t> spine_owner;
  for (size_t index = 0; index < uses.size(); ++index) {
    bool queued = std::any_of(spine_owner.begin(), spine_owner.end(), [&](size_t owner) {
      return plans[owner].spine_key == plans[index].spine_key;
    });
    if (!queued) spine_owner.push_back(index);
    cache_->spine_groups[plans[index].spine_key];  // every key exists before the workers run
  }
  RunTasks(spine_owner.size(), threads_, [&](size_t task, int threads) {
    size_t index = spine_owner[task];
    Result<std::shared_ptr<SpineGroups>> groups =
        BuildSpineGroups(out, spine_ts, ts_valid, uses[index],
                         *cache_->groupings.at(plans[index].grouping_key), threads);
    if (!groups.ok()) {
      plans[index].status = groups.status();
    } else {
      cache_->spine_groups.at(plans[index].spine_key) = *groups;
    }
  });
  for (const UsePlan& plan : plans) RETURN_IF_ERROR(plan.status);
  // Stage 4: each use's feature columns, into a table of its own.
  RunTasks(uses.size(), threads_, [&](size_t index, int threads) {
    const ResolvedUse& use = uses[index];
    UsePlan& plan = plans[index];
    UseContext context{&use,
                       plan.source.get(),
                       cache_->groupings.at(plan.grouping_key).get(),
                       cache_->spine_groups.at(plan.spine_key).get(),
                       &spine_ts,
                       threads};
    Status status = use.view.kind == ViewKind::kWindow
                        ? ComputeWindowView(context, plan.columns, &plan.features)
                        : ComputeSnapshotView(context, plan.columns, &plan.features);
    if (!status.ok()) plan.status = status.WithContext("view '" + use.view.name + "'");
  });
  for (size_t index = 0; index < uses.size(); ++index) {
    UsePlan& plan = plans[index];
    RETURN_IF_ERROR(plan.status);
    for (size_t column = 0; column < plan.features.num_columns(); ++column) {
      Status added = out.AddColumn(plan.features.fields()[column].name,
                                   std::move(plan.features.mutable_column(column)));
      if (!added.ok()) return added.WithContext("view '" + uses[index].view.name + "'");
      ++features;
    }
    plan.features = Table();
  }
  if (report != nullptr) {
    report->load_seconds = cache_->load_seconds - load_before;
    report->compute_seconds = Seconds(started) - report->load_seconds;
    report->source_rows = source_rows;
    report->features = features;
  }
  return out;
}

}  // namespace keel::features
