// End-to-end tests of the `keel` command: bad input fails loudly, with a
// message naming the culprit, a non-zero exit and no half-written output; the
// happy paths (init, apply, features list/show, dataset build) work; versions
// stay resolvable; and the training set equals an independent SQL computation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "e2e_util.h"
#include "table/duckdb_bridge.h"

namespace keel::e2e {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

::testing::AssertionResult Contains(const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected to find \"" << needle << "\" in:\n" << text;
}

// Rows of a query, failing the test on a DuckDB error.
table::Table Query(table::DuckDb* duckdb, const std::string& sql) {
  Result<table::Table> result = duckdb->Query(sql);
  EXPECT_TRUE(result.ok()) << result.status().message() << "\nin: " << sql;
  return result.ok() ? std::move(result).value() : table::Table();
}

std::unique_ptr<table::DuckDb> OpenDuckDb() {
  Result<std::unique_ptr<table::DuckDb>> duckdb = table::DuckDb::Open(2);
  EXPECT_TRUE(duckdb.ok()) << duckdb.status().message();
  return std::move(duckdb).value();
}

std::vector<std::string> ParquetColumns(const std::string& path) {
  std::unique_ptr<table::DuckDb> duckdb = OpenDuckDb();
  table::Table schema = Query(
      duckdb.get(), "DESCRIBE SELECT * FROM read_parquet(" + table::QuoteSqlString(path) + ")");
  std::vector<std::string> names;
  for (size_t row = 0; row < schema.num_rows(); ++row) {
    names.emplace_back(schema.column(0).StringAt(row));
  }
  return names;
}

// The 'keel' key-value metadata of a training set, parsed.
Json KeelMetadata(const std::string& path) {
  std::unique_ptr<table::DuckDb> duckdb = OpenDuckDb();
  table::Table rows =
      Query(duckdb.get(), "SELECT decode(value) FROM parquet_kv_metadata(" +
                              table::QuoteSqlString(path) + ") WHERE decode(key) = 'keel'");
  EXPECT_EQ(rows.num_rows(), 1u) << "no 'keel' metadata in " << path;
  if (rows.num_rows() != 1) return Json::object();
  return Json::parse(std::string(rows.column(0).StringAt(0)));
}

// The sorted "view@version" pairs a training set's metadata names.
std::multiset<std::string> MetadataVersions(const Json& metadata) {
  std::multiset<std::string> out;
  for (const Json& view : metadata.at("views")) {
    out.insert(view.at("view").get<std::string>() + "@" + view.at("version").get<std::string>());
  }
  return out;
}

// The small fixture repository (tests/data/mini) copied into a fresh folder and
// applied once, so that every failure below can also check that a failed
// apply leaves the catalog as it was.
class MiniRepo : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = temp_.Path("repo");
    out_dir_ = temp_.Path("out");
    CopyTree(FixtureDir() + "/mini", repo_);
    fs::create_directories(out_dir_);
    original_features_ = ReadFile(FeaturesPath());
    original_config_ = ReadFile(repo_ + "/keel.yaml");
    CommandResult apply = Keel({"apply"});
    ASSERT_EQ(apply.exit_code, 0) << apply.Describe();
  }

  std::string FeaturesPath() const { return repo_ + "/features.yaml"; }
  std::string Spine() const { return FixtureDir() + "/mini/spine.csv"; }
  std::string Out(const std::string& name = "train.parquet") const { return out_dir_ + "/" + name; }

  // keel, run inside the repository (so the default --repo "." is it).
  CommandResult Keel(const std::vector<std::string>& args) const { return RunKeel(args, repo_); }

  std::string ListJson() const {
    CommandResult list = Keel({"features", "list", "--json"});
    EXPECT_EQ(list.exit_code, 0) << list.Describe();
    return list.out;
  }

  // Replaces the first `from` in features.yaml; returns the edited text.
  std::string Edit(const std::string& from, const std::string& to) const {
    EditFile(FeaturesPath(), from, to);
    return ReadFile(FeaturesPath());
  }

  void ExpectFailure(const CommandResult& result, const std::vector<std::string>& needles) const {
    if (result.exit_code == 0) {
      ADD_FAILURE() << "expected a failure naming " << testing::PrintToString(needles) << ", got "
                    << result.Describe();
      return;
    }
    EXPECT_EQ(result.signal, 0) << result.Describe();
    EXPECT_FALSE(result.timed_out);
    EXPECT_TRUE(Contains(result.err, "keel: error: "));
    for (const std::string& needle : needles) EXPECT_TRUE(Contains(result.err, needle));
  }

  // `keel apply` on the edited definitions must fail naming `needles` and
  // register nothing: after restoring the definitions the catalog is exactly
  // as the good apply in SetUp left it.
  void ExpectApplyFails(const std::vector<std::string>& needles) const {
    std::string edited_features = ReadFile(FeaturesPath());
    std::string edited_config = ReadFile(repo_ + "/keel.yaml");
    WriteFile(FeaturesPath(), original_features_);
    WriteFile(repo_ + "/keel.yaml", original_config_);
    std::string before = ListJson();
    WriteFile(FeaturesPath(), edited_features);
    WriteFile(repo_ + "/keel.yaml", edited_config);

    CommandResult apply = Keel({"apply"});
    ExpectFailure(apply, needles);

    WriteFile(FeaturesPath(), original_features_);
    WriteFile(repo_ + "/keel.yaml", original_config_);
    EXPECT_EQ(ListJson(), before) << "a failed apply changed the catalog";
    CommandResult again = Keel({"apply"});
    EXPECT_EQ(again.exit_code, 0) << again.Describe();
    EXPECT_FALSE(Contains(again.out, "created")) << again.out;
    EXPECT_FALSE(Contains(again.out, "new version")) << again.out;
  }

  // `keel dataset build ARGS --out OUT` must fail naming `needles`, leaving
  // the output folder as empty as it was (no file, no temporary).
  void ExpectBuildFails(std::vector<std::string> args, const std::vector<std::string>& needles,
                        const std::string& out = "") const {
    ASSERT_TRUE(ListDir(out_dir_).empty());
    std::string out_path = out.empty() ? Out() : out;
    args.insert(args.begin(), {"dataset", "build"});
    args.insert(args.end(), {"--out", out_path});
    CommandResult build = Keel(args);
    ExpectFailure(build, needles);
    EXPECT_FALSE(Exists(out_path)) << out_path;
    EXPECT_TRUE(ListDir(out_dir_).empty())
        << "left behind in " << out_dir_ << ": " << testing::PrintToString(ListDir(out_dir_));
  }

  std::string Where(const std::string& text, const std::string& needle) const {
    int line = LineOf(text, needle);
    EXPECT_GT(line, 0) << needle;
    return "features.yaml:" + std::to_string(line) + ":";
  }

  TempDir temp_;
  std::string repo_;
  std::string out_dir_;
  std::string original_features_;
  std::string original_config_;
};

// --- bad input: definitions (keel apply) ----------------------------------

TEST_F(MiniRepo, MissingSourceFileNamesFileAndSource) {
  std::string text = Edit("path: data/events.csv", "path: data/nope.csv");
  ExpectApplyFails({"data/nope.csv", "source 'events'", Where(text, "- name: events")});
}

TEST_F(MiniRepo, MissingSourceFileAtBuildTimeNamesFile) {
  fs::rename(repo_ + "/data/events.csv", repo_ + "/data/moved.csv");
  ExpectBuildFails({"--spine", Spine(), "--features", "activity"},
                   {"data/events.csv", "source 'events'"});
}

TEST_F(MiniRepo, MissingKeyColumnNamesColumnAndView) {
  std::string text = Edit("    source: events\n    features:",
                          "    source: events\n    keys: [uid]\n    features:");
  ExpectApplyFails({"'uid'", "keys", "view 'activity'", Where(text, "- name: activity")});
}

TEST_F(MiniRepo, MissingTimestampColumnNamesColumnAndSource) {
  std::string text = Edit("timestamp: ts\n  - name: users", "timestamp: time\n  - name: users");
  ExpectApplyFails(
      {"timestamp", "no column 'time'", "source 'events'", Where(text, "- name: events")});
}

TEST_F(MiniRepo, MissingExpressionColumnNamesColumnAndFeature) {
  std::string text = Edit("{name: total, aggregation: sum, expression: amount",
                          "{name: total, aggregation: sum, expression: amt");
  ExpectApplyFails({"'amt'", "feature 'total'", "view 'activity'", Where(text, "{name: total")});
}

TEST_F(MiniRepo, StringTimestampColumnIsRejected) {
  std::string text = Edit("timestamp: ts\n  - name: users", "timestamp: channel\n  - name: users");
  ExpectApplyFails({"'channel'", "string", "not a timestamp", Where(text, "- name: events")});
}

TEST_F(MiniRepo, IntegerTimestampColumnIsRejected) {
  Edit("timestamp: updated", "timestamp: age");
  ExpectApplyFails({"'age'", "int64", "not a timestamp", "view 'profile'"});
}

TEST_F(MiniRepo, MalformedYamlNamesFileAndLine) {
  // A list item indented less than the mapping it sits in.
  std::string text = Edit("    timestamp: updated\n", "    timestamp: updated\n   - oops\n");
  ExpectApplyFails({Where(text, "   - oops"), "malformed YAML"});
}

TEST_F(MiniRepo, TabInYamlNamesFileAndLine) {
  std::string text = Edit("    timestamp: updated\n", "\ttimestamp: updated\n");
  ExpectApplyFails({Where(text, "\ttimestamp"), "malformed YAML"});
}

TEST_F(MiniRepo, UnclosedFlowSequenceNamesFile) {
  Edit("windows: [1h, 1d]}\n      - {name: amounts", "windows: [1h, 1d}\n      - {name: amounts");
  CommandResult apply = Keel({"apply"});
  ExpectFailure(apply, {"malformed YAML"});
  EXPECT_TRUE(std::regex_search(apply.err, std::regex("features\\.yaml:[0-9]+:[0-9]+: ")))
      << apply.err;
  ExpectApplyFails({"features.yaml:"});
}

TEST_F(MiniRepo, MalformedKeelYamlNamesFileAndLine) {
  EditFile(repo_ + "/keel.yaml", "project: mini\n", "project: mini\n  bad: [1\n");
  CommandResult apply = Keel({"apply"});
  ExpectFailure(apply, {"keel.yaml:"});
  EXPECT_TRUE(std::regex_search(apply.err, std::regex("keel\\.yaml:[0-9]+:[0-9]+: "))) << apply.err;
  ExpectApplyFails({"keel.yaml:"});
}

TEST_F(MiniRepo, BadDurationNamesFieldPathAndLine) {
  std::string text = Edit("{name: events, aggregation: count, windows: [1h, 1d]}",
                          "{name: events, aggregation: count, windows: [1h, 1x]}");
  ExpectApplyFails(
      {Where(text, "windows: [1h, 1x]"), "window_views[0].features[0].windows[1]", "'1x'"});
}

TEST_F(MiniRepo, BadTtlDurationIsRejected) {
  std::string text = Edit("    source: users\n", "    source: users\n    ttl: soon\n");
  ExpectApplyFails({Where(text, "ttl: soon"), "snapshot_views[0].ttl", "'soon'"});
}

TEST_F(MiniRepo, UnknownAggregationNamesFieldPathAndLine) {
  std::string text =
      Edit("{name: amounts, aggregation: count", "{name: amounts, aggregation: median");
  ExpectApplyFails(
      {Where(text, "aggregation: median"), "window_views[0].features[1].aggregation", "'median'"});
}

TEST_F(MiniRepo, DuplicateViewNameNamesBothDefinitions) {
  std::string text = Edit("- name: web_activity", "- name: activity");
  int first = LineOf(text, "- name: activity");
  int second =
      LineOf(text.substr(text.find("- name: activity") + 1), "- name: activity") + first - 1;
  ExpectApplyFails({"duplicate view name 'activity'",
                    "features.yaml:" + std::to_string(second) + ":",
                    "first defined at features.yaml:" + std::to_string(first) + ":"});
}

TEST_F(MiniRepo, DuplicateSourceNameIsRejected) {
  Edit("- name: web_events", "- name: users");
  ExpectApplyFails({"duplicate source name 'users'"});
}

TEST_F(MiniRepo, CyclicSourceReferenceIsRejected) {
  std::string text = Edit("\nwindow_views:",
                          "  - name: loop_a\n    query: SELECT * FROM loop_b\n"
                          "  - name: loop_b\n    query: SELECT * FROM loop_a\n\nwindow_views:");
  CommandResult apply = Keel({"apply"});
  ExpectFailure(apply, {"cyclic"});
  EXPECT_TRUE(std::regex_search(
      apply.err, std::regex("loop_a -> loop_b -> loop_a|loop_b -> loop_a -> loop_b")))
      << apply.err;
  ExpectApplyFails({"cyclic", "features.yaml:"});
}

TEST_F(MiniRepo, SelfReferencingSourceIsRejected) {
  Edit("query: SELECT * FROM events WHERE", "query: SELECT * FROM web_events WHERE");
  ExpectApplyFails({"web_events", "refers to itself"});
}

TEST_F(MiniRepo, UnknownEntityNamesFieldPath) {
  std::string text =
      Edit("entity: user\n    source: web_events", "entity: customer\n    source: web_events");
  ExpectApplyFails({"window_views[1].entity", "'customer'", Where(text, "entity: customer")});
}

TEST_F(MiniRepo, UnknownSourceNamesFieldPath) {
  std::string text = Edit("source: web_events", "source: nowhere");
  ExpectApplyFails({"window_views[1].source", "'nowhere'", Where(text, "source: nowhere")});
}

TEST_F(MiniRepo, ServiceNamingUnknownViewIsRejected) {
  std::string text = Edit("      - profile\n", "      - profiles\n");
  ExpectApplyFails({"feature service 'model'", "'profiles'", Where(text, "- profiles")});
}

TEST_F(MiniRepo, ServiceReferencesAreCheckedAtApply) {
  // A feature service is a definition like any other: a use that can never
  // build (unknown version, feature or entity key, or two uses writing the
  // same columns) must fail `keel apply`, not a later `dataset build`.
  struct Case {
    std::string use;
    std::vector<std::string> needles;
  };
  for (const Case& item : std::vector<Case>{
           {"activity@99", {"'99'", "activity"}},
           {"recent_profile:nosuch", {"'nosuch'", "recent_profile"}},
           {"recent_profile(nokey=user_id)", {"'nokey'", "recent_profile"}},
           {"profile", {"profile__country"}},
       }) {
    SCOPED_TRACE(item.use);
    WriteFile(FeaturesPath(), original_features_);
    std::string text = Edit("      - recent_profile\n", "      - " + item.use + "\n");
    std::vector<std::string> needles = item.needles;
    needles.push_back("feature service 'model'");
    needles.push_back(Where(text, "      - " + item.use));
    ExpectApplyFails(needles);
  }
}

TEST_F(MiniRepo, UnknownFieldTypoNamesFieldPath) {
  std::string text =
      Edit("{name: amounts, aggregation: count", "{name: amounts, agregation: count");
  ExpectApplyFails(
      {Where(text, "agregation"), "window_views[0].features[1].agregation", "unknown field"});
}

TEST_F(MiniRepo, UnknownTopLevelFieldIsRejected) {
  Edit("window_views:", "window_view:");
  ExpectApplyFails({"window_view", "unknown field"});
}

TEST_F(MiniRepo, FailedApplyRegistersNothingEvenWhenOtherViewsChanged) {
  // A valid change to one view (which alone would make version 2) next to an
  // error found later, in another view's data validation.
  Edit("{name: events, aggregation: count, windows: [1h, 1d]}",
       "{name: events, aggregation: count, windows: [2h, 1d]}");
  Edit("{name: age_next_year, expression: \"age + 1\"}",
       "{name: age_next_year, expression: \"agee + 1\"}");
  ExpectApplyFails({"'agee'", "view 'profile'"});
  CommandResult show = Keel({"features", "show", "activity", "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.Describe();
  EXPECT_EQ(Json::parse(show.out).at("versions").size(), 1u) << show.out;
}

TEST(FreshRepo, FailedFirstApplyLeavesCatalogEmpty) {
  TempDir temp;
  std::string repo = temp.Path("repo");
  CopyTree(FixtureDir() + "/mini", repo);
  EditFile(repo + "/features.yaml", "aggregation: max", "aggregation: maximum");
  CommandResult apply = RunKeel({"apply"}, repo);
  EXPECT_NE(apply.exit_code, 0) << apply.Describe();
  CommandResult list = RunKeel({"features", "list", "--json"}, repo);
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_TRUE(Json::parse(list.out).empty()) << list.out;
}

// --- bad input: training sets (keel dataset build) ------------------------

TEST_F(MiniRepo, UnknownViewInFeaturesIsNamed) {
  ExpectBuildFails({"--spine", Spine(), "--features", "activity, nosuch"}, {"'nosuch'"});
}

TEST_F(MiniRepo, UnknownVersionIsNamed) {
  ExpectBuildFails({"--spine", Spine(), "--features", "activity@99"}, {"view 'activity'", "'99'"});
  ExpectBuildFails({"--spine", Spine(), "--features", "activity@ffff0000"},
                   {"view 'activity'", "'ffff0000'"});
  ExpectBuildFails({"--spine", Spine(), "--features", "activity@ab"}, {"view 'activity'", "'ab'"});
}

TEST_F(MiniRepo, UnknownFeatureServiceIsNamed) {
  ExpectBuildFails({"--spine", Spine(), "--service", "nosvc"}, {"'nosvc'"});
}

TEST_F(MiniRepo, UnknownFeatureInSelectionIsNamed) {
  ExpectBuildFails({"--spine", Spine(), "--features", "activity:events_1h|nosuch"},
                   {"view 'activity'", "'nosuch'"});
}

TEST_F(MiniRepo, EmptySpineIsRejected) {
  ExpectBuildFails(
      {"--spine", "SELECT user_id, ts FROM events WHERE false", "--features", "activity"},
      {"spine is empty"});
}

TEST_F(MiniRepo, MissingSpineFileIsNamed) {
  ExpectBuildFails({"--spine", temp_.Path("no_spine.csv"), "--features", "activity"},
                   {"no_spine.csv"});
}

TEST_F(MiniRepo, UnknownSpineSourceIsNamed) {
  ExpectBuildFails({"--spine", "nosuch", "--features", "activity"}, {"'nosuch'"});
}

TEST_F(MiniRepo, SpineTimeThatIsNotATimestampIsRejected) {
  ExpectBuildFails({"--spine", Spine(), "--spine-time", "target", "--features", "activity"},
                   {"spine time column 'target'", "int64", "not a timestamp"});
  ExpectBuildFails({"--spine", "SELECT user_id, CAST(ts AS VARCHAR) AS ts FROM events",
                    "--features", "activity"},
                   {"spine time column 'ts'", "string", "not a timestamp"});
}

TEST_F(MiniRepo, MissingSpineTimeColumnIsNamed) {
  ExpectBuildFails({"--spine", Spine(), "--spine-time", "when", "--features", "activity"},
                   {"'when'"});
}

TEST_F(MiniRepo, SpineKeyColumnMissingIsNamed) {
  ExpectBuildFails({"--spine", "SELECT seq, ts, amount FROM events", "--features", "activity"},
                   {"view 'activity'", "'user_id'"});
  ExpectBuildFails({"--spine", Spine(), "--features", "activity(user_id=uid)"},
                   {"view 'activity'", "'uid'"});
}

TEST_F(MiniRepo, SpineKeyOfTheWrongTypeIsNamed) {
  ExpectBuildFails({"--spine", "SELECT CAST(user_id AS VARCHAR) AS user_id, ts FROM events",
                    "--features", "activity"},
                   {"view 'activity'", "'user_id'", "string", "int64"});
}

TEST_F(MiniRepo, DuplicateOutputColumnIsRejected) {
  ExpectBuildFails({"--spine", "SELECT user_id, ts, 1 AS activity__events_1h FROM events",
                    "--features", "activity"},
                   {"activity__events_1h"});
}

TEST_F(MiniRepo, OutIntoMissingFolderIsRejected) {
  std::string out = temp_.Path("nodir/train.parquet");
  CommandResult build =
      Keel({"dataset", "build", "--spine", Spine(), "--features", "activity", "--out", out});
  ExpectFailure(build, {"--out", temp_.Path("nodir")});
  EXPECT_FALSE(Exists(temp_.Path("nodir")));
}

TEST_F(MiniRepo, OutOntoAFolderLeavesNoTemporaryFile) {
  fs::create_directories(out_dir_ + "/taken");
  CommandResult build = Keel({"dataset", "build", "--spine", Spine(), "--features", "activity",
                              "--out", out_dir_ + "/taken"});
  ExpectFailure(build, {"taken"});
  EXPECT_EQ(ListDir(out_dir_), std::vector<std::string>{"taken"});
  EXPECT_TRUE(ListDir(out_dir_ + "/taken").empty());
}

TEST_F(MiniRepo, FailedBuildKeepsThePreviousOutput) {
  CommandResult good =
      Keel({"dataset", "build", "--spine", Spine(), "--features", "activity", "--out", Out()});
  ASSERT_EQ(good.exit_code, 0) << good.Describe();
  std::string before = ReadFile(Out());
  CommandResult bad = Keel({"dataset", "build", "--spine", "SELECT user_id, ts FROM events LIMIT 0",
                            "--features", "activity", "--out", Out()});
  ExpectFailure(bad, {"spine is empty"});
  EXPECT_EQ(ReadFile(Out()), before);
  EXPECT_EQ(ListDir(out_dir_), std::vector<std::string>{"train.parquet"});
}

TEST_F(MiniRepo, SqlSpineOverBrokenDefinitionsNamesFileAndLine) {
  // A SQL spine reads the sources by name, so it loads the definitions.
  std::string text =
      Edit("{name: amounts, aggregation: count", "{name: amounts, aggregation: median");
  ExpectBuildFails({"--spine", "SELECT user_id, ts FROM events", "--features", "activity"},
                   {Where(text, "aggregation: median"), "window_views[0].features[1].aggregation"});
}

// --- happy paths ------------------------------------------------------------

TEST(Init, InitApplyListShowBuild) {
  TempDir temp;
  std::string dir = temp.Path("rides");
  CommandResult init = RunKeel({"init", dir});
  ASSERT_EQ(init.exit_code, 0) << init.Describe();
  for (const char* file : {"keel.yaml", "features.yaml", "data/trips.csv", "data/drivers.csv"}) {
    EXPECT_TRUE(Exists(dir + "/" + file)) << file;
  }
  CommandResult again = RunKeel({"init", dir});
  EXPECT_NE(again.exit_code, 0) << again.Describe();
  EXPECT_TRUE(Contains(again.err, dir));

  CommandResult apply = RunKeel({"apply"}, dir);
  ASSERT_EQ(apply.exit_code, 0) << apply.Describe();
  EXPECT_TRUE(Contains(apply.out, "driver_activity"));
  EXPECT_TRUE(Contains(apply.out, "created"));

  CommandResult list_json = RunKeel({"features", "list", "--json"}, dir);
  ASSERT_EQ(list_json.exit_code, 0) << list_json.Describe();
  Json views = Json::parse(list_json.out);
  ASSERT_EQ(views.size(), 2u) << list_json.out;
  std::map<std::string, Json> by_name;
  for (const Json& view : views) {
    by_name[view.at("name").get<std::string>()] = view;
    EXPECT_EQ(view.at("number"), 1);
    EXPECT_TRUE(view.at("current").get<bool>());
    EXPECT_EQ(view.at("version").get<std::string>().size(), 12u);
  }
  ASSERT_TRUE(by_name.count("driver_activity") && by_name.count("driver_profile"));

  CommandResult list = RunKeel({"features", "list", "--repo", dir});
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  for (const auto& [name, view] : by_name) {
    EXPECT_TRUE(Contains(list.out, name));
    EXPECT_TRUE(Contains(list.out, view.at("version").get<std::string>()));
  }

  CommandResult show = RunKeel({"features", "show", "driver_activity"}, dir);
  ASSERT_EQ(show.exit_code, 0) << show.Describe();
  EXPECT_TRUE(Contains(show.out, by_name["driver_activity"].at("version").get<std::string>()));
  CommandResult show_json = RunKeel({"features", "show", "driver_profile", "--json"}, dir);
  ASSERT_EQ(show_json.exit_code, 0) << show_json.Describe();
  Json profile = Json::parse(show_json.out);
  EXPECT_EQ(profile.at("version"), by_name["driver_profile"].at("version"));
  EXPECT_EQ(profile.at("versions").size(), 1u);
  EXPECT_EQ(profile.at("definition").at("name"), "driver_profile");

  CommandResult build = RunKeel({"dataset", "build", "--spine", "trips", "--service", "trip_model",
                                 "--out", "training.parquet"},
                                dir);
  ASSERT_EQ(build.exit_code, 0) << build.Describe();
  std::string out = dir + "/training.parquet";
  ASSERT_TRUE(Exists(out));

  // Expected columns: the spine's (the trips file header), then every feature
  // of the service's views, in the catalog's order, prefixed by the view.
  std::string trips = ReadFile(dir + "/data/trips.csv");
  std::string header = trips.substr(0, trips.find('\n'));
  std::vector<std::string> expected;
  for (size_t start = 0; start <= header.size();) {
    size_t comma = header.find(',', start);
    expected.push_back(header.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  for (const char* view : {"driver_activity", "driver_profile"}) {
    for (const Json& feature : by_name[view].at("features")) {
      expected.push_back(std::string(view) + "__" + feature.get<std::string>());
    }
  }
  EXPECT_EQ(ParquetColumns(out), expected);

  std::unique_ptr<table::DuckDb> duckdb = OpenDuckDb();
  table::Table count =
      Query(duckdb.get(), "SELECT count(*) FROM read_parquet(" + table::QuoteSqlString(out) + ")");
  size_t trip_rows = static_cast<size_t>(std::count(trips.begin(), trips.end(), '\n')) - 1;
  ASSERT_EQ(count.num_rows(), 1u);
  EXPECT_EQ(static_cast<size_t>(count.column(0).ints()[0]), trip_rows);

  Json metadata = KeelMetadata(out);
  EXPECT_EQ(MetadataVersions(metadata),
            (std::multiset<std::string>{
                "driver_activity@" + by_name["driver_activity"].at("version").get<std::string>(),
                "driver_profile@" + by_name["driver_profile"].at("version").get<std::string>()}));
  EXPECT_EQ(metadata.at("rows"), trip_rows);
  EXPECT_EQ(metadata.at("time_column"), "ts");
  EXPECT_EQ(metadata.at("spine"), "trips");
}

// Versions: a changed definition gets number 2; number 1 stays resolvable and
// builds with the OLD definition; hash prefixes resolve; unchanged re-applies
// say so; training sets name the exact versions they used.
class Versions : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_.Path("rides");
    CommandResult init = RunKeel({"init", dir_});
    ASSERT_EQ(init.exit_code, 0) << init.Describe();
    CommandResult apply = RunKeel({"apply"}, dir_);
    ASSERT_EQ(apply.exit_code, 0) << apply.Describe();
  }

  Json Show(const std::string& reference) const {
    CommandResult show = RunKeel({"features", "show", reference, "--json"}, dir_);
    EXPECT_EQ(show.exit_code, 0) << show.Describe();
    return show.exit_code == 0 ? Json::parse(show.out) : Json::object();
  }

  // Builds driver_activity at `reference` on the trips spine; returns the path.
  std::string Build(const std::string& reference, const std::string& name) const {
    std::string out = temp_.Path(name);
    CommandResult build = RunKeel(
        {"dataset", "build", "--spine", "trips", "--features", reference, "--out", out}, dir_);
    EXPECT_EQ(build.exit_code, 0) << build.Describe();
    return out;
  }

  table::Table Read(const std::string& path) const {
    std::unique_ptr<table::DuckDb> duckdb = OpenDuckDb();
    return Query(duckdb.get(), "SELECT * FROM read_parquet(" + table::QuoteSqlString(path) + ")");
  }

  TempDir temp_;
  std::string dir_;
};

TEST_F(Versions, ChangedWindowMakesVersionTwoAndVersionOneStillBuilds) {
  Json v1 = Show("driver_activity");
  std::string v1_hash = v1.at("version");
  ASSERT_EQ(v1.at("number"), 1);
  std::string before = Build("driver_activity", "before.parquet");

  EditFile(dir_ + "/features.yaml", "{name: trips, aggregation: count, windows: [1h, 24h]}",
           "{name: trips, aggregation: count, windows: [2h, 24h]}");
  CommandResult apply = RunKeel({"apply"}, dir_);
  ASSERT_EQ(apply.exit_code, 0) << apply.Describe();
  EXPECT_TRUE(Contains(apply.out, "new version"));

  Json current = Show("driver_activity");
  std::string v2_hash = current.at("version");
  EXPECT_EQ(current.at("number"), 2);
  EXPECT_NE(v2_hash, v1_hash);
  EXPECT_EQ(current.at("versions").size(), 2u);
  CommandResult list = RunKeel({"features", "list", "--json"}, dir_);
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  for (const Json& view : Json::parse(list.out)) {
    if (view.at("name") == "driver_activity") {
      EXPECT_EQ(view.at("version"), v2_hash);
    }
    if (view.at("name") == "driver_profile") {
      EXPECT_EQ(view.at("number"), 1);
    }
  }

  // The old version still shows the old definition (a 1 h window, 5 min hop).
  Json old = Show("driver_activity@1");
  EXPECT_EQ(old.at("version"), v1_hash);
  EXPECT_FALSE(old.at("current").get<bool>());
  EXPECT_EQ(old.at("definition"), v1.at("definition"));
  Json old_windows = old.at("definition").at("features").at(0).at("windows");
  EXPECT_EQ(old_windows.at(0), (Json{3600000000LL, 300000000LL}));
  Json new_windows = current.at("definition").at("features").at(0).at("windows");
  EXPECT_EQ(new_windows.at(0), (Json{7200000000LL, 300000000LL}));
  EXPECT_EQ(Show("driver_activity@" + v1_hash.substr(0, 6)).at("version"), v1_hash);
  EXPECT_EQ(Show("driver_activity@" + v2_hash).at("number"), 2);

  std::string by_number = Build("driver_activity@1", "v1.parquet");
  std::string by_prefix = Build("driver_activity@" + v1_hash.substr(0, 5), "v1_prefix.parquet");
  std::string latest = Build("driver_activity", "v2.parquet");

  std::vector<std::string> old_columns = ParquetColumns(by_number);
  std::vector<std::string> new_columns = ParquetColumns(latest);
  auto has = [](const std::vector<std::string>& columns, const std::string& name) {
    return std::find(columns.begin(), columns.end(), name) != columns.end();
  };
  EXPECT_TRUE(has(old_columns, "driver_activity__trips_1h"));
  EXPECT_FALSE(has(old_columns, "driver_activity__trips_2h"));
  EXPECT_TRUE(has(new_columns, "driver_activity__trips_2h"));
  EXPECT_FALSE(has(new_columns, "driver_activity__trips_1h"));
  EXPECT_EQ(ParquetColumns(before), old_columns);
  EXPECT_EQ(ParquetColumns(by_prefix), old_columns);

  // @1 builds exactly what the original definition built.
  table::Table original = Read(before);
  table::Table rebuilt = Read(by_number);
  table::Table prefixed = Read(by_prefix);
  table::Table changed = Read(latest);
  ASSERT_EQ(original.num_rows(), rebuilt.num_rows());
  ASSERT_EQ(original.num_rows(), changed.num_rows());
  ASSERT_EQ(original.num_columns(), rebuilt.num_columns());
  size_t differing = 0;
  for (size_t column = 0; column < original.num_columns(); ++column) {
    for (size_t row = 0; row < original.num_rows(); ++row) {
      if (!SameValueBits(original.column(column), row, rebuilt.column(column), row) ||
          !SameValueBits(original.column(column), row, prefixed.column(column), row)) {
        ++differing;
      }
    }
  }
  EXPECT_EQ(differing, 0u);

  // The 2 h window holds every row of the 1 h one, and more for some rows; the
  // 24 h window is the same in both versions.
  const table::Column& trips_1h = *rebuilt.GetColumn("driver_activity__trips_1h").value();
  const table::Column& trips_2h = *changed.GetColumn("driver_activity__trips_2h").value();
  const table::Column& old_24h = *rebuilt.GetColumn("driver_activity__trips_24h").value();
  const table::Column& new_24h = *changed.GetColumn("driver_activity__trips_24h").value();
  size_t wider = 0, narrower = 0, same_24h = 0;
  for (size_t row = 0; row < rebuilt.num_rows(); ++row) {
    if (trips_2h.ints()[row] > trips_1h.ints()[row]) ++wider;
    if (trips_2h.ints()[row] < trips_1h.ints()[row]) ++narrower;
    if (SameValueBits(old_24h, row, new_24h, row)) ++same_24h;
  }
  EXPECT_GT(wider, rebuilt.num_rows() / 10);
  EXPECT_EQ(narrower, 0u);
  EXPECT_EQ(same_24h, rebuilt.num_rows());

  // Each training set names the exact version it used.
  EXPECT_EQ(MetadataVersions(KeelMetadata(by_number)),
            std::multiset<std::string>{"driver_activity@" + v1_hash});
  EXPECT_EQ(MetadataVersions(KeelMetadata(by_prefix)),
            std::multiset<std::string>{"driver_activity@" + v1_hash});
  EXPECT_EQ(MetadataVersions(KeelMetadata(latest)),
            std::multiset<std::string>{"driver_activity@" + v2_hash});
  EXPECT_EQ(KeelMetadata(by_number).at("views").at(0).at("number"), 1);
  EXPECT_EQ(KeelMetadata(latest).at("views").at(0).at("number"), 2);
}

TEST_F(Versions, UnchangedReapplySaysUnchanged) {
  Json before = Show("driver_activity");
  // Descriptions and comments do not change values, so not the version either.
  EditFile(dir_ + "/features.yaml", "  - name: driver_activity\n",
           "  # a comment\n  - name: driver_activity\n    description: Recent trips.\n");
  CommandResult apply = RunKeel({"apply"}, dir_);
  ASSERT_EQ(apply.exit_code, 0) << apply.Describe();
  EXPECT_FALSE(Contains(apply.out, "created"));
  EXPECT_FALSE(Contains(apply.out, "new version"));
  for (const char* view : {"driver_activity", "driver_profile"}) {
    std::regex row(std::string(view) + " +[0-9a-f]{12} +1 +unchanged");
    EXPECT_TRUE(std::regex_search(apply.out, row)) << view << " in\n" << apply.out;
  }
  Json after = Show("driver_activity");
  EXPECT_EQ(after.at("version"), before.at("version"));
  EXPECT_EQ(after.at("versions").size(), 1u);
}

TEST_F(Versions, RevertingADefinitionMakesTheOldVersionCurrentAgain) {
  std::string v1_hash = Show("driver_activity").at("version");
  std::string original = ReadFile(dir_ + "/features.yaml");
  EditFile(dir_ + "/features.yaml", "windows: [24h, 7d]", "windows: [12h, 7d]");
  ASSERT_EQ(RunKeel({"apply"}, dir_).exit_code, 0);
  ASSERT_EQ(Show("driver_activity").at("number"), 2);
  WriteFile(dir_ + "/features.yaml", original);
  CommandResult apply = RunKeel({"apply"}, dir_);
  ASSERT_EQ(apply.exit_code, 0) << apply.Describe();
  Json current = Show("driver_activity");
  EXPECT_EQ(current.at("version"), v1_hash);
  EXPECT_EQ(current.at("number"), 1);
  EXPECT_EQ(current.at("versions").size(), 2u);
}

TEST_F(Versions, RemovedViewKeepsItsVersions) {
  std::string v1_hash = Show("driver_profile").at("version");
  std::string text = ReadFile(dir_ + "/features.yaml");
  size_t begin = text.find("snapshot_views:");
  size_t end = text.find("feature_services:");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  text = text.substr(0, begin) +
         "feature_services:\n  - name: trip_model\n    features:\n"
         "      - driver_activity\n";
  WriteFile(dir_ + "/features.yaml", text);
  CommandResult apply = RunKeel({"apply"}, dir_);
  ASSERT_EQ(apply.exit_code, 0) << apply.Describe();
  EXPECT_TRUE(Contains(apply.out, "removed"));
  CommandResult list = RunKeel({"features", "list", "--json"}, dir_);
  ASSERT_EQ(list.exit_code, 0);
  EXPECT_EQ(Json::parse(list.out).size(), 1u) << list.out;
  EXPECT_EQ(Show("driver_profile@1").at("version"), v1_hash);

  CommandResult current = RunKeel({"dataset", "build", "--spine", "trips", "--features",
                                   "driver_profile", "--out", temp_.Path("none.parquet")},
                                  dir_);
  EXPECT_NE(current.exit_code, 0) << current.Describe();
  EXPECT_TRUE(Contains(current.err, "driver_profile"));
  EXPECT_FALSE(Exists(temp_.Path("none.parquet")));
  std::string old = Build("driver_profile@1", "old.parquet");
  EXPECT_EQ(MetadataVersions(KeelMetadata(old)),
            std::multiset<std::string>{"driver_profile@" + v1_hash});
}

// --- values: every aggregation against an independent SQL computation ------

// SQL for one window of the events source per output row: rows of the same
// entity (`keys`, over `e` and the output `o`) with floor_h(t - w) <= ts < t
// (DESIGN.md), aggregated by `select`.
std::string WindowSql(const std::string& name, int64_t window_us, int64_t hop_us,
                      const std::string& source, const std::string& keys,
                      const std::string& select) {
  return name + " AS (SELECT o.rid, " + select + " FROM o LEFT JOIN " + source + " e ON " + keys +
         " AND epoch_us(e.ts) >= floor_to(epoch_us(o.ts) - " + std::to_string(window_us) + ", " +
         std::to_string(hop_us) + ") AND e.ts < o.ts GROUP BY o.rid)";
}

TEST_F(MiniRepo, TrainingSetMatchesIndependentSql) {
  CommandResult build =
      Keel({"dataset", "build", "--spine", Spine(), "--service", "model", "--out", Out()});
  ASSERT_EQ(build.exit_code, 0) << build.Describe();

  std::unique_ptr<table::DuckDb> duckdb = OpenDuckDb();
  auto execute = [&](const std::string& sql) {
    Status status = duckdb->Execute(sql);
    ASSERT_TRUE(status.ok()) << status.message() << "\nin: " << sql;
  };
  execute("CREATE MACRO floor_to(x, h) AS x - (((x % h) + h) % h)");
  execute("CREATE TABLE ev AS SELECT * FROM read_csv(" +
          table::QuoteSqlString(repo_ + "/data/events.csv") + ", header = true)");
  execute("CREATE TABLE us AS SELECT * FROM read_csv(" +
          table::QuoteSqlString(repo_ + "/data/users.csv") + ", header = true)");
  execute("CREATE TABLE o AS SELECT file_row_number AS rid, * FROM read_parquet(" +
          table::QuoteSqlString(Out()) + ", file_row_number = true)");
  constexpr int64_t kMinute = 60'000'000, kHour = 60 * kMinute, kDay = 24 * kHour;
  const std::string user = "e.user_id = o.user_id";
  // `last` and snapshots: the latest row by (ts, arrival); `seq` and `rev` are
  // the rows' positions in their files.
  const std::string last =
      "arg_max(e.amount, {'t': e.ts, 's': e.seq}) FILTER (WHERE e.amount IS NOT NULL)";
  const std::string latest = "{'t': u.updated, 'r': u.rev}";
  // The events_reversed source orders equal timestamps by `arrival`, 1000 - seq.
  const std::string reversed =
      "arg_max(e.amount, {'t': e.ts, 'a': 1000 - e.seq}) FILTER (WHERE e.amount IS NOT NULL)";
  std::string sql =
      "WITH " +
      WindowSql("w1h", kHour, 5 * kMinute, "ev", user,
                "count(e.seq) AS events_1h, count(e.amount) AS amounts_1h, "
                "sum(e.amount) AS total_1h, avg(e.amount) AS mean_amount_1h") +
      ", " +
      WindowSql("w24h", kDay, kHour, "ev", user,
                "count(e.seq) AS events_24h, sum(e.amount) AS total_24h, "
                "avg(e.amount) AS mean_amount_24h, min(e.amount) AS min_amount_24h, "
                "max(e.amount) AS max_amount_24h, " +
                    last + " AS last_amount_24h, stddev_samp(e.amount) AS sd_amount_24h, " +
                    reversed + " AS reversed_last_amount_24h") +
      ", " +
      WindowSql("w2h", 2 * kHour, 45 * kMinute, "ev", user,
                "avg(CAST(e.amount > 50 AS DOUBLE)) AS big_share_2h") +
      ", " +
      WindowSql("w12h", 12 * kHour, 20 * kMinute, "(SELECT * FROM ev WHERE channel = 'web')", user,
                "count(e.seq) AS web_events_12h") +
      ", " +
      WindowSql("w6h", 6 * kHour, 5 * kMinute, "ev", user + " AND e.channel = o.channel",
                "count(e.seq) AS ch_events_6h, avg(e.amount) AS ch_mean_amount_6h") +
      ", snap AS (SELECT o.rid, arg_max(u.country, " + latest + ") AS country, arg_max(u.age, " +
      latest + ") + 1 AS age_next_year, CASE WHEN epoch_us(o.ts) - epoch_us(max(u.updated)) > " +
      std::to_string(20 * kHour) + " THEN NULL ELSE arg_max(u.country, " + latest +
      ") END AS recent_country FROM o LEFT JOIN us u "
      "ON u.user_id = o.user_id AND u.updated < o.ts GROUP BY o.rid, o.ts) "
      "SELECT o.*, w1h.* EXCLUDE (rid), w24h.* EXCLUDE (rid), w2h.* EXCLUDE (rid), "
      "w12h.* EXCLUDE (rid), w6h.* EXCLUDE (rid), snap.* EXCLUDE (rid), "
      "(o.user_id IS NULL OR o.ts IS NULL) AS no_key "
      "FROM o JOIN w1h USING (rid) JOIN w24h USING (rid) JOIN w2h USING (rid) "
      "JOIN w12h USING (rid) JOIN w6h USING (rid) JOIN snap USING (rid) ORDER BY rid";
  table::Table joined = Query(duckdb.get(), sql);
  ASSERT_GT(joined.num_rows(), 900u);

  // A null key or time gives null for every feature, counts included.
  const table::Column& no_key = *joined.GetColumn("no_key").value();
  for (size_t column = 0; column < joined.num_columns(); ++column) {
    const std::string& name = joined.fields()[column].name;
    if (name.find("__") == std::string::npos) continue;
    for (size_t row = 0; row < joined.num_rows(); ++row) {
      if (no_key.bools()[row]) {
        EXPECT_FALSE(joined.column(column).IsValid(row)) << name << " row " << row;
        joined.mutable_column(column).SetNull(row);
      }
    }
  }
  // ...and so does the reference once nulled the same way.
  for (const char* name :
       {"events_1h", "events_24h", "amounts_1h", "web_events_12h", "ch_events_6h"}) {
    int column = joined.FindColumn(name);
    ASSERT_GE(column, 0);
    for (size_t row = 0; row < joined.num_rows(); ++row) {
      if (no_key.bools()[row]) joined.mutable_column(static_cast<size_t>(column)).SetNull(row);
    }
  }

  std::vector<ColumnCheck> checks;
  for (const char* exact : {"events_1h", "events_24h", "amounts_1h", "min_amount_24h",
                            "max_amount_24h", "last_amount_24h"}) {
    checks.push_back({std::string("activity__") + exact, exact, 0.0});
  }
  for (const char* close : {"total_1h", "total_24h", "mean_amount_1h", "mean_amount_24h",
                            "sd_amount_24h", "big_share_2h"}) {
    checks.push_back({std::string("activity__") + close, close, 1e-9});
  }
  checks.push_back({"reversed__last_amount_24h", "reversed_last_amount_24h", 0.0});
  checks.push_back({"web_activity__web_events_12h", "web_events_12h", 0.0});
  checks.push_back({"channel_activity__events_6h", "ch_events_6h", 0.0});
  checks.push_back({"channel_activity__mean_amount_6h", "ch_mean_amount_6h", 1e-9});
  checks.push_back({"profile__country", "country", 0.0});
  checks.push_back({"profile__age_next_year", "age_next_year", 0.0});
  checks.push_back({"recent_profile__country", "recent_country", 0.0});
  Comparison comparison = CompareColumns(joined, checks, {"rid", "user_id", "ts", "channel"});
  std::printf(
      "mini repo: %zu rows x %zu features = %zu values compared (%zu null on both "
      "sides), %zu mismatches\n",
      comparison.rows, checks.size(), comparison.values, comparison.null_values,
      comparison.mismatches);
  EXPECT_EQ(comparison.mismatches, 0u) << comparison.examples;
  // Not vacuous: most values are real numbers.
  EXPECT_LT(comparison.null_values * 3, comparison.values);
}

}  // namespace
}  // namespace keel::e2e
