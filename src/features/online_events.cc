#include "features/online_events.h"

#include <algorithm>
#include <bit>
#include <cstring>

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

uint64_t LoadU64(const char* bytes) {
  uint64_t value = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&value, bytes, 8);
  } else {
    for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return value;
}

void StoreU64(char* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
}

// One entity's stored recent ids, read in place (no copy of the hashes):
// generations of sorted unique hashes, each with the time it expires.
// Format (little-endian): u8 version, u32 generations, then per generation
// i64 expires, u32 count, count u64 hashes ascending.
struct RecentEvents {
  struct Generation {
    Timestamp expires = 0;
    const char* hashes = nullptr;  // count little-endian u64s, ascending
    size_t count = 0;
    uint64_t At(size_t i) const { return LoadU64(hashes + 8 * i); }
    bool Contains(uint64_t hash) const {
      size_t low = 0, high = count;  // binary search over the bytes
      while (low < high) {
        size_t middle = low + (high - low) / 2;
        uint64_t value = At(middle);
        if (value == hash) return true;
        if (value < hash) {
          low = middle + 1;
        } else {
          high = middle;
        }
      }
      return false;
    }
  };
  std::vector<Generation> generations;  // unexpired, by expiry

  bool Contains(uint64_t hash) const {
    for (const Generation& generation : generations) {
      if (generation.Contains(hash)) return true;
    }
    return false;
  }
};

// Parses `bytes` (which must outlive `out`), keeping the generations
// unexpired at `now`.
Status ParseRecentEvents(std::string_view bytes, Timestamp now, RecentEvents* out) {
  out->generations.clear();
  ByteReader reader(bytes);
  uint8_t version = 0;
  uint32_t count = 0;
  if (!reader.U8(&version) || version != kRecentEventsVersion || !reader.U32(&count)) {
    return InvalidArgument("malformed header");
  }
  for (uint32_t g = 0; g < count; ++g) {
    RecentEvents::Generation generation;
    uint32_t size = 0;
    std::string_view hashes;
    if (!reader.I64(&generation.expires) || !reader.U32(&size) || size > reader.remaining() / 8 ||
        !reader.Bytes(8 * static_cast<size_t>(size), &hashes)) {
      return InvalidArgument("malformed generation");
    }
    generation.hashes = hashes.data();
    generation.count = size;
    if (generation.expires > now) out->generations.push_back(generation);
  }
  if (!reader.AtEnd()) return InvalidArgument("trailing bytes");
  return Status::Ok();
}

// The encoding of `recent` with `added` (sorted, unique, none in `recent`)
// applied at `now` and kept until now + ttl rounded up to the generation
// granule: merged into the last generation when it expires then, else a new
// last generation.
void EncodeWithAdded(const RecentEvents& recent, std::span<const uint64_t> added, Timestamp now,
                     Duration ttl, std::string* out) {
  Duration granule = std::max<Duration>(1, ttl / kGenerations);
  Timestamp expires = ((now + ttl) / granule + 1) * granule;
  const size_t kept = recent.generations.size();
  const bool merge = kept > 0 && recent.generations.back().expires == expires;
  size_t total = 1 + 4;
  for (const RecentEvents::Generation& generation : recent.generations) {
    total += 8 + 4 + 8 * generation.count;
  }
  total += (merge ? 0 : 8 + 4) + 8 * added.size();
  out->clear();
  out->reserve(total);
  PutU8(out, kRecentEventsVersion);
  PutU32(out, static_cast<uint32_t>(kept + (merge ? 0 : 1)));
  for (size_t g = 0; g < kept; ++g) {
    const RecentEvents::Generation& generation = recent.generations[g];
    if (merge && g + 1 == kept) break;
    PutI64(out, generation.expires);
    PutU32(out, static_cast<uint32_t>(generation.count));
    out->append(generation.hashes, 8 * generation.count);  // verbatim
  }
  // The last generation: the old one's hashes merged with `added`, or `added` alone.
  const RecentEvents::Generation empty;
  const RecentEvents::Generation& last = merge ? recent.generations.back() : empty;
  const size_t count = last.count + added.size();
  PutI64(out, expires);
  PutU32(out, static_cast<uint32_t>(count));
  size_t at = out->size();
  out->resize(at + 8 * count);
  char* write = out->data() + at;
  size_t i = 0, j = 0;
  while (i < last.count || j < added.size()) {
    uint64_t value;
    if (j == added.size() || (i < last.count && last.At(i) < added[j])) {
      value = last.At(i++);
    } else {
      value = added[j++];
    }
    StoreU64(write, value);
    write += 8;
  }
}

}  // namespace

Status DropSeenEventsIn(const OnlineView& view, const Column& event_ids,
                        std::span<const std::optional<std::string_view>> stored, Timestamp now,
                        Duration ttl, Grouping* grouping, std::vector<std::string>* sets,
                        uint64_t* duplicates) {
  if (event_ids.type() != DataType::kString && event_ids.type() != DataType::kInt64) {
    return InvalidArgument("event ids must be strings or integers, not " +
                           std::string(table::DataTypeName(event_ids.type())));
  }
  const size_t entities = stored.size();
  sets->assign(entities, std::string());
  // Compact the grouping in place, keeping each entity's order.
  size_t kept = 0;
  std::vector<uint32_t> offsets(entities + 1, 0);
  RecentEvents recent;
  std::vector<std::pair<uint64_t, uint32_t>> hashed;  // (hash, position in the entity's rows)
  std::vector<uint8_t> drop;                          // per position
  std::vector<uint64_t> added;                        // sorted, unique
  for (size_t entity = 0; entity < entities; ++entity) {
    offsets[entity] = static_cast<uint32_t>(kept);
    recent.generations.clear();
    if (stored[entity].has_value()) {
      Status parsed = ParseRecentEvents(*stored[entity], now, &recent);
      if (!parsed.ok()) {
        return InvalidArgument("online store: corrupt event ids of " + view.store_view() + ": " +
                               parsed.message());
      }
    }
    const size_t begin = grouping->offsets[entity], end = grouping->offsets[entity + 1];
    hashed.clear();
    for (size_t i = begin; i < end; ++i) {
      uint64_t hash = 0;
      if (EventIdHash(event_ids, grouping->order[i], &hash)) {
        hashed.emplace_back(hash, static_cast<uint32_t>(i - begin));
      }
    }
    // Sorted by (hash, position): the first row with an id is the one applied
    // (unless the stored set holds it); its repeats later in the batch are not.
    std::sort(hashed.begin(), hashed.end());
    drop.assign(end - begin, 0);
    added.clear();
    for (size_t h = 0; h < hashed.size(); ++h) {
      const uint64_t hash = hashed[h].first;
      if ((h > 0 && hashed[h - 1].first == hash) || recent.Contains(hash)) {
        drop[hashed[h].second] = 1;
        ++*duplicates;
        continue;
      }
      added.push_back(hash);
    }
    for (size_t i = begin; i < end; ++i) {
      if (drop[i - begin]) continue;
      grouping->order[kept] = grouping->order[i];
      grouping->sorted_ts[kept] = grouping->sorted_ts[i];
      ++kept;
    }
    if (!added.empty()) EncodeWithAdded(recent, added, now, ttl, &(*sets)[entity]);
  }
  offsets[entities] = static_cast<uint32_t>(kept);
  grouping->order.resize(kept);
  grouping->sorted_ts.resize(kept);
  grouping->offsets = std::move(offsets);
  return Status::Ok();
}

Status DropSeenEvents(const OnlineView& view, const Column& event_ids,
                      const std::vector<std::string>& entity_keys, store::OnlineStore* store,
                      Timestamp now, Duration ttl, Grouping* grouping,
                      std::vector<std::string>* sets, uint64_t* duplicates) {
  const std::string ids_view = RecentEventsView(view);
  std::vector<store::StoreKey> keys;
  keys.reserve(entity_keys.size());
  for (const std::string& key : entity_keys) keys.push_back({key, ids_view});
  return store->ReadViews(keys, [&](std::span<const std::optional<std::string_view>> stored) {
    return DropSeenEventsIn(view, event_ids, stored, now, ttl, grouping, sets, duplicates);
  });
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
