// `keel runs ...` and `keel models ...`: tracking and the model registry
// (registry/registry.h) from the command line, over the registry keel.yaml
// configures (`registry: {type: sqlite|postgres, path: ..., url: ...}`).
#include <pwd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/text_table.h"
#include "features/definitions.h"
#include "registry/registry.h"

namespace keel::cli {
namespace {

using nlohmann::json;
using registry::ModelVersion;
using registry::Registry;
using registry::Stage;

Result<std::unique_ptr<Registry>> OpenRepoRegistry(const RepoOptions& repo) {
  ASSIGN_OR_RETURN(features::RepoConfig config, features::LoadRepoConfig(repo.repo));
  registry::RegistryOptions options;
  options.type = config.registry_type;
  options.path = config.registry_path;
  options.url = config.registry_url;
  Result<std::unique_ptr<Registry>> opened = registry::OpenRegistry(options);
  if (!opened.ok()) return opened.status().WithContext("keel.yaml registry");
  return opened;
}

std::string FormatNumber(double value) {
  char buffer[40];
  std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  return buffer;
}

std::string FormatOptionalTime(std::optional<Timestamp> time) {
  return time ? FormatTimestamp(*time) : "";
}

void Print(const std::string& text) { std::fputs(text.c_str(), stdout); }
void PrintJson(const json& value) { Print(value.dump(2) + "\n"); }

// "key=value" -> (key, value). Errors: InvalidArgument naming the option.
Result<std::pair<std::string, std::string>> SplitAssignment(const std::string& text,
                                                            const std::string& option) {
  size_t equals = text.find('=');
  if (equals == std::string::npos || equals == 0) {
    return InvalidArgument(option + " '" + text + "': expected KEY=VALUE");
  }
  return std::make_pair(text.substr(0, equals), text.substr(equals + 1));
}

json RunJson(const registry::Run& run) {
  json metrics = json::object();
  for (const auto& [key, metric] : run.metrics) {
    metrics[key] = {{"value", metric.value}, {"step", metric.step}};
  }
  json artifacts = json::array();
  for (const registry::Artifact& artifact : run.artifacts) {
    artifacts.push_back({{"path", artifact.path},
                         {"uri", artifact.uri},
                         {"checksum", artifact.checksum},
                         {"size_bytes", artifact.size_bytes}});
  }
  return {{"id", run.id},
          {"experiment", run.experiment},
          {"name", run.name},
          {"status", registry::RunStatusName(run.status)},
          {"start_time", FormatTimestamp(run.start_time)},
          {"end_time", run.end_time ? json(FormatTimestamp(*run.end_time)) : json(nullptr)},
          {"params", run.params},
          {"tags", run.tags},
          {"metrics", metrics},
          {"artifacts", artifacts}};
}

json VersionJson(const ModelVersion& version) {
  return {{"model", version.model},
          {"version", version.version},
          {"stage", registry::StageName(version.stage)},
          {"aliases", version.aliases},
          {"tags", version.tags},
          {"description", version.description},
          {"created_at", FormatTimestamp(version.created_at)},
          {"lineage",
           {{"run_id", version.lineage.run_id},
            {"bundle_hash", version.lineage.bundle_hash},
            {"bundle_uri", version.lineage.bundle_uri},
            {"data_hash", version.lineage.data_hash},
            {"feature_versions", version.lineage.feature_versions},
            {"code_version", version.lineage.code_version}}}};
}

json TransitionJson(const registry::StageTransition& entry) {
  json sign_off = entry.sign_off ? json{{"by", entry.sign_off->by}, {"note", entry.sign_off->note}}
                                 : json(nullptr);
  return {{"id", entry.id},
          {"time", FormatTimestamp(entry.time)},
          {"version", entry.version},
          {"from", entry.from ? json(registry::StageName(*entry.from)) : json(nullptr)},
          {"to", registry::StageName(entry.to)},
          {"actor", entry.actor},
          {"reason", entry.reason},
          {"kind", entry.kind},
          {"sign_off", sign_off},
          {"previous_production",
           entry.previous_production ? json(*entry.previous_production) : json(nullptr)}};
}

// A version given as "3", "v3" or an alias.
Result<ModelVersion> FindVersion(Registry* registry, const std::string& model,
                                 const std::string& text) {
  std::string digits = text;
  if (digits.size() > 1 && (digits[0] == 'v' || digits[0] == 'V')) digits.erase(0, 1);
  bool numeric = !digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos;
  if (numeric) return registry->GetModelVersion(model, std::stoll(digits));
  return registry->GetVersionByAlias(model, text);
}

// $USER, else $LOGNAME, else the name of the process's user.
std::string DefaultActor() {
  for (const char* name : {"USER", "LOGNAME"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return value;
  }
  struct passwd* entry = ::getpwuid(::getuid());
  return entry != nullptr && entry->pw_name != nullptr ? entry->pw_name : "";
}

// --- runs ----------------------------------------------------------------------

struct RunsListOptions {
  std::string experiment;
  std::string status;
  std::vector<std::string> where;
  std::string order_by;
  bool ascending = false;
  int64_t limit = 50;
  bool json = false;
};

Status RunsList(const RepoOptions& repo, const RunsListOptions& options) {
  registry::RunQuery query;
  query.experiment = options.experiment;
  if (!options.status.empty()) {
    ASSIGN_OR_RETURN(registry::RunStatus status, registry::ParseRunStatus(options.status));
    query.status = status;
  }
  for (const std::string& text : options.where) {
    ASSIGN_OR_RETURN(registry::RunPredicate predicate, registry::ParseRunPredicate(text));
    query.where.push_back(std::move(predicate));
  }
  query.order_by_metric = options.order_by;
  query.ascending = options.ascending;
  query.limit = options.limit;
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, OpenRepoRegistry(repo));
  ASSIGN_OR_RETURN(std::vector<registry::Run> runs, registry->SearchRuns(query));
  if (options.json) {
    json out = json::array();
    for (const registry::Run& run : runs) out.push_back(RunJson(run));
    PrintJson(out);
    return Status::Ok();
  }
  // One column per metric (the ordering one first), at most six.
  std::vector<std::string> metric_keys;
  if (!options.order_by.empty()) metric_keys.push_back(options.order_by);
  for (const registry::Run& run : runs) {
    for (const auto& [key, metric] : run.metrics) {
      if (metric_keys.size() < 6 &&
          std::find(metric_keys.begin(), metric_keys.end(), key) == metric_keys.end()) {
        metric_keys.push_back(key);
      }
    }
  }
  std::vector<std::string> header = {"run", "experiment", "name", "status", "started"};
  header.insert(header.end(), metric_keys.begin(), metric_keys.end());
  TextTable table(header);
  for (const registry::Run& run : runs) {
    std::vector<std::string> row = {run.id.substr(0, 12), run.experiment, run.name,
                                    std::string(registry::RunStatusName(run.status)),
                                    FormatTimestamp(run.start_time)};
    for (const std::string& key : metric_keys) {
      auto found = run.metrics.find(key);
      row.push_back(found == run.metrics.end() ? "" : FormatNumber(found->second.value));
    }
    table.AddRow(std::move(row));
  }
  Print(table.ToString());
  std::printf("%zu run%s\n", runs.size(), runs.size() == 1 ? "" : "s");
  return Status::Ok();
}

Status RunsShow(const RepoOptions& repo, const std::string& run_id, bool as_json) {
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, OpenRepoRegistry(repo));
  ASSIGN_OR_RETURN(registry::Run run, registry->GetRun(run_id));
  if (as_json) {
    PrintJson(RunJson(run));
    return Status::Ok();
  }
  std::printf("run         %s\nexperiment  %s\nname        %s\nstatus      %s\n", run.id.c_str(),
              run.experiment.c_str(), run.name.c_str(),
              std::string(registry::RunStatusName(run.status)).c_str());
  std::printf("started     %s\nended       %s\n\n", FormatTimestamp(run.start_time).c_str(),
              FormatOptionalTime(run.end_time).c_str());
  TextTable values({"kind", "key", "value", "step"});
  for (const auto& [key, value] : run.params) values.AddRow({"param", key, value, ""});
  for (const auto& [key, metric] : run.metrics) {
    values.AddRow({"metric", key, FormatNumber(metric.value), std::to_string(metric.step)});
  }
  for (const auto& [key, value] : run.tags) values.AddRow({"tag", key, value, ""});
  Print(values.ToString());
  if (!run.artifacts.empty()) {
    TextTable artifacts({"artifact", "checksum", "uri"});
    for (const registry::Artifact& artifact : run.artifacts) {
      artifacts.AddRow({artifact.path, artifact.checksum, artifact.uri});
    }
    Print("\n" + artifacts.ToString());
  }
  return Status::Ok();
}

Status RunsCompare(const RepoOptions& repo, const std::vector<std::string>& run_ids, bool as_json) {
  if (run_ids.size() < 2) return InvalidArgument("runs compare: give two or more runs");
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, OpenRepoRegistry(repo));
  std::vector<registry::Run> runs;
  for (const std::string& id : run_ids) {
    ASSIGN_OR_RETURN(registry::Run run, registry->GetRun(id));
    runs.push_back(std::move(run));
  }
  // Every param and metric key of any run, each a row; "*" marks rows that differ.
  std::map<std::string, std::vector<std::string>> rows;
  for (size_t run_idx = 0; run_idx < runs.size(); ++run_idx) {
    for (const auto& [key, value] : runs[run_idx].params) {
      rows["params." + key].resize(runs.size());
      rows["params." + key][run_idx] = value;
    }
    for (const auto& [key, metric] : runs[run_idx].metrics) {
      rows["metrics." + key].resize(runs.size());
      rows["metrics." + key][run_idx] = FormatNumber(metric.value);
    }
  }
  if (as_json) {
    json out = {{"runs", json::array()}, {"rows", json::object()}};
    for (const registry::Run& run : runs) out["runs"].push_back(RunJson(run));
    for (const auto& [key, values] : rows) {
      bool differs =
          std::adjacent_find(values.begin(), values.end(), std::not_equal_to<>()) != values.end();
      out["rows"][key] = {{"values", values}, {"differs", differs}};
    }
    PrintJson(out);
    return Status::Ok();
  }
  std::vector<std::string> header = {"", "key"};
  for (const registry::Run& run : runs) header.push_back(run.id.substr(0, 12));
  TextTable table(header);
  for (const auto& [key, values] : rows) {
    bool differs =
        std::adjacent_find(values.begin(), values.end(), std::not_equal_to<>()) != values.end();
    std::vector<std::string> row = {differs ? "*" : "", key};
    row.insert(row.end(), values.begin(), values.end());
    table.AddRow(std::move(row));
  }
  Print(table.ToString());
  return Status::Ok();
}

struct RunsLogOptions {
  std::string experiment;
  std::string name;
  std::vector<std::string> params;
  std::vector<std::string> metrics;  // key=value or key=value@step
  std::vector<std::string> tags;
  std::vector<std::string> artifacts;  // path=uri or path=uri#checksum
  std::string status = "finished";
};

Status RunsLog(const RepoOptions& repo, const RunsLogOptions& options) {
  registry::NewRun new_run;
  new_run.experiment = options.experiment;
  new_run.name = options.name;
  registry::RunLog log;
  for (const std::string& text : options.params) {
    ASSIGN_OR_RETURN(auto param, SplitAssignment(text, "--param"));
    new_run.params.insert(param);
  }
  for (const std::string& text : options.tags) {
    ASSIGN_OR_RETURN(auto tag, SplitAssignment(text, "--tag"));
    new_run.tags.insert(tag);
  }
  for (const std::string& text : options.metrics) {
    ASSIGN_OR_RETURN(auto metric, SplitAssignment(text, "--metric"));
    registry::Metric value;
    value.key = metric.first;
    std::string number = metric.second;
    size_t at = number.find('@');
    if (at != std::string::npos) {
      value.step = std::strtoll(number.c_str() + at + 1, nullptr, 10);
      number.resize(at);
    }
    char* end = nullptr;
    value.value = std::strtod(number.c_str(), &end);
    if (number.empty() || *end != '\0') {
      return InvalidArgument("--metric '" + text + "': expected KEY=NUMBER[@STEP]");
    }
    log.metrics.push_back(value);
  }
  for (const std::string& text : options.artifacts) {
    ASSIGN_OR_RETURN(auto artifact, SplitAssignment(text, "--artifact"));
    registry::Artifact value;
    value.path = artifact.first;
    value.uri = artifact.second;
    size_t hash = value.uri.find('#');
    if (hash != std::string::npos) {
      value.checksum = value.uri.substr(hash + 1);
      value.uri.resize(hash);
    }
    log.artifacts.push_back(value);
  }
  ASSIGN_OR_RETURN(registry::RunStatus status, registry::ParseRunStatus(options.status));
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, OpenRepoRegistry(repo));
  ASSIGN_OR_RETURN(registry::Run run, registry->CreateRun(new_run));
  RETURN_IF_ERROR(registry->LogToRun(run.id, log));
  if (status != registry::RunStatus::kRunning) RETURN_IF_ERROR(registry->EndRun(run.id, status));
  std::printf("%s\n", run.id.c_str());
  return Status::Ok();
}

// --- models --------------------------------------------------------------------

Status ModelsList(const RepoOptions& repo, bool as_json) {
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, OpenRepoRegistry(repo));
  ASSIGN_OR_RETURN(std::vector<registry::RegisteredModel> models, registry->ListModels());
  if (as_json) {
    json out = json::array();
    for (const registry::RegisteredModel& model : models) {
      out.push_back({{"name", model.name},
                     {"description", model.description},
                     {"created_at", FormatTimestamp(model.created_at)},
                     {"latest_version", model.latest_version},
                     {"production_version",
                      model.production_version ? json(*model.production_version) : json(nullptr)}});
    }
    PrintJson(out);
    return Status::Ok();
  }
  TextTable table({"model", "versions", "production", "created", "description"});
  for (const registry::RegisteredModel& model : models) {
    table.AddRow({model.name, std::to_string(model.latest_version),
                  model.production_version ? std::to_string(*model.production_version) : "-",
                  FormatTimestamp(model.created_at), model.description});
  }
  Print(table.ToString());
  return Status::Ok();
}

void PrintVersion(const ModelVersion& version) {
  std::string aliases, tags, features;
  for (const std::string& alias : version.aliases) aliases += (aliases.empty() ? "" : ", ") + alias;
  for (const auto& [key, value] : version.tags) {
    tags += (tags.empty() ? "" : ", ") + key + "=" + value;
  }
  for (const std::string& feature : version.lineage.feature_versions) {
    features += (features.empty() ? "" : ", ") + feature;
  }
  TextTable table({"field", "value"});
  table.AddRow({"model", version.model});
  table.AddRow({"version", std::to_string(version.version)});
  table.AddRow({"stage", std::string(registry::StageName(version.stage))});
  table.AddRow({"aliases", aliases});
  table.AddRow({"tags", tags});
  table.AddRow({"created", FormatTimestamp(version.created_at)});
  table.AddRow({"description", version.description});
  table.AddRow({"run", version.lineage.run_id});
  table.AddRow({"bundle hash", version.lineage.bundle_hash});
  table.AddRow({"bundle uri", version.lineage.bundle_uri});
  table.AddRow({"data hash", version.lineage.data_hash});
  table.AddRow({"features", features});
  table.AddRow({"code version", version.lineage.code_version});
  Print(table.ToString());
}

Status ModelsShow(const RepoOptions& repo, const std::string& model, const std::string& version,
                  bool as_json) {
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, OpenRepoRegistry(repo));
  if (!version.empty()) {
    ASSIGN_OR_RETURN(ModelVersion found, FindVersion(registry.get(), model, version));
    if (as_json) {
      PrintJson(VersionJson(found));
    } else {
      PrintVersion(found);
    }
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(registry::RegisteredModel info, registry->GetModel(model));
  ASSIGN_OR_RETURN(std::vector<ModelVersion> versions, registry->ListModelVersions(model));
  if (as_json) {
    json out = {{"name", info.name},
                {"description", info.description},
                {"created_at", FormatTimestamp(info.created_at)},
                {"production_version",
                 info.production_version ? json(*info.production_version) : json(nullptr)},
                {"versions", json::array()}};
    for (const ModelVersion& entry : versions) out["versions"].push_back(VersionJson(entry));
    PrintJson(out);
    return Status::Ok();
  }
  std::printf("model %s: %zu version%s, production: %s\n", info.name.c_str(), versions.size(),
              versions.size() == 1 ? "" : "s",
              info.production_version ? std::to_string(*info.production_version).c_str() : "none");
  TextTable table({"version", "stage", "aliases", "run", "bundle", "created"});
  for (const ModelVersion& entry : versions) {
    std::string aliases;
    for (const std::string& alias : entry.aliases) aliases += (aliases.empty() ? "" : ",") + alias;
    table.AddRow({std::to_string(entry.version), std::string(registry::StageName(entry.stage)),
                  aliases, entry.lineage.run_id.substr(0, 12),
                  entry.lineage.bundle_hash.substr(0, 16), FormatTimestamp(entry.created_at)});
  }
  Print(table.ToString());
  return Status::Ok();
}

Status ModelsHistory(const RepoOptions& repo, const std::string& model, const std::string& at,
                     bool as_json) {
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, OpenRepoRegistry(repo));
  if (!at.empty()) {
    ASSIGN_OR_RETURN(Timestamp when, ParseTimestamp(at));
    ASSIGN_OR_RETURN(std::optional<int64_t> version, registry->ProductionVersionAt(model, when));
    if (as_json) {
      PrintJson({{"model", model},
                 {"at", FormatTimestamp(when)},
                 {"production_version", version ? json(*version) : json(nullptr)}});
    } else if (version) {
      std::printf("model %s at %s: version %lld in production\n", model.c_str(),
                  FormatTimestamp(when).c_str(), static_cast<long long>(*version));
    } else {
      std::printf("model %s at %s: no version in production\n", model.c_str(),
                  FormatTimestamp(when).c_str());
    }
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::vector<registry::StageTransition> history, registry->History(model));
  if (as_json) {
    json out = json::array();
    for (const registry::StageTransition& entry : history) out.push_back(TransitionJson(entry));
    PrintJson(out);
    return Status::Ok();
  }
  TextTable table({"time", "version", "from", "to", "actor", "kind", "sign-off", "reason"});
  for (const registry::StageTransition& entry : history) {
    table.AddRow({FormatTimestamp(entry.time), std::to_string(entry.version),
                  entry.from ? std::string(registry::StageName(*entry.from)) : "-",
                  std::string(registry::StageName(entry.to)), entry.actor, entry.kind,
                  entry.sign_off ? entry.sign_off->by + ": " + entry.sign_off->note : "",
                  entry.reason});
  }
  Print(table.ToString());
  return Status::Ok();
}

struct TransitionOptions {
  std::string model;
  std::string version;
  std::string to = "production";
  std::string sign_off;  // "name: note"
  std::string actor = DefaultActor();
  std::string reason;
  bool json = false;
};

void PrintMoved(const ModelVersion& version, bool as_json, const char* verb) {
  if (as_json) {
    PrintJson(VersionJson(version));
  } else {
    std::printf("model %s version %lld %s: now %s\n", version.model.c_str(),
                static_cast<long long>(version.version), verb,
                std::string(registry::StageName(version.stage)).c_str());
  }
}

Status ModelsTransition(const RepoOptions& repo, const TransitionOptions& options,
                        const char* verb) {
  ASSIGN_OR_RETURN(Stage to, registry::ParseStage(options.to));
  std::optional<registry::SignOff> sign_off;
  if (!options.sign_off.empty()) {
    size_t colon = options.sign_off.find(':');
    if (colon == std::string::npos || colon == 0) {
      return InvalidArgument("--sign-off '" + options.sign_off + "': expected \"NAME: NOTE\"");
    }
    std::string note = options.sign_off.substr(colon + 1);
    note.erase(0, note.find_first_not_of(' '));
    sign_off = registry::SignOff{options.sign_off.substr(0, colon), note};
  }
  if (to == Stage::kProduction && !sign_off) {
    return FailedPrecondition("model '" + options.model + "' version " + options.version +
                              ": promotion to production needs --sign-off \"NAME: NOTE\"");
  }
  if (to == Stage::kProduction && options.reason.empty()) {
    return InvalidArgument("model '" + options.model + "' version " + options.version +
                           ": promotion to production needs --reason (it goes into the audit "
                           "trail)");
  }
  if (options.actor.empty()) return InvalidArgument("give --actor (no user name is known)");
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, OpenRepoRegistry(repo));
  ASSIGN_OR_RETURN(ModelVersion found, FindVersion(registry.get(), options.model, options.version));
  registry::TransitionRequest request;
  request.model = options.model;
  request.version = found.version;
  request.to = to;
  request.actor = options.actor;
  request.reason = options.reason;
  request.sign_off = sign_off;
  ASSIGN_OR_RETURN(ModelVersion moved, registry->TransitionStage(request));
  PrintMoved(moved, options.json, verb);
  return Status::Ok();
}

struct RegisterOptions {
  std::string model;
  registry::Lineage lineage;
  std::string description;
  std::string actor = DefaultActor();
};

Status ModelsRegister(const RepoOptions& repo, const RegisterOptions& options) {
  if (options.actor.empty()) return InvalidArgument("give --actor (no user name is known)");
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, OpenRepoRegistry(repo));
  ASSIGN_OR_RETURN(ModelVersion version,
                   registry->CreateModelVersion(options.model, options.lineage, options.actor,
                                                options.description));
  std::printf("model %s version %lld registered (trained)\n", version.model.c_str(),
              static_cast<long long>(version.version));
  return Status::Ok();
}

// The commands' option values. They must outlive parsing (the callbacks run
// inside app->parse); one command runs per process, so they live here.
RunsListOptions list_options;
std::string run_id;
std::vector<std::string> run_ids;
bool as_json = false;
RunsLogOptions log_options;
std::string model, version, at, alias_name;
TransitionOptions transition;
RegisterOptions register_options;
bool delete_alias = false;

void AddRepoOption(CLI::App* command, RepoOptions* repo) {
  command->add_option("--repo,-r", repo->repo, "Feature repository (folder of keel.yaml)")
      ->envname("KEEL_REPO");
}

// keel runs list|show|compare|log.
void AddRunsCommands(CLI::App* app, RepoOptions* repo, Status* status) {
  CLI::App* runs = app->add_subcommand("runs", "Tracked training runs");
  runs->require_subcommand(1);
  CLI::App* list = runs->add_subcommand("list", "List and filter runs");
  AddRepoOption(list, repo);
  list->add_option("--experiment,-e", list_options.experiment, "Only this experiment");
  list->add_option("--status", list_options.status, "running, finished, failed or killed");
  list->add_option("--where,-w", list_options.where,
                   "Filter, repeatable: params.lr = 0.1, metrics.auc >= 0.7, tags.team != ml");
  list->add_option("--order-by", list_options.order_by, "Order by this metric (best first)");
  list->add_flag("--asc", list_options.ascending, "Smallest metric first");
  list->add_option("--limit,-n", list_options.limit, "At most this many runs")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  list->add_flag("--json", list_options.json, "Print JSON");
  list->callback([=] { *status = RunsList(*repo, list_options); });

  CLI::App* show = runs->add_subcommand("show", "One run: params, metrics, tags, artifacts");
  AddRepoOption(show, repo);
  show->add_option("run", run_id, "Run id (or a unique prefix of 6+ digits)")->required();
  show->add_flag("--json", as_json, "Print JSON");
  show->callback([=] { *status = RunsShow(*repo, run_id, as_json); });

  CLI::App* compare = runs->add_subcommand("compare", "Params and metrics of runs side by side");
  AddRepoOption(compare, repo);
  compare->add_option("runs", run_ids, "Two or more run ids")->required();
  compare->add_flag("--json", as_json, "Print JSON");
  compare->callback([=] { *status = RunsCompare(*repo, run_ids, as_json); });

  CLI::App* log = runs->add_subcommand(
      "log", "Low-level: record a run by hand (scripts, tests); prints its id");
  AddRepoOption(log, repo);
  log->add_option("--experiment,-e", log_options.experiment, "Experiment (created when missing)")
      ->required();
  log->add_option("--name", log_options.name, "Run name");
  log->add_option("--param", log_options.params, "KEY=VALUE, repeatable");
  log->add_option("--metric", log_options.metrics, "KEY=NUMBER[@STEP], repeatable");
  log->add_option("--tag", log_options.tags, "KEY=VALUE, repeatable");
  log->add_option("--artifact", log_options.artifacts, "PATH=URI[#CHECKSUM], repeatable");
  log->add_option("--status", log_options.status, "finished, failed, killed or running")
      ->capture_default_str();
  log->callback([=] { *status = RunsLog(*repo, log_options); });
}

// keel models list|show|history|promote|archive|rollback|alias|register.
void AddModelsCommands(CLI::App* app, RepoOptions* repo, Status* status) {
  CLI::App* models = app->add_subcommand("models", "Registered models, versions and stages");
  models->require_subcommand(1);
  CLI::App* models_list = models->add_subcommand("list", "Every registered model");
  AddRepoOption(models_list, repo);
  models_list->add_flag("--json", as_json, "Print JSON");
  models_list->callback([=] { *status = ModelsList(*repo, as_json); });

  CLI::App* models_show =
      models->add_subcommand("show", "A model and its versions, or one version with its lineage");
  AddRepoOption(models_show, repo);
  models_show->add_option("model", model, "Model name")->required();
  models_show->add_option("version", version, "Version: 3, v3 or an alias");
  models_show->add_flag("--json", as_json, "Print JSON");
  models_show->callback([=] { *status = ModelsShow(*repo, model, version, as_json); });

  CLI::App* history = models->add_subcommand(
      "history", "Every stage change (who, when, why), or the production version at --at");
  AddRepoOption(history, repo);
  history->add_option("model", model, "Model name")->required();
  history->add_option("--at", at, "Which version was in production at this time (UTC)");
  history->add_flag("--json", as_json, "Print JSON");
  history->callback([=] { *status = ModelsHistory(*repo, model, at, as_json); });

  auto add_transition = [&](CLI::App* command, bool with_stage) {
    AddRepoOption(command, repo);
    command->add_option("model", transition.model, "Model name")->required();
    command->add_option("version", transition.version, "Version: 3, v3 or an alias")->required();
    if (with_stage) {
      command->add_option("--to", transition.to, "staging or production")->capture_default_str();
      command->add_option("--sign-off", transition.sign_off,
                          "\"NAME: NOTE\"; required to enter production");
    }
    command->add_option("--actor", transition.actor, "Who does this (default: $USER)");
    command->add_option("--reason", transition.reason, "Why (required to enter production)");
    command->add_flag("--json", transition.json, "Print the version as JSON");
  };
  CLI::App* promote = models->add_subcommand(
      "promote", "Move a version to staging or production (production needs --sign-off)");
  add_transition(promote, true);
  promote->callback([=] { *status = ModelsTransition(*repo, transition, "promoted"); });
  CLI::App* archive = models->add_subcommand("archive", "Move a version to archived");
  add_transition(archive, false);
  archive->callback([=] {
    TransitionOptions options = transition;
    options.to = "archived";
    *status = ModelsTransition(*repo, options, "archived");
  });

  CLI::App* rollback = models->add_subcommand(
      "rollback", "Restore the previous production version (one transaction)");
  AddRepoOption(rollback, repo);
  rollback->add_option("model", transition.model, "Model name")->required();
  rollback->add_option("--actor", transition.actor, "Who does this (default: $USER)");
  rollback->add_option("--reason", transition.reason, "Why (required)");
  rollback->add_flag("--json", transition.json, "Print the restored version as JSON");
  rollback->callback([=] {
    if (transition.actor.empty()) {
      *status = InvalidArgument("give --actor (no user name is known)");
      return;
    }
    if (transition.reason.empty()) {
      *status = InvalidArgument("model '" + transition.model +
                                "': a rollback needs --reason (it goes into the audit trail)");
      return;
    }
    Result<std::unique_ptr<Registry>> registry = OpenRepoRegistry(*repo);
    if (!registry.ok()) {
      *status = registry.status();
      return;
    }
    Result<ModelVersion> restored =
        (*registry)->Rollback(transition.model, transition.actor, transition.reason);
    *status = restored.status();
    if (restored.ok()) PrintMoved(*restored, transition.json, "restored");
  });

  CLI::App* alias = models->add_subcommand("alias", "Point an alias (champion, ...) at a version");
  AddRepoOption(alias, repo);
  alias->add_option("model", model, "Model name")->required();
  alias->add_option("alias", alias_name, "Alias name")->required();
  alias->add_option("version", version, "Version: 3 or v3 (not with --delete)");
  alias->add_flag("--delete", delete_alias, "Remove the alias");
  alias->callback([=] {
    Result<std::unique_ptr<Registry>> registry = OpenRepoRegistry(*repo);
    if (!registry.ok()) {
      *status = registry.status();
      return;
    }
    if (delete_alias) {
      *status = (*registry)->DeleteAlias(model, alias_name);
      if (status->ok()) {
        std::printf("model %s: alias %s removed\n", model.c_str(), alias_name.c_str());
      }
      return;
    }
    if (version.empty()) {
      *status = InvalidArgument("models alias: give the version (or --delete)");
      return;
    }
    Result<ModelVersion> target = FindVersion(registry->get(), model, version);
    *status = target.status();
    if (!target.ok()) return;
    *status = (*registry)->SetAlias(model, alias_name, target->version);
    if (status->ok()) {
      std::printf("model %s: %s -> version %lld\n", model.c_str(), alias_name.c_str(),
                  static_cast<long long>(target->version));
    }
  });

  CLI::App* register_command = models->add_subcommand(
      "register", "Low-level: register a model version by hand (scripts, tests)");
  AddRepoOption(register_command, repo);
  register_command->add_option("model", register_options.model, "Model name")->required();
  register_command->add_option("--run", register_options.lineage.run_id, "Run that trained it");
  register_command->add_option("--bundle-hash", register_options.lineage.bundle_hash,
                               "Model bundle hash");
  register_command->add_option("--bundle-uri", register_options.lineage.bundle_uri,
                               "Where the bundle lives");
  register_command->add_option("--data-hash", register_options.lineage.data_hash,
                               "Training data hash");
  register_command->add_option("--feature", register_options.lineage.feature_versions,
                               "view@version, repeatable");
  register_command->add_option("--code-version", register_options.lineage.code_version,
                               "Code version");
  register_command->add_option("--description", register_options.description, "Free text");
  register_command->add_option("--actor", register_options.actor, "Who (default: $USER)");
  register_command->callback([=] { *status = ModelsRegister(*repo, register_options); });
}

}  // namespace

void AddRegistryCommands(CLI::App* app, RepoOptions* repo, Status* status) {
  AddRunsCommands(app, repo, status);
  AddModelsCommands(app, repo, status);
}

}  // namespace keel::cli
