// The SQLite adapter of the registry: the only registry file that includes
// sqlite3.h.
#include <sqlite3.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "registry/sql_connection.h"

namespace keel::registry {
namespace {

// Every writer waits this long for the write lock before giving up with a
// retryable error (and the registry retries its transaction).
constexpr int kBusyTimeoutMs = 10000;

// The registry writes parameters as PostgreSQL does: $1, $2, ... SQLite takes
// ?NNN for those; plain ? when they appear once each, in order, which SQLite
// binds without looking numbered names up (much cheaper for long IN lists).
// Statements never contain a literal '$'.
std::string ToSqliteParameters(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  bool in_order = true;
  int expected = 1;
  for (size_t i = 0; i < sql.size(); ++i) {
    if (sql[i] == '$' && i + 1 < sql.size() &&
        std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      size_t end = i + 1;
      while (end < sql.size() && std::isdigit(static_cast<unsigned char>(sql[end]))) ++end;
      in_order = in_order && std::stoi(std::string(sql.substr(i + 1, end - i - 1))) == expected++;
    }
  }
  for (size_t i = 0; i < sql.size(); ++i) {
    if (sql[i] == '$' && i + 1 < sql.size() &&
        std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      out.push_back('?');
      if (in_order) {
        while (i + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i + 1]))) ++i;
      }
    } else {
      out.push_back(sql[i]);
    }
  }
  return out;
}

class SqliteConnection : public SqlConnection {
 public:
  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteConnection() override {
    for (auto& [sql, statement] : statements_) sqlite3_finalize(statement);
    sqlite3_close(db_);
  }

  SqlDialect dialect() const override { return SqlDialect::kSqlite; }

  Status Execute(std::string_view sql, const std::vector<SqlValue>& params) override {
    if (params.empty() && sql.find(';') != std::string_view::npos) {
      char* error = nullptr;
      int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &error);
      std::string message = error != nullptr ? error : "";
      sqlite3_free(error);
      if (rc != SQLITE_OK) return Error(rc, message);
      retryable_ = false;
      return Status::Ok();
    }
    return Run(sql, params, nullptr);
  }

  Result<SqlRows> Query(std::string_view sql, const std::vector<SqlValue>& params) override {
    SqlRows rows;
    RETURN_IF_ERROR(Run(sql, params, &rows));
    return rows;
  }

  Status Begin(bool write) override {
    return Execute(write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED", {});
  }
  Status Commit() override { return Execute("COMMIT", {}); }
  void RollbackQuietly() override {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  bool LastErrorRetryable() const override { return retryable_; }

 private:
  Status Error(int rc, const std::string& message) {
    int primary = rc & 0xff;
    retryable_ = primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
    std::string text =
        "registry " + path_ + ": " + (message.empty() ? sqlite3_errstr(rc) : message);
    if (retryable_) return Unavailable(text);
    return IoError(text);
  }

  Result<sqlite3_stmt*> Prepare(std::string_view sql) {
    auto found = statements_.find(std::string(sql));
    if (found != statements_.end()) return found->second;
    std::string text = ToSqliteParameters(sql);
    sqlite3_stmt* statement = nullptr;
    int rc =
        sqlite3_prepare_v2(db_, text.c_str(), static_cast<int>(text.size()), &statement, nullptr);
    if (rc != SQLITE_OK) return Error(rc, std::string(sqlite3_errmsg(db_)) + " in: " + text);
    statements_.emplace(std::string(sql), statement);
    return statement;
  }

  Status Run(std::string_view sql, const std::vector<SqlValue>& params, SqlRows* rows) {
    ASSIGN_OR_RETURN(sqlite3_stmt * statement, Prepare(sql));
    sqlite3_reset(statement);
    sqlite3_clear_bindings(statement);
    for (size_t param_idx = 0; param_idx < params.size(); ++param_idx) {
      int index = static_cast<int>(param_idx + 1);
      const SqlValue& value = params[param_idx];
      if (std::holds_alternative<int64_t>(value)) {
        sqlite3_bind_int64(statement, index, std::get<int64_t>(value));
      } else if (std::holds_alternative<double>(value)) {
        sqlite3_bind_double(statement, index, std::get<double>(value));
      } else if (std::holds_alternative<std::string>(value)) {
        const std::string& text = std::get<std::string>(value);
        sqlite3_bind_text(statement, index, text.data(), static_cast<int>(text.size()),
                          SQLITE_TRANSIENT);
      } else {
        sqlite3_bind_null(statement, index);
      }
    }
    while (true) {
      int rc = sqlite3_step(statement);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        Status error = Error(rc, sqlite3_errmsg(db_));
        sqlite3_reset(statement);
        return error;
      }
      if (rows == nullptr) continue;
      int columns = sqlite3_column_count(statement);
      std::vector<SqlValue> row(static_cast<size_t>(columns));
      for (int column = 0; column < columns; ++column) {
        switch (sqlite3_column_type(statement, column)) {
          case SQLITE_INTEGER:
            row[column] = static_cast<int64_t>(sqlite3_column_int64(statement, column));
            break;
          case SQLITE_FLOAT:
            row[column] = sqlite3_column_double(statement, column);
            break;
          case SQLITE_NULL:
            break;
          default: {
            const unsigned char* text = sqlite3_column_text(statement, column);
            int size = sqlite3_column_bytes(statement, column);
            row[column] = std::string(reinterpret_cast<const char*>(text), size);
          }
        }
      }
      rows->AddRow(std::move(row));
    }
    sqlite3_reset(statement);
    retryable_ = false;
    return Status::Ok();
  }

  sqlite3* db_;
  std::string path_;
  std::map<std::string, sqlite3_stmt*, std::less<>> statements_;
  bool retryable_ = false;
};

}  // namespace

Result<std::unique_ptr<SqlConnection>> OpenSqliteConnection(const std::string& path, bool durable) {
  std::error_code error;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, error);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return IoError("registry " + path + ": cannot open: " + message);
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  auto connection = std::make_unique<SqliteConnection>(db, path);
  // WAL: readers never block the writer; foreign keys: runs and versions
  // cannot point at nothing.
  // A 64 MiB page cache and memory-mapped reads keep run searches over large
  // registries off the read() path.
  std::string pragmas = std::string(
                            "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA "
                            "cache_size=-65536; PRAGMA mmap_size=268435456; ") +
                        (durable ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=NORMAL;");
  Status status = connection->Execute(pragmas, {});
  // Another process may be switching the file to WAL at this moment.
  for (int attempt = 0; !status.ok() && connection->LastErrorRetryable() && attempt < 50;
       ++attempt) {
    sqlite3_sleep(20);
    status = connection->Execute(pragmas, {});
  }
  RETURN_IF_ERROR(status);
  return std::unique_ptr<SqlConnection>(std::move(connection));
}

}  // namespace keel::registry
