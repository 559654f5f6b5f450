#pragma once

// Source tables read once and shared by the readers of one run: `keel train`
// checks its sources (validate/checks.h) on one thread while the offline
// engine reads the same sources for its windows on another, and both need
// every row of, e.g., the flights file.

#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "features/definitions.h"
#include "table/column.h"

namespace keel::features {

// A table is kept while a reader holds it, or while the cache is held
// (Hold() until Release()): otherwise, once every reader has dropped its
// pointer, the next request reads the source again (the cache never pins
// memory beyond what its owner asked for). Requests and reads are counted by
// source name.
//
// Thread-safety: thread-safe. A reader asking for a source another thread is
// reading waits for that read instead of reading it too.
class SharedSources {
 public:
  using Loader = std::function<Result<table::Table>()>;

  // The rows of `source` (with `inputs` and `config` as RegisterSource takes
  // them): the table another reader holds or is loading when that read has the
  // same SourceReadKey, else `load()`'s table (load must read exactly that
  // source; it runs on the calling thread, outside the cache's lock).
  //
  // Errors are not shared: a failed load is forgotten, its error goes to the
  // caller whose loader failed, and a caller that waited on it runs its own
  // `load` (so each reports the error in its own words). A loader that throws
  // fails its read with Internal carrying the exception's message. When the
  // key cannot be computed (a missing file, say) the caller just runs `load`.
  Result<std::shared_ptr<const table::Table>> Read(const SourceDef& source,
                                                   const std::map<std::string, SourceDef>& inputs,
                                                   const RepoConfig& config, const Loader& load);

  // From Hold() until Release(), every table read (or held by a reader at
  // Hold()) is kept even when no
  // reader holds it, so that readers that do not overlap in time still share
  // one read (`keel train`: the checks may finish with a source before the
  // offline engine asks for it). Release() drops the tables kept that way.
  void Hold();
  void Release();

  struct Use {
    size_t readers = 0;  // calls to Read
    size_t reads = 0;    // loads they ran (1 when every reader shared one table)
    bool operator==(const Use&) const = default;
  };
  // Each source's use so far, by source name.
  std::map<std::string, Use> uses() const;

 private:
  using Loaded = Result<std::shared_ptr<const table::Table>>;
  struct Entry {
    std::shared_future<Loaded> loading;  // valid while a read runs
    std::weak_ptr<const table::Table> table;
  };
  Loaded LoadCounted(const std::string& name, const Loader& load);

  mutable std::mutex mutex_;
  bool holding_ = false;                                   // guarded by mutex_
  std::vector<std::shared_ptr<const table::Table>> held_;  // guarded by mutex_
  std::map<std::string, Entry> entries_;                   // by SourceReadKey; guarded by mutex_
  std::map<std::string, Use> uses_;                        // guarded by mutex_
};

}  // namespace keel::features
