#include "registry/sql_registry.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

namespace keel::registry {
namespace {

constexpr int kMaxAttempts = 50;

// Bumped whenever the tables change incompatibly; a database of another
// version is refused rather than misread.
constexpr const char* kSchemaVersion = "1";

// Run ids per IN (...) list when loading runs: far below SQLite's and
// PostgreSQL's limits on the number of parameters.
constexpr size_t kRunsPerLoad = 500;

// {ID}, {DOUBLE} and {WITHOUT_ROWID} differ between the dialects; everything
// else is shared. SQLite stores the run tables clustered by their primary key
// (WITHOUT ROWID), so a lookup by run id is one b-tree descent, not two.
// Indexes serve SearchRuns: runs by experiment/status in start-time order,
// latest metric values by key in value order (the ordering of a search), and
// covering (key, value, run_id) indexes that answer "which runs have param or
// tag k = v" from the index alone.
constexpr const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS registry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (
  id {ID}, name TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, experiment_id BIGINT NOT NULL REFERENCES experiments(id),
  name TEXT NOT NULL, status TEXT NOT NULL, start_time BIGINT NOT NULL, end_time BIGINT) {WITHOUT_ROWID};
CREATE INDEX IF NOT EXISTS runs_by_start ON runs(start_time, id);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs(experiment_id, start_time, id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(experiment_id, status, start_time, id);
CREATE TABLE IF NOT EXISTS run_params (
  run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (run_id, key)) {WITHOUT_ROWID};
CREATE INDEX IF NOT EXISTS run_params_by_value ON run_params(key, value, run_id);
CREATE TABLE IF NOT EXISTS run_tags (
  run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (run_id, key)) {WITHOUT_ROWID};
CREATE INDEX IF NOT EXISTS run_tags_by_value ON run_tags(key, value, run_id);
CREATE TABLE IF NOT EXISTS run_metrics (
  seq {ID}, run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,
  value {DOUBLE} NOT NULL, step BIGINT NOT NULL, logged_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS run_metrics_by_run ON run_metrics(run_id, key, step, seq);
CREATE TABLE IF NOT EXISTS run_latest_metrics (
  run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value {DOUBLE} NOT NULL,
  step BIGINT NOT NULL, logged_at BIGINT NOT NULL, PRIMARY KEY (run_id, key)) {WITHOUT_ROWID};
CREATE INDEX IF NOT EXISTS run_latest_metrics_by_value ON run_latest_metrics(key, value, run_id);
CREATE TABLE IF NOT EXISTS run_artifacts (
  run_id TEXT NOT NULL REFERENCES runs(id), path TEXT NOT NULL, uri TEXT NOT NULL,
  checksum TEXT NOT NULL, size_bytes BIGINT NOT NULL, PRIMARY KEY (run_id, path)) {WITHOUT_ROWID};
CREATE TABLE IF NOT EXISTS models (
  id {ID}, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS model_versions (
  model_id BIGINT NOT NULL REFERENCES models(id), version BIGINT NOT NULL,
  stage TEXT NOT NULL, run_id TEXT NOT NULL, bundle_hash TEXT NOT NULL, bundle_uri TEXT NOT NULL,
  data_hash TEXT NOT NULL, feature_versions TEXT NOT NULL, code_version TEXT NOT NULL,
  description TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (model_id, version));
CREATE UNIQUE INDEX IF NOT EXISTS one_production_version
  ON model_versions(model_id) WHERE stage = 'production';
CREATE TABLE IF NOT EXISTS version_tags (
  model_id BIGINT NOT NULL, version BIGINT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (model_id, version, key),
  FOREIGN KEY (model_id, version) REFERENCES model_versions(model_id, version));
CREATE TABLE IF NOT EXISTS model_aliases (
  model_id BIGINT NOT NULL, alias TEXT NOT NULL, version BIGINT NOT NULL,
  PRIMARY KEY (model_id, alias),
  FOREIGN KEY (model_id, version) REFERENCES model_versions(model_id, version));
CREATE TABLE IF NOT EXISTS stage_transitions (
  id {ID}, model_id BIGINT NOT NULL REFERENCES models(id), version BIGINT NOT NULL,
  from_stage TEXT, to_stage TEXT NOT NULL, actor TEXT NOT NULL, changed_at BIGINT NOT NULL,
  reason TEXT NOT NULL, sign_off_by TEXT, sign_off_note TEXT, kind TEXT NOT NULL,
  previous_production BIGINT);
CREATE INDEX IF NOT EXISTS stage_transitions_by_model ON stage_transitions(model_id, id);
)";

std::string SchemaFor(SqlDialect dialect) {
  std::string sql = kSchema;
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (size_t at = sql.find(from); at != std::string::npos; at = sql.find(from, at + to.size())) {
      sql.replace(at, from.size(), to);
    }
  };
  bool postgres = dialect == SqlDialect::kPostgres;
  replace_all("{ID}", postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT");
  replace_all("{DOUBLE}", postgres ? "DOUBLE PRECISION" : "REAL");
  replace_all(" {WITHOUT_ROWID}", postgres ? "" : " WITHOUT ROWID");
  return sql;
}

std::string Placeholders(size_t first, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out += ", ";
    out += "$" + std::to_string(first + i);
  }
  return out;
}

const char* SqlOperator(RunPredicate::Op op) {
  switch (op) {
    case RunPredicate::Op::kEq:
      return "=";
    case RunPredicate::Op::kNe:
      return "<>";
    case RunPredicate::Op::kLt:
      return "<";
    case RunPredicate::Op::kLe:
      return "<=";
    case RunPredicate::Op::kGt:
      return ">";
    case RunPredicate::Op::kGe:
      return ">=";
  }
  return "=";
}

}  // namespace

SqlRegistry::SqlRegistry(std::unique_ptr<SqlConnection> connection,
                         std::function<Timestamp()> clock)
    : connection_(std::move(connection)), clock_(std::move(clock)) {
  std::random_device device;
  random_.seed((static_cast<uint64_t>(device()) << 32) ^ device() ^
               static_cast<uint64_t>(::getpid()) ^
               static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
}

Result<std::unique_ptr<Registry>> SqlRegistry::Open(std::unique_ptr<SqlConnection> connection,
                                                    std::function<Timestamp()> clock) {
  std::unique_ptr<SqlRegistry> registry(new SqlRegistry(std::move(connection), std::move(clock)));
  std::string schema = SchemaFor(registry->connection_->dialect());
  Status status = registry->InTransaction(true, [&]() -> Status {
    // Concurrent CREATE ... IF NOT EXISTS can collide on PostgreSQL.
    if (registry->postgres()) {
      RETURN_IF_ERROR(registry->connection_->Execute("SELECT pg_advisory_xact_lock(727275)"));
    }
    RETURN_IF_ERROR(registry->connection_->Execute(schema));
    ASSIGN_OR_RETURN(SqlRows version,
                     registry->connection_->Query(
                         "SELECT value FROM registry_meta WHERE key = 'schema_version'"));
    if (version.empty()) {
      return registry->connection_->Execute(
          "INSERT INTO registry_meta (key, value) VALUES ('schema_version', $1)",
          {std::string(kSchemaVersion)});
    }
    if (version.Text(0, 0) != kSchemaVersion) {
      return FailedPrecondition("the registry database has schema version " + version.Text(0, 0) +
                                "; this keel reads version " + kSchemaVersion);
    }
    return Status::Ok();
  });
  RETURN_IF_ERROR(status.WithContext("creating the registry tables"));
  return std::unique_ptr<Registry>(std::move(registry));
}

std::string_view SqlRegistry::type() const { return postgres() ? "postgres" : "sqlite"; }

Status SqlRegistry::InTransaction(bool write, const std::function<Status()>& body) {
  std::uniform_int_distribution<int> jitter(0, 1000);
  for (int attempt = 1;; ++attempt) {
    Status status = connection_->Begin(write);
    if (status.ok()) {
      status = body();
      if (status.ok()) status = connection_->Commit();
      if (status.ok()) return status;
    }
    bool retry = connection_->LastErrorRetryable();
    connection_->RollbackQuietly();
    if (!retry || attempt >= kMaxAttempts) return status;
    int pause_us = std::min(attempt, 20) * 1000 + jitter(random_) * std::min(attempt, 10);
    std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
  }
}

std::string SqlRegistry::NewRunId() {
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (int part = 0; part < 2; ++part) {
    uint64_t bits = random_();
    for (int i = 0; i < 16; ++i) {
      id.push_back(kHex[bits & 15]);
      bits >>= 4;
    }
  }
  return id;
}

// --- experiments ---------------------------------------------------------------

Result<std::optional<int64_t>> SqlRegistry::FindExperimentId(const std::string& name) {
  ASSIGN_OR_RETURN(SqlRows rows,
                   connection_->Query("SELECT id FROM experiments WHERE name = $1", {name}));
  if (rows.empty()) return std::optional<int64_t>();
  return std::optional<int64_t>(rows.Int(0, 0));
}

Result<Experiment> SqlRegistry::CreateExperiment(const std::string& name) {
  if (name.empty()) return InvalidArgument("experiment: empty name");
  std::lock_guard<std::mutex> lock(mutex_);
  Experiment experiment;
  RETURN_IF_ERROR(InTransaction(true, [&]() -> Status {
    ASSIGN_OR_RETURN(std::optional<int64_t> existing, FindExperimentId(name));
    if (existing) return AlreadyExists("experiment '" + name + "' already exists");
    experiment = Experiment{0, name, clock_()};
    ASSIGN_OR_RETURN(SqlRows rows, connection_->Query("INSERT INTO experiments (name, created_at) "
                                                      "VALUES ($1, $2) RETURNING id",
                                                      {name, experiment.created_at}));
    experiment.id = rows.Int(0, 0);
    return Status::Ok();
  }));
  return experiment;
}

Result<Experiment> SqlRegistry::GetExperiment(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  ASSIGN_OR_RETURN(
      SqlRows rows,
      connection_->Query("SELECT id, name, created_at FROM experiments WHERE name = $1", {name}));
  if (rows.empty()) return NotFound("experiment '" + name + "' does not exist");
  return Experiment{rows.Int(0, 0), rows.Text(0, 1), rows.Int(0, 2)};
}

Result<std::vector<Experiment>> SqlRegistry::ListExperiments() {
  std::lock_guard<std::mutex> lock(mutex_);
  ASSIGN_OR_RETURN(SqlRows rows, connection_->Query(
                                     "SELECT id, name, created_at FROM experiments ORDER BY name"));
  std::vector<Experiment> experiments;
  for (size_t row = 0; row < rows.size(); ++row) {
    experiments.push_back({rows.Int(row, 0), rows.Text(row, 1), rows.Int(row, 2)});
  }
  return experiments;
}

// --- runs ----------------------------------------------------------------------

Result<Run> SqlRegistry::CreateRun(const NewRun& new_run) {
  if (new_run.experiment.empty()) return InvalidArgument("run: empty experiment name");
  std::lock_guard<std::mutex> lock(mutex_);
  Run run;
  RETURN_IF_ERROR(InTransaction(true, [&]() -> Status {
    run = Run();
    run.id = NewRunId();
    run.experiment = new_run.experiment;
    run.name = new_run.name;
    run.start_time = new_run.start_time.value_or(clock_());
    run.params = new_run.params;
    run.tags = new_run.tags;
    ASSIGN_OR_RETURN(std::optional<int64_t> experiment_id, FindExperimentId(new_run.experiment));
    if (!experiment_id) {
      ASSIGN_OR_RETURN(SqlRows rows,
                       connection_->Query("INSERT INTO experiments (name, created_at) VALUES ($1, "
                                          "$2) RETURNING id",
                                          {new_run.experiment, clock_()}));
      experiment_id = rows.Int(0, 0);
    }
    RETURN_IF_ERROR(
        connection_->Execute("INSERT INTO runs (id, experiment_id, name, status, start_time) "
                             "VALUES ($1, $2, $3, $4, $5)",
                             {run.id, *experiment_id, run.name,
                              std::string(RunStatusName(RunStatus::kRunning)), run.start_time}));
    for (const auto& [key, value] : run.params) {
      if (key.empty()) return InvalidArgument("run " + run.id + ": empty param name");
      RETURN_IF_ERROR(connection_->Execute(
          "INSERT INTO run_params (run_id, key, value) VALUES ($1, $2, $3)", {run.id, key, value}));
    }
    for (const auto& [key, value] : run.tags) {
      if (key.empty()) return InvalidArgument("run " + run.id + ": empty tag name");
      RETURN_IF_ERROR(connection_->Execute(
          "INSERT INTO run_tags (run_id, key, value) VALUES ($1, $2, $3)", {run.id, key, value}));
    }
    return Status::Ok();
  }));
  return run;
}

Result<std::string> SqlRegistry::ResolveRunId(const std::string& run_id) {
  if (run_id.empty()) return NotFound("run '': empty run id");
  ASSIGN_OR_RETURN(SqlRows exact,
                   connection_->Query("SELECT id FROM runs WHERE id = $1", {run_id}));
  if (!exact.empty()) return run_id;
  if (run_id.size() >= 6 && run_id.size() < 32) {
    // Ids are lowercase hex: every id with this prefix sorts before prefix + "g".
    ASSIGN_OR_RETURN(SqlRows matches,
                     connection_->Query("SELECT id FROM runs WHERE id >= $1 AND id < $2 LIMIT 2",
                                        {run_id, run_id + "g"}));
    if (matches.size() == 1) return matches.Text(0, 0);
    if (matches.size() > 1) {
      return InvalidArgument("run '" + run_id + "': the prefix matches several runs");
    }
  }
  return NotFound("run '" + run_id + "' does not exist");
}

Status SqlRegistry::LogToRun(const std::string& run_id, const RunLog& log) {
  for (const Metric& metric : log.metrics) {
    if (metric.key.empty()) return InvalidArgument("run " + run_id + ": empty metric name");
    if (!std::isfinite(metric.value)) {
      return InvalidArgument("run " + run_id + ": metric '" + metric.key +
                             "' is not a finite number");
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return InTransaction(true, [&]() -> Status {
    ASSIGN_OR_RETURN(std::string id, ResolveRunId(run_id));
    for (const auto& [key, value] : log.params) {
      if (key.empty()) return InvalidArgument("run " + id + ": empty param name");
      ASSIGN_OR_RETURN(
          SqlRows existing,
          connection_->Query("SELECT value FROM run_params WHERE run_id = $1 AND key = $2",
                             {id, key}));
      if (!existing.empty()) {
        if (existing.Text(0, 0) != value) {
          return InvalidArgument("run " + id + ": param '" + key + "' was logged as '" +
                                 existing.Text(0, 0) + "'; params cannot change (new value '" +
                                 value + "')");
        }
        continue;
      }
      RETURN_IF_ERROR(connection_->Execute(
          "INSERT INTO run_params (run_id, key, value) VALUES ($1, $2, $3)", {id, key, value}));
    }
    for (const Metric& metric : log.metrics) {
      Timestamp time = metric.time != 0 ? metric.time : clock_();
      RETURN_IF_ERROR(connection_->Execute(
          "INSERT INTO run_metrics (run_id, key, value, step, logged_at) VALUES ($1, $2, $3, $4, "
          "$5)",
          {id, metric.key, metric.value, metric.step, time}));
      RETURN_IF_ERROR(connection_->Execute(
          "INSERT INTO run_latest_metrics (run_id, key, value, step, logged_at) VALUES ($1, $2, "
          "$3, $4, $5) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = "
          "excluded.step, logged_at = excluded.logged_at WHERE excluded.step >= "
          "run_latest_metrics.step",
          {id, metric.key, metric.value, metric.step, time}));
    }
    for (const auto& [key, value] : log.tags) {
      if (key.empty()) return InvalidArgument("run " + id + ": empty tag name");
      RETURN_IF_ERROR(connection_->Execute(
          "INSERT INTO run_tags (run_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (run_id, key) "
          "DO UPDATE SET value = excluded.value",
          {id, key, value}));
    }
    for (const Artifact& artifact : log.artifacts) {
      if (artifact.path.empty()) return InvalidArgument("run " + id + ": artifact without a path");
      RETURN_IF_ERROR(connection_->Execute(
          "INSERT INTO run_artifacts (run_id, path, uri, checksum, size_bytes) VALUES ($1, $2, $3, "
          "$4, $5) ON CONFLICT (run_id, path) DO UPDATE SET uri = excluded.uri, checksum = "
          "excluded.checksum, size_bytes = excluded.size_bytes",
          {id, artifact.path, artifact.uri, artifact.checksum, artifact.size_bytes}));
    }
    return Status::Ok();
  });
}

Status SqlRegistry::EndRun(const std::string& run_id, RunStatus status,
                           std::optional<Timestamp> end_time) {
  if (status == RunStatus::kRunning) {
    return InvalidArgument("run " + run_id + ": a run ends as finished, failed or killed");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return InTransaction(true, [&]() -> Status {
    ASSIGN_OR_RETURN(std::string id, ResolveRunId(run_id));
    ASSIGN_OR_RETURN(SqlRows rows,
                     connection_->Query("SELECT status FROM runs WHERE id = $1", {id}));
    if (rows.Text(0, 0) != RunStatusName(RunStatus::kRunning)) {
      return FailedPrecondition("run " + id + " already ended (" + rows.Text(0, 0) + ")");
    }
    return connection_->Execute(
        "UPDATE runs SET status = $1, end_time = $2 WHERE id = $3",
        {std::string(RunStatusName(status)), end_time.value_or(clock_()), id});
  });
}

Result<std::vector<Run>> SqlRegistry::LoadRuns(const std::vector<std::string>& all_ids) {
  std::vector<Run> runs;
  for (size_t first = 0; first < all_ids.size(); first += kRunsPerLoad) {
    size_t last = std::min(all_ids.size(), first + kRunsPerLoad);
    ASSIGN_OR_RETURN(std::vector<Run> chunk, LoadRunChunk(std::vector<std::string>(
                                                 all_ids.begin() + first, all_ids.begin() + last)));
    for (Run& run : chunk) runs.push_back(std::move(run));
  }
  return runs;
}

Result<std::vector<Run>> SqlRegistry::LoadRunChunk(const std::vector<std::string>& ids) {
  std::vector<Run> runs;
  if (ids.empty()) return runs;
  std::vector<SqlValue> params(ids.begin(), ids.end());
  std::string in = "(" + Placeholders(1, ids.size()) + ")";
  ASSIGN_OR_RETURN(SqlRows rows,
                   connection_->Query("SELECT r.id, e.name, r.name, r.status, r.start_time, "
                                      "r.end_time FROM runs r JOIN experiments e ON e.id = "
                                      "r.experiment_id WHERE r.id IN " +
                                          in,
                                      params));
  std::map<std::string, Run> by_id;
  for (size_t row = 0; row < rows.size(); ++row) {
    Run run;
    run.id = rows.Text(row, 0);
    run.experiment = rows.Text(row, 1);
    run.name = rows.Text(row, 2);
    ASSIGN_OR_RETURN(run.status, ParseRunStatus(rows.Text(row, 3)));
    run.start_time = rows.Int(row, 4);
    if (!rows.IsNull(row, 5)) run.end_time = rows.Int(row, 5);
    by_id[run.id] = std::move(run);
  }
  ASSIGN_OR_RETURN(SqlRows params_rows,
                   connection_->Query(
                       "SELECT run_id, key, value FROM run_params WHERE run_id IN " + in, params));
  for (size_t row = 0; row < params_rows.size(); ++row) {
    by_id[params_rows.Text(row, 0)].params[params_rows.Text(row, 1)] = params_rows.Text(row, 2);
  }
  ASSIGN_OR_RETURN(
      SqlRows tag_rows,
      connection_->Query("SELECT run_id, key, value FROM run_tags WHERE run_id IN " + in, params));
  for (size_t row = 0; row < tag_rows.size(); ++row) {
    by_id[tag_rows.Text(row, 0)].tags[tag_rows.Text(row, 1)] = tag_rows.Text(row, 2);
  }
  ASSIGN_OR_RETURN(SqlRows metric_rows,
                   connection_->Query("SELECT run_id, key, value, step, logged_at FROM "
                                      "run_latest_metrics WHERE run_id IN " +
                                          in,
                                      params));
  for (size_t row = 0; row < metric_rows.size(); ++row) {
    Metric metric{metric_rows.Text(row, 1), metric_rows.Double(row, 2), metric_rows.Int(row, 3),
                  metric_rows.Int(row, 4)};
    by_id[metric_rows.Text(row, 0)].metrics[metric.key] = metric;
  }
  ASSIGN_OR_RETURN(SqlRows artifact_rows,
                   connection_->Query("SELECT run_id, path, uri, checksum, size_bytes FROM "
                                      "run_artifacts WHERE run_id IN " +
                                          in + " ORDER BY run_id, path",
                                      params));
  for (size_t row = 0; row < artifact_rows.size(); ++row) {
    by_id[artifact_rows.Text(row, 0)].artifacts.push_back(
        {artifact_rows.Text(row, 1), artifact_rows.Text(row, 2), artifact_rows.Text(row, 3),
         artifact_rows.Int(row, 4)});
  }
  for (const std::string& id : ids) {
    auto found = by_id.find(id);
    if (found != by_id.end()) runs.push_back(std::move(found->second));
  }
  return runs;
}

Result<Run> SqlRegistry::GetRun(const std::string& run_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Run> runs;
  RETURN_IF_ERROR(InTransaction(false, [&]() -> Status {
    ASSIGN_OR_RETURN(std::string id, ResolveRunId(run_id));
    ASSIGN_OR_RETURN(runs, LoadRuns({id}));
    return Status::Ok();
  }));
  if (runs.empty()) return NotFound("run '" + run_id + "' does not exist");
  return std::move(runs[0]);
}

Result<std::vector<Metric>> SqlRegistry::GetMetricHistory(const std::string& run_id,
                                                          const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Metric> history;
  RETURN_IF_ERROR(InTransaction(false, [&]() -> Status {
    history.clear();
    ASSIGN_OR_RETURN(std::string id, ResolveRunId(run_id));
    ASSIGN_OR_RETURN(SqlRows rows, connection_->Query("SELECT value, step, logged_at FROM "
                                                      "run_metrics WHERE run_id = $1 AND key = $2 "
                                                      "ORDER BY step, seq",
                                                      {id, key}));
    for (size_t row = 0; row < rows.size(); ++row) {
      history.push_back({key, rows.Double(row, 0), rows.Int(row, 1), rows.Int(row, 2)});
    }
    return Status::Ok();
  }));
  return history;
}

Result<std::vector<std::string>> SqlRegistry::SearchRunIds(const RunQuery& query) {
  std::vector<SqlValue> params;
  auto param = [&](SqlValue value) {
    params.push_back(std::move(value));
    return "$" + std::to_string(params.size());
  };
  std::string where;
  if (!query.experiment.empty()) {
    ASSIGN_OR_RETURN(std::optional<int64_t> experiment_id, FindExperimentId(query.experiment));
    if (!experiment_id) return NotFound("experiment '" + query.experiment + "' does not exist");
    where += " AND r.experiment_id = " + param(*experiment_id);
  }
  if (query.status) {
    where += " AND r.status = " + param(std::string(RunStatusName(*query.status)));
  }
  // Equality on params and tags: with two or more, the runs that satisfy all
  // of them are found first by intersecting covering-index ranges (cheap even
  // when each predicate alone matches many runs); the rest are checked per run.
  std::vector<const RunPredicate*> equalities;
  for (const RunPredicate& predicate : query.where) {
    if (predicate.field != RunPredicate::Field::kMetric && predicate.op == RunPredicate::Op::kEq) {
      equalities.push_back(&predicate);
    }
  }
  bool intersect = equalities.size() >= 2;
  std::string with;
  std::string join_candidates;
  if (intersect) {
    for (const RunPredicate* predicate : equalities) {
      const char* table =
          predicate->field == RunPredicate::Field::kParam ? "run_params" : "run_tags";
      std::string key = param(predicate->key);
      std::string value = param(predicate->text);
      with += (with.empty() ? "WITH candidates(run_id) AS (" : " INTERSECT ") +
              std::string("SELECT run_id FROM ") + table + " WHERE key = " + key +
              " AND value = " + value;
    }
    // Each range comes out of its index sorted by run id; ORDER BY makes
    // SQLite intersect them by merging (no temporary b-trees), and the LIMIT
    // keeps it from dropping that ORDER BY inside a CTE.
    with += " ORDER BY 1 LIMIT 1000000000) ";
    join_candidates = " JOIN candidates c ON c.run_id = r.id";
  }
  for (const RunPredicate& predicate : query.where) {
    const char* table = predicate.field == RunPredicate::Field::kParam    ? "run_params"
                        : predicate.field == RunPredicate::Field::kMetric ? "run_latest_metrics"
                                                                          : "run_tags";
    if (predicate.field != RunPredicate::Field::kMetric && predicate.op != RunPredicate::Op::kEq &&
        predicate.op != RunPredicate::Op::kNe) {
      return InvalidArgument("run filter on '" + predicate.key +
                             "': params and tags compare with = or != only");
    }
    if (intersect && predicate.field != RunPredicate::Field::kMetric &&
        predicate.op == RunPredicate::Op::kEq) {
      continue;
    }
    std::string key = param(predicate.key);
    std::string value = predicate.field == RunPredicate::Field::kMetric ? param(predicate.number)
                                                                        : param(predicate.text);
    where += std::string(" AND EXISTS (SELECT 1 FROM ") + table +
             " f WHERE f.run_id = r.id AND f.key = " + key + " AND f.value " +
             SqlOperator(predicate.op) + " " + value + ")";
  }
  std::string limit = param(query.limit);
  std::vector<std::string> ids;
  auto collect = [&](const std::string& sql) -> Status {
    ASSIGN_OR_RETURN(SqlRows rows, connection_->Query(sql, params));
    for (size_t row = 0; row < rows.size(); ++row) ids.push_back(rows.Text(row, 0));
    return Status::Ok();
  };
  if (query.order_by_metric.empty()) {
    RETURN_IF_ERROR(collect(with + "SELECT r.id FROM runs r" + join_candidates + " WHERE 1 = 1" +
                            where + " ORDER BY r.start_time DESC, r.id DESC LIMIT " + limit));
    return ids;
  }
  // Runs with the metric, walking its (key, value) index in order; then, if
  // the limit is not reached, the runs without it.
  std::string metric = param(query.order_by_metric);
  const char* direction = query.ascending ? "ASC" : "DESC";
  RETURN_IF_ERROR(
      collect(with + "SELECT r.id FROM run_latest_metrics o JOIN runs r ON r.id = o.run_id" +
              join_candidates + " WHERE o.key = " + metric + where + " ORDER BY o.value " +
              direction + ", r.start_time DESC, r.id DESC LIMIT " + limit));
  if (static_cast<int64_t>(ids.size()) < query.limit) {
    params[params.size() - 2] = query.limit - static_cast<int64_t>(ids.size());
    RETURN_IF_ERROR(collect(with + "SELECT r.id FROM runs r" + join_candidates +
                            " WHERE NOT EXISTS (SELECT 1 FROM run_latest_metrics o WHERE "
                            "o.run_id = r.id AND o.key = " +
                            metric + ")" + where + " ORDER BY r.start_time DESC, r.id DESC LIMIT " +
                            limit));
  }
  return ids;
}

Result<std::vector<Run>> SqlRegistry::SearchRuns(const RunQuery& query) {
  if (query.limit <= 0) return InvalidArgument("run search: the limit must be positive");
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Run> runs;
  RETURN_IF_ERROR(InTransaction(false, [&]() -> Status {
    ASSIGN_OR_RETURN(std::vector<std::string> ids, SearchRunIds(query));
    ASSIGN_OR_RETURN(runs, LoadRuns(ids));
    return Status::Ok();
  }));
  return runs;
}

}  // namespace keel::registry
