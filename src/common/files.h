#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace keel {

// Whole-file helpers. Writes are atomic: data goes to a temporary file next to
// the destination, which is renamed over it only when complete, so a reader (or
// a crash) never sees a half-written artefact.

// Reads a whole file. Errors: NotFound if missing, IoError otherwise.
Result<std::string> ReadFileToString(const std::string& path);

// Writes `contents` to `path` atomically (temporary file, fsync, rename).
Status WriteFileAtomically(const std::string& path, std::string_view contents);

// A unique temporary path in the directory of `final_path`, named so that it is
// recognisably keel's (".<name>.keel-tmp-<pid>-<n>").
std::string TemporaryPathFor(const std::string& final_path);

// Renames `temporary_path` over `final_path`. Errors: IoError.
Status CommitTemporaryFile(const std::string& temporary_path, const std::string& final_path);

// Removes a file if it exists; never fails loudly (used on error paths).
void RemoveFileQuietly(const std::string& path);

bool FileExists(const std::string& path);

// The git commit keel was built from, taken at build time (12 hex digits;
// "-dirty" appended when tracked files had uncommitted changes; "unknown"
// outside a checkout).
std::string_view CodeVersion();

}  // namespace keel
