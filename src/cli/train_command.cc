// `keel train PIPELINE.yaml`: the training pipeline (train/runner.h) with its
// training sets built by the offline engine, as `keel dataset build` does.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/registry_commands.h"
#include "cli/text_table.h"
#include "cli/train_registration.h"
#include "common/files.h"
#include "common/hash.h"
#include "features/catalog.h"
#include "features/definitions.h"
#include "features/offline_engine.h"
#include "features/shared_sources.h"
#include "table/duckdb_bridge.h"
#include "train/bundle.h"
#include "train/golden.h"
#include "train/matrix.h"
#include "train/pipeline.h"
#include "train/runner.h"
#include "train/runner_steps.h"

namespace keel::cli {
namespace {

namespace fs = std::filesystem;

bool IsSourceName(const std::string& text) {
  if (text.empty() || std::isdigit(static_cast<unsigned char>(text[0]))) return false;
  for (char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// Training sets from a feature repository. Thread-safety: one thread, except
// that Validate() may run beside Build() (train/runner.h): it opens its own
// DuckDB database, only reads what Plan() set, and shares with Build() only
// the thread-safe SharedSources, so that a source both the checks and the
// offline engine read (the flights file) is read once.
class RepoDatasetSource : public train::DatasetSource {
 public:
  RepoDatasetSource(const train::PipelineSpec& pipeline, std::string repo_dir)
      : pipeline_(pipeline), repo_dir_(std::move(repo_dir)) {}

  Result<nlohmann::json> Plan() override {
    ASSIGN_OR_RETURN(config_, features::LoadRepoConfig(repo_dir_));
    ASSIGN_OR_RETURN(repo_, features::LoadRepository(repo_dir_));
    ASSIGN_OR_RETURN(catalog_, features::Catalog::Open(config_->catalog_path));
    std::vector<features::FeatureUse> uses;
    if (!pipeline_.service.empty()) {
      Result<features::FeatureServiceDef> service = catalog_->Service(pipeline_.service);
      if (!service.ok()) return service.status().WithContext("features.service (run keel apply?)");
      uses = service->uses;
    }
    uses.insert(uses.end(), pipeline_.views.begin(), pipeline_.views.end());
    pinned_ = nlohmann::json::array();
    if (IsSourceName(pipeline_.spine)) AddSource(pipeline_.spine);
    for (features::FeatureUse use : uses) {
      Result<features::ViewVersionInfo> info = catalog_->Resolve(use.view, use.version);
      if (!info.ok()) {
        return info.status().WithContext("feature '" + use.view +
                                         (use.version.empty() ? "" : "@" + use.version) + "'");
      }
      use.version = info->version;  // pinned: the run uses exactly this version
      pinned_.push_back({{"view", info->name},
                         {"version", info->version},
                         {"number", info->number},
                         {"alias", use.alias},
                         {"keys", use.key_map},
                         {"features", use.features}});
      AddSource(info->definition.source.name);
      for (const auto& [name, input] : info->definition.source_inputs) AddSource(name);
      uses_.push_back({std::move(use), std::move(info).value()});
    }
    if (!IsSourceName(pipeline_.spine)) {  // SQL or a file: it may read any source
      for (const features::SourceDef& source : repo_->sources) AddSource(source.name);
    }
    nlohmann::json sources = nlohmann::json::object();
    for (const std::string& name : sources_) {
      ASSIGN_OR_RETURN(sources[name], Fingerprint(name));
    }
    nlohmann::json plan = {{"features", pinned_}, {"sources", sources}};
    if (FileExists(pipeline_.spine)) {
      ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(pipeline_.spine));
      plan["spine_file"] = HashHex128(bytes);
    }
    return plan;
  }

  nlohmann::json PinnedFeatures() const override { return pinned_; }

  Result<nlohmann::json> Validate() override {
    // Its own database, never Build()'s (they may run at the same time).
    ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open(2));
    return CheckSourcesBeforeBuild(*repo_, sources_, "", duckdb.get(), &shared_sources_);
  }

  // Each source the checks and the offline engine asked for (the spine's own
  // query aside): {"readers": how many asked, "reads": how many times it was
  // read, 1 when they shared it}.
  nlohmann::json SourceReads() const {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [name, use] : shared_sources_.uses()) {
      out[name] = {{"readers", use.readers}, {"reads", use.reads}};
    }
    return out;
  }

  Result<train::BuiltDataset> Build(train::PhaseClock* clock) override {
    // The sources read meanwhile stay shared until the build is done, even
    // when the checks beside it finish with one before the engine asks for it.
    shared_sources_.Hold();
    Result<train::BuiltDataset> built = BuildHoldingSources(clock);
    shared_sources_.Release();
    return built;
  }

 private:
  Result<train::BuiltDataset> BuildHoldingSources(train::PhaseClock* clock) {
    RETURN_IF_ERROR(OpenDuckDb());
    // The feature sources are read on a thread (and a DuckDB) of their own
    // while the spine is read and gets its request inputs and its sample.
    features::OfflineEngine engine(*config_, duckdb_.get(), 2);
    engine.ShareSources(&shared_sources_);
    std::vector<features::FeatureViewDef> views;
    for (const auto& [use, info] : uses_) views.push_back(info.definition);
    engine.StartLoading(std::move(views));
    ASSIGN_OR_RETURN(LoadedSpine loaded,
                     LoadSpine(pipeline_.spine, pipeline_.spine_time, repo_dir_, duckdb_.get()));
    table::Table spine = std::move(loaded.table);
    train::MarkPhase(clock, "load spine");
    if (!pipeline_.label_expression.empty()) {
      RETURN_IF_ERROR(duckdb_->CreateTable("keel_train_spine", spine));
      Result<table::Table> extended =
          duckdb_->Query("SELECT *, (" + pipeline_.label_expression + ") AS \"" + pipeline_.label +
                         "\" FROM keel_train_spine");
      if (!extended.ok()) return extended.status().WithContext("label expression");
      spine = std::move(extended).value();
    }
    // Request inputs go through keel's own expression evaluator, the one the
    // prediction server runs on each request (serve/serving_model.h): the
    // same code computes them for training and for serving.
    train::MarkPhase(clock, "label expression");
    RETURN_IF_ERROR(train::AddRequestInputs(pipeline_.request_inputs, &spine));
    train::MarkPhase(clock, "request inputs");
    if (pipeline_.sample_fraction < 1.0) {
      spine = train::GatherRows(
          spine, train::SampleRows(spine, pipeline_.sample_fraction, pipeline_.sample_seed, 2));
      train::MarkPhase(clock, "sample");
    }
    std::vector<features::ResolvedUse> resolved;
    for (const auto& [use, info] : uses_) {
      ASSIGN_OR_RETURN(features::ResolvedUse item,
                       features::ResolveUse(use, info.definition, info.version, spine.fields()));
      resolved.push_back(std::move(item));
    }
    train::BuiltDataset out;
    out.time_column = loaded.time_column;
    for (const train::RequestInput& input : pipeline_.request_inputs) {
      if (spine.FindColumn(input.name) < 0) {
        return InvalidArgument("request_inputs: the spine has no column '" + input.name +
                               "' (columns: " + spine.SchemaToString() + ")");
      }
      out.input_columns.push_back(input.name);
    }
    size_t first_feature = spine.num_columns();
    features::BuildReport report;
    ASSIGN_OR_RETURN(out.table, engine.Build(std::move(spine), out.time_column, resolved, &report));
    train::MarkPhase(clock, "offline engine (point-in-time features)");
    for (size_t column = first_feature; column < out.table.num_columns(); ++column) {
      out.input_columns.push_back(out.table.fields()[column].name);
    }
    return out;
  }

 private:
  Status OpenDuckDb() {
    if (duckdb_ == nullptr) {
      ASSIGN_OR_RETURN(duckdb_, table::DuckDb::Open(2));
    }
    return Status::Ok();
  }

  void AddSource(const std::string& name) {
    if (std::find(sources_.begin(), sources_.end(), name) != sources_.end()) return;
    const features::SourceDef* source = repo_->FindSource(name);
    if (source == nullptr) return;
    sources_.push_back(name);
    for (const std::string& input : source->inputs) AddSource(input);
  }

  // A source's definition and, for a file source, a hash of the file's bytes.
  Result<nlohmann::json> Fingerprint(const std::string& name) {
    const features::SourceDef* source = repo_->FindSource(name);
    nlohmann::json out = {{"path", source->path}, {"query", source->query}};
    if (source->format != features::SourceFormat::kQuery) {
      ASSIGN_OR_RETURN(std::string path, features::ResolvePath(source->path, *config_));
      if (FileExists(path)) {
        ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
        out["xxh128"] = HashHex128(bytes);
      } else {
        out["missing"] = true;
      }
    }
    return out;
  }

  const train::PipelineSpec& pipeline_;
  std::string repo_dir_;
  std::optional<features::RepoConfig> config_;
  std::optional<features::Repository> repo_;
  std::unique_ptr<features::Catalog> catalog_;
  std::unique_ptr<table::DuckDb> duckdb_;
  std::vector<std::string> sources_;
  std::vector<std::pair<features::FeatureUse, features::ViewVersionInfo>> uses_;
  nlohmann::json pinned_ = nlohmann::json::array();
  features::SharedSources shared_sources_;  // Validate()'s and Build()'s reads
};

// The repository: --repo when it holds keel.yaml, else the nearest folder
// above the pipeline file that does.
std::string FindRepo(const std::string& repo, const std::string& pipeline) {
  if (FileExists((fs::path(repo) / "keel.yaml").string())) return repo;
  for (fs::path dir = fs::absolute(pipeline).parent_path(); !dir.empty(); dir = dir.parent_path()) {
    if (FileExists((dir / "keel.yaml").string())) return dir.string();
    if (dir == dir.parent_path()) break;
  }
  return repo;
}

std::string Number(const nlohmann::json& value) {
  if (!value.is_number()) return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.4f", value.get<double>());
  return text;
}

void PrintReport(const train::TrainResult& result) {
  TextTable steps({"step", "status", "seconds", "cpu seconds"});
  auto format_seconds = [](double value) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.2f", value);
    return std::string(text);
  };
  steps.AddRow({"plan", "ran", format_seconds(result.plan_seconds), ""});
  for (const train::StepRun& step : result.steps) {
    steps.AddRow({step.name, step.cached ? "cached" : "ran", format_seconds(step.seconds),
                  format_seconds(step.cpu_seconds)});
    for (const train::Phase& phase : step.phases) {
      steps.AddRow({"  " + phase.name, "", format_seconds(phase.seconds),
                    format_seconds(phase.cpu_seconds)});
    }
  }
  steps.AddRow({"finish", "ran", format_seconds(result.finish_seconds), ""});
  std::fputs(steps.ToString().c_str(), stdout);
  const nlohmann::json& rows = result.split_rows;
  std::printf("rows: train %s, validation %s, test %s\n", rows["train"].dump().c_str(),
              rows["validation"].dump().c_str(), rows["test"].dump().c_str());
  if (result.xgboost_seconds > 0) {
    std::printf(
        "time: %.2f s in all, of which XGBoost's own DMatrix + boosting %.2f s: keel's overhead "
        "%.0f %%\n",
        result.total_seconds, result.xgboost_seconds,
        100.0 * (result.total_seconds / result.xgboost_seconds - 1.0));
    std::printf(
        "cpu:  %.2f s in all, of which XGBoost's own %.2f s: keel's overhead %.0f %% of CPU "
        "time\n",
        result.total_cpu_seconds, result.xgboost_cpu_seconds,
        100.0 * (result.total_cpu_seconds / result.xgboost_cpu_seconds - 1.0));
  } else {
    std::printf("time: %.2f s in all\n", result.total_seconds);
  }
  std::printf("\ntest metrics (model vs baselines):\n");
  TextTable metrics({"metric", "model", "constant", "linear"});
  for (const auto& item : result.metrics["model"].items()) {
    if (item.key() == "count" || item.key() == "threshold") continue;
    metrics.AddRow({item.key(), Number(item.value()),
                    Number(result.metrics["constant"][item.key()]),
                    Number(result.metrics["linear"][item.key()])});
  }
  std::fputs(metrics.ToString().c_str(), stdout);
  for (const auto& [column, slices] : result.slice_metrics.items()) {
    std::string metric = result.metrics["model"].contains("roc_auc") ? "roc_auc" : "rmse";
    std::printf("\ntest %s by %s:\n", metric.c_str(), column.c_str());
    TextTable table({column, "rows", "model", "constant", "linear"});
    for (const nlohmann::json& slice : slices) {
      auto value = [&](const char* model) {
        return slice[model].is_object() ? Number(slice[model][metric]) : std::string("-");
      };
      table.AddRow({slice["value"].get<std::string>(), slice["count"].dump(), value("model"),
                    value("constant"), value("linear")});
    }
    std::fputs(table.ToString().c_str(), stdout);
  }
  std::printf("\nbundle %s\nbundle hash %s\n", result.bundle_dir.c_str(),
              result.bundle_hash.c_str());
}

void PrintRegistration(const TrainRegistration& registration) {
  std::printf("\nrun %s (experiment %s)\n", registration.run_id.c_str(),
              registration.experiment.c_str());
  if (registration.new_version) {
    std::printf("model %s: registered as version %lld (trained)\n", registration.model.c_str(),
                static_cast<long long>(registration.version));
  } else {
    std::printf("model %s: already registered as version %lld (by run %s)\n",
                registration.model.c_str(), static_cast<long long>(registration.version),
                registration.version_run_id.c_str());
  }
  if (registration.cached == "all") {
    std::printf("every step was cached: this run trained nothing (recorded with tag cached=all)\n");
  }
  std::printf("bundle stored at %s\n", registration.bundle_uri.c_str());
}

}  // namespace

Status RunTrainCommand(const TrainCommandOptions& options) {
  ASSIGN_OR_RETURN(train::PipelineSpec pipeline, train::LoadPipeline(options.pipeline));
  std::string repo = FindRepo(options.repo.repo, options.pipeline);
  ASSIGN_OR_RETURN(features::RepoConfig config, features::LoadRepoConfig(repo));
  RepoDatasetSource source(pipeline, repo);
  train::TrainOptions train_options;
  train_options.cache_dir = (fs::path(config.root) / ".keel" / "cache").string();
  train_options.out_dir =
      options.out.empty() ? (fs::path(config.root) / ".keel" / "bundles" / pipeline.name).string()
                          : fs::absolute(options.out).string();
  train_options.force = options.force;
  std::unique_ptr<TrainTracker> tracker;
  if (options.register_model) {
    std::string actor = !options.actor.empty() ? options.actor : DefaultActor();
    ASSIGN_OR_RETURN(tracker, TrainTracker::Start(config, pipeline.name, options.pipeline,
                                                  actor.empty() ? "keel" : actor));
  }
  Result<train::TrainResult> trained = train::RunTrain(pipeline, &source, train_options);
  if (!trained.ok()) {
    if (tracker != nullptr) tracker->Fail(trained.status());
    return trained.status();
  }
  const train::TrainResult& result = *trained;
  std::optional<TrainRegistration> registration;
  if (tracker != nullptr) {
    ASSIGN_OR_RETURN(registration, tracker->Finish(result));
  }
  if (options.json) {
    nlohmann::json steps = nlohmann::json::array();
    for (const train::StepRun& step : result.steps) {
      nlohmann::json phases = nlohmann::json::array();
      for (const train::Phase& phase : step.phases) {
        phases.push_back({{"phase", phase.name},
                          {"seconds", phase.seconds},
                          {"cpu_seconds", phase.cpu_seconds}});
      }
      steps.push_back({{"step", step.name},
                       {"key", step.key},
                       {"cached", step.cached},
                       {"seconds", step.seconds},
                       {"cpu_seconds", step.cpu_seconds},
                       {"phases", phases}});
    }
    nlohmann::json out = {
        {"steps", steps},
        {"bundle", result.bundle_dir},
        {"bundle_hash", result.bundle_hash},
        {"metrics", result.metrics},
        {"slice_metrics", result.slice_metrics},
        {"split_rows", result.split_rows},
        {"xgboost_seconds", result.xgboost_seconds},
        {"total_seconds", result.total_seconds},
        {"xgboost_cpu_seconds", result.xgboost_cpu_seconds},
        {"total_cpu_seconds", result.total_cpu_seconds},
        {"plan_seconds", result.plan_seconds},
        {"finish_seconds", result.finish_seconds},
        {"source_reads", source.SourceReads()},
        {"overhead", result.xgboost_seconds > 0
                         ? nlohmann::json(result.total_seconds / result.xgboost_seconds - 1.0)
                         : nlohmann::json(nullptr)},
        {"registry", registration ? registration->ToJson() : nlohmann::json()}};
    std::printf("%s\n", out.dump(2).c_str());
    return Status::Ok();
  }
  PrintReport(result);
  if (registration) PrintRegistration(*registration);
  return Status::Ok();
}

Status RunBundleCommand(const BundleCommandOptions& options) {
  if (options.action == "verify") {
    ASSIGN_OR_RETURN(train::BundleInfo info, train::VerifyBundle(options.bundle));
    ASSIGN_OR_RETURN(size_t golden, train::CheckGoldenCases(info));
    if (options.json) {
      std::printf("%s\n", nlohmann::json{{"bundle", info.dir},
                                         {"bundle_hash", info.hash},
                                         {"name", info.manifest["name"]},
                                         {"files", info.manifest["files"].size()},
                                         {"golden_cases", golden}}
                              .dump(2)
                              .c_str());
    } else {
      std::printf(
          "bundle %s (%s): %zu files, checksums match, %zu golden cases reproduce; "
          "bundle hash %s\n",
          info.dir.c_str(), info.manifest.value("name", std::string()).c_str(),
          info.manifest["files"].size(), golden, info.hash.c_str());
    }
    return Status::Ok();
  }
  if (options.action == "export") {
    RETURN_IF_ERROR(train::ExportBundle(options.bundle, options.archive));
    std::printf("exported %s to %s\n", options.bundle.c_str(), options.archive.c_str());
    return Status::Ok();
  }
  if (options.action == "import") {
    ASSIGN_OR_RETURN(train::BundleInfo info, train::ImportBundle(options.archive, options.bundle));
    std::printf("imported %s into %s; bundle hash %s\n", options.archive.c_str(), info.dir.c_str(),
                info.hash.c_str());
    return Status::Ok();
  }
  return InvalidArgument("bundle: unknown action '" + options.action + "'");
}

}  // namespace keel::cli
