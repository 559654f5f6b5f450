#include "fuzz_server.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "features/catalog.h"
#include "serve/events_endpoint.h"

namespace keel::fuzz {

namespace {

namespace fs = std::filesystem;

[[noreturn]] void Fail(const std::string& what, const Status& status) {
  std::fprintf(stderr, "fuzz server: %s: %s\n", what.c_str(), status.ToString().c_str());
  std::abort();
}

template <typename T>
T Must(Result<T> result, const std::string& what) {
  if (!result.ok()) Fail(what, result.status());
  return std::move(*result);
}

std::string* temporary_dir = nullptr;

void RemoveTemporaryDir() {
  if (temporary_dir == nullptr) return;
  std::error_code ignored;
  fs::remove_all(*temporary_dir, ignored);
}

// A few events, so lookups read real window and snapshot state.
constexpr char kSeedEvents[] =
    R"({"source": "events", "events": [
  {"seq": 1, "ts": "2024-03-02 14:06:15", "user_id": 1, "amount": 25.88, "channel": "web", "label": true},
  {"seq": 2, "ts": "2024-03-02 20:36:00", "user_id": 3, "amount": null, "channel": "app", "label": true},
  {"seq": 3, "ts": "2024-03-03 01:00:00", "user_id": 3, "amount": 41.0, "channel": "web", "label": false}]})";
constexpr char kSeedUsers[] =
    R"({"source": "users", "events": [
  {"user_id": 1, "updated": "2024-03-01 00:00:00", "country": "FR", "age": 26, "rev": 0},
  {"user_id": 3, "updated": "2024-03-02 08:00:00", "country": "NO", "age": 99, "rev": 1}]})";

std::unique_ptr<FuzzServer> Make() {
  auto server = std::make_unique<FuzzServer>();
  fs::path dir = fs::temp_directory_path() / ("keel_fuzz_" + std::to_string(::getpid()));
  std::error_code error;
  fs::remove_all(dir, error);
  fs::copy(fs::path(KEEL_SOURCE_DIR) / "tests/data/mini", dir, fs::copy_options::recursive, error);
  if (error) Fail("copying tests/data/mini to " + dir.string(), IoError(error.message()));
  server->dir = dir.string();
  temporary_dir = new std::string(server->dir);
  std::atexit(RemoveTemporaryDir);

  server->repo = Must(features::LoadRepository(server->dir), "loading the repository");
  server->duckdb = Must(table::DuckDb::Open(1), "opening DuckDB");
  if (Status valid = features::ValidateAgainstData(&server->repo, server->duckdb.get());
      !valid.ok()) {
    Fail("checking the repository's data", valid);
  }
  std::unique_ptr<features::Catalog> catalog =
      Must(features::Catalog::Open(server->repo.config.catalog_path), "opening the catalog");
  (void)Must(catalog->Apply(server->repo), "applying the views");
  server->store = store::NewMemoryStore(server->repo.config.project);
  server->ingestor = Must(serve::EventIngestor::Make(server->repo, catalog.get(),
                                                     server->duckdb.get(), server->store.get()),
                          "making the event ingestor");
  for (const char* body : {kSeedEvents, kSeedUsers}) {
    serve::Reply reply = serve::IngestEvents(server->ingestor.get(), body, "", 100);
    if (reply.http_status != 200) Fail("ingesting seed events", Internal(reply.body));
  }
  server->resolver = std::make_unique<serve::FeatureResolver>(std::move(catalog));
  if (Status read = server->resolver->Refresh(); !read.ok()) Fail("reading the catalog", read);
  server->lookup = std::make_unique<serve::FeatureLookup>(
      server->resolver.get(), server->store.get(), serve::LookupLimits{});
  return server;
}

}  // namespace

FuzzServer& FuzzServer::Get() {
  static FuzzServer* server = Make().release();  // lives to the end of the process
  return *server;
}

}  // namespace keel::fuzz
