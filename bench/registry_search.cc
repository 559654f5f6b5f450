// Run search with many runs (issue 5: "listing and filtering 100 000 runs
// answers in under 100 ms on SQLite"). Inserts N runs through the Registry
// API (10 experiments; params lr, depth, booster; metrics auc and loss with 3
// steps; a team tag; 1 in 7 failed), then times typical run-list queries,
// median of several repetitions, and exits 1 when a median exceeds the limit.
//
// Usage: bench_registry_search [--runs N] [--repeat K] [--limit-ms MS]
//                              [--db FILE | --postgres URL]
// With --db an existing file holding N runs is reused instead of refilled.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "registry/registry.h"

namespace {

using keel::registry::Metric;
using keel::registry::NewRun;
using keel::registry::Registry;
using keel::registry::RunLog;
using keel::registry::RunQuery;
using keel::registry::RunStatus;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int Fail(const keel::Status& status) {
  std::fprintf(stderr, "bench_registry_search: %s\n", status.ToString().c_str());
  return 1;
}

keel::Status Fill(Registry* registry, int runs) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const char* lrs[] = {"0.01", "0.03", "0.1", "0.3", "1.0"};
  const char* boosters[] = {"gbtree", "linear"};
  const char* teams[] = {"delay", "ranking", "fraud", "search"};
  keel::Timestamp start = 1'700'000'000LL * keel::kMicrosPerSecond;
  auto began = std::chrono::steady_clock::now();
  for (int run_idx = 0; run_idx < runs; ++run_idx) {
    NewRun run;
    run.experiment = "experiment-" + std::to_string(run_idx % 10);
    run.name = "run-" + std::to_string(run_idx);
    run.params = {{"lr", lrs[rng() % 5]},
                  {"depth", std::to_string(2 + rng() % 6)},
                  {"booster", boosters[rng() % 2]}};
    run.tags = {{"team", teams[rng() % 4]}};
    run.start_time = start + run_idx * keel::kMicrosPerSecond;
    keel::Result<keel::registry::Run> created = registry->CreateRun(run);
    if (!created.ok()) return created.status();
    RunLog log;
    double auc = 0.5 + 0.5 * unit(rng);
    log.metrics = {{"auc", auc, 0, *run.start_time},
                   {"loss", 1.0, 0, *run.start_time},
                   {"loss", 0.8, 1, *run.start_time},
                   {"loss", 1.0 - auc, 2, *run.start_time}};
    RETURN_IF_ERROR(registry->LogToRun(created->id, log));
    RETURN_IF_ERROR(registry->EndRun(created->id,
                                     run_idx % 7 == 3 ? RunStatus::kFailed : RunStatus::kFinished,
                                     *run.start_time + 60 * keel::kMicrosPerSecond));
    if ((run_idx + 1) % 10000 == 0) {
      std::fprintf(stderr, "  %d runs inserted (%.1f s)\n", run_idx + 1, Seconds(began));
    }
  }
  std::fprintf(stderr, "inserted %d runs in %.1f s\n", runs, Seconds(began));
  return keel::Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 100000;
  int repeat = 7;
  double limit_ms = 100.0;
  std::string db;
  std::string postgres;
  for (int arg = 1; arg + 1 < argc; arg += 2) {
    std::string name = argv[arg];
    std::string value = argv[arg + 1];
    if (name == "--runs") {
      runs = std::atoi(value.c_str());
    } else if (name == "--repeat") {
      repeat = std::atoi(value.c_str());
    } else if (name == "--limit-ms") {
      limit_ms = std::atof(value.c_str());
    } else if (name == "--db") {
      db = value;
    } else if (name == "--postgres") {
      postgres = value;
    } else {
      std::fprintf(stderr, "unknown option %s\n", name.c_str());
      return 2;
    }
  }
  keel::registry::RegistryOptions options;
  options.durable = false;
  bool fill = true;
  if (!postgres.empty()) {
    options.type = "postgres";
    options.url = postgres;
    options.schema = "bench_registry_search";
  } else {
    options.type = "sqlite";
    if (db.empty()) {
      db = (std::filesystem::temp_directory_path() /
            ("keel_bench_registry_" + std::to_string(::getpid()) + ".db"))
               .string();
    }
    fill = !std::filesystem::exists(db);
    options.path = db;
  }
  keel::Result<std::unique_ptr<Registry>> opened = keel::registry::OpenRegistry(options);
  if (!opened.ok()) return Fail(opened.status());
  Registry* registry = opened->get();
  if (!fill || !postgres.empty()) {
    RunQuery count;
    count.limit = runs;
    keel::Result<std::vector<keel::registry::Run>> existing = registry->SearchRuns(count);
    if (!existing.ok()) return Fail(existing.status());
    fill = static_cast<int>(existing->size()) < runs;
    if (fill && !existing->empty()) {
      std::fprintf(stderr, "%s holds %zu runs, not %d: use a fresh database\n",
                   postgres.empty() ? db.c_str() : "the bench schema", existing->size(), runs);
      return 2;
    }
  }
  if (fill) {
    keel::Status filled = Fill(registry, runs);
    if (!filled.ok()) return Fail(filled);
  }

  auto where = [](std::vector<std::string> texts) {
    std::vector<keel::registry::RunPredicate> out;
    for (const std::string& text : texts) out.push_back(*keel::registry::ParseRunPredicate(text));
    return out;
  };
  struct Case {
    std::string name;
    RunQuery query;
  };
  std::vector<Case> cases;
  {
    RunQuery q;
    cases.push_back({"newest 100, all runs", q});
    q.experiment = "experiment-3";
    cases.push_back({"newest 100 of one experiment", q});
    q.status = RunStatus::kFailed;
    cases.push_back({"failed runs of one experiment", q});
  }
  {
    RunQuery q;
    q.order_by_metric = "auc";
    cases.push_back({"top 100 by auc, all runs", q});
    q.ascending = true;
    q.order_by_metric = "loss";
    q.experiment = "experiment-5";
    cases.push_back({"lowest loss in one experiment", q});
  }
  {
    RunQuery q;
    q.experiment = "experiment-1";
    q.where = where({"params.lr = 0.1", "metrics.auc >= 0.9"});
    q.order_by_metric = "auc";
    cases.push_back({"lr = 0.1 and auc >= 0.9 by auc", q});
    q.experiment.clear();
    q.where = where({"params.lr = 0.1", "params.depth = 6", "tags.team = fraud"});
    cases.push_back({"lr, depth and team, by auc", q});
    q.where = where({"params.booster != gbtree", "metrics.auc < 0.6"});
    q.order_by_metric.clear();
    q.limit = 1000;
    cases.push_back({"booster != gbtree, auc < 0.6, 1000", q});
  }

  std::printf("%-40s %8s %10s %10s\n", "query", "rows", "median ms", "max ms");
  bool slow = false;
  for (const Case& test : cases) {
    std::vector<double> times;
    size_t rows = 0;
    for (int rep = 0; rep < repeat; ++rep) {
      auto began = std::chrono::steady_clock::now();
      keel::Result<std::vector<keel::registry::Run>> found = registry->SearchRuns(test.query);
      times.push_back(Seconds(began) * 1000.0);
      if (!found.ok()) return Fail(found.status());
      rows = found->size();
    }
    std::sort(times.begin(), times.end());
    double median = times[times.size() / 2];
    slow = slow || median > limit_ms;
    std::printf("%-40s %8zu %10.2f %10.2f%s\n", test.name.c_str(), rows, median, times.back(),
                median > limit_ms ? "  SLOW" : "");
  }
  std::printf("%d runs on %s; limit %.0f ms per query (median of %d)\n", runs,
              std::string(registry->type()).c_str(), limit_ms, repeat);
  return slow ? 1 : 0;
}
