// The predict body's two parsers (predict_request.h): wherever the fast one
// accepts a body, it fills the request exactly as the general one does; the
// usual bodies take the fast one; everything else gets the general one's
// answer. Checked on a corpus and on thousands of random mutations of it.
#include "serve/predict_request.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>

namespace keel::serve {
namespace {

const std::vector<std::string> kCorpus = {
    R"({"rows":[{"origin":"SFO","destination":"LAX","date":"2001-06-15 08:00:00","distance":337}],"at":"2001-06-15 06:00:00"})",
    R"( { "rows" : [ { "origin" : "SFO" , "distance" : -12 } , { "origin" : null } ] } )",
    R"({"rows":[{"a":1},{"a":2.5},{"b":true},{"b":false,"c":"x"}],"request_id":"r-1","deadline_ms":0})",
    R"({"rows":[{"a":1e3,"b":-0.0,"c":1E-2,"d":123456789012345678}],"deadline_ms":60000,"at":null})",
    R"({"rows":[{}],"request_id":null,"deadline_ms":null})",
    R"({"rows":[{"a":null},{"a":null}]})",
    R"({"rows":[{"a":"x"},{"a":1}]})",
    R"({"rows":[{"a":true},{"a":1}]})",
    R"({"rows":[{"a":[1]}]})",
    R"({"rows":[{"a":{"b":1}}]})",
    R"({"rows":[{"a":"\u00e9"}]})",
    R"({"rows":[{"a":"caf\u00e9 \"q\""}]})",
    "{\"rows\":[{\"a\":\"caf\xc3\xa9\"}]}",
    R"({"rows":[{"a":1,"a":2}]})",
    R"({"rows":[{"a":9223372036854775807},{"a":-9223372036854775808}]})",
    R"({"rows":[{"a":9223372036854775808}]})",
    R"({"rows":[{"a":-0}]})",
    R"({"rows":[{"a":1e400}]})",
    R"({"rows":[{"a":01}]})",
    R"({"rows":[]})",
    R"({"rows":[{"a":1}],"rows":[{"a":2}]})",
    R"({"rows":[{"a":1}],"extra":1})",
    R"({"columns":{"a":[1,2]}})",
    R"({"rows":[{"a":1}]} x)",
    R"({"rows":[{"a":1}],"at":"yesterday"})",
    R"({"rows":[{"a":1}],"at":5})",
    R"({"rows":[{"a":1}],"request_id":""})",
    R"({"rows":[{"a":1}],"deadline_ms":-1})",
    R"({"rows":[{"a":1}],"deadline_ms":1.5})",
    R"({"rows":[{"a":1}],"deadline_ms":60001})",
    R"({"rows":[{"a":1},{"a":2},{"a":3},{"a":4},{"a":5}]})",
    R"([1,2])",
    R"({})",
    "",
};

// Equal requests (the wall clock "at" of two calls to within a minute).
void ExpectSame(const PredictRequest& fast, const PredictRequest& general,
                const std::string& body) {
  SCOPED_TRACE(body);
  ASSERT_EQ(fast.rows.num_columns(), general.rows.num_columns());
  ASSERT_EQ(fast.rows.num_rows(), general.rows.num_rows());
  for (size_t col = 0; col < fast.rows.num_columns(); ++col) {
    ASSERT_EQ(fast.rows.fields()[col].name, general.rows.fields()[col].name);
    ASSERT_EQ(fast.rows.fields()[col].type, general.rows.fields()[col].type);
    const table::Column& a = fast.rows.column(col);
    const table::Column& b = general.rows.column(col);
    for (size_t row = 0; row < a.size(); ++row) {
      ASSERT_EQ(a.IsValid(row), b.IsValid(row));
      if (!a.IsValid(row)) continue;
      if (a.type() == table::DataType::kString) {
        ASSERT_EQ(a.StringAt(row), b.StringAt(row));
      } else if (a.type() == table::DataType::kDouble) {
        double x = a.doubles()[row], y = b.doubles()[row];
        ASSERT_EQ(std::memcmp(&x, &y, sizeof(double)), 0) << x << " vs " << y;
      } else {
        ASSERT_EQ(a.NumericAt(row), b.NumericAt(row));
        if (a.type() == table::DataType::kInt64) {
          ASSERT_EQ(a.ints()[row], b.ints()[row]);
        }
      }
    }
  }
  ASSERT_EQ(fast.row_json, general.row_json);
  ASSERT_LE(std::llabs(fast.at - general.at), 60 * kMicrosPerSecond);
  ASSERT_EQ(fast.request_id, general.request_id);
  ASSERT_EQ(fast.deadline_ms, general.deadline_ms);
}

// Both parsers on `body`: returns whether the fast one took it.
bool Differential(const std::string& body, const PredictOptions& options) {
  PredictRequest fast, general, combined;
  bool took = ParsePredictBodyFast(body, options, &fast);
  Reply answer = ParsePredictBodyGeneral(body, options, &general);
  Reply combined_answer = ParsePredictBody(body, options, &combined);
  EXPECT_EQ(combined_answer.http_status, answer.http_status) << body;
  EXPECT_EQ(combined_answer.body, answer.body) << body;
  if (took) {
    EXPECT_EQ(answer.http_status, 200) << body << ": " << answer.body;
    if (answer.http_status == 200) ExpectSame(fast, general, body);
  }
  if (answer.http_status == 200) ExpectSame(combined, general, body);
  return took;
}

TEST(PredictRequestParsers, FastEqualsGeneralOnTheCorpus) {
  PredictOptions options;
  options.max_rows = 4;
  size_t took = 0;
  for (const std::string& body : kCorpus) took += Differential(body, options);
  EXPECT_GE(took, 6u);
  // The usual body takes the fast parser.
  PredictRequest request;
  EXPECT_TRUE(ParsePredictBodyFast(kCorpus[0], options, &request));
  EXPECT_EQ(request.rows.num_rows(), 1u);
  EXPECT_EQ(request.row_json[0],
            R"({"origin":"SFO","destination":"LAX","date":"2001-06-15 08:00:00","distance":337})");
  // Many columns: the general parser's (it indexes them).
  std::string wide = "{\"rows\":[{";
  for (int i = 0; i < 100; ++i)
    wide += (i ? ",\"c" : "\"c") + std::to_string(i) + "\":" + std::to_string(i);
  wide += "}]}";
  EXPECT_FALSE(ParsePredictBodyFast(wide, options, &request));
  EXPECT_EQ(Differential(wide, options), false);
  // More rows than allowed: the general parser's 413.
  EXPECT_FALSE(ParsePredictBodyFast(kCorpus[30], options, &request));
}

TEST(PredictRequestParsers, FastEqualsGeneralOnRandomMutations) {
  PredictOptions options;
  options.max_rows = 8;
  std::mt19937_64 random(7);
  const std::string alphabet = "{}[]\":,. -+0123456789eEtruefalsn\\abxyz\t";
  size_t took = 0, total = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string body = kCorpus[random() % 6];
    int edits = 1 + static_cast<int>(random() % 3);
    for (int edit = 0; edit < edits; ++edit) {
      size_t at = body.empty() ? 0 : random() % body.size();
      char c = alphabet[random() % alphabet.size()];
      switch (random() % 3) {
        case 0:
          if (!body.empty()) body[at] = c;
          break;
        case 1:
          body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        default:
          if (!body.empty()) body.erase(at, 1);
      }
    }
    took += Differential(body, options);
    ++total;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(took, total / 20);  // many mutations are still usual bodies
}

}  // namespace
}  // namespace keel::serve
