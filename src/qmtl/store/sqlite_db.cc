#include "qmtl/store/sqlite_db.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <utility>

namespace qmtl::store {
namespace {

tl::unexpected<Error> sqlite_error(sqlite3* db, std::string_view what) {
  const int code = db != nullptr ? sqlite3_extended_errcode(db) : SQLITE_ERROR;
  const char* msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  const ErrorCode ec = (code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED
                           ? ErrorCode::kUnavailable
                           : ErrorCode::kInternal;
  return make_error(ec, fmt::format("database {} failed: {}", what, msg));
}

class SqliteStatement final : public StatementImpl {
 public:
  explicit SqliteStatement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  ~SqliteStatement() override { sqlite3_finalize(stmt_); }

  Result<void> bind(int index, std::string_view text) override {
    return check(sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                                   SQLITE_TRANSIENT));
  }
  Result<void> bind(int index, int64_t value) override {
    return check(sqlite3_bind_int64(stmt_, index, value));
  }
  Result<void> bind(int index, double value) override {
    return check(sqlite3_bind_double(stmt_, index, value));
  }
  Result<void> bind_null(int index) override { return check(sqlite3_bind_null(stmt_, index)); }

  Result<bool> step() override {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return sqlite_error(sqlite3_db_handle(stmt_), "statement");
  }
  void reset() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  std::string column_text(int col) const override {
    const auto* p = sqlite3_column_text(stmt_, col);
    const int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? std::string()
                        : std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }
  int64_t column_int(int col) const override { return sqlite3_column_int64(stmt_, col); }
  double column_double(int col) const override { return sqlite3_column_double(stmt_, col); }
  bool column_is_null(int col) const override {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }

 private:
  Result<void> check(int rc) {
    if (rc != SQLITE_OK) return sqlite_error(sqlite3_db_handle(stmt_), "bind");
    return {};
  }
  sqlite3_stmt* stmt_;
};

}  // namespace

Result<std::unique_ptr<SqliteDb>> SqliteDb::open(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw, path));  // owns raw even on failure
  if (rc != SQLITE_OK) {
    return make_error(
        ErrorCode::kUnavailable,
        fmt::format("cannot open database '{}': {}; check the path and its permissions", path,
                    raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, 5000);
  // journal_mode answers with a row, so it cannot go through exec's error path
  // silently: an unwritable directory shows up here rather than on first write.
  if (auto r = db->exec("PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; "
                        "PRAGMA synchronous = FULL; PRAGMA cache_size = -65536;");
      !r) {
    return make_error(r.error().code,
                      fmt::format("cannot use database '{}': {}", path, r.error().message));
  }
  return db;
}

SqliteDb::~SqliteDb() { sqlite3_close_v2(db_); }

Result<void> SqliteDb::exec(std::string_view sql) {
  const std::string s(sql);
  char* err = nullptr;
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    return make_error(ErrorCode::kInternal, fmt::format("database statement failed: {}", msg));
  }
  return {};
}

Result<Statement> SqliteDb::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return sqlite_error(db_, "prepare");
  }
  return Statement(std::make_unique<SqliteStatement>(stmt));
}

bool SqliteDb::last_error_is_unique_violation() const {
  const int code = sqlite3_extended_errcode(db_);
  return code == SQLITE_CONSTRAINT_PRIMARYKEY || code == SQLITE_CONSTRAINT_UNIQUE;
}

int64_t SqliteDb::changes() const { return sqlite3_changes64(db_); }

}  // namespace qmtl::store
