#include "store/online_store.h"

#include <chrono>
#include <map>
#include <mutex>
#include <shared_mutex>

namespace keel::store {

namespace {

void AppendLengthPrefixed(std::string* out, std::string_view bytes) {
  uint64_t size = bytes.size();
  do {  // LEB128 varint
    uint8_t byte = size & 0x7f;
    size >>= 7;
    out->push_back(static_cast<char>(size != 0 ? (byte | 0x80) : byte));
  } while (size != 0);
  out->append(bytes);
}

// The memory store: one map under a reader-writer lock.
class MemoryStore final : public OnlineStore {
 public:
  explicit MemoryStore(std::string project) : project_(std::move(project)) {}

  std::string_view type() const override { return "memory"; }

  Status Write(std::span<const StoreEntry> entries, std::span<const MetaEntry> meta) override {
    Timestamp now = WallClockNow();
    std::unique_lock lock(mutex_);
    for (const StoreEntry& entry : entries) {
      values_[FlatKey(project_, entry.key)] = {std::string(entry.value),
                                               entry.ttl > 0 ? now + entry.ttl : 0};
    }
    for (const MetaEntry& record : meta) meta_[std::string(record.name)] = record.value;
    return Status::Ok();
  }

  Status Read(std::span<const StoreKey> keys,
              std::vector<std::optional<std::string>>* values) override {
    Timestamp now = WallClockNow();
    values->assign(keys.size(), std::nullopt);
    std::shared_lock lock(mutex_);
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = values_.find(FlatKey(project_, keys[i]));
      if (it == values_.end()) continue;
      if (it->second.expire_at != 0 && it->second.expire_at <= now) continue;
      (*values)[i] = it->second.value;
    }
    return Status::Ok();
  }

  Status Remove(std::span<const StoreKey> keys) override {
    std::unique_lock lock(mutex_);
    for (const StoreKey& key : keys) values_.erase(FlatKey(project_, key));
    return Status::Ok();
  }

  Result<std::optional<std::string>> ReadMeta(std::string_view name) override {
    std::shared_lock lock(mutex_);
    auto it = meta_.find(std::string(name));
    if (it == meta_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

 private:
  struct Value {
    std::string value;
    Timestamp expire_at;  // wall clock; 0 = never
  };
  std::string project_;
  std::shared_mutex mutex_;
  std::map<std::string, Value, std::less<>> values_;
  std::map<std::string, std::string, std::less<>> meta_;
};

}  // namespace

Status OnlineStore::ReadViews(std::span<const StoreKey> keys, const ValuesUse& use) {
  std::vector<std::optional<std::string>> values;
  RETURN_IF_ERROR(Read(keys, &values));
  std::vector<std::optional<std::string_view>> views(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i].has_value()) views[i] = *values[i];
  }
  return use(views);
}

std::string FlatKey(std::string_view project, const StoreKey& key) {
  std::string out;
  FlatKeyInto(project, key, &out);
  return out;
}

void FlatKeyInto(std::string_view project, const StoreKey& key, std::string* out) {
  out->clear();
  out->reserve(project.size() + key.entity.size() + key.view.size() + 4);
  out->push_back('V');
  AppendLengthPrefixed(out, project);
  AppendLengthPrefixed(out, key.entity);
  out->append(key.view);
}

std::unique_ptr<OnlineStore> NewMemoryStore(std::string project) {
  return std::make_unique<MemoryStore>(std::move(project));
}

Result<std::unique_ptr<OnlineStore>> OpenOnlineStore(const StoreOptions& options) {
  if (options.type == "memory") return NewMemoryStore(options.project);
  if (options.type == "rocksdb") {
    if (options.path.empty()) return InvalidArgument("online store: rocksdb needs a path");
    return OpenRocksDbStore(options.path, options.project, options.read_only);
  }
  if (options.type == "redis" || options.type == "redis-cluster") {
    if (options.url.empty()) {
      return InvalidArgument("online store: " + options.type + " needs a url (redis://host:port)");
    }
    return OpenRedisStore(options.url, options.project, options.type == "redis-cluster");
  }
  return InvalidArgument("online store: unknown type '" + options.type +
                         "' (known: memory, rocksdb, redis, redis-cluster)");
}

}  // namespace keel::store
