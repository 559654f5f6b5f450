// ScratchLease<T>: the calling thread's reusable scratch object of type T, so
// a hot path keeps its buffers' capacity across calls instead of allocating
// them on every call.
#pragma once

#include <memory>

namespace keel::common {

// Leases the calling thread's T for the lease's lifetime; when that T is
// already leased further up the same thread's stack (a nested call, e.g. a
// read from inside a read callback), the lease owns a fresh T instead. T must
// be default-constructible; its contents are whatever the previous lease left
// (callers clear what they use). Thread-safety: a lease is used by the thread
// that made it; each thread has its own T.
template <typename T>
class ScratchLease {
 public:
  ScratchLease() {
    if (!in_use_) {
      in_use_ = true;
      leased_ = &thread_scratch_;
    } else {
      own_ = std::make_unique<T>();
      leased_ = own_.get();
    }
  }
  ~ScratchLease() {
    if (own_ == nullptr) in_use_ = false;
  }
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;
  T& scratch() { return *leased_; }

 private:
  static thread_local T thread_scratch_;
  static thread_local bool in_use_;
  std::unique_ptr<T> own_;
  T* leased_ = nullptr;
};

template <typename T>
thread_local T ScratchLease<T>::thread_scratch_;
template <typename T>
thread_local bool ScratchLease<T>::in_use_ = false;

}  // namespace keel::common
