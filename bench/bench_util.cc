#include "bench_util.h"

#include <sys/resource.h>

#include <cstdio>
#include <nlohmann/json.hpp>

namespace keel::bench {

Result<Flags> Flags::Parse(int argc, char** argv) {
  Flags flags;
  int index = 1;
  if (index < argc && std::string(argv[index]).rfind("--", 0) != 0) flags.mode_ = argv[index++];
  while (index < argc) {
    std::string name = argv[index++];
    if (name.rfind("--", 0) != 0 || name.size() < 3) {
      return InvalidArgument("unexpected argument '" + name + "' (flags are --name value)");
    }
    name = name.substr(2);
    std::string value;
    if (index < argc && std::string(argv[index]).rfind("--", 0) != 0) value = argv[index++];
    flags.values_[name] = value;
  }
  return flags;
}

std::string Flags::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

Result<std::string> Flags::Require(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return InvalidArgument("missing --" + name);
  return it->second;
}

void Report::Print() const {
  nlohmann::json out = {{"tool", tool}, {"bench", bench}};
  nlohmann::json times = nlohmann::json::object();
  for (const auto& [name, value] : seconds) times[name] = value;
  out["seconds"] = times;
  for (const auto& [name, value] : numbers) out[name] = value;
  for (const auto& [name, value] : texts) out[name] = value;
  out["self_peak_rss_mib"] = PeakRssMiB();
  std::printf("BENCH_RESULT %s\n", out.dump().c_str());
  std::fflush(stdout);
}

Result<table::Table> ProjectOutput(const table::Table& table, const std::string& id_column,
                                   const std::vector<std::string>& prefixes, bool strip_prefix) {
  table::Table out;
  if (!id_column.empty()) {
    ASSIGN_OR_RETURN(const table::Column* id, table.GetColumn(id_column));
    RETURN_IF_ERROR(out.AddColumn(id_column, *id));
  }
  for (size_t column_idx = 0; column_idx < table.num_columns(); ++column_idx) {
    const std::string& name = table.fields()[column_idx].name;
    for (const std::string& prefix : prefixes) {
      if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0) {
        RETURN_IF_ERROR(out.AddColumn(strip_prefix ? name.substr(prefix.size()) : name,
                                      table.column(column_idx)));
        break;
      }
    }
  }
  return out;
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> items;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    if (end > begin) items.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return items;
}

double PeakRssMiB() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

int Fail(const Status& status) {
  std::fprintf(stderr, "error: %s\n", status.ToString().c_str());
  return 1;
}

int Main(int argc, char** argv, Status (*run)(const Flags& flags)) {
  Result<Flags> flags = Flags::Parse(argc, argv);
  if (!flags.ok()) return Fail(flags.status());
  Status status = run(*flags);
  return status.ok() ? 0 : Fail(status);
}

}  // namespace keel::bench
