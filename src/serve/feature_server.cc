// The feature server's endpoints, served by the HTTP transport (http_transport.h).
#include "serve/feature_server.h"

#include <string_view>
#include <utility>

#include "serve/events_endpoint.h"
#include "serve/features_json.h"
#include "serve/http_transport.h"

namespace keel::serve {

int DefaultServerThreads() {
  unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : static_cast<int>(cores);
}

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

  FeatureServer* self = server.get();
  const ServerOptions& config = server->options_;
  // The built-in endpoints first, then the modules' routes. HEAD is listed
  // for the probes so that a 405 names it in Allow.
  std::vector<Route> routes;
  auto health = [](const HttpRequest&) { return Reply(200, "{\"status\":\"ok\"}"); };
  auto ready = [self](const HttpRequest&) {
    return self->draining_ ? ErrorReply(503, "shutting down") : self->lookup_->Ready();
  };
  auto freshness = [self](const HttpRequest&) {
    if (self->ingestor_ == nullptr) return ErrorReply(404, "this server takes no events");
    return FreshnessReply(self->ingestor_.get(), WallClockNow());
  };
  for (const char* method : {"GET", "HEAD"}) {
    routes.push_back({method, "/health", health});
    routes.push_back({method, "/ready", ready});
  }
  for (auto [path, shape] : {std::pair{"/v1/features", LookupShape::kKeel},
                             std::pair{"/get-online-features", LookupShape::kFeast}}) {
    routes.push_back({"POST", path, [self, shape](const HttpRequest& request) {
                        return self->lookup_->Lookup(request.body, shape);
                      }});
  }
  size_t max_events = config.max_events;
  routes.push_back({"POST", "/v1/events", [self, max_events](const HttpRequest& request) {
                      if (self->ingestor_ == nullptr) {
                        return ErrorReply(404, "this server takes no events");
                      }
                      return IngestEvents(self->ingestor_.get(), request.body,
                                          request.Query("source"), max_events);
                    }});
  for (const char* method : {"GET", "HEAD"}) routes.push_back({method, "/v1/freshness", freshness});
  for (const Route& route : config.routes) routes.push_back(route);

  TransportOptions transport;
  transport.host = config.host;
  transport.port = config.port;
  transport.loops = config.threads;
  transport.max_body_bytes = config.max_body_bytes;
  transport.keep_alive_seconds = config.keep_alive_seconds;
  ASSIGN_OR_RETURN(server->http_, HttpTransport::Make(std::move(transport), std::move(routes)));
  return server;
}

FeatureServer::~FeatureServer() {
  Shutdown();
  if (refresher_.joinable()) refresher_.join();
  // Members go in reverse order: the HTTP transport, then the lookup, the
  // resolver (and catalog), and last the store.
}

Status FeatureServer::Bind() {
  RETURN_IF_ERROR(http_->Bind());
  port_ = http_->port();
  return Status::Ok();
}

Status FeatureServer::Run() {
  refresher_ = std::thread([this] { RefreshLoop(); });
  // Returns after Shutdown, once every request begun has been answered.
  Status served = http_->Run();
  {
    std::lock_guard lock(refresh_mutex_);
    stop_refresh_ = true;
  }
  refresh_wake_.notify_all();
  refresher_.join();
  return served;
}

void FeatureServer::Shutdown() {
  if (draining_.exchange(true)) return;
  if (http_ != nullptr) http_->Shutdown();
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
