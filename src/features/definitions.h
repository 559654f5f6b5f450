#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "features/window_kernel.h"
#include "table/column.h"
#include "validate/checks.h"

namespace keel::table {
class DuckDb;
}

namespace keel::features {

// Where a definition came from, for error messages ("features/flights.yaml:12:5").
struct SourceLocation {
  std::string file;  // relative to the repository root
  int line = 0;      // 1-based; 0 = unknown
  int column = 0;
  std::string ToString() const;
};

// A kind of thing features are about, keyed by one or more typed columns.
struct EntityDef {
  std::string name;
  std::vector<table::Field> keys;
  std::string description;
  SourceLocation location;
};

enum class SourceFormat { kParquet, kCsv, kJsonl, kQuery };

// Where rows come from: a file read through DuckDB, or a SQL query over files
// and other sources (referenced by name).
struct SourceDef {
  std::string name;
  SourceFormat format = SourceFormat::kParquet;
  std::string path;                 // as written (may contain ${VAR}); for file formats
  std::string query;                // for kQuery
  std::string timestamp_column;     // empty: a static table, every row valid at all times
  std::string created_column;       // optional arrival order for rows with equal timestamps
  std::vector<std::string> inputs;  // sources a query reads (found by name in the SQL)
  // Expectations on the source's rows (validate/checks.h). Not part of any
  // view's version: checks guard data, they do not change feature values.
  std::vector<validate::CheckDef> checks;
  SourceLocation location;
};

// One aggregated feature of a window view, over one or more windows.
struct WindowFeatureDef {
  std::string name;
  Aggregation aggregation = Aggregation::kCount;
  std::string expression;  // canonical; empty: a row count (count only)
  std::vector<WindowSpec> windows;
  SourceLocation location;
  // Output column name for one window: "<name>_<length>", e.g. "mean_delay_1h",
  // "mean_delay_24h", "mean_delay_7d" (hours below two days).
  std::string OutputName(const WindowSpec& window) const;
};

// A plain column (or row expression) of the latest source row of an entity.
struct SnapshotFeatureDef {
  std::string name;
  std::string expression;                           // canonical
  table::DataType type = table::DataType::kDouble;  // inferred at validation
  SourceLocation location;
};

enum class ViewKind { kWindow, kSnapshot };

// A feature view: snapshot (latest row within ttl) or window (aggregations).
// `key_columns[i]` is the source column holding entity key i.
struct FeatureViewDef {
  ViewKind kind = ViewKind::kWindow;
  std::string name;
  EntityDef entity;  // resolved copy, so a stored version is self-contained
  SourceDef source;  // resolved copy
  std::map<std::string, SourceDef> source_inputs;  // transitive inputs of a query source
  std::vector<std::string> key_columns;
  Duration ttl = 0;  // snapshot views; 0 = no limit
  std::vector<WindowFeatureDef> window_features;
  std::vector<SnapshotFeatureDef> snapshot_features;
  std::string description;
  SourceLocation location;

  // All output feature names, in definition order.
  std::vector<std::string> FeatureNames() const;
};

// One use of a view in a training set or feature service: which version, how
// its entity keys map onto the caller's columns (as Feast's join-key maps),
// which features, and the prefix of the output names.
struct FeatureUse {
  std::string view;
  std::string version;                         // empty: current
  std::map<std::string, std::string> key_map;  // entity key -> spine column
  std::string alias;  // output names are "<alias>__<feature>"; default: the view name
  std::vector<std::string> features;  // empty: all
  SourceLocation location;
};

// A named list of feature uses.
struct FeatureServiceDef {
  std::string name;
  std::vector<FeatureUse> uses;
  SourceLocation location;
};

// keel.yaml.
struct RepoConfig {
  std::string root;  // absolute directory of keel.yaml
  std::string project;
  std::vector<std::string> definition_paths;     // files or folders, relative to root
  std::map<std::string, std::string> variables;  // ${NAME} values (environment wins)
  std::string catalog_path;                      // absolute; default <root>/.keel/catalog.db
  std::string offline_path;                      // absolute; default <root>/.keel/offline
  std::string online_type = "rocksdb";
  std::string online_path;  // absolute; default <root>/.keel/online (rocksdb)
  std::string online_url;   // redis: "redis://host:port"; cluster: seed nodes, comma-separated
  std::string registry_type = "sqlite";  // sqlite | postgres
  std::string registry_path;             // absolute; default <root>/.keel/registry.db (sqlite)
  std::string registry_url;              // postgres: "postgresql://user@host:port/db"
};

// Everything a repository defines, parsed and cross-checked.
struct Repository {
  RepoConfig config;
  std::vector<EntityDef> entities;
  std::vector<SourceDef> sources;
  std::vector<FeatureViewDef> views;
  std::vector<FeatureServiceDef> services;

  const EntityDef* FindEntity(std::string_view name) const;
  const SourceDef* FindSource(std::string_view name) const;
  const FeatureViewDef* FindView(std::string_view name) const;
  const FeatureServiceDef* FindService(std::string_view name) const;
};

// Parses keel.yaml in `dir` and every definition file it names, and checks
// the definitions against each other (duplicate names, unknown entity or
// source, bad durations, unknown aggregations, cyclic or missing source
// references, malformed expressions). Does not read any data.
// Errors: InvalidArgument "file:line:column: field: what is wrong".
Result<Repository> LoadRepository(const std::string& dir);

// Parses keel.yaml in `dir` only. Errors: NotFound without keel.yaml,
// InvalidArgument "keel.yaml:line:column: field: what is wrong".
Result<RepoConfig> LoadRepoConfig(const std::string& dir);

// Checks every view against the real schema of its source (read through
// `duckdb`): key, timestamp and created columns exist with the right types,
// expressions bind, aggregated values are numeric; fills in snapshot feature
// types. Errors: InvalidArgument naming file, line and field.
Status ValidateAgainstData(Repository* repo, table::DuckDb* duckdb);

// Expands ${NAME} from the environment, then from `variables`, and makes
// relative paths absolute against `root`. Errors: InvalidArgument for an
// undefined variable.
Result<std::string> ResolvePath(const std::string& path, const RepoConfig& config);

// Registers `source` (and its inputs first) as DuckDB views named after the
// sources, so SQL can refer to them, and returns the SQL that reads `source`.
Result<std::string> RegisterSource(const SourceDef& source,
                                   const std::map<std::string, SourceDef>& inputs,
                                   const RepoConfig& config, table::DuckDb* duckdb);

// What reading `source` runs, without a database: the name and expanded SQL of
// each input it reads (directly or not, in the order RegisterSource registers
// them) and then its own. Two reads with equal keys read the same rows (the
// files may change in between: callers share a read within one run only).
// Errors: those RegisterSource reports before it touches the database
// (a missing input or file, an undefined variable), without its context.
Result<std::string> SourceReadKey(const SourceDef& source,
                                  const std::map<std::string, SourceDef>& inputs,
                                  const RepoConfig& config);

// Canonical JSON of a view: every field that affects its values (entity keys
// and types, source definition and inputs, keys, ttl, features, windows and
// hops, canonical expressions), with sorted keys and no locations.
std::string CanonicalJson(const FeatureViewDef& view);
// The inverse of CanonicalJson (locations empty). Errors: InvalidArgument.
Result<FeatureViewDef> ViewFromJson(std::string_view json);
// The version of a view: the first 12 hex characters of the hash of its canonical JSON.
std::string ViewVersion(const FeatureViewDef& view);

// Parses a feature reference list as the CLI takes it:
//   view[@version][(key=column, ...)][ as alias][:feature|feature...]
// separated by commas at the top level, e.g.
//   "origin_delay, airport_info(iata=origin) as origin, airport_info(iata=destination) as dest"
// Errors: InvalidArgument naming the item.
Result<std::vector<FeatureUse>> ParseFeatureUses(std::string_view text);

}  // namespace keel::features
