#pragma once

// The JSON shapes of registry objects, shared by the CLI's --json output
// (`keel runs ...`, `keel models ...`) and the registry HTTP API of `keel
// serve` (serve/registry_api.h), so both always answer alike. Times are
// FormatTimestamp strings (UTC); absent optional values are null.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/time.h"
#include "registry/registry.h"

namespace keel::registry {

// {"id", "experiment", "name", "status", "start_time", "end_time", "params",
//  "tags", "metrics": {key: {"value", "step"}}, "artifacts": [{"path", "uri",
//  "checksum", "size_bytes"}]}.
nlohmann::json RunJson(const Run& run);

// {"name", "description", "created_at", "latest_version", "production_version"}.
nlohmann::json ModelJson(const RegisteredModel& model);

// A model with its versions (`keel models show NAME --json`):
// {"name", "description", "created_at", "production_version", "versions": [VersionJson...]}.
nlohmann::json ModelDetailJson(const RegisteredModel& model,
                               const std::vector<ModelVersion>& versions);

// {"model", "version", "stage", "aliases", "tags", "description",
//  "created_at", "lineage": {"run_id", "bundle_hash", "bundle_uri",
//  "data_hash", "feature_versions", "code_version"}}.
nlohmann::json VersionJson(const ModelVersion& version);

// One audit record: {"id", "time", "version", "from", "to", "actor", "reason",
// "kind", "sign_off": {"by", "note"} | null, "previous_production"}.
nlohmann::json TransitionJson(const StageTransition& entry);

// Which version was in production at `at` (`keel models history NAME --at T
// --json`): {"model", "at", "production_version"}.
nlohmann::json ProductionAtJson(const std::string& model, Timestamp at,
                                std::optional<int64_t> version);

}  // namespace keel::registry
