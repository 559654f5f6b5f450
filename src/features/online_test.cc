#include "features/online.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <filesystem>
#include <numeric>
#include <random>

#include "table/duckdb_bridge.h"

namespace keel::features {
namespace {

using table::Column;
using table::DataType;
using table::Table;

constexpr Timestamp kStart = 978307200LL * kMicrosPerSecond;  // 2001-01-01
constexpr Duration kGrid = 5 * kMicrosPerMinute;

struct Event {
  bool key_valid = true;
  int64_t key = 0;
  Timestamp ts = 0;
  bool x_valid = true;
  double x = 0;
};

// Random events: coarse grid (ties and hop boundaries are common), nulls in
// keys and values, arbitrary doubles (not only exact ones: parity must hold bit
// for bit anyway, since both paths use the same exact-sum kernels).
std::vector<Event> RandomEvents(std::mt19937_64& random, size_t rows, int entities,
                                int grid_points) {
  std::vector<Event> events;
  std::normal_distribution<double> normal(3.0, 40.0);
  for (size_t row = 0; row < rows; ++row) {
    Event event;
    event.key = static_cast<int64_t>(random() % entities);
    event.key_valid = random() % 40 != 0;
    event.ts = kStart + static_cast<Timestamp>(random() % grid_points) * kGrid;
    if (random() % 4 == 0) event.ts += static_cast<Timestamp>(random() % kGrid);
    event.x_valid = random() % 8 != 0;
    event.x = random() % 3 == 0 ? std::round(normal(random)) : normal(random);
    events.push_back(event);
  }
  return events;
}

Table EventsTable(const std::vector<Event>& events) {
  Column key(DataType::kInt64, 0), ts(DataType::kTimestamp, 0), x(DataType::kDouble, 0);
  for (const Event& event : events) {
    event.key_valid ? key.AppendInt64(event.key) : key.AppendNull();
    ts.AppendInt64(event.ts);
    event.x_valid ? x.AppendDouble(event.x) : x.AppendNull();
  }
  Table table;
  EXPECT_TRUE(table.AddColumn("k", std::move(key)).ok());
  EXPECT_TRUE(table.AddColumn("ts", std::move(ts)).ok());
  EXPECT_TRUE(table.AddColumn("x", std::move(x)).ok());
  return table;
}

class OnlineTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir() + "/keel_online_test_" +
           testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_.root = dir_;
    config_.project = "test";
    duckdb_ = std::move(table::DuckDb::Open(1).value());
  }

  std::string WriteSource(const Table& table, const std::string& name) {
    std::string path = dir_ + "/" + name + ".parquet";
    EXPECT_TRUE(duckdb_->WriteParquet(table, path).ok());
    return path;
  }

  static FeatureViewDef BaseView(const std::string& path, const std::string& name) {
    FeatureViewDef view;
    view.name = name;
    view.entity = {"e", {{"k", DataType::kInt64}}, "", {}};
    view.source.name = "events";
    view.source.path = path;
    view.source.timestamp_column = "ts";
    view.key_columns = {"k"};
    return view;
  }

  static FeatureViewDef WindowView(const std::string& path) {
    FeatureViewDef view = BaseView(path, "w");
    view.kind = ViewKind::kWindow;
    std::vector<WindowSpec> windows = {{kGrid, kGrid},
                                       {kMicrosPerHour, kGrid},
                                       {2 * kMicrosPerHour, 20 * kMicrosPerMinute},
                                       {3 * kMicrosPerHour, kMicrosPerHour},
                                       {90 * kMicrosPerMinute, kMicrosPerMinute}};
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
    WindowFeatureDef rows;
    rows.name = "rows";
    rows.windows = windows;
    view.window_features.push_back(rows);
    WindowFeatureDef positive;
    positive.name = "positive_share";
    positive.aggregation = Aggregation::kMean;
    positive.expression = "x > 0";
    positive.windows = {{kMicrosPerHour, kGrid}};
    view.window_features.push_back(positive);
    return view;
  }

  static FeatureViewDef SnapshotView(const std::string& path) {
    FeatureViewDef view = BaseView(path, "s");
    view.kind = ViewKind::kSnapshot;
    view.ttl = 30 * kMicrosPerMinute;
    view.snapshot_features = {{"x", "x", DataType::kDouble, {}},
                              {"doubled", "x * 2", DataType::kDouble, {}},
                              {"big", "x > 10", DataType::kBool, {}},
                              {"seen", "ts", DataType::kTimestamp, {}}};
    return view;
  }

  // The offline engine's answer for `spine`.
  Table Offline(const Table& spine, const std::vector<FeatureViewDef>& views) {
    OfflineEngine engine(config_, duckdb_.get(), 2);
    std::vector<ResolvedUse> uses;
    for (const FeatureViewDef& view : views) {
      FeatureUse use;
      use.view = view.name;
      uses.push_back(ResolveUse(use, view, "1", spine.fields()).value());
    }
    Result<Table> out = engine.Build(spine, "t", uses);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return std::move(out).value();
  }

  std::string dir_;
  RepoConfig config_;
  std::unique_ptr<table::DuckDb> duckdb_;
};

// Compares one online row with the offline row bit for bit (null == null).
void ExpectSameRow(const Table& offline, size_t offline_row, const OnlineFeatures& online,
                   size_t online_row, const std::string& where, size_t* compared,
                   size_t* mismatches) {
  for (size_t f = 0; f < online.names.size(); ++f) {
    const Column& expected = *offline.GetColumn(online.names[f]).value();
    const Column& actual = online.values[f];
    bool same = expected.IsValid(offline_row) == actual.IsValid(online_row);
    if (same && expected.IsValid(offline_row)) {
      switch (expected.type()) {
        case DataType::kDouble:
          same = std::bit_cast<uint64_t>(expected.doubles()[offline_row]) ==
                 std::bit_cast<uint64_t>(actual.doubles()[online_row]);
          break;
        case DataType::kBool:
          same = expected.bools()[offline_row] == actual.bools()[online_row];
          break;
        case DataType::kString:
          same = expected.StringAt(offline_row) == actual.StringAt(online_row);
          break;
        default:
          same = expected.ints()[offline_row] == actual.ints()[online_row];
      }
    }
    ++*compared;
    if (!same) {
      if (++*mismatches <= 10) {
        ADD_FAILURE() << where << " " << online.names[f] << ": offline "
                      << expected.ValueToString(offline_row) << " online "
                      << actual.ValueToString(online_row);
      }
    }
  }
}

// Replays `events` through the online path in time order - optionally after
// materializing everything before `materialize_end` - reading each spine row
// at its time before any event at that time is applied, and compares every
// value with the offline engine.
void ReplayAndCompare(OnlineTest* test, const std::vector<Event>& events, const Table& spine,
                      const std::vector<FeatureViewDef>& views, const Table& offline,
                      store::OnlineStore* store, Timestamp materialize_end, size_t* compared,
                      size_t* mismatches, table::DuckDb* duckdb, const RepoConfig& config) {
  std::vector<std::shared_ptr<const OnlineView>> online_views;
  std::vector<std::unique_ptr<OnlineUpdater>> updaters;
  std::vector<ResolvedUse> uses;
  Table schema = EventsTable({});
  for (const FeatureViewDef& view : views) {
    online_views.push_back(OnlineView::Make(view, "1").value());
    updaters.push_back(OnlineUpdater::Make(online_views.back(), schema.fields()).value());
    FeatureUse use;
    use.view = view.name;
    Table entities;
    ASSERT_TRUE(entities.AddColumn("k", Column(DataType::kInt64, 0)).ok());
    uses.push_back(ResolveUse(use, view, "1", entities.fields()).value());
  }
  // Events in the offline order: by ts, then file order.
  std::vector<size_t> order(events.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return events[a].ts < events[b].ts; });
  size_t next_event = 0;
  if (materialize_end != kMinTimestamp) {
    for (const std::shared_ptr<const OnlineView>& view : online_views) {
      Result<MaterializeResult> done =
          Materialize(config, duckdb, view, materialize_end, false, store);
      ASSERT_TRUE(done.ok()) << done.status().ToString();
    }
    while (next_event < order.size() && events[order[next_event]].ts < materialize_end) {
      ++next_event;
    }
  }
  // Spine rows with a valid key and time, by time.
  const Column& keys = spine.column(0);
  const Column& times = spine.column(1);
  std::vector<size_t> spine_rows;
  for (size_t row = 0; row < spine.num_rows(); ++row) {
    if (keys.IsValid(row) && times.IsValid(row) && times.ints()[row] >= materialize_end) {
      spine_rows.push_back(row);
    }
  }
  std::stable_sort(spine_rows.begin(), spine_rows.end(),
                   [&](size_t a, size_t b) { return times.ints()[a] < times.ints()[b]; });
  for (size_t i = 0; i < spine_rows.size();) {
    Timestamp t = times.ints()[spine_rows[i]];
    std::vector<Event> batch;
    while (next_event < order.size() && events[order[next_event]].ts < t) {
      batch.push_back(events[order[next_event++]]);
    }
    Table rows = EventsTable(batch);
    for (auto& updater : updaters) {
      ApplyStats stats;
      Status applied = updater->Apply(rows, store, &stats);
      ASSERT_TRUE(applied.ok()) << applied.ToString();
      ASSERT_EQ(stats.late, 0u);
    }
    // Every spine row at t, read in one batch.
    Column entity_keys(DataType::kInt64, 0);
    std::vector<size_t> at_t;
    for (; i < spine_rows.size() && times.ints()[spine_rows[i]] == t; ++i) {
      at_t.push_back(spine_rows[i]);
      entity_keys.AppendInt64(keys.ints()[spine_rows[i]]);
    }
    Table entities;
    ASSERT_TRUE(entities.AddColumn("k", std::move(entity_keys)).ok());
    OnlineFeatures features;
    Status read = ReadOnlineFeatures(store, entities, uses, online_views, t, &features);
    ASSERT_TRUE(read.ok()) << read.ToString();
    for (size_t j = 0; j < at_t.size(); ++j) {
      ExpectSameRow(offline, at_t[j], features, j, "t=" + FormatTimestamp(t), compared, mismatches);
    }
  }
}

Table RandomSpine(std::mt19937_64& random, size_t rows, int entities, int grid_points) {
  Column key(DataType::kInt64, 0), t(DataType::kTimestamp, 0);
  for (size_t row = 0; row < rows; ++row) {
    random() % 40 == 0 ? key.AppendNull()
                       : key.AppendInt64(static_cast<int64_t>(random() % (entities + 2)));
    Timestamp time = kStart + static_cast<Timestamp>(random() % (grid_points + 4)) * kGrid;
    if (random() % 3 == 0) time += static_cast<Timestamp>(random() % kGrid);
    t.AppendInt64(time);
  }
  Table table;
  EXPECT_TRUE(table.AddColumn("k", std::move(key)).ok());
  EXPECT_TRUE(table.AddColumn("t", std::move(t)).ok());
  return table;
}

TEST_F(OnlineTest, StreamingEqualsOfflineBitForBit) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 random(seed);
    int entities = 3 + static_cast<int>(seed), grid_points = 80;
    std::vector<Event> events = RandomEvents(random, 600, entities, grid_points);
    std::string path = WriteSource(EventsTable(events), "events" + std::to_string(seed));
    std::vector<FeatureViewDef> views = {WindowView(path), SnapshotView(path)};
    Table spine = RandomSpine(random, 500, entities, grid_points);
    Table offline = Offline(spine, views);
    std::unique_ptr<store::OnlineStore> store = store::NewMemoryStore("test");
    size_t compared = 0, mismatches = 0;
    ReplayAndCompare(this, events, spine, views, offline, store.get(), kMinTimestamp, &compared,
                     &mismatches, duckdb_.get(), config_);
    EXPECT_EQ(mismatches, 0u);
    EXPECT_GT(compared, 400u * 30);
  }
}

TEST_F(OnlineTest, MaterializeThenStreamEqualsOffline) {
  for (uint64_t seed = 11; seed <= 13; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 random(seed);
    int entities = 5, grid_points = 100;
    std::vector<Event> events = RandomEvents(random, 800, entities, grid_points);
    std::string path = WriteSource(EventsTable(events), "events" + std::to_string(seed));
    std::vector<FeatureViewDef> views = {WindowView(path), SnapshotView(path)};
    Table spine = RandomSpine(random, 500, entities, grid_points);
    Table offline = Offline(spine, views);
    std::unique_ptr<store::OnlineStore> store = store::NewMemoryStore("test");
    size_t compared = 0, mismatches = 0;
    // Materialize up to a time between grid points, then stream the rest.
    Timestamp end = kStart + 40 * kGrid + 7 * kMicrosPerSecond;
    ReplayAndCompare(this, events, spine, views, offline, store.get(), end, &compared, &mismatches,
                     duckdb_.get(), config_);
    EXPECT_EQ(mismatches, 0u);
    EXPECT_GT(compared, 200u * 30);
  }
}

TEST_F(OnlineTest, OutOfOrderEventsWithinTheHorizonCountExactly) {
  // Unique timestamps per entity, so `last` is unambiguous whatever the arrival order.
  std::mt19937_64 random(5);
  std::vector<Event> events;
  for (int i = 0; i < 400; ++i) {
    Event event;
    event.key = i % 4;
    event.ts = kStart + static_cast<Timestamp>(i) * 8 * kMicrosPerSecond;
    event.x = static_cast<double>(static_cast<int64_t>(random() % 1000)) / 7.0;
    event.x_valid = random() % 6 != 0;
    events.push_back(event);
  }
  std::string path = WriteSource(EventsTable(events), "events");
  FeatureViewDef view = WindowView(path);
  Timestamp t = kStart + 400 * 8 * kMicrosPerSecond + kMicrosPerMinute;
  Table spine;
  Column keys(DataType::kInt64, 0), times(DataType::kTimestamp, 0);
  for (int64_t key = 0; key < 4; ++key) {
    keys.AppendInt64(key);
    times.AppendInt64(t);
  }
  ASSERT_TRUE(spine.AddColumn("k", std::move(keys)).ok());
  ASSERT_TRUE(spine.AddColumn("t", std::move(times)).ok());
  Table offline = Offline(spine, {view});

  // Deliver the newest 200 events first, then the older ones shuffled in small batches.
  std::vector<Event> shuffled(events.begin(), events.end());
  std::reverse(shuffled.begin(), shuffled.end());
  std::shuffle(shuffled.begin() + 50, shuffled.end(), random);
  std::shared_ptr<const OnlineView> online = OnlineView::Make(view, "1").value();
  std::unique_ptr<OnlineUpdater> updater =
      OnlineUpdater::Make(online, EventsTable({}).fields()).value();
  std::unique_ptr<store::OnlineStore> store = store::NewMemoryStore("test");
  ApplyStats stats;
  for (size_t i = 0; i < shuffled.size(); i += 13) {
    std::vector<Event> batch(shuffled.begin() + i,
                             shuffled.begin() + std::min(shuffled.size(), i + 13));
    ASSERT_TRUE(updater->Apply(EventsTable(batch), store.get(), &stats).ok());
  }
  // Events span 3200 s; the shortest retention (the 5-minute-hop stream's
  // longest window) is 1 h: none is late.
  EXPECT_EQ(stats.late, 0u);
  EXPECT_EQ(stats.rows, 400u);
  Table entities;
  ASSERT_TRUE(entities.AddColumn("k", spine.column(0)).ok());
  FeatureUse use;
  use.view = view.name;
  std::vector<ResolvedUse> uses = {ResolveUse(use, view, "1", entities.fields()).value()};
  OnlineFeatures features;
  ASSERT_TRUE(ReadOnlineFeatures(store.get(), entities, uses, {online}, t, &features).ok());
  size_t compared = 0, mismatches = 0;
  for (size_t row = 0; row < 4; ++row) {
    ExpectSameRow(offline, row, features, row, "row", &compared, &mismatches);
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST_F(OnlineTest, EventsOlderThanTheHorizonAreDroppedAndCounted) {
  FeatureViewDef view = WindowView("unused.parquet");
  std::shared_ptr<const OnlineView> online = OnlineView::Make(view, "1").value();
  std::unique_ptr<OnlineUpdater> updater =
      OnlineUpdater::Make(online, EventsTable({}).fields()).value();
  std::unique_ptr<store::OnlineStore> store = store::NewMemoryStore("test");
  ApplyStats stats;
  Timestamp now = kStart + 10 * kMicrosPerHour;
  ASSERT_TRUE(updater->Apply(EventsTable({{true, 1, now, true, 5.0}}), store.get(), &stats).ok());
  // 3 h windows with 1 h hops: the horizon of that stream is now - 3 h; the
  // 5-minute stream's is now - 1 h... every stream must accept for a row to count.
  ASSERT_TRUE(updater
                  ->Apply(EventsTable({{true, 1, now - 4 * kMicrosPerHour, true, 1.0},
                                       {true, 1, now - 10 * kMicrosPerMinute, true, 2.0}}),
                          store.get(), &stats)
                  .ok());
  EXPECT_EQ(stats.rows, 2u);
  EXPECT_EQ(stats.late, 1u);
  // A null key is counted apart.
  ASSERT_TRUE(updater->Apply(EventsTable({{false, 0, now, true, 1.0}}), store.get(), &stats).ok());
  EXPECT_EQ(stats.no_key, 1u);
}

TEST_F(OnlineTest, StatusesFollowFeastsMeaning) {
  std::string path = WriteSource(EventsTable({}), "empty");
  FeatureViewDef window = WindowView(path);
  FeatureViewDef snapshot = SnapshotView(path);
  std::shared_ptr<const OnlineView> w = OnlineView::Make(window, "1").value();
  std::shared_ptr<const OnlineView> s = OnlineView::Make(snapshot, "1").value();
  std::unique_ptr<store::OnlineStore> store = store::NewMemoryStore("test");
  ApplyStats stats;
  Timestamp t0 = kStart + kMicrosPerHour;
  Table rows = EventsTable({{true, 1, t0, true, 12.0}, {true, 2, t0, false, 0.0}});
  ASSERT_TRUE(OnlineUpdater::Make(w, rows.fields()).value()->Apply(rows, store.get(), &stats).ok());
  ASSERT_TRUE(OnlineUpdater::Make(s, rows.fields()).value()->Apply(rows, store.get(), &stats).ok());

  Column keys(DataType::kInt64, 0);
  keys.AppendInt64(1);  // present
  keys.AppendInt64(2);  // null value
  keys.AppendInt64(3);  // not found
  keys.AppendNull();    // invalid
  Table entities;
  ASSERT_TRUE(entities.AddColumn("k", std::move(keys)).ok());
  std::vector<ResolvedUse> uses;
  for (const FeatureViewDef& view : {window, snapshot}) {
    FeatureUse use;
    use.view = view.name;
    use.features = {view.kind == ViewKind::kWindow ? "mean_1h" : "x"};
    if (view.kind == ViewKind::kWindow) use.features.push_back("count_1h");
    uses.push_back(ResolveUse(use, view, "1", entities.fields()).value());
  }
  OnlineFeatures out;
  ASSERT_TRUE(
      ReadOnlineFeatures(store.get(), entities, uses, {w, s}, t0 + kMicrosPerMinute, &out).ok());
  ASSERT_EQ(out.names, (std::vector<std::string>{"w__count_1h", "w__mean_1h", "s__x"}));
  using S = FeatureStatus;
  EXPECT_EQ(out.statuses[1],
            (std::vector<S>{S::kPresent, S::kNullValue, S::kNotFound, S::kInvalid}));
  EXPECT_EQ(out.statuses[2],
            (std::vector<S>{S::kPresent, S::kNullValue, S::kNotFound, S::kInvalid}));
  EXPECT_EQ(out.values[1].doubles()[0], 12.0);
  EXPECT_EQ(out.values[2].doubles()[0], 12.0);
  // An unknown entity counts 0, as offline; the count itself is present for 2.
  EXPECT_EQ(out.values[0].ints()[2], 0);
  EXPECT_TRUE(out.values[0].IsValid(2));
  EXPECT_EQ(out.values[0].ints()[1], 0);
  EXPECT_EQ(out.event_timestamps[2][0], t0);
  // 31 minutes later the snapshot (ttl 30 min) is outside its max age.
  ASSERT_TRUE(
      ReadOnlineFeatures(store.get(), entities, uses, {w, s}, t0 + 31 * kMicrosPerMinute, &out)
          .ok());
  EXPECT_EQ(out.statuses[2][0], S::kOutsideMaxAge);
  EXPECT_FALSE(out.values[2].IsValid(0));
  EXPECT_EQ(FeatureStatusName(S::kOutsideMaxAge), "OUTSIDE_MAX_AGE");
}

// An OnlineFeatures passed again (the server reuses one per thread) reads
// exactly as a fresh one, whatever the previous read's shape.
TEST_F(OnlineTest, AReusedResultReadsAsAFreshOne) {
  std::string path = WriteSource(EventsTable({}), "reuse");
  FeatureViewDef window = WindowView(path);
  FeatureViewDef snapshot = SnapshotView(path);
  std::shared_ptr<const OnlineView> w = OnlineView::Make(window, "1").value();
  std::shared_ptr<const OnlineView> s = OnlineView::Make(snapshot, "1").value();
  std::unique_ptr<store::OnlineStore> store = store::NewMemoryStore("test");
  ApplyStats stats;
  Timestamp t0 = kStart + kMicrosPerHour;
  Table rows = EventsTable({{true, 1, t0, true, 12.0}, {true, 2, t0, false, 0.0}});
  ASSERT_TRUE(OnlineUpdater::Make(w, rows.fields()).value()->Apply(rows, store.get(), &stats).ok());
  ASSERT_TRUE(OnlineUpdater::Make(s, rows.fields()).value()->Apply(rows, store.get(), &stats).ok());
  auto entities_of = [](std::vector<std::optional<int64_t>> keys) {
    Column column(DataType::kInt64, 0);
    for (const auto& key : keys) key.has_value() ? column.AppendInt64(*key) : column.AppendNull();
    Table entities;
    EXPECT_TRUE(entities.AddColumn("k", std::move(column)).ok());
    return entities;
  };
  auto uses_of = [](const std::vector<FeatureViewDef>& views, const Table& entities) {
    std::vector<ResolvedUse> uses;
    for (const FeatureViewDef& view : views) {
      FeatureUse use;
      use.view = view.name;
      uses.push_back(ResolveUse(use, view, "1", entities.fields()).value());
    }
    return uses;
  };
  auto same = [](const OnlineFeatures& a, const OnlineFeatures& b) {
    ASSERT_EQ(a.names, b.names);
    ASSERT_EQ(a.values.size(), b.values.size());
    EXPECT_EQ(a.statuses, b.statuses);
    EXPECT_EQ(a.event_timestamps, b.event_timestamps);
    for (size_t f = 0; f < a.values.size(); ++f) {
      ASSERT_EQ(a.values[f].type(), b.values[f].type()) << a.names[f];
      ASSERT_EQ(a.values[f].size(), b.values[f].size()) << a.names[f];
      for (size_t row = 0; row < a.values[f].size(); ++row) {
        EXPECT_EQ(a.values[f].ValueToString(row), b.values[f].ValueToString(row)) << a.names[f];
        EXPECT_EQ(a.values[f].IsValid(row), b.values[f].IsValid(row)) << a.names[f];
      }
    }
  };
  OnlineFeatures reused;
  // Shapes in turn: both views over four entities (nulls among them), the
  // snapshot alone over one, the window view alone over three, both again.
  std::vector<std::pair<std::vector<FeatureViewDef>, std::vector<std::optional<int64_t>>>> reads = {
      {{window, snapshot}, {1, 2, 3, std::nullopt}},
      {{snapshot}, {2}},
      {{window}, {std::nullopt, 1, 1}},
      {{snapshot, window}, {3, 1}}};
  for (const auto& [views, keys] : reads) {
    Table entities = entities_of(keys);
    std::vector<ResolvedUse> uses = uses_of(views, entities);
    std::vector<std::shared_ptr<const OnlineView>> online;
    for (const FeatureViewDef& view : views) online.push_back(view.name == window.name ? w : s);
    OnlineFeatures fresh;
    Timestamp at = t0 + kMicrosPerMinute;
    ASSERT_TRUE(ReadOnlineFeatures(store.get(), entities, uses, online, at, &fresh).ok());
    ASSERT_TRUE(ReadOnlineFeatures(store.get(), entities, uses, online, at, &reused).ok());
    same(fresh, reused);
  }
}

TEST_F(OnlineTest, TwoVersionsOfAViewLiveSideBySide) {
  std::string path = WriteSource(EventsTable({}), "empty");
  FeatureViewDef v1 = WindowView(path);
  std::shared_ptr<const OnlineView> one = OnlineView::Make(v1, "aaa").value();
  std::shared_ptr<const OnlineView> two = OnlineView::Make(v1, "bbb").value();
  std::unique_ptr<store::OnlineStore> store = store::NewMemoryStore("test");
  ApplyStats stats;
  Timestamp t0 = kStart;
  Table first = EventsTable({{true, 1, t0, true, 1.0}});
  Table second = EventsTable({{true, 1, t0, true, 100.0}});
  ASSERT_TRUE(
      OnlineUpdater::Make(one, first.fields()).value()->Apply(first, store.get(), &stats).ok());
  ASSERT_TRUE(
      OnlineUpdater::Make(two, second.fields()).value()->Apply(second, store.get(), &stats).ok());
  Column keys(DataType::kInt64, 0);
  keys.AppendInt64(1);
  Table entities;
  ASSERT_TRUE(entities.AddColumn("k", std::move(keys)).ok());
  FeatureUse use;
  use.view = "w";
  use.features = {"sum_1h"};
  ResolvedUse a = ResolveUse(use, v1, "aaa", entities.fields()).value();
  use.alias = "w2";
  ResolvedUse b = ResolveUse(use, v1, "bbb", entities.fields()).value();
  OnlineFeatures out;
  ASSERT_TRUE(
      ReadOnlineFeatures(store.get(), entities, {a, b}, {one, two}, t0 + kMicrosPerMinute, &out)
          .ok());
  EXPECT_EQ(out.values[0].doubles()[0], 1.0);
  EXPECT_EQ(out.values[1].doubles()[0], 100.0);
}

TEST_F(OnlineTest, StateEncodingRoundTripsAndRejectsEveryCorruption) {
  std::string path = WriteSource(EventsTable({}), "empty");
  std::mt19937_64 random(3);
  std::vector<Event> events = RandomEvents(random, 200, 1, 40);
  for (Event& event : events) event.key_valid = true;
  for (const FeatureViewDef& def : {WindowView(path), SnapshotView(path)}) {
    std::shared_ptr<const OnlineView> view = OnlineView::Make(def, "1").value();
    std::unique_ptr<store::OnlineStore> store = store::NewMemoryStore("test");
    ApplyStats stats;
    Table rows = EventsTable(events);
    ASSERT_TRUE(
        OnlineUpdater::Make(view, rows.fields()).value()->Apply(rows, store.get(), &stats).ok());
    std::string key;
    Column k(DataType::kInt64, 0);
    k.AppendInt64(events[0].key);
    ASSERT_TRUE(EncodeEntityKey("e", {&k}, 0, &key));
    std::vector<std::optional<std::string>> values;
    store::StoreKey store_key{key, view->store_view()};
    ASSERT_TRUE(store->Read(std::span(&store_key, 1), &values).ok());
    ASSERT_TRUE(values[0].has_value());
    const std::string& bytes = *values[0];
    Result<EntityState> decoded = DecodeEntityState(*view, bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(EncodeEntityState(*view, *decoded), bytes);
    // Every truncation fails cleanly; random byte flips never crash.
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
      EXPECT_FALSE(DecodeEntityState(*view, bytes.substr(0, cut)).ok()) << cut;
    }
    for (int trial = 0; trial < 2000; ++trial) {
      std::string corrupt = bytes;
      corrupt[random() % corrupt.size()] ^= static_cast<char>(1 + random() % 255);
      (void)DecodeEntityState(*view, corrupt);
    }
  }
}

TEST_F(OnlineTest, MaterializeIsIdempotentAndIncrementalContinuesFromTheWatermark) {
  std::mt19937_64 random(21);
  std::vector<Event> events = RandomEvents(random, 500, 4, 60);
  std::string path = WriteSource(EventsTable(events), "events");
  FeatureViewDef def = WindowView(path);
  std::shared_ptr<const OnlineView> view = OnlineView::Make(def, "1").value();
  Timestamp middle = kStart + 30 * kGrid, end = kStart + 61 * kGrid;
  auto snapshot_of = [&](store::OnlineStore* store) {
    std::vector<std::string> keys(4);
    std::vector<store::StoreKey> store_keys;
    for (int64_t key = 0; key < 4; ++key) {
      Column k(DataType::kInt64, 0);
      k.AppendInt64(key);
      EncodeEntityKey("e", {&k}, 0, &keys[key]);
    }
    for (const std::string& key : keys) store_keys.push_back({key, view->store_view()});
    std::vector<std::optional<std::string>> values;
    EXPECT_TRUE(store->Read(store_keys, &values).ok());
    return values;
  };
  // Full to `end` once and twice: identical bytes.
  std::unique_ptr<store::OnlineStore> full = store::NewMemoryStore("test");
  ASSERT_TRUE(Materialize(config_, duckdb_.get(), view, end, false, full.get()).ok());
  auto once = snapshot_of(full.get());
  ASSERT_TRUE(Materialize(config_, duckdb_.get(), view, end, false, full.get()).ok());
  EXPECT_EQ(snapshot_of(full.get()), once);
  EXPECT_EQ(*MaterializedWatermark(full.get(), *view).value(), end);
  // Incremental: to `middle`, then on to `end`, then again to `end` (no-op):
  // the same windows as the full run (arrival numbers too: rows arrive in order).
  std::unique_ptr<store::OnlineStore> steps = store::NewMemoryStore("test");
  ASSERT_TRUE(Materialize(config_, duckdb_.get(), view, middle, true, steps.get()).ok());
  Result<MaterializeResult> second =
      Materialize(config_, duckdb_.get(), view, end, true, steps.get());
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->from, middle);
  ASSERT_TRUE(Materialize(config_, duckdb_.get(), view, end, true, steps.get()).ok());
  auto stepped = snapshot_of(steps.get());
  for (size_t i = 0; i < once.size(); ++i) {
    ASSERT_EQ(once[i].has_value(), stepped[i].has_value());
    if (!once[i]) continue;
    EntityState a = DecodeEntityState(*view, *once[i]).value();
    EntityState b = DecodeEntityState(*view, *stepped[i]).value();
    EXPECT_EQ(a.newest_ts, b.newest_ts);
    EXPECT_EQ(a.next_arrival, b.next_arrival);
    for (const OnlineOutput& output : view->outputs()) {
      FeatureValue x =
          Finalize(output.aggregation, a.series[output.stream].Read(output.length, end));
      FeatureValue y =
          Finalize(output.aggregation, b.series[output.stream].Read(output.length, end));
      EXPECT_EQ(x.valid, y.valid);
      EXPECT_EQ(std::bit_cast<uint64_t>(x.value), std::bit_cast<uint64_t>(y.value)) << output.name;
    }
  }
  // A crash after the entity values were written but before the watermark
  // was: the rerun, even to a later end, applies no row twice.
  std::unique_ptr<store::OnlineStore> crashed = store::NewMemoryStore("test");
  Timestamp later = kStart + 45 * kGrid;
  ASSERT_TRUE(Materialize(config_, duckdb_.get(), view, middle, true, crashed.get()).ok());
  ASSERT_TRUE(Materialize(config_, duckdb_.get(), view, later, true, crashed.get()).ok());
  std::string middle_text = std::to_string(middle);
  std::vector<store::MetaEntry> rewind = {{"watermark/" + view->store_view(), middle_text}};
  std::string rewind_name = "watermark/" + view->store_view();
  rewind[0].name = rewind_name;
  ASSERT_TRUE(crashed->Write({}, rewind).ok());
  ASSERT_TRUE(Materialize(config_, duckdb_.get(), view, end, true, crashed.get()).ok());
  auto resumed = snapshot_of(crashed.get());
  for (size_t i = 0; i < once.size(); ++i) {
    ASSERT_EQ(once[i].has_value(), resumed[i].has_value());
    if (!once[i]) continue;
    EntityState a = DecodeEntityState(*view, *once[i]).value();
    EntityState b = DecodeEntityState(*view, *resumed[i]).value();
    for (const OnlineOutput& output : view->outputs()) {
      FeatureValue x =
          Finalize(output.aggregation, a.series[output.stream].Read(output.length, end));
      FeatureValue y =
          Finalize(output.aggregation, b.series[output.stream].Read(output.length, end));
      EXPECT_EQ(x.valid, y.valid);
      EXPECT_EQ(std::bit_cast<uint64_t>(x.value), std::bit_cast<uint64_t>(y.value))
          << output.name << " after a resumed crash";
    }
  }
  // Going backwards is refused, full or incremental.
  Result<MaterializeResult> full_back =
      Materialize(config_, duckdb_.get(), view, middle, false, steps.get());
  EXPECT_EQ(full_back.status().code(), StatusCode::kFailedPrecondition);
  Result<MaterializeResult> back =
      Materialize(config_, duckdb_.get(), view, middle, true, steps.get());
  EXPECT_FALSE(back.ok());
}

}  // namespace
}  // namespace keel::features
