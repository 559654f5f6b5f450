#include "common/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace keel {

ProgressBar::ProgressBar(std::string label, uint64_t total)
    : label_(std::move(label)),
      total_(total == 0 ? 1 : total),
      enabled_(::isatty(STDERR_FILENO) == 1 && std::getenv("KEEL_NO_PROGRESS") == nullptr),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(uint64_t done) {
  if (!enabled_ || finished_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  Draw(done);
}

void ProgressBar::Finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  Draw(total_);
  std::fputc('\n', stderr);
}

void ProgressBar::Draw(uint64_t done) {
  constexpr int kWidth = 30;
  double fraction =
      static_cast<double>(done > total_ ? total_ : done) / static_cast<double>(total_);
  int filled = static_cast<int>(fraction * kWidth);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  std::fprintf(stderr, "\r%-24s [%s] %5.1f%%  %.1fs", label_.c_str(), bar.c_str(), fraction * 100.0,
               seconds);
  std::fflush(stderr);
}

}  // namespace keel
