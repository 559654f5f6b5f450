#include "train/bundle.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "common/files.h"
#include "common/hash.h"

namespace keel::train {
namespace {

namespace fs = std::filesystem;

constexpr const char* kManifest = "manifest.json";
constexpr const char* kHashFile = "bundle.hash";
constexpr const char* kArchiveMagic = "keel-bundle 1\n";

bool IsPlainName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name == kManifest || name == kHashFile) {
    return false;
  }
  return name.find('/') == std::string::npos && name.find('\n') == std::string::npos &&
         name.find(' ') == std::string::npos;
}

Status WriteFile(const fs::path& path, const std::string& bytes) {
  return WriteFileAtomically(path.string(), bytes);
}

// Writes `files` (name -> bytes) into a fresh temporary sibling of `dir`, then
// renames it into place.
Status WriteDirectory(const std::string& dir, const std::map<std::string, std::string>& files) {
  std::error_code error;
  if (fs::exists(dir, error)) return AlreadyExists("bundle folder " + dir + " already exists");
  fs::path temporary = TemporaryPathFor(dir);
  fs::remove_all(temporary, error);
  if (!fs::create_directories(temporary, error)) {
    return IoError("cannot create " + temporary.string() + ": " + error.message());
  }
  for (const auto& [name, bytes] : files) {
    Status status = WriteFile(temporary / name, bytes);
    if (!status.ok()) {
      fs::remove_all(temporary, error);
      return status;
    }
  }
  fs::rename(temporary, dir, error);
  if (error) {
    fs::remove_all(temporary, error);
    return IoError("cannot move the bundle into " + dir + ": " + error.message());
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> WriteBundle(const std::string& dir, nlohmann::json manifest,
                                const std::vector<BundleFile>& files) {
  if (!manifest.is_object()) return InvalidArgument("bundle manifest: expected an object");
  if (manifest.contains("files")) return InvalidArgument("bundle manifest: 'files' is reserved");
  std::map<std::string, std::string> contents;
  nlohmann::json checksums = nlohmann::json::object();
  for (const BundleFile& file : files) {
    if (!IsPlainName(file.name))
      return InvalidArgument("bundle: bad file name '" + file.name + "'");
    if (!contents.emplace(file.name, file.bytes).second) {
      return InvalidArgument("bundle: file '" + file.name + "' given twice");
    }
    checksums[file.name] = {{"xxh128", HashHex128(file.bytes)}, {"bytes", file.bytes.size()}};
  }
  manifest["files"] = checksums;
  // nlohmann::json objects are sorted by key, so dump() is canonical.
  std::string manifest_bytes = manifest.dump(2) + "\n";
  std::string hash = HashHex128(manifest_bytes);
  contents[kManifest] = manifest_bytes;
  contents[kHashFile] = hash + "\n";
  RETURN_IF_ERROR(WriteDirectory(dir, contents));
  return hash;
}

Result<BundleInfo> VerifyBundle(const std::string& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) return NotFound("no bundle at " + dir);
  std::string where = "bundle " + dir + ": ";
  fs::path root(dir);
  if (!FileExists((root / kManifest).string())) return NotFound(where + "no manifest.json");
  if (!FileExists((root / kHashFile).string())) return NotFound(where + "no bundle.hash");
  ASSIGN_OR_RETURN(std::string manifest_bytes, ReadFileToString((root / kManifest).string()));
  ASSIGN_OR_RETURN(std::string hash_line, ReadFileToString((root / kHashFile).string()));
  BundleInfo info;
  info.dir = dir;
  info.hash = HashHex128(manifest_bytes);
  if (hash_line != info.hash + "\n") {
    return FailedPrecondition(where + "bundle hash mismatch: manifest.json was changed");
  }
  info.manifest = nlohmann::json::parse(manifest_bytes, nullptr, false);
  if (info.manifest.is_discarded() || !info.manifest.is_object() ||
      !info.manifest.contains("files") || !info.manifest["files"].is_object()) {
    return FailedPrecondition(where + "manifest.json is not a bundle manifest");
  }
  const nlohmann::json& files = info.manifest["files"];
  for (const auto& [name, entry] : files.items()) {
    fs::path path = root / name;
    if (!IsPlainName(name)) return FailedPrecondition(where + "bad file name '" + name + "'");
    if (!FileExists(path.string())) return NotFound(where + "missing file " + name);
    ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path.string()));
    if (!entry.is_object() || entry.value("bytes", uint64_t{0}) != bytes.size() ||
        entry.value("xxh128", std::string()) != HashHex128(bytes)) {
      return FailedPrecondition(where + "checksum mismatch in " + name);
    }
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(root, error)) {
    std::string name = entry.path().filename().string();
    if (name == kManifest || name == kHashFile) continue;
    if (!files.contains(name)) return FailedPrecondition(where + "unlisted file " + name);
  }
  if (error) return IoError(where + error.message());
  return info;
}

Result<std::string> ReadBundleFile(const BundleInfo& bundle, const std::string& name) {
  if (!bundle.manifest["files"].contains(name)) {
    return NotFound("bundle " + bundle.dir + ": no file " + name);
  }
  ASSIGN_OR_RETURN(std::string bytes, ReadFileToString((fs::path(bundle.dir) / name).string()));
  if (HashHex128(bytes) != bundle.manifest["files"][name].value("xxh128", std::string())) {
    return FailedPrecondition("bundle " + bundle.dir + ": checksum mismatch in " + name);
  }
  return bytes;
}

Status ExportBundle(const std::string& dir, const std::string& archive) {
  ASSIGN_OR_RETURN(BundleInfo info, VerifyBundle(dir));
  std::vector<std::string> names = {kManifest, kHashFile};
  for (const auto& item : info.manifest["files"].items()) names.push_back(item.key());
  std::sort(names.begin(), names.end());
  std::string out = kArchiveMagic;
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(std::string bytes, ReadFileToString((fs::path(dir) / name).string()));
    out += name + " " + std::to_string(bytes.size()) + "\n";
    out += bytes;
  }
  return WriteFileAtomically(archive, out);
}

Result<BundleInfo> ImportBundle(const std::string& archive, const std::string& dir) {
  if (!FileExists(archive)) return NotFound("no such bundle archive: " + archive);
  ASSIGN_OR_RETURN(std::string data, ReadFileToString(archive));
  std::string magic = kArchiveMagic;
  auto bad = [&](size_t offset, const std::string& why) {
    return InvalidArgument(archive + ": not a keel bundle archive at byte " +
                           std::to_string(offset) + ": " + why);
  };
  if (data.compare(0, magic.size(), magic) != 0) return bad(0, "bad header");
  std::map<std::string, std::string> files;
  size_t offset = magic.size();
  while (offset < data.size()) {
    size_t newline = data.find('\n', offset);
    if (newline == std::string::npos) return bad(offset, "truncated file header");
    std::string header = data.substr(offset, newline - offset);
    size_t space = header.rfind(' ');
    if (space == std::string::npos) return bad(offset, "bad file header");
    std::string name = header.substr(0, space);
    size_t size = 0;
    try {
      size = std::stoull(header.substr(space + 1));
    } catch (const std::exception&) {
      return bad(offset, "bad file size");
    }
    if (name != kManifest && name != kHashFile && !IsPlainName(name)) {
      return bad(offset, "bad file name '" + name + "'");
    }
    offset = newline + 1;
    if (size > data.size() - offset) return bad(offset, "truncated file " + name);
    if (!files.emplace(name, data.substr(offset, size)).second) {
      return bad(offset, "file " + name + " twice");
    }
    offset += size;
  }
  RETURN_IF_ERROR(WriteDirectory(dir, files));
  Result<BundleInfo> info = VerifyBundle(dir);
  if (!info.ok()) {
    std::error_code error;
    fs::remove_all(dir, error);
  }
  return info;
}

}  // namespace keel::train
