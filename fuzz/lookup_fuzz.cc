// libFuzzer target: the lookup request parser of POST /v1/features and POST
// /get-online-features (serve/lookup.h), on a served repository
// (fuzz_server.h). Every input is sent in both shapes. Besides ASan/UBSan
// findings, an answer that is not JSON, or a 5xx (the request's fault must be
// a 4xx), stops the run.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "fuzz_server.h"

namespace {

void CheckReply(const keel::serve::Reply& reply, std::string_view body, const char* shape) {
  bool json = nlohmann::json::accept(reply.body);
  bool status_ok = reply.http_status == 200 || reply.http_status == 400 ||
                   reply.http_status == 404 || reply.http_status == 413;
  if (json && status_ok) return;
  std::fprintf(stderr, "lookup (%s) answered %d%s: %s\nrequest: %.*s\n", shape, reply.http_status,
               json ? "" : " with a body that is not JSON", reply.body.c_str(),
               static_cast<int>(body.size()), body.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)keel::fuzz::FuzzServer::Get();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  keel::fuzz::FuzzServer& server = keel::fuzz::FuzzServer::Get();
  std::string_view body(reinterpret_cast<const char*>(data), size);
  CheckReply(server.lookup->Lookup(body, keel::serve::LookupShape::kKeel), body, "keel");
  CheckReply(server.lookup->Lookup(body, keel::serve::LookupShape::kFeast), body, "feast");
  return 0;
}
