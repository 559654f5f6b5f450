#include "serve/predict_request.h"

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

}  // namespace

Result<Fallback> ParseFallback(std::string_view text) {
  if (text == "baseline") return Fallback::kBaseline;
  if (text == "defaults") return Fallback::kDefaults;
  if (text == "error") return Fallback::kError;
  return InvalidArgument("fallback '" + std::string(text) +
                         "': expected baseline, defaults or error");
}

Reply ParsePredictBody(std::string_view text, const PredictOptions& options,
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
