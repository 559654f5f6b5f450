// `keel runs ...` and `keel models ...`: tracking and the model registry
// (registry/registry.h) from the command line, over the registry keel.yaml
// configures. The commands live in runs_commands.cc and models_commands.cc;
// this file holds what they share.
#include "cli/registry_commands.h"

#include <pwd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

namespace keel::cli {

Result<std::unique_ptr<registry::Registry>> OpenRepoRegistry(const features::RepoConfig& config) {
  registry::RegistryOptions options;
  options.type = config.registry_type;
  options.path = config.registry_path;
  options.url = config.registry_url;
  Result<std::unique_ptr<registry::Registry>> opened = registry::OpenRegistry(options);
  if (!opened.ok()) return opened.status().WithContext("keel.yaml registry");
  return opened;
}

Result<std::unique_ptr<registry::Registry>> OpenRepoRegistry(const RepoOptions& repo) {
  ASSIGN_OR_RETURN(features::RepoConfig config, features::LoadRepoConfig(repo.repo));
  return OpenRepoRegistry(config);
}

std::string DefaultActor() {
  for (const char* name : {"USER", "LOGNAME"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return value;
  }
  struct passwd* entry = ::getpwuid(::getuid());
  return entry != nullptr && entry->pw_name != nullptr ? entry->pw_name : "";
}

std::string FormatNumber(double value) {
  char buffer[40];
  std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  return buffer;
}

void Print(const std::string& text) { std::fputs(text.c_str(), stdout); }

void PrintJson(const nlohmann::json& value) { Print(value.dump(2) + "\n"); }

Result<std::pair<std::string, std::string>> SplitAssignment(const std::string& text,
                                                            const std::string& option) {
  size_t equals = text.find('=');
  if (equals == std::string::npos || equals == 0) {
    return InvalidArgument(option + " '" + text + "': expected KEY=VALUE");
  }
  return std::make_pair(text.substr(0, equals), text.substr(equals + 1));
}

void AddRepoOption(CLI::App* command, RepoOptions* repo) {
  command->add_option("--repo,-r", repo->repo, "Feature repository (folder of keel.yaml)")
      ->envname("KEEL_REPO");
}

void AddRegistryCommands(CLI::App* app, RepoOptions* repo, Status* status) {
  AddRunsCommands(app, repo, status);
  AddModelsCommands(app, repo, status);
}

}  // namespace keel::cli
