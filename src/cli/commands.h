#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "features/definitions.h"

namespace keel::table {
class DuckDb;
}

namespace keel::cli {

// Options shared by every command that works on a feature repository.
struct RepoOptions {
  std::string repo = ".";  // folder of keel.yaml
};

// `keel init DIR`: writes a small, working example repository (definitions and
// a generated events file) into DIR, which must be empty or missing.
Status RunInit(const std::string& dir);

// `keel apply`: validates every definition against its data and records new
// view versions in the catalog; prints what changed.
Status RunApply(const RepoOptions& options);

// `keel features list` / `keel features show VIEW[@VERSION]`.
Status RunFeaturesList(const RepoOptions& options, bool json);
Status RunFeaturesShow(const RepoOptions& options, const std::string& reference, bool json);

struct DatasetBuildOptions {
  RepoOptions repo;
  std::string spine;       // a source name, a file (.parquet/.csv/.json) or a SQL query
  std::string spine_time;  // default: the source's timestamp, or timestamp/event_timestamp/ts
  std::string features;    // view references (definitions.h ParseFeatureUses)
  std::string service;     // or a feature service name
  std::string out;         // Parquet file
  int threads = 0;
  bool json = false;  // print the summary as JSON
  // Build even when a source fails an error-level check; the reason is
  // recorded in the output's metadata and in FILE.checks.json beside it.
  std::string allow_failed_checks;
};

// `keel dataset build`: a point-in-time correct training set as Parquet.
Status RunDatasetBuild(const DatasetBuildOptions& options);

struct ProfileCommandOptions {
  RepoOptions repo;
  std::string source;
  std::string where;      // optional SQL condition selecting rows
  std::string reference;  // profile whose bins to use
  std::string out;
};

// `keel profile SOURCE --out FILE`: the source's profile as JSON.
Status RunProfile(const ProfileCommandOptions& options);

struct ValidateOptions {
  RepoOptions repo;
  std::string source;
  std::string where;
  std::string reference;  // profile for drift checks
  std::string as_of;      // ISO time; default now
  std::string report;     // JSON report path; default <repo>/.keel/reports/validate-SOURCE.json
  bool json = false;
};

// `keel validate SOURCE`: runs the source's checks, prints a table, writes a
// JSON report. Errors: FailedPrecondition when an error-level check fails.
Status RunValidate(const ValidateOptions& options);

struct DriftOptions {
  std::string reference;  // profile JSON
  std::string current;    // profile JSON made with --reference (same bins)
  bool json = false;
  bool fail_on_drift = false;
};

// `keel drift REFERENCE CURRENT`: every drift statistic per column of two
// profiles, and the default verdict. Errors: FailedPrecondition on drift
// with fail_on_drift.
Status RunDrift(const DriftOptions& options);

// Runs the checks of each of `sources` that defines any (as of now). Returns
// a JSON summary per source. Errors: FailedPrecondition naming every failed
// error-level check, unless `allow_reason` is set.
Result<nlohmann::json> CheckSourcesBeforeBuild(const features::Repository& repo,
                                               const std::vector<std::string>& sources,
                                               const std::string& allow_reason,
                                               table::DuckDb* duckdb);

}  // namespace keel::cli
