// `keel serve`: wires the repository's catalog and online store into the HTTP
// feature server and turns SIGTERM / SIGINT into a graceful shutdown.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "cli/registry_commands.h"
#include "features/catalog.h"
#include "registry/registry.h"
#include "serve/event_ingest.h"
#include "serve/feature_server.h"
#include "serve/metrics.h"
#include "serve/model_manager.h"
#include "serve/predict_api.h"
#include "serve/prediction_log.h"
#include "serve/registry_api.h"
#include "table/duckdb_bridge.h"

namespace keel::cli {
namespace {

// The locator of a --model: "NAME=DIR" a fixed bundle, "NAME" the registry's
// production version (its bundle_uri).
Result<std::pair<std::string, serve::ModelManager::Locator>> ModelLocator(
    const std::string& spec, const features::RepoConfig& config,
    std::shared_ptr<registry::Registry>* shared_registry) {
  size_t equals = spec.find('=');
  if (equals != std::string::npos) {
    std::string name = spec.substr(0, equals);
    std::string dir = std::filesystem::absolute(spec.substr(equals + 1)).string();
    if (name.empty()) return InvalidArgument("--model '" + spec + "': expected NAME=BUNDLE_DIR");
    return std::pair{name, serve::ModelManager::Locator([dir]() -> Result<serve::ModelLocation> {
                       return serve::ModelLocation{0, dir};
                     })};
  }
  if (*shared_registry == nullptr) {
    ASSIGN_OR_RETURN(*shared_registry, OpenRepoRegistry(config));
  }
  std::shared_ptr<registry::Registry> registry = *shared_registry;
  return std::pair{spec,
                   serve::ModelManager::Locator([registry, spec]() -> Result<serve::ModelLocation> {
                     ASSIGN_OR_RETURN(registry::RegisteredModel model, registry->GetModel(spec));
                     if (!model.production_version) {
                       return FailedPrecondition("model '" + spec + "' has no production version");
                     }
                     ASSIGN_OR_RETURN(registry::ModelVersion version,
                                      registry->GetModelVersion(spec, *model.production_version));
                     std::string dir = version.lineage.bundle_uri;
                     if (dir.rfind("file://", 0) == 0) dir = dir.substr(7);
                     return serve::ModelLocation{version.version, dir};
                   })};
}

}  // namespace

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
  if (options.threads > 0) server_options.threads = options.threads;
  server_options.max_body_bytes = options.max_body_bytes;
  server_options.limits.max_entities = options.max_entities;
  server_options.max_events = options.max_events;
  // The registry API (serve/registry_api.h): the registry keel.yaml
  // configures, opened on its first request (a SQLite file is created then).
  ASSIGN_OR_RETURN(std::string admin_token, serve::LoadAdminToken(options.admin_token_file,
                                                                  std::getenv("KEEL_ADMIN_TOKEN")));
  for (serve::Route& route :
       serve::RegistryRoutes([config] { return OpenRepoRegistry(config); }, admin_token)) {
    server_options.routes.push_back(std::move(route));
  }
  std::fprintf(stderr, "keel serve: registry API under /v1/registry (transitions %s)\n",
               admin_token.empty() ? "disabled: no --admin-token-file" : "need the admin token");
  // GET /metrics (Prometheus). The registry outlives the server (declared first).
  serve::MetricsRegistry metrics;
  std::vector<serve::MetricRegistration> process_metrics = serve::RegisterProcessMetrics(&metrics);
  server_options.routes.push_back(serve::MetricsRoute(&metrics));
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
  // Models: loaded (and later swapped) by the manager; the prediction routes
  // read through the server's resolver and store, set once the server exists.
  serve::ModelManager models;
  serve::ServingMetrics serving_metrics(&metrics);
  models.set_on_load([&serving_metrics](const std::string& name, bool ok, bool swapped) {
    serving_metrics.model_loads.With({name, ok ? "ok" : "error"}).Inc();
    if (swapped) serving_metrics.model_swaps.With({name}).Inc();
  });
  std::shared_ptr<registry::Registry> model_registry;
  serve::PredictContext predict;
  predict.models = &models;
  predict.metrics = &serving_metrics;
  ASSIGN_OR_RETURN(predict.options.fallback, serve::ParseFallback(options.fallback));
  predict.options.deadline_ms = options.deadline_ms;
  predict.options.max_rows = options.max_rows;
  for (const std::string& spec : options.models) {
    ASSIGN_OR_RETURN(auto locator, ModelLocator(spec, config, &model_registry));
    RETURN_IF_ERROR(models.Add(locator.first, std::move(locator.second)));
  }
  for (const serve::ModelSlotStatus& slot : models.Slots()) {
    if (slot.version > 0 || !slot.bundle_hash.empty()) {
      std::fprintf(stderr, "keel serve: model %s version %lld (bundle %s)\n", slot.name.c_str(),
                   static_cast<long long>(slot.version), slot.bundle_hash.c_str());
    } else {
      std::fprintf(stderr, "keel serve: model %s not loaded: %s\n", slot.name.c_str(),
                   slot.last_error.c_str());
    }
  }
  // Every prediction goes to the log, off the request's path (a full queue
  // drops and counts rather than blocks).
  std::unique_ptr<serve::PredictionLog> prediction_log;
  serve::MetricRegistration log_metrics;  // goes before the log does
  if (!options.models.empty() && options.prediction_log != "none") {
    std::string dir = options.prediction_log.empty() ? serve::DefaultPredictionLogDir(config.root)
                                                     : options.prediction_log;
    ASSIGN_OR_RETURN(prediction_log, serve::PredictionLog::Open(dir));
    serve::PredictionLog* log = prediction_log.get();
    predict.on_prediction = [log](serve::PredictionEvent&& event) {
      for (size_t row = 0; row < event.rows; ++row) {
        serve::PredictionRecord record;
        record.request_id = event.request_id;
        record.time = event.time;
        record.model = event.model;
        record.version = event.version;
        record.variant = "production";
        record.entity_keys_json = std::move(event.row_keys_json[row]);
        record.feature_names = event.input_names;
        record.features = std::move(event.inputs[row]);
        record.output = event.predictions[row];
        record.latency_us = event.total_us;
        record.fallback = event.fallback;
        (void)log->Append(std::move(record));
      }
    };
    log_metrics = metrics.AddCallback(
        serve::MetricType::kCounter, "keel_prediction_log_records_total",
        "Prediction log records by outcome: appended, dropped (queue full), rejected, written, "
        "failed (lost to a write error).",
        {"outcome"}, [log] {
          serve::PredictionLogCounters c = log->counters();
          return std::vector<serve::MetricSample>{{{"appended"}, static_cast<double>(c.appended)},
                                                  {{"dropped"}, static_cast<double>(c.dropped)},
                                                  {{"rejected"}, static_cast<double>(c.rejected)},
                                                  {{"written"}, static_cast<double>(c.written)},
                                                  {{"failed"}, static_cast<double>(c.failed)}};
        });
    std::fprintf(stderr, "keel serve: logging predictions to %s\n", dir.c_str());
  }
  std::vector<serve::Route> predict_routes = serve::PredictRoutes(&predict);
  server_options.routes.insert(server_options.routes.end(), predict_routes.begin(),
                               predict_routes.end());
  ASSIGN_OR_RETURN(std::unique_ptr<serve::FeatureServer> server,
                   serve::FeatureServer::Make(server_options, std::move(catalog), std::move(store),
                                              make_ingestor));
  predict.resolver = server->resolver();
  predict.store = server->store();
  RETURN_IF_ERROR(server->Bind());
  std::fprintf(stderr, "keel serve: listening on %s:%d (%s online store)\n", options.host.c_str(),
               server->port(), config.online_type.c_str());
  std::fflush(stderr);

  // Production versions are followed while the server runs (hot swap).
  std::mutex poll_mutex;
  std::condition_variable poll_wake;
  bool stop_polling = false;
  std::thread poller([&] {
    std::unique_lock lock(poll_mutex);
    while (!stop_polling && !options.models.empty()) {
      poll_wake.wait_for(lock, std::chrono::milliseconds(options.model_poll_ms),
                         [&] { return stop_polling; });
      if (stop_polling) break;
      lock.unlock();
      models.Refresh();
      lock.lock();
    }
  });

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
  {
    std::lock_guard lock(poll_mutex);
    stop_polling = true;
  }
  poll_wake.notify_all();
  poller.join();
  server.reset();  // closes the store
  if (prediction_log != nullptr) {
    Status closed = prediction_log->Close();
    if (!closed.ok())
      std::fprintf(stderr, "keel serve: prediction log: %s\n", closed.message().c_str());
  }
  if (status.ok()) std::fprintf(stderr, "keel serve: stopped\n");
  return status;
}

}  // namespace keel::cli
