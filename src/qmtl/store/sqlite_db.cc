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

}  // namespace

Statement::Statement(Statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Result<void> Statement::bind(int index, std::string_view text) {
  if (sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                        SQLITE_TRANSIENT) != SQLITE_OK) {
    return sqlite_error(sqlite3_db_handle(stmt_), "bind");
  }
  return {};
}

Result<void> Statement::bind(int index, int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) {
    return sqlite_error(sqlite3_db_handle(stmt_), "bind");
  }
  return {};
}

Result<void> Statement::bind(int index, double value) {
  if (sqlite3_bind_double(stmt_, index, value) != SQLITE_OK) {
    return sqlite_error(sqlite3_db_handle(stmt_), "bind");
  }
  return {};
}

Result<void> Statement::bind_null(int index) {
  if (sqlite3_bind_null(stmt_, index) != SQLITE_OK) {
    return sqlite_error(sqlite3_db_handle(stmt_), "bind");
  }
  return {};
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqlite_error(sqlite3_db_handle(stmt_), "statement");
}

Result<void> Statement::run() {
  for (;;) {
    auto r = step();
    if (!r) return propagate(r);
    if (!*r) return {};
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string Statement::column_text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  const int n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

int64_t Statement::column_int(int col) const { return sqlite3_column_int64(stmt_, col); }

double Statement::column_double(int col) const { return sqlite3_column_double(stmt_, col); }

bool Statement::column_is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

Result<SqliteDb> SqliteDb::open(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  SqliteDb db(raw);  // owns raw even on failure, so it is closed
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
  if (auto r = db.exec("PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; "
                       "PRAGMA synchronous = NORMAL;");
      !r) {
    return make_error(r.error().code,
                      fmt::format("cannot use database '{}': {}", path, r.error().message));
  }
  return db;
}

SqliteDb::SqliteDb(SqliteDb&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

SqliteDb& SqliteDb::operator=(SqliteDb&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
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
  return Statement(stmt);
}

int SqliteDb::last_error_code() const { return sqlite3_extended_errcode(db_); }

int64_t SqliteDb::changes() const { return sqlite3_changes64(db_); }

Result<Transaction> Transaction::begin(SqliteDb& db) {
  if (auto r = db.exec("BEGIN IMMEDIATE"); !r) return propagate(r);
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)db_->exec("ROLLBACK");
}

Result<void> Transaction::commit() {
  if (db_ == nullptr) return make_error(ErrorCode::kInternal, "transaction already finished");
  auto r = db_->exec("COMMIT");
  if (r) db_ = nullptr;
  return r;
}

}  // namespace qmtl::store
