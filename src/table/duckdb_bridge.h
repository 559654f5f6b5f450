#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "table/column.h"

namespace keel::table {

// keel's one adapter to DuckDB (STYLE.md: each library behind one adapter).
// An in-memory DuckDB database with one connection, used to read Parquet, CSV
// and JSON files and SQL results into keel Tables and to write Tables out as
// Parquet. DuckDB errors become Status values here and nowhere else.
//
// Thread-safety: not thread-safe; use one DuckDb per thread.
class DuckDb {
 public:
  // Opens a fresh in-memory database. `threads` = 0 lets DuckDB choose.
  // Errors: Internal if DuckDB cannot start.
  static Result<std::unique_ptr<DuckDb>> Open(int threads = 0);
  ~DuckDb();
  DuckDb(const DuckDb&) = delete;
  DuckDb& operator=(const DuckDb&) = delete;

  // Runs statements that return nothing useful (CREATE VIEW, COPY, SET ...).
  // Errors: InvalidArgument carrying DuckDB's message (bad SQL, missing file).
  Status Execute(std::string_view sql);

  // Runs a query and converts its result to a Table. Column types map as:
  // BOOLEAN -> bool; integer types -> int64; FLOAT, DOUBLE, DECIMAL -> double;
  // VARCHAR -> string; TIMESTAMP[_S|_MS|_NS|_TZ], DATE -> timestamp (µs).
  // Errors: InvalidArgument with DuckDB's message, or naming a column whose type
  // has no keel equivalent (suggesting a CAST).
  Result<Table> Query(std::string_view sql);

  // Creates (or replaces) a DuckDB table `name` (in the in-memory database) holding `table`.
  Status CreateTable(std::string_view name, const Table& table);

  // Writes `table` to a Parquet file (snappy, DuckDB's default) at `path`, atomically: a temporary
  // file in the same directory is renamed over `path` only on success.
  // `metadata` entries become the file's key-value metadata.
  Status WriteParquet(const Table& table, const std::string& path,
                      const std::vector<std::pair<std::string, std::string>>& metadata = {});

  struct Handles;  // DuckDB's handles; private to the .cc

 private:
  explicit DuckDb(std::unique_ptr<Handles> handles);
  std::unique_ptr<Handles> handles_;
};

// 'it''s' — a SQL string literal.
std::string QuoteSqlString(std::string_view text);
// "a""b" — a SQL identifier.
std::string QuoteSqlIdentifier(std::string_view name);

}  // namespace keel::table
