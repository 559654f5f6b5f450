#pragma once

// Internal to the features layer: YAML reading with located error messages.

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "features/definitions.h"

namespace keel::features {

// Reads YAML nodes with error messages that say where ("file:line:col: path: why").
class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  SourceLocation Where(const YAML::Node& node) const {
    YAML::Mark mark = node.Mark();
    SourceLocation location{file_, 0, 0};
    if (mark.line >= 0) {
      location.line = mark.line + 1;
      location.column = mark.column + 1;
    }
    return location;
  }

  Status Error(const YAML::Node& node, const std::string& path, const std::string& what) const {
    return InvalidArgument(Where(node).ToString() + ": " + path + ": " + what);
  }

  // Fails on keys not in `allowed`, which catches typos like "agregation".
  Status CheckKeys(const YAML::Node& map, const std::string& path,
                   const std::vector<std::string>& allowed) const {
    if (!map.IsMap()) return Error(map, path, "expected a mapping");
    for (const auto& item : map) {
      std::string key = item.first.as<std::string>();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (const std::string& name : allowed) list += (list.empty() ? "" : ", ") + name;
        return Error(item.first, path + "." + key, "unknown field (expected one of: " + list + ")");
      }
    }
    return Status::Ok();
  }

  Result<std::string> String(const YAML::Node& map, const std::string& key, const std::string& path,
                             bool required) const {
    YAML::Node node = map[key];
    if (!node || node.IsNull()) {
      if (required) return Error(map, path, "missing required field '" + key + "'");
      return std::string();
    }
    if (!node.IsScalar()) return Error(node, path + "." + key, "expected a string");
    return node.as<std::string>();
  }

  Result<std::vector<std::string>> StringList(const YAML::Node& node,
                                              const std::string& path) const {
    std::vector<std::string> out;
    if (node.IsScalar()) {
      out.push_back(node.as<std::string>());
      return out;
    }
    if (!node.IsSequence()) return Error(node, path, "expected a list of strings");
    for (size_t i = 0; i < node.size(); ++i) {
      if (!node[i].IsScalar()) {
        return Error(node[i], path + "[" + std::to_string(i) + "]", "expected a string");
      }
      out.push_back(node[i].as<std::string>());
    }
    return out;
  }

  Result<Duration> DurationField(const YAML::Node& node, const std::string& path) const {
    if (!node.IsScalar()) return Error(node, path, "expected a duration like 15m");
    Result<Duration> duration = ParseDuration(node.as<std::string>());
    if (!duration.ok()) return Error(node, path, duration.status().message());
    return duration;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

// Parses a source's `checks:` list (see validate/checks.h for the meaning).
// Errors: InvalidArgument "file:line:col: path: what is wrong".
Result<std::vector<validate::CheckDef>> ParseChecks(const YamlReader& reader,
                                                    const YAML::Node& node,
                                                    const std::string& path);

}  // namespace keel::features
