#include "train/matrix.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>
#include <thread>

namespace keel::train {

Result<DenseMatrix> BuildDenseMatrix(const table::Table& table,
                                     const std::vector<std::string>& feature_columns) {
  if (feature_columns.empty()) return InvalidArgument("a matrix needs at least one feature column");
  std::vector<const table::Column*> columns;
  for (const std::string& name : feature_columns) {
    ASSIGN_OR_RETURN(const table::Column* column, table.GetColumn(name));
    if (!table::IsNumeric(column->type()) && column->type() != table::DataType::kTimestamp) {
      return InvalidArgument("feature column '" + name + "' is " +
                             std::string(table::DataTypeName(column->type())) +
                             "; encode it as numbers first");
    }
    columns.push_back(column);
  }
  DenseMatrix matrix;
  matrix.rows = table.num_rows();
  matrix.cols = columns.size();
  matrix.feature_names = feature_columns;
  matrix.values.resize(matrix.rows * matrix.cols);
  constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();
  // Column by column: each column is read contiguously, the matrix written with a stride.
  for (size_t column_idx = 0; column_idx < columns.size(); ++column_idx) {
    const table::Column& column = *columns[column_idx];
    float* out = matrix.values.data() + column_idx;
    for (size_t row = 0; row < matrix.rows; ++row, out += matrix.cols) {
      *out = column.IsValid(row) ? static_cast<float>(column.NumericAt(row)) : kMissing;
    }
  }
  return matrix;
}

Result<std::vector<double>> LabelValues(const table::Column& column) {
  if (!table::IsNumeric(column.type())) {
    return InvalidArgument("a label column must be numeric, not " +
                           std::string(table::DataTypeName(column.type())));
  }
  std::vector<double> labels(column.size());
  for (size_t row = 0; row < column.size(); ++row) {
    if (!column.IsValid(row))
      return InvalidArgument("label of row " + std::to_string(row) + " is null");
    labels[row] = column.NumericAt(row);
  }
  return labels;
}

namespace {

// -1, 0 or 1 comparing two rows of one column; nulls first.
int CompareRows(const table::Column& column, uint32_t a, uint32_t b) {
  const bool a_valid = column.IsValid(a);
  const bool b_valid = column.IsValid(b);
  if (a_valid != b_valid) return a_valid ? 1 : -1;
  if (!a_valid) return 0;
  switch (column.type()) {
    case table::DataType::kString: {
      const int order = column.StringAt(a).compare(column.StringAt(b));
      return (order > 0) - (order < 0);
    }
    case table::DataType::kBool:
      return (column.bools()[a] > column.bools()[b]) - (column.bools()[a] < column.bools()[b]);
    default:
      return (column.ints()[a] > column.ints()[b]) - (column.ints()[a] < column.ints()[b]);
  }
}

}  // namespace

Result<std::vector<uint32_t>> TrainingRowOrder(const table::Table& table,
                                               std::string_view time_column,
                                               const std::vector<std::string>& key_columns) {
  std::vector<const table::Column*> sort_columns;
  ASSIGN_OR_RETURN(const table::Column* time, table.GetColumn(time_column));
  if (time->type() != table::DataType::kTimestamp && time->type() != table::DataType::kInt64) {
    return InvalidArgument("the spine time column '" + std::string(time_column) +
                           "' must be a timestamp, not " +
                           std::string(table::DataTypeName(time->type())));
  }
  sort_columns.push_back(time);
  for (const std::string& name : key_columns) {
    ASSIGN_OR_RETURN(const table::Column* key, table.GetColumn(name));
    if (key->type() == table::DataType::kDouble) {
      return InvalidArgument("entity key column '" + name + "' is a double column");
    }
    sort_columns.push_back(key);
  }
  std::vector<uint32_t> order(table.num_rows());
  std::iota(order.begin(), order.end(), 0u);
  // The time column decides most comparisons: read it directly when it has
  // no nulls; the other columns break ties.
  const bool plain_time = !time->HasNulls();
  const std::vector<int64_t>& times = time->ints();
  auto less = [&](uint32_t a, uint32_t b) {
    size_t first = 0;
    if (plain_time) {
      if (times[a] != times[b]) return times[a] < times[b];
      first = 1;
    }
    for (size_t index = first; index < sort_columns.size(); ++index) {
      const int comparison = CompareRows(*sort_columns[index], a, b);
      if (comparison != 0) return comparison < 0;
    }
    return false;  // equal: arrival order, kept by the stable sort
  };
  // Two halves sorted side by side, then merged; both steps are stable, so
  // the order is the one a single stable sort gives.
  const size_t half = order.size() / 2;
  if (half < 4096) {
    std::stable_sort(order.begin(), order.end(), less);
    return order;
  }
  std::thread first([&] { std::stable_sort(order.begin(), order.begin() + half, less); });
  std::stable_sort(order.begin() + half, order.end(), less);
  first.join();
  std::vector<uint32_t> merged(order.size());
  std::merge(order.begin(), order.begin() + half, order.begin() + half, order.end(), merged.begin(),
             less);
  return merged;
}

table::Table GatherRows(const table::Table& table, const std::vector<uint32_t>& order) {
  // Columns are gathered on two threads, then added in their order.
  std::vector<table::Column> columns(table.num_columns());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t column = next.fetch_add(1); column < columns.size(); column = next.fetch_add(1)) {
      columns[column] = table.column(column).Gather(order);
    }
  };
  std::thread helper(worker);
  worker();
  helper.join();
  table::Table out;
  for (size_t column_idx = 0; column_idx < table.num_columns(); ++column_idx) {
    Status status = out.AddColumn(table.fields()[column_idx].name, std::move(columns[column_idx]));
    // Names come from a valid table and every gathered column has order.size() rows.
    assert(status.ok());
    (void)status;
  }
  return out;
}

}  // namespace keel::train
