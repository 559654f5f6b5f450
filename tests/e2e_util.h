#pragma once

// Helpers for keel's end-to-end tests: run the real `keel` binary as a
// subprocess, give each test a fresh temporary folder, and compare feature
// columns against an independent reference computed with DuckDB SQL.

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "table/column.h"

namespace keel::e2e {

// Paths fixed by CMake (tests/CMakeLists.txt).
std::string KeelBinary();  // the keel executable under test
std::string SourceDir();   // the repository root
std::string DataDir();     // <root>/.cache/data: the real flight data
std::string FixtureDir();  // <root>/tests/data

// What one run of keel did.
struct CommandResult {
  int exit_code = -1;  // the process's exit status; -1 when killed by a signal
  int signal = 0;      // the signal that ended it, or 0
  bool timed_out = false;
  std::string out;               // stdout
  std::string err;               // stderr
  std::string Describe() const;  // for assertion messages
};

// Runs `keel args...` in `cwd` (empty: the test's own working directory),
// capturing stdout and stderr. The child gets this process's environment
// without any KEEL_* variable, plus `env`. Killed after `timeout_seconds`.
CommandResult RunKeel(const std::vector<std::string>& args, const std::string& cwd = "",
                      const std::vector<std::pair<std::string, std::string>>& env = {},
                      int timeout_seconds = 300);

// The same for any program: argv[0] is its path, the rest its arguments.
CommandResult RunProgram(const std::vector<std::string>& argv, const std::string& cwd = "",
                         const std::vector<std::pair<std::string, std::string>>& env = {},
                         int timeout_seconds = 300);

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it when
// the object goes away. Thread-safety: none needed (one per test).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path() + "/" + relative.
  std::string Path(std::string_view relative) const;

 private:
  std::string path_;
};

// Whole-file helpers; failures abort the test with a fatal gtest failure
// reported at the caller (these are test preconditions, not behaviour).
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, std::string_view contents);
// Copies a folder recursively, leaving out any folder named ".keel" (a
// catalog left behind by someone running the example by hand).
void CopyTree(const std::string& from, const std::string& to);
// Names of the entries of a folder, sorted.
std::vector<std::string> ListDir(const std::string& path);
bool Exists(const std::string& path);

// `text` with the first occurrence of `from` replaced by `to`; adds a test
// failure when `from` does not occur.
std::string ReplaceOnce(const std::string& text, std::string_view from, std::string_view to);
// Replaces the first occurrence of `from` in the file at `path`.
void EditFile(const std::string& path, std::string_view from, std::string_view to);
// 1-based line number of the first occurrence of `needle` in `text`, or 0.
int LineOf(const std::string& text, std::string_view needle);

// One feature to compare: the keel column against the reference column, both
// in the same table. Numbers compare exactly unless `relative_tolerance` > 0,
// strings exactly; nulls must be null on both sides.
struct ColumnCheck {
  std::string keel_column;
  std::string reference_column;
  double relative_tolerance = 0.0;
};

// The outcome of comparing a table column by column.
struct Comparison {
  size_t rows = 0;
  size_t values = 0;       // rows x checks
  size_t mismatches = 0;   // values that differ
  size_t null_values = 0;  // values null on both sides
  std::string examples;    // the first few mismatches, for the failure message
};

// Compares every row of `table` for every check. `label_columns` are printed
// with each mismatch so that a failure can be reproduced.
Comparison CompareColumns(const table::Table& table, const std::vector<ColumnCheck>& checks,
                          const std::vector<std::string>& label_columns);

// Bit-for-bit equality of one row of two columns of the same type (doubles by
// their bytes, nulls equal to nulls).
bool SameValueBits(const table::Column& a, size_t a_row, const table::Column& b, size_t b_row);

// A `keel args...` child process running in `repo`, with this process's
// environment less any KEEL_* variable; stdin is /dev/null, stderr goes to a
// log file (Log()). Killed with SIGKILL when destroyed if still running.
class KeelProcess {
 public:
  KeelProcess(const std::string& repo, const std::vector<std::string>& args);
  virtual ~KeelProcess();
  KeelProcess(const KeelProcess&) = delete;
  KeelProcess& operator=(const KeelProcess&) = delete;

  pid_t pid() const { return pid_; }
  std::string Log() const;
  // Sends `signal` and waits for the exit. Returns the exit code, or -1 when
  // the process was killed by a signal or did not exit in time.
  int Stop(int signal, int timeout_seconds = 30);
  // Waits for the exit (SIGKILL after `timeout_seconds`); the exit code or -1.
  int Wait(int timeout_seconds);
  // Whether the child exited within `timeout_seconds` (0: just look).
  bool Exited(int timeout_seconds);
  int exit_code() const { return exit_code_; }

 private:
  TempDir logs_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

// `keel serve --port 0 args...`; the constructor waits until it reports the
// port it chose (a test failure when it does not within a minute).
class ServeProcess : public KeelProcess {
 public:
  ServeProcess(const std::string& repo, const std::vector<std::string>& args);
  int port() const { return port_; }
  int Stop(int signal = SIGTERM, int timeout_seconds = 30) {
    return KeelProcess::Stop(signal, timeout_seconds);
  }

 private:
  int port_ = -1;
};

}  // namespace keel::e2e
