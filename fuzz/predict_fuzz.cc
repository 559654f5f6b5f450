// libFuzzer target: the request parser of POST /v1/models/{name}:predict
// (serve/predict_request.h). Besides ASan/UBSan findings, an answer other
// than 200, 400 or 413, an error body that is not JSON, or an accepted
// request whose table does not hold one row per row sent, stops the run; so
// does a body the fast parser accepts that the general one refuses or reads
// otherwise (predict_request.h: the two must agree wherever the fast one answers).
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
  keel::serve::PredictRequest fast, general;
  if (fine && keel::serve::ParsePredictBodyFast(body, options, &fast)) {
    keel::serve::Reply answer = keel::serve::ParsePredictBodyGeneral(body, options, &general);
    fine = answer.http_status == 200 && fast.row_json == general.row_json &&
           fast.request_id == general.request_id && fast.deadline_ms == general.deadline_ms &&
           fast.rows.fields() == general.rows.fields() &&
           fast.rows.num_rows() == general.rows.num_rows();
    for (size_t col = 0; fine && col < fast.rows.num_columns(); ++col) {
      for (size_t row = 0; fine && row < fast.rows.num_rows(); ++row) {
        fine =
            fast.rows.column(col).ValueToString(row) == general.rows.column(col).ValueToString(row);
      }
    }
    if (!fine) std::fprintf(stderr, "the fast and the general parser disagree\n");
  }
  if (fine) return 0;
  std::fprintf(stderr, "predict parser answered %d: %s\nrequest: %.*s\n", reply.http_status,
               reply.body.c_str(), static_cast<int>(body.size()), body.data());
  std::abort();
}
