#include "registry/registry_json.h"

namespace keel::registry {

using nlohmann::json;

namespace {

template <typename T>
json OrNull(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

}  // namespace

json RunJson(const Run& run) {
  json metrics = json::object();
  for (const auto& [key, metric] : run.metrics) {
    metrics[key] = {{"value", metric.value}, {"step", metric.step}};
  }
  json artifacts = json::array();
  for (const Artifact& artifact : run.artifacts) {
    artifacts.push_back({{"path", artifact.path},
                         {"uri", artifact.uri},
                         {"checksum", artifact.checksum},
                         {"size_bytes", artifact.size_bytes}});
  }
  return {{"id", run.id},
          {"experiment", run.experiment},
          {"name", run.name},
          {"status", RunStatusName(run.status)},
          {"start_time", FormatTimestamp(run.start_time)},
          {"end_time", run.end_time ? json(FormatTimestamp(*run.end_time)) : json(nullptr)},
          {"params", run.params},
          {"tags", run.tags},
          {"metrics", metrics},
          {"artifacts", artifacts}};
}

json ModelJson(const RegisteredModel& model) {
  return {{"name", model.name},
          {"description", model.description},
          {"created_at", FormatTimestamp(model.created_at)},
          {"latest_version", model.latest_version},
          {"production_version", OrNull(model.production_version)}};
}

json ModelDetailJson(const RegisteredModel& model, const std::vector<ModelVersion>& versions) {
  json out = {{"name", model.name},
              {"description", model.description},
              {"created_at", FormatTimestamp(model.created_at)},
              {"production_version", OrNull(model.production_version)},
              {"versions", json::array()}};
  for (const ModelVersion& version : versions) out["versions"].push_back(VersionJson(version));
  return out;
}

json VersionJson(const ModelVersion& version) {
  return {{"model", version.model},
          {"version", version.version},
          {"stage", StageName(version.stage)},
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

json TransitionJson(const StageTransition& entry) {
  json sign_off = entry.sign_off ? json{{"by", entry.sign_off->by}, {"note", entry.sign_off->note}}
                                 : json(nullptr);
  return {{"id", entry.id},
          {"time", FormatTimestamp(entry.time)},
          {"version", entry.version},
          {"from", entry.from ? json(StageName(*entry.from)) : json(nullptr)},
          {"to", StageName(entry.to)},
          {"actor", entry.actor},
          {"reason", entry.reason},
          {"kind", entry.kind},
          {"sign_off", sign_off},
          {"previous_production", OrNull(entry.previous_production)}};
}

json ProductionAtJson(const std::string& model, Timestamp at, std::optional<int64_t> version) {
  return {{"model", model}, {"at", FormatTimestamp(at)}, {"production_version", OrNull(version)}};
}

}  // namespace keel::registry
