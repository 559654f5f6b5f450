#include "train/runner.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>
#include <span>

#include "common/files.h"
#include "common/hash.h"
#include "train/bundle.h"
#include "train/golden.h"
#include "train/matrix.h"
#include "train/runner_steps.h"
#include "train/step_cache.h"
#include "train/table_file.h"

namespace keel::train {
namespace {

namespace fs = std::filesystem;

// The training set in the dataset step's cache entry (table_file.h).
constexpr const char* kDatasetFile = "dataset.keeltable";

std::string IndexBytes(const std::vector<uint32_t>& rows) {
  return std::string(reinterpret_cast<const char*>(rows.data()), rows.size() * sizeof(uint32_t));
}

std::vector<uint32_t> IndexFromBytes(const std::string& bytes) {
  std::vector<uint32_t> rows(bytes.size() / sizeof(uint32_t));
  if (!rows.empty()) std::memcpy(rows.data(), bytes.data(), rows.size() * sizeof(uint32_t));
  return rows;
}

Status WriteIn(const std::string& dir, const std::string& name, const std::string& bytes) {
  return WriteFileAtomically((fs::path(dir) / name).string(), bytes);
}

// CPU seconds the calling thread has used so far.
double ThreadCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

// What work run on another thread beside the steps gave, and its own time.
template <typename T>
struct Beside {
  T result;
  double seconds = 0;      // wall time of the work itself
  double cpu_seconds = 0;  // CPU time of its thread (not the other threads it started)
};

// Runs `work` on a thread of its own; the future's get() (or destruction)
// joins it.
template <typename T, typename F>
std::future<Beside<T>> StartBeside(F work) {
  return std::async(std::launch::async, [work = std::move(work)]() mutable -> Beside<T> {
    const auto start = std::chrono::steady_clock::now();
    const double start_cpu = ThreadCpuSeconds();
    T result = work();
    return Beside<T>{
        std::move(result),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
        ThreadCpuSeconds() - start_cpu};
  });
}

// One run of a pipeline: the step keys, the cache and whatever data a step
// that is not cached needs (loaded once, on first use).
class Run {
 public:
  Run(const PipelineSpec& pipeline, DatasetSource* source, const TrainOptions& options)
      : pipeline_(pipeline),
        source_(source),
        options_(options),
        cache_(options.cache_dir, options.force) {}

  Result<TrainResult> Execute();

 private:
  // Runs `body` unless the step's entry is cached; records the step. The
  // entry is committed at the end of the step, or, with `commit_later`, handed
  // to it (to finish writing and commit on another thread).
  Status Step(const std::string& name, const std::string& key,
              const std::function<Status(const std::string& dir)>& body,
              const std::function<void(PendingEntry entry)>& commit_later = nullptr);
  Result<const Prepared*> Data();
  Status LoadSplits();
  // Waits for the dataset step's training set file and entry (written in the
  // background) and adds the write's own time to the dataset step's phases;
  // no-op when there is none (any more). Errors: those of the write.
  Status FinishDatasetWrite();

  const PipelineSpec& pipeline_;
  DatasetSource* source_;
  TrainOptions options_;
  StepCache cache_;
  TrainResult result_;
  PhaseClock clock_;
  std::optional<Prepared> data_;
  std::string dataset_key_, split_key_, transforms_key_, train_key_;
  // Work beside the steps, declared last so that destroying the run joins the
  // threads before anything they use (data_, source_) goes away: the source
  // checks (started after planning when the validate step is not cached) and
  // the dataset step's training set file and commit.
  std::future<Beside<Result<nlohmann::json>>> source_checks_;
  std::future<Beside<Status>> dataset_write_;
};

Status Run::Step(const std::string& name, const std::string& key,
                 const std::function<Status(const std::string& dir)>& body,
                 const std::function<void(PendingEntry entry)>& commit_later) {
  auto start = std::chrono::steady_clock::now();
  double start_cpu = ProcessCpuSeconds();
  StepRun run{name, key, cache_.Has(name, key), 0, 0, {}};
  if (!run.cached) {
    clock_.Restart();
    Status status = [&]() -> Status {
      ASSIGN_OR_RETURN(PendingEntry entry, cache_.Begin(name, key));
      RETURN_IF_ERROR(body(entry.dir()));  // on error, `entry` removes its folder
      if (commit_later) {
        commit_later(std::move(entry));
        return Status::Ok();
      }
      return entry.Commit();
    }();
    if (!status.ok()) return status.WithContext("step " + name);
    clock_.Mark("write cache entry");
    run.phases = clock_.phases();
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.cpu_seconds = ProcessCpuSeconds() - start_cpu;
  result_.steps.push_back(run);
  return Status::Ok();
}

Status Run::FinishDatasetWrite() {
  if (!dataset_write_.valid()) return Status::Ok();
  Beside<Status> write = dataset_write_.get();
  for (StepRun& step : result_.steps) {
    if (step.name != "dataset") continue;
    step.phases.push_back({"write training set (in the background, beside later steps)",
                           write.seconds, write.cpu_seconds});
  }
  if (!write.result.ok()) return write.result.WithContext("step dataset");
  return Status::Ok();
}

Result<const Prepared*> Run::Data() {
  if (data_.has_value()) return &*data_;
  ASSIGN_OR_RETURN(std::string meta_text, cache_.Read("dataset", dataset_key_, "meta.json"));
  nlohmann::json meta = nlohmann::json::parse(meta_text);
  std::string path = (fs::path(cache_.Dir("dataset", dataset_key_)) / kDatasetFile).string();
  Prepared prepared;
  ASSIGN_OR_RETURN(prepared.dataset.table, ReadTableFile(path));
  prepared.dataset.time_column = meta["time_column"].get<std::string>();
  prepared.dataset.input_columns = meta["input_columns"].get<std::vector<std::string>>();
  data_ = std::move(prepared);
  clock_.Mark("read training set");
  return &*data_;
}

Status Run::LoadSplits() {
  ASSIGN_OR_RETURN(const Prepared* loaded, Data());
  (void)loaded;
  if (!data_->splits[0].empty() || !data_->splits[1].empty() || !data_->splits[2].empty()) {
    return Status::Ok();
  }
  const char* names[] = {"train.idx", "validation.idx", "test.idx"};
  for (int split = 0; split < 3; ++split) {
    ASSIGN_OR_RETURN(std::string bytes, cache_.Read("split", split_key_, names[split]));
    data_->splits[split] = IndexFromBytes(bytes);
  }
  clock_.Mark("read splits");
  return Status::Ok();
}

Result<TrainResult> Run::Execute() {
  const auto start = std::chrono::steady_clock::now();
  const double start_cpu = ProcessCpuSeconds();
  auto since = [](std::chrono::steady_clock::time_point from) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count();
  };
  nlohmann::json spec = nlohmann::json::parse(pipeline_.CanonicalJson());
  ASSIGN_OR_RETURN(nlohmann::json plan, source_->Plan());
  nlohmann::json dataset_params = {{"plan", plan},
                                   {"spine", spec["spine"]},
                                   {"sample", spec["sample"]},
                                   {"label", spec["label"]},
                                   {"features", spec["features"]},
                                   {"request_inputs", spec["request_inputs"]}};
  dataset_key_ = StepKey("dataset", "", dataset_params.dump());
  result_.plan_seconds = since(start);
  // The source checks do not depend on the training set: they run beside the
  // dataset step (DatasetSource allows Validate() during Build()), and the
  // validate step waits for them.
  const std::string validate_key = StepKey("validate", dataset_key_, "");
  if (!cache_.Has("validate", validate_key)) {
    source_checks_ =
        StartBeside<Result<nlohmann::json>>([source = source_] { return source->Validate(); });
  }
  RETURN_IF_ERROR(Step(
      "dataset", dataset_key_,
      [&](const std::string& dir) -> Status {
        ASSIGN_OR_RETURN(BuiltDataset built, source_->Build(&clock_));
        ASSIGN_OR_RETURN(built, OrderDataset(pipeline_, std::move(built)));
        clock_.Mark("training row order");
        nlohmann::json meta = {{"time_column", built.time_column},
                               {"input_columns", built.input_columns},
                               {"rows", built.table.num_rows()}};
        // The cache file holds the table exactly as it is in memory
        // (table_file.h), so later steps of this run use the built table itself
        // and see the very values a run on the cached dataset reads back.
        Prepared prepared;
        prepared.dataset = std::move(built);
        data_ = std::move(prepared);
        return WriteIn(dir, "meta.json", meta.dump(2));
      },
      [&](PendingEntry entry) {
        // The training set file is written on another thread while the next
        // steps run (they only read the table); the entry appears once the
        // file is whole. Joined in the train step right before XGBoost
        // (which trains alone), on any error of that step, and before the run
        // returns.
        dataset_write_ = StartBeside<Status>([table = &data_->dataset.table,
                                              entry = std::move(entry)]() mutable -> Status {
          RETURN_IF_ERROR(WriteTableFile(*table, (fs::path(entry.dir()) / kDatasetFile).string()));
          return entry.Commit();
        });
      }));

  RETURN_IF_ERROR(Step("validate", validate_key, [&](const std::string& dir) -> Status {
    nlohmann::json checks;
    if (source_checks_.valid()) {
      Beside<Result<nlohmann::json>> ran = source_checks_.get();
      clock_.Mark("wait for the source checks");
      clock_.AddBeside("source checks (ran beside the dataset step)", ran.seconds, ran.cpu_seconds);
      RETURN_IF_ERROR(ran.result.status());
      checks = std::move(ran.result).value();
    } else {
      ASSIGN_OR_RETURN(checks, source_->Validate());
      clock_.Mark("source checks");
    }
    ASSIGN_OR_RETURN(const Prepared* data, Data());
    RETURN_IF_ERROR(CheckDataset(pipeline_, data->dataset));
    return WriteIn(dir, "checks.json", checks.dump(2));
  }));
  // A validate step found cached after all (another run stored it meanwhile)
  // does not wait for its checks; they are joined (and dropped) here.
  if (source_checks_.valid()) source_checks_.wait();

  split_key_ = StepKey("split", dataset_key_, spec["split"].dump());
  RETURN_IF_ERROR(Step("split", split_key_, [&](const std::string& dir) -> Status {
    ASSIGN_OR_RETURN(const Prepared* data, Data());
    ASSIGN_OR_RETURN(data_->splits, SplitRows(pipeline_, data->dataset));
    const char* names[] = {"train.idx", "validation.idx", "test.idx"};
    for (int split = 0; split < 3; ++split) {
      RETURN_IF_ERROR(WriteIn(dir, names[split], IndexBytes(data_->splits[split])));
    }
    return Status::Ok();
  }));

  transforms_key_ = StepKey("transforms", split_key_, spec["transforms"].dump());
  RETURN_IF_ERROR(Step("transforms", transforms_key_, [&](const std::string& dir) -> Status {
    RETURN_IF_ERROR(LoadSplits());
    ASSIGN_OR_RETURN(nlohmann::json fitted, FitTransforms(pipeline_, *data_, &clock_));
    return WriteIn(dir, "transforms.json", fitted.dump(2));
  }));

  nlohmann::json train_params = {
      {"model", spec["model"]}, {"baselines", spec["baselines"]}, {"task", spec["task"]}};
  train_key_ = StepKey("train", transforms_key_, train_params.dump());
  nlohmann::json evaluate_params = {{"metrics", spec["metrics"]},
                                    {"slices", spec["slices"]},
                                    {"golden_cases", spec["golden_cases"]}};
  const std::string evaluate_key = StepKey("evaluate", train_key_, evaluate_params.dump());
  RETURN_IF_ERROR(Step("train", train_key_, [&](const std::string& dir) -> Status {
    Status trained = [&]() -> Status {
      RETURN_IF_ERROR(LoadSplits());
      ASSIGN_OR_RETURN(std::string transforms,
                       cache_.Read("transforms", transforms_key_, "transforms.json"));
      // The training set file is finished beside the matrices and baselines,
      // and joined before XGBoost, which trains alone.
      ASSIGN_OR_RETURN(TrainedModels models, TrainModels(pipeline_, *data_, transforms, &clock_,
                                                         [this] { return FinishDatasetWrite(); }));
      result_.xgboost_seconds = models.xgboost_seconds;
      result_.xgboost_cpu_seconds = models.xgboost_cpu_seconds;
      for (const BundleFile& file : models.files)
        RETURN_IF_ERROR(WriteIn(dir, file.name, file.bytes));
      clock_.Mark("write model files");
      return Status::Ok();
    }();
    // Errors in step order: a failed training set file (the dataset step's)
    // comes before whatever failed in this step before XGBoost.
    if (!trained.ok()) RETURN_IF_ERROR(FinishDatasetWrite());
    return trained;
  }));

  RETURN_IF_ERROR(FinishDatasetWrite());  // when the train step was cached

  auto read_models = [&]() -> Result<std::vector<BundleFile>> {
    std::vector<BundleFile> files;
    for (const char* name : kModelFiles) {
      ASSIGN_OR_RETURN(std::string bytes, cache_.Read("train", train_key_, name));
      files.push_back({name, std::move(bytes)});
    }
    ASSIGN_OR_RETURN(std::string transforms,
                     cache_.Read("transforms", transforms_key_, "transforms.json"));
    files.push_back({"transforms.json", std::move(transforms)});
    return files;
  };
  RETURN_IF_ERROR(Step("evaluate", evaluate_key, [&](const std::string& dir) -> Status {
    RETURN_IF_ERROR(LoadSplits());
    ASSIGN_OR_RETURN(std::vector<BundleFile> models, read_models());
    Result<std::string> margins = cache_.Read("train", train_key_, kTrainingMarginsFile);
    if (margins.ok()) models.push_back({kTrainingMarginsFile, std::move(margins).value()});
    ASSIGN_OR_RETURN(std::vector<BundleFile> outputs, Evaluate(pipeline_, *data_, models, &clock_));
    for (const BundleFile& file : outputs) RETURN_IF_ERROR(WriteIn(dir, file.name, file.bytes));
    return Status::Ok();
  }));

  nlohmann::json pinned = source_->PinnedFeatures();
  std::string bundle_key =
      StepKey("bundle", evaluate_key,
              nlohmann::json{{"name", pipeline_.name}, {"features", pinned}}.dump());
  RETURN_IF_ERROR(Step("bundle", bundle_key, [&](const std::string& dir) -> Status {
    ASSIGN_OR_RETURN(std::vector<BundleFile> files, read_models());
    for (const char* name : kEvaluateFiles) {
      ASSIGN_OR_RETURN(std::string bytes, cache_.Read("evaluate", evaluate_key, name));
      files.push_back({name, std::move(bytes)});
    }
    ASSIGN_OR_RETURN(nlohmann::json manifest, BundleManifest(pipeline_, pinned, spec, files));
    return WriteBundle((fs::path(dir) / "bundle").string(), std::move(manifest), files).status();
  }));

  const auto finish_start = std::chrono::steady_clock::now();
  std::string cached_bundle = (fs::path(cache_.Dir("bundle", bundle_key)) / "bundle").string();
  ASSIGN_OR_RETURN(BundleInfo info, VerifyBundle(cached_bundle));
  std::string out = options_.out_dir;
  if (out.empty()) out = cached_bundle;
  if (out != cached_bundle) {
    Result<BundleInfo> existing = VerifyBundle(out);
    if (!existing.ok() || existing->hash != info.hash) {
      std::error_code error;
      // Only ever replace an earlier bundle, never an unrelated folder.
      if (fs::exists(out, error) && !FileExists((fs::path(out) / "manifest.json").string())) {
        return AlreadyExists("--out " + out + " exists and is not a bundle; not replacing it");
      }
      fs::create_directories(fs::path(out).parent_path(), error);
      std::string temporary = TemporaryPathFor(out);
      fs::copy(cached_bundle, temporary, fs::copy_options::recursive, error);
      if (error) return IoError("cannot write the bundle to " + out + ": " + error.message());
      std::string old = TemporaryPathFor(out);
      fs::rename(out, old, error);
      error.clear();
      fs::rename(temporary, out, error);
      if (error) return IoError("cannot write the bundle to " + out + ": " + error.message());
      fs::remove_all(old, error);
    }
    ASSIGN_OR_RETURN(info, VerifyBundle(out));
  }
  // The bundle, read back from its files, must reproduce its golden cases.
  RETURN_IF_ERROR(CheckGoldenCases(info).status());
  result_.bundle_dir = out;
  result_.bundle_hash = info.hash;
  result_.metrics = info.manifest["metrics"];
  result_.slice_metrics = info.manifest["slice_metrics"];
  result_.split_rows = info.manifest["split_rows"];
  result_.finish_seconds = since(finish_start);
  result_.total_seconds = since(start);
  result_.total_cpu_seconds = ProcessCpuSeconds() - start_cpu;
  return result_;
}

}  // namespace

Result<TrainResult> RunTrain(const PipelineSpec& pipeline, DatasetSource* source,
                             const TrainOptions& options) {
  if (options.cache_dir.empty()) return InvalidArgument("train: no cache folder given");
  Run run(pipeline, source, options);
  Result<TrainResult> result = run.Execute();
  if (!result.ok()) return result.status().WithContext("pipeline " + pipeline.file);
  return result;
}

}  // namespace keel::train
