// End-to-end tests of `keel serve`: the real binary as a child process on a
// port it picks, in a copy of tests/data/mini, spoken to over HTTP with
// cpp-httplib's client (and raw sockets where a request must stay half sent).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "e2e_util.h"

extern char** environ;

namespace keel::e2e {
namespace {

// Ordered: entity columns keep the order of the request, as the server answers.
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

constexpr const char* kAt = "2024-03-03 12:00:00";
constexpr const char* kEntities =
    R"({"user_id": [1, 2, 3, 4, 99, null], "channel": ["app", "web", "app", "web", "app", "web"]})";
constexpr const char* kEpoch = "1970-01-01T00:00:00Z";

::testing::AssertionResult Contains(const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected to find \"" << needle << "\" in:\n" << text;
}

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string body;
  std::string content_type;
  std::string allow;
  std::string Describe() const {
    return "HTTP " + std::to_string(status) + " " + content_type + "\n" + body;
  }
};

HttpReply Request(int port, const std::string& method, const std::string& path,
                  const std::string& body = "") {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  httplib::Result result = method == "GET"    ? client.Get(path.c_str())
                           : method == "POST" ? client.Post(path.c_str(), body, "application/json")
                           : method == "PUT"  ? client.Put(path.c_str(), body, "application/json")
                           : method == "DELETE" ? client.Delete(path.c_str())
                                                : client.Options(path.c_str());
  HttpReply reply;
  if (!result) {
    reply.body = "no answer: " + httplib::to_string(result.error());
    return reply;
  }
  reply.status = result->status;
  reply.body = result->body;
  reply.content_type = result->get_header_value("Content-Type");
  reply.allow = result->get_header_value("Allow");
  return reply;
}

HttpReply Post(int port, const std::string& path, const Json& body) {
  return Request(port, "POST", path, body.dump());
}

// Polls GET /ready until it answers `status` (within `seconds`).
HttpReply WaitForReady(int port, int status = 200, int seconds = 30) {
  HttpReply reply;
  for (auto deadline = Clock::now() + std::chrono::seconds(seconds); Clock::now() < deadline;) {
    reply = Request(port, "GET", "/ready");
    if (reply.status == status) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return reply;
}

// A raw TCP connection to the server, for requests sent in pieces.
int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval timeout{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return fd;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t sent = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent <= 0) return false;
    data.remove_prefix(static_cast<size_t>(sent));
  }
  return true;
}

// One HTTP answer (headers and a Content-Length body), or what came before
// the server closed the connection.
std::string ReadAnswer(int fd) {
  std::string out;
  char buffer[65536];
  while (true) {
    size_t head_end = out.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      std::smatch length;
      std::string head = out.substr(0, head_end);
      if (std::regex_search(head, length,
                            std::regex(R"(Content-Length: (\d+))", std::regex::icase)) &&
          out.size() >= head_end + 4 + std::stoul(length[1])) {
        break;
      }
    }
    ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
    if (got <= 0) break;
    out.append(buffer, static_cast<size_t>(got));
  }
  return out;
}

Json Body(const char* features_or_service, const Json& what, const char* entities = kEntities) {
  return Json{{features_or_service, what}, {"entities", Json::parse(entities)}, {"at", kAt}};
}

// A copy of tests/data/mini, applied and (optionally) materialized at kAt.
std::string MakeRepo(const TempDir& temp, bool materialize) {
  std::string repo = temp.Path("repo");
  CopyTree(FixtureDir() + "/mini", repo);
  CommandResult apply = RunKeel({"apply"}, repo);
  EXPECT_EQ(apply.exit_code, 0) << apply.Describe();
  if (materialize) {
    CommandResult materialized = RunKeel({"materialize", "--end", kAt}, repo);
    EXPECT_EQ(materialized.exit_code, 0) << materialized.Describe();
  }
  return repo;
}

// One server shared by the tests that only read.
class Serve : public ::testing::Test {
 protected:
  // `keel features get --json` and the /v1/features body asking the same.
  struct Parity {
    std::vector<std::string> cli_args;
    Json body;
    std::string cli_json;  // filled before the server starts (it locks the RocksDB store)
  };

  static void SetUpTestSuite() {
    temp_ = new TempDir();
    repo_ = new std::string(MakeRepo(*temp_, /*materialize=*/true));
    parity_ = new std::vector<Parity>{
        {{"--service", "model"}, Body("feature_service", "model"), ""},
        {{"--features",
          "activity:events_1h|total_24h, profile as p, channel_activity, "
          "web_activity@1, recent_profile"},
         Body("features", {"activity:events_1h|total_24h", "profile as p", "channel_activity",
                           "web_activity@1", "recent_profile"}),
         ""},
        {{"--features", "reversed"}, Body("features", {"reversed"}, R"({"user_id": [3]})"), ""},
    };
    for (Parity& parity : *parity_) {
      std::vector<std::string> args = {"features", "get"};
      args.insert(args.end(), parity.cli_args.begin(), parity.cli_args.end());
      args.insert(args.end(),
                  {"--entities", parity.body["entities"].dump(), "--at", kAt, "--json"});
      CommandResult get = RunKeel(args, *repo_);
      EXPECT_EQ(get.exit_code, 0) << get.Describe();
      parity.cli_json = get.out;
    }
    server_ = new ServeProcess(*repo_, {"--threads", "8"});
    if (server_->port() > 0) {
      HttpReply ready = WaitForReady(server_->port());
      EXPECT_EQ(ready.status, 200) << ready.Describe() << server_->Log();
    }
  }

  static void TearDownTestSuite() {
    if (server_ != nullptr && server_->port() > 0) {
      EXPECT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
    }
    delete server_;
    delete parity_;
    delete repo_;
    delete temp_;
  }

  void SetUp() override { ASSERT_GT(server_->port(), 0) << server_->Log(); }
  static int port() { return server_->port(); }

  static TempDir* temp_;
  static std::string* repo_;
  static std::vector<Parity>* parity_;
  static ServeProcess* server_;
};

TempDir* Serve::temp_ = nullptr;
std::string* Serve::repo_ = nullptr;
std::vector<Serve::Parity>* Serve::parity_ = nullptr;
ServeProcess* Serve::server_ = nullptr;

TEST_F(Serve, HealthAndReadiness) {
  HttpReply health = Request(port(), "GET", "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(Json::parse(health.body), Json({{"status", "ok"}}));
  EXPECT_EQ(health.content_type, "application/json");
  HttpReply ready = Request(port(), "GET", "/ready");
  EXPECT_EQ(ready.status, 200) << ready.Describe();
}

TEST_F(Serve, V1FeaturesAnswersByteForByteAsFeaturesGetJson) {
  for (const Parity& parity : *parity_) {
    HttpReply reply = Post(port(), "/v1/features", parity.body);
    ASSERT_EQ(reply.status, 200) << reply.Describe();
    EXPECT_EQ(reply.body + "\n", parity.cli_json) << parity.body.dump();
    Json json = Json::parse(reply.body);
    EXPECT_EQ(json["metadata"]["feature_names"].size(), json["results"].size());
    EXPECT_GE(json["results"].size(), 1u);
  }
  // The service's answer is the full set, with Feast's statuses.
  Json model = Json::parse(parity_->front().cli_json);
  const Json& names = model["metadata"]["feature_names"];
  ASSERT_GT(names.size(), 15u);
  for (size_t f = 0; f < names.size(); ++f) {
    const Json& statuses = model["results"][f]["statuses"];
    EXPECT_EQ(statuses[4], "NOT_FOUND") << names[f];
    EXPECT_EQ(statuses[5], "INVALID") << names[f];
    if (names[f] == "recent_profile__country") {
      EXPECT_EQ(statuses[3], "OUTSIDE_MAX_AGE");
    }
  }
}

TEST_F(Serve, FeastAnswerPutsEntityColumnsFirst) {
  Json features = {"activity:events_1h", "recent_profile:country", "channel_activity:events_6h"};
  Json body = Body("features", features);
  HttpReply reply = Post(port(), "/get-online-features", body);
  ASSERT_EQ(reply.status, 200) << reply.Describe();
  Json feast = Json::parse(reply.body);
  EXPECT_EQ(feast["metadata"]["feature_names"],
            Json({"user_id", "channel", "events_1h", "country", "events_6h"}));
  const Json& results = feast["results"];
  ASSERT_EQ(results.size(), 5u);
  Json entities = Json::parse(kEntities);
  EXPECT_EQ(results[0]["values"], entities["user_id"]);
  EXPECT_EQ(results[1]["values"], entities["channel"]);
  EXPECT_EQ(results[0]["statuses"],
            Json({"PRESENT", "PRESENT", "PRESENT", "PRESENT", "PRESENT", "NULL_VALUE"}));
  EXPECT_EQ(results[1]["event_timestamps"], Json(std::vector<std::string>(6, kEpoch)));
  // The features: user 99 is unknown, the null key invalid, every profile
  // too old for recent_profile's ttl (20h) at kAt; event times as RFC 3339.
  std::regex rfc3339(R"(2024-03-0\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?Z)");
  for (size_t f = 2; f < 5; ++f) {
    for (size_t row = 0; row < 4; ++row) {
      EXPECT_EQ(results[f]["statuses"][row], f == 3 ? "OUTSIDE_MAX_AGE" : "PRESENT") << f;
      EXPECT_TRUE(std::regex_match(results[f]["event_timestamps"][row].get<std::string>(), rfc3339))
          << results[f]["event_timestamps"][row];
    }
    EXPECT_EQ(results[f]["statuses"][4], "NOT_FOUND");
    EXPECT_EQ(results[f]["statuses"][5], "INVALID");
    EXPECT_EQ(results[f]["event_timestamps"][4], kEpoch);
    EXPECT_EQ(results[f]["event_timestamps"][5], kEpoch);
  }
  EXPECT_EQ(results[3]["values"], Json(std::vector<std::nullptr_t>(6, nullptr)));
  EXPECT_EQ(results[2]["values"],
            Json({0, 0, 2, 0, 0, nullptr}));  // NOT_FOUND counts 0, as offline
  // The same values and statuses as keel's own endpoint.
  Json keel = Json::parse(Post(port(), "/v1/features", body).body);
  for (size_t f = 0; f < 3; ++f) {
    EXPECT_EQ(results[f + 2]["values"], keel["results"][f]["values"]);
    EXPECT_EQ(results[f + 2]["statuses"], keel["results"][f]["statuses"]);
  }
  // full_feature_names: "<view>__<feature>".
  body["full_feature_names"] = true;
  reply = Post(port(), "/get-online-features", body);
  ASSERT_EQ(reply.status, 200) << reply.Describe();
  EXPECT_EQ(Json::parse(reply.body)["metadata"]["feature_names"],
            Json({"user_id", "channel", "activity__events_1h", "recent_profile__country",
                  "channel_activity__events_6h"}));
}

TEST_F(Serve, FeastNamesThatClashNeedFullFeatureNames) {
  // activity and reversed both have last_amount_24h.
  Json body = Body("feature_service", "model");
  HttpReply clash = Post(port(), "/get-online-features", body);
  EXPECT_EQ(clash.status, 400) << clash.Describe();
  EXPECT_TRUE(Contains(clash.body, "last_amount_24h"));
  EXPECT_TRUE(Contains(clash.body, "full_feature_names"));
  HttpReply country = Post(port(), "/get-online-features",
                           Body("features", {"profile:country", "recent_profile:country"}));
  EXPECT_EQ(country.status, 400);
  EXPECT_TRUE(Contains(country.body, "'country'"));
  body["full_feature_names"] = true;
  HttpReply full = Post(port(), "/get-online-features", body);
  ASSERT_EQ(full.status, 200) << full.Describe();
  Json feast = Json::parse(full.body);
  Json keel = Json::parse(parity_->front().cli_json);
  Json names = {"user_id", "channel"};
  for (const Json& name : keel["metadata"]["feature_names"]) names.push_back(name);
  EXPECT_EQ(feast["metadata"]["feature_names"], names);
  for (size_t f = 0; f < keel["results"].size(); ++f) {
    EXPECT_EQ(feast["results"][f + 2]["values"], keel["results"][f]["values"]);
  }
}

TEST_F(Serve, BadRequestsGet4xxNamingTheFieldAndTheServerKeepsServing) {
  struct Case {
    std::string method, path, body;
    int status;
    std::string message;
  };
  std::string deep(200000, '[');
  std::vector<Case> cases = {
      {"POST", "/v1/features", "{not json", 400, "body: not valid JSON"},
      {"POST", "/v1/features", "", 400, "body: not valid JSON"},
      {"POST", "/v1/features", "[1, 2]", 400, "body: expected a JSON object"},
      {"POST", "/v1/features", "\"\xff\"", 400, "body: not valid JSON"},
      {"POST", "/v1/features", deep, 400, "body: not valid JSON"},
      {"POST", "/v1/features",
       R"({"features": [)" + std::string(50000, '[') + std::string(50000, ']') +
           R"(], "entities": {"user_id": [1]}})",
       400, "features[0]: expected a feature reference string, got an array"},
      {"POST", "/v1/features", R"({"entities": {"user_id": [1]}})", 400, "features: missing"},
      {"POST", "/v1/features", R"({"features": "activity", "entities": {"user_id": [1]}})", 400,
       "features: expected a non-empty array"},
      {"POST", "/v1/features", R"({"features": ["activity", 7], "entities": {"user_id": [1]}})",
       400, "features[1]"},
      {"POST", "/v1/features",
       R"({"features": ["activity, profile"], "entities": {"user_id": [1]}})", 400,
       "one reference per item"},
      {"POST", "/v1/features",
       R"({"features": ["activity"], "feature_service": "model", "entities": {"user_id": [1]}})",
       400, "features, feature_service"},
      {"POST", "/v1/features", R"({"features": ["activity"]})", 400, "entities: missing"},
      {"POST", "/v1/features",
       R"({"features": ["activity"], "entities": {"user_id": [1]}, "colour": 1})", 400,
       "colour: unknown field"},
      {"POST", "/v1/features",
       R"({"features": ["activity"], "entities": {"user_id": [1]}, "full_feature_names": true})",
       400, "full_feature_names: unknown field"},
      {"POST", "/v1/features", R"({"features": ["nope"], "entities": {"user_id": [1]}})", 404,
       "'nope'"},
      {"POST", "/v1/features", R"({"features": ["activity@99"], "entities": {"user_id": [1]}})",
       404, "version '99'"},
      {"POST", "/v1/features", R"({"features": ["activity:nope"], "entities": {"user_id": [1]}})",
       400, "no feature 'nope'"},
      {"POST", "/v1/features", R"({"features": ["act ivity"], "entities": {"user_id": [1]}})", 400,
       "features[0] 'act ivity'"},
      {"POST", "/v1/features", R"({"feature_service": "nope", "entities": {"user_id": [1]}})", 404,
       "feature_service: no feature service 'nope'"},
      {"POST", "/v1/features", R"({"feature_service": 3, "entities": {"user_id": [1]}})", 400,
       "feature_service: expected the name"},
      {"POST", "/v1/features", R"({"features": ["activity"], "entities": {"user_id": ["x"]}})", 400,
       "'user_id' is string but entity key 'user_id' is int64"},
      {"POST", "/v1/features", R"({"features": ["activity"], "entities": {"user_id": [1.5]}})", 400,
       "entities.user_id[0]: expected an int64 integer, got 1.5"},
      {"POST", "/v1/features", R"({"features": ["activity"], "entities": {"account": [1]}})", 400,
       "entity key 'user_id'"},
      {"POST", "/v1/features",
       R"({"features": ["channel_activity"], "entities": {"user_id": [1]}})", 400,
       "entity key 'channel'"},
      {"POST", "/v1/features",
       R"({"features": ["channel_activity"], "entities": {"user_id": [1], "channel": []}})", 400,
       "entities.channel"},
      {"POST", "/v1/features", R"({"features": ["activity"], "entities": {"user_id": 1}})", 400,
       "entities.user_id: expected an array"},
      {"POST", "/v1/features", R"({"features": ["activity"], "entities": {}})", 400,
       "entities: expected an object"},
      {"POST", "/v1/features", R"({"features": ["activity"], "entities": {"user_id": []}})", 400,
       "entities: no entity rows"},
      {"POST", "/v1/features",
       R"({"features": ["activity"], "entities": {"user_id": [1]}, "at": "yesterday"})", 400,
       "at: bad timestamp 'yesterday'"},
      {"POST", "/v1/features",
       R"({"features": ["activity"], "entities": {"user_id": [1]}, "at": 5})", 400,
       "at: expected a time string"},
      {"POST", "/get-online-features",
       R"({"features": ["activity:events_1h"], "entities": {"user_id": [1]}, "full_feature_names": "yes"})",
       400, "full_feature_names: expected true or false"},
      {"POST", "/get-online-features", R"({"features": ["nope:x"], "entities": {"user_id": [1]}})",
       404, "'nope'"},
      {"POST", "/nope", "{}", 404, "no such path: /nope"},
      {"GET", "/v2/models", "", 404, "no such path"},
      {"GET", "/v1/features", "", 405, "method GET not allowed on /v1/features"},
      {"GET", "/get-online-features", "", 405, "allowed: POST"},
      {"PUT", "/health", "{}", 405, "method PUT not allowed on /health"},
      {"DELETE", "/ready", "", 405, "allowed: GET, HEAD"},
  };
  for (const Case& bad : cases) {
    HttpReply reply = Request(port(), bad.method, bad.path, bad.body);
    std::string label = bad.method + " " + bad.path + " " + bad.body.substr(0, 120);
    EXPECT_EQ(reply.status, bad.status) << label << "\n" << reply.Describe();
    EXPECT_EQ(reply.content_type, "application/json") << label;
    Json error = Json::parse(reply.body, nullptr, false);
    ASSERT_TRUE(error.is_object() && error["error"].is_string()) << label << "\n" << reply.body;
    EXPECT_TRUE(Contains(error["error"].get<std::string>(), bad.message)) << label;
    if (bad.status == 405) {
      EXPECT_FALSE(reply.allow.empty()) << label;
    }
  }
  // Not HTTP at all: an answer or a closed connection, and the server goes on.
  int fd = Connect(port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n", 17)));
  std::string garbage = ReadAnswer(fd);
  ::close(fd);
  EXPECT_TRUE(garbage.empty() || Contains(garbage, "HTTP/1.1 4")) << garbage;
  EXPECT_EQ(Request(port(), "GET", "/health").status, 200) << server_->Log();
  HttpReply good = Post(port(), "/v1/features", Body("features", {"activity:events_1h"}));
  EXPECT_EQ(good.status, 200) << good.Describe();
}

TEST_F(Serve, ConcurrentRequestsGetTheSameAnswer) {
  Json body = Body("feature_service", "model");
  std::string expected = parity_->front().cli_json;
  std::atomic<int> wrong{0};
  std::vector<std::thread> clients;
  for (int thread = 0; thread < 8; ++thread) {
    clients.emplace_back([&] {
      httplib::Client client("127.0.0.1", port());
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      for (int i = 0; i < 25; ++i) {
        httplib::Result result = client.Post("/v1/features", body.dump(), "application/json");
        if (!result || result->status != 200 || result->body + "\n" != expected) ++wrong;
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(Serve, SequentialRequestsAreFast) {
  // One keep-alive connection, the model service for one entity: the latency
  // of the whole round trip (JSON in, RocksDB read, JSON out).
  httplib::Client client("127.0.0.1", port());
  client.set_keep_alive(true);
  client.set_tcp_nodelay(true);  // httplib writes headers and body apart: no Nagle delay
  std::string body =
      Body("feature_service", "model", R"({"user_id": [3], "channel": ["app"]})").dump();
  std::vector<double> micros;
  for (int i = 0; i < 101; ++i) {
    auto started = Clock::now();
    httplib::Result result = client.Post("/v1/features", body, "application/json");
    double elapsed = std::chrono::duration<double, std::micro>(Clock::now() - started).count();
    ASSERT_TRUE(result && result->status == 200);
    if (i > 0) micros.push_back(elapsed);  // the first one opens the connection
  }
  std::sort(micros.begin(), micros.end());
  double median = micros[micros.size() / 2], p99 = micros[micros.size() * 99 / 100];
  std::printf(
      "[ latency  ] 100 sequential POST /v1/features (model service, 1 entity): "
      "median %.0f us, p99 %.0f us\n",
      median, p99);
  EXPECT_LT(median, 20000.0);
}

TEST(ServeLimits, BodyAndEntityLimitsAreEnforced) {
  TempDir temp;
  std::string repo = MakeRepo(temp, /*materialize=*/false);
  ServeProcess server(repo, {"--max-body-bytes", "4096", "--max-entities", "5"});
  ASSERT_GT(server.port(), 0);
  int port = server.port();
  auto users = [](int count) {
    Json ids = Json::array();
    for (int i = 0; i < count; ++i) ids.push_back(i);
    return Json{{"features", {"activity:events_1h"}}, {"entities", {{"user_id", ids}}}};
  };
  HttpReply five = Post(port, "/v1/features", users(5));
  EXPECT_EQ(five.status, 200) << five.Describe();
  HttpReply six = Post(port, "/v1/features", users(6));
  EXPECT_EQ(six.status, 413) << six.Describe();
  EXPECT_TRUE(Contains(six.body, "entities.user_id: 6 entity rows, more than the limit of 5"));
  EXPECT_TRUE(Contains(six.body, "--max-entities"));
  HttpReply feast_six = Post(port, "/get-online-features", users(6));
  EXPECT_EQ(feast_six.status, 413) << feast_six.Describe();
  // A body over the limit, announced by its length...
  Json padded = users(1);
  padded["at"] = std::string(5000, ' ') + kAt;
  HttpReply large = Post(port, "/v1/features", padded);
  EXPECT_EQ(large.status, 413) << large.Describe();
  EXPECT_TRUE(Contains(large.body, "limit of 4096 bytes (keel serve --max-body-bytes)"));
  // ... and one sent in chunks, without a length.
  int fd = Connect(port);
  ASSERT_GE(fd, 0);
  std::string chunk(3000, ' ');
  char size[16];
  std::snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
  std::string request =
      "POST /v1/features HTTP/1.1\r\nHost: keel\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  for (int i = 0; i < 3; ++i) request += size + chunk + "\r\n";
  request += "0\r\n\r\n";
  ASSERT_TRUE(SendAll(fd, request));
  std::string chunked = ReadAnswer(fd);
  ::close(fd);
  EXPECT_TRUE(Contains(chunked, "HTTP/1.1 413"));
  EXPECT_TRUE(Contains(chunked, "--max-body-bytes"));
  EXPECT_EQ(Request(port, "GET", "/health").status, 200);
  EXPECT_EQ(Post(port, "/v1/features", users(5)).status, 200);
  // A second server on the same port is refused, not given half the connections.
  TempDir other;
  CopyTree(FixtureDir() + "/mini", other.Path("repo"));
  CommandResult second =
      RunKeel({"serve", "--port", std::to_string(port)}, other.Path("repo"), {}, 20);
  EXPECT_EQ(second.exit_code, 1) << second.Describe();
  EXPECT_TRUE(Contains(second.err, "cannot listen on 127.0.0.1:" + std::to_string(port)));
  EXPECT_EQ(server.Stop(SIGTERM), 0) << server.Log();
}

TEST(ServeShutdown, SigtermAnswersEveryRequestInFlightAndExitsZero) {
  TempDir temp;
  std::string repo = MakeRepo(temp, /*materialize=*/true);
  // Fewer workers than requests: most of them wait in the queue when the signal comes.
  ServeProcess server(repo, {"--threads", "4"});
  ASSERT_GT(server.port(), 0);
  int port = server.port();
  ASSERT_EQ(WaitForReady(port).status, 200) << server.Log();
  std::string body = Body("feature_service", "model").dump();
  std::string head =
      "POST /v1/features HTTP/1.1\r\nHost: keel\r\nContent-Type: application/json\r\n"
      "Connection: close\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  size_t half = body.size() / 2;
  // 20 requests in flight: connected, accepted, half sent.
  constexpr int kRequests = 20;
  std::vector<int> sockets;
  for (int i = 0; i < kRequests; ++i) {
    int fd = Connect(port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, head + body.substr(0, half)));
    sockets.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // all accepted by now
  ASSERT_EQ(::kill(server.pid(), SIGTERM), 0);
  // New connections are refused from now on.
  bool refused = false;
  for (auto deadline = Clock::now() + std::chrono::seconds(5); Clock::now() < deadline;) {
    int probe = Connect(port);
    if (probe < 0) {
      refused = true;
      break;
    }
    ::close(probe);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(refused) << "still accepting connections after SIGTERM";
  // The requests in flight complete and are all answered.
  std::vector<std::string> answers(kRequests);
  std::vector<std::thread> finishers;
  for (int i = 0; i < kRequests; ++i) {
    finishers.emplace_back([&, i] {
      if (SendAll(sockets[i], body.substr(half))) answers[i] = ReadAnswer(sockets[i]);
      ::close(sockets[i]);
    });
  }
  for (std::thread& finisher : finishers) finisher.join();
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_TRUE(Contains(answers[i], "HTTP/1.1 200")) << "request " << i;
    EXPECT_TRUE(Contains(answers[i], "\"feature_names\"")) << "request " << i;
  }
  EXPECT_EQ(server.Wait(30), 0) << server.Log();
  EXPECT_TRUE(Contains(server.Log(), "SIGTERM"));
}

TEST(ServeCatalog, ReadyOnceAppliedAndFollowsNewVersions) {
  TempDir temp;
  std::string repo = temp.Path("repo");
  CopyTree(FixtureDir() + "/mini", repo);
  ServeProcess server(repo, {});
  ASSERT_GT(server.port(), 0);
  int port = server.port();
  EXPECT_EQ(Request(port, "GET", "/health").status, 200);
  HttpReply not_ready = Request(port, "GET", "/ready");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_TRUE(Contains(not_ready.body, "keel apply"));
  Json activity = Body("features", {"activity:events_24h"}, R"({"user_id": [3]})");
  HttpReply unknown = Post(port, "/v1/features", activity);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_TRUE(Contains(unknown.body, "activity"));
  // `keel apply` while the server runs: it becomes ready and knows the views.
  CommandResult apply = RunKeel({"apply"}, repo);
  ASSERT_EQ(apply.exit_code, 0) << apply.Describe();
  EXPECT_EQ(WaitForReady(port, 200, 10).status, 200);
  HttpReply known;
  for (auto deadline = Clock::now() + std::chrono::seconds(10); Clock::now() < deadline;) {
    known = Post(port, "/v1/features", activity);
    if (known.status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(known.status, 200) << known.Describe();
  // A new version of activity (a 2d window too): "activity" follows it,
  // "activity@1" stays on the first.
  Json two_days = Body("features", {"activity:events_2d"}, R"({"user_id": [3]})");
  EXPECT_EQ(Post(port, "/v1/features", two_days).status, 400);
  EditFile(repo + "/features.yaml", "{name: events, aggregation: count, windows: [1h, 1d]}",
           "{name: events, aggregation: count, windows: [1h, 1d, 2d]}");
  apply = RunKeel({"apply"}, repo);
  ASSERT_EQ(apply.exit_code, 0) << apply.Describe();
  HttpReply followed;
  for (auto deadline = Clock::now() + std::chrono::seconds(10); Clock::now() < deadline;) {
    followed = Post(port, "/v1/features", two_days);
    if (followed.status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(followed.status, 200) << followed.Describe();
  HttpReply first =
      Post(port, "/v1/features", Body("features", {"activity@1:events_2d"}, R"({"user_id": [3]})"));
  EXPECT_EQ(first.status, 400) << first.Describe();
  EXPECT_EQ(Post(port, "/v1/features", Body("features", {"activity@1:events_24h"})).status, 200);
  EXPECT_EQ(server.Stop(SIGINT), 0) << server.Log();
}

}  // namespace
}  // namespace keel::e2e
