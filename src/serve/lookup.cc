#include "serve/lookup.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "features/online.h"
#include "serve/features_json.h"

namespace keel::serve {

using Json = nlohmann::ordered_json;

int HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kUnavailable:
    case StatusCode::kIoError:
      return 503;
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

Reply ErrorReply(int http_status, std::string_view message) {
  return Reply{http_status, ErrorJson(message)};
}

Reply ErrorReply(const Status& status) {
  return ErrorReply(HttpStatusFor(status), status.message());
}

std::string JsonErrorMessage(const char* what) {
  std::string_view text(what);
  if (!text.empty() && text.front() == '[') {
    size_t end = text.find("] ");
    if (end != std::string_view::npos) text.remove_prefix(end + 2);
  }
  // "last read: '...'" quotes the offending token, which can be the whole body.
  if (text.size() > 300) return std::string(text.substr(0, 296)) + " ...";
  return std::string(text);
}

namespace {

struct LookupRequest {
  FeatureSelection selection;
  const Json* entities = nullptr;
  Timestamp at = 0;
  bool full_feature_names = false;
};

// Checks the request's fields (everything but the entity values).
Status ParseRequest(const Json& body, LookupShape shape, LookupRequest* request) {
  if (!body.is_object()) {
    return InvalidArgument(
        "body: expected a JSON object, e.g. {\"features\": [\"view:feature\"], \"entities\": "
        "{\"user_id\": [1, 2]}}");
  }
  bool feast = shape == LookupShape::kFeast;
  for (const auto& [name, value] : body.items()) {
    if (name != "features" && name != "feature_service" && name != "entities" && name != "at" &&
        !(feast && name == "full_feature_names")) {
      return InvalidArgument(name +
                             ": unknown field (fields: features, feature_service, entities, " +
                             (feast ? "full_feature_names, at)" : "at)"));
    }
  }
  auto features = body.find("features");
  auto service = body.find("feature_service");
  if (features != body.end() && service != body.end()) {
    return InvalidArgument("features, feature_service: give one of them, not both");
  }
  if (features == body.end() && service == body.end()) {
    return InvalidArgument(
        "features: missing (a list of feature references, or give feature_service)");
  }
  if (features != body.end()) {
    if (!features->is_array() || features->empty()) {
      return InvalidArgument(
          "features: expected a non-empty array of feature references, e.g. "
          "[\"activity:events_1h\"], got " +
          DescribeJson(*features));
    }
    request->selection.references.reserve(features->size());
    for (size_t i = 0; i < features->size(); ++i) {
      const Json& item = (*features)[i];
      if (!item.is_string()) {
        return InvalidArgument("features[" + std::to_string(i) +
                               "]: expected a feature reference string, got " + DescribeJson(item));
      }
      request->selection.references.push_back(item.get<std::string>());
    }
  } else {
    if (!service->is_string() || service->get_ref<const std::string&>().empty()) {
      return InvalidArgument("feature_service: expected the name of a feature service, got " +
                             DescribeJson(*service));
    }
    request->selection.service = service->get<std::string>();
  }
  auto entities = body.find("entities");
  if (entities == body.end()) {
    return InvalidArgument("entities: missing (entity key columns, e.g. {\"user_id\": [1, 2]})");
  }
  request->entities = &*entities;
  ASSIGN_OR_RETURN(request->at, RequestTime(body, WallClockNow()));
  if (auto full = body.find("full_feature_names"); full != body.end()) {
    if (!full->is_boolean()) {
      return InvalidArgument("full_feature_names: expected true or false, got " +
                             DescribeJson(*full));
    }
    request->full_feature_names = full->get<bool>();
  }
  return Status::Ok();
}

}  // namespace

FeatureLookup::FeatureLookup(FeatureResolver* resolver, store::OnlineStore* store,
                             LookupLimits limits)
    : resolver_(resolver), store_(store), limits_(limits) {}

Reply FeatureLookup::Lookup(std::string_view body, LookupShape shape) const {
  Json json;
  try {
    json = Json::parse(body.begin(), body.end());
  } catch (const Json::exception& error) {
    return ErrorReply(400, "body: not valid JSON: " + JsonErrorMessage(error.what()));
  }
  LookupRequest request;
  if (Status parsed = ParseRequest(json, shape, &request); !parsed.ok()) return ErrorReply(parsed);
  // The limit comes before any work proportional to the rows.
  if (request.entities->is_object()) {
    for (const auto& [name, values] : request.entities->items()) {
      if (values.is_array() && values.size() > limits_.max_entities) {
        return ErrorReply(413, "entities." + name + ": " + std::to_string(values.size()) +
                                   " entity rows, more than the limit of " +
                                   std::to_string(limits_.max_entities) +
                                   " per request (keel serve --max-entities)");
      }
    }
  }
  Result<table::Table> entities = EntitiesFromJson(*request.entities);
  if (!entities.ok()) return ErrorReply(entities.status());
  Result<std::shared_ptr<const LookupPlan>> plan =
      resolver_->Plan(request.selection, entities->fields());
  if (!plan.ok()) return ErrorReply(plan.status());
  const LookupPlan& resolved = **plan;
  bool feast = shape == LookupShape::kFeast;
  if (feast && !request.full_feature_names && !resolved.short_name_clash.empty()) {
    return ErrorReply(400, "features: " + resolved.short_name_clash);
  }
  // Reused by the thread's next lookup: its buffers (names, statuses, times)
  // need no allocation once they have grown.
  thread_local features::OnlineFeatures out;
  Status read = features::ReadOnlineFeatures(store_, *entities, resolved.uses, resolved.views,
                                             request.at, &out);
  if (!read.ok()) {
    // A store that cannot be reached is worth retrying; anything else (a
    // corrupt stored value) is the server's fault, never the request's.
    if (read.code() == StatusCode::kUnavailable || read.code() == StatusCode::kIoError) {
      return ErrorReply(read.WithContext("online store"));
    }
    return ErrorReply(500, read.WithContext("online store").message());
  }
  if (out.names != resolved.full_names) {
    return ErrorReply(500, "internal error: the answer's features differ from the plan's");
  }
  if (!feast) return Reply{200, FeaturesJson(out, entities->num_rows())};
  return Reply{200, FeastFeaturesJson(
                        *entities, out,
                        request.full_feature_names ? resolved.full_names : resolved.short_names)};
}

Reply FeatureLookup::Ready() const {
  if (Status catalog = resolver_->Health(); !catalog.ok())
    return ErrorReply(503, catalog.message());
  Result<std::optional<std::string>> probe = store_->ReadMeta("serve/ready");
  if (!probe.ok()) return ErrorReply(503, "online store: " + probe.status().message());
  return Reply{200, "{\"status\":\"ready\"}"};
}

}  // namespace keel::serve
