// The one file in keel that includes XGBoost (STYLE.md: one adapter per
// third-party library). Every C API call goes through Call(), which turns a
// non-zero return code into a Status with XGBGetLastError().
#include "train/xgboost_model.h"

#include <xgboost/c_api.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>

namespace keel::train {
namespace {

Status Call(int return_code, std::string_view what) {
  if (return_code == 0) return Status::Ok();
  return Internal("XGBoost " + std::string(what) + ": " + XGBGetLastError());
}

struct DMatrixDeleter {
  void operator()(void* handle) const { XGDMatrixFree(handle); }
};
using DMatrixPtr = std::unique_ptr<void, DMatrixDeleter>;

Result<DMatrixPtr> MakeDMatrix(const DenseMatrix& matrix, std::span<const double> labels,
                               int nthread) {
  if (matrix.rows == 0 || matrix.cols == 0) return InvalidArgument("the matrix is empty");
  if (matrix.values.size() != matrix.rows * matrix.cols) {
    return InvalidArgument("the matrix holds " + std::to_string(matrix.values.size()) +
                           " values, not rows * cols");
  }
  DMatrixHandle handle = nullptr;
  RETURN_IF_ERROR(
      Call(XGDMatrixCreateFromMat_omp(matrix.values.data(), matrix.rows, matrix.cols,
                                      std::numeric_limits<float>::quiet_NaN(), &handle, nthread),
           "creating a DMatrix"));
  DMatrixPtr dmatrix(handle);
  if (!labels.empty()) {
    std::vector<float> as_float(labels.begin(), labels.end());
    RETURN_IF_ERROR(Call(XGDMatrixSetFloatInfo(handle, "label", as_float.data(), as_float.size()),
                         "setting labels"));
  }
  return dmatrix;
}

// Shortest decimal that reads back as the same double (XGBoost parses it with strtod).
std::string ParamNumber(double value) { return nlohmann::json(value).dump(); }

}  // namespace

struct XgboostModel::Booster {
  explicit Booster(BoosterHandle h) : handle(h) {}
  ~Booster() { XGBoosterFree(handle); }
  BoosterHandle handle;
  std::mutex mutex;  // XGBoost's per-booster thread-local buffers: one call at a time
};

XgboostModel::XgboostModel(std::unique_ptr<Booster> booster, Task task, size_t num_features,
                           int num_rounds, std::string format, int nthread)
    : booster_(std::move(booster)),
      task_(task),
      num_features_(num_features),
      num_rounds_(num_rounds),
      format_(std::move(format)),
      nthread_(nthread) {}

XgboostModel::~XgboostModel() = default;

namespace {

Status CheckParams(const XgboostParams& params, bool has_valid) {
  if (params.num_rounds < 1) return InvalidArgument("num_rounds must be at least 1");
  if (!(params.eta > 0.0)) return InvalidArgument("eta must be positive");
  if (params.max_depth < 0) return InvalidArgument("max_depth must not be negative");
  if (!(params.subsample > 0.0 && params.subsample <= 1.0)) {
    return InvalidArgument("subsample must be in (0, 1]");
  }
  if (!(params.colsample_bytree > 0.0 && params.colsample_bytree <= 1.0)) {
    return InvalidArgument("colsample_bytree must be in (0, 1]");
  }
  if (params.nthread < 1) return InvalidArgument("nthread must be at least 1");
  if (params.max_bin < 2) return InvalidArgument("max_bin must be at least 2");
  if (params.early_stopping_rounds < 0) {
    return InvalidArgument("early_stopping_rounds must not be negative");
  }
  if (params.early_stopping_rounds > 0 && !has_valid) {
    return InvalidArgument("early stopping needs a validation matrix");
  }
  if (params.model_format != "ubj" && params.model_format != "json") {
    return InvalidArgument("model_format must be 'ubj' or 'json', not '" + params.model_format +
                           "'");
  }
  return Status::Ok();
}

Status SetParams(BoosterHandle handle, const XgboostParams& params) {
  for (const auto& [name, value] : XgboostBoosterParams(params)) {
    RETURN_IF_ERROR(Call(XGBoosterSetParam(handle, name.c_str(), value.c_str()),
                         "setting " + name + "=" + value));
  }
  return Status::Ok();
}

// The metric value at the end of "[3]\tvalid-logloss:0.31591398626565931".
Result<double> ParseEvalLine(const char* line) {
  const std::string text(line);
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return Internal("unexpected XGBoost evaluation '" + text + "'");
  char* end = nullptr;
  const double value = std::strtod(text.c_str() + colon + 1, &end);
  if (end == text.c_str() + colon + 1) {
    return Internal("unexpected XGBoost evaluation '" + text + "'");
  }
  return value;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> XgboostBoosterParams(const XgboostParams& params) {
  const bool binary = params.task == Task::kBinaryClassification;
  return {{"objective", binary ? "binary:logistic" : "reg:squarederror"},
          {"eval_metric", binary ? "logloss" : "rmse"},
          {"tree_method", "hist"},
          {"eta", ParamNumber(params.eta)},
          {"max_depth", std::to_string(params.max_depth)},
          {"min_child_weight", ParamNumber(params.min_child_weight)},
          {"subsample", ParamNumber(params.subsample)},
          {"colsample_bytree", ParamNumber(params.colsample_bytree)},
          {"lambda", ParamNumber(params.lambda)},
          {"alpha", ParamNumber(params.alpha)},
          {"max_bin", std::to_string(params.max_bin)},
          {"seed", std::to_string(params.seed)},
          {"nthread", std::to_string(params.nthread)},
          {"verbosity", "0"}};
}

double OutputFromMargin(Task task, float margin) {
  if (task != Task::kBinaryClassification) return margin;
  return 1.0f / (1.0f + std::exp(-margin));  // float, as XGBoost's PredTransform
}

Result<std::unique_ptr<XgboostModel>> XgboostModel::Train(
    const XgboostParams& params, const DenseMatrix& train, std::span<const double> train_labels,
    const DenseMatrix* valid, std::span<const double> valid_labels, XgboostTrainingReport* report,
    bool keep_training_margins) {
  RETURN_IF_ERROR(CheckParams(params, valid != nullptr));
  RETURN_IF_ERROR(CheckLabels(params.task, train, train_labels).WithContext("training labels"));
  if (valid != nullptr) {
    if (valid->cols != train.cols) {
      return InvalidArgument("the validation matrix has " + std::to_string(valid->cols) +
                             " columns, the training matrix " + std::to_string(train.cols));
    }
    RETURN_IF_ERROR(CheckLabels(params.task, *valid, valid_labels, /*training=*/false)
                        .WithContext("validation labels"));
  }
  ASSIGN_OR_RETURN(DMatrixPtr dtrain, MakeDMatrix(train, train_labels, params.nthread));
  DMatrixPtr dvalid;
  std::vector<DMatrixHandle> cache = {dtrain.get()};
  if (valid != nullptr) {
    ASSIGN_OR_RETURN(dvalid, MakeDMatrix(*valid, valid_labels, params.nthread));
    cache.push_back(dvalid.get());
  }
  BoosterHandle handle = nullptr;
  RETURN_IF_ERROR(Call(XGBoosterCreate(cache.data(), cache.size(), &handle), "creating a booster"));
  auto booster = std::make_unique<Booster>(handle);
  RETURN_IF_ERROR(SetParams(handle, params));

  XgboostTrainingReport local_report;
  local_report.metric = params.task == Task::kBinaryClassification ? "logloss" : "rmse";
  double best_score = std::numeric_limits<double>::infinity();
  int best_iteration = -1;
  keep_training_margins = keep_training_margins && report != nullptr;
  // The training rows' margins after the rounds boosted so far. XGBoost keeps
  // them in its prediction cache of the training matrix (each round adds its
  // tree's leaf values, in float, in tree order: what a tree walk sums), so
  // this asks for no tree walk; it is a copy.
  auto copy_margins = [&]() -> Status {
    auto start = std::chrono::steady_clock::now();
    const char* config =
        "{\"type\": 1, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
        "\"strict_shape\": false}";
    const bst_ulong* shape = nullptr;
    bst_ulong dimensions = 0;
    const float* margins = nullptr;
    RETURN_IF_ERROR(Call(
        XGBoosterPredictFromDMatrix(handle, dtrain.get(), config, &shape, &dimensions, &margins),
        "reading the training margins"));
    local_report.training_margins.assign(margins, margins + train.rows);
    local_report.training_margins_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return Status::Ok();
  };
  for (int iteration = 0; iteration < params.num_rounds; ++iteration) {
    RETURN_IF_ERROR(Call(XGBoosterUpdateOneIter(handle, iteration, dtrain.get()),
                         "boosting round " + std::to_string(iteration)));
    local_report.rounds_boosted = iteration + 1;
    if (valid == nullptr) continue;
    DMatrixHandle eval_matrices[] = {dvalid.get()};
    const char* eval_names[] = {"valid"};
    const char* line = nullptr;
    RETURN_IF_ERROR(
        Call(XGBoosterEvalOneIter(handle, iteration, eval_matrices, eval_names, 1, &line),
             "evaluating round " + std::to_string(iteration)));
    ASSIGN_OR_RETURN(const double score, ParseEvalLine(line));
    local_report.validation_curve.push_back(score);
    if (score < best_score) {
      best_score = score;
      best_iteration = iteration;
      if (keep_training_margins && params.early_stopping_rounds > 0) {
        RETURN_IF_ERROR(copy_margins());
      }
    } else if (params.early_stopping_rounds > 0 &&
               iteration - best_iteration >= params.early_stopping_rounds) {
      break;
    }
  }
  int kept_rounds = local_report.rounds_boosted;
  if (keep_training_margins && (params.early_stopping_rounds <= 0 || best_iteration < 0)) {
    RETURN_IF_ERROR(copy_margins());  // every round is kept
  }
  if (params.early_stopping_rounds > 0) {
    local_report.best_iteration = best_iteration;
    kept_rounds = best_iteration + 1;
    if (kept_rounds < local_report.rounds_boosted) {
      BoosterHandle sliced = nullptr;
      RETURN_IF_ERROR(
          Call(XGBoosterSlice(handle, 0, kept_rounds, 1, &sliced), "cutting to the best round"));
      booster = std::make_unique<Booster>(sliced);
      handle = sliced;
    }
  }
  if (report != nullptr) *report = local_report;
  return std::unique_ptr<XgboostModel>(new XgboostModel(std::move(booster), params.task, train.cols,
                                                        kept_rounds, params.model_format,
                                                        params.nthread));
}

Result<std::unique_ptr<XgboostModel>> XgboostModel::Load(std::string_view bytes, int nthread) {
  if (nthread < 1) return InvalidArgument("nthread must be at least 1");
  BoosterHandle handle = nullptr;
  RETURN_IF_ERROR(Call(XGBoosterCreate(nullptr, 0, &handle), "creating a booster"));
  auto booster = std::make_unique<Booster>(handle);
  Status loaded =
      Call(XGBoosterLoadModelFromBuffer(handle, bytes.data(), bytes.size()), "loading a model");
  if (!loaded.ok()) return InvalidArgument(loaded.message());
  RETURN_IF_ERROR(Call(XGBoosterSetParam(handle, "nthread", std::to_string(nthread).c_str()),
                       "setting nthread"));
  bst_ulong config_length = 0;
  const char* config_text = nullptr;
  RETURN_IF_ERROR(
      Call(XGBoosterSaveJsonConfig(handle, &config_length, &config_text), "reading the config"));
  std::string objective;
  try {
    objective = nlohmann::json::parse(
                    std::string_view(config_text, config_length))["learner"]["objective"]["name"]
                    .get<std::string>();
  } catch (const nlohmann::json::exception& error) {
    return Internal(std::string("XGBoost config without an objective: ") + error.what());
  }
  Task task;
  if (objective == "binary:logistic") {
    task = Task::kBinaryClassification;
  } else if (objective == "reg:squarederror") {
    task = Task::kRegression;
  } else {
    return InvalidArgument("unsupported XGBoost objective '" + objective + "'");
  }
  bst_ulong num_features = 0;
  RETURN_IF_ERROR(Call(XGBoosterGetNumFeature(handle, &num_features), "reading num_feature"));
  int rounds = 0;
  RETURN_IF_ERROR(Call(XGBoosterBoostedRounds(handle, &rounds), "reading boosted rounds"));
  const bool is_json =
      !bytes.empty() && bytes.front() == '{' && bytes.size() > 1 && bytes[1] == '"';
  return std::unique_ptr<XgboostModel>(new XgboostModel(std::move(booster), task, num_features,
                                                        rounds, is_json ? "json" : "ubj", nthread));
}

Result<std::vector<double>> XgboostModel::PredictType(const DenseMatrix& features, int type) const {
  if (features.cols != num_features_) {
    return InvalidArgument("the model expects " + std::to_string(num_features_) +
                           " features, the matrix has " + std::to_string(features.cols));
  }
  if (features.rows == 0) return std::vector<double>();
  ASSIGN_OR_RETURN(DMatrixPtr dmatrix, MakeDMatrix(features, {}, nthread_));
  // type 0: transformed output (probability), 1: margin; all trees; no training-only behaviour.
  const std::string config = "{\"type\": " + std::to_string(type) +
                             ", \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
                             "\"strict_shape\": false}";
  std::lock_guard<std::mutex> lock(booster_->mutex);
  const bst_ulong* shape = nullptr;
  bst_ulong dimensions = 0;
  const float* result = nullptr;
  RETURN_IF_ERROR(Call(XGBoosterPredictFromDMatrix(booster_->handle, dmatrix.get(), config.c_str(),
                                                   &shape, &dimensions, &result),
                       "predicting"));
  return std::vector<double>(result, result + features.rows);
}

Result<std::vector<double>> XgboostModel::Predict(const DenseMatrix& features) const {
  return PredictType(features, 0);
}

Result<std::vector<double>> XgboostModel::PredictMargin(const DenseMatrix& features) const {
  return PredictType(features, 1);
}

Result<std::vector<double>> XgboostModel::PredictInPlace(const float* values, size_t rows,
                                                         bool margin) const {
  if (rows == 0) return std::vector<double>();
  // XGBoost's in-place prediction reads the caller's row-major floats through
  // an array interface (no DMatrix is built).
  char array[256];
  std::snprintf(array, sizeof(array),
                "{\"data\": [%llu, true], \"shape\": [%llu, %llu], \"typestr\": \"<f4\", "
                "\"version\": 3}",
                static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(values)),
                static_cast<unsigned long long>(rows),
                static_cast<unsigned long long>(num_features_));
  const std::string config = std::string("{\"type\": ") + (margin ? "1" : "0") +
                             ", \"training\": false, \"iteration_begin\": 0, "
                             "\"iteration_end\": 0, \"strict_shape\": false, \"missing\": NaN, "
                             "\"cache_id\": 0, \"nthread\": " +
                             std::to_string(nthread_) + "}";
  std::lock_guard<std::mutex> lock(booster_->mutex);
  const bst_ulong* shape = nullptr;
  bst_ulong dimensions = 0;
  const float* result = nullptr;
  RETURN_IF_ERROR(Call(XGBoosterPredictFromDense(booster_->handle, array, config.c_str(), nullptr,
                                                 &shape, &dimensions, &result),
                       "predicting in place"));
  return std::vector<double>(result, result + rows);
}

Result<std::string> XgboostModel::SaveAs(std::string_view format) const {
  const std::string config = "{\"format\": \"" + std::string(format) + "\"}";
  std::lock_guard<std::mutex> lock(booster_->mutex);
  bst_ulong length = 0;
  const char* bytes = nullptr;
  RETURN_IF_ERROR(
      Call(XGBoosterSaveModelToBuffer(booster_->handle, config.c_str(), &length, &bytes),
           "saving the model"));
  return std::string(bytes, length);
}

Result<std::string> XgboostModel::Save() const { return SaveAs(format_); }

Result<std::string> XgboostModel::SaveJson() const { return SaveAs("json"); }

}  // namespace keel::train
