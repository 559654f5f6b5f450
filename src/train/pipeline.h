#pragma once

// A training pipeline as declared in YAML (`keel train PIPELINE.yaml`):
//
//   name: flight_delay                 # the model's name
//   task: binary                       # binary | regression (default binary)
//   spine:
//     source: flight_spine             # a source name, a data file or SQL
//     time: date                       # optional: the spine's time column
//     keys: [origin, destination]      # row-order tie-breakers (matrix.h)
//   sample: {fraction: 0.2, seed: 7}   # optional: keep this share of spine rows
//   label: delayed                     # a spine column, or {expression: "delay > 15"}
//   features:
//     service: flight_delay            # a feature service, and/or
//     views: ["origin_delay@2", "airport_info(iata=origin) as origin"]
//   request_inputs:                    # spine columns passed through as features
//     - distance
//     - {name: hour, expression: "hour(date)"}
//   split:                             # time: test is everything after validation_until
//     kind: time
//     train_until: 2001-05-01
//     validation_until: 2001-06-01
//   # split: {kind: random, validation: 0.2, test: 0.2, seed: 1}  (stratified by label)
//   transforms:
//     - {kind: ordinal, column: origin__state}
//   model: {objective: "binary:logistic", max_depth: 6, eta: 0.1, rounds: 200,
//           early_stopping_rounds: 20, seed: 0}
//   baselines: {linear_l2: 1.0}         # constant and linear are always trained
//   metrics: {threshold: 0.5}
//   slices: [origin__state]
//   golden_cases: 5
//
// Unversioned view references mean "current" and are pinned when the pipeline
// runs. Expressions are DuckDB SQL over the spine's columns.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "features/definitions.h"
#include "features/expr.h"
#include "train/model.h"
#include "train/transforms.h"
#include "train/xgboost_model.h"

namespace keel::train {

// A spine column passed to the model as it is at request time, or computed
// from the spine's columns by an expression in keel's expression language
// (features/expr.h: e.g. "hour(date)", "day_of_week(date)").
struct RequestInput {
  std::string name;
  std::string expression;  // empty: the spine column `name`
};

// Adds the computed request inputs (those with an expression) to `table` as
// columns named after them, evaluated row by row by keel's expression
// evaluator; training and the prediction server both call this, so a request
// input is computed by one piece of code. A column of the same name is
// replaced (it must have the computed type). Errors: InvalidArgument naming
// the input for an expression that does not parse or bind to the table's
// columns, or a same-named column of another type.
Status AddRequestInputs(const std::vector<RequestInput>& inputs, table::Table* table);

// The same with the expressions parsed once (the prediction server's form).
// Thread-safety: immutable; AddTo may be called from many threads at once.
class RequestInputPlan {
 public:
  // Errors: InvalidArgument naming the input for an expression that does not parse.
  static Result<RequestInputPlan> Make(const std::vector<RequestInput>& inputs);
  // As AddRequestInputs. Errors: as AddRequestInputs.
  Status AddTo(table::Table* table) const;
  // The columns input `index`'s expression reads (none for a plain column).
  const std::vector<std::string>& referenced(size_t index) const { return referenced_[index]; }
  const std::vector<RequestInput>& inputs() const { return inputs_; }

 private:
  std::vector<RequestInput> inputs_;
  std::vector<std::optional<features::Expression>> expressions_;
  std::vector<std::vector<std::string>> referenced_;
};

enum class SplitKind { kTime, kRandom };

struct SplitSpec {
  SplitKind kind = SplitKind::kTime;
  // kTime: train is time < train_until, validation is time < validation_until,
  // test is the rest.
  Timestamp train_until = 0;
  Timestamp validation_until = 0;
  // kRandom: shares of validation and test, stratified by label, by seed.
  double validation = 0.2;
  double test = 0.2;
  uint64_t seed = 0;
};

// A parsed pipeline. Thread-safety: a value type.
struct PipelineSpec {
  std::string file;  // where it was read from ("" for text)
  std::string name;
  Task task = Task::kBinaryClassification;
  std::string spine;  // source name, file path or SQL
  std::string spine_time;
  std::vector<std::string> spine_keys;
  double sample_fraction = 1.0;
  uint64_t sample_seed = 0;
  std::string label;             // spine column name ...
  std::string label_expression;  // ... or SQL over the spine (then label is "label")
  std::string service;
  std::vector<features::FeatureUse> views;
  std::vector<RequestInput> request_inputs;
  SplitSpec split;
  std::vector<TransformSpec> transforms;
  XgboostParams model;
  double linear_l2 = 1.0;
  double threshold = 0.5;
  std::vector<std::string> slices;
  int golden_cases = 5;

  // The pipeline as canonical JSON (every field, defaults included): what the
  // step cache hashes. Equal specs give equal strings.
  std::string CanonicalJson() const;
};

// Parses pipeline YAML. `file` names it in errors.
// Errors: InvalidArgument "file:line:column: field: what is wrong" for bad
// YAML, unknown or missing fields, bad values (an empty feature list, a
// validation cut-off before the training one, shares outside [0, 1), ...).
Result<PipelineSpec> ParsePipeline(const std::string& yaml, const std::string& file);

// Reads and parses a pipeline file. Errors: NotFound for a missing file; as
// ParsePipeline.
Result<PipelineSpec> LoadPipeline(const std::string& path);

}  // namespace keel::train
