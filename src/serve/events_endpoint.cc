#include "serve/events_endpoint.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "serve/features_json.h"

namespace keel::serve {

using Json = nlohmann::ordered_json;

namespace {

std::string_view TrimLeft(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  return text;
}

// Parses the body into events (owned by `storage`) and the source name.
Status ParseBody(std::string_view body, std::string_view source_param, Json* storage,
                 std::vector<const Json*>* events, std::string* source) {
  *source = std::string(source_param);
  std::string_view text = TrimLeft(body);
  if (text.empty()) return InvalidArgument("body: empty (expected events)");
  Json whole;
  bool parsed_whole = true;
  std::string whole_error;
  try {
    whole = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& error) {
    parsed_whole = false;
    whole_error = JsonErrorMessage(error.what());
  }
  if (parsed_whole && whole.is_object() && whole.contains("events")) {
    *storage = std::move(whole);
    const Json& envelope = *storage;
    for (const auto& [name, value] : envelope.items()) {
      if (name != "source" && name != "events") {
        return InvalidArgument(name + ": unknown member (expected source, events)");
      }
    }
    auto named = envelope.find("source");
    if (named != envelope.end()) {
      if (!named->is_string()) {
        return InvalidArgument("source: expected a string, got " + DescribeJson(*named));
      }
      if (!source->empty() && *source != named->get_ref<const std::string&>()) {
        return InvalidArgument("source: '" + named->get<std::string>() +
                               "' in the body, but ?source=" + *source);
      }
      *source = named->get<std::string>();
    }
    const Json& list = envelope["events"];
    if (!list.is_array()) return InvalidArgument("events: expected an array of event objects");
    for (const Json& event : list) events->push_back(&event);
  } else if (parsed_whole && whole.is_array()) {
    *storage = std::move(whole);
    for (const Json& event : *storage) events->push_back(&event);
  } else if (text.front() == '{') {
    // JSON lines: one event per line (a single object is one line).
    *storage = Json::array();
    size_t line_number = 0;
    std::string_view rest = text;
    while (!rest.empty()) {
      size_t end = rest.find('\n');
      std::string_view line = rest.substr(0, end);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      ++line_number;
      if (TrimLeft(line).empty()) continue;
      try {
        storage->push_back(Json::parse(line.begin(), line.end()));
      } catch (const Json::exception& error) {
        return InvalidArgument("body line " + std::to_string(line_number) +
                               ": not valid JSON: " + JsonErrorMessage(error.what()));
      }
    }
    for (const Json& event : *storage) events->push_back(&event);
  } else if (!parsed_whole) {
    return InvalidArgument("body: not valid JSON: " + whole_error);
  } else {
    return InvalidArgument(
        "body: expected {\"source\": ..., \"events\": [...]}, an array of events or JSON lines");
  }
  if (source->empty()) {
    return InvalidArgument("source: missing (give ?source=NAME or {\"source\": NAME, ...})");
  }
  return Status::Ok();
}

void AppendStat(std::string_view name, uint64_t value, std::string* out) {
  out->append(",\"").append(name).append("\":").append(std::to_string(value));
}

}  // namespace

Reply IngestEvents(EventIngestor* ingestor, std::string_view body, std::string_view source_param,
                   size_t max_events) {
  Json storage;
  std::vector<const Json*> events;
  std::string source;
  if (Status parsed = ParseBody(body, source_param, &storage, &events, &source); !parsed.ok()) {
    return ErrorReply(parsed);
  }
  if (events.size() > max_events) {
    return ErrorReply(413, "events: " + std::to_string(events.size()) +
                               " events, more than the limit of " + std::to_string(max_events) +
                               " per request");
  }
  if (events.empty()) return ErrorReply(400, "events: no events");
  Result<IngestReport> report = ingestor->Ingest(source, events, /*all_or_nothing=*/true);
  if (!report.ok()) return ErrorReply(report.status());
  std::string out;
  if (!report->rejected.empty()) {
    out = "{\"error\":";
    AppendJsonString(
        std::to_string(report->rejected.size()) + " of " + std::to_string(report->events) +
            " events rejected; nothing applied (first: " + report->rejected.front().reason + ")",
        &out);
    out += ",\"rejected\":[";
    for (size_t i = 0; i < report->rejected.size(); ++i) {
      if (i > 0) out += ',';
      out += "{\"index\":" + std::to_string(report->rejected[i].index) + ",\"reason\":";
      AppendJsonString(report->rejected[i].reason, &out);
      out += '}';
    }
    out += "]}";
    return Reply{422, std::move(out)};
  }
  out = "{\"events\":" + std::to_string(report->events) +
        ",\"accepted\":" + std::to_string(report->accepted) + ",\"views\":[";
  for (size_t i = 0; i < report->views.size(); ++i) {
    const IngestReport::View& view = report->views[i];
    if (i > 0) out += ',';
    out += "{\"view\":";
    AppendJsonString(view.view, &out);
    AppendStat("applied", view.stats.rows, &out);
    AppendStat("duplicates", view.stats.duplicates, &out);
    AppendStat("late", view.stats.late, &out);
    AppendStat("no_key", view.stats.no_key, &out);
    out += '}';
  }
  out += "],\"warnings\":[";
  for (size_t i = 0; i < report->warnings.size(); ++i) {
    const validate::CheckResult& warning = report->warnings[i];
    if (i > 0) out += ',';
    out += "{\"check\":";
    AppendJsonString(warning.check, &out);
    for (auto [name, value] :
         {std::pair{"column", &warning.column}, std::pair{"value", &warning.value},
          std::pair{"threshold", &warning.threshold}, std::pair{"detail", &warning.detail}}) {
      out.append(",\"").append(name).append("\":");
      AppendJsonString(*value, &out);
    }
    out += '}';
  }
  out += "]}";
  return Reply{200, std::move(out)};
}

Reply FreshnessReply(EventIngestor* ingestor, Timestamp now) {
  Result<std::vector<ViewFreshness>> views = ingestor->Freshness();
  if (!views.ok()) return ErrorReply(views.status());
  std::string out = "{\"views\":[";
  for (size_t i = 0; i < views->size(); ++i) {
    const ViewFreshness& view = (*views)[i];
    if (i > 0) out += ',';
    out += "{\"view\":";
    AppendJsonString(view.view, &out);
    out += ",\"source\":";
    AppendJsonString(view.source, &out);
    if (view.newest_event.has_value()) {
      out += ",\"newest_event\":";
      AppendJsonString(FormatTimestamp(*view.newest_event), &out);
      char seconds[48];
      std::snprintf(seconds, sizeof(seconds), "%.6f",
                    static_cast<double>(now - *view.newest_event) / kMicrosPerSecond);
      out += ",\"freshness_seconds\":" + std::string(seconds);
    } else {
      out += ",\"newest_event\":null,\"freshness_seconds\":null";
    }
    out += '}';
  }
  out += "]}";
  return Reply{200, std::move(out)};
}

}  // namespace keel::serve
