#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace keel {

// 64-bit hash of bytes (XXH3); stable across runs, machines and releases of keel,
// so it may be persisted (definition versions, content hashes).
uint64_t Hash64(std::string_view bytes);

// 128-bit hash of bytes (XXH3-128) as 32 lowercase hex characters; persisted.
std::string HashHex128(std::string_view bytes);

}  // namespace keel
