#include "common/hash.h"

#include <gtest/gtest.h>

#include <set>

namespace keel {
namespace {

TEST(Hash, IsDeterministicAndHex) {
  std::string a = HashHex128("origin_delay");
  EXPECT_EQ(a, HashHex128("origin_delay"));
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(Hash64("x"), Hash64("x"));
}

// Versions are persisted, so the hash function may never change: pin XXH3's
// published test value for the empty input.
TEST(Hash, MatchesXxh3ReferenceValue) { EXPECT_EQ(Hash64(""), 0x2D06800538D394C2ULL); }

TEST(Hash, DistinguishesNearbyInputs) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(HashHex128("view" + std::to_string(i)));
  EXPECT_EQ(seen.size(), 10000u);
}

}  // namespace
}  // namespace keel
