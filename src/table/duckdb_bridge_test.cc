#include "table/duckdb_bridge.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/files.h"

namespace keel::table {
namespace {

std::unique_ptr<DuckDb> OpenDb() {
  Result<std::unique_ptr<DuckDb>> db = DuckDb::Open(1);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return std::move(db).value();
}

TEST(DuckDb, QueryMapsTypes) {
  auto db = OpenDb();
  Result<Table> table = db->Query(
      "SELECT 1::TINYINT AS i8, 2::INTEGER AS i32, 3::BIGINT AS i64, 4::UINTEGER AS u32, "
      "1.5::FLOAT AS f, 2.25::DOUBLE AS d, 12.34::DECIMAL(10,2) AS dec, true AS b, 'x' AS s, "
      "TIMESTAMP '2001-01-01 00:00:01' AS ts, DATE '1970-01-02' AS day, "
      "TIMESTAMP_S '1970-01-01 00:00:02' AS ts_s, 'a much longer string than twelve' AS long_s");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  ASSERT_EQ(table->num_rows(), 1u);
  EXPECT_EQ(table->SchemaToString(),
            "i8 int64, i32 int64, i64 int64, u32 int64, f double, d double, dec double, b bool, "
            "s string, ts timestamp, day timestamp, ts_s timestamp, long_s string");
  EXPECT_EQ(table->column(0).ints()[0], 1);
  EXPECT_EQ(table->column(5).doubles()[0], 2.25);
  EXPECT_DOUBLE_EQ(table->column(6).doubles()[0], 12.34);
  EXPECT_EQ(table->column(7).bools()[0], 1);
  EXPECT_EQ(table->column(8).StringAt(0), "x");
  EXPECT_EQ(table->column(9).ints()[0], 978307201000000LL);
  EXPECT_EQ(table->column(10).ints()[0], 86400000000LL);
  EXPECT_EQ(table->column(11).ints()[0], 2000000LL);
  EXPECT_EQ(table->column(12).StringAt(0), "a much longer string than twelve");
}

TEST(DuckDb, QueryKeepsNullsAcrossChunks) {
  auto db = OpenDb();
  Result<Table> table = db->Query(
      "SELECT CASE WHEN i % 3 = 0 THEN NULL ELSE i END AS v, "
      "CASE WHEN i % 5 = 0 THEN NULL ELSE 'k' || i END AS s FROM range(10000) t(i)");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  ASSERT_EQ(table->num_rows(), 10000u);
  for (size_t row = 0; row < 10000; ++row) {
    EXPECT_EQ(table->column(0).IsValid(row), row % 3 != 0) << row;
    EXPECT_EQ(table->column(1).IsValid(row), row % 5 != 0) << row;
    if (row % 3 != 0) {
      EXPECT_EQ(table->column(0).ints()[row], static_cast<int64_t>(row));
    }
    if (row % 5 != 0) {
      EXPECT_EQ(table->column(1).StringAt(row), "k" + std::to_string(row));
    }
  }
}

TEST(DuckDb, BadSqlAndMissingFilesAreErrors) {
  auto db = OpenDb();
  Result<Table> bad = db->Query("SELEC 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  Result<Table> missing = db->Query("SELECT * FROM read_parquet('/nonexistent/x.parquet')");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/x.parquet"), std::string::npos);
  Result<Table> unsupported = db->Query("SELECT [1, 2] AS list_column");
  ASSERT_FALSE(unsupported.ok());
  EXPECT_NE(unsupported.status().message().find("list_column"), std::string::npos);
}

TEST(DuckDb, ParquetRoundTripIsExactAndAtomic) {
  auto db = OpenDb();
  Result<Table> table = db->Query(
      "SELECT i, i * 0.1 AS d, i % 2 = 0 AS b, CASE WHEN i % 7 = 0 THEN NULL ELSE 'v' || i END "
      "AS s, TIMESTAMP '2001-01-01' + INTERVAL (i) MINUTE AS ts FROM range(5000) t(i)");
  ASSERT_TRUE(table.ok());
  std::string dir = testing::TempDir() + "/keel_bridge_test";
  std::filesystem::create_directories(dir);
  std::string path = dir + "/round.parquet";
  ASSERT_TRUE(db->WriteParquet(*table, path, {{"keel", "{\"x\": 1}"}}).ok());
  Result<Table> back = db->Query("SELECT * FROM read_parquet(" + QuoteSqlString(path) + ")");
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->num_rows(), table->num_rows());
  for (size_t column = 0; column < table->num_columns(); ++column) {
    for (size_t row = 0; row < table->num_rows(); ++row) {
      ASSERT_EQ(back->column(column).ValueToString(row), table->column(column).ValueToString(row));
    }
  }
  Result<Table> metadata = db->Query("SELECT decode(value) AS v FROM parquet_kv_metadata(" +
                                     QuoteSqlString(path) + ") WHERE decode(key) = 'keel'");
  ASSERT_TRUE(metadata.ok()) << metadata.status().ToString();
  ASSERT_EQ(metadata->num_rows(), 1u);
  EXPECT_EQ(metadata->column(0).StringAt(0), "{\"x\": 1}");
  // Nothing but the final file is left in the folder.
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1u);
  // A failed write leaves no file behind.
  std::string bad_path = dir + "/no_such_dir/out.parquet";
  EXPECT_FALSE(db->WriteParquet(*table, bad_path).ok());
  EXPECT_FALSE(FileExists(bad_path));
}

TEST(Quote, EscapesQuotes) {
  EXPECT_EQ(QuoteSqlString("it's"), "'it''s'");
  EXPECT_EQ(QuoteSqlIdentifier("a\"b"), "\"a\"\"b\"");
}

}  // namespace
}  // namespace keel::table
