// The contract every OnlineStore implementation passes. Memory and RocksDB
// run everywhere; Redis and Redis Cluster run against the servers
// scripts/services starts (KEEL_TEST_REDIS_URL, KEEL_TEST_REDIS_CLUSTER_URL;
// the test fails, never skips, when they are unreachable).
#include "store/online_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

namespace keel::store {
namespace {

std::string Env(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// A fresh project name per store, so runs and tests never see each other's keys.
std::string FreshProject() {
  static std::atomic<int> counter{0};
  return "test" + std::to_string(::getpid()) + "_" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + "_" +
         std::to_string(counter++);
}

struct Backend {
  std::string name;
  std::function<Result<std::unique_ptr<OnlineStore>>(const std::string& project)> open;
};

void PrintTo(const Backend& backend, std::ostream* os) { *os << backend.name; }

std::string TempDir() {
  auto dir = std::filesystem::temp_directory_path() / ("keel_store_" + FreshProject());
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::vector<Backend> Backends() {
  return {
      {"memory",
       [](const std::string& project) -> Result<std::unique_ptr<OnlineStore>> {
         return NewMemoryStore(project);
       }},
      {"rocksdb",
       [](const std::string& project) { return OpenRocksDbStore(TempDir() + "/db", project); }},
      {"redis",
       [](const std::string& project) {
         return OpenRedisStore(Env("KEEL_TEST_REDIS_URL", "redis://127.0.0.1:6390"), project,
                               false);
       }},
      {"redis_cluster",
       [](const std::string& project) {
         return OpenRedisStore(
             Env("KEEL_TEST_REDIS_CLUSTER_URL", "redis://127.0.0.1:7001,127.0.0.1:7002"), project,
             true);
       }},
  };
}

class StoreContract : public testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<OnlineStore>> opened = GetParam().open(FreshProject());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  std::optional<std::string> ReadOne(std::string_view entity, std::string_view view) {
    std::vector<std::optional<std::string>> values;
    StoreKey key{entity, view};
    Status status = store_->Read(std::span(&key, 1), &values);
    EXPECT_TRUE(status.ok()) << status.ToString();
    return values.empty() ? std::nullopt : values[0];
  }

  std::unique_ptr<OnlineStore> store_;
};

TEST_P(StoreContract, ReadsWhatWasWrittenAndNothingElse) {
  std::vector<StoreEntry> entries = {
      {{"e1", "v@1"}, "a"}, {{"e1", "v@2"}, "b"}, {{"e2", "v@1"}, "c"}, {{"e1", "w@1"}, "d"}};
  ASSERT_TRUE(store_->Write(entries).ok());
  EXPECT_EQ(ReadOne("e1", "v@1"), "a");
  EXPECT_EQ(ReadOne("e1", "v@2"), "b");  // two versions side by side
  EXPECT_EQ(ReadOne("e2", "v@1"), "c");
  EXPECT_EQ(ReadOne("e1", "w@1"), "d");
  EXPECT_EQ(ReadOne("e3", "v@1"), std::nullopt);
  EXPECT_EQ(ReadOne("e1", "v@3"), std::nullopt);
  EXPECT_EQ(ReadOne("e1", "v"), std::nullopt);
}

TEST_P(StoreContract, BatchReadKeepsOrderAndMarksMissing) {
  std::vector<std::string> entities, values;
  for (int i = 0; i < 300; ++i) {
    entities.push_back("entity-" + std::to_string(i));
    values.push_back(std::string(static_cast<size_t>(i % 17), static_cast<char>('a' + i % 26)));
  }
  std::vector<StoreEntry> entries;
  for (int i = 0; i < 300; i += 2) entries.push_back({{entities[i], "view@abc"}, values[i]});
  ASSERT_TRUE(store_->Write(entries).ok());
  std::vector<StoreKey> keys;
  for (int i = 299; i >= 0; --i) keys.push_back({entities[i], "view@abc"});
  std::vector<std::optional<std::string>> read;
  ASSERT_TRUE(store_->Read(keys, &read).ok());
  ASSERT_EQ(read.size(), 300u);
  for (int j = 0; j < 300; ++j) {
    int i = 299 - j;
    if (i % 2 == 0) {
      EXPECT_EQ(read[j], values[i]) << i;
    } else {
      EXPECT_EQ(read[j], std::nullopt) << i;
    }
  }
}

// ReadViews gives what Read gives, in key order, absent keys as nullopt; a
// read from inside its callback (the thread's buffers in use) works too, and
// the outer views stay intact.
TEST_P(StoreContract, ReadViewsEqualsReadAndNests) {
  std::vector<StoreEntry> entries;
  std::vector<std::string> names, values;
  for (int i = 0; i < 40; ++i) {
    names.push_back("entity-" + std::to_string(i));
    values.push_back(
        std::string(static_cast<size_t>(100 + i * 37), static_cast<char>('a' + i % 26)));
  }
  for (int i = 0; i < 40; i += 3) entries.push_back({{names[i], "v@1"}, values[i]});
  ASSERT_TRUE(store_->Write(entries).ok());
  std::vector<StoreKey> keys;
  for (int i = 39; i >= 0; --i) keys.push_back({names[i], "v@1"});
  keys.push_back({names[3], "v@1"});  // a key twice (two uses of one view and entity)
  keys.push_back({names[4], "v@1"});
  keys.push_back({names[4], "v@1"});
  std::vector<std::optional<std::string>> expected;
  ASSERT_TRUE(store_->Read(keys, &expected).ok());
  ASSERT_EQ(expected.size(), keys.size());
  EXPECT_EQ(expected[40], values[3]);
  EXPECT_EQ(expected[41], std::nullopt);
  EXPECT_EQ(expected[42], std::nullopt);
  int calls = 0;
  Status status =
      store_->ReadViews(keys, [&](std::span<const std::optional<std::string_view>> views) {
        ++calls;
        EXPECT_EQ(views.size(), keys.size());
        // A nested read of other keys.
        std::vector<StoreKey> inner = {{names[0], "v@1"}, {names[1], "v@1"}};
        Status nested = store_->ReadViews(
            inner, [&](std::span<const std::optional<std::string_view>> inner_views) {
              EXPECT_EQ(inner_views[0], std::optional<std::string_view>(values[0]));
              EXPECT_EQ(inner_views[1], std::nullopt);
              return Status::Ok();
            });
        EXPECT_TRUE(nested.ok()) << nested.ToString();
        for (size_t k = 0; k < views.size(); ++k) {
          EXPECT_EQ(views[k].has_value(), expected[k].has_value()) << k;
          if (views[k].has_value() && expected[k].has_value()) {
            EXPECT_EQ(*views[k], *expected[k]) << k;
          }
        }
        return Status::Ok();
      });
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(calls, 1);
  // The callback's error is ReadViews' error.
  Status failed = store_->ReadViews(keys, [](std::span<const std::optional<std::string_view>>) {
    return InvalidArgument("from the callback");
  });
  EXPECT_EQ(failed.message(), "from the callback");
  // No keys: one call with no values.
  calls = 0;
  ASSERT_TRUE(store_
                  ->ReadViews({},
                              [&](std::span<const std::optional<std::string_view>> views) {
                                ++calls;
                                EXPECT_TRUE(views.empty());
                                return Status::Ok();
                              })
                  .ok());
  EXPECT_EQ(calls, 1);
}

TEST_P(StoreContract, BinaryKeysAndValuesRoundTrip) {
  std::string entity("\0{x}\xff\n", 6), view("v\0@1", 4), value;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) value.push_back(static_cast<char>(rng()));
  value[10] = '\0';
  ASSERT_TRUE(store_->Write(std::vector<StoreEntry>{{{entity, view}, value}}).ok());
  EXPECT_EQ(ReadOne(entity, view), value);
  EXPECT_EQ(ReadOne(std::string_view(entity.data(), 5), view), std::nullopt);
  // An empty value is a value, not an absence.
  ASSERT_TRUE(store_->Write(std::vector<StoreEntry>{{{"empty", "v@1"}, ""}}).ok());
  EXPECT_EQ(ReadOne("empty", "v@1"), std::string());
}

TEST_P(StoreContract, LaterWriteWinsAndRemoveForgets) {
  ASSERT_TRUE(
      store_->Write(std::vector<StoreEntry>{{{"e", "v@1"}, "old"}, {{"e", "v@1"}, "new"}}).ok());
  EXPECT_EQ(ReadOne("e", "v@1"), "new");
  ASSERT_TRUE(store_->Write(std::vector<StoreEntry>{{{"e", "v@1"}, "newer"}}).ok());
  EXPECT_EQ(ReadOne("e", "v@1"), "newer");
  std::vector<StoreKey> remove = {{"e", "v@1"}, {"absent", "v@1"}};
  ASSERT_TRUE(store_->Remove(remove).ok());
  EXPECT_EQ(ReadOne("e", "v@1"), std::nullopt);
}

TEST_P(StoreContract, TtlForgetsValuesAfterWallClockTime) {
  std::vector<StoreEntry> entries = {{{"short", "v@1"}, "x", 300 * 1000},
                                     {{"long", "v@1"}, "y", 3600 * kMicrosPerSecond},
                                     {{"forever", "v@1"}, "z", 0}};
  ASSERT_TRUE(store_->Write(entries).ok());
  EXPECT_EQ(ReadOne("short", "v@1"), "x");
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(ReadOne("short", "v@1"), std::nullopt);
  EXPECT_EQ(ReadOne("long", "v@1"), "y");
  EXPECT_EQ(ReadOne("forever", "v@1"), "z");
}

TEST_P(StoreContract, MetaRecordsAreSeparateFromValues) {
  Result<std::optional<std::string>> absent = store_->ReadMeta("watermark/v@1");
  ASSERT_TRUE(absent.ok());
  EXPECT_EQ(*absent, std::nullopt);
  std::vector<MetaEntry> meta = {{"watermark/v@1", "123"}};
  ASSERT_TRUE(store_->Write(std::vector<StoreEntry>{{{"e", "v@1"}, "value"}}, meta).ok());
  Result<std::optional<std::string>> read = store_->ReadMeta("watermark/v@1");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, "123");
  EXPECT_EQ(ReadOne("watermark/v@1", ""), std::nullopt);
  ASSERT_TRUE(store_->Write({}, std::vector<MetaEntry>{{"watermark/v@1", "456"}}).ok());
  EXPECT_EQ(*store_->ReadMeta("watermark/v@1"), "456");
}

TEST_P(StoreContract, ProjectsDoNotSeeEachOther) {
  ASSERT_TRUE(store_
                  ->Write(std::vector<StoreEntry>{{{"e", "v@1"}, "mine"}},
                          std::vector<MetaEntry>{{"m", "mine"}})
                  .ok());
  if (GetParam().name == "memory") return;   // a memory store is one project's by construction
  if (GetParam().name == "rocksdb") return;  // one process owns a RocksDB directory at a time
  Result<std::unique_ptr<OnlineStore>> other = GetParam().open(FreshProject());
  ASSERT_TRUE(other.ok());
  std::vector<std::optional<std::string>> values;
  StoreKey key{"e", "v@1"};
  ASSERT_TRUE((*other)->Read(std::span(&key, 1), &values).ok());
  EXPECT_EQ(values[0], std::nullopt);
  EXPECT_EQ(*(*other)->ReadMeta("m"), std::nullopt);
}

TEST_P(StoreContract, ConcurrentWritersAndReaders) {
  constexpr int kThreads = 4, kPerThread = 500;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string entity = "t" + std::to_string(t) + "-" + std::to_string(i);
        std::string value = std::to_string(i * 31 + t);
        if (!store_->Write(std::vector<StoreEntry>{{{entity, "v@1"}, value}}).ok()) ++failures;
        std::vector<std::optional<std::string>> read;
        StoreKey key{entity, "v@1"};
        if (!store_->Read(std::span(&key, 1), &read).ok() || read[0] != value) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, testing::ValuesIn(Backends()),
                         [](const testing::TestParamInfo<Backend>& info) {
                           return info.param.name;
                         });

TEST(RocksDbStore, ValuesSurviveReopen) {
  std::string dir = TempDir() + "/db";
  {
    Result<std::unique_ptr<OnlineStore>> store = OpenRocksDbStore(dir, "p");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)
                    ->Write(std::vector<StoreEntry>{{{"e", "v@1"}, "kept"}},
                            std::vector<MetaEntry>{{"m", "1"}})
                    .ok());
  }
  Result<std::unique_ptr<OnlineStore>> reopened = OpenRocksDbStore(dir, "p");
  ASSERT_TRUE(reopened.ok());
  std::vector<std::optional<std::string>> values;
  StoreKey key{"e", "v@1"};
  ASSERT_TRUE((*reopened)->Read(std::span(&key, 1), &values).ok());
  EXPECT_EQ(values[0], "kept");
  EXPECT_EQ(*(*reopened)->ReadMeta("m"), "1");
}

TEST(RocksDbStore, ReadOnlyOpensBesideTheWriterAndRefusesWrites) {
  std::string dir = TempDir() + "/db";
  EXPECT_EQ(OpenRocksDbStore(dir, "p", true).status().code(), StatusCode::kNotFound);
  Result<std::unique_ptr<OnlineStore>> writer = OpenRocksDbStore(dir, "p");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write(std::vector<StoreEntry>{{{"e", "v@1"}, "seen"}}).ok());
  Result<std::unique_ptr<OnlineStore>> reader = OpenRocksDbStore(dir, "p", true);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  std::vector<std::optional<std::string>> values;
  StoreKey key{"e", "v@1"};
  ASSERT_TRUE((*reader)->Read(std::span(&key, 1), &values).ok());
  EXPECT_EQ(values[0], "seen");
  Status refused = (*reader)->Write(std::vector<StoreEntry>{{{"e", "v@1"}, "no"}});
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*reader)->Remove(std::vector<StoreKey>{key}).code(), StatusCode::kFailedPrecondition);
}

TEST(RocksDbStore, LockedDirectoryIsAClearError) {
  std::string dir = TempDir() + "/db";
  Result<std::unique_ptr<OnlineStore>> first = OpenRocksDbStore(dir, "p");
  ASSERT_TRUE(first.ok());
  Result<std::unique_ptr<OnlineStore>> second = OpenRocksDbStore(dir, "p");
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(dir), std::string::npos) << second.status().ToString();
}

TEST(OpenOnlineStore, UnknownTypeAndMissingSettingsAreNamed) {
  Result<std::unique_ptr<OnlineStore>> unknown = OpenOnlineStore({"cassandra", "", "", "p"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("cassandra"), std::string::npos);
  EXPECT_FALSE(OpenOnlineStore({"rocksdb", "", "", "p"}).ok());
  EXPECT_FALSE(OpenOnlineStore({"redis", "", "", "p"}).ok());
}

}  // namespace
}  // namespace keel::store
