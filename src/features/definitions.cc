// Parsing of feature repositories (keel.yaml + definition files). With
// check_definitions.cc, keel's only adapter to yaml-cpp: its exceptions end here.
#include "features/definitions.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>

#include "common/files.h"
#include "common/hash.h"
#include "features/expr.h"
#include "features/yaml_reader.h"

namespace keel::features {
namespace fs = std::filesystem;

std::string SourceLocation::ToString() const {
  std::string out = file.empty() ? "<definition>" : file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  return out;
}

std::string WindowFeatureDef::OutputName(const WindowSpec& window) const {
  // Whole days below two read better in hours: "24h", not "1d".
  if (window.length < 2 * kMicrosPerDay && window.length % kMicrosPerHour == 0) {
    return name + "_" + std::to_string(window.length / kMicrosPerHour) + "h";
  }
  return name + "_" + FormatDuration(window.length);
}

std::vector<std::string> FeatureViewDef::FeatureNames() const {
  std::vector<std::string> names;
  for (const WindowFeatureDef& feature : window_features) {
    for (const WindowSpec& window : feature.windows) names.push_back(feature.OutputName(window));
  }
  for (const SnapshotFeatureDef& feature : snapshot_features) names.push_back(feature.name);
  return names;
}

namespace {

template <typename T>
const T* FindByName(const std::vector<T>& items, std::string_view name) {
  for (const T& item : items) {
    if (item.name == name) return &item;
  }
  return nullptr;
}

}  // namespace

const EntityDef* Repository::FindEntity(std::string_view name) const {
  return FindByName(entities, name);
}
const SourceDef* Repository::FindSource(std::string_view name) const {
  return FindByName(sources, name);
}
const FeatureViewDef* Repository::FindView(std::string_view name) const {
  return FindByName(views, name);
}
const FeatureServiceDef* Repository::FindService(std::string_view name) const {
  return FindByName(services, name);
}

namespace {

Status CheckName(const YamlReader& reader, const YAML::Node& node, const std::string& path,
                 const std::string& name) {
  bool ok = !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_');
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (!ok) {
    return reader.Error(node, path,
                        "bad name '" + name + "' (letters, digits and _, not first a digit)");
  }
  return Status::Ok();
}

Result<EntityDef> ParseEntity(const YamlReader& reader, const YAML::Node& node,
                              const std::string& path) {
  RETURN_IF_ERROR(reader.CheckKeys(node, path, {"name", "keys", "description"}));
  EntityDef entity;
  entity.location = reader.Where(node);
  ASSIGN_OR_RETURN(entity.name, reader.String(node, "name", path, true));
  RETURN_IF_ERROR(CheckName(reader, node["name"], path + ".name", entity.name));
  ASSIGN_OR_RETURN(entity.description, reader.String(node, "description", path, false));
  YAML::Node keys = node["keys"];
  if (!keys || !keys.IsMap() || keys.size() == 0) {
    return reader.Error(keys ? keys : node, path + ".keys",
                        "expected a mapping of key column to type, e.g. {iata: string}");
  }
  for (const auto& item : keys) {
    std::string key = item.first.as<std::string>();
    std::string key_path = path + ".keys." + key;
    RETURN_IF_ERROR(CheckName(reader, item.first, key_path, key));
    if (!item.second.IsScalar()) return reader.Error(item.second, key_path, "expected a type");
    Result<table::DataType> type = table::ParseDataType(item.second.as<std::string>());
    if (!type.ok()) return reader.Error(item.second, key_path, type.status().message());
    if (*type != table::DataType::kString && *type != table::DataType::kInt64) {
      return reader.Error(item.second, key_path, "entity keys must be string or int64");
    }
    entity.keys.push_back({key, *type});
  }
  return entity;
}

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

Result<SourceDef> ParseSource(const YamlReader& reader, const YAML::Node& node,
                              const std::string& path) {
  RETURN_IF_ERROR(reader.CheckKeys(
      node, path,
      {"name", "path", "query", "format", "timestamp", "created", "description", "checks"}));
  SourceDef source;
  source.location = reader.Where(node);
  if (node["checks"]) {
    ASSIGN_OR_RETURN(source.checks, ParseChecks(reader, node["checks"], path + ".checks"));
  }
  ASSIGN_OR_RETURN(source.name, reader.String(node, "name", path, true));
  RETURN_IF_ERROR(CheckName(reader, node["name"], path + ".name", source.name));
  ASSIGN_OR_RETURN(source.path, reader.String(node, "path", path, false));
  ASSIGN_OR_RETURN(source.query, reader.String(node, "query", path, false));
  ASSIGN_OR_RETURN(source.timestamp_column, reader.String(node, "timestamp", path, false));
  ASSIGN_OR_RETURN(source.created_column, reader.String(node, "created", path, false));
  ASSIGN_OR_RETURN(std::string format, reader.String(node, "format", path, false));
  if (source.path.empty() == source.query.empty()) {
    return reader.Error(node, path, "give exactly one of 'path' or 'query'");
  }
  if (!source.query.empty()) {
    if (!format.empty() && format != "query") {
      return reader.Error(node["format"], path + ".format", "a query source has no file format");
    }
    source.format = SourceFormat::kQuery;
    return source;
  }
  if (format.empty()) {
    if (EndsWith(source.path, ".parquet"))
      format = "parquet";
    else if (EndsWith(source.path, ".csv"))
      format = "csv";
    else if (EndsWith(source.path, ".json") || EndsWith(source.path, ".jsonl") ||
             EndsWith(source.path, ".ndjson"))
      format = "jsonl";
    else
      return reader.Error(node["path"], path + ".path",
                          "cannot tell the format from the extension; set 'format'");
  }
  if (format == "parquet")
    source.format = SourceFormat::kParquet;
  else if (format == "csv")
    source.format = SourceFormat::kCsv;
  else if (format == "jsonl" || format == "json")
    source.format = SourceFormat::kJsonl;
  else
    return reader.Error(node["format"], path + ".format",
                        "unknown format '" + format + "' (expected parquet, csv or jsonl)");
  return source;
}

// The source columns holding the entity keys: a list in key order, or a
// mapping entity key -> column. Checked against the entity later.
Result<std::vector<std::pair<std::string, std::string>>> ParseKeyColumns(const YamlReader& reader,
                                                                         const YAML::Node& node,
                                                                         const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!node) return out;
  if (node.IsMap()) {
    for (const auto& item : node) {
      out.emplace_back(item.first.as<std::string>(), item.second.as<std::string>());
    }
    return out;
  }
  ASSIGN_OR_RETURN(std::vector<std::string> columns, reader.StringList(node, path));
  for (std::string& column : columns) out.emplace_back("", std::move(column));
  return out;
}

Result<std::string> CanonicalExpression(const YamlReader& reader, const YAML::Node& node,
                                        const std::string& path) {
  if (!node.IsScalar()) return reader.Error(node, path, "expected an expression");
  Result<Expression> expression = Expression::Parse(node.as<std::string>());
  if (!expression.ok()) return reader.Error(node, path, expression.status().message());
  return expression->ToCanonicalString();
}

Result<std::vector<WindowSpec>> ParseWindows(const YamlReader& reader, const YAML::Node& node,
                                             const std::string& path, Duration hop) {
  std::vector<WindowSpec> windows;
  if (!node.IsSequence() && !node.IsScalar()) {
    return reader.Error(node, path, "expected a list of durations, e.g. [1h, 24h]");
  }
  std::vector<YAML::Node> items;
  if (node.IsScalar()) items.push_back(node);
  for (size_t i = 0; node.IsSequence() && i < node.size(); ++i) items.push_back(node[i]);
  for (size_t i = 0; i < items.size(); ++i) {
    std::string item_path = path + "[" + std::to_string(i) + "]";
    ASSIGN_OR_RETURN(Duration length, reader.DurationField(items[i], item_path));
    WindowSpec window{length, hop > 0 ? hop : DefaultHop(length)};
    if (window.hop > window.length) {
      return reader.Error(items[i], item_path,
                          "hop " + FormatDuration(window.hop) + " is longer than the window");
    }
    for (const WindowSpec& other : windows) {
      if (other.length == length) return reader.Error(items[i], item_path, "duplicate window");
    }
    windows.push_back(window);
  }
  if (windows.empty()) return reader.Error(node, path, "no windows");
  return windows;
}

Result<WindowFeatureDef> ParseWindowFeature(const YamlReader& reader, const YAML::Node& node,
                                            const std::string& path, const YAML::Node& view_windows,
                                            Duration view_hop) {
  RETURN_IF_ERROR(reader.CheckKeys(
      node, path, {"name", "aggregation", "expression", "expr", "windows", "hop", "description"}));
  WindowFeatureDef feature;
  feature.location = reader.Where(node);
  ASSIGN_OR_RETURN(feature.name, reader.String(node, "name", path, true));
  RETURN_IF_ERROR(CheckName(reader, node["name"], path + ".name", feature.name));
  ASSIGN_OR_RETURN(std::string aggregation, reader.String(node, "aggregation", path, true));
  Result<Aggregation> parsed = ParseAggregation(aggregation);
  if (!parsed.ok()) {
    return reader.Error(node["aggregation"], path + ".aggregation", parsed.status().message());
  }
  feature.aggregation = *parsed;
  YAML::Node expression = node["expression"] ? node["expression"] : node["expr"];
  if (expression) {
    ASSIGN_OR_RETURN(feature.expression,
                     CanonicalExpression(reader, expression, path + ".expression"));
  } else if (feature.aggregation != Aggregation::kCount) {
    return reader.Error(node, path, "missing 'expression' (only count may omit it)");
  }
  Duration hop = view_hop;
  if (node["hop"]) {
    ASSIGN_OR_RETURN(hop, reader.DurationField(node["hop"], path + ".hop"));
  }
  YAML::Node windows = node["windows"] ? node["windows"] : view_windows;
  if (!windows) {
    return reader.Error(node, path, "missing 'windows' (here or on the view)");
  }
  ASSIGN_OR_RETURN(feature.windows,
                   ParseWindows(reader, windows, node["windows"] ? path + ".windows" : path, hop));
  return feature;
}

Result<SnapshotFeatureDef> ParseSnapshotFeature(const YamlReader& reader, const YAML::Node& node,
                                                const std::string& path) {
  SnapshotFeatureDef feature;
  feature.location = reader.Where(node);
  if (node.IsScalar()) {
    feature.name = node.as<std::string>();
    RETURN_IF_ERROR(CheckName(reader, node, path, feature.name));
    ASSIGN_OR_RETURN(feature.expression, CanonicalExpression(reader, node, path));
    return feature;
  }
  RETURN_IF_ERROR(reader.CheckKeys(node, path, {"name", "expression", "expr", "description"}));
  ASSIGN_OR_RETURN(feature.name, reader.String(node, "name", path, true));
  RETURN_IF_ERROR(CheckName(reader, node["name"], path + ".name", feature.name));
  YAML::Node expression = node["expression"] ? node["expression"] : node["expr"];
  if (!expression) expression = node["name"];
  ASSIGN_OR_RETURN(feature.expression,
                   CanonicalExpression(reader, expression, path + ".expression"));
  return feature;
}

struct PendingView {
  FeatureViewDef view;
  std::string entity_name;
  std::string source_name;
  std::vector<std::pair<std::string, std::string>> keys;
  YAML::Node node;
  std::string path;
  const YamlReader* reader;
};

Result<PendingView> ParseView(const YamlReader& reader, const YAML::Node& node,
                              const std::string& path, ViewKind kind) {
  std::vector<std::string> allowed = {"name", "entity",   "source",
                                      "keys", "features", "description"};
  if (kind == ViewKind::kWindow) {
    allowed.push_back("windows");
    allowed.push_back("hop");
  } else {
    allowed.push_back("ttl");
  }
  RETURN_IF_ERROR(reader.CheckKeys(node, path, allowed));
  PendingView pending{{}, {}, {}, {}, node, path, &reader};
  FeatureViewDef& view = pending.view;
  view.kind = kind;
  view.location = reader.Where(node);
  ASSIGN_OR_RETURN(view.name, reader.String(node, "name", path, true));
  RETURN_IF_ERROR(CheckName(reader, node["name"], path + ".name", view.name));
  ASSIGN_OR_RETURN(view.description, reader.String(node, "description", path, false));
  ASSIGN_OR_RETURN(pending.entity_name, reader.String(node, "entity", path, true));
  ASSIGN_OR_RETURN(pending.source_name, reader.String(node, "source", path, true));
  ASSIGN_OR_RETURN(pending.keys, ParseKeyColumns(reader, node["keys"], path + ".keys"));
  if (kind == ViewKind::kSnapshot && node["ttl"]) {
    ASSIGN_OR_RETURN(view.ttl, reader.DurationField(node["ttl"], path + ".ttl"));
  }
  YAML::Node features = node["features"];
  if (!features || !features.IsSequence() || features.size() == 0) {
    return reader.Error(features ? features : node, path + ".features",
                        "expected a non-empty list of features");
  }
  Duration hop = 0;
  if (kind == ViewKind::kWindow && node["hop"]) {
    ASSIGN_OR_RETURN(hop, reader.DurationField(node["hop"], path + ".hop"));
  }
  std::set<std::string> names;
  for (size_t i = 0; i < features.size(); ++i) {
    std::string feature_path = path + ".features[" + std::to_string(i) + "]";
    std::string name;
    if (kind == ViewKind::kWindow) {
      ASSIGN_OR_RETURN(WindowFeatureDef feature,
                       ParseWindowFeature(reader, features[i], feature_path, node["windows"], hop));
      name = feature.name;
      view.window_features.push_back(std::move(feature));
    } else {
      ASSIGN_OR_RETURN(SnapshotFeatureDef feature,
                       ParseSnapshotFeature(reader, features[i], feature_path));
      name = feature.name;
      view.snapshot_features.push_back(std::move(feature));
    }
    if (!names.insert(name).second) {
      return reader.Error(features[i], feature_path, "duplicate feature name '" + name + "'");
    }
  }
  return pending;
}

// Lower-cased identifiers outside quotes: enough to see which sources a query names.
std::set<std::string> SqlIdentifiers(std::string_view sql) {
  std::set<std::string> out;
  size_t i = 0;
  while (i < sql.size()) {
    char c = sql[i];
    if (c == '\'' || c == '"') {
      size_t end = sql.find(c, i + 1);
      if (c == '"' && end != std::string_view::npos)
        out.insert(std::string(sql.substr(i + 1, end - i - 1)));
      i = end == std::string_view::npos ? sql.size() : end + 1;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t start = i;
      while (i < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '_'))
        ++i;
      out.insert(std::string(sql.substr(start, i - start)));
    } else {
      ++i;
    }
  }
  return out;
}

Result<FeatureUse> ParseUseNode(const YamlReader& reader, const YAML::Node& node,
                                const std::string& path) {
  if (node.IsScalar()) {
    Result<std::vector<FeatureUse>> uses = ParseFeatureUses(node.as<std::string>());
    if (!uses.ok()) return reader.Error(node, path, uses.status().message());
    if (uses->size() != 1) return reader.Error(node, path, "expected one view reference");
    (*uses)[0].location = reader.Where(node);
    return (*uses)[0];
  }
  RETURN_IF_ERROR(reader.CheckKeys(node, path, {"view", "version", "keys", "alias", "features"}));
  FeatureUse use;
  use.location = reader.Where(node);
  ASSIGN_OR_RETURN(use.view, reader.String(node, "view", path, true));
  ASSIGN_OR_RETURN(use.version, reader.String(node, "version", path, false));
  ASSIGN_OR_RETURN(use.alias, reader.String(node, "alias", path, false));
  if (node["keys"]) {
    if (!node["keys"].IsMap()) {
      return reader.Error(node["keys"], path + ".keys", "expected {entity_key: column}");
    }
    for (const auto& item : node["keys"]) {
      use.key_map[item.first.as<std::string>()] = item.second.as<std::string>();
    }
  }
  if (node["features"]) {
    ASSIGN_OR_RETURN(use.features, reader.StringList(node["features"], path + ".features"));
  }
  return use;
}

}  // namespace

namespace {}  // namespace

Result<RepoConfig> LoadRepoConfig(const std::string& dir) {
  RepoConfig config;
  std::error_code error;
  fs::path root = fs::absolute(dir, error).lexically_normal();
  if (!root.empty() && root.filename().empty()) root = root.parent_path();
  config.root = root.string();
  std::string file = (root / "keel.yaml").string();
  if (!FileExists(file)) {
    return NotFound("no keel.yaml in " + config.root + " (create one with 'keel init')");
  }
  YAML::Node node;
  try {
    node = YAML::LoadFile(file);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("keel.yaml:" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  YamlReader reader("keel.yaml");
  RETURN_IF_ERROR(reader.CheckKeys(
      node, "keel.yaml",
      {"project", "definitions", "variables", "catalog", "offline", "online", "registry"}));
  ASSIGN_OR_RETURN(config.project, reader.String(node, "project", "keel.yaml", true));
  if (node["definitions"]) {
    ASSIGN_OR_RETURN(config.definition_paths,
                     reader.StringList(node["definitions"], "keel.yaml.definitions"));
  }
  if (node["variables"]) {
    if (!node["variables"].IsMap()) {
      return reader.Error(node["variables"], "keel.yaml.variables", "expected a mapping");
    }
    for (const auto& item : node["variables"]) {
      config.variables[item.first.as<std::string>()] = item.second.as<std::string>();
    }
  }
  auto path_of = [&](const std::string& text, const std::string& fallback) {
    fs::path p(text.empty() ? fallback : text);
    return (p.is_absolute() ? p : root / p).lexically_normal().string();
  };
  ASSIGN_OR_RETURN(std::string catalog, reader.String(node, "catalog", "keel.yaml", false));
  config.catalog_path = path_of(catalog, ".keel/catalog.db");
  auto store = [&](const char* key, std::string* type, std::string* path,
                   const std::string& fallback, std::string* url = nullptr) -> Status {
    YAML::Node store_node = node[key];
    if (!store_node) {
      *path = path_of("", fallback);
      return Status::Ok();
    }
    std::string where = std::string("keel.yaml.") + key;
    RETURN_IF_ERROR(reader.CheckKeys(store_node, where, {"type", "path", "url"}));
    ASSIGN_OR_RETURN(std::string store_type, reader.String(store_node, "type", where, false));
    if (!store_type.empty() && type != nullptr) *type = store_type;
    ASSIGN_OR_RETURN(std::string store_path, reader.String(store_node, "path", where, false));
    *path = path_of(store_path, fallback);
    ASSIGN_OR_RETURN(std::string store_url, reader.String(store_node, "url", where, false));
    if (!store_url.empty() && url == nullptr) {
      return InvalidArgument(where + ".url: only the online store and the registry take a url");
    }
    if (url != nullptr) *url = store_url;
    return Status::Ok();
  };
  RETURN_IF_ERROR(store("offline", nullptr, &config.offline_path, ".keel/offline"));
  RETURN_IF_ERROR(store("online", &config.online_type, &config.online_path, ".keel/online",
                        &config.online_url));
  static const char* kOnlineTypes[] = {"rocksdb", "memory", "redis", "redis-cluster"};
  if (std::find(std::begin(kOnlineTypes), std::end(kOnlineTypes), config.online_type) ==
      std::end(kOnlineTypes)) {
    return InvalidArgument("keel.yaml.online.type: unknown online store '" + config.online_type +
                           "' (known: rocksdb, memory, redis, redis-cluster)");
  }
  if ((config.online_type == "redis" || config.online_type == "redis-cluster") &&
      config.online_url.empty()) {
    return InvalidArgument("keel.yaml.online.url: a " + config.online_type +
                           " store needs a url (redis://host:port)");
  }
  RETURN_IF_ERROR(store("registry", &config.registry_type, &config.registry_path,
                        ".keel/registry.db", &config.registry_url));
  if (config.registry_type != "sqlite" && config.registry_type != "postgres") {
    return InvalidArgument("keel.yaml.registry.type: unknown registry '" + config.registry_type +
                           "' (known: sqlite, postgres)");
  }
  if (config.registry_type == "postgres" && config.registry_url.empty()) {
    return InvalidArgument(
        "keel.yaml.registry.url: a postgres registry needs a url (postgresql://user@host:port/db)");
  }
  return config;
}

namespace {

Result<std::vector<std::string>> DefinitionFiles(const RepoConfig& config) {
  std::vector<std::string> files;
  std::vector<std::string> roots = config.definition_paths;
  if (roots.empty()) roots.push_back(".");
  for (const std::string& entry : roots) {
    fs::path path = fs::path(config.root) / entry;
    std::error_code error;
    if (fs::is_regular_file(path, error)) {
      files.push_back(fs::relative(path, config.root).string());
      continue;
    }
    if (!fs::is_directory(path, error)) {
      return NotFound("keel.yaml: definitions: no file or folder '" + entry + "'");
    }
    for (auto it = fs::recursive_directory_iterator(path, error);
         it != fs::recursive_directory_iterator(); ++it) {
      std::string name = it->path().filename().string();
      if (it->is_directory() && !name.empty() && name[0] == '.') {
        it.disable_recursion_pending();
        continue;
      }
      if (!it->is_regular_file()) continue;
      if (!EndsWith(name, ".yaml") && !EndsWith(name, ".yml")) continue;
      std::string relative = fs::relative(it->path(), config.root).string();
      if (relative == "keel.yaml") continue;
      files.push_back(relative);
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

Status ParseDefinitionFile(const RepoConfig& config, const std::string& file,
                           std::vector<std::unique_ptr<YamlReader>>* readers, Repository* repo,
                           std::vector<PendingView>* views) {
  YAML::Node root;
  try {
    root = YAML::LoadFile((fs::path(config.root) / file).string());
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": malformed YAML: " + e.msg);
  }
  readers->push_back(std::make_unique<YamlReader>(file));
  const YamlReader& reader = *readers->back();
  if (root.IsNull()) return Status::Ok();
  RETURN_IF_ERROR(reader.CheckKeys(
      root, file, {"entities", "sources", "window_views", "snapshot_views", "feature_services"}));
  auto each = [&](const char* key, auto&& parse) -> Status {
    YAML::Node list = root[key];
    if (!list) return Status::Ok();
    if (!list.IsSequence()) return reader.Error(list, key, "expected a list");
    for (size_t i = 0; i < list.size(); ++i) {
      RETURN_IF_ERROR(parse(list[i], std::string(key) + "[" + std::to_string(i) + "]"));
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(each("entities", [&](const YAML::Node& node, const std::string& path) -> Status {
    ASSIGN_OR_RETURN(EntityDef entity, ParseEntity(reader, node, path));
    repo->entities.push_back(std::move(entity));
    return Status::Ok();
  }));
  RETURN_IF_ERROR(each("sources", [&](const YAML::Node& node, const std::string& path) -> Status {
    ASSIGN_OR_RETURN(SourceDef source, ParseSource(reader, node, path));
    repo->sources.push_back(std::move(source));
    return Status::Ok();
  }));
  for (auto [key, kind] : {std::pair{"window_views", ViewKind::kWindow},
                           std::pair{"snapshot_views", ViewKind::kSnapshot}}) {
    RETURN_IF_ERROR(each(key, [&](const YAML::Node& node, const std::string& path) -> Status {
      ASSIGN_OR_RETURN(PendingView view, ParseView(reader, node, path, kind));
      views->push_back(std::move(view));
      return Status::Ok();
    }));
  }
  return each("feature_services", [&](const YAML::Node& node, const std::string& path) -> Status {
    RETURN_IF_ERROR(reader.CheckKeys(node, path, {"name", "features", "description"}));
    FeatureServiceDef service;
    service.location = reader.Where(node);
    ASSIGN_OR_RETURN(service.name, reader.String(node, "name", path, true));
    YAML::Node features = node["features"];
    if (!features || !features.IsSequence() || features.size() == 0) {
      return reader.Error(features ? features : node, path + ".features",
                          "expected a non-empty list of view uses");
    }
    for (size_t i = 0; i < features.size(); ++i) {
      ASSIGN_OR_RETURN(FeatureUse use, ParseUseNode(reader, features[i],
                                                    path + ".features[" + std::to_string(i) + "]"));
      service.uses.push_back(std::move(use));
    }
    repo->services.push_back(std::move(service));
    return Status::Ok();
  });
}

template <typename T>
Status CheckUnique(const std::vector<T>& items, const char* what) {
  for (size_t i = 0; i < items.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (items[i].name == items[j].name) {
        return InvalidArgument(items[i].location.ToString() + ": duplicate " + what + " name '" +
                               items[i].name + "' (first defined at " +
                               items[j].location.ToString() + ")");
      }
    }
  }
  return Status::Ok();
}

// Finds each query source's inputs and rejects missing or cyclic references.
Status ResolveSourceInputs(Repository* repo) {
  for (SourceDef& source : repo->sources) {
    if (source.format != SourceFormat::kQuery) continue;
    std::set<std::string> identifiers = SqlIdentifiers(source.query);
    for (const SourceDef& other : repo->sources) {
      if (other.name != source.name && identifiers.count(other.name) > 0) {
        source.inputs.push_back(other.name);
      }
    }
    if (identifiers.count(source.name) > 0) {
      return InvalidArgument(source.location.ToString() + ": source '" + source.name +
                             "': its query refers to itself");
    }
  }
  // Depth-first search for cycles: 0 = new, 1 = on the path, 2 = done.
  std::map<std::string, int> state;
  std::vector<std::string> stack;
  std::function<Status(const SourceDef&)> visit = [&](const SourceDef& source) -> Status {
    state[source.name] = 1;
    stack.push_back(source.name);
    for (const std::string& input : source.inputs) {
      if (state[input] == 1) {
        std::string cycle;
        auto from = std::find(stack.begin(), stack.end(), input);
        for (auto it = from; it != stack.end(); ++it) cycle += *it + " -> ";
        return InvalidArgument(source.location.ToString() + ": source '" + source.name +
                               "': cyclic reference " + cycle + input);
      }
      if (state[input] == 0) RETURN_IF_ERROR(visit(*repo->FindSource(input)));
    }
    stack.pop_back();
    state[source.name] = 2;
    return Status::Ok();
  };
  for (const SourceDef& source : repo->sources) {
    if (state[source.name] == 0) RETURN_IF_ERROR(visit(source));
  }
  return Status::Ok();
}

void CollectInputs(const Repository& repo, const SourceDef& source,
                   std::map<std::string, SourceDef>* out) {
  for (const std::string& input : source.inputs) {
    const SourceDef* def = repo.FindSource(input);
    if (def == nullptr || out->count(input) > 0) continue;
    (*out)[input] = *def;
    CollectInputs(repo, *def, out);
  }
}

Status ResolveView(const Repository& repo, PendingView* pending) {
  const YamlReader& reader = *pending->reader;
  FeatureViewDef& view = pending->view;
  const EntityDef* entity = repo.FindEntity(pending->entity_name);
  if (entity == nullptr) {
    return reader.Error(pending->node["entity"], pending->path + ".entity",
                        "unknown entity '" + pending->entity_name + "'");
  }
  const SourceDef* source = repo.FindSource(pending->source_name);
  if (source == nullptr) {
    return reader.Error(pending->node["source"], pending->path + ".source",
                        "unknown source '" + pending->source_name + "'");
  }
  view.entity = *entity;
  view.source = *source;
  CollectInputs(repo, *source, &view.source_inputs);
  if (view.kind == ViewKind::kWindow && source->timestamp_column.empty()) {
    return reader.Error(pending->node["source"], pending->path + ".source",
                        "a window view needs a source with a 'timestamp' column");
  }
  // Keys: default to the entity's key names; a list maps by position; a map by name.
  const YAML::Node& keys_node = pending->node["keys"] ? pending->node["keys"] : pending->node;
  if (pending->keys.empty()) {
    for (const table::Field& key : entity->keys) view.key_columns.push_back(key.name);
    return Status::Ok();
  }
  if (pending->keys.size() != entity->keys.size()) {
    return reader.Error(keys_node, pending->path + ".keys",
                        "entity '" + entity->name + "' has " + std::to_string(entity->keys.size()) +
                            " key(s), got " + std::to_string(pending->keys.size()));
  }
  view.key_columns.resize(entity->keys.size());
  for (size_t i = 0; i < pending->keys.size(); ++i) {
    const auto& [entity_key, column] = pending->keys[i];
    size_t index = i;
    if (!entity_key.empty()) {
      auto it = std::find_if(entity->keys.begin(), entity->keys.end(),
                             [&](const table::Field& key) { return key.name == entity_key; });
      if (it == entity->keys.end()) {
        return reader.Error(keys_node, pending->path + ".keys." + entity_key,
                            "entity '" + entity->name + "' has no key '" + entity_key + "'");
      }
      index = static_cast<size_t>(it - entity->keys.begin());
    }
    view.key_columns[index] = column;
  }
  return Status::Ok();
}

}  // namespace

Result<Repository> LoadRepository(const std::string& dir) {
  Repository repo;
  ASSIGN_OR_RETURN(repo.config, LoadRepoConfig(dir));
  ASSIGN_OR_RETURN(std::vector<std::string> files, DefinitionFiles(repo.config));
  std::vector<std::unique_ptr<YamlReader>> readers;
  std::vector<PendingView> pending;
  try {
    for (const std::string& file : files) {
      RETURN_IF_ERROR(ParseDefinitionFile(repo.config, file, &readers, &repo, &pending));
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument("malformed definition: " + std::string(e.what()));
  }
  RETURN_IF_ERROR(CheckUnique(repo.entities, "entity"));
  RETURN_IF_ERROR(CheckUnique(repo.sources, "source"));
  RETURN_IF_ERROR(ResolveSourceInputs(&repo));
  for (PendingView& view : pending) {
    RETURN_IF_ERROR(ResolveView(repo, &view));
    repo.views.push_back(std::move(view.view));
  }
  RETURN_IF_ERROR(CheckUnique(repo.views, "view"));
  RETURN_IF_ERROR(CheckUnique(repo.services, "feature service"));
  for (const FeatureServiceDef& service : repo.services) {
    for (const FeatureUse& use : service.uses) {
      if (repo.FindView(use.view) == nullptr) {
        return InvalidArgument(use.location.ToString() + ": feature service '" + service.name +
                               "': unknown view '" + use.view + "'");
      }
    }
  }
  return repo;
}

Result<std::string> ResolvePath(const std::string& path, const RepoConfig& config) {
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '$' || i + 1 >= path.size() || path[i + 1] != '{') {
      out += path[i];
      continue;
    }
    size_t end = path.find('}', i);
    if (end == std::string::npos) return InvalidArgument("unterminated ${ in '" + path + "'");
    std::string name = path.substr(i + 2, end - i - 2);
    const char* env = std::getenv(name.c_str());
    if (env != nullptr && *env != '\0') {
      out += env;
    } else if (auto it = config.variables.find(name); it != config.variables.end()) {
      fs::path value(it->second);
      out +=
          (value.is_absolute() ? value : fs::path(config.root) / value).lexically_normal().string();
    } else {
      return InvalidArgument("undefined variable ${" + name + "} in '" + path +
                             "' (set it in the environment or under 'variables' in keel.yaml)");
    }
    i = end;
  }
  fs::path resolved(out);
  if (!resolved.is_absolute()) resolved = fs::path(config.root) / resolved;
  return resolved.lexically_normal().string();
}

namespace {

// Like ResolvePath, for ${VAR} inside SQL text (no path joining).
Result<std::string> ExpandVariables(const std::string& text, const RepoConfig& config) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = text.find("${", i);
    if (start == std::string::npos) {
      out += text.substr(i);
      break;
    }
    size_t end = text.find('}', start);
    if (end == std::string::npos) return InvalidArgument("unterminated ${ in query");
    out += text.substr(i, start - i);
    ASSIGN_OR_RETURN(std::string value, ResolvePath(text.substr(start, end - start + 1), config));
    out += value;
    i = end + 1;
  }
  return out;
}

Result<std::string> ReadSql(const SourceDef& source, const RepoConfig& config) {
  if (source.format == SourceFormat::kQuery) return ExpandVariables(source.query, config);
  ASSIGN_OR_RETURN(std::string path, ResolvePath(source.path, config));
  if (!FileExists(path)) return NotFound("no such file: " + path);
  std::string quoted = "'";
  for (char c : path) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  quoted += "'";
  switch (source.format) {
    case SourceFormat::kParquet:
      return "SELECT * FROM read_parquet(" + quoted + ")";
    case SourceFormat::kCsv:
      return "SELECT * FROM read_csv(" + quoted + ", header = true)";
    case SourceFormat::kJsonl:
      return "SELECT * FROM read_json_auto(" + quoted + ")";
    case SourceFormat::kQuery:
      break;
  }
  return Internal("unreachable");
}

}  // namespace
}  // namespace keel::features

#include "table/duckdb_bridge.h"

namespace keel::features {

namespace {

// "source 'flights' (features/a.yaml:7:5)"; stored definitions have no location.
std::string SourceContext(const SourceDef& source) {
  std::string out = "source '" + source.name + "'";
  if (!source.location.file.empty()) out += " (" + source.location.ToString() + ")";
  return out;
}

}  // namespace

Result<std::string> RegisterSource(const SourceDef& source,
                                   const std::map<std::string, SourceDef>& inputs,
                                   const RepoConfig& config, table::DuckDb* duckdb) {
  for (const std::string& input : source.inputs) {
    auto it = inputs.find(input);
    if (it == inputs.end())
      return NotFound("source '" + source.name + "': missing input '" + input + "'");
    RETURN_IF_ERROR(RegisterSource(it->second, inputs, config, duckdb).status());
  }
  Result<std::string> sql = ReadSql(source, config);
  if (!sql.ok()) {
    return sql.status().WithContext("source '" + source.name + "' (" + source.location.ToString() +
                                    ")");
  }
  Status status = duckdb->Execute("CREATE OR REPLACE TEMP VIEW " +
                                  table::QuoteSqlIdentifier(source.name) + " AS " + *sql);
  if (!status.ok()) {
    return status.WithContext(SourceContext(source));
  }
  return "SELECT * FROM " + table::QuoteSqlIdentifier(source.name);
}

Result<std::string> SourceReadKey(const SourceDef& source,
                                  const std::map<std::string, SourceDef>& inputs,
                                  const RepoConfig& config) {
  std::string key;
  for (const std::string& input : source.inputs) {
    auto it = inputs.find(input);
    if (it == inputs.end())
      return NotFound("source '" + source.name + "': missing input '" + input + "'");
    ASSIGN_OR_RETURN(std::string read, SourceReadKey(it->second, inputs, config));
    key += read;
  }
  ASSIGN_OR_RETURN(std::string sql, ReadSql(source, config));
  // A name cannot hold a newline; the SQL's length keeps two keys from
  // matching by accident when the SQL does.
  return key + source.name + "\n" + std::to_string(sql.size()) + "\n" + sql + "\n";
}

namespace {

Status ValidateView(FeatureViewDef* view, const RepoConfig& config, table::DuckDb* duckdb) {
  auto error = [&](const SourceLocation& where, const std::string& what) {
    return InvalidArgument(where.ToString() + ": view '" + view->name + "': " + what);
  };
  ASSIGN_OR_RETURN(std::string sql,
                   RegisterSource(view->source, view->source_inputs, config, duckdb));
  Result<table::Table> sample = duckdb->Query(sql + " LIMIT 0");
  if (!sample.ok()) {
    return sample.status().WithContext("source '" + view->source.name + "' (" +
                                       view->source.location.ToString() + ")");
  }
  const std::vector<table::Field>& schema = sample->fields();
  auto column_type = [&](const std::string& name) -> const table::Field* {
    for (const table::Field& field : schema) {
      if (field.name == name) return &field;
    }
    return nullptr;
  };
  const std::string columns =
      " (source '" + view->source.name + "' has: " + sample->SchemaToString() + ")";
  for (size_t i = 0; i < view->key_columns.size(); ++i) {
    const table::Field* field = column_type(view->key_columns[i]);
    const table::Field& key = view->entity.keys[i];
    if (field == nullptr) {
      return error(view->location, "keys: no column '" + view->key_columns[i] + "'" + columns);
    }
    if (field->type != key.type) {
      return error(view->location, "keys: column '" + field->name + "' is " +
                                       std::string(table::DataTypeName(field->type)) +
                                       " but entity key '" + key.name + "' is " +
                                       std::string(table::DataTypeName(key.type)));
    }
  }
  for (const std::string* column : {&view->source.timestamp_column, &view->source.created_column}) {
    if (column->empty()) continue;
    const table::Field* field = column_type(*column);
    const char* role = column == &view->source.timestamp_column ? "timestamp" : "created";
    if (field == nullptr) {
      return error(view->source.location,
                   std::string(role) + ": no column '" + *column + "'" + columns);
    }
    bool ok = field->type == table::DataType::kTimestamp ||
              (column == &view->source.created_column && field->type == table::DataType::kInt64);
    if (!ok) {
      return error(view->source.location, std::string(role) + ": column '" + *column + "' is " +
                                              std::string(table::DataTypeName(field->type)) +
                                              ", not a timestamp");
    }
  }
  for (WindowFeatureDef& feature : view->window_features) {
    if (feature.expression.empty()) continue;
    ASSIGN_OR_RETURN(Expression expression, Expression::Parse(feature.expression));
    Status bound = expression.Bind(schema);
    if (!bound.ok())
      return error(feature.location, "feature '" + feature.name + "': " + bound.message());
    if (!table::IsNumeric(expression.result_type()) && feature.aggregation != Aggregation::kCount) {
      return error(feature.location,
                   "feature '" + feature.name +
                       "': " + std::string(AggregationName(feature.aggregation)) +
                       " needs a numeric expression, got " +
                       std::string(table::DataTypeName(expression.result_type())));
    }
  }
  for (SnapshotFeatureDef& feature : view->snapshot_features) {
    ASSIGN_OR_RETURN(Expression expression, Expression::Parse(feature.expression));
    Status bound = expression.Bind(schema);
    if (!bound.ok())
      return error(feature.location, "feature '" + feature.name + "': " + bound.message());
    feature.type = expression.result_type();
  }
  return Status::Ok();
}

}  // namespace

Status ValidateAgainstData(Repository* repo, table::DuckDb* duckdb) {
  for (FeatureViewDef& view : repo->views) {
    RETURN_IF_ERROR(ValidateView(&view, repo->config, duckdb));
  }
  return Status::Ok();
}

}  // namespace keel::features

#include <nlohmann/json.hpp>

namespace keel::features {
namespace {

using Json = nlohmann::json;

const char* FormatName(SourceFormat format) {
  switch (format) {
    case SourceFormat::kParquet:
      return "parquet";
    case SourceFormat::kCsv:
      return "csv";
    case SourceFormat::kJsonl:
      return "jsonl";
    case SourceFormat::kQuery:
      return "query";
  }
  return "?";
}

Json SourceToJson(const SourceDef& source) {
  return Json{{"name", source.name},
              {"format", FormatName(source.format)},
              {"path", source.path},
              {"query", source.query},
              {"timestamp", source.timestamp_column},
              {"created", source.created_column},
              {"inputs", source.inputs}};
}

Result<SourceDef> SourceFromJson(const Json& json) {
  SourceDef source;
  source.name = json.at("name").get<std::string>();
  std::string format = json.at("format").get<std::string>();
  if (format == "parquet")
    source.format = SourceFormat::kParquet;
  else if (format == "csv")
    source.format = SourceFormat::kCsv;
  else if (format == "jsonl")
    source.format = SourceFormat::kJsonl;
  else if (format == "query")
    source.format = SourceFormat::kQuery;
  else
    return InvalidArgument("unknown source format '" + format + "'");
  source.path = json.at("path").get<std::string>();
  source.query = json.at("query").get<std::string>();
  source.timestamp_column = json.at("timestamp").get<std::string>();
  source.created_column = json.at("created").get<std::string>();
  source.inputs = json.at("inputs").get<std::vector<std::string>>();
  return source;
}

}  // namespace

std::string CanonicalJson(const FeatureViewDef& view) {
  Json entity_keys = Json::array();
  for (const table::Field& key : view.entity.keys) {
    entity_keys.push_back({key.name, table::DataTypeName(key.type)});
  }
  Json inputs = Json::object();
  for (const auto& [name, source] : view.source_inputs) inputs[name] = SourceToJson(source);
  Json features = Json::array();
  for (const WindowFeatureDef& feature : view.window_features) {
    Json windows = Json::array();
    for (const WindowSpec& window : feature.windows) windows.push_back({window.length, window.hop});
    features.push_back({{"name", feature.name},
                        {"aggregation", AggregationName(feature.aggregation)},
                        {"expression", feature.expression},
                        {"windows", windows}});
  }
  for (const SnapshotFeatureDef& feature : view.snapshot_features) {
    features.push_back({{"name", feature.name},
                        {"expression", feature.expression},
                        {"type", table::DataTypeName(feature.type)}});
  }
  Json json{{"format", 1},
            {"kind", view.kind == ViewKind::kWindow ? "window" : "snapshot"},
            {"name", view.name},
            {"entity", {{"name", view.entity.name}, {"keys", entity_keys}}},
            {"source", SourceToJson(view.source)},
            {"inputs", inputs},
            {"key_columns", view.key_columns},
            {"ttl", view.ttl},
            {"features", features}};
  return json.dump();
}

Result<FeatureViewDef> ViewFromJson(std::string_view text) {
  try {
    Json json = Json::parse(text);
    FeatureViewDef view;
    view.kind = json.at("kind") == "window" ? ViewKind::kWindow : ViewKind::kSnapshot;
    view.name = json.at("name").get<std::string>();
    view.entity.name = json.at("entity").at("name").get<std::string>();
    for (const Json& key : json.at("entity").at("keys")) {
      ASSIGN_OR_RETURN(table::DataType type, table::ParseDataType(key.at(1).get<std::string>()));
      view.entity.keys.push_back({key.at(0).get<std::string>(), type});
    }
    ASSIGN_OR_RETURN(view.source, SourceFromJson(json.at("source")));
    for (const auto& [name, source] : json.at("inputs").items()) {
      ASSIGN_OR_RETURN(view.source_inputs[name], SourceFromJson(source));
    }
    view.key_columns = json.at("key_columns").get<std::vector<std::string>>();
    view.ttl = json.at("ttl").get<int64_t>();
    for (const Json& feature : json.at("features")) {
      if (view.kind == ViewKind::kWindow) {
        WindowFeatureDef def;
        def.name = feature.at("name").get<std::string>();
        ASSIGN_OR_RETURN(def.aggregation,
                         ParseAggregation(feature.at("aggregation").get<std::string>()));
        def.expression = feature.at("expression").get<std::string>();
        for (const Json& window : feature.at("windows")) {
          def.windows.push_back({window.at(0).get<int64_t>(), window.at(1).get<int64_t>()});
        }
        view.window_features.push_back(std::move(def));
      } else {
        SnapshotFeatureDef def;
        def.name = feature.at("name").get<std::string>();
        def.expression = feature.at("expression").get<std::string>();
        ASSIGN_OR_RETURN(def.type, table::ParseDataType(feature.at("type").get<std::string>()));
        view.snapshot_features.push_back(std::move(def));
      }
    }
    return view;
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("malformed stored view definition: ") + e.what());
  }
}

std::string ViewVersion(const FeatureViewDef& view) {
  return HashHex128(CanonicalJson(view)).substr(0, 12);
}

namespace {

std::string Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t\n");
  if (begin == std::string_view::npos) return "";
  size_t end = text.find_last_not_of(" \t\n");
  return std::string(text.substr(begin, end - begin + 1));
}

Result<FeatureUse> ParseOneUse(std::string_view item) {
  std::string text = Trim(item);
  auto bad = [&](const std::string& why) {
    return InvalidArgument("feature reference '" + text + "': " + why +
                           " (expected view[@version][(key=column,...)][ as alias][:f1|f2])");
  };
  FeatureUse use;
  size_t colon = text.rfind(':');
  if (colon != std::string::npos && text.find(')', colon) == std::string::npos) {
    std::string list = text.substr(colon + 1);
    text = Trim(text.substr(0, colon));
    size_t start = 0;
    while (start <= list.size()) {
      size_t bar = list.find('|', start);
      std::string name =
          Trim(list.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
      if (name.empty()) return bad("empty feature name");
      use.features.push_back(name);
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
  }
  size_t as = text.find(" as ");
  if (as != std::string::npos) {
    use.alias = Trim(text.substr(as + 4));
    text = Trim(text.substr(0, as));
    if (use.alias.empty()) return bad("empty alias");
  }
  size_t open = text.find('(');
  if (open != std::string::npos) {
    size_t close = text.find(')', open);
    if (close == std::string::npos || close != text.size() - 1)
      return bad("unbalanced parentheses");
    std::string inner = text.substr(open + 1, close - open - 1);
    text = Trim(text.substr(0, open));
    size_t start = 0;
    while (start < inner.size()) {
      size_t comma = inner.find(',', start);
      std::string pair =
          inner.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      size_t equals = pair.find('=');
      if (equals == std::string::npos) return bad("expected key=column in '" + Trim(pair) + "'");
      std::string key = Trim(pair.substr(0, equals));
      std::string column = Trim(pair.substr(equals + 1));
      if (key.empty() || column.empty()) return bad("expected key=column in '" + Trim(pair) + "'");
      use.key_map[key] = column;
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  size_t at = text.find('@');
  if (at != std::string::npos) {
    use.version = Trim(text.substr(at + 1));
    text = Trim(text.substr(0, at));
    if (use.version.empty()) return bad("empty version after @");
  }
  use.view = text;
  if (use.view.empty() || use.view.find_first_of(" ()=@,") != std::string::npos) {
    return bad("bad view name '" + use.view + "'");
  }
  return use;
}

}  // namespace

Result<std::vector<FeatureUse>> ParseFeatureUses(std::string_view text) {
  std::vector<FeatureUse> uses;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    char c = i < text.size() ? text[i] : ',';
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      std::string item = Trim(text.substr(start, i - start));
      if (!item.empty()) {
        ASSIGN_OR_RETURN(FeatureUse use, ParseOneUse(item));
        uses.push_back(std::move(use));
      }
      start = i + 1;
    }
  }
  if (uses.empty()) return InvalidArgument("no feature views named");
  return uses;
}

}  // namespace keel::features
