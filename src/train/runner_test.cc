#include "train/runner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <thread>

#include "common/files.h"
#include "common/hash.h"
#include "common/time.h"
#include "train/bundle.h"
#include "train/golden.h"
#include "train/runner_steps.h"
#include "train/table_file.h"
#include "train/xgboost_model.h"

namespace keel::train {
namespace {

namespace fs = std::filesystem;

using Clock = std::chrono::steady_clock;

// When a call ran, and on which thread.
struct Span {
  Clock::time_point start, end;
  std::thread::id thread;
};

// A generated training set: y depends on x1 and on cat; one row per hour.
// Validate() and Build() can be slowed down or made to fail, and record when
// they ran (the runner calls them on two threads at once).
class FakeSource : public DatasetSource {
 public:
  explicit FakeSource(bool one_class = false) : one_class_(one_class) {}
  Result<nlohmann::json> Plan() override { return nlohmann::json{{"data", "fake-v1"}}; }
  nlohmann::json PinnedFeatures() const override {
    return nlohmann::json::array({{{"view", "fake"}, {"version", "0123456789ab"}}});
  }
  Result<nlohmann::json> Validate() override {
    ++validations;
    validate_span.start = Clock::now();
    validate_span.thread = std::this_thread::get_id();
    std::this_thread::sleep_for(validate_sleep);
    Status status = on_validate ? on_validate() : Status::Ok();
    validate_span.end = Clock::now();
    validate_done = true;
    if (!status.ok()) return status;
    return nlohmann::json::array();
  }
  Result<BuiltDataset> Build(PhaseClock*) override {
    ++builds;
    build_span.start = Clock::now();
    build_span.thread = std::this_thread::get_id();
    std::this_thread::sleep_for(build_sleep);
    build_span.end = Clock::now();
    if (!build_error.ok()) return build_error;
    table::Column ts(table::DataType::kTimestamp, 0), x1(table::DataType::kDouble, 0),
        x2(table::DataType::kInt64, 0), cat(table::DataType::kString, 0),
        y(table::DataType::kInt64, 0);
    uint64_t state = 17;
    auto next = [&] {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      return static_cast<double>(state >> 11) / 9007199254740992.0;
    };
    Timestamp start = ParseTimestamp("2024-01-01").value();
    for (int row = 0; row < 3000; ++row) {
      ts.AppendInt64(start + row * kMicrosPerSecond * 3600);
      double a = next() * 4 - 2;
      if (row % 13 == 0) {
        x1.AppendNull();
      } else {
        x1.AppendDouble(a);
      }
      x2.AppendInt64(static_cast<int64_t>(next() * 10));
      const char* cats[] = {"a", "b", "c"};
      int c = static_cast<int>(next() * 3);
      cat.AppendString(cats[c]);
      double logit = 1.5 * a + (c == 2 ? 1.0 : -0.5) + (next() - 0.5) * 2;
      y.AppendInt64(one_class_ ? 0 : (logit > 0 ? 1 : 0));
    }
    BuiltDataset out;
    EXPECT_TRUE(out.table.AddColumn("ts", std::move(ts)).ok());
    EXPECT_TRUE(out.table.AddColumn("x1", std::move(x1)).ok());
    EXPECT_TRUE(out.table.AddColumn("x2", std::move(x2)).ok());
    EXPECT_TRUE(out.table.AddColumn("cat", std::move(cat)).ok());
    EXPECT_TRUE(out.table.AddColumn("y", std::move(y)).ok());
    out.time_column = "ts";
    out.input_columns = {"x1", "x2", "cat"};
    return out;
  }
  int builds = 0;
  int validations = 0;
  std::chrono::milliseconds validate_sleep{0}, build_sleep{0};
  std::function<Status()> on_validate;  // runs at the end of Validate(); its error fails it
  Status build_error;
  Span validate_span, build_span;
  std::atomic<bool> validate_done{false};

 private:
  bool one_class_;
};

constexpr const char* kPipeline = R"yaml(name: fake
spine: {source: fake, keys: [cat]}
label: y
request_inputs: [x1, x2, cat]
split: {kind: time, train_until: 2024-03-01, validation_until: 2024-03-20}
transforms:
  - {kind: impute, column: x1}
  - {kind: one_hot, column: cat}
model: {max_depth: 3, eta: 0.3, rounds: 30, early_stopping_rounds: 5, seed: 1}
slices: [cat]
golden_cases: 3
)yaml";

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("keel_runner_test_" + std::to_string(getpid()));
    fs::remove_all(root_);
    options_.cache_dir = (root_ / "cache").string();
    options_.out_dir = (root_ / "bundle").string();
  }
  void TearDown() override { fs::remove_all(root_); }

  Result<TrainResult> Train(const std::string& text, DatasetSource* source) {
    Result<PipelineSpec> spec = ParsePipeline(text, "fake.yaml");
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    return RunTrain(*spec, source, options_);
  }

  static std::vector<std::string> Ran(const TrainResult& result) {
    std::vector<std::string> ran;
    for (const StepRun& step : result.steps) {
      if (!step.cached) ran.push_back(step.name);
    }
    return ran;
  }

  fs::path root_;
  TrainOptions options_;
};

TEST_F(RunnerTest, SecondRunIsCachedAndGivesTheSameBundleHash) {
  FakeSource source;
  Result<TrainResult> first = Train(kPipeline, &source);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(Ran(*first), (std::vector<std::string>{"dataset", "validate", "split", "transforms",
                                                   "train", "evaluate", "bundle"}));
  EXPECT_GT(first->metrics["model"]["roc_auc"].get<double>(),
            first->metrics["constant"]["roc_auc"].get<double>());
  EXPECT_EQ(first->slice_metrics["cat"].size(), 3u);
  ASSERT_TRUE(VerifyBundle(first->bundle_dir).ok());

  Result<TrainResult> second = Train(kPipeline, &source);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(Ran(*second).empty());
  EXPECT_EQ(source.builds, 1);
  EXPECT_EQ(source.validations, 1) << "a cached validate step starts no checks";
  EXPECT_EQ(second->bundle_hash, first->bundle_hash);

  // A fresh cache (everything recomputed) gives a byte-identical bundle.
  options_.cache_dir = (root_ / "cache2").string();
  options_.out_dir = (root_ / "bundle2").string();
  Result<TrainResult> fresh = Train(kPipeline, &source);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ(Ran(*fresh).size(), 7u);
  EXPECT_EQ(fresh->bundle_hash, first->bundle_hash);
}

// The evaluate step profiles the training split beside its test-split work,
// from the margins the train step kept, or, without them (an older cache
// entry), from a prediction of its own on that thread: both give the same
// bundle. And a random split (training rows not the first rows) profiles
// copies of its rows: the same bundle on a rerun from a fresh cache.
TEST_F(RunnerTest, EvaluateWithoutKeptMarginsGivesTheSameBundle) {
  FakeSource source;
  Result<TrainResult> first = Train(kPipeline, &source);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  size_t removed = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root_ / "cache")) {
    if (entry.path().filename() == "training_margins.f32") {
      fs::remove(entry.path());
      ++removed;
    }
  }
  ASSERT_EQ(removed, 1u);
  fs::remove_all(root_ / "cache" / "evaluate");
  fs::remove_all(root_ / "cache" / "bundle");
  Result<TrainResult> again = Train(kPipeline, &source);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Ran(*again), (std::vector<std::string>{"evaluate", "bundle"}));
  EXPECT_EQ(again->bundle_hash, first->bundle_hash);

  std::string random = kPipeline;
  const std::string time_split =
      "split: {kind: time, train_until: 2024-03-01, validation_until: 2024-03-20}";
  random.replace(random.find(time_split), time_split.size(),
                 "split: {kind: random, validation: 0.2, test: 0.25, seed: 5}");
  Result<TrainResult> shuffled = Train(random, &source);
  ASSERT_TRUE(shuffled.ok()) << shuffled.status().ToString();
  options_.cache_dir = (root_ / "cache2").string();
  options_.out_dir = (root_ / "bundle2").string();
  Result<TrainResult> fresh = Train(random, &source);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ(fresh->bundle_hash, shuffled->bundle_hash);
}

TEST_F(RunnerTest, ChangingAModelParameterReusesEarlierSteps) {
  FakeSource source;
  Result<TrainResult> first = Train(kPipeline, &source);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  std::string changed = kPipeline;
  changed.replace(changed.find("eta: 0.3"), 8, "eta: 0.2");
  Result<TrainResult> second = Train(changed, &source);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(Ran(*second), (std::vector<std::string>{"train", "evaluate", "bundle"}));
  EXPECT_NE(second->bundle_hash, first->bundle_hash);
  EXPECT_EQ(source.builds, 1);

  std::string transforms = kPipeline;
  transforms.replace(transforms.find("{kind: impute, column: x1}"), 26,
                     "{kind: impute, column: x1, strategy: median}");
  Result<TrainResult> third = Train(transforms, &source);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(Ran(*third), (std::vector<std::string>{"transforms", "train", "evaluate", "bundle"}));

  options_.force = true;
  Result<TrainResult> forced = Train(kPipeline, &source);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ(Ran(*forced).size(), 7u);
  EXPECT_EQ(forced->bundle_hash, first->bundle_hash);
  EXPECT_EQ(source.builds, 2);
}

TEST_F(RunnerTest, BundleHoldsTheManifestParts) {
  FakeSource source;
  Result<TrainResult> result = Train(kPipeline, &source);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  Result<BundleInfo> bundle = VerifyBundle(result->bundle_dir);
  ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
  const nlohmann::json& manifest = bundle->manifest;
  EXPECT_EQ(manifest["name"], "fake");
  EXPECT_EQ(manifest["features"][0]["version"], "0123456789ab");
  EXPECT_EQ(manifest["input_columns"], (nlohmann::json{"x1", "x2", "cat"}));
  EXPECT_EQ(manifest["model_columns"], (nlohmann::json{"x1", "x2", "cat=a", "cat=b", "cat=c"}))
      << manifest["model_columns"];
  EXPECT_EQ(manifest["seeds"]["model"], 1);
  EXPECT_EQ(manifest["training_data_hash"].get<std::string>().size(), 32u);
  for (const char* file : {"model.ubj", "transforms.json", "baseline_constant.json",
                           "baseline_linear.json", "profile.json", "golden_cases.json"}) {
    EXPECT_TRUE(manifest["files"].contains(file)) << file;
  }
  nlohmann::json golden = nlohmann::json::parse(*ReadBundleFile(*bundle, "golden_cases.json"));
  EXPECT_EQ(golden.size(), 3u);
  nlohmann::json profile = nlohmann::json::parse(*ReadBundleFile(*bundle, "profile.json"));
  EXPECT_NE(profile.dump().find("prediction"), std::string::npos);
  Result<size_t> checked = CheckGoldenCases(*bundle);
  ASSERT_TRUE(checked.ok()) << checked.status().ToString();
  EXPECT_EQ(*checked, 3u);

  // A bundle whose recorded prediction differs from what its model computes.
  std::vector<BundleFile> files;
  for (const auto& item : manifest["files"].items()) {
    files.push_back({item.key(), *ReadBundleFile(*bundle, item.key())});
  }
  for (BundleFile& file : files) {
    if (file.name != "golden_cases.json") continue;
    nlohmann::json cases = nlohmann::json::parse(file.bytes);
    cases[1]["prediction"] = cases[1]["prediction"].get<double>() + 0.01;
    file.bytes = cases.dump();
  }
  nlohmann::json other = manifest;
  other.erase("files");
  std::string wrong_dir = (root_ / "wrong").string();
  ASSERT_TRUE(WriteBundle(wrong_dir, other, files).ok());
  Result<BundleInfo> wrong = VerifyBundle(wrong_dir);
  ASSERT_TRUE(wrong.ok()) << "the checksums match: only replaying the cases finds it";
  checked = CheckGoldenCases(*wrong);
  ASSERT_FALSE(checked.ok());
  EXPECT_NE(checked.status().message().find("golden case 1 predicts"), std::string::npos)
      << checked.status().message();
}

// The entries of one step's cache folder (committed ones and temporary folders).
std::vector<std::string> Entries(const fs::path& cache, const std::string& step) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& item : fs::directory_iterator(cache / step, error)) {
    names.push_back(item.path().filename().string());
  }
  return names;
}

const StepRun* FindStep(const TrainResult& result, const std::string& name) {
  for (const StepRun& step : result.steps) {
    if (step.name == name) return &step;
  }
  return nullptr;
}

const Phase* FindPhase(const StepRun& step, const std::string& prefix) {
  for (const Phase& phase : step.phases) {
    if (phase.name.rfind(prefix, 0) == 0) return &phase;
  }
  return nullptr;
}

TEST_F(RunnerTest, SourceChecksRunBesideTheDatasetBuild) {
  FakeSource source;
  source.validate_sleep = std::chrono::milliseconds(400);
  source.build_sleep = std::chrono::milliseconds(400);
  Result<TrainResult> result = Train(kPipeline, &source);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_NE(source.validate_span.thread, source.build_span.thread);
  EXPECT_LT(source.validate_span.start, source.build_span.end) << "the two overlap";
  EXPECT_LT(source.build_span.start, source.validate_span.end) << "the two overlap";
  const StepRun* dataset = FindStep(*result, "dataset");
  const StepRun* validate = FindStep(*result, "validate");
  ASSERT_TRUE(dataset != nullptr && validate != nullptr);
  EXPECT_GE(dataset->seconds, 0.4);
  // The validate step only waits for what is left of the checks.
  EXPECT_LT(validate->seconds, 0.3) << "total < sum: the checks took 0.4 s";
  const Phase* beside = FindPhase(*validate, "source checks (ran beside the dataset step)");
  ASSERT_NE(beside, nullptr);
  EXPECT_GE(beside->seconds, 0.4);
  ASSERT_NE(FindPhase(*validate, "wait for the source checks"), nullptr);
  // The training set file was written in the background, and is whole.
  ASSERT_NE(FindPhase(*dataset, "write training set (in the background"), nullptr);
  ASSERT_NE(FindPhase(*FindStep(*result, "train"), "wait for the training set file"), nullptr);
  fs::path file = root_ / "cache" / "dataset" / dataset->key / "dataset.keeltable";
  Result<table::Table> read = ReadTableFile(file.string());
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->num_rows(), 3000u);
}

TEST_F(RunnerTest, FailedSourceChecksFailTheValidateStepAndBlockTheRest) {
  for (int slow_build : {0, 1}) {
    SCOPED_TRACE(slow_build ? "the checks fail while the build runs" : "the checks fail last");
    fs::remove_all(root_);
    FakeSource source;
    source.validate_sleep = std::chrono::milliseconds(slow_build ? 0 : 300);
    source.build_sleep = std::chrono::milliseconds(slow_build ? 300 : 0);
    source.on_validate = [] { return FailedPrecondition("source 'fake' failed its checks"); };
    Result<TrainResult> result = Train(kPipeline, &source);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(result.status().message().find("step validate: source 'fake' failed its checks"),
              std::string::npos)
        << result.status().message();
    fs::path cache = root_ / "cache";
    EXPECT_TRUE(Entries(cache, "validate").empty())
        << "no validate entry, not even a temporary one";
    EXPECT_TRUE(Entries(cache, "split").empty()) << "nothing after validate ran";
    EXPECT_TRUE(Entries(cache, "train").empty());
    // The dataset step finished before: its entry is whole (as before the checks
    // ran beside it), and the next run uses it.
    std::vector<std::string> datasets = Entries(cache, "dataset");
    ASSERT_EQ(datasets.size(), 1u);
    EXPECT_TRUE(
        ReadTableFile((cache / "dataset" / datasets[0] / "dataset.keeltable").string()).ok());
    source.on_validate = nullptr;
    Result<TrainResult> fixed = Train(kPipeline, &source);
    ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
    EXPECT_EQ(Ran(*fixed), (std::vector<std::string>{"validate", "split", "transforms", "train",
                                                     "evaluate", "bundle"}));
    EXPECT_EQ(source.builds, 1);
  }
}

TEST_F(RunnerTest, FailedBuildIsReportedAfterTheChecksBesideItAreJoined) {
  FakeSource source;
  source.build_error = Unavailable("the offline engine is down");
  source.validate_sleep = std::chrono::milliseconds(300);
  source.on_validate = [] { return FailedPrecondition("checks failed too"); };
  Result<TrainResult> result = Train(kPipeline, &source);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable) << result.status().ToString();
  EXPECT_NE(result.status().message().find("step dataset: the offline engine is down"),
            std::string::npos)
      << result.status().message();
  EXPECT_EQ(result.status().message().find("checks failed too"), std::string::npos);
  EXPECT_TRUE(source.validate_done) << "RunTrain returned with the checks still running";
  fs::path cache = root_ / "cache";
  EXPECT_TRUE(Entries(cache, "dataset").empty()) << "no dataset entry, not even a temporary one";
  EXPECT_TRUE(Entries(cache, "validate").empty());
}

// While the training set file is written in the background, the dataset
// entry is absent; once it appears, it is whole.
TEST_F(RunnerTest, DatasetEntryIsAbsentUntilItsFileIsWhole) {
  FakeSource source;
  source.build_sleep = std::chrono::milliseconds(150);  // the checks start watching first
  fs::path datasets = root_ / "cache" / "dataset";
  int looks = 0, absent = 0;
  std::string seen;
  // The checks run beside the dataset step and the validate step waits for
  // them: they watch the entry until it appears.
  source.on_validate = [&]() -> Status {
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      ++looks;
      for (const std::string& name : Entries(root_ / "cache", "dataset")) {
        if (name[0] == '.') continue;  // a temporary folder
        fs::path entry = datasets / name;
        Result<table::Table> read = ReadTableFile((entry / "dataset.keeltable").string());
        if (!read.ok()) return Internal("the entry appeared before its file was whole");
        if (!FileExists((entry / "meta.json").string())) return Internal("no meta.json");
        seen = name;
        return Status::Ok();
      }
      ++absent;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return Internal("the dataset entry never appeared while the checks ran");
  };
  Result<TrainResult> result = Train(kPipeline, &source);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(seen, FindStep(*result, "dataset")->key);
  EXPECT_GT(absent, 0) << "the entry was only committed after the build (" << looks << " looks)";
}

// The training set file is finished beside the matrices and the baselines
// and joined before XGBoost, which trains with nothing of keel's beside it.
TEST_F(RunnerTest, TrainingSetFileIsJoinedAfterTheBaselinesAndBeforeXgboost) {
  FakeSource source;
  Result<TrainResult> result = Train(kPipeline, &source);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const StepRun* train = FindStep(*result, "train");
  ASSERT_NE(train, nullptr);
  std::vector<std::string> names;
  for (const Phase& phase : train->phases) names.push_back(phase.name);
  auto at = [&](const std::string& name) {
    return std::find(names.begin(), names.end(), name) - names.begin();
  };
  ASSERT_LT(at("xgboost (DMatrix + boosting)"), static_cast<long>(names.size()));
  EXPECT_LT(at("matrices (transforms)"), at("baselines (constant, linear)"));
  EXPECT_LT(at("baselines (constant, linear)"), at("wait for the training set file"));
  EXPECT_LT(at("wait for the training set file"), at("xgboost (DMatrix + boosting)"));
}

TEST(SplitRows, RandomSplitIsStratifiedAndSeeded) {
  std::string text = kPipeline;
  const std::string time_split =
      "{kind: time, train_until: 2024-03-01, validation_until: 2024-03-20}";
  text.replace(text.find(time_split), time_split.size(),
               "{kind: random, validation: 0.2, test: 0.25, seed: 5}");
  Result<PipelineSpec> spec = ParsePipeline(text, "fake.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  FakeSource source;
  BuiltDataset dataset = *source.Build(nullptr);
  auto splits = SplitRows(*spec, dataset);
  ASSERT_TRUE(splits.ok()) << splits.status().ToString();
  const std::vector<int64_t>& y = dataset.table.GetColumn("y").value()->ints();
  int64_t positives = 0;
  for (int64_t label : y) positives += label;
  const double shares[] = {0.55, 0.2, 0.25};
  size_t total = 0;
  for (int split = 0; split < 3; ++split) {
    const std::vector<uint32_t>& rows = (*splits)[split];
    total += rows.size();
    EXPECT_NEAR(rows.size(), shares[split] * 3000, 2) << split;
    int64_t split_positives = 0;
    for (uint32_t row : rows) split_positives += y[row];
    EXPECT_NEAR(split_positives, shares[split] * positives, 2) << "stratified: split " << split;
    EXPECT_TRUE(std::is_sorted(rows.begin(), rows.end()));
  }
  EXPECT_EQ(total, 3000u);
  EXPECT_EQ(SplitRows(*spec, dataset)->at(2), splits->at(2)) << "same seed, same rows";
  spec->split.seed = 6;
  EXPECT_NE(SplitRows(*spec, dataset)->at(2), splits->at(2)) << "another seed, other rows";
}

TEST(SampleRows, DependsOnContentNotPosition) {
  FakeSource source;
  BuiltDataset dataset = *source.Build(nullptr);
  std::vector<uint32_t> kept = SampleRows(dataset.table, 0.3, 9);
  EXPECT_NEAR(kept.size(), 900, 90);
  std::vector<uint32_t> reversed(dataset.table.num_rows());
  for (size_t row = 0; row < reversed.size(); ++row) {
    reversed[row] = static_cast<uint32_t>(reversed.size() - 1 - row);
  }
  std::vector<uint32_t> kept_reversed = SampleRows(GatherRows(dataset.table, reversed), 0.3, 9);
  ASSERT_EQ(kept_reversed.size(), kept.size());
  for (size_t index = 0; index < kept.size(); ++index) {
    EXPECT_EQ(reversed[kept_reversed[kept.size() - 1 - index]], kept[index]);
  }
  EXPECT_EQ(SampleRows(dataset.table, 1.0, 9).size(), dataset.table.num_rows());
  EXPECT_EQ(SampleRows(dataset.table, 0.3, 9, 2), kept) << "threads change nothing";
  EXPECT_TRUE(SampleRows(table::Table(), 0.3, 9, 2).empty());
}

// The definition of a sample, spelled the plain way (SampleRows before it
// wrote its texts into fixed slots): row r stays when the Hash64 of the seed
// and, per column, '\x1f' + Column::ValueToString(r) is below fraction * 2^64
// as a double (a NaN fraction keeps every row).
std::vector<uint32_t> ReferenceSampleRows(const table::Table& table, double fraction,
                                          uint64_t seed) {
  std::vector<uint32_t> rows;
  const double limit = fraction * 18446744073709551616.0;  // 2^64
  for (size_t row = 0; row < table.num_rows(); ++row) {
    if (fraction < 1.0) {
      std::string text = std::to_string(seed);
      for (size_t col = 0; col < table.num_columns(); ++col) {
        text += '\x1f';
        text += table.column(col).ValueToString(row);
      }
      if (static_cast<double>(Hash64(text)) >= limit) continue;
    }
    rows.push_back(static_cast<uint32_t>(row));
  }
  return rows;
}

// The sample hashes each row's values as Column::ValueToString spells them
// (the rule the flights example's sample was drawn by); the fast writer
// must spell every type, null, NaN and repeated value the same way.
TEST(SampleRows, HashesValuesAsValueToStringSpellsThem) {
  table::Table table;
  table::Column ints(table::DataType::kInt64, 0), times(table::DataType::kTimestamp, 0);
  table::Column doubles(table::DataType::kDouble, 0), bools(table::DataType::kBool, 0);
  table::Column strings(table::DataType::kString, 0);
  for (int row = 0; row < 5000; ++row) {
    ints.AppendInt64(row % 11 == 0 ? INT64_MIN : (row - 2500) * 7919LL);
    times.AppendInt64(978307200000000LL + (row / 3) * 60000000LL + (row % 17 == 0 ? 5 : 0));
    if (row % 13 == 0) {
      doubles.AppendNull();
      bools.AppendNull();
      strings.AppendNull();
    } else {
      doubles.AppendDouble(row % 9 == 0 ? std::nan("") : row % 4 == 0 ? 0.1 * row : -1.0 / row);
      bools.AppendBool(row % 2 == 0);
      strings.AppendString(row % 5 == 0 ? "" : "s" + std::to_string(row % 37));
    }
  }
  ASSERT_TRUE(table.AddColumn("ints", std::move(ints)).ok());
  ASSERT_TRUE(table.AddColumn("times", std::move(times)).ok());
  ASSERT_TRUE(table.AddColumn("doubles", std::move(doubles)).ok());
  ASSERT_TRUE(table.AddColumn("bools", std::move(bools)).ok());
  ASSERT_TRUE(table.AddColumn("strings", std::move(strings)).ok());
  for (double fraction : {0.05, 0.5, 0.9}) {
    std::vector<uint32_t> expected = ReferenceSampleRows(table, fraction, 42);
    for (int threads : {1, 2, 3, 8}) {
      EXPECT_EQ(SampleRows(table, fraction, 42, threads), expected) << fraction << " " << threads;
    }
  }
}

// A random column of `type` with `rows` rows: nulls, extreme and repeated
// values (sorted runs and a few values recurring all over), strings longer
// than any slot and holding '\x1f', timestamps before 1970 and past 9999.
table::Column RandomSampleColumn(table::DataType type, size_t rows, std::mt19937_64* random) {
  std::mt19937_64& rng = *random;
  table::Column column(type, 0);
  const bool has_nulls = rng() % 2 == 0;
  const bool runs = rng() % 3 == 0;  // long runs of one value, as a spine sorted by time
  auto pick = [&](std::initializer_list<int64_t> values) {
    return *(values.begin() + rng() % values.size());
  };
  int64_t run_value = 0;
  for (size_t row = 0; row < rows; ++row) {
    if (has_nulls && rng() % 7 == 0) {
      column.AppendNull();
      continue;
    }
    const uint64_t kind = rng() % 8;
    switch (type) {
      case table::DataType::kBool:
        column.AppendBool(rng() % 2 == 0);
        break;
      case table::DataType::kInt64: {
        int64_t value = kind == 0   ? pick({0, 9, 10, 99, 100, 999, 1000, 9999, 10000, -1, -9999,
                                            INT64_MIN, INT64_MAX, 123456789012LL})
                        : kind <= 3 ? static_cast<int64_t>(rng() % 12000) - 1000
                        : kind <= 5 ? static_cast<int64_t>(rng() % 24)
                                    : static_cast<int64_t>(rng());
        if (runs) value = row % 50 == 0 ? (run_value = value) : run_value;
        column.AppendInt64(value);
        break;
      }
      case table::DataType::kTimestamp: {
        const int64_t day = 86400000000LL;
        int64_t value =
            kind == 0   ? pick({0, -1, 1, INT64_MIN, INT64_MIN + 1, INT64_MAX, -day, day - 1,
                                253402300800000000LL /* 10000-01-01 */,
                                -62167219200000000LL /* 0000-01-01 */, -62167219200000001LL,
                                -62167219200000000LL - 3600000000LL /* -001-12-31 23:00:00 */,
                                253402300800000000LL + 45296000000LL /* 10000-01-01 12:34:56 */})
            : kind <= 2 ? 978307200000000LL + static_cast<int64_t>(rng() % 400) * 60000000LL
            : kind <= 4 ? static_cast<int64_t>(rng() % 2000000) * 1000000LL - 1000000000000000LL
            : kind == 5 ? static_cast<int64_t>(rng() % (400 * day)) - 200 * day  // micros
                        : static_cast<int64_t>(rng());
        if (runs) value = row % 50 == 0 ? (run_value = value) : run_value;
        column.AppendInt64(value);
        break;
      }
      case table::DataType::kDouble: {
        const double specials[] = {std::nan(""),
                                   -std::nan(""),
                                   std::numeric_limits<double>::infinity(),
                                   -std::numeric_limits<double>::infinity(),
                                   0.0,
                                   -0.0,
                                   std::numeric_limits<double>::max(),
                                   -std::numeric_limits<double>::max(),
                                   std::numeric_limits<double>::min(),
                                   std::numeric_limits<double>::denorm_min(),
                                   -1.0 / 3.0,
                                   1e21,
                                   0.1};
        double value = kind == 0   ? specials[rng() % std::size(specials)]
                       : kind <= 3 ? static_cast<double>(rng() % 100) / 4.0
                       : kind <= 5 ? std::bit_cast<double>(rng())
                                   : (static_cast<double>(rng() % 2000001) - 1e6) * 1.0e-3;
        if (runs) {
          if (row % 50 == 0) run_value = std::bit_cast<int64_t>(value);
          value = std::bit_cast<double>(run_value);
        }
        column.AppendDouble(value);
        break;
      }
      case table::DataType::kString: {
        std::string value;
        const size_t length = kind == 0 ? 0 : kind == 1 ? 60 + rng() % 200 : rng() % 20;
        for (size_t at = 0; at < length; ++at) {
          value += rng() % 10 == 0 ? '\x1f' : static_cast<char>('a' + rng() % 26);
        }
        column.AppendString(value);
        break;
      }
    }
  }
  return column;
}

// Random tables of every column type against the plain definition: any
// thread count and fraction must keep exactly the reference's rows.
TEST(SampleRows, KeepsTheReferenceRowsOnRandomTables) {
  std::mt19937_64 rng(20261202);
  const table::DataType types[] = {table::DataType::kBool, table::DataType::kInt64,
                                   table::DataType::kTimestamp, table::DataType::kDouble,
                                   table::DataType::kString};
  for (int trial = 0; trial < 40; ++trial) {
    const size_t rows = trial == 0 ? 0 : trial == 1 ? 1 : rng() % 3000;
    const size_t columns = 1 + rng() % 9;
    table::Table table;
    for (size_t col = 0; col < columns; ++col) {
      const table::DataType type = types[rng() % std::size(types)];
      ASSERT_TRUE(
          table.AddColumn("c" + std::to_string(col), RandomSampleColumn(type, rows, &rng)).ok());
    }
    const uint64_t seed = trial % 3 == 0 ? rng() : rng() % 100;
    for (double fraction : {0.0, 0.001, 0.2, 0.5, 0.999, 1.0, std::nan("")}) {
      std::vector<uint32_t> expected = ReferenceSampleRows(table, fraction, seed);
      for (int threads : {1, 2, 3, 5, 16}) {
        ASSERT_EQ(SampleRows(table, fraction, seed, threads), expected)
            << "trial " << trial << " schema " << table.SchemaToString() << " fraction " << fraction
            << " threads " << threads;
      }
    }
  }
}

// The threshold on the hash is exact at the edges of a double: the fractions
// whose limit lies between two neighbouring doubles of hash values keep the
// same rows as the comparison in doubles.
TEST(SampleRows, FractionEdgesMatchTheReference) {
  table::Table table;
  table::Column ids(table::DataType::kInt64, 0);
  for (int64_t id = 0; id < 20000; ++id) ids.AppendInt64(id);
  ASSERT_TRUE(table.AddColumn("id", std::move(ids)).ok());
  for (double fraction : {std::nextafter(0.5, 0.0), 0.5, std::nextafter(0.5, 1.0),
                          std::nextafter(1.0, 0.0), 5e-324, 1e-300, -0.5}) {
    EXPECT_EQ(SampleRows(table, fraction, 3, 2), ReferenceSampleRows(table, fraction, 3))
        << fraction;
  }
}

TEST_F(RunnerTest, OutNeverReplacesAFolderThatIsNotABundle) {
  FakeSource source;
  fs::create_directories(root_ / "bundle");
  std::ofstream(root_ / "bundle" / "precious.txt") << "keep";
  Result<TrainResult> result = Train(kPipeline, &source);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(fs::exists(root_ / "bundle" / "precious.txt"));
}

TEST_F(RunnerTest, UnknownSliceColumnAfterACachedRunIsAClearError) {
  FakeSource source;
  ASSERT_TRUE(Train(kPipeline, &source).ok());
  std::string text = kPipeline;
  text.replace(text.find("slices: [cat]"), 13, "slices: [nope]");
  Result<TrainResult> result = Train(text, &source);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("slices: the training set has no column 'nope'"),
            std::string::npos)
      << result.status().message();
}

TEST_F(RunnerTest, EmptyTrainingSplitIsAClearError) {
  FakeSource source;
  std::string text = kPipeline;
  text.replace(text.find("train_until: 2024-03-01"), 23, "train_until: 2023-03-01");
  Result<TrainResult> result = Train(text, &source);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(result.status().message().find("empty training split"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("fake.yaml"), std::string::npos);
}

TEST_F(RunnerTest, LabelOfOneClassIsAClearError) {
  FakeSource source(/*one_class=*/true);
  Result<TrainResult> result = Train(kPipeline, &source);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("label 'y' has one class in the training split (all 0)"),
            std::string::npos)
      << result.status().message();
}

TEST_F(RunnerTest, UnknownColumnsAndUnencodedStringsAreClearErrors) {
  FakeSource source;
  std::string text = kPipeline;
  text.replace(text.find("label: y"), 8, "label: z");
  Result<TrainResult> result = Train(text, &source);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("no column 'z'"), std::string::npos)
      << result.status().message();

  text = kPipeline;
  text.replace(text.find("  - {kind: one_hot, column: cat}\n"), 33, "");
  result = Train(text, &source);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("input 'cat' is a string"), std::string::npos)
      << result.status().message();
}

// ---------------------------------------------------------------------------
// The fast ways of the transforms and train steps (only the transformed
// inputs gathered, the rest read straight into the matrix) against the full
// way: the same fitted JSON, the same matrices bit for bit, the same errors.

// Random inputs of every type with nulls (and NaN in doubles), a label, and
// three random splits; `unseen` puts a category only into the test split.
Prepared RandomPrepared(uint32_t seed, size_t rows, bool unseen) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 3.0);
  const char* states[] = {"CA", "NY", "TX", "WA", "FL"};
  table::Column d1(table::DataType::kDouble, 0), d2(table::DataType::kDouble, 0),
      i1(table::DataType::kInt64, 0), b1(table::DataType::kBool, 0),
      t1(table::DataType::kTimestamp, 0), s1(table::DataType::kString, 0),
      s2(table::DataType::kString, 0), y(table::DataType::kInt64, 0);
  Prepared data;
  for (size_t row = 0; row < rows; ++row) {
    const double draw = uniform(rng);
    if (draw < 0.1) {
      d1.AppendNull();
    } else if (draw < 0.15) {
      d1.AppendDouble(std::nan(""));
    } else {
      d1.AppendDouble(normal(rng) * 1e3 + 1e-7);
    }
    d2.AppendDouble(uniform(rng) < 0.05 ? -std::numeric_limits<double>::infinity() : normal(rng));
    if (uniform(rng) < 0.1) {
      i1.AppendNull();
    } else {
      i1.AppendInt64(static_cast<int64_t>(normal(rng) * 1e12) + (int64_t{1} << 53) + 1);
    }
    b1.AppendBool(uniform(rng) < 0.3);
    t1.AppendInt64(1700000000000000 + static_cast<int64_t>(row) * 3600000000);
    s1.AppendString(states[static_cast<size_t>(uniform(rng) * 5)]);
    if (uniform(rng) < 0.2) {
      s2.AppendNull();
    } else {
      s2.AppendString(unseen && row % 4 == 2 && row > rows / 2 ? "ZZ" : states[row % 3]);
    }
    y.AppendInt64(uniform(rng) < 0.4 ? 1 : 0);
    data.splits[row % 4 == 2 ? 2 : row % 4 == 3 ? 1 : 0].push_back(static_cast<uint32_t>(row));
  }
  std::shuffle(data.splits[0].begin(), data.splits[0].end(), rng);  // any row order
  const std::pair<const char*, table::Column*> columns[] = {{"d1", &d1}, {"s1", &s1}, {"i1", &i1},
                                                            {"b1", &b1}, {"t1", &t1}, {"d2", &d2},
                                                            {"s2", &s2}, {"y", &y}};
  for (const auto& [name, column] : columns) {
    EXPECT_TRUE(data.dataset.table.AddColumn(name, std::move(*column)).ok());
    if (std::string(name) != "y") data.dataset.input_columns.push_back(name);
  }
  data.dataset.time_column = "t1";
  return data;
}

TransformSpec Spec(TransformKind kind, const std::string& column) {
  TransformSpec spec;
  spec.kind = kind;
  spec.column = column;
  return spec;
}

// What FitTransforms did before it had a fast way: fit on every input, apply,
// refuse strings.
Result<nlohmann::json> FitOnEveryInput(const std::vector<TransformSpec>& specs,
                                       const Prepared& data) {
  table::Table train;
  for (const std::string& name : data.dataset.input_columns) {
    EXPECT_TRUE(
        train.AddColumn(name, data.dataset.table.GetColumn(name).value()->Gather(data.splits[0]))
            .ok());
  }
  ASSIGN_OR_RETURN(FittedTransforms fitted, FittedTransforms::Fit(specs, train));
  ASSIGN_OR_RETURN(table::Table applied, fitted.Apply(train));
  for (const table::Field& field : applied.fields()) {
    if (field.type == table::DataType::kString) {
      return InvalidArgument("input '" + field.name +
                             "' is a string: add a one_hot or ordinal transform for it");
    }
  }
  return fitted.ToJson();
}

// TrainModels runs its hook after the baselines and before XGBoost; the
// hook's error is the step's, and XGBoost does not start.
TEST(TrainModels, HookRunsBeforeXgboostAndItsErrorStopsTheStep) {
  Prepared data = RandomPrepared(7, 2001, false);
  std::vector<std::string>& inputs = data.dataset.input_columns;
  inputs.erase(std::find(inputs.begin(), inputs.end(), "d2"));  // -inf: XGBoost refuses it
  Result<PipelineSpec> pipeline = ParsePipeline(R"yaml(name: hook
spine: {source: fake}
label: y
request_inputs: [d1, s1, i1, b1, t1, s2]
split: {kind: time, train_until: 2024-03-01, validation_until: 2024-03-20}
transforms: [{kind: ordinal, column: s1}, {kind: ordinal, column: s2}]
model: {max_depth: 2, rounds: 3, seed: 1}
)yaml",
                                                "hook.yaml");
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  Result<nlohmann::json> transforms = FitTransforms(*pipeline, data);
  ASSERT_TRUE(transforms.ok()) << transforms.status().ToString();
  PhaseClock clock;
  std::vector<std::string> before_hook;
  auto failing = [&]() -> Status {
    for (const Phase& phase : clock.phases()) before_hook.push_back(phase.name);
    return Internal("the training set file could not be written");
  };
  Result<TrainedModels> failed = TrainModels(*pipeline, data, transforms->dump(), &clock, failing);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(), "the training set file could not be written");
  EXPECT_EQ(before_hook,
            (std::vector<std::string>{"matrices (transforms)", "baselines (constant, linear)"}));
  for (const Phase& phase : clock.phases()) EXPECT_NE(phase.name, "xgboost (DMatrix + boosting)");

  int calls = 0;
  Result<TrainedModels> trained = TrainModels(*pipeline, data, transforms->dump(), nullptr, [&] {
    ++calls;
    return Status::Ok();
  });
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();
  EXPECT_EQ(calls, 1);
  Result<TrainedModels> without_hook = TrainModels(*pipeline, data, transforms->dump());
  ASSERT_TRUE(without_hook.ok()) << without_hook.status().ToString();
  ASSERT_EQ(trained->files.size(), without_hook->files.size());
  for (size_t file = 0; file < trained->files.size(); ++file) {
    EXPECT_EQ(trained->files[file].bytes, without_hook->files[file].bytes)
        << trained->files[file].name;
  }
}

TEST(SplitMatrix, FastWayEqualsTransformingEveryInput) {
  TransformSpec impute = Spec(TransformKind::kImpute, "d1");
  TransformSpec median = Spec(TransformKind::kImpute, "i1");
  median.strategy = ImputeStrategy::kMedian;
  TransformSpec clip = Spec(TransformKind::kClip, "d2");
  clip.lower = -2.0;
  TransformSpec bucketize = Spec(TransformKind::kBucketize, "d1");
  bucketize.edges = {-100.0, 0.0, 250.5};
  TransformSpec strict = Spec(TransformKind::kOrdinal, "s2");
  strict.unknown = UnknownCategory::kError;
  TransformSpec one_hot_copy = Spec(TransformKind::kOneHot, "b1");
  TransformSpec positive = Spec(TransformKind::kClip, "d2");
  positive.lower = 0.5;
  TransformSpec fill_string = Spec(TransformKind::kImpute, "s2");
  fill_string.strategy = ImputeStrategy::kConstant;
  fill_string.fill_string = "none";
  const std::vector<std::vector<TransformSpec>> cases = {
      // The flights shape: ordinal encodings, everything else passes through.
      {Spec(TransformKind::kOrdinal, "s1"), Spec(TransformKind::kOrdinal, "s2")},
      // Chains on one column, one-hot in the middle of the inputs.
      {impute, Spec(TransformKind::kStandardScale, "d1"), Spec(TransformKind::kOneHot, "s1"),
       median, clip, Spec(TransformKind::kOneHot, "s2"), Spec(TransformKind::kOrdinal, "b1")},
      {bucketize, Spec(TransformKind::kOrdinal, "s1"), fill_string,
       Spec(TransformKind::kOneHot, "s2")},
      // An unknown category in the test split is an error there.
      {Spec(TransformKind::kOrdinal, "s1"), strict},
      // A string left unencoded; a column that is no input; a column a one-hot
      // replaced; none at all.
      {Spec(TransformKind::kOrdinal, "s1")},
      {Spec(TransformKind::kOrdinal, "s1"), Spec(TransformKind::kOrdinal, "nope"),
       Spec(TransformKind::kOrdinal, "s2")},
      {Spec(TransformKind::kOrdinal, "s2"), Spec(TransformKind::kOneHot, "s1"),
       Spec(TransformKind::kOrdinal, "s1")},
      {},
      // A one-hot output named like another input.
      {one_hot_copy, Spec(TransformKind::kOrdinal, "s1"), Spec(TransformKind::kOrdinal, "s2")},
      // The last transform fails on the training split (log of negatives) ...
      {Spec(TransformKind::kOrdinal, "s1"), Spec(TransformKind::kOrdinal, "s2"),
       Spec(TransformKind::kLog, "d2")},
      // ... after a duplicate name; clipped first, it does not fail.
      {one_hot_copy, Spec(TransformKind::kOrdinal, "s1"), Spec(TransformKind::kOrdinal, "s2"),
       Spec(TransformKind::kLog, "d2")},
      {Spec(TransformKind::kOrdinal, "s1"), Spec(TransformKind::kOrdinal, "s2"), positive,
       Spec(TransformKind::kLog, "d2")},
  };
  for (size_t index = 0; index < cases.size(); ++index) {
    Prepared data = RandomPrepared(static_cast<uint32_t>(index + 1), 3001, index == 3);
    if (index == 8 || index == 10) {  // an input "b1=true" beside b1's one-hot
      table::Column copy = *data.dataset.table.GetColumn("d2").value();
      ASSERT_TRUE(data.dataset.table.AddColumn("b1=true", std::move(copy)).ok());
      data.dataset.input_columns.push_back("b1=true");
    }
    PipelineSpec pipeline;
    pipeline.transforms = cases[index];
    const std::string name = "case " + std::to_string(index);
    Result<nlohmann::json> fast = FitTransforms(pipeline, data);
    Result<nlohmann::json> full = FitOnEveryInput(cases[index], data);
    ASSERT_EQ(fast.ok(), full.ok())
        << name << ": " << fast.status().ToString() << " / " << full.status().ToString();
    if (!fast.ok()) {
      EXPECT_EQ(fast.status().ToString(), full.status().ToString()) << name;
      continue;
    }
    EXPECT_EQ(fast->dump(), full->dump()) << name;
    FittedTransforms fitted = *FittedTransforms::FromJson(*fast);
    for (int split = 0; split < 3; ++split) {
      Result<DenseMatrix> quick = SplitMatrix(data, split, fitted, true);
      Result<DenseMatrix> slow = SplitMatrix(data, split, fitted, false);
      const std::string where = name + ", split " + std::to_string(split);
      ASSERT_EQ(quick.ok(), slow.ok())
          << where << ": " << quick.status().ToString() << " / " << slow.status().ToString();
      if (!quick.ok()) {
        EXPECT_EQ(quick.status().ToString(), slow.status().ToString()) << where;
        continue;
      }
      EXPECT_EQ(quick->rows, slow->rows) << where;
      EXPECT_EQ(quick->cols, slow->cols) << where;
      EXPECT_EQ(quick->feature_names, slow->feature_names) << where;
      ASSERT_EQ(quick->values.size(), slow->values.size()) << where;
      if (!quick->values.empty()) {  // memcmp takes no null pointers, even for 0 bytes
        EXPECT_EQ(std::memcmp(quick->values.data(), slow->values.data(),
                              quick->values.size() * sizeof(float)),
                  0)
            << where;
      }
    }
  }
}

// The evaluate step predicts the XGBoost model with keel's compiled trees
// (tree_runtime.h); its outputs must be XGBoost's own, bit for bit. Every
// test row is a golden case here (JSON doubles round-trip exactly), compared
// with XgboostModel::PredictInPlace on the same model matrix, which has
// missing values (null and NaN inputs). Without the train step's
// kept margins (XGBoost's own of the training rows) the compiled trees
// predict the training rows too: the profile must not change by a byte.
TEST(Evaluate, PredictsExactlyAsXgboostOnRowsWithMissingValues) {
  for (Task task : {Task::kBinaryClassification, Task::kRegression}) {
    SCOPED_TRACE(std::string(TaskName(task)));
    Prepared data = RandomPrepared(task == Task::kRegression ? 11 : 12, 8001, false);
    // A label the inputs explain (with noise), so the trees are deep and varied.
    const table::Table& table = data.dataset.table;
    const table::Column& d1 = *table.GetColumn("d1").value();
    const table::Column& d2 = *table.GetColumn("d2").value();
    const table::Column& i1 = *table.GetColumn("i1").value();
    table::Column target(
        task == Task::kRegression ? table::DataType::kDouble : table::DataType::kInt64, 0);
    std::mt19937_64 rng(5);
    std::normal_distribution<double> noise(0.0, 1.0);
    for (size_t row = 0; row < table.num_rows(); ++row) {
      double score = noise(rng);
      if (d1.IsValid(row) && !std::isnan(d1.doubles()[row])) score += d1.doubles()[row] / 1e3;
      if (std::isfinite(d2.doubles()[row])) score -= 0.7 * d2.doubles()[row];
      if (i1.IsValid(row)) score += i1.NumericAt(row) > 9.0072e15 ? 0.5 : -0.5;
      if (task == Task::kRegression) {
        target.AppendDouble(score * 10);
      } else {
        target.AppendInt64(score > 0 ? 1 : 0);
      }
    }
    ASSERT_TRUE(data.dataset.table.AddColumn("target", std::move(target)).ok());
    Result<PipelineSpec> pipeline =
        ParsePipeline(std::string("name: random\ntask: ") + std::string(TaskName(task)) + R"yaml(
spine: {source: fake, keys: [s1]}
label: target
request_inputs: [d1, s1, i1, b1, t1, d2, s2]
split: {kind: random, validation: 0.25, test: 0.25, seed: 1}
transforms:
  - {kind: ordinal, column: s1}
  - {kind: ordinal, column: s2}
  - {kind: clip, column: d2, lower: -8}
model: {max_depth: 6, eta: 0.1, rounds: 80, seed: 3}
slices: [s1]
golden_cases: 100000
)yaml",
                      "random.yaml");
    ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
    Result<nlohmann::json> transforms_json = FitTransforms(*pipeline, data);
    ASSERT_TRUE(transforms_json.ok()) << transforms_json.status().ToString();
    Result<TrainedModels> trained = TrainModels(*pipeline, data, transforms_json->dump());
    ASSERT_TRUE(trained.ok()) << trained.status().ToString();
    std::vector<BundleFile> models = trained->files;
    models.push_back({"transforms.json", transforms_json->dump()});
    Result<std::vector<BundleFile>> evaluated = Evaluate(*pipeline, data, models);
    ASSERT_TRUE(evaluated.ok()) << evaluated.status().ToString();

    Result<FittedTransforms> transforms = FittedTransforms::FromJson(*transforms_json);
    ASSERT_TRUE(transforms.ok()) << transforms.status().ToString();
    Result<DenseMatrix> test = SplitMatrix(data, 2, *transforms);
    ASSERT_TRUE(test.ok()) << test.status().ToString();
    size_t missing = 0;
    for (float value : test->values) missing += std::isnan(value) ? 1 : 0;
    EXPECT_GT(missing, test->rows / 10);
    const std::string& model_bytes = trained->files[0].bytes;
    ASSERT_EQ(trained->files[0].name, "model.ubj");
    Result<std::unique_ptr<XgboostModel>> xgboost = XgboostModel::Load(model_bytes);
    ASSERT_TRUE(xgboost.ok()) << xgboost.status().ToString();
    EXPECT_GE((*xgboost)->num_rounds(), 80);
    Result<std::vector<double>> expected =
        (*xgboost)->PredictInPlace(test->values.data(), test->rows, false);
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();

    nlohmann::json golden;
    for (const BundleFile& file : *evaluated) {
      if (file.name == "golden_cases.json") golden = nlohmann::json::parse(file.bytes);
    }
    ASSERT_EQ(golden.size(), test->rows);
    std::set<double> distinct;
    for (size_t row = 0; row < test->rows; ++row) {
      const double prediction = golden[row]["prediction"].get<double>();
      ASSERT_EQ(prediction, (*expected)[row]) << "test row " << row;
      distinct.insert(prediction);
    }
    EXPECT_GT(distinct.size(), test->rows / 2) << "the trees tell the rows apart";

    std::vector<BundleFile> without_margins;
    for (const BundleFile& file : models) {
      if (file.name != kTrainingMarginsFile) without_margins.push_back(file);
    }
    ASSERT_EQ(without_margins.size() + 1, models.size());
    Result<std::vector<BundleFile>> again = Evaluate(*pipeline, data, without_margins);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    ASSERT_EQ(again->size(), evaluated->size());
    for (size_t index = 0; index < again->size(); ++index) {
      EXPECT_EQ((*again)[index].name, (*evaluated)[index].name);
      EXPECT_TRUE((*again)[index].bytes == (*evaluated)[index].bytes) << (*again)[index].name;
    }
  }
}

}  // namespace
}  // namespace keel::train
