#include "serve/prediction_log_format.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "common/bytes.h"
#include "common/hash.h"

namespace keel::serve::log_format {
namespace {

constexpr std::string_view kSegmentPrefix = "predictions-";
constexpr std::string_view kSegmentSuffix = ".klog";

// Starts a frame of `kind` at the end of `out`; FinishFrame fills in its
// length and checksum once the payload is appended.
size_t BeginFrame(std::string* out, uint8_t kind) {
  size_t start = out->size();
  PutU32(out, kFrameMarker);
  PutU64(out, 0);
  PutU32(out, 0);
  PutU8(out, kind);
  return start;
}

void FinishFrame(std::string* out, size_t start) {
  uint32_t length = static_cast<uint32_t>(out->size() - start - kFrameHeaderBytes);
  std::string encoded;
  PutU32(&encoded, length);
  std::memcpy(out->data() + start + kChecksummedFrom, encoded.data(), 4);
  uint64_t checksum = Hash64(std::string_view(*out).substr(start + kChecksummedFrom));
  encoded.clear();
  PutU64(&encoded, checksum);
  std::memcpy(out->data() + start + 4, encoded.data(), 8);
}

}  // namespace

std::string SegmentName(Timestamp created) {
  Timestamp second = FloorToHop(created, kMicrosPerSecond);
  // FormatTimestamp of a whole second is "YYYY-MM-DD HH:MM:SS".
  std::string compact;
  for (char c : FormatTimestamp(second)) {
    if (c != '-' && c != ':') compact += c == ' ' ? 'T' : c;
  }
  char micros[16];
  std::snprintf(micros, sizeof(micros), ".%06" PRId64 "Z", created - second);
  return std::string(kSegmentPrefix) + compact + micros + std::string(kSegmentSuffix);
}

std::optional<Timestamp> SegmentTime(std::string_view file_name) {
  if (!file_name.starts_with(kSegmentPrefix) || !file_name.ends_with(kSegmentSuffix)) {
    return std::nullopt;
  }
  std::string_view stamp = file_name.substr(
      kSegmentPrefix.size(), file_name.size() - kSegmentPrefix.size() - kSegmentSuffix.size());
  // YYYYMMDDTHHMMSS.ffffffZ
  if (stamp.size() != 23 || stamp[8] != 'T' || stamp[15] != '.' || stamp[22] != 'Z') {
    return std::nullopt;
  }
  std::string iso = std::string(stamp.substr(0, 4)) + "-" + std::string(stamp.substr(4, 2)) + "-" +
                    std::string(stamp.substr(6, 2)) + "T" + std::string(stamp.substr(9, 2)) + ":" +
                    std::string(stamp.substr(11, 2)) + ":" + std::string(stamp.substr(13, 2)) +
                    std::string(stamp.substr(15, 7)) + "Z";
  Result<Timestamp> parsed = ParseTimestamp(iso);
  if (!parsed.ok()) return std::nullopt;
  return *parsed;
}

std::string SegmentHeader() {
  std::string header(kSegmentMagic);
  PutU32(&header, kFormatVersion);
  return header;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string joined;
  for (const std::string& name : names) PutBytes(&joined, name);
  return joined;
}

void AppendNamesFrame(std::string* out, uint32_t id, uint32_t count, std::string_view joined) {
  size_t start = BeginFrame(out, kNamesFrame);
  PutU32(out, id);
  PutU32(out, count);
  out->append(joined);
  FinishFrame(out, start);
}

void AppendRecordFrame(std::string* out, const PredictionRecord& record, uint32_t names_id) {
  size_t start = BeginFrame(out, kRecordFrame);
  PutBytes(out, record.request_id);
  PutI64(out, record.time);
  PutBytes(out, record.model);
  PutI64(out, record.version);
  PutBytes(out, record.variant);
  PutBytes(out, record.entity_keys_json);
  PutU32(out, names_id);
  PutU32(out, static_cast<uint32_t>(record.features.size()));
  for (double value : record.features) PutF64(out, value);
  PutF64(out, record.output);
  PutI64(out, record.latency_us);
  PutBytes(out, record.fallback);
  FinishFrame(out, start);
}

bool DecodeNames(std::string_view payload, std::vector<NamesList>* names) {
  ByteReader reader(payload);
  uint32_t id = 0, count = 0;
  if (!reader.U32(&id) || !reader.U32(&count) || reader.remaining() / 4 < count) return false;
  // Ids are dense from 0 in a segment; a huge one is damage that passed the checksum.
  if (id > names->size() + 1'000'000) return false;
  auto list = std::make_shared<std::vector<std::string>>();
  list->reserve(count);
  for (uint32_t index = 0; index < count; ++index) {
    std::string_view name;
    if (!reader.LengthPrefixed(&name)) return false;
    list->emplace_back(name);
  }
  if (!reader.AtEnd()) return false;
  if (names->size() <= id) names->resize(id + 1);
  (*names)[id] = std::move(list);
  return true;
}

bool DecodeRecord(std::string_view payload, const std::vector<NamesList>& names,
                  PredictionRecord* record, std::string* why) {
  ByteReader reader(payload);
  std::string_view request_id, model, variant, entity_keys, fallback;
  uint32_t names_id = 0, count = 0;
  if (!reader.LengthPrefixed(&request_id) || !reader.I64(&record->time) ||
      !reader.LengthPrefixed(&model) || !reader.I64(&record->version) ||
      !reader.LengthPrefixed(&variant) || !reader.LengthPrefixed(&entity_keys) ||
      !reader.U32(&names_id) || !reader.U32(&count) || reader.remaining() / 8 < count) {
    *why = "malformed record";
    return false;
  }
  record->features.resize(count);
  for (double& value : record->features) reader.F64(&value);
  if (!reader.F64(&record->output) || !reader.I64(&record->latency_us) ||
      !reader.LengthPrefixed(&fallback) || !reader.AtEnd()) {
    *why = "malformed record";
    return false;
  }
  if (names_id == kNoNames) {
    record->feature_names = nullptr;
  } else if (names_id >= names.size() || !names[names_id] || names[names_id]->size() != count) {
    *why = "record refers to undefined feature names " + std::to_string(names_id);
    return false;
  } else {
    record->feature_names = names[names_id];
  }
  record->request_id.assign(request_id);
  record->model.assign(model);
  record->variant.assign(variant);
  record->entity_keys_json.assign(entity_keys);
  record->fallback.assign(fallback);
  return true;
}

}  // namespace keel::serve::log_format
