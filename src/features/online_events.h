#pragma once

// Streamed events on the online path: de-duplication by event id, and the
// newest event applied to each view (its freshness).
//
// De-duplication is per (view, entity): beside each entity state lives the
// set of event ids recently applied to it (two more store keys of the same
// entity, a main set and a tail, written in the same atomic write as the state: a RocksDB
// write batch, one MULTI/EXEC on the entity's Redis shard). An event whose id
// an entity's set holds is skipped for that entity. So a batch cut short by a
// crash, sent again by a client that got no answer, or redelivered by a
// stream, applies every event exactly once to every state - whatever subset
// of states the first attempt reached. Ids are remembered for `dedup_ttl`
// (wall-clock time since they were applied), kept as 64-bit hashes (two
// different ids collide with probability ~2^-64 per pair), grouped in at most
// ~64 generations by expiry, so the cost is one or two extra keys per entity
// and batch, not one per event.

#include <optional>
#include <span>
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

// The store view keys of the event ids recently applied to an entity of
// `view`: the main set "<name>@<version>#events" and the tail set
// "<name>@<version>#events+". New ids go to the tail; when the tail would
// outgrow a quarter of the main set (or 512 ids) both are folded into the
// main set and the tail is emptied, in the same atomic write. So a batch
// rewrites a set of at most a quarter of the entity's remembered ids, not all
// of them. (Stores written before the tail existed hold only the main set.)
std::string RecentEventsView(const OnlineView& view);
std::string RecentEventsTailView(const OnlineView& view);

// What to write with an entity's state after a batch: the encoded sets,
// empty = leave that key as it is.
struct RecentEventsWrite {
  std::string main;
  std::string tail;
};

// Removes from `grouping` every row whose event id (`event_ids`, a string or
// int64 column parallel to the rows; a null id is never a duplicate) is in
// its entity's stored sets of recent ids, or repeats an id of an earlier row
// of the same entity in this batch; counts them in `duplicates`.
// `entity_keys[e]` is the store key of grouping entity e. `writes[e]` is set
// to the sets to write with entity e's state when the batch adds ids (both
// empty otherwise), ids applied at `now` kept for `ttl`.
// One batched store read. Errors: the store's; InvalidArgument for a corrupt
// stored set (naming the view).
Status DropSeenEvents(const OnlineView& view, const table::Column& event_ids,
                      const std::vector<std::string>& entity_keys, store::OnlineStore* store,
                      Timestamp now, Duration ttl, Grouping* grouping,
                      std::vector<RecentEventsWrite>* writes, uint64_t* duplicates);

// DropSeenEvents with the stored sets already read: stored_main[e] and
// stored_tail[e] are entity e's (nullopt: none), e.g. from the same batched
// read as the entity states.
Status DropSeenEventsIn(const OnlineView& view, const table::Column& event_ids,
                        std::span<const std::optional<std::string_view>> stored_main,
                        std::span<const std::optional<std::string_view>> stored_tail, Timestamp now,
                        Duration ttl, Grouping* grouping, std::vector<RecentEventsWrite>* writes,
                        uint64_t* duplicates);

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
