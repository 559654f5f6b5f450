#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace keel {

Result<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!FileExists(path)) return NotFound("no such file: " + path);
    return IoError("cannot open " + path + ": " + std::strerror(errno));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return IoError("cannot read " + path);
  return buffer.str();
}

std::string TemporaryPathFor(const std::string& final_path) {
  static std::atomic<int> counter{0};
  std::filesystem::path path(final_path);
  std::string name = "." + path.filename().string() + ".keel-tmp-" + std::to_string(getpid()) +
                     "-" + std::to_string(counter.fetch_add(1));
  return (path.parent_path() / name).string();
}

Status CommitTemporaryFile(const std::string& temporary_path, const std::string& final_path) {
  if (std::rename(temporary_path.c_str(), final_path.c_str()) != 0) {
    Status status = IoError("cannot rename " + temporary_path + " to " + final_path + ": " +
                            std::strerror(errno));
    RemoveFileQuietly(temporary_path);
    return status;
  }
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  std::string temporary = TemporaryPathFor(path);
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot create " + temporary + ": " + std::strerror(errno));
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status status = IoError("cannot write " + temporary + ": " + std::strerror(errno));
      ::close(fd);
      RemoveFileQuietly(temporary);
      return status;
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    RemoveFileQuietly(temporary);
    return IoError("cannot flush " + temporary + ": " + std::strerror(errno));
  }
  return CommitTemporaryFile(temporary, path);
}

void RemoveFileQuietly(const std::string& path) { ::unlink(path.c_str()); }

bool FileExists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

namespace detail {
extern const char kCodeVersion[];  // generated at build time (cmake/code_version.cmake)
}  // namespace detail

std::string_view CodeVersion() { return detail::kCodeVersion; }

}  // namespace keel
