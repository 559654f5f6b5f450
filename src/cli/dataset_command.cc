#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/text_table.h"
#include "common/files.h"
#include "features/catalog.h"
#include "features/definitions.h"
#include "features/offline_engine.h"
#include "table/duckdb_bridge.h"

namespace keel::cli {
namespace {

using table::DuckDb;

bool IsIdentifier(const std::string& text) {
  if (text.empty() || std::isdigit(static_cast<unsigned char>(text[0]))) return false;
  for (char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct Spine {
  std::string sql;
  std::string default_time;
};

// The spine: a repository source by name, a data file, or SQL over the sources.
Result<Spine> ResolveSpine(const std::string& text, const std::string& repo_dir, DuckDb* duckdb) {
  bool is_file = EndsWith(text, ".parquet") || EndsWith(text, ".csv") || EndsWith(text, ".json") ||
                 EndsWith(text, ".jsonl");
  if (is_file) {
    if (!FileExists(text)) return NotFound("spine: no such file: " + text);
    std::string quoted = table::QuoteSqlString(text);
    if (EndsWith(text, ".parquet")) return Spine{"SELECT * FROM read_parquet(" + quoted + ")", ""};
    if (EndsWith(text, ".csv")) return Spine{"SELECT * FROM read_csv(" + quoted + ")", ""};
    return Spine{"SELECT * FROM read_json_auto(" + quoted + ")", ""};
  }
  ASSIGN_OR_RETURN(features::Repository repo, features::LoadRepository(repo_dir));
  if (IsIdentifier(text)) {
    const features::SourceDef* source = repo.FindSource(text);
    if (source == nullptr) return NotFound("spine: no source '" + text + "' in the repository");
    std::map<std::string, features::SourceDef> inputs;
    for (const features::SourceDef& other : repo.sources) inputs[other.name] = other;
    ASSIGN_OR_RETURN(std::string sql,
                     features::RegisterSource(*source, inputs, repo.config, duckdb));
    return Spine{sql, source->timestamp_column};
  }
  // SQL: make every source readable by name first.
  std::map<std::string, features::SourceDef> inputs;
  for (const features::SourceDef& source : repo.sources) inputs[source.name] = source;
  for (const features::SourceDef& source : repo.sources) {
    RETURN_IF_ERROR(features::RegisterSource(source, inputs, repo.config, duckdb).status());
  }
  return Spine{text, ""};
}

Result<std::string> SpineTimeColumn(const table::Table& spine, const std::string& spine_time,
                                    const std::string& default_time) {
  if (!spine_time.empty()) return spine_time;
  if (!default_time.empty()) return default_time;
  for (const char* name : {"timestamp", "event_timestamp", "ts"}) {
    if (spine.FindColumn(name) >= 0) return std::string(name);
  }
  for (const table::Field& field : spine.fields()) {
    if (field.type == table::DataType::kTimestamp) return field.name;
  }
  return InvalidArgument("spine: no timestamp column (name one with --spine-time); columns: " +
                         spine.SchemaToString());
}

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Result<LoadedSpine> LoadSpine(const std::string& spine, const std::string& spine_time,
                              const std::string& repo_dir, table::DuckDb* duckdb) {
  ASSIGN_OR_RETURN(Spine source, ResolveSpine(spine, repo_dir, duckdb));
  Result<table::Table> table = duckdb->Query(source.sql);
  if (!table.ok()) return table.status().WithContext("spine");
  ASSIGN_OR_RETURN(std::string time_column,
                   SpineTimeColumn(*table, spine_time, source.default_time));
  return LoadedSpine{std::move(table).value(), std::move(time_column)};
}

Status RunDatasetBuild(const DatasetBuildOptions& options) {
  auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(features::RepoConfig config, features::LoadRepoConfig(options.repo.repo));
  ASSIGN_OR_RETURN(std::unique_ptr<features::Catalog> catalog,
                   features::Catalog::Open(config.catalog_path));
  std::vector<features::FeatureUse> uses;
  if (!options.service.empty()) {
    ASSIGN_OR_RETURN(features::FeatureServiceDef service, catalog->Service(options.service));
    uses = service.uses;
  } else {
    ASSIGN_OR_RETURN(uses, features::ParseFeatureUses(options.features));
  }
  std::filesystem::path out_dir = std::filesystem::absolute(options.out).parent_path();
  if (!std::filesystem::is_directory(out_dir)) {
    return NotFound("--out: folder " + out_dir.string() + " does not exist");
  }
  if (std::filesystem::is_directory(options.out)) {
    return InvalidArgument("--out: " + options.out + " is a folder; name a .parquet file");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<DuckDb> duckdb, DuckDb::Open());
  ASSIGN_OR_RETURN(LoadedSpine loaded,
                   LoadSpine(options.spine, options.spine_time, options.repo.repo, duckdb.get()));
  std::optional<table::Table> spine(std::move(loaded.table));
  const std::string& time_column = loaded.time_column;
  double spine_seconds = Since(start);

  std::vector<features::ResolvedUse> resolved;
  nlohmann::json lineage = nlohmann::json::array();
  std::vector<std::string> sources;  // whose checks run first: the spine's and the views'
  auto add_source = [&](const std::string& name) {
    if (std::find(sources.begin(), sources.end(), name) == sources.end()) sources.push_back(name);
  };
  if (IsIdentifier(options.spine)) add_source(options.spine);
  for (const features::FeatureUse& use : uses) {
    ASSIGN_OR_RETURN(features::ViewVersionInfo info, catalog->Resolve(use.view, use.version));
    for (const auto& [name, input] : info.definition.source_inputs) add_source(name);
    add_source(info.definition.source.name);
    ASSIGN_OR_RETURN(features::ResolvedUse item,
                     features::ResolveUse(use, info.definition, info.version, spine->fields()));
    lineage.push_back({{"view", info.name},
                       {"version", info.version},
                       {"number", info.number},
                       {"prefix", item.prefix},
                       {"spine_keys", item.spine_keys}});
    resolved.push_back(std::move(item));
  }
  ASSIGN_OR_RETURN(features::Repository repo, features::LoadRepository(options.repo.repo));
  ASSIGN_OR_RETURN(
      nlohmann::json checks,
      CheckSourcesBeforeBuild(repo, sources, options.allow_failed_checks, duckdb.get()));
  features::OfflineEngine engine(config, duckdb.get(), options.threads);
  features::BuildReport report;
  size_t first_feature = spine->num_columns();
  ASSIGN_OR_RETURN(table::Table dataset,
                   engine.Build(std::move(*spine), time_column, resolved, &report));

  auto write_start = std::chrono::steady_clock::now();
  nlohmann::json metadata = {
      {"views", lineage},           {"spine", options.spine},
      {"time_column", time_column}, {"code_version", std::string(CodeVersion())},
      {"rows", dataset.num_rows()}, {"checks", checks}};
  bool overridden = false;
  for (const nlohmann::json& item : checks) overridden |= item["failed"].get<size_t>() > 0;
  if (overridden) metadata["allowed_failed_checks"] = options.allow_failed_checks;
  RETURN_IF_ERROR(duckdb->WriteParquet(dataset, options.out, {{"keel", metadata.dump()}}));
  std::string sidecar = options.out + ".checks.json";
  if (overridden) {
    nlohmann::json record = {{"output", options.out},
                             {"allowed_failed_checks", options.allow_failed_checks},
                             {"code_version", std::string(CodeVersion())},
                             {"checks", checks}};
    RETURN_IF_ERROR(WriteFileAtomically(sidecar, record.dump(2) + "\n"));
  } else {
    RemoveFileQuietly(sidecar);  // a stale override record must not describe this output
  }
  double write_seconds = Since(write_start);
  double total = Since(start);

  if (options.json) {
    nlohmann::json out = metadata;
    out["out"] = options.out;
    out["columns"] = dataset.num_columns();
    out["features"] = dataset.num_columns() - first_feature;
    out["seconds"] = {{"total", total},
                      {"spine", spine_seconds},
                      {"sources", report.load_seconds},
                      {"compute", report.compute_seconds},
                      {"write", write_seconds}};
    nlohmann::json nulls = nlohmann::json::object();
    for (size_t column = first_feature; column < dataset.num_columns(); ++column) {
      nulls[dataset.fields()[column].name] =
          static_cast<double>(dataset.column(column).NullCount()) / dataset.num_rows();
    }
    out["null_share"] = nulls;
    std::printf("%s\n", out.dump(2).c_str());
    return Status::Ok();
  }
  std::printf("training set %s: %zu rows, %zu columns (%zu features from %zu views)\n",
              options.out.c_str(), dataset.num_rows(), dataset.num_columns(),
              dataset.num_columns() - first_feature, resolved.size());
  std::printf("time: %.2f s total (spine %.2f s, sources %.2f s, features %.2f s, write %.2f s)\n",
              total, spine_seconds, report.load_seconds, report.compute_seconds, write_seconds);
  TextTable table({"feature", "type", "nulls"});
  for (size_t column = first_feature; column < dataset.num_columns(); ++column) {
    char share[32];
    std::snprintf(share, sizeof(share), "%.2f%%",
                  100.0 * static_cast<double>(dataset.column(column).NullCount()) /
                      static_cast<double>(dataset.num_rows()));
    table.AddRow({dataset.fields()[column].name,
                  std::string(table::DataTypeName(dataset.fields()[column].type)), share});
  }
  std::fputs(table.ToString().c_str(), stdout);
  return Status::Ok();
}

}  // namespace keel::cli
