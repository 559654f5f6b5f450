#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "table/column.h"
#include "validate/profile.h"

namespace keel::validate {

// What a failed check does: `error` blocks what would be built on the data,
// `warn` is reported only.
enum class Severity { kError, kWarn };

enum class CheckKind {
  kSchema,     // required columns with types; optionally no other columns
  kNullShare,  // share of nulls per column at most `max_null_share`
  kRange,      // numbers within [min, max]
  kValues,     // categories within an allowed set
  kRegex,      // strings fully match a pattern
  kUnique,     // no two rows with the same key columns and timestamp
  kVolume,     // rows per time partition within bounds / k sigma of the trailing N
  kFreshness,  // newest timestamp at most `max_age` before the as-of time
  kDrift,      // distribution shift against a reference profile
};

// "schema", "null_share", ... (the YAML spelling).
std::string_view CheckKindName(CheckKind kind);
Result<CheckKind> ParseCheckKind(std::string_view name);

enum class DriftMethod {
  kAuto,  // numbers: KS p-value below 1000 rows, else normalised Wasserstein;
          // categories: chi-square p-value below 1000 rows, else Jensen–Shannon
  kPsi,
  kKs,           // KS p-value below the threshold fails
  kKsStatistic,  // KS statistic above the threshold fails
  kJensenShannon,
  kWasserstein,  // normalised by the reference's standard deviation
  kLInfinity,
  kChiSquare,  // p-value below the threshold fails
};
std::string_view DriftMethodName(DriftMethod method);
Result<DriftMethod> ParseDriftMethod(std::string_view name);

// One expectation on a source, as written in its definition.
struct CheckDef {
  CheckKind kind = CheckKind::kSchema;
  Severity severity = Severity::kError;
  std::string location;              // "features/a.yaml:12:9", for messages
  std::vector<std::string> columns;  // the columns it applies to
  // schema
  std::vector<table::Field> schema;
  bool allow_extra_columns = true;
  // null_share
  double max_null_share = 0.0;
  // range
  std::optional<double> min;
  std::optional<double> max;
  // values
  std::vector<std::string> allowed;
  // regex
  std::string pattern;
  // volume: partitions of `partition` length (day or hour), each within
  // [min_rows, max_rows] and, when trailing > 0, within max_sigma standard
  // deviations of the mean of the `trailing` partitions before it.
  Duration partition = 0;
  std::optional<double> min_rows;
  std::optional<double> max_rows;
  int trailing = 0;
  double max_sigma = 3.0;
  // freshness
  Duration max_age = 0;
  // drift
  DriftMethod method = DriftMethod::kAuto;
  std::optional<double> threshold;  // default per method (see checks.cc)
  std::string reference;            // profile path; the CLI's --reference wins
  uint64_t min_rows_for_drift = 100;
};

enum class Outcome { kPass, kWarn, kFail };
std::string_view OutcomeName(Outcome outcome);  // "pass", "warn", "fail"

// The result of one check on one column (or the whole table).
struct CheckResult {
  std::string check;   // "null_share", "drift:psi", ...
  std::string column;  // empty for table-level checks
  std::string value;   // what was measured, formatted
  std::string threshold;
  Outcome outcome = Outcome::kPass;
  std::string detail;  // why it failed, with examples
  std::string location;
  double numeric_value = 0.0;  // the measured value as a number (NaN if none)
};

// Everything `validate` found on one source.
struct ValidationReport {
  std::string source;
  uint64_t rows = 0;
  Timestamp as_of = 0;
  std::vector<CheckResult> results;

  bool HasErrors() const;  // any kFail
  std::vector<const CheckResult*> Failures() const;
  std::string ToJson() const;
};

// What a check run needs besides the data.
struct CheckContext {
  std::string source;
  std::string time_column;  // the source's timestamp column; may be empty
  Timestamp as_of = 0;      // "now" for freshness
  // When the caller named the as-of time (--as-of), volume partitions run up
  // to it, so partitions missing at the end count as 0 rows; otherwise they
  // end at the newest row (freshness judges the end).
  bool volume_to_as_of = false;
  // The reference profile for drift checks (overrides each check's own path).
  const Profile* reference = nullptr;
  // Loads a check's `reference` path when `reference` is null. May be empty.
  std::string reference_root;
};

// Runs `checks` on `data` (the whole source) and reports each. Missing columns
// and wrong types are failures of the check, not errors. Errors: only for
// unusable definitions (a bad regex, a reference profile that cannot be read).
Result<ValidationReport> RunChecks(const std::vector<CheckDef>& checks, const table::Table& data,
                                   const CheckContext& context);

// Schema check alone (it needs no rows): `fields` is the source's schema.
void CheckSchema(const CheckDef& check, const std::vector<table::Field>& fields,
                 std::vector<CheckResult>* results);

}  // namespace keel::validate
