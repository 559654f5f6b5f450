// End-to-end tests of the registry HTTP API on `keel serve`
// (serve/registry_api.h): a repository whose SQLite registry holds runs and a
// model with versions (made with `keel runs log` / `keel models register`),
// served by the real binary; every read against the CLI's --json answer,
// every transition with no, a wrong and the right admin token, and the
// errors: 404s, malformed bodies, forbidden transitions.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "e2e_util.h"

namespace keel::e2e {
namespace {

using Json = nlohmann::json;

constexpr const char* kToken = "t0ken-for-tests";
constexpr const char* kModel = "delay";

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string body;
  std::string authenticate;
  Json json() const { return Json::parse(body, nullptr, /*allow_exceptions=*/false); }
  std::string error() const {
    Json parsed = json();
    return parsed.is_object() && parsed.contains("error") ? parsed["error"].get<std::string>()
                                                          : "<no error field> " + body;
  }
  std::string Describe() const { return "HTTP " + std::to_string(status) + "\n" + body; }
};

// `token` empty: no Authorization header.
HttpReply Request(int port, const std::string& method, const std::string& path,
                  const std::string& body = "", const std::string& token = "") {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  httplib::Result result =
      method == "GET"    ? client.Get(path.c_str(), headers)
      : method == "POST" ? client.Post(path.c_str(), headers, body, "application/json")
      : method == "PUT"  ? client.Put(path.c_str(), headers, body, "application/json")
                         : client.Delete(path.c_str(), headers, body, "application/json");
  HttpReply reply;
  if (!result) {
    reply.body = "no answer: " + httplib::to_string(result.error());
    return reply;
  }
  reply.status = result->status;
  reply.body = result->body;
  reply.authenticate = result->get_header_value("WWW-Authenticate");
  return reply;
}

std::string Trimmed(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

::testing::AssertionResult Contains(const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected to find \"" << needle << "\" in:\n" << text;
}

class RegistryApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_ = new TempDir();
    repo_ = new std::string(temp_->Path("repo"));
    // No definitions needed: the registry file does not exist yet either.
    WriteFile(*repo_ + "/keel.yaml", "project: demo\n");
    WriteFile(temp_->Path("token"), std::string(kToken) + "\n");
    runs_ = new std::vector<std::string>();
    for (const auto& [lr, auc] : {std::pair{"0.1", "0.71"}, {"0.2", "0.78"}, {"0.3", "0.64"}}) {
      CommandResult logged =
          RunKeel({"runs", "log", "-e", "delay_exp", "--param", std::string("lr=") + lr, "--metric",
                   std::string("auc=") + auc, "--tag", "team=ml"},
                  *repo_);
      ASSERT_EQ(logged.exit_code, 0) << logged.Describe();
      runs_->push_back(Trimmed(logged.out));
    }
    for (size_t idx = 0; idx < 3; ++idx) {
      CommandResult registered =
          RunKeel({"models", "register", kModel, "--run", (*runs_)[idx], "--bundle-hash",
                   "bh" + std::to_string(idx + 1), "--bundle-uri",
                   "/bundles/" + std::to_string(idx + 1), "--data-hash", "dh", "--feature",
                   "origin_delay@abc", "--code-version", "c0ffee", "--actor", "trainer"},
                  *repo_);
      ASSERT_EQ(registered.exit_code, 0) << registered.Describe();
    }
    server_ = new ServeProcess(*repo_, {"--admin-token-file", temp_->Path("token")});
  }

  static void TearDownTestSuite() {
    if (server_ != nullptr && server_->port() > 0) {
      EXPECT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
    }
    delete server_;
    delete runs_;
    delete repo_;
    delete temp_;
  }

  void SetUp() override { ASSERT_GT(server_->port(), 0) << server_->Log(); }

  static HttpReply Get(const std::string& path) { return Request(server_->port(), "GET", path); }
  static HttpReply Send(const std::string& method, const std::string& path, const Json& body,
                        const std::string& token = kToken) {
    return Request(server_->port(), method, path, body.dump(), token);
  }
  static HttpReply Stage(const std::string& version, const Json& body,
                         const std::string& token = kToken) {
    return Send("POST",
                std::string("/v1/registry/models/") + kModel + "/versions/" + version + "/stage",
                body, token);
  }

  // The CLI's --json answer, parsed.
  static Json Cli(std::vector<std::string> args) {
    args.push_back("--json");
    CommandResult result = RunKeel(args, *repo_);
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    return result.exit_code == 0 ? Json::parse(result.out) : Json();
  }

  static TempDir* temp_;
  static std::string* repo_;
  static std::vector<std::string>* runs_;
  static ServeProcess* server_;
};

TempDir* RegistryApi::temp_ = nullptr;
std::string* RegistryApi::repo_ = nullptr;
std::vector<std::string>* RegistryApi::runs_ = nullptr;
ServeProcess* RegistryApi::server_ = nullptr;

// The tests share one registry and run in order: reads first, then transitions.

TEST_F(RegistryApi, ReadsAnswerAsTheCliDoes) {
  HttpReply models = Get("/v1/registry/models");
  ASSERT_EQ(models.status, 200) << models.Describe();
  EXPECT_EQ(models.json(), Cli({"models", "list"}));
  ASSERT_EQ(models.json().size(), 1u);
  EXPECT_EQ(models.json()[0]["latest_version"], 3);

  HttpReply model = Get("/v1/registry/models/delay");
  ASSERT_EQ(model.status, 200) << model.Describe();
  EXPECT_EQ(model.json(), Cli({"models", "show", kModel}));
  EXPECT_EQ(model.json()["versions"].size(), 3u);

  HttpReply versions = Get("/v1/registry/models/delay/versions");
  ASSERT_EQ(versions.status, 200) << versions.Describe();
  EXPECT_EQ(versions.json(), model.json()["versions"]);

  HttpReply version = Get("/v1/registry/models/delay/versions/2");
  ASSERT_EQ(version.status, 200) << version.Describe();
  EXPECT_EQ(version.json(), Cli({"models", "show", kModel, "2"}));
  EXPECT_EQ(version.json()["lineage"]["run_id"], (*runs_)[1]);
  EXPECT_EQ(version.json()["lineage"]["bundle_hash"], "bh2");
  EXPECT_EQ(version.json()["lineage"]["feature_versions"], Json::array({"origin_delay@abc"}));
  EXPECT_EQ(Get("/v1/registry/models/delay/versions/v2").json(), version.json());

  HttpReply history = Get("/v1/registry/models/delay/history");
  ASSERT_EQ(history.status, 200) << history.Describe();
  EXPECT_EQ(history.json(), Cli({"models", "history", kModel}));
  EXPECT_EQ(history.json().size(), 3u);

  HttpReply runs = Get("/v1/registry/runs?experiment=delay_exp&order_by=metrics.auc");
  ASSERT_EQ(runs.status, 200) << runs.Describe();
  EXPECT_EQ(runs.json(), Cli({"runs", "list", "-e", "delay_exp", "--order-by", "auc"}));
  ASSERT_EQ(runs.json().size(), 3u);
  EXPECT_EQ(runs.json()[0]["id"], (*runs_)[1]);  // best auc first
  HttpReply ascending = Get("/v1/registry/runs?order_by=metrics.auc%20asc&limit=1");
  ASSERT_EQ(ascending.json().size(), 1u) << ascending.Describe();
  EXPECT_EQ(ascending.json()[0]["id"], (*runs_)[2]);
  // Repeated filters all hold.
  HttpReply filtered =
      Get("/v1/registry/runs?filter=metrics.auc%20%3E%3D%200.7&filter=params.lr%20%3D%200.1");
  ASSERT_EQ(filtered.status, 200) << filtered.Describe();
  ASSERT_EQ(filtered.json().size(), 1u) << filtered.Describe();
  EXPECT_EQ(filtered.json()[0]["id"], (*runs_)[0]);
  EXPECT_EQ(Get("/v1/registry/runs?filter=metrics.auc%20%3E%200.7").json().size(), 2u);

  HttpReply run = Get("/v1/registry/runs/" + (*runs_)[0]);
  ASSERT_EQ(run.status, 200) << run.Describe();
  EXPECT_EQ(run.json(), Cli({"runs", "show", (*runs_)[0]}));
  EXPECT_EQ(Get("/v1/registry/runs/" + (*runs_)[0].substr(0, 8)).json(), run.json());
}

TEST_F(RegistryApi, UnknownNamesAre404AndBadQueries400) {
  for (const char* path :
       {"/v1/registry/models/nope", "/v1/registry/models/nope/versions",
        "/v1/registry/models/nope/versions/1", "/v1/registry/models/nope/history",
        "/v1/registry/models/delay/versions/9", "/v1/registry/models/delay/versions/no_alias",
        "/v1/registry/runs/ffffffffffffffffffffffffffffffff",
        "/v1/registry/runs?experiment=nope"}) {
    HttpReply reply = Get(path);
    EXPECT_EQ(reply.status, 404) << path << "\n" << reply.Describe();
    EXPECT_FALSE(reply.error().empty()) << path;
  }
  EXPECT_TRUE(Contains(Get("/v1/registry/models/delay/versions/9").error(), "version 9"));
  EXPECT_TRUE(Contains(Get("/v1/registry/models/nope").error(), "model 'nope'"));

  struct Bad {
    const char* path;
    const char* names;
  };
  for (const Bad& bad :
       {Bad{"/v1/registry/runs?limit=0", "limit"}, Bad{"/v1/registry/runs?limit=lots", "limit"},
        Bad{"/v1/registry/runs?filter=metrics.auc%20%3E%3D%20high", "filter"},
        Bad{"/v1/registry/runs?status=sleeping", "status"},
        Bad{"/v1/registry/runs?order_by=a%20b%20c", "order_by"},
        Bad{"/v1/registry/runs?colour=red", "colour"},
        Bad{"/v1/registry/models/delay/history?at=yesterday", "at"},
        Bad{"/v1/registry/models?x=1", "'x'"}}) {
    HttpReply reply = Get(bad.path);
    EXPECT_EQ(reply.status, 400) << bad.path << "\n" << reply.Describe();
    EXPECT_TRUE(Contains(reply.error(), bad.names)) << bad.path;
  }
  // A known path with another method.
  EXPECT_EQ(Request(server_->port(), "POST", "/v1/registry/models", "{}", kToken).status, 405);
}

TEST_F(RegistryApi, TransitionsNeedTheAdminToken) {
  Json to_staging = {{"to", "staging"}, {"actor", "alice"}, {"reason", "try it"}};
  HttpReply missing = Stage("1", to_staging, "");
  EXPECT_EQ(missing.status, 401) << missing.Describe();
  EXPECT_TRUE(Contains(missing.error(), "missing admin token"));
  EXPECT_TRUE(Contains(missing.authenticate, "Bearer"));
  for (const std::string& wrong :
       {std::string("nope"), std::string(kToken) + "x", std::string(kToken).substr(1)}) {
    HttpReply reply = Stage("1", to_staging, wrong);
    EXPECT_EQ(reply.status, 403) << wrong << "\n" << reply.Describe();
    EXPECT_TRUE(Contains(reply.error(), "wrong admin token"));
  }
  // Not a Bearer token at all.
  httplib::Client client("127.0.0.1", server_->port());
  auto basic = client.Post("/v1/registry/models/delay/versions/1/stage",
                           {{"Authorization", std::string("Basic ") + kToken}}, to_staging.dump(),
                           "application/json");
  ASSERT_TRUE(basic);
  EXPECT_EQ(basic->status, 403);
  EXPECT_EQ(Send("PUT", "/v1/registry/models/delay/aliases/champion", {{"version", 1}}, "").status,
            401);
  EXPECT_EQ(
      Send("DELETE", "/v1/registry/models/delay/aliases/champion", Json::object(), "x").status,
      403);
  EXPECT_EQ(
      Send("POST", "/v1/registry/models/delay/rollback", {{"actor", "a"}, {"reason", "r"}}, "")
          .status,
      401);
  // Nothing moved.
  EXPECT_EQ(Get("/v1/registry/models/delay/versions/1").json()["stage"], "trained");

  HttpReply moved = Stage("1", to_staging);
  ASSERT_EQ(moved.status, 200) << moved.Describe();
  EXPECT_EQ(moved.json()["stage"], "staging");
  EXPECT_EQ(moved.json()["version"], 1);
  Json history = Get("/v1/registry/models/delay/history").json();
  EXPECT_EQ(history.back()["actor"], "alice");
  EXPECT_EQ(history.back()["reason"], "try it");
}

TEST_F(RegistryApi, MalformedBodiesAreRefusedNamingTheField) {
  struct Bad {
    std::string body;
    const char* names;
  };
  for (const Bad& bad :
       {Bad{"{\"to\": ", "malformed JSON"}, Bad{"[1, 2]", "JSON object"},
        Bad{R"({"actor": "a"})", "'to'"}, Bad{R"({"to": 3, "actor": "a"})", "'to'"},
        Bad{R"({"to": "heaven", "actor": "a"})", "heaven"}, Bad{R"({"to": "staging"})", "'actor'"},
        Bad{R"({"to": "staging", "actor": ""})", "'actor'"},
        Bad{R"({"to": "staging", "actor": "a", "colour": 1})", "'colour'"},
        Bad{R"({"to": "production", "actor": "a", "reason": "r", "sign_off": "bob"})",
            "'sign_off'"},
        Bad{R"({"to": "production", "actor": "a", "reason": "r", "sign_off": {"by": "bob"}})",
            "'sign_off.note'"},
        Bad{R"({"to": "production", "actor": "a", "reason": "r",
                "sign_off": {"by": "bob", "note": "ok", "when": 1}})",
            "'sign_off.when'"}}) {
    HttpReply reply = Request(server_->port(), "POST", "/v1/registry/models/delay/versions/2/stage",
                              bad.body, kToken);
    EXPECT_EQ(reply.status, 400) << bad.body << "\n" << reply.Describe();
    EXPECT_TRUE(Contains(reply.error(), bad.names)) << bad.body;
  }
  for (const Bad& bad : {Bad{R"({"actor": "a"})", "'reason'"}, Bad{R"({"reason": "r"})", "'actor'"},
                         Bad{"nonsense", "malformed JSON"}}) {
    HttpReply reply =
        Request(server_->port(), "POST", "/v1/registry/models/delay/rollback", bad.body, kToken);
    EXPECT_EQ(reply.status, 400) << bad.body << "\n" << reply.Describe();
    EXPECT_TRUE(Contains(reply.error(), bad.names)) << bad.body;
  }
  for (const Bad& bad : {Bad{R"({})", "'version'"}, Bad{R"({"version": "latest"})", "'version'"},
                         Bad{R"({"version": 1.5})", "'version'"}}) {
    HttpReply reply = Request(server_->port(), "PUT", "/v1/registry/models/delay/aliases/champion",
                              bad.body, kToken);
    EXPECT_EQ(reply.status, 400) << bad.body << "\n" << reply.Describe();
    EXPECT_TRUE(Contains(reply.error(), bad.names)) << bad.body;
  }
  // Unknown model or version: 404, also for transitions.
  EXPECT_EQ(
      Send("POST", "/v1/registry/models/nope/versions/1/stage", {{"to", "staging"}, {"actor", "a"}})
          .status,
      404);
  EXPECT_EQ(Stage("9", {{"to", "staging"}, {"actor", "a"}}).status, 404);
  EXPECT_EQ(Send("PUT", "/v1/registry/models/delay/aliases/champion", {{"version", 9}}).status,
            404);
  EXPECT_EQ(Send("DELETE", "/v1/registry/models/delay/aliases/nobody", Json::object()).status, 404);
  EXPECT_EQ(
      Send("POST", "/v1/registry/models/nope/rollback", {{"actor", "a"}, {"reason", "r"}}).status,
      404);
  EXPECT_EQ(Get("/v1/registry/models/delay/versions/2").json()["stage"], "trained");
}

TEST_F(RegistryApi, PromotionRollbackAliasesAndHistoryAt) {
  // Version 1 is in staging (TransitionsNeedTheAdminToken); 2 is trained.
  // Skipping staging is refused; so is production without a sign-off or a reason.
  HttpReply skip = Stage("2", {{"to", "production"},
                               {"actor", "alice"},
                               {"reason", "r"},
                               {"sign_off", {{"by", "bob"}, {"note", "ok"}}}});
  EXPECT_EQ(skip.status, 400) << skip.Describe();
  EXPECT_TRUE(Contains(skip.error(), "cannot move from trained to production"));
  HttpReply unsigned_promotion =
      Stage("1", {{"to", "production"}, {"actor", "alice"}, {"reason", "r"}});
  EXPECT_EQ(unsigned_promotion.status, 400) << unsigned_promotion.Describe();
  EXPECT_TRUE(Contains(unsigned_promotion.error(), "sign-off"));
  HttpReply no_reason = Stage(
      "1",
      {{"to", "production"}, {"actor", "alice"}, {"sign_off", {{"by", "bob"}, {"note", "ok"}}}});
  EXPECT_EQ(no_reason.status, 400) << no_reason.Describe();
  EXPECT_TRUE(Contains(no_reason.error(), "reason"));
  EXPECT_EQ(Get("/v1/registry/models/delay").json()["production_version"], nullptr);

  Json sign_off = {{"by", "bob"}, {"note", "metrics reviewed"}};
  HttpReply first = Stage(
      "v1",
      {{"to", "production"}, {"actor", "alice"}, {"reason", "launch"}, {"sign_off", sign_off}});
  ASSERT_EQ(first.status, 200) << first.Describe();
  EXPECT_EQ(first.json()["stage"], "production");
  HttpReply again = Stage(
      "1", {{"to", "production"}, {"actor", "alice"}, {"reason", "again"}, {"sign_off", sign_off}});
  EXPECT_EQ(again.status, 400) << again.Describe();

  // Nothing to roll back to yet.
  HttpReply early = Send("POST", "/v1/registry/models/delay/rollback",
                         {{"actor", "oncall"}, {"reason", "canary"}});
  EXPECT_EQ(early.status, 400) << early.Describe();
  EXPECT_TRUE(Contains(early.error(), "nothing to roll back to"));

  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(Stage("2", {{"to", "staging"}, {"actor", "alice"}}).status, 200);
  HttpReply second = Stage(
      "2",
      {{"to", "production"}, {"actor", "carol"}, {"reason", "better"}, {"sign_off", sign_off}});
  ASSERT_EQ(second.status, 200) << second.Describe();
  EXPECT_EQ(Get("/v1/registry/models/delay/versions/1").json()["stage"], "archived");
  EXPECT_EQ(Get("/v1/registry/models/delay").json()["production_version"], 2);

  // Aliases.
  HttpReply aliased = Send("PUT", "/v1/registry/models/delay/aliases/champion", {{"version", 2}});
  ASSERT_EQ(aliased.status, 200) << aliased.Describe();
  EXPECT_EQ(aliased.json()["aliases"], Json::array({"champion"}));
  EXPECT_EQ(Get("/v1/registry/models/delay/versions/champion").json()["version"], 2);
  ASSERT_EQ(Send("PUT", "/v1/registry/models/delay/aliases/challenger", {{"version", "v3"}}).status,
            200);
  EXPECT_EQ(Get("/v1/registry/models/delay/versions/challenger").json()["version"], 3);
  HttpReply digits = Send("PUT", "/v1/registry/models/delay/aliases/42", {{"version", 3}});
  EXPECT_EQ(digits.status, 400) << digits.Describe();
  HttpReply removed =
      Send("DELETE", "/v1/registry/models/delay/aliases/challenger", Json::object());
  ASSERT_EQ(removed.status, 200) << removed.Describe();
  EXPECT_EQ(removed.json(), Json({{"model", "delay"}, {"alias", "challenger"}, {"deleted", true}}));
  EXPECT_EQ(Get("/v1/registry/models/delay/versions/challenger").status, 404);

  // Rollback restores version 1.
  HttpReply restored = Send("POST", "/v1/registry/models/delay/rollback",
                            {{"actor", "oncall"}, {"reason", "error rate up"}});
  ASSERT_EQ(restored.status, 200) << restored.Describe();
  EXPECT_EQ(restored.json()["version"], 1);
  EXPECT_EQ(restored.json()["stage"], "production");
  EXPECT_EQ(Get("/v1/registry/models/delay/versions/2").json()["stage"], "archived");

  // The audit trail, and which version was in production when.
  Json history = Get("/v1/registry/models/delay/history").json();
  EXPECT_EQ(history, Cli({"models", "history", kModel}));
  std::string registered_at, first_at, second_at, rollback_at;
  for (const Json& entry : history) {
    if (entry["to"] == "production" && entry["version"] == 1 && entry["kind"] == "transition") {
      first_at = entry["time"];
      EXPECT_EQ(entry["sign_off"]["by"], "bob");
      EXPECT_EQ(entry["sign_off"]["note"], "metrics reviewed");
      EXPECT_EQ(entry["reason"], "launch");
    }
    if (entry["to"] == "production" && entry["version"] == 2) second_at = entry["time"];
    if (entry["to"] == "production" && entry["kind"] == "rollback") rollback_at = entry["time"];
  }
  registered_at = history[0]["time"];
  ASSERT_FALSE(first_at.empty() || second_at.empty() || rollback_at.empty()) << history.dump(2);
  auto at = [](const std::string& time) {
    std::string query = time;
    for (size_t pos = query.find(' '); pos != std::string::npos; pos = query.find(' ')) {
      query.replace(pos, 1, "%20");
    }
    Json answer = Get("/v1/registry/models/delay/history?at=" + query).json();
    EXPECT_EQ(answer, Cli({"models", "history", kModel, "--at", time}));
    return answer["production_version"];
  };
  EXPECT_EQ(at(registered_at), nullptr);
  EXPECT_EQ(at(first_at), 1);
  EXPECT_EQ(at(second_at), 2);
  EXPECT_EQ(at(rollback_at), 1);
}

// The server's worker threads share one registry: many clients reading and
// changing aliases at once all get whole answers.
TEST_F(RegistryApi, ConcurrentRequestsShareTheRegistrySafely) {
  constexpr int kThreads = 8;
  constexpr int kRequests = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int thread_idx = 0; thread_idx < kThreads; ++thread_idx) {
    threads.emplace_back([&, thread_idx] {
      std::string alias = "/v1/registry/models/delay/aliases/t" + std::to_string(thread_idx);
      for (int request_idx = 0; request_idx < kRequests; ++request_idx) {
        HttpReply read = request_idx % 2 == 0 ? Get("/v1/registry/models/delay")
                                              : Get("/v1/registry/runs?order_by=auc");
        HttpReply write = Send("PUT", alias, {{"version", 1 + request_idx % 3}});
        if (read.status != 200 || !read.json().is_structured() || write.status != 200) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0) << server_->Log();
  Json versions = Get("/v1/registry/models/delay/versions").json();
  size_t aliases = 0;
  for (const Json& version : versions) aliases += version["aliases"].size();
  EXPECT_EQ(aliases, kThreads + 1u);  // t0..t7 and champion
  for (int thread_idx = 0; thread_idx < kThreads; ++thread_idx) {
    EXPECT_EQ(
        Get("/v1/registry/models/delay/versions/t" + std::to_string(thread_idx)).json()["version"],
        1 + (kRequests - 1) % 3);
  }
}

// Without --admin-token-file (and KEEL_ADMIN_TOKEN, which tests never pass),
// reads work and every transition is refused.
TEST(RegistryApiDisabled, EveryTransitionIs403) {
  TempDir temp;
  std::string repo = temp.Path("repo");
  WriteFile(repo + "/keel.yaml", "project: demo\n");
  ASSERT_EQ(RunKeel({"models", "register", "m", "--actor", "trainer"}, repo).exit_code, 0);
  ServeProcess server(repo, {});
  ASSERT_GT(server.port(), 0) << server.Log();
  EXPECT_TRUE(Contains(server.Log(), "transitions disabled"));
  EXPECT_EQ(Request(server.port(), "GET", "/v1/registry/models/m/versions/1").status, 200);
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/v1/registry/models/m/versions/1/stage"},
           {"POST", "/v1/registry/models/m/rollback"},
           {"PUT", "/v1/registry/models/m/aliases/champion"},
           {"DELETE", "/v1/registry/models/m/aliases/champion"}}) {
    for (const char* token : {"", "anything"}) {
      HttpReply reply = Request(server.port(), method, path,
                                R"({"to": "staging", "actor": "a", "version": 1})", token);
      EXPECT_EQ(reply.status, 403) << method << " " << path << "\n" << reply.Describe();
      EXPECT_TRUE(Contains(reply.error(),
                           "transitions are disabled: start keel serve with "
                           "--admin-token-file"));
    }
  }
  EXPECT_EQ(Request(server.port(), "GET", "/v1/registry/models/m/versions/1").json()["stage"],
            "trained");
  EXPECT_EQ(server.Stop(), 0) << server.Log();

  // A token file without a token is a clear start-up error.
  WriteFile(temp.Path("empty"), "\n");
  CommandResult empty =
      RunKeel({"serve", "--port", "0", "--admin-token-file", temp.Path("empty")}, repo);
  EXPECT_EQ(empty.exit_code, 2) << empty.Describe();
  EXPECT_TRUE(Contains(empty.err, "holds no token"));
  CommandResult absent =
      RunKeel({"serve", "--port", "0", "--admin-token-file", temp.Path("absent")}, repo);
  EXPECT_NE(absent.exit_code, 0) << absent.Describe();
  EXPECT_TRUE(Contains(absent.err, "--admin-token-file"));
}

}  // namespace
}  // namespace keel::e2e
