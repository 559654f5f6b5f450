#include "features/shared_sources.h"

#include <exception>
#include <string>
#include <utility>

namespace keel::features {

namespace {

Result<std::shared_ptr<const table::Table>> Load(const SharedSources::Loader& load) {
  // An exception must not escape: waiters would get a broken promise and the
  // key would stay "loading" for good.
  try {
    Result<table::Table> table = load();
    if (!table.ok()) return table.status();
    return std::shared_ptr<const table::Table>(
        std::make_shared<table::Table>(std::move(table).value()));
  } catch (const std::exception& error) {
    return Internal(std::string("reading a source: ") + error.what());
  }
}

}  // namespace

SharedSources::Loaded SharedSources::LoadCounted(const std::string& name, const Loader& load) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++uses_[name].reads;
  }
  return Load(load);
}

Result<std::shared_ptr<const table::Table>> SharedSources::Read(
    const SourceDef& source, const std::map<std::string, SourceDef>& inputs,
    const RepoConfig& config, const Loader& load) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++uses_[source.name].readers;
  }
  Result<std::string> key = SourceReadKey(source, inputs, config);
  if (!key.ok()) return LoadCounted(source.name, load);
  std::promise<Loaded> promise;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    Entry& entry = entries_[*key];
    if (std::shared_ptr<const table::Table> table = entry.table.lock()) return table;
    if (entry.loading.valid()) {
      std::shared_future<Loaded> loading = entry.loading;
      lock.unlock();
      const Loaded& loaded = loading.get();
      if (loaded.ok()) return loaded;
      return LoadCounted(source.name, load);  // its own error, in its own words
    }
    entry.loading = promise.get_future().share();
    ++uses_[source.name].reads;
  }
  Loaded loaded = Load(load);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry& entry = entries_.at(*key);
    entry.loading = {};  // waiters keep their copies of the future
    if (loaded.ok()) {
      entry.table = *loaded;
      if (holding_) held_.push_back(*loaded);
    }
  }
  promise.set_value(loaded);
  return loaded;
}

void SharedSources::Hold() {
  std::lock_guard<std::mutex> lock(mutex_);
  holding_ = true;
  for (auto& [key, entry] : entries_) {  // tables readers hold now are kept too
    if (std::shared_ptr<const table::Table> table = entry.table.lock()) held_.push_back(table);
  }
}

void SharedSources::Release() {
  std::vector<std::shared_ptr<const table::Table>> dropped;  // freed outside the lock
  std::lock_guard<std::mutex> lock(mutex_);
  holding_ = false;
  dropped.swap(held_);
}

std::map<std::string, SharedSources::Use> SharedSources::uses() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return uses_;
}

}  // namespace keel::features
