#pragma once

// The JSON of online lookups, shared by `keel serve` and `keel features get
// --json` so that both answer byte for byte the same: entity columns from a
// request, and the column-oriented answers (keel's and Feast's).
//
// The answers are written straight into one string (no JSON tree per value):
// numbers in their shortest exact spelling (doubles always with a '.' or an
// exponent, so they stay doubles for the reader), non-finite doubles as null,
// strings escaped with invalid UTF-8 replaced by U+FFFD.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "features/online.h"
#include "table/column.h"

namespace keel::serve {

// Entity key columns from Feast's request shape: {"key": [v1, v2, ...], ...};
// columns in the request's order; strings make string columns, integers int64
// columns, null a null key. Errors: InvalidArgument naming the field
// ("entities.user_id[2]: expected an integer, got 1.5"): not an object, ragged
// columns, mixed or unsupported value types, no rows.
Result<table::Table> EntitiesFromJson(const nlohmann::ordered_json& entities);

// A JSON value for an error message: a scalar as JSON (cut after 60
// characters), "an array" or "an object" (never dumped: a client's nesting
// can be deep enough to exhaust the stack of a recursive writer).
std::string DescribeJson(const nlohmann::ordered_json& value);

// The "at" field of a request (keel's replay time): `now` when absent or
// null. Errors: InvalidArgument "at: ..." for a value that is not a time string.
Result<Timestamp> RequestTime(const nlohmann::ordered_json& body, Timestamp now);

// Appends `text` as a JSON string literal (quotes included).
void AppendJsonString(std::string_view text, std::string* out);

// Appends row `row` of `column` as a JSON value: null, true/false, an integer
// (int64 and timestamp columns; timestamps as microseconds), a double or a string.
void AppendJsonValue(const table::Column& column, size_t row, std::string* out);

// "2024-03-03T12:00:00Z", with 3 or 6 fractional digits when needed: how
// protobuf's JSON mapping spells a google.protobuf.Timestamp, as Feast answers.
std::string FormatRfc3339(Timestamp ts);

// keel's lookup answer (POST /v1/features, `keel features get --json`):
//   {"metadata":{"feature_names":[...]},"results":[{"values":[...],
//    "statuses":[...],"event_timestamps":[...]},...]}
// results[i] is feature_names[i]; values[j] is entity j. Names are
// "<prefix>__<feature>" as training sets name them; event times as
// FormatTimestamp ("2024-03-03 12:00:00"), null when there is none.
std::string FeaturesJson(const features::OnlineFeatures& features, size_t rows);

// Feast's answer (POST /get-online-features), as its Python feature server
// writes GetOnlineFeaturesResponse (MessageToDict of the proto, with Feast's
// JSON patches for Value and FeatureList): the same shape, but the request's
// entity columns come first (status PRESENT, or NULL_VALUE for a null key;
// event time "1970-01-01T00:00:00Z"), features are named by `feature_names`
// (the caller picks "<view>__<feature>" or "<feature>"), and every event time
// is an RFC 3339 string, "1970-01-01T00:00:00Z" when there is none (the
// proto's default Timestamp). Precondition: feature_names.size() ==
// features.names.size().
std::string FeastFeaturesJson(const table::Table& entities,
                              const features::OnlineFeatures& features,
                              const std::vector<std::string>& feature_names);

// {"error":"<message>"}.
std::string ErrorJson(std::string_view message);

}  // namespace keel::serve
