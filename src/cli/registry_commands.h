#pragma once

// What the registry commands share (registry_commands.cc): opening the
// registry keel.yaml configures, the default actor, output helpers, and the
// subcommand groups `keel runs ...` (runs_commands.cc) and `keel models ...`
// (models_commands.cc). Internal to the CLI.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "cli/commands.h"
#include "features/definitions.h"
#include "registry/registry.h"

namespace CLI {
class App;
}

namespace keel::cli {

// The registry keel.yaml configures (`registry: {type: sqlite|postgres,
// path: ..., url: ...}`; default: the SQLite file <root>/.keel/registry.db,
// created with its tables when missing). Errors: those of LoadRepoConfig and
// registry::OpenRegistry, the latter prefixed "keel.yaml registry".
Result<std::unique_ptr<registry::Registry>> OpenRepoRegistry(const features::RepoConfig& config);
Result<std::unique_ptr<registry::Registry>> OpenRepoRegistry(const RepoOptions& repo);

// $USER, else $LOGNAME, else the name of the process's user; "" when none is known.
std::string DefaultActor();

// "%.6g".
std::string FormatNumber(double value);
// Writes `text` to stdout.
void Print(const std::string& text);
// Writes `value` to stdout, indented, with a newline.
void PrintJson(const nlohmann::json& value);
// "key=value" -> (key, value). Errors: InvalidArgument naming `option`.
Result<std::pair<std::string, std::string>> SplitAssignment(const std::string& text,
                                                            const std::string& option);
// Adds --repo/-r (env KEEL_REPO) to `command`, filling `repo`.
void AddRepoOption(CLI::App* command, RepoOptions* repo);

// `keel runs list|show|compare|log` (runs_commands.cc).
void AddRunsCommands(CLI::App* app, RepoOptions* repo, Status* status);
// `keel models list|show|history|promote|archive|rollback|alias|register`
// (models_commands.cc).
void AddModelsCommands(CLI::App* app, RepoOptions* repo, Status* status);

}  // namespace keel::cli
