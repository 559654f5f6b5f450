#include "registry/registry.h"

#include <cctype>
#include <chrono>
#include <cstdlib>

#include "registry/sql_connection.h"
#include "registry/sql_registry.h"

namespace keel::registry {
namespace {

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

std::string_view RunStatusName(RunStatus status) {
  switch (status) {
    case RunStatus::kRunning:
      return "running";
    case RunStatus::kFinished:
      return "finished";
    case RunStatus::kFailed:
      return "failed";
    case RunStatus::kKilled:
      return "killed";
  }
  return "running";
}

Result<RunStatus> ParseRunStatus(std::string_view text) {
  for (RunStatus status :
       {RunStatus::kRunning, RunStatus::kFinished, RunStatus::kFailed, RunStatus::kKilled}) {
    if (RunStatusName(status) == text) return status;
  }
  return InvalidArgument("unknown run status '" + std::string(text) +
                         "' (known: running, finished, failed, killed)");
}

std::string_view StageName(Stage stage) {
  switch (stage) {
    case Stage::kTrained:
      return "trained";
    case Stage::kStaging:
      return "staging";
    case Stage::kProduction:
      return "production";
    case Stage::kArchived:
      return "archived";
  }
  return "trained";
}

Result<Stage> ParseStage(std::string_view text) {
  for (Stage stage : {Stage::kTrained, Stage::kStaging, Stage::kProduction, Stage::kArchived}) {
    if (StageName(stage) == text) return stage;
  }
  return InvalidArgument("unknown stage '" + std::string(text) +
                         "' (known: trained, staging, production, archived)");
}

Result<RunPredicate> ParseRunPredicate(std::string_view text) {
  std::string_view rest = Trim(text);
  auto error = [&](const std::string& what) {
    return InvalidArgument("filter '" + std::string(text) + "': " + what +
                           " (write e.g. params.lr = 0.1, metrics.auc >= 0.7, tags.team != ml)");
  };
  RunPredicate predicate;
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return error("expected params., metrics. or tags.");
  std::string_view field = rest.substr(0, dot);
  if (field == "params" || field == "param") {
    predicate.field = RunPredicate::Field::kParam;
  } else if (field == "metrics" || field == "metric") {
    predicate.field = RunPredicate::Field::kMetric;
  } else if (field == "tags" || field == "tag") {
    predicate.field = RunPredicate::Field::kTag;
  } else {
    return error("unknown field '" + std::string(field) + "'");
  }
  rest.remove_prefix(dot + 1);
  size_t op_start = rest.find_first_of("=!<>");
  if (op_start == std::string_view::npos) return error("expected an operator");
  predicate.key = std::string(Trim(rest.substr(0, op_start)));
  if (predicate.key.empty()) return error("empty key");
  rest.remove_prefix(op_start);
  static const std::pair<const char*, RunPredicate::Op> kOps[] = {
      {"==", RunPredicate::Op::kEq}, {"!=", RunPredicate::Op::kNe}, {"<=", RunPredicate::Op::kLe},
      {">=", RunPredicate::Op::kGe}, {"=", RunPredicate::Op::kEq},  {"<", RunPredicate::Op::kLt},
      {">", RunPredicate::Op::kGt}};
  bool matched = false;
  for (const auto& [spelling, op] : kOps) {
    std::string_view candidate(spelling);
    if (rest.substr(0, candidate.size()) == candidate) {
      predicate.op = op;
      rest.remove_prefix(candidate.size());
      matched = true;
      break;
    }
  }
  if (!matched) return error("unknown operator");
  std::string_view value = Trim(rest);
  if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"') &&
      value.back() == value.front()) {
    value = value.substr(1, value.size() - 2);
  }
  predicate.text = std::string(value);
  if (predicate.field == RunPredicate::Field::kMetric) {
    char* end = nullptr;
    predicate.number = std::strtod(predicate.text.c_str(), &end);
    if (predicate.text.empty() || end != predicate.text.c_str() + predicate.text.size()) {
      return error("a metric compares with a number, not '" + predicate.text + "'");
    }
  } else if (predicate.op != RunPredicate::Op::kEq && predicate.op != RunPredicate::Op::kNe) {
    return error("params and tags compare with = or != only");
  }
  return predicate;
}

Result<ModelVersion> FindModelVersion(Registry* registry, const std::string& model,
                                      const std::string& ref) {
  std::string digits = ref;
  if (digits.size() > 1 && (digits[0] == 'v' || digits[0] == 'V')) digits.erase(0, 1);
  bool numeric = !digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos;
  if (!numeric) return registry->GetVersionByAlias(model, ref);
  if (digits.size() > 18) {
    return InvalidArgument("model '" + model + "': version '" + ref + "' is too large");
  }
  return registry->GetModelVersion(model, std::stoll(digits));
}

Timestamp SystemNow() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// --- SqlRows -----------------------------------------------------------------

bool SqlRows::IsNull(size_t row, size_t column) const {
  return std::holds_alternative<std::monostate>(rows_[row][column]);
}

int64_t SqlRows::Int(size_t row, size_t column) const {
  const SqlValue& value = rows_[row][column];
  if (std::holds_alternative<int64_t>(value)) return std::get<int64_t>(value);
  if (std::holds_alternative<double>(value)) return static_cast<int64_t>(std::get<double>(value));
  if (std::holds_alternative<std::string>(value)) {
    return std::strtoll(std::get<std::string>(value).c_str(), nullptr, 10);
  }
  return 0;
}

double SqlRows::Double(size_t row, size_t column) const {
  const SqlValue& value = rows_[row][column];
  if (std::holds_alternative<double>(value)) return std::get<double>(value);
  if (std::holds_alternative<int64_t>(value)) return static_cast<double>(std::get<int64_t>(value));
  if (std::holds_alternative<std::string>(value)) {
    return std::strtod(std::get<std::string>(value).c_str(), nullptr);
  }
  return 0.0;
}

std::string SqlRows::Text(size_t row, size_t column) const {
  const SqlValue& value = rows_[row][column];
  if (std::holds_alternative<std::string>(value)) return std::get<std::string>(value);
  if (std::holds_alternative<int64_t>(value)) return std::to_string(std::get<int64_t>(value));
  if (std::holds_alternative<double>(value)) return std::to_string(std::get<double>(value));
  return "";
}

// --- opening -----------------------------------------------------------------

Result<std::unique_ptr<Registry>> OpenRegistry(const RegistryOptions& options) {
  std::function<Timestamp()> clock = options.clock ? options.clock : SystemNow;
  if (options.type == "sqlite") {
    if (options.path.empty()) return InvalidArgument("registry: a sqlite registry needs a path");
    ASSIGN_OR_RETURN(std::unique_ptr<SqlConnection> connection,
                     OpenSqliteConnection(options.path, options.durable));
    return SqlRegistry::Open(std::move(connection), std::move(clock));
  }
  if (options.type == "postgres") {
    if (options.url.empty()) {
      return InvalidArgument("registry: a postgres registry needs a url (postgresql://...)");
    }
    ASSIGN_OR_RETURN(std::unique_ptr<SqlConnection> connection,
                     OpenPostgresConnection(options.url, options.schema));
    return SqlRegistry::Open(std::move(connection), std::move(clock));
  }
  return InvalidArgument("registry: unknown type '" + options.type + "' (known: sqlite, postgres)");
}

}  // namespace keel::registry
