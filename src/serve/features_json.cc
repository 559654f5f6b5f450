#include "serve/features_json.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>

namespace keel::serve {

using table::Column;
using table::DataType;

Result<table::Table> EntitiesFromJson(const nlohmann::ordered_json& entities) {
  if (!entities.is_object() || entities.empty()) {
    return InvalidArgument(
        "entities: expected an object of key columns, e.g. {\"origin\": [\"SFO\", \"LAX\"]}");
  }
  table::Table table;
  size_t rows = 0;
  bool first = true;
  for (const auto& [name, values] : entities.items()) {
    std::string where = "entities." + name;
    if (!values.is_array()) return InvalidArgument(where + ": expected an array of values");
    if (!first && values.size() != rows) {
      return InvalidArgument(where + ": " + std::to_string(values.size()) +
                             " values, but entities." + table.fields()[0].name + " has " +
                             std::to_string(rows));
    }
    rows = values.size();
    first = false;
    bool strings =
        std::any_of(values.begin(), values.end(),
                    [](const nlohmann::ordered_json& value) { return value.is_string(); });
    Column column(strings ? DataType::kString : DataType::kInt64, 0);
    column.Reserve(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      const nlohmann::ordered_json& value = values[i];
      if (value.is_null()) {
        column.AppendNull();
      } else if (strings && value.is_string()) {
        column.AppendString(value.get_ref<const std::string&>());
      } else if (!strings && value.is_number_integer() &&
                 (!value.is_number_unsigned() ||
                  value.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX))) {
        column.AppendInt64(value.get<int64_t>());
      } else {
        return InvalidArgument(where + "[" + std::to_string(i) + "]: expected " +
                               (strings ? "a string" : "an int64 integer") + ", got " +
                               DescribeJson(value));
      }
    }
    RETURN_IF_ERROR(table.AddColumn(name, std::move(column)));
  }
  if (rows == 0) return InvalidArgument("entities: no entity rows");
  return table;
}

std::string DescribeJson(const nlohmann::ordered_json& value) {
  // Never dump a container: its nesting is the client's, and dumping recurses.
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  std::string text = value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  if (text.size() > 64) text = text.substr(0, 60) + " ...";
  return text;
}

namespace {

// Length of the well-formed UTF-8 sequence at the start of `text`, or 0.
size_t Utf8SequenceLength(std::string_view text) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  auto continuation = [&](size_t i, unsigned char low = 0x80, unsigned char high = 0xBF) {
    return i < text.size() && byte(i) >= low && byte(i) <= high;
  };
  unsigned char lead = byte(0);
  if (lead >= 0xC2 && lead <= 0xDF) return continuation(1) ? 2 : 0;
  if (lead >= 0xE0 && lead <= 0xEF) {
    // E0 needs A0.. (no overlong forms); ED stops at 9F (no surrogates).
    unsigned char low = lead == 0xE0 ? 0xA0 : 0x80, high = lead == 0xED ? 0x9F : 0xBF;
    return continuation(1, low, high) && continuation(2) ? 3 : 0;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    unsigned char low = lead == 0xF0 ? 0x90 : 0x80, high = lead == 0xF4 ? 0x8F : 0xBF;
    return continuation(1, low, high) && continuation(2) && continuation(3) ? 4 : 0;
  }
  return 0;
}

void AppendDouble(double value, std::string* out) {
  if (!std::isfinite(value)) {
    out->append("null");
    return;
  }
  char buffer[32];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  std::string_view text(buffer, static_cast<size_t>(end - buffer));
  out->append(text);
  // Keep it a double for the reader: 3.0, not 3.
  if (text.find_first_of(".e") == std::string_view::npos) out->append(".0");
}

void AppendInt(int64_t value, std::string* out) {
  char buffer[24];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out->append(buffer, static_cast<size_t>(end - buffer));
}

void AppendStatuses(const std::vector<features::FeatureStatus>& statuses, std::string* out) {
  out->push_back('[');
  for (size_t row = 0; row < statuses.size(); ++row) {
    if (row > 0) out->push_back(',');
    out->push_back('"');
    out->append(features::FeatureStatusName(statuses[row]));
    out->push_back('"');
  }
  out->push_back(']');
}

void AppendNames(const std::vector<std::string>& names, std::string* out) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonString(names[i], out);
  }
}

// Appends `"values":[...],"statuses":[...]` of one feature.
void AppendFeatureColumn(const features::OnlineFeatures& features, size_t feature, size_t rows,
                         std::string* out) {
  out->append("{\"values\":[");
  for (size_t row = 0; row < rows; ++row) {
    if (row > 0) out->push_back(',');
    AppendJsonValue(features.values[feature], row, out);
  }
  out->append("],\"statuses\":");
  AppendStatuses(features.statuses[feature], out);
}

constexpr std::string_view kEpoch = "\"1970-01-01T00:00:00Z\"";

// The quoted text of each row's last event time: the features of one view
// share their entity's event time, so most are formatted once per row.
class TimestampTexts {
 public:
  TimestampTexts(size_t rows, std::string (*format)(Timestamp)) : format_(format), texts_(rows) {}
  const std::string& Quoted(size_t row, Timestamp ts) {
    auto& [cached_ts, text] = texts_[row];
    if (text.empty() || cached_ts != ts) {
      cached_ts = ts;
      text = "\"" + format_(ts) + "\"";
    }
    return text;
  }

 private:
  std::string (*format_)(Timestamp);
  std::vector<std::pair<Timestamp, std::string>> texts_;
};

}  // namespace

namespace {

// kPlainJsonChar[c]: byte c goes into a JSON string as it is (printable ASCII
// but '"' and '\\').
constexpr std::array<bool, 256> kPlainJsonChar = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x80; ++c) plain[c] = c != '"' && c != '\\';
  return plain;
}();

}  // namespace

void AppendJsonString(std::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    // A run of characters that need no escaping (names, codes: usually all
    // of them) is appended whole.
    size_t plain = i;
    while (plain < text.size() && kPlainJsonChar[static_cast<unsigned char>(text[plain])]) ++plain;
    if (plain > i) {
      out->append(text.substr(i, plain - i));
      i = plain;
      if (i == text.size()) break;
    }
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      size_t length = Utf8SequenceLength(text.substr(i));
      if (length == 0) {
        out->append("\\ufffd");
        ++i;
      } else {
        out->append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

void AppendJsonValue(const Column& column, size_t row, std::string* out) {
  if (!column.IsValid(row)) {
    out->append("null");
    return;
  }
  switch (column.type()) {
    case DataType::kString:
      AppendJsonString(column.StringAt(row), out);
      return;
    case DataType::kDouble:
      AppendDouble(column.doubles()[row], out);
      return;
    case DataType::kBool:
      out->append(column.bools()[row] != 0 ? "true" : "false");
      return;
    case DataType::kInt64:
    case DataType::kTimestamp:
      AppendInt(column.ints()[row], out);
      return;
  }
}

std::string FormatRfc3339(Timestamp ts) {
  // FormatTimestamp: "2024-03-03 12:00:00" plus ".ffffff" when not whole seconds.
  std::string text = FormatTimestamp(ts);
  size_t space = text.find(' ');
  if (space != std::string::npos) text[space] = 'T';
  size_t dot = text.find('.');
  if (dot != std::string::npos && text.size() == dot + 7 && text.compare(dot + 4, 3, "000") == 0) {
    text.resize(dot + 4);  // whole milliseconds: 3 digits, as protobuf writes them
  }
  return text + "Z";
}

std::string FeaturesJson(const features::OnlineFeatures& features, size_t rows) {
  std::string out;
  out.reserve(64 + features.names.size() * (48 + rows * 40));
  out.append("{\"metadata\":{\"feature_names\":[");
  AppendNames(features.names, &out);
  out.append("]},\"results\":[");
  TimestampTexts texts(rows, FormatTimestamp);
  for (size_t feature = 0; feature < features.names.size(); ++feature) {
    if (feature > 0) out.push_back(',');
    AppendFeatureColumn(features, feature, rows, &out);
    out.append(",\"event_timestamps\":[");
    for (size_t row = 0; row < rows; ++row) {
      if (row > 0) out.push_back(',');
      Timestamp ts = features.event_timestamps[feature][row];
      out.append(ts == kMinTimestamp ? std::string_view("null") : texts.Quoted(row, ts));
    }
    out.append("]}");
  }
  out.append("]}");
  return out;
}

std::string FeastFeaturesJson(const table::Table& entities,
                              const features::OnlineFeatures& features,
                              const std::vector<std::string>& feature_names) {
  size_t rows = entities.num_rows();
  std::string out;
  out.reserve(64 + (entities.num_columns() + features.names.size()) * (48 + rows * 48));
  out.append("{\"metadata\":{\"feature_names\":[");
  std::vector<std::string> entity_names;
  for (const table::Field& field : entities.fields()) entity_names.push_back(field.name);
  AppendNames(entity_names, &out);
  if (!entity_names.empty() && !feature_names.empty()) out.push_back(',');
  AppendNames(feature_names, &out);
  out.append("]},\"results\":[");
  for (size_t key = 0; key < entities.num_columns(); ++key) {
    if (key > 0) out.push_back(',');
    const Column& column = entities.column(key);
    out.append("{\"values\":[");
    for (size_t row = 0; row < rows; ++row) {
      if (row > 0) out.push_back(',');
      AppendJsonValue(column, row, &out);
    }
    out.append("],\"statuses\":[");
    for (size_t row = 0; row < rows; ++row) {
      if (row > 0) out.push_back(',');
      out.append(column.IsValid(row) ? "\"PRESENT\"" : "\"NULL_VALUE\"");
    }
    out.append("],\"event_timestamps\":[");
    for (size_t row = 0; row < rows; ++row) {
      if (row > 0) out.push_back(',');
      out.append(kEpoch);
    }
    out.append("]}");
  }
  TimestampTexts texts(rows, FormatRfc3339);
  for (size_t feature = 0; feature < features.names.size(); ++feature) {
    if (feature > 0 || entities.num_columns() > 0) out.push_back(',');
    AppendFeatureColumn(features, feature, rows, &out);
    out.append(",\"event_timestamps\":[");
    for (size_t row = 0; row < rows; ++row) {
      if (row > 0) out.push_back(',');
      Timestamp ts = features.event_timestamps[feature][row];
      out.append(ts == kMinTimestamp ? kEpoch : std::string_view(texts.Quoted(row, ts)));
    }
    out.append("]}");
  }
  out.append("]}");
  return out;
}

std::string ErrorJson(std::string_view message) {
  std::string out = "{\"error\":";
  AppendJsonString(message, &out);
  out.push_back('}');
  return out;
}

Result<Timestamp> RequestTime(const nlohmann::ordered_json& body, Timestamp now) {
  auto at = body.find("at");
  if (at == body.end() || at->is_null()) return now;
  if (!at->is_string()) {
    return InvalidArgument("at: expected a time string such as \"2024-03-03 12:00:00\", got " +
                           DescribeJson(*at));
  }
  Result<Timestamp> parsed = ParseTimestamp(at->get_ref<const std::string&>());
  if (!parsed.ok()) return parsed.status().WithContext("at");
  return parsed;
}

}  // namespace keel::serve
