#include "qmtl/store/sql_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <type_traits>

#include "qmtl/store/pg_db.h"
#include "qmtl/store/sqlite_db.h"

namespace qmtl::store {
namespace {

int64_t to_us(TimePoint t) { return t.time_since_epoch().count(); }
TimePoint from_us(int64_t us) { return TimePoint(Duration(us)); }

constexpr std::string_view kWorldColumns =
    "id, name, state, policy_version, created_at_us, updated_at_us";

Result<World> read_world(const Statement& st) {
  auto state = lifecycle::parse_world_state(st.column_text(2));
  if (!state) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("world '{}' has a corrupt state in the database: {}",
                                  st.column_text(0), state.error().message));
  }
  World w;
  w.id = st.column_text(0);
  w.name = st.column_text(1);
  w.state = *state;
  if (!st.column_is_null(3)) w.policy_version = st.column_int(3);
  w.created_at = from_us(st.column_int(4));
  w.updated_at = from_us(st.column_int(5));
  return w;
}

}  // namespace

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
  auto st = db_.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!st) return propagate(st);
  if (auto r = st->step(); !r) return propagate(r);
  return static_cast<int>(st->column_int(0));
}

namespace {

// Binds each argument to the next parameter: strings, integers, and optionals of
// them (nullopt binds NULL).
Result<void> bind_one(Statement& st, int i, std::string_view v) { return st.bind(i, v); }
Result<void> bind_one(Statement& st, int i, const std::string& v) {
  return st.bind(i, std::string_view(v));
}
Result<void> bind_one(Statement& st, int i, int64_t v) { return st.bind(i, v); }
Result<void> bind_one(Statement& st, int i, double v) { return st.bind(i, v); }

Result<void> bind_one(Statement& st, int i, TimePoint v) { return st.bind(i, to_us(v)); }
template <typename T>
Result<void> bind_one(Statement& st, int i, const std::optional<T>& v) {
  return v ? bind_one(st, i, *v) : st.bind_null(i);
}

// A fill's columns (ts_us, symbol, side, qty, price, fee) from parameter `first` on.
Result<void> bind_fill(Statement& st, int first, const FillRecord& f) {
  if (auto r = bind_one(st, first, f.ts); !r) return r;
  if (auto r = bind_one(st, first + 1, f.symbol); !r) return r;
  if (auto r = bind_one(st, first + 2, f.side); !r) return r;
  if (auto r = st.bind(first + 3, f.qty); !r) return r;
  if (auto r = st.bind(first + 4, f.price); !r) return r;
  return st.bind(first + 5, f.fee);
}

// The same six columns as selected, from column 0.
FillRecord read_fill(const Statement& r) {
  return FillRecord{.ts = from_us(r.column_int(0)),
                    .symbol = r.column_text(1),
                    .side = r.column_text(2),
                    .qty = r.column_double(3),
                    .price = r.column_double(4),
                    .fee = r.column_double(5)};
}

template <typename... Args>
Result<Statement> prepared(SqlDb& db, std::string_view sql, const Args&... args) {
  auto st = db.prepare(sql);
  if (!st) return st;
  int i = 0;
  Result<void> ok;
  ((ok = ok ? bind_one(*st, ++i, args) : ok), ...);
  if (!ok) return propagate(ok);
  return st;
}

// Reads every remaining row of `st` with `read`, which returns T or Result<T>.
template <typename Read>
auto collect(Statement& st, Read read) {
  using R = std::invoke_result_t<Read, const Statement&>;
  if constexpr (requires(R r) {
                  r.has_value();
                  r.error();
                }) {
    using T = typename R::value_type;
    Result<std::vector<T>> out{std::vector<T>{}};
    for (;;) {
      auto row = st.step();
      if (!row) return Result<std::vector<T>>(propagate(row));
      if (!*row) return out;
      auto v = read(st);
      if (!v) return Result<std::vector<T>>(propagate(v));
      out->push_back(std::move(*v));
    }
  } else {
    Result<std::vector<R>> out{std::vector<R>{}};
    for (;;) {
      auto row = st.step();
      if (!row) return Result<std::vector<R>>(propagate(row));
      if (!*row) return out;
      out->push_back(read(st));
    }
  }
}

template <typename... Args>
Result<void> run_sql(SqlDb& db, std::string_view sql, const Args&... args) {
  auto st = prepared(db, sql, args...);
  if (!st) return propagate(st);
  return st->run();
}

std::optional<std::string> optional_text(const Statement& st, int col) {
  if (st.column_is_null(col)) return std::nullopt;
  return st.column_text(col);
}

constexpr std::string_view kStrategyColumns =
    "id, world_id, state, state_since_us, spec, created_at_us";

Result<Strategy> read_strategy(const Statement& st) {
  auto state = lifecycle::parse_strategy_state(st.column_text(2));
  if (!state) {
    return make_error(
        ErrorCode::kInternal,
        fmt::format("strategy '{}' has a corrupt state in the database", st.column_text(0)));
  }
  return Strategy{.id = st.column_text(0),
                  .world_id = st.column_text(1),
                  .state = *state,
                  .state_since = from_us(st.column_int(3)),
                  .spec = st.column_text(4),
                  .created_at = from_us(st.column_int(5))};
}

constexpr std::string_view kPolicyColumns =
    "world_id, version, document, canonical, checksum, created_at_us";

PolicyVersion read_policy(const Statement& st) {
  return PolicyVersion{.world_id = st.column_text(0),
                       .version = st.column_int(1),
                       .document = st.column_text(2),
                       .canonical = st.column_text(3),
                       .checksum = st.column_text(4),
                       .created_at = from_us(st.column_int(5))};
}

tl::unexpected<Error> world_not_found(std::string_view id) {
  return make_error(
      ErrorCode::kNotFound,
      fmt::format("world '{}' does not exist; `qmtl world list` shows the worlds", id));
}

}  // namespace

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

Result<void> SqlStore::insert_world(const World& w, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  auto r = run_sql(
      db_, fmt::format("INSERT INTO worlds ({}) VALUES (?, ?, ?, ?, ?, ?)", kWorldColumns), w.id,
      w.name, lifecycle::world_state_name(w.state), w.policy_version, w.created_at, w.updated_at);
  if (!r) {
    if (db_.last_error_is_unique_violation()) {
      return make_error(ErrorCode::kAlreadyExists,
                        fmt::format("world '{}' already exists; choose another id", w.id));
    }
    return r;
  }
  if (auto a = append_audit(audit); !a) return a;
  return tx->commit();
}

Result<World> SqlStore::get_world_locked(std::string_view id) {
  auto st = prepared(db_, fmt::format("SELECT {} FROM worlds WHERE id = ?", kWorldColumns), id);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) return world_not_found(id);
  return read_world(*st);
}

Result<World> SqlStore::get_world(std::string_view id) {
  std::lock_guard lock(mu_);
  return get_world_locked(id);
}

Result<std::vector<World>> SqlStore::list_worlds() {
  std::lock_guard lock(mu_);
  auto st = db_.prepare(fmt::format("SELECT {} FROM worlds ORDER BY id", kWorldColumns));
  if (!st) return propagate(st);
  return collect(*st, read_world);
}

Result<void> SqlStore::set_world_state(std::string_view id, lifecycle::WorldState expected,
                                       lifecycle::WorldState next, TimePoint at,
                                       const AuditRecord& audit, bool archive_strategies) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  auto w = get_world_locked(id);
  if (!w) return propagate(w);
  if (w->state != expected) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("world '{}' changed concurrently: it is {} now, not {}; retry", id,
                    lifecycle::world_state_name(w->state), lifecycle::world_state_name(expected)));
  }
  if (auto r = run_sql(db_, "UPDATE worlds SET state = ?, updated_at_us = ? WHERE id = ?",
                       lifecycle::world_state_name(next), at, id);
      !r) {
    return r;
  }
  if (auto r = append_audit(audit); !r) return r;
  // Live gates are open only in an Active world: EvalOnly closes them (no live
  // trading while only evaluating), Paused closes them (no execution), and going
  // back to Active reopens them.
  {
    auto live = prepared(
        db_, "SELECT id FROM strategies WHERE world_id = ? AND state = 'Live' ORDER BY id", id);
    if (!live) return propagate(live);
    std::vector<std::string> ids;
    for (;;) {
      auto row = live->step();
      if (!row) return propagate(row);
      if (!*row) break;
      ids.push_back(live->column_text(0));
    }
    if (auto r = set_gates(id, ids, next == lifecycle::WorldState::kActive, std::nullopt, at); !r)
      return r;
    // A side closed by hand stays closed.
    if (auto r =
            run_sql(db_, "UPDATE activations SET active = 0 WHERE world_id = ? AND manual = 0", id);
        !r) {
      return r;
    }
  }
  if (next == lifecycle::WorldState::kRetired) {
    if (auto r = drop_all_queued_locked(id, next, at, audit); !r) return r;
  }
  if (archive_strategies) {
    auto st =
        prepared(db_,
                 fmt::format("SELECT {} FROM strategies WHERE world_id = ? AND state != 'Archived' "
                             "ORDER BY id",
                             kStrategyColumns),
                 id);
    if (!st) return propagate(st);
    std::vector<Strategy> open;
    for (;;) {
      auto row = st->step();
      if (!row) return propagate(row);
      if (!*row) break;
      auto s = read_strategy(*st);
      if (!s) return propagate(s);
      open.push_back(std::move(*s));
    }
    for (const Strategy& s : open) {
      const auto archived = lifecycle::StrategyState::kArchived;
      if (auto r = run_sql(db_, "UPDATE strategies SET state = ?, state_since_us = ? WHERE id = ?",
                           lifecycle::strategy_state_name(archived), at, s.id);
          !r) {
        return r;
      }
      if (auto r = append_history(s.id, s.state, archived, "ARCHIVE", at); !r) return r;
      if (s.state == lifecycle::StrategyState::kLive) {
        if (auto r = set_gates(id, {s.id}, false, std::nullopt, at); !r) return r;
      }
      AuditRecord a = audit;
      a.entity = "strategy";
      a.entity_id = s.id;
      a.event = "ARCHIVE";
      a.before = std::string(lifecycle::strategy_state_name(s.state));
      a.after = std::string(lifecycle::strategy_state_name(archived));
      if (auto r = append_audit(a); !r) return r;
    }
  }
  return tx->commit();
}

Result<PolicyVersion> SqlStore::add_policy_version(std::string_view world_id,
                                                   std::string_view document,
                                                   std::string_view canonical,
                                                   std::string_view checksum, TimePoint at,
                                                   const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto w = get_world_locked(world_id); !w) return propagate(w);
  auto max = prepared(
      db_, "SELECT COALESCE(MAX(version), 0) FROM policy_versions WHERE world_id = ?", world_id);
  if (!max) return propagate(max);
  if (auto r = max->step(); !r) return propagate(r);
  PolicyVersion v{.world_id = std::string(world_id),
                  .version = max->column_int(0) + 1,
                  .document = std::string(document),
                  .canonical = std::string(canonical),
                  .checksum = std::string(checksum),
                  .created_at = at};
  if (auto r = run_sql(
          db_,
          fmt::format("INSERT INTO policy_versions ({}) VALUES (?, ?, ?, ?, ?, ?)", kPolicyColumns),
          v.world_id, v.version, v.document, v.canonical, v.checksum, v.created_at);
      !r) {
    return propagate(r);
  }
  if (auto r = run_sql(db_, "UPDATE worlds SET policy_version = ?, updated_at_us = ? WHERE id = ?",
                       v.version, at, world_id);
      !r) {
    return propagate(r);
  }
  AuditRecord a = audit;
  a.entity_id = std::to_string(v.version);
  if (auto r = append_audit(a); !r) return propagate(r);
  if (auto r = tx->commit(); !r) return propagate(r);
  return v;
}

Result<void> SqlStore::set_current_policy(std::string_view world_id, int64_t version, TimePoint at,
                                          const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto w = get_world_locked(world_id); !w) return propagate(w);
  auto exists = prepared(db_, "SELECT 1 FROM policy_versions WHERE world_id = ? AND version = ?",
                         world_id, version);
  if (!exists) return propagate(exists);
  auto row = exists->step();
  if (!row) return propagate(row);
  if (!*row) {
    return make_error(
        ErrorCode::kNotFound,
        fmt::format("world '{}' has no policy version {}; `qmtl world policy history {}` "
                    "lists them",
                    world_id, version, world_id));
  }
  if (auto r = run_sql(db_, "UPDATE worlds SET policy_version = ?, updated_at_us = ? WHERE id = ?",
                       version, at, world_id);
      !r) {
    return r;
  }
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

Result<PolicyVersion> SqlStore::get_policy_version(std::string_view world_id, int64_t version) {
  std::lock_guard lock(mu_);
  auto st =
      prepared(db_,
               fmt::format("SELECT {} FROM policy_versions WHERE world_id = ? AND version = ?",
                           kPolicyColumns),
               world_id, version);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) {
    if (auto w = get_world_locked(world_id); !w) return propagate(w);
    return make_error(ErrorCode::kNotFound,
                      fmt::format("world '{}' has no policy version {}", world_id, version));
  }
  return read_policy(*st);
}

Result<std::vector<PolicyVersion>> SqlStore::list_policy_versions(std::string_view world_id) {
  std::lock_guard lock(mu_);
  if (auto w = get_world_locked(world_id); !w) return propagate(w);
  auto st =
      prepared(db_,
               fmt::format("SELECT {} FROM policy_versions WHERE world_id = ? ORDER BY version",
                           kPolicyColumns),
               world_id);
  if (!st) return propagate(st);
  return collect(*st, read_policy);
}

Result<void> SqlStore::insert_strategy(const Strategy& s, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto w = get_world_locked(s.world_id); !w) return propagate(w);
  auto r = run_sql(
      db_, fmt::format("INSERT INTO strategies ({}) VALUES (?, ?, ?, ?, ?, ?)", kStrategyColumns),
      s.id, s.world_id, lifecycle::strategy_state_name(s.state), s.state_since, s.spec,
      s.created_at);
  if (!r) {
    if (db_.last_error_is_unique_violation()) {
      return make_error(
          ErrorCode::kAlreadyExists,
          fmt::format("strategy '{}' already exists; strategy ids are unique across worlds", s.id));
    }
    return r;
  }
  if (auto h = append_history(s.id, std::nullopt, s.state, audit.event, s.state_since); !h)
    return h;
  if (auto a = append_audit(audit); !a) return a;
  return tx->commit();
}

Result<Strategy> SqlStore::get_strategy(std::string_view id) {
  std::lock_guard lock(mu_);
  auto st =
      prepared(db_, fmt::format("SELECT {} FROM strategies WHERE id = ?", kStrategyColumns), id);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) {
    return make_error(
        ErrorCode::kNotFound,
        fmt::format("strategy '{}' does not exist; `qmtl strategy list --world <world>` shows "
                    "a world's strategies",
                    id));
  }
  return read_strategy(*st);
}

Result<std::vector<Strategy>> SqlStore::list_strategies(std::string_view world_id) {
  std::lock_guard lock(mu_);
  if (auto w = get_world_locked(world_id); !w) return propagate(w);
  auto st = prepared(
      db_,
      fmt::format("SELECT {} FROM strategies WHERE world_id = ? ORDER BY id", kStrategyColumns),
      world_id);
  if (!st) return propagate(st);
  return collect(*st, read_strategy);
}

Result<void> SqlStore::transition_strategy(std::string_view id, lifecycle::StrategyState expected,
                                           lifecycle::StrategyState next, TimePoint at,
                                           const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto r = transition_strategy_locked(id, expected, next, at, audit); !r) return r;
  return tx->commit();
}

Result<void> SqlStore::transition_strategy_locked(std::string_view id,
                                                  lifecycle::StrategyState expected,
                                                  lifecycle::StrategyState next, TimePoint at,
                                                  const AuditRecord& audit) {
  auto st = prepared(
      db_, "UPDATE strategies SET state = ?, state_since_us = ? WHERE id = ? AND state = ?",
      lifecycle::strategy_state_name(next), at, id, lifecycle::strategy_state_name(expected));
  if (!st) return propagate(st);
  if (auto r = st->run(); !r) return r;
  if (db_.changes() != 1) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("strategy '{}' is no longer {} (changed concurrently or absent); retry", id,
                    lifecycle::strategy_state_name(expected)));
  }
  if (auto r = append_history(id, expected, next, audit.event, at); !r) return r;
  if (auto r = append_audit(audit); !r) return r;
  // The gate follows the state: open exactly while Live (frozen flags stay as they are).
  if (expected == lifecycle::StrategyState::kLive || next == lifecycle::StrategyState::kLive) {
    auto world =
        prepared(db_,
                 "SELECT s.world_id, w.state FROM strategies s JOIN worlds w ON w.id = s.world_id "
                 "WHERE s.id = ?",
                 id);
    if (!world) return propagate(world);
    if (auto row = world->step(); !row) return propagate(row);
    const bool open = next == lifecycle::StrategyState::kLive && world->column_text(1) == "Active";
    if (auto r = set_gates(world->column_text(0), {std::string(id)}, open, std::nullopt, at); !r)
      return r;
    if (expected == lifecycle::StrategyState::kLive) {
      // Manual marks belong to a Live strategy's gates; they end with it.
      if (auto r = run_sql(db_, "UPDATE activations SET manual = NULL WHERE strategy_id = ?", id);
          !r) {
        return r;
      }
    }
  }
  return {};
}

namespace {

bool same_equity(double stored, double offered) {
  return std::abs(stored - offered) <=
         kEquityRepeatTolerance * std::max(std::abs(stored), std::abs(offered));
}

// "2 points refused: at 2026-03-01T00:00:00Z stored 100, offered 99; ..."
std::string conflicts_text(const std::vector<PointConflict>& c) {
  std::string out = fmt::format(
      "{} performance point{} refused (another equity is stored at "
      "that time; records are not rewritten): ",
      c.size(), c.size() == 1 ? "" : "s");
  for (size_t i = 0; i < c.size() && i < 5; ++i) {
    out += fmt::format("{}at {} stored {}, offered {}", i == 0 ? "" : "; ",
                       format_timestamp(c[i].ts), c[i].stored, c[i].offered);
  }
  if (c.size() > 5) out += fmt::format("; and {} more", c.size() - 5);
  return out;
}

}  // namespace

Result<AppendOutcome> SqlStore::append_performance(std::string_view strategy_id,
                                                   std::span<const PerformancePoint> points,
                                                   std::span<const FillRecord> fills,
                                                   const AuditRecord* conflict_audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  auto exists = prepared(db_, "SELECT 1 FROM strategies WHERE id = ?", strategy_id);
  if (!exists) return propagate(exists);
  if (auto row = exists->step(); !row || !*row) {
    if (!row) return propagate(row);
    return make_error(ErrorCode::kNotFound,
                      fmt::format("strategy '{}' does not exist", strategy_id));
  }
  AppendOutcome out;
  const auto finish = [&]() -> Result<AppendOutcome> {
    out.points_repeated = points.size() - out.points_stored - out.conflicts.size();
    out.fills_stored = fills.size();
    if (!out.conflicts.empty() && conflict_audit != nullptr) {
      AuditRecord a = *conflict_audit;
      a.reason = conflicts_text(out.conflicts);
      if (auto r = append_audit(a); !r) return propagate(r);
    }
    if (auto r = tx->commit(); !r) return propagate(r);
    return out;
  };
  if (db_.dialect() == SqlDialect::kPostgres) {
    // A round trip per row would cap ingest at the network's latency: one
    // statement per table and batch instead, the rows as arrays.
    if (auto r = append_performance_batched(strategy_id, points, fills, out); !r) {
      return propagate(r);
    }
    return finish();
  }
  // One prepared statement per table, re-bound per row: this is the ingest path.
  auto ins =
      prepared(db_,
               "INSERT INTO performance_points (strategy_id, ts_us, equity) VALUES (?, ?, ?) "
               "ON CONFLICT (strategy_id, ts_us) DO NOTHING");
  if (!ins) return propagate(ins);
  auto same =
      prepared(db_, "SELECT equity FROM performance_points WHERE strategy_id = ? AND ts_us = ?");
  if (!same) return propagate(same);
  for (const auto& p : points) {
    ins->reset();
    if (auto r = bind_one(*ins, 1, strategy_id); !r) return propagate(r);
    if (auto r = bind_one(*ins, 2, p.ts); !r) return propagate(r);
    if (auto r = ins->bind(3, p.equity); !r) return propagate(r);
    if (auto r = ins->run(); !r) return propagate(r);
    if (db_.changes() == 1) {
      ++out.points_stored;
      continue;
    }
    same->reset();
    if (auto r = bind_one(*same, 1, strategy_id); !r) return propagate(r);
    if (auto r = bind_one(*same, 2, p.ts); !r) return propagate(r);
    if (auto r = same->step(); !r) return propagate(r);
    if (!same_equity(same->column_double(0), p.equity)) {
      out.conflicts.push_back({p.ts, same->column_double(0), p.equity});
    }
  }
  auto fill = prepared(db_,
                       "INSERT INTO fills (strategy_id, ts_us, symbol, side, qty, price, fee) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)");
  if (!fill) return propagate(fill);
  for (const auto& f : fills) {
    fill->reset();
    if (auto r = bind_one(*fill, 1, strategy_id); !r) return propagate(r);
    if (auto r = bind_fill(*fill, 2, f); !r) return propagate(r);
    if (auto r = fill->run(); !r) return propagate(r);
  }
  std::sort(out.conflicts.begin(), out.conflicts.end(),
            [](const auto& x, const auto& y) { return x.ts < y.ts; });
  return finish();
}

Result<std::optional<PerformancePoint>> SqlStore::last_point(std::string_view strategy_id) {
  std::lock_guard lock(mu_);
  auto st = prepared(db_,
                     "SELECT ts_us, equity FROM performance_points WHERE strategy_id = ? ORDER BY "
                     "ts_us DESC LIMIT 1",
                     strategy_id);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) return std::optional<PerformancePoint>();
  return std::optional<PerformancePoint>(
      PerformancePoint{.ts = from_us(st->column_int(0)), .equity = st->column_double(1)});
}

namespace {

// PostgreSQL array literals ('{...}') of a column of the batch.
template <typename T, typename F>
std::string array_literal(std::span<const T> rows, F value) {
  std::string out = "{";
  for (const auto& r : rows) {
    if (out.size() > 1) out += ',';
    value(out, r);
  }
  out += '}';
  return out;
}
void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "Infinity" : "-Infinity";
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}
void append_quoted(std::string& out, std::string_view v) {
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace

Result<void> SqlStore::append_performance_batched(std::string_view strategy_id,
                                                  std::span<const PerformancePoint> points,
                                                  std::span<const FillRecord> fills,
                                                  AppendOutcome& out) {
  if (!points.empty()) {
    const std::string ts = array_literal(points, [](std::string& o, const PerformancePoint& p) {
      fmt::format_to(std::back_inserter(o), "{}", to_us(p.ts));
    });
    const std::string eq = array_literal(
        points, [](std::string& o, const PerformancePoint& p) { append_double(o, p.equity); });
    // Insert what is new (the primary key arbitrates; the first of two equal
    // times in the batch wins); only when fewer rows went in than the batch has
    // points (a retry, or a conflict) look at the stored ones.
    if (auto r = run_sql(db_,
                         "INSERT INTO performance_points (strategy_id, ts_us, equity) SELECT ?1, "
                         "ts_us, equity FROM unnest(?2::bigint[], ?3::float8[]) WITH ORDINALITY "
                         "AS i (ts_us, equity, n) ORDER BY n ON CONFLICT (strategy_id, ts_us) DO "
                         "NOTHING",
                         strategy_id, ts, eq);
        !r) {
      return r;
    }
    out.points_stored = static_cast<size_t>(db_.changes());
    if (out.points_stored < points.size()) {
      // The offered points (with their place in the batch) whose time holds
      // another equity; the rows just inserted match themselves.
      auto st = prepared(db_,
                         "SELECT i.ts_us, p.equity, i.equity FROM unnest(?2::bigint[], "
                         "?3::float8[]) WITH ORDINALITY AS i (ts_us, equity, n) JOIN "
                         "performance_points p ON p.strategy_id = ?1 AND p.ts_us = i.ts_us WHERE "
                         "abs(p.equity - i.equity) > ?4 * greatest(abs(p.equity), abs(i.equity)) "
                         "ORDER BY i.ts_us, i.n",
                         strategy_id, ts, eq, kEquityRepeatTolerance);
      if (!st) return propagate(st);
      auto rows = collect(*st, [](const Statement& r) {
        return PointConflict{.ts = from_us(r.column_int(0)),
                             .stored = r.column_double(1),
                             .offered = r.column_double(2)};
      });
      if (!rows) return propagate(rows);
      out.conflicts = std::move(*rows);
    }
  }
  if (!fills.empty()) {
    const auto col = [&](auto value) { return array_literal(fills, value); };
    auto st = prepared(
        db_,
        "INSERT INTO fills (strategy_id, ts_us, symbol, side, qty, price, fee) SELECT ?1, * FROM "
        "unnest(?2::bigint[], ?3::text[], ?4::text[], ?5::float8[], ?6::float8[], ?7::float8[])",
        strategy_id, col([](std::string& o, const FillRecord& f) {
          fmt::format_to(std::back_inserter(o), "{}", to_us(f.ts));
        }),
        col([](std::string& o, const FillRecord& f) { append_quoted(o, f.symbol); }),
        col([](std::string& o, const FillRecord& f) { append_quoted(o, f.side); }),
        col([](std::string& o, const FillRecord& f) { append_double(o, f.qty); }),
        col([](std::string& o, const FillRecord& f) { append_double(o, f.price); }),
        col([](std::string& o, const FillRecord& f) { append_double(o, f.fee); }));
    if (!st) return propagate(st);
    if (auto r = st->run(); !r) return r;
  }
  return {};
}

Result<std::vector<PerformancePoint>> SqlStore::load_points(std::string_view strategy_id,
                                                            TimePoint from) {
  std::lock_guard lock(mu_);
  auto st =
      prepared(db_,
               "SELECT ts_us, equity FROM performance_points WHERE strategy_id = ? AND ts_us >= ? "
               "ORDER BY ts_us",
               strategy_id, from);
  if (!st) return propagate(st);
  return collect(*st, [](const Statement& r) {
    return PerformancePoint{from_us(r.column_int(0)), r.column_double(1)};
  });
}

Result<std::vector<FillRecord>> SqlStore::load_fills(std::string_view strategy_id, TimePoint from) {
  std::lock_guard lock(mu_);
  auto st = prepared(
      db_,
      "SELECT ts_us, symbol, side, qty, price, fee FROM fills WHERE strategy_id = ? AND ts_us >= ? "
      "ORDER BY ts_us, seq",
      strategy_id, from);
  if (!st) return propagate(st);
  return collect(*st, read_fill);
}

Result<std::optional<AlertHook>> SqlStore::get_alert_hook(std::string_view world_id) {
  std::lock_guard lock(mu_);
  auto st = prepared(
      db_, "SELECT world_id, url, events, updated_at_us FROM alert_hooks WHERE world_id = ?",
      world_id);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) return std::optional<AlertHook>();
  AlertHook h{.world_id = st->column_text(0),
              .url = st->column_text(1),
              .updated_at = from_us(st->column_int(3))};
  const std::string events = st->column_text(2);
  size_t start = 0;
  while (start < events.size()) {
    const auto comma = events.find(',', start);
    h.events.push_back(events.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return std::optional<AlertHook>(std::move(h));
}

Result<void> SqlStore::put_alert_hook(const AlertHook& hook, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto w = get_world_locked(hook.world_id); !w) return propagate(w);
  if (hook.url.empty()) {
    if (auto r = run_sql(db_, "DELETE FROM alert_hooks WHERE world_id = ?", hook.world_id); !r) {
      return r;
    }
  } else {
    std::string events;
    for (const auto& e : hook.events) {
      if (!events.empty()) events += ',';
      events += e;
    }
    if (auto r = run_sql(db_,
                         "INSERT INTO alert_hooks (world_id, url, events, updated_at_us) VALUES "
                         "(?, ?, ?, ?) ON CONFLICT (world_id) DO UPDATE SET url = excluded.url, "
                         "events = excluded.events, updated_at_us = excluded.updated_at_us",
                         hook.world_id, hook.url, events, hook.updated_at);
        !r) {
      return r;
    }
  }
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

Result<void> SqlStore::insert_audit(const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto w = get_world_locked(audit.world_id); !w) return propagate(w);
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

Result<std::optional<WorldSetting>> SqlStore::get_world_setting(std::string_view world_id,
                                                                std::string_view kind) {
  std::lock_guard lock(mu_);
  auto st = prepared(db_,
                     "SELECT world_id, kind, doc, updated_at_us FROM world_settings WHERE "
                     "world_id = ? AND kind = ?",
                     world_id, kind);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) return std::optional<WorldSetting>();
  return std::optional<WorldSetting>(WorldSetting{.world_id = st->column_text(0),
                                                  .kind = st->column_text(1),
                                                  .doc = st->column_text(2),
                                                  .updated_at = from_us(st->column_int(3))});
}

Result<void> SqlStore::put_world_setting(const WorldSetting& setting, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto w = get_world_locked(setting.world_id); !w) return propagate(w);
  if (setting.doc.empty()) {
    if (auto r = run_sql(db_, "DELETE FROM world_settings WHERE world_id = ? AND kind = ?",
                         setting.world_id, setting.kind);
        !r) {
      return r;
    }
  } else if (auto r = run_sql(db_,
                              "INSERT INTO world_settings (world_id, kind, doc, updated_at_us) "
                              "VALUES (?, ?, ?, ?) ON CONFLICT (world_id, kind) DO UPDATE SET "
                              "doc = excluded.doc, updated_at_us = excluded.updated_at_us",
                              setting.world_id, setting.kind, setting.doc, setting.updated_at);
             !r) {
    return r;
  }
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

Result<void> SqlStore::finish_validation(const ValidationRecord& v, lifecycle::StrategyState next,
                                         const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto r = transition_strategy_locked(v.strategy_id, lifecycle::StrategyState::kValidating,
                                          next, audit.at, audit);
      !r) {
    return r;
  }
  for (const char* sql : {"DELETE FROM validation_points WHERE strategy_id = ?",
                          "DELETE FROM validation_fills WHERE strategy_id = ?",
                          "DELETE FROM validations WHERE strategy_id = ?"}) {
    if (auto r = run_sql(db_, sql, v.strategy_id); !r) return r;
  }
  if (auto r = run_sql(db_,
                       "INSERT INTO validations (strategy_id, world_id, outcome, reason, detail, "
                       "started_at_us, finished_at_us) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       v.strategy_id, v.world_id, v.outcome, v.reason, v.detail, v.started_at,
                       v.finished_at);
      !r) {
    return r;
  }
  auto ins = prepared(db_,
                      "INSERT INTO validation_points (strategy_id, ts_us, equity) VALUES (?, ?, ?) "
                      "ON CONFLICT (strategy_id, ts_us) DO UPDATE SET equity = excluded.equity");
  if (!ins) return propagate(ins);
  for (const auto& p : v.points) {
    ins->reset();
    if (auto r = bind_one(*ins, 1, v.strategy_id); !r) return r;
    if (auto r = bind_one(*ins, 2, p.ts); !r) return r;
    if (auto r = ins->bind(3, p.equity); !r) return r;
    if (auto r = ins->run(); !r) return r;
  }
  auto fill = prepared(db_,
                       "INSERT INTO validation_fills (strategy_id, seq, ts_us, symbol, side, qty, "
                       "price, fee) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  if (!fill) return propagate(fill);
  int64_t seq = 0;
  for (const auto& f : v.fills) {
    fill->reset();
    if (auto r = bind_one(*fill, 1, v.strategy_id); !r) return r;
    if (auto r = bind_one(*fill, 2, ++seq); !r) return r;
    if (auto r = bind_fill(*fill, 3, f); !r) return r;
    if (auto r = fill->run(); !r) return r;
  }
  return tx->commit();
}

Result<std::optional<ValidationRecord>> SqlStore::get_validation(std::string_view strategy_id,
                                                                 bool with_records) {
  std::lock_guard lock(mu_);
  auto st = prepared(db_,
                     "SELECT strategy_id, world_id, outcome, reason, detail, started_at_us, "
                     "finished_at_us FROM validations WHERE strategy_id = ?",
                     strategy_id);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) return std::optional<ValidationRecord>();
  ValidationRecord v{.strategy_id = st->column_text(0),
                     .world_id = st->column_text(1),
                     .outcome = st->column_text(2),
                     .reason = st->column_text(3),
                     .detail = st->column_text(4),
                     .started_at = from_us(st->column_int(5)),
                     .finished_at = from_us(st->column_int(6))};
  if (with_records) {
    auto pts = prepared(
        db_, "SELECT ts_us, equity FROM validation_points WHERE strategy_id = ? ORDER BY ts_us",
        strategy_id);
    if (!pts) return propagate(pts);
    auto points = collect(*pts, [](const Statement& r) {
      return PerformancePoint{from_us(r.column_int(0)), r.column_double(1)};
    });
    if (!points) return propagate(points);
    v.points = std::move(*points);
    auto fs = prepared(db_,
                       "SELECT ts_us, symbol, side, qty, price, fee FROM validation_fills WHERE "
                       "strategy_id = ? ORDER BY seq",
                       strategy_id);
    if (!fs) return propagate(fs);
    auto fills = collect(*fs, read_fill);
    if (!fills) return propagate(fills);
    v.fills = std::move(*fills);
  }
  return std::optional<ValidationRecord>(std::move(v));
}

Result<std::optional<ScheduleState>> SqlStore::get_schedule(std::string_view world_id) {
  std::lock_guard lock(mu_);
  auto st = prepared(db_,
                     "SELECT world_id, spec, next_run_us, last_run_us, last_run_id, last_error "
                     "FROM schedules WHERE world_id = ?",
                     world_id);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) return std::optional<ScheduleState>();
  ScheduleState s{.world_id = st->column_text(0),
                  .spec = st->column_text(1),
                  .next_run = from_us(st->column_int(2)),
                  .last_error = st->column_text(5)};
  if (!st->column_is_null(3)) s.last_run = from_us(st->column_int(3));
  if (!st->column_is_null(4)) s.last_run_id = st->column_text(4);
  return std::optional<ScheduleState>(std::move(s));
}

Result<void> SqlStore::write_schedule_locked(const ScheduleState& s) {
  auto exists = prepared(db_, "SELECT 1 FROM worlds WHERE id = ?", s.world_id);
  if (!exists) return propagate(exists);
  auto found = exists->step();
  if (!found) return propagate(found);
  if (!*found) {
    return make_error(ErrorCode::kNotFound, fmt::format("world '{}' does not exist", s.world_id));
  }
  return run_sql(db_,
                 "INSERT INTO schedules (world_id, spec, next_run_us, last_run_us, last_run_id, "
                 "last_error) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (world_id) DO UPDATE SET "
                 "spec = excluded.spec, next_run_us = excluded.next_run_us, "
                 "last_run_us = excluded.last_run_us, last_run_id = excluded.last_run_id, "
                 "last_error = excluded.last_error",
                 s.world_id, s.spec, s.next_run, s.last_run, s.last_run_id, s.last_error);
}

Result<void> SqlStore::put_schedule(const ScheduleState& schedule) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto r = write_schedule_locked(schedule); !r) return r;
  return tx->commit();
}

Result<std::string> SqlStore::insert_evaluation_run(const EvaluationRunRecord& run,
                                                    const AuditRecord& audit,
                                                    const std::optional<ScheduleState>& schedule) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (schedule && schedule->last_run) {
    // A scheduled evaluation consumes the due time the schedule holds; once
    // another server has consumed it, this one is a repeat.
    auto due = prepared(db_, "SELECT next_run_us FROM schedules WHERE world_id = ?", run.world_id);
    if (!due) return propagate(due);
    auto row = due->step();
    if (!row) return propagate(row);
    if (*row && from_us(due->column_int(0)) != *schedule->last_run) {
      return make_error(ErrorCode::kVersionMismatch,
                        fmt::format("world '{}': the evaluation due at {} was already made "
                                    "(by another server); the schedule has moved on",
                                    run.world_id, format_timestamp(*schedule->last_run)));
    }
  }
  auto next =
      prepared(db_, "SELECT COUNT(*) + 1 FROM evaluation_runs WHERE world_id = ?", run.world_id);
  if (!next) return propagate(next);
  if (auto r = next->step(); !r) return propagate(r);
  const std::string id = fmt::format("{}-{}", run.world_id, next->column_int(0));
  if (auto r = run_sql(db_,
                       "INSERT INTO evaluation_runs (id, world_id, policy_version, started_at_us, "
                       "finished_at_us, "
                       "detail) VALUES (?, ?, ?, ?, ?, ?)",
                       id, run.world_id, run.policy_version, run.started_at, run.finished_at,
                       run.detail);
      !r) {
    return propagate(r);
  }
  auto res =
      prepared(db_,
               "INSERT INTO evaluation_results (run_id, strategy_id, decision, promote_pass, out) "
               "VALUES (?, ?, ?, ?, ?)");
  if (!res) return propagate(res);
  for (const auto& row : run.results) {
    res->reset();
    if (auto r = bind_one(*res, 1, id); !r) return propagate(r);
    if (auto r = bind_one(*res, 2, row.strategy_id); !r) return propagate(r);
    if (auto r = bind_one(*res, 3, row.decision); !r) return propagate(r);
    if (auto r = res->bind(4, int64_t{row.promote_pass}); !r) return propagate(r);
    if (auto r = res->bind(5, int64_t{row.out}); !r) return propagate(r);
    if (auto r = res->run(); !r) return propagate(r);
  }
  AuditRecord a = audit;
  a.entity_id = id;
  a.run_id = id;
  if (auto r = append_audit(a); !r) return propagate(r);
  if (schedule) {
    ScheduleState s = *schedule;
    s.last_run_id = id;
    if (auto r = write_schedule_locked(s); !r) return propagate(r);
  }
  if (auto r = tx->commit(); !r) return propagate(r);
  return id;
}

Result<std::vector<EvaluationResultRow>> SqlStore::load_results(std::string_view run_id) {
  auto st = prepared(
      db_,
      "SELECT strategy_id, decision, promote_pass, out FROM evaluation_results WHERE run_id = ? "
      "ORDER BY strategy_id",
      run_id);
  if (!st) return propagate(st);
  return collect(*st, [](const Statement& r) {
    return EvaluationResultRow{.strategy_id = r.column_text(0),
                               .decision = r.column_text(1),
                               .promote_pass = r.column_int(2) != 0,
                               .out = r.column_int(3) != 0};
  });
}

namespace {

constexpr std::string_view kRunColumns =
    "id, world_id, policy_version, started_at_us, finished_at_us, detail";

EvaluationRunRecord read_run(const Statement& st) {
  return EvaluationRunRecord{.id = st.column_text(0),
                             .world_id = st.column_text(1),
                             .policy_version = st.column_int(2),
                             .started_at = from_us(st.column_int(3)),
                             .finished_at = from_us(st.column_int(4)),
                             .detail = st.column_text(5)};
}

}  // namespace

Result<EvaluationRunRecord> SqlStore::get_evaluation_run(std::string_view world_id,
                                                         std::string_view run_id) {
  std::lock_guard lock(mu_);
  auto st = prepared(
      db_, fmt::format("SELECT {} FROM evaluation_runs WHERE world_id = ? AND id = ?", kRunColumns),
      world_id, run_id);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("world '{}' has no evaluation run '{}'", world_id, run_id));
  }
  EvaluationRunRecord run = read_run(*st);
  auto results = load_results(run.id);
  if (!results) return propagate(results);
  run.results = std::move(*results);
  return run;
}

Result<std::vector<EvaluationRunRecord>> SqlStore::list_evaluation_runs(std::string_view world_id,
                                                                        size_t limit,
                                                                        TimePoint since) {
  std::lock_guard lock(mu_);
  auto st = prepared(
      db_,
      fmt::format("SELECT {} FROM evaluation_runs WHERE world_id = ? AND started_at_us >= ? "
                  "ORDER BY seq DESC LIMIT ?",
                  kRunColumns),
      world_id, since, static_cast<int64_t>(limit));
  if (!st) return propagate(st);
  auto runs = collect(*st, read_run);
  if (!runs) return runs;
  for (auto& run : *runs) {
    auto results = load_results(run.id);
    if (!results) return propagate(results);
    run.results = std::move(*results);
  }
  return runs;
}

std::string_view apply_phase_name(ApplyPhase p) {
  switch (p) {
    case ApplyPhase::kFrozen:
      return "Frozen";
    case ApplyPhase::kSwitched:
      return "Switched";
    case ApplyPhase::kDone:
      return "Done";
    case ApplyPhase::kRolledBack:
      return "RolledBack";
  }
  return "Frozen";
}

namespace {

std::string join_ids(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) {
    if (!out.empty()) out += '\n';
    out += id;
  }
  return out;
}

std::vector<std::string> split_ids(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    out.push_back(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

std::optional<ApplyPhase> parse_phase(std::string_view name) {
  for (auto p :
       {ApplyPhase::kFrozen, ApplyPhase::kSwitched, ApplyPhase::kDone, ApplyPhase::kRolledBack}) {
    if (apply_phase_name(p) == name) return p;
  }
  return std::nullopt;
}

constexpr std::string_view kJournalColumns =
    "run_id, world_id, phase, promote, demote, started_at_us, updated_at_us, kind, only_side, "
    "basis_policy, basis_live";

ApplyJournalEntry read_journal(const Statement& st) {
  ApplyJournalEntry e{.run_id = st.column_text(0),
                      .world_id = st.column_text(1),
                      .phase = parse_phase(st.column_text(2)).value_or(ApplyPhase::kFrozen),
                      .promote = split_ids(st.column_text(3)),
                      .demote = split_ids(st.column_text(4)),
                      .started_at = from_us(st.column_int(5)),
                      .updated_at = from_us(st.column_int(6)),
                      .kind = st.column_text(7),
                      .only_side = optional_text(st, 8)};
  if (!st.column_is_null(9)) {
    e.basis = ApplyBasis{.policy_version = st.column_int(9),
                         .live = split_ids(optional_text(st, 10).value_or(""))};
  }
  return e;
}

}  // namespace

namespace {

constexpr std::string_view kActivationColumns =
    "world_id, strategy_id, side, active, weight, frozen, version, updated_at_us, manual";

Activation read_activation(const Statement& r) {
  Activation a{.world_id = r.column_text(0),
               .strategy_id = r.column_text(1),
               .side = r.column_text(2),
               .active = r.column_int(3) != 0,
               .weight = r.column_double(4),
               .frozen = r.column_int(5) != 0,
               .version = r.column_int(6),
               .updated_at = from_us(r.column_int(7))};
  if (!r.column_is_null(8)) a.manual = r.column_int(8) != 0;
  return a;
}

constexpr std::string_view kUpsertManual =
    "INSERT INTO activations (world_id, strategy_id, side, active, weight, frozen, version, "
    "updated_at_us, "
    "manual) VALUES (?1, ?2, ?3, ?4, 1.0, 0, 1, ?5, ?4) ON CONFLICT (world_id, strategy_id, side) "
    "DO UPDATE "
    "SET active = ?4, manual = ?4, version = activations.version + 1, updated_at_us = ?5";

}  // namespace

Result<std::vector<Activation>> SqlStore::list_activations(std::string_view world_id) {
  std::lock_guard lock(mu_);
  auto st = prepared(
      db_,
      fmt::format("SELECT {} FROM activations WHERE world_id = ? ORDER BY strategy_id, side",
                  kActivationColumns),
      world_id);
  if (!st) return propagate(st);
  return collect(*st, read_activation);
}

Result<std::optional<Activation>> SqlStore::get_activation_locked(std::string_view world_id,
                                                                  std::string_view strategy_id,
                                                                  std::string_view side) {
  auto st = prepared(
      db_,
      fmt::format("SELECT {} FROM activations WHERE world_id = ? AND strategy_id = ? AND side = ?",
                  kActivationColumns),
      world_id, strategy_id, side);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) return std::optional<Activation>{};
  return std::optional<Activation>(read_activation(*st));
}

Result<Activation> SqlStore::set_manual_activation(std::string_view world_id,
                                                   std::string_view strategy_id,
                                                   std::string_view side, bool active,
                                                   std::optional<int64_t> expected_version,
                                                   TimePoint at, const AuditRecord& audit,
                                                   std::optional<int64_t> dequeue_seq) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  auto belongs = prepared(db_, "SELECT 1 FROM strategies WHERE id = ? AND world_id = ?",
                          strategy_id, world_id);
  if (!belongs) return propagate(belongs);
  auto found = belongs->step();
  if (!found) return propagate(found);
  if (!*found) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("world '{}' has no strategy '{}'", world_id, strategy_id));
  }
  auto current = get_activation_locked(world_id, strategy_id, side);
  if (!current) return propagate(current);
  const int64_t have = *current ? (*current)->version : 0;
  if (expected_version && *expected_version != have) {
    return make_error(
        ErrorCode::kVersionMismatch,
        fmt::format("activation {}/{} is at version {}, not {}; read it again and retry",
                    strategy_id, side, have, *expected_version));
  }
  if (auto r =
          run_sql(db_, kUpsertManual, world_id, strategy_id, side, int64_t{active ? 1 : 0}, at);
      !r) {
    return propagate(r);
  }
  if (auto r = append_audit(audit); !r) return propagate(r);
  if (auto r = dequeue_locked(dequeue_seq); !r) return propagate(r);
  auto after = get_activation_locked(world_id, strategy_id, side);
  if (!after) return propagate(after);
  if (auto r = tx->commit(); !r) return propagate(r);
  return **after;
}

Result<void> SqlStore::queue_activation(const QueuedActivation& q, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto r = run_sql(db_,
                       "INSERT INTO pending_activations (world_id, strategy_id, side, active, "
                       "actor, reason, at_us, action, forced) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       q.world_id, q.strategy_id, q.side, int64_t{q.active ? 1 : 0}, q.actor,
                       q.reason, q.at, q.action, int64_t{q.forced ? 1 : 0});
      !r) {
    return r;
  }
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

namespace {

constexpr std::string_view kQueuedColumns =
    "seq, world_id, strategy_id, side, active, action, forced, actor, reason, at_us";

QueuedActivation read_queued(const Statement& r) {
  return QueuedActivation{.seq = r.column_int(0),
                          .world_id = r.column_text(1),
                          .strategy_id = r.column_text(2),
                          .side = r.column_text(3),
                          .active = r.column_int(4) != 0,
                          .action = r.column_text(5),
                          .forced = r.column_int(6) != 0,
                          .actor = r.column_text(7),
                          .reason = r.column_text(8),
                          .at = from_us(r.column_int(9))};
}

}  // namespace

Result<void> SqlStore::dequeue_locked(std::optional<int64_t> seq) {
  if (!seq) return {};
  if (auto r = run_sql(db_, "DELETE FROM pending_activations WHERE seq = ?", *seq); !r) return r;
  if (db_.changes() != 1) {
    return make_error(ErrorCode::kAlreadyExists,
                      fmt::format("queued change {} was carried out already", *seq));
  }
  return {};
}

Result<std::vector<QueuedActivation>> SqlStore::queued_locked(std::string_view world_id) {
  auto st =
      prepared(db_,
               fmt::format("SELECT {} FROM pending_activations WHERE world_id = ? ORDER BY seq",
                           kQueuedColumns),
               world_id);
  if (!st) return propagate(st);
  return collect(*st, read_queued);
}

Result<std::vector<QueuedActivation>> SqlStore::list_queued_activations(std::string_view world_id) {
  std::lock_guard lock(mu_);
  return queued_locked(world_id);
}

Result<void> SqlStore::drop_queued_activation(int64_t seq, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  if (auto r = run_sql(db_, "DELETE FROM pending_activations WHERE seq = ?", seq); !r) return r;
  if (db_.changes() != 1) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("queued change {} is not queued any more", seq));
  }
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

Result<void> SqlStore::drop_all_queued_locked(std::string_view world_id, lifecycle::WorldState next,
                                              TimePoint at, const AuditRecord& audit) {
  auto queued = queued_locked(world_id);
  if (!queued) return propagate(queued);
  for (const auto& q : *queued) {
    AuditRecord a = audit;
    a.at = at;
    a.entity = q.action == "gate" ? "activation" : "strategy";
    a.entity_id = q.action == "gate" ? fmt::format("{}/{}", q.strategy_id, q.side) : q.strategy_id;
    a.actor = q.actor;
    a.event = "ACTIVATION_DROPPED";
    a.before = std::nullopt;
    a.after = q.action == "gate" ? (q.active ? "active" : "inactive") : q.action;
    a.reason =
        fmt::format("queued while Paused; the world became {}", lifecycle::world_state_name(next));
    if (auto r = append_audit(a); !r) return r;
  }
  return run_sql(db_, "DELETE FROM pending_activations WHERE world_id = ?", world_id);
}

Result<void> SqlStore::set_gates(std::string_view world_id,
                                 const std::vector<std::string>& strategies,
                                 std::optional<bool> active, std::optional<bool> frozen,
                                 TimePoint at) {
  auto st = prepared(
      db_,
      "INSERT INTO activations (world_id, strategy_id, side, active, weight, frozen, version, "
      "updated_at_us) VALUES (?1, ?2, ?3, COALESCE(?4, 0), 1.0, COALESCE(?5, 0), 1, ?6) "
      "ON CONFLICT (world_id, strategy_id, side) DO UPDATE SET "
      "active = COALESCE(?4, activations.active), frozen = COALESCE(?5, activations.frozen), "
      "version = activations.version + 1, updated_at_us = ?6");
  if (!st) return propagate(st);
  for (const auto& id : strategies) {
    for (std::string_view side : {"long", "short"}) {
      st->reset();
      std::optional<int64_t> a, f;
      if (active) a = *active ? 1 : 0;
      if (frozen) f = *frozen ? 1 : 0;
      if (auto r = bind_one(*st, 1, world_id); !r) return r;
      if (auto r = bind_one(*st, 2, id); !r) return r;
      if (auto r = bind_one(*st, 3, side); !r) return r;
      if (auto r = bind_one(*st, 4, a); !r) return r;
      if (auto r = bind_one(*st, 5, f); !r) return r;
      if (auto r = bind_one(*st, 6, at); !r) return r;
      if (auto r = st->run(); !r) return r;
    }
  }
  return {};
}

Result<std::optional<ApplyJournalEntry>> SqlStore::get_apply_locked(std::string_view run_id) {
  auto st = prepared(
      db_, fmt::format("SELECT {} FROM apply_journal WHERE run_id = ?", kJournalColumns), run_id);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) return std::optional<ApplyJournalEntry>{};
  return std::optional<ApplyJournalEntry>(read_journal(*st));
}

Result<std::optional<ApplyJournalEntry>> SqlStore::get_apply(std::string_view run_id) {
  std::lock_guard lock(mu_);
  return get_apply_locked(run_id);
}

Result<std::vector<ApplyJournalEntry>> SqlStore::unfinished_applies() {
  std::lock_guard lock(mu_);
  auto st = db_.prepare(fmt::format(
      "SELECT {} FROM apply_journal WHERE phase IN ('Frozen', 'Switched') ORDER BY started_at_us",
      kJournalColumns));
  if (!st) return propagate(st);
  return collect(*st, read_journal);
}

Result<void> SqlStore::check_basis_locked(const ApplyJournalEntry& e) {
  if (!e.basis) return {};
  auto w = get_world_locked(e.world_id);
  if (!w) return propagate(w);
  const std::string what = e.kind == "manual" ? std::string("the change was checked")
                                              : fmt::format("run '{}' was evaluated", e.run_id);
  if (w->policy_version.value_or(0) != e.basis->policy_version) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("world '{}' changed since {}: policy version {} is current, "
                    "not {}; {}",
                    e.world_id, what, w->policy_version.value_or(0), e.basis->policy_version,
                    e.kind == "manual" ? "retry" : "evaluate again and apply that run"));
  }
  auto st =
      prepared(db_, "SELECT id FROM strategies WHERE world_id = ? AND state = 'Live' ORDER BY id",
               e.world_id);
  if (!st) return propagate(st);
  auto live = collect(*st, [](const Statement& r) { return r.column_text(0); });
  if (!live) return propagate(live);
  std::vector<std::string> expected = e.basis->live;
  std::sort(expected.begin(), expected.end());
  if (*live != expected) {
    const auto list = [](const std::vector<std::string>& ids) {
      return ids.empty() ? std::string("none") : fmt::format("{}", fmt::join(ids, ", "));
    };
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("world '{}' changed since {}: the Live strategies are {} now, not {}; {}",
                    e.world_id, what, list(*live), list(expected),
                    e.kind == "manual" ? "retry" : "evaluate again and apply that run"));
  }
  return {};
}

Result<std::string> SqlStore::apply_freeze(const ApplyJournalEntry& e, const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  std::string run_id = e.run_id;
  if (run_id.empty()) {
    if (e.kind != "manual") {
      return make_error(ErrorCode::kInvalidArgument, "an evaluation apply needs its run id");
    }
    auto n = prepared(db_,
                      "SELECT COUNT(*) + 1 FROM apply_journal WHERE world_id = ? AND kind = "
                      "'manual'",
                      e.world_id);
    if (!n) return propagate(n);
    if (auto r = n->step(); !r) return propagate(r);
    run_id = fmt::format("{}-m{}", e.world_id, n->column_int(0));
  }
  auto existing = get_apply_locked(run_id);
  if (!existing) return propagate(existing);
  if (*existing) {
    return make_error(ErrorCode::kAlreadyExists,
                      fmt::format("run '{}' is already in the apply journal ({})", run_id,
                                  apply_phase_name((*existing)->phase)));
  }
  if (auto r = check_basis_locked(e); !r) return propagate(r);
  std::optional<int64_t> basis_policy;
  std::optional<std::string> basis_live;
  if (e.basis) {
    basis_policy = e.basis->policy_version;
    basis_live = join_ids(e.basis->live);
  }
  if (auto r = run_sql(db_,
                       fmt::format("INSERT INTO apply_journal ({}) VALUES (?, ?, 'Frozen', ?, ?, "
                                   "?, ?, ?, ?, ?, ?)",
                                   kJournalColumns),
                       run_id, e.world_id, join_ids(e.promote), join_ids(e.demote), e.started_at,
                       e.started_at, e.kind, e.only_side, basis_policy, basis_live);
      !r) {
    return propagate(r);
  }
  std::vector<std::string> all = e.promote;
  all.insert(all.end(), e.demote.begin(), e.demote.end());
  if (auto r = set_gates(e.world_id, all, std::nullopt, true, e.started_at); !r)
    return propagate(r);
  if (auto r = dequeue_locked(e.dequeue_seq); !r) return propagate(r);
  AuditRecord a = audit;
  a.entity_id = run_id;
  a.run_id = run_id;
  if (auto r = append_audit(a); !r) return propagate(r);
  if (auto r = tx->commit(); !r) return propagate(r);
  return run_id;
}

Result<void> SqlStore::apply_switch(std::string_view run_id, TimePoint at,
                                    const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  auto e = get_apply_locked(run_id);
  if (!e) return propagate(e);
  if (!*e || (*e)->phase != ApplyPhase::kFrozen) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("run '{}' is not frozen for apply", run_id));
  }
  const ApplyJournalEntry& j = **e;
  if (auto r = check_basis_locked(j); !r) return r;
  const bool manual = j.kind == "manual";
  using lifecycle::StrategyState;
  auto move = [&](const std::string& id, StrategyState from, StrategyState to,
                  std::string_view event, bool gate_open) -> Result<void> {
    auto st = prepared(
        db_, "UPDATE strategies SET state = ?, state_since_us = ? WHERE id = ? AND state = ?",
        lifecycle::strategy_state_name(to), at, id, lifecycle::strategy_state_name(from));
    if (!st) return propagate(st);
    if (auto r = st->run(); !r) return r;
    AuditRecord a = audit;
    a.entity = "strategy";
    a.entity_id = id;
    if (db_.changes() != 1) {
      // Someone changed the strategy after the evaluation: do not act on stale data.
      a.event = fmt::format("{}_SKIPPED", event);
      a.reason = fmt::format("not {} any more when the run was applied",
                             lifecycle::strategy_state_name(from));
      return append_audit(a);
    }
    if (auto r = append_history(id, from, to, event, at); !r) return r;
    a.event = std::string(event);
    a.before = std::string(lifecycle::strategy_state_name(from));
    a.after = std::string(lifecycle::strategy_state_name(to));
    if (auto r = append_audit(a); !r) return r;
    if (auto r = set_gates(j.world_id, {id}, gate_open, true, at); !r) return r;
    if (!manual) {
      // The policy took over again; the override was reported by the evaluation.
      return run_sql(db_,
                     "UPDATE activations SET manual = NULL WHERE world_id = ? AND strategy_id = ?",
                     j.world_id, id);
    }
    // An operator's change: its marks say so, and a side left out of a
    // one-sided promotion stays closed (manual off) until opened by hand.
    if (auto r =
            run_sql(db_, "UPDATE activations SET manual = ? WHERE world_id = ? AND strategy_id = ?",
                    int64_t{gate_open ? 1 : 0}, j.world_id, id);
        !r) {
      return r;
    }
    if (gate_open && j.only_side) {
      return run_sql(db_,
                     "UPDATE activations SET active = 0, manual = 0 WHERE world_id = ? AND "
                     "strategy_id = ? AND side <> ?",
                     j.world_id, id, *j.only_side);
    }
    return {};
  };
  // Closing first: within the transaction nothing is seen half-done, and the
  // order keeps every intermediate state within the caps as well.
  for (const auto& id : j.demote) {
    if (auto r = move(id, StrategyState::kLive, StrategyState::kDryRun, "DEMOTE", false); !r)
      return r;
  }
  for (const auto& id : j.promote) {
    if (auto r = move(id, StrategyState::kDryRun, StrategyState::kLive, "PROMOTE", true); !r)
      return r;
  }
  if (auto r = run_sql(
          db_, "UPDATE apply_journal SET phase = 'Switched', updated_at_us = ? WHERE run_id = ?",
          at, run_id);
      !r) {
    return r;
  }
  AuditRecord a = audit;
  a.event = "APPLY_SWITCH";
  if (auto r = append_audit(a); !r) return r;
  return tx->commit();
}

Result<void> SqlStore::apply_finish(std::string_view run_id, ApplyPhase final_phase, TimePoint at,
                                    const AuditRecord& audit) {
  std::lock_guard lock(mu_);
  auto tx = Transaction::begin(db_);
  if (!tx) return propagate(tx);
  auto e = get_apply_locked(run_id);
  if (!e) return propagate(e);
  if (!*e)
    return make_error(ErrorCode::kNotFound,
                      fmt::format("run '{}' is not in the apply journal", run_id));
  const ApplyJournalEntry& j = **e;
  const bool ok = (final_phase == ApplyPhase::kDone && j.phase == ApplyPhase::kSwitched) ||
                  (final_phase == ApplyPhase::kRolledBack && j.phase == ApplyPhase::kFrozen);
  if (!ok) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("run '{}' cannot go from {} to {}", run_id,
                                  apply_phase_name(j.phase), apply_phase_name(final_phase)));
  }
  std::vector<std::string> all = j.promote;
  all.insert(all.end(), j.demote.begin(), j.demote.end());
  if (auto r = set_gates(j.world_id, all, std::nullopt, false, at); !r) return r;
  if (auto r =
          run_sql(db_, "UPDATE apply_journal SET phase = ?, updated_at_us = ? WHERE run_id = ?",
                  apply_phase_name(final_phase), at, run_id);
      !r) {
    return r;
  }
  if (auto r = append_audit(audit); !r) return r;
  return tx->commit();
}

Result<std::vector<AuditRecord>> SqlStore::list_audit(std::string_view world_id, int64_t after_seq,
                                                      size_t limit) {
  std::lock_guard lock(mu_);
  auto st = prepared(
      db_,
      "SELECT seq, at_us, actor, world_id, entity, entity_id, event, before, after, reason, run_id "
      "FROM audit_log WHERE world_id = ? AND seq > ? ORDER BY seq LIMIT ?",
      world_id, after_seq, static_cast<int64_t>(limit));
  if (!st) return propagate(st);
  return collect(*st, [](const Statement& r) {
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
  });
}

Result<int64_t> SqlStore::last_audit_seq(std::string_view world_id) {
  std::lock_guard lock(mu_);
  auto st =
      prepared(db_, "SELECT COALESCE(MAX(seq), 0) FROM audit_log WHERE world_id = ?", world_id);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  return st->column_int(0);
}

Result<std::optional<TimePoint>> SqlStore::last_evaluation_finished(std::string_view world_id) {
  std::lock_guard lock(mu_);
  auto st = prepared(
      db_,
      "SELECT finished_at_us FROM evaluation_runs WHERE world_id = ? ORDER BY seq DESC LIMIT 1",
      world_id);
  if (!st) return propagate(st);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) return std::optional<TimePoint>();
  return std::optional<TimePoint>(from_us(st->column_int(0)));
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
