#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace keel {

// Error categories. They map one-to-one onto HTTP status classes in the server
// (see serve/http_errors.h once it exists) and onto exit codes in the CLI.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong (bad YAML, unknown column, ...)
  kNotFound,            // a named thing does not exist (file, view, version)
  kAlreadyExists,       // creating something that is already there
  kFailedPrecondition,  // the system is not in a state to do this (failed checks, ...)
  kUnavailable,         // a backend cannot be reached; retrying may help
  kIoError,             // reading or writing a file failed
  kInternal,            // a bug in keel or a library; never the user's fault
};

// Human name of a code ("invalid argument").
std::string_view StatusCodeName(StatusCode code);

// A success or an error with a message. Cheap to copy when OK.
// Thread-safety: a Status is a value; distinct objects may be used from distinct threads.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "invalid argument: <message>", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>"; OK stays OK.
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status AlreadyExists(std::string message);
Status FailedPrecondition(std::string message);
Status Unavailable(std::string message);
Status IoError(std::string message);
Status Internal(std::string message);

// Either a value of type T or a non-OK Status; never OK without a value.
// Thread-safety: a value type, like Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Result constructed from an OK status without a value");
    if (status_.ok()) status_ = Internal("Result constructed from OK status without a value");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // Precondition: ok().
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace keel

#define KEEL_CONCAT_INNER(a, b) a##b
#define KEEL_CONCAT(a, b) KEEL_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::keel::Status _keel_status = (expr);        \
    if (!_keel_status.ok()) return _keel_status; \
  } while (0)

// `lhs = value of rexpr` or return its error. `lhs` may declare a variable.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ASSIGN_OR_RETURN_IMPL(KEEL_CONCAT(_keel_result_, __LINE__), lhs, rexpr)
#define ASSIGN_OR_RETURN_IMPL(result, lhs, rexpr) \
  auto result = (rexpr);                          \
  if (!result.ok()) return result.status();       \
  lhs = std::move(result).value()
