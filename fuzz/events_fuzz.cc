// libFuzzer target: the events parser of POST /v1/events
// (serve/events_endpoint.h, serve/event_ingest.h), applying what it accepts
// to the served repository's memory store (fuzz_server.h). An input may start
// with a line "?source=NAME" (the query parameter); the rest is the body.
// Besides ASan/UBSan findings, an answer that is not JSON, or a 5xx (the
// request's fault must be a 4xx), stops the run.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "fuzz_server.h"
#include "serve/events_endpoint.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)keel::fuzz::FuzzServer::Get();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  keel::fuzz::FuzzServer& server = keel::fuzz::FuzzServer::Get();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view source;
  std::string_view body = input;
  constexpr std::string_view kPrefix = "?source=";
  if (input.starts_with(kPrefix)) {
    size_t end = input.find('\n');
    if (end == std::string_view::npos) end = input.size();
    source = input.substr(kPrefix.size(), end - kPrefix.size());
    body = input.substr(std::min(end + 1, input.size()));
  }
  keel::serve::Reply reply =
      keel::serve::IngestEvents(server.ingestor.get(), body, source, /*max_events=*/1000);
  bool json = nlohmann::json::accept(reply.body);
  bool status_ok = reply.http_status == 200 || reply.http_status == 400 ||
                   reply.http_status == 404 || reply.http_status == 413 || reply.http_status == 422;
  if (json && status_ok) return 0;
  std::fprintf(stderr, "events answered %d%s: %s\nrequest: %.*s\n", reply.http_status,
               json ? "" : " with a body that is not JSON", reply.body.c_str(),
               static_cast<int>(input.size()), input.data());
  std::abort();
}
