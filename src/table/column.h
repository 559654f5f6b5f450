#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace keel::table {

// Logical column types. Timestamps are UTC microseconds (common/time.h).
enum class DataType : uint8_t { kBool, kInt64, kDouble, kString, kTimestamp };

// "bool", "int64", "double", "string", "timestamp".
std::string_view DataTypeName(DataType type);
// Inverse of DataTypeName; also accepts "int", "float", "bigint", "varchar", "boolean".
Result<DataType> ParseDataType(std::string_view name);
inline bool IsNumeric(DataType type) {
  return type == DataType::kBool || type == DataType::kInt64 || type == DataType::kDouble;
}

// One column of values of a single type with a per-row validity flag (null when 0).
// Storage is columnar and contiguous: int64 and timestamp values in ints(), doubles in
// doubles(), bools as 0/1 bytes in bools(), strings as one character buffer plus
// offsets (Arrow-like: string i is chars[offsets[i], offsets[i+1])).
// The value slot of a null row holds 0 / 0.0 / false / "".
// Thread-safety: concurrent const access is safe; mutation needs external sync.
class Column {
 public:
  Column() = default;
  // A column of `size` rows, all valid, zero-valued.
  Column(DataType type, size_t size);

  DataType type() const { return type_; }
  size_t size() const { return size_; }

  // True unless row `row` is null. Precondition: row < size().
  bool IsValid(size_t row) const { return validity_.empty() || validity_[row] != 0; }
  bool HasNulls() const;
  size_t NullCount() const;
  void SetNull(size_t row);
  void SetValid(size_t row);
  // Empty when the column has no nulls; else one byte per row, 1 = valid.
  const std::vector<uint8_t>& validity() const { return validity_; }
  std::vector<uint8_t>& mutable_validity();

  // Typed storage. Only the accessor matching type() is meaningful
  // (kInt64 and kTimestamp share ints()).
  std::vector<int64_t>& ints() { return ints_; }
  const std::vector<int64_t>& ints() const { return ints_; }
  std::vector<double>& doubles() { return doubles_; }
  const std::vector<double>& doubles() const { return doubles_; }
  std::vector<uint8_t>& bools() { return bools_; }
  const std::vector<uint8_t>& bools() const { return bools_; }

  std::string_view StringAt(size_t row) const {
    return std::string_view(chars_.data() + offsets_[row], offsets_[row + 1] - offsets_[row]);
  }
  const std::vector<uint64_t>& string_offsets() const { return offsets_; }
  const std::string& string_chars() const { return chars_; }

  // Numeric value of a bool/int64/double/timestamp row as a double (nulls read as 0).
  double NumericAt(size_t row) const;

  // Appending builders (for all types). AppendNull adds a null row.
  void AppendInt64(int64_t value);
  void AppendDouble(double value);
  void AppendBool(bool value);
  void AppendString(std::string_view value);
  void AppendNull();
  // Appends `count` strings; when `valid` is not null, row i is null where
  // valid[i] == 0 (its view is then ignored). The same column as AppendString /
  // AppendNull row by row, with one resize of the character and offset
  // buffers for all of them.
  void AppendStrings(const std::string_view* values, const uint8_t* valid, size_t count);
  void Reserve(size_t rows, size_t string_bytes = 0);
  // Makes room for `rows` more rows (and `string_bytes` more characters) when
  // appends of a total not known in advance come in batches: storage that must
  // grow grows to at least `growth` times its capacity (capacity never written
  // to costs no memory pages, while every regrowth copies and touches all the
  // values again).
  void ReserveMore(size_t rows, size_t string_bytes = 0, size_t growth = 8);
  // After values were pushed straight into ints()/doubles()/bools(), sets the
  // row count to `rows` (and extends validity, if present, with valid rows).
  // Precondition: the typed vector holds exactly `rows` values.
  void ResizeAfterBulkAppend(size_t rows);

  // A new column with rows picked by `row_ids` (in that order). An id of
  // kNullRow yields a null row.
  static constexpr uint32_t kNullRow = 0xFFFFFFFFu;
  Column Gather(const std::vector<uint32_t>& row_ids) const;

  // Human-readable value of one row ("null" for nulls), for messages and tests.
  std::string ValueToString(size_t row) const;

 private:
  void EnsureValidity();

  DataType type_ = DataType::kInt64;
  size_t size_ = 0;
  std::vector<uint8_t> validity_;
  std::vector<int64_t> ints_;
  std::vector<double> doubles_;
  std::vector<uint8_t> bools_;
  std::vector<uint64_t> offsets_{0};
  std::string chars_;
};

// Name and type of one column.
struct Field {
  std::string name;
  DataType type;
  bool operator==(const Field& other) const = default;
};

// An ordered set of named columns of equal length.
// Thread-safety: as Column.
class Table {
 public:
  size_t num_rows() const { return columns_.empty() ? 0 : columns_[0].size(); }
  size_t num_columns() const { return columns_.size(); }
  const std::vector<Field>& fields() const { return fields_; }
  const Column& column(size_t index) const { return columns_[index]; }
  Column& mutable_column(size_t index) { return columns_[index]; }

  // Index of the column called `name`, or -1.
  int FindColumn(std::string_view name) const;
  // The column called `name`. Errors: NotFound listing the available columns.
  Result<const Column*> GetColumn(std::string_view name) const;

  // Appends a column. Errors: AlreadyExists for a duplicate name, InvalidArgument
  // when its length differs from the table's.
  Status AddColumn(std::string name, Column column);
  // Replaces column `index` (keeping its name; the field takes the new type).
  // Errors: InvalidArgument for another row count. Precondition: index < num_columns().
  Status ReplaceColumn(size_t index, Column column);

  // Comma-separated "name type" list, for messages.
  std::string SchemaToString() const;

 private:
  std::vector<Field> fields_;
  std::vector<Column> columns_;
};

}  // namespace keel::table
