#include "validate/checks.h"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <unordered_set>

#include "common/files.h"
#include "common/hash.h"
#include "validate/drift_check.h"

namespace keel::validate {

namespace {

using table::Column;
using table::DataType;
using table::Table;

constexpr std::pair<CheckKind, std::string_view> kKindNames[] = {
    {CheckKind::kSchema, "schema"}, {CheckKind::kNullShare, "null_share"},
    {CheckKind::kRange, "range"},   {CheckKind::kValues, "values"},
    {CheckKind::kRegex, "regex"},   {CheckKind::kUnique, "unique"},
    {CheckKind::kVolume, "volume"}, {CheckKind::kFreshness, "freshness"},
    {CheckKind::kDrift, "drift"},
};

constexpr std::pair<DriftMethod, std::string_view> kMethodNames[] = {
    {DriftMethod::kAuto, "auto"},
    {DriftMethod::kPsi, "psi"},
    {DriftMethod::kKs, "ks"},
    {DriftMethod::kKsStatistic, "ks_statistic"},
    {DriftMethod::kJensenShannon, "jensen_shannon"},
    {DriftMethod::kWasserstein, "wasserstein"},
    {DriftMethod::kLInfinity, "l_infinity"},
    {DriftMethod::kChiSquare, "chi_square"},
};

std::string Format(double value) {
  if (std::isnan(value)) return "nan";
  char buffer[64];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buffer, sizeof(buffer), "%.0f", value);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  }
  return buffer;
}

std::string Share(double share) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.4g%%", share * 100.0);
  return buffer;
}

Outcome FailOutcome(const CheckDef& check) {
  return check.severity == Severity::kError ? Outcome::kFail : Outcome::kWarn;
}

CheckResult Result0(const CheckDef& check, std::string column) {
  CheckResult result;
  result.check = std::string(CheckKindName(check.kind));
  result.column = std::move(column);
  result.location = check.location;
  result.numeric_value = std::nan("");
  return result;
}

// A missing column fails the check that needs it.
const Column* FindOrReport(const CheckDef& check, const Table& data, const std::string& name,
                           std::vector<CheckResult>* results) {
  int index = data.FindColumn(name);
  if (index >= 0) return &data.column(static_cast<size_t>(index));
  CheckResult result = Result0(check, name);
  result.value = "missing";
  result.threshold = "column present";
  result.outcome = FailOutcome(check);
  result.detail = "no column '" + name + "' (columns: " + data.SchemaToString() + ")";
  results->push_back(std::move(result));
  return nullptr;
}

void CheckNullShare(const CheckDef& check, const Table& data, std::vector<CheckResult>* results) {
  for (const std::string& name : check.columns) {
    const Column* column = FindOrReport(check, data, name, results);
    if (column == nullptr) continue;
    size_t nulls = column->NullCount();
    if (column->type() == DataType::kDouble) {  // NaN is missing too
      const std::vector<double>& values = column->doubles();
      for (size_t row = 0; row < column->size(); ++row) {
        if (column->IsValid(row) && std::isnan(values[row])) ++nulls;
      }
    }
    double share = column->size() == 0 ? 0.0 : double(nulls) / double(column->size());
    CheckResult result = Result0(check, name);
    result.numeric_value = share;
    result.value =
        Share(share) + " (" + std::to_string(nulls) + " of " + std::to_string(column->size()) + ")";
    result.threshold = "<= " + Share(check.max_null_share);
    result.outcome = share <= check.max_null_share ? Outcome::kPass : FailOutcome(check);
    if (result.outcome != Outcome::kPass && nulls == column->size() && nulls > 0) {
      result.detail = "every value is null";
    }
    results->push_back(std::move(result));
  }
}

void CheckRange(const CheckDef& check, const Table& data, std::vector<CheckResult>* results) {
  for (const std::string& name : check.columns) {
    const Column* column = FindOrReport(check, data, name, results);
    if (column == nullptr) continue;
    CheckResult result = Result0(check, name);
    result.threshold = "[" + (check.min ? Format(*check.min) : "-inf") + ", " +
                       (check.max ? Format(*check.max) : "inf") + "]";
    if (column->type() == DataType::kString) {
      result.value = "string column";
      result.outcome = FailOutcome(check);
      result.detail = "range needs a numeric column; '" + name + "' is string";
      // A CSV column with no values at all is read as text.
      if (column->size() > 0 && column->NullCount() == column->size()) {
        result.detail += " (every value is null, so its type could not be inferred)";
      }
      results->push_back(std::move(result));
      continue;
    }
    uint64_t outside = 0, missing = 0;
    double lowest = INFINITY, highest = -INFINITY;
    std::string example;
    for (size_t row = 0; row < column->size(); ++row) {
      double value = column->IsValid(row) ? column->NumericAt(row) : std::nan("");
      if (std::isnan(value)) {
        ++missing;
        continue;
      }
      lowest = std::min(lowest, value);
      highest = std::max(highest, value);
      if ((check.min && value < *check.min) || (check.max && value > *check.max)) {
        if (outside++ == 0) example = "row " + std::to_string(row) + ": " + Format(value);
      }
    }
    result.numeric_value = static_cast<double>(outside);
    result.value = std::isinf(lowest) ? "no values (" + std::to_string(missing) + " null)"
                                      : "[" + Format(lowest) + ", " + Format(highest) + "], " +
                                            std::to_string(outside) + " outside";
    result.outcome = outside == 0 ? Outcome::kPass : FailOutcome(check);
    if (outside > 0) result.detail = std::to_string(outside) + " values outside, e.g. " + example;
    results->push_back(std::move(result));
  }
}

void CheckValues(const CheckDef& check, const Table& data, std::vector<CheckResult>* results) {
  std::set<std::string, std::less<>> allowed(check.allowed.begin(), check.allowed.end());
  for (const std::string& name : check.columns) {
    const Column* column = FindOrReport(check, data, name, results);
    if (column == nullptr) continue;
    CheckResult result = Result0(check, name);
    result.threshold = "in " + std::to_string(allowed.size()) + " allowed values";
    uint64_t outside = 0;
    std::map<std::string, uint64_t> unknown;  // a few examples with counts
    for (size_t row = 0; row < column->size(); ++row) {
      if (!column->IsValid(row)) continue;
      std::string owned;
      std::string_view value;
      if (column->type() == DataType::kString) {
        value = column->StringAt(row);
      } else {
        owned = column->ValueToString(row);
        value = owned;
      }
      if (allowed.find(value) != allowed.end()) continue;
      ++outside;
      auto it = unknown.find(std::string(value));
      if (it != unknown.end()) {
        ++it->second;
      } else if (unknown.size() < 5) {
        unknown.emplace(std::string(value), 1);
      }
    }
    result.numeric_value = static_cast<double>(outside);
    result.value = std::to_string(outside) + " outside";
    result.outcome = outside == 0 ? Outcome::kPass : FailOutcome(check);
    if (outside > 0) {
      result.detail = "values not allowed:";
      for (const auto& [value, count] : unknown) {
        result.detail += " '" + value + "' (" + std::to_string(count) + ")";
      }
    }
    results->push_back(std::move(result));
  }
}

Status CheckRegex(const CheckDef& check, const Table& data, std::vector<CheckResult>* results) {
  RE2::Options options;
  options.set_log_errors(false);
  RE2 regex(check.pattern, options);
  if (!regex.ok()) {
    return InvalidArgument(check.location + ": regex '" + check.pattern + "': " + regex.error());
  }
  for (const std::string& name : check.columns) {
    const Column* column = FindOrReport(check, data, name, results);
    if (column == nullptr) continue;
    CheckResult result = Result0(check, name);
    result.threshold = "matches /" + check.pattern + "/";
    if (column->type() != DataType::kString) {
      result.value = std::string(table::DataTypeName(column->type())) + " column";
      result.outcome = FailOutcome(check);
      result.detail = "regex needs a string column";
      results->push_back(std::move(result));
      continue;
    }
    uint64_t bad = 0;
    std::string example;
    // Values repeat (codes, categories): each distinct matching value goes
    // through the regex once. The memo holds views into the column, at most
    // kMemoLimit of them; values that do not match are matched every time
    // (each such row counts).
    constexpr size_t kMemoLimit = 1 << 16;
    std::unordered_set<std::string_view> matching;
    for (size_t row = 0; row < column->size(); ++row) {
      if (!column->IsValid(row)) continue;
      std::string_view value = column->StringAt(row);
      if (matching.contains(value)) continue;
      if (RE2::FullMatch(value, regex)) {
        if (matching.size() < kMemoLimit) matching.insert(value);
        continue;
      }
      if (bad++ == 0) example = "row " + std::to_string(row) + ": '" + std::string(value) + "'";
    }
    result.numeric_value = static_cast<double>(bad);
    result.value = std::to_string(bad) + " not matching";
    result.outcome = bad == 0 ? Outcome::kPass : FailOutcome(check);
    if (bad > 0) result.detail = "e.g. " + example;
    results->push_back(std::move(result));
  }
  return Status::Ok();
}

// Rows equal on every key column (nulls equal to nulls).
bool RowsEqual(const std::vector<const Column*>& keys, size_t a, size_t b) {
  for (const Column* column : keys) {
    bool valid_a = column->IsValid(a), valid_b = column->IsValid(b);
    if (valid_a != valid_b) return false;
    if (!valid_a) continue;
    switch (column->type()) {
      case DataType::kString:
        if (column->StringAt(a) != column->StringAt(b)) return false;
        break;
      case DataType::kDouble:
        if (column->doubles()[a] != column->doubles()[b]) return false;
        break;
      case DataType::kBool:
        if (column->bools()[a] != column->bools()[b]) return false;
        break;
      default:
        if (column->ints()[a] != column->ints()[b]) return false;
    }
  }
  return true;
}

uint64_t RowHash(const std::vector<const Column*>& keys, size_t row) {
  uint64_t hash = 0x9E3779B97F4A7C15ull;
  for (const Column* column : keys) {
    uint64_t value = 0;
    if (!column->IsValid(row)) {
      value = 0x5bd1e995;
    } else if (column->type() == DataType::kString) {
      value = Hash64(column->StringAt(row));
    } else if (column->type() == DataType::kDouble) {
      double number = column->doubles()[row];
      std::memcpy(&value, &number, sizeof(value));
    } else if (column->type() == DataType::kBool) {
      value = column->bools()[row];
    } else {
      value = static_cast<uint64_t>(column->ints()[row]);
    }
    hash = (hash ^ value) * 0xff51afd7ed558ccdull;
    hash ^= hash >> 32;
  }
  return hash;
}

void CheckUnique(const CheckDef& check, const Table& data, const CheckContext& context,
                 std::vector<CheckResult>* results) {
  std::vector<std::string> names = check.columns;
  if (!context.time_column.empty() &&
      std::find(names.begin(), names.end(), context.time_column) == names.end()) {
    names.push_back(context.time_column);
  }
  std::vector<const Column*> keys;
  std::string joined;
  for (const std::string& name : names) {
    const Column* column = FindOrReport(check, data, name, results);
    if (column == nullptr) return;
    keys.push_back(column);
    joined += (joined.empty() ? "" : ", ") + name;
  }
  size_t rows = data.num_rows();
  std::vector<std::pair<uint64_t, uint32_t>> hashed(rows);
  for (size_t row = 0; row < rows; ++row) {
    hashed[row] = {RowHash(keys, row), static_cast<uint32_t>(row)};
  }
  std::sort(hashed.begin(), hashed.end());
  uint64_t duplicates = 0;
  std::string example;
  // Within a run of equal hashes, a row is a duplicate when it equals an
  // earlier row of the run (runs are tiny; quadratic within a run is fine).
  for (size_t begin = 0; begin < rows;) {
    size_t end = begin + 1;
    while (end < rows && hashed[end].first == hashed[begin].first) ++end;
    for (size_t i = begin + 1; i < end; ++i) {
      for (size_t j = begin; j < i; ++j) {
        if (RowsEqual(keys, hashed[i].second, hashed[j].second)) {
          if (duplicates++ == 0) {
            example = "rows " + std::to_string(hashed[j].second) + " and " +
                      std::to_string(hashed[i].second) + ":";
            for (size_t k = 0; k < keys.size(); ++k) {
              example += " " + names[k] + "=" + keys[k]->ValueToString(hashed[i].second);
            }
          }
          break;
        }
      }
    }
    begin = end;
  }
  CheckResult result = Result0(check, joined);
  result.numeric_value = static_cast<double>(duplicates);
  result.value = std::to_string(duplicates) + " duplicate rows";
  result.threshold = "0";
  result.outcome = duplicates == 0 ? Outcome::kPass : FailOutcome(check);
  if (duplicates > 0) result.detail = "e.g. " + example;
  results->push_back(std::move(result));
}

const Column* TimeColumn(const CheckDef& check, const Table& data, const CheckContext& context,
                         std::vector<CheckResult>* results) {
  if (context.time_column.empty()) {
    CheckResult result = Result0(check, "");
    result.value = "no timestamp";
    result.outcome = FailOutcome(check);
    result.detail = "source '" + context.source + "' has no timestamp column";
    results->push_back(std::move(result));
    return nullptr;
  }
  const Column* time = FindOrReport(check, data, context.time_column, results);
  // Without rows there is nothing to misread, and "0 rows" is the finding
  // (a CSV with only a header has text columns).
  if (time == nullptr || time->type() == DataType::kTimestamp || time->size() == 0) return time;
  CheckResult result = Result0(check, context.time_column);
  result.value = std::string(table::DataTypeName(time->type())) + " column";
  result.threshold = "timestamp column";
  result.outcome = FailOutcome(check);
  result.detail = "column '" + context.time_column + "' is " +
                  std::string(table::DataTypeName(time->type())) + ", not a timestamp";
  results->push_back(std::move(result));
  return nullptr;
}

void CheckVolume(const CheckDef& check, const Table& data, const CheckContext& context,
                 std::vector<CheckResult>* results) {
  const Column* time = TimeColumn(check, data, context, results);
  if (time == nullptr) return;
  Duration width = check.partition;
  std::map<int64_t, uint64_t> counts;  // partition start -> rows
  int64_t first = INT64_MAX, last = INT64_MIN;
  for (size_t row = 0; row < time->size(); ++row) {
    if (!time->IsValid(row)) continue;
    int64_t start = FloorToHop(time->ints()[row], width);
    ++counts[start];
    first = std::min(first, start);
    last = std::max(last, start);
  }
  // Partitions run from the first with data to the one holding as_of (or the
  // last with data when as_of is earlier): a missing partition counts 0 rows.
  CheckResult result = Result0(check, context.time_column);
  std::string bounds;
  if (check.min_rows) bounds += ">= " + Format(*check.min_rows);
  if (check.max_rows)
    bounds += std::string(bounds.empty() ? "" : ", ") + "<= " + Format(*check.max_rows);
  if (check.trailing > 0) {
    bounds += std::string(bounds.empty() ? "" : ", ") + "within " + Format(check.max_sigma) +
              " sigma of the trailing " + std::to_string(check.trailing);
  }
  result.threshold = bounds + " per " + FormatDuration(width);
  if (counts.empty()) {
    result.value = "0 rows";
    result.numeric_value = 0;
    result.outcome = FailOutcome(check);
    result.detail = "no rows at all";
    results->push_back(std::move(result));
    return;
  }
  if (context.volume_to_as_of) last = std::max(last, FloorToHop(context.as_of - 1, width));
  std::vector<double> history;
  uint64_t bad = 0, partitions = 0;
  std::string example;
  double lowest = INFINITY;
  for (int64_t start = first; start <= last; start += width) {
    ++partitions;
    auto it = counts.find(start);
    double rows = it == counts.end() ? 0.0 : static_cast<double>(it->second);
    lowest = std::min(lowest, rows);
    std::string why;
    if (check.min_rows && rows < *check.min_rows) why = "below " + Format(*check.min_rows);
    if (check.max_rows && rows > *check.max_rows) why = "above " + Format(*check.max_rows);
    if (why.empty() && check.trailing > 0 && history.size() >= size_t(check.trailing)) {
      double mean = 0, m2 = 0;
      size_t n = history.size(), from = n - size_t(check.trailing);
      for (size_t i = from; i < n; ++i) mean += history[i];
      mean /= check.trailing;
      for (size_t i = from; i < n; ++i) m2 += (history[i] - mean) * (history[i] - mean);
      double sigma = check.trailing > 1 ? std::sqrt(m2 / (check.trailing - 1)) : 0.0;
      if (std::fabs(rows - mean) > check.max_sigma * sigma) {
        char buffer[160];
        std::snprintf(buffer, sizeof(buffer), "%.1f sigma from the trailing mean %.1f",
                      sigma > 0 ? std::fabs(rows - mean) / sigma : INFINITY, mean);
        why = buffer;
      }
    }
    history.push_back(rows);
    if (!why.empty() && bad++ < 3) {
      example += (example.empty() ? "" : "; ") + FormatTimestamp(start) + ": " + Format(rows) +
                 " rows, " + why;
    }
  }
  result.numeric_value = static_cast<double>(bad);
  result.value = std::to_string(bad) + " of " + std::to_string(partitions) +
                 " partitions off (fewest rows " + Format(lowest) + ")";
  result.outcome = bad == 0 ? Outcome::kPass : FailOutcome(check);
  if (bad > 0) result.detail = example + (bad > 3 ? "; ..." : "");
  results->push_back(std::move(result));
}

void CheckFreshness(const CheckDef& check, const Table& data, const CheckContext& context,
                    std::vector<CheckResult>* results) {
  const Column* time = TimeColumn(check, data, context, results);
  if (time == nullptr) return;
  int64_t newest = INT64_MIN;
  for (size_t row = 0; row < time->size(); ++row) {
    if (time->IsValid(row)) newest = std::max(newest, time->ints()[row]);
  }
  CheckResult result = Result0(check, context.time_column);
  result.threshold =
      "newest within " + FormatDuration(check.max_age) + " of " + FormatTimestamp(context.as_of);
  if (newest == INT64_MIN) {
    result.value = "no rows";
    result.outcome = FailOutcome(check);
    result.detail = "no timestamps at all";
  } else {
    Duration age = context.as_of - newest;
    result.numeric_value = static_cast<double>(age) / kMicrosPerSecond;
    result.value = "newest " + FormatTimestamp(newest) + " (" +
                   (age >= 0 ? FormatDuration(age) + " old" : "in the future") + ")";
    result.outcome = age <= check.max_age ? Outcome::kPass : FailOutcome(check);
    if (result.outcome != Outcome::kPass) {
      result.detail = "stale by " + FormatDuration(age - check.max_age) + " beyond the budget";
    }
  }
  results->push_back(std::move(result));
}

}  // namespace

std::string_view CheckKindName(CheckKind kind) {
  for (const auto& [value, name] : kKindNames) {
    if (value == kind) return name;
  }
  return "?";
}

Result<CheckKind> ParseCheckKind(std::string_view name) {
  std::string known;
  for (const auto& [value, spelled] : kKindNames) {
    if (spelled == name) return value;
    known += (known.empty() ? "" : ", ") + std::string(spelled);
  }
  return InvalidArgument("unknown check '" + std::string(name) + "' (known: " + known + ")");
}

std::string_view DriftMethodName(DriftMethod method) {
  for (const auto& [value, name] : kMethodNames) {
    if (value == method) return name;
  }
  return "?";
}

Result<DriftMethod> ParseDriftMethod(std::string_view name) {
  std::string known;
  for (const auto& [value, spelled] : kMethodNames) {
    if (spelled == name) return value;
    known += (known.empty() ? "" : ", ") + std::string(spelled);
  }
  return InvalidArgument("unknown drift method '" + std::string(name) + "' (known: " + known + ")");
}

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPass:
      return "pass";
    case Outcome::kWarn:
      return "warn";
    case Outcome::kFail:
      return "fail";
  }
  return "?";
}

bool ValidationReport::HasErrors() const {
  return std::any_of(results.begin(), results.end(),
                     [](const CheckResult& result) { return result.outcome == Outcome::kFail; });
}

std::vector<const CheckResult*> ValidationReport::Failures() const {
  std::vector<const CheckResult*> out;
  for (const CheckResult& result : results) {
    if (result.outcome == Outcome::kFail) out.push_back(&result);
  }
  return out;
}

std::string ValidationReport::ToJson() const {
  nlohmann::ordered_json json;
  json["source"] = source;
  json["rows"] = rows;
  json["as_of"] = FormatTimestamp(as_of);
  json["passed"] = !HasErrors();
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const CheckResult& result : results) {
    nlohmann::ordered_json item;
    item["check"] = result.check;
    item["column"] = result.column;
    item["value"] = result.value;
    if (std::isfinite(result.numeric_value)) item["measured"] = result.numeric_value;
    item["threshold"] = result.threshold;
    item["outcome"] = OutcomeName(result.outcome);
    if (!result.detail.empty()) item["detail"] = result.detail;
    if (!result.location.empty()) item["location"] = result.location;
    list.push_back(std::move(item));
  }
  json["checks"] = std::move(list);
  return json.dump(2) + "\n";
}

void CheckSchema(const CheckDef& check, const std::vector<table::Field>& fields,
                 std::vector<CheckResult>* results) {
  for (const table::Field& expected : check.schema) {
    CheckResult result = Result0(check, expected.name);
    result.threshold = std::string(table::DataTypeName(expected.type));
    auto found = std::find_if(fields.begin(), fields.end(),
                              [&](const table::Field& f) { return f.name == expected.name; });
    if (found == fields.end()) {
      result.value = "missing";
      result.outcome = FailOutcome(check);
      result.detail = "required column '" + expected.name + "' is missing";
    } else {
      result.value = std::string(table::DataTypeName(found->type));
      result.outcome = found->type == expected.type ? Outcome::kPass : FailOutcome(check);
      if (result.outcome != Outcome::kPass) {
        result.detail = "column '" + expected.name + "' changed type: " + result.value +
                        ", expected " + result.threshold;
      }
    }
    results->push_back(std::move(result));
  }
  if (!check.allow_extra_columns) {
    for (const table::Field& field : fields) {
      bool known = std::any_of(check.schema.begin(), check.schema.end(),
                               [&](const table::Field& f) { return f.name == field.name; });
      if (known) continue;
      CheckResult result = Result0(check, field.name);
      result.value = "unexpected " + std::string(table::DataTypeName(field.type)) + " column";
      result.threshold = "no other columns";
      result.outcome = FailOutcome(check);
      result.detail = "column '" + field.name + "' is not in the schema";
      results->push_back(std::move(result));
    }
  }
}

Result<ValidationReport> RunChecks(const std::vector<CheckDef>& checks, const table::Table& data,
                                   const CheckContext& context) {
  ValidationReport report;
  report.source = context.source;
  report.rows = data.num_rows();
  report.as_of = context.as_of;
  DriftChecker drift(context);
  for (const CheckDef& check : checks) {
    switch (check.kind) {
      case CheckKind::kSchema:
        CheckSchema(check, data.fields(), &report.results);
        break;
      case CheckKind::kNullShare:
        CheckNullShare(check, data, &report.results);
        break;
      case CheckKind::kRange:
        CheckRange(check, data, &report.results);
        break;
      case CheckKind::kValues:
        CheckValues(check, data, &report.results);
        break;
      case CheckKind::kRegex:
        RETURN_IF_ERROR(CheckRegex(check, data, &report.results));
        break;
      case CheckKind::kUnique:
        CheckUnique(check, data, context, &report.results);
        break;
      case CheckKind::kVolume:
        CheckVolume(check, data, context, &report.results);
        break;
      case CheckKind::kFreshness:
        CheckFreshness(check, data, context, &report.results);
        break;
      case CheckKind::kDrift:
        RETURN_IF_ERROR(drift.Run(check, data, &report.results));
        break;
    }
  }
  return report;
}

}  // namespace keel::validate
