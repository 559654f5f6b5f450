#pragma once

// The training pipeline runner behind `keel train`: the steps
//
//   dataset -> validate -> split -> transforms -> train -> evaluate -> bundle
//
// each cached under `cache_dir/<step>/<key>/` where the key is a content hash
// of the step's inputs (the previous step's key), its own parameters and the
// code version. A step whose key is cached does no work; every step writes to
// a temporary folder and renames it into place, so an interrupted run leaves
// no half-written entry.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "table/column.h"
#include "train/phase_clock.h"
#include "train/pipeline.h"

namespace keel::train {

// A training set as the dataset step gets it: spine columns, the label,
// request inputs and the view features, one row per spine row.
struct BuiltDataset {
  table::Table table;
  std::string time_column;
  // The model's raw inputs, in order: request inputs, then view features.
  std::vector<std::string> input_columns;
};

// Where training sets come from: the feature layer's offline engine, wired by
// the CLI (the runner does not open repositories). Thread-safety: used from
// one thread, with one exception: after Plan() returns, Validate() may run on
// another thread at the same time as Build() (the runner checks the sources
// while it builds the training set), so an implementation must not share
// mutable state (e.g. a database connection) between the two.
class DatasetSource {
 public:
  virtual ~DatasetSource() = default;
  // Everything the training set depends on, cheap to compute: the pinned
  // (view, version) pairs, fingerprints of the source data, the spine. Called
  // once, before any other method. Errors: NotFound for unknown views,
  // services or sources; IoError for unreadable data.
  virtual Result<nlohmann::json> Plan() = 0;
  // The feature references the plan pinned, for the bundle: [{view, version, ...}].
  virtual nlohmann::json PinnedFeatures() const = 0;
  // Runs the data checks of the sources the training set reads. Returns their
  // summary. May run concurrently with Build() (see above). Errors:
  // FailedPrecondition when a check fails at error level.
  virtual Result<nlohmann::json> Validate() = 0;
  // Builds the training set, marking its phases on `clock` (may be null).
  // Errors: those of the offline engine.
  virtual Result<BuiltDataset> Build(PhaseClock* clock) = 0;
};

struct TrainOptions {
  std::string cache_dir;  // e.g. <repo>/.keel/cache
  // Where the bundle is copied (an earlier bundle there is replaced; any
  // other existing folder is refused); empty: it stays in the bundle step's
  // cache entry, <cache_dir>/bundle/<key>/bundle.
  std::string out_dir;
  bool force = false;  // rerun every step (and replace its cache entry)
};

// One step as it ran.
struct StepRun {
  std::string name;
  std::string key;
  bool cached = false;
  double seconds = 0;
  double cpu_seconds = 0;  // process CPU time (all threads)
  // Where the time of a step that ran went (empty for a cached step). Phases
  // whose name says they ran beside other work ("source checks (ran beside
  // the dataset step)", "write training set (in the background, ...)") give
  // the own time of work done on another thread, which overlaps other phases
  // and is not part of `seconds`; the time the step waited for such work is
  // its own phase ("wait for ...").
  std::vector<Phase> phases;
};

// What a run produced; the hook for registration: a verified bundle at
// `bundle_dir` with `bundle_hash`.
struct TrainResult {
  std::vector<StepRun> steps;
  std::string bundle_dir;
  std::string bundle_hash;
  nlohmann::json metrics;        // {"model": {...}, "constant": {...}, "linear": {...}} on test
  nlohmann::json slice_metrics;  // {column: [{value, count, model: {...}, ...}]}
  nlohmann::json split_rows;     // {"train": n, "validation": n, "test": n}
  // When the train step ran in this run: XGBoost's own time in it (DMatrix
  // and boosting), to set against the run's total (issue 5's overhead); 0
  // when the step was cached.
  double xgboost_seconds = 0;
  double xgboost_cpu_seconds = 0;  // the same span's process CPU time
  // Wall time of the whole run: the steps plus planning (source
  // fingerprints, pinned versions) and finishing (bundle verification, copy
  // to the output folder, golden cases).
  double total_seconds = 0;
  double total_cpu_seconds = 0;
  double plan_seconds = 0;
  double finish_seconds = 0;
};

// Runs the pipeline. When the validate step is not cached, the source checks
// run on a second thread beside the dataset step; the dataset step's training
// set file is written (and its entry committed) on a second thread beside the
// validate, split and transforms steps and the train step's matrices and
// baselines, and finished before XGBoost trains.
// Every thread is joined before RunTrain returns; errors are reported in step
// order (a failed build before failed checks). Errors: InvalidArgument naming the pipeline file for
// a label or feature column the training set lacks, a string input without an encoding transform;
// FailedPrecondition for an empty training split, a label of one class in the training split or
// failed source checks; those of the source, transforms and models, with the step named.
Result<TrainResult> RunTrain(const PipelineSpec& pipeline, DatasetSource* source,
                             const TrainOptions& options);

}  // namespace keel::train
