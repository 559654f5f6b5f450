#include "features/online_events.h"

#include <unordered_set>

namespace keel::features {

using table::Column;
using table::DataType;

std::string EventMarkerView(const OnlineView& view, std::string_view event_id) {
  std::string marker = view.store_view();
  marker += '#';
  marker += event_id;
  return marker;
}

namespace {

// The id of row `row` as text; false for a null id.
bool EventIdAt(const Column& ids, size_t row, std::string* out) {
  if (!ids.IsValid(row)) return false;
  if (ids.type() == DataType::kString) {
    out->assign(ids.StringAt(row));
  } else {
    *out = std::to_string(ids.ints()[row]);
  }
  return true;
}

}  // namespace

Status DropSeenEvents(const OnlineView& view, const Column& event_ids,
                      const std::vector<std::string>& entity_keys, store::OnlineStore* store,
                      Grouping* grouping, std::vector<EventMarker>* markers, uint64_t* duplicates) {
  if (event_ids.type() != DataType::kString && event_ids.type() != DataType::kInt64) {
    return InvalidArgument("event ids must be strings or integers, not " +
                           std::string(table::DataTypeName(event_ids.type())));
  }
  const size_t entities = entity_keys.size();
  // Every (entity, id) pair of the batch, first occurrence only.
  std::vector<std::string> marker_views(grouping->order.size());
  std::vector<uint8_t> has_id(grouping->order.size(), 0), repeated(grouping->order.size(), 0);
  std::vector<store::StoreKey> keys;
  std::vector<size_t> key_position;
  std::string id;
  for (size_t entity = 0; entity < entities; ++entity) {
    std::unordered_set<std::string_view> seen;
    for (size_t i = grouping->offsets[entity]; i < grouping->offsets[entity + 1]; ++i) {
      if (!EventIdAt(event_ids, grouping->order[i], &id)) continue;
      marker_views[i] = EventMarkerView(view, id);
      has_id[i] = 1;
      if (!seen.insert(marker_views[i]).second) {
        repeated[i] = 1;
        continue;
      }
      keys.push_back({entity_keys[entity], marker_views[i]});
      key_position.push_back(i);
    }
  }
  std::vector<std::optional<std::string>> found;
  if (!keys.empty()) RETURN_IF_ERROR(store->Read(keys, &found));
  std::vector<uint8_t> drop = std::move(repeated);
  for (size_t k = 0; k < keys.size(); ++k) {
    if (found[k].has_value()) drop[key_position[k]] = 1;
  }
  // Compact the grouping in place, keeping each entity's order.
  size_t kept = 0;
  std::vector<uint32_t> offsets(entities + 1, 0);
  for (size_t entity = 0; entity < entities; ++entity) {
    offsets[entity] = static_cast<uint32_t>(kept);
    for (size_t i = grouping->offsets[entity]; i < grouping->offsets[entity + 1]; ++i) {
      if (drop[i]) {
        ++*duplicates;
        continue;
      }
      if (has_id[i]) markers->push_back({entity, std::move(marker_views[i])});
      grouping->order[kept] = grouping->order[i];
      grouping->sorted_ts[kept] = grouping->sorted_ts[i];
      ++kept;
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
