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

PendingEntry::PendingEntry(PendingEntry&& other) noexcept
    : dir_(std::move(other.dir_)), temporary_(std::move(other.temporary_)), force_(other.force_) {
  other.temporary_.clear();
}

PendingEntry& PendingEntry::operator=(PendingEntry&& other) noexcept {
  if (this != &other) {
    Abandon();
    dir_ = std::move(other.dir_);
    temporary_ = std::move(other.temporary_);
    force_ = other.force_;
    other.temporary_.clear();
  }
  return *this;
}

PendingEntry::~PendingEntry() { Abandon(); }

void PendingEntry::Abandon() {
  if (temporary_.empty()) return;
  std::error_code error;
  fs::remove_all(temporary_, error);
  temporary_.clear();
}

Status PendingEntry::Commit() {
  if (temporary_.empty()) return FailedPrecondition("step cache: " + dir_ + " is not pending");
  std::string temporary = std::move(temporary_);
  temporary_.clear();
  std::error_code error;
  // Another run with the same key may have stored the entry meanwhile: its
  // content is the same (same key), so it stays and readers never miss it.
  if (!force_ && fs::is_directory(dir_, error)) {
    fs::remove_all(temporary, error);
    return Status::Ok();
  }
  // A forced rerun replaces the old entry; rename cannot replace a non-empty folder.
  std::string old = TemporaryPathFor(dir_);
  fs::rename(dir_, old, error);
  error.clear();
  fs::rename(temporary, dir_, error);
  if (error) {
    fs::remove_all(temporary, error);
    return IoError("step cache: cannot move " + temporary + " to " + dir_);
  }
  fs::remove_all(old, error);
  return Status::Ok();
}

Result<PendingEntry> StepCache::Begin(const std::string& step, const std::string& key) const {
  std::string dir = Dir(step, key);
  std::error_code error;
  fs::create_directories(fs::path(dir).parent_path(), error);
  if (error) return IoError("step cache: cannot create " + dir + ": " + error.message());
  std::string temporary = TemporaryPathFor(dir);
  fs::create_directories(temporary, error);
  if (error) return IoError("step cache: cannot create " + temporary + ": " + error.message());
  return PendingEntry(std::move(dir), std::move(temporary), force_);
}

Status StepCache::Store(const std::string& step, const std::string& key,
                        const std::function<Status(const std::string& dir)>& fill) {
  ASSIGN_OR_RETURN(PendingEntry entry, Begin(step, key));
  RETURN_IF_ERROR(fill(entry.dir()));  // on error, `entry` removes its folder
  return entry.Commit();
}

Result<std::string> StepCache::Read(const std::string& step, const std::string& key,
                                    const std::string& name) const {
  std::string path = (fs::path(Dir(step, key)) / name).string();
  if (!FileExists(path)) return NotFound("step cache: no " + path);
  return ReadFileToString(path);
}

}  // namespace keel::train
