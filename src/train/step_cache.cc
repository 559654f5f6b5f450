#include "train/step_cache.h"

#include <filesystem>

#include "common/files.h"
#include "common/hash.h"

namespace keel::train {

namespace fs = std::filesystem;

namespace {

// The commit is recorded when CMake configures, so a rebuilt keel may carry
// the same commit with different code; the executable's own bytes tell them apart.
const std::string& ExecutableHash() {
  static const std::string hash = [] {
    Result<std::string> bytes = ReadFileToString("/proc/self/exe");
    return bytes.ok() ? HashHex128(*bytes) : std::string("unknown");
  }();
  return hash;
}

}  // namespace

std::string StepKey(const std::string& step, const std::string& parent_key,
                    const std::string& parameters) {
  std::string text = step + "\n" + std::string(CodeVersion()) + "\n" + ExecutableHash() + "\n" +
                     parent_key + "\n" + std::to_string(parameters.size()) + "\n" + parameters;
  return HashHex128(text);
}

std::string StepCache::Dir(const std::string& step, const std::string& key) const {
  return (fs::path(root_) / step / key).string();
}

bool StepCache::Has(const std::string& step, const std::string& key) const {
  std::error_code error;
  return !force_ && fs::is_directory(Dir(step, key), error);
}

Status StepCache::Store(const std::string& step, const std::string& key,
                        const std::function<Status(const std::string& dir)>& fill) {
  std::string dir = Dir(step, key);
  std::error_code error;
  fs::create_directories(fs::path(dir).parent_path(), error);
  if (error) return IoError("step cache: cannot create " + dir + ": " + error.message());
  std::string temporary = TemporaryPathFor(dir);
  fs::create_directories(temporary, error);
  if (error) return IoError("step cache: cannot create " + temporary + ": " + error.message());
  Status status = fill(temporary);
  if (!status.ok()) {
    fs::remove_all(temporary, error);
    return status;
  }
  // Another run with the same key may have stored the entry meanwhile: its
  // content is the same (same key), so it stays and readers never miss it.
  if (!force_ && fs::is_directory(dir, error)) {
    fs::remove_all(temporary, error);
    return Status::Ok();
  }
  // A forced rerun replaces the old entry; rename cannot replace a non-empty folder.
  std::string old = TemporaryPathFor(dir);
  fs::rename(dir, old, error);
  error.clear();
  fs::rename(temporary, dir, error);
  if (error) {
    fs::remove_all(temporary, error);
    return IoError("step cache: cannot move " + temporary + " to " + dir);
  }
  fs::remove_all(old, error);
  return Status::Ok();
}

Result<std::string> StepCache::Read(const std::string& step, const std::string& key,
                                    const std::string& name) const {
  std::string path = (fs::path(Dir(step, key)) / name).string();
  if (!FileExists(path)) return NotFound("step cache: no " + path);
  return ReadFileToString(path);
}

}  // namespace keel::train
