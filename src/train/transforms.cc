#include "train/transforms.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace keel::train {
namespace {

using nlohmann::json;
using table::Column;
using table::DataType;

constexpr std::pair<TransformKind, std::string_view> kKindNames[] = {
    {TransformKind::kImpute, "impute"},       {TransformKind::kStandardScale, "standard_scale"},
    {TransformKind::kOneHot, "one_hot"},      {TransformKind::kOrdinal, "ordinal"},
    {TransformKind::kBucketize, "bucketize"}, {TransformKind::kLog, "log"},
    {TransformKind::kClip, "clip"},
};

bool IsCategorical(TransformKind kind) {
  return kind == TransformKind::kOneHot || kind == TransformKind::kOrdinal;
}

bool IsNumberColumn(DataType type) {
  return type == DataType::kBool || type == DataType::kInt64 || type == DataType::kDouble;
}

bool IsMissing(const Column& column, size_t row) {
  return !column.IsValid(row) ||
         (column.type() == DataType::kDouble && std::isnan(column.doubles()[row]));
}

// The non-missing values of a numeric column, in row order.
std::vector<double> PresentValues(const Column& column) {
  std::vector<double> values;
  values.reserve(column.size());
  for (size_t row = 0; row < column.size(); ++row) {
    if (!IsMissing(column, row)) values.push_back(column.NumericAt(row));
  }
  return values;
}

double Mean(const std::vector<double>& values) {
  double sum = 0.0;
  for (double value : values) sum += value;
  return sum / static_cast<double>(values.size());
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  if (values.size() % 2 == 1) return values[middle];
  return (values[middle - 1] + values[middle]) / 2.0;
}

std::string_view StrategyName(ImputeStrategy strategy) {
  switch (strategy) {
    case ImputeStrategy::kMean:
      return "mean";
    case ImputeStrategy::kMedian:
      return "median";
    case ImputeStrategy::kConstant:
      return "constant";
  }
  return "?";
}

Result<ImputeStrategy> ParseStrategy(std::string_view name) {
  if (name == "mean") return ImputeStrategy::kMean;
  if (name == "median") return ImputeStrategy::kMedian;
  if (name == "constant") return ImputeStrategy::kConstant;
  return InvalidArgument("unknown impute strategy '" + std::string(name) +
                         "' (mean, median or constant)");
}

Status CheckOptions(const TransformSpec& spec) {
  if (spec.kind == TransformKind::kBucketize) {
    if (spec.edges.empty()) return InvalidArgument("bucketize needs at least one edge");
    for (size_t i = 0; i < spec.edges.size(); ++i) {
      if (!std::isfinite(spec.edges[i])) return InvalidArgument("bucketize edges must be finite");
      if (i > 0 && !(spec.edges[i - 1] < spec.edges[i])) {
        return InvalidArgument("bucketize edges must be strictly increasing");
      }
    }
  }
  if (spec.kind == TransformKind::kClip) {
    if (!spec.lower && !spec.upper) return InvalidArgument("clip needs a lower or an upper bound");
    if ((spec.lower && !std::isfinite(*spec.lower)) ||
        (spec.upper && !std::isfinite(*spec.upper))) {
      return InvalidArgument("clip bounds must be finite");
    }
    if (spec.lower && spec.upper && *spec.lower > *spec.upper) {
      return InvalidArgument("clip's lower bound exceeds its upper bound");
    }
  }
  if (spec.kind == TransformKind::kImpute && spec.strategy == ImputeStrategy::kConstant &&
      !std::isfinite(spec.fill_value)) {
    return InvalidArgument("impute's fill value must be finite");
  }
  return Status::Ok();
}

// The category text of a row of a string / int64 / bool column.
std::string CategoryOf(const Column& column, size_t row) {
  return column.type() == DataType::kString ? std::string(column.StringAt(row))
                                            : column.ValueToString(row);
}

// Distinct non-null values, sorted in the column's natural order, as text
// (strings bytewise, as std::string's operator< orders them).
std::vector<std::string> SortedCategories(const Column& column) {
  std::vector<std::string> out;
  if (column.type() == DataType::kString) {
    std::unordered_set<std::string_view> distinct;
    std::string_view previous;
    bool have_previous = false;
    for (size_t row = 0; row < column.size(); ++row) {
      if (!column.IsValid(row)) continue;
      const std::string_view value = column.StringAt(row);
      if (have_previous && value == previous) continue;  // runs of one value are common
      distinct.insert(value);
      previous = value;
      have_previous = true;
    }
    out.assign(distinct.begin(), distinct.end());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<int64_t> distinct;
  for (size_t row = 0; row < column.size(); ++row) {
    if (!column.IsValid(row)) continue;
    distinct.push_back(column.type() == DataType::kBool ? column.bools()[row] : column.ints()[row]);
  }
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  for (int64_t value : distinct) {
    out.push_back(column.type() == DataType::kBool ? (value ? "true" : "false")
                                                   : std::to_string(value));
  }
  return out;
}

}  // namespace

std::string_view TransformKindName(TransformKind kind) {
  for (const auto& [value, name] : kKindNames) {
    if (value == kind) return name;
  }
  return "?";
}

Result<TransformKind> ParseTransformKind(std::string_view name) {
  for (const auto& [value, known] : kKindNames) {
    if (known == name) return value;
  }
  return InvalidArgument("unknown transform '" + std::string(name) +
                         "' (impute, standard_scale, one_hot, ordinal, bucketize, log, clip)");
}

// ---------------------------------------------------------------------------
// FittedTransform

Result<FittedTransform> FittedTransform::Fit(const TransformSpec& spec, const Column& train) {
  RETURN_IF_ERROR(CheckOptions(spec));
  FittedTransform fitted;
  fitted.spec_ = spec;
  fitted.input_type_ = train.type();
  const std::string what = std::string(TransformKindName(spec.kind)) + " of '" + spec.column + "'";
  if (IsCategorical(spec.kind)) {
    if (train.type() != DataType::kString && train.type() != DataType::kInt64 &&
        train.type() != DataType::kBool) {
      return InvalidArgument(what + " needs a string, int64 or bool column, not " +
                             std::string(table::DataTypeName(train.type())));
    }
    fitted.categories_ = SortedCategories(train);
    if (fitted.categories_.empty()) {
      return FailedPrecondition(what + ": the training column has no non-null value");
    }
    fitted.IndexCategories();
    return fitted;
  }
  if (spec.kind == TransformKind::kImpute && train.type() == DataType::kString) {
    if (spec.strategy != ImputeStrategy::kConstant) {
      return InvalidArgument(what + ": a string column can only be imputed with a constant");
    }
    return fitted;
  }
  if (!IsNumberColumn(train.type())) {
    return InvalidArgument(what + " needs a numeric column, not " +
                           std::string(table::DataTypeName(train.type())));
  }
  const bool needs_statistics =
      spec.kind == TransformKind::kStandardScale ||
      (spec.kind == TransformKind::kImpute && spec.strategy != ImputeStrategy::kConstant);
  if (!needs_statistics) {
    fitted.fill_ = spec.fill_value;
    return fitted;
  }
  const std::vector<double> values = PresentValues(train);
  if (values.empty()) {
    return FailedPrecondition(what + ": the training column has no non-missing value");
  }
  if (spec.kind == TransformKind::kImpute) {
    fitted.fill_ = spec.strategy == ImputeStrategy::kMean ? Mean(values) : Median(values);
    return fitted;
  }
  fitted.mean_ = Mean(values);
  double squares = 0.0;
  for (double value : values) squares += (value - fitted.mean_) * (value - fitted.mean_);
  const double std_dev = std::sqrt(squares / static_cast<double>(values.size()));
  fitted.scale_ = std_dev == 0.0 ? 1.0 : std_dev;
  return fitted;
}

void FittedTransform::IndexCategories() {
  category_index_.clear();
  for (size_t i = 0; i < categories_.size(); ++i) {
    category_index_.emplace(categories_[i], static_cast<int64_t>(i));
  }
}

std::vector<std::string> FittedTransform::OutputNames() const {
  if (spec_.kind != TransformKind::kOneHot) return {spec_.column};
  std::vector<std::string> names;
  for (const std::string& category : categories_) names.push_back(spec_.column + "=" + category);
  return names;
}

Result<std::vector<table::Column>> FittedTransform::Apply(const Column& input) const {
  if (IsCategorical(spec_.kind)) return ApplyCategorical(input);
  if (spec_.kind == TransformKind::kImpute && input_type_ == DataType::kString) {
    if (input.type() != DataType::kString) {
      return InvalidArgument("impute of '" + spec_.column + "' was fitted on a string column");
    }
    Column out(DataType::kString, 0);
    for (size_t row = 0; row < input.size(); ++row) {
      out.AppendString(input.IsValid(row) ? input.StringAt(row) : spec_.fill_string);
    }
    return std::vector<Column>{std::move(out)};
  }
  ASSIGN_OR_RETURN(Column out, ApplyNumeric(input));
  return std::vector<Column>{std::move(out)};
}

Result<Column> FittedTransform::ApplyNumeric(const Column& input) const {
  if (!IsNumberColumn(input.type())) {
    return InvalidArgument(std::string(TransformKindName(spec_.kind)) + " of '" + spec_.column +
                           "' needs a numeric column, not " +
                           std::string(table::DataTypeName(input.type())));
  }
  Column out(DataType::kDouble, input.size());
  std::vector<double>& values = out.doubles();
  for (size_t row = 0; row < input.size(); ++row) {
    if (IsMissing(input, row)) {
      if (spec_.kind == TransformKind::kImpute) {
        values[row] = fill_;
      } else {
        out.SetNull(row);
      }
      continue;
    }
    const double x = input.NumericAt(row);
    switch (spec_.kind) {
      case TransformKind::kImpute:
        values[row] = x;
        break;
      case TransformKind::kStandardScale:
        values[row] = (x - mean_) / scale_;
        break;
      case TransformKind::kBucketize:
        values[row] = static_cast<double>(
            std::upper_bound(spec_.edges.begin(), spec_.edges.end(), x) - spec_.edges.begin());
        break;
      case TransformKind::kLog:
        if (spec_.log1p ? !(x > -1.0) : !(x > 0.0)) {
          return InvalidArgument(std::string(spec_.log1p ? "log1p" : "log") + " of '" +
                                 spec_.column + "': row " + std::to_string(row) + " holds " +
                                 input.ValueToString(row) + ", outside its domain");
        }
        values[row] = spec_.log1p ? std::log1p(x) : std::log(x);
        break;
      case TransformKind::kClip: {
        double clipped = x;
        if (spec_.lower) clipped = std::max(clipped, *spec_.lower);
        if (spec_.upper) clipped = std::min(clipped, *spec_.upper);
        values[row] = clipped;
        break;
      }
      default:
        return Internal("not a numeric transform");
    }
  }
  return out;
}

Result<std::vector<table::Column>> FittedTransform::ApplyCategorical(const Column& input) const {
  if (input.type() != input_type_) {
    return InvalidArgument(std::string(TransformKindName(spec_.kind)) + " of '" + spec_.column +
                           "' was fitted on a " + std::string(table::DataTypeName(input_type_)) +
                           " column, not " + std::string(table::DataTypeName(input.type())));
  }
  const bool one_hot = spec_.kind == TransformKind::kOneHot;
  std::vector<Column> out;
  if (one_hot) {
    out.assign(categories_.size(), Column(DataType::kDouble, input.size()));
  } else {
    out.emplace_back(DataType::kDouble, input.size());
  }
  int64_t index = -1;  // of the last category looked up; -1: unknown
  for (size_t row = 0; row < input.size(); ++row) {
    if (!input.IsValid(row)) {
      if (!one_hot) out[0].SetNull(row);
      continue;  // one-hot: all zeros
    }
    // The index of the row's category; a row equal to the one before reuses its lookup.
    const bool same_as_previous =
        row > 0 && input.IsValid(row - 1) &&
        (input.type() == DataType::kString ? input.StringAt(row) == input.StringAt(row - 1)
         : input.type() == DataType::kBool ? input.bools()[row] == input.bools()[row - 1]
                                           : input.ints()[row] == input.ints()[row - 1]);
    if (!same_as_previous) {
      const auto found = input.type() == DataType::kString
                             ? category_index_.find(input.StringAt(row))
                             : category_index_.find(CategoryOf(input, row));
      index = found == category_index_.end() ? -1 : found->second;
    }
    if (index < 0) {
      if (spec_.unknown == UnknownCategory::kError) {
        return InvalidArgument(std::string(TransformKindName(spec_.kind)) + " of '" + spec_.column +
                               "': row " + std::to_string(row) + " holds the unknown category '" +
                               CategoryOf(input, row) + "'");
      }
      if (!one_hot) out[0].doubles()[row] = static_cast<double>(categories_.size());
      continue;
    }
    if (one_hot) {
      out[static_cast<size_t>(index)].doubles()[row] = 1.0;
    } else {
      out[0].doubles()[row] = static_cast<double>(index);
    }
  }
  return out;
}

json FittedTransform::ToJson() const {
  json out = {{"kind", TransformKindName(spec_.kind)},
              {"column", spec_.column},
              {"input_type", table::DataTypeName(input_type_)}};
  switch (spec_.kind) {
    case TransformKind::kImpute:
      out["strategy"] = StrategyName(spec_.strategy);
      out["fill"] = fill_;
      out["fill_string"] = spec_.fill_string;
      break;
    case TransformKind::kStandardScale:
      out["mean"] = mean_;
      out["scale"] = scale_;
      break;
    case TransformKind::kOneHot:
    case TransformKind::kOrdinal:
      out["categories"] = categories_;
      out["unknown"] = spec_.unknown == UnknownCategory::kError ? "error" : "ignore";
      break;
    case TransformKind::kBucketize:
      out["edges"] = spec_.edges;
      break;
    case TransformKind::kLog:
      out["log1p"] = spec_.log1p;
      break;
    case TransformKind::kClip:
      if (spec_.lower) out["lower"] = *spec_.lower;
      if (spec_.upper) out["upper"] = *spec_.upper;
      break;
  }
  return out;
}

Result<FittedTransform> FittedTransform::FromJson(const json& document) {
  FittedTransform fitted;
  TransformSpec& spec = fitted.spec_;
  try {
    ASSIGN_OR_RETURN(spec.kind, ParseTransformKind(document.at("kind").get<std::string>()));
    spec.column = document.at("column").get<std::string>();
    ASSIGN_OR_RETURN(fitted.input_type_,
                     table::ParseDataType(document.at("input_type").get<std::string>()));
    switch (spec.kind) {
      case TransformKind::kImpute: {
        ASSIGN_OR_RETURN(spec.strategy, ParseStrategy(document.at("strategy").get<std::string>()));
        fitted.fill_ = document.at("fill").get<double>();
        spec.fill_value = fitted.fill_;
        spec.fill_string = document.at("fill_string").get<std::string>();
        break;
      }
      case TransformKind::kStandardScale:
        fitted.mean_ = document.at("mean").get<double>();
        fitted.scale_ = document.at("scale").get<double>();
        break;
      case TransformKind::kOneHot:
      case TransformKind::kOrdinal:
        fitted.categories_ = document.at("categories").get<std::vector<std::string>>();
        spec.unknown = document.at("unknown").get<std::string>() == "error"
                           ? UnknownCategory::kError
                           : UnknownCategory::kIgnore;
        fitted.IndexCategories();
        break;
      case TransformKind::kBucketize:
        spec.edges = document.at("edges").get<std::vector<double>>();
        break;
      case TransformKind::kLog:
        spec.log1p = document.at("log1p").get<bool>();
        break;
      case TransformKind::kClip:
        if (document.contains("lower")) spec.lower = document["lower"].get<double>();
        if (document.contains("upper")) spec.upper = document["upper"].get<double>();
        break;
    }
  } catch (const json::exception& error) {
    return InvalidArgument(std::string("not a fitted transform: ") + error.what());
  }
  RETURN_IF_ERROR(CheckOptions(spec).WithContext("fitted transform"));
  return fitted;
}

// ---------------------------------------------------------------------------
// FittedTransforms

namespace {

// `table` with column `name` replaced by `outputs` (named `names`) at its
// position; the other columns are moved over.
Result<table::Table> ReplaceColumn(table::Table table, const std::string& name,
                                   std::vector<Column> outputs,
                                   const std::vector<std::string>& names) {
  table::Table out;
  for (size_t column_idx = 0; column_idx < table.num_columns(); ++column_idx) {
    if (table.fields()[column_idx].name != name) {
      RETURN_IF_ERROR(out.AddColumn(table.fields()[column_idx].name,
                                    std::move(table.mutable_column(column_idx))));
      continue;
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      RETURN_IF_ERROR(out.AddColumn(names[i], std::move(outputs[i])));
    }
  }
  return out;
}

Result<table::Table> ApplyOne(const FittedTransform& transform, table::Table input, size_t step) {
  const std::string context = "transform " + std::to_string(step) + " (" +
                              std::string(TransformKindName(transform.spec().kind)) + " of '" +
                              transform.spec().column + "')";
  Result<const Column*> column = input.GetColumn(transform.spec().column);
  if (!column.ok()) return column.status().WithContext(context);
  Result<std::vector<Column>> outputs = transform.Apply(**column);
  if (!outputs.ok()) return outputs.status().WithContext(context);
  Result<table::Table> replaced =
      ReplaceColumn(std::move(input), transform.spec().column, std::move(outputs).value(),
                    transform.OutputNames());
  if (!replaced.ok()) return replaced.status().WithContext(context);
  return replaced;
}

}  // namespace

Result<FittedTransforms> FittedTransforms::Fit(const std::vector<TransformSpec>& specs,
                                               const table::Table& train,
                                               table::Table* transformed) {
  FittedTransforms fitted;
  table::Table current = train;
  for (size_t step = 0; step < specs.size(); ++step) {
    const std::string context = "transform " + std::to_string(step) + " (" +
                                std::string(TransformKindName(specs[step].kind)) + " of '" +
                                specs[step].column + "')";
    Result<const Column*> column = current.GetColumn(specs[step].column);
    if (!column.ok()) return column.status().WithContext(context);
    Result<FittedTransform> transform = FittedTransform::Fit(specs[step], **column);
    if (!transform.ok()) return transform.status().WithContext(context);
    if (step + 1 < specs.size() || transformed != nullptr) {
      ASSIGN_OR_RETURN(current, ApplyOne(*transform, std::move(current), step));
    }
    fitted.transforms_.push_back(std::move(transform).value());
  }
  if (transformed != nullptr) *transformed = std::move(current);
  return fitted;
}

Result<table::Table> FittedTransforms::Apply(const table::Table& input) const {
  table::Table current = input;
  for (size_t step = 0; step < transforms_.size(); ++step) {
    ASSIGN_OR_RETURN(current, ApplyOne(transforms_[step], std::move(current), step));
  }
  return current;
}

json FittedTransforms::ToJson() const {
  json list = json::array();
  for (const FittedTransform& transform : transforms_) list.push_back(transform.ToJson());
  return {{"transforms", list}};
}

Result<FittedTransforms> FittedTransforms::FromJson(const json& document) {
  if (!document.is_object() || !document.contains("transforms") ||
      !document["transforms"].is_array()) {
    return InvalidArgument("fitted transforms: expected {\"transforms\": [...]}");
  }
  FittedTransforms fitted;
  for (const json& item : document["transforms"]) {
    ASSIGN_OR_RETURN(FittedTransform transform, FittedTransform::FromJson(item));
    fitted.transforms_.push_back(std::move(transform));
  }
  return fitted;
}

}  // namespace keel::train
