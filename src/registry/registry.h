#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace keel::registry {

// ---------------------------------------------------------------------------
// Tracking: experiments and runs.

enum class RunStatus { kRunning, kFinished, kFailed, kKilled };

// "running", "finished", "failed", "killed".
std::string_view RunStatusName(RunStatus status);
// The inverse of RunStatusName. Errors: InvalidArgument naming the text.
Result<RunStatus> ParseRunStatus(std::string_view text);

// A named group of runs (one per pipeline or question).
struct Experiment {
  int64_t id = 0;
  std::string name;
  Timestamp created_at = 0;
};

// One logged value of a metric. A metric has a history (one value per step);
// the run's latest value of a metric is the one with the largest step, and of
// equal steps the one logged last.
struct Metric {
  std::string key;
  double value = 0.0;
  int64_t step = 0;
  Timestamp time = 0;
};

// A file a run produced: where it is (a path relative to the run's artifact
// root, and a uri or absolute path to fetch it) and its checksum.
struct Artifact {
  std::string path;
  std::string uri;
  std::string checksum;  // e.g. "xxh128:<hex>"; the registry does not verify it
  int64_t size_bytes = -1;
};

// One training (or evaluation) run.
struct Run {
  std::string id;  // 32 hex digits, chosen by the registry
  std::string experiment;
  std::string name;
  RunStatus status = RunStatus::kRunning;
  Timestamp start_time = 0;
  std::optional<Timestamp> end_time;
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> tags;
  std::map<std::string, Metric> metrics;  // latest value per key
  std::vector<Artifact> artifacts;        // sorted by path
};

// What a new run starts with.
struct NewRun {
  std::string experiment;  // created when missing
  std::string name;        // free text; may be empty
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> tags;
  std::optional<Timestamp> start_time;  // default: now
};

// Values logged to a run in one atomic step.
struct RunLog {
  std::map<std::string, std::string> params;
  std::vector<Metric> metrics;  // a Metric with time 0 gets the current time
  std::map<std::string, std::string> tags;
  std::vector<Artifact> artifacts;
};

// A condition on a run. Params and tags compare as strings (= and != only);
// metrics compare their latest value numerically (every operator). A run
// without the key never matches (not even for !=).
struct RunPredicate {
  enum class Field { kParam, kMetric, kTag };
  enum class Op { kEq, kNe, kLt, kLe, kGt, kGe };
  Field field = Field::kParam;
  std::string key;
  Op op = Op::kEq;
  std::string text;     // params and tags
  double number = 0.0;  // metrics
};

// Parses "params.lr = 0.1", "metrics.auc >= 0.7", "tags.team != ml"
// (operators =, ==, !=, <, <=, >, >=; the value may be quoted).
// Errors: InvalidArgument naming the text and what is wrong.
Result<RunPredicate> ParseRunPredicate(std::string_view text);

// Which runs to list, and in which order.
struct RunQuery {
  std::string experiment;           // empty: every experiment
  std::optional<RunStatus> status;  // none: every status
  std::vector<RunPredicate> where;  // all must hold
  // Ordering: empty = by start time, newest first; otherwise the latest value
  // of this metric (runs without it come last), ties broken by start time
  // (newest first) then id.
  std::string order_by_metric;
  bool ascending = false;  // for order_by_metric
  int64_t limit = 100;     // at most this many runs (> 0)
};

// ---------------------------------------------------------------------------
// Registry: models, versions, stages.

// The life of a model version. Allowed transitions (TransitionStage):
//   trained    -> staging | archived
//   staging    -> production (needs a sign-off) | archived
//   production -> archived
//   archived   -> staging
// and, by Rollback only, archived -> production. Nothing ever goes back to
// trained, and no version skips staging on its way to production.
enum class Stage { kTrained, kStaging, kProduction, kArchived };

// "trained", "staging", "production", "archived".
std::string_view StageName(Stage stage);
// The inverse of StageName. Errors: InvalidArgument naming the text.
Result<Stage> ParseStage(std::string_view text);

// A named model; its versions are numbered 1, 2, ... in registration order.
struct RegisteredModel {
  std::string name;
  std::string description;
  Timestamp created_at = 0;
  int64_t latest_version = 0;                 // 0: no version yet
  std::optional<int64_t> production_version;  // at most one, always
};

// Where a model version came from.
struct Lineage {
  std::string run_id;                         // the run that trained it (may be empty)
  std::string bundle_hash;                    // the model bundle's content hash
  std::string bundle_uri;                     // where the bundle lives
  std::string data_hash;                      // the training set's hash
  std::vector<std::string> feature_versions;  // "view@version", in the bundle's order
  std::string code_version;                   // keel's commit (CodeVersion())
};

struct ModelVersion {
  std::string model;
  int64_t version = 0;
  Stage stage = Stage::kTrained;
  Lineage lineage;
  std::string description;
  Timestamp created_at = 0;
  std::map<std::string, std::string> tags;
  std::vector<std::string> aliases;  // sorted
};

// The answer of RegisterBundle: the version holding the bundle and whether
// this call created it (false: the bundle was already registered as it).
struct BundleRegistration {
  ModelVersion version;
  bool created = false;
};

// Who agreed that a version may serve production traffic, and why.
struct SignOff {
  std::string by;
  std::string note;
};

// One recorded stage change (the audit trail). Registration is recorded as a
// change with no `from` stage.
struct StageTransition {
  int64_t id = 0;  // increasing in commit order within a model
  std::string model;
  int64_t version = 0;
  std::optional<Stage> from;
  Stage to = Stage::kTrained;
  std::string actor;
  Timestamp time = 0;
  std::string reason;
  std::optional<SignOff> sign_off;  // on every entry into production
  // "register", "transition", "replaced" (moved out of production by the
  // promotion of another version), "rollback" (both sides of a rollback).
  std::string kind;
  // On entries into production: the version that was in production just
  // before (what Rollback restores).
  std::optional<int64_t> previous_production;
};

struct TransitionRequest {
  std::string model;
  int64_t version = 0;
  Stage to = Stage::kStaging;
  std::string actor;  // required
  std::string reason;
  std::optional<SignOff> sign_off;  // required (both fields) for production
};

// Tracking and model registry (DESIGN.md "Registry"), one interface with two
// implementations chosen by keel.yaml (`registry: {type: ...}`):
//   sqlite   - embedded, the default; one file, shared safely by many
//              processes (write transactions are BEGIN IMMEDIATE, with a busy
//              timeout);
//   postgres - a PostgreSQL server (transactions are SERIALIZABLE and lock the
//              model's row; serialization failures are retried).
// Every implementation passes the contract suite in registry_test.cc. Every
// change is one transaction: it happens completely or not at all, also when
// several processes change the same model at once.
//
// Errors common to every method: Unavailable when the server cannot be
// reached, IoError when the database cannot be read or written. Messages name
// the run, model and version concerned.
//
// Thread-safety: every method may be called from many threads at once (calls
// on one Registry object are serialized by it; open one per thread for
// parallelism).
class Registry {
 public:
  virtual ~Registry() = default;

  // "sqlite" or "postgres".
  virtual std::string_view type() const = 0;

  // --- experiments and runs ---

  // Creates an experiment. Errors: AlreadyExists, InvalidArgument for an empty name.
  virtual Result<Experiment> CreateExperiment(const std::string& name) = 0;
  // Errors: NotFound naming the experiment.
  virtual Result<Experiment> GetExperiment(const std::string& name) = 0;
  // Every experiment, by name.
  virtual Result<std::vector<Experiment>> ListExperiments() = 0;

  // Starts a run (status running) in `run.experiment`, creating the
  // experiment when missing, and returns it with its new id.
  // Errors: InvalidArgument for an empty experiment name.
  virtual Result<Run> CreateRun(const NewRun& run) = 0;

  // Logs params, metrics, tags and artifacts to a run, all or nothing. A
  // param, once logged, keeps its value: logging another value for it is
  // InvalidArgument (the same value is fine). Tags and artifacts (by path)
  // are replaced. Errors: NotFound naming the run; InvalidArgument for an
  // empty key or a non-finite metric value.
  virtual Status LogToRun(const std::string& run_id, const RunLog& log) = 0;

  // Ends a running run with `status` (not running) at `end_time` (default
  // now). Errors: NotFound; FailedPrecondition when the run already ended;
  // InvalidArgument for status running.
  virtual Status EndRun(const std::string& run_id, RunStatus status,
                        std::optional<Timestamp> end_time = std::nullopt) = 0;

  // A run with its params, tags, latest metrics and artifacts. `run_id` may
  // be a unique prefix of at least 6 digits. Errors: NotFound naming the id;
  // InvalidArgument when a prefix matches several runs.
  virtual Result<Run> GetRun(const std::string& run_id) = 0;

  // Every logged value of one metric of a run, by step then logging order.
  // Errors: NotFound for an unknown run (an unknown key gives an empty list).
  virtual Result<std::vector<Metric>> GetMetricHistory(const std::string& run_id,
                                                       const std::string& key) = 0;

  // The runs `query` selects, in its order, at most query.limit, each as
  // GetRun returns it. Errors: NotFound for an unknown experiment;
  // InvalidArgument for a limit <= 0 or an operator other than = / != on a
  // param or tag.
  virtual Result<std::vector<Run>> SearchRuns(const RunQuery& query) = 0;

  // --- models and versions ---

  // Registers a model name. Errors: AlreadyExists, InvalidArgument for an
  // empty name.
  virtual Result<RegisteredModel> CreateModel(const std::string& name,
                                              const std::string& description = "") = 0;
  // Errors: NotFound naming the model.
  virtual Result<RegisteredModel> GetModel(const std::string& name) = 0;
  // Every registered model, by name.
  virtual Result<std::vector<RegisteredModel>> ListModels() = 0;

  // Registers the next version of `model` (created when missing) in stage
  // trained, and records the registration in the audit trail with `actor`.
  // Errors: NotFound when lineage.run_id names no run; InvalidArgument for an
  // empty model name or actor, or a feature version containing a newline.
  virtual Result<ModelVersion> CreateModelVersion(const std::string& model, const Lineage& lineage,
                                                  const std::string& actor,
                                                  const std::string& description = "") = 0;
  // Registers the bundle lineage.bundle_hash as the next version of `model`
  // unless a version of `model` already holds that bundle hash: then returns
  // that version with created = false and changes nothing. The check and the
  // registration are one transaction, so any number of concurrent calls
  // (threads or processes) with the same bundle make exactly one version.
  // Errors: those of CreateModelVersion; InvalidArgument for an empty
  // bundle hash.
  virtual Result<BundleRegistration> RegisterBundle(const std::string& model,
                                                    const Lineage& lineage,
                                                    const std::string& actor,
                                                    const std::string& description = "") = 0;

  // Errors: NotFound naming the model or the version.
  virtual Result<ModelVersion> GetModelVersion(const std::string& model, int64_t version) = 0;
  // Every version of a model, by version. Errors: NotFound for the model.
  virtual Result<std::vector<ModelVersion>> ListModelVersions(const std::string& model) = 0;

  // Moves a version to request.to and records it (actor, time, reason, sign
  // off) in one transaction. Entering production needs a sign-off with a
  // non-empty `by` and `note`; the version that was in production (if any)
  // moves to archived in the same transaction (recorded as "replaced"), so
  // there is never more than one production version.
  // Returns the version as it now is.
  // Errors: NotFound for the model or version; InvalidArgument for an empty
  // actor; FailedPrecondition for a transition the stage rules forbid (naming
  // both stages and the allowed ones), for a missing sign-off, and for a
  // version already in request.to.
  virtual Result<ModelVersion> TransitionStage(const TransitionRequest& request) = 0;

  // Restores the previous production version: the current production version
  // moves to archived and the version it replaced moves back to production,
  // in one transaction, both recorded with kind "rollback". Repeated
  // rollbacks walk further back. Returns the restored version.
  // Errors: NotFound for the model; InvalidArgument for an empty actor;
  // FailedPrecondition when the model has no production version, or when the
  // production version replaced none (there is nothing to roll back to).
  virtual Result<ModelVersion> Rollback(const std::string& model, const std::string& actor,
                                        const std::string& reason) = 0;

  // Points `alias` of `model` at `version`, moving it when it pointed at
  // another version (an alias names one version per model). Errors: NotFound
  // for the model or version; InvalidArgument for an empty alias, or one that
  // is all digits or starts with "v" followed by digits (those name versions).
  virtual Status SetAlias(const std::string& model, const std::string& alias, int64_t version) = 0;
  // Removes an alias. Errors: NotFound for the model or the alias.
  virtual Status DeleteAlias(const std::string& model, const std::string& alias) = 0;
  // The version an alias names. Errors: NotFound for the model or alias.
  virtual Result<ModelVersion> GetVersionByAlias(const std::string& model,
                                                 const std::string& alias) = 0;

  // Sets (or replaces) a tag of a version. Errors: NotFound; InvalidArgument
  // for an empty key.
  virtual Status SetVersionTag(const std::string& model, int64_t version, const std::string& key,
                               const std::string& value) = 0;
  // Removes a tag of a version. Errors: NotFound for the model, version or tag.
  virtual Status DeleteVersionTag(const std::string& model, int64_t version,
                                  const std::string& key) = 0;

  // The audit trail of `model`, oldest first: every registration and stage
  // change of every version. Errors: NotFound for the model.
  virtual Result<std::vector<StageTransition>> History(const std::string& model) = 0;

  // The version that was in production at instant `at`, answered from the
  // audit trail; nullopt when none was. Errors: NotFound for the model.
  virtual Result<std::optional<int64_t>> ProductionVersionAt(const std::string& model,
                                                             Timestamp at) = 0;
};

// A version of `model` named by `ref`: "3", "v3" (or "V3"), or an alias.
// Errors: NotFound naming the model, version or alias; InvalidArgument for a
// version number too large to be one.
Result<ModelVersion> FindModelVersion(Registry* registry, const std::string& model,
                                      const std::string& ref);

// How to open a registry.
struct RegistryOptions {
  std::string type = "sqlite";  // sqlite | postgres
  std::string path;             // sqlite: the database file (its folder is created)
  std::string url;              // postgres: "postgresql://user@host:port/db" (libpq syntax)
  // postgres: the schema holding the tables (created when missing); lets
  // tests and projects share one database.
  std::string schema = "public";
  // sqlite: wait for an fsync at every commit (synchronous=FULL). Off
  // (synchronous=NORMAL, still crash-safe in WAL mode but the last commits may
  // be lost on power failure) for bulk loads such as the benchmark.
  bool durable = true;
  // The clock for every recorded time; default: the system clock.
  std::function<Timestamp()> clock;
};

// Opens (creating the tables when needed) the registry `options` describe.
// Errors: InvalidArgument for an unknown type, a missing path or url, or a
// malformed schema name; Unavailable when the server cannot be reached;
// IoError when the file cannot be opened.
Result<std::unique_ptr<Registry>> OpenRegistry(const RegistryOptions& options);

// The current time of the system clock, in UTC microseconds.
Timestamp SystemNow();

}  // namespace keel::registry
