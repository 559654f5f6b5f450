#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "serve/feature_resolver.h"
#include "store/online_store.h"

namespace keel::serve {

// The HTTP status of an error: InvalidArgument 400, NotFound 404,
// FailedPrecondition 400 (as gRPC maps them), AlreadyExists 409, Unavailable and IoError 503,
// anything else 500. The one place where status codes become HTTP.
int HttpStatusFor(const Status& status);

// An answer, before HTTP framing: a status code, a body (JSON unless
// content_type says otherwise) and any extra headers.
struct Reply {
  Reply() = default;
  Reply(int status, std::string text) : http_status(status), body(std::move(text)) {}

  int http_status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

// The JSON error answer for `status` (HttpStatusFor, {"error": message}).
Reply ErrorReply(const Status& status);
Reply ErrorReply(int http_status, std::string_view message);

// nlohmann's parse error text without its "[json.exception...] " prefix, cut
// to 300 characters (it may quote the offending input).
std::string JsonErrorMessage(const char* what);

// Which answer a lookup gives.
//
// kFeast follows Feast's Python feature server (feature_server.py: the
// request model GetOnlineFeaturesRequest; the answer MessageToDict of
// ServingService.proto's GetOnlineFeaturesResponse with proto_json's patches),
// with these deliberate differences:
//   - TTL is enforced on every read (DESIGN.md; Feast's issue #6821);
//   - an entity the store does not hold is NOT_FOUND with the values the
//     offline engine gives it (count 0, the rest null), not all nulls, so the
//     server answers as training sets were built;
//   - a null key: its entity column is NULL_VALUE and its features INVALID;
//   - references take keel's syntax too (view alone = all its features,
//     @version, aliases, key maps), and "at" (keel's replay time) is accepted;
//   - unknown request fields are refused, not ignored;
//   - errors are {"error": "..."}; event times have microsecond precision.
enum class LookupShape {
  kKeel,   // POST /v1/features: features named "<prefix>__<feature>" (features_json.h FeaturesJson)
  kFeast,  // POST /get-online-features: Feast's (FeastFeaturesJson)
};

// Per-request limits.
struct LookupLimits {
  size_t max_entities = 1000;  // entity rows per request
};

// Answers lookup requests: parses and checks a JSON request body, resolves
// its features (FeatureResolver; cached), reads them for every entity in one
// batched store read (features::ReadOnlineFeatures) and writes the answer.
//
// The request:
//   {"features": ["view[@version][(key=column)][ as alias][:f1|f2]", ...]
//      | "feature_service": "name",
//    "entities": {"key": [v1, v2, ...], ...},
//    "at": "2024-03-03 12:00:00"        (optional; default now: replays and backtests)
//    "full_feature_names": true|false}  (kFeast only; default false)
// Every other field is refused (a misspelt option is never silently ignored).
//
// Errors become replies naming the field: 400 for a malformed or invalid
// request, 404 for an unknown view, version or service, 413 for more entity
// rows than the limit, 503 when the store fails.
//
// Thread-safety: Lookup and Ready may be called from many threads at once.
// The resolver and the store must outlive this object.
class FeatureLookup {
 public:
  FeatureLookup(FeatureResolver* resolver, store::OnlineStore* store, LookupLimits limits);

  // Answers one request body.
  Reply Lookup(std::string_view body, LookupShape shape) const;

  // 200 {"status":"ready"} when the catalog is read and holds views and the
  // store answers a meta read; otherwise 503 naming the reason.
  Reply Ready() const;

 private:
  FeatureResolver* resolver_;
  store::OnlineStore* store_;
  LookupLimits limits_;
};

}  // namespace keel::serve
