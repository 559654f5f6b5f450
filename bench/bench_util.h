#pragma once

// Small helpers shared by the side-by-side benchmark programs in bench/:
// command-line flags, wall-clock timers, the one-line JSON report every
// program prints for bench/run, and table projection for output files.

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "table/column.h"

namespace keel::bench {

// "--name value" pairs and bare "--flag"s after a leading mode word.
// Thread-safety: a value type.
class Flags {
 public:
  // Errors: InvalidArgument for an argument that is not "--name".
  static Result<Flags> Parse(int argc, char** argv);

  const std::string& mode() const { return mode_; }
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  // The value of --name, or `fallback` when absent.
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  // Errors: InvalidArgument naming the missing flag.
  Result<std::string> Require(const std::string& name) const;

 private:
  std::string mode_;
  std::map<std::string, std::string> values_;
};

// Seconds since construction (steady clock).
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// One program's result for bench/run: printed as a single JSON line on stdout,
// prefixed "BENCH_RESULT " so that other output never confuses the driver.
struct Report {
  std::string tool;
  std::string bench;
  std::vector<std::pair<std::string, double>> seconds;  // ordered: read, compute, ...
  std::vector<std::pair<std::string, double>> numbers;  // rows, threads, ...
  std::vector<std::pair<std::string, std::string>> texts;
  void Print() const;
};

// A new table with `id_column` (if non-empty) and every column whose name
// starts with one of `prefixes`, renamed without that prefix if `strip_prefix`.
// Errors: NotFound for a missing id column, AlreadyExists for a clash.
Result<table::Table> ProjectOutput(const table::Table& table, const std::string& id_column,
                                   const std::vector<std::string>& prefixes,
                                   bool strip_prefix = true);

// Splits "a,b,c" (empty items dropped).
std::vector<std::string> SplitList(const std::string& text);

// Peak resident set size of this process so far, in MiB (getrusage).
double PeakRssMiB();

// Prints "error: <status>" to stderr and returns 1, for main().
int Fail(const Status& status);

// A bench program's main(): parses the flags, runs `run`, and returns 0, or
// 1 after printing the error.
int Main(int argc, char** argv, Status (*run)(const Flags& flags));

}  // namespace keel::bench
