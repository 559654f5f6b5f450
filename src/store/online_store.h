#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace keel::store {

// Where one online value lives: an entity of a feature view at one version
// (DESIGN.md: project, entity key, view and version). The store treats both
// parts as opaque bytes: `entity` is the caller's encoding of the entity's
// name and typed key values (features::EncodeEntityKey), `view` is
// "name@version", so two versions of a view live side by side.
struct StoreKey {
  std::string_view entity;
  std::string_view view;
};

// One value to write. `ttl` is housekeeping, in wall-clock time: the store may
// forget the value once `ttl` has passed since the write (0 = keep). Staleness
// as features see it (a snapshot older than its view's ttl) is decided by the
// reader from the event times inside the value, never by this.
struct StoreEntry {
  StoreKey key;
  std::string_view value;
  Duration ttl = 0;
};

// A small named record of the project's own bookkeeping (materialization
// watermarks, stream offsets), kept apart from feature values.
struct MetaEntry {
  std::string_view name;
  std::string_view value;
};

// The online store: a key-value store of encoded feature state, one interface
// with three implementations chosen by keel.yaml (`online: {type: ...}`):
//   memory  - a process-local map (tests; nothing persists);
//   rocksdb - embedded, the default; a directory;
//   redis   - one Redis server, or a Redis Cluster (keys of one entity carry
//             one hash tag, so all of an entity's views live on one shard and
//             one entity's reads are one round trip).
// Every implementation passes the contract suite in online_store_test.cc.
//
// Thread-safety: every method may be called from many threads at once.
class OnlineStore {
 public:
  virtual ~OnlineStore() = default;

  // "memory", "rocksdb", "redis" or "redis-cluster".
  virtual std::string_view type() const = 0;

  // Writes `entries`, then `meta`. Durable when it returns OK: RocksDB has
  // synced its write-ahead log; Redis has acknowledged every command.
  // Atomicity: memory and RocksDB apply the whole call or nothing. Redis
  // applies each entity's entries atomically (one MULTI/EXEC on its shard) and
  // writes `meta` only after every entry is acknowledged, so a crash leaves
  // some entities written and the meta records unchanged; callers make
  // re-writes idempotent (materialization rewrites whole values).
  // A later entry for the same key wins. Errors: Unavailable / IoError.
  virtual Status Write(std::span<const StoreEntry> entries,
                       std::span<const MetaEntry> meta = {}) = 0;

  // Reads `keys` in one batch (one round trip per shard for Redis);
  // (*values)[i] is keys[i]'s value, or nullopt when absent or expired.
  // `values` is overwritten. Errors: Unavailable / IoError.
  virtual Status Read(std::span<const StoreKey> keys,
                      std::vector<std::optional<std::string>>* values) = 0;

  // Read, without copying the values out where the store can avoid it: calls
  // `use` once with values[i] keys[i]'s value (nullopt when absent or
  // expired), views valid only until `use` returns (RocksDB pins its cache
  // blocks; the default implementation reads with Read). Returns `use`'s
  // status, or the store's error (then `use` is not called).
  using ValuesUse = std::function<Status(std::span<const std::optional<std::string_view>>)>;
  virtual Status ReadViews(std::span<const StoreKey> keys, const ValuesUse& use);

  // Removes `keys` (absent keys are fine). Errors: Unavailable / IoError.
  virtual Status Remove(std::span<const StoreKey> keys) = 0;

  // Reads one meta record; nullopt when absent.
  virtual Result<std::optional<std::string>> ReadMeta(std::string_view name) = 0;
};

// How to open a store.
struct StoreOptions {
  std::string type = "rocksdb";  // memory | rocksdb | redis | redis-cluster
  std::string path;              // rocksdb: the database directory
  // redis: "redis://host:port[/db]"; redis-cluster: "redis://host:port[,host:port...]"
  // (any reachable nodes; the slot map is discovered and followed).
  std::string url;
  std::string project;  // every key is scoped by it
  // Open for reading only. RocksDB then opens a snapshot of the directory
  // without taking its lock, so a reader (keel features get) can run beside
  // the one process that writes (keel serve, keel materialize); it sees the
  // values as of its open. Writes fail with FailedPrecondition. Redis ignores it.
  bool read_only = false;
};

// Opens (creating when needed) the store `options` describe.
// Errors: InvalidArgument for an unknown type or a malformed url (naming it),
// Unavailable when a server cannot be reached, IoError for a database that
// cannot be opened (e.g. locked by another process).
Result<std::unique_ptr<OnlineStore>> OpenOnlineStore(const StoreOptions& options);

// The implementations, for tests and for OpenOnlineStore.
std::unique_ptr<OnlineStore> NewMemoryStore(std::string project);
Result<std::unique_ptr<OnlineStore>> OpenRocksDbStore(const std::string& path, std::string project,
                                                      bool read_only = false);
Result<std::unique_ptr<OnlineStore>> OpenRedisStore(const std::string& url, std::string project,
                                                    bool cluster);

// The byte key memory and RocksDB use: length-prefixed project, entity, view,
// so that no two (project, entity, view) triples share a key.
std::string FlatKey(std::string_view project, const StoreKey& key);
// FlatKey into `out` (overwritten; its buffer is reused).
void FlatKeyInto(std::string_view project, const StoreKey& key, std::string* out);

}  // namespace keel::store
