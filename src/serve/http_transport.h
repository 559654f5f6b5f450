#pragma once

// keel serve's HTTP/1.x transport: Boost.Beast's request parser on Boost.Asio
// event loops (the only file that includes them is http_transport.cc).
//
// Model. `loops` event loops, each an io_context run by one thread, serve the
// connections; one more thread only accepts, and hands each new connection to
// the loop with the fewest connections among those not stuck in a handler
// (a loop that has been inside one handler for more than 5 ms gets no new
// connections while another loop is free). A connection stays on its loop:
// its requests are parsed, routed and answered there, one at a time, in
// order (pipelined requests are answered in the order they came).
//
// Long handlers. A handler runs on its connection's loop and blocks the
// other connections of that loop while it runs, except when the request
// body has at least `offload_body_bytes` (a 100 000-row prediction, a large
// event batch): such a request is handled on a pool of `workers` threads and
// its loop goes on serving the others meanwhile. So a slow request stalls at
// most the connections that share its loop, for its own duration, and never
// new connections while another loop is free.
//
// HTTP. HTTP/1.0 and 1.1, keep-alive (1.1 by default, 1.0 with
// "Connection: keep-alive"), pipelining, chunked request bodies, "Expect:
// 100-continue". Every error is JSON {"error": "..."}: 400 for a malformed
// request (then the connection is closed), 413 for a body over
// max_body_bytes (announced or chunked), 431 for a request line and headers
// over max_header_bytes, 404 for a path no route matches (naming the
// routes), 405 with Allow for a path matched only by routes of other
// methods, 500 for a handler that throws. HEAD is answered by HEAD routes,
// else by GET routes, without the body. An idle keep-alive connection is
// closed after keep_alive_seconds; a request whose bytes, or an answer whose
// writing, stall for io_timeout_seconds is dropped.
//
// Shutdown stops accepting at once (new connections are refused), closes
// idle connections, answers every request already begun (with "Connection:
// close"), and then Run returns.

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "serve/http_route.h"

namespace keel::serve {

struct TransportOptions {
  std::string host = "127.0.0.1";
  int port = 0;     // 0: any free port
  int loops = 1;    // event loops, one thread each
  int workers = 0;  // threads for requests with large bodies; 0: as many as loops
  size_t max_body_bytes = 1024 * 1024;
  size_t max_header_bytes = 64 * 1024;  // request line and headers together
  int keep_alive_seconds = 5;
  int io_timeout_seconds = 5;
  size_t offload_body_bytes = 64 * 1024;
};

// Thread-safety: Shutdown may be called from any thread at any time; the
// other methods from one thread, in the order Make, Bind, Run. Routes'
// handlers are called from the loops and the workers concurrently.
class HttpTransport {
 public:
  // Compiles the routes' patterns (matched in order; the first route of the
  // request's method whose pattern matches the whole path answers).
  // Errors: InvalidArgument for a bad option, an unknown method or a pattern
  // that is not an ECMAScript regex.
  static Result<std::unique_ptr<HttpTransport>> Make(TransportOptions options,
                                                     std::vector<Route> routes);
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Binds host:port (SO_REUSEADDR, never SO_REUSEPORT: a port in use is an
  // error) and listens. Errors: Unavailable "cannot listen on HOST:PORT: reason".
  Status Bind();
  // The port bound. Precondition: Bind succeeded.
  int port() const;

  // Serves until Shutdown, then returns once every request begun has been
  // answered (see the header comment). Precondition: Bind succeeded.
  Status Run();

  // Stops serving (see the header comment). Idempotent.
  void Shutdown();
  // True once Shutdown was called: handlers may tell clients to go.
  bool draining() const;

 private:
  class Impl;
  explicit HttpTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::serve
