#pragma once

// The baselines keel always trains beside XGBoost (issue 5): a constant model
// and a linear model. Both save as small JSON documents whose numbers read
// back bit-identically.

#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "train/matrix.h"
#include "train/model.h"

namespace keel::train {

// Predicts one value for every row: the training labels' mean, i.e. the prior
// probability of class 1 for binary classification. Its margin is
// log(p / (1 - p)) (+-inf for a prior of exactly 1 or 0).
// Thread-safety: immutable; safe from any thread.
class ConstantModel : public Model {
 public:
  // Errors: InvalidArgument for bad labels; FailedPrecondition for binary
  // labels of one class only (CheckLabels).
  static Result<std::unique_ptr<ConstantModel>> Train(Task task, const DenseMatrix& features,
                                                      std::span<const double> labels);
  // Errors: InvalidArgument for JSON that is not a saved constant model.
  static Result<std::unique_ptr<ConstantModel>> Load(std::string_view bytes);

  std::string_view kind() const override { return "constant"; }
  Task task() const override { return task_; }
  size_t num_features() const override { return 0; }
  double value() const { return value_; }
  // Never fails; any number of columns is accepted.
  Result<std::vector<double>> Predict(const DenseMatrix& features) const override;
  Result<std::vector<double>> PredictMargin(const DenseMatrix& features) const override;
  Result<std::string> Save() const override;

 private:
  ConstantModel(Task task, double value) : task_(task), value_(value) {}
  Task task_;
  double value_;
};

// Linear model options.
struct LinearParams {
  Task task = Task::kBinaryClassification;
  // L2 penalty (lambda / 2) * ||w||^2 on the coefficients, never on the
  // intercept, added to the SUM of per-row losses. The default 1.0 is
  // scikit-learn's default for both models: LogisticRegression(C=1.0) (lambda =
  // 1 / C) and Ridge(alpha=1.0) (lambda = alpha). 0 gives plain least squares
  // (LinearRegression); logistic regression needs lambda > 0 to stay finite on
  // separable data.
  double l2 = 1.0;
};

// Logistic regression (binary) or ridge / least squares (regression).
// Solver, deterministic: columns are centred first (the intercept absorbs the
// means, which changes nothing because it is not penalised). Least squares
// solves the normal equations (X'X + lambda I) w = X'y by Cholesky.
// Logistic regression runs Newton-Raphson (IRLS) from zero with step halving
// until no coefficient moves by more than 1e-10 (relative to the largest,
// at least 1), at most 100 steps.
// Input must be complete: NaN anywhere is InvalidArgument (impute first,
// transforms.h). Thread-safety: immutable; safe from any thread.
class LinearModel : public Model {
 public:
  // Errors: InvalidArgument for bad labels, NaN features or negative l2;
  // FailedPrecondition for binary labels of one class only, when the system is singular (collinear
  // columns with l2 = 0) or Newton does not converge.
  static Result<std::unique_ptr<LinearModel>> Train(const LinearParams& params,
                                                    const DenseMatrix& features,
                                                    std::span<const double> labels);
  // Errors: InvalidArgument for JSON that is not a saved linear model.
  static Result<std::unique_ptr<LinearModel>> Load(std::string_view bytes);

  std::string_view kind() const override { return "linear"; }
  Task task() const override { return task_; }
  size_t num_features() const override { return coefficients_.size(); }
  double intercept() const { return intercept_; }
  const std::vector<double>& coefficients() const { return coefficients_; }
  Result<std::vector<double>> Predict(const DenseMatrix& features) const override;
  Result<std::vector<double>> PredictMargin(const DenseMatrix& features) const override;
  Result<std::string> Save() const override;

 private:
  LinearModel(Task task, double l2, double intercept, std::vector<double> coefficients,
              std::vector<std::string> feature_names)
      : task_(task),
        l2_(l2),
        intercept_(intercept),
        coefficients_(std::move(coefficients)),
        feature_names_(std::move(feature_names)) {}

  Task task_;
  double l2_;
  double intercept_;
  std::vector<double> coefficients_;
  std::vector<std::string> feature_names_;
};

// Standardisation of the linear baseline's inputs, fitted on the training
// matrix: (x - mean) / scale per column (scale: the population standard
// deviation, 1 when it is 0), and a missing value (NaN) becomes 0, the
// training mean, since the linear model takes no NaN. The training step,
// evaluation and the serving runtime all scale through this one type.
// Thread-safety: a value type.
struct LinearScaling {
  std::vector<double> mean, scale;

  static LinearScaling Fit(const DenseMatrix& matrix);
  DenseMatrix Apply(const DenseMatrix& matrix) const;
  // {"mean": [...], "scale": [...]}.
  nlohmann::json ToJson() const;
  // Errors: InvalidArgument for JSON of another shape.
  static Result<LinearScaling> FromJson(const nlohmann::json& json);
};

}  // namespace keel::train
