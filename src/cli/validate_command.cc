// `keel profile`, `keel validate` and the checks `keel dataset build` runs first.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/commands.h"
#include "cli/text_table.h"
#include "common/files.h"
#include "features/definitions.h"
#include "table/duckdb_bridge.h"
#include "validate/checks.h"
#include "validate/drift_check.h"
#include "validate/profile.h"

namespace keel::cli {
namespace {

using table::DuckDb;

struct LoadedSource {
  features::SourceDef definition;
  table::Table data;
  double seconds = 0;
};

Status NoColumns(const features::SourceDef& source) {
  return InvalidArgument("reading source '" + source.name + "'" +
                         (source.path.empty() ? "" : " (" + source.path + ")") +
                         ": no columns (an empty file?)");
}

// Reads a repository source (optionally filtered by a SQL condition) into memory.
Result<LoadedSource> ReadSource(const features::Repository& repo, const std::string& name,
                                const std::string& where, DuckDb* duckdb) {
  const features::SourceDef* source = repo.FindSource(name);
  if (source == nullptr) {
    std::string known;
    for (const features::SourceDef& other : repo.sources) {
      known += (known.empty() ? "" : ", ") + other.name;
    }
    return NotFound("no source '" + name + "' in the repository (sources: " + known + ")");
  }
  auto start = std::chrono::steady_clock::now();
  std::map<std::string, features::SourceDef> inputs;
  for (const features::SourceDef& other : repo.sources) inputs[other.name] = other;
  ASSIGN_OR_RETURN(std::string sql, features::RegisterSource(*source, inputs, repo.config, duckdb));
  if (!where.empty()) sql += " WHERE " + where;
  Result<table::Table> data = duckdb->Query(sql);
  if (!data.ok()) {
    std::string what = "source '" + name + "'";
    if (!source->path.empty()) what += " (" + source->path + ")";
    return data.status().WithContext("reading " + what);
  }
  if (data->num_columns() == 0) return NoColumns(*source);
  LoadedSource loaded{*source, std::move(*data), 0};
  loaded.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return loaded;
}

// `role` ("reference", "current") names the file in errors.
Result<validate::Profile> LoadProfile(const std::string& path, const std::string& role) {
  Result<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status().WithContext(role + " profile");
  Result<validate::Profile> profile = validate::Profile::FromJson(*text);
  if (!profile.ok()) return profile.status().WithContext(role + " profile " + path);
  return profile;
}

// Values a drift statistic can use: non-null, and for numbers not NaN.
uint64_t ValueCount(const validate::ColumnProfile& column) {
  return column.numeric() ? column.moments().count : column.rows() - column.nulls();
}

// Why a column's two profiles cannot be compared by a statistic, or empty
// when they can. A vanished column or a changed type is drift; a side without
// values (all null) is not judged, as in `validate` (null_share checks that).
std::string Incomparable(const validate::ColumnProfile& reference,
                         const validate::ColumnProfile* current, bool* drifted) {
  *drifted = true;
  if (current == nullptr) return "missing in the current profile";
  if (current->type() != reference.type()) {
    return "type changed from " + std::string(table::DataTypeName(reference.type())) + " to " +
           std::string(table::DataTypeName(current->type()));
  }
  *drifted = false;
  bool no_reference = ValueCount(reference) == 0, no_current = ValueCount(*current) == 0;
  if (no_reference && no_current) return "no values in either profile";
  if (no_reference) return "no values in the reference profile";
  if (no_current) return "no values in the current profile";
  return "";
}

// Compares one column's profiles for `keel drift`: fills its JSON item and
// table row, and says whether the default test finds drift. Errors: a drift
// statistic refused the pair (InvalidArgument naming the column).
Result<bool> CompareColumn(const validate::ColumnProfile& ref, const validate::ColumnProfile* cur,
                           nlohmann::ordered_json* item, std::vector<std::string>* row) {
  using validate::DriftMethod;
  std::string rows = std::to_string(ref.rows()) + "/" + (cur ? std::to_string(cur->rows()) : "-");
  bool incomparable_drift = false;
  std::string incomparable = Incomparable(ref, cur, &incomparable_drift);
  if (!incomparable.empty()) {
    (*item)["default"] = incomparable;
    (*item)["drifted"] = incomparable_drift;
    *row = {ref.name(), rows};
    row->resize(9);  // no statistics
    row->push_back(incomparable);
    row->push_back(incomparable_drift ? "DRIFT" : "n/a");
    return incomparable_drift;
  }
  std::vector<DriftMethod> numeric = {DriftMethod::kPsi, DriftMethod::kKsStatistic,
                                      DriftMethod::kKs, DriftMethod::kWasserstein,
                                      DriftMethod::kJensenShannon};
  std::vector<DriftMethod> categorical = {DriftMethod::kPsi, DriftMethod::kJensenShannon,
                                          DriftMethod::kLInfinity, DriftMethod::kChiSquare};
  std::map<DriftMethod, std::string> cells;
  for (DriftMethod method : ref.numeric() ? numeric : categorical) {
    ASSIGN_OR_RETURN(validate::DriftMeasure measure,
                     validate::MeasureDrift(ref, *cur, method, std::nullopt));
    char text[32];
    std::snprintf(text, sizeof(text), "%.4g", measure.value);
    cells[method] = text;
    (*item)[std::string(validate::DriftMethodName(method))] = measure.value;
  }
  ASSIGN_OR_RETURN(validate::DriftMeasure verdict,
                   validate::MeasureDrift(ref, *cur, DriftMethod::kAuto, std::nullopt));
  (*item)["default"] = verdict.Describe();
  (*item)["drifted"] = verdict.drifted;
  row->assign({ref.name(), rows, cells[DriftMethod::kPsi], cells[DriftMethod::kKsStatistic],
               cells[DriftMethod::kKs], cells[DriftMethod::kWasserstein],
               cells[DriftMethod::kJensenShannon], cells[DriftMethod::kLInfinity],
               cells[DriftMethod::kChiSquare], verdict.Describe(),
               verdict.drifted ? "DRIFT" : "ok"});
  return verdict.drifted;
}

void PrintReport(const validate::ValidationReport& report) {
  TextTable table({"check", "column", "value", "threshold", "result"});
  for (const validate::CheckResult& result : report.results) {
    std::string outcome(validate::OutcomeName(result.outcome));
    table.AddRow({result.check, result.column, result.value, result.threshold, outcome});
  }
  std::fputs(table.ToString().c_str(), stdout);
  for (const validate::CheckResult& result : report.results) {
    if (result.outcome == validate::Outcome::kPass || result.detail.empty()) continue;
    std::printf("  %s %s%s%s: %s\n", std::string(validate::OutcomeName(result.outcome)).c_str(),
                result.check.c_str(), result.column.empty() ? "" : " ", result.column.c_str(),
                result.detail.c_str());
  }
}

std::string FailureList(const validate::ValidationReport& report) {
  std::string out;
  for (const validate::CheckResult* failure : report.Failures()) {
    out += (out.empty() ? "" : "; ") + failure->check +
           (failure->column.empty() ? "" : " " + failure->column) + " (" + failure->value + ", " +
           failure->threshold + (failure->location.empty() ? "" : ", " + failure->location) + ")";
  }
  return out;
}

}  // namespace

Status RunProfile(const ProfileCommandOptions& options) {
  ASSIGN_OR_RETURN(features::Repository repo, features::LoadRepository(options.repo.repo));
  ASSIGN_OR_RETURN(std::unique_ptr<DuckDb> duckdb, DuckDb::Open());
  ASSIGN_OR_RETURN(LoadedSource source,
                   ReadSource(repo, options.source, options.where, duckdb.get()));
  validate::ProfileOptions profile_options;
  if (!options.reference.empty()) {
    ASSIGN_OR_RETURN(validate::Profile reference, LoadProfile(options.reference, "reference"));
    profile_options = reference.ReferenceOptions();
  }
  auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(
      validate::Profile profile,
      validate::Profile::Of(source.data, source.definition.timestamp_column, profile_options));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  profile.source = options.source + (options.where.empty() ? "" : " WHERE " + options.where);
  profile.created_at = FormatTimestamp(WallClockNow());
  RETURN_IF_ERROR(WriteFileAtomically(options.out, profile.ToJson()));
  std::printf("profile of %s: %llu rows, %zu columns -> %s (read %.2f s, profile %.2f s)\n",
              profile.source.c_str(), static_cast<unsigned long long>(profile.rows()),
              profile.columns().size(), options.out.c_str(), source.seconds, seconds);
  TextTable table({"column", "type", "nulls", "mean", "std", "min", "p50", "max", "distinct"});
  for (const validate::ColumnProfile& column : profile.columns()) {
    char nulls[32], mean[32] = "", stddev[32] = "", low[32] = "", mid[32] = "", high[32] = "",
                    distinct[32];
    std::snprintf(nulls, sizeof(nulls), "%.2f%%", column.NullShare() * 100);
    std::snprintf(distinct, sizeof(distinct), "~%.0f", column.distinct().Estimate());
    if (column.numeric() && column.min() && column.type() != table::DataType::kTimestamp) {
      std::snprintf(mean, sizeof(mean), "%.4g", column.moments().mean);
      std::snprintf(stddev, sizeof(stddev), "%.4g", std::sqrt(column.moments().Variance()));
      std::snprintf(low, sizeof(low), "%.4g", *column.min());
      std::snprintf(mid, sizeof(mid), "%.4g", column.quantiles().Quantile(0.5));
      std::snprintf(high, sizeof(high), "%.4g", *column.max());
    }
    std::string type(table::DataTypeName(column.type()));
    if (column.type() == table::DataType::kTimestamp && column.min()) {
      table.AddRow({column.name(), type, nulls, "", "",
                    FormatTimestamp(static_cast<Timestamp>(*column.min())), "",
                    FormatTimestamp(static_cast<Timestamp>(*column.max())), distinct});
    } else {
      table.AddRow({column.name(), type, nulls, mean, stddev, low, mid, high, distinct});
    }
  }
  std::fputs(table.ToString().c_str(), stdout);
  return Status::Ok();
}

Status RunValidate(const ValidateOptions& options) {
  ASSIGN_OR_RETURN(features::Repository repo, features::LoadRepository(options.repo.repo));
  ASSIGN_OR_RETURN(std::unique_ptr<DuckDb> duckdb, DuckDb::Open());
  ASSIGN_OR_RETURN(LoadedSource source,
                   ReadSource(repo, options.source, options.where, duckdb.get()));
  std::vector<validate::CheckDef> checks = source.definition.checks;
  std::optional<validate::Profile> reference;
  if (!options.reference.empty()) {
    ASSIGN_OR_RETURN(reference, LoadProfile(options.reference, "reference"));
    // --reference with no drift check in the definitions: check every column.
    bool has_drift = std::any_of(checks.begin(), checks.end(), [](const validate::CheckDef& c) {
      return c.kind == validate::CheckKind::kDrift;
    });
    if (!has_drift) {
      validate::CheckDef drift;
      drift.kind = validate::CheckKind::kDrift;
      drift.location = "--reference";
      checks.push_back(drift);
    }
  }
  if (checks.empty()) {
    return FailedPrecondition("source '" + options.source + "' (" +
                              source.definition.location.ToString() +
                              ") defines no checks; add a 'checks:' list or pass --reference");
  }
  validate::CheckContext context;
  context.source = options.source;
  context.time_column = source.definition.timestamp_column;
  context.as_of = WallClockNow();
  if (!options.as_of.empty()) {
    Result<Timestamp> as_of = ParseTimestamp(options.as_of);
    if (!as_of.ok()) return as_of.status().WithContext("--as-of");
    context.as_of = *as_of;
    context.volume_to_as_of = true;
  }
  context.reference = reference ? &*reference : nullptr;
  context.reference_root = repo.config.root;
  ASSIGN_OR_RETURN(validate::ValidationReport report,
                   validate::RunChecks(checks, source.data, context));
  std::string report_path = options.report;
  if (report_path.empty()) {
    std::filesystem::path dir = std::filesystem::path(repo.config.root) / ".keel" / "reports";
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    report_path = (dir / ("validate-" + options.source + ".json")).string();
  }
  RETURN_IF_ERROR(WriteFileAtomically(report_path, report.ToJson()));
  if (options.json) {
    std::fputs(report.ToJson().c_str(), stdout);
  } else {
    std::printf("validate %s: %llu rows, %zu checks, as of %s (read %.2f s)\n",
                options.source.c_str(), static_cast<unsigned long long>(report.rows),
                report.results.size(), FormatTimestamp(context.as_of).c_str(), source.seconds);
    PrintReport(report);
    std::printf("report: %s\n", report_path.c_str());
  }
  if (report.HasErrors()) {
    std::string path = source.definition.path.empty() ? "" : " (" + source.definition.path + ")";
    return FailedPrecondition("source '" + options.source + "'" + path + " failed " +
                              std::to_string(report.Failures().size()) +
                              " error-level checks: " + FailureList(report));
  }
  return Status::Ok();
}

Status RunDrift(const DriftOptions& options) {
  ASSIGN_OR_RETURN(validate::Profile reference, LoadProfile(options.reference, "reference"));
  ASSIGN_OR_RETURN(validate::Profile current, LoadProfile(options.current, "current"));
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  TextTable table({"column", "rows ref/cur", "psi", "ks D", "ks p", "wasserstein/std", "js",
                   "l-inf", "chi2 p", "default", "drift"});
  size_t drifted = 0;
  for (const validate::ColumnProfile& ref : reference.columns()) {
    if (ref.name() == reference.time_column()) continue;
    nlohmann::ordered_json item = {{"column", ref.name()}};
    std::vector<std::string> row;
    Result<bool> column_drifted = CompareColumn(ref, current.Find(ref.name()), &item, &row);
    if (!column_drifted.ok()) return column_drifted.status().WithContext(options.current);
    drifted += *column_drifted;
    out.push_back(std::move(item));
    table.AddRow(std::move(row));
  }
  if (options.json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("drift of %s (%s) against %s (%s)\n", current.source.c_str(),
                options.current.c_str(), reference.source.c_str(), options.reference.c_str());
    std::fputs(table.ToString().c_str(), stdout);
    std::printf(
        "%zu of %zu columns drifted by the default test (numbers: KS p-value below "
        "1000 rows, else Wasserstein/std > 0.1; categories: chi-square below 1000 rows, "
        "else Jensen-Shannon > 0.1)\n",
        drifted, out.size());
  }
  if (drifted > 0 && options.fail_on_drift) {
    return FailedPrecondition(std::to_string(drifted) + " columns drifted");
  }
  return Status::Ok();
}

namespace {

// Every row of `source`, read as ReadSource reads it (with its errors), or
// taken from `shared` when another reader holds or reads the same rows.
Result<std::shared_ptr<const table::Table>> ReadCheckedSource(const features::Repository& repo,
                                                              const features::SourceDef& source,
                                                              DuckDb* duckdb,
                                                              features::SharedSources* shared) {
  auto load = [&]() -> Result<table::Table> {
    ASSIGN_OR_RETURN(LoadedSource loaded, ReadSource(repo, source.name, "", duckdb));
    return std::move(loaded.data);
  };
  if (shared == nullptr) {
    ASSIGN_OR_RETURN(table::Table data, load());
    return std::shared_ptr<const table::Table>(std::make_shared<table::Table>(std::move(data)));
  }
  std::map<std::string, features::SourceDef> inputs;
  for (const features::SourceDef& other : repo.sources) inputs[other.name] = other;
  ASSIGN_OR_RETURN(std::shared_ptr<const table::Table> data,
                   shared->Read(source, inputs, repo.config, load));
  // Another reader (the offline engine) takes a table without columns.
  if (data->num_columns() == 0) return NoColumns(source);
  return data;
}

}  // namespace

Result<nlohmann::json> CheckSourcesBeforeBuild(const features::Repository& repo,
                                               const std::vector<std::string>& sources,
                                               const std::string& allow_reason, DuckDb* duckdb,
                                               features::SharedSources* shared) {
  nlohmann::json summary = nlohmann::json::array();
  std::string failures;
  for (const std::string& name : sources) {
    const features::SourceDef* source = repo.FindSource(name);
    if (source == nullptr || source->checks.empty()) continue;
    ASSIGN_OR_RETURN(std::shared_ptr<const table::Table> data,
                     ReadCheckedSource(repo, *source, duckdb, shared));
    validate::CheckContext context;
    context.source = name;
    context.time_column = source->timestamp_column;
    context.as_of = WallClockNow();
    context.reference_root = repo.config.root;
    ASSIGN_OR_RETURN(validate::ValidationReport report,
                     validate::RunChecks(source->checks, *data, context));
    size_t warnings = 0;
    for (const validate::CheckResult& result : report.results) {
      warnings += result.outcome == validate::Outcome::kWarn;
    }
    std::fprintf(stderr, "checks of source '%s': %zu passed, %zu warnings, %zu failed\n",
                 name.c_str(), report.results.size() - warnings - report.Failures().size(),
                 warnings, report.Failures().size());
    summary.push_back({{"source", name},
                       {"checks", report.results.size()},
                       {"failed", report.Failures().size()},
                       {"warnings", warnings},
                       {"failures", FailureList(report)}});
    if (report.HasErrors()) {
      failures +=
          (failures.empty() ? "" : "; ") + ("source '" + name + "': " + FailureList(report));
    }
  }
  if (!failures.empty() && allow_reason.empty()) {
    return FailedPrecondition("refusing to build on data that failed its checks: " + failures +
                              " (run `keel validate SOURCE` for the report, or pass "
                              "--allow-failed-checks \"reason\" to build anyway)");
  }
  if (!failures.empty()) {
    std::fprintf(stderr, "building despite failed checks (--allow-failed-checks \"%s\")\n",
                 allow_reason.c_str());
  }
  return summary;
}

}  // namespace keel::cli
