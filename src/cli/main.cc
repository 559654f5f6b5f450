// The keel command: thin wiring of subcommands onto the layers.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "common/files.h"

namespace {

int ExitCode(const keel::Status& status) {
  switch (status.code()) {
    case keel::StatusCode::kOk:
      return 0;
    case keel::StatusCode::kInvalidArgument:
      return 2;
    case keel::StatusCode::kNotFound:
      return 3;
    case keel::StatusCode::kFailedPrecondition:
      return 4;
    default:
      return 1;
  }
}

// Parses a duration option ("24h", "7d") into `out`; on failure sets
// `status` (naming the option) and returns false.
bool ParseDurationOption(const std::string& text, const char* option, keel::Duration* out,
                         keel::Status* status) {
  keel::Result<keel::Duration> parsed = keel::ParseDuration(text);
  if (!parsed.ok()) {
    *status = parsed.status().WithContext(option);
    return false;
  }
  *out = *parsed;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"keel: define features once, build point-in-time training sets, serve them."};
  app.require_subcommand(1);
  app.set_version_flag("--version",
                       std::string("keel 0.1.0 (") + std::string(keel::CodeVersion()) + ")");
  keel::cli::RepoOptions repo;
  auto add_repo = [&](CLI::App* command) {
    command->add_option("--repo,-r", repo.repo, "Feature repository (folder of keel.yaml)")
        ->envname("KEEL_REPO");
  };
  keel::Status status;

  std::string init_dir;
  CLI::App* init = app.add_subcommand("init", "Write a working example repository");
  init->add_option("dir", init_dir, "Folder to create")->required();
  init->callback([&] { status = keel::cli::RunInit(init_dir); });

  CLI::App* apply = app.add_subcommand("apply", "Validate definitions and record view versions");
  add_repo(apply);
  apply->callback([&] { status = keel::cli::RunApply(repo); });

  bool json = false;
  CLI::App* features = app.add_subcommand("features", "List and show feature views");
  features->require_subcommand(1);
  CLI::App* list = features->add_subcommand("list", "Current version of every view");
  add_repo(list);
  list->add_flag("--json", json, "Print JSON");
  list->callback([&] { status = keel::cli::RunFeaturesList(repo, json); });
  std::string reference;
  CLI::App* show = features->add_subcommand("show", "One view: definition and versions");
  add_repo(show);
  show->add_option("view", reference, "VIEW or VIEW@VERSION")->required();
  show->add_flag("--json", json, "Print JSON");
  show->callback([&] { status = keel::cli::RunFeaturesShow(repo, reference, json); });
  CLI::App* freshness = features->add_subcommand(
      "freshness", "Newest event applied to each view in the online store, and its age");
  add_repo(freshness);
  freshness->add_flag("--json", json, "Print JSON");
  freshness->callback([&] { status = keel::cli::RunFeaturesFreshness(repo, json); });

  keel::cli::DatasetBuildOptions build_options;
  CLI::App* dataset = app.add_subcommand("dataset", "Training sets");
  dataset->require_subcommand(1);
  CLI::App* build = dataset->add_subcommand("build", "Build a point-in-time correct training set");
  add_repo(build);
  build
      ->add_option("--spine", build_options.spine,
                   "Entity keys + timestamps (+ labels): a source name, a file or a SQL query")
      ->required();
  build->add_option("--spine-time", build_options.spine_time, "Spine timestamp column");
  auto* features_option = build->add_option(
      "--features", build_options.features,
      "Views: view[@version][(key=column,...)][ as alias][:f1|f2], comma-separated");
  auto* service_option =
      build->add_option("--service", build_options.service, "A feature service instead");
  features_option->excludes(service_option);
  build->add_option("--out,-o", build_options.out, "Output Parquet file")->required();
  build->add_option("--threads", build_options.threads, "Worker threads (default: all cores)");
  build->add_flag("--json", build_options.json, "Print the summary as JSON");
  build->add_option("--allow-failed-checks", build_options.allow_failed_checks,
                    "Build even if a source fails its checks; the reason is recorded");
  build->callback([&] {
    build_options.repo = repo;
    if (build_options.features.empty() && build_options.service.empty()) {
      status = keel::InvalidArgument("dataset build: give --features or --service");
      return;
    }
    status = keel::cli::RunDatasetBuild(build_options);
  });

  keel::cli::TrainCommandOptions train_options;
  CLI::App* train = app.add_subcommand("train", "Run a training pipeline and write a model bundle");
  add_repo(train);
  train->add_option("pipeline", train_options.pipeline, "Pipeline YAML file")->required();
  train->add_flag("--force", train_options.force, "Rerun every step, cached or not");
  train->add_flag("--json", train_options.json, "Print the result as JSON");
  train->add_flag("!--no-register", train_options.register_model,
                  "Do not record the run nor register the model in the registry");
  train->add_option("--actor", train_options.actor, "Who registers the model (default: $USER)");
  train->add_option("--out", train_options.out,
                    "Bundle folder (default: <repo>/.keel/bundles/<pipeline name>)");
  train->callback([&] {
    train_options.repo = repo;
    status = keel::cli::RunTrainCommand(train_options);
  });

  keel::cli::BundleCommandOptions bundle_options;
  CLI::App* bundle = app.add_subcommand("bundle", "Model bundles: verify, export, import");
  bundle->require_subcommand(1);
  CLI::App* bundle_verify = bundle->add_subcommand("verify", "Check every file's checksum");
  bundle_verify->add_option("bundle", bundle_options.bundle, "Bundle folder")->required();
  bundle_verify->add_flag("--json", bundle_options.json, "Print JSON");
  CLI::App* bundle_export = bundle->add_subcommand("export", "Write a bundle as one archive");
  bundle_export->add_option("bundle", bundle_options.bundle, "Bundle folder")->required();
  bundle_export->add_option("archive", bundle_options.archive, "Archive file")->required();
  CLI::App* bundle_import = bundle->add_subcommand("import", "Unpack and verify an archive");
  bundle_import->add_option("archive", bundle_options.archive, "Archive file")->required();
  bundle_import->add_option("bundle", bundle_options.bundle, "New bundle folder")->required();
  for (auto [command, action] :
       {std::pair{bundle_verify, "verify"}, std::pair{bundle_export, "export"},
        std::pair{bundle_import, "import"}}) {
    command->callback([&, action] {
      bundle_options.action = action;
      status = keel::cli::RunBundleCommand(bundle_options);
    });
  }

  keel::cli::ProfileCommandOptions profile_options;
  CLI::App* profile = app.add_subcommand("profile", "Profile a source (statistics, sketches)");
  add_repo(profile);
  profile->add_option("source", profile_options.source, "Source name")->required();
  profile->add_option("--where", profile_options.where, "SQL condition selecting rows");
  profile->add_option("--reference", profile_options.reference, "Use this profile's bins");
  profile->add_option("--out,-o", profile_options.out, "Profile JSON file")->required();
  profile->callback([&] {
    profile_options.repo = repo;
    status = keel::cli::RunProfile(profile_options);
  });

  keel::cli::ValidateOptions validate_options;
  CLI::App* validate = app.add_subcommand("validate", "Run a source's checks; fail loud");
  add_repo(validate);
  validate->add_option("source", validate_options.source, "Source name")->required();
  validate->add_option("--where", validate_options.where, "SQL condition selecting rows");
  validate->add_option("--reference", validate_options.reference,
                       "Reference profile for drift checks");
  validate->add_option("--as-of", validate_options.as_of, "Time to judge freshness at");
  validate->add_option("--report", validate_options.report, "JSON report file");
  validate->add_flag("--json", validate_options.json, "Print the report as JSON");
  validate->callback([&] {
    validate_options.repo = repo;
    status = keel::cli::RunValidate(validate_options);
  });

  keel::cli::DriftOptions drift_options;
  CLI::App* drift = app.add_subcommand("drift", "Compare two profiles: drift per column");
  drift->add_option("reference", drift_options.reference, "Reference profile JSON")->required();
  drift
      ->add_option("current", drift_options.current,
                   "Current profile JSON (made with --reference REFERENCE)")
      ->required();
  drift->add_flag("--json", drift_options.json, "Print JSON");
  drift->add_flag("--fail-on-drift", drift_options.fail_on_drift, "Exit non-zero on drift");
  drift->callback([&] { status = keel::cli::RunDrift(drift_options); });

  keel::cli::FeaturesGetOptions get_options;
  CLI::App* get = features->add_subcommand("get", "Read features from the online store");
  add_repo(get);
  auto* get_features =
      get->add_option("--features", get_options.features,
                      "Views: view[@version][(key=column,...)][:f1|f2], comma-separated");
  auto* get_service =
      get->add_option("--service", get_options.service, "A feature service instead");
  get_features->excludes(get_service);
  get->add_option("--entities", get_options.entities,
                  R"(Entity keys as JSON columns, e.g. {"origin": ["SFO", "LAX"]})")
      ->required();
  get->add_option("--at", get_options.at, "Read as of this time (default: now)");
  get->add_flag("--json", get_options.json, "Print Feast's response shape");
  get->callback([&] {
    get_options.repo = repo;
    if (get_options.features.empty() && get_options.service.empty()) {
      status = keel::InvalidArgument("features get: give --features or --service");
      return;
    }
    status = keel::cli::RunFeaturesGet(get_options);
  });

  keel::cli::MaterializeOptions materialize_options;
  CLI::App* materialize =
      app.add_subcommand("materialize", "Load views' state as of a time into the online store");
  add_repo(materialize);
  materialize->add_option("--views", materialize_options.views,
                          "view[@version],... (default: every current view)");
  materialize->add_option("--end", materialize_options.end, "As of this time (default: now)");
  materialize->add_flag("--incremental", materialize_options.incremental,
                        "Continue from each view's recorded watermark");
  materialize->add_flag("--json", materialize_options.json, "Print the summary as JSON");
  materialize->add_option("--allow-failed-checks", materialize_options.allow_failed_checks,
                          "Materialize even if a source fails its checks; the reason is recorded");
  materialize->callback([&] {
    materialize_options.repo = repo;
    status = keel::cli::RunMaterialize(materialize_options);
  });

  keel::cli::ParityOptions parity_options;
  CLI::App* parity = app.add_subcommand(
      "parity", "Prove online/offline parity: materialize, stream the rest, compare every value");
  add_repo(parity);
  parity->add_option("--spine", parity_options.spine, "Spine: a source name, a file or SQL")
      ->required();
  parity->add_option("--spine-time", parity_options.spine_time, "Spine timestamp column");
  auto* parity_features = parity->add_option("--features", parity_options.features,
                                             "Views, as dataset build takes them");
  auto* parity_service =
      parity->add_option("--service", parity_options.service, "A feature service instead");
  parity_features->excludes(parity_service);
  parity
      ->add_option("--materialize-until", parity_options.materialize_until,
                   "Materialize rows before this time; stream the rest")
      ->required();
  parity->add_option("--store", parity_options.store,
                     "memory (default) or repo (the keel.yaml online store)");
  parity->add_flag("--json", parity_options.json, "Print the report as JSON");
  parity->callback([&] {
    parity_options.repo = repo;
    if (parity_options.features.empty() && parity_options.service.empty()) {
      status = keel::InvalidArgument("parity: give --features or --service");
      return;
    }
    status = keel::cli::RunParity(parity_options);
  });

  keel::cli::IngestOptions ingest_options;
  std::string ingest_dedup_ttl = "24h";
  CLI::App* ingest = app.add_subcommand(
      "ingest", "Apply a Redis Stream's events to the online store (consumer group)");
  add_repo(ingest);
  ingest->add_option("--from", ingest_options.from, "Redis server, redis://host:port")->required();
  ingest->add_option("--stream", ingest_options.stream, "Stream key")->required();
  ingest->add_option("--group", ingest_options.group, "Consumer group")->capture_default_str();
  ingest
      ->add_option("--consumer", ingest_options.consumer,
                   "Consumer name (keep it across restarts to take back unacknowledged entries)")
      ->capture_default_str();
  ingest->add_option("--source", ingest_options.source,
                     "Source of entries without a \"source\" field");
  ingest->add_option("--batch", ingest_options.batch, "Entries per read and store write")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  ingest
      ->add_option("--idle-exit-ms", ingest_options.idle_exit_ms,
                   "Exit after this long without entries (0: run until SIGTERM)")
      ->capture_default_str();
  ingest->add_option("--dedup-ttl", ingest_dedup_ttl, "How long applied event ids are remembered")
      ->capture_default_str();
  ingest->add_flag("--json", ingest_options.json, "Print a JSON summary on stdout");
  ingest->callback([&] {
    if (!ParseDurationOption(ingest_dedup_ttl, "--dedup-ttl", &ingest_options.dedup_ttl, &status)) {
      return;
    }
    ingest_options.repo = repo;
    status = keel::cli::RunIngest(ingest_options);
  });

  keel::cli::ServeOptions serve_options;
  CLI::App* serve = app.add_subcommand("serve", "HTTP feature server (online lookups)");
  add_repo(serve);
  serve->add_option("--host", serve_options.host, "Address to listen on")->capture_default_str();
  serve->add_option("--port", serve_options.port, "Port to listen on (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  serve
      ->add_option("--threads", serve_options.threads,
                   "Event loops serving the connections, one thread each (0: one per core)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  serve
      ->add_option("--max-body-bytes", serve_options.max_body_bytes,
                   "Largest request body; larger ones get 413")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--max-entities", serve_options.max_entities,
                   "Most entity rows per request; more get 413")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--max-events", serve_options.max_events,
                   "Most events per POST /v1/events; more get 413")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--model", serve_options.models,
                    "Serve a model: NAME (the registry's production version, followed as it "
                    "changes) or NAME=BUNDLE_DIR; repeatable");
  serve
      ->add_option("--fallback", serve_options.fallback,
                   "When features or the model fail: baseline, defaults or error")
      ->capture_default_str()
      ->check(CLI::IsMember({"baseline", "defaults", "error"}));
  serve
      ->add_option("--deadline-ms", serve_options.deadline_ms,
                   "Default per-request deadline for reading features")
      ->capture_default_str()
      ->check(CLI::Range(1, 60000));
  serve
      ->add_option("--max-rows", serve_options.max_rows,
                   "Most rows per prediction request; more get 413")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--model-poll-ms", serve_options.model_poll_ms,
                   "How often the registry is asked for each model's production version")
      ->capture_default_str()
      ->check(CLI::Range(10, 3600000));
  serve->add_option("--prediction-log", serve_options.prediction_log,
                    "Folder of the prediction log (default <repo>/.keel/predictions; none: off)");
  std::string serve_dedup_ttl = "24h";
  serve
      ->add_option("--dedup-ttl", serve_dedup_ttl,
                   "How long an applied event id is remembered (e.g. 24h, 7d)")
      ->capture_default_str();
  serve->add_option("--admin-token-file", serve_options.admin_token_file,
                    "File holding the token registry transitions need (else $KEEL_ADMIN_TOKEN)");
  serve->callback([&] {
    if (!ParseDurationOption(serve_dedup_ttl, "--dedup-ttl", &serve_options.dedup_ttl, &status)) {
      return;
    }
    serve_options.repo = repo;
    status = keel::cli::RunServe(serve_options);
  });

  keel::cli::BatchPredictOptions batch_options;
  CLI::App* batch = app.add_subcommand(
      "batch-predict", "Score a spine with point-in-time offline features (same model as serving)");
  add_repo(batch);
  batch->add_option("--model", batch_options.model,
                    "NAME (the registry's production version) or NAME@VERSION");
  batch->add_option("--bundle", batch_options.bundle, "A bundle folder instead of the registry");
  batch->add_option("--spine", batch_options.spine, "Spine: a source name, a file or SQL")
      ->required();
  batch->add_option("--spine-time,--time", batch_options.spine_time, "Spine timestamp column");
  batch->add_option("--out", batch_options.out, "Parquet file to write")->required();
  batch->add_option("--chunk-rows", batch_options.chunk_rows, "Spine rows scored at a time")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  batch->add_option("--threads", batch_options.threads, "Offline engine threads (0: every core)");
  batch->add_flag("--quiet,-q", batch_options.quiet, "No progress bar");
  batch->add_flag("--json", batch_options.json, "Print the summary as JSON");
  batch->callback([&] {
    batch_options.repo = repo;
    status = keel::cli::RunBatchPredict(batch_options);
  });

  keel::cli::AddRegistryCommands(&app, &repo, &status);
  keel::cli::AddLogsCommands(&app, &repo, &status);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "keel: error: %s\n", status.message().c_str());
    return ExitCode(status);
  }
  return 0;
}
