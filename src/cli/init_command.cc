#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/commands.h"
#include "common/files.h"
#include "common/time.h"

namespace keel::cli {
namespace {

constexpr const char* kKeelYaml = R"(# keel feature repository
project: rides
definitions: [features.yaml]
# Everything below defaults to files under .keel/ in this folder.
catalog: .keel/catalog.db
online:
  type: rocksdb
  path: .keel/online
registry:
  type: sqlite
  path: .keel/registry.db
)";

constexpr const char* kFeaturesYaml = R"(entities:
  - name: driver
    keys: {driver_id: int64}

sources:
  - name: trips
    path: data/trips.csv
    timestamp: ts
  - name: drivers
    path: data/drivers.csv
    timestamp: signed_up

window_views:
  - name: driver_activity
    entity: driver
    source: trips
    keys: [driver_id]
    features:
      - {name: trips, aggregation: count, windows: [1h, 24h]}
      - {name: mean_fare, aggregation: mean, expression: fare, windows: [24h, 7d]}
      - {name: long_trip_share, aggregation: mean, expression: "distance_km > 10", windows: [7d]}
      - {name: max_fare, aggregation: max, expression: fare, windows: [24h]}

snapshot_views:
  - name: driver_profile
    entity: driver
    source: drivers
    features: [city, {name: vehicle_age, expression: "2024 - vehicle_year"}]

feature_services:
  - name: trip_model
    features:
      - driver_activity
      - driver_profile
)";

// A deterministic generator, so every `keel init` writes the same data.
struct Lcg {
  uint64_t state;
  uint64_t Next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  }
};

std::string TripsCsv() {
  Lcg random{42};
  std::string csv = "ts,driver_id,fare,distance_km\n";
  Timestamp start = ParseTimestamp("2024-03-01").value();
  Timestamp ts = start;
  for (int trip = 0; trip < 5000; ++trip) {
    ts += static_cast<Timestamp>(random.Next() % 600) * kMicrosPerSecond;
    int driver = static_cast<int>(random.Next() % 50) + 1;
    double distance = 0.5 + static_cast<double>(random.Next() % 300) / 10.0;
    double fare = 3.0 + distance * 1.7 + static_cast<double>(random.Next() % 100) / 20.0;
    char line[128];
    std::snprintf(line, sizeof(line), "%s,%d,%.2f,%.1f\n", FormatTimestamp(ts).c_str(), driver,
                  fare, distance);
    csv += line;
  }
  return csv;
}

std::string DriversCsv() {
  static const char* kCities[] = {"Lisbon", "Porto", "Braga", "Faro"};
  Lcg random{7};
  std::string csv = "driver_id,signed_up,city,vehicle_year\n";
  for (int driver = 1; driver <= 50; ++driver) {
    char line[128];
    std::snprintf(line, sizeof(line), "%d,2024-0%d-1%d 00:00:00,%s,%d\n", driver,
                  1 + static_cast<int>(random.Next() % 3), static_cast<int>(random.Next() % 9),
                  kCities[random.Next() % 4], 2010 + static_cast<int>(random.Next() % 14));
    csv += line;
  }
  return csv;
}

}  // namespace

Status RunInit(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (fs::exists(dir, error) && !fs::is_empty(dir, error)) {
    return InvalidArgument("init: " + dir + " exists and is not empty");
  }
  fs::create_directories(fs::path(dir) / "data", error);
  if (error) return IoError("init: cannot create " + dir + ": " + error.message());
  RETURN_IF_ERROR(WriteFileAtomically((fs::path(dir) / "keel.yaml").string(), kKeelYaml));
  RETURN_IF_ERROR(WriteFileAtomically((fs::path(dir) / "features.yaml").string(), kFeaturesYaml));
  RETURN_IF_ERROR(WriteFileAtomically((fs::path(dir) / "data/trips.csv").string(), TripsCsv()));
  RETURN_IF_ERROR(WriteFileAtomically((fs::path(dir) / "data/drivers.csv").string(), DriversCsv()));
  std::printf(
      "wrote an example repository to %s. Next:\n"
      "  cd %s\n"
      "  keel apply\n"
      "  keel features list\n"
      "  keel dataset build --spine trips --service trip_model --out training.parquet\n",
      dir.c_str(), dir.c_str());
  return Status::Ok();
}

}  // namespace keel::cli
