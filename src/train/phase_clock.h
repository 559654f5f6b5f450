#pragma once

// Wall time of the phases inside one training step (`keel train` prints them
// under each step that ran, and `--json` lists them), so a slow step says
// where its time goes.

#include <time.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace keel::train {

// One phase of a step: its name, wall seconds and the CPU seconds the
// process spent in it (all threads: XGBoost, DuckDB and the offline engine
// use two), which a busy machine inflates less than wall time.
struct Phase {
  std::string name;
  double seconds = 0;
  double cpu_seconds = 0;
};

// CPU seconds the process has used so far (every thread).
inline double ProcessCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

// Splits a step's wall time into named phases: each Mark(name) closes the
// phase that began at the previous mark (or at Restart()). A null PhaseClock*
// is allowed everywhere one is taken: MarkPhase does nothing then.
// Thread-safety: one thread at a time.
class PhaseClock {
 public:
  PhaseClock() : last_(std::chrono::steady_clock::now()), last_cpu_(ProcessCpuSeconds()) {}

  // Forgets the phases and starts timing anew.
  void Restart() {
    phases_.clear();
    last_ = std::chrono::steady_clock::now();
    last_cpu_ = ProcessCpuSeconds();
  }

  // Records the time since the previous mark as phase `name` (a name marked
  // again adds to its earlier phase).
  void Mark(const std::string& name) {
    auto now = std::chrono::steady_clock::now();
    double seconds = std::chrono::duration<double>(now - last_).count();
    double cpu = ProcessCpuSeconds();
    double cpu_seconds = cpu - last_cpu_;
    last_ = now;
    last_cpu_ = cpu;
    for (Phase& phase : phases_) {
      if (phase.name == name) {
        phase.seconds += seconds;
        phase.cpu_seconds += cpu_seconds;
        return;
      }
    }
    phases_.push_back({name, seconds, cpu_seconds});
  }

  // Records work that ran on another thread beside this step (its own wall
  // and CPU seconds) as phase `name`, without moving the mark: its time is
  // not part of the step's, and the next Mark() still measures from the
  // previous one.
  void AddBeside(const std::string& name, double seconds, double cpu_seconds) {
    phases_.push_back({name, seconds, cpu_seconds});
  }

  // The phases marked since the last Restart(), in order of first mark.
  const std::vector<Phase>& phases() const { return phases_; }

 private:
  std::vector<Phase> phases_;
  std::chrono::steady_clock::time_point last_;
  double last_cpu_ = 0;
};

// clock->Mark(name) when clock is not null.
inline void MarkPhase(PhaseClock* clock, const std::string& name) {
  if (clock != nullptr) clock->Mark(name);
}

}  // namespace keel::train
