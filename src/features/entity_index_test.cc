#include "features/entity_index.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace keel::features {
namespace {

using table::Column;
using table::DataType;

// A random key: lengths 0-10 (around the 7-byte short-key cache), a small
// alphabet with '\0' (so "a" and "a\0" are different keys), from `distinct`
// possible keys.
std::string RandomKey(std::mt19937_64& random, size_t distinct) {
  uint64_t pick = random() % distinct;
  std::string key(pick % 11, 'x');
  for (size_t i = 0; i < key.size(); ++i) {
    key[i] = "ab\0c"[(pick >> (2 * i)) % 4];
  }
  return key + std::string(pick / (1 << 22), 'z');  // more keys than 4^10 when asked
}

// Build and Lookup against the definition: ids in order of first appearance,
// kNullKey for nulls, kNoEntity for keys the source does not have. Few keys
// (all cached), many keys (more than the cache takes), short and long ones.
TEST(EntityIndex, StringKeysGetIdsInOrderOfFirstAppearance) {
  std::mt19937_64 random(29);
  for (size_t distinct : {3u, 200u, 40000u}) {
    Column source(DataType::kString, 0);
    for (size_t row = 0; row < 60000; ++row) {
      if (random() % 25 == 0) {
        source.AppendNull();
      } else {
        source.AppendString(RandomKey(random, distinct));
      }
    }
    std::vector<uint32_t> ids;
    Result<EntityIndex> index = EntityIndex::Build({&source}, &ids);
    ASSERT_TRUE(index.ok()) << index.status().message();
    std::map<std::string, uint32_t> expected;
    ASSERT_EQ(ids.size(), source.size());
    for (size_t row = 0; row < source.size(); ++row) {
      if (!source.IsValid(row)) {
        ASSERT_EQ(ids[row], EntityIndex::kNullKey) << row;
        continue;
      }
      auto [it, added] = expected.emplace(std::string(source.StringAt(row)),
                                          static_cast<uint32_t>(expected.size()));
      ASSERT_EQ(ids[row], it->second) << distinct << " row " << row;
    }
    EXPECT_EQ(index->size(), expected.size());

    Column spine(DataType::kString, 0);
    for (size_t row = 0; row < 30000; ++row) {
      if (random() % 30 == 0) {
        spine.AppendNull();
      } else {
        spine.AppendString(RandomKey(random, distinct * 2));  // half unknown
      }
    }
    std::vector<uint32_t> found;
    ASSERT_TRUE(index->Lookup({&spine}, &found).ok());
    for (size_t row = 0; row < spine.size(); ++row) {
      uint32_t want = EntityIndex::kNullKey;
      if (spine.IsValid(row)) {
        auto it = expected.find(std::string(spine.StringAt(row)));
        want = it == expected.end() ? EntityIndex::kNoEntity : it->second;
      }
      ASSERT_EQ(found[row], want) << distinct << " spine row " << row;
    }
  }
}

}  // namespace
}  // namespace keel::features
