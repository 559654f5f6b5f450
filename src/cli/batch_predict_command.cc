// `keel batch-predict`: scores a spine with point-in-time features from the
// offline engine, through the same serving model (transforms + compiled trees)
// the prediction server runs.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/registry_commands.h"
#include "common/files.h"
#include "common/progress.h"
#include "features/catalog.h"
#include "features/definitions.h"
#include "features/offline_engine.h"
#include "registry/registry.h"
#include "serve/serving_model.h"
#include "table/duckdb_bridge.h"
#include "train/matrix.h"
#include "train/pipeline.h"

namespace keel::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kRowColumn = "__keel_batch_row";

// Where --model / --bundle point: the bundle folder, the model's name and its
// registry version (0 for a bundle given directly).
struct ModelSource {
  std::string dir;
  std::string name;
  int64_t version = 0;
};

Result<ModelSource> LocateModel(const BatchPredictOptions& options,
                                const features::RepoConfig& config) {
  std::string name = options.model;
  std::string version_text;
  if (size_t at = name.find('@'); at != std::string::npos) {
    version_text = name.substr(at + 1);
    name = name.substr(0, at);
    if (name.empty() || version_text.empty()) {
      return InvalidArgument("--model '" + options.model + "': expected NAME or NAME@VERSION");
    }
  }
  if (!options.bundle.empty()) {
    if (!version_text.empty()) {
      return InvalidArgument("--model '" + options.model +
                             "': a version comes from the registry; with --bundle give NAME only");
    }
    if (!fs::is_directory(options.bundle)) {
      return NotFound("--bundle: no such folder: " + options.bundle);
    }
    return ModelSource{fs::absolute(options.bundle).string(), name, 0};
  }
  if (name.empty())
    return InvalidArgument("batch-predict: give --model NAME[@VERSION] or --bundle");
  int64_t version = 0;
  if (!version_text.empty()) {
    char* end = nullptr;
    long long parsed = std::strtoll(version_text.c_str(), &end, 10);
    if (*end != '\0' || parsed <= 0) {
      return InvalidArgument("--model '" + options.model +
                             "': the version must be a positive integer");
    }
    version = parsed;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<registry::Registry> registry, OpenRepoRegistry(config));
  if (version == 0) {
    Result<registry::RegisteredModel> model = registry->GetModel(name);
    if (!model.ok()) return model.status().WithContext("--model");
    if (!model->production_version) {
      return FailedPrecondition("--model: model '" + name +
                                "' has no production version (give NAME@VERSION)");
    }
    version = *model->production_version;
  }
  Result<registry::ModelVersion> found = registry->GetModelVersion(name, version);
  if (!found.ok()) return found.status().WithContext("--model");
  std::string dir = found->lineage.bundle_uri;
  if (dir.rfind("file://", 0) == 0) dir = dir.substr(7);
  return ModelSource{dir, name, found->version};
}

// Rows done out of all, on stderr: the shared bar (common/progress.h) on a
// terminal; elsewhere (a log, which the bar leaves alone) a line per update.
// Thread-safety: one thread.
class BatchProgress {
 public:
  explicit BatchProgress(bool enabled) : enabled_(enabled), tty_(isatty(STDERR_FILENO) != 0) {}

  void Update(size_t done, size_t total) {
    if (!enabled_) return;
    if (tty_) {
      if (!bar_) bar_.emplace("batch-predict", total);
      bar_->Update(done);
      if (done == total) bar_->Finish();
      return;
    }
    double share = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
    std::fprintf(stderr, "batch-predict: %zu/%zu rows (%.0f%%)\n", done, total, 100 * share);
  }

 private:
  bool enabled_;
  bool tty_;
  std::optional<keel::ProgressBar> bar_;
};

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Result<std::vector<double>> PredictOffline(const serve::ServingModel& model,
                                           const features::RepoConfig& config,
                                           features::Catalog* catalog, table::DuckDb* duckdb,
                                           const table::Table& spine,
                                           const std::string& time_column,
                                           const OfflinePredictOptions& options) {
  if (spine.num_rows() == 0) return InvalidArgument("spine: no rows to score");
  if (spine.FindColumn(time_column) < 0) {
    return InvalidArgument("spine: no time column '" + time_column +
                           "' (columns: " + spine.SchemaToString() + ")");
  }
  // The pinned views, exactly as the bundle names them.
  std::vector<std::pair<features::FeatureUse, features::ViewVersionInfo>> uses;
  for (const std::string& reference : model.feature_references()) {
    Result<std::vector<features::FeatureUse>> parsed = features::ParseFeatureUses(reference);
    if (!parsed.ok()) return parsed.status().WithContext("bundle feature '" + reference + "'");
    for (features::FeatureUse& use : *parsed) {
      Result<features::ViewVersionInfo> info = catalog->Resolve(use.view, use.version);
      if (!info.ok()) {
        return info.status().WithContext("bundle feature '" + reference + "' (run keel apply?)");
      }
      uses.push_back({std::move(use), std::move(info).value()});
    }
  }
  features::OfflineEngine engine(config, duckdb, options.threads);
  size_t chunk_rows = std::max<size_t>(1, options.chunk_rows);
  std::vector<double> predictions(spine.num_rows(), 0.0);
  if (options.progress) options.progress(0, spine.num_rows());
  for (size_t begin = 0; begin < spine.num_rows(); begin += chunk_rows) {
    size_t end = std::min(spine.num_rows(), begin + chunk_rows);
    std::vector<uint32_t> ids;
    ids.reserve(end - begin);
    for (size_t row = begin; row < end; ++row) ids.push_back(static_cast<uint32_t>(row));
    table::Table chunk = train::GatherRows(spine, ids);
    table::Column row_ids(table::DataType::kInt64, 0);
    for (uint32_t id : ids) row_ids.AppendInt64(id);
    RETURN_IF_ERROR(chunk.AddColumn(kRowColumn, std::move(row_ids)));
    // Request inputs through keel's expression evaluator, as in training and
    // in the prediction server.
    for (const train::RequestInput& input : model.request_inputs()) {
      if (input.expression.empty() && chunk.FindColumn(input.name) < 0) {
        return InvalidArgument(
            "spine: no column '" + input.name +
            "', a request input of the model (columns: " + spine.SchemaToString() + ")");
      }
    }
    Status added = train::AddRequestInputs(model.request_inputs(), &chunk);
    if (!added.ok()) return added.WithContext("spine");
    std::vector<features::ResolvedUse> resolved;
    for (const auto& [use, info] : uses) {
      Result<features::ResolvedUse> item =
          features::ResolveUse(use, info.definition, info.version, chunk.fields());
      if (!item.ok()) return item.status().WithContext("spine");
      resolved.push_back(std::move(item).value());
    }
    ASSIGN_OR_RETURN(table::Table built, engine.Build(std::move(chunk), time_column, resolved));
    ASSIGN_OR_RETURN(std::vector<double> scores, model.Score(built, serve::Scorer::kModel));
    ASSIGN_OR_RETURN(const table::Column* built_ids, built.GetColumn(kRowColumn));
    if (scores.size() != built.num_rows() || built_ids->size() != built.num_rows()) {
      return Internal("batch-predict: " + std::to_string(scores.size()) + " scores for " +
                      std::to_string(built.num_rows()) + " rows");
    }
    for (size_t row = 0; row < built.num_rows(); ++row) {
      predictions[static_cast<size_t>(built_ids->ints()[row])] = scores[row];
    }
    if (options.progress) options.progress(end, spine.num_rows());
  }
  return predictions;
}

Status RunBatchPredict(const BatchPredictOptions& options) {
  auto start = std::chrono::steady_clock::now();
  if (options.model.empty() && options.bundle.empty()) {
    return InvalidArgument("batch-predict: give --model NAME[@VERSION] or --bundle DIR");
  }
  fs::path out_dir = fs::absolute(options.out).parent_path();
  if (!fs::is_directory(out_dir)) {
    return NotFound("--out: folder " + out_dir.string() + " does not exist");
  }
  if (fs::is_directory(options.out)) {
    return InvalidArgument("--out: " + options.out + " is a folder; name a .parquet file");
  }
  ASSIGN_OR_RETURN(features::RepoConfig config, features::LoadRepoConfig(options.repo.repo));
  ASSIGN_OR_RETURN(ModelSource source, LocateModel(options, config));
  Result<std::shared_ptr<const serve::ServingModel>> loaded_model =
      serve::ServingModel::Load(source.dir, source.name, source.version);
  if (!loaded_model.ok()) return loaded_model.status().WithContext("--model");
  const serve::ServingModel& model = **loaded_model;
  ASSIGN_OR_RETURN(std::unique_ptr<features::Catalog> catalog,
                   features::Catalog::Open(config.catalog_path));
  ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open(options.threads));
  ASSIGN_OR_RETURN(LoadedSpine spine,
                   LoadSpine(options.spine, options.spine_time, options.repo.repo, duckdb.get()));
  if (spine.table.FindColumn("prediction") >= 0) {
    return InvalidArgument("spine: already has a column 'prediction' (rename it in a SQL spine)");
  }
  BatchProgress bar(!options.quiet);
  OfflinePredictOptions predict_options;
  predict_options.chunk_rows = options.chunk_rows;
  predict_options.threads = options.threads;
  predict_options.progress = [&bar](size_t done, size_t total) { bar.Update(done, total); };
  ASSIGN_OR_RETURN(std::vector<double> predictions,
                   PredictOffline(model, config, catalog.get(), duckdb.get(), spine.table,
                                  spine.time_column, predict_options));

  table::Table out = std::move(spine.table);
  table::Column column(table::DataType::kDouble, 0);
  column.Reserve(predictions.size());
  for (double value : predictions) column.AppendDouble(value);
  RETURN_IF_ERROR(out.AddColumn("prediction", std::move(column)));
  nlohmann::json metadata = {{"model", model.name()},
                             {"version", model.version()},
                             {"bundle", model.bundle_dir()},
                             {"bundle_hash", model.bundle_hash()},
                             {"features", model.feature_references()},
                             {"spine", options.spine},
                             {"time_column", spine.time_column},
                             {"rows", out.num_rows()},
                             {"code_version", std::string(CodeVersion())}};
  RETURN_IF_ERROR(duckdb->WriteParquet(out, options.out, {{"keel", metadata.dump()}}));
  double seconds = Since(start);
  if (options.json) {
    nlohmann::json summary = metadata;
    summary["out"] = options.out;
    summary["seconds"] = seconds;
    std::printf("%s\n", summary.dump(2).c_str());
  } else {
    std::printf("predictions of %s (version %lld, bundle %s): %zu rows -> %s in %.2f s\n",
                model.name().c_str(), static_cast<long long>(model.version()),
                model.bundle_hash().substr(0, 12).c_str(), out.num_rows(), options.out.c_str(),
                seconds);
  }
  return Status::Ok();
}

}  // namespace keel::cli
