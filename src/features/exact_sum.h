#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace keel::features {

// An unevaluated sum hi + lo with |lo| <= ulp(hi) / 2: the exact value rounded
// to about 106 bits. Produced canonically (hi = RN(S), lo = RN(S - hi)).
struct DoubleDouble {
  double hi = 0.0;
  double lo = 0.0;
};

// The exact sum of a multiset of finite doubles, kept as fixed-point integer
// chunks (a "small superaccumulator"): Add, Remove and Merge are exact, so the
// state, and therefore Value(), depend only on the multiset of values added and
// not on the order or grouping in which they were added, removed or merged.
// This is what makes offline backfill (a sliding window that adds and removes
// rows) and online serving (hop buckets merged at read time) produce
// bit-identical feature values.
//
// Representation: chunk i holds a signed integer count of 2^(32 i - 1074); a
// double is split into three 32-bit pieces added to three adjacent chunks.
// Carries are propagated (normalisation) every 2^20 operations, so Add and
// Remove are a few instructions and never loop over the chunks; reads
// normalise a copy of the occupied chunks only. Zero values, +0.0 and -0.0
// alike, add nothing; a sum that is exactly zero reads as +0.0.
//
// Limits: inputs must be finite (callers turn NaN/inf into nulls first). The
// sum itself may exceed the double range (Value() is then +-inf), but its
// magnitude must stay below about 2^1100 (some 2^76 values of DBL_MAX).
// Thread-safety: a value type; no internal synchronisation. Const methods do
// not modify the object, so concurrent const calls are safe.
class ExactSum {
 public:
  // Adds / removes one value. Precondition: std::isfinite(x). Removing a value
  // that was never added is allowed: the sum simply goes down by it.
  void Add(double x) { Accumulate(x, 0); }
  void Remove(double x) { Accumulate(x, 1); }
  // Adds every value that `other` holds.
  void Merge(const ExactSum& other);
  void Clear();
  bool IsZero() const;

  // The exact sum correctly rounded to the nearest double (ties to even),
  // subnormal results included; +-inf when the sum lies beyond the double range.
  double Value() const;
  // The exact sum as a canonical double-double: hi = Value(), lo = the rest
  // rounded to nearest (lo = 0 when hi is infinite).
  DoubleDouble ValueDoubleDouble() const;

  // Compact, deterministic binary encoding (only the occupied chunks of the
  // normalised form), for the online store: equal sums give equal bytes. The
  // bytes fill the whole view given to Decode. Decode errors: InvalidArgument
  // on malformed or non-canonical bytes (it never crashes on any input).
  void AppendEncoded(std::string* out) const;
  static Result<ExactSum> Decode(std::string_view bytes);
  // Merge(Decode(bytes)) without building the decoded sum (the online read
  // path merges many encoded buckets). Accepts any well-formed encoding whose
  // chunks are in range, canonical or not: the result is the exact sum either
  // way. Errors: InvalidArgument as Decode (leaving this sum unchanged).
  Status MergeEncoded(std::string_view bytes);

  bool operator==(const ExactSum& other) const;  // same exact value

  // Number of 32-bit chunks covering the whole double range plus carries.
  static constexpr int kChunks = 67;

 private:
  using Chunks = std::array<int64_t, kChunks>;

  // A normalised chunk is below 2^32 in magnitude and an operation adds less
  // than 2^32 to a chunk, so up to 2^30 operations could not overflow an int64.
  // Normalising more often costs nothing measurable and re-tightens the
  // occupied range after extreme values have left a sliding window.
  static constexpr int64_t kMaxPendingOps = int64_t{1} << 20;

  // Adds x (negate = 0) or -x (negate = 1).
  void Accumulate(double x, uint64_t negate);
  void Normalize();  // propagates carries; value-preserving
  // Copies the occupied chunks to *out, with three zero chunks on either side,
  // and brings the copy to the canonical form (see the .cc). Returns false, and
  // leaves *out untouched, when the sum is zero.
  bool CopyCanonical(Chunks* out, int* lowest, int* highest) const;

  Chunks chunks_{};          // zero outside [lowest_, highest_]
  int64_t pending_ops_ = 0;  // operations since the last normalisation
  int lowest_ = kChunks;     // occupied chunk range [lowest_, highest_]
  int highest_ = -1;
};

namespace exact_sum_internal {

// Adds the three 32-bit pieces of x (negate = 0) or -x (negate = 1), a finite
// non-zero double, to chunks[c], chunks[c + 1] and chunks[c + 2]; returns c.
inline int AddPieces(int64_t* chunks, double x, uint64_t negate) {
  const uint64_t bits = std::bit_cast<uint64_t>(x);
  // x = +-mantissa * 2^(position - 1074), position in [0, 2045].
  const uint64_t biased_exponent = (bits >> 52) & 0x7FF;
  const uint64_t is_normal = biased_exponent != 0;
  const uint64_t mantissa = (bits & ((uint64_t{1} << 52) - 1)) | (is_normal << 52);
  const int position = static_cast<int>(biased_exponent - is_normal);
  const int chunk = position >> 5;
  const int shift = position & 31;
  // mantissa << shift has at most 84 bits: three 32-bit pieces.
  constexpr uint64_t kLow32 = 0xFFFFFFFF;
  const int64_t piece0 = static_cast<int64_t>((mantissa << shift) & kLow32);
  const int64_t piece1 = static_cast<int64_t>((mantissa >> (32 - shift)) & kLow32);
  const int64_t piece2 = static_cast<int64_t>((mantissa >> 32) >> (32 - shift));
  // sign = 0 to add, -1 to subtract: (p ^ sign) - sign is p or -p.
  const int64_t sign = -static_cast<int64_t>((bits >> 63) ^ negate);
  chunks[chunk] += (piece0 ^ sign) - sign;
  chunks[chunk + 1] += (piece1 ^ sign) - sign;
  chunks[chunk + 2] += (piece2 ^ sign) - sign;
  return chunk;
}

}  // namespace exact_sum_internal

inline void ExactSum::Accumulate(double x, uint64_t negate) {
  if ((std::bit_cast<uint64_t>(x) << 1) == 0) return;  // +-0 adds nothing; keeps the range tight
  if (pending_ops_ >= kMaxPendingOps) Normalize();
  ++pending_ops_;
  const int chunk = exact_sum_internal::AddPieces(chunks_.data(), x, negate);
  lowest_ = std::min(lowest_, chunk);
  highest_ = std::max(highest_, chunk + 2);
}

}  // namespace keel::features
