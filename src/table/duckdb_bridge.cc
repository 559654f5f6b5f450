#include "table/duckdb_bridge.h"

#include <duckdb.h>

#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "common/files.h"

namespace keel::table {

struct DuckDb::Handles {
  duckdb_database database = nullptr;
  duckdb_connection connection = nullptr;
  // The table that the keel_table_scan() table function reads during WriteParquet.
  const Table* scan_table = nullptr;
  ~Handles() {
    if (connection != nullptr) duckdb_disconnect(&connection);
    if (database != nullptr) duckdb_close(&database);
  }
};

namespace {

// Owns a duckdb_result.
class ResultGuard {
 public:
  ResultGuard() { std::memset(&result_, 0, sizeof(result_)); }
  ~ResultGuard() { duckdb_destroy_result(&result_); }
  duckdb_result* get() { return &result_; }

 private:
  duckdb_result result_;
};

Status RunQuery(duckdb_connection connection, std::string_view sql, duckdb_result* result) {
  std::string text(sql);
  if (duckdb_query(connection, text.c_str(), result) == DuckDBError) {
    const char* error = duckdb_result_error(result);
    return InvalidArgument(error != nullptr ? error : "DuckDB query failed");
  }
  return Status::Ok();
}

// Runs one statement as a streaming query: chunks are produced as they are
// fetched, so a large result is never held twice (once by DuckDB, once by us).
Status RunStreamingQuery(duckdb_connection connection, std::string_view sql,
                         duckdb_result* result) {
  std::string text(sql);
  duckdb_prepared_statement prepared = nullptr;
  if (duckdb_prepare(connection, text.c_str(), &prepared) == DuckDBError) {
    const char* error = duckdb_prepare_error(prepared);
    Status status =
        InvalidArgument(error != nullptr ? error : "DuckDB could not prepare the query");
    duckdb_destroy_prepare(&prepared);
    return status;
  }
  duckdb_pending_result pending = nullptr;
  Status status;
  if (duckdb_pending_prepared_streaming(prepared, &pending) == DuckDBError) {
    const char* error = duckdb_pending_error(pending);
    status = InvalidArgument(error != nullptr ? error : "DuckDB could not start the query");
  } else if (duckdb_execute_pending(pending, result) == DuckDBError) {
    const char* error = duckdb_result_error(result);
    status = InvalidArgument(error != nullptr ? error : "DuckDB query failed");
  }
  duckdb_destroy_pending(&pending);
  duckdb_destroy_prepare(&prepared);
  return status;
}

// Defined with the scan table function below.
Status RegisterScan(duckdb_connection connection, DuckDb::Handles* handles);

// The most rows a DuckDB chunk holds (duckdb_vector_size(), checked in Open).
constexpr size_t kMaxChunkRows = 2048;

// How a DuckDB column is read into a keel Column.
enum class Reader {
  kBool,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kUInt8,
  kUInt16,
  kUInt32,
  kUInt64,
  kFloat,
  kDouble,
  kString,
  kTimestampUs,
  kTimestampS,
  kTimestampMs,
  kTimestampNs,
  kDate,
  kUnsupported
};

Reader ReaderFor(duckdb_type type) {
  switch (type) {
    case DUCKDB_TYPE_BOOLEAN:
      return Reader::kBool;
    case DUCKDB_TYPE_TINYINT:
      return Reader::kInt8;
    case DUCKDB_TYPE_SMALLINT:
      return Reader::kInt16;
    case DUCKDB_TYPE_INTEGER:
      return Reader::kInt32;
    case DUCKDB_TYPE_BIGINT:
      return Reader::kInt64;
    case DUCKDB_TYPE_UTINYINT:
      return Reader::kUInt8;
    case DUCKDB_TYPE_USMALLINT:
      return Reader::kUInt16;
    case DUCKDB_TYPE_UINTEGER:
      return Reader::kUInt32;
    case DUCKDB_TYPE_UBIGINT:
      return Reader::kUInt64;
    case DUCKDB_TYPE_FLOAT:
      return Reader::kFloat;
    case DUCKDB_TYPE_DOUBLE:
      return Reader::kDouble;
    case DUCKDB_TYPE_VARCHAR:
      return Reader::kString;
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_TZ:
      return Reader::kTimestampUs;
    case DUCKDB_TYPE_TIMESTAMP_S:
      return Reader::kTimestampS;
    case DUCKDB_TYPE_TIMESTAMP_MS:
      return Reader::kTimestampMs;
    case DUCKDB_TYPE_TIMESTAMP_NS:
      return Reader::kTimestampNs;
    case DUCKDB_TYPE_DATE:
      return Reader::kDate;
    default:
      return Reader::kUnsupported;
  }
}

DataType KeelType(Reader reader) {
  switch (reader) {
    case Reader::kBool:
      return DataType::kBool;
    case Reader::kFloat:
    case Reader::kDouble:
      return DataType::kDouble;
    case Reader::kString:
      return DataType::kString;
    case Reader::kTimestampUs:
    case Reader::kTimestampS:
    case Reader::kTimestampMs:
    case Reader::kTimestampNs:
    case Reader::kDate:
      return DataType::kTimestamp;
    default:
      return DataType::kInt64;
  }
}

// True when DuckDB's validity mask `mask` (null: every row valid) marks a
// row of [0, rows) null. Checked a 64-row word at a time.
bool AnyNull(const uint64_t* mask, size_t rows) {
  if (mask == nullptr) return false;
  size_t full_words = rows / 64;
  for (size_t word = 0; word < full_words; ++word) {
    if (mask[word] != ~uint64_t{0}) return true;
  }
  size_t rest = rows % 64;
  return rest > 0 && (mask[full_words] | (~uint64_t{0} << rest)) != ~uint64_t{0};
}

// valid[row] = 1 or 0 from DuckDB's validity bits.
void UnpackValidity(const uint64_t* mask, size_t rows, uint8_t* valid) {
  for (size_t row = 0; row < rows; ++row) valid[row] = (mask[row / 64] >> (row % 64)) & 1;
}

// Appends `rows` values converted from T by `convert` (the values of null
// rows are not read: their slots hold 0, as Column's contract says).
template <typename T, typename Storage, typename Convert>
void AppendFixed(const void* data, const uint8_t* valid, size_t rows, Storage* storage,
                 Convert convert) {
  const T* values = static_cast<const T*>(data);
  size_t first = storage->size();
  storage->resize(first + rows);  // then written in place: no capacity check per value
  auto* to = storage->data() + first;
  if (valid == nullptr) {
    for (size_t row = 0; row < rows; ++row) to[row] = convert(values[row]);
  } else {
    for (size_t row = 0; row < rows; ++row) to[row] = valid[row] ? convert(values[row]) : 0;
  }
}

// The values of a vector whose type is the storage's: one copy of the whole
// vector (no zero fill first), then 0 in the slots of nulls.
template <typename T, typename Storage>
void AppendSame(const void* data, const uint8_t* valid, size_t rows, Storage* storage) {
  const T* values = static_cast<const T*>(data);
  size_t first = storage->size();
  storage->insert(storage->end(), values, values + rows);
  if (valid == nullptr) return;
  T* to = storage->data() + first;
  for (size_t row = 0; row < rows; ++row) {
    if (!valid[row]) to[row] = 0;
  }
}

template <typename T>
void AppendIntegers(const void* data, const uint8_t* valid, size_t rows, Column* out) {
  AppendFixed<T>(data, valid, rows, &out->ints(),
                 [](T value) { return static_cast<int64_t>(value); });
}

template <int64_t kScale>
void AppendScaled(const void* data, const uint8_t* valid, size_t rows, Column* out) {
  AppendFixed<int64_t>(data, valid, rows, &out->ints(),
                       [](int64_t value) { return value * kScale; });
}

// The string of a duckdb_string_t: inlined (up to 12 bytes) or behind a pointer.
std::string_view StringOf(const duckdb_string_t& value) {
  uint32_t length = value.value.inlined.length;
  return std::string_view(length <= 12 ? value.value.inlined.inlined : value.value.pointer.ptr,
                          length);
}

// Appends `rows` (<= duckdb_vector_size()) values of one vector to `out` (whose
// type matches `reader`).
// `views` is scratch space for kMaxChunkRows strings.
Status AppendVector(Reader reader, duckdb_vector vector, size_t rows, Column* out,
                    const std::string& column_name, std::string_view* views) {
  if (rows == 0) return Status::Ok();
  const void* data = duckdb_vector_get_data(vector);
  const uint64_t* mask = duckdb_vector_get_validity(vector);
  // One byte per row, only when the chunk has a null (DuckDB may hand out a
  // mask whose rows are all valid).
  uint8_t valid_bytes[kMaxChunkRows];
  const uint8_t* valid = nullptr;
  if (AnyNull(mask, rows)) {
    UnpackValidity(mask, rows, valid_bytes);
    valid = valid_bytes;
  }
  size_t first_row = out->size();
  if (reader == Reader::kString) {
    const auto* values = static_cast<const duckdb_string_t*>(data);
    size_t bytes = 0;
    for (size_t row = 0; row < rows; ++row) {
      // A null's slot is not read: DuckDB leaves it undefined.
      views[row] = valid == nullptr || valid[row] ? StringOf(values[row]) : std::string_view();
      bytes += views[row].size();
    }
    out->ReserveMore(rows, bytes);
    out->AppendStrings(views, valid, rows);
    return Status::Ok();
  }
  out->ReserveMore(rows);
  switch (reader) {
    case Reader::kBool:
      AppendFixed<bool>(data, valid, rows, &out->bools(),
                        [](bool value) { return static_cast<uint8_t>(value ? 1 : 0); });
      break;
    case Reader::kInt8:
      AppendIntegers<int8_t>(data, valid, rows, out);
      break;
    case Reader::kInt16:
      AppendIntegers<int16_t>(data, valid, rows, out);
      break;
    case Reader::kInt32:
      AppendIntegers<int32_t>(data, valid, rows, out);
      break;
    case Reader::kInt64:
    case Reader::kTimestampUs:
      AppendSame<int64_t>(data, valid, rows, &out->ints());
      break;
    case Reader::kUInt8:
      AppendIntegers<uint8_t>(data, valid, rows, out);
      break;
    case Reader::kUInt16:
      AppendIntegers<uint16_t>(data, valid, rows, out);
      break;
    case Reader::kUInt32:
      AppendIntegers<uint32_t>(data, valid, rows, out);
      break;
    case Reader::kUInt64: {
      const uint64_t* values = static_cast<const uint64_t*>(data);
      for (size_t row = 0; row < rows; ++row) {
        if (values[row] > static_cast<uint64_t>(INT64_MAX) && (valid == nullptr || valid[row])) {
          return InvalidArgument("column '" + column_name + "': UBIGINT value " +
                                 std::to_string(values[row]) + " does not fit int64");
        }
      }
      AppendIntegers<uint64_t>(data, valid, rows, out);
      break;
    }
    case Reader::kTimestampS:
      AppendScaled<1000000>(data, valid, rows, out);
      break;
    case Reader::kTimestampMs:
      AppendScaled<1000>(data, valid, rows, out);
      break;
    case Reader::kTimestampNs:
      AppendFixed<int64_t>(data, valid, rows, &out->ints(),
                           [](int64_t value) { return value / 1000; });
      break;
    case Reader::kDate:
      AppendFixed<int32_t>(data, valid, rows, &out->ints(), [](int32_t value) {
        return static_cast<int64_t>(value) * 86400000000LL;
      });
      break;
    case Reader::kFloat:
      AppendFixed<float>(data, valid, rows, &out->doubles(),
                         [](float value) { return static_cast<double>(value); });
      break;
    case Reader::kDouble:
      AppendSame<double>(data, valid, rows, &out->doubles());
      break;
    case Reader::kString:
    case Reader::kUnsupported:
      return Internal("unsupported reader");
  }
  // Typed appends above bypass Column's size bookkeeping; rebuild it.
  out->ResizeAfterBulkAppend(first_row + rows);
  if (valid != nullptr) {
    uint8_t* validity = out->mutable_validity().data() + first_row;
    std::memcpy(validity, valid, rows);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<DuckDb>> DuckDb::Open(int threads) {
  if (duckdb_vector_size() > kMaxChunkRows) {
    return Internal("DuckDB's vector size " + std::to_string(duckdb_vector_size()) +
                    " exceeds keel's " + std::to_string(kMaxChunkRows));
  }
  auto handles = std::make_unique<Handles>();
  if (duckdb_open(nullptr, &handles->database) == DuckDBError) {
    return Internal("cannot open an in-memory DuckDB database");
  }
  if (duckdb_connect(handles->database, &handles->connection) == DuckDBError) {
    return Internal("cannot connect to DuckDB");
  }
  RETURN_IF_ERROR(RegisterScan(handles->connection, handles.get()));
  std::unique_ptr<DuckDb> db(new DuckDb(std::move(handles)));
  if (threads > 0) RETURN_IF_ERROR(db->Execute("SET threads = " + std::to_string(threads)));
  return db;
}

DuckDb::DuckDb(std::unique_ptr<Handles> handles) : handles_(std::move(handles)) {}
DuckDb::~DuckDb() = default;

Status DuckDb::Execute(std::string_view sql) {
  ResultGuard result;
  return RunQuery(handles_->connection, sql, result.get());
}

Result<Table> DuckDb::Query(std::string_view sql) {
  ResultGuard result;
  RETURN_IF_ERROR(RunStreamingQuery(handles_->connection, sql, result.get()));
  size_t column_count = duckdb_column_count(result.get());
  std::vector<Reader> readers(column_count);
  std::vector<std::string> names(column_count);
  std::vector<Column> columns;
  bool needs_cast = false;
  for (size_t column_idx = 0; column_idx < column_count; ++column_idx) {
    names[column_idx] = duckdb_column_name(result.get(), column_idx);
    duckdb_type type = duckdb_column_type(result.get(), column_idx);
    readers[column_idx] = ReaderFor(type);
    if (readers[column_idx] == Reader::kUnsupported) {
      if (type == DUCKDB_TYPE_DECIMAL || type == DUCKDB_TYPE_HUGEINT ||
          type == DUCKDB_TYPE_UHUGEINT) {
        needs_cast = true;
        continue;
      }
      return InvalidArgument("column '" + names[column_idx] + "' has a DuckDB type (id " +
                             std::to_string(type) +
                             ") keel cannot use; CAST it to a number, string or timestamp");
    }
    columns.emplace_back(KeelType(readers[column_idx]), 0);
  }
  if (needs_cast) {
    // Wide numbers become doubles; DuckDB does the conversion exactly once.
    std::string select;
    for (size_t column_idx = 0; column_idx < column_count; ++column_idx) {
      if (!select.empty()) select += ", ";
      std::string quoted = QuoteSqlIdentifier(names[column_idx]);
      select += readers[column_idx] == Reader::kUnsupported
                    ? "CAST(" + quoted + " AS DOUBLE) AS " + quoted
                    : quoted;
    }
    return Query("SELECT " + select + " FROM (" + std::string(sql) + ") AS keel_q");
  }
  // Set once per query, not per chunk: string_view's constructor zeroes.
  auto views = std::make_unique<std::string_view[]>(kMaxChunkRows);
  while (true) {
    duckdb_data_chunk chunk = duckdb_fetch_chunk(*result.get());
    if (chunk == nullptr) {
      // A streaming result reports errors met while fetching here.
      const char* error = duckdb_result_error(result.get());
      if (error != nullptr) return InvalidArgument(error);
      break;
    }
    size_t rows = duckdb_data_chunk_get_size(chunk);
    Status status;
    if (rows > kMaxChunkRows) status = Internal("a DuckDB chunk of more rows than its vector size");
    for (size_t column_idx = 0; column_idx < column_count && status.ok(); ++column_idx) {
      status = AppendVector(readers[column_idx], duckdb_data_chunk_get_vector(chunk, column_idx),
                            rows, &columns[column_idx], names[column_idx], views.get());
    }
    duckdb_destroy_data_chunk(&chunk);
    RETURN_IF_ERROR(status);
  }
  Table table;
  for (size_t column_idx = 0; column_idx < column_count; ++column_idx) {
    RETURN_IF_ERROR(table.AddColumn(names[column_idx], std::move(columns[column_idx])));
  }
  return table;
}

namespace {

const char* SqlTypeName(DataType type) {
  switch (type) {
    case DataType::kBool:
      return "BOOLEAN";
    case DataType::kInt64:
      return "BIGINT";
    case DataType::kDouble:
      return "DOUBLE";
    case DataType::kString:
      return "VARCHAR";
    case DataType::kTimestamp:
      return "TIMESTAMP";
  }
  return "VARCHAR";
}

duckdb_type DuckTypeOf(DataType type) {
  switch (type) {
    case DataType::kBool:
      return DUCKDB_TYPE_BOOLEAN;
    case DataType::kInt64:
      return DUCKDB_TYPE_BIGINT;
    case DataType::kDouble:
      return DUCKDB_TYPE_DOUBLE;
    case DataType::kString:
      return DUCKDB_TYPE_VARCHAR;
    case DataType::kTimestamp:
      return DUCKDB_TYPE_TIMESTAMP;
  }
  return DUCKDB_TYPE_VARCHAR;
}

// Copies rows [begin, begin + rows) of `column` into a DuckDB vector.
void FillVector(const Column& column, size_t begin, size_t rows, duckdb_vector vector) {
  if (rows == 0) return;  // an empty column's storage may be null: nothing to copy
  void* data = duckdb_vector_get_data(vector);
  switch (column.type()) {
    case DataType::kBool: {
      bool* out = static_cast<bool*>(data);
      for (size_t row = 0; row < rows; ++row) out[row] = column.bools()[begin + row] != 0;
      break;
    }
    case DataType::kInt64:
    case DataType::kTimestamp:
      std::memcpy(data, column.ints().data() + begin, rows * sizeof(int64_t));
      break;
    case DataType::kDouble:
      std::memcpy(data, column.doubles().data() + begin, rows * sizeof(double));
      break;
    case DataType::kString:
      for (size_t row = 0; row < rows; ++row) {
        std::string_view value = column.StringAt(begin + row);
        duckdb_vector_assign_string_element_len(vector, row, value.data(), value.size());
      }
      break;
  }
  if (column.validity().empty()) return;
  duckdb_vector_ensure_validity_writable(vector);
  uint64_t* validity = duckdb_vector_get_validity(vector);
  for (size_t row = 0; row < rows; ++row) {
    if (!column.IsValid(begin + row)) duckdb_validity_set_row_invalid(validity, row);
  }
}

// keel_table_scan(): a table function that streams Handles::scan_table to DuckDB
// without copying it into a DuckDB table first.
struct ScanState {
  size_t offset = 0;
};

void ScanBind(duckdb_bind_info info) {
  auto* handles = static_cast<DuckDb::Handles*>(duckdb_bind_get_extra_info(info));
  if (handles->scan_table == nullptr) {
    duckdb_bind_set_error(info, "keel_table_scan() is only available while keel writes a table");
    return;
  }
  for (const Field& field : handles->scan_table->fields()) {
    duckdb_logical_type type = duckdb_create_logical_type(DuckTypeOf(field.type));
    duckdb_bind_add_result_column(info, field.name.c_str(), type);
    duckdb_destroy_logical_type(&type);
  }
}

void ScanInit(duckdb_init_info info) {
  duckdb_init_set_init_data(info, new ScanState(),
                            [](void* state) { delete static_cast<ScanState*>(state); });
  duckdb_init_set_max_threads(info, 1);
}

void ScanFunction(duckdb_function_info info, duckdb_data_chunk output) {
  auto* handles = static_cast<DuckDb::Handles*>(duckdb_function_get_extra_info(info));
  auto* state = static_cast<ScanState*>(duckdb_function_get_init_data(info));
  const Table& table = *handles->scan_table;
  size_t rows = std::min<size_t>(duckdb_vector_size(), table.num_rows() - state->offset);
  for (size_t column_idx = 0; column_idx < table.num_columns(); ++column_idx) {
    FillVector(table.column(column_idx), state->offset, rows,
               duckdb_data_chunk_get_vector(output, column_idx));
  }
  duckdb_data_chunk_set_size(output, rows);
  state->offset += rows;
}

Status RegisterScan(duckdb_connection connection, DuckDb::Handles* handles) {
  duckdb_table_function function = duckdb_create_table_function();
  duckdb_table_function_set_name(function, "keel_table_scan");
  duckdb_table_function_set_extra_info(function, handles, nullptr);
  duckdb_table_function_set_bind(function, ScanBind);
  duckdb_table_function_set_init(function, ScanInit);
  duckdb_table_function_set_function(function, ScanFunction);
  duckdb_state state = duckdb_register_table_function(connection, function);
  duckdb_destroy_table_function(&function);
  if (state == DuckDBError) return Internal("cannot register keel_table_scan with DuckDB");
  return Status::Ok();
}

}  // namespace

Status DuckDb::CreateTable(std::string_view name, const Table& table) {
  if (table.num_columns() == 0) return InvalidArgument("cannot create a table with no columns");
  std::string create = "CREATE OR REPLACE TABLE " + QuoteSqlIdentifier(name) + " (";
  for (size_t column_idx = 0; column_idx < table.num_columns(); ++column_idx) {
    if (column_idx > 0) create += ", ";
    create += QuoteSqlIdentifier(table.fields()[column_idx].name) + " " +
              SqlTypeName(table.fields()[column_idx].type);
  }
  create += ")";
  RETURN_IF_ERROR(Execute(create));

  duckdb_appender appender = nullptr;
  std::string table_name(name);
  if (duckdb_appender_create(handles_->connection, nullptr, table_name.c_str(), &appender) ==
      DuckDBError) {
    std::string error = duckdb_appender_error(appender);
    duckdb_appender_destroy(&appender);
    return Internal("cannot append to " + table_name + ": " + error);
  }
  std::vector<duckdb_logical_type> types;
  for (const Field& field : table.fields()) {
    types.push_back(duckdb_create_logical_type(DuckTypeOf(field.type)));
  }
  const size_t chunk_rows = duckdb_vector_size();
  Status status;
  for (size_t begin = 0; begin < table.num_rows() && status.ok(); begin += chunk_rows) {
    size_t rows = std::min(chunk_rows, table.num_rows() - begin);
    duckdb_data_chunk chunk = duckdb_create_data_chunk(types.data(), types.size());
    for (size_t column_idx = 0; column_idx < table.num_columns(); ++column_idx) {
      FillVector(table.column(column_idx), begin, rows,
                 duckdb_data_chunk_get_vector(chunk, column_idx));
    }
    duckdb_data_chunk_set_size(chunk, rows);
    if (duckdb_append_data_chunk(appender, chunk) == DuckDBError) {
      status = Internal(std::string("append failed: ") + duckdb_appender_error(appender));
    }
    duckdb_destroy_data_chunk(&chunk);
  }
  if (status.ok() && duckdb_appender_flush(appender) == DuckDBError) {
    status = Internal(std::string("append flush failed: ") + duckdb_appender_error(appender));
  }
  duckdb_appender_destroy(&appender);
  for (duckdb_logical_type& type : types) duckdb_destroy_logical_type(&type);
  return status;
}

Status DuckDb::WriteParquet(const Table& table, const std::string& path,
                            const std::vector<std::pair<std::string, std::string>>& metadata) {
  if (table.num_columns() == 0) return InvalidArgument("cannot write a table with no columns");
  std::string temporary = TemporaryPathFor(path);
  std::string options = "FORMAT PARQUET";
  if (!metadata.empty()) {
    options += ", KV_METADATA {";
    for (size_t i = 0; i < metadata.size(); ++i) {
      options += (i > 0 ? ", " : "") + QuoteSqlIdentifier(metadata[i].first) + ": " +
                 QuoteSqlString(metadata[i].second);
    }
    options += "}";
  }
  handles_->scan_table = &table;
  Status status = Execute("COPY (SELECT * FROM keel_table_scan()) TO " + QuoteSqlString(temporary) +
                          " (" + options + ")");
  handles_->scan_table = nullptr;
  if (!status.ok()) {
    RemoveFileQuietly(temporary);
    return IoError("writing " + path + ": " + status.message());
  }
  return CommitTemporaryFile(temporary, path);
}

std::string QuoteSqlString(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string QuoteSqlIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace keel::table
