#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "features/catalog.h"
#include "features/definitions.h"
#include "features/offline_engine.h"
#include "features/online.h"
#include "table/column.h"

namespace keel::serve {

// What one lookup asks for: feature references, each one use in the syntax
// of features::ParseFeatureUses ("view[@version][(key=column)][ as alias][:f1|f2]"),
// or the name of a feature service.
struct FeatureSelection {
  std::vector<std::string> references;
  std::string service;  // when not empty, `references` is empty
};

// Everything features::ReadOnlineFeatures needs for one selection over one
// set of entity columns, resolved against the catalog. Immutable once made;
// shared by every request that asks the same thing.
struct LookupPlan {
  std::vector<features::ResolvedUse> uses;
  std::vector<std::shared_ptr<const features::OnlineView>> views;
  // The names ReadOnlineFeatures gives the features, in its order:
  // "<prefix>__<feature>" (Feast's full_feature_names)...
  std::vector<std::string> full_names;
  // ... and the bare "<feature>" (Feast's default).
  std::vector<std::string> short_names;
  // Why short names cannot be used (two features, or a feature and an entity
  // column, would share one); empty when they can.
  std::string short_name_clash;
};

// Resolves feature selections against the catalog, and caches what it
// resolved so that a request whose selection is cached touches neither the
// catalog nor SQLite:
//   - a view reference ("name" or "name@version") is resolved once and its
//     OnlineView compiled once; a reference the catalog does not know is asked
//     again at most once per kRetryUnknown;
//   - a feature service is read once;
//   - a plan (selection x entity column names and types) is built once.
// The catalog can change while a server runs (`keel apply`): Refresh, called
// every second by the server, re-reads the current version of every cached
// reference without a version and every cached service, and drops the plans
// when any changed. A reference naming a version is immutable (versions never
// change) and stays cached.
//
// Thread-safety: every method may be called from many threads at once. Catalog
// access is serialised by one mutex; cached lookups take a shared lock only.
class FeatureResolver {
 public:
  static constexpr std::chrono::milliseconds kRetryUnknown{1000};

  explicit FeatureResolver(std::unique_ptr<features::Catalog> catalog);
  ~FeatureResolver();
  FeatureResolver(const FeatureResolver&) = delete;
  FeatureResolver& operator=(const FeatureResolver&) = delete;

  // The plan for `selection` over entity columns `entity_fields`.
  // Errors: InvalidArgument naming the reference ("features[1] 'activity:nope':
  // ...") for a malformed reference, an unknown feature or a reference that
  // does not fit the entity columns (missing column, wrong key type); NotFound
  // for an unknown view, version or service; IoError from the catalog.
  Result<std::shared_ptr<const LookupPlan>> Plan(const FeatureSelection& selection,
                                                 const std::vector<table::Field>& entity_fields);

  // Re-reads the catalog as described above. Returns the catalog's error, if
  // any; the cache is left as it was then, and Health reports the error.
  Status Refresh();

  // OK once the catalog has been read and holds at least one view; otherwise
  // why not (FailedPrecondition for an empty catalog, the catalog's error).
  Status Health() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct ViewEntry {
    Status status;  // not OK: the reference is unknown (a negative entry)
    std::shared_ptr<const features::OnlineView> view;
    Clock::time_point checked;
  };
  struct ServiceEntry {
    Status status;
    std::shared_ptr<const features::FeatureServiceDef> service;
    Clock::time_point checked;
  };

  Result<std::shared_ptr<const features::OnlineView>> View(const std::string& name,
                                                           const std::string& version);
  Result<std::shared_ptr<const features::FeatureServiceDef>> Service(const std::string& name);
  // Asks the catalog; requires catalog_mutex_.
  ViewEntry ResolveView(const std::string& name, const std::string& version);
  ServiceEntry ReadService(const std::string& name);
  Result<std::shared_ptr<const LookupPlan>> BuildPlan(
      const FeatureSelection& selection, const std::vector<table::Field>& entity_fields);

  std::mutex catalog_mutex_;                    // taken before mutex_ when both are held
  std::unique_ptr<features::Catalog> catalog_;  // GUARDED_BY(catalog_mutex_)

  mutable std::shared_mutex mutex_;
  // Keyed by "name@version" ("name@" for the current version).
  std::unordered_map<std::string, ViewEntry> views_;                          // GUARDED_BY(mutex_)
  std::unordered_map<std::string, ServiceEntry> services_;                    // GUARDED_BY(mutex_)
  std::unordered_map<std::string, std::shared_ptr<const LookupPlan>> plans_;  // GUARDED_BY(mutex_)
  uint64_t generation_ = 0;  // GUARDED_BY(mutex_); bumped whenever plans_ is dropped
  Status health_ = Unavailable("catalog not read yet");  // GUARDED_BY(mutex_)
};

}  // namespace keel::serve
