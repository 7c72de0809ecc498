// PostgreSQL connection for the store, on libpq.
//
// One connection per PgDb. Statements are prepared once per connection and
// cached by their SQL; parameters and results travel as text. A connection
// lost between transactions is re-established on the next call; one lost in a
// transaction fails that transaction (kUnavailable) and the server rolls it
// back.
//
// Write transactions take a transaction-scoped advisory lock named after the
// schema, so writers of one qmtl database (several `qmtl serve` replicas
// included) run one at a time, as SQLite's BEGIN IMMEDIATE makes them.
//
// Thread safety: as SqlDb (one thread at a time).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "qmtl/store/sql_db.h"

struct pg_conn;
struct pg_result;

namespace qmtl::store {

struct PgResultDeleter {
  void operator()(pg_result* r) const;
};
using PgResult = std::unique_ptr<pg_result, PgResultDeleter>;

// `sql` with SQLite-style placeholders (`?` numbered in order, `?N` explicit)
// rewritten to PostgreSQL's `$N`; quoted literals are left alone. Sets
// `params` to the number of parameters the statement takes.
std::string to_postgres_placeholders(std::string_view sql, int& params);

// The NOTIFY channel that carries the changes of qmtl's tables in `schema`.
std::string change_channel(std::string_view schema);

struct PgConnCloser {
  void operator()(pg_conn* c) const;
};
using PgConn = std::unique_ptr<pg_conn, PgConnCloser>;

// A new session on `url` (libpq's URI), with notices silenced, and what the
// store needs to know of it: its current schema and a description for
// messages that leaves out the password.
struct PgSession {
  PgConn conn;
  std::string schema;
  std::string description;  // postgres://USER@HOST:PORT/DB[ (schema S)]
};
// kUnavailable when the server cannot be reached or refuses the login (the
// message never repeats the URL, which may hold a password);
// kFailedPrecondition when the search_path names no existing schema.
// Thread safety: safe to call from any thread; the session belongs to the caller.
Result<PgSession> connect_pg(std::string_view url);

class PgDb final : public SqlDb {
 public:
  // Connects to `url` (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS],
  // libpq's URI syntax; the password may also come from PGPASSWORD or
  // ~/.pgpass). kUnavailable when the server cannot be reached.
  static Result<std::unique_ptr<PgDb>> open(std::string_view url);

  PgDb(const PgDb&) = delete;
  PgDb& operator=(const PgDb&) = delete;
  ~PgDb() override;

  Result<void> exec(std::string_view sql) override;
  Result<Statement> prepare(std::string_view sql) override;
  bool last_error_is_unique_violation() const override { return last_sqlstate_ == "23505"; }
  int64_t changes() const override { return changes_; }
  Result<void> begin_write() override;
  Result<void> commit() override;
  void rollback() override;
  Result<bool> try_session_lock(std::string_view name) override;
  void session_unlock(std::string_view name) override;
  Result<bool> hold_session_lock(std::string_view name) override;
  Result<void> notify_change(std::string_view world) override;
  SqlDialect dialect() const override { return SqlDialect::kPostgres; }
  std::string describe() const override { return description_; }

  // Runs a prepared form of `sql` ($N placeholders) with text parameters.
  Result<PgResult> run(const std::string& sql,
                       const std::vector<std::optional<std::string>>& params);

 private:
  PgDb(pg_conn* conn, std::string description)
      : conn_(conn), description_(std::move(description)) {}
  Result<void> ensure_connected();
  int64_t session_key(std::string_view name) const;
  tl::unexpected<Error> failure(const pg_result* res, std::string_view what);

  pg_conn* conn_;
  const std::string description_;
  std::string schema_;
  std::string channel_;  // NOTIFY channel of the schema's changes
  int64_t lock_key_ = 0;
  bool in_transaction_ = false;
  std::string last_sqlstate_;
  int64_t changes_ = 0;
  std::unordered_map<std::string, std::string> prepared_;  // SQL -> statement name
};

}  // namespace qmtl::store
