#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "features/catalog.h"
#include "serve/event_ingest.h"
#include "serve/feature_resolver.h"
#include "serve/http_route.h"
#include "serve/http_transport.h"
#include "serve/lookup.h"
#include "store/online_store.h"

namespace keel::serve {

// The number of cores (at least 1): the default number of event loops.
int DefaultServerThreads();

// How `keel serve` listens and what it accepts.
struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 6566;  // 0: any free port (see FeatureServer::port)
  // Event loops (http_transport.h): each serves its connections on one
  // thread. Default: the number of cores.
  int threads = DefaultServerThreads();
  size_t max_body_bytes = 1024 * 1024;  // larger request bodies get 413
  LookupLimits limits;                  // max entity rows per request (413 beyond)
  size_t max_events = 10000;            // max events per POST /v1/events (413 beyond)
  int keep_alive_seconds = 5;           // an idle connection is closed after this
  // More endpoints (http_route.h), matched after the built-in ones.
  std::vector<Route> routes;
};

// keel's HTTP feature server:
//   GET  /health               200 {"status":"ok"} while the process runs (liveness)
//   GET  /ready                200 when the catalog holds views and the store
//                              answers; 503 {"error": reason} otherwise and
//                              while shutting down
//   POST /v1/features          keel's lookup (lookup.h, LookupShape::kKeel)
//   POST /get-online-features  Feast's lookup (LookupShape::kFeast)
//   POST /v1/events            streamed events (events_endpoint.h), when the
//                              server has an EventIngestor
//   GET  /v1/freshness         the newest event applied to each view
//   ...                        and options.routes
// Every error is JSON {"error": "..."}: 404 for an unknown path, 405 (with
// Allow) for a known path and the wrong method, 413 for a body over
// max_body_bytes, and the lookup's own 4xx/5xx. The catalog is re-read every
// second in the background (FeatureResolver::Refresh), never on a request
// whose features are cached.
//
// The transport (http_transport.h) runs `threads` event loops, each serving
// many keep-alive connections; a handler blocks only its own loop's other
// connections, and requests with large bodies run on a worker pool instead.
//
// Thread-safety: Shutdown may be called from any thread at any time (a signal
// watcher); the other methods from one thread, in the order Make, Bind, Run.
class FeatureServer {
 public:
  // Makes the event ingestor over the server's store (which it must not outlive).
  using IngestorFactory =
      std::function<Result<std::unique_ptr<EventIngestor>>(store::OnlineStore* store)>;

  // Takes the catalog and the store; the store is closed when the server is
  // destroyed. Reads the catalog once (its errors are reported by /ready).
  // Without `make_ingestor`, POST /v1/events answers 404.
  // Errors: InvalidArgument for bad options; the ingestor factory's.
  static Result<std::unique_ptr<FeatureServer>> Make(ServerOptions options,
                                                     std::unique_ptr<features::Catalog> catalog,
                                                     std::unique_ptr<store::OnlineStore> store,
                                                     IngestorFactory make_ingestor = nullptr);
  ~FeatureServer();
  FeatureServer(const FeatureServer&) = delete;
  FeatureServer& operator=(const FeatureServer&) = delete;

  // Binds options.host:options.port and listens.
  // Errors: Unavailable "cannot listen on HOST:PORT: reason".
  Status Bind();
  // The port bound (the chosen one when options.port is 0). Precondition: Bind succeeded.
  int port() const { return port_; }

  // Serves until Shutdown, then returns once every request already begun
  // has been answered (idle keep-alive connections are closed at once).
  // Precondition: Bind succeeded.
  Status Run();

  // The server's resolver and store, for routes that read features (the
  // prediction API); owned by the server.
  FeatureResolver* resolver() const { return resolver_.get(); }
  store::OnlineStore* store() const { return store_.get(); }

  // Stops accepting connections (new ones are refused) and makes Run return
  // once the accepted ones are answered. Idempotent.
  void Shutdown();

 private:
  FeatureServer() = default;
  void RefreshLoop();

  ServerOptions options_;
  std::unique_ptr<store::OnlineStore> store_;
  std::unique_ptr<EventIngestor> ingestor_;  // may be null; uses store_
  std::unique_ptr<FeatureResolver> resolver_;
  std::unique_ptr<FeatureLookup> lookup_;
  std::unique_ptr<HttpTransport> http_;
  int port_ = -1;
  std::atomic<bool> draining_{false};

  std::mutex refresh_mutex_;
  std::condition_variable refresh_wake_;
  bool stop_refresh_ = false;  // GUARDED_BY(refresh_mutex_)
  std::thread refresher_;
};

}  // namespace keel::serve
