#include "train/step_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "common/files.h"

namespace keel::train {
namespace {

namespace fs = std::filesystem;

class StepCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("keel_step_cache_test_" + std::to_string(getpid()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Everything in the step's folder (entries and temporary folders).
  std::vector<std::string> Listing(const std::string& step) const {
    std::vector<std::string> names;
    std::error_code error;
    for (const auto& item : fs::directory_iterator(root_ / step, error)) {
      names.push_back(item.path().filename().string());
    }
    return names;
  }

  fs::path root_;
};

TEST_F(StepCacheTest, PendingEntryAppearsOnlyOnCommit) {
  StepCache cache(root_.string(), false);
  Result<PendingEntry> entry = cache.Begin("dataset", "k1");
  ASSERT_TRUE(entry.ok()) << entry.status().ToString();
  ASSERT_TRUE(WriteFileAtomically(entry->dir() + "/a.txt", "one").ok());
  EXPECT_FALSE(cache.Has("dataset", "k1"));
  EXPECT_FALSE(cache.Read("dataset", "k1", "a.txt").ok());
  EXPECT_NE(entry->dir(), cache.Dir("dataset", "k1"));
  EXPECT_EQ(fs::path(entry->dir()).parent_path(),
            fs::path(cache.Dir("dataset", "k1")).parent_path())
      << "a sibling, so the rename stays on one file system";

  // Committed on another thread, as the runner does with the training set.
  Status committed;
  std::thread writer([&, moved = std::move(entry).value()]() mutable {
    ASSERT_TRUE(WriteFileAtomically(moved.dir() + "/b.txt", "two").ok());
    committed = moved.Commit();
  });
  writer.join();
  ASSERT_TRUE(committed.ok()) << committed.ToString();
  EXPECT_TRUE(cache.Has("dataset", "k1"));
  EXPECT_EQ(*cache.Read("dataset", "k1", "a.txt"), "one");
  EXPECT_EQ(*cache.Read("dataset", "k1", "b.txt"), "two");
  EXPECT_EQ(Listing("dataset"), (std::vector<std::string>{"k1"})) << "no temporary folder left";
}

TEST_F(StepCacheTest, PendingEntryNotCommittedLeavesNothing) {
  StepCache cache(root_.string(), false);
  {
    Result<PendingEntry> entry = cache.Begin("dataset", "k1");
    ASSERT_TRUE(entry.ok());
    ASSERT_TRUE(WriteFileAtomically(entry->dir() + "/a.txt", "one").ok());
    EXPECT_EQ(Listing("dataset").size(), 1u);  // the temporary folder
  }
  EXPECT_FALSE(cache.Has("dataset", "k1"));
  EXPECT_TRUE(Listing("dataset").empty());

  Result<PendingEntry> abandoned = cache.Begin("dataset", "k1");
  ASSERT_TRUE(abandoned.ok());
  abandoned->Abandon();
  EXPECT_TRUE(Listing("dataset").empty());
  Status late = abandoned->Commit();
  EXPECT_EQ(late.code(), StatusCode::kFailedPrecondition) << late.ToString();
  EXPECT_FALSE(cache.Has("dataset", "k1"));

  Result<PendingEntry> twice = cache.Begin("dataset", "k1");
  ASSERT_TRUE(twice.ok());
  ASSERT_TRUE(twice->Commit().ok());
  EXPECT_EQ(twice->Commit().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(cache.Has("dataset", "k1"));
}

TEST_F(StepCacheTest, ForcedCommitReplacesAnEntryAndUnforcedKeepsIt) {
  StepCache cache(root_.string(), false);
  ASSERT_TRUE(
      cache
          .Store("split", "k",
                 [](const std::string& dir) { return WriteFileAtomically(dir + "/x", "first"); })
          .ok());
  // Unforced: an entry stored meanwhile (same key, same content) stays.
  Result<PendingEntry> late = cache.Begin("split", "k");
  ASSERT_TRUE(late.ok());
  ASSERT_TRUE(WriteFileAtomically(late->dir() + "/x", "second").ok());
  ASSERT_TRUE(late->Commit().ok());
  EXPECT_EQ(*cache.Read("split", "k", "x"), "first");

  StepCache forced(root_.string(), true);
  EXPECT_FALSE(forced.Has("split", "k"));
  Result<PendingEntry> entry = forced.Begin("split", "k");
  ASSERT_TRUE(entry.ok());
  ASSERT_TRUE(WriteFileAtomically(entry->dir() + "/x", "third").ok());
  EXPECT_EQ(*cache.Read("split", "k", "x"), "first") << "replaced only on commit";
  ASSERT_TRUE(entry->Commit().ok());
  EXPECT_EQ(*cache.Read("split", "k", "x"), "third");
  EXPECT_EQ(Listing("split"), (std::vector<std::string>{"k"}));
}

TEST_F(StepCacheTest, StoreLeavesNothingWhenFillFails) {
  StepCache cache(root_.string(), false);
  Status status = cache.Store("train", "k", [](const std::string& dir) -> Status {
    RETURN_IF_ERROR(WriteFileAtomically(dir + "/half", "written"));
    return Internal("boom");
  });
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_FALSE(cache.Has("train", "k"));
  EXPECT_TRUE(Listing("train").empty());
}

}  // namespace
}  // namespace keel::train
