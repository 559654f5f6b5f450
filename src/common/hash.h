#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace keel {

// 64-bit hash of bytes (XXH3); stable across runs, machines and releases of keel,
// so it may be persisted (definition versions, content hashes).
uint64_t Hash64(std::string_view bytes);

// hashes[i] = Hash64 of the 8 little-endian bytes of words[i], for every i
// (the same values, without a call per word). `hashes` has words.size() room.
void Hash64EachWord(std::span<const uint64_t> words, uint64_t* hashes);

// 128-bit hash of bytes (XXH3-128) as 32 lowercase hex characters; persisted.
std::string HashHex128(std::string_view bytes);
// HashHex128 of the concatenation of `parts`, without building it.
std::string HashHex128(std::span<const std::string_view> parts);

}  // namespace keel
