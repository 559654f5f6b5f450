#pragma once

// The prediction endpoints of `keel serve` (issue 6), as routes
// (http_route.h):
//
//   POST /v1/models/{name}:predict   features + transforms + model in one call
//   GET  /v2/health/live, /v2/health/ready, /v2          Open Inference Protocol
//   GET  /v2/models/{name}[/versions/{v}][/ready]
//   POST /v2/models/{name}[/versions/{v}]/infer
//
// POST /v1/models/{name}:predict takes
//   {"rows": [{"origin": "SFO", "date": "2001-06-15 08:00:00", ...}, ...]
//      | "columns": {"origin": ["SFO", ...], ...},
//    "at": "2001-06-15 08:00:00"   (optional; features as of then; default now)
//    "request_id": "...",          (optional; default the X-Request-Id header or a new id)
//    "deadline_ms": 50}            (optional; default the server's; 0: answer
//                                   from the fallback without reading features)
// Each row holds the entity key columns the model's feature views need and
// the request inputs' columns (a string column an input expression reads as
// a timestamp is parsed as one). keel computes the request inputs exactly as
// training did (train::AddRequestInputs), reads the model's pinned feature
// versions from the online store in one batched read, applies the bundle's
// transforms and scores with the compiled trees. The answer:
//   {"model": name, "version": v, "request_id": id,
//    "predictions": [p, ...],
//    "features": [{"missing": [names], "stale": [names]}, ...]  (per row; every
//                 other feature of the model is present),
//    "fallback": null | {"used": "baseline" | "defaults", "reason": "..."},
//    "timing_us": {"features": t, "model": t, "total": t}}
// A feature is "missing" when the store has no value for the entity (or its
// key is null), "stale" when its value is older than the view's ttl.
//
// Fallback: when the features cannot be read (store error) or not within the
// deadline, or the model fails, the model's declared fallback answers:
//   "baseline"  the linear baseline on whatever features were read (missing
//               ones impute to their training mean);
//   "defaults"  the model with every view feature missing;
//   "error"     503 naming the cause.
// Client errors (malformed JSON, unknown fields, wrong types, missing key
// columns, too many rows) are 4xx naming the field and never fall back.
//
// Thread-safety: the routes may be called from many threads at once.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "serve/feature_resolver.h"
#include "serve/http_route.h"
#include "serve/metrics.h"
#include "serve/model_manager.h"
#include "serve/predict_request.h"
#include "store/online_store.h"

namespace keel::serve {

// One answered prediction request, for the prediction log and metrics.
struct PredictionEvent {
  std::string request_id;
  Timestamp time = 0;  // wall clock at the start of the request
  std::string model;
  int64_t version = 0;
  int http_status = 200;
  std::string fallback;  // "" when the model answered
  size_t rows = 0;
  // Per row: the entity keys and request columns as JSON, the model inputs
  // (raw, NaN for missing), the prediction.
  std::vector<std::string> row_keys_json;
  std::shared_ptr<const std::vector<std::string>> input_names;
  std::vector<std::vector<double>> inputs;
  std::vector<double> predictions;
  size_t missing_features = 0;
  std::vector<std::string> missing_feature_names;  // one entry per missing value
  int64_t features_us = 0, model_us = 0, total_us = 0;
};

// Everything the routes use; all must outlive the routes.
struct PredictContext {
  ModelManager* models = nullptr;
  FeatureResolver* resolver = nullptr;
  store::OnlineStore* store = nullptr;
  PredictOptions options;
  // Request counts by model, version and status ("ok", "fallback",
  // "bad_request", "not_found", "unavailable", "error"), latency (total,
  // features, model), missing features, requests in flight; may be null.
  ServingMetrics* metrics = nullptr;
  // Called after every prediction request that reached a model (answered
  // or fallen back), on the request's thread; must not block.
  std::function<void(PredictionEvent&&)> on_prediction;
};

// The routes above over `context`.
std::vector<Route> PredictRoutes(const PredictContext* context);

}  // namespace keel::serve
