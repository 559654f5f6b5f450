#include "train/baselines.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

namespace keel::train {
namespace {

using nlohmann::json;

double Sigmoid(double z) {
  if (z >= 0.0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
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

// The column means of `features` (each summed in row order). Errors: InvalidArgument
// naming the first NaN in row-major order.
Result<std::vector<double>> ColumnMeans(const DenseMatrix& features) {
  std::vector<double> means(features.cols, 0.0);
  for (size_t row = 0; row < features.rows; ++row) {
    const float* values = features.values.data() + row * features.cols;
    for (size_t col = 0; col < features.cols; ++col) {
      const float value = values[col];
      if (std::isnan(value)) {
        return InvalidArgument("feature '" +
                               (col < features.feature_names.size() ? features.feature_names[col]
                                                                    : std::to_string(col)) +
                               "' is missing (NaN) in row " + std::to_string(row) +
                               "; the linear model needs imputed input");
      }
      means[col] += value;
    }
  }
  for (double& mean : means) mean /= static_cast<double>(features.rows);
  return means;
}

Result<Centred> CentreColumns(const DenseMatrix& features) {
  Centred out;
  ASSIGN_OR_RETURN(out.means, ColumnMeans(features));
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

// ---------------------------------------------------------------------------
// Logistic regression by Newton-Raphson (IRLS).
//
// The arithmetic is fixed (the saved coefficients must not change between
// keel versions): with a_r = (1, x_r - means) the centred augmented row,
//   z_r = theta_0 + sum_c theta_(c+1) a_r(c+1)   (left to right)
//   p_r = sigmoid(z_r), gradient_i = sum_r (p_r - y_r) a_ri,
//   hessian_ij = sum_r (p_r (1 - p_r) a_ri) a_rj   (j <= i),
// every sum in row order. What is free is everything else: the centred
// values are computed on the fly from the float matrix (no centred copy),
// the products of one row are vectorised across entries (j, or i for the
// gradient) and z across rows (each lane still sums its own row left to
// right), the running sums stay in registers over a chunk of rows, the
// objective at a candidate and the gradient and Hessian there come from one
// pass over the rows (used by the next Newton step when the candidate is
// kept), and two threads share that pass: one computes z, the losses (summed
// in row order) and the row weights and takes a share of the Hessian, the
// other follows it with the rest. Every number is the one the plain loops
// give, bit for bit (model_test.cc keeps the plain loops to check).

// Four doubles, as GCC vector extensions: the "default" clone compiles them
// to SSE2 pairs, the "avx2" clone to one register.
typedef double Double4 __attribute__((vector_size(32)));

constexpr size_t kChunkRows = 256;

inline size_t PaddedWidth(size_t n) { return (n + 7) / 8 * 8; }

// Runs work(0) on a new thread and work(1) on this one; returns when both end.
template <typename Work>
void OnTwoThreads(const Work& work) {
  std::thread other([&work] { work(0); });
  work(1);
  other.join();
}

// The centred augmented rows [first, first + count) of `x`, row-major with
// `width` doubles a row: 1, then x - mean per column, then zeros; with
// `weights` (indexed by row), also `scaled`: each row's values times its weight.
__attribute__((target_clones("avx2", "default"))) void AugmentedRows(
    const float* __restrict values, size_t cols, const double* __restrict means,
    const double* __restrict weights, size_t first, size_t count, size_t width,
    double* __restrict out, double* __restrict scaled) {
  for (size_t k = 0; k < count; ++k) {
    const float* __restrict row = values + (first + k) * cols;
    double* __restrict target = out + k * width;
    target[0] = 1.0;
    for (size_t col = 0; col < cols; ++col) target[col + 1] = row[col] - means[col];
    for (size_t col = cols + 1; col < width; ++col) target[col] = 0.0;
    if (weights == nullptr) continue;
    const double weight = weights[first + k];
    double* __restrict scaled_row = scaled + k * width;
    for (size_t col = 0; col < width; ++col) scaled_row[col] = weight * target[col];
  }
}

// Accumulates, over `count` augmented rows (`rows`, `width` doubles each;
// `scaled` holds weight_k * a_ki for the same rows), hessian[i][j] +=
// scaled_ki * a_kj for the i's of the 4-row groups [group_begin, group_end)
// and the 8-column blocks of j up to each group's last i (the entries above
// the diagonal are computed and never used). Each entry sums the rows in
// order; its running sum stays in a register over the chunk. `hessian` is
// width x width, row-major; width is a multiple of 8.
__attribute__((target_clones("avx2", "default"))) void AccumulateHessian(
    const double* rows, const double* scaled, size_t count, size_t width, size_t group_begin,
    size_t group_end, double* hessian) {
  for (size_t group = group_begin; group < group_end; ++group) {
    const size_t i0 = group * 4;
    for (size_t j0 = 0; j0 <= i0 + 3; j0 += 8) {
      Double4 low[4], high[4];
      for (size_t ii = 0; ii < 4; ++ii) {
        std::memcpy(&low[ii], hessian + (i0 + ii) * width + j0, 32);
        std::memcpy(&high[ii], hessian + (i0 + ii) * width + j0 + 4, 32);
      }
      for (size_t k = 0; k < count; ++k) {
        const double* row = rows + k * width;
        const double* factors = scaled + k * width + i0;
        Double4 a, b;
        std::memcpy(&a, row + j0, 32);
        std::memcpy(&b, row + j0 + 4, 32);
        for (size_t ii = 0; ii < 4; ++ii) {
          low[ii] += factors[ii] * a;
          high[ii] += factors[ii] * b;
        }
      }
      for (size_t ii = 0; ii < 4; ++ii) {
        std::memcpy(hessian + (i0 + ii) * width + j0, &low[ii], 32);
        std::memcpy(hessian + (i0 + ii) * width + j0 + 4, &high[ii], 32);
      }
    }
  }
}

// gradient[i] += residuals_k * a_ki over `count` rows, in row order.
__attribute__((target_clones("avx2", "default"))) void AccumulateGradient(
    const double* rows, const double* residuals, size_t count, size_t width, double* gradient) {
  for (size_t i0 = 0; i0 < width; i0 += 4) {
    Double4 acc;
    std::memcpy(&acc, gradient + i0, 32);
    for (size_t k = 0; k < count; ++k) {
      Double4 a;
      std::memcpy(&a, rows + k * width + i0, 32);
      acc += residuals[k] * a;
    }
    std::memcpy(gradient + i0, &acc, 32);
  }
}

// z[k] = theta_0 + sum_c theta_(c+1) (x_rc - mean_c), left to right, for
// rows r = first + k, k < count <= kChunkRows; `scratch` holds
// kChunkRows * x.cols doubles.
__attribute__((target_clones("avx2", "default"))) void Margins(const DenseMatrix& x,
                                                               const std::vector<double>& means,
                                                               const std::vector<double>& theta,
                                                               size_t first, size_t count,
                                                               double* scratch, double* z) {
  const size_t cols = x.cols;
  for (size_t k = 0; k < count; ++k) {  // column-major centred values of the chunk
    const float* row = x.values.data() + (first + k) * cols;
    for (size_t col = 0; col < cols; ++col) scratch[col * kChunkRows + k] = row[col] - means[col];
  }
  size_t k = 0;
  for (; k + 16 <= count; k += 16) {  // four independent sums of four rows
    Double4 sum[4];
    for (Double4& lanes : sum) lanes = Double4{theta[0], theta[0], theta[0], theta[0]};
    for (size_t col = 0; col < cols; ++col) {
      for (size_t part = 0; part < 4; ++part) {
        Double4 value;
        std::memcpy(&value, scratch + col * kChunkRows + k + 4 * part, 32);
        sum[part] += theta[col + 1] * value;
      }
    }
    std::memcpy(z + k, sum, sizeof(sum));
  }
  for (; k < count; ++k) {
    double sum = theta[0];
    for (size_t col = 0; col < cols; ++col) sum += theta[col + 1] * scratch[col * kChunkRows + k];
    z[k] = sum;
  }
}

// The sum of the per-row losses (in row order; 0 without `with_loss`), the
// gradient and the Hessian (lower triangle, n x n) at `theta`, in one pass
// over the rows on two threads: thread 0 computes z, e = exp(-|z|), the
// losses and each row's weight p (1 - p) and residual p - y into `weights`
// and `residuals` (rows.size() each), then its share of the Hessian;
// thread 1 follows it chunk by chunk with the rest of the Hessian and the
// gradient.
struct Derivatives {
  double loss = 0.0;
  std::vector<double> gradient, hessian;
};

void Evaluate(const DenseMatrix& x, const std::vector<double>& means,
              std::span<const double> labels, const std::vector<double>& theta, bool with_loss,
              std::vector<double>* weights, std::vector<double>* residuals, Derivatives* out) {
  const size_t n = x.cols + 1;
  const size_t width = PaddedWidth(n);
  const size_t groups = width / 4;
  std::vector<double> square(width * width, 0.0);
  std::vector<double> padded_gradient(width, 0.0);
  // Thread 0, which also computes the rows' weights, takes the first i-groups
  // (group g has g / 2 + 1 blocks of 4 x 8 entries) up to about a quarter of
  // the blocks; thread 1 the rest and the gradient.
  size_t total_blocks = 0;
  for (size_t group = 0; group < groups; ++group) total_blocks += group / 2 + 1;
  size_t split = 0;
  for (size_t blocks = split / 2 + 1; split < groups && 4 * blocks <= total_blocks;) {
    ++split;
    blocks += split / 2 + 1;
  }
  std::atomic<size_t> ready{0};  // rows whose weights and residuals are written
  double loss = 0.0;
  OnTwoThreads([&](int part) {
    std::vector<double> rows(kChunkRows * width), scaled(kChunkRows * width);
    std::vector<double> scratch(part == 0 ? kChunkRows * x.cols : 0), z(kChunkRows);
    for (size_t first = 0; first < x.rows; first += kChunkRows) {
      const size_t count = std::min(kChunkRows, x.rows - first);
      if (part == 0) {
        Margins(x, means, theta, first, count, scratch.data(), z.data());
        for (size_t k = 0; k < count; ++k) {
          const size_t row = first + k;
          const double value = z[k];
          const double exp_value = std::exp(-std::abs(value));  // exp(-z) or exp(z)
          if (with_loss) {
            // Softplus: log(1 + e^z) without overflow.
            const double softplus =
                value > 0.0 ? value + std::log1p(exp_value) : std::log1p(exp_value);
            loss += softplus - labels[row] * value;
          }
          // Sigmoid.
          const double p = value >= 0.0 ? 1.0 / (1.0 + exp_value) : exp_value / (1.0 + exp_value);
          (*weights)[row] = p * (1.0 - p);
          (*residuals)[row] = p - labels[row];
        }
        ready.store(first + count, std::memory_order_release);
      } else {
        while (ready.load(std::memory_order_acquire) < first + count) std::this_thread::yield();
      }
      AugmentedRows(x.values.data(), x.cols, means.data(), weights->data(), first, count, width,
                    rows.data(), scaled.data());
      if (part == 0) {
        AccumulateHessian(rows.data(), scaled.data(), count, width, 0, split, square.data());
      } else {
        AccumulateHessian(rows.data(), scaled.data(), count, width, split, groups, square.data());
        AccumulateGradient(rows.data(), residuals->data() + first, count, width,
                           padded_gradient.data());
      }
    }
  });
  out->loss = loss;
  out->gradient.assign(padded_gradient.begin(), padded_gradient.begin() + n);
  out->hessian.assign(n * n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j <= i; ++j) out->hessian[i * n + j] = square[i * width + j];
  }
}

// Penalised negative log-likelihood: the summed losses, then the penalty.
double Objective(double loss, const std::vector<double>& theta, double l2) {
  double objective = loss;
  for (size_t col = 1; col < theta.size(); ++col) objective += 0.5 * l2 * theta[col] * theta[col];
  return objective;
}

Status SolveLogistic(const DenseMatrix& x, const std::vector<double>& means,
                     std::span<const double> labels, double l2, std::vector<double>* theta_out) {
  const size_t n = x.cols + 1;
  std::vector<double> theta(n, 0.0);
  std::vector<double> weights(x.rows), residuals(x.rows);
  Derivatives current, trial;  // at theta; at the last candidate tried
  Evaluate(x, means, labels, theta, true, &weights, &residuals, &current);
  double objective = Objective(current.loss, theta, l2);
  bool current_known = true;
  for (int step = 0; step < 100; ++step) {
    if (!current_known) Evaluate(x, means, labels, theta, false, &weights, &residuals, &current);
    std::vector<double> hessian = current.hessian;
    std::vector<double> gradient = current.gradient;
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
    bool tried = false;  // `trial` holds the derivatives at `candidate`
    for (int halving = 0; halving < 40; ++halving, scale /= 2.0) {
      for (size_t i = 0; i < n; ++i) candidate[i] = theta[i] - scale * direction[i];
      if (largest_move < 1e-4 * largest_theta) {
        tried = false;
        break;
      }
      Evaluate(x, means, labels, candidate, true, &weights, &residuals, &trial);
      tried = true;
      const double candidate_objective = Objective(trial.loss, candidate, l2);
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
    current_known = tried;
    if (tried) std::swap(current, trial);
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
  std::vector<double> coefficients;
  std::vector<double> means;
  double intercept = 0.0;
  if (params.task == Task::kRegression) {
    ASSIGN_OR_RETURN(Centred centred, CentreColumns(features));
    RETURN_IF_ERROR(SolveLeastSquares(centred, features.rows, features.cols, labels, params.l2,
                                      &coefficients, &intercept));
    means = std::move(centred.means);
  } else {
    ASSIGN_OR_RETURN(means, ColumnMeans(features));
    std::vector<double> theta;
    RETURN_IF_ERROR(SolveLogistic(features, means, labels, params.l2, &theta));
    intercept = theta[0];
    coefficients.assign(theta.begin() + 1, theta.end());
  }
  // Undo the centring: w'(x - m) + c = w'x + (c - w'm).
  for (size_t col = 0; col < features.cols; ++col) {
    intercept -= coefficients[col] * means[col];
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

// Each column's sums run over the rows in order, as a column-by-column loop
// would; the matrix is read row by row, the columns shared by two threads.
LinearScaling LinearScaling::Fit(const DenseMatrix& matrix) {
  LinearScaling scaling{std::vector<double>(matrix.cols, 0.0),
                        std::vector<double>(matrix.cols, 1.0)};
  auto fit_columns = [&](size_t begin, size_t end) {
    const size_t width = end - begin;
    std::vector<double> sums(width, 0.0), squares(width, 0.0), means(width, 0.0);
    std::vector<size_t> counts(width, 0);
    for (size_t row = 0; row < matrix.rows; ++row) {
      const float* values = matrix.values.data() + row * matrix.cols + begin;
      for (size_t col = 0; col < width; ++col) {
        const double value = values[col];
        if (std::isnan(value)) continue;
        sums[col] += value;
        ++counts[col];
      }
    }
    for (size_t col = 0; col < width; ++col) {
      if (counts[col] > 0) means[col] = sums[col] / counts[col];
    }
    for (size_t row = 0; row < matrix.rows; ++row) {
      const float* values = matrix.values.data() + row * matrix.cols + begin;
      for (size_t col = 0; col < width; ++col) {
        const double value = values[col];
        if (!std::isnan(value)) squares[col] += (value - means[col]) * (value - means[col]);
      }
    }
    for (size_t col = 0; col < width; ++col) {
      if (counts[col] == 0) continue;
      const double deviation = std::sqrt(squares[col] / counts[col]);
      scaling.mean[begin + col] = means[col];
      scaling.scale[begin + col] = deviation > 0 ? deviation : 1.0;
    }
  };
  const size_t middle = matrix.cols / 2;
  std::thread first_columns([&] { fit_columns(0, middle); });
  fit_columns(middle, matrix.cols);
  first_columns.join();
  return scaling;
}

// Row halves on two threads.
DenseMatrix LinearScaling::Apply(const DenseMatrix& matrix) const {
  DenseMatrix out;
  out.rows = matrix.rows;
  out.cols = matrix.cols;
  out.feature_names = matrix.feature_names;
  out.values.resize(matrix.values.size());
  auto scale_rows = [&](size_t begin, size_t end) {
    for (size_t row = begin; row < end; ++row) {
      const float* in = matrix.values.data() + row * matrix.cols;
      float* target = out.values.data() + row * out.cols;
      for (size_t col = 0; col < out.cols; ++col) {
        const float value = in[col];
        target[col] =
            std::isnan(value) ? 0.0f : static_cast<float>((value - mean[col]) / scale[col]);
      }
    }
  };
  const size_t middle = matrix.rows / 2;
  std::thread first_rows([&] { scale_rows(0, middle); });
  scale_rows(middle, matrix.rows);
  first_rows.join();
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
