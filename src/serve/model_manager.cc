#include "serve/model_manager.h"

namespace keel::serve {

Status ModelManager::Add(const std::string& name, Locator locate) {
  {
    std::unique_lock lock(mutex_);
    if (slots_.count(name) > 0) return AlreadyExists("model '" + name + "' is served already");
    Slot& slot = slots_[name];
    slot.locate = std::move(locate);
    slot.status.name = name;
  }
  std::lock_guard refresh(refresh_mutex_);
  RefreshOne(name);
  return Status::Ok();
}

std::shared_ptr<const ServingModel> ModelManager::Get(const std::string& name) const {
  std::shared_lock lock(mutex_);
  auto found = slots_.find(name);
  return found == slots_.end() ? nullptr : found->second.model;
}

bool ModelManager::Has(const std::string& name) const {
  std::shared_lock lock(mutex_);
  return slots_.count(name) > 0;
}

std::vector<std::string> ModelManager::Names() const {
  std::shared_lock lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, slot] : slots_) out.push_back(name);
  return out;
}

void ModelManager::Refresh() {
  std::lock_guard refresh(refresh_mutex_);
  for (const std::string& name : Names()) RefreshOne(name);
}

void ModelManager::RefreshOne(const std::string& name) {
  Locator locate;
  ModelLocation current, failed;
  {
    std::shared_lock lock(mutex_);
    const Slot& slot = slots_.at(name);
    locate = slot.locate;
    current = {slot.status.version, slot.bundle_dir};
    failed = slot.failed;
  }
  Result<ModelLocation> location = locate();
  if (!location.ok()) {
    std::unique_lock lock(mutex_);
    slots_.at(name).status.last_error = location.status().ToString();
    return;
  }
  auto same = [](const ModelLocation& a, const ModelLocation& b) {
    return a.version == b.version && a.bundle_dir == b.bundle_dir;
  };
  // A broken bundle is not reloaded every time: a new version or bundle is.
  if (same(*location, current) || same(*location, failed)) return;
  // The whole load (verification, compilation, golden cases) happens before
  // the swap and outside the lock.
  Result<std::shared_ptr<const ServingModel>> loaded =
      ServingModel::Load(location->bundle_dir, name, location->version);
  bool swapped = false;
  {
    std::unique_lock lock(mutex_);
    Slot& slot = slots_.at(name);
    if (!loaded.ok()) {
      ++slot.status.failed_loads;
      slot.status.last_error = "loading version " + std::to_string(location->version) + " from " +
                               location->bundle_dir + ": " + loaded.status().ToString();
      slot.failed = *location;
    } else {
      swapped = slot.model != nullptr;
      slot.model = *loaded;
      slot.bundle_dir = location->bundle_dir;
      slot.status.version = location->version;
      slot.status.bundle_hash = (*loaded)->bundle_hash();
      slot.status.last_error.clear();
      ++slot.status.loads;
      if (swapped) ++slot.status.swaps;
    }
  }
  if (on_load_) on_load_(name, loaded.ok(), swapped);
}

std::vector<ModelSlotStatus> ModelManager::Slots() const {
  std::shared_lock lock(mutex_);
  std::vector<ModelSlotStatus> out;
  for (const auto& [name, slot] : slots_) out.push_back(slot.status);
  return out;
}

}  // namespace keel::serve
