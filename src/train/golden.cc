#include "train/golden.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "train/matrix.h"
#include "train/model.h"
#include "train/transforms.h"
#include "validate/profile.h"

namespace keel::train {
namespace {

// One input column of the golden cases, typed as in training.
Result<table::Column> GoldenColumn(const nlohmann::json& cases, const std::string& name,
                                   table::DataType type) {
  table::Column column(type, 0);
  for (const nlohmann::json& item : cases) {
    const nlohmann::json& value = item["inputs"][name];
    if (value.is_null()) {
      column.AppendNull();
    } else if (type == table::DataType::kString && value.is_string()) {
      column.AppendString(value.get<std::string>());
    } else if (type == table::DataType::kBool && value.is_boolean()) {
      column.AppendBool(value.get<bool>());
    } else if (type == table::DataType::kDouble && value.is_number()) {
      column.AppendDouble(value.get<double>());
    } else if ((type == table::DataType::kInt64 || type == table::DataType::kTimestamp) &&
               value.is_number_integer()) {
      column.AppendInt64(value.get<int64_t>());
    } else {
      return InvalidArgument("golden case input '" + name + "': " + value.dump() + " is not a " +
                             std::string(table::DataTypeName(type)));
    }
  }
  return column;
}

}  // namespace

Result<size_t> CheckGoldenCases(const BundleInfo& bundle) {
  const nlohmann::json& manifest = bundle.manifest;
  ASSIGN_OR_RETURN(std::string golden_text, ReadBundleFile(bundle, "golden_cases.json"));
  ASSIGN_OR_RETURN(std::string profile_text, ReadBundleFile(bundle, "profile.json"));
  ASSIGN_OR_RETURN(std::string transforms_text, ReadBundleFile(bundle, "transforms.json"));
  ASSIGN_OR_RETURN(std::string model_bytes, ReadBundleFile(bundle, "model.ubj"));
  nlohmann::json cases = nlohmann::json::parse(golden_text, nullptr, false);
  nlohmann::json transforms_json = nlohmann::json::parse(transforms_text, nullptr, false);
  if (!cases.is_array() || transforms_json.is_discarded() || !manifest.contains("input_columns")) {
    return InvalidArgument("bundle " + bundle.dir + ": unreadable golden cases or transforms");
  }
  if (cases.empty()) return size_t{0};
  ASSIGN_OR_RETURN(validate::Profile profile, validate::Profile::FromJson(profile_text));
  table::Table inputs;
  for (const nlohmann::json& name_json : manifest["input_columns"]) {
    std::string name = name_json.get<std::string>();
    const validate::ColumnProfile* column_profile = profile.Find(name);
    if (column_profile == nullptr) {
      return InvalidArgument("bundle " + bundle.dir + ": profile.json has no input '" + name + "'");
    }
    ASSIGN_OR_RETURN(table::Column column, GoldenColumn(cases, name, column_profile->type()));
    RETURN_IF_ERROR(inputs.AddColumn(name, std::move(column)));
  }
  ASSIGN_OR_RETURN(FittedTransforms transforms, FittedTransforms::FromJson(transforms_json));
  ASSIGN_OR_RETURN(table::Table transformed, transforms.Apply(inputs));
  std::vector<std::string> names;
  for (const table::Field& field : transformed.fields()) names.push_back(field.name);
  ASSIGN_OR_RETURN(DenseMatrix matrix, BuildDenseMatrix(transformed, names));
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel("xgboost", model_bytes));
  ASSIGN_OR_RETURN(std::vector<double> predictions, model->Predict(matrix));
  for (size_t index = 0; index < cases.size(); ++index) {
    double expected = cases[index].value("prediction", std::nan(""));
    double actual = predictions[index];
    if (!(std::fabs(actual - expected) <= 1e-9 * std::max(1.0, std::fabs(expected)))) {
      char message[160];
      std::snprintf(message, sizeof(message),
                    ": golden case %zu predicts %.17g, the bundle recorded %.17g", index, actual,
                    expected);
      return FailedPrecondition("bundle " + bundle.dir + message);
    }
  }
  return cases.size();
}

}  // namespace keel::train
