// `keel serve --model`: POST /v1/models/{name}:predict (features + transforms
// + model in one call), the Open Inference Protocol, fallbacks, bad input,
// and hot swap of the registry's production version under load.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "e2e_util.h"
#include "table/duckdb_bridge.h"

namespace keel::e2e {
namespace {

using Json = nlohmann::json;

constexpr const char* kPipeline = R"yaml(name: big_fare
spine: {source: trips, keys: [driver_id]}
label: {expression: "fare > 20", name: big_fare}
features:
  service: trip_model
request_inputs:
  - distance_km
  - {name: hour, expression: "hour(ts)"}
split: {kind: time, train_until: 2024-03-10, validation_until: 2024-03-13}
transforms:
  - {kind: ordinal, column: driver_profile__city, unknown: ignore}
model: {max_depth: 3, eta: 0.3, rounds: 40, early_stopping_rounds: 5, seed: 3}
golden_cases: 8
)yaml";

constexpr const char* kAt = "2024-03-15 00:00:00";

// One trained, materialized `keel init` repository shared by the tests.
class Predict : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_ = new TempDir();
    dir_ = temp_->Path("rides");
    ASSERT_EQ(RunKeel({"init", dir_}).exit_code, 0);
    ASSERT_EQ(RunKeel({"apply"}, dir_).exit_code, 0);
    WriteFile(dir_ + "/pipeline.yaml", kPipeline);
    CommandResult trained =
        RunKeel({"train", "pipeline.yaml", "--json", "--out", temp_->Path("bundle_a")}, dir_);
    ASSERT_EQ(trained.exit_code, 0) << trained.Describe();
    hash_a_ = Json::parse(trained.out)["bundle_hash"].get<std::string>();
    WriteFile(dir_ + "/pipeline_b.yaml", ReplaceOnce(kPipeline, "eta: 0.3", "eta: 0.1"));
    CommandResult other =
        RunKeel({"train", "pipeline_b.yaml", "--json", "--out", temp_->Path("bundle_b")}, dir_);
    ASSERT_EQ(other.exit_code, 0) << other.Describe();
    hash_b_ = Json::parse(other.out)["bundle_hash"].get<std::string>();
    CommandResult materialized = RunKeel({"materialize", "--end", "2024-03-15T00:00:00"}, dir_);
    ASSERT_EQ(materialized.exit_code, 0) << materialized.Describe();
  }
  static void TearDownTestSuite() {
    delete temp_;
    temp_ = nullptr;
  }

  static Json Post(httplib::Client& client, const std::string& path, const Json& body,
                   int* status) {
    auto response = client.Post(path.c_str(), body.dump(), "application/json");
    EXPECT_TRUE(response) << path;
    if (!response) return Json();
    *status = response->status;
    return Json::parse(response->body);
  }

  static Json Rows() {
    Json rows = Json::array();
    for (int driver : {1, 2, 3, 7, 999}) {
      rows.push_back({{"driver_id", driver},
                      {"ts", "2024-03-15 09:30:00"},
                      {"distance_km", 4.5 * driver - (driver == 999 ? 4400 : 0)}});
    }
    return rows;
  }

  static TempDir* temp_;
  static std::string dir_;
  static std::string hash_a_, hash_b_;
};

TempDir* Predict::temp_ = nullptr;
std::string Predict::dir_;
std::string Predict::hash_a_;
std::string Predict::hash_b_;

TEST_F(Predict, OneCallEqualsTheModelOnTheFeaturesTheStoreHoldsAndGoldenCasesReproduce) {
  ServeProcess serve(dir_, {"--model", "big_fare=" + temp_->Path("bundle_a")});
  httplib::Client client("127.0.0.1", serve.port());
  int status = 0;
  Json answer = Post(client, "/v1/models/big_fare:predict",
                     {{"rows", Rows()}, {"at", kAt}, {"request_id", "r-1"}}, &status);
  ASSERT_EQ(status, 200) << answer.dump();
  EXPECT_EQ(answer["model"], "big_fare");
  EXPECT_EQ(answer["request_id"], "r-1");
  EXPECT_TRUE(answer["fallback"].is_null());
  ASSERT_EQ(answer["predictions"].size(), 5u);
  // The unknown driver's view features are missing; the others' are present.
  EXPECT_TRUE(answer["features"][0]["missing"].empty()) << answer.dump();
  EXPECT_EQ(answer["features"][4]["missing"].size(), 8u) << answer.dump();

  // The same rows, assembled by hand from the features the store answers
  // (POST /v1/features) and the request inputs, through the Open Inference
  // Protocol's raw tensors: the same predictions, to the bit.
  Json features = Post(client, "/v1/features",
                       {{"feature_service", "trip_model"},
                        {"entities", {{"driver_id", {1, 2, 3, 7, 999}}}},
                        {"at", kAt}},
                       &status);
  ASSERT_EQ(status, 200) << features.dump();
  auto response = client.Get("/v2/models/big_fare");
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  Json metadata = Json::parse(response->body);
  Json tensors = Json::array();
  for (const Json& input : metadata["inputs"]) {
    std::string name = input["name"];
    Json data = Json::array();
    if (name == "distance_km") {
      for (const Json& row : Rows()) data.push_back(row["distance_km"]);
    } else if (name == "hour") {
      data = Json::array({9, 9, 9, 9, 9});
    } else {
      const Json& names = features["metadata"]["feature_names"];
      size_t index = std::find(names.begin(), names.end(), name) - names.begin();
      ASSERT_LT(index, names.size()) << name;
      data = features["results"][index]["values"];
    }
    tensors.push_back({{"name", name},
                       {"datatype", input["datatype"]},
                       {"shape", {data.size()}},
                       {"data", data}});
  }
  Json inferred =
      Post(client, "/v2/models/big_fare/infer", {{"id", "x"}, {"inputs", tensors}}, &status);
  ASSERT_EQ(status, 200) << inferred.dump();
  EXPECT_EQ(inferred["id"], "x");
  EXPECT_EQ(inferred["outputs"][0]["data"], answer["predictions"]);

  // The bundle's golden cases (XGBoost's own predictions at training time)
  // through the compiled trees.
  Json golden = Json::parse(ReadFile(temp_->Path("bundle_a/golden_cases.json")));
  ASSERT_FALSE(golden.empty());
  Json golden_tensors = Json::array();
  for (const Json& input : metadata["inputs"]) {
    Json data = Json::array();
    for (const Json& item : golden)
      data.push_back(item["inputs"][input["name"].get<std::string>()]);
    golden_tensors.push_back({{"name", input["name"]},
                              {"datatype", input["datatype"]},
                              {"shape", {data.size()}},
                              {"data", data}});
  }
  Json replayed =
      Post(client, "/v2/models/big_fare/versions/0/infer", {{"inputs", golden_tensors}}, &status);
  ASSERT_EQ(status, 200) << replayed.dump();
  for (size_t index = 0; index < golden.size(); ++index) {
    EXPECT_NEAR(replayed["outputs"][0]["data"][index].get<double>(),
                golden[index]["prediction"].get<double>(), 1e-6)
        << index;
  }

  // Column-oriented requests answer the same.
  Json columns = {
      {"driver_id", Json::array()}, {"ts", Json::array()}, {"distance_km", Json::array()}};
  for (const Json& row : Rows()) {
    for (auto& [name, list] : columns.items()) list.push_back(row[name]);
  }
  Json by_columns =
      Post(client, "/v1/models/big_fare:predict", {{"columns", columns}, {"at", kAt}}, &status);
  ASSERT_EQ(status, 200) << by_columns.dump();
  EXPECT_EQ(by_columns["predictions"], answer["predictions"]);

  // One row per request (the usual online call) answers each row as the
  // batch did, missing features included; an integer where the model was
  // trained on reals (the table path converts it) answers as the real.
  for (size_t row = 0; row < Rows().size(); ++row) {
    Json alone = Post(client, "/v1/models/big_fare:predict", {{"rows", {Rows()[row]}}, {"at", kAt}},
                      &status);
    ASSERT_EQ(status, 200) << alone.dump();
    EXPECT_EQ(alone["predictions"][0], answer["predictions"][row]) << row;
    EXPECT_EQ(alone["features"][0], answer["features"][row]) << row;
  }
  Json integer_row = Rows()[1];
  ASSERT_EQ(integer_row["distance_km"].get<double>(), 9.0);
  integer_row["distance_km"] = 9;
  Json by_integer =
      Post(client, "/v1/models/big_fare:predict", {{"rows", {integer_row}}, {"at", kAt}}, &status);
  ASSERT_EQ(status, 200) << by_integer.dump();
  EXPECT_EQ(by_integer["predictions"][0], answer["predictions"][1]);
  EXPECT_EQ(serve.Stop(), 0) << serve.Log();

  // Every prediction is in the log: request id, keys, the model's inputs, output.
  std::string parquet = temp_->Path("predictions.parquet");
  CommandResult exported = RunKeel({"logs", "export", "--out", parquet, "--json"}, dir_);
  ASSERT_EQ(exported.exit_code, 0) << exported.Describe();
  Result<std::unique_ptr<table::DuckDb>> duckdb = table::DuckDb::Open(1);
  ASSERT_TRUE(duckdb.ok());
  Result<table::Table> logged = (*duckdb)->Query(
      "SELECT entity_keys, output, features['hour'] AS hour, "
      "features['driver_profile__vehicle_age'] AS age, fallback FROM read_parquet('" +
      parquet + "') WHERE request_id = 'r-1' ORDER BY time, output");
  ASSERT_TRUE(logged.ok()) << logged.status().ToString();
  ASSERT_EQ(logged->num_rows(), 5u);  // the one-row requests have their own ids
  std::vector<double> expected;
  for (const Json& p : answer["predictions"]) expected.push_back(p.get<double>());
  std::sort(expected.begin(), expected.end());
  for (size_t row = 0; row < 5; ++row) {
    EXPECT_EQ(logged->column(1).doubles()[row], expected[row]) << row;
    EXPECT_EQ(logged->column(2).doubles()[row], 9.0);
    EXPECT_FALSE(logged->column(4).IsValid(row));  // no fallback
  }
  EXPECT_NE(logged->column(0).StringAt(0).find("driver_id"), std::string::npos);
}

TEST_F(Predict, FallbacksAnswerWhenFeaturesCannotBeReadInTime) {
  std::string bundle = "big_fare=" + temp_->Path("bundle_a");
  Json late = {{"rows", Rows()}, {"at", kAt}, {"deadline_ms", 0}};
  int status = 0;
  {
    ServeProcess serve(dir_, {"--model", bundle});  // default: the baseline
    httplib::Client client("127.0.0.1", serve.port());
    Json answer = Post(client, "/v1/models/big_fare:predict", late, &status);
    ASSERT_EQ(status, 200) << answer.dump();
    EXPECT_EQ(answer["fallback"]["used"], "baseline");
    EXPECT_NE(answer["fallback"]["reason"].get<std::string>().find("deadline"), std::string::npos);
    for (const Json& p : answer["predictions"]) {
      EXPECT_GE(p.get<double>(), 0.0);
      EXPECT_LE(p.get<double>(), 1.0);
    }
    Json normal =
        Post(client, "/v1/models/big_fare:predict", {{"rows", Rows()}, {"at", kAt}}, &status);
    EXPECT_NE(normal["predictions"], answer["predictions"]);
    Post(client, "/v1/models/nope:predict", Json::object(), &status);
    // The metrics say what answered.
    auto scraped = client.Get("/metrics");
    ASSERT_TRUE(scraped);
    ASSERT_EQ(scraped->status, 200);
    const std::string& text = scraped->body;
    for (const char* line :
         {"keel_predictions_total{model=\"big_fare\",version=\"0\",status=\"fallback\"} 1\n",
          "keel_predictions_total{model=\"big_fare\",version=\"0\",status=\"ok\"} 1\n",
          "keel_predictions_total{model=\"unknown\",version=\"\",status=\"not_found\"} 1\n",
          "keel_model_loads_total{model=\"big_fare\",result=\"ok\"} 1\n",
          "keel_prediction_latency_seconds_count{model=\"big_fare\",stage=\"total\"} 2\n",
          "keel_prediction_latency_seconds_count{model=\"big_fare\",stage=\"model\"} 2\n",
          "keel_feature_missing_total{model=\"big_fare\",feature=\"driver_activity__trips_1h\"} "
          "1\n",
          "keel_requests_in_flight 0\n"}) {
      EXPECT_NE(text.find(line), std::string::npos) << line << text;
    }
  }
  {
    ServeProcess serve(dir_, {"--model", bundle, "--fallback", "defaults"});
    httplib::Client client("127.0.0.1", serve.port());
    Json answer = Post(client, "/v1/models/big_fare:predict", late, &status);
    ASSERT_EQ(status, 200) << answer.dump();
    EXPECT_EQ(answer["fallback"]["used"], "defaults");
    // Every row then has the same view inputs (none): equal request inputs
    // give equal predictions.
    Json same = {{"rows", {Rows()[0], Rows()[0]}}, {"at", kAt}, {"deadline_ms", 0}};
    Json pair = Post(client, "/v1/models/big_fare:predict", same, &status);
    EXPECT_EQ(pair["predictions"][0], pair["predictions"][1]);
  }
  {
    ServeProcess serve(dir_, {"--model", bundle, "--fallback", "error"});
    httplib::Client client("127.0.0.1", serve.port());
    Json answer = Post(client, "/v1/models/big_fare:predict", late, &status);
    EXPECT_EQ(status, 503) << answer.dump();
    EXPECT_NE(answer["error"].get<std::string>().find("deadline"), std::string::npos);
  }
}

TEST_F(Predict, BadRequestsGet4xxNamingTheFieldAndTheServerKeepsServing) {
  ServeProcess serve(dir_, {"--model", "big_fare=" + temp_->Path("bundle_a"), "--max-rows", "5"});
  httplib::Client client("127.0.0.1", serve.port());
  auto expect = [&](const std::string& path, const std::string& body, int code,
                    const std::string& needle) {
    auto response = client.Post(path.c_str(), body, "application/json");
    ASSERT_TRUE(response) << body;
    EXPECT_EQ(response->status, code) << body << " -> " << response->body;
    Json error = Json::parse(response->body, nullptr, false);
    ASSERT_TRUE(error.is_object() && error.contains("error")) << response->body;
    EXPECT_NE(error["error"].get<std::string>().find(needle), std::string::npos)
        << body << " -> " << response->body;
  };
  const std::string predict = "/v1/models/big_fare:predict";
  expect("/v1/models/nope:predict", "{}", 404, "unknown model 'nope'");
  expect(predict, "{", 400, "not valid JSON");
  expect(predict, "[]", 400, "body");
  expect(predict, R"({"rows": []})", 400, "rows");
  expect(predict, R"({"rows": [1]})", 400, "rows[0]");
  expect(predict, R"({"rows": [{"driver_id": 1, "ts": "2024-03-15", "distance_km": 1}], "x": 1})",
         400, "x: unknown field");
  expect(predict,
         R"({"rows": [{"driver_id": 1, "ts": "2024-03-15", "distance_km": 1},
                      {"driver_id": 2, "ts": "2024-03-15", "distance_km": "far"}]})",
         400, "rows[1].distance_km");
  expect(predict, R"({"rows": [{"driver_id": 1, "ts": "yesterday", "distance_km": 1}]})", 400,
         "rows[0].ts");
  expect(predict, R"({"rows": [{"driver_id": 1, "ts": "2024-03-15"}]})", 400, "distance_km");
  expect(predict, R"({"rows": [{"ts": "2024-03-15", "distance_km": 1}]})", 400, "driver_id");
  expect(predict, R"({"rows": [{"driver_id": "one", "ts": "2024-03-15", "distance_km": 1}]})", 400,
         "driver_id");
  expect(predict, R"({"rows": [{"driver_id": 1, "ts": "2024-03-15", "distance_km": 1}], "at": 5})",
         400, "at");
  expect(predict,
         R"({"rows": [{"driver_id": 1, "ts": "2024-03-15", "distance_km": 1}], "deadline_ms": -1})",
         400, "deadline_ms");
  Json many = {{"rows", Json::array()}};
  for (int i = 0; i < 6; ++i) many["rows"].push_back(Rows()[0]);
  expect(predict, many.dump(), 413, "limit of 5");
  expect("/v2/models/big_fare/versions/7/infer", "{}", 404, "version 7");
  expect("/v2/models/big_fare/infer", R"({"inputs": [{"name": "hour"}]})", 400, "inputs[0]");
  expect("/v2/models/big_fare/infer",
         R"({"inputs": [{"name": "nope", "shape": [1], "datatype": "FP64", "data": [1]}]})", 400,
         "nope");
  expect("/v2/models/big_fare/infer",
         R"({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]})",
         400, "inputs[0]");
  expect("/v2/models/big_fare/infer",
         R"({"inputs": [{"name": "hour", "shape": [2], "datatype": "INT64", "data": [1]}]})", 400,
         "shape");
  auto live = client.Get("/v2/health/live");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  auto ready = client.Get("/v2/models/big_fare/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(Json::parse(ready->body)["ready"], true);
  EXPECT_EQ(serve.Stop(), 0) << serve.Log();
}

// The registry's production version serves; a promotion and a rollback while
// clients send requests swap it with no failed request, and every answer's
// version is one the registry had in production around that time.
TEST_F(Predict, HotSwapFollowsPromotionAndRollbackUnderLoad) {
  TempDir registry_temp;
  std::string dir = registry_temp.Path("rides");
  CopyTree(dir_, dir);
  auto keel = [&](std::vector<std::string> args) {
    CommandResult result = RunKeel(args, dir);
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    return result;
  };
  keel({"models", "register", "big_fare", "--bundle-uri", temp_->Path("bundle_a"), "--bundle-hash",
        hash_a_});
  keel({"models", "register", "big_fare", "--bundle-uri", temp_->Path("bundle_b"), "--bundle-hash",
        hash_b_});
  keel({"models", "promote", "big_fare", "1", "--to", "staging"});
  keel({"models", "promote", "big_fare", "1", "--to", "production", "--sign-off", "ana: reviewed",
        "--reason", "first"});
  keel({"models", "promote", "big_fare", "2", "--to", "staging"});

  ServeProcess serve(dir, {"--model", "big_fare", "--model-poll-ms", "50"});
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<int64_t> versions;  // in answer order, from one client
  std::thread load([&] {
    httplib::Client client("127.0.0.1", serve.port());
    Json body = {{"rows", {Rows()[0]}}, {"at", kAt}};
    while (!stop) {
      auto response = client.Post("/v1/models/big_fare:predict", body.dump(), "application/json");
      if (!response || response->status != 200) {
        ++failures;
        continue;
      }
      versions.push_back(Json::parse(response->body)["version"].get<int64_t>());
    }
  });
  auto wait_for = [&](int64_t version) {
    for (int i = 0; i < 200; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      httplib::Client client("127.0.0.1", serve.port());
      auto response = client.Get("/v2/models/big_fare");
      if (response && response->status == 200 &&
          Json::parse(response->body)["versions"][0] == std::to_string(version)) {
        return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(wait_for(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  keel({"models", "promote", "big_fare", "2", "--to", "production", "--sign-off", "ana: better",
        "--reason", "second"});
  EXPECT_TRUE(wait_for(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  keel({"models", "rollback", "big_fare", "--reason", "regret"});
  EXPECT_TRUE(wait_for(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  load.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_FALSE(versions.empty());
  // 1...1 2...2 1...1: each swap happens once, never back and forth.
  std::vector<int64_t> runs;
  for (int64_t version : versions) {
    if (runs.empty() || runs.back() != version) runs.push_back(version);
  }
  EXPECT_EQ(runs, (std::vector<int64_t>{1, 2, 1})) << versions.size() << " answers";
  EXPECT_GT(versions.size(), 30u);
  EXPECT_EQ(serve.Stop(), 0) << serve.Log();
}

// `keel batch-predict`: the offline engine's point-in-time features (rows
// before T) through the same model equal the online store materialized to T.
TEST_F(Predict, BatchPredictionEqualsOnlinePredictionForTheSameRowsAndTimes) {
  // The spine in another order than the request, scored two rows at a time.
  const std::vector<int> drivers = {7, 1, 999, 3, 2};
  auto distance = [](int driver) { return 4.5 * driver - (driver == 999 ? 4400 : 0); };
  std::string values;
  Json rows = Json::array();
  for (int driver : drivers) {
    char row[160];
    std::snprintf(row, sizeof(row), "%s(%d, TIMESTAMP '%s', %.17g, 'r%d')",
                  values.empty() ? "" : ", ", driver, kAt, distance(driver), driver);
    values += row;
    rows.push_back({{"driver_id", driver}, {"ts", kAt}, {"distance_km", distance(driver)}});
  }
  std::string spine =
      "SELECT * FROM (VALUES " + values + ") AS t(driver_id, ts, distance_km, request)";
  std::string out = temp_->Path("batch.parquet");
  CommandResult batch = RunKeel({"batch-predict", "--bundle", temp_->Path("bundle_a"), "--spine",
                                 spine, "--out", out, "--chunk-rows", "2", "--json"},
                                dir_);
  ASSERT_EQ(batch.exit_code, 0) << batch.Describe();
  Json summary = Json::parse(batch.out);
  EXPECT_EQ(summary["model"], "big_fare");
  EXPECT_EQ(summary["rows"], 5);
  EXPECT_EQ(summary["bundle_hash"], hash_a_);
  EXPECT_NE(batch.err.find("5/5 rows"), std::string::npos) << batch.err;  // the progress

  auto duckdb = table::DuckDb::Open();
  ASSERT_TRUE(duckdb.ok());
  auto table = (*duckdb)->Query("SELECT * FROM read_parquet(" + table::QuoteSqlString(out) + ")");
  ASSERT_TRUE(table.ok()) << table.status().message();
  ASSERT_EQ(table->num_rows(), 5u);
  ASSERT_EQ(table->SchemaToString().find("prediction") != std::string::npos, true);
  const table::Column& request = **table->GetColumn("request");
  const table::Column& prediction = **table->GetColumn("prediction");
  auto metadata = (*duckdb)->Query("SELECT decode(value) AS v FROM parquet_kv_metadata(" +
                                   table::QuoteSqlString(out) + ") WHERE decode(key) = 'keel'");
  ASSERT_TRUE(metadata.ok()) << metadata.status().message();
  ASSERT_EQ(metadata->num_rows(), 1u);
  Json keel = Json::parse(std::string((*metadata->GetColumn("v"))->StringAt(0)));
  EXPECT_EQ(keel["model"], "big_fare");
  EXPECT_EQ(keel["bundle_hash"], hash_a_);

  ServeProcess serve(dir_, {"--model", "big_fare=" + temp_->Path("bundle_a")});
  httplib::Client client("127.0.0.1", serve.port());
  int status = 0;
  Json online = Post(client, "/v1/models/big_fare:predict", {{"rows", rows}, {"at", kAt}}, &status);
  ASSERT_EQ(status, 200) << online.dump();
  ASSERT_TRUE(online["fallback"].is_null()) << online.dump();
  std::set<double> distinct;
  for (size_t row = 0; row < drivers.size(); ++row) {
    EXPECT_EQ(request.StringAt(row), "r" + std::to_string(drivers[row]));  // spine order kept
    double offline = prediction.doubles()[row];
    double served = online["predictions"][row].get<double>();
    EXPECT_EQ(offline, served) << "driver " << drivers[row];  // bit-identical
    distinct.insert(offline);
  }
  EXPECT_GE(distinct.size(), 3u);  // the features matter: not one constant answer
  EXPECT_EQ(serve.Stop(), 0) << serve.Log();

  // The registry's versions: NAME@VERSION, and NAME (production) once promoted.
  TempDir registry_temp;
  std::string dir = registry_temp.Path("rides");
  CopyTree(dir_, dir);
  ASSERT_EQ(RunKeel({"apply"}, dir).exit_code, 0);  // the copy leaves the catalog out
  CommandResult registered = RunKeel({"models", "register", "big_fare", "--bundle-uri",
                                      temp_->Path("bundle_a"), "--bundle-hash", hash_a_},
                                     dir);
  ASSERT_EQ(registered.exit_code, 0) << registered.Describe();
  std::string versioned = registry_temp.Path("v1.parquet");
  CommandResult by_version = RunKeel(
      {"batch-predict", "--model", "big_fare@1", "--spine", spine, "--out", versioned, "-q"}, dir);
  ASSERT_EQ(by_version.exit_code, 0) << by_version.Describe();
  EXPECT_TRUE(by_version.err.empty()) << by_version.err;  // -q: no progress bar
  auto again = (*duckdb)->Query("SELECT prediction FROM read_parquet(" +
                                table::QuoteSqlString(versioned) + ")");
  ASSERT_TRUE(again.ok());
  for (size_t row = 0; row < drivers.size(); ++row) {
    EXPECT_EQ(again->column(0).doubles()[row], prediction.doubles()[row]);
  }
  CommandResult no_production =
      RunKeel({"batch-predict", "--model", "big_fare", "--spine", spine, "--out", versioned}, dir);
  EXPECT_EQ(no_production.exit_code, 4) << no_production.Describe();
  EXPECT_NE(no_production.err.find("no production version"), std::string::npos)
      << no_production.err;
}

TEST_F(Predict, BatchPredictRefusesABadModelOrSpineWithAClearError) {
  std::string out = temp_->Path("bad.parquet");
  std::string spine = "SELECT 1 AS driver_id, TIMESTAMP '2024-03-15' AS ts, 2.0 AS distance_km";
  auto expect = [&](const std::vector<std::string>& args, const std::string& needle) {
    std::vector<std::string> command = {"batch-predict", "--out", out};
    command.insert(command.end(), args.begin(), args.end());
    CommandResult result = RunKeel(command, dir_);
    EXPECT_NE(result.exit_code, 0) << result.Describe();
    EXPECT_EQ(result.signal, 0) << result.Describe();
    EXPECT_NE(result.err.find(needle), std::string::npos) << result.Describe();
    EXPECT_FALSE(Exists(out));
  };
  std::string bundle = temp_->Path("bundle_a");
  expect({"--spine", spine}, "--model");
  expect({"--model", "nope", "--spine", spine}, "nope");
  expect({"--model", "big_fare@x", "--spine", spine}, "positive integer");
  expect({"--bundle", temp_->Path("missing"), "--spine", spine}, "--bundle");
  expect({"--bundle", dir_, "--spine", spine}, "--model");  // a folder that is no bundle
  expect({"--bundle", bundle, "--spine", "no_such_source"}, "spine");
  expect({"--bundle", bundle, "--spine", "SELECT * FROM nowhere"}, "spine");
  expect({"--bundle", bundle, "--spine", "SELECT 1 AS driver_id, TIMESTAMP '2024-03-15' AS ts"},
         "distance_km");
  expect({"--bundle", bundle, "--spine", "SELECT TIMESTAMP '2024-03-15' AS ts, 2.0 AS distance_km"},
         "driver_id");
  expect({"--bundle", bundle, "--spine", spine + " WHERE false"}, "no rows");
  expect({"--bundle", bundle, "--spine", spine, "--time", "when"}, "when");
}

}  // namespace
}  // namespace keel::e2e
