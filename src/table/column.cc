#include "table/column.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/time.h"

namespace keel::table {

std::string_view DataTypeName(DataType type) {
  switch (type) {
    case DataType::kBool:
      return "bool";
    case DataType::kInt64:
      return "int64";
    case DataType::kDouble:
      return "double";
    case DataType::kString:
      return "string";
    case DataType::kTimestamp:
      return "timestamp";
  }
  return "unknown";
}

Result<DataType> ParseDataType(std::string_view name) {
  if (name == "bool" || name == "boolean") return DataType::kBool;
  if (name == "int64" || name == "int" || name == "bigint" || name == "integer") {
    return DataType::kInt64;
  }
  if (name == "double" || name == "float" || name == "float64") return DataType::kDouble;
  if (name == "string" || name == "varchar" || name == "text") return DataType::kString;
  if (name == "timestamp") return DataType::kTimestamp;
  return InvalidArgument("unknown type '" + std::string(name) +
                         "' (expected bool, int64, double, string or timestamp)");
}

Column::Column(DataType type, size_t size) : type_(type), size_(size) {
  switch (type) {
    case DataType::kBool:
      bools_.assign(size, 0);
      break;
    case DataType::kInt64:
    case DataType::kTimestamp:
      ints_.assign(size, 0);
      break;
    case DataType::kDouble:
      doubles_.assign(size, 0.0);
      break;
    case DataType::kString:
      offsets_.assign(size + 1, 0);
      break;
  }
}

bool Column::HasNulls() const { return NullCount() > 0; }

size_t Column::NullCount() const {
  if (validity_.empty()) return 0;
  return static_cast<size_t>(std::count(validity_.begin(), validity_.end(), uint8_t{0}));
}

void Column::EnsureValidity() {
  if (validity_.empty()) validity_.assign(size_, 1);
}

std::vector<uint8_t>& Column::mutable_validity() {
  EnsureValidity();
  return validity_;
}

void Column::SetNull(size_t row) {
  EnsureValidity();
  validity_[row] = 0;
}

void Column::SetValid(size_t row) {
  if (!validity_.empty()) validity_[row] = 1;
}

double Column::NumericAt(size_t row) const {
  switch (type_) {
    case DataType::kBool:
      return bools_[row];
    case DataType::kInt64:
    case DataType::kTimestamp:
      return static_cast<double>(ints_[row]);
    case DataType::kDouble:
      return doubles_[row];
    case DataType::kString:
      return 0.0;
  }
  return 0.0;
}

void Column::AppendInt64(int64_t value) {
  ints_.push_back(value);
  if (!validity_.empty()) validity_.push_back(1);
  ++size_;
}

void Column::AppendDouble(double value) {
  doubles_.push_back(value);
  if (!validity_.empty()) validity_.push_back(1);
  ++size_;
}

void Column::AppendBool(bool value) {
  bools_.push_back(value ? 1 : 0);
  if (!validity_.empty()) validity_.push_back(1);
  ++size_;
}

void Column::AppendString(std::string_view value) {
  chars_.append(value);
  offsets_.push_back(chars_.size());
  if (!validity_.empty()) validity_.push_back(1);
  ++size_;
}

void Column::AppendNull() {
  EnsureValidity();
  switch (type_) {
    case DataType::kBool:
      bools_.push_back(0);
      break;
    case DataType::kInt64:
    case DataType::kTimestamp:
      ints_.push_back(0);
      break;
    case DataType::kDouble:
      doubles_.push_back(0.0);
      break;
    case DataType::kString:
      offsets_.push_back(chars_.size());
      break;
  }
  validity_.push_back(0);
  ++size_;
}

namespace {

// memcpy without a call for the short strings that most columns hold
// (overlapping loads and stores of 8, 4 or 1 bytes; never outside [from,
// from + length) or [to, to + length)).
inline void CopyBytes(const char* from, size_t length, char* to) {
  if (length >= 8 && length <= 16) {
    uint64_t head, tail;
    std::memcpy(&head, from, 8);
    std::memcpy(&tail, from + length - 8, 8);
    std::memcpy(to, &head, 8);
    std::memcpy(to + length - 8, &tail, 8);
  } else if (length >= 4 && length < 8) {
    uint32_t head, tail;
    std::memcpy(&head, from, 4);
    std::memcpy(&tail, from + length - 4, 4);
    std::memcpy(to, &head, 4);
    std::memcpy(to + length - 4, &tail, 4);
  } else if (length > 0 && length < 4) {
    to[0] = from[0];
    to[length / 2] = from[length / 2];
    to[length - 1] = from[length - 1];
  } else if (length > 16) {
    std::memcpy(to, from, length);
  }
}

}  // namespace

void Column::AppendStrings(const std::string_view* values, const uint8_t* valid, size_t count) {
  if (count == 0) return;
  size_t bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    if (valid == nullptr || valid[i] != 0) bytes += values[i].size();
  }
  size_t first_char = chars_.size();
  chars_.resize(first_char + bytes);
  size_t first_offset = offsets_.size();
  offsets_.resize(first_offset + count);
  char* to = chars_.data();
  uint64_t* offsets = offsets_.data() + first_offset;
  uint64_t at = first_char;
  for (size_t i = 0; i < count; ++i) {
    if (valid == nullptr || valid[i] != 0) {
      CopyBytes(values[i].data(), values[i].size(), to + at);
      at += values[i].size();
    }
    offsets[i] = at;
  }
  bool any_null = false;
  if (valid != nullptr) {
    for (size_t i = 0; i < count && !any_null; ++i) any_null = valid[i] == 0;
  }
  // (EnsureValidity makes no validity for an empty column: sized here.)
  if (any_null || !validity_.empty()) {
    validity_.resize(size_, 1);
    validity_.resize(size_ + count, 1);
    if (any_null) {
      for (size_t i = 0; i < count; ++i) validity_[size_ + i] = valid[i] != 0 ? 1 : 0;
    }
  }
  size_ += count;
}

void Column::ReserveMore(size_t rows, size_t string_bytes, size_t growth) {
  auto grow = [&](auto& storage, size_t more) {
    size_t needed = storage.size() + more;
    if (needed > storage.capacity()) storage.reserve(std::max(needed, storage.capacity() * growth));
  };
  switch (type_) {
    case DataType::kBool:
      grow(bools_, rows);
      break;
    case DataType::kInt64:
    case DataType::kTimestamp:
      grow(ints_, rows);
      break;
    case DataType::kDouble:
      grow(doubles_, rows);
      break;
    case DataType::kString:
      grow(offsets_, rows);
      grow(chars_, string_bytes);
      break;
  }
  if (!validity_.empty()) grow(validity_, rows);
}

void Column::Reserve(size_t rows, size_t string_bytes) {
  switch (type_) {
    case DataType::kBool:
      bools_.reserve(rows);
      break;
    case DataType::kInt64:
    case DataType::kTimestamp:
      ints_.reserve(rows);
      break;
    case DataType::kDouble:
      doubles_.reserve(rows);
      break;
    case DataType::kString:
      offsets_.reserve(rows + 1);
      chars_.reserve(string_bytes);
      break;
  }
}

void Column::ResizeAfterBulkAppend(size_t rows) {
  size_ = rows;
  if (!validity_.empty()) validity_.resize(rows, 1);
}

Column Column::Gather(const std::vector<uint32_t>& row_ids) const {
  // Typed loops, one pass per type: the same column as appending row by row
  // (validity only when a null was picked; a null's value slot is 0 / "").
  const size_t rows = row_ids.size();
  Column out;
  out.type_ = type_;
  out.size_ = rows;
  bool any_null = false;
  for (uint32_t id : row_ids) {
    if (id == kNullRow || (!validity_.empty() && validity_[id] == 0)) {
      any_null = true;
      break;
    }
  }
  auto valid = [&](uint32_t id) {
    return id != kNullRow && (validity_.empty() || validity_[id] != 0);
  };
  if (any_null) {
    out.validity_.resize(rows);
    for (size_t row = 0; row < rows; ++row) out.validity_[row] = valid(row_ids[row]) ? 1 : 0;
  }
  auto gather = [&](const auto& from, auto& to) {
    to.resize(rows);
    if (!any_null) {
      for (size_t row = 0; row < rows; ++row) to[row] = from[row_ids[row]];
      return;
    }
    for (size_t row = 0; row < rows; ++row) {
      to[row] = out.validity_[row] != 0 ? from[row_ids[row]] : 0;
    }
  };
  switch (type_) {
    case DataType::kBool:
      gather(bools_, out.bools_);
      for (uint8_t& value : out.bools_) value = value != 0 ? 1 : 0;
      break;
    case DataType::kInt64:
    case DataType::kTimestamp:
      gather(ints_, out.ints_);
      break;
    case DataType::kDouble:
      gather(doubles_, out.doubles_);
      break;
    case DataType::kString: {
      out.offsets_.resize(rows + 1);
      out.offsets_[0] = 0;
      uint64_t bytes = 0;
      for (size_t row = 0; row < rows; ++row) {
        uint32_t id = row_ids[row];
        if (!any_null || out.validity_[row] != 0) bytes += offsets_[id + 1] - offsets_[id];
        out.offsets_[row + 1] = bytes;
      }
      out.chars_.resize(bytes);
      char* to = out.chars_.data();
      for (size_t row = 0; row < rows; ++row) {
        uint64_t length = out.offsets_[row + 1] - out.offsets_[row];
        if (length > 0)
          std::memcpy(to + out.offsets_[row], chars_.data() + offsets_[row_ids[row]], length);
      }
      break;
    }
  }
  return out;
}

std::string Column::ValueToString(size_t row) const {
  if (!IsValid(row)) return "null";
  switch (type_) {
    case DataType::kBool:
      return bools_[row] ? "true" : "false";
    case DataType::kInt64:
      return std::to_string(ints_[row]);
    case DataType::kTimestamp:
      return FormatTimestamp(ints_[row]);
    case DataType::kDouble: {
      char buffer[32];
      std::snprintf(buffer, sizeof(buffer), "%.17g", doubles_[row]);
      return buffer;
    }
    case DataType::kString:
      return std::string(StringAt(row));
  }
  return "?";
}

int Table::FindColumn(std::string_view name) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

Result<const Column*> Table::GetColumn(std::string_view name) const {
  int index = FindColumn(name);
  if (index < 0) {
    return NotFound("no column '" + std::string(name) + "' (columns: " + SchemaToString() + ")");
  }
  return &columns_[static_cast<size_t>(index)];
}

Status Table::AddColumn(std::string name, Column column) {
  if (FindColumn(name) >= 0) return AlreadyExists("duplicate column '" + name + "'");
  if (!columns_.empty() && column.size() != num_rows()) {
    return InvalidArgument("column '" + name + "' has " + std::to_string(column.size()) +
                           " rows, table has " + std::to_string(num_rows()));
  }
  fields_.push_back(Field{name, column.type()});
  columns_.push_back(std::move(column));
  return Status::Ok();
}

Status Table::ReplaceColumn(size_t index, Column column) {
  if (column.size() != num_rows()) {
    return InvalidArgument("column '" + fields_[index].name + "' has " +
                           std::to_string(num_rows()) + " rows, its replacement " +
                           std::to_string(column.size()));
  }
  fields_[index].type = column.type();
  columns_[index] = std::move(column);
  return Status::Ok();
}

std::string Table::SchemaToString() const {
  std::string out;
  for (const Field& field : fields_) {
    if (!out.empty()) out += ", ";
    out += field.name + " " + std::string(DataTypeName(field.type));
  }
  return out;
}

}  // namespace keel::table
