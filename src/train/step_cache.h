#pragma once

// The step cache of the training pipeline: one folder per (step, key) under a
// root, e.g. <repo>/.keel/cache/split/<key>/. An entry is written into a
// temporary sibling folder and renamed into place, so it is either whole or
// absent.

#include <functional>
#include <string>

#include "common/status.h"

namespace keel::train {

// The content key of a step: a hash of the step name, the code version (the
// git commit keel was configured at and a hash of the running executable, so a
// rebuilt keel never reuses what other code computed), the key of the step it
// reads from and the step's own parameters.
std::string StepKey(const std::string& step, const std::string& parent_key,
                    const std::string& parameters);

// A folder of cached step outputs. Thread-safety: one writer per entry at a
// time; concurrent processes computing the same entry race harmlessly (the
// first rename wins, the loser's work is dropped).
class StepCache {
 public:
  // `force`: Has() answers false, so every step reruns and replaces its entry.
  StepCache(std::string root, bool force) : root_(std::move(root)), force_(force) {}

  // The folder of an entry (which may not exist).
  std::string Dir(const std::string& step, const std::string& key) const;

  // True when the entry exists (and force is off).
  bool Has(const std::string& step, const std::string& key) const;

  // Creates the entry: `fill` writes the step's files into the folder it is
  // given (a fresh temporary one), which then replaces any existing entry.
  // Errors: those of `fill` (the temporary folder is removed); IoError.
  Status Store(const std::string& step, const std::string& key,
               const std::function<Status(const std::string& dir)>& fill);

  // Reads one file of an entry. Errors: NotFound; IoError.
  Result<std::string> Read(const std::string& step, const std::string& key,
                           const std::string& name) const;

 private:
  std::string root_;
  bool force_;
};

}  // namespace keel::train
