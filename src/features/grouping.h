#pragma once

// The pieces the offline engine and online materialization share: a source's
// rows grouped by entity and sorted in the point-in-time order, the value
// streams the window kernels read, and a small parallel-for.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "features/definitions.h"
#include "features/entity_index.h"
#include "table/column.h"

namespace keel::features {

// Runs fn(task, worker) for task in [0, tasks) on `threads` threads (worker in
// [0, threads); worker 0 is the calling thread), handing out tasks in small
// batches so that a few heavy entities do not leave a thread idle.
template <typename Fn>
void ParallelForWorkers(size_t tasks, int threads, Fn&& fn) {
  std::atomic<size_t> next{0};
  constexpr size_t kBatch = 4;
  auto worker = [&](int worker_idx) {
    while (true) {
      size_t begin = next.fetch_add(kBatch);
      if (begin >= tasks) return;
      for (size_t task = begin; task < std::min(tasks, begin + kBatch); ++task) {
        fn(task, worker_idx);
      }
    }
  };
  if (threads <= 1 || tasks < 2 * kBatch) {
    worker(0);
    return;
  }
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back(worker, i);
  worker(0);
  for (std::thread& thread : pool) thread.join();
}

template <typename Fn>
void ParallelFor(size_t tasks, int threads, Fn&& fn) {
  ParallelForWorkers(tasks, threads, [&](size_t task, int) { fn(task); });
}

// A source's rows grouped by entity and sorted by (timestamp, created, arrival).
struct Grouping {
  std::unique_ptr<EntityIndex> index;
  std::vector<uint32_t> order;    // source row ids; null-key and null-time rows left out
  std::vector<uint32_t> offsets;  // entity e owns order[offsets[e], offsets[e + 1])
  std::vector<Timestamp> sorted_ts;
};

// Groups `source`'s rows by `view.key_columns` and sorts each entity's rows by
// (timestamp, created column, row order) - the order in which rows "arrive"
// for the point-in-time rule. Rows with a null key or a null timestamp are left
// out. Errors: NotFound for a missing column, InvalidArgument for a key type
// EntityIndex does not take.
Result<std::shared_ptr<Grouping>> BuildGrouping(const table::Table& source,
                                                const FeatureViewDef& view, int threads);

// Stable counting sort of row indices by `ids` into `buckets` groups:
// rows[offsets[b], offsets[b+1]) are the rows with id b, in row order. Rows
// with an id >= buckets, or with include[row] == 0 (when given), are left out.
void GroupRows(const std::vector<uint32_t>& ids, size_t buckets, std::vector<uint32_t>* rows,
               std::vector<uint32_t>* offsets, const std::vector<uint8_t>* include);

// Sorts each group's rows by key(row) (stable: equal keys keep arrival order),
// skipping groups that are already sorted, as time-ordered sources are.
template <typename Key>
void SortWithinGroups(const std::vector<uint32_t>& offsets, std::vector<uint32_t>* rows,
                      int threads, Key&& key) {
  ParallelFor(offsets.size() - 1, threads, [&](size_t group) {
    auto begin = rows->begin() + offsets[group];
    auto end = rows->begin() + offsets[group + 1];
    auto less = [&](uint32_t a, uint32_t b) { return key(a) < key(b); };
    if (!std::is_sorted(begin, end, less)) std::stable_sort(begin, end, less);
  });
}

// The columns `names` of `table`, in that order. Errors: NotFound with `what` as context.
Result<std::vector<const table::Column*>> KeyColumns(const table::Table& table,
                                                     const std::vector<std::string>& names,
                                                     const std::string& what);

// Numeric values of a value stream, as the window kernels take them.
struct Stream {
  std::vector<double> values;  // in Grouping order
  std::vector<uint8_t> valid;  // empty: all valid
};

// The values of `column` at rows `order`. Non-finite values count as nulls. A
// count reads only validity, so string expressions work for it too (their
// value slots read as 0). Without `with_values` only the validity is built
// (values stays empty): enough for kernels that only count.
Stream MakeStream(const table::Column& column, const std::vector<uint32_t>& order,
                  bool with_values = true);

}  // namespace keel::features
