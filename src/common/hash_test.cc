#include "common/hash.h"

#include <gtest/gtest.h>

#include <set>
#include <string_view>
#include <vector>

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

TEST(Hash, EachWordIsHash64OfItsLittleEndianBytes) {
  std::vector<uint64_t> words = {0, 1, 0x7ff8000000000000ULL, ~uint64_t{0}};
  for (uint64_t i = 0; i < 1000; ++i) words.push_back(i * 0x9e3779b97f4a7c15ULL);
  std::vector<uint64_t> hashes(words.size());
  Hash64EachWord(words, hashes.data());
  for (size_t index = 0; index < words.size(); ++index) {
    char bytes[8];
    for (int byte = 0; byte < 8; ++byte)
      bytes[byte] = static_cast<char>(words[index] >> (8 * byte));
    EXPECT_EQ(hashes[index], Hash64(std::string_view(bytes, 8))) << words[index];
  }
}

TEST(Hash, DistinguishesNearbyInputs) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(HashHex128("view" + std::to_string(i)));
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(Hash, PartsHashAsTheirConcatenation) {
  std::string bytes;
  for (size_t i = 0; i < 3000000; ++i) bytes.push_back(static_cast<char>(i * 7919 % 251));
  // Cut points around XXH3's short-input, stripe and block sizes.
  const std::vector<std::vector<size_t>> cuts = {
      {},     {0},          {1},           {16, 17},         {128, 129, 240, 241},
      {1024}, {1025, 1026}, {1000000, 64}, {3000000 - 1, 1}, {5, 2999990}};
  for (const std::vector<size_t>& sizes : cuts) {
    std::vector<std::string_view> parts;
    size_t offset = 0;
    for (size_t size : sizes) {
      parts.push_back(std::string_view(bytes).substr(offset, size));
      offset += size;
    }
    const std::string_view whole = std::string_view(bytes).substr(0, offset);
    EXPECT_EQ(HashHex128(parts), HashHex128(whole)) << offset;
    parts.push_back(std::string_view(bytes).substr(offset));
    EXPECT_EQ(HashHex128(parts), HashHex128(bytes)) << offset;
  }
}

}  // namespace
}  // namespace keel
