#include "serve/event_ingest.h"

#include <algorithm>
#include <cstdio>

#include "features/online_events.h"
#include "serve/features_json.h"

namespace keel::serve {

using table::Column;
using table::DataType;
using table::Table;

constexpr std::string_view kEventIdMember = "event_id";

// One source that takes events: its schema, its row-level expectations and
// the updaters of the views that read it.
struct EventIngestor::Target {
  features::SourceDef source;
  std::vector<table::Field> fields;
  std::vector<validate::CheckDef> checks;  // the row-level ones
  std::vector<std::unique_ptr<features::OnlineUpdater>> updaters;
};

namespace {

bool IsRowLevel(const validate::CheckDef& check) {
  switch (check.kind) {
    case validate::CheckKind::kRange:
    case validate::CheckKind::kValues:
    case validate::CheckKind::kRegex:
      return true;
    case validate::CheckKind::kNullShare:
      return check.max_null_share == 0.0;
    default:
      return false;
  }
}

// Appends one JSON value to a column of `type`; on a mismatch returns what
// was expected ("a number").
std::string_view AppendJson(const nlohmann::ordered_json& value, DataType type, Column* column) {
  if (value.is_null()) {
    column->AppendNull();
    return {};
  }
  switch (type) {
    case DataType::kInt64:
      if (!value.is_number_integer() ||
          (value.is_number_unsigned() && value.get<uint64_t>() > INT64_MAX)) {
        return "an int64 integer";
      }
      column->AppendInt64(value.get<int64_t>());
      return {};
    case DataType::kDouble:
      if (!value.is_number()) return "a number";
      column->AppendDouble(value.get<double>());
      return {};
    case DataType::kBool:
      if (!value.is_boolean()) return "true or false";
      column->AppendBool(value.get<bool>());
      return {};
    case DataType::kString:
      if (!value.is_string()) return "a string";
      column->AppendString(value.get_ref<const std::string&>());
      return {};
    case DataType::kTimestamp: {
      if (!value.is_string()) return "a timestamp string such as \"2001-06-15 10:30:00\"";
      Result<Timestamp> ts = ParseTimestamp(value.get_ref<const std::string&>());
      if (!ts.ok()) return "a timestamp string such as \"2001-06-15 10:30:00\"";
      column->AppendInt64(*ts);
      return {};
    }
  }
  return "a supported value";
}

// Why `event` (events[index]) cannot be a row of `fields`, or "".
std::string EventProblem(const nlohmann::ordered_json& event, size_t index,
                         const std::vector<table::Field>& fields, const std::string& time_column) {
  std::string where = "events[" + std::to_string(index) + "]";
  if (!event.is_object()) return where + ": expected an object, got " + DescribeJson(event);
  for (const auto& [name, value] : event.items()) {
    bool known = name == kEventIdMember ||
                 std::any_of(fields.begin(), fields.end(),
                             [&](const table::Field& field) { return field.name == name; });
    if (!known) {
      std::string names;
      for (const table::Field& field : fields) names += (names.empty() ? "" : ", ") + field.name;
      return where + "." + name + ": unknown column (the source has " + names + ")";
    }
  }
  auto id = event.find(kEventIdMember);
  if (id != event.end() && !id->is_string() && !id->is_number_integer()) {
    return where + ".event_id: expected a string or an integer, got " + DescribeJson(*id);
  }
  for (const table::Field& field : fields) {
    auto value = event.find(field.name);
    if (field.name == time_column && (value == event.end() || value->is_null())) {
      return where + "." + field.name + ": the event time is required";
    }
    if (value == event.end()) continue;
    Column scratch(field.type, 0);
    std::string_view expected = AppendJson(*value, field.type, &scratch);
    if (!expected.empty()) {
      return where + "." + field.name + ": expected " + std::string(expected) + ", got " +
             DescribeJson(*value);
    }
  }
  return "";
}

}  // namespace

Result<std::unique_ptr<EventIngestor>> EventIngestor::Make(const features::Repository& repo,
                                                           features::Catalog* catalog,
                                                           table::DuckDb* duckdb,
                                                           store::OnlineStore* store,
                                                           IngestOptions options) {
  std::unique_ptr<EventIngestor> ingestor(new EventIngestor());
  ingestor->store_ = store;
  ingestor->options_ = options;
  ASSIGN_OR_RETURN(std::vector<features::ViewVersionInfo> current, catalog->ListCurrent());
  for (const features::ViewVersionInfo& info : current) {
    const features::SourceDef& source = info.definition.source;
    if (source.format == features::SourceFormat::kQuery || source.timestamp_column.empty()) {
      continue;
    }
    // The versions to keep fresh: the current one and any materialized other.
    ASSIGN_OR_RETURN(std::vector<features::ViewVersionInfo> versions, catalog->History(info.name));
    std::vector<std::shared_ptr<const features::OnlineView>> views;
    for (const features::ViewVersionInfo& version : versions) {
      // An older version over another source takes that source's events, not these.
      if (!version.current && version.definition.source.name != source.name) continue;
      ASSIGN_OR_RETURN(std::shared_ptr<const features::OnlineView> view,
                       features::OnlineView::Make(version.definition, version.version));
      if (!version.current) {
        ASSIGN_OR_RETURN(std::optional<Timestamp> watermark,
                         features::MaterializedWatermark(store, *view));
        if (!watermark.has_value()) continue;
      }
      views.push_back(std::move(view));
    }
    auto found = std::find_if(
        ingestor->targets_.begin(), ingestor->targets_.end(),
        [&](const std::unique_ptr<Target>& target) { return target->source.name == source.name; });
    Target* target = found == ingestor->targets_.end() ? nullptr : found->get();
    if (target == nullptr) {
      auto made = std::make_unique<Target>();
      made->source = source;
      ASSIGN_OR_RETURN(
          std::string sql,
          features::RegisterSource(source, info.definition.source_inputs, repo.config, duckdb));
      Result<Table> empty = duckdb->Query("SELECT * FROM (" + sql + ") AS keel_source LIMIT 0");
      if (!empty.ok()) return empty.status().WithContext("reading source '" + source.name + "'");
      made->fields = empty->fields();
      if (const features::SourceDef* defined = repo.FindSource(source.name)) {
        for (const validate::CheckDef& check : defined->checks) {
          if (IsRowLevel(check)) made->checks.push_back(check);
        }
      }
      target = made.get();
      ingestor->targets_.push_back(std::move(made));
    }
    for (std::shared_ptr<const features::OnlineView>& view : views) {
      const bool current = view->version() == info.version;
      Result<std::unique_ptr<features::OnlineUpdater>> updater =
          features::OnlineUpdater::Make(view, target->fields);
      if (!updater.ok()) {
        // The current version must bind to the source as it is; an older one
        // that no longer does (its columns changed) is served as it was.
        if (current) return updater.status();
        std::fprintf(stderr, "keel: events do not update %s: %s\n", view->store_view().c_str(),
                     updater.status().message().c_str());
        continue;
      }
      target->updaters.push_back(std::move(updater).value());
    }
  }
  std::sort(ingestor->targets_.begin(), ingestor->targets_.end(),
            [](const std::unique_ptr<Target>& a, const std::unique_ptr<Target>& b) {
              return a->source.name < b->source.name;
            });
  return ingestor;
}

EventIngestor::~EventIngestor() = default;

std::vector<std::string> EventIngestor::sources() const {
  std::vector<std::string> names;
  for (const std::unique_ptr<Target>& target : targets_) names.push_back(target->source.name);
  return names;
}

Status EventIngestor::ParseEvents(const Target& target,
                                  const std::vector<const nlohmann::ordered_json*>& events,
                                  const std::vector<std::string>& default_ids,
                                  std::vector<uint8_t>* valid, Table* rows, Column* ids,
                                  IngestReport* report) const {
  std::vector<Column> columns;
  for (const table::Field& field : target.fields) columns.emplace_back(field.type, 0);
  *ids = Column(DataType::kString, 0);
  for (size_t index = 0; index < events.size(); ++index) {
    if (!(*valid)[index]) continue;
    const nlohmann::ordered_json& event = *events[index];
    std::string problem = EventProblem(event, index, target.fields, target.source.timestamp_column);
    if (!problem.empty()) {
      (*valid)[index] = 0;
      report->rejected.push_back({index, std::move(problem)});
      continue;
    }
    for (size_t field_idx = 0; field_idx < target.fields.size(); ++field_idx) {
      auto value = event.find(target.fields[field_idx].name);
      if (value == event.end()) {
        columns[field_idx].AppendNull();
      } else {
        AppendJson(*value, target.fields[field_idx].type, &columns[field_idx]);
      }
    }
    auto id = event.find(kEventIdMember);
    if (id != event.end() && id->is_string()) {
      ids->AppendString(id->get_ref<const std::string&>());
    } else if (id != event.end() && id->is_number_integer()) {
      ids->AppendString(id->dump());
    } else if (index < default_ids.size() && !default_ids[index].empty()) {
      ids->AppendString(default_ids[index]);
    } else {
      ids->AppendNull();
    }
  }
  *rows = Table();
  for (size_t field_idx = 0; field_idx < target.fields.size(); ++field_idx) {
    RETURN_IF_ERROR(rows->AddColumn(target.fields[field_idx].name, std::move(columns[field_idx])));
  }
  return Status::Ok();
}

Status EventIngestor::CheckRows(const Target& target,
                                const std::vector<const nlohmann::ordered_json*>& events,
                                const std::vector<std::string>& default_ids, const Table& parsed,
                                std::vector<uint8_t>* valid, IngestReport* report) const {
  if (target.checks.empty()) return Status::Ok();
  validate::CheckContext context;
  context.source = target.source.name;
  context.time_column = target.source.timestamp_column;
  auto check = [&](const std::vector<uint8_t>& include, validate::ValidationReport* out) -> Status {
    Table rows;
    Column ids;
    std::vector<uint8_t> keep = include;
    IngestReport scratch;
    RETURN_IF_ERROR(ParseEvents(target, events, default_ids, &keep, &rows, &ids, &scratch));
    ASSIGN_OR_RETURN(*out, validate::RunChecks(target.checks, rows, context));
    return Status::Ok();
  };
  // The batch as already parsed; single events are parsed again only when it fails.
  ASSIGN_OR_RETURN(validate::ValidationReport batch,
                   validate::RunChecks(target.checks, parsed, context));
  bool errors = false;
  for (const validate::CheckResult& result : batch.results) {
    if (result.outcome == validate::Outcome::kWarn) report->warnings.push_back(result);
    errors = errors || result.outcome == validate::Outcome::kFail;
  }
  if (!errors) return Status::Ok();
  // Find the events that fail, one by one (only when the batch failed).
  for (size_t index = 0; index < events.size(); ++index) {
    if (!(*valid)[index]) continue;
    std::vector<uint8_t> one(events.size(), 0);
    one[index] = 1;
    validate::ValidationReport single;
    RETURN_IF_ERROR(check(one, &single));
    std::string reason;
    for (const validate::CheckResult* failure : single.Failures()) {
      reason += (reason.empty() ? "" : "; ") + failure->check + " check on " + failure->column +
                " failed: " + failure->value + " (expected " + failure->threshold + ")";
    }
    if (reason.empty()) continue;
    (*valid)[index] = 0;
    report->rejected.push_back({index, "events[" + std::to_string(index) + "]: " + reason});
  }
  return Status::Ok();
}

Result<IngestReport> EventIngestor::Ingest(std::string_view source,
                                           const std::vector<const nlohmann::ordered_json*>& events,
                                           bool all_or_nothing,
                                           const std::vector<std::string>& default_ids) {
  auto found = std::find_if(
      targets_.begin(), targets_.end(),
      [&](const std::unique_ptr<Target>& target) { return target->source.name == source; });
  if (found == targets_.end()) {
    std::string names;
    for (const std::string& name : sources()) names += (names.empty() ? "" : ", ") + name;
    return NotFound("source '" + std::string(source) + "' takes no events (sources that do: " +
                    (names.empty() ? "none" : names) + ")");
  }
  const Target& target = **found;
  IngestReport report;
  report.events = events.size();
  std::vector<uint8_t> valid(events.size(), 1);
  Table rows;
  Column ids;
  RETURN_IF_ERROR(ParseEvents(target, events, default_ids, &valid, &rows, &ids, &report));
  RETURN_IF_ERROR(CheckRows(target, events, default_ids, rows, &valid, &report));
  std::sort(report.rejected.begin(), report.rejected.end(),
            [](const RejectedEvent& a, const RejectedEvent& b) { return a.index < b.index; });
  if (!report.rejected.empty()) {
    if (all_or_nothing) return report;
    RETURN_IF_ERROR(ParseEvents(target, events, default_ids, &valid, &rows, &ids, &report));
  }
  report.accepted = rows.num_rows();
  std::lock_guard<std::mutex> lock(write_mutex_);
  // Every view's update in one store write: one WAL sync per batch, and on
  // RocksDB all views or none.
  features::PendingWrites pending;
  for (const std::unique_ptr<features::OnlineUpdater>& updater : target.updaters) {
    IngestReport::View view;
    view.view = updater->view().store_view();
    Status applied = updater->Apply(rows, store_, &view.stats,
                                    {.event_ids = &ids,
                                     .dedup_ttl = options_.dedup_ttl,
                                     .record_newest = true,
                                     .pending = &pending});
    if (!applied.ok()) return applied.WithContext("applying events to " + view.view);
    report.views.push_back(std::move(view));
  }
  Status written = pending.Commit(store_);
  if (!written.ok()) return written.WithContext("writing the events' updates");
  return report;
}

Result<std::vector<ViewFreshness>> EventIngestor::Freshness() {
  std::vector<ViewFreshness> out;
  for (const std::unique_ptr<Target>& target : targets_) {
    for (const std::unique_ptr<features::OnlineUpdater>& updater : target->updaters) {
      ViewFreshness freshness;
      freshness.view = updater->view().store_view();
      freshness.source = target->source.name;
      ASSIGN_OR_RETURN(freshness.newest_event,
                       features::NewestEventApplied(store_, updater->view()));
      out.push_back(std::move(freshness));
    }
  }
  return out;
}

}  // namespace keel::serve
