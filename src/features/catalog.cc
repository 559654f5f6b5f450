#include "features/catalog.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "common/files.h"

namespace keel::features {

struct Catalog::Db {
  sqlite3* handle = nullptr;
  ~Db() {
    if (handle != nullptr) sqlite3_close(handle);
  }
};

namespace {

using Json = nlohmann::json;

Status SqliteError(sqlite3* db, const std::string& what) {
  return IoError("catalog: " + what + ": " + sqlite3_errmsg(db));
}

// A prepared statement, finalised on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    status_ = sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr) == SQLITE_OK
                  ? Status::Ok()
                  : SqliteError(db, std::string("preparing '") + sql + "'");
  }
  ~Statement() { sqlite3_finalize(statement_); }
  const Status& status() const { return status_; }
  Statement& Bind(int index, const std::string& text) {
    sqlite3_bind_text(statement_, index, text.c_str(), static_cast<int>(text.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Bind(int index, int64_t value) {
    sqlite3_bind_int64(statement_, index, value);
    return *this;
  }
  // Returns true while there is a row; errors become a Status in *status.
  bool Step(Status* status) {
    int rc = sqlite3_step(statement_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) *status = SqliteError(db_, "step");
    return false;
  }
  Status Run() {
    Status status;
    while (Step(&status)) {
    }
    return status;
  }
  std::string Text(int column) const {
    const unsigned char* text = sqlite3_column_text(statement_, column);
    return text == nullptr ? "" : reinterpret_cast<const char*>(text);
  }
  int64_t Int(int column) const { return sqlite3_column_int64(statement_, column); }

 private:
  sqlite3* db_;
  sqlite3_stmt* statement_ = nullptr;
  Status status_;
};

Status Exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error != nullptr ? error : "unknown";
    sqlite3_free(error);
    return IoError(std::string("catalog: ") + message);
  }
  return Status::Ok();
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS view_versions (
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  number INTEGER NOT NULL,
  definition TEXT NOT NULL,
  applied_at INTEGER NOT NULL,
  code_version TEXT NOT NULL,
  PRIMARY KEY (name, version),
  UNIQUE (name, number)
);
CREATE TABLE IF NOT EXISTS current_views (
  name TEXT PRIMARY KEY,
  version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feature_services (
  name TEXT PRIMARY KEY,
  definition TEXT NOT NULL
);
)sql";

constexpr const char* kSelectVersion =
    "SELECT v.name, v.version, v.number, v.definition, v.applied_at, v.code_version, "
    "c.version IS NOT NULL FROM view_versions v LEFT JOIN current_views c "
    "ON c.name = v.name AND c.version = v.version ";

Result<ViewVersionInfo> ReadVersion(const Statement& statement) {
  ViewVersionInfo info;
  info.name = statement.Text(0);
  info.version = statement.Text(1);
  info.number = statement.Int(2);
  ASSIGN_OR_RETURN(info.definition, ViewFromJson(statement.Text(3)));
  info.applied_at = statement.Int(4);
  info.code_version = statement.Text(5);
  info.current = statement.Int(6) != 0;
  return info;
}

Result<std::vector<ViewVersionInfo>> ReadAll(Statement& statement) {
  RETURN_IF_ERROR(statement.status());
  std::vector<ViewVersionInfo> out;
  Status status;
  while (statement.Step(&status)) {
    ASSIGN_OR_RETURN(ViewVersionInfo info, ReadVersion(statement));
    out.push_back(std::move(info));
  }
  RETURN_IF_ERROR(status);
  return out;
}

Json UseToJson(const FeatureUse& use) {
  return Json{{"view", use.view},
              {"version", use.version},
              {"keys", use.key_map},
              {"alias", use.alias},
              {"features", use.features}};
}

Status ApplyInTransaction(sqlite3* db, const Repository& repo, std::vector<ViewChange>* changes) {
  int64_t now = WallClockNow();
  std::map<std::string, bool> defined;
  for (const FeatureViewDef& view : repo.views) {
    defined[view.name] = true;
    std::string version = ViewVersion(view);
    Statement existing(db, "SELECT number FROM view_versions WHERE name = ? AND version = ?");
    RETURN_IF_ERROR(existing.status());
    existing.Bind(1, view.name).Bind(2, version);
    Status status;
    int64_t number = 0;
    bool known = existing.Step(&status);
    RETURN_IF_ERROR(status);
    if (known) number = existing.Int(0);
    Statement current(db, "SELECT version FROM current_views WHERE name = ?");
    RETURN_IF_ERROR(current.status());
    current.Bind(1, view.name);
    bool has_current = current.Step(&status);
    RETURN_IF_ERROR(status);
    std::string current_version = has_current ? current.Text(0) : "";
    ViewChange change{ViewChange::Kind::kUnchanged, view.name, version, number};
    if (!known) {
      Statement next(db, "SELECT COALESCE(MAX(number), 0) + 1 FROM view_versions WHERE name = ?");
      RETURN_IF_ERROR(next.status());
      next.Bind(1, view.name);
      next.Step(&status);
      RETURN_IF_ERROR(status);
      number = next.Int(0);
      Statement insert(db,
                       "INSERT INTO view_versions (name, version, number, definition, applied_at, "
                       "code_version) VALUES (?, ?, ?, ?, ?, ?)");
      RETURN_IF_ERROR(insert.status());
      insert.Bind(1, view.name).Bind(2, version).Bind(3, number).Bind(4, CanonicalJson(view));
      insert.Bind(5, now).Bind(6, std::string(CodeVersion()));
      RETURN_IF_ERROR(insert.Run());
      change.kind = number == 1 ? ViewChange::Kind::kCreated : ViewChange::Kind::kNewVersion;
      change.number = number;
    } else if (current_version != version) {
      change.kind = ViewChange::Kind::kNewVersion;  // back to an earlier version
    }
    if (current_version != version) {
      Statement upsert(db, "INSERT OR REPLACE INTO current_views (name, version) VALUES (?, ?)");
      RETURN_IF_ERROR(upsert.status());
      upsert.Bind(1, view.name).Bind(2, version);
      RETURN_IF_ERROR(upsert.Run());
    }
    changes->push_back(change);
  }
  Statement all(db, "SELECT name, version FROM current_views ORDER BY name");
  RETURN_IF_ERROR(all.status());
  Status status;
  std::vector<std::pair<std::string, std::string>> removed;
  while (all.Step(&status)) {
    if (!defined.count(all.Text(0))) removed.emplace_back(all.Text(0), all.Text(1));
  }
  RETURN_IF_ERROR(status);
  for (const auto& [name, version] : removed) {
    Statement remove(db, "DELETE FROM current_views WHERE name = ?");
    RETURN_IF_ERROR(remove.status());
    remove.Bind(1, name);
    RETURN_IF_ERROR(remove.Run());
    changes->push_back({ViewChange::Kind::kRemoved, name, version, 0});
  }
  RETURN_IF_ERROR(Exec(db, "DELETE FROM feature_services"));
  for (const FeatureServiceDef& service : repo.services) {
    Json uses = Json::array();
    for (const FeatureUse& use : service.uses) uses.push_back(UseToJson(use));
    Statement insert(db, "INSERT INTO feature_services (name, definition) VALUES (?, ?)");
    RETURN_IF_ERROR(insert.status());
    insert.Bind(1, service.name).Bind(2, uses.dump());
    RETURN_IF_ERROR(insert.Run());
  }
  return Status::Ok();
}

}  // namespace

Catalog::Catalog(std::unique_ptr<Db> db) : db_(std::move(db)) {}
Catalog::~Catalog() = default;

Result<std::unique_ptr<Catalog>> Catalog::Open(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
  auto db = std::make_unique<Db>();
  if (sqlite3_open(path.c_str(), &db->handle) != SQLITE_OK) {
    return IoError("cannot open catalog " + path + ": " + sqlite3_errmsg(db->handle));
  }
  sqlite3_busy_timeout(db->handle, 10000);
  Status status = Exec(db->handle, kSchema);
  if (!status.ok()) return status.WithContext(path);
  return std::unique_ptr<Catalog>(new Catalog(std::move(db)));
}

Result<std::vector<ViewChange>> Catalog::Apply(const Repository& repo) {
  RETURN_IF_ERROR(Exec(db_->handle, "BEGIN IMMEDIATE"));
  std::vector<ViewChange> changes;
  Status status = ApplyInTransaction(db_->handle, repo, &changes);
  if (status.ok()) status = CheckServices(repo);  // sees this transaction's versions
  if (!status.ok()) {
    (void)Exec(db_->handle, "ROLLBACK");
    return status;
  }
  RETURN_IF_ERROR(Exec(db_->handle, "COMMIT"));
  return changes;
}

Status Catalog::CheckServices(const Repository& repo) {
  for (const FeatureServiceDef& service : repo.services) {
    std::map<std::string, const FeatureUse*> columns;  // output column -> use writing it
    for (const FeatureUse& use : service.uses) {
      std::string where = use.location.ToString() + ": feature service '" + service.name + "': ";
      FeatureViewDef view;
      if (use.version.empty()) {
        const FeatureViewDef* current = repo.FindView(use.view);
        if (current == nullptr) return InvalidArgument(where + "unknown view '" + use.view + "'");
        view = *current;
      } else {
        Result<ViewVersionInfo> info = Resolve(use.view, use.version);
        if (!info.ok()) return InvalidArgument(where + info.status().message());
        view = info->definition;
      }
      for (const auto& [key, column] : use.key_map) {
        bool known = std::any_of(view.entity.keys.begin(), view.entity.keys.end(),
                                 [&](const table::Field& field) { return field.name == key; });
        if (!known) {
          return InvalidArgument(where + "view '" + view.name + "': entity '" + view.entity.name +
                                 "' has no key '" + key + "'");
        }
      }
      std::vector<std::string> names = view.FeatureNames();
      for (const std::string& feature : use.features) {
        if (std::find(names.begin(), names.end(), feature) == names.end()) {
          std::string list;
          for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
          return InvalidArgument(where + "view '" + view.name + "': no feature '" + feature +
                                 "' (features: " + list + ")");
        }
      }
      std::string prefix = use.alias.empty() ? use.view : use.alias;
      for (const std::string& feature : use.features.empty() ? names : use.features) {
        std::string column = prefix + "__" + feature;
        auto [it, inserted] = columns.emplace(column, &use);
        if (!inserted) {
          return InvalidArgument(where + "column '" + column + "' is also written by the use at " +
                                 it->second->location.ToString() +
                                 " (give one of them an alias: '" + use.view + " as name')");
        }
      }
    }
  }
  return Status::Ok();
}

Result<std::vector<ViewVersionInfo>> Catalog::ListCurrent() {
  Statement statement(
      db_->handle,
      (std::string(kSelectVersion) + "WHERE c.version IS NOT NULL ORDER BY v.name").c_str());
  return ReadAll(statement);
}

Result<std::vector<ViewVersionInfo>> Catalog::History(const std::string& view) {
  Statement statement(db_->handle,
                      (std::string(kSelectVersion) + "WHERE v.name = ? ORDER BY v.number").c_str());
  statement.Bind(1, view);
  ASSIGN_OR_RETURN(std::vector<ViewVersionInfo> versions, ReadAll(statement));
  if (versions.empty()) return NotFound("no view '" + view + "' in the catalog (run 'keel apply')");
  return versions;
}

Result<ViewVersionInfo> Catalog::Resolve(const std::string& view, const std::string& version) {
  ASSIGN_OR_RETURN(std::vector<ViewVersionInfo> versions, History(view));
  std::vector<const ViewVersionInfo*> matches;
  bool numeric = !version.empty() && version.find_first_not_of("0123456789") == std::string::npos &&
                 version.size() < 6;
  for (const ViewVersionInfo& info : versions) {
    if (version.empty() ? info.current
        : numeric       ? std::to_string(info.number) == version
                        : info.version.rfind(version, 0) == 0) {
      matches.push_back(&info);
    }
  }
  if (!version.empty() && !numeric && version.size() < 4) {
    return InvalidArgument("version '" + version + "' of view '" + view +
                           "': give a version number or at least 4 hash characters");
  }
  if (matches.empty()) {
    if (version.empty())
      return NotFound("view '" + view + "' is no longer defined; name a version");
    std::string known;
    for (const ViewVersionInfo& info : versions) {
      known +=
          (known.empty() ? "" : ", ") + std::to_string(info.number) + " (" + info.version + ")";
    }
    return NotFound("view '" + view + "' has no version '" + version + "' (versions: " + known +
                    ")");
  }
  if (matches.size() > 1) {
    return InvalidArgument("version prefix '" + version + "' of view '" + view + "' is ambiguous");
  }
  return *matches[0];
}

Result<FeatureServiceDef> Catalog::Service(const std::string& name) {
  Statement statement(db_->handle, "SELECT definition FROM feature_services WHERE name = ?");
  RETURN_IF_ERROR(statement.status());
  statement.Bind(1, name);
  Status status;
  if (!statement.Step(&status)) {
    RETURN_IF_ERROR(status);
    return NotFound("no feature service '" + name + "'");
  }
  FeatureServiceDef service;
  service.name = name;
  try {
    for (const Json& use : Json::parse(statement.Text(0))) {
      FeatureUse item;
      item.view = use.at("view").get<std::string>();
      item.version = use.at("version").get<std::string>();
      item.key_map = use.at("keys").get<std::map<std::string, std::string>>();
      item.alias = use.at("alias").get<std::string>();
      item.features = use.at("features").get<std::vector<std::string>>();
      service.uses.push_back(std::move(item));
    }
  } catch (const Json::exception& e) {
    return IoError(std::string("catalog: malformed feature service: ") + e.what());
  }
  return service;
}

}  // namespace keel::features
