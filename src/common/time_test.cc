#include "common/time.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <random>

namespace keel {
namespace {

TEST(Duration, ParsesEveryUnit) {
  EXPECT_EQ(*ParseDuration("90s"), 90 * kMicrosPerSecond);
  EXPECT_EQ(*ParseDuration("15m"), 15 * kMicrosPerMinute);
  EXPECT_EQ(*ParseDuration("1h"), kMicrosPerHour);
  EXPECT_EQ(*ParseDuration("7d"), 7 * kMicrosPerDay);
  EXPECT_EQ(*ParseDuration("500ms"), 500000);
  EXPECT_EQ(*ParseDuration("3us"), 3);
}

TEST(Duration, RejectsBadText) {
  for (const char* text : {"", "h", "1", "1x", "-1h", "0m", "1.5h", "1 h", "99999999999999999d"}) {
    Result<Duration> parsed = ParseDuration(text);
    EXPECT_FALSE(parsed.ok()) << text;
    EXPECT_NE(parsed.status().message().find("bad duration"), std::string::npos) << text;
  }
}

TEST(Duration, FormatRoundTrips) {
  for (const char* text : {"90s", "15m", "1h", "7d", "90m", "1500ms", "3us", "36h"}) {
    EXPECT_EQ(FormatDuration(*ParseDuration(text)), text);
  }
  EXPECT_EQ(FormatDuration(24 * kMicrosPerHour), "1d");
}

TEST(Timestamp, ParsesIsoForms) {
  EXPECT_EQ(*ParseTimestamp("1970-01-01"), 0);
  EXPECT_EQ(*ParseTimestamp("1970-01-02 00:00"), kMicrosPerDay);
  EXPECT_EQ(*ParseTimestamp("2001-01-01T00:00:00Z"), 978307200LL * kMicrosPerSecond);
  EXPECT_EQ(*ParseTimestamp("2001-01-01 00:00:01.5"), 978307201LL * kMicrosPerSecond + 500000);
  EXPECT_EQ(*ParseTimestamp("1969-12-31 23:59:59"), -kMicrosPerSecond);
  EXPECT_FALSE(ParseTimestamp("2001-13-01").ok());
  EXPECT_FALSE(ParseTimestamp("yesterday").ok());
  EXPECT_FALSE(ParseTimestamp("2001-01-01 10:00+02:00").ok());
}

TEST(Timestamp, FormatRoundTripsOnRandomInstants) {
  std::mt19937_64 random(1);
  for (int i = 0; i < 10000; ++i) {
    Timestamp ts = static_cast<Timestamp>(random() % (200LL * 365 * kMicrosPerDay)) -
                   100LL * 365 * kMicrosPerDay;
    EXPECT_EQ(*ParseTimestamp(FormatTimestamp(ts)), ts) << FormatTimestamp(ts);
  }
}

TEST(Timestamp, FormatMatchesTheCLibrary) {
  std::mt19937_64 random(2);
  for (int i = 0; i < 20000; ++i) {
    Timestamp ts = static_cast<Timestamp>(random() % (200LL * 365 * kMicrosPerDay)) -
                   70LL * 365 * kMicrosPerDay;
    if (i % 2 == 0) ts -= ts % kMicrosPerSecond;  // whole seconds print no fraction
    Timestamp micros = ((ts % kMicrosPerSecond) + kMicrosPerSecond) % kMicrosPerSecond;
    time_t seconds = static_cast<time_t>((ts - micros) / kMicrosPerSecond);
    std::tm parts{};
    gmtime_r(&seconds, &parts);
    char expected[64];
    size_t n = std::strftime(expected, sizeof(expected), "%Y-%m-%d %H:%M:%S", &parts);
    std::string want(expected, n);
    if (micros != 0) {
      std::snprintf(expected, sizeof(expected), ".%06lld", static_cast<long long>(micros));
      want += expected;
    }
    ASSERT_EQ(FormatTimestamp(ts), want) << ts;
  }
}

TEST(FloorToHop, RoundsDownAlsoBeforeTheEpoch) {
  EXPECT_EQ(FloorToHop(0, 10), 0);
  EXPECT_EQ(FloorToHop(9, 10), 0);
  EXPECT_EQ(FloorToHop(10, 10), 10);
  EXPECT_EQ(FloorToHop(-1, 10), -10);
  EXPECT_EQ(FloorToHop(-10, 10), -10);
  EXPECT_EQ(FloorToHop(-11, 10), -20);
}

}  // namespace
}  // namespace keel
