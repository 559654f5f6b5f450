#pragma once

// The registry's HTTP API on `keel serve` (registry/registry.h), the same
// reads and transitions as `keel runs ...` / `keel models ...`, with the same
// JSON shapes (registry/registry_json.h):
//
//   GET    /v1/registry/models                          [ModelJson]
//   GET    /v1/registry/models/{name}                   ModelDetailJson (with versions)
//   GET    /v1/registry/models/{name}/versions          [VersionJson]
//   GET    /v1/registry/models/{name}/versions/{v}      VersionJson ({v}: 3, v3 or an alias)
//   GET    /v1/registry/models/{name}/history           [TransitionJson], oldest first;
//          ?at=TIME                                     ProductionAtJson instead
//   GET    /v1/registry/runs                            [RunJson]; ?experiment=, ?status=,
//          ?filter= (repeatable: "metrics.auc >= 0.7"), ?order_by=METRIC[ asc|desc]
//          (default: newest first; a metric orders best, i.e. largest, first), ?limit=
//          (1..10000, default 100)
//   GET    /v1/registry/runs/{id}                       RunJson ({id}: or a prefix of 6+)
//   POST   /v1/registry/models/{name}/versions/{v}/stage
//          {"to", "actor", "reason", "sign_off": {"by", "note"}}   -> the version, moved
//   POST   /v1/registry/models/{name}/rollback {"actor", "reason"} -> the restored version
//   PUT    /v1/registry/models/{name}/aliases/{alias} {"version": 3 | "v3"} -> the version
//   DELETE /v1/registry/models/{name}/aliases/{alias}   {"model", "alias", "deleted": true}
//
// Transitions (POST, PUT, DELETE) need `Authorization: Bearer TOKEN` with the
// admin token: without a configured token every transition answers 403
// ("transitions are disabled: ..."); a missing token 401, a wrong one 403
// (compared in constant time). Production needs a sign-off (both fields) and
// a reason, as on the command line. Unknown query parameters and body fields
// are refused, naming them.
//
// Errors are {"error": "..."} with serve::HttpStatusFor's status: 400 for a
// malformed request (naming the field) or a transition the stage rules forbid,
// 404 for an unknown model, version, alias or run, 409 for a conflict, 503
// when the registry cannot be opened or reached.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "registry/registry.h"
#include "serve/http_route.h"

namespace keel::serve {

// Opens the registry the routes use.
using RegistryFactory = std::function<Result<std::unique_ptr<registry::Registry>>()>;

// The routes above. The registry is opened by `open_registry` on the first
// request that needs it (and again on a later request while opening fails:
// those answer 503), then shared by every request: a Registry serializes its
// calls, so the server's worker threads may use it at once. `admin_token`
// empty: transitions are disabled.
// Thread-safety: the routes' handlers may run on many threads at once.
std::vector<Route> RegistryRoutes(RegistryFactory open_registry, std::string admin_token);

// The admin token: the contents of `token_file` without surrounding
// whitespace when it is given, else `env_value` (KEEL_ADMIN_TOKEN; may be
// null), else "" (transitions disabled). Errors: those of reading the file,
// naming it; InvalidArgument for an empty file or a token containing
// whitespace or control characters.
Result<std::string> LoadAdminToken(const std::string& token_file, const char* env_value);

// Whether `given` equals `expected`, in a time that depends on expected's
// length only (not on where they differ).
bool TokensMatch(std::string_view given, std::string_view expected);

}  // namespace keel::serve
