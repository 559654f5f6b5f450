#include "features/online_events.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>

#include "common/bytes.h"
#include "common/hash.h"

namespace keel::features {

using table::Column;
using table::DataType;

std::string RecentEventsView(const OnlineView& view) { return view.store_view() + "#events"; }
std::string RecentEventsTailView(const OnlineView& view) { return view.store_view() + "#events+"; }

namespace {

constexpr uint8_t kRecentEventsVersion = 1;
// Expiries are rounded up to ttl / kGenerations, so one set holds at most
// about that many generations however often its entity is written.
constexpr Duration kGenerations = 64;
// The tail set is folded into the main set when it would hold more than
// max(kMinTail, main / kTailShare) ids: each batch then rewrites the tail
// (at most a quarter of the main set), and the main set only every so often.
constexpr size_t kMinTail = 512;
constexpr size_t kTailShare = 4;

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

// When ids applied at `now` are forgotten: now + ttl rounded up to the
// generation granule.
Timestamp ExpiryOf(Timestamp now, Duration ttl) {
  Duration granule = std::max<Duration>(1, ttl / kGenerations);
  return ((now + ttl) / granule + 1) * granule;
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
  Timestamp expires = ExpiryOf(now, ttl);
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

size_t CountIds(const RecentEvents& events) {
  size_t count = 0;
  for (const RecentEvents::Generation& generation : events.generations) count += generation.count;
  return count;
}

// The encoding of every generation of `sets` (unexpired) and `added` (kept
// until `expires`), generations of equal expiry merged, in expiry order.
void EncodeFolded(std::span<const RecentEvents* const> sets, std::span<const uint64_t> added,
                  Timestamp expires, std::string* out) {
  std::map<Timestamp, std::vector<uint64_t>> generations;
  for (const RecentEvents* set : sets) {
    for (const RecentEvents::Generation& generation : set->generations) {
      std::vector<uint64_t>& into = generations[generation.expires];
      for (size_t i = 0; i < generation.count; ++i) into.push_back(generation.At(i));
    }
  }
  if (!added.empty()) {
    std::vector<uint64_t>& into = generations[expires];
    into.insert(into.end(), added.begin(), added.end());
  }
  out->clear();
  PutU8(out, kRecentEventsVersion);
  PutU32(out, static_cast<uint32_t>(generations.size()));
  for (auto& [generation_expires, hashes] : generations) {
    std::sort(hashes.begin(), hashes.end());
    hashes.erase(std::unique(hashes.begin(), hashes.end()), hashes.end());
    PutI64(out, generation_expires);
    PutU32(out, static_cast<uint32_t>(hashes.size()));
    size_t at = out->size();
    out->resize(at + 8 * hashes.size());
    for (size_t i = 0; i < hashes.size(); ++i) StoreU64(out->data() + at + 8 * i, hashes[i]);
  }
}

}  // namespace

Status DropSeenEventsIn(const OnlineView& view, const Column& event_ids,
                        std::span<const std::optional<std::string_view>> stored_main,
                        std::span<const std::optional<std::string_view>> stored_tail, Timestamp now,
                        Duration ttl, Grouping* grouping, std::vector<RecentEventsWrite>* writes,
                        uint64_t* duplicates) {
  if (event_ids.type() != DataType::kString && event_ids.type() != DataType::kInt64) {
    return InvalidArgument("event ids must be strings or integers, not " +
                           std::string(table::DataTypeName(event_ids.type())));
  }
  const size_t entities = stored_main.size();
  writes->assign(entities, RecentEventsWrite());
  // Compact the grouping in place, keeping each entity's order.
  size_t kept = 0;
  std::vector<uint32_t> offsets(entities + 1, 0);
  RecentEvents main, tail;
  std::vector<std::pair<uint64_t, uint32_t>> hashed;  // (hash, position in the entity's rows)
  std::vector<uint8_t> drop;                          // per position
  std::vector<uint64_t> added;                        // sorted, unique
  auto parse = [&](const std::optional<std::string_view>& bytes, RecentEvents* out) -> Status {
    out->generations.clear();
    if (!bytes.has_value()) return Status::Ok();
    Status parsed = ParseRecentEvents(*bytes, now, out);
    if (!parsed.ok()) {
      return InvalidArgument("online store: corrupt event ids of " + view.store_view() + ": " +
                             parsed.message());
    }
    return Status::Ok();
  };
  for (size_t entity = 0; entity < entities; ++entity) {
    offsets[entity] = static_cast<uint32_t>(kept);
    RETURN_IF_ERROR(parse(stored_main[entity], &main));
    RETURN_IF_ERROR(parse(stored_tail[entity], &tail));
    const size_t begin = grouping->offsets[entity], end = grouping->offsets[entity + 1];
    hashed.clear();
    for (size_t i = begin; i < end; ++i) {
      uint64_t hash = 0;
      if (EventIdHash(event_ids, grouping->order[i], &hash)) {
        hashed.emplace_back(hash, static_cast<uint32_t>(i - begin));
      }
    }
    // Sorted by (hash, position): the first row with an id is the one applied
    // (unless a stored set holds it); its repeats later in the batch are not.
    std::sort(hashed.begin(), hashed.end());
    drop.assign(end - begin, 0);
    added.clear();
    for (size_t h = 0; h < hashed.size(); ++h) {
      const uint64_t hash = hashed[h].first;
      if ((h > 0 && hashed[h - 1].first == hash) || tail.Contains(hash) || main.Contains(hash)) {
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
    if (added.empty()) continue;
    RecentEventsWrite& write = (*writes)[entity];
    const size_t tail_after = CountIds(tail) + added.size();
    if (tail_after <= std::max(kMinTail, CountIds(main) / kTailShare)) {
      EncodeWithAdded(tail, added, now, ttl, &write.tail);  // the usual case: the tail only
      continue;
    }
    // Fold: everything into the main set, and an empty tail, in one write.
    const RecentEvents* both[] = {&main, &tail};
    EncodeFolded(both, added, ExpiryOf(now, ttl), &write.main);
    EncodeFolded({}, {}, 0, &write.tail);
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
                      std::vector<RecentEventsWrite>* writes, uint64_t* duplicates) {
  const std::string main_view = RecentEventsView(view), tail_view = RecentEventsTailView(view);
  std::vector<store::StoreKey> keys;
  keys.reserve(2 * entity_keys.size());
  for (const std::string& key : entity_keys) keys.push_back({key, main_view});
  for (const std::string& key : entity_keys) keys.push_back({key, tail_view});
  const size_t entities = entity_keys.size();
  return store->ReadViews(keys, [&](std::span<const std::optional<std::string_view>> stored) {
    return DropSeenEventsIn(view, event_ids, stored.subspan(0, entities), stored.subspan(entities),
                            now, ttl, grouping, writes, duplicates);
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
