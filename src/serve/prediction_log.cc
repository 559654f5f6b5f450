#include "serve/prediction_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "common/hash.h"
#include "serve/prediction_log_format.h"

namespace keel::serve {
namespace {

using log_format::AppendNamesFrame;
using log_format::AppendRecordFrame;
using log_format::JoinNames;
using log_format::kNoNames;
using log_format::NamesList;
using log_format::SegmentHeader;
using log_format::SegmentName;
using log_format::SegmentTime;

// A batch is written with one write(2) once it holds this many bytes.
constexpr size_t kBatchBytes = 1 << 20;
constexpr size_t kBatchRecords = 4096;

std::string ErrnoText() { return std::strerror(errno); }

Status WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(ErrnoText());
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("opening " + dir + ": " + ErrnoText());
  int rc = ::fsync(fd);
  std::string error = rc != 0 ? ErrnoText() : "";
  ::close(fd);
  if (rc != 0) return IoError("syncing " + dir + ": " + error);
  return Status::Ok();
}

}  // namespace

// The writer thread's state: the open segment and what it has defined.
struct PredictionLog::Writer {
  int fd = -1;
  std::string path;
  int64_t segment_bytes = 0;
  std::string buffer;  // the batch being encoded, reused
  // Names lists defined in this segment: by the identity of the caller's
  // vector (the common case: one vector per model), then by content.
  std::unordered_map<const void*, uint32_t> ids_by_pointer;
  std::vector<NamesList> kept_alive;  // pins the pointers
  std::unordered_map<uint64_t, std::vector<uint32_t>> ids_by_hash;
  std::vector<NamesList> names_by_id;

  ~Writer() {
    if (fd >= 0) ::close(fd);
  }

  // Creates a new segment named after `now` and every existing segment.
  Status OpenSegment(const std::string& dir) {
    Timestamp time = WallClockNow();
    Result<std::vector<std::string>> existing = ListPredictionLogSegments(dir);
    if (!existing.ok()) return existing.status();
    if (!existing->empty()) {
      std::optional<Timestamp> newest =
          SegmentTime(std::filesystem::path(existing->back()).filename().string());
      if (newest && *newest >= time) time = *newest + 1;
    }
    for (int attempt = 0;; ++attempt) {
      path = dir + "/" + SegmentName(time);
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) break;
      // Another writer in the same folder took this name in the same microsecond.
      if (errno != EEXIST || attempt > 1000) {
        return IoError("creating segment " + path + ": " + ErrnoText());
      }
      ++time;
    }
    std::string header = SegmentHeader();
    Status status = WriteAll(fd, header);
    if (status.ok()) status = SyncDirectory(dir);
    if (!status.ok()) {
      CloseSegment(false).ok();
      return status.WithContext("creating segment " + path);
    }
    segment_bytes = static_cast<int64_t>(header.size());
    ids_by_pointer.clear();
    kept_alive.clear();
    ids_by_hash.clear();
    names_by_id.clear();
    return Status::Ok();
  }

  Status CloseSegment(bool sync) {
    if (fd < 0) return Status::Ok();
    Status status;
    if (sync && ::fdatasync(fd) != 0) status = IoError("syncing " + path + ": " + ErrnoText());
    ::close(fd);
    fd = -1;
    return status;
  }

  // The id of `names` in this segment; defines it (appending a names frame to
  // `buffer`) the first time.
  uint32_t NamesId(const NamesList& names) {
    auto by_pointer = ids_by_pointer.find(names.get());
    if (by_pointer != ids_by_pointer.end()) return by_pointer->second;
    std::string joined = JoinNames(*names);
    uint64_t hash = Hash64(joined);
    uint32_t id = kNoNames;
    for (uint32_t candidate : ids_by_hash[hash]) {
      if (*names_by_id[candidate] == *names) id = candidate;
    }
    if (id == kNoNames) {
      id = static_cast<uint32_t>(names_by_id.size());
      names_by_id.push_back(names);
      ids_by_hash[hash].push_back(id);
      AppendNamesFrame(&buffer, id, static_cast<uint32_t>(names->size()), joined);
    }
    // A caller that makes a fresh vector per request would pin them all.
    if (kept_alive.size() >= 1024) {
      ids_by_pointer.clear();
      kept_alive.clear();
    }
    ids_by_pointer.emplace(names.get(), id);
    kept_alive.push_back(names);
    return id;
  }

  void Encode(const PredictionRecord& record) {
    uint32_t names_id = record.feature_names ? NamesId(record.feature_names) : kNoNames;
    AppendRecordFrame(&buffer, record, names_id);
  }
};

PredictionLog::PredictionLog(std::string dir, PredictionLogOptions options)
    : dir_(std::move(dir)), options_(std::move(options)), writer_(std::make_unique<Writer>()) {
  size_t capacity = std::bit_ceil(std::max<size_t>(options_.queue_capacity, 2));
  cells_ = std::make_unique<Cell[]>(capacity);
  for (size_t i = 0; i < capacity; ++i) cells_[i].sequence.store(i, std::memory_order_relaxed);
  mask_ = capacity - 1;
}

Result<std::unique_ptr<PredictionLog>> PredictionLog::Open(const std::string& dir,
                                                           PredictionLogOptions options) {
  if (dir.empty()) return InvalidArgument("prediction log: empty directory");
  if (options.queue_capacity == 0 || options.queue_capacity > (size_t{1} << 26)) {
    return InvalidArgument("prediction log: queue_capacity must be in [1, 2^26]");
  }
  if (options.rotate_bytes <= 0) return InvalidArgument("prediction log: rotate_bytes must be > 0");
  if (options.flush_interval <= 0) {
    return InvalidArgument("prediction log: flush_interval must be > 0");
  }
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return IoError("prediction log: creating " + dir + ": " + error.message());
  std::unique_ptr<PredictionLog> log(new PredictionLog(dir, std::move(options)));
  RETURN_IF_ERROR(log->StartSegment());
  log->thread_ = std::thread([raw = log.get()] { raw->WriterLoop(); });
  return log;
}

PredictionLog::~PredictionLog() { Close().ok(); }

bool PredictionLog::Append(PredictionRecord&& record) {
  size_t names = record.feature_names ? record.feature_names->size() : 0;
  if (names != record.features.size()) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  active_appenders_.fetch_add(1, std::memory_order_acq_rel);
  if (closing_.load(std::memory_order_acquire)) {
    active_appenders_.fetch_sub(1, std::memory_order_acq_rel);
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  uint64_t position = enqueue_position_.load(std::memory_order_relaxed);
  Cell* cell = nullptr;
  while (true) {
    cell = &cells_[position & mask_];
    uint64_t sequence = cell->sequence.load(std::memory_order_acquire);
    int64_t difference = static_cast<int64_t>(sequence) - static_cast<int64_t>(position);
    if (difference == 0) {
      if (enqueue_position_.compare_exchange_weak(position, position + 1,
                                                  std::memory_order_relaxed)) {
        break;
      }
    } else if (difference < 0) {
      // The cell still holds a record from one lap ago: the queue is full.
      active_appenders_.fetch_sub(1, std::memory_order_acq_rel);
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    } else {
      position = enqueue_position_.load(std::memory_order_relaxed);
    }
  }
  cell->record = std::move(record);
  cell->sequence.store(position + 1, std::memory_order_release);
  appended_.fetch_add(1, std::memory_order_relaxed);
  active_appenders_.fetch_sub(1, std::memory_order_acq_rel);
  // Wake the writer early, once per half queue of appends, so that a burst is
  // written before it overflows. Notified without the mutex: a missed wake-up
  // costs at most one flush_interval.
  if (((position + 1) & (mask_ >> 1)) == 0) writer_wake_.notify_one();
  return true;
}

void PredictionLog::TakeBatch(std::vector<PredictionRecord>* batch) {
  uint64_t position = dequeue_position_.load(std::memory_order_relaxed);
  while (batch->size() < kBatchRecords) {
    Cell* cell = &cells_[position & mask_];
    uint64_t sequence = cell->sequence.load(std::memory_order_acquire);
    if (sequence != position + 1) {
      // Empty, or a producer has claimed the cell and is filling it: wait for
      // it, since a flush may be waiting for this position.
      if (position >= enqueue_position_.load(std::memory_order_acquire)) break;
      std::this_thread::yield();
      continue;
    }
    batch->push_back(std::move(cell->record));
    cell->sequence.store(position + mask_ + 1, std::memory_order_release);
    ++position;
  }
  dequeue_position_.store(position, std::memory_order_release);
}

void PredictionLog::RecordWriteError(const Status& error) {
  write_errors_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mutex_);
  last_write_error_ = error;
}

Status PredictionLog::StartSegment() {
  Status opened = writer_->OpenSegment(dir_);
  if (!opened.ok()) return opened.WithContext("prediction log");
  segments_.fetch_add(1, std::memory_order_relaxed);
  bytes_.fetch_add(writer_->segment_bytes, std::memory_order_relaxed);
  return Status::Ok();
}

void PredictionLog::WritePending(int64_t records) {
  Writer& writer = *writer_;
  if (writer.buffer.empty()) return;
  Status status = WriteAll(writer.fd, writer.buffer);
  if (status.ok()) {
    written_.fetch_add(records, std::memory_order_relaxed);
    bytes_.fetch_add(static_cast<int64_t>(writer.buffer.size()), std::memory_order_relaxed);
    writer.segment_bytes += static_cast<int64_t>(writer.buffer.size());
  } else {
    failed_.fetch_add(records, std::memory_order_relaxed);
    RecordWriteError(status.WithContext("writing " + writer.path));
    // The segment may now end in a torn frame: nothing more goes into it.
    writer.CloseSegment(false).ok();
  }
  writer.buffer.clear();
}

void PredictionLog::WriteBatch(const std::vector<PredictionRecord>& batch) {
  Writer& writer = *writer_;
  writer.buffer.clear();
  int64_t pending = 0;
  for (size_t index = 0; index < batch.size(); ++index) {
    if (writer.fd < 0) {
      // After a failed write or a rotation; names are defined anew per segment.
      Status started = StartSegment();
      if (!started.ok()) {
        failed_.fetch_add(static_cast<int64_t>(batch.size() - index), std::memory_order_relaxed);
        RecordWriteError(started);
        return;
      }
    }
    writer.Encode(batch[index]);
    ++pending;
    int64_t segment_size = writer.segment_bytes + static_cast<int64_t>(writer.buffer.size());
    if (writer.buffer.size() >= kBatchBytes || segment_size >= options_.rotate_bytes) {
      WritePending(pending);
      pending = 0;
      if (writer.fd >= 0 && writer.segment_bytes >= options_.rotate_bytes) {
        Status closed = writer.CloseSegment(options_.fsync);
        if (!closed.ok()) RecordWriteError(closed);
      }
    }
  }
  WritePending(pending);
}

void PredictionLog::WriterLoop() {
  std::vector<PredictionRecord> batch;
  batch.reserve(kBatchRecords);
  const auto interval = std::chrono::microseconds(options_.flush_interval);
  const size_t wake_depth = (mask_ + 1) / 2;
  while (true) {
    bool stopping = closing_.load(std::memory_order_acquire);
    // After closing_ is set no Append starts; wait out those already inside.
    while (stopping && active_appenders_.load(std::memory_order_acquire) != 0) {
      std::this_thread::yield();
    }
    uint64_t flush_target = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      flush_target = flush_target_;
      wake_requested_ = false;
    }
    // Everything queued now, in batches of at most kBatchRecords.
    while (true) {
      batch.clear();
      TakeBatch(&batch);
      if (batch.empty()) break;
      if (options_.before_write_for_testing) options_.before_write_for_testing();
      WriteBatch(batch);
    }
    // (batch.clear() above frees the records' strings here, on this thread.)
    uint64_t taken = dequeue_position_.load(std::memory_order_relaxed);
    bool flush_due = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      flush_due = durable_position_ < taken && (durable_position_ < flush_target || stopping);
    }
    if (flush_due && options_.fsync && writer_->fd >= 0 && ::fdatasync(writer_->fd) != 0) {
      RecordWriteError(IoError("syncing " + writer_->path + ": " + ErrnoText()));
    }
    if (stopping) {
      Status closed = writer_->CloseSegment(false);
      if (!closed.ok()) RecordWriteError(closed);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (flush_due) durable_position_ = taken;
      if (stopping) stopped_ = true;
    }
    flushed_.notify_all();
    if (stopping) return;
    std::unique_lock<std::mutex> lock(mutex_);
    writer_wake_.wait_for(lock, interval, [&] {
      return wake_requested_ || flush_target_ > durable_position_ ||
             closing_.load(std::memory_order_acquire) || queue_depth() >= wake_depth;
    });
  }
}

Status PredictionLog::Flush() {
  uint64_t target = enqueue_position_.load(std::memory_order_acquire);
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopped_) return FailedPrecondition("prediction log " + dir_ + " is closed");
  flush_target_ = std::max(flush_target_, target);
  wake_requested_ = true;
  writer_wake_.notify_one();
  flushed_.wait(lock, [&] { return durable_position_ >= target || stopped_; });
  int64_t errors = write_errors_.load(std::memory_order_relaxed);
  if (errors != errors_seen_by_flush_) {
    errors_seen_by_flush_ = errors;
    return last_write_error_;
  }
  if (durable_position_ < target) {
    return FailedPrecondition("prediction log " + dir_ + " closed during a flush");
  }
  return Status::Ok();
}

Status PredictionLog::Close() {
  std::lock_guard<std::mutex> close_lock(close_mutex_);
  if (closed_) return close_status_;
  closed_ = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closing_.store(true, std::memory_order_release);
    wake_requested_ = true;
  }
  writer_wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t errors = write_errors_.load(std::memory_order_relaxed);
  if (errors != errors_seen_by_flush_) {
    errors_seen_by_flush_ = errors;
    close_status_ = last_write_error_;
  }
  return close_status_;
}

PredictionLogCounters PredictionLog::counters() const {
  PredictionLogCounters counters;
  counters.appended = appended_.load(std::memory_order_relaxed);
  counters.dropped = dropped_.load(std::memory_order_relaxed);
  counters.rejected = rejected_.load(std::memory_order_relaxed);
  counters.written = written_.load(std::memory_order_relaxed);
  counters.failed = failed_.load(std::memory_order_relaxed);
  counters.bytes = bytes_.load(std::memory_order_relaxed);
  counters.segments = segments_.load(std::memory_order_relaxed);
  counters.write_errors = write_errors_.load(std::memory_order_relaxed);
  return counters;
}

size_t PredictionLog::queue_depth() const {
  uint64_t enqueued = enqueue_position_.load(std::memory_order_relaxed);
  uint64_t dequeued = dequeue_position_.load(std::memory_order_relaxed);
  return enqueued > dequeued ? static_cast<size_t>(enqueued - dequeued) : 0;
}

}  // namespace keel::serve
