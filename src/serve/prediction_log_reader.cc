// Reading a prediction log: segments in order, frames checked one by one,
// damage skipped and reported (format: prediction_log_format.h).
#include <algorithm>
#include <filesystem>

#include "common/bytes.h"
#include "common/files.h"
#include "common/hash.h"
#include "serve/prediction_log.h"
#include "serve/prediction_log_format.h"

namespace keel::serve {

using log_format::DecodeNames;
using log_format::DecodeRecord;
using log_format::kChecksummedFrom;
using log_format::kFormatVersion;
using log_format::kFrameHeaderBytes;
using log_format::kFrameMarker;
using log_format::kHeaderBytes;
using log_format::kMaxFrameBytes;
using log_format::kNamesFrame;
using log_format::kRecordFrame;
using log_format::kSegmentMagic;
using log_format::NamesList;
using log_format::SegmentTime;

std::string DefaultPredictionLogDir(const std::string& repo_root) {
  return repo_root + "/.keel/predictions";
}

Result<std::vector<std::string>> ListPredictionLogSegments(const std::string& dir) {
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return NotFound("prediction log directory " + dir + " does not exist");
  }
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    std::string name = entry.path().filename().string();
    if (SegmentTime(name)) names.push_back(name);
  }
  if (error) return IoError("listing " + dir + ": " + error.message());
  std::sort(names.begin(), names.end());
  for (std::string& name : names) name = dir + "/" + name;
  return names;
}

namespace {

constexpr size_t kMaxDamageLines = 100;

// The offset of the next possible frame at or after `from`, or bytes.size().
size_t NextMarker(std::string_view bytes, size_t from) {
  std::string marker;
  PutU32(&marker, kFrameMarker);
  size_t found = bytes.find(marker, from);
  return found == std::string_view::npos ? bytes.size() : found;
}

Status ReadSegment(const std::string& path, Timestamp since, Timestamp until,
                   const std::function<Status(const PredictionRecord&)>& visit,
                   PredictionLogReadStats* stats) {
  ASSIGN_OR_RETURN(std::string contents, ReadFileToString(path));
  std::string_view bytes = contents;
  std::string file = std::filesystem::path(path).filename().string();
  auto report = [&](size_t offset, size_t length, const std::string& why) {
    stats->damaged_bytes += static_cast<int64_t>(length);
    ++stats->damaged_stretches;
    if (stats->damage.size() < kMaxDamageLines) {
      stats->damage.push_back(file + ": " + std::to_string(length) + " bytes at offset " +
                              std::to_string(offset) + ": " + why);
    }
  };
  ++stats->segments;
  if (bytes.size() < kHeaderBytes || !bytes.starts_with(kSegmentMagic)) {
    // A crash between creating the file and writing its header leaves it short.
    if (!bytes.empty()) report(0, bytes.size(), "not a prediction log segment (bad header)");
    return Status::Ok();
  }
  uint32_t version = 0;
  ByteReader header(bytes.substr(kSegmentMagic.size(), 4));
  header.U32(&version);
  if (version != kFormatVersion) {
    report(0, bytes.size(), "unknown format version " + std::to_string(version));
    return Status::Ok();
  }
  std::vector<NamesList> names;
  PredictionRecord record;
  size_t offset = kHeaderBytes;
  while (offset < bytes.size()) {
    ByteReader frame(bytes.substr(offset));
    uint32_t marker = 0, length = 0;
    uint64_t checksum = 0;
    uint8_t kind = 0;
    std::string why;
    if (!frame.U32(&marker) || !frame.U64(&checksum) || !frame.U32(&length) || !frame.U8(&kind)) {
      why = "incomplete frame at the end (a crash, or a writer still running)";
    } else if (marker != kFrameMarker) {
      why = "no frame marker";
    } else if (length > kMaxFrameBytes) {
      why = "frame length " + std::to_string(length) + " is implausible";
    } else if (frame.remaining() < length) {
      why = "incomplete frame at the end (a crash, or a writer still running)";
    } else if (Hash64(bytes.substr(offset + kChecksummedFrom,
                                   kFrameHeaderBytes - kChecksummedFrom + length)) != checksum) {
      why = "checksum mismatch";
    }
    if (why.empty()) {
      std::string_view payload = bytes.substr(offset + kFrameHeaderBytes, length);
      if (kind == kNamesFrame) {
        if (!DecodeNames(payload, &names)) why = "malformed feature names";
      } else if (kind == kRecordFrame) {
        if (DecodeRecord(payload, names, &record, &why)) {
          if (record.time >= since && record.time < until) {
            ++stats->records;
            RETURN_IF_ERROR(visit(record));
          } else {
            ++stats->out_of_range;
          }
        }
      } else {
        why = "unknown frame kind " + std::to_string(kind);
      }
      if (why.empty()) {
        offset += kFrameHeaderBytes + length;
        continue;
      }
      // An intact frame with bad contents: skip just this frame.
      report(offset, kFrameHeaderBytes + length, why);
      offset += kFrameHeaderBytes + length;
      continue;
    }
    size_t next = NextMarker(bytes, offset + 1);
    report(offset, next - offset, why);
    offset = next;
  }
  return Status::Ok();
}

}  // namespace

Result<PredictionLogReadStats> ReadPredictionLog(
    const std::string& dir, Timestamp since, Timestamp until,
    const std::function<Status(const PredictionRecord&)>& visit) {
  ASSIGN_OR_RETURN(std::vector<std::string> segments, ListPredictionLogSegments(dir));
  PredictionLogReadStats stats;
  for (const std::string& path : segments) {
    Status status = ReadSegment(path, since, until, visit, &stats);
    if (!status.ok()) return status;
  }
  return stats;
}

}  // namespace keel::serve
