// `keel runs list|show|compare|log`: tracked runs from the command line.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>

#include "cli/registry_commands.h"
#include "cli/text_table.h"
#include "registry/registry_json.h"

namespace keel::cli {
namespace {

using nlohmann::json;
using registry::Registry;
using registry::RunJson;

std::string FormatOptionalTime(std::optional<Timestamp> time) {
  return time ? FormatTimestamp(*time) : "";
}

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

// The commands' option values. They must outlive parsing (the callbacks run
// inside app->parse); one command runs per process, so they live here.
RunsListOptions list_options;
std::string run_id;
std::vector<std::string> run_ids;
bool as_json = false;
RunsLogOptions log_options;

}  // namespace

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

}  // namespace keel::cli
