// End-to-end tests of streaming ingestion: POST /v1/events on `keel serve`
// and `keel ingest` from a real Redis Stream, including kill -9 at random
// points (an acknowledged event is never lost) and replays (never counted
// twice). The online store is RocksDB, as by default.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "e2e_util.h"
#include "store/redis_cluster.h"

namespace keel::e2e {
namespace {

using Json = nlohmann::ordered_json;
namespace redis = store::redis;

constexpr int kUsers = 7;
constexpr const char* kReadAt = "2024-03-20 00:00:00";

constexpr const char* kFeaturesYaml = R"(entities:
  - name: user
    keys: {user_id: int64}
sources:
  - name: clicks
    path: data/clicks.csv
    timestamp: ts
    checks:
      - {check: range, column: amount, min: 0, max: 1000}
      - {check: values, column: channel, in: [app, web], severity: warn}
window_views:
  - name: click_counts
    entity: user
    source: clicks
    features:
      - {name: clicks, aggregation: count, windows: [30d]}
      - {name: total, aggregation: sum, expression: amount, windows: [30d]}
)";

// A repository whose one source has a row before every event the tests send.
class IngestRepo {
 public:
  IngestRepo() {
    WriteFile(dir_.Path("keel.yaml"), "project: ingest\ndefinitions: [features.yaml]\n");
    WriteFile(dir_.Path("features.yaml"), kFeaturesYaml);
    std::filesystem::create_directories(dir_.Path("data"));
    WriteFile(dir_.Path("data/clicks.csv"),
              "ts,user_id,amount,channel\n2024-01-01 00:00:00,1,1.5,app\n");
    CommandResult applied = RunKeel({"apply"}, dir_.path());
    EXPECT_EQ(applied.exit_code, 0) << applied.Describe();
  }
  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;
};

Json Event(int index, const std::string& id_prefix) {
  return Json{{"ts", "2024-03-10 00:00:00." + std::to_string(100000 + index)},
              {"user_id", index % kUsers},
              {"amount", 1.0 + index % 5},
              {"channel", index % 2 == 0 ? "app" : "web"},
              {"event_id", id_prefix + std::to_string(index)}};
}

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string body;
};

HttpReply Post(int port, const std::string& path, const std::string& body) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  httplib::Result result = client.Post(path.c_str(), body, "application/json");
  if (!result) return {0, httplib::to_string(result.error())};
  return {result->status, result->body};
}

HttpReply Get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  httplib::Result result = client.Get(path.c_str());
  if (!result) return {0, httplib::to_string(result.error())};
  return {result->status, result->body};
}

std::string EntitiesJson() {
  Json ids = Json::array();
  for (int user = 0; user < kUsers; ++user) ids.push_back(user);
  return Json{{"user_id", ids}}.dump();
}

// click_counts__clicks_30d per user from a lookup answer (FeaturesJson shape).
std::vector<int64_t> CountsFrom(const std::string& body) {
  Json answer = Json::parse(body);
  std::vector<int64_t> counts;
  const Json& names = answer["metadata"]["feature_names"];
  for (size_t f = 0; f < names.size(); ++f) {
    if (names[f] != "click_counts__clicks_30d") continue;
    for (const Json& value : answer["results"][f]["values"]) counts.push_back(value.get<int64_t>());
  }
  EXPECT_EQ(counts.size(), static_cast<size_t>(kUsers)) << body;
  return counts;
}

std::vector<int64_t> CountsOverHttp(int port) {
  HttpReply reply = Post(port, "/v1/features",
                         Json{{"features", {"click_counts"}},
                              {"entities", Json::parse(EntitiesJson())},
                              {"at", kReadAt}}
                             .dump());
  EXPECT_EQ(reply.status, 200) << reply.body;
  return CountsFrom(reply.body);
}

std::vector<int64_t> CountsFromCli(const std::string& repo) {
  CommandResult got = RunKeel({"features", "get", "--features", "click_counts", "--entities",
                               EntitiesJson(), "--at", kReadAt, "--json"},
                              repo);
  EXPECT_EQ(got.exit_code, 0) << got.Describe();
  return CountsFrom(got.out);
}

// Per-user counts of events 0..n-1.
std::vector<int64_t> Expected(int n) {
  std::vector<int64_t> counts(kUsers, 0);
  for (int i = 0; i < n; ++i) ++counts[i % kUsers];
  return counts;
}

TEST(Ingest, HttpEventsAreCheckedDeduplicatedAndFresh) {
  IngestRepo repo;
  ServeProcess server(repo.path(), {});
  ASSERT_GT(server.port(), 0);
  int port = server.port();
  Json two = Json::array({Event(0, "a"), Event(1, "a")});
  HttpReply first = Post(port, "/v1/events?source=clicks", two.dump());
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(Json::parse(first.body)["views"][0]["applied"], 2) << first.body;
  // The same batch again (a client that got no answer): nothing counted twice.
  HttpReply again = Post(port, "/v1/events", Json{{"source", "clicks"}, {"events", two}}.dump());
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(Json::parse(again.body)["views"][0]["duplicates"], 2) << again.body;
  EXPECT_EQ(Json::parse(again.body)["views"][0]["applied"], 0) << again.body;
  // JSON lines.
  HttpReply lines =
      Post(port, "/v1/events?source=clicks", Event(2, "a").dump() + "\n" + Event(3, "a").dump());
  ASSERT_EQ(lines.status, 200) << lines.body;
  EXPECT_EQ(CountsOverHttp(port), Expected(4));

  // An error-level expectation fails: 422 naming the event and the check; nothing applied.
  Json bad = Json::array({Event(4, "a"), Event(5, "a")});
  bad[1]["amount"] = 5000.0;
  HttpReply rejected = Post(port, "/v1/events?source=clicks", bad.dump());
  EXPECT_EQ(rejected.status, 422) << rejected.body;
  EXPECT_NE(rejected.body.find("\"index\":1"), std::string::npos) << rejected.body;
  EXPECT_NE(rejected.body.find("range check on amount"), std::string::npos) << rejected.body;
  EXPECT_EQ(CountsOverHttp(port), Expected(4));
  // A warn-level one is reported and applied.
  Json warned = Json::array({Event(4, "a")});
  warned[0]["channel"] = "tv";
  HttpReply warning = Post(port, "/v1/events?source=clicks", warned.dump());
  ASSERT_EQ(warning.status, 200) << warning.body;
  EXPECT_NE(warning.body.find("\"column\":\"channel\""), std::string::npos) << warning.body;
  EXPECT_EQ(CountsOverHttp(port), Expected(5));

  // Bad requests name what is wrong, and the server keeps serving.
  struct Case {
    std::string path, body;
    int status;
    std::string needle;
  };
  std::vector<Case> cases = {
      {"/v1/events?source=clicks", R"([{"ts": "2024-03-10", "user_id": "x"}])", 422,
       "events[0].user_id: expected an int64 integer"},
      {"/v1/events?source=clicks", R"([{"ts": "2024-03-10", "user_id": 1, "colour": 2}])", 422,
       "events[0].colour: unknown column"},
      {"/v1/events?source=clicks", R"([{"user_id": 1}])", 422, "the event time is required"},
      {"/v1/events?source=clicks", R"([{"ts": "2024-03-10", "user_id": 1, "event_id": 1.5}])", 422,
       "event_id: expected a string or an integer"},
      {"/v1/events?source=clicks", "{\"ts\": \"2024-03-10\"}\n{\"ts\": ", 400, "body line 2"},
      {"/v1/events?source=clicks", "[1, 2", 400, "not valid JSON"},
      {"/v1/events?source=nope", "[{}]", 404, "source 'nope' takes no events"},
      {"/v1/events", "[{}]", 400, "source: missing"},
  };
  for (const Case& c : cases) {
    HttpReply reply = Post(port, c.path, c.body);
    EXPECT_EQ(reply.status, c.status) << c.body << "\n" << reply.body;
    EXPECT_NE(reply.body.find(c.needle), std::string::npos) << c.body << "\n" << reply.body;
  }
  EXPECT_EQ(CountsOverHttp(port), Expected(5));

  HttpReply freshness = Get(port, "/v1/freshness");
  ASSERT_EQ(freshness.status, 200) << freshness.body;
  Json views = Json::parse(freshness.body)["views"];
  ASSERT_EQ(views.size(), 1u) << freshness.body;
  EXPECT_EQ(views[0]["source"], "clicks");
  EXPECT_EQ(views[0]["newest_event"], "2024-03-10 00:00:00.100004") << freshness.body;
  EXPECT_GT(views[0]["freshness_seconds"].get<double>(), 0.0);

  EXPECT_EQ(server.Stop(), 0) << server.Log();
  EXPECT_EQ(CountsFromCli(repo.path()), Expected(5));
  CommandResult fresh = RunKeel({"features", "freshness", "--json"}, repo.path());
  ASSERT_EQ(fresh.exit_code, 0) << fresh.Describe();
  Json listed = Json::parse(fresh.out);
  ASSERT_EQ(listed.size(), 1u) << fresh.out;
  EXPECT_EQ(listed[0]["newest_event"], "2024-03-10 00:00:00.100004") << fresh.out;
}

// A client sends batches while the server is killed with SIGKILL at random
// moments. Every batch answered 200 must be in the store after the restart;
// resending every batch then leaves each event counted exactly once.
TEST(Ingest, KillNineNeverLosesAnAcknowledgedEvent) {
  IngestRepo repo;
  constexpr int kBatch = 20, kBatches = 60;
  std::mt19937_64 random(20261201);
  std::vector<bool> acknowledged(kBatches, false);
  auto batch_body = [&](int b) {
    Json events = Json::array();
    for (int i = b * kBatch; i < (b + 1) * kBatch; ++i) events.push_back(Event(i, "k"));
    return Json{{"source", "clicks"}, {"events", events}}.dump();
  };
  int next = 0;
  for (int round = 0; round < 4 && next < kBatches; ++round) {
    ServeProcess server(repo.path(), {});
    ASSERT_GT(server.port(), 0) << server.Log();
    // Everything acknowledged so far survived the previous kill.
    std::vector<int64_t> counts = CountsOverHttp(server.port());
    int64_t total = 0;
    for (int64_t count : counts) total += count;
    int64_t acked = 0;
    for (bool ack : acknowledged) acked += ack ? kBatch : 0;
    EXPECT_GE(total, acked) << "round " << round;
    // At most the batch in flight at the kill beyond what was sent and answered.
    EXPECT_LE(total, static_cast<int64_t>(std::min(next + 1, kBatches)) * kBatch)
        << "round " << round;
    std::thread killer([&server, delay = 30 + random() % 150] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      ::kill(server.pid(), SIGKILL);
    });
    for (; next < kBatches; ++next) {
      HttpReply reply = Post(server.port(), "/v1/events", batch_body(next));
      if (reply.status != 200) break;  // the server is gone: this one may or may not be in
      acknowledged[next] = true;
    }
    killer.join();
    server.Wait(30);
  }
  // Resend everything (acknowledged or not): exactly once each.
  ServeProcess server(repo.path(), {});
  ASSERT_GT(server.port(), 0) << server.Log();
  for (int b = 0; b < kBatches; ++b) {
    HttpReply reply = Post(server.port(), "/v1/events", batch_body(b));
    ASSERT_EQ(reply.status, 200) << reply.body;
  }
  EXPECT_EQ(CountsOverHttp(server.port()), Expected(kBatch * kBatches));
  EXPECT_EQ(server.Stop(), 0) << server.Log();
}

// The Redis server the store tests use (scripts/services); required.
redis::Endpoint RedisEndpoint() {
  const char* url = std::getenv("KEEL_TEST_REDIS_URL");
  EXPECT_NE(url, nullptr) << "KEEL_TEST_REDIS_URL is not set (scripts/test sets it)";
  Result<redis::Url> parsed = redis::ParseUrl(url == nullptr ? "" : url, false);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  return parsed.ok() ? parsed->nodes[0] : redis::Endpoint{};
}

void Redis(const std::vector<std::string>& args) {
  Result<redis::OwnedReply> reply = redis::RunCommand(RedisEndpoint(), args);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
}

std::vector<std::string> IngestArgs(const std::string& stream, int64_t idle_ms) {
  const char* url = std::getenv("KEEL_TEST_REDIS_URL");
  return {"ingest",
          "--from",
          url == nullptr ? "" : url,
          "--stream",
          stream,
          "--source",
          "clicks",
          "--batch",
          "37",
          "--idle-exit-ms",
          std::to_string(idle_ms),
          "--json"};
}

// Entries are applied by `keel ingest`, killed with SIGKILL at random points
// and restarted; then the same events are produced again (new entries, same
// event ids). Every event ends counted exactly once.
TEST(Ingest, StreamConsumerSurvivesKillNineAndReplays) {
  IngestRepo repo;
  const std::string stream = "keel-ingest-test-" + std::to_string(::getpid());
  Redis({"DEL", stream, stream + ":dead"});
  constexpr int kEvents = 6000;
  auto produce = [&] {
    for (int i = 0; i < kEvents; ++i) {
      Redis({"XADD", stream, "*", "event", Event(i, "s").dump()});
    }
  };
  produce();
  // The group `keel ingest` would create (it takes an existing one as it is).
  Redis({"XGROUP", "CREATE", stream, "keel", "0"});
  // A malformed entry goes to the dead-letter stream.
  Redis({"XADD", stream, "*", "event", "{not json"});
  std::mt19937_64 random(7);
  int killed_mid_batch = 0;
  auto pending = [&] {
    Result<redis::OwnedReply> reply =
        redis::RunCommand(RedisEndpoint(), {"XPENDING", stream, "keel"});
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    return reply.ok() && !reply->elements.empty() ? reply->elements[0].integer : 0;
  };
  for (int round = 0; round < 4; ++round) {
    KeelProcess ingest(repo.path(), IngestArgs(stream, 60000));
    // Kill while a batch is in hand: once the consumer holds unacknowledged
    // entries, after a random few milliseconds more.
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
         pending() == 0 && std::chrono::steady_clock::now() < deadline;) {
    }
    std::this_thread::sleep_for(std::chrono::microseconds(random() % 3000));
    ingest.Stop(SIGKILL);
    if (pending() > 0) ++killed_mid_batch;
  }
  // Otherwise the test proves little: make it fail so that the timing gets fixed.
  EXPECT_GT(killed_mid_batch, 0);
  {
    CommandResult rest = RunKeel(IngestArgs(stream, 1500), repo.path());
    ASSERT_EQ(rest.exit_code, 0) << rest.Describe();
  }
  EXPECT_EQ(CountsFromCli(repo.path()), Expected(kEvents));
  Result<redis::OwnedReply> dead = redis::RunCommand(RedisEndpoint(), {"XLEN", stream + ":dead"});
  ASSERT_TRUE(dead.ok());
  EXPECT_EQ(dead->integer, 1);

  // The producer sends everything again: skipped as duplicates.
  produce();
  CommandResult replay = RunKeel(IngestArgs(stream, 1500), repo.path());
  ASSERT_EQ(replay.exit_code, 0) << replay.Describe();
  Json summary = Json::parse(replay.out);
  EXPECT_EQ(summary["entries"], kEvents) << replay.out;
  EXPECT_EQ(summary["duplicates"], kEvents) << replay.out;
  EXPECT_EQ(CountsFromCli(repo.path()), Expected(kEvents));
  Redis({"DEL", stream, stream + ":dead"});
}

// The consumer's connection is dropped by the server while it waits for
// entries: it reconnects and goes on, losing nothing.
TEST(Ingest, StreamConsumerOutlivesALostConnection) {
  IngestRepo repo;
  const std::string stream = "keel-ingest-drop-" + std::to_string(::getpid());
  Redis({"DEL", stream, stream + ":dead"});
  Redis({"XGROUP", "CREATE", stream, "keel", "0", "MKSTREAM"});
  KeelProcess ingest(repo.path(), IngestArgs(stream, 3000));
  int killed = 0;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
       killed < 2 && std::chrono::steady_clock::now() < deadline;) {
    // The consumer's blocked XREADGROUP (the only one: streams are this
    // test binary's alone, and its tests run one at a time), killed by id.
    Result<redis::OwnedReply> clients = redis::RunCommand(RedisEndpoint(), {"CLIENT", "LIST"});
    ASSERT_TRUE(clients.ok()) << clients.status().ToString();
    std::string list = clients->text;
    for (size_t at = list.find("id="); at != std::string::npos; at = list.find("\nid=", at + 1)) {
      size_t line_end = list.find('\n', at + 1);
      std::string line = list.substr(at, line_end - at);
      if (line.find("cmd=xreadgroup") == std::string::npos) continue;
      std::string id = line.substr(line.find("id=") + 3);
      id = id.substr(0, id.find(' '));
      if (redis::RunCommand(RedisEndpoint(), {"CLIENT", "KILL", "ID", id}).ok()) ++killed;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(killed, 1);
  for (int i = 0; i < 50; ++i) Redis({"XADD", stream, "*", "event", Event(i, "d").dump()});
  EXPECT_EQ(ingest.Wait(60), 0) << ingest.Log();
  EXPECT_NE(ingest.Log().find("retrying"), std::string::npos) << ingest.Log();
  EXPECT_EQ(CountsFromCli(repo.path()), Expected(50));
  Redis({"DEL", stream, stream + ":dead"});
}

}  // namespace
}  // namespace keel::e2e
