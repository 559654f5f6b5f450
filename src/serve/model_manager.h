#pragma once

// The models a server answers for, and their hot swap. Each served model has
// a locator that says which version should serve now (the registry's
// production version, or a fixed bundle); Refresh loads a new version fully,
// then swaps it in atomically. A request holds the model it started with
// (a shared_ptr), so in-flight requests finish on their version while new
// ones get the new one; a load that fails keeps the old version and is
// reported by Slots().

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "serve/serving_model.h"

namespace keel::serve {

// Where the version that should serve now lives.
struct ModelLocation {
  int64_t version = 0;
  std::string bundle_dir;
};

// What a model's slot reports.
struct ModelSlotStatus {
  std::string name;
  int64_t version = 0;      // 0: nothing loaded
  std::string bundle_hash;  // of the loaded version
  std::string last_error;   // of the last failed locate or load; "" after a success
  int64_t loads = 0;        // successful loads (the first one included)
  int64_t failed_loads = 0;
  int64_t swaps = 0;  // loads that replaced a serving version
};

// Thread-safety: every method may be called from many threads at once; Get
// takes a shared lock only.
class ModelManager {
 public:
  using Locator = std::function<Result<ModelLocation>()>;

  // Serves model `name` from wherever `locate` says. Loads it now.
  // Errors: AlreadyExists for a name added before; the first locate or load
  // failing is NOT an error (the slot stays empty, Get returns null, and
  // Status reports why), so a server can start before its first model exists.
  Status Add(const std::string& name, Locator locate);

  // The version serving `name` now; null for an unknown name or an empty slot.
  std::shared_ptr<const ServingModel> Get(const std::string& name) const;
  // Whether `name` was added (even if nothing is loaded).
  bool Has(const std::string& name) const;
  // Names of the served models, sorted.
  std::vector<std::string> Names() const;

  // Locates every model and loads the ones whose version (or bundle)
  // changed; loads run outside the lock, so requests never wait for them.
  void Refresh();

  std::vector<ModelSlotStatus> Slots() const;
  // Called after each successful swap or failed load (metrics), outside locks.
  void set_on_load(std::function<void(const std::string& name, bool ok, bool swapped)> on_load) {
    on_load_ = std::move(on_load);
  }

 private:
  struct Slot {
    Locator locate;
    std::shared_ptr<const ServingModel> model;
    std::string bundle_dir;
    ModelLocation failed;  // the last location whose load failed
    ModelSlotStatus status;
  };
  void RefreshOne(const std::string& name);

  mutable std::shared_mutex mutex_;
  std::map<std::string, Slot> slots_;  // GUARDED_BY(mutex_)
  std::mutex refresh_mutex_;           // one Refresh at a time
  std::function<void(const std::string&, bool, bool)> on_load_;
};

}  // namespace keel::serve
