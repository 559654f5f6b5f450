#pragma once

// Feature transforms fitted on the training split only and applied unchanged
// to every other split and at serving time (issue 5, "leakage guard").
//
//   TransformSpec      what the pipeline asks for (kind, column, options)
//   FittedTransform    one spec plus the statistics learned from the training
//                      column; Apply uses only those, never the data it is given
//   FittedTransforms   an ordered list: transform i is fitted on the training
//                      table as transforms 0..i-1 left it (impute, then scale)
//
// Missing values: a null row, and NaN in a double column, is "missing".
// Numeric outputs are double columns; a missing input stays missing (null)
// except through impute (filled) and one-hot (all zeros).
//
// Fitted state serialises to JSON (nlohmann) and loads back bit-identically:
// doubles are written in shortest round-trip form.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "table/column.h"

namespace keel::train {

enum class TransformKind {
  kImpute,         // fill missing values (numeric: mean / median / constant; string: constant)
  kStandardScale,  // (x - mean) / std
  kOneHot,         // one 0/1 column per training category
  kOrdinal,        // category -> its index among the sorted training categories
  kBucketize,      // x -> index of its bucket among given edges
  kLog,            // log(x), or log1p(x)
  kClip,           // min(max(x, lower), upper)
};

// "impute", "standard_scale", "one_hot", "ordinal", "bucketize", "log", "clip".
std::string_view TransformKindName(TransformKind kind);
// Inverse of TransformKindName. Errors: InvalidArgument naming the accepted kinds.
Result<TransformKind> ParseTransformKind(std::string_view name);

enum class ImputeStrategy { kMean, kMedian, kConstant };

// What one-hot / ordinal encoding does with a category not seen in training.
enum class UnknownCategory {
  kIgnore,  // one-hot: all zeros; ordinal: the reserved index (number of categories)
  kError,   // Apply fails with InvalidArgument naming the value and row
};

// One transform of one column. Only the fields of its kind are read.
struct TransformSpec {
  TransformKind kind = TransformKind::kImpute;
  std::string column;
  // kImpute. Mean: the arithmetic mean of the non-missing training values
  // (numpy.nanmean, to rounding: keel sums left to right, NumPy pairwise).
  // Median: numpy.nanmedian, bit for bit (the mean (a + b) / 2 of the two middle
  // values for an even count). Constant: fill_value (numbers) or fill_string
  // (string columns, the only strategy for them).
  ImputeStrategy strategy = ImputeStrategy::kMean;
  double fill_value = 0.0;
  std::string fill_string;
  // kOneHot, kOrdinal (string, int64 or bool columns). Categories are the
  // distinct non-null training values, sorted (numerically for integers,
  // bytewise for strings). Missing values: one-hot gives all zeros; ordinal
  // keeps them missing (XGBoost handles that natively).
  UnknownCategory unknown = UnknownCategory::kIgnore;
  // kBucketize: strictly increasing finite edges; bucket = number of edges <= x
  // (numpy.searchsorted(edges, x, side="right")), so 0 .. edges.size().
  std::vector<double> edges;
  // kLog: log(x) needs x > 0; log1p(x) needs x > -1. Other values are an error.
  bool log1p = false;
  // kClip: at least one bound; lower <= upper.
  std::optional<double> lower;
  std::optional<double> upper;
};

// A transform with its fitted state.
// Thread-safety: immutable after Fit/FromJson; const methods are safe from any thread.
class FittedTransform {
 public:
  // Learns the statistics `spec` needs from the training column `train`.
  // Errors: InvalidArgument for a spec that does not fit the column's type or
  // bad options (unsorted edges, no clip bound, ...); FailedPrecondition when
  // the training column has no non-missing value to learn from (mean, median,
  // scaling, categories).
  static Result<FittedTransform> Fit(const TransformSpec& spec, const table::Column& train);

  const TransformSpec& spec() const { return spec_; }

  // Names of the output columns: the input column's name, or for one-hot
  // "<column>=<category>" per training category, in category order.
  std::vector<std::string> OutputNames() const;

  // Transforms `input` (a column of the type the transform was fitted on)
  // using the fitted state only. Returns one column, or one per category for
  // one-hot. Errors: InvalidArgument for a type mismatch, an unknown category
  // under UnknownCategory::kError, or a value outside log's domain (naming the
  // row and value).
  Result<std::vector<table::Column>> Apply(const table::Column& input) const;

  // Spec plus fitted state as JSON; FromJson(ToJson()) is an equal transform.
  nlohmann::json ToJson() const;
  // Errors: InvalidArgument for JSON that is not a fitted transform.
  static Result<FittedTransform> FromJson(const nlohmann::json& json);

  // Fitted statistics (for reports and tests): the impute fill value, the
  // scaling mean and scale (population standard deviation, 1 when it is 0, as
  // scikit-learn's StandardScaler), and the categories as text.
  double fill() const { return fill_; }
  double mean() const { return mean_; }
  double scale() const { return scale_; }
  const std::vector<std::string>& categories() const { return categories_; }

 private:
  Result<table::Column> ApplyNumeric(const table::Column& input) const;
  Result<std::vector<table::Column>> ApplyCategorical(const table::Column& input) const;
  void IndexCategories();

  TransformSpec spec_;
  table::DataType input_type_ = table::DataType::kDouble;
  double fill_ = 0.0;
  double mean_ = 0.0;
  double scale_ = 1.0;
  std::vector<std::string> categories_;
  // Looked up by string_view too (no string built per row).
  struct TextHash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>()(text); }
  };
  std::unordered_map<std::string, int64_t, TextHash, std::equal_to<>> category_index_;
};

// An ordered list of fitted transforms over a table.
// Thread-safety: as FittedTransform.
class FittedTransforms {
 public:
  // Fits each spec in order on `train` as the previous transforms left it.
  // `transformed`, when not null, receives `train` through every transform
  // (what Apply(train) gives, without transforming it twice).
  // Errors: NotFound for a column missing at its step; the errors of
  // FittedTransform::Fit, with the step and column named; with
  // `transformed`, also those of applying the last transform.
  static Result<FittedTransforms> Fit(const std::vector<TransformSpec>& specs,
                                      const table::Table& train,
                                      table::Table* transformed = nullptr);

  // Applies every transform in order. A transformed column is replaced in
  // place (one-hot: by its indicator columns at the same position); other
  // columns pass through. Errors: as FittedTransform::Apply, with context.
  Result<table::Table> Apply(const table::Table& input) const;

  const std::vector<FittedTransform>& transforms() const { return transforms_; }

  // {"transforms": [ ... ]}; FromJson(ToJson()) applies bit-identically.
  nlohmann::json ToJson() const;
  static Result<FittedTransforms> FromJson(const nlohmann::json& json);

 private:
  std::vector<FittedTransform> transforms_;
};

}  // namespace keel::train
