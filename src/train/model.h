#pragma once

// The model interface every trained model answers to: XGBoost
// (xgboost_model.h) and the baselines trained beside it (baselines.h). The
// registry stores a model as (kind, bytes); the serving runtime loads it back
// through LoadModel.

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "train/matrix.h"

namespace keel::train {

// What a model predicts. Binary labels are 0 / 1; regression labels are reals.
enum class Task { kBinaryClassification, kRegression };

// "binary" / "regression".
std::string_view TaskName(Task task);
// Inverse of TaskName. Errors: InvalidArgument naming the accepted values.
Result<Task> ParseTask(std::string_view name);

// Checks labels for `task`: non-empty, one per matrix row, finite, and 0 / 1
// for binary classification. Training labels (`training`) of a binary task
// must also hold both classes; validation labels need not.
// Errors: InvalidArgument naming the row; FailedPrecondition for training
// labels of one class only ("all 0" / "all 1").
Status CheckLabels(Task task, const DenseMatrix& features, std::span<const double> labels,
                   bool training = true);

// A trained model. Immutable once built.
// Thread-safety: every const method may be called from many threads at once.
class Model {
 public:
  virtual ~Model() = default;

  // "xgboost", "constant" or "linear": the kind LoadModel expects with Save()'s bytes.
  virtual std::string_view kind() const = 0;
  virtual Task task() const = 0;
  // Columns the model expects (0: any number, the constant model).
  virtual size_t num_features() const = 0;

  // One prediction per row of `features`: the probability of class 1 for binary
  // classification, the predicted value for regression. Missing values (NaN)
  // are handled as each model documents.
  // Errors: InvalidArgument when features.cols != num_features() (unless 0) or
  // for input the model cannot use (NaN for the linear model); Internal for a
  // failure inside a library.
  virtual Result<std::vector<double>> Predict(const DenseMatrix& features) const = 0;

  // As Predict, in margin space: the log-odds for binary classification (the
  // raw score before the sigmoid), equal to Predict for regression.
  virtual Result<std::vector<double>> PredictMargin(const DenseMatrix& features) const = 0;

  // The model as bytes that LoadModel(kind(), bytes) turns back into an equal
  // model: XGBoost's own format (UBJSON by default) for "xgboost", JSON for the
  // baselines. The same model always gives the same bytes.
  // Errors: Internal for a failure inside a library.
  virtual Result<std::string> Save() const = 0;
};

// Loads a model saved by Model::Save. Errors: InvalidArgument for an unknown
// kind or bytes that do not hold a model of that kind (with the library's message).
Result<std::unique_ptr<Model>> LoadModel(std::string_view kind, std::string_view bytes);

}  // namespace keel::train
