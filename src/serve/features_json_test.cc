#include "serve/features_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

namespace keel::serve {
namespace {

using Json = nlohmann::json;
using features::FeatureStatus;
using table::Column;
using table::DataType;

std::string JsonString(std::string_view text) {
  std::string out;
  AppendJsonString(text, &out);
  return out;
}

TEST(AppendJsonString, EscapesAndReplacesInvalidUtf8) {
  EXPECT_EQ(JsonString("a\"b\\c\n\t\x01"), R"("a\"b\\c\n\t\u0001")");
  EXPECT_EQ(JsonString("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  // A lone continuation byte, a truncated sequence, an overlong form, a surrogate.
  EXPECT_EQ(JsonString("a\x80z"), R"("a\ufffdz")");
  EXPECT_EQ(JsonString("a\xe2\x82"), R"("a\ufffd\ufffd")");
  EXPECT_EQ(JsonString("\xc0\xaf"), R"("\ufffd\ufffd")");
  EXPECT_EQ(JsonString("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");
}

TEST(AppendJsonString, RandomBytesAlwaysMakeValidJson) {
  std::mt19937_64 random(7);
  for (int round = 0; round < 2000; ++round) {
    std::string text(random() % 24, '\0');
    for (char& c : text) c = static_cast<char>(random() % 256);
    std::string json = JsonString(text);
    Json parsed = Json::parse(json, nullptr, false);
    ASSERT_FALSE(parsed.is_discarded()) << json;
    // Valid UTF-8 (what nlohmann's strict writer accepts) survives unchanged.
    std::string strict = Json(text).dump(-1, ' ', false, Json::error_handler_t::ignore);
    if (Json::parse(strict).get<std::string>() == text) {
      EXPECT_EQ(parsed.get<std::string>(), text);
    }
  }
}

TEST(AppendJsonValue, NumbersRoundTripAndStayTyped) {
  Column doubles(DataType::kDouble, 0);
  std::mt19937_64 random(11);
  std::vector<double> values = {3.0, -0.0, 0.1, 1e-5, 1e300, 66.37, -2.5};
  for (int i = 0; i < 1000; ++i) {
    uint64_t bits = random();
    double value;
    std::memcpy(&value, &bits, sizeof(value));
    if (std::isfinite(value)) values.push_back(value);
  }
  for (double value : values) doubles.AppendDouble(value);
  doubles.AppendDouble(std::numeric_limits<double>::quiet_NaN());
  doubles.AppendDouble(std::numeric_limits<double>::infinity());
  for (size_t row = 0; row < values.size(); ++row) {
    std::string out;
    AppendJsonValue(doubles, row, &out);
    Json parsed = Json::parse(out);
    ASSERT_TRUE(parsed.is_number_float()) << out;
    EXPECT_EQ(parsed.get<double>(), values[row]) << out;
  }
  std::string out;
  AppendJsonValue(doubles, values.size(), &out);
  AppendJsonValue(doubles, values.size() + 1, &out);
  EXPECT_EQ(out, "nullnull");
  Column ints(DataType::kInt64, 0);
  ints.AppendInt64(std::numeric_limits<int64_t>::min());
  ints.AppendNull();
  out.clear();
  AppendJsonValue(ints, 0, &out);
  AppendJsonValue(ints, 1, &out);
  EXPECT_EQ(out, "-9223372036854775808null");
}

TEST(FormatRfc3339, SpellsTimestampsAsProtobufDoes) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(*ParseTimestamp("2024-03-03 12:00:00")), "2024-03-03T12:00:00Z");
  EXPECT_EQ(FormatRfc3339(*ParseTimestamp("2024-03-03 12:00:00.5")), "2024-03-03T12:00:00.500Z");
  EXPECT_EQ(FormatRfc3339(*ParseTimestamp("2024-03-03 12:00:00.000001")),
            "2024-03-03T12:00:00.000001Z");
}

TEST(EntitiesFromJson, NamesTheFieldOfEveryError) {
  auto error = [](const char* text) {
    Result<table::Table> result = EntitiesFromJson(nlohmann::ordered_json::parse(text));
    return result.ok() ? std::string("OK") : result.status().message();
  };
  EXPECT_EQ(error(R"({"a": [1, null], "b": ["x", "y"]})"), "OK");
  EXPECT_NE(error(R"([])").find("entities:"), std::string::npos);
  EXPECT_NE(error(R"({"a": 1})").find("entities.a:"), std::string::npos);
  EXPECT_NE(error(R"({"a": [1], "b": [1, 2]})").find("entities.b:"), std::string::npos);
  EXPECT_NE(error(R"({"a": [1, 1.5]})").find("entities.a[1]"), std::string::npos);
  EXPECT_NE(error(R"({"a": ["x", 1]})").find("entities.a[1]"), std::string::npos);
  EXPECT_NE(error(R"({"a": [18446744073709551615]})").find("entities.a[0]"), std::string::npos);
  EXPECT_NE(error(R"({"a": []})").find("no entity rows"), std::string::npos);
}

features::OnlineFeatures TwoFeatures() {
  features::OnlineFeatures features;
  features.names = {"activity__events_1h", "profile__country"};
  Column counts(DataType::kInt64, 0);
  counts.AppendInt64(3);
  counts.AppendInt64(0);
  Column countries(DataType::kString, 0);
  countries.AppendString("NO");
  countries.AppendNull();
  features.values = {std::move(counts), std::move(countries)};
  features.statuses = {{FeatureStatus::kPresent, FeatureStatus::kNotFound},
                       {FeatureStatus::kPresent, FeatureStatus::kInvalid}};
  features.event_timestamps = {{*ParseTimestamp("2024-03-02 20:36:00"), kMinTimestamp},
                               {*ParseTimestamp("2024-03-02 08:00:00.25"), kMinTimestamp}};
  return features;
}

TEST(FeaturesJson, IsColumnOriented) {
  Json json = Json::parse(FeaturesJson(TwoFeatures(), 2));
  EXPECT_EQ(json, Json::parse(R"({
    "metadata": {"feature_names": ["activity__events_1h", "profile__country"]},
    "results": [
      {"values": [3, 0], "statuses": ["PRESENT", "NOT_FOUND"],
       "event_timestamps": ["2024-03-02 20:36:00", null]},
      {"values": ["NO", null], "statuses": ["PRESENT", "INVALID"],
       "event_timestamps": ["2024-03-02 08:00:00.250000", null]}]})"));
}

TEST(FeastFeaturesJson, PutsEntityColumnsFirst) {
  table::Table entities;
  Column users(DataType::kInt64, 0);
  users.AppendInt64(3);
  users.AppendNull();
  ASSERT_TRUE(entities.AddColumn("user_id", std::move(users)).ok());
  Json json = Json::parse(FeastFeaturesJson(entities, TwoFeatures(), {"events_1h", "country"}));
  EXPECT_EQ(json, Json::parse(R"({
    "metadata": {"feature_names": ["user_id", "events_1h", "country"]},
    "results": [
      {"values": [3, null], "statuses": ["PRESENT", "NULL_VALUE"],
       "event_timestamps": ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"]},
      {"values": [3, 0], "statuses": ["PRESENT", "NOT_FOUND"],
       "event_timestamps": ["2024-03-02T20:36:00Z", "1970-01-01T00:00:00Z"]},
      {"values": ["NO", null], "statuses": ["PRESENT", "INVALID"],
       "event_timestamps": ["2024-03-02T08:00:00.250Z", "1970-01-01T00:00:00Z"]}]})"));
}

TEST(ErrorJson, IsOneErrorField) {
  EXPECT_EQ(Json::parse(ErrorJson("entities.user_id: \"x\"\xff")),
            Json({{"error", "entities.user_id: \"x\"\xef\xbf\xbd"}}));
}

}  // namespace
}  // namespace keel::serve
