// A thin RAII wrapper over the SQLite3 C API.
//
// SqliteDb owns one connection; Statement owns one prepared statement. Both are
// move-only and release their handle in the destructor. Every call that can fail
// returns Result with SQLite's own message attached.
//
// Thread safety: a SqliteDb and its Statements must be used by one thread at a
// time; callers serialise access (SqliteStore holds a mutex).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "qmtl/core/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace qmtl::store {

class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  Result<void> bind(int index, std::string_view text);
  Result<void> bind(int index, int64_t value);
  Result<void> bind(int index, double value);
  Result<void> bind_null(int index);

  // Advances the statement. True while a row is available, false when done.
  Result<bool> step();
  // Runs the statement to completion, ignoring rows.
  Result<void> run();
  // Clears bindings and rewinds so the statement can be executed again.
  void reset();

  // Column accessors for the current row; 0-based.
  std::string column_text(int col) const;
  int64_t column_int(int col) const;
  double column_double(int col) const;
  bool column_is_null(int col) const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteDb {
 public:
  // Opens (creating if needed) the database file at `path` with foreign keys on,
  // WAL journaling and a 5 s busy timeout. ":memory:" opens a private in-memory db.
  static Result<SqliteDb> open(const std::string& path);

  SqliteDb(SqliteDb&& other) noexcept;
  SqliteDb& operator=(SqliteDb&& other) noexcept;
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  ~SqliteDb();

  // Runs one or more SQL statements that take no parameters.
  Result<void> exec(std::string_view sql);
  Result<Statement> prepare(std::string_view sql);
  // SQLite's extended result code of the last failed call (for constraint checks).
  int last_error_code() const;
  // Rows changed by the last INSERT, UPDATE or DELETE.
  int64_t changes() const;

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

// Runs BEGIN IMMEDIATE on construction; rolls back in the destructor unless
// commit() succeeded. Use one per service operation so a failure anywhere leaves
// the database as it was.
class Transaction {
 public:
  static Result<Transaction> begin(SqliteDb& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Result<void> commit();

 private:
  explicit Transaction(SqliteDb* db) : db_(db) {}
  SqliteDb* db_;
};

}  // namespace qmtl::store
