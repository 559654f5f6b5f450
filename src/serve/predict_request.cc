#include "serve/predict_request.h"

#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "serve/features_json.h"

namespace keel::serve {
namespace {

using Json = nlohmann::ordered_json;
using table::DataType;

// The type a JSON column takes: every non-null value must agree (integers
// and reals make a real column).
Result<DataType> ColumnType(const std::vector<const Json*>& values, const std::string& name,
                            const std::function<std::string(size_t)>& where) {
  bool any = false, real = false, integer = false, text = false, boolean = false;
  for (size_t row = 0; row < values.size(); ++row) {
    const Json* value = values[row];
    if (value == nullptr || value->is_null()) continue;
    any = true;
    if (value->is_boolean()) {
      boolean = true;
    } else if (value->is_number_integer()) {
      integer = true;
    } else if (value->is_number_float()) {
      real = true;
    } else if (value->is_string()) {
      text = true;
    } else {
      return InvalidArgument(where(row) + ": expected a number, string, bool or null, got " +
                             DescribeJson(*value));
    }
    int kinds = int(boolean) + int(text) + int(integer || real);
    if (kinds > 1) {
      return InvalidArgument(where(row) + ": " + DescribeJson(*value) +
                             " mixes types with earlier values of '" + name + "'");
    }
  }
  if (!any || real) return DataType::kDouble;
  if (text) return DataType::kString;
  if (boolean) return DataType::kBool;
  return DataType::kInt64;
}

Result<table::Column> ColumnFromJson(const std::vector<const Json*>& values, DataType type) {
  table::Column column(type, 0);
  column.Reserve(values.size());
  for (const Json* value : values) {
    if (value == nullptr || value->is_null()) {
      column.AppendNull();
    } else if (type == DataType::kDouble) {
      column.AppendDouble(value->get<double>());
    } else if (type == DataType::kInt64) {
      column.AppendInt64(value->get<int64_t>());
    } else if (type == DataType::kBool) {
      column.AppendBool(value->get<bool>());
    } else {
      column.AppendString(value->get_ref<const std::string&>());
    }
  }
  return column;
}

Status ParsePredictRequest(const Json& body, const PredictOptions& options,
                           PredictRequest* request) {
  if (!body.is_object()) {
    return InvalidArgument(
        "body: expected a JSON object such as {\"rows\": [{\"user_id\": 1, ...}]}");
  }
  for (const auto& [name, value] : body.items()) {
    if (name != "rows" && name != "columns" && name != "at" && name != "request_id" &&
        name != "deadline_ms") {
      return InvalidArgument(
          name + ": unknown field (fields: rows, columns, at, request_id, deadline_ms)");
    }
  }
  auto rows = body.find("rows");
  auto columns = body.find("columns");
  if ((rows == body.end()) == (columns == body.end())) {
    return InvalidArgument("rows: give rows (a list of objects) or columns (an object of lists)");
  }
  std::vector<std::string> names;
  std::vector<std::vector<const Json*>> values;
  size_t count = 0;
  if (rows != body.end()) {
    if (!rows->is_array() || rows->empty()) {
      return InvalidArgument("rows: expected a non-empty list of objects, got " +
                             DescribeJson(*rows));
    }
    count = rows->size();
    std::map<std::string, size_t> index;
    for (size_t row = 0; row < count; ++row) {
      const Json& item = (*rows)[row];
      if (!item.is_object()) {
        return InvalidArgument("rows[" + std::to_string(row) + "]: expected an object, got " +
                               DescribeJson(item));
      }
      for (const auto& [name, value] : item.items()) {
        auto [found, added] = index.emplace(name, names.size());
        if (added) {
          names.push_back(name);
          values.emplace_back(count, nullptr);
        }
        values[found->second][row] = &value;
      }
      request->row_json.push_back(item.dump());
    }
  } else {
    if (!columns->is_object() || columns->empty()) {
      return InvalidArgument("columns: expected an object of equally long lists, got " +
                             DescribeJson(*columns));
    }
    for (const auto& [name, list] : columns->items()) {
      if (!list.is_array() || list.empty()) {
        return InvalidArgument("columns." + name + ": expected a non-empty list, got " +
                               DescribeJson(list));
      }
      if (names.empty()) count = list.size();
      if (list.size() != count) {
        return InvalidArgument("columns." + name + ": " + std::to_string(list.size()) +
                               " values, the first column has " + std::to_string(count));
      }
      names.push_back(name);
      values.emplace_back();
      for (const Json& value : list) values.back().push_back(&value);
    }
    for (size_t row = 0; row < count; ++row) {
      Json item = Json::object();
      for (size_t col = 0; col < names.size(); ++col) item[names[col]] = *values[col][row];
      request->row_json.push_back(item.dump());
    }
  }
  for (size_t col = 0; col < names.size(); ++col) {
    const std::string& name = names[col];
    bool by_rows = rows != body.end();
    auto where = [&](size_t row) {
      return by_rows ? "rows[" + std::to_string(row) + "]." + name
                     : "columns." + name + "[" + std::to_string(row) + "]";
    };
    ASSIGN_OR_RETURN(DataType type, ColumnType(values[col], name, where));
    ASSIGN_OR_RETURN(table::Column column, ColumnFromJson(values[col], type));
    RETURN_IF_ERROR(request->rows.AddColumn(name, std::move(column)));
  }
  ASSIGN_OR_RETURN(request->at, RequestTime(body, WallClockNow()));
  if (auto id = body.find("request_id"); id != body.end() && !id->is_null()) {
    if (!id->is_string() || id->get_ref<const std::string&>().empty() ||
        id->get_ref<const std::string&>().size() > 128) {
      return InvalidArgument("request_id: expected a string of 1 to 128 characters, got " +
                             DescribeJson(*id));
    }
    request->request_id = id->get<std::string>();
  }
  request->deadline_ms = options.deadline_ms;
  if (auto deadline = body.find("deadline_ms"); deadline != body.end() && !deadline->is_null()) {
    if (!deadline->is_number_integer() || deadline->get<int64_t>() < 0 ||
        deadline->get<int64_t>() > 60000) {
      return InvalidArgument("deadline_ms: expected an integer from 0 to 60000, got " +
                             DescribeJson(*deadline));
    }
    request->deadline_ms = deadline->get<int64_t>();
  }
  return Status::Ok();
}

// --- the fast parser -------------------------------------------------------

// A one-pass reader of the usual body; every method returns false for
// anything it does not handle (the general parser answers those).
class FastReader {
 public:
  explicit FastReader(std::string_view text) : text_(text) {}

  void Space() {
    while (at_ < text_.size() &&
           (text_[at_] == ' ' || text_[at_] == '\n' || text_[at_] == '\r' || text_[at_] == '\t')) {
      ++at_;
    }
  }
  // The next non-space character is `c`: consumes it.
  bool Take(char c) {
    Space();
    if (at_ < text_.size() && text_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  bool Peek(char c) {
    Space();
    return at_ < text_.size() && text_[at_] == c;
  }
  bool AtEnd() {
    Space();
    return at_ == text_.size();
  }
  // A string of printable ASCII without escapes; `out` views the text.
  bool PlainString(std::string_view* out) {
    if (!Take('"')) return false;
    size_t begin = at_;
    while (at_ < text_.size() && text_[at_] != '"') {
      unsigned char c = static_cast<unsigned char>(text_[at_]);
      if (c < 0x20 || c > 0x7e || c == '\\') return false;
      ++at_;
    }
    if (at_ == text_.size()) return false;
    *out = text_.substr(begin, at_ - begin);
    ++at_;
    return true;
  }
  bool Literal(std::string_view word) {
    Space();
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }

  struct Value {
    enum Kind : uint8_t { kNull, kBool, kInteger, kReal, kString } kind = kNull;
    bool boolean = false;
    int64_t integer = 0;
    double real = 0;
    std::string_view text;  // kString: the string; numbers: their token
  };
  // A scalar value (nested values are the general parser's).
  bool Scalar(Value* value) {
    Space();
    if (at_ == text_.size()) return false;
    char c = text_[at_];
    if (c == '"') {
      value->kind = Value::kString;
      return PlainString(&value->text);
    }
    if (c == 'n') {
      value->kind = Value::kNull;
      return Literal("null");
    }
    if (c == 't' || c == 'f') {
      value->kind = Value::kBool;
      value->boolean = c == 't';
      return Literal(c == 't' ? "true" : "false");
    }
    return Number(value);
  }

 private:
  // JSON's number grammar; integers must fit int64 (and not be -0).
  bool Number(Value* value) {
    size_t begin = at_;
    size_t i = at_;
    if (i < text_.size() && text_[i] == '-') ++i;
    if (i == text_.size() || text_[i] < '0' || text_[i] > '9') return false;
    if (text_[i] == '0') {
      ++i;
    } else {
      while (i < text_.size() && text_[i] >= '0' && text_[i] <= '9') ++i;
    }
    bool real = false;
    if (i < text_.size() && text_[i] == '.') {
      real = true;
      ++i;
      size_t digits = i;
      while (i < text_.size() && text_[i] >= '0' && text_[i] <= '9') ++i;
      if (i == digits) return false;
    }
    if (i < text_.size() && (text_[i] == 'e' || text_[i] == 'E')) {
      real = true;
      ++i;
      if (i < text_.size() && (text_[i] == '+' || text_[i] == '-')) ++i;
      size_t digits = i;
      while (i < text_.size() && text_[i] >= '0' && text_[i] <= '9') ++i;
      if (i == digits) return false;
    }
    std::string_view token = text_.substr(begin, i - begin);
    const char* first = token.data();
    const char* last = token.data() + token.size();
    if (real) {
      auto [end, error] = std::from_chars(first, last, value->real);
      if (error != std::errc() || end != last || !std::isfinite(value->real)) return false;
      value->kind = Value::kReal;
    } else {
      if (token == "-0") return false;
      auto [end, error] = std::from_chars(first, last, value->integer);
      if (error != std::errc() || end != last) return false;
      value->kind = Value::kInteger;
    }
    value->text = token;
    at_ = i;
    return true;
  }

  std::string_view text_;
  size_t at_ = 0;
};

}  // namespace

bool ParsePredictBodyFast(std::string_view text, const PredictOptions& options,
                          PredictRequest* request) {
  constexpr size_t kFastMaxColumns = 64;
  using Value = FastReader::Value;
  FastReader reader(text);
  if (!reader.Take('{')) return false;
  // Per column: its name and one value per row (kNull where a row lacks it).
  struct FastColumn {
    std::string_view name;
    std::vector<Value> values;
    size_t row = 0;  // the last row that set it
  };
  std::vector<FastColumn> columns;
  size_t count = 0;
  bool seen_rows = false, seen_at = false, seen_id = false, seen_deadline = false;
  Value at, id, deadline;
  if (reader.Take('}')) return false;  // no rows: the general parser's error
  do {
    std::string_view key;
    if (!reader.PlainString(&key) || !reader.Take(':')) return false;
    if (key == "rows") {
      if (seen_rows || !reader.Take('[') || reader.Peek(']')) return false;
      seen_rows = true;
      do {
        if (count == options.max_rows || !reader.Take('{')) return false;
        for (FastColumn& column : columns) column.values.emplace_back();  // null unless set
        std::string row_json = "{";
        if (!reader.Take('}')) {
          do {
            std::string_view name;
            Value value;
            if (!reader.PlainString(&name) || !reader.Take(':') || !reader.Scalar(&value)) {
              return false;
            }
            FastColumn* column = nullptr;
            for (FastColumn& candidate : columns) {
              if (candidate.name == name) column = &candidate;
            }
            if (column == nullptr) {
              // Columns are looked up by a scan: many belong to the general parser's map.
              if (columns.size() == kFastMaxColumns) return false;
              columns.push_back({name, std::vector<Value>(count + 1), count});
              column = &columns.back();
            } else if (column->row == count) {
              return false;  // a key twice in one row
            }
            column->row = count;
            column->values[count] = value;
            if (row_json.size() > 1) row_json += ',';
            row_json += '"';
            row_json += name;
            row_json += "\":";
            switch (value.kind) {
              case Value::kNull:
                row_json += "null";
                break;
              case Value::kBool:
                row_json += value.boolean ? "true" : "false";
                break;
              case Value::kInteger: {
                char digits[24];
                auto written = std::to_chars(digits, digits + sizeof(digits), value.integer);
                row_json.append(digits, written.ptr);
                break;
              }
              case Value::kReal:
                row_json += Json(value.real).dump();  // nlohmann's own number text
                break;
              case Value::kString:
                row_json += '"';
                row_json += value.text;
                row_json += '"';
                break;
            }
          } while (reader.Take(','));
          if (!reader.Take('}')) return false;
        }
        row_json += '}';
        request->row_json.push_back(std::move(row_json));
        ++count;
      } while (reader.Take(','));
      if (!reader.Take(']')) return false;
    } else if (key == "at" || key == "request_id" || key == "deadline_ms") {
      bool& seen = key == "at" ? seen_at : key == "request_id" ? seen_id : seen_deadline;
      Value& value = key == "at" ? at : key == "request_id" ? id : deadline;
      if (seen || !reader.Scalar(&value)) return false;
      seen = true;
    } else {
      return false;
    }
  } while (reader.Take(','));
  if (!reader.Take('}') || !reader.AtEnd() || !seen_rows) return false;

  for (FastColumn& column : columns) {
    // The general parser's types: any real (or only nulls) makes a double
    // column; strings, bools and integers their own; a mix is its error.
    bool any = false, real = false, integer = false, string = false, boolean = false;
    for (const Value& value : column.values) {
      any = any || value.kind != Value::kNull;
      real = real || value.kind == Value::kReal;
      integer = integer || value.kind == Value::kInteger;
      string = string || value.kind == Value::kString;
      boolean = boolean || value.kind == Value::kBool;
    }
    if (int(string) + int(boolean) + int(integer || real) > 1) return false;
    DataType type = !any || real ? DataType::kDouble
                    : string     ? DataType::kString
                    : boolean    ? DataType::kBool
                                 : DataType::kInt64;
    table::Column out(type, 0);
    out.Reserve(count);
    for (const Value& value : column.values) {
      if (value.kind == Value::kNull) {
        out.AppendNull();
      } else if (type == DataType::kDouble) {
        out.AppendDouble(value.kind == Value::kReal ? value.real
                                                    : static_cast<double>(value.integer));
      } else if (type == DataType::kInt64) {
        out.AppendInt64(value.integer);
      } else if (type == DataType::kBool) {
        out.AppendBool(value.boolean);
      } else {
        out.AppendString(value.text);
      }
    }
    if (!request->rows.AddColumn(std::string(column.name), std::move(out)).ok()) return false;
  }
  if (at.kind == Value::kNull) {
    request->at = WallClockNow();
  } else {
    if (at.kind != Value::kString) return false;
    Result<Timestamp> parsed = ParseTimestamp(at.text);
    if (!parsed.ok()) return false;
    request->at = *parsed;
  }
  if (id.kind != Value::kNull) {
    if (id.kind != Value::kString || id.text.empty() || id.text.size() > 128) return false;
    request->request_id = std::string(id.text);
  }
  request->deadline_ms = options.deadline_ms;
  if (deadline.kind != Value::kNull) {
    if (deadline.kind != Value::kInteger || deadline.integer < 0 || deadline.integer > 60000) {
      return false;
    }
    request->deadline_ms = deadline.integer;
  }
  return true;
}

namespace {}  // namespace

Result<Fallback> ParseFallback(std::string_view text) {
  if (text == "baseline") return Fallback::kBaseline;
  if (text == "defaults") return Fallback::kDefaults;
  if (text == "error") return Fallback::kError;
  return InvalidArgument("fallback '" + std::string(text) +
                         "': expected baseline, defaults or error");
}

Reply ParsePredictBody(std::string_view text, const PredictOptions& options,
                       PredictRequest* request) {
  if (ParsePredictBodyFast(text, options, request)) return Reply(200, "");
  *request = PredictRequest();
  return ParsePredictBodyGeneral(text, options, request);
}

Reply ParsePredictBodyGeneral(std::string_view text, const PredictOptions& options,
                              PredictRequest* request) {
  Json body;
  try {
    body = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& error) {
    return ErrorReply(400, "body: not valid JSON: " + JsonErrorMessage(error.what()));
  }
  // The row limit comes before any work proportional to the rows.
  if (body.is_object()) {
    size_t max_rows = options.max_rows;
    if (auto rows = body.find("rows");
        rows != body.end() && rows->is_array() && rows->size() > max_rows) {
      return ErrorReply(413, "rows: " + std::to_string(rows->size()) +
                                 " rows, more than the limit of " + std::to_string(max_rows) +
                                 " per request (keel serve --max-rows)");
    }
    if (auto columns = body.find("columns"); columns != body.end() && columns->is_object()) {
      for (const auto& [column, list] : columns->items()) {
        if (list.is_array() && list.size() > max_rows) {
          return ErrorReply(413, "columns." + column + ": " + std::to_string(list.size()) +
                                     " rows, more than the limit of " + std::to_string(max_rows) +
                                     " per request (keel serve --max-rows)");
        }
      }
    }
  }
  if (Status parsed = ParsePredictRequest(body, options, request); !parsed.ok()) {
    return ErrorReply(parsed);
  }
  return Reply(200, "");
}

}  // namespace keel::serve
