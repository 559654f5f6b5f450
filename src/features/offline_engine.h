#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "features/definitions.h"
#include "table/column.h"

namespace keel::table {
class DuckDb;
}

namespace keel::features {

class SharedSources;

// A view, at an exact version, as one training set (or service) uses it.
struct ResolvedUse {
  FeatureViewDef view;
  std::string version;
  // spine_keys[i] is the spine column holding the view's entity key i.
  std::vector<std::string> spine_keys;
  // Output columns are "<prefix>__<feature>"; default prefix: the view name.
  std::string prefix;
  // Selected output feature names (FeatureViewDef::FeatureNames order); empty: all.
  std::vector<std::string> features;

  // The output column name of one feature.
  std::string ColumnName(const std::string& feature) const { return prefix + "__" + feature; }
};

// Fills in a FeatureUse against its stored definition: defaults the key map
// (the view's source key column if the spine has it, else the entity key name),
// checks every mapped column exists in `spine_fields`, checks the selected
// features exist. Errors: InvalidArgument naming the use and the column.
Result<ResolvedUse> ResolveUse(const FeatureUse& use, FeatureViewDef view, std::string version,
                               const std::vector<table::Field>& spine_fields);

// Timings and sizes of one build, for the CLI's summary and the benchmarks.
struct BuildReport {
  double load_seconds = 0;     // reading sources through DuckDB
  double compute_seconds = 0;  // sorting, expressions, kernels, joins
  size_t source_rows = 0;
  size_t features = 0;
};

// The offline engine: turns a spine (entity keys + a timestamp per row, plus
// any label columns) into a training set with one column per feature, point-in-
// time correct (DESIGN.md): a feature for (entity, t) uses only source rows
// with ts < t; windows slide in hops; snapshot rows older than ttl are null;
// rows with equal timestamps are ordered by the source's created column, then
// by arrival (row order). Window aggregates run through the shared kernels in
// window_kernel.h, so they equal the online path's bit for bit.
//
// Missing entities: a spine row whose key is not in the source gets count 0
// and null for every other feature; a null key or a null timestamp gets null
// for every feature.
//
// Thread-safety: not thread-safe; internally it uses `threads` worker threads
// (and StartLoading one more).
class OfflineEngine {
 public:
  // `duckdb` must outlive the engine; sources are read through it.
  OfflineEngine(const RepoConfig& config, table::DuckDb* duckdb, int threads = 0);
  ~OfflineEngine();

  // Starts reading the sources of `views` (those not read yet), and grouping
  // their rows by entity, on a thread of its own, through a DuckDB database of
  // its own, so that the caller can prepare the spine meanwhile (even with its
  // DuckDb); Build waits for it and redoes whatever failed (reporting the error).
  void StartLoading(std::vector<FeatureViewDef> views);

  // Reads sources through `shared` (which must outlive the engine) from now
  // on: a source another reader of `shared` holds or is reading is not read
  // again. Call it before StartLoading; errors stay the engine's own.
  void ShareSources(SharedSources* shared) { shared_ = shared; }

  // Returns the spine's columns followed by every use's feature columns.
  // Errors: InvalidArgument (spine time column missing or not a timestamp,
  // empty spine, duplicate output column, key type mismatch), NotFound or
  // InvalidArgument from reading a source (with the source's name).
  // The spine is taken by value: move it in to avoid a copy.
  Result<table::Table> Build(table::Table spine, const std::string& time_column,
                             const std::vector<ResolvedUse>& uses, BuildReport* report = nullptr);

  struct Cache;

 private:
  RepoConfig config_;
  table::DuckDb* duckdb_;
  int threads_;
  SharedSources* shared_ = nullptr;
  std::unique_ptr<Cache> cache_;
};

}  // namespace keel::features
