// libFuzzer target: the HTTP transport (serve/http_transport.h). Each input
// is sent as the bytes of one connection to a running transport, whose
// writing side is then closed. Besides ASan/UBSan findings, a refused
// connection (the server died) or an answer that does not start with an HTTP
// status line stops the run.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "serve/http_transport.h"

namespace {

// A transport on 2 loops with a GET route with a capture, a POST echo and a
// route that throws, small limits so that they are reached.
int StartServer() {
  using keel::serve::HttpRequest;
  using keel::serve::Reply;
  keel::serve::TransportOptions options;
  options.loops = 2;
  options.max_body_bytes = 512;
  options.max_header_bytes = 1024;
  options.offload_body_bytes = 256;
  options.keep_alive_seconds = 1;
  options.io_timeout_seconds = 1;
  std::vector<keel::serve::Route> routes = {
      {"GET", "/things/([^/]+)",
       [](const HttpRequest& request) {
         return Reply(200, request.captures.at(0) + request.Query("q") + request.Header("x"));
       }},
      {"POST", "/echo",
       [](const HttpRequest& request) { return Reply(200, std::string(request.body)); }},
      {"GET", "/throw", [](const HttpRequest&) -> Reply { throw std::runtime_error("thrown"); }},
  };
  auto made = keel::serve::HttpTransport::Make(options, std::move(routes));
  if (!made.ok() || !(*made)->Bind().ok()) std::abort();
  keel::serve::HttpTransport* server = made->release();  // serves until the process ends
  std::thread([server] { (void)server->Run(); }).detach();
  return server->port();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int port = StartServer();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    std::fprintf(stderr, "the transport refused a connection\n");
    std::abort();
  }
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  size_t sent = 0;
  while (sent < size) {
    ssize_t wrote = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (wrote <= 0) break;  // the server closed after an error answer
    sent += static_cast<size_t>(wrote);
  }
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  char buffer[16384];
  while (true) {
    ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
    if (got <= 0) break;
    answer.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  if (!answer.empty() && answer.rfind("HTTP/1.1 ", 0) != 0) {
    std::fprintf(stderr, "not an HTTP answer: %.200s\n", answer.c_str());
    std::abort();
  }
  return 0;
}
