// The Redis online store: OnlineStore over redis::Client (redis_cluster.h),
// for one server or a Redis Cluster.
#include <algorithm>
#include <numeric>

#include "common/hash.h"
#include "store/online_store.h"
#include "store/redis_cluster.h"

namespace keel::store {
namespace redis {

namespace {

// Escapes everything but a few readable bytes, so no component contains ':',
// '{' or '}' and the layout parses one way only.
void AppendEscaped(std::string* out, std::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : bytes) {
    auto byte = static_cast<unsigned char>(ch);
    bool plain = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                 (byte >= '0' && byte <= '9') ||
                 std::string_view("._@/=+-").find(ch) != std::string_view::npos;
    if (plain) {
      out->push_back(ch);
    } else {
      out->push_back('%');
      out->push_back(kHex[byte >> 4]);
      out->push_back(kHex[byte & 0xf]);
    }
  }
}

std::string Prefix(std::string_view project) {
  std::string key = "keel:";
  AppendEscaped(&key, project);
  key.push_back(':');
  return key;
}

// PX milliseconds for a ttl in microseconds: rounded up, at least 1.
std::string TtlMillis(Duration ttl) {
  return std::to_string(std::max<Duration>(1, (ttl + 999) / 1000));
}

class RedisStore final : public OnlineStore {
 public:
  RedisStore(std::shared_ptr<Client> client, std::string project)
      : client_(std::move(client)), project_(std::move(project)) {}

  std::string_view type() const override { return client_->cluster() ? "redis-cluster" : "redis"; }

  Status Write(std::span<const StoreEntry> entries, std::span<const MetaEntry> meta) override {
    std::vector<std::string> keys(entries.size()), ttls(entries.size());
    for (size_t entry_idx = 0; entry_idx < entries.size(); ++entry_idx) {
      keys[entry_idx] = EntryKey(project_, entries[entry_idx].key);
      if (entries[entry_idx].ttl > 0) ttls[entry_idx] = TtlMillis(entries[entry_idx].ttl);
    }
    // One request (a MULTI/EXEC when it has several entries) per entity, the
    // entity's entries in the caller's order so a later one wins.
    std::vector<uint32_t> order(entries.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t left, uint32_t right) {
      return entries[left].key.entity < entries[right].key.entity;
    });
    CommandBatch batch;
    for (size_t order_idx = 0; order_idx < order.size(); ++order_idx) {
      uint32_t entry_idx = order[order_idx];
      if (order_idx == 0 ||
          entries[order[order_idx - 1]].key.entity != entries[entry_idx].key.entity) {
        batch.BeginRequest(KeySlot(keys[entry_idx]));
      }
      if (ttls[entry_idx].empty()) {
        batch.AddCommand({"SET", keys[entry_idx], entries[entry_idx].value});
      } else {
        batch.AddCommand({"SET", keys[entry_idx], entries[entry_idx].value, "PX", ttls[entry_idx]});
      }
    }
    RETURN_IF_ERROR(Run(batch, "write"));
    // Meta only after every entry was acknowledged (the contract in online_store.h).
    std::vector<std::string> meta_keys;
    for (const MetaEntry& record : meta) meta_keys.push_back(MetaKey(project_, record.name));
    CommandBatch meta_batch;
    for (size_t meta_idx = 0; meta_idx < meta.size(); ++meta_idx) {
      meta_batch.BeginRequest(KeySlot(meta_keys[meta_idx]));
      meta_batch.AddCommand({"SET", meta_keys[meta_idx], meta[meta_idx].value});
    }
    return Run(meta_batch, "write meta");
  }

  Status Read(std::span<const StoreKey> keys,
              std::vector<std::optional<std::string>>* values) override {
    values->assign(keys.size(), std::nullopt);
    std::vector<std::string> flat(keys.size());
    CommandBatch batch;
    for (size_t key_idx = 0; key_idx < keys.size(); ++key_idx) {
      flat[key_idx] = EntryKey(project_, keys[key_idx]);
      batch.BeginRequest(KeySlot(flat[key_idx]));
      batch.AddCommand({"GET", flat[key_idx]});
    }
    // One command per request: the command index is the key index.
    return Run(batch, "read", [values](size_t command_idx, const Reply& reply) {
      if (reply.kind == Reply::Kind::kString) (*values)[command_idx] = std::string(reply.text);
    });
  }

  Status Remove(std::span<const StoreKey> keys) override {
    std::vector<std::string> flat(keys.size());
    CommandBatch batch;
    for (size_t key_idx = 0; key_idx < keys.size(); ++key_idx) {
      flat[key_idx] = EntryKey(project_, keys[key_idx]);
      batch.BeginRequest(KeySlot(flat[key_idx]));
      batch.AddCommand({"DEL", flat[key_idx]});
    }
    return Run(batch, "remove");
  }

  Result<std::optional<std::string>> ReadMeta(std::string_view name) override {
    std::string key = MetaKey(project_, name);
    CommandBatch batch;
    batch.BeginRequest(KeySlot(key));
    batch.AddCommand({"GET", key});
    std::optional<std::string> value;
    RETURN_IF_ERROR(Run(batch, "read meta", [&value](size_t, const Reply& reply) {
      if (reply.kind == Reply::Kind::kString) value = std::string(reply.text);
    }));
    return value;
  }

 private:
  Status Run(
      const CommandBatch& batch, std::string_view what,
      const ReplyHandler& on_reply = [](size_t, const Reply&) {}) {
    if (batch.request_count() == 0) return Status::Ok();
    Status status = client_->Execute(batch, on_reply);
    return status.WithContext("online store (" + std::string(type()) + ") " + std::string(what));
  }

  std::shared_ptr<Client> client_;
  std::string project_;
};

}  // namespace

std::string EntryKey(std::string_view project, const StoreKey& key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = Prefix(project);
  out.push_back('{');
  uint64_t hash = Hash64(key.entity);
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(hash >> shift) & 0xf]);
  out += "}:";
  AppendEscaped(&out, key.entity);
  out.push_back(':');
  AppendEscaped(&out, key.view);
  return out;
}

std::string MetaKey(std::string_view project, std::string_view name) {
  std::string out = Prefix(project) + "meta:";
  AppendEscaped(&out, name);
  return out;
}

std::unique_ptr<OnlineStore> NewStore(std::shared_ptr<Client> client, std::string project) {
  return std::make_unique<RedisStore>(std::move(client), std::move(project));
}

}  // namespace redis

Result<std::unique_ptr<OnlineStore>> OpenRedisStore(const std::string& url, std::string project,
                                                    bool cluster) {
  Result<std::unique_ptr<redis::Client>> client = redis::Client::Open(url, cluster);
  if (!client.ok()) {
    return client.status().WithContext(std::string("online store (") +
                                       (cluster ? "redis-cluster" : "redis") + ")");
  }
  return redis::NewStore(std::move(client).value(), std::move(project));
}

}  // namespace keel::store
