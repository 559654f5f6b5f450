// The keel command: thin wiring of subcommands onto the layers.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "common/files.h"

namespace {

int ExitCode(const keel::Status& status) {
  switch (status.code()) {
    case keel::StatusCode::kOk:
      return 0;
    case keel::StatusCode::kInvalidArgument:
      return 2;
    case keel::StatusCode::kNotFound:
      return 3;
    case keel::StatusCode::kFailedPrecondition:
      return 4;
    default:
      return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"keel: define features once, build point-in-time training sets, serve them."};
  app.require_subcommand(1);
  app.set_version_flag("--version",
                       std::string("keel 0.1.0 (") + std::string(keel::CodeVersion()) + ")");
  keel::cli::RepoOptions repo;
  auto add_repo = [&](CLI::App* command) {
    command->add_option("--repo,-r", repo.repo, "Feature repository (folder of keel.yaml)")
        ->envname("KEEL_REPO");
  };
  keel::Status status;

  std::string init_dir;
  CLI::App* init = app.add_subcommand("init", "Write a working example repository");
  init->add_option("dir", init_dir, "Folder to create")->required();
  init->callback([&] { status = keel::cli::RunInit(init_dir); });

  CLI::App* apply = app.add_subcommand("apply", "Validate definitions and record view versions");
  add_repo(apply);
  apply->callback([&] { status = keel::cli::RunApply(repo); });

  bool json = false;
  CLI::App* features = app.add_subcommand("features", "List and show feature views");
  features->require_subcommand(1);
  CLI::App* list = features->add_subcommand("list", "Current version of every view");
  add_repo(list);
  list->add_flag("--json", json, "Print JSON");
  list->callback([&] { status = keel::cli::RunFeaturesList(repo, json); });
  std::string reference;
  CLI::App* show = features->add_subcommand("show", "One view: definition and versions");
  add_repo(show);
  show->add_option("view", reference, "VIEW or VIEW@VERSION")->required();
  show->add_flag("--json", json, "Print JSON");
  show->callback([&] { status = keel::cli::RunFeaturesShow(repo, reference, json); });

  keel::cli::DatasetBuildOptions build_options;
  CLI::App* dataset = app.add_subcommand("dataset", "Training sets");
  dataset->require_subcommand(1);
  CLI::App* build = dataset->add_subcommand("build", "Build a point-in-time correct training set");
  add_repo(build);
  build
      ->add_option("--spine", build_options.spine,
                   "Entity keys + timestamps (+ labels): a source name, a file or a SQL query")
      ->required();
  build->add_option("--spine-time", build_options.spine_time, "Spine timestamp column");
  auto* features_option = build->add_option(
      "--features", build_options.features,
      "Views: view[@version][(key=column,...)][ as alias][:f1|f2], comma-separated");
  auto* service_option =
      build->add_option("--service", build_options.service, "A feature service instead");
  features_option->excludes(service_option);
  build->add_option("--out,-o", build_options.out, "Output Parquet file")->required();
  build->add_option("--threads", build_options.threads, "Worker threads (default: all cores)");
  build->add_flag("--json", build_options.json, "Print the summary as JSON");
  build->callback([&] {
    build_options.repo = repo;
    if (build_options.features.empty() && build_options.service.empty()) {
      status = keel::InvalidArgument("dataset build: give --features or --service");
      return;
    }
    status = keel::cli::RunDatasetBuild(build_options);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "keel: error: %s\n", status.message().c_str());
    return ExitCode(status);
  }
  return 0;
}
