#include "features/online_events.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

namespace keel::features {
namespace {

using table::Column;
using table::DataType;
using table::Table;

constexpr Timestamp kStart = 978307200LL * kMicrosPerSecond;  // 2001-01-01

struct Event {
  int64_t key = 0;
  Timestamp ts = 0;
  double x = 0;
  std::optional<std::string> id;  // nullopt: no event id
};

Table EventsTable(const std::vector<Event>& events, Column* ids) {
  Column key(DataType::kInt64, 0), ts(DataType::kTimestamp, 0), x(DataType::kDouble, 0);
  *ids = Column(DataType::kString, 0);
  for (const Event& event : events) {
    key.AppendInt64(event.key);
    ts.AppendInt64(event.ts);
    x.AppendDouble(event.x);
    event.id.has_value() ? ids->AppendString(*event.id) : ids->AppendNull();
  }
  Table table;
  EXPECT_TRUE(table.AddColumn("k", std::move(key)).ok());
  EXPECT_TRUE(table.AddColumn("ts", std::move(ts)).ok());
  EXPECT_TRUE(table.AddColumn("x", std::move(x)).ok());
  return table;
}

FeatureViewDef View(ViewKind kind) {
  FeatureViewDef view;
  view.name = kind == ViewKind::kWindow ? "w" : "s";
  view.kind = kind;
  view.entity = {"e", {{"k", DataType::kInt64}}, "", {}};
  view.source.name = "events";
  view.source.path = "unused.parquet";
  view.source.timestamp_column = "ts";
  view.key_columns = {"k"};
  if (kind == ViewKind::kWindow) {
    for (Aggregation aggregation : {Aggregation::kCount, Aggregation::kSum, Aggregation::kLast}) {
      WindowFeatureDef feature;
      feature.name = std::string(AggregationName(aggregation));
      feature.aggregation = aggregation;
      feature.expression = "x";
      feature.windows = {{kMicrosPerHour, 5 * kMicrosPerMinute}, {kMicrosPerDay, kMicrosPerHour}};
      view.window_features.push_back(feature);
    }
  } else {
    view.snapshot_features = {{"x", "x", DataType::kDouble, {}}};
  }
  return view;
}

// Every stored state of `view` for keys 0..entities-1 (recent event ids excluded).
std::vector<std::optional<std::string>> States(store::OnlineStore* store, const OnlineView& view,
                                               int entities) {
  std::vector<std::string> keys;
  Column key(DataType::kInt64, 0);
  for (int64_t k = 0; k < entities; ++k) key.AppendInt64(k);
  for (int64_t k = 0; k < entities; ++k) {
    keys.emplace_back();
    EncodeEntityKey("e", {&key}, static_cast<size_t>(k), &keys.back());
  }
  std::vector<store::StoreKey> store_keys;
  for (const std::string& k : keys) store_keys.push_back({k, view.store_view()});
  std::vector<std::optional<std::string>> values;
  EXPECT_TRUE(store->Read(store_keys, &values).ok());
  return values;
}

class OnlineEventsTest : public testing::TestWithParam<std::string> {
 protected:
  // A fresh store of the parameter's type. Redis servers are the ones
  // scripts/services starts (KEEL_TEST_REDIS_URL, KEEL_TEST_REDIS_CLUSTER_URL);
  // a project name of its own per run keeps earlier runs' keys out.
  std::unique_ptr<store::OnlineStore> OpenStore(const std::string& name) {
    store::StoreOptions options;
    options.type = GetParam();
    options.project = "events_test_" + name + "_" + std::to_string(::getpid()) + "_" +
                      std::to_string(WallClockNow());
    options.path = testing::TempDir() + "/keel_online_events_" + name;
    std::filesystem::remove_all(options.path);
    auto env = [](const char* name, const char* fallback) {
      const char* value = std::getenv(name);
      return std::string(value != nullptr ? value : fallback);
    };
    if (options.type == "redis") {
      options.url = env("KEEL_TEST_REDIS_URL", "redis://127.0.0.1:6390");
    } else if (options.type == "redis-cluster") {
      options.url = env("KEEL_TEST_REDIS_CLUSTER_URL",
                        "redis://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003");
    }
    Result<std::unique_ptr<store::OnlineStore>> store = store::OpenOnlineStore(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return std::move(store).value();
  }
};

// Deliveries with re-sent batches, repeated ids inside a batch, and views that
// miss a delivery (a crash between the views' writes) until it is sent again:
// every state ends byte-identical to applying each event once, in the order
// that view first received it.
TEST_P(OnlineEventsTest, RedeliveredEventsApplyExactlyOncePerState) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 random(seed);
    const int entities = 5;
    std::vector<Event> events;
    for (int i = 0; i < 400; ++i) {
      Event event;
      event.key = static_cast<int64_t>(random() % entities);
      event.ts = kStart + static_cast<Timestamp>(random() % 200) * kMicrosPerMinute;
      event.x = static_cast<double>(random() % 1000) / 8.0;
      if (random() % 10 != 0) event.id = "ev-" + std::to_string(i);
      events.push_back(event);
    }
    std::sort(events.begin(), events.end(),
              [](const Event& a, const Event& b) { return a.ts < b.ts; });
    std::vector<std::vector<Event>> batches;
    for (size_t i = 0; i < events.size();) {
      size_t size = 1 + random() % 40;
      std::vector<Event> batch(events.begin() + i,
                               events.begin() + std::min(events.size(), i + size));
      // A client that retries one event inside its own batch.
      if (random() % 3 == 0 && !batch.empty()) batch.push_back(batch[random() % batch.size()]);
      batches.push_back(std::move(batch));
      i += size;
    }
    std::unique_ptr<store::OnlineStore> store = OpenStore("s" + std::to_string(seed));
    std::unique_ptr<store::OnlineStore> reference = store::NewMemoryStore("events_test");
    for (ViewKind kind : {ViewKind::kWindow, ViewKind::kSnapshot}) {
      std::shared_ptr<const OnlineView> view = OnlineView::Make(View(kind), "1").value();
      Column ids;
      std::vector<table::Field> fields = EventsTable({}, &ids).fields();
      std::unique_ptr<OnlineUpdater> updater = OnlineUpdater::Make(view, fields).value();
      std::unique_ptr<OnlineUpdater> plain = OnlineUpdater::Make(view, fields).value();
      std::set<std::string> applied;  // ids this view has received
      uint64_t expected_duplicates = 0;
      ApplyStats stats, reference_stats;
      auto deliver = [&](const std::vector<Event>& batch) {
        Table rows = EventsTable(batch, &ids);
        ASSERT_TRUE(updater->Apply(rows, store.get(), &stats, {.event_ids = &ids}).ok());
        std::vector<Event> fresh;
        for (const Event& event : batch) {
          if (event.id.has_value() && !applied.insert(*event.id).second) {
            ++expected_duplicates;
            continue;
          }
          fresh.push_back(event);
        }
        Column unused;
        ASSERT_TRUE(
            plain->Apply(EventsTable(fresh, &unused), reference.get(), &reference_stats).ok());
      };
      std::vector<size_t> missed;
      for (size_t b = 0; b < batches.size(); ++b) {
        if (random() % 5 == 0) {
          missed.push_back(b);  // this view crashed before writing it
        } else {
          deliver(batches[b]);
        }
        if (b > 0 && random() % 4 == 0) deliver(batches[random() % b]);  // a resend
        if (!missed.empty() && random() % 2 == 0) {
          deliver(batches[missed.back()]);  // the redelivery after the crash
          missed.pop_back();
        }
      }
      for (size_t b : missed) deliver(batches[b]);
      EXPECT_EQ(stats.duplicates, expected_duplicates);
      EXPECT_GT(stats.duplicates, 0u);
      EXPECT_EQ(stats.rows, reference_stats.rows);
      std::vector<std::optional<std::string>> got = States(store.get(), *view, entities);
      std::vector<std::optional<std::string>> want = States(reference.get(), *view, entities);
      for (int k = 0; k < entities; ++k) {
        ASSERT_TRUE(want[k].has_value());
        EXPECT_TRUE(got[k] == want[k]) << view->store_view() << " entity " << k;
      }
    }
  }
}

TEST_P(OnlineEventsTest, IntegerIdsAndNullIds) {
  std::unique_ptr<store::OnlineStore> store = OpenStore("ints");
  std::shared_ptr<const OnlineView> view = OnlineView::Make(View(ViewKind::kWindow), "1").value();
  Column unused;
  Table rows = EventsTable({{1, kStart, 1.0, {}}, {1, kStart, 2.0, {}}}, &unused);
  std::unique_ptr<OnlineUpdater> updater = OnlineUpdater::Make(view, rows.fields()).value();
  Column ids(DataType::kInt64, 0);
  ids.AppendInt64(7);
  ids.AppendNull();
  ApplyStats stats;
  ASSERT_TRUE(updater->Apply(rows, store.get(), &stats, {.event_ids = &ids}).ok());
  ASSERT_TRUE(updater->Apply(rows, store.get(), &stats, {.event_ids = &ids}).ok());
  // Id 7 once; the row without an id both times.
  EXPECT_EQ(stats.rows, 3u);
  EXPECT_EQ(stats.duplicates, 1u);
  Column wrong(DataType::kDouble, 2);
  EXPECT_EQ(updater->Apply(rows, store.get(), &stats, {.event_ids = &wrong}).code(),
            StatusCode::kInvalidArgument);
  Column short_ids(DataType::kInt64, 1);
  EXPECT_EQ(updater->Apply(rows, store.get(), &stats, {.event_ids = &short_ids}).code(),
            StatusCode::kInvalidArgument);
}

TEST_P(OnlineEventsTest, NewestEventAppliedIsRecordedAndNeverGoesBack) {
  std::unique_ptr<store::OnlineStore> store = OpenStore("newest");
  std::shared_ptr<const OnlineView> view = OnlineView::Make(View(ViewKind::kSnapshot), "1").value();
  Column ids;
  std::unique_ptr<OnlineUpdater> updater =
      OnlineUpdater::Make(view, EventsTable({}, &ids).fields()).value();
  EXPECT_FALSE(NewestEventApplied(store.get(), *view).value().has_value());
  ApplyStats stats;
  Table rows = EventsTable({{1, kStart + 50, 1.0, "a"}, {2, kStart + 90, 1.0, "b"}}, &ids);
  ASSERT_TRUE(
      updater->Apply(rows, store.get(), &stats, {.event_ids = &ids, .record_newest = true}).ok());
  EXPECT_EQ(NewestEventApplied(store.get(), *view).value(), kStart + 90);
  stats = {};
  rows = EventsTable({{1, kStart + 10, 1.0, "c"}}, &ids);
  ASSERT_TRUE(
      updater->Apply(rows, store.get(), &stats, {.event_ids = &ids, .record_newest = true}).ok());
  EXPECT_EQ(NewestEventApplied(store.get(), *view).value(), kStart + 90);
  ASSERT_TRUE(
      store->Write({}, std::vector<store::MetaEntry>{{NewestEventMetaName(*view), "x"}}).ok());
  EXPECT_EQ(NewestEventApplied(store.get(), *view).status().code(), StatusCode::kInvalidArgument);
}

// Enough ids per entity that the tail set is folded into the main set many
// times: resends of batches whose ids now live in the main set, in the tail,
// or in both (a batch straddling a fold) are all dropped, and the states end
// byte-identical to applying every event once.
TEST_P(OnlineEventsTest, ResendsAreDroppedAcrossTailFolds) {
  std::unique_ptr<store::OnlineStore> store = OpenStore("folds");
  std::unique_ptr<store::OnlineStore> reference = store::NewMemoryStore("events_test");
  std::shared_ptr<const OnlineView> view = OnlineView::Make(View(ViewKind::kWindow), "1").value();
  Column ids;
  std::vector<table::Field> fields = EventsTable({}, &ids).fields();
  std::unique_ptr<OnlineUpdater> updater = OnlineUpdater::Make(view, fields).value();
  std::unique_ptr<OnlineUpdater> plain = OnlineUpdater::Make(view, fields).value();
  std::mt19937_64 random(11);
  std::vector<std::vector<Event>> batches;
  ApplyStats stats, reference_stats;
  uint64_t resent = 0;
  for (int b = 0; b < 60; ++b) {
    std::vector<Event> batch;
    for (int i = 0; i < 90; ++i) {
      int n = b * 90 + i;
      batch.push_back({n % 2, kStart + n * kMicrosPerSecond, static_cast<double>(n % 13),
                       "fold-" + std::to_string(n)});
    }
    Table rows = EventsTable(batch, &ids);
    ASSERT_TRUE(updater->Apply(rows, store.get(), &stats, {.event_ids = &ids}).ok());
    Column unused;
    ASSERT_TRUE(plain->Apply(EventsTable(batch, &unused), reference.get(), &reference_stats).ok());
    batches.push_back(std::move(batch));
    if (b % 3 == 2) {  // a resend of an earlier batch, whole
      const std::vector<Event>& again = batches[random() % batches.size()];
      Table resend = EventsTable(again, &ids);
      ASSERT_TRUE(updater->Apply(resend, store.get(), &stats, {.event_ids = &ids}).ok());
      resent += again.size();
    }
  }
  EXPECT_EQ(stats.duplicates, resent);
  EXPECT_EQ(stats.rows, reference_stats.rows);
  std::vector<std::optional<std::string>> got = States(store.get(), *view, 2);
  std::vector<std::optional<std::string>> want = States(reference.get(), *view, 2);
  for (int k = 0; k < 2; ++k) EXPECT_TRUE(got[k] == want[k]) << "entity " << k;
  // Both sets exist: the main one was written by folds, the tail after them.
  Column key(DataType::kInt64, 0);
  key.AppendInt64(0);
  std::string entity;
  EncodeEntityKey("e", {&key}, 0, &entity);
  std::string main_view = RecentEventsView(*view), tail_view = RecentEventsTailView(*view);
  std::vector<store::StoreKey> keys = {{entity, main_view}, {entity, tail_view}};
  std::vector<std::optional<std::string>> sets;
  ASSERT_TRUE(store->Read(keys, &sets).ok());
  ASSERT_TRUE(sets[0].has_value());
  ASSERT_TRUE(sets[1].has_value());
  // 2700 ids of entity 0, 8 bytes each: all in the main set and the tail.
  EXPECT_GE(sets[0]->size() + sets[1]->size(), 2700u * 8);
  EXPECT_LT(sets[1]->size(), sets[0]->size());
}

// Apply with PendingWrites writes nothing until Commit; then the store holds
// exactly what applying straight to it gives, for every view of the batch.
TEST_P(OnlineEventsTest, PendingWritesReachTheStoreOnlyOnCommit) {
  std::unique_ptr<store::OnlineStore> store = OpenStore("pending");
  std::unique_ptr<store::OnlineStore> reference = store::NewMemoryStore("events_test");
  std::vector<std::shared_ptr<const OnlineView>> views = {
      OnlineView::Make(View(ViewKind::kWindow), "1").value(),
      OnlineView::Make(View(ViewKind::kSnapshot), "1").value()};
  Column ids;
  std::vector<table::Field> fields = EventsTable({}, &ids).fields();
  std::vector<std::unique_ptr<OnlineUpdater>> updaters, plain;
  for (const auto& view : views) {
    updaters.push_back(OnlineUpdater::Make(view, fields).value());
    plain.push_back(OnlineUpdater::Make(view, fields).value());
  }
  for (int batch = 0; batch < 3; ++batch) {
    std::vector<Event> events;
    for (int i = 0; i < 20; ++i) {
      events.push_back({i % 4, kStart + (batch * 20 + i) * kMicrosPerMinute, 1.5 * i,
                        "p-" + std::to_string(batch * 20 + i)});
    }
    events.push_back(events.front());  // a repeat, dropped
    Table rows = EventsTable(events, &ids);
    PendingWrites pending;
    ApplyStats stats, reference_stats;
    for (size_t v = 0; v < views.size(); ++v) {
      ASSERT_TRUE(updaters[v]
                      ->Apply(rows, store.get(), &stats,
                              {.event_ids = &ids, .record_newest = true, .pending = &pending})
                      .ok());
      ASSERT_TRUE(plain[v]
                      ->Apply(rows, reference.get(), &reference_stats,
                              {.event_ids = &ids, .record_newest = true})
                      .ok());
    }
    EXPECT_EQ(stats.duplicates, 2u);
    EXPECT_FALSE(pending.empty());
    if (batch == 0) {  // nothing written yet
      for (const auto& view : views) {
        for (const auto& state : States(store.get(), *view, 4)) EXPECT_FALSE(state.has_value());
        EXPECT_FALSE(NewestEventApplied(store.get(), *view).value().has_value());
      }
    }
    ASSERT_TRUE(pending.Commit(store.get()).ok());
    EXPECT_TRUE(pending.empty());
    for (const auto& view : views) {
      std::vector<std::optional<std::string>> got = States(store.get(), *view, 4);
      std::vector<std::optional<std::string>> want = States(reference.get(), *view, 4);
      for (int k = 0; k < 4; ++k) {
        ASSERT_TRUE(want[k].has_value());
        EXPECT_TRUE(got[k] == want[k]) << view->store_view() << " entity " << k;
      }
      EXPECT_EQ(NewestEventApplied(store.get(), *view).value(),
                NewestEventApplied(reference.get(), *view).value());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, OnlineEventsTest,
                         testing::Values("memory", "rocksdb", "redis", "redis-cluster"));

}  // namespace
}  // namespace keel::features
