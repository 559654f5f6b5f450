#include "features/definitions.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "table/duckdb_bridge.h"

namespace keel::features {
namespace {

constexpr const char* kEntities = R"(entities:
  - name: airport
    keys: {iata: string}
)";

constexpr const char* kSources = R"(sources:
  - name: flights
    path: flights.csv
    timestamp: date
)";

constexpr const char* kView = R"(window_views:
  - name: origin_delay
    entity: airport
    source: flights
    keys: {iata: origin}
    windows: [1h, 24h]
    features:
      - {name: mean_delay, aggregation: mean, expression: delay}
      - {name: flights, aggregation: count}
)";

class DefinitionsTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir() + "/keel_definitions_" +
           testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Write("keel.yaml", "project: test\n");
    Write("flights.csv",
          "date,origin,delay,distance\n2001-01-01 10:00:00,ORD,5,700\n"
          "2001-01-01 11:00:00,SFO,20,300\n");
  }

  void Write(const std::string& name, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(dir_ + "/" + name).parent_path());
    std::ofstream(dir_ + "/" + name) << text;
  }

  // Loads the repo; on success also validates against the data.
  Status Load(Repository* out = nullptr) {
    Result<Repository> repo = LoadRepository(dir_);
    if (!repo.ok()) return repo.status();
    auto duckdb = table::DuckDb::Open(1);
    RETURN_IF_ERROR(ValidateAgainstData(&*repo, duckdb->get()));
    if (out != nullptr) *out = *repo;
    return Status::Ok();
  }

  std::string ErrorOf(const std::string& definitions) {
    Write("features.yaml", definitions);
    Status status = Load();
    EXPECT_FALSE(status.ok()) << definitions;
    return status.message();
  }

  std::string dir_;
};

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

TEST_F(DefinitionsTest, LoadsAndValidatesAGoodRepository) {
  Write("features.yaml", std::string(kEntities) + kSources + kView);
  Repository repo;
  ASSERT_TRUE(Load(&repo).ok()) << Load().ToString();
  ASSERT_EQ(repo.views.size(), 1u);
  const FeatureViewDef& view = repo.views[0];
  EXPECT_EQ(view.key_columns, std::vector<std::string>{"origin"});
  EXPECT_EQ(view.FeatureNames(), (std::vector<std::string>{"mean_delay_1h", "mean_delay_24h",
                                                           "flights_1h", "flights_24h"}));
  EXPECT_EQ(view.window_features[0].windows[0].hop, 5 * kMicrosPerMinute);  // Chronon's defaults
  EXPECT_EQ(view.window_features[0].windows[1].hop, kMicrosPerHour);
}

TEST_F(DefinitionsTest, ErrorsNameFileLineAndField) {
  std::string base = std::string(kEntities) + kSources;
  EXPECT_CONTAINS(ErrorOf(base + R"(window_views:
  - name: v
    entity: airport
    source: flights
    keys: [origin]
    features:
      - {name: a, aggregation: median, expression: delay, windows: [1h]}
)"),
                  "features.yaml:14:32: ");
  EXPECT_CONTAINS(ErrorOf(base + R"(window_views:
  - name: v
    entity: airport
    source: flights
    keys: [origin]
    features:
      - {name: a, aggregation: median, expression: delay, windows: [1h]}
)"),
                  "window_views[0].features[0].aggregation: unknown aggregation");
  EXPECT_CONTAINS(ErrorOf(base + R"(window_views:
  - name: v
    entity: airport
    source: flights
    keys: [origin]
    features:
      - {name: a, aggregation: mean, expression: delay, windows: [1hour]}
)"),
                  "windows[0]: bad duration '1hour'");
  EXPECT_CONTAINS(ErrorOf(base + R"(window_views:
  - name: v
    entity: airport
    source: flights
    keys: [origin]
    features:
      - {name: a, aggregation: mean, expresion: delay, windows: [1h]}
)"),
                  "expresion: unknown field");
  EXPECT_CONTAINS(ErrorOf(base + "window_views: [{name: v, entity: plane, source: flights, "
                                 "features: [{name: a, aggregation: count, windows: [1h]}]}]\n"),
                  "unknown entity 'plane'");
  EXPECT_CONTAINS(ErrorOf(base + "window_views: [{name: v, entity: airport, source: trains, "
                                 "features: [{name: a, aggregation: count, windows: [1h]}]}]\n"),
                  "unknown source 'trains'");
  EXPECT_CONTAINS(ErrorOf("entities: [\n  {name: a, keys: {x: string}\n"), "malformed YAML");
  EXPECT_CONTAINS(ErrorOf("entities: [\n  {name: a, keys: {x: string}\n"), "features.yaml:");
}

TEST_F(DefinitionsTest, DuplicateNamesAndCyclesAreRejected) {
  EXPECT_CONTAINS(ErrorOf(std::string(kEntities) + kSources + kView +
                          R"(  - name: origin_delay
    entity: airport
    source: flights
    keys: [origin]
    features: [{name: n, aggregation: count, windows: [1h]}]
)"),
                  "duplicate view name 'origin_delay'");
  EXPECT_CONTAINS(ErrorOf(std::string(kEntities) + R"(sources:
  - {name: a, query: "SELECT * FROM b"}
  - {name: b, query: "SELECT * FROM a"}
)"),
                  "cyclic reference");
  EXPECT_CONTAINS(ErrorOf(std::string(kEntities) + kSources + R"(window_views:
  - name: v
    entity: airport
    source: flights
    keys: [origin]
    features:
      - {name: a, aggregation: count, windows: [1h, 1h]}
)"),
                  "duplicate window");
}

TEST_F(DefinitionsTest, ValidationChecksColumnsAndTypesAgainstTheData) {
  std::string base = std::string(kEntities) + kSources;
  auto view = [](const std::string& keys, const std::string& feature) {
    return "window_views:\n  - name: v\n    entity: airport\n    source: flights\n    keys: [" +
           keys + "]\n    features:\n      - " + feature + "\n";
  };
  EXPECT_CONTAINS(ErrorOf(base + view("origin_x", "{name: a, aggregation: count, windows: [1h]}")),
                  "no column 'origin_x'");
  EXPECT_CONTAINS(ErrorOf(base + view("delay", "{name: a, aggregation: count, windows: [1h]}")),
                  "column 'delay' is int64 but entity key 'iata' is string");
  EXPECT_CONTAINS(
      ErrorOf(base +
              view("origin", "{name: a, aggregation: mean, expression: dellay, windows: [1h]}")),
      "dellay");
  EXPECT_CONTAINS(
      ErrorOf(base +
              view("origin", "{name: a, aggregation: mean, expression: origin, windows: [1h]}")),
      "mean needs a numeric expression");
  Write("features.yaml", "");
  EXPECT_CONTAINS(ErrorOf(std::string(kEntities) + R"(sources:
  - {name: flights, path: flights.csv, timestamp: origin}
)" + view("origin", "{name: a, aggregation: count, windows: [1h]}")),
                  "column 'origin' is string, not a timestamp");
  EXPECT_CONTAINS(ErrorOf(std::string(kEntities) + R"(sources:
  - {name: flights, path: missing.parquet, timestamp: date}
)" + view("origin", "{name: a, aggregation: count, windows: [1h]}")),
                  "no such file");
}

TEST_F(DefinitionsTest, VersionChangesWithDefinitionButNotWithSpelling) {
  Write("features.yaml", std::string(kEntities) + kSources + kView);
  Repository first;
  ASSERT_TRUE(Load(&first).ok());
  // Same meaning, other spelling and formatting: same version.
  std::string respelled = kView;
  respelled.replace(respelled.find("expression: delay"), 17, "expression: \"(delay)\"");
  Write("features.yaml", std::string(kEntities) + kSources + respelled);
  Repository same;
  ASSERT_TRUE(Load(&same).ok());
  EXPECT_EQ(ViewVersion(first.views[0]), ViewVersion(same.views[0]));
  // A different window: a new version.
  std::string changed = kView;
  changed.replace(changed.find("[1h, 24h]"), 9, "[1h, 48h]");
  Write("features.yaml", std::string(kEntities) + kSources + changed);
  Repository other;
  ASSERT_TRUE(Load(&other).ok());
  EXPECT_NE(ViewVersion(first.views[0]), ViewVersion(other.views[0]));
  // The canonical JSON round-trips.
  Result<FeatureViewDef> back = ViewFromJson(CanonicalJson(first.views[0]));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(CanonicalJson(*back), CanonicalJson(first.views[0]));
}

TEST(FeatureUses, ParsesReferences) {
  Result<std::vector<FeatureUse>> uses = ParseFeatureUses(
      "origin_delay, airport_info@3(iata=origin) as origin, airport_info(iata=destination, "
      "x=y) as dest:state|latitude");
  ASSERT_TRUE(uses.ok()) << uses.status().ToString();
  ASSERT_EQ(uses->size(), 3u);
  EXPECT_EQ((*uses)[0].view, "origin_delay");
  EXPECT_EQ((*uses)[1].version, "3");
  EXPECT_EQ((*uses)[1].key_map.at("iata"), "origin");
  EXPECT_EQ((*uses)[1].alias, "origin");
  EXPECT_EQ((*uses)[2].key_map.size(), 2u);
  EXPECT_EQ((*uses)[2].features, (std::vector<std::string>{"state", "latitude"}));
  EXPECT_FALSE(ParseFeatureUses("").ok());
  EXPECT_FALSE(ParseFeatureUses("v(iata)").ok());
  EXPECT_FALSE(ParseFeatureUses("v@").ok());
  EXPECT_FALSE(ParseFeatureUses("v(a=b").ok());
}

TEST(ResolvePath, ExpandsVariablesAndResolvesAgainstRoot) {
  RepoConfig config;
  config.root = "/repo";
  config.variables["DATA"] = "../data";
  EXPECT_EQ(*ResolvePath("${DATA}/x.parquet", config), "/data/x.parquet");
  EXPECT_EQ(*ResolvePath("local/y.csv", config), "/repo/local/y.csv");
  EXPECT_FALSE(ResolvePath("${NOPE_NOT_SET_KEEL}/x", config).ok());
}

}  // namespace
}  // namespace keel::features
