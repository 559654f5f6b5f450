#include "train/runner_steps.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "common/files.h"
#include "common/hash.h"
#include "common/time.h"
#include "train/baselines.h"
#include "train/matrix.h"
#include "train/metrics.h"
#include "train/transforms.h"
#include "train/tree_runtime.h"
#include "train/xgboost_model.h"
#include "validate/profile.h"

namespace keel::train {
namespace {

const char* kSplitNames[] = {"training", "validation", "test"};

Result<const table::Column*> Column(const BuiltDataset& dataset, const std::string& name) {
  Result<const table::Column*> column = dataset.table.GetColumn(name);
  if (!column.ok()) {
    return InvalidArgument("the training set has no column '" + name +
                           "' (columns: " + dataset.table.SchemaToString() + ")");
  }
  return column;
}

// The raw input columns of one split.
table::Table InputTable(const Prepared& data, int split) {
  table::Table out;
  for (const std::string& name : data.dataset.input_columns) {
    const table::Column* column = data.dataset.table.GetColumn(name).value();
    Status status = out.AddColumn(name, column->Gather(data.splits[split]));
    (void)status;  // names are distinct: CheckDataset ran first
  }
  return out;
}

// The input columns the transforms read (in input order), when running the
// transforms on those alone gives what running them on every input gives:
// every transform names an input column, and none a column that a one-hot
// transform before it replaced. Otherwise nullopt (the caller then transforms
// every input, which also gives the errors their full context).
std::optional<std::vector<std::string>> TransformedInputs(const std::vector<std::string>& inputs,
                                                          const std::vector<TransformSpec>& specs) {
  std::set<std::string> named, one_hot;
  for (const TransformSpec& spec : specs) {
    if (std::find(inputs.begin(), inputs.end(), spec.column) == inputs.end()) return std::nullopt;
    if (one_hot.count(spec.column) > 0) return std::nullopt;
    if (spec.kind == TransformKind::kOneHot) one_hot.insert(spec.column);
    named.insert(spec.column);
  }
  std::vector<std::string> out;
  for (const std::string& name : inputs) {
    if (named.count(name) > 0) out.push_back(name);
  }
  return out;
}

// The column names FittedTransforms::Apply gives a table of `inputs`, or
// nullopt when it would fail on a name (a missing or duplicate column).
std::optional<std::vector<std::string>> TransformedNames(const std::vector<std::string>& inputs,
                                                         const FittedTransforms& transforms) {
  std::vector<std::string> names = inputs;
  for (const FittedTransform& transform : transforms.transforms()) {
    auto found = std::find(names.begin(), names.end(), transform.spec().column);
    if (found == names.end()) return std::nullopt;
    const std::vector<std::string> outputs = transform.OutputNames();
    const size_t position = static_cast<size_t>(found - names.begin());
    names.erase(found);
    for (const std::string& output : outputs) {
      if (std::find(names.begin(), names.end(), output) != names.end()) return std::nullopt;
    }
    names.insert(names.begin() + static_cast<std::ptrdiff_t>(position), outputs.begin(),
                 outputs.end());
  }
  return names;
}

std::vector<TransformSpec> Specs(const FittedTransforms& transforms) {
  std::vector<TransformSpec> specs;
  for (const FittedTransform& transform : transforms.transforms()) {
    specs.push_back(transform.spec());
  }
  return specs;
}

// The named columns of one split (gathered).
table::Table GatherColumns(const Prepared& data, int split, const std::vector<std::string>& names) {
  table::Table out;
  for (const std::string& name : names) {
    const table::Column* column = data.dataset.table.GetColumn(name).value();
    Status status = out.AddColumn(name, column->Gather(data.splits[split]));
    (void)status;  // distinct input names
  }
  return out;
}

// One matrix column, rows [begin, end): BuildDenseMatrix's value of row
// rows[r] of `column` (of row r itself when `rows` is null), written with
// `stride` floats between rows.
void FillMatrixColumn(const table::Column& column, const uint32_t* rows, size_t begin, size_t end,
                      float* out, size_t stride) {
  constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();
  const bool nulls = !column.validity().empty();
  auto fill = [&](auto value_of) {
    for (size_t r = begin; r < end; ++r, out += stride) {
      const size_t row = rows != nullptr ? rows[r] : r;
      *out = !nulls || column.IsValid(row) ? static_cast<float>(value_of(row)) : kMissing;
    }
  };
  switch (column.type()) {
    case table::DataType::kBool:
      fill([&](size_t row) { return static_cast<double>(column.bools()[row]); });
      return;
    case table::DataType::kInt64:
    case table::DataType::kTimestamp:
      fill([&](size_t row) { return static_cast<double>(column.ints()[row]); });
      return;
    case table::DataType::kDouble:
      fill([&](size_t row) { return column.doubles()[row]; });
      return;
    case table::DataType::kString:
      fill([](size_t) { return 0.0; });  // refused before
      return;
  }
}

// The model matrix of one split, the same as
// BuildDenseMatrix(transforms.Apply(InputTable(data, split)), <its columns>)
// when only some inputs are transformed: those are gathered and transformed,
// the others read straight from the training set; two threads fill the rows.
// nullopt when the fast way does not apply (TransformedInputs, TransformedNames)
// or the transforms fail (the full way then gives the error).
std::optional<Result<DenseMatrix>> FastSplitMatrix(const Prepared& data, int split,
                                                   const FittedTransforms& transforms) {
  const std::vector<std::string>& inputs = data.dataset.input_columns;
  std::optional<std::vector<std::string>> transformed_inputs =
      TransformedInputs(inputs, Specs(transforms));
  if (!transformed_inputs) return std::nullopt;
  std::optional<std::vector<std::string>> names = TransformedNames(inputs, transforms);
  if (!names || names->empty()) return std::nullopt;
  Result<table::Table> transformed =
      transforms.Apply(GatherColumns(data, split, *transformed_inputs));
  if (!transformed.ok()) return std::nullopt;  // the full way gives its error
  const std::vector<uint32_t>& rows = data.splits[split];
  std::vector<std::pair<const table::Column*, const uint32_t*>> sources;
  for (const std::string& name : *names) {
    const int index = transformed->FindColumn(name);
    const table::Column* column = index >= 0 ? &transformed->column(static_cast<size_t>(index))
                                             : data.dataset.table.GetColumn(name).value();
    if (!table::IsNumeric(column->type()) && column->type() != table::DataType::kTimestamp) {
      return Result<DenseMatrix>(InvalidArgument("feature column '" + name + "' is " +
                                                 std::string(table::DataTypeName(column->type())) +
                                                 "; encode it as numbers first"));
    }
    sources.push_back({column, index >= 0 ? nullptr : rows.data()});
  }
  DenseMatrix matrix;
  matrix.rows = rows.size();
  matrix.cols = sources.size();
  matrix.feature_names = std::move(*names);
  matrix.values.resize(matrix.rows * matrix.cols);
  // Blocks of rows, column by column inside a block (the block's rows stay in
  // cache); the first half of the rows on a new thread, the rest here.
  auto fill = [&](size_t begin, size_t end) {
    constexpr size_t kBlock = 2048;
    for (size_t first = begin; first < end; first += kBlock) {
      const size_t last = std::min(end, first + kBlock);
      for (size_t col = 0; col < matrix.cols; ++col) {
        FillMatrixColumn(*sources[col].first, sources[col].second, first, last,
                         matrix.values.data() + first * matrix.cols + col, matrix.cols);
      }
    }
  };
  const size_t middle = matrix.rows / 2;
  std::thread first_half([&] { fill(0, middle); });
  fill(middle, matrix.rows);
  first_half.join();
  return Result<DenseMatrix>(std::move(matrix));
}

Result<std::vector<double>> SplitLabels(const PipelineSpec& pipeline, const Prepared& data,
                                        int split) {
  ASSIGN_OR_RETURN(const table::Column* label, Column(data.dataset, pipeline.label));
  if (!table::IsNumeric(label->type()) || label->HasNulls()) {
    return LabelValues(label->Gather(data.splits[split]));  // its error
  }
  const std::vector<uint32_t>& rows = data.splits[split];
  std::vector<double> labels(rows.size());
  for (size_t index = 0; index < rows.size(); ++index)
    labels[index] = label->NumericAt(rows[index]);
  return labels;
}

const std::string* FindFile(const std::vector<BundleFile>& files, const std::string& name) {
  for (const BundleFile& file : files) {
    if (file.name == name) return &file.bytes;
  }
  return nullptr;
}

Result<nlohmann::json> Metrics(Task task, std::span<const double> labels,
                               std::span<const double> scores, double threshold) {
  if (task == Task::kRegression) {
    ASSIGN_OR_RETURN(RegressionMetrics m, EvaluateRegression(labels, scores));
    return nlohmann::json{{"count", m.count}, {"rmse", m.rmse}, {"mae", m.mae}, {"r2", m.r2}};
  }
  ASSIGN_OR_RETURN(BinaryMetrics m, EvaluateBinary(labels, scores, threshold));
  return nlohmann::json{{"count", m.count},
                        {"positives", m.positives},
                        {"roc_auc", m.roc_auc},
                        {"pr_auc", m.pr_auc},
                        {"log_loss", m.log_loss},
                        {"brier", m.brier},
                        {"ece", m.ece},
                        {"threshold", m.at_threshold.threshold},
                        {"precision", m.at_threshold.precision},
                        {"recall", m.at_threshold.recall},
                        {"f1", m.at_threshold.f1}};
}

nlohmann::json CellJson(const table::Column& column, size_t row) {
  if (!column.IsValid(row)) return nullptr;
  if (column.type() == table::DataType::kString) return std::string(column.StringAt(row));
  if (column.type() == table::DataType::kBool) return column.bools()[row] != 0;
  if (column.type() == table::DataType::kDouble) {
    double value = column.doubles()[row];
    return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
  }
  return column.ints()[row];
}

}  // namespace

Result<DenseMatrix> SplitMatrix(const Prepared& data, int split, const FittedTransforms& transforms,
                                bool fast) {
  if (fast) {
    std::optional<Result<DenseMatrix>> matrix = FastSplitMatrix(data, split, transforms);
    if (matrix) return std::move(*matrix);
  }
  table::Table inputs = InputTable(data, split);
  Result<table::Table> transformed = transforms.Apply(inputs);
  if (!transformed.ok()) {
    return transformed.status().WithContext(std::string(kSplitNames[split]) + " split");
  }
  std::vector<std::string> names;
  for (const table::Field& field : transformed->fields()) names.push_back(field.name);
  return BuildDenseMatrix(*transformed, names);
}

namespace {

// kSmallInts[v] = the decimal digits of v (< 10^4), padded with zero bytes.
constexpr std::array<std::array<char, 4>, 10000> kSmallInts = [] {
  std::array<std::array<char, 4>, 10000> table{};
  for (size_t value = 0; value < table.size(); ++value) {
    size_t length = value >= 1000 ? 4 : value >= 100 ? 3 : value >= 10 ? 2 : 1;
    for (size_t rest = value, at = length; at > 0; rest /= 10)
      table[value][--at] = static_cast<char>('0' + rest % 10);
  }
  return table;
}();

// The texts a sample hashes (SampleRows: the seed, then per value '\x1f' and
// Column::ValueToString), written for a block of rows at a time column by
// column into fixed slots of one reused buffer: no string per row or value,
// one loop per column type, and timestamps and doubles (slow to format)
// through a direct-mapped cache of their texts keyed by the value's bits,
// since spines repeat them (a spine sorted by time repeats each timestamp over
// a run of rows; a few distinct values recur all over).
// Thread-safety: one thread (the buffer and caches are mutable state).
class SampleTexts {
 public:
  static constexpr size_t kBlockRows = 128;

  // For rows of `table`, which must outlive this and not change meanwhile.
  SampleTexts(const table::Table& table, uint64_t seed) {
    prefix_ = std::to_string(seed);
    size_t slot = prefix_.size();
    for (size_t col = 0; col < table.num_columns(); ++col) {
      const table::Column& column = table.column(col);
      Source source;
      source.column = &column;
      source.type = column.type();
      if (!column.validity().empty()) source.validity = column.validity().data();
      switch (source.type) {
        case table::DataType::kBool:
          source.bools = column.bools().data();
          source.room = 5;  // "false"
          break;
        case table::DataType::kInt64:
          source.ints = column.ints().data();
          source.room = 20;  // "-9223372036854775808"
          break;
        case table::DataType::kString:
          source.offsets = column.string_offsets().data();
          source.chars = column.string_chars().data();
          source.chars_size = column.string_chars().size();
          source.room = kStringRoom;
          break;
        case table::DataType::kTimestamp:
          source.ints = column.ints().data();
          source.cache.resize(size_t{1} << kLogCacheEntries);
          source.room = kFormattedRoom;
          break;
        case table::DataType::kDouble:
          source.doubles = column.doubles().data();
          source.cache.resize(size_t{1} << kLogCacheEntries);
          source.room = kFormattedRoom;
          break;
      }
      slot += 1 + source.room;
      sources_.push_back(std::move(source));
    }
    // Writers store whole words past a value's end (up to kFormattedRoom bytes).
    stride_ = slot + kFormattedRoom;
    buffer_.resize(kBlockRows * stride_);
    for (size_t index = 0; index < kBlockRows; ++index) {
      std::memcpy(buffer_.data() + index * stride_, prefix_.data(), prefix_.size());
    }
  }

  // Writes the texts of rows [first, first + count); count <= kBlockRows.
  void Write(size_t first, size_t count) {
    first_ = first;
    for (size_t index = 0; index < count; ++index) {
      lengths_[index] = prefix_.size();
      too_long_[index] = false;
    }
    for (Source& source : sources_) {
      switch (source.type) {
        case table::DataType::kBool:
          WriteColumn(source, count, [bools = source.bools](size_t row, char* out) -> size_t {
            static constexpr char kText[2][8] = {"false", "true"};
            const size_t value = bools[row] != 0 ? 1 : 0;
            std::memcpy(out, kText[value], 8);
            return 5 - value;
          });
          break;
        case table::DataType::kInt64:
          WriteColumn(source, count, [ints = source.ints](size_t row, char* out) -> size_t {
            return WriteInt(ints[row], out);
          });
          break;
        case table::DataType::kString:
          WriteColumn(source, count,
                      [offsets = source.offsets, chars = source.chars,
                       chars_size = source.chars_size](size_t row, char* out) -> size_t {
                        const uint64_t begin = offsets[row];
                        const size_t size = offsets[row + 1] - begin;
                        if (size > kStringRoom) return kTooLong;
                        if (size <= 16 && begin + 16 <= chars_size) {
                          std::memcpy(out, chars + begin, 16);
                        } else {
                          std::memcpy(out, chars + begin, size);
                        }
                        return size;
                      });
          break;
        case table::DataType::kTimestamp:
          WriteColumn(source, count,
                      [&source, ints = source.ints, cache = source.cache.data()](
                          size_t row, char* out) -> size_t {
                        return WriteFormatted(source, cache, row, static_cast<uint64_t>(ints[row]),
                                              out);
                      });
          break;
        case table::DataType::kDouble:
          WriteColumn(source, count,
                      [&source, doubles = source.doubles, cache = source.cache.data()](
                          size_t row, char* out) -> size_t {
                        uint64_t bits = 0;
                        std::memcpy(&bits, &doubles[row], sizeof(bits));
                        return WriteFormatted(source, cache, row, bits, out);
                      });
          break;
      }
    }
  }

  // The text of row first + index of the last Write; valid until the next
  // call of Write or Text.
  std::string_view Text(size_t index) {
    if (!too_long_[index]) {
      return std::string_view(buffer_.data() + index * stride_, lengths_[index]);
    }
    // A value longer than its slot's room: spelled the plain way.
    long_text_ = prefix_;
    for (const Source& source : sources_) {
      long_text_ += '\x1f';
      long_text_ += source.column->ValueToString(first_ + index);
    }
    return long_text_;
  }

 private:
  static constexpr size_t kStringRoom = 64;
  // A cache entry's room; ValueToString writes at most 29 bytes for a
  // timestamp ("-292277-01-09 04:00:54.775808") and 24 for a double
  // ("%.17g": "-1.7976931348623157e+308").
  static constexpr size_t kFormattedRoom = 32;
  static constexpr int kLogCacheEntries = 9;
  static constexpr size_t kTooLong = ~size_t{0};

  struct CacheEntry {
    char text[kFormattedRoom] = {};
    uint64_t bits = 0;
    size_t length = 0;  // 0: empty (no text is empty)
  };
  struct Source {
    const table::Column* column = nullptr;
    table::DataType type = table::DataType::kInt64;
    size_t room = 0;                    // the most bytes a value's text takes in a slot
    const uint8_t* validity = nullptr;  // null: no nulls
    const uint8_t* bools = nullptr;
    const int64_t* ints = nullptr;
    const double* doubles = nullptr;
    const uint64_t* offsets = nullptr;
    const char* chars = nullptr;
    size_t chars_size = 0;
    std::vector<CacheEntry> cache;  // timestamps and doubles
    int64_t midnight = 0;           // timestamps: the last day SecondOfTheDay saw
    std::string midnight_text;      // and FormatTimestamp(midnight), "" before
  };

  // Appends '\x1f' and the text of each row's value of `source` to the rows'
  // slots; write(row, out) writes a valid value's text at `out` and returns
  // its length, or kTooLong (writing nothing) when it exceeds source.room.
  template <typename WriteValue>
  void WriteColumn(const Source& source, size_t count, WriteValue write) {
    // Locals: the stores of text may alias any member, which would be
    // reloaded after each.
    char* const buffer = buffer_.data();
    const size_t stride = stride_;
    const size_t first = first_;
    const uint8_t* const validity = source.validity;
    for (size_t index = 0; index < count; ++index) {
      char* out = buffer + index * stride + lengths_[index];
      *out++ = '\x1f';
      const size_t row = first + index;
      size_t length = 4;
      if (validity != nullptr && validity[row] == 0) {
        std::memcpy(out, "null", 4);
      } else {
        length = write(row, out);
        if (length == kTooLong) {
          too_long_[index] = true;
          length = 0;
        }
      }
      lengths_[index] += 1 + length;
    }
  }

  // Writes std::to_chars's text of `value` at `out` (20 bytes of room; it may
  // store past the text) and returns its length; values in [0, 10^4) (most
  // integer columns') from a table.
  static size_t WriteInt(int64_t value, char* out) {
    if (value >= 0 && value < static_cast<int64_t>(kSmallInts.size())) {
      std::memcpy(out, kSmallInts[static_cast<size_t>(value)].data(), 4);
      return 1 + (value >= 10) + (value >= 100) + (value >= 1000);
    }
    return static_cast<size_t>(std::to_chars(out, out + 20, value).ptr - out);
  }

  // Writes the text of a valid timestamp or double row (bits: the value's)
  // of `source` (cache: source.cache's) at `out` (kFormattedRoom bytes
  // stored) and returns its length, or kTooLong when it exceeds kFormattedRoom.
  static size_t WriteFormatted(Source& source, CacheEntry* cache, size_t row, uint64_t bits,
                               char* out) {
    CacheEntry& entry = cache[(bits * 0x9E3779B97F4A7C15ULL) >> (64 - kLogCacheEntries)];
    if (entry.length == 0 || entry.bits != bits) [[unlikely]] {
      if (source.type != table::DataType::kTimestamp ||
          !SecondOfTheDay(source, static_cast<int64_t>(bits), entry.text)) {
        const std::string text = source.column->ValueToString(row);
        if (text.empty() || text.size() > kFormattedRoom) return kTooLong;
        std::memcpy(entry.text, text.data(), text.size());
        entry.length = text.size();
      } else {
        entry.length = 19;
      }
      entry.bits = bits;
    }
    std::memcpy(out, entry.text, kFormattedRoom);
    return entry.length;
  }

  // A spine's timestamps are mostly new whole seconds of a few days: when
  // `value` is a whole second of the day whose midnight FormatTimestamp spells
  // "<date> 00:00:00" (19 bytes, as it does for years 0-9999), writes its
  // text, that date and the time of day "HH:MM:SS" (FormatTimestamp's
  // spelling), to `text` (19 bytes) and returns true; else false.
  static bool SecondOfTheDay(Source& source, int64_t value, char* text) {
    constexpr int64_t kLimit = int64_t{1} << 62;  // days of these cannot overflow
    if (value % kMicrosPerSecond != 0 || value <= -kLimit || value >= kLimit) return false;
    const int64_t midnight = FloorToHop(value, kMicrosPerDay);
    if (midnight != source.midnight || source.midnight_text.empty()) {
      source.midnight = midnight;
      source.midnight_text = FormatTimestamp(midnight);
    }
    if (source.midnight_text.size() != 19 ||
        source.midnight_text.compare(10, 9, " 00:00:00") != 0) {
      return false;
    }
    const int64_t seconds = (value - midnight) / kMicrosPerSecond;
    std::memcpy(text, source.midnight_text.data(), 11);
    const int64_t fields[3] = {seconds / 3600, seconds / 60 % 60, seconds % 60};
    for (size_t field = 0; field < 3; ++field) {
      std::memcpy(text + 11 + 3 * field,
                  kSmallInts[static_cast<size_t>(100 + fields[field])].data() + 1, 2);
      if (field < 2) text[13 + 3 * field] = ':';
    }
    return true;
  }

  std::string prefix_;
  std::vector<Source> sources_;
  size_t stride_ = 0;
  std::vector<char> buffer_;  // kBlockRows slots of stride_ bytes, each starting with prefix_
  size_t first_ = 0;
  size_t lengths_[kBlockRows] = {};
  bool too_long_[kBlockRows] = {};
  std::string long_text_;
};

}  // namespace

std::vector<uint32_t> SampleRows(const table::Table& table, double fraction, uint64_t seed,
                                 int threads) {
  std::vector<uint32_t> rows;
  const double limit = fraction * 18446744073709551616.0;  // 2^64
  const size_t num_rows = table.num_rows();
  if (fraction >= 1.0) {
    rows.resize(num_rows);
    for (size_t row = 0; row < rows.size(); ++row) rows[row] = static_cast<uint32_t>(row);
    return rows;
  }
  if (fraction <= 0.0) return rows;  // no hash is below 0
  // A row stays unless static_cast<double>(hash) >= limit. That conversion is
  // monotonic, so the hashes kept are those below the least hash it takes to
  // `limit` or above (found by bisection): integer compares, no conversion.
  uint64_t threshold = std::numeric_limits<uint64_t>::max();
  bool keep_all = !(static_cast<double>(threshold) >= limit);  // a NaN fraction
  if (!keep_all) {
    uint64_t low = 0;
    while (low < threshold) {
      const uint64_t middle = low + (threshold - low) / 2;
      if (static_cast<double>(middle) >= limit) {
        threshold = middle;
      } else {
        low = middle + 1;
      }
    }
  }
  // Each thread hashes one contiguous range of rows with texts of its own
  // (their caches are caches: a row's text does not depend on the range).
  auto sample_range = [&](size_t begin, size_t end, std::vector<uint32_t>* kept) {
    SampleTexts texts(table, seed);
    for (size_t first = begin; first < end; first += SampleTexts::kBlockRows) {
      const size_t count = std::min(SampleTexts::kBlockRows, end - first);
      texts.Write(first, count);
      for (size_t index = 0; index < count; ++index) {
        if (keep_all || Hash64(texts.Text(index)) < threshold) {
          kept->push_back(static_cast<uint32_t>(first + index));
        }
      }
    }
  };
  size_t parts = std::clamp<size_t>(static_cast<size_t>(std::max(threads, 1)), 1,
                                    std::max<size_t>(num_rows, 1));
  std::vector<std::vector<uint32_t>> kept(parts);
  std::vector<std::thread> pool;
  for (size_t part = 1; part < parts; ++part) {
    pool.emplace_back(sample_range, num_rows * part / parts, num_rows * (part + 1) / parts,
                      &kept[part]);
  }
  sample_range(0, num_rows / parts, &kept[0]);
  for (std::thread& thread : pool) thread.join();
  rows = std::move(kept[0]);
  for (size_t part = 1; part < parts; ++part) {
    rows.insert(rows.end(), kept[part].begin(), kept[part].end());
  }
  return rows;
}

Result<BuiltDataset> OrderDataset(const PipelineSpec& pipeline, BuiltDataset dataset) {
  ASSIGN_OR_RETURN(std::vector<uint32_t> order,
                   TrainingRowOrder(dataset.table, dataset.time_column, pipeline.spine_keys));
  dataset.table = GatherRows(dataset.table, order);
  return dataset;
}

Status CheckDataset(const PipelineSpec& pipeline, const BuiltDataset& dataset) {
  std::string where = "label '" + pipeline.label + "'";
  ASSIGN_OR_RETURN(const table::Column* label, Column(dataset, pipeline.label));
  if (!table::IsNumeric(label->type())) {
    return InvalidArgument(where + ": must be numeric or bool, not " +
                           std::string(table::DataTypeName(label->type())));
  }
  if (label->NullCount() > 0) {
    return InvalidArgument(where + ": " + std::to_string(label->NullCount()) +
                           " rows have no label");
  }
  for (const std::string& name : dataset.input_columns) {
    RETURN_IF_ERROR(Column(dataset, name).status());
  }
  for (const std::string& name : pipeline.slices) {
    RETURN_IF_ERROR(Column(dataset, name).status().WithContext("slices"));
  }
  return Status::Ok();
}

Result<std::array<std::vector<uint32_t>, 3>> SplitRows(const PipelineSpec& pipeline,
                                                       const BuiltDataset& dataset) {
  std::array<std::vector<uint32_t>, 3> splits;
  const SplitSpec& split = pipeline.split;
  ASSIGN_OR_RETURN(const table::Column* label_column, Column(dataset, pipeline.label));
  ASSIGN_OR_RETURN(std::vector<double> labels, LabelValues(*label_column));
  if (split.kind == SplitKind::kTime) {
    ASSIGN_OR_RETURN(const table::Column* time, Column(dataset, dataset.time_column));
    for (size_t row = 0; row < time->size(); ++row) {
      int64_t ts = time->IsValid(row) ? time->ints()[row] : kMinTimestamp;
      int which = ts < split.train_until ? 0 : ts < split.validation_until ? 1 : 2;
      splits[which].push_back(static_cast<uint32_t>(row));
    }
  } else {
    // Stratified: each label value is split in the same shares, rows ordered
    // by a hash of (seed, row) so the choice is random but reproducible.
    std::map<double, std::vector<std::pair<uint64_t, uint32_t>>> groups;
    for (size_t row = 0; row < labels.size(); ++row) {
      double key = pipeline.task == Task::kBinaryClassification ? labels[row] : 0.0;
      std::string text = std::to_string(split.seed) + ":" + std::to_string(row);
      groups[key].push_back({Hash64(text), static_cast<uint32_t>(row)});
    }
    for (auto& [key, rows] : groups) {
      std::sort(rows.begin(), rows.end());
      size_t test = static_cast<size_t>(std::llround(split.test * rows.size()));
      size_t validation = static_cast<size_t>(std::llround(split.validation * rows.size()));
      for (size_t index = 0; index < rows.size(); ++index) {
        int which = index < test ? 2 : index < test + validation ? 1 : 0;
        splits[which].push_back(rows[index].second);
      }
    }
    for (auto& rows : splits) std::sort(rows.begin(), rows.end());
  }
  if (splits[0].empty()) {
    std::string why = split.kind == SplitKind::kTime
                          ? "no row is before train_until " + FormatTimestamp(split.train_until)
                          : "no rows";
    return FailedPrecondition("empty training split: " + why + " (" +
                              std::to_string(labels.size()) + " rows in the training set)");
  }
  if (pipeline.task == Task::kBinaryClassification) {
    bool seen[2] = {false, false};
    for (uint32_t row : splits[0]) seen[labels[row] != 0] = true;
    if (!seen[0] || !seen[1]) {
      return FailedPrecondition("label '" + pipeline.label +
                                "' has one class in the training split (all " +
                                (seen[1] ? "1" : "0") + ")");
    }
  }
  return splits;
}

Result<nlohmann::json> FitTransforms(const PipelineSpec& pipeline, const Prepared& data,
                                     PhaseClock* clock) {
  // Fast: only the inputs the transforms name are gathered, fitted and
  // transformed; the string check reads the other inputs' types. The same
  // result as the full way below whenever TransformedInputs allows it and the
  // output names are distinct (else the full way runs, for its errors).
  const std::vector<std::string>& inputs = data.dataset.input_columns;
  std::optional<std::vector<std::string>> transformed_inputs =
      TransformedInputs(inputs, pipeline.transforms);
  if (transformed_inputs) {
    table::Table train = GatherColumns(data, 0, *transformed_inputs);
    MarkPhase(clock, "gather training inputs");
    table::Table applied;
    Result<FittedTransforms> fitted = FittedTransforms::Fit(pipeline.transforms, train, &applied);
    MarkPhase(clock, "fit");
    // On an error the full way runs, so that the error is the one it gives.
    std::optional<std::vector<std::string>> names;
    if (fitted.ok()) names = TransformedNames(inputs, *fitted);
    if (names) {
      for (const std::string& name : *names) {
        const int index = applied.FindColumn(name);
        const table::DataType type = index >= 0
                                         ? applied.fields()[static_cast<size_t>(index)].type
                                         : data.dataset.table.GetColumn(name).value()->type();
        if (type == table::DataType::kString) {
          return InvalidArgument("input '" + name +
                                 "' is a string: add a one_hot or ordinal transform for it");
        }
      }
      MarkPhase(clock, "apply (string check)");
      return fitted->ToJson();
    }
  }
  table::Table train = InputTable(data, 0);
  MarkPhase(clock, "gather training inputs");
  ASSIGN_OR_RETURN(FittedTransforms fitted, FittedTransforms::Fit(pipeline.transforms, train));
  MarkPhase(clock, "fit");
  ASSIGN_OR_RETURN(table::Table applied, fitted.Apply(train));
  MarkPhase(clock, "apply (string check)");
  for (const table::Field& field : applied.fields()) {
    if (field.type == table::DataType::kString) {
      return InvalidArgument("input '" + field.name +
                             "' is a string: add a one_hot or ordinal transform for it");
    }
  }
  return fitted.ToJson();
}

Result<TrainedModels> TrainModels(const PipelineSpec& pipeline, const Prepared& data,
                                  const std::string& transforms_json, PhaseClock* clock,
                                  const std::function<Status()>& before_xgboost) {
  ASSIGN_OR_RETURN(FittedTransforms transforms,
                   FittedTransforms::FromJson(nlohmann::json::parse(transforms_json)));
  ASSIGN_OR_RETURN(DenseMatrix train, SplitMatrix(data, 0, transforms));
  ASSIGN_OR_RETURN(std::vector<double> train_labels, SplitLabels(pipeline, data, 0));
  ASSIGN_OR_RETURN(DenseMatrix valid, SplitMatrix(data, 1, transforms));
  ASSIGN_OR_RETURN(std::vector<double> valid_labels, SplitLabels(pipeline, data, 1));
  MarkPhase(clock, "matrices (transforms)");
  XgboostParams params = pipeline.model;
  params.task = pipeline.task;
  if (params.early_stopping_rounds > 0 && valid.rows == 0) {
    return FailedPrecondition(
        "early stopping needs validation rows; the validation split is empty");
  }
  // The baselines first (their errors wait until XGBoost's are known).
  Result<std::unique_ptr<ConstantModel>> constant =
      ConstantModel::Train(pipeline.task, train, train_labels);
  LinearScaling scaling = LinearScaling::Fit(train);
  Result<std::unique_ptr<LinearModel>> linear =
      LinearModel::Train({pipeline.task, pipeline.linear_l2}, scaling.Apply(train), train_labels);
  MarkPhase(clock, "baselines (constant, linear)");
  if (before_xgboost) {
    RETURN_IF_ERROR(before_xgboost());
    MarkPhase(clock, "wait for the training set file");
  }
  XgboostTrainingReport report;
  auto boosting_start = std::chrono::steady_clock::now();
  const double boosting_start_cpu = ProcessCpuSeconds();
  ASSIGN_OR_RETURN(std::unique_ptr<XgboostModel> model,
                   XgboostModel::Train(params, train, train_labels,
                                       valid.rows > 0 ? &valid : nullptr, valid_labels, &report,
                                       /*keep_training_margins=*/true));
  // Copying the training margins is keel's work, not XGBoost's: it is left
  // out of XGBoost's time (and its own phase).
  const double margins_seconds = report.training_margins_seconds;
  double xgboost_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - boosting_start).count() -
      margins_seconds;
  const double xgboost_cpu_seconds = ProcessCpuSeconds() - boosting_start_cpu - margins_seconds;
  MarkPhase(clock, "xgboost (DMatrix + boosting)");
  if (!constant.ok()) return constant.status();
  if (!linear.ok()) return linear.status();
  // The training-data hash: the exact matrix and labels the model saw.
  // Hashed in parts: the matrix bytes, the label bytes, the names.
  std::string names;
  for (const std::string& name : train.feature_names) names += name + "\n";
  const std::string_view data_parts[] = {
      std::string_view(reinterpret_cast<const char*>(train.values.data()),
                       train.values.size() * sizeof(float)),
      std::string_view(reinterpret_cast<const char*>(train_labels.data()),
                       train_labels.size() * sizeof(double)),
      names};
  const std::string data_hash = HashHex128(data_parts);
  MarkPhase(clock, "training data hash");
  nlohmann::json train_report = {{"training_data_hash", data_hash},
                                 {"model_columns", train.feature_names},
                                 {"input_columns", data.dataset.input_columns},
                                 {"train_rows", train.rows},
                                 {"validation_rows", valid.rows},
                                 {"validation_metric", report.metric},
                                 {"validation_curve", report.validation_curve},
                                 {"rounds_boosted", report.rounds_boosted},
                                 {"best_iteration", report.best_iteration},
                                 {"rounds_kept", model->num_rounds()}};
  TrainedModels out;
  out.xgboost_seconds = xgboost_seconds;
  out.xgboost_cpu_seconds = xgboost_cpu_seconds;
  ASSIGN_OR_RETURN(std::string model_bytes, model->Save());
  ASSIGN_OR_RETURN(std::string constant_bytes, (*constant)->Save());
  ASSIGN_OR_RETURN(std::string linear_bytes, (*linear)->Save());
  out.files.push_back({"model.ubj", std::move(model_bytes)});
  out.files.push_back({"baseline_constant.json", std::move(constant_bytes)});
  out.files.push_back({"baseline_linear.json", std::move(linear_bytes)});
  out.files.push_back({"linear_scaling.json", scaling.ToJson().dump()});
  out.files.push_back({"train_report.json", train_report.dump(2)});
  if (report.training_margins.size() == train.rows) {
    out.files.push_back({kTrainingMarginsFile,
                         std::string(reinterpret_cast<const char*>(report.training_margins.data()),
                                     report.training_margins.size() * sizeof(float))});
  }
  MarkPhase(clock, "save models");
  return out;
}

namespace {

// The train step's margins of the training rows, when it kept them.
const std::string* KeptTrainingMargins(const std::vector<BundleFile>& models, size_t rows) {
  const std::string* margins = FindFile(models, kTrainingMarginsFile);
  if (margins == nullptr || margins->size() != rows * sizeof(float)) return nullptr;
  return margins;
}

// The model's outputs for `matrix` by keel's compiled trees: float margins
// (two threads), then XGBoost's own transform of each (OutputFromMargin).
Result<std::vector<double>> PredictCompiled(const CompiledTrees& trees, Task task,
                                            const DenseMatrix& matrix) {
  if (matrix.cols != trees.num_features()) {
    return InvalidArgument("the model matrix has " + std::to_string(matrix.cols) +
                           " columns, the model " + std::to_string(trees.num_features()));
  }
  std::vector<float> margins(matrix.rows);
  trees.PredictMargins(matrix.values.data(), matrix.rows, matrix.cols, margins.data(), 2);
  std::vector<double> out(matrix.rows);
  for (size_t row = 0; row < matrix.rows; ++row) out[row] = OutputFromMargin(task, margins[row]);
  return out;
}

// The training profile of every input and of the model's prediction, for
// drift: the profile.json bytes. `predict` predicts a model matrix (with the
// compiled trees); used only when the train step kept no margins.
Result<std::string> TrainingProfile(
    const PipelineSpec& pipeline, const Prepared& data, const std::vector<BundleFile>& models,
    const FittedTransforms& transforms,
    const std::function<Result<std::vector<double>>(const DenseMatrix&)>& predict) {
  const size_t rows = data.splits[0].size();
  table::Column prediction(table::DataType::kDouble, rows);
  std::vector<double>& values = prediction.doubles();
  if (const std::string* margins = KeptTrainingMargins(models, rows)) {
    // The train step kept XGBoost's own margins of these rows.
    for (size_t row = 0; row < rows; ++row) {
      float margin = 0;
      std::memcpy(&margin, margins->data() + row * sizeof(float), sizeof(float));
      values[row] = OutputFromMargin(pipeline.task, margin);
    }
  } else {
    ASSIGN_OR_RETURN(DenseMatrix train, SplitMatrix(data, 0, transforms));
    ASSIGN_OR_RETURN(std::vector<double> predicted, predict(train));
    values = std::move(predicted);
  }
  validate::ProfileOptions options;
  options.threads = 2;  // the same bytes on any number of threads
  // A time split's training rows are the training set's first rows: the
  // inputs are profiled in place (the same bytes as a copy of those rows).
  const std::vector<std::string>& names = data.dataset.input_columns;
  bool prefix = std::find(names.begin(), names.end(), "prediction") == names.end();
  for (size_t row = 0; prefix && row < rows; ++row) prefix = data.splits[0][row] == row;
  validate::Profile profile;
  if (prefix) {
    std::vector<validate::Profile::NamedColumn> columns;
    for (const std::string& name : names) {
      columns.push_back({name, data.dataset.table.GetColumn(name).value()});
    }
    columns.push_back({"prediction", &prediction});
    ASSIGN_OR_RETURN(profile, validate::Profile::OfPrefix(columns, rows, options));
  } else {
    table::Table profiled = InputTable(data, 0);
    RETURN_IF_ERROR(profiled.AddColumn("prediction", std::move(prediction)));
    ASSIGN_OR_RETURN(profile, validate::Profile::Of(profiled, "", options));
  }
  profile.source = pipeline.name + ": training split";
  return profile.ToJson();
}

}  // namespace

Result<std::vector<BundleFile>> Evaluate(const PipelineSpec& pipeline, const Prepared& data,
                                         const std::vector<BundleFile>& models, PhaseClock* clock) {
  const std::string* transforms_json = FindFile(models, "transforms.json");
  const std::string* scaling_json = FindFile(models, "linear_scaling.json");
  if (transforms_json == nullptr || scaling_json == nullptr) {
    return Internal("evaluate: model files missing");
  }
  ASSIGN_OR_RETURN(FittedTransforms transforms,
                   FittedTransforms::FromJson(nlohmann::json::parse(*transforms_json)));
  ASSIGN_OR_RETURN(LinearScaling scaling,
                   LinearScaling::FromJson(nlohmann::json::parse(*scaling_json)));
  std::vector<std::unique_ptr<Model>> loaded;
  const std::pair<const char*, const char*> kinds[] = {{"xgboost", "model.ubj"},
                                                       {"constant", "baseline_constant.json"},
                                                       {"linear", "baseline_linear.json"}};
  for (const auto& [kind, file] : kinds) {
    const std::string* bytes = FindFile(models, file);
    if (bytes == nullptr) return Internal(std::string("evaluate: no ") + file);
    ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(kind, *bytes));
    loaded.push_back(std::move(model));
  }
  const char* names[] = {"model", "constant", "linear"};
  if (data.splits[2].empty()) return FailedPrecondition("empty test split: nothing to evaluate");
  MarkPhase(clock, "load models");
  // The XGBoost model is evaluated by keel's compiled trees (tree_runtime.h),
  // the evaluator that serves it (serve/serving_model.h): the bundle's
  // metrics, golden cases and training profile are those of the model as it
  // is served, and no XGBoost call walks a tree here. Its float sums are
  // XGBoost's, in XGBoost's order: the same outputs as XGBoost's own
  // prediction (runner_test checks them against XgboostModel::PredictInPlace).
  const auto* booster = static_cast<const XgboostModel*>(loaded[0].get());
  Result<CompiledTrees> trees = Internal("evaluate: the trees were not compiled");
  // Straight from model.ubj: XGBoost's JSON text would cost more to write
  // and to parse than the compilation itself.
  auto compile = [&]() -> Status {
    trees = CompiledTrees::FromXgboostUbjson(*FindFile(models, "model.ubj"));
    return trees.status().WithContext("evaluate: model.ubj");
  };
  auto predict = [&](size_t index, const DenseMatrix& matrix) -> Result<std::vector<double>> {
    if (index == 0) {
      if (matrix.cols != booster->num_features()) return booster->Predict(matrix);  // its error
      if (!trees.ok()) return trees.status();
      return PredictCompiled(*trees, booster->task(), matrix);
    }
    return loaded[index]->Predict(index == 2 ? scaling.Apply(matrix) : matrix);
  };

  // The training profile needs nothing of the test split: it runs on a
  // second thread while this one evaluates the test split (the models are
  // safe to share, see their thread-safety). Its error, if any, comes after
  // this thread's, as when the steps ran one after the other. The trees are
  // compiled before it starts when it predicts the training rows (no kept
  // margins), beside it otherwise (it then never reads them).
  const bool profile_predicts = KeptTrainingMargins(models, data.splits[0].size()) == nullptr;
  Status compiled = profile_predicts ? compile() : Status::Ok();
  Result<std::string> profile_json = Internal("evaluate: the training profile did not run");
  std::jthread profiler([&] {
    profile_json = TrainingProfile(pipeline, data, models, transforms,
                                   [&](const DenseMatrix& matrix) { return predict(0, matrix); });
  });
  if (!profile_predicts) compiled = compile();
  RETURN_IF_ERROR(compiled);
  MarkPhase(clock, "compile trees");

  ASSIGN_OR_RETURN(DenseMatrix test, SplitMatrix(data, 2, transforms));
  ASSIGN_OR_RETURN(std::vector<double> labels, SplitLabels(pipeline, data, 2));
  MarkPhase(clock, "test matrix");
  std::vector<std::vector<double>> scores;
  for (size_t index = 0; index < loaded.size(); ++index) {
    Result<std::vector<double>> predicted = predict(index, test);
    if (!predicted.ok()) return predicted.status().WithContext(names[index]);
    scores.push_back(std::move(predicted).value());
  }
  MarkPhase(clock, "predict test");
  nlohmann::json metrics = nlohmann::json::object();
  for (size_t index = 0; index < loaded.size(); ++index) {
    Result<nlohmann::json> m = Metrics(pipeline.task, labels, scores[index], pipeline.threshold);
    if (!m.ok()) return m.status().WithContext(std::string("test split, ") + names[index]);
    metrics[names[index]] = *m;
  }
  MarkPhase(clock, "metrics");
  // Slices: rows grouped by the column's value; a slice whose metrics cannot
  // be computed (one class only) reports its count and no metrics.
  nlohmann::json slices = nlohmann::json::object();
  std::vector<double> slice_labels;
  std::vector<double> slice_scores;
  for (const std::string& name : pipeline.slices) {
    // Checked here too: a new slice column does not change the cached validate step.
    Result<const table::Column*> column = Column(data.dataset, name);
    if (!column.ok()) return column.status().WithContext("slices");
    nlohmann::json list = nlohmann::json::array();
    for (const SliceRows& group : GroupRowsByText(**column, data.splits[2])) {
      nlohmann::json item = {{"value", group.value}, {"count", group.rows.size()}};
      slice_labels.clear();
      for (uint32_t row : group.rows) slice_labels.push_back(labels[row]);
      for (size_t index = 0; index < scores.size(); ++index) {
        slice_scores.clear();
        for (uint32_t row : group.rows) slice_scores.push_back(scores[index][row]);
        Result<nlohmann::json> m =
            Metrics(pipeline.task, slice_labels, slice_scores, pipeline.threshold);
        item[names[index]] = m.ok() ? *m : nlohmann::json(nullptr);
      }
      list.push_back(item);
    }
    slices[name] = list;
  }
  MarkPhase(clock, "slice metrics");
  nlohmann::json metrics_file = {{"test", metrics},
                                 {"slices", slices},
                                 {"split_rows",
                                  {{"train", data.splits[0].size()},
                                   {"validation", data.splits[1].size()},
                                   {"test", data.splits[2].size()}}}};

  // Golden cases: the first test rows, raw inputs and the model's prediction.
  nlohmann::json golden = nlohmann::json::array();
  size_t cases = std::min<size_t>(pipeline.golden_cases, data.splits[2].size());
  std::vector<const table::Column*> inputs_columns;
  for (const std::string& name : data.dataset.input_columns) {
    inputs_columns.push_back(data.dataset.table.GetColumn(name).value());
  }
  for (size_t row = 0; row < cases; ++row) {
    nlohmann::json inputs = nlohmann::json::object();
    for (size_t col = 0; col < inputs_columns.size(); ++col) {
      inputs[data.dataset.input_columns[col]] = CellJson(*inputs_columns[col], data.splits[2][row]);
    }
    golden.push_back({{"inputs", inputs}, {"prediction", scores[0][row]}});
  }
  MarkPhase(clock, "golden cases");
  profiler.join();
  if (!profile_json.ok()) return profile_json.status();
  MarkPhase(clock, "training profile (ran beside the above: the wait)");
  return std::vector<BundleFile>{{"metrics.json", metrics_file.dump(2)},
                                 {"profile.json", std::move(profile_json).value()},
                                 {"golden_cases.json", golden.dump(2)}};
}

Result<nlohmann::json> BundleManifest(const PipelineSpec& pipeline,
                                      const nlohmann::json& pinned_features,
                                      const nlohmann::json& spec,
                                      const std::vector<BundleFile>& files) {
  const std::string* metrics_text = FindFile(files, "metrics.json");
  const std::string* report_text = FindFile(files, "train_report.json");
  if (metrics_text == nullptr || report_text == nullptr) {
    return Internal("bundle: step outputs missing");
  }
  nlohmann::json metrics = nlohmann::json::parse(*metrics_text);
  nlohmann::json report = nlohmann::json::parse(*report_text);
  nlohmann::json inputs = nlohmann::json::array();
  for (const RequestInput& input : pipeline.request_inputs) {
    inputs.push_back({{"name", input.name}, {"expression", input.expression}});
  }
  return nlohmann::json{
      {"format", "keel-bundle/1"},
      {"name", pipeline.name},
      {"task", TaskName(pipeline.task)},
      {"label", pipeline.label},
      {"features", pinned_features},
      {"request_inputs", inputs},
      {"model", {{"file", "model.ubj"}, {"kind", "xgboost"}, {"format", "ubj"}}},
      {"baselines",
       {{"constant", {{"file", "baseline_constant.json"}}},
        {"linear", {{"file", "baseline_linear.json"}, {"scaling", "linear_scaling.json"}}}}},
      {"transforms", "transforms.json"},
      {"input_columns", report["input_columns"]},
      {"model_columns", report["model_columns"]},
      {"training_data_hash", report["training_data_hash"]},
      {"code_version", std::string(CodeVersion())},
      {"parameters", spec},
      {"seeds",
       {{"model", pipeline.model.seed},
        {"split", pipeline.split.seed},
        {"sample", pipeline.sample_seed}}},
      {"training", report},
      {"metrics", metrics["test"]},
      {"slice_metrics", metrics["slices"]},
      {"split_rows", metrics["split_rows"]},
      {"profile", "profile.json"},
      {"golden_cases", "golden_cases.json"}};
}

}  // namespace keel::train
