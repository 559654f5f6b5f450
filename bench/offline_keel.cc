// The keel side of the offline benchmarks: runs keel's real engine the way a
// user's `keel dataset build` does (a YAML feature repository, loaded and
// validated against the data, every view at its definition's version) over a
// Parquet spine, and reports where the time went.
//
//   bench_offline <bench> --repo DIR --spine FILE.parquet --time COLUMN
//                 [--spine-columns a,b,c] [--id COLUMN] [--out FILE.parquet]
//                 [--threads N] [--keep-prefix]
//
// Prints one "BENCH_RESULT {json}" line (bench_util.h). With --out, writes the
// id column and every feature column, named without the "<view>__" prefix
// unless --keep-prefix.

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "features/definitions.h"
#include "features/offline_engine.h"
#include "table/duckdb_bridge.h"

namespace keel::bench {
namespace {

Status Run(const Flags& flags) {
  Stopwatch total;
  ASSIGN_OR_RETURN(std::string repo_dir, flags.Require("repo"));
  ASSIGN_OR_RETURN(std::string spine_path, flags.Require("spine"));
  ASSIGN_OR_RETURN(std::string time_column, flags.Require("time"));
  std::string id_column = flags.Get("id");
  int threads = std::stoi(flags.Get("threads", "0"));

  // Definitions: parsed, cross-checked and validated against the real schemas.
  Stopwatch setup_watch;
  Result<features::Repository> repo = features::LoadRepository(repo_dir);
  if (!repo.ok()) return repo.status().WithContext("loading repository " + repo_dir);
  ASSIGN_OR_RETURN(std::unique_ptr<table::DuckDb> duckdb, table::DuckDb::Open());
  RETURN_IF_ERROR(features::ValidateAgainstData(&*repo, duckdb.get()));
  double setup_seconds = setup_watch.Seconds();

  Stopwatch spine_watch;
  std::string columns = "*";
  if (flags.Has("spine-columns")) {
    columns.clear();
    for (const std::string& name : SplitList(flags.Get("spine-columns"))) {
      columns += (columns.empty() ? "" : ", ") + table::QuoteSqlIdentifier(name);
    }
  }
  Result<table::Table> spine = duckdb->Query("SELECT " + columns + " FROM read_parquet(" +
                                             table::QuoteSqlString(spine_path) + ")");
  if (!spine.ok()) return spine.status().WithContext("reading spine " + spine_path);
  double spine_seconds = spine_watch.Seconds();

  std::vector<features::ResolvedUse> uses;
  std::vector<std::string> prefixes;
  size_t window_views = 0, snapshot_views = 0;
  for (const features::FeatureViewDef& view : repo->views) {
    features::FeatureUse use;
    use.view = view.name;
    ASSIGN_OR_RETURN(features::ResolvedUse resolved,
                     features::ResolveUse(use, view, features::ViewVersion(view), spine->fields()));
    prefixes.push_back(resolved.prefix + "__");
    uses.push_back(std::move(resolved));
    (view.kind == features::ViewKind::kWindow ? window_views : snapshot_views)++;
  }

  features::OfflineEngine engine(repo->config, duckdb.get(), threads);
  features::BuildReport build;
  size_t spine_columns = spine->num_columns();
  Result<table::Table> dataset = engine.Build(std::move(*spine), time_column, uses, &build);
  if (!dataset.ok()) return dataset.status().WithContext("building the training set");
  double total_seconds = total.Seconds();

  // Share of non-null feature values: a cheap sanity check on joins and TTLs.
  size_t feature_cells = 0, null_cells = 0;
  for (size_t column_idx = spine_columns; column_idx < dataset->num_columns(); ++column_idx) {
    feature_cells += dataset->num_rows();
    null_cells += dataset->column(column_idx).NullCount();
  }

  Report report;
  report.tool = "keel";
  report.bench = flags.mode();
  report.seconds = {{"read", spine_seconds + build.load_seconds},
                    {"compute", build.compute_seconds},
                    {"total", total_seconds},
                    {"read_spine", spine_seconds},
                    {"read_sources", build.load_seconds},
                    {"setup", setup_seconds}};
  report.numbers = {
      {"rows", static_cast<double>(dataset->num_rows())},
      {"source_rows", static_cast<double>(build.source_rows)},
      {"features", static_cast<double>(build.features)},
      {"window_views", static_cast<double>(window_views)},
      {"snapshot_views", static_cast<double>(snapshot_views)},
      {"non_null_share", feature_cells == 0 ? 0.0
                                            : 1.0 - static_cast<double>(null_cells) /
                                                        static_cast<double>(feature_cells)},
      {"peak_rss_before_output_mib", PeakRssMiB()}};

  if (flags.Has("out")) {
    ASSIGN_OR_RETURN(table::Table output,
                     ProjectOutput(*dataset, id_column, prefixes, !flags.Has("keep-prefix")));
    RETURN_IF_ERROR(duckdb->WriteParquet(output, flags.Get("out")));
  }
  report.Print();
  return Status::Ok();
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) { return keel::bench::Main(argc, argv, keel::bench::Run); }
