// Redis-specific behaviour of the Redis online store and its client, against
// the servers scripts/services starts (KEEL_TEST_REDIS_URL,
// KEEL_TEST_REDIS_CLUSTER_URL). Fails, never skips, when they are unreachable.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>

#include "store/online_store.h"
#include "store/redis_cluster.h"

namespace keel::store::redis {
namespace {

using std::chrono::steady_clock;

std::string Env(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}
std::string StandaloneUrl() { return Env("KEEL_TEST_REDIS_URL", "redis://127.0.0.1:6390"); }
std::string ClusterUrl() {
  return Env("KEEL_TEST_REDIS_CLUSTER_URL", "redis://127.0.0.1:7001,127.0.0.1:7002");
}

std::string FreshProject() {
  static std::atomic<int> counter{0};
  return "redis_test" + std::to_string(::getpid()) + "_" +
         std::to_string(steady_clock::now().time_since_epoch().count()) + "_" +
         std::to_string(counter++);
}

std::shared_ptr<Client> OpenClient(const std::string& url, bool cluster,
                                   ClientOptions options = {}) {
  Result<std::unique_ptr<Client>> client = Client::Open(url, cluster, options);
  EXPECT_TRUE(client.ok()) << url << ": " << client.status().ToString();
  return client.ok() ? std::shared_ptr<Client>(std::move(client).value()) : nullptr;
}

// Runs an administrative command; records a test failure when it fails.
OwnedReply Admin(const Endpoint& node, std::vector<std::string> args) {
  Result<OwnedReply> reply = RunCommand(node, args);
  EXPECT_TRUE(reply.ok()) << node.ToString() << " " << args[0] << " " << args[1] << ": "
                          << reply.status().ToString();
  return reply.ok() ? std::move(reply).value() : OwnedReply();
}

Endpoint FirstSeed(const std::string& url, bool cluster) {
  Result<Url> parsed = ParseUrl(url, cluster);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  return parsed.ok() ? parsed->nodes[0] : Endpoint{"127.0.0.1", 1};
}

// The cluster's masters and who owns `slot`, as the seed node sees it.
struct ClusterView {
  std::vector<Endpoint> masters;
  std::vector<std::string> ids;  // parallel to masters
  int owner_of_slot = -1;        // index into masters
};

ClusterView ViewCluster(uint16_t slot) {
  ClusterView view;
  OwnedReply slots = Admin(FirstSeed(ClusterUrl(), true), {"CLUSTER", "SLOTS"});
  for (const OwnedReply& range : slots.elements) {
    if (range.elements.size() < 3 || range.elements[2].elements.size() < 3) continue;
    const OwnedReply& master = range.elements[2];
    Endpoint node{master.elements[0].text, static_cast<int>(master.elements[1].integer)};
    auto it = std::find_if(view.masters.begin(), view.masters.end(), [&](const Endpoint& known) {
      return known.ToString() == node.ToString();
    });
    int index = static_cast<int>(it - view.masters.begin());
    if (it == view.masters.end()) {
      view.masters.push_back(node);
      view.ids.push_back(master.elements[2].text);
    }
    if (range.elements[0].integer <= slot && slot <= range.elements[1].integer) {
      view.owner_of_slot = index;
    }
  }
  return view;
}

// Moves every key of `slot` from masters[from] to masters[to] and hands the slot over.
void MigrateKeys(const ClusterView& view, uint16_t slot, int from, int to) {
  const Endpoint& target = view.masters[to];
  for (int guard = 0; guard < 1000; ++guard) {
    OwnedReply keys =
        Admin(view.masters[from], {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "100"});
    if (keys.elements.empty()) return;
    std::vector<std::string> migrate = {
        "MIGRATE", target.host, std::to_string(target.port), "", "0", "5000", "REPLACE", "KEYS"};
    for (const OwnedReply& key : keys.elements) migrate.push_back(key.text);
    Admin(view.masters[from], migrate);
  }
}

void AssignSlot(const ClusterView& view, uint16_t slot, int to, int from) {
  // The new owner first (it bumps its epoch), then the old one, then the rest.
  std::vector<int> order = {to, from};
  for (int node = 0; node < static_cast<int>(view.masters.size()); ++node) {
    if (node != to && node != from) order.push_back(node);
  }
  for (int node : order) {
    Admin(view.masters[node], {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", view.ids[to]});
  }
}

void MoveSlot(uint16_t slot, int from, int to) {
  ClusterView view = ViewCluster(slot);
  std::string slot_text = std::to_string(slot);
  Admin(view.masters[to], {"CLUSTER", "SETSLOT", slot_text, "IMPORTING", view.ids[from]});
  Admin(view.masters[from], {"CLUSTER", "SETSLOT", slot_text, "MIGRATING", view.ids[to]});
  MigrateKeys(view, slot, from, to);
  AssignSlot(view, slot, to, from);
}

// Puts `slot` back on its original owner however the test ended, so reruns
// see the layout scripts/services created.
class SlotRestorer {
 public:
  SlotRestorer(uint16_t slot, int owner) : slot_(slot), owner_(owner) {}
  ~SlotRestorer() { Restore(); }
  void Restore() {
    ClusterView view = ViewCluster(slot_);
    for (const Endpoint& node : view.masters) {
      (void)RunCommand(node, {"CLUSTER", "SETSLOT", std::to_string(slot_), "STABLE"});
    }
    if (view.owner_of_slot >= 0 && view.owner_of_slot != owner_) {
      MoveSlot(slot_, view.owner_of_slot, owner_);
    }
  }

 private:
  uint16_t slot_;
  int owner_;
};

// The keys of `project` that `node` holds in `slot`, whoever owns the slot.
std::set<std::string> KeysInSlot(const Endpoint& node, uint16_t slot, const std::string& project) {
  std::set<std::string> keys;
  for (const OwnedReply& key :
       Admin(node, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "1000"}).elements) {
    if (key.text.starts_with("keel:" + project + ":")) keys.insert(key.text);
  }
  return keys;
}

std::optional<std::string> ReadOne(OnlineStore& store, const StoreKey& key) {
  std::vector<std::optional<std::string>> values;
  Status status = store.Read(std::span(&key, 1), &values);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return status.ok() ? values[0] : std::nullopt;
}

// ---------------------------------------------------------------------------

TEST(RedisUrl, ParsesServersSeedsAndDatabases) {
  Result<Url> single = ParseUrl("redis://127.0.0.1:6390/3", false);
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  ASSERT_EQ(single->nodes.size(), 1u);
  EXPECT_EQ(single->nodes[0].ToString(), "127.0.0.1:6390");
  EXPECT_EQ(single->db, 3);
  Result<Url> seeds = ParseUrl("redis://a:1,b.example:7002,[::1]:7003", true);
  ASSERT_TRUE(seeds.ok()) << seeds.status().ToString();
  ASSERT_EQ(seeds->nodes.size(), 3u);
  EXPECT_EQ(seeds->nodes[1].host, "b.example");
  EXPECT_EQ(seeds->nodes[2].host, "::1");
  EXPECT_EQ(seeds->nodes[2].ToString(), "[::1]:7003");
}

TEST(RedisUrl, MalformedUrlsAreInvalidArgumentNamingThem) {
  std::vector<std::pair<std::string, bool>> malformed = {
      {"http://127.0.0.1:6390", false}, {"redis://", false},
      {"redis://127.0.0.1", false},     {"redis://127.0.0.1:port", false},
      {"redis://127.0.0.1:0", false},   {"redis://127.0.0.1:70000", false},
      {"redis://:6390", false},         {"redis://127.0.0.1:6390/x", false},
      {"redis://a:1,b:2", false},       {"redis://u:p@127.0.0.1:6390", false},
      {"redis://a:1,,b:2", true},       {"redis://a:1,b:2/1", true},
      {"redis://::1:7001", true},       {"127.0.0.1:7001", true}};
  for (const auto& [url, cluster] : malformed) {
    Result<std::unique_ptr<OnlineStore>> store = OpenRedisStore(url, "p", cluster);
    ASSERT_FALSE(store.ok()) << url;
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument) << url;
    EXPECT_NE(store.status().message().find("'" + url + "'"), std::string::npos)
        << store.status().ToString();
  }
}

TEST(RedisKeySlot, FollowsTheClusterSpecAndTheServer) {
  EXPECT_EQ(KeySlot("123456789"), 0x31C3);  // the spec's CRC16 check value
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("bar"));
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), KeySlot(std::string_view("foo{}{bar}")));
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));
  // Random binary keys and keel's own keys agree with the server's CLUSTER KEYSLOT.
  Endpoint seed = FirstSeed(ClusterUrl(), true);
  std::mt19937_64 rng(11);
  std::vector<std::string> keys = {EntryKey("p", {std::string("\0{x}\xff\n", 6), "v@1"}),
                                   MetaKey("p", "watermark/v@1"), "{", "}{", "a{b}c"};
  for (int key_idx = 0; key_idx < 200; ++key_idx) {
    std::string key;
    for (size_t byte_idx = rng() % 12; byte_idx > 0; --byte_idx) {
      key.push_back("ab{}\0\xff"[rng() % 6]);
    }
    keys.push_back(key);
  }
  for (const std::string& key : keys) {
    OwnedReply slot = Admin(seed, {"CLUSTER", "KEYSLOT", key});
    EXPECT_EQ(KeySlot(key), slot.integer) << testing::PrintToString(key);
  }
}

TEST(RedisKeyLayout, EntityViewsShareASlotAndKeysNeverCollide) {
  std::string entity("\0{x}\xff\n", 6);
  std::string key = EntryKey("proj", {entity, "v@1"});
  EXPECT_EQ(KeySlot(key), KeySlot(EntryKey("proj", {entity, std::string("w\0@2", 4)})));
  EXPECT_EQ(key.find('{'), key.rfind('{'));  // the hash tag is the only brace pair
  EXPECT_EQ(key.find('}'), key.rfind('}'));
  EXPECT_EQ(key.substr(0, 11), "keel:proj:{");
  std::set<std::string> distinct = {
      EntryKey("p", {"a:b", "c"}), EntryKey("p", {"a", "b:c"}),  EntryKey("p:q", {"a", "b"}),
      EntryKey("p", {"q:a", "b"}), EntryKey("p", {"a%3A", "b"}), EntryKey("p", {"a:", "b"}),
      MetaKey("p", "a"),           MetaKey("p:meta", "a"),       EntryKey("p", {"meta", "a"}),
      EntryKey("p", {"", ""})};
  EXPECT_EQ(distinct.size(), 10u);
}

TEST(RedisStore, UnreachableServerIsUnavailableAtOpenNamingIt) {
  Result<std::unique_ptr<OnlineStore>> single = OpenRedisStore("redis://127.0.0.1:1", "p", false);
  ASSERT_FALSE(single.ok());
  EXPECT_EQ(single.status().code(), StatusCode::kUnavailable) << single.status().ToString();
  EXPECT_NE(single.status().message().find("127.0.0.1:1"), std::string::npos);
  Result<std::unique_ptr<OnlineStore>> cluster =
      OpenRedisStore("redis://127.0.0.1:1,127.0.0.1:2", "p", true);
  ASSERT_FALSE(cluster.ok());
  EXPECT_EQ(cluster.status().code(), StatusCode::kUnavailable) << cluster.status().ToString();
  EXPECT_NE(cluster.status().message().find("127.0.0.1:1"), std::string::npos);
  EXPECT_NE(cluster.status().message().find("127.0.0.1:2"), std::string::npos);
  // A plain server is not a cluster.
  Result<std::unique_ptr<OnlineStore>> not_cluster = OpenRedisStore(StandaloneUrl(), "p", true);
  ASSERT_FALSE(not_cluster.ok());
  EXPECT_NE(not_cluster.status().message().find("cluster support disabled"), std::string::npos)
      << not_cluster.status().ToString();
}

TEST(RedisStore, ServerThatNeverAnswersTimesOutAtOpen) {
  // A socket that accepts connections (the kernel's backlog) but never replies.
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(::listen(listener, 16), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  std::string url = "redis://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  ClientOptions options;
  options.command_timeout = 300 * 1000;
  auto start = steady_clock::now();
  Result<std::unique_ptr<Client>> client = Client::Open(url, false, options);
  auto elapsed = steady_clock::now() - start;
  ::close(listener);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(client.status().message().find(url.substr(8) + ": no reply within 300 ms"),
            std::string::npos)
      << client.status().ToString();
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

TEST(RedisStore, ServerThatStopsAnsweringTimesOutNamingIt) {
  ClientOptions options;
  options.command_timeout = 300 * 1000;
  std::shared_ptr<Client> client = OpenClient(StandaloneUrl(), false, options);
  ASSERT_NE(client, nullptr);
  std::unique_ptr<OnlineStore> store = NewStore(client, FreshProject());
  ASSERT_TRUE(store->Write(std::vector<StoreEntry>{{{"e", "v@1"}, "x"}}).ok());
  Endpoint server = FirstSeed(StandaloneUrl(), false);
  Admin(server, {"CLIENT", "PAUSE", "1500"});
  auto start = steady_clock::now();
  std::vector<std::optional<std::string>> values;
  StoreKey key{"e", "v@1"};
  Status status = store->Read(std::span(&key, 1), &values);
  auto elapsed = steady_clock::now() - start;
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find(server.ToString() + ": no reply within 300 ms"),
            std::string::npos)
      << status.ToString();
  EXPECT_LT(elapsed, std::chrono::milliseconds(1400));
  std::this_thread::sleep_until(start + std::chrono::milliseconds(1600));
  EXPECT_EQ(ReadOne(*store, key), "x");  // works again once the server does
}

TEST(RedisStore, ErrorRepliesCarryTheServersMessage) {
  std::string project = FreshProject();
  Result<std::unique_ptr<OnlineStore>> store = OpenRedisStore(StandaloneUrl(), project, false);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Admin(FirstSeed(StandaloneUrl(), false), {"LPUSH", EntryKey(project, {"e", "v@1"}), "x"});
  std::vector<std::optional<std::string>> values;
  StoreKey key{"e", "v@1"};
  Status status = (*store)->Read(std::span(&key, 1), &values);
  EXPECT_EQ(status.code(), StatusCode::kIoError) << status.ToString();
  EXPECT_NE(status.message().find("WRONGTYPE"), std::string::npos) << status.ToString();
}

TEST(RedisStore, DatabaseIndexSelectsADatabase) {
  Endpoint server = FirstSeed(StandaloneUrl(), false);
  std::string project = FreshProject(), base = "redis://" + server.ToString();
  Result<std::unique_ptr<OnlineStore>> three = OpenRedisStore(base + "/3", project, false);
  Result<std::unique_ptr<OnlineStore>> four = OpenRedisStore(base + "/4", project, false);
  ASSERT_TRUE(three.ok() && four.ok()) << three.status().ToString() << four.status().ToString();
  ASSERT_TRUE((*three)->Write(std::vector<StoreEntry>{{{"e", "v@1"}, "in 3"}}).ok());
  EXPECT_EQ(ReadOne(**three, {"e", "v@1"}), "in 3");
  EXPECT_EQ(ReadOne(**four, {"e", "v@1"}), std::nullopt);
  Result<std::unique_ptr<OnlineStore>> out_of_range = OpenRedisStore(base + "/100000", "p", false);
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_NE(out_of_range.status().message().find("SELECT 100000"), std::string::npos)
      << out_of_range.status().ToString();
}

class RedisModes : public testing::TestWithParam<bool> {
 protected:
  std::string Url() const { return GetParam() ? ClusterUrl() : StandaloneUrl(); }
  std::vector<Endpoint> Nodes() const {
    return GetParam() ? ViewCluster(0).masters
                      : std::vector<Endpoint>{FirstSeed(StandaloneUrl(), false)};
  }
};

TEST_P(RedisModes, PipelinedWriteOf20000EntriesReadsBack) {
  std::shared_ptr<Client> client = OpenClient(Url(), GetParam());
  ASSERT_NE(client, nullptr);
  std::unique_ptr<OnlineStore> store = NewStore(client, FreshProject());
  constexpr int kEntities = 5000, kViews = 4;
  std::vector<std::string> entities, views, values;
  for (int entity_idx = 0; entity_idx < kEntities; ++entity_idx) {
    entities.push_back("entity-" + std::to_string(entity_idx));
  }
  for (int view_idx = 0; view_idx < kViews; ++view_idx) {
    views.push_back("view" + std::to_string(view_idx) + "@1");
  }
  std::vector<StoreEntry> entries;
  std::vector<StoreKey> keys;
  values.reserve(kEntities * kViews);
  for (int entity_idx = 0; entity_idx < kEntities; ++entity_idx) {
    for (int view_idx = 0; view_idx < kViews; ++view_idx) {
      values.push_back(std::to_string(entity_idx * 7919 + view_idx));
      keys.push_back({entities[entity_idx], views[view_idx]});
      entries.push_back({keys.back(), values.back(), 3600 * kMicrosPerSecond});
    }
  }
  size_t nodes = Nodes().size();
  Client::Counters before = client->counters();
  auto start = steady_clock::now();
  ASSERT_TRUE(store->Write(entries, std::vector<MetaEntry>{{"loaded", "20000"}}).ok());
  Client::Counters written = client->counters();
  // One pipeline per node for the entries, one more for the meta record.
  EXPECT_LE(written.round_trips - before.round_trips, nodes + 1);
  std::vector<std::optional<std::string>> read;
  ASSERT_TRUE(store->Read(keys, &read).ok());
  EXPECT_LE(client->counters().round_trips - written.round_trips, nodes);
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(20));
  ASSERT_EQ(read.size(), values.size());
  for (size_t key_idx = 0; key_idx < values.size(); ++key_idx) {
    ASSERT_EQ(read[key_idx], values[key_idx]) << key_idx;
  }
  EXPECT_EQ(*store->ReadMeta("loaded"), "20000");
  ASSERT_TRUE(store->Remove(keys).ok());
  ASSERT_TRUE(store->Read(keys, &read).ok());
  EXPECT_EQ(std::count(read.begin(), read.end(), std::nullopt), kEntities * kViews);
}

TEST_P(RedisModes, ReconnectsWhenTheServerDropsPooledConnections) {
  std::shared_ptr<Client> client = OpenClient(Url(), GetParam());
  ASSERT_NE(client, nullptr);
  std::unique_ptr<OnlineStore> store = NewStore(client, FreshProject());
  std::vector<StoreEntry> entries;
  std::vector<std::string> entities;
  for (int entity_idx = 0; entity_idx < 50; ++entity_idx) {
    entities.push_back("e" + std::to_string(entity_idx));
  }
  for (const std::string& entity : entities) entries.push_back({{entity, "v@1"}, entity});
  ASSERT_TRUE(store->Write(entries).ok());
  uint64_t reconnects = client->counters().reconnects;
  for (const Endpoint& node : Nodes()) {
    Admin(node, {"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
  }
  std::vector<StoreKey> keys;
  for (const StoreEntry& entry : entries) keys.push_back(entry.key);
  std::vector<std::optional<std::string>> read;
  Status status = store->Read(keys, &read);
  ASSERT_TRUE(status.ok()) << status.ToString();
  for (size_t key_idx = 0; key_idx < keys.size(); ++key_idx)
    EXPECT_EQ(read[key_idx], entities[key_idx]);
  EXPECT_GT(client->counters().reconnects, reconnects);
}

INSTANTIATE_TEST_SUITE_P(Modes, RedisModes, testing::Values(false, true),
                         [](const testing::TestParamInfo<bool>& info) {
                           return info.param ? "cluster" : "standalone";
                         });

TEST(RedisCluster, FollowsAskDuringSlotMigrationAndMovedAfter) {
  std::shared_ptr<Client> client = OpenClient(ClusterUrl(), true);
  ASSERT_NE(client, nullptr);
  std::string project = FreshProject();
  std::unique_ptr<OnlineStore> store = NewStore(client, project);
  std::string entity = "migrating";
  StoreKey first{entity, "v@1"}, second{entity, "v@2"}, third{entity, "v@3"};
  uint16_t slot = KeySlot(EntryKey(project, first));
  ASSERT_EQ(slot, KeySlot(EntryKey(project, second)));
  ASSERT_TRUE(store->Write(std::vector<StoreEntry>{{first, "a1"}, {second, "b1"}}).ok());

  ClusterView view = ViewCluster(slot);
  ASSERT_GE(view.masters.size(), 2u);
  ASSERT_GE(view.owner_of_slot, 0);
  int source = view.owner_of_slot, target = (source + 1) % static_cast<int>(view.masters.size());
  SlotRestorer restorer(slot, source);
  const Endpoint& source_node = view.masters[source];
  const Endpoint& target_node = view.masters[target];
  std::string slot_text = std::to_string(slot);

  // Half a migration: the first key moved, the second not, the slot still the source's.
  Admin(target_node, {"CLUSTER", "SETSLOT", slot_text, "IMPORTING", view.ids[source]});
  Admin(source_node, {"CLUSTER", "SETSLOT", slot_text, "MIGRATING", view.ids[target]});
  Admin(source_node, {"MIGRATE", target_node.host, std::to_string(target_node.port), "", "0",
                      "5000", "KEYS", EntryKey(project, first)});
  Client::Counters before = client->counters();
  EXPECT_EQ(ReadOne(*store, first), "a1");   // ASK to the target
  EXPECT_EQ(ReadOne(*store, second), "b1");  // still on the source
  EXPECT_EQ(ReadOne(*store, first), "a1");   // ASK again: it did not change the slot map
  EXPECT_EQ(client->counters().ask - before.ask, 2u);
  EXPECT_EQ(client->counters().moved, before.moved);
  // Single-key writes follow ASK to the target: an update and a new key.
  ASSERT_TRUE(store->Write(std::vector<StoreEntry>{{first, "a2"}}).ok());
  ASSERT_TRUE(store->Write(std::vector<StoreEntry>{{third, "c1"}}).ok());
  EXPECT_EQ(KeysInSlot(target_node, slot, project),
            (std::set<std::string>{EntryKey(project, first), EntryKey(project, third)}));
  EXPECT_EQ(KeysInSlot(source_node, slot, project),
            std::set<std::string>{EntryKey(project, second)});
  // One entity's transaction over keys split between the nodes cannot run
  // until the migration ends (TRYAGAIN): it fails whole, nothing half-written.
  Status split = store->Write(std::vector<StoreEntry>{{first, "a3"}, {second, "b3"}});
  EXPECT_EQ(split.code(), StatusCode::kUnavailable) << split.ToString();
  EXPECT_NE(split.message().find("TRYAGAIN"), std::string::npos) << split.ToString();
  EXPECT_EQ(ReadOne(*store, first), "a2");
  EXPECT_EQ(ReadOne(*store, second), "b1");

  // The rest of the migration: the target owns the slot, the source answers MOVED.
  MigrateKeys(view, slot, source, target);
  AssignSlot(view, slot, target, source);
  before = client->counters();
  std::vector<StoreKey> keys = {first, second, third};
  std::vector<std::optional<std::string>> read;
  ASSERT_TRUE(store->Read(keys, &read).ok());
  EXPECT_EQ(read, (std::vector<std::optional<std::string>>{"a2", "b1", "c1"}));
  EXPECT_GE(client->counters().moved - before.moved, 1u);
  EXPECT_GT(client->counters().slot_map_loads, before.slot_map_loads);
  before = client->counters();
  ASSERT_TRUE(store->Write(std::vector<StoreEntry>{{first, "a4"}, {second, "b4"}}).ok());
  EXPECT_EQ(client->counters().moved, before.moved);  // the map knows the new owner
  EXPECT_EQ(client->counters().ask, before.ask);
  EXPECT_EQ(Admin(target_node, {"GET", EntryKey(project, second)}).text, "b4");

  // Back to the original layout; the store follows that move as well.
  restorer.Restore();
  EXPECT_EQ(ViewCluster(slot).owner_of_slot, source);
  EXPECT_EQ(ReadOne(*store, first), "a4");
  EXPECT_EQ(ReadOne(*store, second), "b4");
  EXPECT_EQ(ReadOne(*store, third), "c1");
  EXPECT_EQ(Admin(source_node, {"GET", EntryKey(project, first)}).text, "a4");
  EXPECT_TRUE(store->Remove(keys).ok());
  EXPECT_EQ(KeysInSlot(source_node, slot, project), std::set<std::string>());
}

TEST(RedisCluster, ConcurrentBatchesAcrossShards) {
  Result<std::unique_ptr<OnlineStore>> opened = OpenRedisStore(ClusterUrl(), FreshProject(), true);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  OnlineStore& store = **opened;
  constexpr int kThreads = 6, kRounds = 40, kBatch = 64;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int thread_idx = 0; thread_idx < kThreads; ++thread_idx) {
    threads.emplace_back([&, thread_idx] {
      for (int round = 0; round < kRounds; ++round) {
        std::vector<std::string> entities, values;
        for (int key_idx = 0; key_idx < kBatch; ++key_idx) {
          entities.push_back(std::to_string(thread_idx) + "/" + std::to_string(key_idx));
          values.push_back(std::to_string(round * 1000 + key_idx));
        }
        std::vector<StoreEntry> entries;
        std::vector<StoreKey> keys;
        for (int key_idx = 0; key_idx < kBatch; ++key_idx) {
          keys.push_back({entities[key_idx], "v@1"});
          entries.push_back({keys.back(), values[key_idx]});
        }
        std::vector<std::optional<std::string>> read;
        if (!store.Write(entries).ok() || !store.Read(keys, &read).ok()) {
          ++failures;
          continue;
        }
        for (int key_idx = 0; key_idx < kBatch; ++key_idx) {
          if (read[key_idx] != values[key_idx]) ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace keel::store::redis
