#include "serve/registry_api.h"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "common/files.h"
#include "common/time.h"
#include "registry/registry_json.h"
#include "serve/lookup.h"

namespace keel::serve {
namespace {

using nlohmann::json;
using registry::ModelVersion;
using registry::Registry;

constexpr int64_t kMaxRunsLimit = 10000;

// The registry, opened on first use. Thread-safety: Get may be called from
// many threads; the registry it returns serializes its own calls.
class RegistryHandle {
 public:
  explicit RegistryHandle(RegistryFactory open) : open_(std::move(open)) {}

  Result<Registry*> Get() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (registry_ == nullptr) {
      Result<std::unique_ptr<Registry>> opened = open_();
      if (!opened.ok()) {
        return Unavailable("registry unavailable: " + opened.status().message());
      }
      registry_ = std::move(opened).value();
    }
    return registry_.get();
  }

 private:
  RegistryFactory open_;
  std::mutex mutex_;
  std::unique_ptr<Registry> registry_;  // GUARDED_BY(mutex_)
};

Reply JsonReply(const json& value) { return Reply(200, value.dump()); }

// Refuses query parameters other than `known`, naming the first unknown one.
Status CheckQuery(const HttpRequest& request, const std::set<std::string>& known) {
  for (const auto& [name, value] : request.query) {
    if (known.count(name) == 0) {
      std::string allowed;
      for (const std::string& entry : known) allowed += (allowed.empty() ? "" : ", ") + entry;
      return InvalidArgument(
          "unknown query parameter '" + name + "'" +
          (allowed.empty() ? " (this endpoint takes none)" : " (known: " + allowed + ")"));
    }
  }
  return Status::Ok();
}

// The request body as a JSON object whose fields are all in `known`.
Result<json> ParseBody(const HttpRequest& request, const std::set<std::string>& known) {
  json body;
  try {
    body = json::parse(request.body);
  } catch (const json::exception& error) {
    return InvalidArgument("malformed JSON body: " + JsonErrorMessage(error.what()));
  }
  if (!body.is_object()) return InvalidArgument("the body must be a JSON object");
  for (const auto& [name, value] : body.items()) {
    if (known.count(name) == 0) {
      std::string allowed;
      for (const std::string& entry : known) allowed += (allowed.empty() ? "" : ", ") + entry;
      return InvalidArgument("unknown field '" + name + "' (known: " + allowed + ")");
    }
  }
  return body;
}

// A string field of `body` ("" when absent). Errors: InvalidArgument naming
// the field when it is not a string, or when it is required and empty.
Result<std::string> StringField(const json& body, const std::string& name, bool required,
                                const std::string& prefix = "") {
  auto found = body.find(name);
  if (found == body.end() || found->is_null()) {
    if (required) return InvalidArgument("field '" + prefix + name + "' is required");
    return std::string();
  }
  if (!found->is_string()) {
    return InvalidArgument("field '" + prefix + name + "' must be a string, not " +
                           found->type_name());
  }
  std::string value = found->get<std::string>();
  if (required && value.empty()) {
    return InvalidArgument("field '" + prefix + name + "' must not be empty");
  }
  return value;
}

Result<int64_t> ParseLimit(const std::string& text) {
  bool digits =
      !text.empty() && text.size() <= 9 &&
      std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
  int64_t limit = digits ? std::stoll(text) : 0;
  if (limit < 1 || limit > kMaxRunsLimit) {
    return InvalidArgument("query parameter 'limit': expected a whole number from 1 to " +
                           std::to_string(kMaxRunsLimit) + ", not '" + text + "'");
  }
  return limit;
}

// "auc", "metrics.auc", "metrics.auc DESC", "auc asc".
Status ParseOrderBy(std::string text, registry::RunQuery* query) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  auto strip_suffix = [&](const std::string& suffix) {
    if (lower.size() > suffix.size() && lower.ends_with(suffix)) {
      text.resize(text.size() - suffix.size());
      lower.resize(lower.size() - suffix.size());
      return true;
    }
    return false;
  };
  if (strip_suffix(" asc")) {
    query->ascending = true;
  } else {
    strip_suffix(" desc");
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  for (const char* prefix : {"metrics.", "metric."}) {
    if (text.starts_with(prefix)) text.erase(0, std::string_view(prefix).size());
  }
  if (text.empty() || text.find(' ') != std::string::npos) {
    return InvalidArgument(
        "query parameter 'order_by': expected a metric, e.g. 'metrics.auc' or "
        "'metrics.loss asc'");
  }
  query->order_by_metric = text;
  return Status::Ok();
}

Result<json> ListModels(Registry* registry, const HttpRequest& request) {
  RETURN_IF_ERROR(CheckQuery(request, {}));
  ASSIGN_OR_RETURN(std::vector<registry::RegisteredModel> models, registry->ListModels());
  json out = json::array();
  for (const registry::RegisteredModel& model : models) out.push_back(registry::ModelJson(model));
  return out;
}

Result<json> GetModel(Registry* registry, const HttpRequest& request) {
  RETURN_IF_ERROR(CheckQuery(request, {}));
  const std::string& name = request.captures.at(0);
  ASSIGN_OR_RETURN(registry::RegisteredModel model, registry->GetModel(name));
  ASSIGN_OR_RETURN(std::vector<ModelVersion> versions, registry->ListModelVersions(name));
  return registry::ModelDetailJson(model, versions);
}

Result<json> ListVersions(Registry* registry, const HttpRequest& request) {
  RETURN_IF_ERROR(CheckQuery(request, {}));
  ASSIGN_OR_RETURN(std::vector<ModelVersion> versions,
                   registry->ListModelVersions(request.captures.at(0)));
  json out = json::array();
  for (const ModelVersion& version : versions) out.push_back(registry::VersionJson(version));
  return out;
}

Result<json> GetVersion(Registry* registry, const HttpRequest& request) {
  RETURN_IF_ERROR(CheckQuery(request, {}));
  ASSIGN_OR_RETURN(
      ModelVersion version,
      registry::FindModelVersion(registry, request.captures.at(0), request.captures.at(1)));
  return registry::VersionJson(version);
}

Result<json> GetRun(Registry* registry, const HttpRequest& request) {
  RETURN_IF_ERROR(CheckQuery(request, {}));
  ASSIGN_OR_RETURN(registry::Run run, registry->GetRun(request.captures.at(0)));
  return registry::RunJson(run);
}

Result<json> ListRuns(Registry* registry, const HttpRequest& request) {
  RETURN_IF_ERROR(CheckQuery(request, {"experiment", "status", "filter", "order_by", "limit"}));
  registry::RunQuery query;
  query.experiment = request.Query("experiment");
  std::string status = request.Query("status");
  if (!status.empty()) {
    Result<registry::RunStatus> parsed = registry::ParseRunStatus(status);
    if (!parsed.ok()) return parsed.status().WithContext("query parameter 'status'");
    query.status = *parsed;
  }
  auto [first, last] = request.query.equal_range("filter");
  for (auto it = first; it != last; ++it) {
    Result<registry::RunPredicate> predicate = registry::ParseRunPredicate(it->second);
    if (!predicate.ok()) return predicate.status().WithContext("query parameter 'filter'");
    query.where.push_back(std::move(predicate).value());
  }
  std::string order_by = request.Query("order_by");
  if (!order_by.empty()) RETURN_IF_ERROR(ParseOrderBy(order_by, &query));
  if (request.query.count("limit") > 0) {
    ASSIGN_OR_RETURN(query.limit, ParseLimit(request.Query("limit")));
  }
  ASSIGN_OR_RETURN(std::vector<registry::Run> runs, registry->SearchRuns(query));
  json out = json::array();
  for (const registry::Run& run : runs) out.push_back(registry::RunJson(run));
  return out;
}

Result<json> History(Registry* registry, const HttpRequest& request) {
  RETURN_IF_ERROR(CheckQuery(request, {"at"}));
  const std::string& model = request.captures.at(0);
  if (request.query.count("at") > 0) {
    Result<Timestamp> at = ParseTimestamp(request.Query("at"));
    if (!at.ok()) return at.status().WithContext("query parameter 'at'");
    ASSIGN_OR_RETURN(std::optional<int64_t> version, registry->ProductionVersionAt(model, *at));
    return registry::ProductionAtJson(model, *at, version);
  }
  ASSIGN_OR_RETURN(std::vector<registry::StageTransition> history, registry->History(model));
  json out = json::array();
  for (const registry::StageTransition& entry : history) {
    out.push_back(registry::TransitionJson(entry));
  }
  return out;
}

Result<json> Transition(Registry* registry, const HttpRequest& request) {
  RETURN_IF_ERROR(CheckQuery(request, {}));
  ASSIGN_OR_RETURN(json body, ParseBody(request, {"to", "actor", "reason", "sign_off"}));
  registry::TransitionRequest transition;
  transition.model = request.captures.at(0);
  ASSIGN_OR_RETURN(std::string to, StringField(body, "to", true));
  Result<registry::Stage> stage = registry::ParseStage(to);
  if (!stage.ok()) return stage.status().WithContext("field 'to'");
  transition.to = *stage;
  ASSIGN_OR_RETURN(transition.actor, StringField(body, "actor", true));
  ASSIGN_OR_RETURN(transition.reason, StringField(body, "reason", false));
  if (body.contains("sign_off") && !body["sign_off"].is_null()) {
    const json& sign_off = body["sign_off"];
    if (!sign_off.is_object()) {
      return InvalidArgument(std::string("field 'sign_off' must be an object {\"by\", \"note\"}, "
                                         "not ") +
                             sign_off.type_name());
    }
    for (const auto& [name, value] : sign_off.items()) {
      if (name != "by" && name != "note") {
        return InvalidArgument("unknown field 'sign_off." + name + "' (known: by, note)");
      }
    }
    registry::SignOff value;
    ASSIGN_OR_RETURN(value.by, StringField(sign_off, "by", true, "sign_off."));
    ASSIGN_OR_RETURN(value.note, StringField(sign_off, "note", true, "sign_off."));
    transition.sign_off = value;
  }
  std::string subject =
      "model '" + transition.model + "' version " + request.captures.at(1) + ": promotion to ";
  if (transition.to == registry::Stage::kProduction && !transition.sign_off) {
    return FailedPrecondition(subject +
                              "production needs a sign-off: \"sign_off\": {\"by\", \"note\"}");
  }
  if (transition.to == registry::Stage::kProduction && transition.reason.empty()) {
    return InvalidArgument(subject +
                           "production needs a \"reason\" (it goes into the audit trail)");
  }
  ASSIGN_OR_RETURN(ModelVersion version,
                   registry::FindModelVersion(registry, transition.model, request.captures.at(1)));
  transition.version = version.version;
  ASSIGN_OR_RETURN(ModelVersion moved, registry->TransitionStage(transition));
  return registry::VersionJson(moved);
}

Result<json> Rollback(Registry* registry, const HttpRequest& request) {
  RETURN_IF_ERROR(CheckQuery(request, {}));
  ASSIGN_OR_RETURN(json body, ParseBody(request, {"actor", "reason"}));
  ASSIGN_OR_RETURN(std::string actor, StringField(body, "actor", true));
  ASSIGN_OR_RETURN(std::string reason, StringField(body, "reason", true));
  ASSIGN_OR_RETURN(ModelVersion restored,
                   registry->Rollback(request.captures.at(0), actor, reason));
  return registry::VersionJson(restored);
}

Result<json> SetAlias(Registry* registry, const HttpRequest& request) {
  RETURN_IF_ERROR(CheckQuery(request, {}));
  ASSIGN_OR_RETURN(json body, ParseBody(request, {"version"}));
  const std::string& model = request.captures.at(0);
  const std::string& alias = request.captures.at(1);
  auto found = body.find("version");
  std::string ref;
  if (found == body.end()) return InvalidArgument("field 'version' is required");
  if (found->is_number_integer()) {
    ref = std::to_string(found->get<int64_t>());
  } else if (found->is_string()) {
    ref = found->get<std::string>();
  }
  bool numeric = !ref.empty() && ref.find_first_not_of("0123456789") == std::string::npos;
  bool v_numeric = ref.size() > 1 && (ref[0] == 'v' || ref[0] == 'V') &&
                   ref.find_first_not_of("0123456789", 1) == std::string::npos;
  if (!numeric && !v_numeric) {
    return InvalidArgument("field 'version': expected a version number (3 or \"v3\"), not " +
                           found->dump());
  }
  ASSIGN_OR_RETURN(ModelVersion target, registry::FindModelVersion(registry, model, ref));
  RETURN_IF_ERROR(registry->SetAlias(model, alias, target.version));
  ASSIGN_OR_RETURN(ModelVersion updated, registry->GetModelVersion(model, target.version));
  return registry::VersionJson(updated);
}

Result<json> DeleteAlias(Registry* registry, const HttpRequest& request) {
  RETURN_IF_ERROR(CheckQuery(request, {}));
  const std::string& model = request.captures.at(0);
  const std::string& alias = request.captures.at(1);
  RETURN_IF_ERROR(registry->DeleteAlias(model, alias));
  return json{{"model", model}, {"alias", alias}, {"deleted", true}};
}

// A handler: the registry and the request in, a JSON answer or an error out.
using Handler = std::function<Result<json>(Registry*, const HttpRequest&)>;

class RegistryApi {
 public:
  RegistryApi(RegistryFactory open, std::string admin_token)
      : handle_(std::move(open)), admin_token_(std::move(admin_token)) {}

  // A read: no token needed.
  Reply Read(const HttpRequest& request, const Handler& handler) {
    Result<Registry*> registry = handle_.Get();
    if (!registry.ok()) return ErrorReply(registry.status());
    Result<json> answer = handler(*registry, request);
    if (!answer.ok()) return ErrorReply(answer.status());
    return JsonReply(*answer);
  }

  // A transition: only with the admin token.
  Reply Change(const HttpRequest& request, const Handler& handler) {
    if (admin_token_.empty()) {
      return ErrorReply(403,
                        "transitions are disabled: start keel serve with --admin-token-file (or "
                        "KEEL_ADMIN_TOKEN)");
    }
    std::string authorization = request.Header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization.empty()) {
      Reply reply = ErrorReply(401, "missing admin token: send Authorization: Bearer TOKEN");
      reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"keel registry\"");
      return reply;
    }
    if (!authorization.starts_with(kBearer) ||
        !TokensMatch(std::string_view(authorization).substr(kBearer.size()), admin_token_)) {
      return ErrorReply(403, "wrong admin token");
    }
    return Read(request, handler);
  }

 private:
  RegistryHandle handle_;
  const std::string admin_token_;
};

}  // namespace

bool TokensMatch(std::string_view given, std::string_view expected) {
  unsigned char difference = given.size() == expected.size() ? 0 : 1;
  for (size_t idx = 0; idx < expected.size(); ++idx) {
    unsigned char left = idx < given.size() ? static_cast<unsigned char>(given[idx]) : 0;
    difference |= left ^ static_cast<unsigned char>(expected[idx]);
  }
  return difference == 0;
}

Result<std::string> LoadAdminToken(const std::string& token_file, const char* env_value) {
  std::string token;
  std::string origin;
  if (!token_file.empty()) {
    Result<std::string> contents = ReadFileToString(token_file);
    if (!contents.ok()) return contents.status().WithContext("--admin-token-file " + token_file);
    token = std::move(contents).value();
    origin = "--admin-token-file " + token_file;
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
      token.pop_back();
    }
    size_t start = 0;
    while (start < token.size() && std::isspace(static_cast<unsigned char>(token[start]))) ++start;
    token.erase(0, start);
    if (token.empty()) return InvalidArgument(origin + ": the file holds no token");
  } else if (env_value != nullptr) {
    token = env_value;
    origin = "KEEL_ADMIN_TOKEN";
  }
  for (char c : token) {
    if (std::isspace(static_cast<unsigned char>(c)) ||
        std::iscntrl(static_cast<unsigned char>(c))) {
      return InvalidArgument(origin + ": the admin token must not contain whitespace");
    }
  }
  return token;
}

std::vector<Route> RegistryRoutes(RegistryFactory open_registry, std::string admin_token) {
  auto api = std::make_shared<RegistryApi>(std::move(open_registry), std::move(admin_token));
  const std::string models = "/v1/registry/models";
  const std::string model = models + "/([^/]+)";
  const std::string version = model + "/versions/([^/]+)";
  auto read = [api](Handler handler) {
    return [api, handler = std::move(handler)](const HttpRequest& request) {
      return api->Read(request, handler);
    };
  };
  auto change = [api](Handler handler) {
    return [api, handler = std::move(handler)](const HttpRequest& request) {
      return api->Change(request, handler);
    };
  };
  std::vector<Route> routes;
  routes.push_back({"GET", models, read(ListModels)});
  routes.push_back({"GET", model, read(GetModel)});
  routes.push_back({"GET", model + "/versions", read(ListVersions)});
  routes.push_back({"GET", version, read(GetVersion)});
  routes.push_back({"GET", model + "/history", read(History)});
  routes.push_back({"GET", "/v1/registry/runs", read(ListRuns)});
  routes.push_back({"GET", "/v1/registry/runs/([^/]+)", read(GetRun)});
  routes.push_back({"POST", version + "/stage", change(Transition)});
  routes.push_back({"POST", model + "/rollback", change(Rollback)});
  routes.push_back({"PUT", model + "/aliases/([^/]+)", change(SetAlias)});
  routes.push_back({"DELETE", model + "/aliases/([^/]+)", change(DeleteAlias)});
  return routes;
}

}  // namespace keel::serve
