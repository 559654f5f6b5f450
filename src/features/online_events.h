#pragma once

// Streamed events on the online path: de-duplication by event id, and the
// newest event applied to each view (its freshness).
//
// De-duplication is per (view, entity): when OnlineUpdater::Apply is given
// event ids, every entity state it writes is written together with one marker
// per event id applied to it (a store entry beside the state, same entity key,
// so the same atomic write: a RocksDB write batch, one MULTI/EXEC on the
// entity's Redis shard). An event whose marker an entity already holds is
// skipped for that entity. So a batch cut short by a crash, or sent again by a
// client that got no answer, or redelivered by a stream, applies every event
// exactly once to every state - whatever subset of states the first attempt
// reached. Markers expire after ApplyOptions::dedup_ttl.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "features/grouping.h"
#include "features/online.h"
#include "store/online_store.h"
#include "table/column.h"

namespace keel::features {

// The store view key of the marker of `event_id` applied to an entity of
// `view`: "<name>@<version>#<event_id>".
std::string EventMarkerView(const OnlineView& view, std::string_view event_id);

// A marker to write with the state of grouping entity `entity`.
struct EventMarker {
  size_t entity = 0;
  std::string view;  // EventMarkerView
};

// Removes from `grouping` every row whose event id (`event_ids`, a string or
// int64 column parallel to the rows; a null id is never a duplicate) is
// already marked for its entity in `store`, or repeats an id of an earlier row
// of the same entity in this batch; counts them in `duplicates`, and lists the
// markers of the rows kept. `entity_keys[e]` is the store key of grouping
// entity e. One batched store read. Errors: the store's.
Status DropSeenEvents(const OnlineView& view, const table::Column& event_ids,
                      const std::vector<std::string>& entity_keys, store::OnlineStore* store,
                      Grouping* grouping, std::vector<EventMarker>* markers, uint64_t* duplicates);

// A meta record holding a timestamp (decimal microseconds), or nullopt when
// absent. Errors: the store's; InvalidArgument naming the record when corrupt.
Result<std::optional<Timestamp>> ReadTimestampMeta(store::OnlineStore* store,
                                                   const std::string& name);

// The meta record holding the newest event time applied to `view`.
std::string NewestEventMetaName(const OnlineView& view);

// The newest event time applied to `view` (by streaming or materialization),
// or nullopt when none was recorded. Errors: the store's; InvalidArgument for
// a corrupt record.
Result<std::optional<Timestamp>> NewestEventApplied(store::OnlineStore* store,
                                                    const OnlineView& view);

}  // namespace keel::features
