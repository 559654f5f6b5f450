#include "features/offline_engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "features/shared_sources.h"
#include "table/duckdb_bridge.h"

namespace keel::features {
namespace {

using table::Column;
using table::DataType;
using table::Table;

constexpr Timestamp kStart = 978307200LL * kMicrosPerSecond;  // 2001-01-01
constexpr Duration kGrid = 5 * kMicrosPerMinute;  // coarse, so ties and boundaries are common

// Random source rows: key k (int64, some null), ts on a coarse grid, x with
// nulls. Values are multiples of 0.25 so that every summation order is exact
// and the naive reference can be compared bit for bit.
struct Events {
  std::vector<int64_t> key;
  std::vector<bool> key_valid;
  std::vector<Timestamp> ts;
  std::vector<double> x;
  std::vector<bool> x_valid;
};

Events RandomEvents(std::mt19937_64& random, size_t rows, int entities, int grid_points) {
  Events events;
  for (size_t row = 0; row < rows; ++row) {
    // Entities appear late: entity e's events start at grid point e * 3.
    int64_t key = static_cast<int64_t>(random() % entities);
    int first = static_cast<int>(key) * 3 % grid_points;
    events.key.push_back(key);
    events.key_valid.push_back(random() % 30 != 0);
    events.ts.push_back(kStart +
                        static_cast<Timestamp>(first + random() % (grid_points - first)) * kGrid);
    events.x.push_back(static_cast<double>(static_cast<int64_t>(random() % 400) - 100) * 0.25);
    events.x_valid.push_back(random() % 7 != 0);
  }
  return events;
}

Table EventsTable(const Events& events) {
  Column key(DataType::kInt64, 0), ts(DataType::kTimestamp, 0), x(DataType::kDouble, 0);
  for (size_t row = 0; row < events.ts.size(); ++row) {
    events.key_valid[row] ? key.AppendInt64(events.key[row]) : key.AppendNull();
    ts.AppendInt64(events.ts[row]);
    events.x_valid[row] ? x.AppendDouble(events.x[row]) : x.AppendNull();
  }
  Table table;
  EXPECT_TRUE(table.AddColumn("k", std::move(key)).ok());
  EXPECT_TRUE(table.AddColumn("ts", std::move(ts)).ok());
  EXPECT_TRUE(table.AddColumn("x", std::move(x)).ok());
  return table;
}

// Spine: keys incl. unknown (entities..entities+2) and null ones, times on the
// same grid (so they coincide with event times) and between grid points.
Table RandomSpine(std::mt19937_64& random, size_t rows, int entities, int grid_points) {
  Column key(DataType::kInt64, 0), t(DataType::kTimestamp, 0);
  for (size_t row = 0; row < rows; ++row) {
    if (random() % 40 == 0)
      key.AppendNull();
    else
      key.AppendInt64(static_cast<int64_t>(random() % (entities + 2)));
    Timestamp time = kStart + static_cast<Timestamp>(random() % (grid_points + 4)) * kGrid;
    if (random() % 3 == 0) time += static_cast<Timestamp>(random() % kGrid);
    if (random() % 50 == 0)
      t.AppendNull();
    else
      t.AppendInt64(time);
  }
  Table table;
  EXPECT_TRUE(table.AddColumn("k", std::move(key)).ok());
  EXPECT_TRUE(table.AddColumn("t", std::move(t)).ok());
  return table;
}

class EngineTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir() + "/keel_engine_test_" +
           testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_.root = dir_;
    duckdb_ = std::move(table::DuckDb::Open(1).value());
  }

  std::string WriteSource(const Table& table, const std::string& name) {
    std::string path = dir_ + "/" + name + ".parquet";
    EXPECT_TRUE(duckdb_->WriteParquet(table, path).ok());
    return path;
  }

  FeatureViewDef WindowView(const std::string& path, std::vector<WindowSpec> windows) {
    FeatureViewDef view;
    view.kind = ViewKind::kWindow;
    view.name = "v";
    view.entity = {"e", {{"k", DataType::kInt64}}, "", {}};
    view.source.name = "events";
    view.source.path = path;
    view.source.timestamp_column = "ts";
    view.key_columns = {"k"};
    for (Aggregation aggregation :
         {Aggregation::kCount, Aggregation::kSum, Aggregation::kMean, Aggregation::kMin,
          Aggregation::kMax, Aggregation::kLast, Aggregation::kStddev}) {
      WindowFeatureDef feature;
      feature.name = std::string(AggregationName(aggregation));
      feature.aggregation = aggregation;
      feature.expression = "x";
      feature.windows = windows;
      view.window_features.push_back(feature);
    }
    WindowFeatureDef rows;  // a row count: no expression, nulls counted too
    rows.name = "rows";
    rows.aggregation = Aggregation::kCount;
    rows.windows = windows;
    view.window_features.push_back(rows);
    return view;
  }

  Result<Table> Build(const Table& spine, const FeatureViewDef& view, int threads = 2) {
    OfflineEngine engine(config_, duckdb_.get(), threads);
    FeatureUse use;
    use.view = view.name;
    ASSIGN_OR_RETURN(ResolvedUse resolved, ResolveUse(use, view, "test", spine.fields()));
    return engine.Build(spine, "t", {resolved});
  }

  std::string dir_;
  RepoConfig config_;
  std::unique_ptr<table::DuckDb> duckdb_;
};

// The naive reference: filter the rows of the window, then aggregate them directly.
struct Expected {
  bool valid = false;
  double value = 0;
};

Expected Reference(const Events& events, int64_t key, Timestamp t, const WindowSpec& window,
                   const std::string& aggregation) {
  std::vector<size_t> rows;  // arrival order == file order
  for (size_t row = 0; row < events.ts.size(); ++row) {
    if (!events.key_valid[row] || events.key[row] != key) continue;
    if (events.ts[row] < window.Start(t) || events.ts[row] >= t) continue;
    rows.push_back(row);
  }
  if (aggregation == "rows") return {true, static_cast<double>(rows.size())};
  std::vector<double> values;
  size_t last_row = SIZE_MAX;
  for (size_t row : rows) {
    if (!events.x_valid[row]) continue;
    values.push_back(events.x[row]);
    if (last_row == SIZE_MAX || events.ts[row] >= events.ts[last_row]) last_row = row;
  }
  double n = static_cast<double>(values.size());
  if (aggregation == "count") return {true, n};
  if (values.empty()) return {};
  double sum = 0;
  for (double value : values) sum += value;
  if (aggregation == "sum") return {true, sum};
  if (aggregation == "mean") return {true, sum / n};
  if (aggregation == "min") return {true, *std::min_element(values.begin(), values.end())};
  if (aggregation == "max") return {true, *std::max_element(values.begin(), values.end())};
  if (aggregation == "last") return {true, events.x[last_row]};
  if (values.size() < 2) return {};
  long double mean = static_cast<long double>(sum) / values.size();
  long double squares = 0;
  for (double value : values) squares += (value - mean) * (value - mean);
  return {true, static_cast<double>(std::sqrt(squares / (values.size() - 1)))};
}

void ExpectMatchesReference(const Table& out, const Table& spine, const Events& events,
                            const FeatureViewDef& view) {
  const Column& keys = spine.column(0);
  const Column& times = spine.column(1);
  size_t checked = 0;
  for (const WindowFeatureDef& feature : view.window_features) {
    for (const WindowSpec& window : feature.windows) {
      std::string name = "v__" + feature.OutputName(window);
      const Column* column = out.GetColumn(name).value();
      for (size_t row = 0; row < spine.num_rows(); ++row) {
        Expected expected;
        if (keys.IsValid(row) && times.IsValid(row)) {
          expected = Reference(events, keys.ints()[row], times.ints()[row], window, feature.name);
        }
        ASSERT_EQ(column->IsValid(row), expected.valid)
            << name << " row " << row << " key " << keys.ValueToString(row) << " t "
            << times.ValueToString(row);
        if (!expected.valid) continue;
        double actual = column->NumericAt(row);
        if (feature.aggregation == Aggregation::kStddev) {
          ASSERT_NEAR(actual, expected.value, 1e-12 * std::max(1.0, std::fabs(expected.value)))
              << name << " row " << row;
        } else {
          ASSERT_EQ(actual, expected.value) << name << " row " << row;
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, spine.num_rows());
}

TEST_F(EngineTest, WindowAggregatesEqualNaiveReferenceOnRandomData) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    std::mt19937_64 random(seed);
    int entities = 3 + static_cast<int>(seed * 2);
    int grid_points = 60 + static_cast<int>(seed * 20);
    Events events = RandomEvents(random, 300 + seed * 150, entities, grid_points);
    Table spine = RandomSpine(random, 400, entities, grid_points);
    std::string path = WriteSource(EventsTable(events), "events" + std::to_string(seed));
    // Hops that divide the window, equal it, and are coarser than the grid.
    FeatureViewDef view = WindowView(path, {{kGrid, kGrid},
                                            {kMicrosPerHour, kGrid},
                                            {2 * kMicrosPerHour, 20 * kMicrosPerMinute},
                                            {3 * kMicrosPerHour, kMicrosPerHour},
                                            {90 * kMicrosPerMinute, kMicrosPerMinute}});
    Result<Table> out = Build(spine, view, 1 + static_cast<int>(seed % 2));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectMatchesReference(*out, spine, events, view);
  }
}

// Count, sum, mean and stddev of integer values share one pass per stream
// (prefix sums read between a shared head and one tail per window); min, max
// and last, here over another expression, go through SlidingWindow; entities
// with a value that is not a small integer (a fraction, 2^40) fall back to
// SlidingWindow for the whole entity. Every path equals the naive reference.
TEST_F(EngineTest, WindowsSharingOnePassEqualNaiveReference) {
  for (uint64_t seed = 11; seed <= 14; ++seed) {
    std::mt19937_64 random(seed);
    int entities = 6 + static_cast<int>(seed);
    int grid_points = 100;
    Events events = RandomEvents(random, 1500, entities, grid_points);
    for (size_t row = 0; row < events.x.size(); ++row) {
      events.x[row] *= 4;  // integers in [-400, 1200)
      if (events.key[row] == 0 && random() % 20 == 0) events.x[row] = 0.5;
      if (events.key[row] == 1 && random() % 20 == 0) events.x[row] = 0x1p40;
    }
    Table spine = RandomSpine(random, 600, entities, grid_points);
    std::string path = WriteSource(EventsTable(events), "events" + std::to_string(seed));
    FeatureViewDef view = WindowView(path, {{kGrid, kGrid},
                                            {kMicrosPerHour, kGrid},
                                            {3 * kMicrosPerHour, kMicrosPerHour},
                                            {90 * kMicrosPerMinute, kMicrosPerMinute}});
    for (WindowFeatureDef& feature : view.window_features) {
      if (feature.aggregation == Aggregation::kMin || feature.aggregation == Aggregation::kMax ||
          feature.aggregation == Aggregation::kLast) {
        feature.expression = "x + 0";  // a stream of its own
      }
    }
    // Some features over fewer windows: they share the tails of the others.
    view.window_features[1].windows = {{kMicrosPerHour, kGrid}};
    view.window_features[6].windows = {{3 * kMicrosPerHour, kMicrosPerHour}};
    Result<Table> out = Build(spine, view, 1 + static_cast<int>(seed % 2));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectMatchesReference(*out, spine, events, view);
  }
}

TEST_F(EngineTest, FeaturesNeverDependOnRowsAtOrAfterTheQueryTime) {
  std::mt19937_64 random(99);
  int entities = 5, grid_points = 120;
  Events events = RandomEvents(random, 1500, entities, grid_points);
  Table spine = RandomSpine(random, 500, entities, grid_points);
  FeatureViewDef view = WindowView(WriteSource(EventsTable(events), "before"),
                                   {{kMicrosPerHour, kGrid}, {6 * kMicrosPerHour, kMicrosPerHour}});
  Result<Table> before = Build(spine, view);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  // Mutate every row at or after the cut: values, nullness and extra rows.
  Timestamp cut = kStart + 60 * kGrid;
  Events mutated = events;
  for (size_t row = 0; row < mutated.ts.size(); ++row) {
    if (mutated.ts[row] < cut) continue;
    mutated.x[row] = mutated.x[row] * 3 + 1000;
    mutated.x_valid[row] = !mutated.x_valid[row];
  }
  for (int extra = 0; extra < 50; ++extra) {
    mutated.key.push_back(extra % entities);
    mutated.key_valid.push_back(true);
    mutated.ts.push_back(cut + (extra % 3) * kGrid);
    mutated.x.push_back(1e6);
    mutated.x_valid.push_back(true);
  }
  view.source.path = WriteSource(EventsTable(mutated), "after");
  Result<Table> after = Build(spine, view);
  ASSERT_TRUE(after.ok());
  size_t compared = 0;
  for (size_t row = 0; row < spine.num_rows(); ++row) {
    if (!spine.column(1).IsValid(row) || spine.column(1).ints()[row] > cut) continue;
    for (size_t column = 2; column < before->num_columns(); ++column) {
      const Column& a = before->column(column);
      const Column& b = after->column(column);
      ASSERT_EQ(a.IsValid(row), b.IsValid(row)) << before->fields()[column].name << " row " << row;
      double x = a.NumericAt(row), y = b.NumericAt(row);
      ASSERT_EQ(std::memcmp(&x, &y, sizeof(double)), 0) << before->fields()[column].name;
      ++compared;
    }
  }
  EXPECT_GT(compared, 1000u);
}

TEST_F(EngineTest, ThreadCountDoesNotChangeAnyBit) {
  std::mt19937_64 random(7);
  Events events = RandomEvents(random, 3000, 40, 200);
  Table spine = RandomSpine(random, 3000, 40, 200);
  FeatureViewDef view =
      WindowView(WriteSource(EventsTable(events), "events"), {{2 * kMicrosPerHour, kGrid}});
  Result<Table> one = Build(spine, view, 1);
  Result<Table> two = Build(spine, view, 2);
  ASSERT_TRUE(one.ok() && two.ok());
  for (size_t column = 0; column < one->num_columns(); ++column) {
    for (size_t row = 0; row < spine.num_rows(); ++row) {
      ASSERT_EQ(one->column(column).ValueToString(row), two->column(column).ValueToString(row));
    }
  }
}

// Uses run side by side (offline_engine.cc stages 2-4): every thread count
// gives the columns each use gets when built alone, in the order of the uses,
// including uses that share a source, a grouping or a spine grouping.
TEST_F(EngineTest, ManyUsesOnAnyThreadCountEqualEachUseBuiltAlone) {
  std::mt19937_64 random(23);
  Events events = RandomEvents(random, 2000, 30, 150);
  Table source = EventsTable(events);
  Column other_key(DataType::kInt64, 0);  // a second key column: another grouping
  for (size_t row = 0; row < source.num_rows(); ++row) {
    other_key.AppendInt64(static_cast<int64_t>(random() % 12));
  }
  ASSERT_TRUE(source.AddColumn("k2", std::move(other_key)).ok());
  std::string path = WriteSource(source, "many");
  Table spine = RandomSpine(random, 1500, 30, 150);
  Column spine_other(DataType::kInt64, 0);
  for (size_t row = 0; row < spine.num_rows(); ++row) {
    spine_other.AppendInt64(static_cast<int64_t>(random() % 14));
  }
  ASSERT_TRUE(spine.AddColumn("k2", std::move(spine_other)).ok());

  std::vector<ResolvedUse> uses;
  auto add = [&](FeatureViewDef view, const std::string& alias, const std::string& key) {
    FeatureUse use;
    use.view = view.name;
    use.alias = alias;
    use.key_map = {{"k", key}};
    uses.push_back(ResolveUse(use, std::move(view), "test", spine.fields()).value());
  };
  FeatureViewDef by_k = WindowView(path, {{kMicrosPerHour, kGrid}});
  FeatureViewDef by_k2 =
      WindowView(path, {{3 * kMicrosPerHour, kGrid}, {kMicrosPerHour, 2 * kGrid}});
  by_k2.name = "v2";
  by_k2.key_columns = {"k2"};
  FeatureViewDef snapshot;
  snapshot.kind = ViewKind::kSnapshot;
  snapshot.name = "s";
  snapshot.entity = by_k.entity;
  snapshot.source = by_k.source;
  snapshot.key_columns = {"k"};
  snapshot.snapshot_features.push_back({"x", "x", DataType::kDouble, {}});
  add(by_k, "a", "k");
  add(by_k2, "b", "k");     // another grouping of the same source
  add(by_k, "c", "k2");     // the first grouping, another spine grouping
  add(snapshot, "d", "k");  // a snapshot view on the first grouping
  add(by_k, "e", "k");      // the same grouping and spine grouping as "a"

  Table expected = spine;
  for (const ResolvedUse& use : uses) {
    OfflineEngine alone(config_, duckdb_.get(), 1);
    Result<Table> built = alone.Build(spine, "t", {use});
    ASSERT_TRUE(built.ok()) << built.status().message();
    for (size_t column = spine.num_columns(); column < built->num_columns(); ++column) {
      ASSERT_TRUE(
          expected.AddColumn(built->fields()[column].name, Column(built->column(column))).ok());
    }
  }
  for (int threads : {1, 2, 3, 8}) {
    OfflineEngine engine(config_, duckdb_.get(), threads);
    // Odd thread counts read the sources and build the groupings ahead.
    if (threads % 2 == 1) engine.StartLoading({by_k, by_k2, snapshot, by_k});
    Result<Table> built = engine.Build(spine, "t", uses);
    ASSERT_TRUE(built.ok()) << built.status().message();
    ASSERT_EQ(built->SchemaToString(), expected.SchemaToString()) << threads;
    for (size_t column = 0; column < expected.num_columns(); ++column) {
      for (size_t row = 0; row < spine.num_rows(); ++row) {
        ASSERT_EQ(built->column(column).ValueToString(row),
                  expected.column(column).ValueToString(row))
            << threads << " " << expected.fields()[column].name << " " << row;
      }
    }
  }
}

FeatureViewDef SnapshotView(const std::string& path, Duration ttl, const std::string& created) {
  FeatureViewDef view;
  view.kind = ViewKind::kSnapshot;
  view.name = "s";
  view.entity = {"e", {{"k", DataType::kInt64}}, "", {}};
  view.source.name = "rows";
  view.source.path = path;
  view.source.timestamp_column = "ts";
  view.source.created_column = created;
  view.key_columns = {"k"};
  view.ttl = ttl;
  view.snapshot_features.push_back({"x", "x", DataType::kDouble, {}});
  view.snapshot_features.push_back({"label", "if(x > 10, 'big', 'small')", DataType::kString, {}});
  return view;
}

TEST_F(EngineTest, SnapshotIsLatestRowStrictlyBeforeWithinTtl) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    std::mt19937_64 random(seed * 31);
    int entities = 6, grid_points = 80;
    Events events = RandomEvents(random, 400, entities, grid_points);
    Table spine = RandomSpine(random, 600, entities, grid_points);
    Duration ttl = seed % 2 == 0 ? 0 : 4 * kGrid;  // 0: no limit
    FeatureViewDef view = SnapshotView(WriteSource(EventsTable(events), "snap"), ttl, "");
    view.snapshot_features.pop_back();
    OfflineEngine engine(config_, duckdb_.get(), 2);
    FeatureUse use;
    use.view = "s";
    ResolvedUse resolved = ResolveUse(use, view, "t", spine.fields()).value();
    Result<Table> out = engine.Build(spine, "t", {resolved});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    const Column& x = *out->GetColumn("s__x").value();
    for (size_t row = 0; row < spine.num_rows(); ++row) {
      // Reference: the last row in (ts, file order) with ts < t, if young enough.
      size_t best = SIZE_MAX;
      if (spine.column(0).IsValid(row) && spine.column(1).IsValid(row)) {
        Timestamp t = spine.column(1).ints()[row];
        for (size_t event = 0; event < events.ts.size(); ++event) {
          if (!events.key_valid[event] || events.key[event] != spine.column(0).ints()[row])
            continue;
          if (events.ts[event] >= t) continue;
          if (best == SIZE_MAX || events.ts[event] >= events.ts[best]) best = event;
        }
        if (best != SIZE_MAX && ttl > 0 && t - events.ts[best] > ttl) best = SIZE_MAX;
      }
      bool valid = best != SIZE_MAX && events.x_valid[best];
      ASSERT_EQ(x.IsValid(row), valid) << "seed " << seed << " row " << row;
      if (valid) {
        ASSERT_EQ(x.doubles()[row], events.x[best]) << "row " << row;
      }
    }
  }
}

TEST_F(EngineTest, CreatedColumnOrdersRowsWithEqualTimestamps) {
  // Three rows for one entity at the same time; file order 0,1,2 but created 2,0,1:
  // the latest arrival is the first row of the file.
  Column key(DataType::kInt64, 0), ts(DataType::kTimestamp, 0), x(DataType::kDouble, 0),
      created(DataType::kInt64, 0);
  for (int row = 0; row < 3; ++row) {
    key.AppendInt64(1);
    ts.AppendInt64(kStart);
    x.AppendDouble(10.0 + row);
    created.AppendInt64((row + 2) % 3);
  }
  Table source;
  ASSERT_TRUE(source.AddColumn("k", std::move(key)).ok());
  ASSERT_TRUE(source.AddColumn("ts", std::move(ts)).ok());
  ASSERT_TRUE(source.AddColumn("x", std::move(x)).ok());
  ASSERT_TRUE(source.AddColumn("c", std::move(created)).ok());
  std::string path = WriteSource(source, "created");
  Column spine_key(DataType::kInt64, 0), spine_t(DataType::kTimestamp, 0);
  spine_key.AppendInt64(1);
  spine_t.AppendInt64(kStart);  // equal to the rows' time: they must not be visible
  spine_key.AppendInt64(1);
  spine_t.AppendInt64(kStart + 1);
  Table spine;
  ASSERT_TRUE(spine.AddColumn("k", std::move(spine_key)).ok());
  ASSERT_TRUE(spine.AddColumn("t", std::move(spine_t)).ok());

  FeatureViewDef snapshot = SnapshotView(path, 0, "c");
  Result<Table> out = Build(spine, snapshot);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_FALSE(out->GetColumn("s__x").value()->IsValid(0));
  EXPECT_EQ(out->GetColumn("s__x").value()->doubles()[1], 10.0);
  EXPECT_EQ(out->GetColumn("s__label").value()->StringAt(1), "small");

  FeatureViewDef window = WindowView(path, {{kMicrosPerHour, kGrid}});
  window.source.created_column = "c";
  out = Build(spine, window);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->GetColumn("v__last_1h").value()->doubles()[1], 10.0);
  EXPECT_EQ(out->GetColumn("v__count_1h").value()->ints()[0], 0);
  EXPECT_EQ(out->GetColumn("v__count_1h").value()->ints()[1], 3);
}

TEST_F(EngineTest, StaticSourceRowsAreAlwaysVisible) {
  Column key(DataType::kInt64, 0), x(DataType::kDouble, 0);
  key.AppendInt64(1);
  x.AppendDouble(1.0);
  key.AppendInt64(1);
  x.AppendDouble(2.0);  // the later arrival wins
  Table source;
  ASSERT_TRUE(source.AddColumn("k", std::move(key)).ok());
  ASSERT_TRUE(source.AddColumn("x", std::move(x)).ok());
  FeatureViewDef view = SnapshotView(WriteSource(source, "static"), kMicrosPerHour, "");
  view.source.timestamp_column.clear();
  Table spine = RandomSpine(*std::make_unique<std::mt19937_64>(3), 20, 1, 10);
  Result<Table> out = Build(spine, view);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  for (size_t row = 0; row < spine.num_rows(); ++row) {
    bool known = spine.column(0).IsValid(row) && spine.column(0).ints()[row] == 1;
    bool valid = known && spine.column(1).IsValid(row);
    ASSERT_EQ(out->column(2).IsValid(row), valid) << row;
    if (valid) {
      EXPECT_EQ(out->column(2).doubles()[row], 2.0);
    }
  }
}

// One engine, several spines (batch prediction scores a spine in chunks): each
// build equals a fresh engine's, bit for bit; cached source state never leaks
// one spine's rows into another's.
TEST_F(EngineTest, ReusedEngineEqualsAFreshEngineForEverySpine) {
  std::mt19937_64 random(11);
  Events events = RandomEvents(random, 400, 6, 40);
  FeatureViewDef view =
      WindowView(WriteSource(EventsTable(events), "reuse"), {{kMicrosPerHour, kGrid}});
  OfflineEngine reused(config_, duckdb_.get(), 2);
  FeatureUse use;
  use.view = "v";
  for (size_t rows : {50, 7, 1, 30}) {
    Table spine = RandomSpine(random, rows, 6, 40);
    ResolvedUse resolved = ResolveUse(use, view, "t", spine.fields()).value();
    Result<Table> again = reused.Build(spine, "t", {resolved});
    ASSERT_TRUE(again.ok()) << again.status().message();
    Result<Table> fresh = Build(spine, view);
    ASSERT_TRUE(fresh.ok()) << fresh.status().message();
    ASSERT_EQ(again->num_columns(), fresh->num_columns());
    for (size_t column = 0; column < fresh->num_columns(); ++column) {
      const Column& a = again->column(column);
      const Column& b = fresh->column(column);
      for (size_t row = 0; row < rows; ++row) {
        ASSERT_EQ(a.IsValid(row), b.IsValid(row)) << rows << " " << column << " " << row;
        if (!b.IsValid(row)) continue;
        if (b.type() == DataType::kDouble) {
          EXPECT_EQ(std::memcmp(&a.doubles()[row], &b.doubles()[row], sizeof(double)), 0)
              << rows << " " << fresh->fields()[column].name << " " << row;
        } else {
          EXPECT_EQ(a.NumericAt(row), b.NumericAt(row))
              << rows << " " << fresh->fields()[column].name << " " << row;
        }
      }
    }
  }
}

TEST_F(EngineTest, RejectsBadSpines) {
  std::mt19937_64 random(5);
  Events events = RandomEvents(random, 50, 3, 20);
  FeatureViewDef view =
      WindowView(WriteSource(EventsTable(events), "e"), {{kMicrosPerHour, kGrid}});
  OfflineEngine engine(config_, duckdb_.get(), 1);
  Table spine = RandomSpine(random, 10, 3, 20);
  FeatureUse use;
  use.view = "v";
  ResolvedUse resolved = ResolveUse(use, view, "t", spine.fields()).value();

  Result<Table> wrong_time = engine.Build(spine, "k", {resolved});
  ASSERT_FALSE(wrong_time.ok());
  EXPECT_NE(wrong_time.status().message().find("'k' is int64, not a timestamp"), std::string::npos);
  Result<Table> missing_time = engine.Build(spine, "nope", {resolved});
  ASSERT_FALSE(missing_time.ok());
  EXPECT_NE(missing_time.status().message().find("nope"), std::string::npos);

  Table empty;
  ASSERT_TRUE(empty.AddColumn("k", Column(DataType::kInt64, 0)).ok());
  ASSERT_TRUE(empty.AddColumn("t", Column(DataType::kTimestamp, 0)).ok());
  Result<Table> none = engine.Build(empty, "t", {resolved});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("spine is empty"), std::string::npos);

  Table no_key;
  ASSERT_TRUE(no_key.AddColumn("t", Column(DataType::kTimestamp, 3)).ok());
  Result<ResolvedUse> unmapped = ResolveUse(use, view, "t", no_key.fields());
  ASSERT_FALSE(unmapped.ok());
  EXPECT_NE(unmapped.status().message().find("entity key 'k'"), std::string::npos);

  use.features = {"no_such_feature"};
  Result<ResolvedUse> unknown = ResolveUse(use, view, "t", spine.fields());
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("no_such_feature"), std::string::npos);
}

TEST_F(EngineTest, MissingSourceFileNamesTheSource) {
  FeatureViewDef view = WindowView(dir_ + "/absent.parquet", {{kMicrosPerHour, kGrid}});
  std::mt19937_64 random(1);
  Table spine = RandomSpine(random, 5, 2, 10);
  Result<Table> out = Build(spine, view);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kNotFound);
  EXPECT_NE(out.status().message().find("source 'events'"), std::string::npos);
  EXPECT_NE(out.status().message().find("absent.parquet"), std::string::npos);
}

// StartLoading reads sources ahead on a thread; the Build that follows gives
// the same table as one that reads them itself, and an error it met is
// reported by Build as if Build had met it.
TEST_F(EngineTest, StartLoadingChangesNothingButWhenSourcesAreRead) {
  std::mt19937_64 random(5);
  Events events = RandomEvents(random, 800, 10, 60);
  FeatureViewDef view =
      WindowView(WriteSource(EventsTable(events), "ahead"), {{kMicrosPerHour, kGrid}});
  Table spine = RandomSpine(random, 300, 10, 60);
  Result<Table> fresh = Build(spine, view);
  ASSERT_TRUE(fresh.ok()) << fresh.status().message();
  OfflineEngine engine(config_, duckdb_.get(), 2);
  engine.StartLoading({view, view});
  FeatureUse use;
  use.view = view.name;
  ResolvedUse resolved = ResolveUse(use, view, "t", spine.fields()).value();
  BuildReport report;
  Result<Table> ahead = engine.Build(spine, "t", {resolved}, &report);
  ASSERT_TRUE(ahead.ok()) << ahead.status().message();
  EXPECT_EQ(report.source_rows, events.ts.size());
  ASSERT_EQ(ahead->SchemaToString(), fresh->SchemaToString());
  for (size_t column = 0; column < fresh->num_columns(); ++column) {
    for (size_t row = 0; row < spine.num_rows(); ++row) {
      ASSERT_EQ(ahead->column(column).ValueToString(row), fresh->column(column).ValueToString(row));
    }
  }
  // A source that is missing: Build reports it, naming the source.
  FeatureViewDef absent = WindowView(dir_ + "/absent.parquet", {{kMicrosPerHour, kGrid}});
  OfflineEngine failing(config_, duckdb_.get(), 2);
  failing.StartLoading({absent});
  ResolvedUse resolved_absent = ResolveUse(use, absent, "t", spine.fields()).value();
  Result<Table> out = failing.Build(spine, "t", {resolved_absent});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kNotFound);
  EXPECT_NE(out.status().message().find("absent.parquet"), std::string::npos);
  // An engine destroyed without a Build waits for its loader.
  {
    OfflineEngine unused(config_, duckdb_.get(), 2);
    unused.StartLoading({view});
  }
  EXPECT_TRUE(duckdb_->Execute("SELECT 1").ok());
}

// With SharedSources, a source another reader (the source checks of `keel
// train`) reads at the same time is read once, and the features are those of
// an engine that reads it alone; errors stay the engine's own.
TEST_F(EngineTest, SharedSourcesAreReadOnceWithAnotherReader) {
  std::mt19937_64 random(6);
  Events events = RandomEvents(random, 800, 10, 60);
  FeatureViewDef view =
      WindowView(WriteSource(EventsTable(events), "shared"), {{kMicrosPerHour, kGrid}});
  Table spine = RandomSpine(random, 300, 10, 60);
  Result<Table> alone = Build(spine, view);
  ASSERT_TRUE(alone.ok()) << alone.status().message();
  FeatureUse use;
  use.view = view.name;
  ResolvedUse resolved = ResolveUse(use, view, "t", spine.fields()).value();
  SharedSources shared;
  std::shared_ptr<const Table> other_rows;
  {
    OfflineEngine engine(config_, duckdb_.get(), 2);
    engine.ShareSources(&shared);
    std::thread other([&] {
      std::unique_ptr<table::DuckDb> own = table::DuckDb::Open(1).value();
      auto load = [&]() -> Result<Table> {
        ASSIGN_OR_RETURN(std::string sql,
                         RegisterSource(view.source, view.source_inputs, config_, own.get()));
        return own->Query(sql);
      };
      Result<std::shared_ptr<const Table>> read =
          shared.Read(view.source, view.source_inputs, config_, load);
      if (read.ok()) other_rows = *read;
    });
    engine.StartLoading({view});
    Result<Table> out = engine.Build(spine, "t", {resolved});
    other.join();
    ASSERT_TRUE(out.ok()) << out.status().message();
    // The engine holds the table it read or took: a later reader takes it too.
    other_rows.reset();
    bool loaded = false;
    auto must_not_load = [&]() -> Result<Table> {
      loaded = true;
      return Internal("read again");
    };
    Result<std::shared_ptr<const Table>> later =
        shared.Read(view.source, view.source_inputs, config_, must_not_load);
    EXPECT_TRUE(later.ok() && !loaded) << later.status().message();
    if (later.ok()) other_rows = *later;
    ASSERT_EQ(out->SchemaToString(), alone->SchemaToString());
    for (size_t column = 0; column < alone->num_columns(); ++column) {
      for (size_t row = 0; row < spine.num_rows(); ++row) {
        ASSERT_EQ(out->column(column).ValueToString(row), alone->column(column).ValueToString(row));
      }
    }
  }
  ASSERT_NE(other_rows, nullptr);
  EXPECT_EQ(other_rows->num_rows(), events.ts.size());
  EXPECT_EQ(shared.uses(), (std::map<std::string, SharedSources::Use>{{"events", {3, 1}}}));
  // A missing source: Build's error, as without SharedSources.
  FeatureViewDef absent = WindowView(dir_ + "/absent.parquet", {{kMicrosPerHour, kGrid}});
  OfflineEngine failing(config_, duckdb_.get(), 2);
  failing.ShareSources(&shared);
  failing.StartLoading({absent});
  ResolvedUse resolved_absent = ResolveUse(use, absent, "t", spine.fields()).value();
  Result<Table> out = failing.Build(spine, "t", {resolved_absent});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kNotFound);
  EXPECT_NE(out.status().message().find("source 'events'"), std::string::npos);
  EXPECT_NE(out.status().message().find("absent.parquet"), std::string::npos);
}

}  // namespace
}  // namespace keel::features
