#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "features/definitions.h"
#include "features/offline_engine.h"
#include "store/online_store.h"
#include "table/column.h"

namespace keel::table {
class DuckDb;
}

namespace keel::features {

// What a parity run found.
struct ParityReport {
  size_t spine_rows = 0;              // spine rows read online (time >= materialize_end)
  size_t values_compared = 0;         // features x rows
  size_t mismatches = 0;              // must be 0
  std::vector<std::string> examples;  // the first few mismatches, described
  uint64_t events_streamed = 0;       // source rows applied after materialization
  uint64_t late_events = 0;
  double offline_seconds = 0;
  double materialize_seconds = 0;
  double stream_seconds = 0;  // applying events
  double read_seconds = 0;    // online reads
};

// Proves online/offline parity on real data: builds the training set for
// `spine` with the offline engine, materializes every view of `uses` as of
// `materialize_end` into `store`, then replays each view's source rows with
// materialize_end <= ts in time order (equal timestamps in the offline order)
// and, at each distinct spine time t, reads the spine rows' features online
// after every row with ts < t and before any row with ts >= t is applied, and
// compares every value with the offline result bit for bit (null == null).
// Spine rows before materialize_end or with a null time are not read online.
// The store should be empty of these views (a fresh memory store, or a
// scratch RocksDB / Redis project).
// Errors: from the engine, the sources and the store.
Result<ParityReport> CheckOnlineParity(const RepoConfig& config, table::DuckDb* duckdb,
                                       store::OnlineStore* store, const table::Table& spine,
                                       const std::string& time_column,
                                       const std::vector<ResolvedUse>& uses,
                                       Timestamp materialize_end);

}  // namespace keel::features
