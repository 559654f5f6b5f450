#include "train/baselines.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace keel::train {
namespace {

using nlohmann::json;

double Sigmoid(double z) {
  if (z >= 0.0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

// log(1 + e^z) without overflow.
double Softplus(double z) {
  return z > 0.0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

Result<json> ParseModelJson(std::string_view bytes, std::string_view format) {
  json document;
  try {
    document = json::parse(bytes);
  } catch (const json::exception& error) {
    return InvalidArgument(std::string("model bytes are not JSON: ") + error.what());
  }
  if (!document.is_object() || document.value("format", "") != format) {
    return InvalidArgument("model bytes are not a " + std::string(format) + " document");
  }
  return document;
}

// In-place Cholesky factorisation of the symmetric n x n matrix `a` (row-major;
// the lower triangle is used) and solve of a x = b. False when a is not
// positive definite.
bool CholeskySolve(std::vector<double>& a, std::vector<double>& b, size_t n) {
  for (size_t col = 0; col < n; ++col) {
    double diagonal = a[col * n + col];
    for (size_t k = 0; k < col; ++k) diagonal -= a[col * n + k] * a[col * n + k];
    if (!(diagonal > 0.0)) return false;
    const double root = std::sqrt(diagonal);
    a[col * n + col] = root;
    for (size_t row = col + 1; row < n; ++row) {
      double value = a[row * n + col];
      for (size_t k = 0; k < col; ++k) value -= a[row * n + k] * a[col * n + k];
      a[row * n + col] = value / root;
    }
  }
  for (size_t row = 0; row < n; ++row) {  // L y = b
    double value = b[row];
    for (size_t k = 0; k < row; ++k) value -= a[row * n + k] * b[k];
    b[row] = value / a[row * n + row];
  }
  for (size_t row = n; row-- > 0;) {  // L' x = y
    double value = b[row];
    for (size_t k = row + 1; k < n; ++k) value -= a[k * n + row] * b[k];
    b[row] = value / a[row * n + row];
  }
  return true;
}

// The features as centred doubles (row-major) and their column means.
struct Centred {
  std::vector<double> values;
  std::vector<double> means;
};

Result<Centred> CentreColumns(const DenseMatrix& features) {
  Centred out;
  out.means.assign(features.cols, 0.0);
  for (size_t row = 0; row < features.rows; ++row) {
    for (size_t col = 0; col < features.cols; ++col) {
      const float value = features.at(row, col);
      if (std::isnan(value)) {
        return InvalidArgument("feature '" +
                               (col < features.feature_names.size() ? features.feature_names[col]
                                                                    : std::to_string(col)) +
                               "' is missing (NaN) in row " + std::to_string(row) +
                               "; the linear model needs imputed input");
      }
      out.means[col] += value;
    }
  }
  for (double& mean : out.means) mean /= static_cast<double>(features.rows);
  out.values.resize(features.values.size());
  for (size_t row = 0; row < features.rows; ++row) {
    for (size_t col = 0; col < features.cols; ++col) {
      out.values[row * features.cols + col] = features.at(row, col) - out.means[col];
    }
  }
  return out;
}

Status CheckComplete(const DenseMatrix& features, size_t expected_cols) {
  if (features.cols != expected_cols) {
    return InvalidArgument("the model expects " + std::to_string(expected_cols) +
                           " features, the matrix has " + std::to_string(features.cols));
  }
  for (size_t index = 0; index < features.values.size(); ++index) {
    if (std::isnan(features.values[index])) {
      return InvalidArgument("feature " + std::to_string(index % features.cols) +
                             " is missing (NaN) in row " + std::to_string(index / features.cols) +
                             "; the linear model needs imputed input");
    }
  }
  return Status::Ok();
}

// Ridge / least squares on centred columns; coefficients into `beta`.
Status SolveLeastSquares(const Centred& x, size_t rows, size_t cols, std::span<const double> labels,
                         double l2, std::vector<double>* beta, double* label_mean) {
  double mean = 0.0;
  for (double label : labels) mean += label;
  mean /= static_cast<double>(rows);
  std::vector<double> gram(cols * cols, 0.0);
  std::vector<double> rhs(cols, 0.0);
  for (size_t row = 0; row < rows; ++row) {
    const double* values = x.values.data() + row * cols;
    const double target = labels[row] - mean;
    for (size_t i = 0; i < cols; ++i) {
      rhs[i] += values[i] * target;
      for (size_t j = 0; j <= i; ++j) gram[i * cols + j] += values[i] * values[j];
    }
  }
  for (size_t i = 0; i < cols; ++i) gram[i * cols + i] += l2;
  if (!CholeskySolve(gram, rhs, cols)) {
    return FailedPrecondition(
        "least squares is singular (collinear or constant columns); use l2 > 0");
  }
  *beta = std::move(rhs);
  *label_mean = mean;
  return Status::Ok();
}

// Penalised negative log-likelihood at theta = (intercept, coefficients).
double LogisticObjective(const Centred& x, size_t rows, size_t cols, std::span<const double> labels,
                         double l2, const std::vector<double>& theta) {
  double objective = 0.0;
  for (size_t row = 0; row < rows; ++row) {
    double z = theta[0];
    for (size_t col = 0; col < cols; ++col) z += theta[col + 1] * x.values[row * cols + col];
    objective += Softplus(z) - labels[row] * z;
  }
  for (size_t col = 0; col < cols; ++col) objective += 0.5 * l2 * theta[col + 1] * theta[col + 1];
  return objective;
}

Status SolveLogistic(const Centred& x, size_t rows, size_t cols, std::span<const double> labels,
                     double l2, std::vector<double>* theta_out) {
  const size_t n = cols + 1;
  std::vector<double> theta(n, 0.0);
  double objective = LogisticObjective(x, rows, cols, labels, l2, theta);
  for (int step = 0; step < 100; ++step) {
    std::vector<double> hessian(n * n, 0.0);
    std::vector<double> gradient(n, 0.0);
    std::vector<double> augmented(n);
    augmented[0] = 1.0;
    for (size_t row = 0; row < rows; ++row) {
      std::copy_n(x.values.data() + row * cols, cols, augmented.begin() + 1);
      double z = 0.0;
      for (size_t i = 0; i < n; ++i) z += theta[i] * augmented[i];
      const double p = Sigmoid(z);
      const double residual = p - labels[row];
      const double curvature = p * (1.0 - p);
      for (size_t i = 0; i < n; ++i) {
        gradient[i] += residual * augmented[i];
        for (size_t j = 0; j <= i; ++j)
          hessian[i * n + j] += curvature * augmented[i] * augmented[j];
      }
    }
    for (size_t i = 1; i < n; ++i) {
      gradient[i] += l2 * theta[i];
      hessian[i * n + i] += l2;
    }
    if (!CholeskySolve(hessian, gradient, n)) {
      return FailedPrecondition("logistic regression: singular Hessian; use l2 > 0");
    }
    const std::vector<double>& direction = gradient;  // solved in place
    double largest_move = 0.0;
    double largest_theta = 1.0;
    for (size_t i = 0; i < n; ++i) {
      largest_move = std::max(largest_move, std::abs(direction[i]));
      largest_theta = std::max(largest_theta, std::abs(theta[i]));
    }
    // Far from the optimum, step halving keeps every step a descent step. Close
    // to it, objective differences drown in rounding (a move of 1e-11 changes a
    // sum of thousands of losses by ~1e-20), so pure Newton steps are taken:
    // they converge quadratically there.
    std::vector<double> candidate(n);
    double scale = 1.0;
    for (int halving = 0; halving < 40; ++halving, scale /= 2.0) {
      for (size_t i = 0; i < n; ++i) candidate[i] = theta[i] - scale * direction[i];
      if (largest_move < 1e-4 * largest_theta) break;
      const double candidate_objective = LogisticObjective(x, rows, cols, labels, l2, candidate);
      if (candidate_objective <= objective) {
        objective = candidate_objective;
        break;
      }
    }
    theta = candidate;
    if (largest_move <= 1e-10 * largest_theta) {
      *theta_out = std::move(theta);
      return Status::Ok();
    }
  }
  return FailedPrecondition("logistic regression did not converge in 100 Newton steps");
}

}  // namespace

// ---------------------------------------------------------------------------
// ConstantModel

Result<std::unique_ptr<ConstantModel>> ConstantModel::Train(Task task, const DenseMatrix& features,
                                                            std::span<const double> labels) {
  RETURN_IF_ERROR(CheckLabels(task, features, labels));
  double sum = 0.0;
  for (double label : labels) sum += label;
  return std::unique_ptr<ConstantModel>(
      new ConstantModel(task, sum / static_cast<double>(labels.size())));
}

Result<std::unique_ptr<ConstantModel>> ConstantModel::Load(std::string_view bytes) {
  ASSIGN_OR_RETURN(json document, ParseModelJson(bytes, "keel-constant-1"));
  try {
    ASSIGN_OR_RETURN(Task task, ParseTask(document.at("task").get<std::string>()));
    return std::unique_ptr<ConstantModel>(
        new ConstantModel(task, document.at("value").get<double>()));
  } catch (const json::exception& error) {
    return InvalidArgument(std::string("bad constant model: ") + error.what());
  }
}

Result<std::vector<double>> ConstantModel::Predict(const DenseMatrix& features) const {
  return std::vector<double>(features.rows, value_);
}

Result<std::vector<double>> ConstantModel::PredictMargin(const DenseMatrix& features) const {
  const double margin =
      task_ == Task::kBinaryClassification ? std::log(value_ / (1.0 - value_)) : value_;
  return std::vector<double>(features.rows, margin);
}

Result<std::string> ConstantModel::Save() const {
  return json{{"format", "keel-constant-1"}, {"task", TaskName(task_)}, {"value", value_}}.dump();
}

// ---------------------------------------------------------------------------
// LinearModel

Result<std::unique_ptr<LinearModel>> LinearModel::Train(const LinearParams& params,
                                                        const DenseMatrix& features,
                                                        std::span<const double> labels) {
  if (!(params.l2 >= 0.0) || !std::isfinite(params.l2)) {
    return InvalidArgument("l2 must be a finite number >= 0");
  }
  RETURN_IF_ERROR(CheckLabels(params.task, features, labels));
  if (features.cols == 0) return InvalidArgument("the linear model needs at least one feature");
  ASSIGN_OR_RETURN(Centred centred, CentreColumns(features));
  std::vector<double> coefficients;
  double intercept = 0.0;
  if (params.task == Task::kRegression) {
    RETURN_IF_ERROR(SolveLeastSquares(centred, features.rows, features.cols, labels, params.l2,
                                      &coefficients, &intercept));
  } else {
    std::vector<double> theta;
    RETURN_IF_ERROR(
        SolveLogistic(centred, features.rows, features.cols, labels, params.l2, &theta));
    intercept = theta[0];
    coefficients.assign(theta.begin() + 1, theta.end());
  }
  // Undo the centring: w'(x - m) + c = w'x + (c - w'm).
  for (size_t col = 0; col < features.cols; ++col) {
    intercept -= coefficients[col] * centred.means[col];
  }
  return std::unique_ptr<LinearModel>(new LinearModel(
      params.task, params.l2, intercept, std::move(coefficients), features.feature_names));
}

Result<std::unique_ptr<LinearModel>> LinearModel::Load(std::string_view bytes) {
  ASSIGN_OR_RETURN(json document, ParseModelJson(bytes, "keel-linear-1"));
  try {
    ASSIGN_OR_RETURN(Task task, ParseTask(document.at("task").get<std::string>()));
    auto coefficients = document.at("coefficients").get<std::vector<double>>();
    auto names = document.at("feature_names").get<std::vector<std::string>>();
    return std::unique_ptr<LinearModel>(new LinearModel(task, document.at("l2").get<double>(),
                                                        document.at("intercept").get<double>(),
                                                        std::move(coefficients), std::move(names)));
  } catch (const json::exception& error) {
    return InvalidArgument(std::string("bad linear model: ") + error.what());
  }
}

Result<std::vector<double>> LinearModel::PredictMargin(const DenseMatrix& features) const {
  RETURN_IF_ERROR(CheckComplete(features, coefficients_.size()));
  std::vector<double> out(features.rows);
  for (size_t row = 0; row < features.rows; ++row) {
    double z = intercept_;
    for (size_t col = 0; col < features.cols; ++col) {
      z += coefficients_[col] * static_cast<double>(features.at(row, col));
    }
    out[row] = z;
  }
  return out;
}

Result<std::vector<double>> LinearModel::Predict(const DenseMatrix& features) const {
  ASSIGN_OR_RETURN(std::vector<double> out, PredictMargin(features));
  if (task_ == Task::kBinaryClassification) {
    for (double& value : out) value = Sigmoid(value);
  }
  return out;
}

Result<std::string> LinearModel::Save() const {
  return json{{"format", "keel-linear-1"},
              {"task", TaskName(task_)},
              {"l2", l2_},
              {"intercept", intercept_},
              {"coefficients", coefficients_},
              {"feature_names", feature_names_}}
      .dump();
}

LinearScaling LinearScaling::Fit(const DenseMatrix& matrix) {
  LinearScaling scaling{std::vector<double>(matrix.cols, 0.0),
                        std::vector<double>(matrix.cols, 1.0)};
  for (size_t col = 0; col < matrix.cols; ++col) {
    double sum = 0, sum_sq = 0;
    size_t count = 0;
    for (size_t row = 0; row < matrix.rows; ++row) {
      double value = matrix.at(row, col);
      if (std::isnan(value)) continue;
      sum += value;
      ++count;
    }
    if (count == 0) continue;
    double mean = sum / count;
    for (size_t row = 0; row < matrix.rows; ++row) {
      double value = matrix.at(row, col);
      if (!std::isnan(value)) sum_sq += (value - mean) * (value - mean);
    }
    double std = std::sqrt(sum_sq / count);
    scaling.mean[col] = mean;
    scaling.scale[col] = std > 0 ? std : 1.0;
  }
  return scaling;
}

DenseMatrix LinearScaling::Apply(const DenseMatrix& matrix) const {
  DenseMatrix out = matrix;
  for (size_t row = 0; row < out.rows; ++row) {
    for (size_t col = 0; col < out.cols; ++col) {
      float& value = out.values[row * out.cols + col];
      value = std::isnan(value) ? 0.0f : static_cast<float>((value - mean[col]) / scale[col]);
    }
  }
  return out;
}

nlohmann::json LinearScaling::ToJson() const { return {{"mean", mean}, {"scale", scale}}; }

Result<LinearScaling> LinearScaling::FromJson(const nlohmann::json& json) {
  try {
    LinearScaling out{json.at("mean").get<std::vector<double>>(),
                      json.at("scale").get<std::vector<double>>()};
    if (out.mean.size() != out.scale.size()) {
      return InvalidArgument("linear scaling: mean and scale differ in length");
    }
    return out;
  } catch (const nlohmann::json::exception& error) {
    return InvalidArgument(std::string("linear scaling: ") + error.what());
  }
}

}  // namespace keel::train
