#include "common/time.h"

#include <charconv>
#include <chrono>
#include <cstdio>

namespace keel {

Timestamp WallClockNow() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool ReadInt(std::string_view text, size_t* pos, size_t digits, int64_t* out) {
  if (*pos + digits > text.size()) return false;
  int64_t value = 0;
  for (size_t i = 0; i < digits; ++i) {
    char c = text[*pos + i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *pos += digits;
  *out = value;
  return true;
}

}  // namespace

Result<Duration> ParseDuration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("bad duration '" + std::string(text) + "': " + std::string(why) +
                           " (expected e.g. 90s, 15m, 1h, 7d)");
  };
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return bad("no number");
  int64_t number = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, number);
  if (ec != std::errc()) return bad("number out of range");
  std::string_view unit = text.substr(digits);
  int64_t scale = 0;
  if (unit == "us")
    scale = 1;
  else if (unit == "ms")
    scale = 1000;
  else if (unit == "s")
    scale = kMicrosPerSecond;
  else if (unit == "m")
    scale = kMicrosPerMinute;
  else if (unit == "h")
    scale = kMicrosPerHour;
  else if (unit == "d")
    scale = kMicrosPerDay;
  else
    return bad(unit.empty() ? "missing unit" : "unknown unit '" + std::string(unit) + "'");
  if (number <= 0) return bad("must be positive");
  if (number > std::numeric_limits<int64_t>::max() / scale) return bad("too long");
  return number * scale;
}

std::string FormatDuration(Duration duration) {
  struct Unit {
    Duration micros;
    const char* name;
  };
  static constexpr Unit kUnits[] = {
      {kMicrosPerDay, "d"},    {kMicrosPerHour, "h"}, {kMicrosPerMinute, "m"},
      {kMicrosPerSecond, "s"}, {1000, "ms"},          {1, "us"}};
  for (const Unit& unit : kUnits) {
    if (duration != 0 && duration % unit.micros == 0) {
      return std::to_string(duration / unit.micros) + unit.name;
    }
  }
  return std::to_string(duration) + "us";
}

Result<Timestamp> ParseTimestamp(std::string_view text) {
  auto bad = [&]() {
    return InvalidArgument("bad timestamp '" + std::string(text) +
                           "' (expected YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][Z])");
  };
  size_t pos = 0;
  int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, micros = 0;
  if (!ReadInt(text, &pos, 4, &year) || pos >= text.size() || text[pos++] != '-' ||
      !ReadInt(text, &pos, 2, &month) || pos >= text.size() || text[pos++] != '-' ||
      !ReadInt(text, &pos, 2, &day)) {
    return bad();
  }
  if (pos < text.size() && (text[pos] == ' ' || text[pos] == 'T')) {
    ++pos;
    if (!ReadInt(text, &pos, 2, &hour) || pos >= text.size() || text[pos++] != ':' ||
        !ReadInt(text, &pos, 2, &minute)) {
      return bad();
    }
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      if (!ReadInt(text, &pos, 2, &second)) return bad();
      if (pos < text.size() && text[pos] == '.') {
        ++pos;
        size_t start = pos;
        int64_t scale = 100000;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
          if (scale > 0) micros += (text[pos] - '0') * scale;
          scale /= 10;
          ++pos;
        }
        if (pos == start) return bad();
      }
    }
  }
  if (pos < text.size() && text.substr(pos) != "Z" && text.substr(pos) != "+00:00" &&
      text.substr(pos) != "+00") {
    return bad();
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return bad();
  }
  int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  return days * kMicrosPerDay + hour * kMicrosPerHour + minute * kMicrosPerMinute +
         second * kMicrosPerSecond + micros;
}

std::string FormatTimestamp(Timestamp ts) {
  if (ts == kMinTimestamp) return "-infinity";
  int64_t days = ts / kMicrosPerDay;
  int64_t rest = ts % kMicrosPerDay;
  if (rest < 0) {
    rest += kMicrosPerDay;
    --days;
  }
  int64_t year;
  unsigned month, day;
  CivilFromDays(days, &year, &month, &day);
  int64_t micros = rest % kMicrosPerSecond;
  int64_t seconds = rest / kMicrosPerSecond;
  if (year < 0 || year > 9999) {
    char buffer[64];
    int n = std::snprintf(
        buffer, sizeof(buffer), "%04lld-%02u-%02u %02lld:%02lld:%02lld",
        static_cast<long long>(year), month, day, static_cast<long long>(seconds / 3600),
        static_cast<long long>(seconds / 60 % 60), static_cast<long long>(seconds % 60));
    std::string out(buffer, static_cast<size_t>(n));
    if (micros != 0) {
      std::snprintf(buffer, sizeof(buffer), ".%06lld", static_cast<long long>(micros));
      out += buffer;
    }
    return out;
  }
  // The common case by hand: lookups write one per value (snprintf was most
  // of a large answer's time).
  char text[27] = "0000-00-00 00:00:00.000000";
  auto digits = [&](size_t at, int64_t value, int width) {
    for (int i = width - 1; i >= 0; --i) {
      text[at + static_cast<size_t>(i)] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
  };
  digits(0, year, 4);
  digits(5, month, 2);
  digits(8, day, 2);
  digits(11, seconds / 3600, 2);
  digits(14, seconds / 60 % 60, 2);
  digits(17, seconds % 60, 2);
  if (micros == 0) return std::string(text, 19);
  digits(20, micros, 6);
  return std::string(text, 26);
}

}  // namespace keel
