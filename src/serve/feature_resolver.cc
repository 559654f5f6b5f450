#include "serve/feature_resolver.h"

#include <algorithm>
#include <map>

namespace keel::serve {

namespace {

// Bounds on what untrusted requests can make the caches hold.
constexpr size_t kMaxPlans = 4096;
constexpr size_t kMaxReferences = 16384;

void AppendKeyPart(std::string_view part, std::string* key) {
  *key += std::to_string(part.size());
  key->push_back(':');
  key->append(part);
}

std::string PlanKey(const FeatureSelection& selection,
                    const std::vector<table::Field>& entity_fields) {
  std::string key = selection.service.empty() ? "F" : "S";
  AppendKeyPart(selection.service, &key);
  for (const std::string& reference : selection.references) AppendKeyPart(reference, &key);
  key.push_back('|');
  for (const table::Field& field : entity_fields) {
    AppendKeyPart(field.name, &key);
    key.push_back(static_cast<char>('0' + static_cast<int>(field.type)));
  }
  return key;
}

// Everything about a service's uses that decides what it reads.
std::string ServiceSignature(const features::FeatureServiceDef& service) {
  std::string signature;
  for (const features::FeatureUse& use : service.uses) {
    AppendKeyPart(use.view, &signature);
    AppendKeyPart(use.version, &signature);
    for (const auto& [key, column] : use.key_map) {
      AppendKeyPart(key, &signature);
      AppendKeyPart(column, &signature);
    }
    AppendKeyPart(use.alias, &signature);
    for (const std::string& feature : use.features) AppendKeyPart(feature, &signature);
    signature.push_back(';');
  }
  return signature;
}

}  // namespace

FeatureResolver::FeatureResolver(std::unique_ptr<features::Catalog> catalog)
    : catalog_(std::move(catalog)) {}

FeatureResolver::~FeatureResolver() = default;

FeatureResolver::ViewEntry FeatureResolver::ResolveView(const std::string& name,
                                                        const std::string& version) {
  ViewEntry entry;
  entry.checked = Clock::now();
  Result<features::ViewVersionInfo> info = catalog_->Resolve(name, version);
  if (!info.ok()) {
    entry.status = info.status();
    return entry;
  }
  Result<std::shared_ptr<const features::OnlineView>> view =
      features::OnlineView::Make(info->definition, info->version);
  if (!view.ok()) {
    entry.status = view.status().WithContext("view '" + name + "@" + info->version + "'");
    return entry;
  }
  entry.view = std::move(view).value();
  return entry;
}

FeatureResolver::ServiceEntry FeatureResolver::ReadService(const std::string& name) {
  ServiceEntry entry;
  entry.checked = Clock::now();
  Result<features::FeatureServiceDef> service = catalog_->Service(name);
  if (!service.ok()) {
    entry.status = service.status();
  } else {
    entry.service = std::make_shared<const features::FeatureServiceDef>(std::move(service).value());
  }
  return entry;
}

Result<std::shared_ptr<const features::OnlineView>> FeatureResolver::View(
    const std::string& name, const std::string& version) {
  std::string key = name + "@" + version;
  auto fresh = [&](const ViewEntry& entry) {
    return entry.status.ok() || Clock::now() - entry.checked < kRetryUnknown;
  };
  auto answer = [](const ViewEntry& entry) -> Result<std::shared_ptr<const features::OnlineView>> {
    if (!entry.status.ok()) return entry.status;
    return entry.view;
  };
  {
    std::shared_lock lock(mutex_);
    auto it = views_.find(key);
    if (it != views_.end() && fresh(it->second)) return answer(it->second);
  }
  std::lock_guard catalog_lock(catalog_mutex_);
  // Another request may have asked the catalog while this one waited.
  {
    std::shared_lock lock(mutex_);
    auto it = views_.find(key);
    if (it != views_.end() && fresh(it->second)) return answer(it->second);
  }
  ViewEntry entry = ResolveView(name, version);
  std::unique_lock lock(mutex_);
  if (entry.status.ok() || views_.size() < kMaxReferences) views_[key] = entry;
  return answer(entry);
}

Result<std::shared_ptr<const features::FeatureServiceDef>> FeatureResolver::Service(
    const std::string& name) {
  auto fresh = [&](const ServiceEntry& entry) {
    return entry.status.ok() || Clock::now() - entry.checked < kRetryUnknown;
  };
  auto answer =
      [](const ServiceEntry& entry) -> Result<std::shared_ptr<const features::FeatureServiceDef>> {
    if (!entry.status.ok()) return entry.status;
    return entry.service;
  };
  {
    std::shared_lock lock(mutex_);
    auto it = services_.find(name);
    if (it != services_.end() && fresh(it->second)) return answer(it->second);
  }
  std::lock_guard catalog_lock(catalog_mutex_);
  {
    std::shared_lock lock(mutex_);
    auto it = services_.find(name);
    if (it != services_.end() && fresh(it->second)) return answer(it->second);
  }
  ServiceEntry entry = ReadService(name);
  std::unique_lock lock(mutex_);
  if (entry.status.ok() || services_.size() < kMaxReferences) services_[name] = entry;
  return answer(entry);
}

Result<std::shared_ptr<const LookupPlan>> FeatureResolver::BuildPlan(
    const FeatureSelection& selection, const std::vector<table::Field>& entity_fields) {
  std::vector<features::FeatureUse> uses;
  std::vector<std::string> labels;  // how errors name each use
  if (!selection.service.empty()) {
    Result<std::shared_ptr<const features::FeatureServiceDef>> service = Service(selection.service);
    if (!service.ok()) return service.status().WithContext("feature_service");
    uses = (*service)->uses;
    for (const features::FeatureUse& use : uses) {
      labels.push_back("feature_service '" + selection.service + "', use of view '" + use.view +
                       "'");
    }
  } else {
    if (selection.references.empty()) return InvalidArgument("features: no feature references");
    for (size_t i = 0; i < selection.references.size(); ++i) {
      const std::string& reference = selection.references[i];
      std::string label = "features[" + std::to_string(i) + "] '" + reference + "'";
      Result<std::vector<features::FeatureUse>> parsed = features::ParseFeatureUses(reference);
      if (!parsed.ok()) return parsed.status().WithContext(label);
      if (parsed->size() != 1) {
        return InvalidArgument(label + ": one reference per item, found " +
                               std::to_string(parsed->size()) +
                               " (give each as its own array item)");
      }
      uses.push_back(std::move(parsed->front()));
      labels.push_back(std::move(label));
    }
  }
  auto plan = std::make_shared<LookupPlan>();
  for (size_t u = 0; u < uses.size(); ++u) {
    const features::FeatureUse& use = uses[u];
    Result<std::shared_ptr<const features::OnlineView>> view = View(use.view, use.version);
    if (!view.ok()) return view.status().WithContext(labels[u]);
    Result<features::ResolvedUse> resolved =
        features::ResolveUse(use, (*view)->def(), (*view)->version(), entity_fields);
    if (!resolved.ok()) return resolved.status().WithContext(labels[u]);
    // ReadOnlineFeatures answers a use's selected outputs in the view's order.
    for (const features::OnlineOutput& output : (*view)->outputs()) {
      if (!resolved->features.empty() &&
          std::find(resolved->features.begin(), resolved->features.end(), output.name) ==
              resolved->features.end()) {
        continue;
      }
      plan->full_names.push_back(resolved->ColumnName(output.name));
      plan->short_names.push_back(output.name);
    }
    plan->uses.push_back(std::move(resolved).value());
    plan->views.push_back(std::move(view).value());
  }
  std::map<std::string, std::string> owner;  // short name -> what gives it
  for (const table::Field& field : entity_fields) owner[field.name] = "entity column";
  for (size_t i = 0; i < plan->short_names.size() && plan->short_name_clash.empty(); ++i) {
    const std::string& name = plan->short_names[i];
    std::string what = "'" + plan->full_names[i] + "'";
    auto [it, inserted] = owner.emplace(name, what);
    if (!inserted) {
      plan->short_name_clash = "feature name '" + name + "' is given by both " + it->second +
                               " and " + what + "; ask with \"full_feature_names\": true";
    }
  }
  return std::shared_ptr<const LookupPlan>(std::move(plan));
}

Result<std::shared_ptr<const LookupPlan>> FeatureResolver::Plan(
    const FeatureSelection& selection, const std::vector<table::Field>& entity_fields) {
  std::string key = PlanKey(selection, entity_fields);
  uint64_t generation = 0;
  {
    std::shared_lock lock(mutex_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
    generation = generation_;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const LookupPlan> plan, BuildPlan(selection, entity_fields));
  std::unique_lock lock(mutex_);
  // A refresh since the build began may have made it stale: use it once, keep it not.
  if (generation_ == generation) {
    if (plans_.size() >= kMaxPlans) plans_.clear();
    plans_.emplace(std::move(key), plan);
  }
  return plan;
}

Status FeatureResolver::Refresh() {
  std::lock_guard catalog_lock(catalog_mutex_);
  Result<std::vector<features::ViewVersionInfo>> current = catalog_->ListCurrent();
  if (!current.ok()) {
    std::unique_lock lock(mutex_);
    health_ = current.status().WithContext("catalog");
    return health_;
  }
  std::map<std::string, std::string> current_version;
  for (const features::ViewVersionInfo& info : *current) current_version[info.name] = info.version;

  // What to re-read, decided under a shared lock; the catalog is asked without it.
  Clock::time_point now = Clock::now();
  std::vector<std::string> expired_views, changed_views, expired_services, services;
  {
    std::shared_lock lock(mutex_);
    for (const auto& [key, entry] : views_) {
      if (!entry.status.ok()) {
        if (now - entry.checked >= kRetryUnknown) expired_views.push_back(key);
        continue;
      }
      if (key.back() != '@') continue;  // names a version: immutable
      auto it = current_version.find(key.substr(0, key.size() - 1));
      if (it == current_version.end() || it->second != entry.view->version()) {
        changed_views.push_back(key);
      }
    }
    for (const auto& [name, entry] : services_) {
      if (!entry.status.ok()) {
        if (now - entry.checked >= kRetryUnknown) expired_services.push_back(name);
      } else {
        services.push_back(name);
      }
    }
  }
  std::vector<std::pair<std::string, ViewEntry>> view_updates;
  for (const std::string& key : changed_views) {
    view_updates.emplace_back(key, ResolveView(key.substr(0, key.size() - 1), ""));
  }
  std::vector<std::pair<std::string, ServiceEntry>> service_updates;
  for (const std::string& name : services) service_updates.emplace_back(name, ReadService(name));

  std::unique_lock lock(mutex_);
  bool changed = !view_updates.empty();
  for (const std::string& key : expired_views) views_.erase(key);
  for (const std::string& name : expired_services) services_.erase(name);
  for (auto& [key, entry] : view_updates) views_[key] = std::move(entry);
  for (auto& [name, entry] : service_updates) {
    ServiceEntry& cached = services_[name];
    bool same = cached.status.ok() && entry.status.ok() &&
                ServiceSignature(*cached.service) == ServiceSignature(*entry.service);
    if (!same) {
      cached = std::move(entry);
      changed = true;
    }
  }
  if (changed) {
    plans_.clear();
    ++generation_;
  }
  health_ = current->empty() ? FailedPrecondition("the catalog has no views (run 'keel apply')")
                             : Status::Ok();
  return Status::Ok();
}

Status FeatureResolver::Health() const {
  std::shared_lock lock(mutex_);
  return health_;
}

}  // namespace keel::serve
