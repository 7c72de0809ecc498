#include "qmtl/store/sql_store.h"

#include <fmt/format.h>

#include "qmtl/store/pg_db.h"
#include "qmtl/store/sql_helpers.h"
#include "qmtl/store/sqlite_db.h"

namespace qmtl::store {

Result<std::unique_ptr<SqlStore>> SqlStore::open(std::unique_ptr<SqlDb> db) {
  std::unique_ptr<SqlStore> store(new SqlStore(std::move(db)));
  if (auto r = store->migrate(); !r) return propagate(r);
  return store;
}

Result<void> SqlStore::migrate() {
  std::lock_guard lock(mu_);
  const bool sqlite = db_.dialect() == SqlDialect::kSqlite;
  const auto migrations = sqlite ? sqlite_migrations() : postgres_migrations();
  // Created inside the write transaction: replicas starting together on one
  // PostgreSQL database take turns, and only the first one migrates.
  const std::string_view ddl =
      sqlite ? "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
               "description TEXT NOT NULL, applied_at_us INTEGER NOT NULL) STRICT"
             : "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, "
               "description TEXT NOT NULL, applied_at_us BIGINT NOT NULL)";
  for (const Migration& m : migrations) {
    auto tx = Transaction::begin(db_);
    if (!tx) return propagate(tx);
    if (auto r = db_.exec(ddl); !r) return r;
    int64_t have = 0;
    {
      // Finalised before the migration runs: SQLite refuses to drop a table
      // while a statement of the connection is still open.
      auto current = db_.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      if (!current) return propagate(current);
      if (auto r = current->step(); !r) return propagate(r);
      have = current->column_int(0);
    }
    if (have > static_cast<int64_t>(migrations.size())) {
      return make_error(ErrorCode::kFailedPrecondition,
                        fmt::format("database '{}' has schema version {}, newer than this qmtl "
                                    "supports ({}); upgrade qmtl",
                                    db_.describe(), have, migrations.size()));
    }
    if (have >= m.version) continue;  // tx rolls back a read-only transaction
    if (auto r = db_.exec(m.sql); !r) {
      return make_error(r.error().code, fmt::format("migration {} ({}) failed: {}", m.version,
                                                    m.description, r.error().message));
    }
    auto ins = db_.prepare(
        "INSERT INTO schema_migrations (version, description, applied_at_us) VALUES (?, ?, ?)");
    if (!ins) return propagate(ins);
    if (auto r = ins->bind(1, int64_t{m.version}); !r) return r;
    if (auto r = ins->bind(2, m.description); !r) return r;
    if (auto r = ins->bind(3, to_us(SystemClock().now())); !r) return r;
    if (auto r = ins->run(); !r) return r;
    if (auto r = tx->commit(); !r) return r;
  }
  return {};
}

Result<bool> SqlStore::claim_apply(std::string_view world_id) {
  std::lock_guard lock(mu_);
  return db_.try_session_lock(fmt::format("apply:{}", world_id));
}

void SqlStore::release_apply(std::string_view world_id) {
  std::lock_guard lock(mu_);
  db_.session_unlock(fmt::format("apply:{}", world_id));
}

Result<bool> SqlStore::lead_scheduler() {
  std::lock_guard lock(mu_);
  // Asked anew each pass: a lost session shows up here as an error (not
  // leading this pass) or as the lock now held by another server.
  return db_.hold_session_lock("scheduler-leader");
}

Result<int> SqlStore::schema_version() {
  std::lock_guard lock(mu_);
  auto v = query_int(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!v) return propagate(v);
  return static_cast<int>(*v);
}

Result<void> SqlStore::append_audit(const AuditRecord& a) {
  // Every change of a world is audited, so this is where other servers on the
  // database hear of it (delivered at commit, once per world and transaction).
  if (auto r = db_.notify_change(a.world_id); !r) return r;
  return run_sql(db_,
                 "INSERT INTO audit_log (at_us, actor, world_id, entity, entity_id, event, before, "
                 "after, reason, "
                 "run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 a.at, a.actor, a.world_id, a.entity, a.entity_id, a.event, a.before, a.after,
                 a.reason, a.run_id);
}

Result<void> SqlStore::append_history(std::string_view strategy_id,
                                      std::optional<lifecycle::StrategyState> from,
                                      lifecycle::StrategyState to, std::string_view event,
                                      TimePoint at) {
  std::optional<std::string> from_text;
  if (from) from_text = std::string(lifecycle::strategy_state_name(*from));
  return run_sql(
      db_,
      "INSERT INTO strategy_state_history (strategy_id, at_us, from_state, to_state, event) "
      "VALUES (?, ?, ?, ?, ?)",
      strategy_id, at, from_text, lifecycle::strategy_state_name(to), event);
}

Result<void> SqlStore::insert_audit(const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto w = get_world_locked(audit.world_id); !w) return propagate(w);
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

namespace {

AuditRecord read_audit(const Statement& r) {
  return AuditRecord{.seq = r.column_int(0),
                     .at = from_us(r.column_int(1)),
                     .actor = r.column_text(2),
                     .world_id = r.column_text(3),
                     .entity = r.column_text(4),
                     .entity_id = r.column_text(5),
                     .event = r.column_text(6),
                     .before = optional_text(r, 7),
                     .after = optional_text(r, 8),
                     .reason = r.column_text(9),
                     .run_id = optional_text(r, 10)};
}

constexpr std::string_view kAuditColumns =
    "SELECT seq, at_us, actor, world_id, entity, entity_id, event, before, after, reason, run_id "
    "FROM audit_log ";

}  // namespace

Result<std::vector<AuditRecord>> SqlStore::list_audit(std::string_view world_id, int64_t after_seq,
                                                      size_t limit) {
  std::lock_guard lock(mu_);
  auto st = prepared(
      db_, std::string(kAuditColumns) + "WHERE world_id = ? AND seq > ? ORDER BY seq LIMIT ?",
      world_id, after_seq, static_cast<int64_t>(limit));
  if (!st) return propagate(st);
  return collect(*st, read_audit);
}

Result<std::vector<AuditRecord>> SqlStore::list_strategy_audit(std::string_view world_id,
                                                               std::string_view strategy_id) {
  std::lock_guard lock(mu_);
  auto st = strategy_id.empty()
                ? prepared(db_,
                           std::string(kAuditColumns) +
                               "WHERE world_id = ? AND entity = 'strategy' ORDER BY seq",
                           world_id)
                : prepared(db_,
                           std::string(kAuditColumns) +
                               "WHERE world_id = ? AND entity = 'strategy' AND entity_id = ? "
                               "ORDER BY seq",
                           world_id, strategy_id);
  if (!st) return propagate(st);
  return collect(*st, read_audit);
}

Result<std::optional<AuditRecord>> SqlStore::last_audit(std::string_view world_id,
                                                        std::string_view entity,
                                                        std::string_view entity_id,
                                                        std::string_view event,
                                                        std::string_view or_event) {
  std::lock_guard lock(mu_);
  auto st = prepared(db_,
                     std::string(kAuditColumns) +
                         "WHERE world_id = ? AND entity = ? AND entity_id = ? AND event IN (?, ?) "
                         "ORDER BY seq DESC LIMIT 1",
                     world_id, entity, entity_id, event, or_event);
  if (!st) return propagate(st);
  auto rows = collect(*st, read_audit);
  if (!rows) return propagate(rows);
  if (rows->empty()) return std::optional<AuditRecord>();
  return std::optional<AuditRecord>(std::move(rows->front()));
}

Result<int64_t> SqlStore::last_audit_seq(std::string_view world_id) {
  std::lock_guard lock(mu_);
  return query_int(db_, "SELECT COALESCE(MAX(seq), 0) FROM audit_log WHERE world_id = ?", world_id);
}

Result<std::unique_ptr<SqlDb>> open_sql_db(std::string_view url) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (url.starts_with(kSqlite)) {
    std::string path(url.substr(kSqlite.size()));
    if (path.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "the sqlite database URL needs a path, e.g. sqlite:qmtl.db");
    }
    auto db = SqliteDb::open(path);
    if (!db) return propagate(db);
    return std::unique_ptr<SqlDb>(std::move(*db));
  }
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
    auto db = PgDb::open(url);
    if (!db) return propagate(db);
    return std::unique_ptr<SqlDb>(std::move(*db));
  }
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("unknown database URL '{}'; use sqlite:PATH or "
                                "postgres://USER@HOST:PORT/DATABASE",
                                url));
}

Result<std::unique_ptr<Store>> open_store(std::string_view url) {
  auto db = open_sql_db(url);
  if (!db) return propagate(db);
  auto s = SqlStore::open(std::move(*db));
  if (!s) return propagate(s);
  return std::unique_ptr<Store>(std::move(*s));
}

}  // namespace qmtl::store
