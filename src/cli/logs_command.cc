// `keel logs export`: the prediction log (serve/prediction_log.h) as a Parquet
// file, for monitoring, label joins and replay.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "cli/commands.h"
#include "common/files.h"
#include "features/definitions.h"
#include "serve/prediction_log.h"
#include "table/duckdb_bridge.h"

namespace keel::cli {
namespace {

using table::Column;
using table::DataType;
using table::DuckDb;
using table::Table;

struct LogsExportOptions {
  std::string dir;    // the log folder; default <repo root>/.keel/predictions
  std::string since;  // ISO time, inclusive; empty: from the first record
  std::string until;  // ISO time, exclusive; empty: to the last record
  std::string model;  // only this model's predictions; empty: all
  std::string out;    // the Parquet file
  bool json = false;
};

// Records are handed to DuckDB in batches of this many, so that the export
// never holds the whole log in keel's own memory.
constexpr size_t kBatchRecords = 50000;

// The output's schema. `features` is a MAP(VARCHAR, DOUBLE) from feature name
// to value (NULL = missing): one column whatever the models and versions in
// the range (a column per feature would change shape with every model), read
// by name (features['dep_hour']) for monitoring, unnested with
// map_entries() for per-feature statistics, and rebuilt into a model's input
// vector for replay.
constexpr std::string_view kExportTable = R"(CREATE TABLE export (
  request_id VARCHAR, time TIMESTAMP, model VARCHAR, version BIGINT, variant VARCHAR,
  entity_keys VARCHAR, features MAP(VARCHAR, DOUBLE), output DOUBLE, latency_us BIGINT,
  fallback VARCHAR))";

// Features travel to DuckDB as text ("[0.5,NULL,3]", exact: shortest
// round-trip digits) cast to DOUBLE[], and their names as one small table of
// the distinct name lists: a long (record, feature) table aggregated back into
// lists cost several times more.
constexpr std::string_view kInsertBatch = R"(INSERT INTO export
SELECT r.request_id, r.time, r.model, r.version, r.variant, r.entity_keys,
       MAP(COALESCE(n.names, []::VARCHAR[]), CAST(r.feature_values AS DOUBLE[])),
       r.output, r.latency_us, r.fallback
FROM batch_records r LEFT JOIN (
  SELECT names_id, list(name ORDER BY position) AS names FROM batch_names GROUP BY names_id
) n USING (names_id))";

// One batch of records as a keel table, plus the name lists they use.
class ExportBatch {
 public:
  ExportBatch() { Clear(); }

  void Add(const serve::PredictionRecord& record) {
    ++rows_;
    records_[0].AppendString(record.request_id);
    records_[1].AppendInt64(record.time);
    records_[2].AppendString(record.model);
    records_[3].AppendInt64(record.version);
    AppendOptionalString(&records_[4], record.variant);
    records_[5].AppendString(record.entity_keys_json);
    records_[6].AppendInt64(NamesIdFor(record));
    values_text_ = "[";
    for (size_t position = 0; position < record.features.size(); ++position) {
      if (position > 0) values_text_ += ',';
      double value = record.features[position];
      if (std::isnan(value)) {
        values_text_ += "NULL";
      } else {
        char digits[32];
        auto [end, error] = std::to_chars(digits, digits + sizeof(digits), value);
        values_text_.append(digits, end);
      }
    }
    values_text_ += ']';
    records_[7].AppendString(values_text_);
    records_[8].AppendDouble(record.output);
    records_[9].AppendInt64(record.latency_us);
    AppendOptionalString(&records_[10], record.fallback);
  }

  size_t rows() const { return rows_; }

  // Appends the batch to the `export` table and empties it.
  Status InsertInto(DuckDb* duckdb) {
    if (rows_ == 0) return Status::Ok();
    static const char* kRecordColumns[] = {
        "request_id", "time",           "model",  "version",    "variant", "entity_keys",
        "names_id",   "feature_values", "output", "latency_us", "fallback"};
    Table records;
    for (size_t column = 0; column < records_.size(); ++column) {
      RETURN_IF_ERROR(records.AddColumn(kRecordColumns[column], std::move(records_[column])));
    }
    Column ids(DataType::kInt64, 0), positions(DataType::kInt64, 0), names(DataType::kString, 0);
    for (size_t id = 0; id < name_lists_.size(); ++id) {
      for (size_t position = 0; position < name_lists_[id].size(); ++position) {
        ids.AppendInt64(static_cast<int64_t>(id));
        positions.AppendInt64(static_cast<int64_t>(position));
        names.AppendString(name_lists_[id][position]);
      }
    }
    // A table needs a row even when no record has features.
    ids.AppendInt64(-1);
    positions.AppendInt64(0);
    names.AppendString("");
    Table names_table;
    RETURN_IF_ERROR(names_table.AddColumn("names_id", std::move(ids)));
    RETURN_IF_ERROR(names_table.AddColumn("position", std::move(positions)));
    RETURN_IF_ERROR(names_table.AddColumn("name", std::move(names)));
    RETURN_IF_ERROR(duckdb->CreateTable("batch_records", records));
    RETURN_IF_ERROR(duckdb->CreateTable("batch_names", names_table));
    RETURN_IF_ERROR(duckdb->Execute(kInsertBatch));
    Clear();
    return Status::Ok();
  }

 private:
  static void AppendOptionalString(Column* column, const std::string& text) {
    if (text.empty()) {
      column->AppendNull();
    } else {
      column->AppendString(text);
    }
  }

  // The number of the record's feature names as MAP keys: unique (a repeated
  // name gets "#2", "#3", ... since a MAP cannot hold a key twice), positional
  // ("#0", "#1", ...) when the record has none. Cached per names vector: the
  // records of one segment share it.
  int64_t NamesIdFor(const serve::PredictionRecord& record) {
    const void* key = record.feature_names.get();
    auto found = ids_.find(key);
    if (found != ids_.end() && name_lists_[found->second].size() == record.features.size()) {
      return found->second;
    }
    std::vector<std::string> names;
    std::unordered_map<std::string, int> seen;
    for (size_t position = 0; position < record.features.size(); ++position) {
      std::string name =
          record.feature_names ? (*record.feature_names)[position] : "#" + std::to_string(position);
      int count = ++seen[name];
      if (count > 1) name += "#" + std::to_string(count);
      names.push_back(std::move(name));
    }
    // Equal lists share an id, whichever vectors they came from.
    int64_t id = -1;
    for (size_t existing = 0; existing < name_lists_.size() && id < 0; ++existing) {
      if (name_lists_[existing] == names) id = static_cast<int64_t>(existing);
    }
    if (id < 0) {
      id = static_cast<int64_t>(name_lists_.size());
      name_lists_.push_back(std::move(names));
    }
    // Keep the vector alive so that its address is not reused by another.
    if (record.feature_names) pinned_.push_back(record.feature_names);
    ids_[key] = id;
    return id;
  }

  void Clear() {
    rows_ = 0;
    records_ = {
        Column(DataType::kString, 0), Column(DataType::kTimestamp, 0), Column(DataType::kString, 0),
        Column(DataType::kInt64, 0),  Column(DataType::kString, 0),    Column(DataType::kString, 0),
        Column(DataType::kInt64, 0),  Column(DataType::kString, 0),    Column(DataType::kDouble, 0),
        Column(DataType::kInt64, 0),  Column(DataType::kString, 0)};
  }

  size_t rows_ = 0;
  std::vector<Column> records_;
  std::string values_text_;
  std::vector<std::vector<std::string>> name_lists_;
  std::unordered_map<const void*, int64_t> ids_;
  std::vector<std::shared_ptr<const std::vector<std::string>>> pinned_;
};

// Parses an optional --since / --until value; `fallback` when empty.
Result<Timestamp> ParseBound(const std::string& text, const char* option, Timestamp fallback) {
  if (text.empty()) return fallback;
  Result<Timestamp> parsed = ParseTimestamp(text);
  if (!parsed.ok()) return parsed.status().WithContext(std::string("logs export: ") + option);
  return parsed;
}

// Removes a folder and everything in it when the object goes away.
class ScopedFolder {
 public:
  explicit ScopedFolder(std::string path) : path_(std::move(path)) {}
  ~ScopedFolder() {
    std::error_code error;
    std::filesystem::remove_all(path_, error);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Status RunLogsExport(const RepoOptions& repo, const LogsExportOptions& options) {
  ASSIGN_OR_RETURN(Timestamp since,
                   ParseBound(options.since, "--since", std::numeric_limits<Timestamp>::min()));
  ASSIGN_OR_RETURN(Timestamp until,
                   ParseBound(options.until, "--until", std::numeric_limits<Timestamp>::max()));
  if (since >= until) {
    return InvalidArgument("logs export: --since " + options.since + " is not before --until " +
                           options.until);
  }
  std::string dir = options.dir;
  if (dir.empty()) {
    Result<features::RepoConfig> config = features::LoadRepoConfig(repo.repo);
    if (!config.ok()) {
      return config.status().WithContext("logs export: finding the log folder (or give --dir)");
    }
    dir = serve::DefaultPredictionLogDir(config->root);
  }
  // Missing folder: NotFound before anything is written.
  RETURN_IF_ERROR(serve::ListPredictionLogSegments(dir).status().WithContext("logs export"));

  ASSIGN_OR_RETURN(std::unique_ptr<DuckDb> duckdb, DuckDb::Open());
  // Large exports spill to a private folder, not to DuckDB's default ./.tmp.
  ScopedFolder spill(
      (std::filesystem::temp_directory_path() / ("keel-logs-export-" + std::to_string(::getpid())))
          .string());
  RETURN_IF_ERROR(duckdb->Execute("SET temp_directory = " + table::QuoteSqlString(spill.path())));
  RETURN_IF_ERROR(duckdb->Execute(kExportTable));

  ExportBatch batch;
  int64_t other_models = 0;
  Result<serve::PredictionLogReadStats> read = serve::ReadPredictionLog(
      dir, since, until, [&](const serve::PredictionRecord& record) -> Status {
        if (!options.model.empty() && record.model != options.model) {
          ++other_models;
          return Status::Ok();
        }
        batch.Add(record);
        if (batch.rows() >= kBatchRecords) return batch.InsertInto(duckdb.get());
        return Status::Ok();
      });
  if (!read.ok()) return read.status().WithContext("logs export: reading " + dir);
  RETURN_IF_ERROR(batch.InsertInto(duckdb.get()).WithContext("logs export"));
  const serve::PredictionLogReadStats& stats = *read;
  int64_t exported = stats.records - other_models;

  std::string temporary = TemporaryPathFor(options.out);
  std::string metadata = "KV_METADATA {keel_source: " + table::QuoteSqlString(dir) +
                         ", keel_since: " + table::QuoteSqlString(options.since) +
                         ", keel_until: " + table::QuoteSqlString(options.until) +
                         ", keel_damaged_bytes: '" + std::to_string(stats.damaged_bytes) + "'}";
  Status copied =
      duckdb->Execute("COPY (SELECT * FROM export ORDER BY time, request_id) TO " +
                      table::QuoteSqlString(temporary) + " (FORMAT PARQUET, " + metadata + ")");
  if (!copied.ok()) {
    RemoveFileQuietly(temporary);
    return IoError("logs export: writing " + options.out + ": " + copied.message());
  }
  RETURN_IF_ERROR(CommitTemporaryFile(temporary, options.out));

  for (const std::string& line : stats.damage) {
    std::fprintf(stderr, "keel logs export: warning: skipped damage: %s\n", line.c_str());
  }
  if (options.json) {
    nlohmann::json summary = {{"out", options.out},
                              {"dir", dir},
                              {"records", exported},
                              {"segments", stats.segments},
                              {"outside_range", stats.out_of_range},
                              {"other_models", other_models},
                              {"damaged_bytes", stats.damaged_bytes},
                              {"damaged_stretches", stats.damaged_stretches}};
    std::printf("%s\n", summary.dump(2).c_str());
  } else {
    std::printf(
        "keel logs export: %lld records -> %s (%lld segments read, %lld outside the time range, "
        "%lld of other models)\n"
        "keel logs export: %lld damaged bytes skipped in %lld places\n",
        static_cast<long long>(exported), options.out.c_str(),
        static_cast<long long>(stats.segments), static_cast<long long>(stats.out_of_range),
        static_cast<long long>(other_models), static_cast<long long>(stats.damaged_bytes),
        static_cast<long long>(stats.damaged_stretches));
  }
  return Status::Ok();
}

// Option values must outlive parsing (the callback runs inside app->parse).
LogsExportOptions export_options;

}  // namespace

void AddLogsCommands(CLI::App* app, RepoOptions* repo, Status* status) {
  CLI::App* logs = app->add_subcommand("logs", "The prediction log");
  logs->require_subcommand(1);
  CLI::App* command =
      logs->add_subcommand("export", "Write the predictions of a time range as Parquet");
  command->add_option("--repo,-r", repo->repo, "Feature repository (folder of keel.yaml)")
      ->envname("KEEL_REPO");
  command->add_option("--dir", export_options.dir,
                      "Prediction log folder (default: <repo>/.keel/predictions)");
  command->add_option("--since", export_options.since,
                      "From this time, inclusive (default: the first record)");
  command->add_option("--until", export_options.until,
                      "To this time, exclusive (default: the last record)");
  command->add_option("--model", export_options.model, "Only this model's predictions");
  command->add_option("--out,-o", export_options.out, "Output Parquet file")->required();
  command->add_flag("--json", export_options.json, "Print the summary as JSON");
  command->callback([=] { *status = RunLogsExport(*repo, export_options); });
}

}  // namespace keel::cli
