// Profile and ColumnProfile as JSON (`keel profile --out`, model bundles):
// the summary a reader wants plus every sketch, base64-encoded, so that a
// profile read back merges and compares like the one written.

#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "validate/profile.h"

namespace keel::validate {

namespace {

using Json = nlohmann::ordered_json;

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += kBase64[(n >> shift) & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= uint8_t(bytes[i + 1]) << 8;
    out += kBase64[(n >> 18) & 63];
    out += kBase64[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kBase64[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return InvalidArgument("base64 length is not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t n = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = text[i + j];
      const char* at = c == '=' ? nullptr : std::strchr(kBase64, c);
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        ++pad;
        n <<= 6;
        continue;
      }
      if (at == nullptr || c == '\0' || pad > 0) return InvalidArgument("invalid base64");
      n = (n << 6) | uint32_t(at - kBase64);
    }
    out += char((n >> 16) & 255);
    if (pad < 2) out += char((n >> 8) & 255);
    if (pad < 1) out += char(n & 255);
  }
  return out;
}

// Reads `json[key]` as T. Errors name the path.
template <typename T>
Result<T> Get(const Json& json, const char* key, const std::string& path) {
  auto it = json.find(key);
  if (it == json.end()) return InvalidArgument(path + "." + key + ": missing");
  try {
    return it->template get<T>();
  } catch (const std::exception& error) {
    return InvalidArgument(path + "." + key + ": " + error.what());
  }
}

Json ColumnToJson(const ColumnProfile& column) {
  Json json;
  json["name"] = column.name();
  json["type"] = std::string(table::DataTypeName(column.type()));
  json["rows"] = column.rows();
  json["nulls"] = column.nulls();
  json["null_share"] = column.NullShare();
  if (column.numeric()) {
    json["nans"] = column.nans();
    json["count"] = column.moments().count;
    if (column.min()) {
      json["min"] = *column.min();
      json["max"] = *column.max();
      json["mean"] = column.moments().mean;
      json["m2"] = column.moments().m2;
      json["std"] = std::sqrt(column.moments().Variance());
      Json quantiles;
      for (double q : {0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99}) {
        char key[16];
        std::snprintf(key, sizeof(key), "p%g", q * 100);
        quantiles[key] = column.quantiles().Quantile(q);
      }
      json["quantiles"] = std::move(quantiles);
    } else {  // no values (all null): null, never NaN, which JSON cannot carry
      for (const char* key : {"min", "max", "mean", "std"}) json[key] = nullptr;
    }
    json["histogram"] = {{"edges", column.histogram().edges},
                         {"counts", column.histogram().counts}};
    json["quantile_sketch"] = Base64Encode(column.quantiles().Encode());
  } else {
    Json top = Json::array();
    for (const auto& item : column.top().Top(10)) {
      top.push_back({{"value", item.value}, {"count", item.count}});
    }
    json["top"] = std::move(top);
    if (column.categories()) {
      Json categories = Json::object();
      for (const auto& [value, count] : *column.categories()) categories[value] = count;
      json["categories"] = std::move(categories);
    }
    json["top_sketch"] = Base64Encode(column.top().Encode());
  }
  json["distinct"] = column.distinct().Estimate();
  json["distinct_sketch"] = Base64Encode(column.distinct().Encode());
  return json;
}

}  // namespace

std::string ColumnProfile::ToJson() const { return ColumnToJson(*this).dump(2); }

std::string Profile::ToJson() const {
  Json json;
  json["format"] = "keel.profile.v1";
  json["source"] = source;
  json["created_at"] = created_at;
  json["rows"] = rows_;
  json["time_column"] = time_column_;
  Json columns = Json::array();
  for (const ColumnProfile& column : columns_) columns.push_back(ColumnToJson(column));
  json["columns"] = std::move(columns);
  return json.dump(2) + "\n";
}

Result<Profile> Profile::FromJson(std::string_view text) {
  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::parse_error& error) {
    // "parse error at line 40, column 1: ... unexpected end of input" for a
    // truncated file.
    std::string what = error.what();
    size_t at = what.find("parse error");
    return InvalidArgument("not valid JSON (" + what.substr(at == std::string::npos ? 0 : at) +
                           ")");
  }
  if (!json.is_object()) return InvalidArgument("not a JSON object");
  ASSIGN_OR_RETURN(std::string format, Get<std::string>(json, "format", "profile"));
  if (format != "keel.profile.v1") {
    return InvalidArgument("profile.format: '" + format + "' (expected keel.profile.v1)");
  }
  Profile profile;
  ASSIGN_OR_RETURN(profile.source, Get<std::string>(json, "source", "profile"));
  ASSIGN_OR_RETURN(profile.created_at, Get<std::string>(json, "created_at", "profile"));
  ASSIGN_OR_RETURN(profile.rows_, Get<uint64_t>(json, "rows", "profile"));
  ASSIGN_OR_RETURN(profile.time_column_, Get<std::string>(json, "time_column", "profile"));
  ASSIGN_OR_RETURN(Json columns, Get<Json>(json, "columns", "profile"));
  if (!columns.is_array()) return InvalidArgument("profile.columns: not an array");
  for (size_t index = 0; index < columns.size(); ++index) {
    const Json& item = columns[index];
    std::string path = "profile.columns[" + std::to_string(index) + "]";
    if (!item.is_object()) return InvalidArgument(path + ": not an object");
    ASSIGN_OR_RETURN(std::string name, Get<std::string>(item, "name", path));
    ASSIGN_OR_RETURN(std::string type_name, Get<std::string>(item, "type", path));
    Result<table::DataType> type = table::ParseDataType(type_name);
    if (!type.ok()) return type.status().WithContext(path + ".type");
    ColumnProfile column(name, *type, ProfileOptions{});
    ASSIGN_OR_RETURN(column.rows_, Get<uint64_t>(item, "rows", path));
    ASSIGN_OR_RETURN(column.nulls_, Get<uint64_t>(item, "nulls", path));
    ASSIGN_OR_RETURN(std::string distinct, Get<std::string>(item, "distinct_sketch", path));
    Result<std::string> distinct_bytes = Base64Decode(distinct);
    if (!distinct_bytes.ok()) return distinct_bytes.status().WithContext(path + ".distinct_sketch");
    Result<DistinctCounter> counter = DistinctCounter::Decode(*distinct_bytes);
    if (!counter.ok()) return counter.status().WithContext(path + ".distinct_sketch");
    column.distinct_ = std::move(*counter);
    if (column.numeric()) {
      ASSIGN_OR_RETURN(column.nans_, Get<uint64_t>(item, "nans", path));
      ASSIGN_OR_RETURN(column.moments_.count, Get<uint64_t>(item, "count", path));
      if (column.moments_.count > 0) {
        ASSIGN_OR_RETURN(column.min_, Get<double>(item, "min", path));
        ASSIGN_OR_RETURN(column.max_, Get<double>(item, "max", path));
        ASSIGN_OR_RETURN(column.moments_.mean, Get<double>(item, "mean", path));
        ASSIGN_OR_RETURN(column.moments_.m2, Get<double>(item, "m2", path));
      }
      ASSIGN_OR_RETURN(Json histogram, Get<Json>(item, "histogram", path));
      ASSIGN_OR_RETURN(column.histogram_.edges,
                       Get<std::vector<double>>(histogram, "edges", path + ".histogram"));
      ASSIGN_OR_RETURN(column.histogram_.counts,
                       Get<std::vector<uint64_t>>(histogram, "counts", path + ".histogram"));
      if (column.histogram_.counts.size() != column.histogram_.edges.size() + 1 ||
          !std::is_sorted(column.histogram_.edges.begin(), column.histogram_.edges.end())) {
        return InvalidArgument(path + ".histogram: counts must be one more than sorted edges");
      }
      column.fixed_bins_ = true;
      ASSIGN_OR_RETURN(std::string sketch, Get<std::string>(item, "quantile_sketch", path));
      Result<std::string> sketch_bytes = Base64Decode(sketch);
      if (!sketch_bytes.ok()) return sketch_bytes.status().WithContext(path + ".quantile_sketch");
      Result<QuantileSketch> quantiles = QuantileSketch::Decode(*sketch_bytes);
      if (!quantiles.ok()) return quantiles.status().WithContext(path + ".quantile_sketch");
      column.quantiles_ = std::move(*quantiles);
    } else {
      ASSIGN_OR_RETURN(std::string top, Get<std::string>(item, "top_sketch", path));
      Result<std::string> top_bytes = Base64Decode(top);
      if (!top_bytes.ok()) return top_bytes.status().WithContext(path + ".top_sketch");
      Result<TopK> top_k = TopK::Decode(*top_bytes);
      if (!top_k.ok()) return top_k.status().WithContext(path + ".top_sketch");
      column.top_ = std::move(*top_k);
      if (item.contains("categories")) {
        ASSIGN_OR_RETURN(auto categories,
                         (Get<std::map<std::string, uint64_t>>(item, "categories", path)));
        column.categories_.emplace(categories.begin(), categories.end());
      } else {
        column.categories_.reset();
      }
    }
    profile.columns_.push_back(std::move(column));
  }
  return profile;
}

}  // namespace keel::validate
