#include "common/hash.h"

// Inlined, so that hashing an 8-byte word compiles to XXH3's short-input
// path (a few multiplies) with no call; the results are XXH3's, unchanged.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cstdio>

namespace keel {

uint64_t Hash64(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

void Hash64EachWord(std::span<const uint64_t> words, uint64_t* hashes) {
  for (size_t index = 0; index < words.size(); ++index) {
    unsigned char bytes[8];
    for (int byte = 0; byte < 8; ++byte)
      bytes[byte] = static_cast<unsigned char>(words[index] >> (8 * byte));
    hashes[index] = XXH3_64bits(bytes, 8);
  }
}

namespace {

std::string Hex128(XXH128_hash_t hash) {
  char buffer[33];
  std::snprintf(buffer, sizeof(buffer), "%016llx%016llx",
                static_cast<unsigned long long>(hash.high64),
                static_cast<unsigned long long>(hash.low64));
  return std::string(buffer, 32);
}

}  // namespace

std::string HashHex128(std::string_view bytes) {
  return Hex128(XXH3_128bits(bytes.data(), bytes.size()));
}

std::string HashHex128(std::span<const std::string_view> parts) {
  XXH3_state_t state;
  XXH3_128bits_reset(&state);
  for (std::string_view part : parts) XXH3_128bits_update(&state, part.data(), part.size());
  return Hex128(XXH3_128bits_digest(&state));
}

}  // namespace keel
