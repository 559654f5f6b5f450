#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/text_table.h"
#include "features/catalog.h"
#include "features/definitions.h"
#include "table/duckdb_bridge.h"

namespace keel::cli {

using features::Catalog;
using features::ViewChange;
using features::ViewVersionInfo;

Status RunApply(const RepoOptions& options) {
  ASSIGN_OR_RETURN(features::Repository repo, features::LoadRepository(options.repo));
  ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open());
  RETURN_IF_ERROR(features::ValidateAgainstData(&repo, duckdb.get()));
  ASSIGN_OR_RETURN(std::unique_ptr<Catalog> catalog, Catalog::Open(repo.config.catalog_path));
  ASSIGN_OR_RETURN(std::vector<ViewChange> changes, catalog->Apply(repo));
  TextTable table({"view", "version", "#", "change"});
  for (const ViewChange& change : changes) {
    const char* kind = "unchanged";
    if (change.kind == ViewChange::Kind::kCreated) kind = "created";
    if (change.kind == ViewChange::Kind::kNewVersion) kind = "new version";
    if (change.kind == ViewChange::Kind::kRemoved) kind = "removed (versions kept)";
    table.AddRow({change.name, change.version,
                  change.number > 0 ? std::to_string(change.number) : "", kind});
  }
  std::printf("project %s: %zu entities, %zu sources, %zu views, %zu feature services\n",
              repo.config.project.c_str(), repo.entities.size(), repo.sources.size(),
              repo.views.size(), repo.services.size());
  std::fputs(table.ToString().c_str(), stdout);
  return Status::Ok();
}

namespace {

nlohmann::json VersionJson(const ViewVersionInfo& info) {
  return {{"name", info.name},
          {"version", info.version},
          {"number", info.number},
          {"current", info.current},
          {"applied_at", FormatTimestamp(info.applied_at)},
          {"code_version", info.code_version},
          {"kind", info.definition.kind == features::ViewKind::kWindow ? "window" : "snapshot"},
          {"entity", info.definition.entity.name},
          {"source", info.definition.source.name},
          {"features", info.definition.FeatureNames()}};
}

Result<std::unique_ptr<Catalog>> OpenCatalog(const RepoOptions& options) {
  ASSIGN_OR_RETURN(features::RepoConfig config, features::LoadRepoConfig(options.repo));
  return Catalog::Open(config.catalog_path);
}

}  // namespace

Status RunFeaturesList(const RepoOptions& options, bool json) {
  ASSIGN_OR_RETURN(std::unique_ptr<Catalog> catalog, OpenCatalog(options));
  ASSIGN_OR_RETURN(std::vector<ViewVersionInfo> views, catalog->ListCurrent());
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const ViewVersionInfo& info : views) out.push_back(VersionJson(info));
    std::printf("%s\n", out.dump(2).c_str());
    return Status::Ok();
  }
  TextTable table({"view", "version", "#", "kind", "entity", "source", "features", "applied"});
  for (const ViewVersionInfo& info : views) {
    table.AddRow({info.name, info.version, std::to_string(info.number),
                  info.definition.kind == features::ViewKind::kWindow ? "window" : "snapshot",
                  info.definition.entity.name, info.definition.source.name,
                  std::to_string(info.definition.FeatureNames().size()),
                  FormatTimestamp(info.applied_at).substr(0, 19)});
  }
  std::fputs(table.ToString().c_str(), stdout);
  if (views.empty()) std::printf("(no views: run 'keel apply')\n");
  return Status::Ok();
}

Status RunFeaturesShow(const RepoOptions& options, const std::string& reference, bool json) {
  ASSIGN_OR_RETURN(std::unique_ptr<Catalog> catalog, OpenCatalog(options));
  size_t at = reference.find('@');
  std::string view = reference.substr(0, at);
  std::string version = at == std::string::npos ? "" : reference.substr(at + 1);
  ASSIGN_OR_RETURN(ViewVersionInfo info, catalog->Resolve(view, version));
  ASSIGN_OR_RETURN(std::vector<ViewVersionInfo> history, catalog->History(view));
  nlohmann::json definition = nlohmann::json::parse(features::CanonicalJson(info.definition));
  if (json) {
    nlohmann::json out = VersionJson(info);
    out["definition"] = definition;
    out["versions"] = nlohmann::json::array();
    for (const ViewVersionInfo& item : history) out["versions"].push_back(VersionJson(item));
    std::printf("%s\n", out.dump(2).c_str());
    return Status::Ok();
  }
  std::printf("view %s, version %s (#%lld)%s\n\n%s\n\nversions:\n", info.name.c_str(),
              info.version.c_str(), static_cast<long long>(info.number),
              info.current ? ", current" : "", definition.dump(2).c_str());
  TextTable table({"#", "version", "applied", "code", "current"});
  for (const ViewVersionInfo& item : history) {
    table.AddRow({std::to_string(item.number), item.version, FormatTimestamp(item.applied_at),
                  item.code_version, item.current ? "yes" : ""});
  }
  std::fputs(table.ToString().c_str(), stdout);
  return Status::Ok();
}

}  // namespace keel::cli
