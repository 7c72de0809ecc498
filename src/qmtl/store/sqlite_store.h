// SQLite implementation of Store: the embedded default.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "qmtl/store/sqlite_db.h"
#include "qmtl/store/store.h"

namespace qmtl::store {

// The migrations SqliteStore knows, as (version, SQL). Applied in order, each in
// its own transaction together with its row in schema_migrations.
struct Migration {
  int version;
  std::string_view description;
  std::string_view sql;
};
std::span<const Migration> sqlite_migrations();

class SqliteStore final : public Store {
 public:
  // Opens `path` and applies pending migrations. See open_store().
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);

  Result<void> insert_world(const World& world) override;
  Result<World> get_world(std::string_view id) override;
  Result<std::vector<World>> list_worlds() override;
  Result<int> schema_version() override;
  std::string describe() const override { return "sqlite:" + path_; }

 private:
  SqliteStore(SqliteDb db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}
  Result<void> migrate();

  std::mutex mu_;  // serialises all use of db_
  SqliteDb db_;
  const std::string path_;
};

}  // namespace qmtl::store
