#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "features/definitions.h"
#include "features/shared_sources.h"
#include "store/online_store.h"
#include "table/column.h"

namespace keel::table {
class DuckDb;
}
namespace keel::features {
class Catalog;
}
namespace keel::serve {
class ServingModel;
}

namespace CLI {
class App;
}

namespace keel::cli {

// Options shared by every command that works on a feature repository.
struct RepoOptions {
  std::string repo = ".";  // folder of keel.yaml
};

// `keel init DIR`: writes a small, working example repository (definitions and
// a generated events file) into DIR, which must be empty or missing.
Status RunInit(const std::string& dir);

// `keel apply`: validates every definition against its data and records new
// view versions in the catalog; prints what changed.
Status RunApply(const RepoOptions& options);

// `keel features list` / `keel features show VIEW[@VERSION]`.
Status RunFeaturesList(const RepoOptions& options, bool json);
Status RunFeaturesShow(const RepoOptions& options, const std::string& reference, bool json);

struct DatasetBuildOptions {
  RepoOptions repo;
  std::string spine;       // a source name, a file (.parquet/.csv/.json) or a SQL query
  std::string spine_time;  // default: the source's timestamp, or timestamp/event_timestamp/ts
  std::string features;    // view references (definitions.h ParseFeatureUses)
  std::string service;     // or a feature service name
  std::string out;         // Parquet file
  int threads = 0;
  bool json = false;  // print the summary as JSON
  // Build even when a source fails an error-level check; the reason is
  // recorded in the output's metadata and in FILE.checks.json beside it.
  std::string allow_failed_checks;
};

// A spine as dataset build reads it: a source name, a data file or SQL over
// the sources, and its time column (given, the source's, or guessed).
struct LoadedSpine {
  table::Table table;
  std::string time_column;
};
Result<LoadedSpine> LoadSpine(const std::string& spine, const std::string& spine_time,
                              const std::string& repo_dir, table::DuckDb* duckdb);

// `keel dataset build`: a point-in-time correct training set as Parquet.
Status RunDatasetBuild(const DatasetBuildOptions& options);

struct TrainCommandOptions {
  RepoOptions repo;      // default: the nearest folder above the pipeline with keel.yaml
  std::string pipeline;  // the pipeline YAML file
  std::string out;       // bundle folder; default <repo>/.keel/bundles/<pipeline name>
  bool force = false;    // rerun every step
  bool json = false;
  bool register_model = true;  // record the run and register the model (train_registration.h)
  std::string actor;           // who registers; default $USER, else "keel"
};

// `keel train PIPELINE.yaml`: runs the pipeline's steps (cached under
// <repo>/.keel/cache), writes the model bundle and prints test metrics of the
// model beside both baselines and per slice. Unless register_model is off, it
// records a run in the registry keel.yaml configures (failed when training
// fails) and registers the bundle as a model version, or reports the version
// already registered with the same bundle hash (train_registration.h).
// Errors: those of the pipeline file, of RunTrain (train/runner.h) and of the
// registry.
Status RunTrainCommand(const TrainCommandOptions& options);

struct BundleCommandOptions {
  std::string action;   // "verify", "export" or "import"
  std::string bundle;   // the bundle folder (import: the folder to create)
  std::string archive;  // export / import: the archive file
  bool json = false;
};

// `keel bundle verify DIR`, `keel bundle export DIR FILE`, `keel bundle import
// FILE DIR` (train/bundle.h). Errors: FailedPrecondition naming the file of a
// tampered bundle; those of the bundle functions.
Status RunBundleCommand(const BundleCommandOptions& options);

struct ProfileCommandOptions {
  RepoOptions repo;
  std::string source;
  std::string where;      // optional SQL condition selecting rows
  std::string reference;  // profile whose bins to use
  std::string out;
};

// `keel profile SOURCE --out FILE`: the source's profile as JSON.
Status RunProfile(const ProfileCommandOptions& options);

struct ValidateOptions {
  RepoOptions repo;
  std::string source;
  std::string where;
  std::string reference;  // profile for drift checks
  std::string as_of;      // ISO time; default now
  std::string report;     // JSON report path; default <repo>/.keel/reports/validate-SOURCE.json
  bool json = false;
};

// `keel validate SOURCE`: runs the source's checks, prints a table, writes a
// JSON report. Errors: FailedPrecondition when an error-level check fails.
Status RunValidate(const ValidateOptions& options);

struct DriftOptions {
  std::string reference;  // profile JSON
  std::string current;    // profile JSON made with --reference (same bins)
  bool json = false;
  bool fail_on_drift = false;
};

// `keel drift REFERENCE CURRENT`: every drift statistic per column of two
// profiles, and the default verdict. Errors: FailedPrecondition on drift
// with fail_on_drift.
Status RunDrift(const DriftOptions& options);

// Runs the checks of each of `sources` that defines any (as of now). Returns
// a JSON summary per source. Sources are read through `duckdb`, or taken from
// `shared` (when not null) if another reader holds or is reading them.
// Errors: FailedPrecondition naming every failed error-level check, unless
// `allow_reason` is set; those of reading a source, in this function's words.
Result<nlohmann::json> CheckSourcesBeforeBuild(const features::Repository& repo,
                                               const std::vector<std::string>& sources,
                                               const std::string& allow_reason,
                                               table::DuckDb* duckdb,
                                               features::SharedSources* shared = nullptr);

struct MaterializeOptions {
  RepoOptions repo;
  std::string views;  // comma-separated view[@version]; empty: every current view
  std::string end;    // ISO time; default now
  bool incremental = false;
  bool json = false;
  std::string allow_failed_checks;
};

// `keel materialize`: loads every view's state as of --end into the online
// store (features/online.h Materialize), after the sources' checks pass.
Status RunMaterialize(const MaterializeOptions& options);

struct FeaturesGetOptions {
  RepoOptions repo;
  std::string features;  // view references, as dataset build takes them
  std::string service;
  std::string entities;  // JSON object of key columns: {"origin": ["SFO", "LAX"]}
  std::string at;        // ISO time the features are read at; default now
  bool json = false;     // Feast's column-oriented response shape
};

struct ParityOptions {
  RepoOptions repo;
  std::string spine;
  std::string spine_time;
  std::string features;
  std::string service;
  std::string materialize_until;  // ISO time: materialize before, stream from here
  std::string store = "memory";   // memory | repo (the keel.yaml online store)
  bool json = false;
};

// `keel parity`: proves online/offline parity on real data (features/parity.h).
// Errors: FailedPrecondition when any value differs.
Status RunParity(const ParityOptions& options);

// `keel features get`: reads features from the online store.
Status RunFeaturesGet(const FeaturesGetOptions& options);

// `keel features freshness`: for the current version of every view, the
// newest event applied to the online store (streamed or materialized) and
// now minus it. Opens the store read-only.
Status RunFeaturesFreshness(const RepoOptions& options, bool json);

// The online store keel.yaml configures. Errors: as store::OpenOnlineStore.
Result<std::unique_ptr<store::OnlineStore>> OpenRepoOnlineStore(const features::RepoConfig& config,
                                                                bool read_only = false);

struct ServeOptions {
  RepoOptions repo;
  std::string host = "127.0.0.1";
  int port = 6566;  // 0: any free port
  int threads = 0;  // event loops; 0: one per core
  size_t max_body_bytes = 1024 * 1024;
  size_t max_entities = 1000;
  size_t max_events = 10000;
  Duration dedup_ttl = kMicrosPerDay;  // how long applied event ids are remembered
  // Models to serve: "NAME" (the registry's production version, followed as
  // it changes) or "NAME=BUNDLE_DIR" (a fixed bundle).
  std::vector<std::string> models;
  std::string fallback = "baseline";  // baseline | defaults | error
  int64_t deadline_ms = 100;
  size_t max_rows = 1000;        // rows per prediction request
  int64_t model_poll_ms = 1000;  // how often the registry is asked for production versions
  std::string prediction_log;    // folder; "" = <root>/.keel/predictions, "none" = off
  // The registry API's admin token (serve/registry_api.h): this file's
  // contents, else env KEEL_ADMIN_TOKEN; neither: transitions are disabled.
  std::string admin_token_file;
};

// `keel serve`: the HTTP feature server (serve/feature_server.h) over the
// repository's catalog and online store. Prints "keel serve: listening on
// HOST:PORT" to stderr once it accepts connections; on SIGTERM or SIGINT it
// stops accepting, answers the requests in flight, closes the store and
// returns OK. Errors: as LoadRepoConfig, Catalog::Open and OpenOnlineStore;
// Unavailable when it cannot listen.
// Also serves the registry API (serve/registry_api.h) over the registry
// keel.yaml configures; errors: LoadAdminToken's.
Status RunServe(const ServeOptions& options);

struct IngestOptions {
  RepoOptions repo;
  std::string from;  // redis://host:port
  std::string stream;
  std::string group = "keel";
  std::string consumer = "keel-ingest";
  std::string source;  // for entries without a "source" field
  size_t batch = 500;
  int64_t idle_exit_ms = 0;  // 0: run until SIGTERM / SIGINT
  Duration dedup_ttl = kMicrosPerDay;
  bool json = false;
};

// `keel ingest`: applies the events of a Redis Stream to the online store
// through a consumer group (store/redis_stream.h, serve/event_ingest.h).
// Each entry carries the event as JSON in its "event" field (and optionally
// "source"); the entry id is the default event id. Entries are acknowledged
// only after the store write that applied them returned (durable); entries
// whose event is malformed or fails an error-level expectation go to
// "<stream>:dead" with the reason, then are acknowledged. On start, the
// consumer's own unacknowledged entries (a crash) are applied again first -
// also after a lost connection to Redis, which is retried with backoff -
// de-duplication makes that exact. Stops on SIGTERM / SIGINT after the batch
// in hand, or after --idle-exit-ms without entries; prints what it did.
Status RunIngest(const IngestOptions& options);

struct OfflinePredictOptions {
  size_t chunk_rows = 100000;  // spine rows built and scored at a time
  int threads = 0;             // offline engine threads; 0: every core
  // Called with (rows done, rows in all) before the first chunk and after each.
  std::function<void(size_t, size_t)> progress;
};

// Batch prediction: `model`'s predictions (Scorer::kModel) for every row of
// `spine`, in spine order, with its view features built by the offline engine
// point in time at `time_column` (source rows with ts < the row's time) from
// exactly the view versions the bundle pins, its request inputs computed by
// train::AddRequestInputs, then the same transforms and compiled trees as
// the prediction server. Sources are read once (the engine caches them
// across chunks). Errors: InvalidArgument for an empty spine, a missing time
// or request input or key column (naming it); NotFound when the catalog lacks
// a pinned view version; those of OfflineEngine::Build and ServingModel::Score.
Result<std::vector<double>> PredictOffline(const serve::ServingModel& model,
                                           const features::RepoConfig& config,
                                           features::Catalog* catalog, table::DuckDb* duckdb,
                                           const table::Table& spine,
                                           const std::string& time_column,
                                           const OfflinePredictOptions& options);

struct BatchPredictOptions {
  RepoOptions repo;
  std::string model;       // NAME (the registry's production version) or NAME@VERSION
  std::string bundle;      // a bundle folder instead of the registry (--model optional)
  std::string spine;       // a source name, a file or SQL, as dataset build takes it
  std::string spine_time;  // default: the source's timestamp, or timestamp/event_timestamp/ts
  std::string out;         // Parquet file
  size_t chunk_rows = 100000;
  int threads = 0;
  bool quiet = false;  // no progress bar on stderr
  bool json = false;
};

// `keel batch-predict`: PredictOffline over the spine, written (atomically)
// as Parquet: the spine's columns plus `prediction`, with the model's name,
// version, bundle hash and pinned features in the file's "keel" metadata.
// Errors: InvalidArgument / NotFound naming --model, --bundle, --spine or
// --out; FailedPrecondition for a NAME without a production version.
Status RunBatchPredict(const BatchPredictOptions& options);

// Adds `keel runs list|show|compare|log` and `keel models
// list|show|history|promote|archive|rollback|alias|register` to `app`
// (registry_commands.cc). They work on the registry keel.yaml configures in
// `repo` (filled by their --repo option) and store their outcome in `status`;
// both must outlive app->parse.
void AddRegistryCommands(CLI::App* app, RepoOptions* repo, Status* status);

// Adds `keel logs export` (logs_command.cc): the prediction log
// (serve/prediction_log.h) of a time range, optionally one model's, as a
// Parquet file. Same contract for `repo` and `status` as AddRegistryCommands.
void AddLogsCommands(CLI::App* app, RepoOptions* repo, Status* status);

}  // namespace keel::cli
