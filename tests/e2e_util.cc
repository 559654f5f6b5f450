#include "e2e_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

extern char** environ;

namespace keel::e2e {
namespace fs = std::filesystem;

std::string KeelBinary() { return KEEL_BINARY; }
std::string SourceDir() { return KEEL_SOURCE_DIR; }
std::string DataDir() { return std::string(KEEL_SOURCE_DIR) + "/.cache/data"; }
std::string FixtureDir() { return std::string(KEEL_SOURCE_DIR) + "/tests/data"; }

std::string CommandResult::Describe() const {
  std::string text = "exit code " + std::to_string(exit_code);
  if (signal != 0) text += ", killed by signal " + std::to_string(signal);
  if (timed_out) text += " (timed out)";
  return text + "\n--- stdout ---\n" + out + "--- stderr ---\n" + err;
}

namespace {

// `keel args...` as a child's argv.
std::vector<std::string> KeelArgv(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {KeelBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// This process's environment without KEEL_* variables, plus `extra`.
std::vector<std::string> ChildEnvironment(
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env;
  for (char** item = environ; *item != nullptr; ++item) {
    if (std::strncmp(*item, "KEEL_", 5) != 0) env.emplace_back(*item);
  }
  for (const auto& [name, value] : extra) env.push_back(name + "=" + value);
  return env;
}

// A null-terminated pointer array over `strings` (which must outlive it).
std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Reads both pipes until the child closes them (or the deadline passes), so a
// chatty child never blocks on a full pipe.
void DrainPipes(int out_fd, int err_fd, std::chrono::steady_clock::time_point deadline,
                CommandResult* result) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&result->out, &result->err};
  int open_fds = 2;
  char buffer[65536];
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      result->timed_out = true;
      return;
    }
    int ready = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (ready < 0 && errno != EINTR) return;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
}

}  // namespace

CommandResult RunKeel(const std::vector<std::string>& args, const std::string& cwd,
                      const std::vector<std::pair<std::string, std::string>>& env,
                      int timeout_seconds) {
  return RunProgram(KeelArgv(args), cwd, env, timeout_seconds);
}

CommandResult RunProgram(const std::vector<std::string>& argv_in, const std::string& cwd,
                         const std::vector<std::pair<std::string, std::string>>& env,
                         int timeout_seconds) {
  CommandResult result;
  std::vector<std::string> argv_storage = argv_in;
  std::vector<char*> argv = Pointers(argv_storage);
  std::vector<std::string> env_storage = ChildEnvironment(env);
  std::vector<char*> envp = Pointers(env_storage);

  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  pid_t pid = -1;
  int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (spawned != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ADD_FAILURE() << "cannot start " << argv[0] << ": " << std::strerror(spawned);
    return result;
  }
  DrainPipes(out_pipe[0], err_pipe[0],
             std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds), &result);
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  if (result.timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/keel-e2e-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << pattern << ": " << std::strerror(errno);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code error;
  fs::remove_all(path_, error);
}

std::string TempDir::Path(std::string_view relative) const {
  return path_ + "/" + std::string(relative);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteFile(const std::string& path, std::string_view contents) {
  std::error_code error;
  fs::create_directories(fs::path(path).parent_path(), error);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  EXPECT_TRUE(out.good()) << "cannot write " << path;
}

void CopyTree(const std::string& from, const std::string& to) {
  std::error_code error;
  fs::create_directories(to, error);
  ASSERT_FALSE(error) << "mkdir " << to << ": " << error.message();
  for (const fs::directory_entry& entry : fs::directory_iterator(from)) {
    std::string name = entry.path().filename().string();
    std::string target = to + "/" + name;
    if (entry.is_directory()) {
      if (name == ".keel") continue;
      CopyTree(entry.path().string(), target);
    } else {
      fs::copy_file(entry.path(), target, fs::copy_options::overwrite_existing, error);
      ASSERT_FALSE(error) << "copy " << entry.path() << ": " << error.message();
    }
  }
}

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(path, error)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool Exists(const std::string& path) {
  std::error_code error;
  return fs::exists(fs::symlink_status(path, error));
}

std::string ReplaceOnce(const std::string& text, std::string_view from, std::string_view to) {
  size_t at = text.find(from);
  if (at == std::string::npos) {
    ADD_FAILURE() << "fixture does not contain '" << from << "'";
    return text;
  }
  return text.substr(0, at) + std::string(to) + text.substr(at + from.size());
}

void EditFile(const std::string& path, std::string_view from, std::string_view to) {
  WriteFile(path, ReplaceOnce(ReadFile(path), from, to));
}

int LineOf(const std::string& text, std::string_view needle) {
  size_t at = text.find(needle);
  if (at == std::string::npos) return 0;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
}

namespace {

bool ValuesMatch(const table::Column& a, const table::Column& b, size_t row, double tolerance) {
  if (a.IsValid(row) != b.IsValid(row)) return false;
  if (!a.IsValid(row)) return true;
  if (a.type() == table::DataType::kString || b.type() == table::DataType::kString) {
    return a.type() == b.type() && a.StringAt(row) == b.StringAt(row);
  }
  double x = a.NumericAt(row);
  double y = b.NumericAt(row);
  if (tolerance <= 0) return x == y;
  return std::fabs(x - y) <= tolerance * std::max({1.0, std::fabs(x), std::fabs(y)});
}

}  // namespace

Comparison CompareColumns(const table::Table& table, const std::vector<ColumnCheck>& checks,
                          const std::vector<std::string>& label_columns) {
  Comparison comparison;
  comparison.rows = table.num_rows();
  int reported = 0;
  for (const ColumnCheck& check : checks) {
    int keel_idx = table.FindColumn(check.keel_column);
    int reference_idx = table.FindColumn(check.reference_column);
    if (keel_idx < 0 || reference_idx < 0) {
      ADD_FAILURE() << "no column " << (keel_idx < 0 ? check.keel_column : check.reference_column)
                    << " in " << table.SchemaToString();
      comparison.mismatches += table.num_rows();
      continue;
    }
    const table::Column& keel = table.column(static_cast<size_t>(keel_idx));
    const table::Column& reference = table.column(static_cast<size_t>(reference_idx));
    for (size_t row = 0; row < table.num_rows(); ++row) {
      ++comparison.values;
      if (!keel.IsValid(row) && !reference.IsValid(row)) ++comparison.null_values;
      if (ValuesMatch(keel, reference, row, check.relative_tolerance)) continue;
      ++comparison.mismatches;
      if (reported++ >= 10) continue;
      comparison.examples += "  " + check.keel_column + ": keel " + keel.ValueToString(row) +
                             ", reference " + reference.ValueToString(row) + " at";
      for (const std::string& label : label_columns) {
        int label_idx = table.FindColumn(label);
        if (label_idx < 0) continue;
        comparison.examples +=
            " " + label + "=" + table.column(static_cast<size_t>(label_idx)).ValueToString(row);
      }
      comparison.examples += "\n";
    }
  }
  return comparison;
}

bool SameValueBits(const table::Column& a, size_t a_row, const table::Column& b, size_t b_row) {
  if (a.type() != b.type() || a.IsValid(a_row) != b.IsValid(b_row)) return false;
  if (!a.IsValid(a_row)) return true;
  switch (a.type()) {
    case table::DataType::kDouble:
      return std::memcmp(&a.doubles()[a_row], &b.doubles()[b_row], sizeof(double)) == 0;
    case table::DataType::kString:
      return a.StringAt(a_row) == b.StringAt(b_row);
    case table::DataType::kBool:
      return a.bools()[a_row] == b.bools()[b_row];
    case table::DataType::kInt64:
    case table::DataType::kTimestamp:
      return a.ints()[a_row] == b.ints()[b_row];
  }
  return false;
}

KeelProcess::KeelProcess(const std::string& repo, const std::vector<std::string>& args) {
  log_path_ = logs_.Path("keel.err");
  std::vector<std::string> argv_storage = KeelArgv(args);
  std::vector<char*> argv = Pointers(argv_storage);
  std::vector<std::string> env_storage = ChildEnvironment({});
  std::vector<char*> envp = Pointers(env_storage);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, logs_.Path("keel.out").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addchdir_np(&actions, repo.c_str());
  int spawned = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    ADD_FAILURE() << "cannot start keel " << (args.empty() ? "" : args[0]) << ": "
                  << std::strerror(spawned);
    pid_ = -1;
  }
}

KeelProcess::~KeelProcess() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    Exited(30);
  }
}

std::string KeelProcess::Log() const {
  return Exists(log_path_) ? ReadFile(log_path_) : std::string();
}

int KeelProcess::Stop(int signal, int timeout_seconds) {
  if (pid_ <= 0) return -1;
  if (!exited_) ::kill(pid_, signal);
  return Wait(timeout_seconds);
}

int KeelProcess::Wait(int timeout_seconds) {
  if (pid_ <= 0) return -1;
  if (!Exited(timeout_seconds)) {
    ::kill(pid_, SIGKILL);
    Exited(30);
    return -1;
  }
  return exit_code_;
}

bool KeelProcess::Exited(int timeout_seconds) {
  if (pid_ <= 0 || exited_) return true;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (true) {
    int status = 0;
    pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exited_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

ServeProcess::ServeProcess(const std::string& repo, const std::vector<std::string>& args)
    : KeelProcess(repo, [&] {
        std::vector<std::string> all = {"serve", "--port", "0"};
        all.insert(all.end(), args.begin(), args.end());
        return all;
      }()) {
  if (pid() <= 0) return;
  std::regex listening(R"(listening on 127\.0\.0\.1:(\d+))");
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
       std::chrono::steady_clock::now() < deadline;) {
    std::smatch match;
    std::string log = Log();
    if (std::regex_search(log, match, listening)) {
      port_ = std::stoi(match[1]);
      return;
    }
    if (Exited(0)) {
      ADD_FAILURE() << "keel serve exited early (" << exit_code() << "):\n" << log;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "keel serve did not report a port:\n" << Log();
}

}  // namespace keel::e2e
