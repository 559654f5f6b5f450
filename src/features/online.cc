#include "features/online.h"

#include <algorithm>
#include <cmath>

#include "common/bytes.h"
#include "common/progress.h"
#include "common/scratch.h"
#include "features/grouping.h"
#include "features/online_events.h"

namespace keel::features {

using table::Column;
using table::DataType;
using table::Table;

std::string_view FeatureStatusName(FeatureStatus status) {
  switch (status) {
    case FeatureStatus::kPresent:
      return "PRESENT";
    case FeatureStatus::kNullValue:
      return "NULL_VALUE";
    case FeatureStatus::kNotFound:
      return "NOT_FOUND";
    case FeatureStatus::kOutsideMaxAge:
      return "OUTSIDE_MAX_AGE";
    case FeatureStatus::kInvalid:
      return "INVALID";
  }
  return "INVALID";
}

bool EncodeEntityKey(std::string_view entity, const std::vector<const Column*>& keys, size_t row,
                     std::string* out) {
  for (const Column* key : keys) {
    if (!key->IsValid(row)) return false;
  }
  PutBytes(out, entity);
  for (const Column* key : keys) {
    if (key->type() == DataType::kString) {
      PutU8(out, 's');
      PutBytes(out, key->StringAt(row));
    } else {
      PutU8(out, 'i');
      PutI64(out, key->ints()[row]);
    }
  }
  return true;
}

// --- OnlineView --------------------------------------------------------------

Result<std::shared_ptr<const OnlineView>> OnlineView::Make(FeatureViewDef def,
                                                           std::string version) {
  std::shared_ptr<OnlineView> view(new OnlineView());
  if (def.kind == ViewKind::kWindow) {
    Duration longest = 0;
    for (const WindowFeatureDef& feature : def.window_features) {
      for (const WindowSpec& window : feature.windows) {
        auto stream = std::find_if(
            view->streams_.begin(), view->streams_.end(), [&](const StreamDef& existing) {
              return existing.expression == feature.expression && existing.hop == window.hop;
            });
        if (stream == view->streams_.end()) {
          view->streams_.push_back({feature.expression, window.hop, 0});
          stream = view->streams_.end() - 1;
        }
        stream->retention = std::max(stream->retention, window.length);
        longest = std::max(longest, window.length + window.hop);
        OnlineOutput output;
        output.name = feature.OutputName(window);
        output.type =
            feature.aggregation == Aggregation::kCount ? DataType::kInt64 : DataType::kDouble;
        output.stream = static_cast<size_t>(stream - view->streams_.begin());
        output.aggregation = feature.aggregation;
        output.length = window.length;
        view->outputs_.push_back(std::move(output));
      }
    }
    view->store_ttl_ = longest;
  } else {
    for (size_t i = 0; i < def.snapshot_features.size(); ++i) {
      OnlineOutput output;
      output.name = def.snapshot_features[i].name;
      output.type = def.snapshot_features[i].type;
      output.snapshot_feature = i;
      view->outputs_.push_back(std::move(output));
    }
    view->store_ttl_ = def.ttl > 0 ? 2 * def.ttl : 0;
  }
  for (const StreamDef& stream : view->streams_) {
    Result<Expression> parsed =
        Expression::Parse(stream.expression.empty() ? "true" : stream.expression);
    if (!parsed.ok()) return parsed.status().WithContext("view '" + def.name + "'");
  }
  view->store_view_ = def.name + "@" + version;
  view->version_ = std::move(version);
  view->def_ = std::move(def);
  return std::shared_ptr<const OnlineView>(std::move(view));
}

int OnlineView::FindOutput(std::string_view name) const {
  for (size_t i = 0; i < outputs_.size(); ++i) {
    if (outputs_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// --- EntityState encoding ----------------------------------------------------

namespace {

// Format (little-endian): u8 version, u8 kind (1 window, 2 snapshot), i64
// newest_ts, u64 next_arrival, i64 applied_through; window: u32 streams, each
// a u32-length-prefixed BucketedSeries encoding; snapshot: u8 has_row, i64
// row_ts, u64 row_arrival, u32 features, each u8 valid + the value (i64 for
// int64/timestamp/bool, f64 for double, length-prefixed bytes for string).
constexpr uint8_t kStateVersion = 1;
constexpr uint8_t kWindowKind = 1;
constexpr uint8_t kSnapshotKind = 2;

}  // namespace

EntityState NewEntityState(const OnlineView& view) {
  EntityState state;
  for (const OnlineView::StreamDef& stream : view.streams()) state.series.emplace_back(stream.hop);
  state.row.resize(view.def().snapshot_features.size());
  return state;
}

std::string EncodeEntityState(const OnlineView& view, const EntityState& state) {
  std::string out;
  bool window = view.def().kind == ViewKind::kWindow;
  PutU8(&out, kStateVersion);
  PutU8(&out, window ? kWindowKind : kSnapshotKind);
  PutI64(&out, state.newest_ts);
  PutU64(&out, state.next_arrival);
  PutI64(&out, state.applied_through);
  if (window) {
    PutU32(&out, static_cast<uint32_t>(state.series.size()));
    std::string series;
    for (const BucketedSeries& one : state.series) {
      series.clear();
      one.AppendEncoded(&series);
      PutBytes(&out, series);
    }
    return out;
  }
  PutU8(&out, state.has_row ? 1 : 0);
  PutI64(&out, state.row_ts);
  PutU64(&out, state.row_arrival);
  PutU32(&out, static_cast<uint32_t>(state.row.size()));
  for (size_t i = 0; i < state.row.size(); ++i) {
    const ScalarValue& value = state.row[i];
    PutU8(&out, value.valid ? 1 : 0);
    switch (view.def().snapshot_features[i].type) {
      case DataType::kDouble:
        PutF64(&out, value.double_value);
        break;
      case DataType::kString:
        PutBytes(&out, value.string_value);
        break;
      default:
        PutI64(&out, value.int_value);
    }
  }
  return out;
}

Result<EntityState> DecodeEntityState(const OnlineView& view, std::string_view bytes) {
  const auto bad = [&](const std::string& why) {
    return InvalidArgument("online value of view " + view.store_view() + ": " + why);
  };
  ByteReader reader(bytes);
  uint8_t version = 0, kind = 0;
  EntityState state;
  if (!reader.U8(&version) || !reader.U8(&kind) || !reader.I64(&state.newest_ts) ||
      !reader.U64(&state.next_arrival) || !reader.I64(&state.applied_through)) {
    return bad("truncated header");
  }
  if (version != kStateVersion) return bad("unknown encoding version " + std::to_string(version));
  bool window = view.def().kind == ViewKind::kWindow;
  if (kind != (window ? kWindowKind : kSnapshotKind)) return bad("a value of another view kind");
  if (window) {
    uint32_t streams = 0;
    if (!reader.U32(&streams)) return bad("truncated");
    if (streams != view.streams().size()) return bad("stream count does not match the view");
    for (uint32_t i = 0; i < streams; ++i) {
      std::string_view series;
      if (!reader.LengthPrefixed(&series)) return bad("truncated stream");
      Result<BucketedSeries> decoded = BucketedSeries::Decode(series);
      if (!decoded.ok()) return decoded.status().WithContext("view " + view.store_view());
      if (decoded->hop() != view.streams()[i].hop) return bad("stream hop does not match the view");
      state.series.push_back(std::move(decoded).value());
    }
  } else {
    uint8_t has_row = 0;
    uint32_t features = 0;
    if (!reader.U8(&has_row) || !reader.I64(&state.row_ts) || !reader.U64(&state.row_arrival) ||
        !reader.U32(&features)) {
      return bad("truncated");
    }
    if (has_row > 1) return bad("bad row flag");
    state.has_row = has_row == 1;
    if (features != view.def().snapshot_features.size()) {
      return bad("feature count does not match the view");
    }
    state.row.resize(features);
    for (uint32_t i = 0; i < features; ++i) {
      ScalarValue& value = state.row[i];
      uint8_t valid = 0;
      bool ok = reader.U8(&valid);
      switch (view.def().snapshot_features[i].type) {
        case DataType::kDouble:
          ok = ok && reader.F64(&value.double_value);
          break;
        case DataType::kString: {
          std::string_view text;
          ok = ok && reader.LengthPrefixed(&text);
          value.string_value = text;
          break;
        }
        default:
          ok = ok && reader.I64(&value.int_value);
      }
      if (!ok || valid > 1) return bad("truncated or bad feature " + std::to_string(i));
      value.valid = valid == 1;
    }
  }
  if (!reader.AtEnd()) return bad("trailing bytes");
  return state;
}

// --- The window writer and reader --------------------------------------------

namespace {

// A window view's stored value, parsed only as far as the reader needs.
struct WindowValue {
  bool present = false;
  Timestamp newest_ts = kMinTimestamp;
  uint64_t next_arrival = 0;
  Timestamp applied_through = kMinTimestamp;
  std::vector<std::string_view> streams;  // each a BucketedSeries encoding
};

Status ParseWindowValue(const OnlineView& view, std::string_view bytes, WindowValue* out) {
  const auto bad = [&](const std::string& why) {
    return InvalidArgument("online value of view " + view.store_view() + ": " + why);
  };
  ByteReader reader(bytes);
  uint8_t version = 0, kind = 0;
  uint32_t streams = 0;
  if (!reader.U8(&version) || !reader.U8(&kind) || !reader.I64(&out->newest_ts) ||
      !reader.U64(&out->next_arrival) || !reader.I64(&out->applied_through) ||
      !reader.U32(&streams)) {
    return bad("truncated header");
  }
  if (version != kStateVersion) return bad("unknown encoding version " + std::to_string(version));
  if (kind != kWindowKind) return bad("a value of another view kind");
  if (streams != view.streams().size()) return bad("stream count does not match the view");
  out->streams.resize(streams);
  for (std::string_view& stream : out->streams) {
    if (!reader.LengthPrefixed(&stream)) return bad("truncated stream");
  }
  if (!reader.AtEnd()) return bad("trailing bytes");
  out->present = true;
  return Status::Ok();
}

// The window writer's path: applies one entity's rows (in arrival order) to
// its stored value - or to an empty one when `stored` is null - stream by
// stream with BucketedSeries::ApplyEncoded, so only the touched buckets are
// decoded. The result is byte for byte EncodeEntityState of the state
// DecodeEntityState, Add and EvictBefore would give (the same rules: a row
// counts as late when any stream rejects it as older than its horizon; the
// newest accepted row moves the horizons). Sets *skipped (and writes nothing)
// when the stored value already includes `applied_through`.
Status ApplyWindowRows(const OnlineView& view, const std::optional<std::string_view>& stored,
                       std::span<const uint32_t> rows, std::span<const Timestamp> times,
                       const std::vector<table::Column>& streams, Timestamp applied_through,
                       ApplyStats* stats, std::string* out, bool* skipped) {
  WindowValue value;
  std::vector<std::string> empty;  // fresh encodings for a new entity
  if (stored.has_value()) {
    RETURN_IF_ERROR(ParseWindowValue(view, *stored, &value));
  } else {
    for (const OnlineView::StreamDef& stream : view.streams()) {
      empty.emplace_back();
      BucketedSeries(stream.hop).AppendEncoded(&empty.back());
    }
    value.streams.assign(empty.begin(), empty.end());
  }
  *skipped = applied_through != kMinTimestamp && value.applied_through >= applied_through;
  if (*skipped) return Status::Ok();
  const size_t num_streams = view.streams().size();
  std::vector<Timestamp> horizons(num_streams);
  for (size_t s = 0; s < num_streams; ++s) {
    ASSIGN_OR_RETURN(horizons[s], BucketedSeries::EncodedHorizon(value.streams[s]));
  }
  std::vector<std::vector<BucketedSeries::Row>> stream_rows(num_streams);
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint32_t row = rows[i];
    const Timestamp ts = times[i];
    // Materialization: rows before the value's own watermark are in it already
    // (a resumed run after a crash between entity writes and the view's
    // watermark, possibly to another --end).
    if (applied_through != kMinTimestamp && ts < value.applied_through) continue;
    const uint64_t arrival = value.next_arrival++;
    bool accepted = true;
    for (size_t s = 0; s < num_streams; ++s) {
      const table::Column& column = streams[s];
      // A count reads only validity (string expressions count too).
      double number = column.type() == DataType::kString ? 0.0 : column.NumericAt(row);
      stream_rows[s].push_back({ts, arrival, number, column.IsValid(row)});
      accepted = accepted && ts >= horizons[s] && ts >= kMinTimestamp + view.streams()[s].hop;
    }
    if (!accepted) {
      ++stats->late;
      continue;
    }
    value.newest_ts = std::max(value.newest_ts, ts);
    stats->newest = std::max(stats->newest, ts);
    ++stats->rows;
  }
  if (applied_through != kMinTimestamp) {
    value.applied_through = std::max(value.applied_through, applied_through);
  }
  out->clear();
  PutU8(out, kStateVersion);
  PutU8(out, kWindowKind);
  PutI64(out, value.newest_ts);
  PutU64(out, value.next_arrival);
  PutI64(out, value.applied_through);
  PutU32(out, static_cast<uint32_t>(num_streams));
  std::string series;
  for (size_t s = 0; s < num_streams; ++s) {
    const OnlineView::StreamDef& stream = view.streams()[s];
    Timestamp evict = kMinTimestamp;
    if (value.newest_ts != kMinTimestamp &&
        value.newest_ts - stream.retention > kMinTimestamp + stream.hop) {
      evict = FloorToHop(value.newest_ts - stream.retention, stream.hop);
    }
    RETURN_IF_ERROR(BucketedSeries::ApplyEncoded(value.streams[s], stream_rows[s], evict, &series));
    PutBytes(out, series);
  }
  return Status::Ok();
}

}  // namespace

// --- OnlineUpdater -----------------------------------------------------------

Result<std::unique_ptr<OnlineUpdater>> OnlineUpdater::Make(
    std::shared_ptr<const OnlineView> view, const std::vector<table::Field>& source_fields) {
  std::unique_ptr<OnlineUpdater> updater(new OnlineUpdater());
  const FeatureViewDef& def = view->def();
  auto bind = [&](const std::string& text, std::vector<Expression>* out) -> Status {
    ASSIGN_OR_RETURN(Expression expression, Expression::Parse(text.empty() ? "true" : text));
    Status bound = expression.Bind(source_fields);
    if (!bound.ok()) return bound.WithContext("view '" + def.name + "'");
    out->push_back(std::move(expression));
    return Status::Ok();
  };
  for (const OnlineView::StreamDef& stream : view->streams()) {
    RETURN_IF_ERROR(bind(stream.expression, &updater->stream_expressions_));
  }
  for (const SnapshotFeatureDef& feature : def.snapshot_features) {
    RETURN_IF_ERROR(bind(feature.expression, &updater->snapshot_expressions_));
  }
  updater->fields_ = source_fields;
  updater->view_ = std::move(view);
  return updater;
}

namespace {

void SetScalar(const Column& column, size_t row, ScalarValue* value) {
  value->valid = column.IsValid(row);
  if (!value->valid) return;
  switch (column.type()) {
    case DataType::kDouble:
      value->double_value = column.doubles()[row];
      break;
    case DataType::kString:
      value->string_value = column.StringAt(row);
      break;
    case DataType::kBool:
      value->int_value = column.bools()[row];
      break;
    default:
      value->int_value = column.ints()[row];
  }
}

}  // namespace

Status OnlineUpdater::Apply(const Table& rows, store::OnlineStore* store, ApplyStats* stats,
                            const ApplyOptions& options) {
  const bool fresh = options.fresh;
  const Timestamp applied_through = options.applied_through;
  const FeatureViewDef& def = view_->def();
  const OnlineView& view = *view_;
  if (rows.fields() != fields_) {
    return InvalidArgument("view '" + def.name + "': rows do not have the source's schema (" +
                           rows.SchemaToString() + ")");
  }
  if (rows.num_rows() == 0) {
    if (!options.meta.empty()) return store->Write({}, options.meta);
    return Status::Ok();
  }
  if (options.event_ids != nullptr && options.event_ids->size() != rows.num_rows()) {
    return InvalidArgument("view '" + def.name + "': " + std::to_string(rows.num_rows()) +
                           " rows but " + std::to_string(options.event_ids->size()) + " event ids");
  }
  // The same grouping and order as the offline engine: (ts, created, row order).
  ASSIGN_OR_RETURN(std::shared_ptr<Grouping> grouping, BuildGrouping(rows, def, 1));
  ASSIGN_OR_RETURN(std::vector<const Column*> keys,
                   KeyColumns(rows, def.key_columns, "view '" + def.name + "'"));
  std::vector<Column> streams, snapshot;
  for (const Expression& expression : stream_expressions_) {
    ASSIGN_OR_RETURN(Column column, expression.Evaluate(rows));
    streams.push_back(std::move(column));
  }
  for (const Expression& expression : snapshot_expressions_) {
    ASSIGN_OR_RETURN(Column column, expression.Evaluate(rows));
    snapshot.push_back(std::move(column));
  }
  stats->no_key += rows.num_rows() - grouping->order.size();

  size_t entities = grouping->index->size();
  std::vector<std::string> entity_keys(entities);
  for (size_t entity = 0; entity < entities; ++entity) {
    EncodeEntityKey(def.entity.name, keys, grouping->order[grouping->offsets[entity]],
                    &entity_keys[entity]);
  }
  std::vector<RecentEventsWrite> recent_events;  // per entity; empty: none to write
  std::vector<std::string> encoded;
  std::vector<size_t> written;
  encoded.reserve(entities);
  const bool dedup = options.event_ids != nullptr && !fresh;
  // Everything below runs on `stored` (the entity states, then with event
  // ids their recent-id sets) as the store holds them, uncopied.
  auto apply = [&](std::span<const std::optional<std::string_view>> stored) -> Status {
    if (dedup) {
      RETURN_IF_ERROR(DropSeenEventsIn(view, *options.event_ids, stored.subspan(entities, entities),
                                       stored.subspan(2 * entities, entities), WallClockNow(),
                                       options.dedup_ttl, grouping.get(), &recent_events,
                                       &stats->duplicates));
    }
    std::unique_ptr<ProgressBar> progress;
    if (!progress_label_.empty()) {
      progress = std::make_unique<ProgressBar>(progress_label_, entities);
    }
    for (size_t entity = 0; entity < entities; ++entity) {
      if (progress != nullptr && entity % 64 == 0) progress->Update(entity);
      // Every row of the entity was a duplicate: nothing to write.
      if (grouping->offsets[entity] == grouping->offsets[entity + 1]) continue;
      const std::optional<std::string_view> previous = fresh ? std::nullopt : stored[entity];
      if (def.kind == ViewKind::kWindow) {
        size_t begin = grouping->offsets[entity], end = grouping->offsets[entity + 1];
        std::string value;
        bool skipped = false;
        RETURN_IF_ERROR(ApplyWindowRows(view, previous,
                                        std::span(grouping->order).subspan(begin, end - begin),
                                        std::span(grouping->sorted_ts).subspan(begin, end - begin),
                                        streams, applied_through, stats, &value, &skipped));
        if (skipped) continue;
        encoded.push_back(std::move(value));
        written.push_back(entity);
        continue;
      }
      EntityState state;
      if (previous.has_value()) {
        Result<EntityState> decoded = DecodeEntityState(view, *previous);
        if (!decoded.ok()) return decoded.status();
        state = std::move(decoded).value();
        if (applied_through != kMinTimestamp && state.applied_through >= applied_through) continue;
      } else {
        state = NewEntityState(view);
      }
      for (size_t i = grouping->offsets[entity]; i < grouping->offsets[entity + 1]; ++i) {
        uint32_t row = grouping->order[i];
        Timestamp ts = grouping->sorted_ts[i];
        if (applied_through != kMinTimestamp && ts < state.applied_through) continue;  // as above
        uint64_t arrival = state.next_arrival++;
        // A snapshot view (window views took ApplyWindowRows above).
        if (state.has_row && ts < state.row_ts) {
          ++stats->rows;  // applied, but not the latest: changes nothing
          stats->newest = std::max(stats->newest, ts);
          continue;
        }
        state.has_row = true;
        state.row_ts = ts;
        state.row_arrival = arrival;
        for (size_t f = 0; f < snapshot.size(); ++f) SetScalar(snapshot[f], row, &state.row[f]);
        state.newest_ts = std::max(state.newest_ts, ts);
        stats->newest = std::max(stats->newest, ts);
        ++stats->rows;
      }
      if (applied_through != kMinTimestamp) {
        state.applied_through = std::max(state.applied_through, applied_through);
      }
      encoded.push_back(EncodeEntityState(view, state));
      written.push_back(entity);
    }
    if (progress != nullptr) progress->Finish();
    return Status::Ok();
  };
  if (fresh) {
    RETURN_IF_ERROR(apply({}));
  } else {
    // One batched read: every entity's state, then (with event ids) every
    // entity's recent-id sets, main and tail.
    const std::string main_view = RecentEventsView(view), tail_view = RecentEventsTailView(view);
    std::vector<store::StoreKey> store_keys;
    store_keys.reserve(dedup ? 3 * entities : entities);
    for (const std::string& key : entity_keys) store_keys.push_back({key, view.store_view()});
    if (dedup) {
      for (const std::string& key : entity_keys) store_keys.push_back({key, main_view});
      for (const std::string& key : entity_keys) store_keys.push_back({key, tail_view});
    }
    RETURN_IF_ERROR(store->ReadViews(store_keys, apply));
  }
  std::vector<store::StoreEntry> entries;
  entries.reserve(3 * written.size());
  const std::string main_view = RecentEventsView(view), tail_view = RecentEventsTailView(view);
  for (size_t i = 0; i < written.size(); ++i) {
    const std::string& entity_key = entity_keys[written[i]];
    entries.push_back({{entity_key, view.store_view()}, encoded[i], view.store_ttl()});
    // The entity's recent event ids go with its state (an entity's entries
    // are written atomically).
    if (recent_events.empty()) continue;
    const RecentEventsWrite& sets = recent_events[written[i]];
    if (!sets.main.empty()) {
      entries.push_back({{entity_key, main_view}, sets.main, 2 * options.dedup_ttl});
    }
    if (!sets.tail.empty()) {
      entries.push_back({{entity_key, tail_view}, sets.tail, 2 * options.dedup_ttl});
    }
  }
  std::vector<store::MetaEntry> meta(options.meta.begin(), options.meta.end());
  std::string newest_name, newest_value;
  if (options.record_newest && stats->newest != kMinTimestamp) {
    ASSIGN_OR_RETURN(std::optional<Timestamp> recorded, NewestEventApplied(store, view));
    newest_name = NewestEventMetaName(view);
    newest_value = std::to_string(std::max(stats->newest, recorded.value_or(kMinTimestamp)));
    meta.push_back({newest_name, newest_value});
  }
  if (options.pending != nullptr) {
    options.pending->Add(entries, meta);
  } else {
    RETURN_IF_ERROR(store->Write(entries, meta));
  }
  stats->entities += written.size();
  return Status::Ok();
}

// --- PendingWrites -----------------------------------------------------------

void PendingWrites::Add(std::span<const store::StoreEntry> entries,
                        std::span<const store::MetaEntry> meta) {
  auto keep = [&](std::string_view bytes) -> std::string_view {
    return bytes_.emplace_back(bytes);
  };
  for (const store::StoreEntry& entry : entries) {
    entries_.push_back(
        {{keep(entry.key.entity), keep(entry.key.view)}, keep(entry.value), entry.ttl});
  }
  for (const store::MetaEntry& record : meta) {
    meta_.push_back({keep(record.name), keep(record.value)});
  }
}

Status PendingWrites::Commit(store::OnlineStore* store) {
  Status written = store->Write(entries_, meta_);
  entries_.clear();
  meta_.clear();
  bytes_.clear();
  return written;
}

// --- Reads -------------------------------------------------------------------

namespace {

// Buffers of one ReadOnlineFeatures call, kept per thread and reused, so a
// lookup allocates little besides its result once they have grown.
struct ReadScratch {
  std::vector<std::string> entity_keys;  // [use * rows + row]
  std::vector<uint8_t> key_valid;
  std::vector<store::StoreKey> store_keys;
  std::vector<size_t> key_slot;  // store_keys[k] is (use, row) slot key_slot[k]
  std::vector<std::optional<std::string_view>> value_of;  // per slot
  std::vector<std::optional<EntityState>> states;
  std::vector<WindowValue> windows;
  std::vector<FeatureValue> window_values;                 // [row * outputs + output]
  std::vector<std::vector<Duration>> stream_lengths;       // per stream, decreasing
  std::vector<std::vector<AggregateState>> stream_states;  // reused across rows
  std::vector<uint8_t> selected;                           // per output
  std::vector<size_t> length_index;                        // per output: its window in its stream
  std::vector<uint32_t> needs;                             // per stream: SlidingWindow::Needs
};

// The calling thread's ReadScratch (common/scratch.h).
using ReadScratchLease = common::ScratchLease<ReadScratch>;

// The features of `uses` from the values read (scratch.value_of), into `out`.
Status BuildOnlineFeatures(const std::vector<ResolvedUse>& uses,
                           const std::vector<std::shared_ptr<const OnlineView>>& views,
                           Timestamp now, size_t rows, ReadScratch& scratch, OnlineFeatures* out) {
  // Reuse the capacity of a result the caller passes again.
  size_t features = 0;
  std::vector<FeatureStatus>* statuses_out = nullptr;
  std::vector<Timestamp>* event_ts_out = nullptr;
  auto next_feature = [&](std::string_view prefix, std::string_view name, DataType type) {
    if (out->names.size() <= features) out->names.emplace_back();
    if (out->statuses.size() <= features) out->statuses.emplace_back();
    if (out->event_timestamps.size() <= features) out->event_timestamps.emplace_back();
    std::string& column_name = out->names[features];
    column_name.assign(prefix);
    column_name.append("__");
    column_name.append(name);
    if (out->values.size() <= features) out->values.emplace_back(type, 0);
    Column& column = out->values[features];
    if (column.type() == type && type != DataType::kString && type != DataType::kBool) {
      // The caller's column from its previous lookup: emptied, keeping its buffers.
      column.mutable_validity().clear();
      type == DataType::kDouble ? column.doubles().clear() : column.ints().clear();
      column.ResizeAfterBulkAppend(0);
    } else {
      column = Column(type, 0);
    }
    column.Reserve(rows);
    statuses_out = &out->statuses[features];
    event_ts_out = &out->event_timestamps[features];
    statuses_out->assign(rows, FeatureStatus::kNotFound);
    event_ts_out->assign(rows, kMinTimestamp);
    ++features;
  };
  std::vector<std::optional<EntityState>>& states = scratch.states;
  std::vector<WindowValue>& windows = scratch.windows;
  states.resize(rows);
  if (windows.size() < rows) windows.resize(rows);
  for (size_t u = 0; u < uses.size(); ++u) {
    const ResolvedUse& use = uses[u];
    const OnlineView& view = *views[u];
    bool window = view.def().kind == ViewKind::kWindow;
    for (size_t row = 0; row < rows; ++row) {
      states[row].reset();
      windows[row].present = false;
      const std::optional<std::string_view>& stored = scratch.value_of[u * rows + row];
      if (!stored.has_value()) continue;
      if (window) {
        RETURN_IF_ERROR(ParseWindowValue(view, *stored, &windows[row]));
      } else {
        Result<EntityState> decoded = DecodeEntityState(view, *stored);
        if (!decoded.ok()) return decoded.status();
        states[row] = std::move(decoded).value();
      }
    }
    const std::vector<OnlineOutput>& outputs = view.outputs();
    std::vector<uint8_t>& selected = scratch.selected;
    selected.assign(outputs.size(), 0);
    for (size_t o = 0; o < outputs.size(); ++o) {
      selected[o] = use.features.empty() || std::find(use.features.begin(), use.features.end(),
                                                      outputs[o].name) != use.features.end();
    }
    if (window) {
      // Every window of a stream in one pass over its buckets (ReadEncodedWindows).
      std::vector<std::vector<Duration>>& stream_lengths = scratch.stream_lengths;
      std::vector<std::vector<AggregateState>>& stream_states = scratch.stream_states;
      if (stream_lengths.size() < view.streams().size()) {
        stream_lengths.resize(view.streams().size());
      }
      for (size_t s = 0; s < view.streams().size(); ++s) stream_lengths[s].clear();
      // Per stream, what its selected outputs read (a count reads no sums).
      scratch.needs.assign(view.streams().size(), 0);
      for (size_t o = 0; o < outputs.size(); ++o) {
        if (!selected[o]) continue;
        stream_lengths[outputs[o].stream].push_back(outputs[o].length);
        scratch.needs[outputs[o].stream] |= SlidingWindow::NeedsOf(outputs[o].aggregation);
      }
      if (stream_states.size() < view.streams().size()) stream_states.resize(view.streams().size());
      for (size_t s = 0; s < view.streams().size(); ++s) {
        std::vector<Duration>& lengths = stream_lengths[s];
        std::sort(lengths.begin(), lengths.end(), std::greater<>());
        lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
        // Never shrunk: an AggregateState is large, and making one costs.
        if (stream_states[s].size() < lengths.size()) stream_states[s].resize(lengths.size());
      }
      scratch.length_index.assign(outputs.size(), 0);
      for (size_t o = 0; o < outputs.size(); ++o) {
        if (!selected[o]) continue;
        const std::vector<Duration>& lengths = stream_lengths[outputs[o].stream];
        scratch.length_index[o] = static_cast<size_t>(
            std::find(lengths.begin(), lengths.end(), outputs[o].length) - lengths.begin());
      }
      std::vector<FeatureValue>& window_values = scratch.window_values;
      window_values.assign(rows * outputs.size(), FeatureValue());
      for (size_t row = 0; row < rows; ++row) {
        if (!windows[row].present) continue;
        for (size_t s = 0; s < view.streams().size(); ++s) {
          if (stream_lengths[s].empty()) continue;
          Status read = BucketedSeries::ReadEncodedWindows(
              windows[row].streams[s], stream_lengths[s], now,
              std::span(stream_states[s].data(), stream_lengths[s].size()), scratch.needs[s]);
          if (!read.ok()) return read.WithContext("view " + view.store_view());
        }
        for (size_t o = 0; o < outputs.size(); ++o) {
          if (!selected[o]) continue;
          window_values[row * outputs.size() + o] = Finalize(
              outputs[o].aggregation, stream_states[outputs[o].stream][scratch.length_index[o]]);
        }
      }
    }
    for (size_t output_index = 0; output_index < outputs.size(); ++output_index) {
      if (!selected[output_index]) continue;
      const OnlineOutput& output = outputs[output_index];
      next_feature(use.prefix, output.name, output.type);
      Column& column = out->values[features - 1];
      std::vector<FeatureStatus>& statuses = *statuses_out;
      std::vector<Timestamp>& event_ts = *event_ts_out;
      for (size_t row = 0; row < rows; ++row) {
        const std::optional<EntityState>& state = states[row];
        FeatureStatus& status = statuses[row];
        if (!scratch.key_valid[u * rows + row]) {
          status = FeatureStatus::kInvalid;
          column.AppendNull();
          continue;
        }
        if (window) {
          const WindowValue& stored = windows[row];
          if (!stored.present) {  // as offline: an unknown entity counts 0
            output.aggregation == Aggregation::kCount ? column.AppendInt64(0) : column.AppendNull();
            continue;
          }
          event_ts[row] = stored.newest_ts;
          const FeatureValue& value = scratch.window_values[row * outputs.size() + output_index];
          if (!value.valid) {
            status = FeatureStatus::kNullValue;
            column.AppendNull();
          } else {
            status = FeatureStatus::kPresent;
            output.type == DataType::kInt64 ? column.AppendInt64(static_cast<int64_t>(value.value))
                                            : column.AppendDouble(value.value);
          }
          continue;
        }
        if (!state.has_value() || !state->has_row) {
          column.AppendNull();
          continue;
        }
        event_ts[row] = state->row_ts;
        Duration ttl = view.def().ttl;
        const ScalarValue& value = state->row[output.snapshot_feature];
        if (ttl > 0 && state->row_ts != kMinTimestamp && now - state->row_ts > ttl) {
          status = FeatureStatus::kOutsideMaxAge;
          column.AppendNull();
        } else if (!value.valid) {
          status = FeatureStatus::kNullValue;
          column.AppendNull();
        } else {
          status = FeatureStatus::kPresent;
          switch (output.type) {
            case DataType::kDouble:
              column.AppendDouble(value.double_value);
              break;
            case DataType::kString:
              column.AppendString(value.string_value);
              break;
            case DataType::kBool:
              column.AppendBool(value.int_value != 0);
              break;
            default:
              column.AppendInt64(value.int_value);
          }
        }
      }
    }
  }
  out->names.resize(features);
  out->values.resize(features);
  out->statuses.resize(features);
  out->event_timestamps.resize(features);
  return Status::Ok();
}

}  // namespace

Status ReadOnlineFeatures(store::OnlineStore* store, const Table& entities,
                          const std::vector<ResolvedUse>& uses,
                          const std::vector<std::shared_ptr<const OnlineView>>& views,
                          Timestamp now, OnlineFeatures* out) {
  ReadScratchLease lease;
  ReadScratch& scratch = lease.scratch();
  const size_t rows = entities.num_rows();
  const size_t slots = uses.size() * rows;
  // One key per (use, entity row); all read in one batch.
  if (scratch.entity_keys.size() < slots) scratch.entity_keys.resize(slots);
  scratch.key_valid.assign(slots, 0);
  scratch.store_keys.clear();
  scratch.key_slot.clear();
  for (size_t u = 0; u < uses.size(); ++u) {
    ASSIGN_OR_RETURN(std::vector<const Column*> keys,
                     KeyColumns(entities, uses[u].spine_keys, "entities"));
    for (size_t row = 0; row < rows; ++row) {
      size_t slot = u * rows + row;
      std::string& key = scratch.entity_keys[slot];
      key.clear();
      scratch.key_valid[slot] = EncodeEntityKey(uses[u].view.entity.name, keys, row, &key) ? 1 : 0;
    }
  }
  for (size_t slot = 0; slot < slots; ++slot) {
    if (!scratch.key_valid[slot]) continue;
    scratch.store_keys.push_back({scratch.entity_keys[slot], views[slot / rows]->store_view()});
    scratch.key_slot.push_back(slot);
  }
  // The values are used where the store holds them (no copy), while it pins them.
  return store->ReadViews(scratch.store_keys,
                          [&](std::span<const std::optional<std::string_view>> values) {
                            scratch.value_of.assign(slots, std::nullopt);
                            for (size_t k = 0; k < scratch.key_slot.size(); ++k) {
                              scratch.value_of[scratch.key_slot[k]] = values[k];
                            }
                            return BuildOnlineFeatures(uses, views, now, rows, scratch, out);
                          });
}

}  // namespace keel::features
