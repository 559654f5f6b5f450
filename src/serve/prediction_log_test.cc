#include "serve/prediction_log.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "common/files.h"

namespace keel::serve {
namespace {

namespace fs = std::filesystem;
constexpr Timestamp kAllTime = std::numeric_limits<Timestamp>::max();

class TempFolder {
 public:
  TempFolder() {
    std::string pattern = (fs::temp_directory_path() / "keel-plog-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempFolder() {
    std::error_code error;
    fs::remove_all(path_, error);
  }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::shared_ptr<const std::vector<std::string>> Names() {
  static auto names =
      std::make_shared<const std::vector<std::string>>(std::vector<std::string>{"a", "b", "c"});
  return names;
}

PredictionRecord MakeRecord(int64_t index) {
  PredictionRecord record;
  record.request_id = "req-" + std::to_string(index);
  record.time = 1'700'000'000'000'000 + index;
  record.model = "delay";
  record.version = 3;
  record.variant = index % 2 == 0 ? "production" : "canary";
  record.entity_keys_json = R"({"origin":"SFO","n":)" + std::to_string(index) + "}";
  record.feature_names = Names();
  record.features = {static_cast<double>(index), 0.5, std::nan("")};
  record.output = index * 0.25;
  record.latency_us = 100 + index;
  record.fallback = index % 3 == 0 ? "baseline" : "";
  return record;
}

struct ReadBack {
  std::vector<PredictionRecord> records;
  PredictionLogReadStats stats;
};

ReadBack ReadAll(const std::string& dir, Timestamp since = std::numeric_limits<Timestamp>::min(),
                 Timestamp until = kAllTime) {
  ReadBack out;
  Result<PredictionLogReadStats> stats =
      ReadPredictionLog(dir, since, until, [&](const PredictionRecord& record) {
        out.records.push_back(record);
        return Status::Ok();
      });
  EXPECT_TRUE(stats.ok()) << stats.status().ToString();
  if (stats.ok()) out.stats = *stats;
  return out;
}

std::unique_ptr<PredictionLog> OpenLog(const std::string& dir, PredictionLogOptions options = {}) {
  Result<std::unique_ptr<PredictionLog>> log = PredictionLog::Open(dir, std::move(options));
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return log.ok() ? std::move(log).value() : nullptr;
}

TEST(PredictionLog, RoundTripsEveryFieldIncludingMissingFeatures) {
  TempFolder folder;
  auto log = OpenLog(folder.path());
  ASSERT_NE(log, nullptr);
  for (int64_t index = 0; index < 10; ++index) ASSERT_TRUE(log->Append(MakeRecord(index)));
  PredictionRecord bare;  // no features, no names, empty strings
  bare.request_id = "bare";
  bare.time = 5;
  bare.output = -1.5;
  ASSERT_TRUE(log->Append(std::move(bare)));
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->counters().written, 11);
  ASSERT_TRUE(log->Close().ok());

  ReadBack back = ReadAll(folder.path());
  EXPECT_EQ(back.stats.damaged_bytes, 0);
  ASSERT_EQ(back.records.size(), 11u);
  for (int64_t index = 0; index < 10; ++index) {
    const PredictionRecord& got = back.records[index];
    PredictionRecord want = MakeRecord(index);
    EXPECT_EQ(got.request_id, want.request_id);
    EXPECT_EQ(got.time, want.time);
    EXPECT_EQ(got.model, want.model);
    EXPECT_EQ(got.version, want.version);
    EXPECT_EQ(got.variant, want.variant);
    EXPECT_EQ(got.entity_keys_json, want.entity_keys_json);
    ASSERT_NE(got.feature_names, nullptr);
    EXPECT_EQ(*got.feature_names, *want.feature_names);
    ASSERT_EQ(got.features.size(), 3u);
    EXPECT_EQ(got.features[0], want.features[0]);
    EXPECT_EQ(got.features[1], 0.5);
    EXPECT_TRUE(std::isnan(got.features[2]));
    EXPECT_EQ(got.output, want.output);
    EXPECT_EQ(got.latency_us, want.latency_us);
    EXPECT_EQ(got.fallback, want.fallback);
  }
  // The names are stored once per segment and shared by its records.
  EXPECT_EQ(back.records[0].feature_names.get(), back.records[9].feature_names.get());
  EXPECT_EQ(back.records[10].request_id, "bare");
  EXPECT_EQ(back.records[10].feature_names, nullptr);
  EXPECT_TRUE(back.records[10].features.empty());
  EXPECT_EQ(back.records[10].output, -1.5);
}

TEST(PredictionLog, DistinctNameListsWithEqualContentAndOthersRoundTrip) {
  TempFolder folder;
  auto log = OpenLog(folder.path());
  for (int64_t index = 0; index < 50; ++index) {
    PredictionRecord record = MakeRecord(index);
    // A fresh vector per record, alternating between two contents.
    record.feature_names = std::make_shared<const std::vector<std::string>>(
        index % 2 == 0 ? std::vector<std::string>{"a", "b", "c"}
                       : std::vector<std::string>{"x", "y", "z"});
    ASSERT_TRUE(log->Append(std::move(record)));
  }
  ASSERT_TRUE(log->Close().ok());
  ReadBack back = ReadAll(folder.path());
  ASSERT_EQ(back.records.size(), 50u);
  for (int64_t index = 0; index < 50; ++index) {
    EXPECT_EQ((*back.records[index].feature_names)[0], index % 2 == 0 ? "a" : "x");
  }
}

TEST(PredictionLog, RejectsRecordsWhoseNamesDoNotMatchTheFeatures) {
  TempFolder folder;
  auto log = OpenLog(folder.path());
  PredictionRecord record = MakeRecord(1);
  record.features.push_back(1.0);
  EXPECT_FALSE(log->Append(std::move(record)));
  PredictionRecord unnamed = MakeRecord(2);
  unnamed.feature_names = nullptr;
  EXPECT_FALSE(log->Append(std::move(unnamed)));
  EXPECT_EQ(log->counters().rejected, 2);
  EXPECT_EQ(log->counters().appended, 0);
}

TEST(PredictionLog, ReadsOnlyTheTimeRangeAskedFor) {
  TempFolder folder;
  auto log = OpenLog(folder.path());
  for (int64_t index = 0; index < 100; ++index) ASSERT_TRUE(log->Append(MakeRecord(index)));
  ASSERT_TRUE(log->Close().ok());
  Timestamp base = MakeRecord(0).time;
  ReadBack back = ReadAll(folder.path(), base + 10, base + 20);
  ASSERT_EQ(back.records.size(), 10u);
  EXPECT_EQ(back.records.front().request_id, "req-10");
  EXPECT_EQ(back.records.back().request_id, "req-19");
  EXPECT_EQ(back.stats.out_of_range, 90);
}

TEST(PredictionLog, ConcurrentAppendsAreEachReadBackExactlyOnce) {
  TempFolder folder;
  PredictionLogOptions options;
  options.queue_capacity = 256;  // wraps around many times
  options.flush_interval = 1000;
  auto log = OpenLog(folder.path(), options);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 4000;
  std::vector<std::thread> threads;
  std::atomic<int64_t> refused{0};
  for (int thread = 0; thread < kThreads; ++thread) {
    threads.emplace_back([&, thread] {
      for (int index = 0; index < kPerThread; ++index) {
        PredictionRecord record = MakeRecord(thread * kPerThread + index);
        // Retry a full queue, so that every record goes in; a refused record
        // is left intact.
        while (!log->Append(std::move(record))) {
          refused.fetch_add(1);
          EXPECT_EQ(record.request_id, "req-" + std::to_string(thread * kPerThread + index));
          std::this_thread::yield();
        }
        if (index % 1000 == 999) {
          EXPECT_TRUE(log->Flush().ok());
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(log->Close().ok());
  PredictionLogCounters counters = log->counters();
  EXPECT_EQ(counters.appended, kThreads * kPerThread);
  EXPECT_EQ(counters.written, kThreads * kPerThread);
  EXPECT_EQ(counters.dropped, refused.load());

  ReadBack back = ReadAll(folder.path());
  EXPECT_EQ(back.stats.damaged_bytes, 0);
  ASSERT_EQ(back.records.size(), static_cast<size_t>(kThreads * kPerThread));
  std::set<std::string> seen;
  std::map<int, int> last_per_thread;
  for (const PredictionRecord& record : back.records) {
    EXPECT_TRUE(seen.insert(record.request_id).second) << record.request_id;
    int index = static_cast<int>(record.features[0]);
    // Each thread's records come back in the order it appended them.
    int thread = index / kPerThread;
    auto last = last_per_thread.find(thread);
    if (last != last_per_thread.end()) {
      EXPECT_LT(last->second, index);
    }
    last_per_thread[thread] = index;
    EXPECT_EQ(record.request_id, "req-" + std::to_string(index));
  }
}

TEST(PredictionLog, FullQueueDropsAndCountsWithoutBlocking) {
  TempFolder folder;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> writes{0};
  PredictionLogOptions options;
  options.queue_capacity = 16;
  options.before_write_for_testing = [&] {
    writes.fetch_add(1);
    released.wait();  // the writer is stuck (a slow disk) until the test releases it
  };
  auto log = OpenLog(folder.path(), options);
  ASSERT_TRUE(log->Append(MakeRecord(0)));
  // Wake the writer (Flush on the side cannot finish yet) and wait until it
  // holds record 0 and is stuck.
  auto flushed = std::async(std::launch::async, [&] { return log->Flush(); });
  for (int wait = 0; wait < 5000 && writes.load() == 0; ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(writes.load(), 1);

  constexpr int kBurst = 20000;
  int accepted = 0;
  auto start = std::chrono::steady_clock::now();
  std::chrono::nanoseconds slowest{0};
  for (int index = 1; index <= kBurst; ++index) {
    auto before = std::chrono::steady_clock::now();
    if (log->Append(MakeRecord(index))) ++accepted;
    slowest = std::max(slowest, std::chrono::steady_clock::now() - before);
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  // MakeRecord allocates; Append itself only moves. A blocking Append would
  // never return while the writer is stuck, so any bound proves the point.
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  std::printf("burst of %d appends into a full queue: %.1f ms, slowest %.1f us\n", kBurst,
              std::chrono::duration<double, std::milli>(elapsed).count(),
              std::chrono::duration<double, std::micro>(slowest).count());
  EXPECT_EQ(accepted, 16);  // the queue's capacity: the writer took none of them
  EXPECT_EQ(log->counters().dropped, kBurst - 16);
  EXPECT_EQ(log->queue_depth(), 16u);

  release.set_value();
  EXPECT_TRUE(flushed.get().ok());
  ASSERT_TRUE(log->Close().ok());
  EXPECT_EQ(log->counters().written, 17);
  ReadBack back = ReadAll(folder.path());
  ASSERT_EQ(back.records.size(), 17u);
  EXPECT_EQ(back.records[0].request_id, "req-0");
  EXPECT_EQ(back.records[16].request_id, "req-16");
}

TEST(PredictionLog, AppendAfterCloseDropsAndFlushFails) {
  TempFolder folder;
  auto log = OpenLog(folder.path());
  ASSERT_TRUE(log->Close().ok());
  EXPECT_FALSE(log->Append(MakeRecord(1)));
  EXPECT_EQ(log->counters().dropped, 1);
  EXPECT_EQ(log->Flush().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(log->Close().ok());
}

TEST(PredictionLog, OpenRejectsBadOptionsAndUnusableFolders) {
  TempFolder folder;
  PredictionLogOptions options;
  options.rotate_bytes = 0;
  EXPECT_EQ(PredictionLog::Open(folder.path(), options).status().code(),
            StatusCode::kInvalidArgument);
  options = {};
  options.queue_capacity = 0;
  EXPECT_EQ(PredictionLog::Open(folder.path(), options).status().code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(WriteFileAtomically(folder.Path("file"), "x").ok());
  Result<std::unique_ptr<PredictionLog>> opened = PredictionLog::Open(folder.Path("file"));
  EXPECT_EQ(opened.status().code(), StatusCode::kIoError);
  EXPECT_NE(opened.status().message().find("file"), std::string::npos);
  EXPECT_EQ(ListPredictionLogSegments(folder.Path("missing")).status().code(),
            StatusCode::kNotFound);
}

TEST(PredictionLog, RotatesBySizeAndReadsSegmentsInOrder) {
  TempFolder folder;
  PredictionLogOptions options;
  options.rotate_bytes = 4096;
  auto log = OpenLog(folder.path(), options);
  for (int64_t index = 0; index < 1000; ++index) {
    ASSERT_TRUE(log->Append(MakeRecord(index)));
    if (index % 100 == 99) {
      ASSERT_TRUE(log->Flush().ok());
    }
  }
  ASSERT_TRUE(log->Close().ok());
  Result<std::vector<std::string>> segments = ListPredictionLogSegments(folder.path());
  ASSERT_TRUE(segments.ok());
  EXPECT_GT(segments->size(), 10u);
  EXPECT_EQ(log->counters().segments, static_cast<int64_t>(segments->size()));
  for (const std::string& segment : *segments) {
    // A segment passes the limit by at most one record.
    EXPECT_LT(fs::file_size(segment), 4096u + 512u) << segment;
  }
  int64_t total = 0;
  for (const std::string& segment : *segments) total += fs::file_size(segment);
  EXPECT_EQ(total, log->counters().bytes);
  ReadBack back = ReadAll(folder.path());
  EXPECT_EQ(back.stats.segments, static_cast<int64_t>(segments->size()));
  ASSERT_EQ(back.records.size(), 1000u);
  for (int64_t index = 0; index < 1000; ++index) {
    ASSERT_EQ(back.records[index].request_id, "req-" + std::to_string(index));
    ASSERT_NE(back.records[index].feature_names, nullptr);  // names redefined per segment
  }
}

TEST(PredictionLog, NewWriterStartsANewSegmentNamedAfterTheNewest) {
  TempFolder folder;
  // A segment from the future (a clock that went back since).
  std::string future = folder.Path("predictions-29990101T000000.000000Z.klog");
  ASSERT_TRUE(WriteFileAtomically(future, "").ok());
  auto log = OpenLog(folder.path());
  ASSERT_TRUE(log->Append(MakeRecord(1)));
  ASSERT_TRUE(log->Close().ok());
  Result<std::vector<std::string>> segments = ListPredictionLogSegments(folder.path());
  ASSERT_TRUE(segments.ok());
  ASSERT_EQ(segments->size(), 2u);
  EXPECT_EQ((*segments)[0], future);
  EXPECT_EQ(fs::path((*segments)[1]).filename(), "predictions-29990101T000000.000001Z.klog");
  EXPECT_EQ(ReadAll(folder.path()).records.size(), 1u);
}

// Writes `count` records starting at `first` with a fresh log and closes it.
void WriteRecords(const std::string& dir, int64_t first, int64_t count) {
  auto log = OpenLog(dir);
  ASSERT_NE(log, nullptr);
  for (int64_t index = first; index < first + count; ++index) {
    ASSERT_TRUE(log->Append(MakeRecord(index)));
  }
  ASSERT_TRUE(log->Close().ok());
}

TEST(PredictionLog, TornTailKeepsCompleteRecordsAndTheNextWriterUsesANewSegment) {
  TempFolder folder;
  WriteRecords(folder.path(), 0, 20);
  Result<std::vector<std::string>> segments = ListPredictionLogSegments(folder.path());
  ASSERT_TRUE(segments.ok() && segments->size() == 1u);
  std::string first_segment = segments->front();
  // A crash in the middle of writing the last record.
  uintmax_t size = fs::file_size(first_segment);
  fs::resize_file(first_segment, size - 7);

  ReadBack back = ReadAll(folder.path());
  ASSERT_EQ(back.records.size(), 19u);
  EXPECT_EQ(back.records.back().request_id, "req-18");
  EXPECT_GT(back.stats.damaged_bytes, 0);
  ASSERT_EQ(back.stats.damage.size(), 1u);
  EXPECT_NE(back.stats.damage[0].find("incomplete frame"), std::string::npos)
      << back.stats.damage[0];
  int64_t torn = back.stats.damaged_bytes;

  WriteRecords(folder.path(), 100, 5);
  segments = ListPredictionLogSegments(folder.path());
  ASSERT_TRUE(segments.ok());
  ASSERT_EQ(segments->size(), 2u);
  EXPECT_EQ(segments->front(), first_segment);
  EXPECT_EQ(fs::file_size(first_segment), size - 7);  // never appended to again
  back = ReadAll(folder.path());
  ASSERT_EQ(back.records.size(), 24u);
  EXPECT_EQ(back.records[19].request_id, "req-100");
  EXPECT_EQ(back.stats.damaged_bytes, torn);
}

TEST(PredictionLog, GarbageAndFlippedBytesAreSkippedAndReported) {
  TempFolder folder;
  WriteRecords(folder.path(), 0, 30);
  std::string segment = ListPredictionLogSegments(folder.path())->front();
  std::string bytes = *ReadFileToString(segment);
  // Flip one byte inside record 10's payload, and append garbage at the end.
  size_t record_10 = bytes.find("req-10");
  ASSERT_NE(record_10, std::string::npos);
  bytes[record_10 + 2] ^= 0x20;
  std::string garbage(333, '\x5a');
  ASSERT_TRUE(WriteFileAtomically(segment, bytes + garbage).ok());

  ReadBack back = ReadAll(folder.path());
  ASSERT_EQ(back.records.size(), 29u);
  for (const PredictionRecord& record : back.records) EXPECT_NE(record.request_id, "req-10");
  EXPECT_EQ(back.records[10].request_id, "req-11");  // resynchronised on the next frame
  ASSERT_EQ(back.stats.damage.size(), 2u);
  EXPECT_NE(back.stats.damage[0].find("checksum mismatch"), std::string::npos);
  EXPECT_NE(back.stats.damage[1].find("333 bytes"), std::string::npos) << back.stats.damage[1];
}

TEST(PredictionLog, SegmentWithoutAHeaderIsReportedNotFatal) {
  TempFolder folder;
  WriteRecords(folder.path(), 0, 3);
  ASSERT_TRUE(
      WriteFileAtomically(folder.Path("predictions-20000101T000000.000000Z.klog"), "KEEL").ok());
  ReadBack back = ReadAll(folder.path());
  EXPECT_EQ(back.records.size(), 3u);
  EXPECT_EQ(back.stats.damaged_bytes, 4);
}

// A child process appends and flushes in a loop, telling the parent through a
// pipe how many records each returned Flush covers, until it is killed -9 at
// a random moment (mid-append, mid-write, mid-fsync or mid-rotation). Three
// rounds in one folder: each new writer carries on after the last one's tail.
TEST(PredictionLog, EveryFlushedRecordSurvivesSigkill) {
  TempFolder folder;
  std::srand(static_cast<unsigned>(::getpid()));
  std::vector<int64_t> flushed_per_round;
  for (int64_t round = 0; round < 3; ++round) {
    const int64_t first = round * 1'000'000;
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(pipe_fds[0]);
      PredictionLogOptions options;
      options.rotate_bytes = 64 << 10;  // rotations happen under the kill too
      options.flush_interval = 2000;
      Result<std::unique_ptr<PredictionLog>> log = PredictionLog::Open(folder.path(), options);
      if (!log.ok()) ::_exit(2);
      for (int64_t index = first;; ++index) {
        while (!(*log)->Append(MakeRecord(index))) std::this_thread::yield();
        if (index % 50 == 49) {
          if (!(*log)->Flush().ok()) ::_exit(3);
          int64_t flushed = index + 1 - first;
          if (::write(pipe_fds[1], &flushed, sizeof(flushed)) != sizeof(flushed)) ::_exit(4);
        }
      }
    }
    ::close(pipe_fds[1]);
    int64_t flushed = 0;
    int64_t reported = 0;
    while (flushed < 1000) {
      ASSERT_EQ(::read(pipe_fds[0], &reported, sizeof(reported)),
                static_cast<ssize_t>(sizeof(reported)));
      flushed = reported;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(std::rand() % 20000));
    ::kill(child, SIGKILL);
    int wait_status = 0;
    ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wait_status)) << wait_status;
    // Every acknowledgement in the pipe was sent after its Flush returned.
    while (::read(pipe_fds[0], &reported, sizeof(reported)) == sizeof(reported)) {
      flushed = reported;
    }
    ::close(pipe_fds[0]);
    flushed_per_round.push_back(flushed);
  }

  ReadBack back = ReadAll(folder.path());
  std::set<std::string> present;
  for (const PredictionRecord& record : back.records) {
    EXPECT_TRUE(present.insert(record.request_id).second) << record.request_id;
  }
  for (int64_t round = 0; round < 3; ++round) {
    for (int64_t index = 0; index < flushed_per_round[round]; ++index) {
      int64_t id = round * 1'000'000 + index;
      ASSERT_TRUE(present.count("req-" + std::to_string(id))) << id;
    }
    std::printf("round %lld: killed after %lld flushed records\n", static_cast<long long>(round),
                static_cast<long long>(flushed_per_round[round]));
  }
  std::printf("%zu records present, %lld damaged bytes in %lld places\n", back.records.size(),
              static_cast<long long>(back.stats.damaged_bytes),
              static_cast<long long>(back.stats.damaged_stretches));
}

// A real write failure: the child's file size limit (RLIMIT_FSIZE) makes
// write(2) fail with EFBIG; the records are counted as failed, Flush reports
// the error, and the log goes on in a new segment once writes work again.
TEST(PredictionLog, WriteErrorsAreCountedAndReportedByFlush) {
  TempFolder folder;
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    Result<std::unique_ptr<PredictionLog>> log = PredictionLog::Open(folder.path());
    if (!log.ok()) ::_exit(2);
    struct rlimit limit = {2000, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(3);
    for (int64_t index = 0; index < 100; ++index) (*log)->Append(MakeRecord(index));
    Status flushed = (*log)->Flush();
    if (flushed.ok() || flushed.code() != StatusCode::kIoError) ::_exit(4);
    PredictionLogCounters counters = (*log)->counters();
    if (counters.failed == 0 || counters.write_errors == 0) ::_exit(5);
    if (counters.written + counters.failed != 100) ::_exit(6);
    if (!(*log)->Flush().ok()) ::_exit(7);  // the error was reported once
    ::_exit(0);
  }
  int wait_status = 0;
  ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
  ASSERT_TRUE(WIFEXITED(wait_status));
  EXPECT_EQ(WEXITSTATUS(wait_status), 0);
  ReadBack back = ReadAll(folder.path());
  EXPECT_GT(back.records.size(), 0u);
  EXPECT_LT(back.records.size(), 100u);
}

// Not a benchmark with a peer (bench/ has those): prints what Append costs the
// request thread and what the writer sustains, and checks nothing is lost.
TEST(PredictionLog, AppendCostAndWriterThroughput) {
  TempFolder folder;
  constexpr int kRecords = 100000;
  PredictionLogOptions options;
  options.queue_capacity = kRecords;  // room for all: measure Append, not drops
  auto log = OpenLog(folder.path(), options);
  std::vector<PredictionRecord> records;
  records.reserve(kRecords);
  for (int index = 0; index < kRecords; ++index) records.push_back(MakeRecord(index));
  auto start = std::chrono::steady_clock::now();
  for (PredictionRecord& record : records) ASSERT_TRUE(log->Append(std::move(record)));
  auto appended = std::chrono::steady_clock::now();
  ASSERT_TRUE(log->Close().ok());
  auto closed = std::chrono::steady_clock::now();
  EXPECT_EQ(log->counters().written, kRecords);
  EXPECT_EQ(log->counters().dropped, 0);
  std::printf(
      "Append: %.0f ns per record on the caller's thread; all %d written and synced after "
      "%.0f ms (%.0f records/s), %.0f bytes per record\n",
      std::chrono::duration<double, std::nano>(appended - start).count() / kRecords, kRecords,
      std::chrono::duration<double, std::milli>(closed - start).count(),
      kRecords / std::chrono::duration<double>(closed - start).count(),
      static_cast<double>(log->counters().bytes) / kRecords);
}

}  // namespace
}  // namespace keel::serve
