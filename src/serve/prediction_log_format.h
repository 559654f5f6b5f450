#pragma once

// The bytes of a prediction log segment, shared by its writer
// (prediction_log.cc) and reader (prediction_log_reader.cc). Internal to the
// serve layer: other code goes through prediction_log.h.
//
// A segment, all integers little-endian:
//   header: "KEELPLOG" | u32 format version
//   frames: u32 kFrameMarker | u64 Hash64(rest) | rest = u32 payload length | u8 kind | payload
// A names frame's payload: u32 id | u32 count | count x (u32 length | bytes).
// A record frame's payload: request_id | i64 time | model | i64 version | variant |
//   entity_keys_json | u32 names id (kNoNames: none) | u32 count | count x f64 |
//   f64 output | i64 latency_us | fallback, where strings are u32 length | bytes.
// The marker lets a reader find the next frame after damage; the checksum
// tells a whole frame from a torn or garbled one.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.h"
#include "serve/prediction_log.h"

namespace keel::serve::log_format {

inline constexpr std::string_view kSegmentMagic = "KEELPLOG";
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderBytes = 12;
inline constexpr uint32_t kFrameMarker = 0x474C504B;  // "KPLG"
inline constexpr size_t kFrameHeaderBytes = 4 + 8 + 4 + 1;
// Offset in a frame of the bytes its checksum covers (length, kind, payload).
inline constexpr size_t kChecksummedFrom = 12;
inline constexpr uint8_t kNamesFrame = 1;
inline constexpr uint8_t kRecordFrame = 2;
inline constexpr uint32_t kNoNames = 0xFFFFFFFFu;
// Larger lengths are damage, not frames (a garbled length must not make the
// reader swallow the rest of the file as one frame).
inline constexpr uint32_t kMaxFrameBytes = 64u << 20;

using NamesList = std::shared_ptr<const std::vector<std::string>>;

// "predictions-20240105T103000.000001Z.klog": fixed width, so names sort by time.
std::string SegmentName(Timestamp created);
// The creation time in a segment file name; nullopt for any other name.
std::optional<Timestamp> SegmentTime(std::string_view file_name);

// The segment header.
std::string SegmentHeader();

// `names` as a names payload wants them (each u32 length | bytes), also the
// input of the writer's content hash.
std::string JoinNames(const std::vector<std::string>& names);

// Appends a whole names frame defining `id` as the `count` names in `joined`.
void AppendNamesFrame(std::string* out, uint32_t id, uint32_t count, std::string_view joined);
// Appends a whole record frame; `names_id` is kNoNames when it has no names.
void AppendRecordFrame(std::string* out, const PredictionRecord& record, uint32_t names_id);

// Decodes a names payload into (*names)[id]. False when malformed.
bool DecodeNames(std::string_view payload, std::vector<NamesList>* names);
// Decodes a record payload, its names taken from `names`. False (with the
// reason in `why`) when malformed or its names were never defined.
bool DecodeRecord(std::string_view payload, const std::vector<NamesList>& names,
                  PredictionRecord* record, std::string* why);

}  // namespace keel::serve::log_format
