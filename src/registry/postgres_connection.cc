// The PostgreSQL adapter of the registry: the only file that includes libpq.
#include <libpq-fe.h>

#include <cctype>
#include <cstdio>

#include "registry/sql_connection.h"

namespace keel::registry {
namespace {

// The url as it may appear in messages: without a password.
std::string RedactedUrl(const std::string& url) {
  size_t scheme = url.find("://");
  size_t at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
  size_t colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon) + ":***" + url.substr(at);
}

std::string QuoteIdentifier(const std::string& name) { return "\"" + name + "\""; }

class PostgresConnection : public SqlConnection {
 public:
  PostgresConnection(PGconn* connection, std::string url)
      : connection_(connection), url_(std::move(url)) {}
  ~PostgresConnection() override { PQfinish(connection_); }

  SqlDialect dialect() const override { return SqlDialect::kPostgres; }

  Status Execute(std::string_view sql, const std::vector<SqlValue>& params) override {
    return Run(sql, params, nullptr);
  }

  Result<SqlRows> Query(std::string_view sql, const std::vector<SqlValue>& params) override {
    SqlRows rows;
    RETURN_IF_ERROR(Run(sql, params, &rows));
    return rows;
  }

  Status Begin(bool write) override {
    return Run(write ? "BEGIN ISOLATION LEVEL SERIALIZABLE"
                     : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
               {}, nullptr);
  }
  Status Commit() override { return Run("COMMIT", {}, nullptr); }
  void RollbackQuietly() override {
    if (PQstatus(connection_) != CONNECTION_OK) {
      PQreset(connection_);
      return;
    }
    PGresult* result = PQexec(connection_, "ROLLBACK");
    PQclear(result);
  }
  bool LastErrorRetryable() const override { return retryable_; }

  // Statements that set a new session up (run again after a reconnect).
  Status SetUpSession(std::string sql) {
    session_setup_ = std::move(sql);
    return Run(session_setup_, {}, nullptr);
  }

 private:
  Status Run(std::string_view sql, const std::vector<SqlValue>& params, SqlRows* rows) {
    retryable_ = false;
    if (PQstatus(connection_) != CONNECTION_OK) {
      PQreset(connection_);
      if (PQstatus(connection_) != CONNECTION_OK) {
        return Unavailable("registry " + RedactedUrl(url_) +
                           ": connection lost: " + PQerrorMessage(connection_));
      }
      // A new session: the search path is gone with the old one.
      PQclear(PQexec(connection_, session_setup_.c_str()));
    }
    std::vector<std::string> texts(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (size_t param_idx = 0; param_idx < params.size(); ++param_idx) {
      const SqlValue& value = params[param_idx];
      if (std::holds_alternative<int64_t>(value)) {
        texts[param_idx] = std::to_string(std::get<int64_t>(value));
      } else if (std::holds_alternative<double>(value)) {
        char buffer[40];
        std::snprintf(buffer, sizeof(buffer), "%.17g", std::get<double>(value));
        texts[param_idx] = buffer;
      } else if (std::holds_alternative<std::string>(value)) {
        texts[param_idx] = std::get<std::string>(value);
      } else {
        continue;  // NULL
      }
      values[param_idx] = texts[param_idx].c_str();
    }
    std::string text(sql);
    PGresult* result =
        params.empty() ? PQexec(connection_, text.c_str())
                       : PQexecParams(connection_, text.c_str(), static_cast<int>(params.size()),
                                      nullptr, values.data(), nullptr, nullptr, 0);
    ExecStatusType state = PQresultStatus(result);
    if (state != PGRES_COMMAND_OK && state != PGRES_TUPLES_OK) {
      const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
      std::string code = sqlstate != nullptr ? sqlstate : "";
      std::string message = PQresultErrorMessage(result);
      while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) {
        message.pop_back();
      }
      PQclear(result);
      // 40001 serialization_failure, 40P01 deadlock_detected, 55P03
      // lock_not_available: the transaction may succeed when run again. So
      // may 23505 unique_violation: the registry checks uniqueness before it
      // inserts, so a violation means a concurrent transaction inserted first.
      retryable_ = code == "40001" || code == "40P01" || code == "55P03" || code == "23505";
      if (PQstatus(connection_) != CONNECTION_OK) {
        return Unavailable("registry " + RedactedUrl(url_) + ": " + message);
      }
      if (retryable_) return Unavailable("registry " + RedactedUrl(url_) + ": " + message);
      return IoError("registry " + RedactedUrl(url_) + ": " + message + " [" + code + "]");
    }
    if (rows != nullptr) {
      int columns = PQnfields(result);
      for (int row_idx = 0; row_idx < PQntuples(result); ++row_idx) {
        std::vector<SqlValue> row(static_cast<size_t>(columns));
        for (int column = 0; column < columns; ++column) {
          if (PQgetisnull(result, row_idx, column)) continue;
          row[column] = std::string(PQgetvalue(result, row_idx, column),
                                    PQgetlength(result, row_idx, column));
        }
        rows->AddRow(std::move(row));
      }
    }
    PQclear(result);
    return Status::Ok();
  }

  PGconn* connection_;
  std::string url_;
  std::string session_setup_;
  bool retryable_ = false;
};

}  // namespace

Result<std::unique_ptr<SqlConnection>> OpenPostgresConnection(const std::string& url,
                                                              const std::string& schema) {
  for (char c : schema) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) {
      return InvalidArgument("registry schema '" + schema +
                             "': only letters, digits and '_' are allowed");
    }
  }
  if (schema.empty()) return InvalidArgument("registry schema: empty name");
  PGconn* raw = PQconnectdb(url.c_str());
  if (raw == nullptr || PQstatus(raw) != CONNECTION_OK) {
    std::string message = raw != nullptr ? PQerrorMessage(raw) : "out of memory";
    while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) {
      message.pop_back();
    }
    PQfinish(raw);
    return Unavailable("registry " + RedactedUrl(url) + ": cannot connect: " + message);
  }
  auto connection = std::make_unique<PostgresConnection>(raw, url);
  RETURN_IF_ERROR(connection->Execute("SET client_min_messages = warning", {}));
  // Many processes may open the same fresh schema at once: CREATE ... IF NOT
  // EXISTS is not safe against that alone, so take a lock first.
  RETURN_IF_ERROR(connection->Execute("BEGIN", {}));
  Status status = connection->Execute("SELECT pg_advisory_xact_lock(727274)", {});
  if (status.ok()) {
    status = connection->Execute("CREATE SCHEMA IF NOT EXISTS " + QuoteIdentifier(schema), {});
  }
  if (status.ok()) status = connection->Execute("COMMIT", {});
  if (!status.ok()) {
    connection->RollbackQuietly();
    return status;
  }
  RETURN_IF_ERROR(connection->SetUpSession(
      "SET client_min_messages = warning; SET search_path TO " + QuoteIdentifier(schema)));
  return std::unique_ptr<SqlConnection>(std::move(connection));
}

}  // namespace keel::registry
