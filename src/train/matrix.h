#pragma once

// The dense training matrix and keel's pinned training row order.
//
// XGBoost's result depends on the order of the rows it is given, so keel fixes
// that order before building any matrix (issue 5, "Models"):
//
//   1. spine time, ascending;
//   2. then the entity key columns, in the order the pipeline names them, each
//      ascending (integers and timestamps numerically, bools false < true,
//      strings bytewise; nulls before every value);
//   3. then arrival: the row's position in the spine as read (a stable sort).
//
// Two runs over the same spine rows therefore build the same matrix, however
// the rows were shuffled by the engine that produced them, except for rows
// equal in time and every key, which keep their arrival order.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "table/column.h"

namespace keel::train {

// A row-major float32 matrix with named columns, as XGBoost consumes it.
// Missing values are NaN. Thread-safety: a value type; concurrent const access is safe.
struct DenseMatrix {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<float> values;  // rows * cols, row-major
  std::vector<std::string> feature_names;

  float at(size_t row, size_t col) const { return values[row * cols + col]; }
  std::span<const float> row(size_t index) const {
    return std::span<const float>(values.data() + index * cols, cols);
  }
};

// Builds a matrix from the named numeric columns of `table` (bool, int64,
// double, timestamp), in the given order; feature_names are those names. Nulls
// and NaN become NaN; values are rounded to the nearest float.
// Errors: NotFound for a missing column, InvalidArgument for a string column
// (encode it first; transforms.h) or for no feature columns.
Result<DenseMatrix> BuildDenseMatrix(const table::Table& table,
                                     const std::vector<std::string>& feature_columns);

// The labels of a numeric column as doubles, in row order.
// Errors: InvalidArgument for a string column or for a null label (naming the row).
Result<std::vector<double>> LabelValues(const table::Column& column);

// The permutation that puts `table`'s rows into the training order above:
// result[i] is the input row that goes to position i.
// Errors: NotFound for a missing column; InvalidArgument when the time column is
// not a timestamp or int64 column, or a key column is a double column.
Result<std::vector<uint32_t>> TrainingRowOrder(const table::Table& table,
                                               std::string_view time_column,
                                               const std::vector<std::string>& key_columns);

// A copy of `table` with its rows in the given order (every column gathered).
// Precondition: every id < table.num_rows().
table::Table GatherRows(const table::Table& table, const std::vector<uint32_t>& order);

}  // namespace keel::train
