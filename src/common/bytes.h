#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace keel {

// Little-endian fixed-width encoding, as every keel binary format uses
// (online store values, sketches, exact sums).
inline void PutU8(std::string* out, uint8_t value) { out->push_back(static_cast<char>(value)); }

template <typename T>
void PutLittleEndian(std::string* out, T value) {
  for (size_t byte = 0; byte < sizeof(T); ++byte) {
    out->push_back(static_cast<char>(value >> (8 * byte)));
  }
}
inline void PutU16(std::string* out, uint16_t value) { PutLittleEndian(out, value); }
inline void PutU32(std::string* out, uint32_t value) { PutLittleEndian(out, value); }
inline void PutU64(std::string* out, uint64_t value) { PutLittleEndian(out, value); }
inline void PutI64(std::string* out, int64_t value) { PutU64(out, static_cast<uint64_t>(value)); }
inline void PutF64(std::string* out, double value) { PutU64(out, std::bit_cast<uint64_t>(value)); }
// A u32 length, then the bytes. Precondition: bytes.size() < 2^32.
inline void PutBytes(std::string* out, std::string_view bytes) {
  PutU32(out, static_cast<uint32_t>(bytes.size()));
  out->append(bytes);
}

// Bounds-checked little-endian reads over a byte string; every method returns
// false (leaving the output unspecified) when too few bytes remain.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}

  bool U8(uint8_t* value) { return Fixed(value); }
  bool U16(uint16_t* value) { return Fixed(value); }
  bool U32(uint32_t* value) { return Fixed(value); }
  bool U64(uint64_t* value) { return Fixed(value); }
  bool I64(int64_t* value) {
    uint64_t raw = 0;
    if (!Fixed(&raw)) return false;
    *value = static_cast<int64_t>(raw);
    return true;
  }
  bool F64(double* value) {
    uint64_t raw = 0;
    if (!Fixed(&raw)) return false;
    *value = std::bit_cast<double>(raw);
    return true;
  }
  bool Bytes(size_t length, std::string_view* out) {
    if (remaining() < length) return false;
    *out = bytes_.substr(offset_, length);
    offset_ += length;
    return true;
  }
  // A PutBytes field.
  bool LengthPrefixed(std::string_view* out) {
    uint32_t length = 0;
    return U32(&length) && Bytes(length, out);
  }
  size_t remaining() const { return bytes_.size() - offset_; }
  bool AtEnd() const { return offset_ == bytes_.size(); }

 private:
  template <typename T>
  bool Fixed(T* value) {
    if (remaining() < sizeof(T)) return false;
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(value, bytes_.data() + offset_, sizeof(T));
      offset_ += sizeof(T);
      return true;
    }
    T result = 0;
    for (size_t byte = 0; byte < sizeof(T); ++byte) {
      result |= static_cast<T>(static_cast<T>(static_cast<uint8_t>(bytes_[offset_ + byte]))
                               << (8 * byte));
    }
    offset_ += sizeof(T);
    *value = result;
    return true;
  }

  std::string_view bytes_;
  size_t offset_ = 0;
};

}  // namespace keel
