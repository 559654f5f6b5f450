#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace keel::serve {

// One prediction as the log keeps it (DESIGN.md, "Serving"): enough to monitor
// the model, join labels that arrive later, and replay the request.
struct PredictionRecord {
  std::string request_id;
  Timestamp time = 0;  // when the request arrived (UTC µs)
  std::string model;
  int64_t version = 0;
  std::string variant;           // rollout variant ("production", "canary", ...); may be empty
  std::string entity_keys_json;  // the request's entity keys as a JSON object
  // Names of `features`, in order. Shared because they repeat for every
  // prediction of a model: a handler passes the model's one vector. Null
  // only when `features` is empty.
  std::shared_ptr<const std::vector<std::string>> feature_names;
  std::vector<double> features;  // NaN = missing
  double output = 0;
  int64_t latency_us = 0;
  std::string
      fallback;  // empty: none; else what answered instead ("baseline", "defaults", "error")
};

// How a PredictionLog writes.
struct PredictionLogOptions {
  // Records that may wait for the writer; rounded up to a power of two. When
  // the queue is full, Append drops the record (and counts it).
  size_t queue_capacity = 16384;
  // A segment that reaches this size is closed and a new one started.
  int64_t rotate_bytes = 64 << 20;
  // The longest a record waits in the queue before it is written to the file
  // (where it survives a crash of the process, not of the machine).
  Duration flush_interval = 100 * 1000;
  // Flush(), rotation and Close() fdatasync the segment (survives power loss).
  bool fsync = true;
  // Test hook: called on the writer thread before each batch is written.
  std::function<void()> before_write_for_testing;
};

// What a PredictionLog has done so far; every field only grows.
struct PredictionLogCounters {
  int64_t appended = 0;      // records Append accepted
  int64_t dropped = 0;       // records Append refused: queue full or log closed
  int64_t rejected = 0;      // records Append refused as malformed (names vs features sizes)
  int64_t written = 0;       // records written to a segment
  int64_t failed = 0;        // accepted records lost to a write error
  int64_t bytes = 0;         // bytes written to segments, headers included
  int64_t segments = 0;      // segments created
  int64_t write_errors = 0;  // failed writes, fsyncs or segment creations
};

// The prediction log: an append-only, crash-safe, rotated log of every
// prediction, written off the request path.
//
// Append moves the record into a bounded lock-free queue and returns at once;
// it never blocks and never allocates (when the queue is full the record is
// dropped and counted). One writer thread drains the queue in batches, encodes
// the records and appends them to the current segment file in `dir`.
//
// On disk: files "predictions-YYYYMMDDTHHMMSS.ffffffZ.klog" whose names sort
// in creation order (a new segment is named after the newest existing one even
// if the clock went back). Each segment starts with a header and holds framed
// entries (a marker, a checksum of the rest, a length): a record, or a list of
// feature names that the segment's later records refer to by number. A crash
// leaves at most a torn last frame, which the reader detects and skips; a new
// PredictionLog never appends to an existing segment, so no record is ever
// written after a torn one.
//
// From a request handler, once the answer is known:
//   PredictionRecord record;
//   record.request_id = id; record.time = arrived; record.model = "delay"; ...
//   record.feature_names = model_feature_names;  // the model's shared vector
//   record.features = std::move(feature_vector);
//   log->Append(std::move(record));  // false: dropped and counted; go on answering
//
// Thread-safety: Append, Flush, counters and queue_depth may be called from
// any number of threads at once. Close may be called from any thread, and
// more than once (later calls return the first one's result); Append after
// Close drops.
class PredictionLog {
 public:
  // Creates `dir` if missing and starts a new segment in it.
  // Errors: InvalidArgument for bad options; IoError when the folder or the
  // segment cannot be created.
  static Result<std::unique_ptr<PredictionLog>> Open(const std::string& dir,
                                                     PredictionLogOptions options = {});
  // Closes (see Close), ignoring its status.
  ~PredictionLog();
  PredictionLog(const PredictionLog&) = delete;
  PredictionLog& operator=(const PredictionLog&) = delete;

  // Queues `record` for writing, moving from it. Returns false, counting the
  // record and leaving it as it was, when the queue is full or the log is
  // closed (dropped), or when `features` and `feature_names` differ in size,
  // null names counting as none (rejected). Never blocks, never allocates.
  bool Append(PredictionRecord&& record);

  // Returns once every record accepted by an Append that returned before this
  // call is written to its segment (and fdatasynced with options.fsync).
  // Errors: IoError with the last write error when any write failed since the
  // previous Flush (those records are counted in `failed`); FailedPrecondition
  // after Close.
  Status Flush();

  // Writes every accepted record, syncs and closes the segment and stops the
  // writer. Errors: as Flush, for the writes since the last Flush.
  Status Close();

  PredictionLogCounters counters() const;
  // Records accepted but not yet taken by the writer.
  size_t queue_depth() const;
  const std::string& dir() const { return dir_; }

 private:
  struct Writer;  // the writer thread's state; defined in the .cc
  PredictionLog(std::string dir, PredictionLogOptions options);
  void WriterLoop();
  // Writer thread: encodes `batch` into the current segment, starting and
  // rotating segments as needed.
  void WriteBatch(const std::vector<PredictionRecord>& batch);
  // Writer thread: writes the encoded buffer, which holds `records` records.
  void WritePending(int64_t records);
  Status StartSegment();
  void RecordWriteError(const Status& error);
  // Moves the published records at the head of the queue into `batch`.
  void TakeBatch(std::vector<PredictionRecord>* batch);

  struct Cell {
    std::atomic<uint64_t> sequence;
    PredictionRecord record;
  };

  const std::string dir_;
  const PredictionLogOptions options_;

  // The bounded multi-producer queue (Vyukov's): a producer claims a position
  // by CAS on enqueue_position_, fills the cell and publishes it by storing
  // position + 1 into its sequence; the writer alone consumes.
  std::unique_ptr<Cell[]> cells_;
  uint64_t mask_ = 0;
  alignas(64) std::atomic<uint64_t> enqueue_position_{0};
  alignas(64) std::atomic<uint64_t> dequeue_position_{0};  // written by the writer only
  // Producers inside Append; Close waits for them before the last drain.
  alignas(64) std::atomic<int64_t> active_appenders_{0};
  std::atomic<bool> closing_{false};

  std::atomic<int64_t> appended_{0};
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> rejected_{0};
  std::atomic<int64_t> written_{0};
  std::atomic<int64_t> failed_{0};
  std::atomic<int64_t> bytes_{0};
  std::atomic<int64_t> segments_{0};
  std::atomic<int64_t> write_errors_{0};

  std::unique_ptr<Writer> writer_;  // touched by the writer thread only (and Open)

  // Wakes the writer and tells flushers what it has made durable.
  mutable std::mutex mutex_;
  std::condition_variable writer_wake_;
  std::condition_variable flushed_;
  bool wake_requested_ = false;       // GUARDED_BY(mutex_)
  uint64_t flush_target_ = 0;         // GUARDED_BY(mutex_): a queue position
  uint64_t durable_position_ = 0;     // GUARDED_BY(mutex_): positions below are written
  bool stopped_ = false;              // GUARDED_BY(mutex_): the writer has exited
  int64_t errors_seen_by_flush_ = 0;  // GUARDED_BY(mutex_)
  Status last_write_error_;           // GUARDED_BY(mutex_)
  bool closed_ = false;               // GUARDED_BY(close_mutex_)
  Status close_status_;               // GUARDED_BY(close_mutex_)
  std::mutex close_mutex_;
  std::thread thread_;
};

// Where a repository keeps its prediction log: <repo_root>/.keel/predictions.
std::string DefaultPredictionLogDir(const std::string& repo_root);

// What reading a log found.
struct PredictionLogReadStats {
  int64_t segments = 0;       // segment files read
  int64_t records = 0;        // records handed to the callback
  int64_t out_of_range = 0;   // intact records outside [since, until)
  int64_t damaged_bytes = 0;  // bytes skipped: torn tails, garbage, bad checksums
  int64_t damaged_stretches = 0;
  // One line per damaged stretch (the first 100): "<file>: <n> bytes at offset <o>: <why>".
  std::vector<std::string> damage;
};

// The segment files of the log in `dir`, full paths in name (= time) order.
// Errors: NotFound when `dir` does not exist; IoError when it cannot be read.
Result<std::vector<std::string>> ListPredictionLogSegments(const std::string& dir);

// Calls `visit` for every intact record of the log in `dir` whose time is in
// [since, until): segments in order, records in the order they were appended
// (time order up to the reordering of concurrent requests). Damage is skipped
// and reported in the stats, never an error; a segment still being written
// may show an incomplete last record as damage. A non-OK status from `visit`
// stops the read and is returned. Records of one segment share their
// feature_names vectors. Errors: as ListPredictionLogSegments; IoError when a
// segment cannot be read.
Result<PredictionLogReadStats> ReadPredictionLog(
    const std::string& dir, Timestamp since, Timestamp until,
    const std::function<Status(const PredictionRecord&)>& visit);

}  // namespace keel::serve
