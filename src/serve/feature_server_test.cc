// The server's extension point: routes added through ServerOptions::routes.
#include "serve/feature_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <stdexcept>
#include <thread>

namespace keel::serve {
namespace {

namespace fs = std::filesystem;

class Routes : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("keel_routes_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ServerOptions options;
    options.port = 0;
    options.threads = 2;
    options.max_body_bytes = 100;
    options.routes.push_back({"GET", "/v1/things/([^/]+)", [](const HttpRequest& request) {
                                return Reply(200, "{\"thing\":\"" + request.captures.at(0) +
                                                      "\",\"q\":\"" + request.Query("q") +
                                                      "\",\"h\":\"" + request.Header("x-test") +
                                                      "\"}");
                              }});
    options.routes.push_back({"POST", "/v1/things/([^/]+):echo", [](const HttpRequest& request) {
                                Reply reply(201, std::string(request.body));
                                reply.content_type = "text/plain; version=0.0.4";
                                reply.headers.emplace_back("X-Thing", request.captures.at(0));
                                return reply;
                              }});
    options.routes.push_back({"DELETE", "/v1/things/([^/]+)", [](const HttpRequest& request) {
                                return Reply(200,
                                             "{\"deleted\":\"" + request.captures.at(0) + "\"}");
                              }});
    options.routes.push_back({"GET", "/v1/boom", [](const HttpRequest&) -> Reply {
                                throw std::runtime_error("handler failed");
                              }});
    Result<std::unique_ptr<features::Catalog>> catalog =
        features::Catalog::Open((dir_ / "catalog.db").string());
    ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
    Result<std::unique_ptr<FeatureServer>> server = FeatureServer::Make(
        std::move(options), std::move(*catalog), store::NewMemoryStore("routes"));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Bind().ok());
    runner_ = std::thread([this] { (void)server_->Run(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    if (runner_.joinable()) runner_.join();
    server_.reset();
    fs::remove_all(dir_);
  }

  fs::path dir_;
  std::unique_ptr<FeatureServer> server_;
  std::thread runner_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(Routes, GetSeesCapturesQueryAndHeaders) {
  auto response = client_->Get("/v1/things/abc?q=1", {{"X-Test", "yes"}});
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "{\"thing\":\"abc\",\"q\":\"1\",\"h\":\"yes\"}");
  EXPECT_EQ(response->get_header_value("Content-Type"), "application/json");
}

TEST_F(Routes, PostGetsTheBodyAndSetsContentTypeAndHeaders) {
  auto response = client_->Post("/v1/things/abc:echo", "hello", "text/plain");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, "hello");
  EXPECT_EQ(response->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  EXPECT_EQ(response->get_header_value("X-Thing"), "abc");
  // The body limit holds for routes too.
  auto large = client_->Post("/v1/things/abc:echo", std::string(500, 'x'), "text/plain");
  ASSERT_TRUE(large);
  EXPECT_EQ(large->status, 413);
}

TEST_F(Routes, OtherMethodsGet405WithAllow) {
  auto response = client_->Put("/v1/things/abc", "{}", "application/json");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 405);
  EXPECT_EQ(response->get_header_value("Allow"), "GET, DELETE");
  auto deleted = client_->Delete("/v1/things/abc");
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->body, "{\"deleted\":\"abc\"}");
  auto get_echo = client_->Get("/v1/things/abc:echo");
  ASSERT_TRUE(get_echo);
  // The GET route's pattern also matches "abc:echo": the GET route answers.
  EXPECT_EQ(get_echo->status, 200);
}

TEST_F(Routes, UnknownPathsListTheRoutesAndExceptionsAre500) {
  auto missing = client_->Get("/nowhere");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("/v1/things/([^/]+)"), std::string::npos) << missing->body;
  auto boom = client_->Get("/v1/boom");
  ASSERT_TRUE(boom);
  EXPECT_EQ(boom->status, 500);
  EXPECT_NE(boom->body.find("handler failed"), std::string::npos);
  // The server keeps serving.
  auto again = client_->Get("/v1/things/x");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

}  // namespace
}  // namespace keel::serve
