// Parsing of a source's `checks:` list into validate::CheckDef values.
//
//   checks:
//     - {check: schema, columns: {date: timestamp, delay: int64}, extra_columns: false}
//     - {check: not_null, columns: [date, origin]}
//     - {check: null_share, columns: [delay], max: 0.05, severity: warn}
//     - {check: range, column: distance, min: 0, max: 6000}
//     - {check: values, column: origin, in: [SFO, LAX]}
//     - {check: regex, columns: [origin, destination], pattern: "[A-Z]{3}"}
//     - {check: unique, columns: [origin, destination]}     # plus the timestamp
//     - {check: volume, per: day, min: 1, trailing: 28, max_sigma: 4}
//     - {check: freshness, max_age: 2d}
//     - {check: drift, columns: [delay], method: psi, threshold: 0.2, reference: jan.json}
#include <yaml-cpp/yaml.h>

#include "features/yaml_reader.h"

namespace keel::features {

namespace {

using validate::CheckDef;
using validate::CheckKind;

Result<double> Number(const YamlReader& reader, const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) return reader.Error(node, path, "expected a number");
  try {
    return node.as<double>();
  } catch (const YAML::Exception&) {
    return reader.Error(node, path, "expected a number, got '" + node.as<std::string>() + "'");
  }
}

Result<bool> Bool(const YamlReader& reader, const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) return reader.Error(node, path, "expected true or false");
  try {
    return node.as<bool>();
  } catch (const YAML::Exception&) {
    return reader.Error(node, path, "expected true or false, got '" + node.as<std::string>() + "'");
  }
}

Status ParseColumns(const YamlReader& reader, const YAML::Node& node, const std::string& path,
                    CheckDef* check, bool required) {
  if (node["column"] && node["columns"]) {
    return reader.Error(node, path, "give 'column' or 'columns', not both");
  }
  YAML::Node columns = node["column"] ? node["column"] : node["columns"];
  if (!columns) {
    if (required) return reader.Error(node, path, "missing required field 'columns'");
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(check->columns, reader.StringList(columns, path + ".columns"));
  if (check->columns.empty() && required) {
    return reader.Error(columns, path + ".columns", "name at least one column");
  }
  return Status::Ok();
}

Result<CheckDef> ParseCheck(const YamlReader& reader, const YAML::Node& node,
                            const std::string& path) {
  if (!node.IsMap()) return reader.Error(node, path, "expected a mapping like {check: not_null}");
  ASSIGN_OR_RETURN(std::string kind_name, reader.String(node, "check", path, true));
  bool not_null = kind_name == "not_null";
  Result<CheckKind> kind = validate::ParseCheckKind(not_null ? "null_share" : kind_name);
  if (!kind.ok()) {
    return reader.Error(node["check"], path + ".check", kind.status().message() + " or not_null");
  }
  CheckDef check;
  check.kind = *kind;
  check.location = reader.Where(node).ToString();
  std::vector<std::string> allowed = {"check", "severity"};
  auto allow = [&](std::initializer_list<const char*> keys) {
    for (const char* key : keys) allowed.push_back(key);
  };
  switch (check.kind) {
    case CheckKind::kSchema:
      allow({"columns", "extra_columns"});
      break;
    case CheckKind::kNullShare:
      allow({"column", "columns"});
      if (!not_null) allow({"max"});
      break;
    case CheckKind::kRange:
      allow({"column", "columns", "min", "max"});
      break;
    case CheckKind::kValues:
      allow({"column", "columns", "in"});
      break;
    case CheckKind::kRegex:
      allow({"column", "columns", "pattern"});
      break;
    case CheckKind::kUnique:
      allow({"column", "columns"});
      break;
    case CheckKind::kVolume:
      allow({"per", "min", "max", "trailing", "max_sigma"});
      break;
    case CheckKind::kFreshness:
      allow({"max_age"});
      break;
    case CheckKind::kDrift:
      allow({"column", "columns", "method", "threshold", "reference", "min_rows"});
      break;
  }
  RETURN_IF_ERROR(reader.CheckKeys(node, path, allowed));
  ASSIGN_OR_RETURN(std::string severity, reader.String(node, "severity", path, false));
  if (severity == "warn") {
    check.severity = validate::Severity::kWarn;
  } else if (!severity.empty() && severity != "error") {
    return reader.Error(node["severity"], path + ".severity",
                        "unknown severity '" + severity + "' (expected error or warn)");
  }
  switch (check.kind) {
    case CheckKind::kSchema: {
      YAML::Node columns = node["columns"];
      if (!columns || !columns.IsMap() || columns.size() == 0) {
        return reader.Error(columns ? columns : node, path + ".columns",
                            "expected a mapping of column to type, e.g. {delay: int64}");
      }
      for (const auto& item : columns) {
        std::string name = item.first.as<std::string>();
        if (!item.second.IsScalar()) {
          return reader.Error(item.second, path + ".columns." + name, "expected a type");
        }
        Result<table::DataType> type = table::ParseDataType(item.second.as<std::string>());
        if (!type.ok()) {
          return reader.Error(item.second, path + ".columns." + name, type.status().message());
        }
        check.schema.push_back({name, *type});
      }
      if (node["extra_columns"]) {
        ASSIGN_OR_RETURN(check.allow_extra_columns,
                         Bool(reader, node["extra_columns"], path + ".extra_columns"));
      }
      break;
    }
    case CheckKind::kNullShare: {
      RETURN_IF_ERROR(ParseColumns(reader, node, path, &check, true));
      if (node["max"]) {
        ASSIGN_OR_RETURN(check.max_null_share, Number(reader, node["max"], path + ".max"));
        if (check.max_null_share < 0 || check.max_null_share > 1) {
          return reader.Error(node["max"], path + ".max", "a share between 0 and 1");
        }
      } else if (!not_null) {
        return reader.Error(node, path, "missing required field 'max' (a share, e.g. 0.05)");
      }
      break;
    }
    case CheckKind::kRange: {
      RETURN_IF_ERROR(ParseColumns(reader, node, path, &check, true));
      if (node["min"]) {
        ASSIGN_OR_RETURN(check.min, Number(reader, node["min"], path + ".min"));
      }
      if (node["max"]) {
        ASSIGN_OR_RETURN(check.max, Number(reader, node["max"], path + ".max"));
      }
      if (!check.min && !check.max) return reader.Error(node, path, "give 'min', 'max' or both");
      if (check.min && check.max && *check.min > *check.max) {
        return reader.Error(node["min"], path + ".min", "min is above max");
      }
      break;
    }
    case CheckKind::kValues: {
      RETURN_IF_ERROR(ParseColumns(reader, node, path, &check, true));
      if (!node["in"]) return reader.Error(node, path, "missing required field 'in'");
      ASSIGN_OR_RETURN(check.allowed, reader.StringList(node["in"], path + ".in"));
      break;
    }
    case CheckKind::kRegex: {
      RETURN_IF_ERROR(ParseColumns(reader, node, path, &check, true));
      ASSIGN_OR_RETURN(check.pattern, reader.String(node, "pattern", path, true));
      break;
    }
    case CheckKind::kUnique: {
      RETURN_IF_ERROR(ParseColumns(reader, node, path, &check, false));
      break;
    }
    case CheckKind::kVolume: {
      ASSIGN_OR_RETURN(std::string per, reader.String(node, "per", path, true));
      if (per == "day") {
        check.partition = kMicrosPerDay;
      } else if (per == "hour") {
        check.partition = kMicrosPerHour;
      } else {
        return reader.Error(node["per"], path + ".per", "expected day or hour, got '" + per + "'");
      }
      if (node["min"]) {
        ASSIGN_OR_RETURN(check.min_rows, Number(reader, node["min"], path + ".min"));
      }
      if (node["max"]) {
        ASSIGN_OR_RETURN(check.max_rows, Number(reader, node["max"], path + ".max"));
      }
      if (node["trailing"]) {
        ASSIGN_OR_RETURN(double trailing, Number(reader, node["trailing"], path + ".trailing"));
        if (trailing < 2 || trailing != static_cast<int>(trailing)) {
          return reader.Error(node["trailing"], path + ".trailing", "a whole number >= 2");
        }
        check.trailing = static_cast<int>(trailing);
      }
      if (node["max_sigma"]) {
        ASSIGN_OR_RETURN(check.max_sigma, Number(reader, node["max_sigma"], path + ".max_sigma"));
      }
      if (!check.min_rows && !check.max_rows && check.trailing == 0) {
        return reader.Error(node, path, "give 'min', 'max' or 'trailing'");
      }
      break;
    }
    case CheckKind::kFreshness: {
      if (!node["max_age"]) return reader.Error(node, path, "missing required field 'max_age'");
      ASSIGN_OR_RETURN(check.max_age, reader.DurationField(node["max_age"], path + ".max_age"));
      break;
    }
    case CheckKind::kDrift: {
      RETURN_IF_ERROR(ParseColumns(reader, node, path, &check, false));
      ASSIGN_OR_RETURN(std::string method, reader.String(node, "method", path, false));
      if (!method.empty()) {
        Result<validate::DriftMethod> parsed = validate::ParseDriftMethod(method);
        if (!parsed.ok()) {
          return reader.Error(node["method"], path + ".method", parsed.status().message());
        }
        check.method = *parsed;
      }
      if (node["threshold"]) {
        ASSIGN_OR_RETURN(check.threshold, Number(reader, node["threshold"], path + ".threshold"));
      }
      ASSIGN_OR_RETURN(check.reference, reader.String(node, "reference", path, false));
      if (node["min_rows"]) {
        ASSIGN_OR_RETURN(double rows, Number(reader, node["min_rows"], path + ".min_rows"));
        check.min_rows_for_drift = static_cast<uint64_t>(std::max(0.0, rows));
      }
      break;
    }
  }
  return check;
}

}  // namespace

Result<std::vector<CheckDef>> ParseChecks(const YamlReader& reader, const YAML::Node& node,
                                          const std::string& path) {
  if (!node.IsSequence()) return reader.Error(node, path, "expected a list of checks");
  std::vector<CheckDef> checks;
  for (size_t index = 0; index < node.size(); ++index) {
    ASSIGN_OR_RETURN(CheckDef check,
                     ParseCheck(reader, node[index], path + "[" + std::to_string(index) + "]"));
    checks.push_back(std::move(check));
  }
  return checks;
}

}  // namespace keel::features
