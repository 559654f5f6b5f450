#include "serve/serving_model.h"

#include <cmath>

#include "train/golden.h"
#include "train/matrix.h"
#include "train/model.h"
#include "train/xgboost_model.h"
#include "validate/profile.h"

namespace keel::serve {
namespace {

using table::DataType;

// `column` as `type` (both numeric): values converted, nulls kept.
table::Column ConvertNumeric(const table::Column& column, DataType type) {
  table::Column out(type, 0);
  out.Reserve(column.size());
  for (size_t row = 0; row < column.size(); ++row) {
    if (!column.IsValid(row)) {
      out.AppendNull();
      continue;
    }
    double value = column.NumericAt(row);
    switch (type) {
      case DataType::kDouble:
        out.AppendDouble(value);
        break;
      case DataType::kBool:
        out.AppendBool(value != 0);
        break;
      default:
        out.AppendInt64(column.type() == DataType::kDouble
                            ? static_cast<int64_t>(std::llround(value))
                            : static_cast<int64_t>(column.ints()[row]));
    }
  }
  return out;
}

// The keel reference of one pinned feature use of a bundle manifest.
std::string Reference(const nlohmann::json& use) {
  std::string out = use.at("view").get<std::string>() + "@" + use.at("version").get<std::string>();
  const nlohmann::json& keys = use.value("keys", nlohmann::json::object());
  if (!keys.empty()) {
    out += "(";
    bool first = true;
    for (const auto& [key, column] : keys.items()) {
      out += (first ? "" : ", ") + key + "=" + column.get<std::string>();
      first = false;
    }
    out += ")";
  }
  std::string alias = use.value("alias", std::string());
  if (!alias.empty()) out += " as " + alias;
  const nlohmann::json& features = use.value("features", nlohmann::json::array());
  if (!features.empty()) {
    out += ":";
    for (size_t index = 0; index < features.size(); ++index) {
      out += (index == 0 ? "" : "|") + features[index].get<std::string>();
    }
  }
  return out;
}

}  // namespace

std::string_view ScorerName(Scorer scorer) {
  switch (scorer) {
    case Scorer::kModel:
      return "model";
    case Scorer::kConstant:
      return "constant";
    case Scorer::kLinear:
      return "linear";
  }
  return "model";
}

Result<std::shared_ptr<const ServingModel>> ServingModel::Load(const std::string& bundle_dir,
                                                               std::string name, int64_t version) {
  std::shared_ptr<ServingModel> model(new ServingModel());
  ASSIGN_OR_RETURN(model->bundle_, train::VerifyBundle(bundle_dir));
  const nlohmann::json& manifest = model->bundle_.manifest;
  std::string where = "bundle " + bundle_dir;
  try {
    model->name_ = name.empty() ? manifest.at("name").get<std::string>() : std::move(name);
    model->version_ = version;
    if (manifest.value("model", nlohmann::json::object()).value("kind", "") != "xgboost") {
      return InvalidArgument(where + ": manifest.json model.kind is not xgboost");
    }
    model->binary_ = manifest.at("task").get<std::string>() == "binary";
    for (const nlohmann::json& input : manifest.at("request_inputs")) {
      model->request_inputs_.push_back(
          {input.at("name").get<std::string>(), input.value("expression", std::string())});
    }
    for (const nlohmann::json& use : manifest.at("features")) {
      model->feature_references_.push_back(Reference(use));
    }
    model->model_columns_ = manifest.at("model_columns").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& error) {
    return InvalidArgument(where + ": manifest.json: " + error.what());
  }

  Result<train::RequestInputPlan> plan = train::RequestInputPlan::Make(model->request_inputs_);
  if (!plan.ok()) return plan.status().WithContext(where + ": manifest.json");
  model->request_plan_ = std::move(plan).value();

  ASSIGN_OR_RETURN(std::string profile_text, train::ReadBundleFile(model->bundle_, "profile.json"));
  ASSIGN_OR_RETURN(validate::Profile profile, validate::Profile::FromJson(profile_text));
  for (const nlohmann::json& name_json : manifest.at("input_columns")) {
    std::string input = name_json.get<std::string>();
    const validate::ColumnProfile* column = profile.Find(input);
    if (column == nullptr) {
      return InvalidArgument(where + ": profile.json has no input '" + input + "'");
    }
    bool from_request = false;
    for (const train::RequestInput& request : model->request_inputs_) {
      from_request = from_request || request.name == input;
    }
    model->inputs_.push_back({input, column->type(), from_request});
  }

  auto names = std::make_shared<std::vector<std::string>>();
  for (const ModelInput& input : model->inputs_) names->push_back(input.name);
  model->input_names_ = std::move(names);

  ASSIGN_OR_RETURN(std::string transforms_text,
                   train::ReadBundleFile(model->bundle_, "transforms.json"));
  nlohmann::json transforms_json = nlohmann::json::parse(transforms_text, nullptr, false);
  if (transforms_json.is_discarded()) {
    return InvalidArgument(where + ": transforms.json is not JSON");
  }
  ASSIGN_OR_RETURN(model->transforms_, train::FittedTransforms::FromJson(transforms_json));
  {
    std::vector<RowTransformPlan::Input> plan_inputs;
    for (const ModelInput& input : model->inputs_) plan_inputs.push_back({input.name, input.type});
    Result<RowTransformPlan> row_plan =
        RowTransformPlan::Make(model->transforms_, plan_inputs, model->model_columns_);
    if (row_plan.ok()) {
      model->row_plan_ = std::move(row_plan).value();
    } else {
      model->row_path_status_ = row_plan.status();
    }
  }

  ASSIGN_OR_RETURN(std::string model_bytes, train::ReadBundleFile(model->bundle_, "model.ubj"));
  Result<std::unique_ptr<train::XgboostModel>> xgboost = train::XgboostModel::Load(model_bytes, 1);
  if (!xgboost.ok()) return xgboost.status().WithContext(where + ": model.ubj");
  ASSIGN_OR_RETURN(std::string json, (*xgboost)->SaveJson());
  Result<train::CompiledTrees> trees = train::CompiledTrees::FromXgboostJson(json);
  if (!trees.ok()) return trees.status().WithContext(where + ": model.ubj");
  model->trees_ = std::move(trees).value();
  if (model->trees_.num_features() > model->model_columns_.size()) {
    return InvalidArgument(where + ": the trees read more features than model_columns lists");
  }

  for (auto [kind, file, target] :
       {std::tuple{"constant", "baseline_constant.json", &model->constant_},
        std::tuple{"linear", "baseline_linear.json", &model->linear_}}) {
    ASSIGN_OR_RETURN(std::string bytes, train::ReadBundleFile(model->bundle_, file));
    Result<std::unique_ptr<train::Model>> loaded = train::LoadModel(kind, bytes);
    if (!loaded.ok()) return loaded.status().WithContext(where + ": " + file);
    *target = std::move(loaded).value();
  }
  ASSIGN_OR_RETURN(std::string scaling_text,
                   train::ReadBundleFile(model->bundle_, "linear_scaling.json"));
  nlohmann::json scaling_json = nlohmann::json::parse(scaling_text, nullptr, false);
  ASSIGN_OR_RETURN(model->linear_scaling_, train::LinearScaling::FromJson(scaling_json));

  // The golden cases: the bundle's own XGBoost predictions reproduce, and
  // the compiled trees must give them too before this model serves anything.
  RETURN_IF_ERROR(train::CheckGoldenCases(model->bundle_).status());
  ASSIGN_OR_RETURN(std::string golden_text,
                   train::ReadBundleFile(model->bundle_, "golden_cases.json"));
  nlohmann::json golden = nlohmann::json::parse(golden_text, nullptr, false);
  if (golden.is_array() && !golden.empty()) {
    table::Table inputs;
    for (const ModelInput& input : model->inputs_) {
      table::Column column(input.type, 0);
      for (const nlohmann::json& item : golden) {
        const nlohmann::json& value = item["inputs"][input.name];
        if (value.is_null()) {
          column.AppendNull();
        } else if (input.type == DataType::kString) {
          column.AppendString(value.get<std::string>());
        } else if (input.type == DataType::kDouble) {
          column.AppendDouble(value.get<double>());
        } else if (input.type == DataType::kBool) {
          column.AppendBool(value.get<bool>());
        } else {
          column.AppendInt64(value.get<int64_t>());
        }
      }
      RETURN_IF_ERROR(inputs.AddColumn(input.name, std::move(column)));
    }
    ASSIGN_OR_RETURN(std::vector<double> scores, model->Score(inputs, Scorer::kModel));
    std::vector<RowValue> row(model->inputs_.size());
    for (size_t index = 0; index < golden.size(); ++index) {
      double expected = golden[index].value("prediction", std::nan(""));
      if (!(std::fabs(scores[index] - expected) <= 1e-6)) {
        return FailedPrecondition(where + ": the compiled trees predict " +
                                  std::to_string(scores[index]) + " for golden case " +
                                  std::to_string(index) + ", XGBoost " + std::to_string(expected));
      }
      // The row path must give the table path's prediction, bit for bit.
      for (size_t col = 0; col < row.size(); ++col)
        row[col] = RowValueAt(inputs.column(col), index);
      double by_row = 0;
      if (model->ScoreRow(row, &by_row) && by_row != scores[index]) {
        return FailedPrecondition(where + ": the row path predicts " + std::to_string(by_row) +
                                  " for golden case " + std::to_string(index) +
                                  ", the table path " + std::to_string(scores[index]));
      }
    }
  }
  return std::shared_ptr<const ServingModel>(std::move(model));
}

Result<train::DenseMatrix> ServingModel::Matrix(const table::Table& inputs) const {
  if (row_plan_.has_value()) {
    std::vector<const table::Column*> columns;
    for (const ModelInput& input : inputs_) {
      int index = inputs.FindColumn(input.name);
      if (index < 0 || inputs.column(static_cast<size_t>(index)).type() != input.type) break;
      columns.push_back(&inputs.column(static_cast<size_t>(index)));
    }
    if (columns.size() == inputs_.size()) {
      train::DenseMatrix matrix;
      matrix.rows = inputs.num_rows();
      matrix.cols = model_columns_.size();
      matrix.feature_names = model_columns_;
      matrix.values.resize(matrix.rows * matrix.cols);
      std::vector<RowValue> row(columns.size());
      bool answered = true;
      for (size_t r = 0; r < matrix.rows && answered; ++r) {
        for (size_t col = 0; col < columns.size(); ++col) row[col] = RowValueAt(*columns[col], r);
        answered = row_plan_->Apply(row, matrix.values.data() + r * matrix.cols);
      }
      if (answered) return matrix;
    }
  }
  return TableMatrix(inputs);
}

Result<train::DenseMatrix> ServingModel::TableMatrix(const table::Table& inputs) const {
  // Inputs of the trained types (the usual case) are transformed as they are.
  bool as_trained = true;
  for (const ModelInput& input : inputs_) {
    int index = inputs.FindColumn(input.name);
    as_trained =
        as_trained && index >= 0 && inputs.fields()[static_cast<size_t>(index)].type == input.type;
  }
  if (as_trained) {
    ASSIGN_OR_RETURN(table::Table transformed, transforms_.Apply(inputs));
    return train::BuildDenseMatrix(transformed, model_columns_);
  }
  table::Table raw;
  for (const ModelInput& input : inputs_) {
    int index = inputs.FindColumn(input.name);
    if (index < 0) return InvalidArgument(input.name + ": missing input");
    const table::Column& column = inputs.column(static_cast<size_t>(index));
    if (column.type() == input.type) {
      RETURN_IF_ERROR(raw.AddColumn(input.name, column));
    } else if (table::IsNumeric(column.type()) && table::IsNumeric(input.type)) {
      RETURN_IF_ERROR(raw.AddColumn(input.name, ConvertNumeric(column, input.type)));
    } else {
      return InvalidArgument(input.name + ": expected " +
                             std::string(table::DataTypeName(input.type)) + " values, got " +
                             std::string(table::DataTypeName(column.type())));
    }
  }
  ASSIGN_OR_RETURN(table::Table transformed, transforms_.Apply(raw));
  return train::BuildDenseMatrix(transformed, model_columns_);
}

bool ServingModel::RowMatrix(std::span<const RowValue> inputs, float* out) const {
  return row_plan_.has_value() && row_plan_->Apply(inputs, out);
}

bool ServingModel::ScoreRow(std::span<const RowValue> inputs, double* prediction) const {
  if (!row_plan_.has_value()) return false;
  // The model row lives on the stack for the usual widths, else in a
  // per-thread buffer that only grows.
  constexpr size_t kStackColumns = 512;
  float stack[kStackColumns];
  float* row = stack;
  size_t cols = model_columns_.size();
  if (cols > kStackColumns) {
    thread_local std::vector<float> heap;
    if (heap.size() < cols) heap.resize(cols);
    row = heap.data();
  }
  if (!row_plan_->Apply(inputs, row)) return false;
  float margin = trees_.PredictMargin(std::span<const float>(row, cols));
  *prediction = trees_.Transform(margin);
  return true;
}

Result<std::vector<double>> ServingModel::Score(const table::Table& inputs, Scorer scorer) const {
  ASSIGN_OR_RETURN(train::DenseMatrix matrix, Matrix(inputs));
  return ScoreDense(matrix, scorer);
}

Result<std::vector<double>> ServingModel::ScoreMatrix(const std::vector<float>& values,
                                                      Scorer scorer) const {
  size_t cols = model_columns_.size();
  if (cols == 0 || values.size() % cols != 0) {
    return InvalidArgument(std::to_string(values.size()) +
                           " values are not a whole number of rows of " + std::to_string(cols) +
                           " model columns");
  }
  train::DenseMatrix matrix;
  matrix.rows = values.size() / cols;
  matrix.cols = cols;
  matrix.values = values;
  matrix.feature_names = model_columns_;
  return ScoreDense(matrix, scorer);
}

Result<std::vector<double>> ServingModel::ScoreDense(const train::DenseMatrix& matrix,
                                                     Scorer scorer) const {
  switch (scorer) {
    case Scorer::kConstant:
      return constant_->Predict(matrix);
    case Scorer::kLinear:
      return linear_->Predict(linear_scaling_.Apply(matrix));
    case Scorer::kModel:
      break;
  }
  std::vector<float> margins(matrix.rows);
  if (matrix.rows == 1) {
    margins[0] = trees_.PredictMargin(matrix.row(0));
  } else if (matrix.rows > 1) {
    trees_.PredictMargins(matrix.values.data(), matrix.rows, matrix.cols, margins.data());
  }
  std::vector<double> out(matrix.rows);
  for (size_t row = 0; row < matrix.rows; ++row) out[row] = trees_.Transform(margins[row]);
  return out;
}

}  // namespace keel::serve
