#pragma once

// The request of POST /v1/models/{name}:predict (predict_api.h) as parsed
// before any model work: the rows (or columns) as a typed table, "at",
// "request_id" and "deadline_ms". Separate from the endpoint so the parser
// can be fuzzed on its own (fuzz/predict_fuzz.cc).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "serve/lookup.h"
#include "table/column.h"

namespace keel::serve {

enum class Fallback { kBaseline, kDefaults, kError };

// "baseline" | "defaults" | "error". Errors: InvalidArgument naming the choices.
Result<Fallback> ParseFallback(std::string_view text);

struct PredictOptions {
  Fallback fallback = Fallback::kBaseline;
  int64_t deadline_ms = 100;  // per request, unless the request says otherwise
  size_t max_rows = 1000;     // rows per request (413 beyond)
};

struct PredictRequest {
  // One column per field named in any row (a row without it: null), typed by
  // its values: integers int64, any real double, strings, bools.
  table::Table rows;
  std::vector<std::string> row_json;  // each row as sent (JSON), for the log
  Timestamp at = 0;                   // default: now
  std::string request_id;             // "" when the body has none
  int64_t deadline_ms = 0;            // default: options.deadline_ms
};

// Parses a request body. Returns a 200 Reply (empty body) when `request` is
// filled; otherwise the error answer: 400 naming the field (malformed JSON,
// unknown field, mixed or unsupported value types, bad at / request_id /
// deadline_ms), 413 for more rows than options.max_rows.
// Thread-safety: a pure function.
Reply ParsePredictBody(std::string_view body, const PredictOptions& options,
                       PredictRequest* request);

// The two parsers ParsePredictBody runs. The fast one reads the usual body
// ("rows" of flat objects of plain strings, numbers, bools and nulls; "at",
// "request_id", "deadline_ms") in one pass with no JSON tree, and returns
// false, leaving `request` to be reset, for anything else - any body the
// general parser refuses among them - which the general one (nlohmann's
// tree) then answers. Wherever the fast parser accepts a body, it fills
// `request` exactly as the general one does (tested, and fuzzed,
// differentially). Exposed for those tests.
bool ParsePredictBodyFast(std::string_view body, const PredictOptions& options,
                          PredictRequest* request);
Reply ParsePredictBodyGeneral(std::string_view body, const PredictOptions& options,
                              PredictRequest* request);

}  // namespace keel::serve
