#pragma once

// The narrow SQL boundary the registry is written against, so that its rules
// (stages, sign-offs, audit, rollback) are written once. sqlite_connection.cc
// and postgres_connection.cc are the only files that include SQLite's and
// libpq's headers; each converts its library's errors into Status here.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"

namespace keel::registry {

enum class SqlDialect { kSqlite, kPostgres };

// A parameter or a cell. PostgreSQL cells arrive as text; the accessors of
// SqlRows convert.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;

// The rows of one query. Thread-safety: a value type.
class SqlRows {
 public:
  size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  bool IsNull(size_t row, size_t column) const;
  // Precondition: the cell is not null (null reads as 0 / "").
  int64_t Int(size_t row, size_t column) const;
  double Double(size_t row, size_t column) const;
  std::string Text(size_t row, size_t column) const;

  void AddRow(std::vector<SqlValue> row) { rows_.push_back(std::move(row)); }

 private:
  std::vector<std::vector<SqlValue>> rows_;
};

// One database connection. Statements use $1, $2, ... for parameters.
// Thread-safety: none; one thread at a time.
class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  virtual SqlDialect dialect() const = 0;

  // Runs a statement that returns no rows. Without parameters `sql` may hold
  // several statements separated by ';'. Errors: IoError / Unavailable.
  virtual Status Execute(std::string_view sql, const std::vector<SqlValue>& params = {}) = 0;

  // Runs a query and returns its rows. Errors: IoError / Unavailable.
  virtual Result<SqlRows> Query(std::string_view sql, const std::vector<SqlValue>& params = {}) = 0;

  // Starts a transaction: for writing (SQLite: BEGIN IMMEDIATE, waiting for
  // the write lock; PostgreSQL: SERIALIZABLE) or for reading only (a
  // consistent snapshot).
  virtual Status Begin(bool write) = 0;
  virtual Status Commit() = 0;
  // Ends a failed transaction; never fails (a broken connection is reset).
  virtual void RollbackQuietly() = 0;

  // Whether the last failed call failed for a reason that retrying the whole
  // transaction may cure (SQLite busy/locked; PostgreSQL serialization
  // failure or deadlock).
  virtual bool LastErrorRetryable() const = 0;
};

// Opens a SQLite database file (creating it and its folder), in WAL mode with
// a busy timeout. Errors: IoError naming the file.
Result<std::unique_ptr<SqlConnection>> OpenSqliteConnection(const std::string& path, bool durable);

// Connects to PostgreSQL and makes `schema` (created when missing) the search
// path. Errors: Unavailable naming the url (without password) when the server
// cannot be reached.
Result<std::unique_ptr<SqlConnection>> OpenPostgresConnection(const std::string& url,
                                                              const std::string& schema);

}  // namespace keel::registry
