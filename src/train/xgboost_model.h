#pragma once

// Gradient-boosted trees through XGBoost 1.7's C API. This header does not
// include XGBoost; xgboost_model.cc is the only file in keel that does, and
// every XGBoost error leaves it as a keel::Status carrying XGBGetLastError().

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "train/matrix.h"
#include "train/model.h"

namespace keel::train {

// Training parameters. Each maps to the XGBoost parameter of the same name;
// keel always sets tree_method=hist, and objective / eval_metric from `task`:
// binary:logistic with logloss, reg:squarederror with rmse.
struct XgboostParams {
  Task task = Task::kBinaryClassification;
  int num_rounds = 100;  // upper bound on boosting rounds
  double eta = 0.3;
  int max_depth = 6;
  double min_child_weight = 1.0;
  double subsample = 1.0;
  double colsample_bytree = 1.0;
  double lambda = 1.0;  // L2 on leaf weights
  double alpha = 0.0;   // L1 on leaf weights
  int max_bin = 256;
  uint64_t seed = 0;
  int nthread = 2;
  // Early stopping on the validation matrix: stop once this many rounds in a
  // row did not strictly improve the best validation metric. 0 disables it
  // (then every round is kept, validation or not).
  int early_stopping_rounds = 0;
  // "ubj" (XGBoost's UBJSON model) or "json": the format Save() writes.
  std::string model_format = "ubj";
};

// What training did: the validation metric per round (empty without a
// validation matrix) and the round kept.
struct XgboostTrainingReport {
  std::string metric;                    // "logloss" or "rmse"
  std::vector<double> validation_curve;  // one value per boosted round
  int rounds_boosted = 0;                // rounds actually run
  int best_iteration = -1;               // 0-based round kept last; -1 without early stopping
  // Margins of the training rows by the model as returned (the kept rounds),
  // read from XGBoost's prediction cache of the training matrix after the
  // best round (no tree walk): equal to PredictMargin(train). Filled only
  // when Train is asked to (keep_training_margins).
  std::vector<float> training_margins;
  // Wall seconds spent copying those margins (inside Train's time).
  double training_margins_seconds = 0;
};

// The booster parameters XgboostModel::Train sets for `params`: XGBoost's
// names and the very strings it passes (objective, eval metric, hist, eta,
// depth, ..., nthread, verbosity), in the order it sets them. Peers that must
// train the same model (tests against XGBoost's Python package, the training
// benchmark) take them from here. Rounds and early stopping are not booster
// parameters and are not included.
std::vector<std::pair<std::string, std::string>> XgboostBoosterParams(const XgboostParams& params);

// The model's output for a margin, as XGBoost's own prediction transforms it:
// the logistic function in float for binary:logistic (1 / (1 + expf(-m))),
// the margin itself for squared error.
double OutputFromMargin(Task task, float margin);

// An XGBoost booster (binary:logistic or reg:squarederror).
// Missing values: NaN cells go down each split's learned default direction.
// Thread-safety: all const methods are safe to call concurrently (calls into
// XGBoost are serialised by an internal mutex).
class XgboostModel : public Model {
 public:
  ~XgboostModel() override;

  // Trains on (train, train_labels); `valid` / `valid_labels` (both or neither)
  // are evaluated every round. Rounds go one by one
  // (XGBoosterUpdateOneIter); with early stopping the validation metric of
  // each round is read with XGBoosterEvalOneIter (the value printed with 17
  // significant digits, exactly what python-xgboost's EarlyStopping compares),
  // and training stops after early_stopping_rounds rounds without a strict
  // improvement. The kept model is then CUT to rounds [0, best_iteration]
  // (XGBoosterSlice): the trees of the later rounds are dropped, so Predict,
  // Save and the serving runtime all see the best model and nothing else.
  // Same data, parameters and seed give byte-identical Save() output.
  // With keep_training_margins (and a report), report->training_margins gets
  // the kept model's margins of the training rows.
  // Errors: InvalidArgument for bad parameters, labels or matrix shapes (or an
  // early stopping request without a validation matrix); FailedPrecondition
  // for binary training labels of one class only; Internal for XGBoost
  // failures, with its message.
  static Result<std::unique_ptr<XgboostModel>> Train(
      const XgboostParams& params, const DenseMatrix& train, std::span<const double> train_labels,
      const DenseMatrix* valid = nullptr, std::span<const double> valid_labels = {},
      XgboostTrainingReport* report = nullptr, bool keep_training_margins = false);

  // Loads UBJSON or JSON model bytes (XGBoost detects which). The task comes
  // from the model's objective; predictions use `nthread` threads.
  // Errors: InvalidArgument for nthread < 1, bytes XGBoost cannot read or an objective
  // other than binary:logistic / reg:squarederror.
  static Result<std::unique_ptr<XgboostModel>> Load(std::string_view bytes, int nthread = 2);

  std::string_view kind() const override { return "xgboost"; }
  Task task() const override { return task_; }
  size_t num_features() const override { return num_features_; }
  Result<std::vector<double>> Predict(const DenseMatrix& features) const override;
  Result<std::vector<double>> PredictMargin(const DenseMatrix& features) const override;
  // Predictions for `rows` rows of num_features() floats, row-major, through
  // XGBoost's in-place prediction (XGBoosterPredictFromDense: no DMatrix);
  // `margin` for raw scores. NaN is missing. Errors: Internal from XGBoost.
  Result<std::vector<double>> PredictInPlace(const float* values, size_t rows, bool margin) const;

  // XGBoost's model in the format of params.model_format (UBJSON after Load).
  Result<std::string> Save() const override;
  // XGBoost's model as JSON, whatever the save format (for bundles and runtimes
  // that parse the trees).
  Result<std::string> SaveJson() const;

  // Boosted rounds held by the model (after the cut).
  int num_rounds() const { return num_rounds_; }

 private:
  struct Booster;  // owns the BoosterHandle; defined in xgboost_model.cc
  XgboostModel(std::unique_ptr<Booster> booster, Task task, size_t num_features, int num_rounds,
               std::string format, int nthread);
  Result<std::vector<double>> PredictType(const DenseMatrix& features, int type) const;
  Result<std::string> SaveAs(std::string_view format) const;

  std::unique_ptr<Booster> booster_;
  Task task_;
  size_t num_features_;
  int num_rounds_;
  std::string format_;
  int nthread_;
};

}  // namespace keel::train
