#pragma once

// The served repository the fuzz targets send their requests to: the
// end-to-end tests' small repository (tests/data/mini) copied to a temporary
// folder, its views applied to a catalog, a memory online store holding a few
// events, and the lookup and event ingestion `keel serve` answers with.

#include <memory>
#include <string>

#include "features/definitions.h"
#include "serve/event_ingest.h"
#include "serve/feature_resolver.h"
#include "serve/lookup.h"
#include "store/online_store.h"
#include "table/duckdb_bridge.h"

namespace keel::fuzz {

// Thread-safety: made once (Get) before fuzzing starts; a fuzz target calls
// it from one thread.
struct FuzzServer {
  // The server made on first call; its folder is removed at exit. Aborts,
  // printing why, when it cannot be made (a broken checkout is no fuzz finding).
  static FuzzServer& Get();

  std::string dir;
  features::Repository repo;
  std::unique_ptr<table::DuckDb> duckdb;
  std::unique_ptr<store::OnlineStore> store;
  std::unique_ptr<serve::FeatureResolver> resolver;
  std::unique_ptr<serve::FeatureLookup> lookup;
  std::unique_ptr<serve::EventIngestor> ingestor;
};

}  // namespace keel::fuzz
