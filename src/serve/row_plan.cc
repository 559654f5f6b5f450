#include "serve/row_plan.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace keel::serve {
namespace {

using table::DataType;
using train::TransformKind;

bool IsNumber(DataType type) {
  return type == DataType::kBool || type == DataType::kInt64 || type == DataType::kDouble;
}

// The type the transform was fitted on (the table path refuses another for
// categorical transforms and string imputes).
std::string FittedType(const train::FittedTransform& transform) {
  return transform.ToJson().value("input_type", std::string());
}

}  // namespace

RowValue RowValueAt(const table::Column& column, size_t row) {
  RowValue value;
  value.type = column.type();
  value.valid = column.IsValid(row);
  if (!value.valid) return value;
  if (value.type == DataType::kString) {
    value.text = column.StringAt(row);
  } else {
    value.number = column.NumericAt(row);
  }
  return value;
}

Result<RowTransformPlan> RowTransformPlan::Make(const train::FittedTransforms& transforms,
                                                const std::vector<Input>& inputs,
                                                const std::vector<std::string>& model_columns) {
  RowTransformPlan plan;
  plan.num_inputs_ = inputs.size();
  // The columns as the table path would hold them after each step.
  std::vector<std::string> names;
  std::vector<DataType> types;
  std::vector<uint32_t> slots;  // names[i]'s slot
  for (const Input& input : inputs) {
    if (std::find(names.begin(), names.end(), input.name) != names.end()) {
      return FailedPrecondition("input '" + input.name + "' twice");
    }
    names.push_back(input.name);
    types.push_back(input.type);
    slots.push_back(static_cast<uint32_t>(slots.size()));
    plan.input_types_.push_back(input.type);
  }
  size_t next_slot = slots.size();
  for (const train::FittedTransform& transform : transforms.transforms()) {
    const train::TransformSpec& spec = transform.spec();
    auto found = std::find(names.begin(), names.end(), spec.column);
    if (found == names.end()) {
      return FailedPrecondition("transform of '" + spec.column + "', which is not a column there");
    }
    size_t at = static_cast<size_t>(found - names.begin());
    DataType type = types[at];
    Step step;
    step.slot = slots[at];
    step.transform = &transform;
    switch (spec.kind) {
      case TransformKind::kOneHot:
      case TransformKind::kOrdinal: {
        if (type != DataType::kString || FittedType(transform) != "string") {
          return FailedPrecondition("categorical transform of the non-string column '" +
                                    spec.column + "'");
        }
        const std::vector<std::string>& categories = transform.categories();
        for (size_t i = 0; i < categories.size(); ++i) {
          if (i > 0 && !(categories[i - 1] < categories[i])) {
            return FailedPrecondition("categories of '" + spec.column + "' not sorted");
          }
          step.categories.push_back(categories[i]);
        }
        step.unknown_error = spec.unknown == train::UnknownCategory::kError;
        if (spec.kind == TransformKind::kOrdinal) {
          step.op = Op::kOrdinal;
          types[at] = DataType::kDouble;
          break;
        }
        step.op = Op::kOneHot;
        step.first = static_cast<uint32_t>(next_slot);
        std::vector<std::string> outputs = transform.OutputNames();
        names.erase(names.begin() + static_cast<std::ptrdiff_t>(at));
        types.erase(types.begin() + static_cast<std::ptrdiff_t>(at));
        slots.erase(slots.begin() + static_cast<std::ptrdiff_t>(at));
        for (size_t k = 0; k < outputs.size(); ++k) {
          if (std::find(names.begin(), names.end(), outputs[k]) != names.end()) {
            return FailedPrecondition("one-hot column '" + outputs[k] + "' clashes with another");
          }
          names.insert(names.begin() + static_cast<std::ptrdiff_t>(at + k), outputs[k]);
          types.insert(types.begin() + static_cast<std::ptrdiff_t>(at + k), DataType::kDouble);
          slots.insert(slots.begin() + static_cast<std::ptrdiff_t>(at + k),
                       static_cast<uint32_t>(next_slot++));
        }
        break;
      }
      case TransformKind::kImpute:
        if (type == DataType::kString) {
          if (FittedType(transform) != "string") {
            return FailedPrecondition("numeric impute of the string column '" + spec.column + "'");
          }
          step.op = Op::kImputeString;
          break;
        }
        [[fallthrough]];
      default:
        if (!IsNumber(type)) {
          return FailedPrecondition(std::string(train::TransformKindName(spec.kind)) + " of the " +
                                    std::string(table::DataTypeName(type)) + " column '" +
                                    spec.column + "'");
        }
        switch (spec.kind) {
          case TransformKind::kImpute:
            step.op = Op::kImpute;
            break;
          case TransformKind::kStandardScale:
            step.op = Op::kScale;
            break;
          case TransformKind::kBucketize:
            step.op = Op::kBucketize;
            break;
          case TransformKind::kLog:
            step.op = spec.log1p ? Op::kLog1p : Op::kLog;
            break;
          case TransformKind::kClip:
            step.op = Op::kClip;
            break;
          default:
            return FailedPrecondition("transform kind");
        }
        types[at] = DataType::kDouble;
    }
    plan.steps_.push_back(std::move(step));
  }
  plan.num_slots_ = next_slot;
  if (plan.num_slots_ > kMaxSlots) return FailedPrecondition("more than 256 columns");
  for (const std::string& column : model_columns) {
    auto found = std::find(names.begin(), names.end(), column);
    if (found == names.end()) return FailedPrecondition("model column '" + column + "' not made");
    size_t at = static_cast<size_t>(found - names.begin());
    if (types[at] == DataType::kString) {
      return FailedPrecondition("model column '" + column + "' is a string");
    }
    plan.outputs_.push_back(slots[at]);
  }
  return plan;
}

bool RowTransformPlan::Apply(std::span<const RowValue> inputs, float* out) const {
  if (inputs.size() != num_inputs_) return false;
  Cell cells[kMaxSlots];
  for (size_t i = 0; i < num_inputs_; ++i) {
    const RowValue& value = inputs[i];
    if (value.type != input_types_[i]) return false;  // the table path converts or refuses
    cells[i].valid = value.valid;
    cells[i].number = value.number;
    cells[i].text = value.text;
  }
  for (const Step& step : steps_) {
    Cell& cell = cells[step.slot];
    const train::FittedTransform& transform = *step.transform;
    switch (step.op) {
      case Op::kImputeString:
        if (!cell.valid) {
          cell.valid = true;
          cell.text = transform.spec().fill_string;
        }
        continue;
      case Op::kOrdinal:
      case Op::kOneHot: {
        size_t count = step.categories.size();
        size_t index = count;
        if (cell.valid) {
          auto found = std::lower_bound(step.categories.begin(), step.categories.end(), cell.text);
          if (found != step.categories.end() && *found == cell.text) {
            index = static_cast<size_t>(found - step.categories.begin());
          } else if (step.unknown_error) {
            return false;
          }
        }
        if (step.op == Op::kOrdinal) {
          // Missing stays missing; unknown is the reserved index `count`.
          cell.number = static_cast<double>(index);
          continue;
        }
        for (size_t k = 0; k < count; ++k) {
          cells[step.first + k].valid = true;
          cells[step.first + k].number = cell.valid && k == index ? 1.0 : 0.0;
        }
        continue;
      }
      default:
        break;
    }
    // Numeric: a null or a NaN is missing.
    if (!cell.valid || std::isnan(cell.number)) {
      if (step.op == Op::kImpute) {
        cell.valid = true;
        cell.number = transform.fill();
      } else {
        cell.valid = false;
      }
      continue;
    }
    const double x = cell.number;
    const train::TransformSpec& spec = transform.spec();
    switch (step.op) {
      case Op::kImpute:
        break;
      case Op::kScale:
        cell.number = (x - transform.mean()) / transform.scale();
        break;
      case Op::kBucketize:
        cell.number = static_cast<double>(
            std::upper_bound(spec.edges.begin(), spec.edges.end(), x) - spec.edges.begin());
        break;
      case Op::kLog:
        if (!(x > 0.0)) return false;
        cell.number = std::log(x);
        break;
      case Op::kLog1p:
        if (!(x > -1.0)) return false;
        cell.number = std::log1p(x);
        break;
      case Op::kClip: {
        double clipped = x;
        if (spec.lower) clipped = std::max(clipped, *spec.lower);
        if (spec.upper) clipped = std::min(clipped, *spec.upper);
        cell.number = clipped;
        break;
      }
      default:
        return false;
    }
  }
  constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();
  for (size_t column = 0; column < outputs_.size(); ++column) {
    const Cell& cell = cells[outputs_[column]];
    out[column] = cell.valid ? static_cast<float>(cell.number) : kMissing;
  }
  return true;
}

}  // namespace keel::serve
