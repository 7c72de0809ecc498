// SQLite connection for the store: a thin RAII wrapper over the SQLite3 C API.
//
// Thread safety: as SqlDb (one thread at a time).
#pragma once

#include <memory>
#include <string>

#include "qmtl/store/sql_db.h"

struct sqlite3;

namespace qmtl::store {

class SqliteDb final : public SqlDb {
 public:
  // Opens (creating if needed) the database file at `path` with foreign keys on,
  // WAL journaling and a 5 s busy timeout. ":memory:" opens a private in-memory db.
  static Result<std::unique_ptr<SqliteDb>> open(const std::string& path);

  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  ~SqliteDb() override;

  Result<void> exec(std::string_view sql) override;
  Result<Statement> prepare(std::string_view sql) override;
  bool last_error_is_unique_violation() const override;
  int64_t changes() const override;
  Result<void> begin_write() override { return exec("BEGIN IMMEDIATE"); }
  Result<void> commit() override { return exec("COMMIT"); }
  void rollback() override { (void)exec("ROLLBACK"); }
  Result<bool> try_session_lock(std::string_view) override { return true; }
  void session_unlock(std::string_view) override {}
  Result<bool> hold_session_lock(std::string_view) override { return true; }
  Result<void> notify_change(std::string_view) override { return {}; }
  SqlDialect dialect() const override { return SqlDialect::kSqlite; }
  std::string describe() const override { return "sqlite:" + path_; }

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_ = nullptr;
  const std::string path_;
};

}  // namespace qmtl::store
