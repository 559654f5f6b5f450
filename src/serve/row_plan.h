#pragma once

// The one-row form of a bundle's fitted transforms (train/transforms.h)
// followed by train::BuildDenseMatrix: raw input values of one row straight
// into the model's float row, with no table, no column and no allocation.
//
// Same semantics as the table path, value for value (tested against
// FittedTransforms::Apply + BuildDenseMatrix on real and random rows, see
// row_plan_test.cc and serving_model_test.cc): a raw value is missing when it
// is null or a NaN double; numeric transforms (impute, standard_scale,
// bucketize, log, clip) compute in double exactly as FittedTransform does;
// ordinal and one-hot encode strings by the training categories (unknown:
// the reserved index / all zeros); a string impute fills nulls; the model
// column is the double value cast to float, NaN when missing.
//
// A plan covers the common transform chains; Make refuses (and the caller
// keeps the table path) a chain it does not cover: categorical transforms of
// int64 / bool columns, a transform of a column that is not there, one-hot
// outputs that clash with other columns, a string model column. Apply refuses
// a row whose answer is an error in the table path (a value of another type
// than trained, an unknown category under unknown: error, log outside its
// domain): the caller then asks the table path, which names the error.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "table/column.h"
#include "train/transforms.h"

namespace keel::serve {

// One raw input value of one row.
struct RowValue {
  table::DataType type = table::DataType::kDouble;  // the value's own type
  bool valid = false;                               // false: null
  double number = 0;      // numeric types and timestamps: Column::NumericAt
  std::string_view text;  // strings
};

// The row value of `column` at `row`.
RowValue RowValueAt(const table::Column& column, size_t row);

// Thread-safety: immutable once made; Apply may be called from many threads.
class RowTransformPlan {
 public:
  struct Input {
    std::string name;
    table::DataType type = table::DataType::kDouble;  // as trained
  };

  // Compiles `transforms` over raw inputs `inputs` (in this order) for the
  // model columns `model_columns`. Errors: FailedPrecondition naming what the
  // row form does not cover (the table path still serves such a model).
  static Result<RowTransformPlan> Make(const train::FittedTransforms& transforms,
                                       const std::vector<Input>& inputs,
                                       const std::vector<std::string>& model_columns);

  size_t num_inputs() const { return num_inputs_; }
  size_t num_columns() const { return outputs_.size(); }

  // Writes the model row of raw values `inputs` (num_inputs(), in the order
  // given to Make) into out[0, num_columns()). Returns false, leaving `out`
  // undefined, when the table path answers the row with an error (see above).
  bool Apply(std::span<const RowValue> inputs, float* out) const;

 private:
  enum class Op : uint8_t {
    kImpute,
    kScale,
    kBucketize,
    kLog,
    kLog1p,
    kClip,
    kOrdinal,
    kOneHot,
    kImputeString
  };
  struct Step {
    Op op = Op::kImpute;
    uint32_t slot = 0;   // the column it reads (and, but for one-hot, writes)
    uint32_t first = 0;  // one-hot: its first output slot (one per category)
    bool unknown_error = false;
    const train::FittedTransform* transform = nullptr;  // owned by the model
    std::vector<std::string_view> categories;           // sorted (bytewise), into `transform`
  };
  // A column's value while the steps run.
  struct Cell {
    bool valid = false;
    double number = 0;
    std::string_view text;
  };
  static constexpr size_t kMaxSlots = 256;  // on the stack in Apply

  size_t num_inputs_ = 0;
  size_t num_slots_ = 0;
  std::vector<table::DataType> input_types_;
  std::vector<Step> steps_;
  std::vector<uint32_t> outputs_;  // model column -> slot
};

}  // namespace keel::serve
