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

class StepCache;

// An entry being written: the step's files go into dir(), a fresh temporary
// sibling of the entry's folder, and Commit() renames it into place, so the
// entry is whole or absent whenever it is looked at. Destroying it without a
// successful Commit() removes the temporary folder (no entry appears).
// Thread-safety: one thread at a time; it may be handed to another thread
// (e.g. to write a large file in the background and commit there).
class PendingEntry {
 public:
  PendingEntry(PendingEntry&& other) noexcept;
  PendingEntry& operator=(PendingEntry&& other) noexcept;
  PendingEntry(const PendingEntry&) = delete;
  PendingEntry& operator=(const PendingEntry&) = delete;
  ~PendingEntry();

  // The temporary folder the step writes its files into.
  const std::string& dir() const { return temporary_; }

  // Moves the folder into place (replacing an existing entry when the cache
  // is forced; otherwise an entry another run stored meanwhile stays and this
  // one is dropped). Call once, after every file is written. Errors:
  // IoError (the temporary folder is removed); FailedPrecondition when
  // already committed or abandoned.
  Status Commit();

  // Removes the temporary folder without committing; no-op after Commit().
  void Abandon();

 private:
  friend class StepCache;
  PendingEntry(std::string dir, std::string temporary, bool force)
      : dir_(std::move(dir)), temporary_(std::move(temporary)), force_(force) {}

  std::string dir_;        // the entry's folder
  std::string temporary_;  // empty once committed or abandoned
  bool force_ = false;
};

// A folder of cached step outputs. Thread-safety: one writer per entry at a
// time; concurrent processes computing the same entry race harmlessly (the
// first rename wins, the loser's work is dropped). The const methods and
// Begin() may be called from several threads at once.
class StepCache {
 public:
  // `force`: Has() answers false, so every step reruns and replaces its entry.
  StepCache(std::string root, bool force) : root_(std::move(root)), force_(force) {}

  // The folder of an entry (which may not exist).
  std::string Dir(const std::string& step, const std::string& key) const;

  // True when the entry exists (and force is off).
  bool Has(const std::string& step, const std::string& key) const;

  // Starts writing an entry: returns its pending folder (fresh, empty). The
  // entry appears only on the PendingEntry's Commit(). Errors: IoError.
  Result<PendingEntry> Begin(const std::string& step, const std::string& key) const;

  // Creates the entry (Begin, fill, Commit): `fill` writes the step's files into the folder it is
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
