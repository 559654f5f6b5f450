#include "features/shared_sources.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

namespace keel::features {
namespace {

using table::Column;
using table::DataType;
using table::Table;

SourceDef QuerySource(const std::string& name, const std::string& query) {
  SourceDef source;
  source.name = name;
  source.format = SourceFormat::kQuery;
  source.query = query;
  return source;
}

Table OneColumn(int64_t value) {
  Column column(DataType::kInt64, 0);
  column.AppendInt64(value);
  Table table;
  EXPECT_TRUE(table.AddColumn("x", std::move(column)).ok());
  return table;
}

// Two readers of one source at the same time: one load, one table for both,
// the other reader waits for it (its own loader never runs).
TEST(SharedSources, ReadersOfOneSourceAtOnceShareOneLoad) {
  SharedSources shared;
  SourceDef source = QuerySource("s", "SELECT 1 AS x");
  RepoConfig config;
  std::atomic<int> loads{0};
  auto slow_load = [&]() -> Result<Table> {
    ++loads;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return OneColumn(1);
  };
  Result<std::shared_ptr<const Table>> first = InvalidArgument("not read");
  std::thread reader([&] { first = shared.Read(source, {}, config, slow_load); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Result<std::shared_ptr<const Table>> second = shared.Read(source, {}, config, slow_load);
  reader.join();
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(first->get(), second->get());
  EXPECT_EQ(loads.load(), 1);
  EXPECT_EQ(shared.uses(), (std::map<std::string, SharedSources::Use>{{"s", {2, 1}}}));
}

// Reads of different SQL (or the same SQL under another name) are not shared.
TEST(SharedSources, DifferentReadsAreNotShared) {
  SharedSources shared;
  RepoConfig config;
  auto load = [] { return Result<Table>(OneColumn(1)); };
  auto a = shared.Read(QuerySource("a", "SELECT 1 AS x"), {}, config, load);
  auto b = shared.Read(QuerySource("a", "SELECT 2 AS x"), {}, config, load);
  auto c = shared.Read(QuerySource("c", "SELECT 1 AS x"), {}, config, load);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_NE(a->get(), b->get());
  EXPECT_NE(a->get(), c->get());
  EXPECT_EQ(shared.uses(),
            (std::map<std::string, SharedSources::Use>{{"a", {2, 2}}, {"c", {1, 1}}}));
  // An input that differs makes a different read too.
  SourceDef reader = QuerySource("r", "SELECT * FROM a");
  reader.inputs = {"a"};
  std::map<std::string, SourceDef> one = {{"a", QuerySource("a", "SELECT 1 AS x")}};
  std::map<std::string, SourceDef> two = {{"a", QuerySource("a", "SELECT 2 AS x")}};
  auto r1 = shared.Read(reader, one, config, load);
  auto r2 = shared.Read(reader, two, config, load);
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_NE(r1->get(), r2->get());
  EXPECT_EQ(shared.uses().at("r").reads, 2u);
}

// A table nobody holds any more is read again: the cache pins no memory.
TEST(SharedSources, ATableNoReaderHoldsIsReadAgain) {
  SharedSources shared;
  SourceDef source = QuerySource("s", "SELECT 1 AS x");
  RepoConfig config;
  auto load = [] { return Result<Table>(OneColumn(1)); };
  {
    auto held = shared.Read(source, {}, config, load);
    ASSERT_TRUE(held.ok());
    auto again = shared.Read(source, {}, config, load);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(held->get(), again->get());
    EXPECT_EQ(shared.uses().at("s"), (SharedSources::Use{2, 1}));
  }
  ASSERT_TRUE(shared.Read(source, {}, config, load).ok());
  EXPECT_EQ(shared.uses().at("s"), (SharedSources::Use{3, 2}));
}

// Errors are not shared: each reader gets its own loader's error, a reader
// that waited on a failed load loads for itself, and a later read retries.
TEST(SharedSources, ErrorsAreEachReadersOwn) {
  SharedSources shared;
  SourceDef source = QuerySource("s", "SELECT 1 AS x");
  RepoConfig config;
  auto failing = [] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return Result<Table>(IoError("first reader's words"));
  };
  auto other = [] { return Result<Table>(IoError("second reader's words")); };
  Result<std::shared_ptr<const Table>> first = InvalidArgument("not read");
  std::thread reader([&] { first = shared.Read(source, {}, config, failing); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Result<std::shared_ptr<const Table>> second = shared.Read(source, {}, config, other);
  reader.join();
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().message(), "first reader's words");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(), "second reader's words");
  EXPECT_EQ(shared.uses().at("s"), (SharedSources::Use{2, 2}));
  auto good = shared.Read(source, {}, config, [] { return Result<Table>(OneColumn(3)); });
  ASSERT_TRUE(good.ok());
  EXPECT_EQ((*good)->column(0).ints()[0], 3);
  EXPECT_EQ(shared.uses().at("s"), (SharedSources::Use{3, 3}));
}

// A source whose read key cannot be made (a missing file) is loaded by each
// reader, which reports the error its own way.
TEST(SharedSources, AMissingFileIsLoadedByEachReader) {
  SharedSources shared;
  SourceDef source;
  source.name = "f";
  source.path = "/nonexistent/keel/f.parquet";
  RepoConfig config;
  auto load = [] { return Result<Table>(NotFound("no such file")); };
  EXPECT_EQ(shared.Read(source, {}, config, load).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(shared.Read(source, {}, config, load).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(shared.uses().at("f"), (SharedSources::Use{2, 2}));
}

// Held, the cache keeps what it read (and what readers held at Hold()) after
// every reader dropped it; released, it reads again.
TEST(SharedSources, HeldTablesOutliveTheirReadersUntilReleased) {
  SharedSources shared;
  SourceDef source = QuerySource("s", "SELECT 1 AS x");
  SourceDef other = QuerySource("t", "SELECT 2 AS x");
  RepoConfig config;
  int loads = 0;
  auto load = [&]() -> Result<Table> {
    ++loads;
    return OneColumn(loads);
  };
  Result<std::shared_ptr<const Table>> before = shared.Read(other, {}, config, load);
  ASSERT_TRUE(before.ok());
  shared.Hold();  // `other` is held by its reader: kept from here on
  before = InvalidArgument("dropped");
  ASSERT_TRUE(shared.Read(source, {}, config, load).ok());  // read and dropped at once
  ASSERT_TRUE(shared.Read(source, {}, config, load).ok());
  ASSERT_TRUE(shared.Read(other, {}, config, load).ok());
  EXPECT_EQ(loads, 2);
  shared.Release();
  ASSERT_TRUE(shared.Read(source, {}, config, load).ok());
  ASSERT_TRUE(shared.Read(other, {}, config, load).ok());
  EXPECT_EQ(loads, 4);
  EXPECT_EQ(shared.uses(),
            (std::map<std::string, SharedSources::Use>{{"s", {3, 2}}, {"t", {3, 2}}}));
}

// A loader that throws fails its read with an error, and the source can be
// read again afterwards (no reader is left waiting on a broken promise).
TEST(SharedSources, ThrowingLoaderIsAnErrorAndTheSourceStaysReadable) {
  SharedSources shared;
  SourceDef source = QuerySource("s", "SELECT 1 AS x");
  RepoConfig config;
  auto throwing = []() -> Result<Table> { throw std::runtime_error("out of luck"); };
  Result<std::shared_ptr<const Table>> failed = shared.Read(source, {}, config, throwing);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kInternal);
  EXPECT_NE(failed.status().message().find("out of luck"), std::string::npos);
  Result<std::shared_ptr<const Table>> read =
      shared.Read(source, {}, config, [] { return Result<Table>(OneColumn(7)); });
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ((*read)->column(0).ints()[0], 7);
}

}  // namespace
}  // namespace keel::features
