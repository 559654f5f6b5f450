// The registry API's parts that need no server: the admin token (file,
// environment, constant-time comparison) and a registry that cannot be
// opened. The routes themselves are tested end to end in
// tests/registry_api_test.cc.
#include "serve/registry_api.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace keel::serve {
namespace {

namespace fs = std::filesystem;

class AdminToken : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("keel_admin_token_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& contents) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << contents;
    return path;
  }
  fs::path dir_;
};

TEST_F(AdminToken, FileIsTrimmedAndWinsOverTheEnvironment) {
  std::string file = Write("token", "  s3cret-token\n\n");
  Result<std::string> token = LoadAdminToken(file, "from-env");
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(*token, "s3cret-token");
}

TEST_F(AdminToken, EnvironmentWhenNoFileAndNothingDisables) {
  EXPECT_EQ(*LoadAdminToken("", "from-env"), "from-env");
  EXPECT_EQ(*LoadAdminToken("", nullptr), "");
  EXPECT_EQ(*LoadAdminToken("", ""), "");
}

TEST_F(AdminToken, BadTokensAreClearErrors) {
  Result<std::string> empty = LoadAdminToken(Write("empty", " \n"), nullptr);
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("holds no token"), std::string::npos);
  Result<std::string> missing = LoadAdminToken((dir_ / "absent").string(), nullptr);
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().ToString().find("absent"), std::string::npos);
  Result<std::string> spaced = LoadAdminToken(Write("spaced", "two words\n"), nullptr);
  EXPECT_EQ(spaced.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadAdminToken("", "two words").status().code(), StatusCode::kInvalidArgument);
}

TEST(TokensMatch, OnlyTheSameBytesMatch) {
  EXPECT_TRUE(TokensMatch("abc", "abc"));
  EXPECT_FALSE(TokensMatch("abd", "abc"));
  EXPECT_FALSE(TokensMatch("ab", "abc"));
  EXPECT_FALSE(TokensMatch("abcd", "abc"));
  EXPECT_FALSE(TokensMatch("", "abc"));
  EXPECT_FALSE(TokensMatch(std::string("ab\0", 3), "ab"));
}

// A registry that cannot be opened answers 503 naming why, and is opened
// again on the next request.
TEST(RegistryRoutes, UnavailableRegistryIs503UntilItOpens) {
  fs::path dir = fs::temp_directory_path() / ("keel_registry_api_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  int attempts = 0;
  std::vector<Route> routes = RegistryRoutes(
      [&]() -> Result<std::unique_ptr<registry::Registry>> {
        if (++attempts == 1) return Unavailable("cannot reach postgres");
        registry::RegistryOptions options;
        options.path = (dir / "registry.db").string();
        return registry::OpenRegistry(options);
      },
      "");
  const Route* list = nullptr;
  for (const Route& route : routes) {
    if (route.method == "GET" && route.pattern == "/v1/registry/models") list = &route;
  }
  ASSERT_NE(list, nullptr);
  HttpRequest request;
  request.method = "GET";
  request.path = "/v1/registry/models";
  Reply down = list->handle(request);
  EXPECT_EQ(down.http_status, 503);
  EXPECT_NE(down.body.find("registry unavailable: cannot reach postgres"), std::string::npos)
      << down.body;
  Reply up = list->handle(request);
  EXPECT_EQ(up.http_status, 200) << up.body;
  EXPECT_EQ(up.body, "[]");
  EXPECT_EQ(attempts, 2);
  list->handle(request);
  EXPECT_EQ(attempts, 2);  // opened once, then shared
  fs::remove_all(dir);
}

}  // namespace
}  // namespace keel::serve
