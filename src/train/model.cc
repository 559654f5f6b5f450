#include "train/model.h"

#include <cmath>

#include "train/baselines.h"
#include "train/xgboost_model.h"

namespace keel::train {

std::string_view TaskName(Task task) {
  return task == Task::kBinaryClassification ? "binary" : "regression";
}

Result<Task> ParseTask(std::string_view name) {
  if (name == "binary") return Task::kBinaryClassification;
  if (name == "regression") return Task::kRegression;
  return InvalidArgument("unknown task '" + std::string(name) + "' (binary or regression)");
}

Status CheckLabels(Task task, const DenseMatrix& features, std::span<const double> labels,
                   bool training) {
  if (labels.empty()) return InvalidArgument("no training rows");
  if (labels.size() != features.rows) {
    return InvalidArgument(std::to_string(labels.size()) + " labels for " +
                           std::to_string(features.rows) + " rows");
  }
  for (size_t row = 0; row < labels.size(); ++row) {
    const double label = labels[row];
    if (task == Task::kBinaryClassification ? (label != 0.0 && label != 1.0)
                                            : !std::isfinite(label)) {
      return InvalidArgument("label of row " + std::to_string(row) + " is " +
                             std::to_string(label) +
                             (task == Task::kBinaryClassification ? ", not 0 or 1" : ""));
    }
  }
  if (training && task == Task::kBinaryClassification) {
    const bool first = labels[0] == 1.0;
    bool both = false;
    for (double label : labels) both = both || ((label == 1.0) != first);
    if (!both) {
      return FailedPrecondition(std::string("the training labels hold one class only (all ") +
                                (first ? "1" : "0") + "); a binary model needs both");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<Model>> LoadModel(std::string_view kind, std::string_view bytes) {
  if (kind == "xgboost") {
    ASSIGN_OR_RETURN(std::unique_ptr<XgboostModel> model, XgboostModel::Load(bytes));
    return std::unique_ptr<Model>(std::move(model));
  }
  if (kind == "constant") {
    ASSIGN_OR_RETURN(std::unique_ptr<ConstantModel> model, ConstantModel::Load(bytes));
    return std::unique_ptr<Model>(std::move(model));
  }
  if (kind == "linear") {
    ASSIGN_OR_RETURN(std::unique_ptr<LinearModel> model, LinearModel::Load(bytes));
    return std::unique_ptr<Model>(std::move(model));
  }
  return InvalidArgument("unknown model kind '" + std::string(kind) +
                         "' (xgboost, constant or linear)");
}

}  // namespace keel::train
