// `keel models list|show|history|promote|archive|rollback|alias|register`:
// registered models, their versions and stage changes from the command line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/registry_commands.h"
#include "cli/text_table.h"
#include "registry/registry_json.h"

namespace keel::cli {
namespace {

using nlohmann::json;
using registry::FindModelVersion;
using registry::ModelVersion;
using registry::Registry;
using registry::Stage;
using registry::TransitionJson;
using registry::VersionJson;

Status ModelsList(const RepoOptions& repo, bool as_json) {
  ASSIGN_OR_RETURN(std::unique_ptr<Registry> registry, OpenRepoRegistry(repo));
  ASSIGN_OR_RETURN(std::vector<registry::RegisteredModel> models, registry->ListModels());
  if (as_json) {
    json out = json::array();
    for (const registry::RegisteredModel& model : models) {
      out.push_back(registry::ModelJson(model));
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
    ASSIGN_OR_RETURN(ModelVersion found, FindModelVersion(registry.get(), model, version));
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
    PrintJson(registry::ModelDetailJson(info, versions));
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
      PrintJson(registry::ProductionAtJson(model, when, version));
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
  ASSIGN_OR_RETURN(ModelVersion found,
                   FindModelVersion(registry.get(), options.model, options.version));
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
bool as_json = false;
std::string model, version, at, alias_name;
TransitionOptions transition;
RegisterOptions register_options;
bool delete_alias = false;

}  // namespace

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
    Result<ModelVersion> target = FindModelVersion(registry->get(), model, version);
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

}  // namespace keel::cli
