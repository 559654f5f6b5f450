// Checks that two benchmark outputs agree, row by row (matched on a key
// column, so row order does not matter), column by column:
//   - columns named in --exact must be equal (both null, or the same number);
//   - every other column must be within a relative --tolerance (default 1e-9),
//     where null and NaN count as the same "no value" and never equal a number.
//
//   bench_compare --left A.parquet|A.csv --right B.parquet|B.csv [--key id]
//                 [--exact c1,c2] [--columns c1,c2] [--tolerance 1e-9] [--show 5]
//
// The key must be an integer column without nulls; duplicate or unmatched keys
// count as mismatches. Columns default to every column of the left file but
// the key. Prints a readable summary to stderr and one "BENCH_RESULT {json}"
// line; exits 0 even on mismatches (the driver decides), non-zero when the
// files cannot be read.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bench_util.h"
#include "table/duckdb_bridge.h"

namespace keel::bench {
namespace {

using table::Column;
using table::QuoteSqlString;

std::string ReadSql(const std::string& path) {
  bool csv = path.size() >= 4 && path.compare(path.size() - 4, 4, ".csv") == 0;
  return csv ? "SELECT * FROM read_csv(" + QuoteSqlString(path) + ", header = true)"
             : "SELECT * FROM read_parquet(" + QuoteSqlString(path) + ")";
}

// A cell as an optional number: null, NaN and non-numeric cells have none.
bool NumberAt(const Column& column, size_t row, double* value) {
  if (!column.IsValid(row) || !table::IsNumeric(column.type())) return false;
  *value = column.NumericAt(row);
  return !std::isnan(*value);
}

struct ColumnResult {
  int64_t mismatches = 0;
  int64_t not_bit_identical = 0;  // agreeing within tolerance, but not the same double
  int64_t nulls_left = 0;
  std::vector<std::string> examples;
};

ColumnResult CompareColumn(const Column& left, const Column& right,
                           const std::vector<int64_t>& right_row, bool exact, double tolerance,
                           const Column& keys, int show) {
  ColumnResult result;
  for (size_t row = 0; row < left.size(); ++row) {
    double x = 0, y = 0;
    bool has_x = NumberAt(left, row, &x);
    if (!has_x) ++result.nulls_left;
    if (right_row[row] < 0) continue;  // counted as unmatched
    bool has_y = NumberAt(right, static_cast<size_t>(right_row[row]), &y);
    bool same;
    if (!has_x || !has_y) {
      same = has_x == has_y;
    } else if (x == y) {
      same = true;
    } else {
      same = !exact && std::fabs(x - y) <= tolerance * std::max(std::fabs(x), std::fabs(y));
      if (same) ++result.not_bit_identical;
    }
    if (same) continue;
    ++result.mismatches;
    if (static_cast<int>(result.examples.size()) < show) {
      auto text = [](bool has, double value) {
        char buffer[32];
        std::snprintf(buffer, sizeof(buffer), "%.17g", value);
        return has ? std::string(buffer) : std::string("null");
      };
      result.examples.push_back(keys.ValueToString(row) + ": " + text(has_x, x) + " vs " +
                                text(has_y, y));
    }
  }
  return result;
}

Result<std::vector<int64_t>> KeyValues(const table::Table& table, const std::string& key,
                                       const std::string& what) {
  Result<const Column*> column = table.GetColumn(key);
  if (!column.ok()) return column.status().WithContext(what);
  if ((*column)->type() != table::DataType::kInt64) {
    return InvalidArgument(what + ": key column '" + key + "' is not an integer");
  }
  if ((*column)->HasNulls()) return InvalidArgument(what + ": key column '" + key + "' has nulls");
  return (*column)->ints();
}

Status Run(const Flags& flags) {
  ASSIGN_OR_RETURN(std::string left_path, flags.Require("left"));
  ASSIGN_OR_RETURN(std::string right_path, flags.Require("right"));
  std::string key = flags.Get("key", "id");
  std::vector<std::string> exact = SplitList(flags.Get("exact"));
  double tolerance = std::stod(flags.Get("tolerance", "1e-9"));
  int show = std::stoi(flags.Get("show", "5"));

  ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open());
  Result<table::Table> left = duckdb->Query(ReadSql(left_path));
  if (!left.ok()) return left.status().WithContext(left_path);
  Result<table::Table> right = duckdb->Query(ReadSql(right_path));
  if (!right.ok()) return right.status().WithContext(right_path);
  std::vector<std::string> columns = SplitList(flags.Get("columns"));
  if (columns.empty()) {
    for (const table::Field& field : left->fields()) {
      if (field.name != key) columns.push_back(field.name);
    }
  }
  for (const std::string& column : columns) {
    if (left->FindColumn(column) < 0)
      return NotFound(left_path + " has no column '" + column + "'");
    if (right->FindColumn(column) < 0) {
      return NotFound(right_path + " has no column '" + column +
                      "' (it has: " + right->SchemaToString() + ")");
    }
  }

  // Match rows on the key.
  ASSIGN_OR_RETURN(std::vector<int64_t> left_keys, KeyValues(*left, key, left_path));
  ASSIGN_OR_RETURN(std::vector<int64_t> right_keys, KeyValues(*right, key, right_path));
  std::unordered_map<int64_t, int64_t> right_index;
  right_index.reserve(right_keys.size());
  int64_t duplicates_right = 0, duplicates_left = 0, unmatched = 0;
  for (size_t row = 0; row < right_keys.size(); ++row) {
    if (!right_index.emplace(right_keys[row], static_cast<int64_t>(row)).second) ++duplicates_right;
  }
  std::vector<int64_t> right_row(left_keys.size(), -1);
  std::unordered_set<int64_t> seen;
  seen.reserve(left_keys.size());
  for (size_t row = 0; row < left_keys.size(); ++row) {
    if (!seen.insert(left_keys[row]).second) ++duplicates_left;
    auto it = right_index.find(left_keys[row]);
    if (it == right_index.end())
      ++unmatched;
    else
      right_row[row] = it->second;
  }
  unmatched += static_cast<int64_t>(right_index.size()) -
               static_cast<int64_t>(std::count_if(right_row.begin(), right_row.end(),
                                                  [](int64_t row) { return row >= 0; }));

  nlohmann::json out = {{"tool", "compare"},
                        {"left", left_path},
                        {"right", right_path},
                        {"rows_left", left->num_rows()},
                        {"rows_right", right->num_rows()},
                        {"duplicate_keys_left", duplicates_left},
                        {"duplicate_keys_right", duplicates_right},
                        {"unmatched", unmatched}};
  int64_t total_mismatches = duplicates_left + duplicates_right + unmatched;
  int64_t not_bit_identical = 0;
  nlohmann::json mismatches = nlohmann::json::object(), nulls = nlohmann::json::object();
  const Column& keys = *left->GetColumn(key).value();
  for (const std::string& column : columns) {
    bool is_exact = std::find(exact.begin(), exact.end(), column) != exact.end();
    ColumnResult result =
        CompareColumn(*left->GetColumn(column).value(), *right->GetColumn(column).value(),
                      right_row, is_exact, tolerance, keys, show);
    mismatches[column] = result.mismatches;
    nulls[column] = result.nulls_left;
    total_mismatches += result.mismatches;
    not_bit_identical += result.not_bit_identical;
    if (!result.examples.empty()) {
      out["examples"][column] = result.examples;
      for (const std::string& line : result.examples) {
        std::fprintf(stderr, "  %s %s\n", column.c_str(), line.c_str());
      }
    }
  }
  out["mismatches"] = mismatches;
  out["nulls_left"] = nulls;
  out["total_mismatches"] = total_mismatches;
  out["not_bit_identical"] = not_bit_identical;
  out["columns"] = columns.size();
  std::fprintf(stderr,
               "compare %s vs %s: %zu/%zu rows, %lld unmatched, %lld mismatches in %zu columns"
               " (%lld values within tolerance but not bit-identical)\n",
               left_path.c_str(), right_path.c_str(), left->num_rows(), right->num_rows(),
               static_cast<long long>(unmatched), static_cast<long long>(total_mismatches),
               columns.size(), static_cast<long long>(not_bit_identical));
  std::printf("BENCH_RESULT %s\n", out.dump().c_str());
  return Status::Ok();
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) { return keel::bench::Main(argc, argv, keel::bench::Run); }
