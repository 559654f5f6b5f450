#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/text_table.h"
#include "features/catalog.h"
#include "features/online.h"
#include "features/online_events.h"
#include "features/parity.h"
#include "serve/features_json.h"
#include "store/online_store.h"
#include "table/duckdb_bridge.h"

namespace keel::cli {

using features::Catalog;
using features::OnlineView;
using table::Column;
using table::DataType;

Result<std::unique_ptr<store::OnlineStore>> OpenRepoOnlineStore(const features::RepoConfig& config,
                                                                bool read_only) {
  store::StoreOptions options;
  options.read_only = read_only;
  options.type = config.online_type;
  options.path = config.online_path;
  options.url = config.online_url;
  options.project = config.project;
  Result<std::unique_ptr<store::OnlineStore>> store = store::OpenOnlineStore(options);
  if (!store.ok()) return store.status().WithContext("keel.yaml online store");
  return store;
}

namespace {

Result<Timestamp> TimeOption(const std::string& text, const std::string& option) {
  if (text.empty() || text == "now") return WallClockNow();
  Result<Timestamp> parsed = ParseTimestamp(text);
  if (!parsed.ok()) return parsed.status().WithContext(option);
  return parsed;
}

std::vector<std::string> SplitComma(const std::string& text) {
  std::vector<std::string> items;
  std::string item;
  for (char c : text + ",") {
    if (c == ',') {
      size_t begin = item.find_first_not_of(' '), end = item.find_last_not_of(' ');
      if (begin != std::string::npos) items.push_back(item.substr(begin, end - begin + 1));
      item.clear();
    } else {
      item += c;
    }
  }
  return items;
}

// The uses a command names (a feature service or a list of references),
// resolved against the catalog and the caller's key columns.
Result<std::vector<features::ResolvedUse>> ResolveCommandUses(
    Catalog* catalog, const std::string& service, const std::string& references,
    const std::vector<table::Field>& fields) {
  std::vector<features::FeatureUse> uses;
  if (!service.empty()) {
    ASSIGN_OR_RETURN(features::FeatureServiceDef definition, catalog->Service(service));
    uses = definition.uses;
  } else {
    ASSIGN_OR_RETURN(uses, features::ParseFeatureUses(references));
  }
  std::vector<features::ResolvedUse> resolved;
  for (const features::FeatureUse& use : uses) {
    ASSIGN_OR_RETURN(features::ViewVersionInfo info, catalog->Resolve(use.view, use.version));
    ASSIGN_OR_RETURN(features::ResolvedUse item,
                     features::ResolveUse(use, info.definition, info.version, fields));
    resolved.push_back(std::move(item));
  }
  return resolved;
}

}  // namespace

Status RunMaterialize(const MaterializeOptions& options) {
  ASSIGN_OR_RETURN(features::Repository repo, features::LoadRepository(options.repo.repo));
  ASSIGN_OR_RETURN(std::unique_ptr<Catalog> catalog, Catalog::Open(repo.config.catalog_path));
  ASSIGN_OR_RETURN(Timestamp end, TimeOption(options.end, "--end"));
  std::vector<features::ViewVersionInfo> views;
  if (options.views.empty()) {
    ASSIGN_OR_RETURN(views, catalog->ListCurrent());
    if (views.empty()) return FailedPrecondition("materialize: no views applied yet (keel apply)");
  } else {
    for (const std::string& reference : SplitComma(options.views)) {
      size_t at = reference.find('@');
      std::string name = reference.substr(0, at);
      std::string version = at == std::string::npos ? "" : reference.substr(at + 1);
      ASSIGN_OR_RETURN(features::ViewVersionInfo info, catalog->Resolve(name, version));
      views.push_back(std::move(info));
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open());
  std::vector<std::string> sources;
  for (const features::ViewVersionInfo& info : views) {
    for (const auto& [name, input] : info.definition.source_inputs) sources.push_back(name);
    sources.push_back(info.definition.source.name);
  }
  std::sort(sources.begin(), sources.end());
  sources.erase(std::unique(sources.begin(), sources.end()), sources.end());
  ASSIGN_OR_RETURN(
      nlohmann::json checks,
      CheckSourcesBeforeBuild(repo, sources, options.allow_failed_checks, duckdb.get()));
  ASSIGN_OR_RETURN(std::unique_ptr<store::OnlineStore> store, OpenRepoOnlineStore(repo.config));
  nlohmann::json report = nlohmann::json::array();
  TextTable table({"view", "from", "to", "rows", "entities", "late", "seconds"});
  for (const features::ViewVersionInfo& info : views) {
    ASSIGN_OR_RETURN(std::shared_ptr<const OnlineView> view,
                     OnlineView::Make(info.definition, info.version));
    ASSIGN_OR_RETURN(features::MaterializeResult result,
                     features::Materialize(repo.config, duckdb.get(), view, end,
                                           options.incremental, store.get()));
    std::string from = result.from == kMinTimestamp ? "(start)" : FormatTimestamp(result.from);
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%.2f", result.seconds);
    table.AddRow({view->store_view(), from, FormatTimestamp(end), std::to_string(result.stats.rows),
                  std::to_string(result.stats.entities), std::to_string(result.stats.late),
                  seconds});
    report.push_back(
        {{"view", info.name},
         {"version", info.version},
         {"from", result.from == kMinTimestamp ? nlohmann::json()
                                               : nlohmann::json(FormatTimestamp(result.from))},
         {"to", FormatTimestamp(end)},
         {"rows", result.stats.rows},
         {"entities", result.stats.entities},
         {"late", result.stats.late},
         {"seconds", result.seconds}});
  }
  if (options.json) {
    std::printf("%s\n",
                nlohmann::json(
                    {{"store", std::string(store->type())}, {"views", report}, {"checks", checks}})
                    .dump(2)
                    .c_str());
    return Status::Ok();
  }
  std::printf("materialized %zu view(s) into the %s online store, as of %s\n", views.size(),
              std::string(store->type()).c_str(), FormatTimestamp(end).c_str());
  std::fputs(table.ToString().c_str(), stdout);
  return Status::Ok();
}

Status RunParity(const ParityOptions& options) {
  ASSIGN_OR_RETURN(features::RepoConfig config, features::LoadRepoConfig(options.repo.repo));
  ASSIGN_OR_RETURN(std::unique_ptr<Catalog> catalog, Catalog::Open(config.catalog_path));
  if (options.materialize_until.empty()) return InvalidArgument("parity: give --materialize-until");
  ASSIGN_OR_RETURN(Timestamp until, TimeOption(options.materialize_until, "--materialize-until"));
  ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open());
  ASSIGN_OR_RETURN(LoadedSpine spine,
                   LoadSpine(options.spine, options.spine_time, options.repo.repo, duckdb.get()));
  ASSIGN_OR_RETURN(
      std::vector<features::ResolvedUse> resolved,
      ResolveCommandUses(catalog.get(), options.service, options.features, spine.table.fields()));
  std::unique_ptr<store::OnlineStore> store;
  if (options.store == "memory") {
    store = store::NewMemoryStore(config.project);
  } else if (options.store == "repo") {
    ASSIGN_OR_RETURN(store, OpenRepoOnlineStore(config));
  } else {
    return InvalidArgument("--store: expected memory or repo, got '" + options.store + "'");
  }
  ASSIGN_OR_RETURN(features::ParityReport report,
                   features::CheckOnlineParity(config, duckdb.get(), store.get(), spine.table,
                                               spine.time_column, resolved, until));
  if (options.json) {
    std::printf("%s\n", nlohmann::json({{"spine_rows", report.spine_rows},
                                        {"values_compared", report.values_compared},
                                        {"mismatches", report.mismatches},
                                        {"examples", report.examples},
                                        {"events_streamed", report.events_streamed},
                                        {"late_events", report.late_events},
                                        {"store", std::string(store->type())},
                                        {"seconds",
                                         {{"offline", report.offline_seconds},
                                          {"materialize", report.materialize_seconds},
                                          {"stream", report.stream_seconds},
                                          {"read", report.read_seconds}}}})
                            .dump(2)
                            .c_str());
  } else {
    std::printf(
        "online/offline parity (%s store): materialized before %s, streamed %llu events, "
        "read %zu spine rows online\n",
        std::string(store->type()).c_str(), FormatTimestamp(until).c_str(),
        static_cast<unsigned long long>(report.events_streamed), report.spine_rows);
    std::printf("values compared: %zu, mismatches: %zu\n", report.values_compared,
                report.mismatches);
    std::printf("time: offline %.2f s, materialize %.2f s, stream %.2f s, online reads %.2f s\n",
                report.offline_seconds, report.materialize_seconds, report.stream_seconds,
                report.read_seconds);
    for (const std::string& example : report.examples) std::printf("  %s\n", example.c_str());
  }
  if (report.mismatches > 0) {
    return FailedPrecondition("parity: " + std::to_string(report.mismatches) + " of " +
                              std::to_string(report.values_compared) + " values differ");
  }
  if (report.values_compared == 0) {
    return FailedPrecondition("parity: no spine rows at or after --materialize-until");
  }
  return Status::Ok();
}

Status RunFeaturesGet(const FeaturesGetOptions& options) {
  ASSIGN_OR_RETURN(features::RepoConfig config, features::LoadRepoConfig(options.repo.repo));
  ASSIGN_OR_RETURN(std::unique_ptr<Catalog> catalog, Catalog::Open(config.catalog_path));
  nlohmann::ordered_json entities_json =
      nlohmann::ordered_json::parse(options.entities, nullptr, false);
  if (entities_json.is_discarded()) return InvalidArgument("--entities: not valid JSON");
  ASSIGN_OR_RETURN(table::Table entities, serve::EntitiesFromJson(entities_json));
  ASSIGN_OR_RETURN(
      std::vector<features::ResolvedUse> resolved,
      ResolveCommandUses(catalog.get(), options.service, options.features, entities.fields()));
  std::vector<std::shared_ptr<const OnlineView>> views;
  for (const features::ResolvedUse& use : resolved) {
    ASSIGN_OR_RETURN(std::shared_ptr<const OnlineView> view,
                     OnlineView::Make(use.view, use.version));
    views.push_back(std::move(view));
  }
  ASSIGN_OR_RETURN(Timestamp at, TimeOption(options.at, "--at"));
  ASSIGN_OR_RETURN(std::unique_ptr<store::OnlineStore> store,
                   OpenRepoOnlineStore(config, /*read_only=*/true));
  features::OnlineFeatures out;
  auto started = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(features::ReadOnlineFeatures(store.get(), entities, resolved, views, at, &out));
  double micros =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count();
  if (options.json) {
    // The very JSON `keel serve` answers POST /v1/features with.
    std::printf("%s\n", serve::FeaturesJson(out, entities.num_rows()).c_str());
    return Status::Ok();
  }
  std::vector<std::string> header = {"feature"};
  for (size_t row = 0; row < entities.num_rows(); ++row) {
    std::string label;
    for (size_t k = 0; k < entities.num_columns(); ++k) {
      label += (k ? "," : "") + entities.column(k).ValueToString(row);
    }
    header.push_back(label);
  }
  TextTable table(header);
  for (size_t f = 0; f < out.names.size(); ++f) {
    std::vector<std::string> cells = {out.names[f]};
    for (size_t row = 0; row < entities.num_rows(); ++row) {
      features::FeatureStatus status = out.statuses[f][row];
      cells.push_back(status == features::FeatureStatus::kPresent ? out.values[f].ValueToString(row)
                      : out.values[f].IsValid(row)
                          ? out.values[f].ValueToString(row) + " (" +
                                std::string(features::FeatureStatusName(status)) + ")"
                          : std::string(features::FeatureStatusName(status)));
    }
    table.AddRow(cells);
  }
  std::printf("online features as of %s (%s store, read in %.0f us)\n", FormatTimestamp(at).c_str(),
              std::string(store->type()).c_str(), micros);
  std::fputs(table.ToString().c_str(), stdout);
  return Status::Ok();
}

Status RunFeaturesFreshness(const RepoOptions& options, bool json) {
  ASSIGN_OR_RETURN(features::RepoConfig config, features::LoadRepoConfig(options.repo));
  ASSIGN_OR_RETURN(std::unique_ptr<Catalog> catalog, Catalog::Open(config.catalog_path));
  ASSIGN_OR_RETURN(std::vector<features::ViewVersionInfo> views, catalog->ListCurrent());
  ASSIGN_OR_RETURN(std::unique_ptr<store::OnlineStore> store, OpenRepoOnlineStore(config, true));
  Timestamp now = WallClockNow();
  nlohmann::json report = nlohmann::json::array();
  TextTable table({"view", "source", "newest event", "age"});
  for (const features::ViewVersionInfo& info : views) {
    ASSIGN_OR_RETURN(std::shared_ptr<const OnlineView> view,
                     OnlineView::Make(info.definition, info.version));
    ASSIGN_OR_RETURN(std::optional<Timestamp> newest,
                     features::NewestEventApplied(store.get(), *view));
    std::string age = "-";
    if (newest.has_value()) {
      char text[32];
      std::snprintf(text, sizeof(text), "%.1f h",
                    static_cast<double>(now - *newest) / static_cast<double>(kMicrosPerHour));
      age = text;
    }
    table.AddRow({view->store_view(), info.definition.source.name,
                  newest.has_value() ? FormatTimestamp(*newest) : "(none)", age});
    report.push_back(
        {{"view", view->store_view()},
         {"source", info.definition.source.name},
         {"newest_event",
          newest.has_value() ? nlohmann::json(FormatTimestamp(*newest)) : nlohmann::json()},
         {"freshness_seconds",
          newest.has_value() ? nlohmann::json(static_cast<double>(now - *newest) / kMicrosPerSecond)
                             : nlohmann::json()}});
  }
  if (json) {
    std::printf("%s\n", report.dump(2).c_str());
  } else {
    std::fputs(table.ToString().c_str(), stdout);
  }
  return Status::Ok();
}

}  // namespace keel::cli
