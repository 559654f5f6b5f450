#pragma once

#include <string>

#include "common/status.h"

namespace keel::cli {

// Options shared by every command that works on a feature repository.
struct RepoOptions {
  std::string repo = ".";  // folder of keel.yaml
};

// `keel init DIR`: writes a small, working example repository (definitions and
// a generated events file) into DIR, which must be empty or missing.
Status RunInit(const std::string& dir);

// `keel apply`: validates every definition against its data and records new
// view versions in the catalog; prints what changed.
Status RunApply(const RepoOptions& options);

// `keel features list` / `keel features show VIEW[@VERSION]`.
Status RunFeaturesList(const RepoOptions& options, bool json);
Status RunFeaturesShow(const RepoOptions& options, const std::string& reference, bool json);

struct DatasetBuildOptions {
  RepoOptions repo;
  std::string spine;       // a source name, a file (.parquet/.csv/.json) or a SQL query
  std::string spine_time;  // default: the source's timestamp, or timestamp/event_timestamp/ts
  std::string features;    // view references (definitions.h ParseFeatureUses)
  std::string service;     // or a feature service name
  std::string out;         // Parquet file
  int threads = 0;
  bool json = false;  // print the summary as JSON
};

// `keel dataset build`: a point-in-time correct training set as Parquet.
Status RunDatasetBuild(const DatasetBuildOptions& options);

}  // namespace keel::cli
