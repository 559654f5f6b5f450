#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "common/scratch.h"
#include "store/online_store.h"

namespace keel::store {

namespace {

// Values are stored as the caller's bytes followed by an 8-byte little-endian
// wall-clock expiry (µs; 0 = never): a suffix, so a read strips it by
// shrinking the string rather than moving the value. Reads hide expired
// values; the compaction filter below drops them from disk.
constexpr size_t kSuffix = 8;

void PutFixed64(std::string* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t GetFixed64(const char* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

bool Expired(std::string_view stored, Timestamp now) {
  if (stored.size() < kSuffix) return true;  // not ours: treat as absent
  Timestamp expire_at = static_cast<Timestamp>(GetFixed64(stored.data() + stored.size() - kSuffix));
  return expire_at != 0 && expire_at <= now;
}

class ExpiryFilter final : public rocksdb::CompactionFilter {
 public:
  bool Filter(int, const rocksdb::Slice& key, const rocksdb::Slice& value, std::string*,
              bool*) const override {
    if (key.size() == 0 || key[0] != 'V') return false;  // meta records never expire
    return Expired(std::string_view(value.data(), value.size()), WallClockNow());
  }
  const char* Name() const override { return "keel.ExpiryFilter"; }
};

Status FromRocks(const rocksdb::Status& status, std::string_view what) {
  if (status.ok()) return Status::Ok();
  return IoError("online store (rocksdb) " + std::string(what) + ": " + status.ToString());
}

// Buffers of one read (keys, their order, pinned values), kept per thread and
// reused across reads, so a read allocates nothing once they have grown.
struct Scratch {
  std::vector<std::string> flat;
  std::vector<rocksdb::Slice> slices;
  std::vector<size_t> order;
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> statuses;
  std::vector<std::optional<std::string_view>> views;
};

// The calling thread's Scratch (common/scratch.h).
using ScratchLease = common::ScratchLease<Scratch>;

class RocksDbStore final : public OnlineStore {
 public:
  RocksDbStore(std::unique_ptr<rocksdb::DB> db, std::unique_ptr<ExpiryFilter> filter,
               std::string project, bool read_only)
      : filter_(std::move(filter)),
        db_(std::move(db)),
        project_(std::move(project)),
        read_only_(read_only) {
    write_options_.sync = true;
  }

  std::string_view type() const override { return "rocksdb"; }

  Status Write(std::span<const StoreEntry> entries, std::span<const MetaEntry> meta) override {
    if (read_only_) return FailedPrecondition("online store (rocksdb) was opened read-only");
    Timestamp now = WallClockNow();
    // Sized up front: growing the batch's buffer would copy it again and again.
    size_t bytes = 64;
    for (const StoreEntry& entry : entries) {
      bytes += entry.key.entity.size() + entry.key.view.size() + project_.size() + 32 +
               entry.value.size() + kSuffix;
    }
    for (const MetaEntry& record : meta) bytes += record.name.size() + record.value.size() + 64;
    rocksdb::WriteBatch batch(bytes);
    std::string key, suffix;
    for (const StoreEntry& entry : entries) {
      FlatKeyInto(project_, entry.key, &key);
      suffix.clear();
      PutFixed64(&suffix, entry.ttl > 0 ? static_cast<uint64_t>(now + entry.ttl) : 0);
      // The value and its expiry as two parts: the batch copies them once.
      rocksdb::Slice key_part(key),
          value_parts[2] = {rocksdb::Slice(entry.value.data(), entry.value.size()),
                            rocksdb::Slice(suffix)};
      batch.Put(rocksdb::SliceParts(&key_part, 1), rocksdb::SliceParts(value_parts, 2));
    }
    for (const MetaEntry& record : meta) batch.Put(MetaKey(record.name), record.value);
    return FromRocks(db_->Write(write_options_, &batch), "write");
  }

  Status Read(std::span<const StoreKey> keys,
              std::vector<std::optional<std::string>>* values) override {
    values->assign(keys.size(), std::nullopt);
    ScratchLease lease;
    Status status = ReadPinned(keys, lease.scratch(), [&](size_t i, std::string_view value) {
      (*values)[i].emplace(value);
    });
    ReleasePinned(lease.scratch());
    return status;
  }

  Status ReadViews(std::span<const StoreKey> keys, const ValuesUse& use) override {
    ScratchLease lease;
    Scratch& scratch = lease.scratch();
    scratch.views.assign(keys.size(), std::nullopt);
    Status status = ReadPinned(keys, scratch,
                               [&](size_t i, std::string_view value) { scratch.views[i] = value; });
    if (status.ok()) status = use(scratch.views);
    ReleasePinned(scratch);
    return status;
  }

  Status Remove(std::span<const StoreKey> keys) override {
    if (read_only_) return FailedPrecondition("online store (rocksdb) was opened read-only");
    rocksdb::WriteBatch batch;
    for (const StoreKey& key : keys) batch.Delete(FlatKey(project_, key));
    return FromRocks(db_->Write(write_options_, &batch), "remove");
  }

  Result<std::optional<std::string>> ReadMeta(std::string_view name) override {
    std::string value;
    rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), MetaKey(name), &value);
    if (status.IsNotFound()) return std::optional<std::string>();
    RETURN_IF_ERROR(FromRocks(status, "read meta"));
    return std::optional<std::string>(std::move(value));
  }

 private:
  std::string MetaKey(std::string_view name) const {
    std::string key = "M";
    key += FlatKey(project_, {"", ""}).substr(1);
    key.append(name);
    return key;
  }

  // One batched MultiGet (the array form: it batches the memtable and table
  // lookups and pins the values in the block cache instead of copying them);
  // calls found(i, value) for every present, unexpired key, the value without
  // its expiry suffix and valid until ReleasePinned on this thread. Keys are
  // sorted first (MultiGet's batched path wants them sorted).
  template <typename Found>
  Status ReadPinned(std::span<const StoreKey> keys, Scratch& scratch, Found found) {
    const size_t n = keys.size();
    if (n == 0) return Status::Ok();
    if (scratch.flat.size() < n) scratch.flat.resize(n);
    scratch.slices.resize(n);
    scratch.order.resize(n);
    scratch.values.resize(n);
    scratch.statuses.resize(n);
    for (size_t i = 0; i < n; ++i) {
      FlatKeyInto(project_, keys[i], &scratch.flat[i]);
      scratch.order[i] = i;
    }
    std::sort(scratch.order.begin(), scratch.order.end(),
              [&](size_t a, size_t b) { return scratch.flat[a] < scratch.flat[b]; });
    for (size_t i = 0; i < n; ++i) scratch.slices[i] = scratch.flat[scratch.order[i]];
    db_->MultiGet(read_options_, db_->DefaultColumnFamily(), n, scratch.slices.data(),
                  scratch.values.data(), scratch.statuses.data(), /*sorted_input=*/true);
    Timestamp now = WallClockNow();
    Status error;
    for (size_t i = 0; i < n; ++i) {
      const rocksdb::Status& status = scratch.statuses[i];
      if (status.IsNotFound()) continue;
      if (!status.ok()) {
        if (error.ok()) error = FromRocks(status, "read");
        continue;
      }
      std::string_view stored(scratch.values[i].data(), scratch.values[i].size());
      if (Expired(stored, now)) continue;
      found(scratch.order[i], stored.substr(0, stored.size() - kSuffix));
    }
    return error;
  }

  // Unpins what ReadPinned left in `scratch`.
  static void ReleasePinned(Scratch& scratch) {
    for (rocksdb::PinnableSlice& value : scratch.values) value.Reset();
  }

  std::unique_ptr<ExpiryFilter> filter_;  // must outlive db_
  std::unique_ptr<rocksdb::DB> db_;
  std::string project_;
  bool read_only_;
  rocksdb::WriteOptions write_options_;
  rocksdb::ReadOptions read_options_;
};

}  // namespace

// A window view's value holds every hop bucket of its longest window (KBs per
// entity): RocksDB's default 8 MB block cache holds the states of only a few
// thousand entities. Both caches fill as reads need them (LRU, no memory taken
// up front).
constexpr size_t kBlockCacheBytes = size_t{256} << 20;
constexpr size_t kRowCacheBytes = size_t{64} << 20;

Result<std::unique_ptr<OnlineStore>> OpenRocksDbStore(const std::string& path, std::string project,
                                                      bool read_only) {
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
  if (error) {
    return IoError("online store: cannot create the folder of '" + path + "': " + error.message());
  }
  auto filter = std::make_unique<ExpiryFilter>();
  rocksdb::Options options;
  options.create_if_missing = true;
  options.compaction_filter = filter.get();
  // Point lookups dominate: a bloom filter per block and a block cache.
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = true;
  table.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.row_cache = rocksdb::NewLRUCache(kRowCacheBytes);
  // And one over the memtable: streaming reads the de-duplication marker of
  // every event (online_events.h), nearly all absent, and a miss would
  // otherwise search the whole skip list.
  options.memtable_whole_key_filtering = true;
  options.memtable_prefix_bloom_size_ratio = 0.05;
  options.IncreaseParallelism(2);
  rocksdb::DB* raw = nullptr;
  if (read_only) {
    std::error_code missing;
    if (!std::filesystem::exists(path + "/CURRENT", missing)) {
      return NotFound("online store: nothing at '" + path + "' yet (run keel materialize)");
    }
    options.create_if_missing = false;
  }
  rocksdb::Status status = read_only ? rocksdb::DB::OpenForReadOnly(options, path, &raw)
                                     : rocksdb::DB::Open(options, path, &raw);
  if (!status.ok()) {
    return IoError("online store: cannot open rocksdb at '" + path + "': " + status.ToString());
  }
  return std::unique_ptr<OnlineStore>(new RocksDbStore(
      std::unique_ptr<rocksdb::DB>(raw), std::move(filter), std::move(project), read_only));
}

}  // namespace keel::store
