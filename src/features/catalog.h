#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "features/definitions.h"

namespace keel::features {

// One stored version of a view.
struct ViewVersionInfo {
  std::string name;
  std::string version;  // 12 hex characters: the hash of the canonical definition
  int64_t number = 0;   // 1, 2, 3 ... per view, in order of first apply
  Timestamp applied_at = 0;
  bool current = false;
  std::string code_version;
  FeatureViewDef definition;
};

// What `apply` did to one view.
struct ViewChange {
  enum class Kind { kCreated, kNewVersion, kUnchanged, kRemoved };
  Kind kind;
  std::string name;
  std::string version;
  int64_t number = 0;
};

// The feature catalog: every version of every view ever applied (immutable
// once written) and which version is current, in a SQLite file inside the
// repository. This file is keel's only adapter to SQLite for the catalog.
// Thread-safety: not thread-safe; SQLite's own locking makes concurrent
// processes safe (apply runs in one IMMEDIATE transaction).
class Catalog {
 public:
  // Opens or creates the catalog at `path` (creating its folder).
  // Errors: IoError if the file cannot be opened or is not a keel catalog.
  static Result<std::unique_ptr<Catalog>> Open(const std::string& path);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Records every view of `repo` (validated by the caller) and its services, in
  // one transaction: a view whose canonical definition is new gets a new version
  // and becomes current; an unchanged view keeps its version; a view no longer
  // defined stops being current (its versions stay resolvable by version).
  // Feature services are checked against the views (see CheckServices); any
  // error leaves the catalog exactly as it was.
  Result<std::vector<ViewChange>> Apply(const Repository& repo);

  // Current version of every view, sorted by name.
  Result<std::vector<ViewVersionInfo>> ListCurrent();
  // Every version of one view, oldest first. Errors: NotFound.
  Result<std::vector<ViewVersionInfo>> History(const std::string& view);

  // The version of `view` named by `version`: empty = current; a number ("3");
  // or a hash prefix of 4+ characters. Errors: NotFound (unknown view, version
  // or no current version), InvalidArgument (ambiguous prefix).
  Result<ViewVersionInfo> Resolve(const std::string& view, const std::string& version);

  // A feature service as last applied. Errors: NotFound.
  Result<FeatureServiceDef> Service(const std::string& name);

  struct Db;

 private:
  explicit Catalog(std::unique_ptr<Db> db);
  // Checks that every use of every service of `repo` can build: its version
  // resolves (also to a version this apply creates), its key map names entity
  // keys, its features exist, and no two uses write the same column.
  // Errors: InvalidArgument naming the use's file:line and the service.
  Status CheckServices(const Repository& repo);
  std::unique_ptr<Db> db_;
};

}  // namespace keel::features
