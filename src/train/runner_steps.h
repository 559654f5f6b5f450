#pragma once

// The work of each training step (runner.h), as plain functions over the
// training set, so the runner only orders, keys and caches them.
// Thread-safety: pure functions; safe from any thread on distinct data.

#include <array>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "train/bundle.h"
#include "train/matrix.h"
#include "train/pipeline.h"
#include "train/runner.h"
#include "train/transforms.h"

namespace keel::train {

// The training set and its three splits (row ids: train, validation, test).
struct Prepared {
  BuiltDataset dataset;
  std::array<std::vector<uint32_t>, 3> splits;
};

// Files the train step writes, and the evaluate step.
inline constexpr const char* kModelFiles[] = {"model.ubj", "baseline_constant.json",
                                              "baseline_linear.json", "linear_scaling.json",
                                              "train_report.json"};
inline constexpr const char* kEvaluateFiles[] = {"metrics.json", "profile.json",
                                                 "golden_cases.json"};
// Also in the train step's entry, not in the bundle: the kept XGBoost
// model's margins of the training rows (float32, row order), so evaluation
// need not predict the training split again.
inline constexpr const char* kTrainingMarginsFile = "training_margins.f32";

// The rows of `table` a sample keeps: row r stays when a hash of its values
// and `seed` falls below `fraction` of the hash range, so the choice depends
// on the row's content only, never on its position. fraction >= 1 keeps all.
// The rows are hashed on `threads` threads; the result does not depend on it.
// Exactly (training sets depend on it): r stays when
// static_cast<double>(Hash64(text)) < fraction * 2^64, text being
// std::to_string(seed) and, per column, '\x1f' + Column::ValueToString(r);
// a NaN fraction keeps every row.
std::vector<uint32_t> SampleRows(const table::Table& table, double fraction, uint64_t seed,
                                 int threads = 1);

// Puts the training set into the pinned training order (matrix.h) by its
// time column and the pipeline's spine keys. Errors: those of TrainingRowOrder.
Result<BuiltDataset> OrderDataset(const PipelineSpec& pipeline, BuiltDataset dataset);

// Checks that the label and every input column exist and the label is a
// numeric column without nulls. Errors: InvalidArgument naming the column.
Status CheckDataset(const PipelineSpec& pipeline, const BuiltDataset& dataset);

// Splits the rows (time cut-offs or stratified random by seed).
// Errors: FailedPrecondition for an empty training split or a binary label
// of one class in it.
Result<std::array<std::vector<uint32_t>, 3>> SplitRows(const PipelineSpec& pipeline,
                                                       const BuiltDataset& dataset);

// Fits the pipeline's transforms on the training split's inputs only.
// Returns FittedTransforms::ToJson(). Errors: those of the transforms;
// InvalidArgument for a string input left without an encoding.
Result<nlohmann::json> FitTransforms(const PipelineSpec& pipeline, const Prepared& data,
                                     PhaseClock* clock = nullptr);

// The model matrix of one split: its input columns through the fitted
// transforms, as BuildDenseMatrix(transforms.Apply(<the split's inputs>),
// <every column>) gives it. `fast` (the default) transforms only the inputs
// the transforms name and reads the others straight from the training set,
// on two threads, whenever that gives the same matrix (every transform names
// an input column, the output names are distinct); false always transforms
// the whole table (for tests). Errors: those of the transforms (with the
// split named) and of BuildDenseMatrix.
Result<DenseMatrix> SplitMatrix(const Prepared& data, int split, const FittedTransforms& transforms,
                                bool fast = true);

struct TrainedModels {
  std::vector<BundleFile> files;  // kModelFiles, then kTrainingMarginsFile
  // Wall time of XGBoost's own work (DMatrix construction and boosting with
  // early stopping), for the overhead report; never written to the bundle.
  double xgboost_seconds = 0;
  double xgboost_cpu_seconds = 0;  // process CPU time of the same span
};

// Trains XGBoost (early stopping on the validation split) and the constant
// and linear baselines on the transformed training split. The baselines train
// first, then `before_xgboost` (if set) runs, then XGBoost trains with nothing
// of keel's beside it: the runner finishes work it started in the background
// there (the training set file), so that work overlaps the baselines but
// never XGBoost. Errors come in the order of the work they stand for:
// before_xgboost's, then XGBoost's, then the baselines'.
Result<TrainedModels> TrainModels(const PipelineSpec& pipeline, const Prepared& data,
                                  const std::string& transforms_json, PhaseClock* clock = nullptr,
                                  const std::function<Status()>& before_xgboost = nullptr);

// Evaluates the three models on the test split (metrics, slices), profiles
// the training inputs and predictions and picks golden cases.
// The XGBoost model is predicted by keel's compiled trees
// (train/tree_runtime.h), the evaluator that serves it: the bundle's metrics,
// golden cases and profile are computed by the code that serves the model.
// Its outputs equal XGBoost's own (the same float sums in the same order).
// `models`: kModelFiles plus transforms.json (and kTrainingMarginsFile when
// the train step wrote it: then the training split is not predicted again).
// Returns kEvaluateFiles.
// `clock` (here and above; may be null) gets the step's phases.
Result<std::vector<BundleFile>> Evaluate(const PipelineSpec& pipeline, const Prepared& data,
                                         const std::vector<BundleFile>& models,
                                         PhaseClock* clock = nullptr);

// The bundle manifest (without "files") for the step outputs in `files`.
Result<nlohmann::json> BundleManifest(const PipelineSpec& pipeline,
                                      const nlohmann::json& pinned_features,
                                      const nlohmann::json& spec,
                                      const std::vector<BundleFile>& files);

}  // namespace keel::train
