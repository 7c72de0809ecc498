// The SQL connection the store runs on, with one implementation per database:
// SqliteDb (sqlite_db.h, the embedded default) and PgDb (pg_db.h, PostgreSQL).
//
// SqlStore writes its queries once, in the SQL both databases accept, with `?`
// (or `?N`) placeholders; each connection adapts them. Every call that can fail
// returns Result with the database's own message attached.
//
// Thread safety: a SqlDb and its Statements must be used by one thread at a
// time; callers serialise access (SqlStore holds a mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "qmtl/core/result.h"

namespace qmtl::store {

// One prepared statement of a connection, as the connection implements it.
class StatementImpl {
 public:
  virtual ~StatementImpl() = default;
  virtual Result<void> bind(int index, std::string_view text) = 0;
  virtual Result<void> bind(int index, int64_t value) = 0;
  virtual Result<void> bind(int index, double value) = 0;
  virtual Result<void> bind_null(int index) = 0;
  virtual Result<bool> step() = 0;
  virtual void reset() = 0;
  virtual std::string column_text(int col) const = 0;
  virtual int64_t column_int(int col) const = 0;
  virtual double column_double(int col) const = 0;
  virtual bool column_is_null(int col) const = 0;
};

// A prepared statement: a move-only handle released in the destructor. It must
// not outlive the SqlDb that prepared it.
class Statement {
 public:
  Statement() = default;
  explicit Statement(std::unique_ptr<StatementImpl> impl) : impl_(std::move(impl)) {}

  // Parameters are 1-based; `?N` in the SQL names parameter N.
  Result<void> bind(int index, std::string_view text) { return impl_->bind(index, text); }
  Result<void> bind(int index, int64_t value) { return impl_->bind(index, value); }
  Result<void> bind(int index, double value) { return impl_->bind(index, value); }
  Result<void> bind_null(int index) { return impl_->bind_null(index); }

  // Advances the statement (running it on the first call). True while a row is
  // available, false when done.
  Result<bool> step() { return impl_->step(); }
  // Runs the statement to completion, ignoring rows.
  Result<void> run();
  // Clears bindings and rewinds so the statement can be executed again.
  void reset() { impl_->reset(); }

  // Column accessors for the current row; 0-based.
  std::string column_text(int col) const { return impl_->column_text(col); }
  int64_t column_int(int col) const { return impl_->column_int(col); }
  double column_double(int col) const { return impl_->column_double(col); }
  bool column_is_null(int col) const { return impl_->column_is_null(col); }

 private:
  std::unique_ptr<StatementImpl> impl_;
};

enum class SqlDialect { kSqlite, kPostgres };

class SqlDb {
 public:
  virtual ~SqlDb() = default;

  // Runs one or more SQL statements that take no parameters.
  virtual Result<void> exec(std::string_view sql) = 0;
  virtual Result<Statement> prepare(std::string_view sql) = 0;
  // Whether the last failed statement broke a primary-key or unique constraint.
  virtual bool last_error_is_unique_violation() const = 0;
  // Rows changed by the last INSERT, UPDATE or DELETE.
  virtual int64_t changes() const = 0;

  // Starts a write transaction that excludes every other writer of the same
  // database until it ends (SQLite: BEGIN IMMEDIATE; PostgreSQL: BEGIN and a
  // transaction-scoped advisory lock), so the store's read-then-write checks
  // hold across processes and replicas.
  virtual Result<void> begin_write() = 0;
  virtual Result<void> commit() = 0;
  // Never fails: a transaction that cannot be rolled back (a lost connection)
  // is rolled back by the server.
  virtual void rollback() = 0;

  // Session-scoped locks across processes, named (PostgreSQL: advisory locks,
  // released when the session ends; SQLite: one process per file, so always
  // granted). try_session_lock nests: each success needs one session_unlock.
  virtual Result<bool> try_session_lock(std::string_view name) = 0;
  virtual void session_unlock(std::string_view name) = 0;
  // As try_session_lock, but taking a lock this session holds already is a
  // no-op success rather than a second hold: for locks kept until the session
  // ends.
  virtual Result<bool> hold_session_lock(std::string_view name) = 0;

  // Within a write transaction: tells the servers listening on this database
  // (ChangeListener) that `world` changed, when the transaction commits.
  // SQLite: nothing to tell (one server per file).
  virtual Result<void> notify_change(std::string_view world) = 0;

  virtual SqlDialect dialect() const = 0;
  // For logs and messages; never includes a password.
  virtual std::string describe() const = 0;
};

// A write transaction: begins on construction, rolls back in the destructor
// unless commit() succeeded. Use one per store operation so a failure anywhere
// leaves the database as it was.
class Transaction {
 public:
  static Result<Transaction> begin(SqlDb& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Result<void> commit();

 private:
  explicit Transaction(SqlDb* db) : db_(db) {}
  SqlDb* db_;
};

}  // namespace qmtl::store
