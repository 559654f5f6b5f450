#include "train/table_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "common/files.h"

namespace keel::train {
namespace {

namespace fs = std::filesystem;

class TableFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("keel_table_file_test_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string Path(const std::string& name) const { return (root_ / name).string(); }

  fs::path root_;
};

// A table of every type, with and without nulls, with NaN, -0.0, empty and
// multi-byte strings.
table::Table EveryType() {
  table::Table table;
  table::Column ints(table::DataType::kInt64, 0), times(table::DataType::kTimestamp, 0);
  table::Column doubles(table::DataType::kDouble, 0), bools(table::DataType::kBool, 0);
  table::Column strings(table::DataType::kString, 0), no_nulls(table::DataType::kDouble, 0);
  for (int row = 0; row < 1000; ++row) {
    ints.AppendInt64(row % 7 == 0 ? INT64_MIN : row * 1000003LL);
    times.AppendInt64(978307200000000LL + row * 60000000LL);
    if (row % 5 == 0) {
      doubles.AppendNull();
      strings.AppendNull();
    } else {
      doubles.AppendDouble(row % 3 == 0 ? std::nan("") : row % 4 == 0 ? -0.0 : row / 7.0);
      strings.AppendString(row % 2 == 0 ? "" : "SFO-Zürich-" + std::to_string(row));
    }
    bools.AppendBool(row % 2 == 1);
    no_nulls.AppendDouble(row * 0.5);
  }
  EXPECT_TRUE(table.AddColumn("ints", std::move(ints)).ok());
  EXPECT_TRUE(table.AddColumn("times", std::move(times)).ok());
  EXPECT_TRUE(table.AddColumn("doubles", std::move(doubles)).ok());
  EXPECT_TRUE(table.AddColumn("bools", std::move(bools)).ok());
  EXPECT_TRUE(table.AddColumn("strings", std::move(strings)).ok());
  EXPECT_TRUE(table.AddColumn("no nulls", std::move(no_nulls)).ok());
  return table;
}

void ExpectSameTable(const table::Table& a, const table::Table& b) {
  ASSERT_EQ(a.fields(), b.fields());
  ASSERT_EQ(a.num_rows(), b.num_rows());
  for (size_t col = 0; col < a.num_columns(); ++col) {
    const table::Column& x = a.column(col);
    const table::Column& y = b.column(col);
    EXPECT_EQ(x.validity(), y.validity()) << a.fields()[col].name;
    EXPECT_EQ(x.ints(), y.ints()) << a.fields()[col].name;
    EXPECT_EQ(x.bools(), y.bools()) << a.fields()[col].name;
    EXPECT_EQ(x.string_offsets(), y.string_offsets()) << a.fields()[col].name;
    EXPECT_EQ(x.string_chars(), y.string_chars()) << a.fields()[col].name;
    ASSERT_EQ(x.doubles().size(), y.doubles().size());
    // Bit for bit: NaN and -0.0 included (memcmp only when there are bytes:
    // an empty vector's data() may be null).
    if (!x.doubles().empty()) {
      EXPECT_EQ(0, std::memcmp(x.doubles().data(), y.doubles().data(),
                               x.doubles().size() * sizeof(double)))
          << a.fields()[col].name;
    }
  }
}

TEST_F(TableFileTest, RoundTripsEveryTypeExactly) {
  table::Table table = EveryType();
  ASSERT_TRUE(WriteTableFile(table, Path("t")).ok());
  Result<table::Table> read = ReadTableFile(Path("t"));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ExpectSameTable(table, *read);
}

TEST_F(TableFileTest, RoundTripsAnEmptyTable) {
  table::Table table;
  ASSERT_TRUE(table.AddColumn("a", table::Column(table::DataType::kString, 0)).ok());
  ASSERT_TRUE(WriteTableFile(table, Path("t")).ok());
  Result<table::Table> read = ReadTableFile(Path("t"));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ExpectSameTable(table, *read);
}

TEST_F(TableFileTest, RefusesDamagedAndForeignFiles) {
  ASSERT_TRUE(WriteTableFile(EveryType(), Path("t")).ok());
  Result<std::string> bytes = ReadFileToString(Path("t"));
  ASSERT_TRUE(bytes.ok());
  std::string flipped = *bytes;
  flipped[flipped.size() / 2] ^= 0x01;
  ASSERT_TRUE(WriteFileAtomically(Path("flipped"), flipped).ok());
  ASSERT_TRUE(WriteFileAtomically(Path("short"), bytes->substr(0, bytes->size() - 9)).ok());
  ASSERT_TRUE(WriteFileAtomically(Path("longer"), *bytes + "x").ok());
  ASSERT_TRUE(WriteFileAtomically(Path("parquet"), "PAR1 not a keel table").ok());
  for (const char* name : {"flipped", "short", "longer", "parquet"}) {
    Result<table::Table> read = ReadTableFile(Path(name));
    ASSERT_FALSE(read.ok()) << name;
    EXPECT_NE(read.status().message().find("damaged"), std::string::npos) << name;
  }
  Result<table::Table> missing = ReadTableFile(Path("missing"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing"), std::string::npos);
}

}  // namespace
}  // namespace keel::train
