#pragma once

// Streamed events on the online path: de-duplication by event id, and the
// newest event applied to each view (its freshness).
//
// De-duplication is per (view, entity): beside each entity state lives the
// set of event ids recently applied to it (a second store key of the same
// entity, so it is written in the same atomic write as the state: a RocksDB
// write batch, one MULTI/EXEC on the entity's Redis shard). An event whose id
// an entity's set holds is skipped for that entity. So a batch cut short by a
// crash, sent again by a client that got no answer, or redelivered by a
// stream, applies every event exactly once to every state - whatever subset
// of states the first attempt reached. Ids are remembered for `dedup_ttl`
// (wall-clock time since they were applied), kept as 64-bit hashes (two
// different ids collide with probability ~2^-64 per pair), grouped in at most
// ~64 generations by expiry, so the cost is one extra key per entity and
// batch, not one per event.

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

// The store view key of the event ids recently applied to an entity of
// `view`: "<name>@<version>#events".
std::string RecentEventsView(const OnlineView& view);

// Removes from `grouping` every row whose event id (`event_ids`, a string or
// int64 column parallel to the rows; a null id is never a duplicate) is in
// its entity's stored set of recent ids, or repeats an id of an earlier row
// of the same entity in this batch; counts them in `duplicates`.
// `entity_keys[e]` is the store key of grouping entity e. `sets[e]` is set to
// the encoded recent-id set to write with entity e's state when the batch
// adds ids to it (empty otherwise), ids applied at `now` kept for `ttl`.
// One batched store read. Errors: the store's; InvalidArgument for a corrupt
// stored set (naming the view).
Status DropSeenEvents(const OnlineView& view, const table::Column& event_ids,
                      const std::vector<std::string>& entity_keys, store::OnlineStore* store,
                      Timestamp now, Duration ttl, Grouping* grouping,
                      std::vector<std::string>* sets, uint64_t* duplicates);

// DropSeenEvents with the stored sets already read: stored[e] is entity e's
// (nullopt: none), e.g. from the same batched read as the entity states.
Status DropSeenEventsIn(const OnlineView& view, const table::Column& event_ids,
                        std::span<const std::optional<std::string_view>> stored, Timestamp now,
                        Duration ttl, Grouping* grouping, std::vector<std::string>* sets,
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
