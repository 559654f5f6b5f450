#pragma once

// A model bundle loaded for serving: verified, its transforms and baselines
// loaded, its XGBoost trees compiled into keel's runtime (train/tree_runtime.h).
// Everything a prediction needs beyond the online features:
//
//   request rows --(request inputs: AddRequestInputs, as in training)-->
//   raw inputs (request inputs + view features, the bundle's input_columns)
//   --(fitted transforms)--> model matrix --(scorer)--> predictions
//
// Three scorers answer to one interface: the model (compiled trees; equal to
// XGBoost's own predictions) and the two baselines trained beside it (the
// constant prior and the linear model, which also serve as fallbacks).

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "serve/row_plan.h"
#include "table/column.h"
#include "train/baselines.h"
#include "train/bundle.h"
#include "train/pipeline.h"
#include "train/transforms.h"
#include "train/tree_runtime.h"

namespace keel::serve {

enum class Scorer { kModel, kConstant, kLinear };

// "model", "constant", "linear".
std::string_view ScorerName(Scorer scorer);

// One raw input of the model and the type it had in training.
struct ModelInput {
  std::string name;
  table::DataType type = table::DataType::kDouble;
  bool from_request = false;  // a request input (else a view feature)
};

// Thread-safety: immutable once loaded; every method may be called from many
// threads at once.
class ServingModel {
 public:
  // Loads the bundle in `bundle_dir` as version `version` of model `name`
  // (0 and the manifest's name when not served from a registry).
  // Errors: those of train::VerifyBundle (a tampered bundle is refused);
  // InvalidArgument naming the file for a bundle keel cannot serve (another
  // model kind, unreadable transforms, trees the runtime does not support);
  // FailedPrecondition when the compiled trees disagree with XGBoost on the
  // bundle's golden cases.
  static Result<std::shared_ptr<const ServingModel>> Load(const std::string& bundle_dir,
                                                          std::string name = "",
                                                          int64_t version = 0);

  const std::string& name() const { return name_; }
  int64_t version() const { return version_; }
  const std::string& bundle_hash() const { return bundle_.hash; }
  const std::string& bundle_dir() const { return bundle_.dir; }
  const nlohmann::json& manifest() const { return bundle_.manifest; }
  bool binary() const { return binary_; }

  // The raw inputs in the order the transforms expect them.
  const std::vector<ModelInput>& inputs() const { return inputs_; }
  // inputs()' names, shared (the prediction log keeps one copy per model).
  const std::shared_ptr<const std::vector<std::string>>& input_names() const {
    return input_names_;
  }
  // The request inputs (spine columns or expressions over them).
  const std::vector<train::RequestInput>& request_inputs() const { return request_inputs_; }
  // The same with their expressions parsed (computed as training did).
  const train::RequestInputPlan& request_plan() const { return request_plan_; }
  // The feature references the model was trained on, pinned to their
  // versions, in keel's reference syntax ("view@version(key=column) as alias").
  const std::vector<std::string>& feature_references() const { return feature_references_; }
  // The model matrix's columns (after transforms).
  const std::vector<std::string>& model_columns() const { return model_columns_; }

  // Scores raw inputs: `inputs` holds a column per inputs() entry (by name;
  // other columns are ignored). Numeric columns of another numeric type are
  // converted; a string column where a number was trained (or the reverse)
  // is an error. Returns one prediction per row (the probability of class 1
  // for a binary model). Errors: InvalidArgument naming the input for a
  // missing column or a type mismatch; the transforms' errors (an unknown
  // category under unknown: error).
  Result<std::vector<double>> Score(const table::Table& inputs, Scorer scorer) const;

  // Scores rows of the model matrix directly (row-major, model_columns()
  // floats per row, NaN for missing), as the Open Inference Protocol's raw
  // tensors arrive. Errors: InvalidArgument for a size that is not a whole
  // number of rows.
  Result<std::vector<double>> ScoreMatrix(const std::vector<float>& values, Scorer scorer) const;

  // The model matrix of raw inputs (transforms applied). Rows go through
  // the row path (row_plan.h) when it serves the model and every input has
  // its trained type, so a batch and a one-row request share one code path;
  // otherwise, or when a row needs it (an error to name), through
  // TableMatrix. Both give the same matrix, bit for bit (tested).
  Result<train::DenseMatrix> Matrix(const table::Table& inputs) const;
  // The table path: the bundle's FittedTransforms::Apply (training's own
  // code) and train::BuildDenseMatrix, numeric inputs of another type
  // converted first. The reference the row path is tested against.
  Result<train::DenseMatrix> TableMatrix(const table::Table& inputs) const;

  // The row path (row_plan.h): one row of raw values, one per inputs() entry
  // in its order, scored by the compiled trees with no table and no
  // allocation. Writes the prediction (as Score(..., kModel) gives it for
  // that row, bit for bit) and returns true; returns false when the row path
  // does not answer the row (the model's transforms need the table path, see
  // row_path_status(), or the table path would answer it with an error): the
  // caller asks Score, which answers or names the error.
  bool ScoreRow(std::span<const RowValue> inputs, double* prediction) const;
  // The model row ScoreRow scores (model_columns().size() floats into
  // `out`), with the same answer; for tests and the prediction log.
  bool RowMatrix(std::span<const RowValue> inputs, float* out) const;
  // OK when the row path serves this model; else why not.
  const Status& row_path_status() const { return row_path_status_; }

 private:
  ServingModel() = default;
  Result<std::vector<double>> ScoreDense(const train::DenseMatrix& matrix, Scorer scorer) const;

  std::string name_;
  int64_t version_ = 0;
  train::BundleInfo bundle_;
  bool binary_ = true;
  std::vector<ModelInput> inputs_;
  std::shared_ptr<const std::vector<std::string>> input_names_;
  std::vector<train::RequestInput> request_inputs_;
  train::RequestInputPlan request_plan_;
  std::vector<std::string> feature_references_;
  std::vector<std::string> model_columns_;
  train::FittedTransforms transforms_;
  std::optional<RowTransformPlan> row_plan_;  // reads transforms_
  Status row_path_status_;
  train::CompiledTrees trees_;
  std::unique_ptr<train::Model> constant_;
  std::unique_ptr<train::Model> linear_;
  train::LinearScaling linear_scaling_;
};

}  // namespace keel::serve
