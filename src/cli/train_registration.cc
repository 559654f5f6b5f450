#include "cli/train_registration.h"

#include <unistd.h>

#include <filesystem>
#include <random>
#include <system_error>

#include "cli/registry_commands.h"
#include "common/files.h"
#include "common/hash.h"
#include "train/bundle.h"

namespace keel::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

void Flatten(const json& value, const std::string& prefix,
             std::map<std::string, std::string>* out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, item] : value.items()) {
      Flatten(item, prefix.empty() ? key : prefix + "." + key, out);
    }
    return;
  }
  (*out)[prefix] = value.is_string() ? value.get<std::string>() : value.dump();
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ",") + name;
  return out;
}

// A folder name no other process picks: ".<hash>.tmp-<pid>-<random>".
std::string TemporarySibling(const fs::path& final_dir) {
  std::random_device device;
  return (final_dir.parent_path() / ("." + final_dir.filename().string() + ".tmp-" +
                                     std::to_string(::getpid()) + "-" + std::to_string(device())))
      .string();
}

}  // namespace

json TrainRegistration::ToJson() const {
  return {{"run_id", run_id},
          {"experiment", experiment},
          {"model", model},
          {"version", version},
          {"new_version", new_version},
          {"bundle_uri", bundle_uri},
          {"version_run_id", version_run_id},
          {"cached", cached}};
}

Result<std::string> StoreBundleByHash(const std::string& bundle_dir, const std::string& bundle_hash,
                                      const std::string& root) {
  fs::path final_dir = fs::absolute(fs::path(root) / "by-hash" / bundle_hash);
  std::error_code error;
  if (!fs::exists(final_dir)) {
    fs::create_directories(final_dir.parent_path(), error);
    if (error) {
      return IoError("cannot create " + final_dir.parent_path().string() + ": " + error.message());
    }
    std::string temporary = TemporarySibling(final_dir);
    fs::copy(bundle_dir, temporary, fs::copy_options::recursive, error);
    if (error) {
      fs::remove_all(temporary, error);
      return IoError("cannot copy bundle " + bundle_dir + " to " + temporary + ": " +
                     error.message());
    }
    // Files are read-only: nothing should ever change a stored bundle.
    for (const fs::directory_entry& entry : fs::directory_iterator(temporary)) {
      fs::permissions(entry.path(),
                      fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read,
                      error);
    }
    fs::rename(temporary, final_dir, error);
    if (error) {
      std::error_code ignored;
      fs::remove_all(temporary, ignored);
      // Another run may have stored the same bundle meanwhile: that copy is as good.
      if (!fs::exists(final_dir)) {
        return IoError("cannot rename " + temporary + " to " + final_dir.string() + ": " +
                       error.message());
      }
    }
  }
  Result<train::BundleInfo> stored = train::VerifyBundle(final_dir.string());
  if (!stored.ok()) return stored.status().WithContext("stored bundle");
  if (stored->hash != bundle_hash) {
    return FailedPrecondition("stored bundle " + final_dir.string() + " has hash " + stored->hash +
                              ", not " + bundle_hash);
  }
  return final_dir.string();
}

std::map<std::string, std::string> FlattenParams(const json& manifest) {
  std::map<std::string, std::string> params;
  if (manifest.contains("parameters")) Flatten(manifest["parameters"], "", &params);
  if (manifest.contains("seeds")) Flatten(manifest["seeds"], "seeds", &params);
  return params;
}

Result<std::unique_ptr<TrainTracker>> TrainTracker::Start(const features::RepoConfig& config,
                                                          const std::string& pipeline_name,
                                                          const std::string& pipeline_file,
                                                          const std::string& actor) {
  std::unique_ptr<TrainTracker> tracker(new TrainTracker());
  Result<std::unique_ptr<registry::Registry>> opened = OpenRepoRegistry(config);
  if (!opened.ok()) {
    return opened.status().WithContext("recording the run (--no-register trains without it)");
  }
  tracker->registry_ = std::move(opened).value();
  tracker->root_ = config.root;
  tracker->experiment_ = pipeline_name;
  tracker->actor_ = actor;
  registry::NewRun run;
  run.experiment = pipeline_name;
  run.name = fs::path(pipeline_file).filename().string();
  run.tags = {{"pipeline_file", fs::absolute(pipeline_file).string()}, {"user", actor}};
  ASSIGN_OR_RETURN(registry::Run started, tracker->registry_->CreateRun(run));
  tracker->run_id_ = started.id;
  return tracker;
}

void TrainTracker::Fail(const Status& error) {
  registry::RunLog log;
  log.tags["error"] = error.ToString();
  (void)registry_->LogToRun(run_id_, log);
  (void)registry_->EndRun(run_id_, registry::RunStatus::kFailed);
}

Result<TrainRegistration> TrainTracker::Finish(const train::TrainResult& result) {
  Result<TrainRegistration> registration = Register(result);
  if (!registration.ok()) {
    Fail(registration.status());
    return registration.status().WithContext("registering run " + run_id_);
  }
  RETURN_IF_ERROR(registry_->EndRun(run_id_, registry::RunStatus::kFinished));
  return registration;
}

Result<TrainRegistration> TrainTracker::Register(const train::TrainResult& result) {
  ASSIGN_OR_RETURN(train::BundleInfo bundle, train::VerifyBundle(result.bundle_dir));
  const json& manifest = bundle.manifest;
  ASSIGN_OR_RETURN(
      std::string bundle_uri,
      StoreBundleByHash(bundle.dir, bundle.hash, (fs::path(root_) / ".keel" / "bundles").string()));

  registry::RunLog log;
  log.params = FlattenParams(manifest);
  for (const char* model : {"model", "constant", "linear"}) {
    if (!result.metrics.contains(model)) continue;
    for (const auto& [key, value] : result.metrics[model].items()) {
      if (value.is_number()) {
        log.metrics.push_back(
            {std::string("test.") + model + "." + key, value.get<double>(), 0, 0});
      }
    }
  }
  for (const auto& [split, rows] : result.split_rows.items()) {
    if (rows.is_number()) log.metrics.push_back({"rows." + split, rows.get<double>(), 0, 0});
  }
  std::vector<std::string> ran, cached;
  for (const train::StepRun& step : result.steps) (step.cached ? cached : ran).push_back(step.name);
  const std::string cached_all = ran.empty() ? "all" : cached.empty() ? "none" : "some";
  std::string code_version = manifest.value("code_version", std::string());
  std::string data_hash = manifest.value("training_data_hash", std::string());
  log.tags = {{"bundle_hash", bundle.hash},   {"bundle_uri", bundle_uri},
              {"code_version", code_version}, {"training_data_hash", data_hash},
              {"steps.ran", JoinNames(ran)},  {"steps.cached", JoinNames(cached)},
              {"cached", cached_all}};
  for (const fs::directory_entry& entry : fs::directory_iterator(bundle_uri)) {
    ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(entry.path().string()));
    log.artifacts.push_back({entry.path().filename().string(), entry.path().string(),
                             "xxh128:" + HashHex128(bytes), static_cast<int64_t>(bytes.size())});
  }
  RETURN_IF_ERROR(registry_->LogToRun(run_id_, log));

  TrainRegistration out;
  out.run_id = run_id_;
  out.experiment = experiment_;
  out.model = manifest.value("name", experiment_);
  out.bundle_uri = bundle_uri;
  registry::Lineage lineage;
  lineage.run_id = run_id_;
  lineage.bundle_hash = bundle.hash;
  lineage.bundle_uri = bundle_uri;
  lineage.data_hash = data_hash;
  lineage.code_version = code_version;
  for (const json& feature : manifest.value("features", json::array())) {
    lineage.feature_versions.push_back(feature.value("view", std::string()) + "@" +
                                       feature.value("version", std::string()));
  }
  // One transaction: two runs of the same new bundle register it once.
  ASSIGN_OR_RETURN(registry::BundleRegistration registration,
                   registry_->RegisterBundle(out.model, lineage, actor_,
                                             "trained by keel train, run " + run_id_));
  out.version = registration.version.version;
  out.new_version = registration.created;
  out.version_run_id = registration.version.lineage.run_id;
  out.cached = cached_all;
  registry::RunLog registered;
  registered.tags["registered_version"] =
      std::to_string(out.version) + (out.new_version ? "" : " (already registered)");
  if (!out.new_version && !out.version_run_id.empty() && out.version_run_id != run_id_) {
    registered.tags["version_run_id"] = out.version_run_id;
  }
  RETURN_IF_ERROR(registry_->LogToRun(run_id_, registered));
  return out;
}

}  // namespace keel::cli
