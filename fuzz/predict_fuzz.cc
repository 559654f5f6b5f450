// libFuzzer target: the request parser of POST /v1/models/{name}:predict
// (serve/predict_request.h). Besides ASan/UBSan findings, an answer other
// than 200, 400 or 413, an error body that is not JSON, or an accepted
// request whose table does not hold one row per row sent, stops the run.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "serve/predict_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  keel::serve::PredictOptions options;
  options.max_rows = 64;
  keel::serve::PredictRequest request;
  keel::serve::Reply reply = keel::serve::ParsePredictBody(body, options, &request);
  bool fine = false;
  if (reply.http_status == 200) {
    fine = request.rows.num_rows() == request.row_json.size() && request.rows.num_rows() > 0 &&
           request.rows.num_rows() <= options.max_rows && request.deadline_ms >= 0;
  } else if (reply.http_status == 400 || reply.http_status == 413) {
    nlohmann::json error = nlohmann::json::parse(reply.body, nullptr, false);
    fine = error.is_object() && error.contains("error");
  }
  if (fine) return 0;
  std::fprintf(stderr, "predict parser answered %d: %s\nrequest: %.*s\n", reply.http_status,
               reply.body.c_str(), static_cast<int>(body.size()), body.data());
  std::abort();
}
