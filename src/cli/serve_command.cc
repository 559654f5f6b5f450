// `keel serve`: wires the repository's catalog and online store into the HTTP
// feature server and turns SIGTERM / SIGINT into a graceful shutdown.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include "cli/commands.h"
#include "features/catalog.h"
#include "serve/event_ingest.h"
#include "serve/feature_server.h"
#include "table/duckdb_bridge.h"

namespace keel::cli {

Status RunServe(const ServeOptions& options) {
  // One thread takes the stop signals with sigtimedwait. They are blocked
  // before any other thread exists (the store's, the server's), so every
  // thread inherits the mask and none is interrupted by them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a client gone mid-answer is an error return, not an exit

  ASSIGN_OR_RETURN(features::RepoConfig config, features::LoadRepoConfig(options.repo.repo));
  ASSIGN_OR_RETURN(std::unique_ptr<features::Catalog> catalog,
                   features::Catalog::Open(config.catalog_path));
  ASSIGN_OR_RETURN(std::unique_ptr<store::OnlineStore> store, OpenRepoOnlineStore(config));
  serve::ServerOptions server_options;
  server_options.host = options.host;
  server_options.port = options.port;
  server_options.threads = options.threads;
  server_options.max_body_bytes = options.max_body_bytes;
  server_options.limits.max_entities = options.max_entities;
  server_options.max_events = options.max_events;
  ASSIGN_OR_RETURN(features::Repository repo, features::LoadRepository(options.repo.repo));
  // Events reach every view of their source (serve/event_ingest.h); the
  // sources' schemas are read once, here.
  auto make_ingestor =
      [&](store::OnlineStore* store) -> Result<std::unique_ptr<serve::EventIngestor>> {
    ASSIGN_OR_RETURN(std::unique_ptr<features::Catalog> ingest_catalog,
                     features::Catalog::Open(config.catalog_path));
    ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open());
    serve::IngestOptions ingest_options;
    ingest_options.dedup_ttl = options.dedup_ttl;
    return serve::EventIngestor::Make(repo, ingest_catalog.get(), duckdb.get(), store,
                                      ingest_options);
  };
  ASSIGN_OR_RETURN(std::unique_ptr<serve::FeatureServer> server,
                   serve::FeatureServer::Make(server_options, std::move(catalog), std::move(store),
                                              make_ingestor));
  RETURN_IF_ERROR(server->Bind());
  std::fprintf(stderr, "keel serve: listening on %s:%d (%s online store)\n", options.host.c_str(),
               server->port(), config.online_type.c_str());
  std::fflush(stderr);

  std::atomic<bool> served{false};
  std::thread watcher([&] {
    const timespec tick = {0, 100 * 1000 * 1000};
    while (!served) {
      int signal = sigtimedwait(&stop_signals, nullptr, &tick);
      if (signal == SIGTERM || signal == SIGINT) {
        std::fprintf(stderr, "keel serve: %s: finishing the requests in flight\n",
                     signal == SIGTERM ? "SIGTERM" : "SIGINT");
        server->Shutdown();
        return;
      }
    }
  });
  Status status = server->Run();
  served = true;
  watcher.join();
  server.reset();  // closes the store
  if (status.ok()) std::fprintf(stderr, "keel serve: stopped\n");
  return status;
}

}  // namespace keel::cli
