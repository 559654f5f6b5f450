#pragma once

// The Registry implementation shared by SQLite and PostgreSQL: the rules are
// written once here, against SqlConnection; only the dialect's few
// differences (ids, row locks, transaction kinds) depend on the backend.
// sql_registry.cc holds the schema, transactions, experiments and runs;
// sql_models.cc models, versions, stages, aliases and the audit trail.

#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "registry/registry.h"
#include "registry/sql_connection.h"

namespace keel::registry {

// Thread-safety: every public method locks mutex_, so calls are serialized.
class SqlRegistry : public Registry {
 public:
  // Creates the tables when missing. Errors: as the connection's.
  static Result<std::unique_ptr<Registry>> Open(std::unique_ptr<SqlConnection> connection,
                                                std::function<Timestamp()> clock);

  std::string_view type() const override;

  Result<Experiment> CreateExperiment(const std::string& name) override;
  Result<Experiment> GetExperiment(const std::string& name) override;
  Result<std::vector<Experiment>> ListExperiments() override;
  Result<Run> CreateRun(const NewRun& run) override;
  Status LogToRun(const std::string& run_id, const RunLog& log) override;
  Status EndRun(const std::string& run_id, RunStatus status,
                std::optional<Timestamp> end_time) override;
  Result<Run> GetRun(const std::string& run_id) override;
  Result<std::vector<Metric>> GetMetricHistory(const std::string& run_id,
                                               const std::string& key) override;
  Result<std::vector<Run>> SearchRuns(const RunQuery& query) override;

  Result<RegisteredModel> CreateModel(const std::string& name,
                                      const std::string& description) override;
  Result<RegisteredModel> GetModel(const std::string& name) override;
  Result<std::vector<RegisteredModel>> ListModels() override;
  Result<ModelVersion> CreateModelVersion(const std::string& model, const Lineage& lineage,
                                          const std::string& actor,
                                          const std::string& description) override;
  Result<BundleRegistration> RegisterBundle(const std::string& model, const Lineage& lineage,
                                            const std::string& actor,
                                            const std::string& description) override;
  Result<ModelVersion> GetModelVersion(const std::string& model, int64_t version) override;
  Result<std::vector<ModelVersion>> ListModelVersions(const std::string& model) override;
  Result<ModelVersion> TransitionStage(const TransitionRequest& request) override;
  Result<ModelVersion> Rollback(const std::string& model, const std::string& actor,
                                const std::string& reason) override;
  Status SetAlias(const std::string& model, const std::string& alias, int64_t version) override;
  Status DeleteAlias(const std::string& model, const std::string& alias) override;
  Result<ModelVersion> GetVersionByAlias(const std::string& model,
                                         const std::string& alias) override;
  Status SetVersionTag(const std::string& model, int64_t version, const std::string& key,
                       const std::string& value) override;
  Status DeleteVersionTag(const std::string& model, int64_t version,
                          const std::string& key) override;
  Result<std::vector<StageTransition>> History(const std::string& model) override;
  Result<std::optional<int64_t>> ProductionVersionAt(const std::string& model,
                                                     Timestamp at) override;

 private:
  SqlRegistry(std::unique_ptr<SqlConnection> connection, std::function<Timestamp()> clock);

  // Runs `body` in a transaction, committing when it returns OK; retries the
  // whole transaction (with a growing, jittered pause) when the database
  // reports a conflict that retrying may cure.
  Status InTransaction(bool write, const std::function<Status()>& body);

  bool postgres() const { return connection_->dialect() == SqlDialect::kPostgres; }
  // " FOR UPDATE" on PostgreSQL (a row lock); SQLite's BEGIN IMMEDIATE
  // already holds the database's write lock.
  const char* ForUpdate() const { return postgres() ? " FOR UPDATE" : ""; }

  // --- helpers; callers hold mutex_ and run inside a transaction ---
  Result<std::optional<int64_t>> FindExperimentId(const std::string& name);
  Result<std::string> ResolveRunId(const std::string& run_id);
  // Runs by id, in the order of `ids` (unknown ids are left out).
  Result<std::vector<Run>> LoadRuns(const std::vector<std::string>& ids);
  Result<std::vector<Run>> LoadRunChunk(const std::vector<std::string>& ids);
  Result<std::vector<std::string>> SearchRunIds(const RunQuery& query);
  // The model's id, locking its row on PostgreSQL when `lock`.
  // Errors: NotFound naming the model.
  Result<int64_t> ModelId(const std::string& model, bool lock);
  Result<int64_t> CreateModelRow(const std::string& name, const std::string& description);
  Result<RegisteredModel> LoadModel(const std::string& name);
  // Versions of a model (all, or only `version`), with tags and aliases.
  Result<std::vector<ModelVersion>> LoadVersions(const std::string& model, int64_t model_id,
                                                 std::optional<int64_t> version);
  Result<ModelVersion> LoadVersion(const std::string& model, int64_t model_id, int64_t version);
  // CreateModelVersion and RegisterBundle: with `reuse_bundle`, an existing
  // version holding lineage.bundle_hash is returned instead of a new one.
  Result<BundleRegistration> AddVersion(const std::string& model, const Lineage& lineage,
                                        const std::string& actor, const std::string& description,
                                        bool reuse_bundle);
  Result<Stage> VersionStage(const std::string& model, int64_t model_id, int64_t version);
  Status SetStage(int64_t model_id, int64_t version, Stage stage);
  Status Record(int64_t model_id, const StageTransition& entry);
  std::string NewRunId();

  std::mutex mutex_;
  std::unique_ptr<SqlConnection> connection_;  // GUARDED_BY(mutex_)
  std::function<Timestamp()> clock_;
  std::mt19937_64 random_;  // GUARDED_BY(mutex_)
};

}  // namespace keel::registry
