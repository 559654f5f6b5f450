#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "common/status.h"

namespace keel {

// All instants are UTC microseconds since the Unix epoch (DESIGN.md, "Time").
using Timestamp = int64_t;
// A length of time in microseconds.
using Duration = int64_t;

inline constexpr Duration kMicrosPerSecond = 1'000'000;
inline constexpr Duration kMicrosPerMinute = 60 * kMicrosPerSecond;
inline constexpr Duration kMicrosPerHour = 60 * kMicrosPerMinute;
inline constexpr Duration kMicrosPerDay = 24 * kMicrosPerHour;

// The instant before every real one; used for rows of sources without a time column.
inline constexpr Timestamp kMinTimestamp = std::numeric_limits<int64_t>::min();

// Parses "90s", "15m", "1h", "7d" (also "500ms", "250us"). Whole positive numbers only.
// Errors: InvalidArgument naming the text.
Result<Duration> ParseDuration(std::string_view text);

// Shortest exact spelling of a duration in the units above ("7d", "90m", "1500ms").
std::string FormatDuration(Duration duration);

// The wall-clock time now (system_clock), in microseconds.
Timestamp WallClockNow();

// Parses "2001-01-05", "2001-01-05 10:30", "2001-01-05T10:30:00", with optional
// fractional seconds and a trailing "Z" or "+00:00". Errors: InvalidArgument.
Result<Timestamp> ParseTimestamp(std::string_view text);

// "2001-01-05 10:30:00" (with ".ffffff" when not whole seconds).
std::string FormatTimestamp(Timestamp ts);

// Largest multiple of `hop` (> 0) that is <= t: floor division, correct for negatives.
inline Timestamp FloorToHop(Timestamp t, Duration hop) {
  Timestamp q = t / hop;
  if ((t % hop) != 0 && t < 0) --q;
  return q * hop;
}

}  // namespace keel
