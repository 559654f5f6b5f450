#include "features/exact_sum.h"

#include <bit>
#include <cmath>
#include <cstring>

namespace keel::features {
namespace {

constexpr int kChunks = ExactSum::kChunks;
constexpr int64_t kChunkBase = int64_t{1} << 32;
constexpr int64_t kHalfChunkBase = int64_t{1} << 31;
constexpr int64_t kLow32Mask = kChunkBase - 1;
constexpr uint64_t kSignBit = uint64_t{1} << 63;
constexpr uint64_t kInfinityBits = 0x7FF0000000000000;
// Bound on the top chunk when it is the carry chunk (index kChunks - 1), which
// no piece reaches directly: keeps later carries far from int64 overflow.
constexpr int64_t kMaxCarryChunk = int64_t{1} << 62;

// Writes the canonical form of source chunks [*lowest, *highest] to chunks
// (which may be the same array; it must hold zero for a chunk above the range):
// chunks below the top in [0, 2^32), the top one a signed 32-bit digit (wider
// only as the carry chunk), no redundant top chunk, the lowest one non-zero;
// an empty range [kChunks, -1] for zero. Equal values have equal canonical
// forms, which makes encodings and comparisons exact.
void NormalizeChunks(const int64_t* source, int64_t* chunks, int* lowest_ptr, int* highest_ptr) {
  int lowest = *lowest_ptr;
  int highest = *highest_ptr;
  if (highest < 0) return;
  // Arithmetic shifts floor, so every chunk below the top ends in [0, 2^32).
  int64_t carry = 0;
  for (int i = lowest; i < highest; ++i) {
    const int64_t chunk = source[i] + carry;
    chunks[i] = chunk & kLow32Mask;
    carry = chunk >> 32;
  }
  chunks[highest] = source[highest] + carry;
  // Grow the top until it fits a signed 32-bit digit (one step at most, as
  // |top| < 2^63).
  while (highest < kChunks - 1 &&
         (chunks[highest] < -kHalfChunkBase || chunks[highest] >= kHalfChunkBase)) {
    const int64_t carry = chunks[highest] >> 32;
    chunks[highest] &= kLow32Mask;
    chunks[++highest] += carry;
  }
  // Shrink it while the digit below can take over as the signed top.
  while (highest > lowest) {
    if (chunks[highest] == 0 && chunks[highest - 1] < kHalfChunkBase) {
      --highest;
    } else if (chunks[highest] == -1 && chunks[highest - 1] >= kHalfChunkBase) {
      chunks[highest] = 0;
      chunks[--highest] -= kChunkBase;
    } else {
      break;
    }
  }
  while (lowest <= highest && chunks[lowest] == 0) ++lowest;
  if (lowest > highest) {
    lowest = kChunks;
    highest = -1;
  }
  *lowest_ptr = lowest;
  *highest_ptr = highest;
}

// Turns a canonical non-zero range into the base-2^32 digits of its absolute
// value, in place, and drops zero top digits. Returns whether it was negative.
bool ToMagnitude(int64_t* chunks, int lowest, int* highest) {
  const bool negative = chunks[*highest] < 0;
  if (negative) {
    // -V = ~V + 1, where the +1 ripples through the zero chunks below `lowest`
    // and arrives there as a carry.
    int64_t carry = 1;
    for (int i = lowest; i < *highest; ++i) {
      const int64_t sum = (kLow32Mask - chunks[i]) + carry;
      chunks[i] = sum & kLow32Mask;
      carry = sum >> 32;
    }
    chunks[*highest] = -(chunks[*highest] + 1) + carry;
  }
  while (chunks[*highest] == 0) --*highest;  // stops: the lowest digit is non-zero
  return negative;
}

// Rounds magnitude digits [lowest, highest] (times 2^-1074) to the nearest
// double, ties to even, and returns its bit pattern. With x = M * 2^(s - 1074),
// M in [2^52, 2^53), the pattern of x is (s << 52) + M; the same holds for
// subnormals with s = 0 and M < 2^52. So a round-up is just +1 on the pattern,
// which carries into the exponent when the mantissa overflows.
uint64_t RoundMagnitude(const int64_t* chunks, int lowest, int highest) {
  const auto digit = [&](int index) -> uint64_t {
    return index >= lowest && index <= highest ? static_cast<uint64_t>(chunks[index]) : 0;
  };
  const int top_width = std::bit_width(digit(highest));
  const int64_t bit_length = int64_t{32} * highest + top_width;
  if (bit_length <= 53) return (digit(1) << 32) | digit(0);  // exact: the pattern is the integer
  const int64_t shift = bit_length - 53;
  if (shift >= 2047) return kInfinityBits;
  // The top three digits hold at least 65 bits: the 53 kept and the round bit.
  const unsigned __int128 window = (static_cast<unsigned __int128>(digit(highest)) << 64) |
                                   (static_cast<unsigned __int128>(digit(highest - 1)) << 32) |
                                   digit(highest - 2);
  const int window_shift = top_width + 64 - 53;
  const uint64_t mantissa = static_cast<uint64_t>(window >> window_shift);
  const bool round_bit = ((window >> (window_shift - 1)) & 1) != 0;
  bool sticky = (window & ((static_cast<unsigned __int128>(1) << (window_shift - 1)) - 1)) != 0;
  for (int index = lowest; !sticky && index < highest - 2; ++index) sticky = chunks[index] != 0;
  uint64_t bits = (static_cast<uint64_t>(shift) << 52) + mantissa;
  if (round_bit && (sticky || (mantissa & 1) != 0)) ++bits;
  return bits >= kInfinityBits ? kInfinityBits : bits;
}

// The double nearest to a canonical range; consumes (overwrites) the range.
double RoundCanonical(int64_t* chunks, int lowest, int highest) {
  if (highest < 0) return 0.0;
  const bool negative = ToMagnitude(chunks, lowest, &highest);
  const uint64_t bits = RoundMagnitude(chunks, lowest, highest);
  return std::bit_cast<double>(negative ? bits | kSignBit : bits);
}

void PutU8(std::string* out, uint8_t value) { out->push_back(static_cast<char>(value)); }

void PutU32(std::string* out, uint32_t value) {
  for (int byte = 0; byte < 4; ++byte) out->push_back(static_cast<char>(value >> (8 * byte)));
}

void PutU64(std::string* out, uint64_t value) {
  for (int byte = 0; byte < 8; ++byte) out->push_back(static_cast<char>(value >> (8 * byte)));
}

uint64_t GetLittleEndian(std::string_view bytes, size_t offset, int width) {
  if constexpr (std::endian::native == std::endian::little) {
    if (width == 4) {
      uint32_t value;
      std::memcpy(&value, bytes.data() + offset, 4);
      return value;
    }
    if (width == 8) {
      uint64_t value;
      std::memcpy(&value, bytes.data() + offset, 8);
      return value;
    }
  }
  uint64_t value = 0;
  for (int byte = 0; byte < width; ++byte) {
    value |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[offset + byte])) << (8 * byte);
  }
  return value;
}

}  // namespace

void ExactSum::Normalize() {
  NormalizeChunks(chunks_.data(), chunks_.data(), &lowest_, &highest_);
  pending_ops_ = 0;
}

bool ExactSum::CopyCanonical(Chunks* out, int* lowest, int* highest) const {
  if (highest_ < 0) return false;
  // Fixed-count loops: the compiler keeps them inline instead of calling memset.
  for (int pad = 1; pad <= 3; ++pad) {
    if (lowest_ - pad >= 0) (*out)[lowest_ - pad] = 0;
    if (highest_ + pad < kChunks) (*out)[highest_ + pad] = 0;
  }
  *lowest = lowest_;
  *highest = highest_;
  if (pending_ops_ == 0) {
    for (int i = lowest_; i <= highest_; ++i) (*out)[i] = chunks_[i];
  } else {
    NormalizeChunks(chunks_.data(), out->data(), lowest, highest);
  }
  return *highest >= 0;
}

void ExactSum::Merge(const ExactSum& other) {
  if (other.highest_ < 0) return;
  if (this == &other) {
    const ExactSum copy = other;
    Merge(copy);
    return;
  }
  if (other.pending_ops_ >= kMaxPendingOps / 2) {
    ExactSum normalized = other;
    normalized.Normalize();
    Merge(normalized);
    return;
  }
  if (pending_ops_ + other.pending_ops_ + 1 > kMaxPendingOps) Normalize();
  for (int i = other.lowest_; i <= other.highest_; ++i) chunks_[i] += other.chunks_[i];
  lowest_ = std::min(lowest_, other.lowest_);
  highest_ = std::max(highest_, other.highest_);
  // Each chunk is now below (pending + 1 + other pending + 1) * 2^32.
  pending_ops_ += other.pending_ops_ + 1;
}

void ExactSum::Clear() {
  for (int i = lowest_; i <= highest_; ++i) chunks_[i] = 0;
  pending_ops_ = 0;
  lowest_ = kChunks;
  highest_ = -1;
}

bool ExactSum::IsZero() const {
  Chunks canonical;
  int lowest, highest;
  return !CopyCanonical(&canonical, &lowest, &highest);
}

double ExactSum::Value() const {
  Chunks work;
  int lowest, highest;
  if (!CopyCanonical(&work, &lowest, &highest)) return 0.0;
  return RoundCanonical(work.data(), lowest, highest);
}

DoubleDouble ExactSum::ValueDoubleDouble() const {
  Chunks work;
  int lowest, highest;
  if (!CopyCanonical(&work, &lowest, &highest)) return {};
  // hi = RN(|S|); the rest |S| - hi is computed exactly in the same chunks.
  const bool negative = ToMagnitude(work.data(), lowest, &highest);
  const double hi = std::bit_cast<double>(RoundMagnitude(work.data(), lowest, highest));
  if (std::isinf(hi)) return {negative ? -hi : hi, 0.0};
  // hi's pieces lie within three chunks of |S|'s top: inside the zero padding.
  const int chunk = exact_sum_internal::AddPieces(work.data(), hi, /*negate=*/1);
  lowest = std::min(lowest, chunk);
  highest = std::max(highest, chunk + 2);
  NormalizeChunks(work.data(), work.data(), &lowest, &highest);
  const double lo = RoundCanonical(work.data(), lowest, highest);
  if (!negative) return {hi, lo};
  return {-hi, lo == 0.0 ? 0.0 : -lo};
}

bool ExactSum::operator==(const ExactSum& other) const {
  Chunks mine, theirs;
  int my_lowest, my_highest, their_lowest, their_highest;
  const bool my_nonzero = CopyCanonical(&mine, &my_lowest, &my_highest);
  const bool their_nonzero = other.CopyCanonical(&theirs, &their_lowest, &their_highest);
  if (!my_nonzero || !their_nonzero) return my_nonzero == their_nonzero;
  if (my_lowest != their_lowest || my_highest != their_highest) return false;
  for (int i = my_lowest; i <= my_highest; ++i) {
    if (mine[i] != theirs[i]) return false;
  }
  return true;
}

// Format: u8 lowest chunk, u8 number of chunks n (0 for a zero sum, with lowest
// 0), then the n - 1 lower chunks as u32 and the signed top chunk as i64, all
// little-endian.
void ExactSum::AppendEncoded(std::string* out) const {
  Chunks chunks;
  int lowest, highest;
  if (!CopyCanonical(&chunks, &lowest, &highest)) {
    PutU8(out, 0);
    PutU8(out, 0);
    return;
  }
  PutU8(out, static_cast<uint8_t>(lowest));
  PutU8(out, static_cast<uint8_t>(highest - lowest + 1));
  for (int i = lowest; i < highest; ++i) PutU32(out, static_cast<uint32_t>(chunks[i]));
  PutU64(out, static_cast<uint64_t>(chunks[highest]));
}

Result<ExactSum> ExactSum::Decode(std::string_view bytes) {
  if (bytes.size() < 2) return InvalidArgument("exact sum encoding: truncated header");
  const int lowest = static_cast<uint8_t>(bytes[0]);
  const int count = static_cast<uint8_t>(bytes[1]);
  ExactSum sum;
  if (count == 0) {
    if (lowest != 0 || bytes.size() != 2) {
      return InvalidArgument("exact sum encoding: malformed zero");
    }
    return sum;
  }
  if (lowest + count > kChunks) {
    return InvalidArgument("exact sum encoding: chunk range out of bounds");
  }
  const size_t expected = 2 + 4 * static_cast<size_t>(count - 1) + 8;
  if (bytes.size() != expected) {
    return InvalidArgument("exact sum encoding: expected " + std::to_string(expected) +
                           " bytes, got " + std::to_string(bytes.size()));
  }
  const int highest = lowest + count - 1;
  for (int i = lowest; i < highest; ++i) {
    sum.chunks_[i] = static_cast<int64_t>(GetLittleEndian(bytes, 2 + 4 * (i - lowest), 4));
  }
  const int64_t top = static_cast<int64_t>(GetLittleEndian(bytes, expected - 8, 8));
  if (top < -kMaxCarryChunk || top > kMaxCarryChunk) {
    return InvalidArgument("exact sum encoding: top chunk out of range");
  }
  sum.chunks_[highest] = top;
  sum.lowest_ = lowest;
  sum.highest_ = highest;
  // Canonical bytes only, so that equal sums always have equal encodings.
  ExactSum canonical = sum;
  canonical.Normalize();
  if (canonical.lowest_ != lowest || canonical.highest_ != highest ||
      canonical.chunks_ != sum.chunks_) {
    return InvalidArgument("exact sum encoding: not in canonical form");
  }
  return sum;
}

Status ExactSum::MergeEncoded(std::string_view bytes) {
  if (bytes.size() < 2) return InvalidArgument("exact sum encoding: truncated header");
  const int lowest = static_cast<uint8_t>(bytes[0]);
  const int count = static_cast<uint8_t>(bytes[1]);
  if (count == 0) {
    if (lowest != 0 || bytes.size() != 2) {
      return InvalidArgument("exact sum encoding: malformed zero");
    }
    return Status::Ok();
  }
  if (lowest + count > kChunks) {
    return InvalidArgument("exact sum encoding: chunk range out of bounds");
  }
  const size_t expected = 2 + 4 * static_cast<size_t>(count - 1) + 8;
  if (bytes.size() != expected) {
    return InvalidArgument("exact sum encoding: expected " + std::to_string(expected) +
                           " bytes, got " + std::to_string(bytes.size()));
  }
  const int64_t top = static_cast<int64_t>(GetLittleEndian(bytes, expected - 8, 8));
  if (top < -kMaxCarryChunk || top > kMaxCarryChunk) {
    return InvalidArgument("exact sum encoding: top chunk out of range");
  }
  constexpr int64_t kChunkLimit = int64_t{1} << 32;
  if (top <= -kChunkLimit || top >= kChunkLimit) {
    // A carry chunk beyond the usual bound (sums near the top of the range):
    // take the careful path, which normalises before adding.
    ASSIGN_OR_RETURN(ExactSum decoded, Decode(bytes));
    Merge(decoded);
    return Status::Ok();
  }
  // Every added chunk is below 2^32 in magnitude: one operation's worth.
  if (pending_ops_ + 2 > kMaxPendingOps) Normalize();
  const int highest = lowest + count - 1;
  for (int i = lowest; i < highest; ++i) {
    chunks_[i] += static_cast<int64_t>(GetLittleEndian(bytes, 2 + 4 * (i - lowest), 4));
  }
  chunks_[highest] += top;
  lowest_ = std::min(lowest_, lowest);
  highest_ = std::max(highest_, highest);
  pending_ops_ += 1;
  return Status::Ok();
}

}  // namespace keel::features
