// Models, versions, stages, aliases and the audit trail of SqlRegistry.
#include <algorithm>
#include <cctype>

#include "registry/sql_registry.h"

namespace keel::registry {
namespace {

std::string VersionName(const std::string& model, int64_t version) {
  return "model '" + model + "' version " + std::to_string(version);
}

// The stages a version may move to by TransitionStage (registry.h).
std::vector<Stage> AllowedTargets(Stage from) {
  switch (from) {
    case Stage::kTrained:
      return {Stage::kStaging, Stage::kArchived};
    case Stage::kStaging:
      return {Stage::kProduction, Stage::kArchived};
    case Stage::kProduction:
      return {Stage::kArchived};
    case Stage::kArchived:
      return {Stage::kStaging};
  }
  return {};
}

std::string JoinFeatureVersions(const std::vector<std::string>& features) {
  std::string out;
  for (size_t i = 0; i < features.size(); ++i) {
    if (i > 0) out += '\n';
    out += features[i];
  }
  return out;
}

std::vector<std::string> SplitFeatureVersions(const std::string& text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  size_t start = 0;
  while (true) {
    size_t end = text.find('\n', start);
    out.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// Aliases must not look like version numbers ("3", "v3"): the CLI accepts both.
Status CheckAlias(const std::string& model, const std::string& alias) {
  if (alias.empty()) return InvalidArgument("model '" + model + "': empty alias");
  std::string_view digits = alias;
  if (digits.size() > 1 && (digits[0] == 'v' || digits[0] == 'V')) digits.remove_prefix(1);
  if (std::all_of(digits.begin(), digits.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return InvalidArgument("model '" + model + "': alias '" + alias +
                           "' looks like a version number");
  }
  return Status::Ok();
}

}  // namespace

Result<int64_t> SqlRegistry::ModelId(const std::string& model, bool lock) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   connection_->Query(std::string("SELECT id FROM models WHERE name = $1") +
                                          (lock ? ForUpdate() : ""),
                                      {model}));
  if (rows.empty()) return NotFound("model '" + model + "' does not exist");
  return rows.Int(0, 0);
}

Result<int64_t> SqlRegistry::CreateModelRow(const std::string& name,
                                            const std::string& description) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   connection_->Query("INSERT INTO models (name, description, created_at) VALUES "
                                      "($1, $2, $3) RETURNING id",
                                      {name, description, clock_()}));
  return rows.Int(0, 0);
}

Result<RegisteredModel> SqlRegistry::LoadModel(const std::string& name) {
  ASSIGN_OR_RETURN(
      SqlRows rows,
      connection_->Query(
          "SELECT m.name, m.description, m.created_at, (SELECT MAX(version) FROM model_versions v "
          "WHERE v.model_id = m.id), (SELECT version FROM model_versions v WHERE v.model_id = m.id "
          "AND v.stage = 'production') FROM models m WHERE m.name = $1",
          {name}));
  if (rows.empty()) return NotFound("model '" + name + "' does not exist");
  RegisteredModel model;
  model.name = rows.Text(0, 0);
  model.description = rows.Text(0, 1);
  model.created_at = rows.Int(0, 2);
  model.latest_version = rows.IsNull(0, 3) ? 0 : rows.Int(0, 3);
  if (!rows.IsNull(0, 4)) model.production_version = rows.Int(0, 4);
  return model;
}

Result<RegisteredModel> SqlRegistry::CreateModel(const std::string& name,
                                                 const std::string& description) {
  if (name.empty()) return InvalidArgument("model: empty name");
  std::lock_guard<std::mutex> lock(mutex_);
  RegisteredModel model;
  RETURN_IF_ERROR(InTransaction(true, [&]() -> Status {
    ASSIGN_OR_RETURN(SqlRows rows,
                     connection_->Query("SELECT id FROM models WHERE name = $1", {name}));
    if (!rows.empty()) return AlreadyExists("model '" + name + "' already exists");
    RETURN_IF_ERROR(CreateModelRow(name, description).status());
    ASSIGN_OR_RETURN(model, LoadModel(name));
    return Status::Ok();
  }));
  return model;
}

Result<RegisteredModel> SqlRegistry::GetModel(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  RegisteredModel model;
  RETURN_IF_ERROR(InTransaction(false, [&]() -> Status {
    ASSIGN_OR_RETURN(model, LoadModel(name));
    return Status::Ok();
  }));
  return model;
}

Result<std::vector<RegisteredModel>> SqlRegistry::ListModels() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<RegisteredModel> models;
  RETURN_IF_ERROR(InTransaction(false, [&]() -> Status {
    models.clear();
    ASSIGN_OR_RETURN(SqlRows rows, connection_->Query("SELECT name FROM models ORDER BY name"));
    for (size_t row = 0; row < rows.size(); ++row) {
      ASSIGN_OR_RETURN(RegisteredModel model, LoadModel(rows.Text(row, 0)));
      models.push_back(std::move(model));
    }
    return Status::Ok();
  }));
  return models;
}

Result<std::vector<ModelVersion>> SqlRegistry::LoadVersions(const std::string& model,
                                                            int64_t model_id,
                                                            std::optional<int64_t> version) {
  std::vector<SqlValue> params = {model_id};
  std::string only;
  if (version) {
    only = " AND version = $2";
    params.push_back(*version);
  }
  ASSIGN_OR_RETURN(SqlRows rows,
                   connection_->Query("SELECT version, stage, run_id, bundle_hash, bundle_uri, "
                                      "data_hash, feature_versions, code_version, description, "
                                      "created_at FROM model_versions WHERE model_id = $1" +
                                          only + " ORDER BY version",
                                      params));
  std::vector<ModelVersion> versions;
  std::map<int64_t, size_t> index;
  for (size_t row = 0; row < rows.size(); ++row) {
    ModelVersion entry;
    entry.model = model;
    entry.version = rows.Int(row, 0);
    ASSIGN_OR_RETURN(entry.stage, ParseStage(rows.Text(row, 1)));
    entry.lineage.run_id = rows.Text(row, 2);
    entry.lineage.bundle_hash = rows.Text(row, 3);
    entry.lineage.bundle_uri = rows.Text(row, 4);
    entry.lineage.data_hash = rows.Text(row, 5);
    entry.lineage.feature_versions = SplitFeatureVersions(rows.Text(row, 6));
    entry.lineage.code_version = rows.Text(row, 7);
    entry.description = rows.Text(row, 8);
    entry.created_at = rows.Int(row, 9);
    index[entry.version] = versions.size();
    versions.push_back(std::move(entry));
  }
  ASSIGN_OR_RETURN(SqlRows tags, connection_->Query("SELECT version, key, value FROM version_tags "
                                                    "WHERE model_id = $1" +
                                                        only,
                                                    params));
  for (size_t row = 0; row < tags.size(); ++row) {
    auto found = index.find(tags.Int(row, 0));
    if (found != index.end()) versions[found->second].tags[tags.Text(row, 1)] = tags.Text(row, 2);
  }
  ASSIGN_OR_RETURN(SqlRows aliases,
                   connection_->Query("SELECT version, alias FROM model_aliases WHERE model_id = "
                                      "$1" +
                                          only + " ORDER BY alias",
                                      params));
  for (size_t row = 0; row < aliases.size(); ++row) {
    auto found = index.find(aliases.Int(row, 0));
    if (found != index.end()) versions[found->second].aliases.push_back(aliases.Text(row, 1));
  }
  return versions;
}

Result<ModelVersion> SqlRegistry::LoadVersion(const std::string& model, int64_t model_id,
                                              int64_t version) {
  ASSIGN_OR_RETURN(std::vector<ModelVersion> versions, LoadVersions(model, model_id, version));
  if (versions.empty()) {
    ASSIGN_OR_RETURN(
        SqlRows latest,
        connection_->Query("SELECT MAX(version) FROM model_versions WHERE model_id = $1",
                           {model_id}));
    std::string known = latest.IsNull(0, 0) ? "it has no versions yet"
                                            : "latest is " + std::to_string(latest.Int(0, 0));
    return NotFound(VersionName(model, version) + " does not exist (" + known + ")");
  }
  return std::move(versions[0]);
}

Result<Stage> SqlRegistry::VersionStage(const std::string& model, int64_t model_id,
                                        int64_t version) {
  ASSIGN_OR_RETURN(
      SqlRows rows,
      connection_->Query("SELECT stage FROM model_versions WHERE model_id = $1 AND version = $2",
                         {model_id, version}));
  if (rows.empty()) return LoadVersion(model, model_id, version).status();
  return ParseStage(rows.Text(0, 0));
}

Status SqlRegistry::SetStage(int64_t model_id, int64_t version, Stage stage) {
  return connection_->Execute(
      "UPDATE model_versions SET stage = $1 WHERE model_id = $2 AND version = $3",
      {std::string(StageName(stage)), model_id, version});
}

Status SqlRegistry::Record(int64_t model_id, const StageTransition& entry) {
  std::vector<SqlValue> params;
  params.reserve(11);
  params.emplace_back(model_id);
  params.emplace_back(entry.version);
  if (entry.from) {
    params.emplace_back(std::string(StageName(*entry.from)));
  } else {
    params.emplace_back(std::monostate());
  }
  params.emplace_back(std::string(StageName(entry.to)));
  params.emplace_back(entry.actor);
  params.emplace_back(entry.time);
  params.emplace_back(entry.reason);
  if (entry.sign_off) {
    params.emplace_back(entry.sign_off->by);
    params.emplace_back(entry.sign_off->note);
  } else {
    params.emplace_back(std::monostate());
    params.emplace_back(std::monostate());
  }
  params.emplace_back(entry.kind);
  if (entry.previous_production) {
    params.emplace_back(*entry.previous_production);
  } else {
    params.emplace_back(std::monostate());
  }
  return connection_->Execute(
      "INSERT INTO stage_transitions (model_id, version, from_stage, to_stage, actor, changed_at, "
      "reason, sign_off_by, sign_off_note, kind, previous_production) VALUES ($1, $2, $3, $4, $5, "
      "$6, $7, $8, $9, $10, $11)",
      params);
}

Result<ModelVersion> SqlRegistry::CreateModelVersion(const std::string& model,
                                                     const Lineage& lineage,
                                                     const std::string& actor,
                                                     const std::string& description) {
  ASSIGN_OR_RETURN(BundleRegistration registered,
                   AddVersion(model, lineage, actor, description, false));
  return registered.version;
}

Result<BundleRegistration> SqlRegistry::RegisterBundle(const std::string& model,
                                                       const Lineage& lineage,
                                                       const std::string& actor,
                                                       const std::string& description) {
  if (lineage.bundle_hash.empty()) {
    return InvalidArgument("model '" + model + "': registering a bundle needs its bundle hash");
  }
  return AddVersion(model, lineage, actor, description, true);
}

Result<BundleRegistration> SqlRegistry::AddVersion(const std::string& model, const Lineage& lineage,
                                                   const std::string& actor,
                                                   const std::string& description,
                                                   bool reuse_bundle) {
  if (model.empty()) return InvalidArgument("model version: empty model name");
  if (actor.empty()) return InvalidArgument("model '" + model + "': registering needs an actor");
  for (const std::string& feature : lineage.feature_versions) {
    if (feature.empty() || feature.find('\n') != std::string::npos) {
      return InvalidArgument("model '" + model + "': malformed feature version '" + feature + "'");
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  BundleRegistration out;
  // One write transaction (SQLite: BEGIN IMMEDIATE, one writer at a time;
  // PostgreSQL: SERIALIZABLE plus the model row locked FOR UPDATE, retried on
  // a serialization failure), so "is this bundle registered?" and "register
  // it" cannot interleave with another registration.
  RETURN_IF_ERROR(InTransaction(true, [&]() -> Status {
    out = BundleRegistration();
    Result<int64_t> found = ModelId(model, true);
    int64_t model_id = 0;
    if (found.ok()) {
      model_id = *found;
    } else if (found.status().code() == StatusCode::kNotFound) {
      ASSIGN_OR_RETURN(model_id, CreateModelRow(model, ""));
    } else {
      return found.status();
    }
    if (reuse_bundle) {
      ASSIGN_OR_RETURN(SqlRows existing,
                       connection_->Query("SELECT MIN(version) FROM model_versions WHERE "
                                          "model_id = $1 AND bundle_hash = $2",
                                          {model_id, lineage.bundle_hash}));
      if (!existing.IsNull(0, 0)) {
        ASSIGN_OR_RETURN(out.version, LoadVersion(model, model_id, existing.Int(0, 0)));
        return Status::Ok();
      }
    }
    if (!lineage.run_id.empty()) {
      ASSIGN_OR_RETURN(SqlRows run,
                       connection_->Query("SELECT id FROM runs WHERE id = $1", {lineage.run_id}));
      if (run.empty()) {
        return NotFound("model '" + model + "': run '" + lineage.run_id + "' does not exist");
      }
    }
    ASSIGN_OR_RETURN(
        SqlRows latest,
        connection_->Query("SELECT MAX(version) FROM model_versions WHERE model_id = $1",
                           {model_id}));
    int64_t version = latest.IsNull(0, 0) ? 1 : latest.Int(0, 0) + 1;
    Timestamp now = clock_();
    RETURN_IF_ERROR(connection_->Execute(
        "INSERT INTO model_versions (model_id, version, stage, run_id, bundle_hash, bundle_uri, "
        "data_hash, feature_versions, code_version, description, created_at) VALUES ($1, $2, $3, "
        "$4, $5, $6, $7, $8, $9, $10, $11)",
        {model_id, version, std::string(StageName(Stage::kTrained)), lineage.run_id,
         lineage.bundle_hash, lineage.bundle_uri, lineage.data_hash,
         JoinFeatureVersions(lineage.feature_versions), lineage.code_version, description, now}));
    StageTransition entry;
    entry.version = version;
    entry.to = Stage::kTrained;
    entry.actor = actor;
    entry.time = now;
    entry.reason = "registered";
    entry.kind = "register";
    RETURN_IF_ERROR(Record(model_id, entry));
    ASSIGN_OR_RETURN(out.version, LoadVersion(model, model_id, version));
    out.created = true;
    return Status::Ok();
  }));
  return out;
}

Result<ModelVersion> SqlRegistry::GetModelVersion(const std::string& model, int64_t version) {
  std::lock_guard<std::mutex> lock(mutex_);
  ModelVersion loaded;
  RETURN_IF_ERROR(InTransaction(false, [&]() -> Status {
    ASSIGN_OR_RETURN(int64_t model_id, ModelId(model, false));
    ASSIGN_OR_RETURN(loaded, LoadVersion(model, model_id, version));
    return Status::Ok();
  }));
  return loaded;
}

Result<std::vector<ModelVersion>> SqlRegistry::ListModelVersions(const std::string& model) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ModelVersion> versions;
  RETURN_IF_ERROR(InTransaction(false, [&]() -> Status {
    ASSIGN_OR_RETURN(int64_t model_id, ModelId(model, false));
    ASSIGN_OR_RETURN(versions, LoadVersions(model, model_id, std::nullopt));
    return Status::Ok();
  }));
  return versions;
}

Result<ModelVersion> SqlRegistry::TransitionStage(const TransitionRequest& request) {
  const std::string name = VersionName(request.model, request.version);
  if (request.actor.empty()) return InvalidArgument(name + ": a stage change needs an actor");
  std::lock_guard<std::mutex> lock(mutex_);
  ModelVersion moved;
  RETURN_IF_ERROR(InTransaction(true, [&]() -> Status {
    ASSIGN_OR_RETURN(int64_t model_id, ModelId(request.model, true));
    ASSIGN_OR_RETURN(Stage from, VersionStage(request.model, model_id, request.version));
    if (from == request.to) {
      return FailedPrecondition(name + " is already in " + std::string(StageName(from)));
    }
    std::vector<Stage> allowed = AllowedTargets(from);
    if (std::find(allowed.begin(), allowed.end(), request.to) == allowed.end()) {
      std::string list;
      for (Stage stage : allowed)
        list += (list.empty() ? "" : ", ") + std::string(StageName(stage));
      return FailedPrecondition(name + ": cannot move from " + std::string(StageName(from)) +
                                " to " + std::string(StageName(request.to)) + " (from " +
                                std::string(StageName(from)) + " it may move to " + list + ")");
    }
    Timestamp now = clock_();
    StageTransition entry;
    entry.version = request.version;
    entry.from = from;
    entry.to = request.to;
    entry.actor = request.actor;
    entry.time = now;
    entry.reason = request.reason;
    entry.kind = "transition";
    if (request.to == Stage::kProduction) {
      if (!request.sign_off || request.sign_off->by.empty() || request.sign_off->note.empty()) {
        return FailedPrecondition(name +
                                  ": promotion to production needs a sign-off (who signs off "
                                  "and a note)");
      }
      entry.sign_off = request.sign_off;
      ASSIGN_OR_RETURN(SqlRows current,
                       connection_->Query("SELECT version FROM model_versions WHERE model_id = $1 "
                                          "AND stage = 'production'",
                                          {model_id}));
      if (!current.empty()) {
        int64_t previous = current.Int(0, 0);
        entry.previous_production = previous;
        RETURN_IF_ERROR(SetStage(model_id, previous, Stage::kArchived));
        StageTransition replaced;
        replaced.version = previous;
        replaced.from = Stage::kProduction;
        replaced.to = Stage::kArchived;
        replaced.actor = request.actor;
        replaced.time = now;
        replaced.reason = "replaced by version " + std::to_string(request.version) +
                          (request.reason.empty() ? "" : ": " + request.reason);
        replaced.kind = "replaced";
        RETURN_IF_ERROR(Record(model_id, replaced));
      }
    }
    RETURN_IF_ERROR(SetStage(model_id, request.version, request.to));
    RETURN_IF_ERROR(Record(model_id, entry));
    ASSIGN_OR_RETURN(moved, LoadVersion(request.model, model_id, request.version));
    return Status::Ok();
  }));
  return moved;
}

Result<ModelVersion> SqlRegistry::Rollback(const std::string& model, const std::string& actor,
                                           const std::string& reason) {
  if (actor.empty()) return InvalidArgument("model '" + model + "': a rollback needs an actor");
  std::lock_guard<std::mutex> lock(mutex_);
  ModelVersion restored;
  RETURN_IF_ERROR(InTransaction(true, [&]() -> Status {
    ASSIGN_OR_RETURN(int64_t model_id, ModelId(model, true));
    ASSIGN_OR_RETURN(SqlRows current,
                     connection_->Query("SELECT version FROM model_versions WHERE model_id = $1 "
                                        "AND stage = 'production'",
                                        {model_id}));
    if (current.empty()) {
      return FailedPrecondition("model '" + model +
                                "' has no production version: nothing to roll back");
    }
    int64_t current_version = current.Int(0, 0);
    // What the current version replaced, and what that one had replaced (so
    // that a second rollback walks further back).
    auto previous_of = [&](int64_t version) -> Result<std::optional<int64_t>> {
      ASSIGN_OR_RETURN(SqlRows rows,
                       connection_->Query("SELECT previous_production FROM stage_transitions "
                                          "WHERE model_id = $1 AND version = $2 AND to_stage = "
                                          "'production' ORDER BY id DESC LIMIT 1",
                                          {model_id, version}));
      if (rows.empty() || rows.IsNull(0, 0)) return std::optional<int64_t>();
      return std::optional<int64_t>(rows.Int(0, 0));
    };
    ASSIGN_OR_RETURN(std::optional<int64_t> target, previous_of(current_version));
    if (!target) {
      return FailedPrecondition(VersionName(model, current_version) +
                                " is in production and replaced no earlier production version: "
                                "nothing to roll back to");
    }
    ASSIGN_OR_RETURN(Stage target_stage, VersionStage(model, model_id, *target));
    ASSIGN_OR_RETURN(std::optional<int64_t> before_target, previous_of(*target));
    Timestamp now = clock_();
    std::string why = reason.empty() ? "" : ": " + reason;
    RETURN_IF_ERROR(SetStage(model_id, current_version, Stage::kArchived));
    StageTransition out;
    out.version = current_version;
    out.from = Stage::kProduction;
    out.to = Stage::kArchived;
    out.actor = actor;
    out.time = now;
    out.reason = "rolled back to version " + std::to_string(*target) + why;
    out.kind = "rollback";
    RETURN_IF_ERROR(Record(model_id, out));
    RETURN_IF_ERROR(SetStage(model_id, *target, Stage::kProduction));
    StageTransition in;
    in.version = *target;
    in.from = target_stage;
    in.to = Stage::kProduction;
    in.actor = actor;
    in.time = now;
    in.reason = "rollback from version " + std::to_string(current_version) + why;
    in.kind = "rollback";
    in.previous_production = before_target;
    RETURN_IF_ERROR(Record(model_id, in));
    ASSIGN_OR_RETURN(restored, LoadVersion(model, model_id, *target));
    return Status::Ok();
  }));
  return restored;
}

Status SqlRegistry::SetAlias(const std::string& model, const std::string& alias, int64_t version) {
  RETURN_IF_ERROR(CheckAlias(model, alias));
  std::lock_guard<std::mutex> lock(mutex_);
  return InTransaction(true, [&]() -> Status {
    ASSIGN_OR_RETURN(int64_t model_id, ModelId(model, true));
    RETURN_IF_ERROR(VersionStage(model, model_id, version).status());
    return connection_->Execute(
        "INSERT INTO model_aliases (model_id, alias, version) VALUES ($1, $2, $3) ON CONFLICT "
        "(model_id, alias) DO UPDATE SET version = excluded.version",
        {model_id, alias, version});
  });
}

Status SqlRegistry::DeleteAlias(const std::string& model, const std::string& alias) {
  std::lock_guard<std::mutex> lock(mutex_);
  return InTransaction(true, [&]() -> Status {
    ASSIGN_OR_RETURN(int64_t model_id, ModelId(model, true));
    ASSIGN_OR_RETURN(SqlRows rows,
                     connection_->Query("DELETE FROM model_aliases WHERE model_id = $1 AND alias = "
                                        "$2 RETURNING version",
                                        {model_id, alias}));
    if (rows.empty()) return NotFound("model '" + model + "' has no alias '" + alias + "'");
    return Status::Ok();
  });
}

Result<ModelVersion> SqlRegistry::GetVersionByAlias(const std::string& model,
                                                    const std::string& alias) {
  std::lock_guard<std::mutex> lock(mutex_);
  ModelVersion found;
  RETURN_IF_ERROR(InTransaction(false, [&]() -> Status {
    ASSIGN_OR_RETURN(int64_t model_id, ModelId(model, false));
    ASSIGN_OR_RETURN(SqlRows rows,
                     connection_->Query("SELECT version FROM model_aliases WHERE model_id = $1 "
                                        "AND alias = $2",
                                        {model_id, alias}));
    if (rows.empty()) return NotFound("model '" + model + "' has no alias '" + alias + "'");
    ASSIGN_OR_RETURN(found, LoadVersion(model, model_id, rows.Int(0, 0)));
    return Status::Ok();
  }));
  return found;
}

Status SqlRegistry::SetVersionTag(const std::string& model, int64_t version, const std::string& key,
                                  const std::string& value) {
  if (key.empty()) return InvalidArgument(VersionName(model, version) + ": empty tag name");
  std::lock_guard<std::mutex> lock(mutex_);
  return InTransaction(true, [&]() -> Status {
    ASSIGN_OR_RETURN(int64_t model_id, ModelId(model, true));
    RETURN_IF_ERROR(VersionStage(model, model_id, version).status());
    return connection_->Execute(
        "INSERT INTO version_tags (model_id, version, key, value) VALUES ($1, $2, $3, $4) ON "
        "CONFLICT (model_id, version, key) DO UPDATE SET value = excluded.value",
        {model_id, version, key, value});
  });
}

Status SqlRegistry::DeleteVersionTag(const std::string& model, int64_t version,
                                     const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  return InTransaction(true, [&]() -> Status {
    ASSIGN_OR_RETURN(int64_t model_id, ModelId(model, true));
    RETURN_IF_ERROR(VersionStage(model, model_id, version).status());
    ASSIGN_OR_RETURN(SqlRows rows,
                     connection_->Query("DELETE FROM version_tags WHERE model_id = $1 AND version "
                                        "= $2 AND key = $3 RETURNING key",
                                        {model_id, version, key}));
    if (rows.empty()) {
      return NotFound(VersionName(model, version) + " has no tag '" + key + "'");
    }
    return Status::Ok();
  });
}

Result<std::vector<StageTransition>> SqlRegistry::History(const std::string& model) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<StageTransition> history;
  RETURN_IF_ERROR(InTransaction(false, [&]() -> Status {
    history.clear();
    ASSIGN_OR_RETURN(int64_t model_id, ModelId(model, false));
    ASSIGN_OR_RETURN(
        SqlRows rows,
        connection_->Query("SELECT id, version, from_stage, to_stage, actor, changed_at, reason, "
                           "sign_off_by, sign_off_note, kind, previous_production FROM "
                           "stage_transitions WHERE model_id = $1 ORDER BY id",
                           {model_id}));
    for (size_t row = 0; row < rows.size(); ++row) {
      StageTransition entry;
      entry.id = rows.Int(row, 0);
      entry.model = model;
      entry.version = rows.Int(row, 1);
      if (!rows.IsNull(row, 2)) {
        ASSIGN_OR_RETURN(Stage from, ParseStage(rows.Text(row, 2)));
        entry.from = from;
      }
      ASSIGN_OR_RETURN(entry.to, ParseStage(rows.Text(row, 3)));
      entry.actor = rows.Text(row, 4);
      entry.time = rows.Int(row, 5);
      entry.reason = rows.Text(row, 6);
      if (!rows.IsNull(row, 7)) entry.sign_off = SignOff{rows.Text(row, 7), rows.Text(row, 8)};
      entry.kind = rows.Text(row, 9);
      if (!rows.IsNull(row, 10)) entry.previous_production = rows.Int(row, 10);
      history.push_back(std::move(entry));
    }
    return Status::Ok();
  }));
  return history;
}

Result<std::optional<int64_t>> SqlRegistry::ProductionVersionAt(const std::string& model,
                                                                Timestamp at) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::optional<int64_t> version;
  RETURN_IF_ERROR(InTransaction(false, [&]() -> Status {
    version.reset();
    ASSIGN_OR_RETURN(int64_t model_id, ModelId(model, false));
    // Replays the entries into and out of production up to `at`, in commit order.
    ASSIGN_OR_RETURN(
        SqlRows rows,
        connection_->Query("SELECT version, from_stage, to_stage FROM stage_transitions WHERE "
                           "model_id = $1 AND changed_at <= $2 AND (to_stage = 'production' OR "
                           "from_stage = 'production') ORDER BY id",
                           {model_id, at}));
    for (size_t row = 0; row < rows.size(); ++row) {
      if (rows.Text(row, 2) == "production") {
        version = rows.Int(row, 0);
      } else if (version == rows.Int(row, 0)) {
        version.reset();
      }
    }
    return Status::Ok();
  }));
  return version;
}

}  // namespace keel::registry
