#include "features/catalog.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

namespace keel::features {
namespace {

FeatureViewDef View(const std::string& name, Duration window) {
  FeatureViewDef view;
  view.kind = ViewKind::kWindow;
  view.name = name;
  view.entity = {"airport", {{"iata", table::DataType::kString}}, "", {}};
  view.source.name = "flights";
  view.source.path = "flights.parquet";
  view.source.timestamp_column = "date";
  view.key_columns = {"origin"};
  WindowFeatureDef feature;
  feature.name = "n";
  feature.aggregation = Aggregation::kCount;
  feature.windows = {{window, DefaultHop(window)}};
  view.window_features.push_back(feature);
  return view;
}

class CatalogTest : public testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::TempDir() + "/keel_catalog_" +
            testing::UnitTest::GetInstance()->current_test_info()->name() + "/catalog.db";
    std::filesystem::remove_all(std::filesystem::path(path_).parent_path());
    catalog_ = std::move(Catalog::Open(path_).value());
  }
  std::vector<ViewChange> Apply(std::vector<FeatureViewDef> views) {
    Repository repo;
    repo.views = std::move(views);
    Result<std::vector<ViewChange>> changes = catalog_->Apply(repo);
    EXPECT_TRUE(changes.ok()) << changes.status().ToString();
    return changes.ok() ? *changes : std::vector<ViewChange>{};
  }
  std::string path_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(CatalogTest, NewDefinitionsMakeNewVersionsAndOldOnesStayResolvable) {
  std::vector<ViewChange> first = Apply({View("a", kMicrosPerHour), View("b", kMicrosPerHour)});
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].kind, ViewChange::Kind::kCreated);
  EXPECT_EQ(first[0].number, 1);
  EXPECT_EQ(Apply({View("a", kMicrosPerHour), View("b", kMicrosPerHour)})[0].kind,
            ViewChange::Kind::kUnchanged);
  std::vector<ViewChange> second =
      Apply({View("a", 2 * kMicrosPerHour), View("b", kMicrosPerHour)});
  EXPECT_EQ(second[0].kind, ViewChange::Kind::kNewVersion);
  EXPECT_EQ(second[0].number, 2);

  Result<ViewVersionInfo> current = catalog_->Resolve("a", "");
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current->number, 2);
  EXPECT_EQ(current->definition.window_features[0].windows[0].length, 2 * kMicrosPerHour);
  Result<ViewVersionInfo> old = catalog_->Resolve("a", "1");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->definition.window_features[0].windows[0].length, kMicrosPerHour);
  EXPECT_FALSE(old->current);
  Result<ViewVersionInfo> by_hash = catalog_->Resolve("a", old->version.substr(0, 6));
  ASSERT_TRUE(by_hash.ok());
  EXPECT_EQ(by_hash->number, 1);
  EXPECT_EQ(old->version, ViewVersion(View("a", kMicrosPerHour)));
}

TEST_F(CatalogTest, ResolveErrorsAreSpecific) {
  Apply({View("a", kMicrosPerHour)});
  EXPECT_EQ(catalog_->Resolve("zz", "").status().code(), StatusCode::kNotFound);
  Result<ViewVersionInfo> missing = catalog_->Resolve("a", "7");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("versions: 1 ("), std::string::npos);
  EXPECT_EQ(catalog_->Resolve("a", "ab").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CatalogTest, RemovedViewsStopBeingCurrentButKeepTheirVersions) {
  Apply({View("a", kMicrosPerHour), View("b", kMicrosPerHour)});
  std::vector<ViewChange> changes = Apply({View("a", kMicrosPerHour)});
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1].kind, ViewChange::Kind::kRemoved);
  EXPECT_EQ(catalog_->ListCurrent()->size(), 1u);
  EXPECT_EQ(catalog_->Resolve("b", "").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(catalog_->Resolve("b", "1").ok());
}

TEST_F(CatalogTest, SurvivesReopeningAndStoresServices) {
  Repository repo;
  repo.views = {View("a", kMicrosPerHour)};
  FeatureServiceDef service;
  service.name = "svc";
  FeatureUse use;
  use.view = "a";
  use.alias = "x";
  use.key_map["iata"] = "dest";
  service.uses.push_back(use);
  repo.services.push_back(service);
  ASSERT_TRUE(catalog_->Apply(repo).ok());
  catalog_.reset();
  catalog_ = std::move(Catalog::Open(path_).value());
  Result<FeatureServiceDef> stored = catalog_->Service("svc");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->uses.size(), 1u);
  EXPECT_EQ(stored->uses[0].key_map.at("iata"), "dest");
  EXPECT_EQ(catalog_->Service("nope").status().code(), StatusCode::kNotFound);
}

// Several processes applying different definitions at once: every version
// gets a distinct number and the catalog stays consistent.
TEST_F(CatalogTest, ConcurrentAppliesFromProcessesAreSerialised) {
  catalog_.reset();
  constexpr int kProcesses = 6;
  std::vector<pid_t> children;
  for (int i = 0; i < kProcesses; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto catalog = Catalog::Open(path_);
      Repository repo;
      repo.views = {View("a", (i + 1) * kMicrosPerHour)};
      _exit(catalog.ok() && (*catalog)->Apply(repo).ok() ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  catalog_ = std::move(Catalog::Open(path_).value());
  Result<std::vector<ViewVersionInfo>> history = catalog_->History("a");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), static_cast<size_t>(kProcesses));
  int current = 0;
  for (size_t i = 0; i < history->size(); ++i) {
    EXPECT_EQ((*history)[i].number, static_cast<int64_t>(i + 1));
    current += (*history)[i].current ? 1 : 0;
  }
  EXPECT_EQ(current, 1);
}

}  // namespace
}  // namespace keel::features
