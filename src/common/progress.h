#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace keel {

// A one-line progress bar on standard error, drawn only when standard error is
// a terminal (and KEEL_NO_PROGRESS is unset), redrawn at most ten times a second.
// Thread-safety: none; one owner updates it.
class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total);
  ~ProgressBar();  // calls Finish()

  // Sets the amount done so far (0..total).
  void Update(uint64_t done);
  // Draws 100 % and ends the line (once).
  void Finish();

 private:
  void Draw(uint64_t done);

  std::string label_;
  uint64_t total_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace keel
