#include "train/python_oracle.h"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace keel::train::testing {
namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace

nlohmann::json RunPythonOracle(const std::string& script, const nlohmann::json& request,
                               const std::vector<std::pair<std::string, std::string>>& files) {
  std::string pattern = (std::filesystem::temp_directory_path() / "keel_oracle_XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) return {{"error", "mkdtemp failed"}};
  const std::filesystem::path dir = pattern;
  std::ofstream(dir / "oracle.py") << script;
  std::ofstream(dir / "request.json") << request.dump();
  for (const auto& [name, bytes] : files) {
    std::ofstream(dir / name, std::ios::binary) << bytes;
  }
  const std::string command = "cd '" + dir.string() +
                              "' && /usr/bin/python3 oracle.py request.json > answer.json "
                              "2> stderr.txt";
  const int status = std::system(command.c_str());
  nlohmann::json answer;
  if (status != 0) {
    answer = {{"error", "oracle exited with " + std::to_string(status) + ": " +
                            ReadFile(dir / "stderr.txt")}};
  } else {
    try {
      answer = nlohmann::json::parse(ReadFile(dir / "answer.json"));
    } catch (const nlohmann::json::exception& error) {
      answer = {{"error", std::string("unparsable oracle answer: ") + error.what()}};
    }
  }
  std::filesystem::remove_all(dir);
  return answer;
}

}  // namespace keel::train::testing
