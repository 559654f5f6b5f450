#pragma once

// What `keel train` records in the registry (registry/registry.h): a run in
// the experiment named after the pipeline, and a model version of the model
// named after the pipeline whose lineage points at an immutable copy of the
// bundle. Internal to the CLI (train_command.cc).

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "features/definitions.h"
#include "registry/registry.h"
#include "train/runner.h"

namespace keel::cli {

// Where a trained bundle ended up in the registry.
struct TrainRegistration {
  std::string run_id;
  std::string experiment;
  std::string model;
  int64_t version = 0;
  bool new_version = false;  // false: a version with this bundle hash was already registered
  std::string bundle_uri;    // the immutable copy the version's lineage names
  // The run in the version's lineage: this run when it registered the
  // version, else the earlier run that did.
  std::string version_run_id;
  // "all" when every step came from the cache (the run trained nothing),
  // "some" or "none".
  std::string cached;

  // {"run_id", "experiment", "model", "version", "new_version", "bundle_uri",
  // "version_run_id", "cached"}.
  nlohmann::json ToJson() const;
};

// The immutable home of bundles: <root>/by-hash/<bundle hash>/, for `root`
// <repo root>/.keel/bundles. Copies the bundle at `bundle_dir` there (into a
// temporary sibling folder, then renamed into place) unless a copy is already
// there, and verifies the copy. Returns the copy's absolute path.
// Errors: those of train::VerifyBundle (a tampered existing copy is
// FailedPrecondition naming its file); IoError when copying fails;
// FailedPrecondition when the copy's hash is not `bundle_hash`.
Result<std::string> StoreBundleByHash(const std::string& bundle_dir, const std::string& bundle_hash,
                                      const std::string& root);

// The manifest's parameters and seeds as run params: nested objects joined
// with dots ("model.eta", "seeds.model"), strings as they are, other values
// (numbers, arrays, booleans, null) as compact JSON.
std::map<std::string, std::string> FlattenParams(const nlohmann::json& manifest);

// One `keel train` run in the registry, from before training starts to its end.
// Thread-safety: one thread.
class TrainTracker {
 public:
  // Opens the registry `config` configures and starts a run (status running)
  // in experiment `pipeline_name`, named after `pipeline_file` and tagged
  // with it and `actor`. Errors: those of opening the registry and CreateRun.
  static Result<std::unique_ptr<TrainTracker>> Start(const features::RepoConfig& config,
                                                     const std::string& pipeline_name,
                                                     const std::string& pipeline_file,
                                                     const std::string& actor);

  const std::string& run_id() const { return run_id_; }

  // Ends the run failed, with the error's text as tag "error". Best effort:
  // a registry failure here is not reported (the training error matters more).
  void Fail(const Status& error);

  // Records a successful training: params (FlattenParams), metrics
  // ("test.<model|constant|linear>.<metric>", "rows.<split>"), tags
  // (bundle_hash, code_version, training_data_hash, steps.ran, steps.cached,
  // bundle_uri, registered_version, cached = all|some|none and, when another
  // run registered the bundle, version_run_id naming it), artifacts (every
  // file of the stored bundle, with "xxh128:<hex>" checksums and sizes);
  // stores the bundle by hash under <repo root>/.keel/bundles; registers a
  // model version with its lineage unless a version of the model already has
  // this bundle hash (Registry::RegisterBundle: atomic, so concurrent runs of
  // one new bundle make one version); and ends the run finished. A re-run
  // whose every step was cached is still recorded, as an audit trail entry
  // (who re-ran what, when), tagged cached=all and pointing at the run that
  // produced the version; it never makes a version. On an error the run ends
  // failed.
  // Errors: those of train::VerifyBundle, StoreBundleByHash and the registry.
  Result<TrainRegistration> Finish(const train::TrainResult& result);

 private:
  TrainTracker() = default;
  Result<TrainRegistration> Register(const train::TrainResult& result);

  std::unique_ptr<registry::Registry> registry_;
  std::string root_;  // the repository's root folder
  std::string experiment_;
  std::string actor_;
  std::string run_id_;
};

}  // namespace keel::cli
