// The cpp-httplib adapter: the only file that includes httplib.h.
#include "serve/feature_server.h"

#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>

#include "serve/events_endpoint.h"
#include "serve/features_json.h"

namespace keel::serve {

// httplib::Server with what its 0.11 API lacks, through its protected members.
class FeatureServer::HttpServer : public httplib::Server {
 public:
  // The listening socket, valid between a successful bind and the end of
  // listen_after_bind.
  int listening_socket() const { return svr_sock_; }
};

namespace {

constexpr std::string_view kJson = "application/json";
constexpr const char* kPaths =
    "GET /health, GET /ready, POST /v1/features, POST /get-online-features, POST /v1/events, "
    "GET /v1/freshness";

void Send(Reply reply, httplib::Response& response) {
  response.status = reply.http_status;
  response.body = std::move(reply.body);
  response.set_header("Content-Type", reply.content_type);
  for (auto& [name, value] : reply.headers) response.set_header(name, value);
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The request as a Route handler sees it.
HttpRequest ToHttpRequest(const httplib::Request& request, std::string_view body) {
  HttpRequest out;
  out.method = request.method;
  out.path = request.path;
  for (size_t i = 1; i < request.matches.size(); ++i) out.captures.push_back(request.matches[i]);
  for (const auto& [name, value] : request.params) out.query.emplace(name, value);
  for (const auto& [name, value] : request.headers) out.headers.emplace(Lower(name), value);
  out.body = body;
  return out;
}

}  // namespace

Result<std::unique_ptr<FeatureServer>> FeatureServer::Make(
    ServerOptions options, std::unique_ptr<features::Catalog> catalog,
    std::unique_ptr<store::OnlineStore> store, IngestorFactory make_ingestor) {
  if (options.threads < 1) return InvalidArgument("--threads: must be at least 1");
  if (options.max_body_bytes < 1) return InvalidArgument("--max-body-bytes: must be at least 1");
  if (options.limits.max_entities < 1) return InvalidArgument("--max-entities: must be at least 1");
  std::unique_ptr<FeatureServer> server(new FeatureServer());
  server->options_ = std::move(options);
  server->store_ = std::move(store);
  server->resolver_ = std::make_unique<FeatureResolver>(std::move(catalog));
  // A catalog that cannot be read yet is /ready's business, not a reason to exit.
  Status first_read = server->resolver_->Refresh();
  (void)first_read;
  if (make_ingestor) {
    ASSIGN_OR_RETURN(server->ingestor_, make_ingestor(server->store_.get()));
  }
  server->lookup_ = std::make_unique<FeatureLookup>(server->resolver_.get(), server->store_.get(),
                                                    server->options_.limits);

  auto http = std::make_unique<HttpServer>();
  FeatureServer* self = server.get();
  const ServerOptions& config = server->options_;
  size_t threads = static_cast<size_t>(config.threads);
  http->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http->set_payload_max_length(config.max_body_bytes);
  http->set_tcp_nodelay(true);  // small responses: never wait for Nagle
  // httplib 0.11 also sets SO_REUSEPORT, which lets a second server bind a
  // port in use and silently take half its connections; a busy port must be
  // an error instead.
  http->set_socket_options([](int socket) {
    int yes = 1;
    ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http->set_keep_alive_max_count(1000);
  http->set_keep_alive_timeout(config.keep_alive_seconds);
  http->set_read_timeout(5);
  http->set_write_timeout(5);

  // While draining, tell keep-alive clients to go, so their connections free
  // the workers at once rather than after the keep-alive timeout.
  auto finish = [self](Reply reply, httplib::Response& response) {
    Send(std::move(reply), response);
    if (self->draining_) response.set_header("Connection", "close");
  };

  http->Get("/health", [finish](const httplib::Request&, httplib::Response& response) {
    finish(Reply{200, "{\"status\":\"ok\"}"}, response);
  });
  http->Get("/ready", [self, finish](const httplib::Request&, httplib::Response& response) {
    finish(self->draining_ ? ErrorReply(503, "shutting down") : self->lookup_->Ready(), response);
  });
  size_t max_body = config.max_body_bytes;
  // Bodies are read through a content reader so that the size limit also
  // holds for chunked bodies, which httplib 0.11 reads without one. Answers
  // the request itself (413 / 400) and returns false when the body is unusable.
  auto read_body = [finish, max_body](const httplib::ContentReader& reader,
                                      httplib::Response& response, std::string* body) {
    bool too_large = false;
    bool read = reader([&](const char* data, size_t length) {
      if (body->size() + length > max_body) {
        too_large = true;
        return false;
      }
      body->append(data, length);
      return true;
    });
    // httplib refuses a Content-Length over the limit itself (status 413).
    if (too_large || response.status == 413) {
      finish(ErrorReply(413, "body: more than the limit of " + std::to_string(max_body) +
                                 " bytes (keel serve --max-body-bytes)"),
             response);
      response.set_header("Connection", "close");
      return false;
    }
    if (!read) {
      finish(ErrorReply(400, "body: could not be read"), response);
      response.set_header("Connection", "close");
      return false;
    }
    return true;
  };
  // Routes that take a body: each gets the body, whether it came with a
  // content reader or not (a POST without a body never reaches a reader).
  auto post = [&http, read_body, finish](const char* path, auto handle) {
    http->Post(path, [read_body, finish, handle](const httplib::Request& request,
                                                 httplib::Response& response,
                                                 const httplib::ContentReader& reader) {
      std::string body;
      if (read_body(reader, response, &body)) finish(handle(request, body), response);
    });
    http->Post(path,
               [finish, handle](const httplib::Request& request, httplib::Response& response) {
                 finish(handle(request, request.body), response);
               });
  };
  for (auto [path, shape] : {std::pair{"/v1/features", LookupShape::kKeel},
                             std::pair{"/get-online-features", LookupShape::kFeast}}) {
    post(path, [self, shape](const httplib::Request&, std::string_view body) {
      return self->lookup_->Lookup(body, shape);
    });
  }
  size_t max_events = config.max_events;
  post("/v1/events", [self, max_events](const httplib::Request& request, std::string_view body) {
    if (self->ingestor_ == nullptr) return ErrorReply(404, "this server takes no events");
    std::string source = request.get_param_value("source");
    return IngestEvents(self->ingestor_.get(), body, source, max_events);
  });
  http->Get("/v1/freshness", [self, finish](const httplib::Request&, httplib::Response& response) {
    if (self->ingestor_ == nullptr) {
      finish(ErrorReply(404, "this server takes no events"), response);
      return;
    }
    finish(FreshnessReply(self->ingestor_.get(), WallClockNow()), response);
  });

  // The modules' routes; methods grouped by pattern for the 405 answers.
  std::map<std::string, std::string> route_methods;
  std::string paths = kPaths;
  for (const Route& route : config.routes) {
    auto handle = route.handle;
    std::string& methods = route_methods[route.pattern];
    if (methods.empty()) paths += ", " + route.pattern;
    methods += (methods.empty() ? "" : ", ") + route.method;
    if (route.method == "GET") {
      http->Get(route.pattern,
                [finish, handle](const httplib::Request& request, httplib::Response& response) {
                  finish(handle(ToHttpRequest(request, "")), response);
                });
      continue;
    }
    auto with_body = [handle](const httplib::Request& request, std::string_view body) {
      return handle(ToHttpRequest(request, body));
    };
    if (route.method == "POST") {
      post(route.pattern.c_str(), with_body);
    } else if (route.method == "PUT") {
      http->Put(route.pattern, [read_body, finish, with_body](
                                   const httplib::Request& request, httplib::Response& response,
                                   const httplib::ContentReader& reader) {
        std::string body;
        if (read_body(reader, response, &body)) finish(with_body(request, body), response);
      });
      http->Put(route.pattern,
                [finish, with_body](const httplib::Request& request, httplib::Response& response) {
                  finish(with_body(request, request.body), response);
                });
    } else if (route.method == "DELETE") {
      http->Delete(route.pattern, [finish, with_body](const httplib::Request& request,
                                                      httplib::Response& response) {
        finish(with_body(request, request.body), response);
      });
    } else {
      return InvalidArgument("route " + route.pattern + ": unsupported method " + route.method);
    }
  }

  // 405 for the known paths' other methods.
  auto not_allowed = [finish](std::string allow) {
    return [finish, allow](const httplib::Request& request, httplib::Response& response) {
      finish(ErrorReply(405, "method " + request.method + " not allowed on " + request.path +
                                 " (allowed: " + allow + ")"),
             response);
      response.set_header("Allow", allow);
    };
  };
  for (const char* path : {"/health", "/ready", "/v1/freshness"}) {
    http->Post(path, not_allowed("GET, HEAD"));
    http->Put(path, not_allowed("GET, HEAD"));
    http->Patch(path, not_allowed("GET, HEAD"));
    http->Delete(path, not_allowed("GET, HEAD"));
    http->Options(path, not_allowed("GET, HEAD"));
  }
  for (const char* path : {"/v1/features", "/get-online-features", "/v1/events"}) {
    http->Get(path, not_allowed("POST"));
    http->Put(path, not_allowed("POST"));
    http->Patch(path, not_allowed("POST"));
    http->Delete(path, not_allowed("POST"));
    http->Options(path, not_allowed("POST"));
  }
  for (const auto& [pattern, methods] : route_methods) {
    auto allows = [&methods](const char* method) {
      return (", " + methods + ",").find(std::string(", ") + method + ",") != std::string::npos;
    };
    if (!allows("GET")) http->Get(pattern, not_allowed(methods));
    if (!allows("POST")) http->Post(pattern, not_allowed(methods));
    if (!allows("PUT")) http->Put(pattern, not_allowed(methods));
    if (!allows("DELETE")) http->Delete(pattern, not_allowed(methods));
    http->Patch(pattern, not_allowed(methods));
  }

  // Errors httplib answers itself (no route, body over the limit, a
  // malformed request) get a JSON body too; our own errors already have one.
  http->set_error_handler(httplib::Server::HandlerWithResponse(
      [max_body, paths](const httplib::Request& request, httplib::Response& response) {
        if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message;
        switch (response.status) {
          case 404:
            message = "no such path: " + request.path + " (paths: " + paths + ")";
            break;
          case 413:
            message = "body: more than the limit of " + std::to_string(max_body) +
                      " bytes (keel serve --max-body-bytes)";
            break;
          case 414:
            message = "request target too long";
            break;
          case 400:
            message = "malformed HTTP request";
            if (!request.method.empty() && request.method != "GET" && request.method != "HEAD" &&
                request.method != "POST" && request.method != "PUT" && request.method != "DELETE" &&
                request.method != "PATCH" && request.method != "OPTIONS") {
              response.status = 405;
              message = "method " + request.method + " not allowed";
            }
            break;
          default:
            message = "HTTP error " + std::to_string(response.status);
        }
        response.body = ErrorJson(message);
        response.set_header("Content-Type", std::string(kJson));
        return httplib::Server::HandlerResponse::Handled;
      }));
  http->set_exception_handler(
      [](const httplib::Request&, httplib::Response& response, std::exception_ptr error) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& exception) {
          what = exception.what();
        } catch (...) {
        }
        Send(ErrorReply(500, "internal error: " + what), response);
      });
  http->set_logger([](const httplib::Request& request, const httplib::Response& response) {
    // Only server faults: client errors are the client's to see.
    if (response.status >= 500) {
      std::fprintf(stderr, "keel serve: %s %s -> %d %s\n", request.method.c_str(),
                   request.path.c_str(), response.status, response.body.c_str());
    }
  });
  server->http_ = std::move(http);
  return server;
}

FeatureServer::~FeatureServer() {
  Shutdown();
  if (refresher_.joinable()) refresher_.join();
  int socket = listen_socket_.exchange(-1);
  if (socket >= 0) ::close(socket);
  // Members go in reverse order: the HTTP server, then the lookup, the
  // resolver (and catalog), and last the store.
}

Status FeatureServer::Bind() {
  // httplib reports only failure; errno still tells why (bind, listen).
  errno = 0;
  const std::string& host = options_.host;
  int port = options_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(host);
  } else if (!http_->bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    int error = errno;
    return Unavailable("cannot listen on " + host + ":" + std::to_string(options_.port) +
                       (error != 0 ? std::string(": ") + std::strerror(error) : std::string()));
  }
  port_ = port;
  // httplib listens with a backlog of 5, too few for a burst of clients;
  // listen() again raises it. The duplicate descriptor is ours to shut down.
  int socket = ::dup(http_->listening_socket());
  if (socket < 0)
    return Unavailable(std::string("dup of the listening socket: ") + std::strerror(errno));
  ::listen(socket, SOMAXCONN);
  listen_socket_ = socket;
  return Status::Ok();
}

Status FeatureServer::Run() {
  refresher_ = std::thread([this] { RefreshLoop(); });
  // Returns when accepting stops, after the worker pool has drained: every
  // accepted connection has been answered by then.
  bool clean = http_->listen_after_bind();
  {
    std::lock_guard lock(refresh_mutex_);
    stop_refresh_ = true;
  }
  refresh_wake_.notify_all();
  refresher_.join();
  int socket = listen_socket_.exchange(-1);
  if (socket >= 0) ::close(socket);
  if (!clean && !draining_) return Unavailable("accepting connections failed");
  return Status::Ok();
}

void FeatureServer::Shutdown() {
  if (draining_.exchange(true)) return;
  // httplib's own stop() marks its listening socket invalid, and every
  // connection that was accepted but still waits for a worker then sees that
  // and is closed unanswered. Shutting the socket down instead (through our
  // duplicate, so no descriptor is closed under httplib) refuses new
  // connections and makes accept fail, which ends the accept loop; httplib
  // then waits for its workers, which answer every accepted connection.
  int socket = listen_socket_.load();
  if (socket >= 0) ::shutdown(socket, SHUT_RDWR);
  {
    std::lock_guard lock(refresh_mutex_);
    stop_refresh_ = true;
  }
  refresh_wake_.notify_all();
}

void FeatureServer::RefreshLoop() {
  std::unique_lock lock(refresh_mutex_);
  while (!stop_refresh_) {
    refresh_wake_.wait_for(lock, FeatureResolver::kRetryUnknown, [this] { return stop_refresh_; });
    if (stop_refresh_) break;
    lock.unlock();
    // A failure is kept by the resolver and answered by /ready.
    Status refreshed = resolver_->Refresh();
    (void)refreshed;
    lock.lock();
  }
}

}  // namespace keel::serve
