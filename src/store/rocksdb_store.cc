#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstring>
#include <filesystem>

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
    rocksdb::WriteBatch batch;
    std::string value;
    for (const StoreEntry& entry : entries) {
      value.assign(entry.value);
      PutFixed64(&value, entry.ttl > 0 ? static_cast<uint64_t>(now + entry.ttl) : 0);
      batch.Put(FlatKey(project_, entry.key), value);
    }
    for (const MetaEntry& record : meta) batch.Put(MetaKey(record.name), record.value);
    return FromRocks(db_->Write(write_options_, &batch), "write");
  }

  Status Read(std::span<const StoreKey> keys,
              std::vector<std::optional<std::string>>* values) override {
    values->assign(keys.size(), std::nullopt);
    if (keys.empty()) return Status::Ok();
    std::vector<std::string> flat(keys.size());
    std::vector<rocksdb::Slice> slices(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      flat[i] = FlatKey(project_, keys[i]);
      slices[i] = flat[i];
    }
    std::vector<std::string> found(keys.size());
    std::vector<rocksdb::Status> statuses = db_->MultiGet(rocksdb::ReadOptions(), slices, &found);
    Timestamp now = WallClockNow();
    for (size_t i = 0; i < keys.size(); ++i) {
      if (statuses[i].IsNotFound()) continue;
      RETURN_IF_ERROR(FromRocks(statuses[i], "read"));
      if (Expired(found[i], now)) continue;
      found[i].resize(found[i].size() - kSuffix);
      (*values)[i] = std::move(found[i]);
    }
    return Status::Ok();
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

  std::unique_ptr<ExpiryFilter> filter_;  // must outlive db_
  std::unique_ptr<rocksdb::DB> db_;
  std::string project_;
  bool read_only_;
  rocksdb::WriteOptions write_options_;
};

}  // namespace

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
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
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
