#include "features/online_events.h"

#include <algorithm>

#include "common/bytes.h"
#include "common/hash.h"

namespace keel::features {

using table::Column;
using table::DataType;

std::string RecentEventsView(const OnlineView& view) { return view.store_view() + "#events"; }

namespace {

constexpr uint8_t kRecentEventsVersion = 1;
// Expiries are rounded up to ttl / kGenerations, so one set holds at most
// about that many generations however often its entity is written.
constexpr Duration kGenerations = 64;

// The id of row `row` hashed; false for a null id.
bool EventIdHash(const Column& ids, size_t row, uint64_t* out) {
  if (!ids.IsValid(row)) return false;
  if (ids.type() == DataType::kString) {
    *out = Hash64(ids.StringAt(row));
  } else {
    *out = Hash64(std::to_string(ids.ints()[row]));
  }
  return true;
}

// One entity's recent ids: generations of sorted hashes, each with the time
// it expires.
struct RecentEvents {
  struct Generation {
    Timestamp expires = 0;
    std::vector<uint64_t> hashes;  // sorted, unique
  };
  std::vector<Generation> generations;  // by expiry

  bool Contains(uint64_t hash) const {
    for (const Generation& generation : generations) {
      if (std::binary_search(generation.hashes.begin(), generation.hashes.end(), hash)) {
        return true;
      }
    }
    return false;
  }
};

// Decodes, dropping generations expired at `now`.
Status DecodeRecentEvents(std::string_view bytes, Timestamp now, RecentEvents* out) {
  ByteReader reader(bytes);
  uint8_t version = 0;
  uint32_t count = 0;
  if (!reader.U8(&version) || version != kRecentEventsVersion || !reader.U32(&count)) {
    return InvalidArgument("malformed header");
  }
  for (uint32_t g = 0; g < count; ++g) {
    RecentEvents::Generation generation;
    uint32_t size = 0;
    if (!reader.I64(&generation.expires) || !reader.U32(&size) || size > reader.remaining() / 8) {
      return InvalidArgument("malformed generation");
    }
    generation.hashes.resize(size);
    for (uint64_t& hash : generation.hashes) reader.U64(&hash);
    if (generation.expires > now) out->generations.push_back(std::move(generation));
  }
  if (reader.remaining() != 0) return InvalidArgument("trailing bytes");
  return Status::Ok();
}

std::string EncodeRecentEvents(const RecentEvents& events) {
  std::string out;
  PutU8(&out, kRecentEventsVersion);
  PutU32(&out, static_cast<uint32_t>(events.generations.size()));
  for (const RecentEvents::Generation& generation : events.generations) {
    PutI64(&out, generation.expires);
    PutU32(&out, static_cast<uint32_t>(generation.hashes.size()));
    for (uint64_t hash : generation.hashes) PutU64(&out, hash);
  }
  return out;
}

// Adds `hashes` (unsorted) as applied at `now`, kept until now + ttl rounded
// up to the generation granule.
void AddRecent(std::vector<uint64_t> hashes, Timestamp now, Duration ttl, RecentEvents* events) {
  std::sort(hashes.begin(), hashes.end());
  Duration granule = std::max<Duration>(1, ttl / kGenerations);
  Timestamp expires = ((now + ttl) / granule + 1) * granule;
  if (events->generations.empty() || events->generations.back().expires != expires) {
    events->generations.push_back({expires, {}});
  }
  std::vector<uint64_t>& into = events->generations.back().hashes;
  std::vector<uint64_t> merged;
  merged.reserve(into.size() + hashes.size());
  std::merge(into.begin(), into.end(), hashes.begin(), hashes.end(), std::back_inserter(merged));
  merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
  into = std::move(merged);
}

}  // namespace

Status DropSeenEvents(const OnlineView& view, const Column& event_ids,
                      const std::vector<std::string>& entity_keys, store::OnlineStore* store,
                      Timestamp now, Duration ttl, Grouping* grouping,
                      std::vector<std::string>* sets, uint64_t* duplicates) {
  if (event_ids.type() != DataType::kString && event_ids.type() != DataType::kInt64) {
    return InvalidArgument("event ids must be strings or integers, not " +
                           std::string(table::DataTypeName(event_ids.type())));
  }
  const size_t entities = entity_keys.size();
  const std::string ids_view = RecentEventsView(view);
  std::vector<store::StoreKey> keys;
  keys.reserve(entities);
  for (const std::string& key : entity_keys) keys.push_back({key, ids_view});
  std::vector<std::optional<std::string>> stored;
  RETURN_IF_ERROR(store->Read(keys, &stored));
  sets->assign(entities, std::string());
  // Compact the grouping in place, keeping each entity's order.
  size_t kept = 0;
  std::vector<uint32_t> offsets(entities + 1, 0);
  std::vector<uint64_t> added;
  for (size_t entity = 0; entity < entities; ++entity) {
    offsets[entity] = static_cast<uint32_t>(kept);
    RecentEvents recent;
    if (stored[entity].has_value()) {
      Status decoded = DecodeRecentEvents(*stored[entity], now, &recent);
      if (!decoded.ok()) {
        return InvalidArgument("online store: corrupt event ids of " + view.store_view() + ": " +
                               decoded.message());
      }
    }
    added.clear();
    for (size_t i = grouping->offsets[entity]; i < grouping->offsets[entity + 1]; ++i) {
      uint64_t hash = 0;
      if (EventIdHash(event_ids, grouping->order[i], &hash)) {
        // Batches are small next to the sets: a linear scan of this batch's
        // ids finds repeats within it.
        if (recent.Contains(hash) || std::find(added.begin(), added.end(), hash) != added.end()) {
          ++*duplicates;
          continue;
        }
        added.push_back(hash);
      }
      grouping->order[kept] = grouping->order[i];
      grouping->sorted_ts[kept] = grouping->sorted_ts[i];
      ++kept;
    }
    if (!added.empty()) {
      AddRecent(added, now, ttl, &recent);
      (*sets)[entity] = EncodeRecentEvents(recent);
    }
  }
  offsets[entities] = static_cast<uint32_t>(kept);
  grouping->order.resize(kept);
  grouping->sorted_ts.resize(kept);
  grouping->offsets = std::move(offsets);
  return Status::Ok();
}

std::string NewestEventMetaName(const OnlineView& view) { return "newest/" + view.store_view(); }

Result<std::optional<Timestamp>> ReadTimestampMeta(store::OnlineStore* store,
                                                   const std::string& name) {
  ASSIGN_OR_RETURN(std::optional<std::string> value, store->ReadMeta(name));
  if (!value.has_value()) return std::optional<Timestamp>();
  try {
    size_t used = 0;
    long long parsed = std::stoll(*value, &used);
    if (used != value->size()) throw std::invalid_argument("trailing");
    return std::optional<Timestamp>(parsed);
  } catch (const std::exception&) {
    return InvalidArgument("online store: corrupt record '" + name + "': '" + *value + "'");
  }
}

Result<std::optional<Timestamp>> NewestEventApplied(store::OnlineStore* store,
                                                    const OnlineView& view) {
  return ReadTimestampMeta(store, NewestEventMetaName(view));
}

}  // namespace keel::features
