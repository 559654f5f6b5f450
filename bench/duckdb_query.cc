// DuckDB -> keel Table conversion cost (DuckDb::Query): runs one query
// --repeat times and prints each run's wall and process CPU seconds and a
// digest of the resulting table (types, validity, values), so that two builds
// can be compared for both speed and identical results.
//   bench_duckdb_query --sql "SELECT * FROM read_parquet('.cache/data/flights-3m.parquet')"
//                      [--repeat 3] [--threads 2]
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "bench_util.h"
#include "table/duckdb_bridge.h"

namespace {

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// FNV-1a over the bytes of the table's schema, validity and values.
class Digest {
 public:
  void Add(const void* data, size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < bytes; ++i) hash_ = (hash_ ^ p[i]) * 1099511628211ULL;
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 14695981039346656037ULL;
};

uint64_t TableDigest(const keel::table::Table& table) {
  Digest digest;
  for (size_t c = 0; c < table.num_columns(); ++c) {
    const keel::table::Column& column = table.column(c);
    digest.Add(table.fields()[c].name.data(), table.fields()[c].name.size());
    auto type = static_cast<uint8_t>(column.type());
    digest.Add(&type, 1);
    for (size_t row = 0; row < column.size(); ++row) {
      uint8_t valid = column.IsValid(row) ? 1 : 0;
      digest.Add(&valid, 1);
      switch (column.type()) {
        case keel::table::DataType::kBool:
          digest.Add(&column.bools()[row], 1);
          break;
        case keel::table::DataType::kInt64:
        case keel::table::DataType::kTimestamp:
          digest.Add(&column.ints()[row], 8);
          break;
        case keel::table::DataType::kDouble:
          digest.Add(&column.doubles()[row], 8);
          break;
        case keel::table::DataType::kString: {
          std::string_view text = column.StringAt(row);
          uint64_t length = text.size();
          digest.Add(&length, 8);
          digest.Add(text.data(), text.size());
          break;
        }
      }
    }
  }
  return digest.value();
}

}  // namespace

int main(int argc, char** argv) {
  keel::Result<keel::bench::Flags> flags = keel::bench::Flags::Parse(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "%s\n", flags.status().ToString().c_str());
    return 2;
  }
  std::string sql =
      flags->Get("sql", "SELECT * FROM read_parquet('.cache/data/flights-3m.parquet')");
  int repeat = std::stoi(flags->Get("repeat", "3"));
  int threads = std::stoi(flags->Get("threads", "2"));
  auto db = keel::table::DuckDb::Open(threads);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
    return 1;
  }
  for (int run = 0; run < repeat; ++run) {
    keel::bench::Stopwatch wall;
    double cpu = CpuSeconds();
    keel::Result<keel::table::Table> table = (*db)->Query(sql);
    double cpu_seconds = CpuSeconds() - cpu;
    double wall_seconds = wall.Seconds();
    if (!table.ok()) {
      std::fprintf(stderr, "%s\n", table.status().ToString().c_str());
      return 1;
    }
    std::printf("run %d: %zu rows x %zu columns, wall %.3f s, cpu %.3f s, digest %016llx\n", run,
                table->num_rows(), table->num_columns(), wall_seconds, cpu_seconds,
                static_cast<unsigned long long>(flags->Has("no-digest") ? 0 : TableDigest(*table)));
  }
  return 0;
}
