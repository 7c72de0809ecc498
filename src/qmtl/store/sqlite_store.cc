#include "qmtl/store/sqlite_store.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <array>

namespace qmtl::store {
namespace {

// Never edit a migration that has shipped: add a new one. Version numbers are dense.
constexpr std::array<Migration, 1> kMigrations{{
    {1, "worlds",
     R"sql(
CREATE TABLE worlds (
  id             TEXT PRIMARY KEY,
  name           TEXT NOT NULL,
  state          TEXT NOT NULL CHECK (state IN ('Active', 'EvalOnly', 'Paused', 'Retired')),
  policy_version INTEGER,
  created_at_us  INTEGER NOT NULL,
  updated_at_us  INTEGER NOT NULL
) STRICT;
)sql"},
}};

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

std::span<const Migration> sqlite_migrations() { return kMigrations; }

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  auto db = SqliteDb::open(path);
  if (!db) return propagate(db);
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(*db), path));
  if (auto r = store->migrate(); !r) return propagate(r);
  return store;
}

Result<void> SqliteStore::migrate() {
  std::lock_guard lock(mu_);
  if (auto r = db_.exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
                        " applied_at_us INTEGER NOT NULL) STRICT");
      !r) {
    return r;
  }
  for (const Migration& m : kMigrations) {
    auto tx = Transaction::begin(db_);
    if (!tx) return propagate(tx);
    auto current = db_.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!current) return propagate(current);
    if (auto r = current->step(); !r) return propagate(r);
    const int64_t have = current->column_int(0);
    if (have > static_cast<int64_t>(kMigrations.size())) {
      return make_error(ErrorCode::kFailedPrecondition,
                        fmt::format("database '{}' has schema version {}, newer than this qmtl "
                                    "supports ({}); upgrade qmtl",
                                    path_, have, kMigrations.size()));
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

Result<int> SqliteStore::schema_version() {
  std::lock_guard lock(mu_);
  auto st = db_.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!st) return propagate(st);
  if (auto r = st->step(); !r) return propagate(r);
  return static_cast<int>(st->column_int(0));
}

Result<void> SqliteStore::insert_world(const World& w) {
  std::lock_guard lock(mu_);
  auto st =
      db_.prepare(fmt::format("INSERT INTO worlds ({}) VALUES (?, ?, ?, ?, ?, ?)", kWorldColumns));
  if (!st) return propagate(st);
  if (auto r = st->bind(1, w.id); !r) return r;
  if (auto r = st->bind(2, w.name); !r) return r;
  if (auto r = st->bind(3, lifecycle::world_state_name(w.state)); !r) return r;
  if (auto r = w.policy_version ? st->bind(4, *w.policy_version) : st->bind_null(4); !r) return r;
  if (auto r = st->bind(5, to_us(w.created_at)); !r) return r;
  if (auto r = st->bind(6, to_us(w.updated_at)); !r) return r;
  if (auto r = st->run(); !r) {
    if (db_.last_error_code() == SQLITE_CONSTRAINT_PRIMARYKEY) {
      return make_error(ErrorCode::kAlreadyExists,
                        fmt::format("world '{}' already exists; choose another id", w.id));
    }
    return r;
  }
  return {};
}

Result<World> SqliteStore::get_world(std::string_view id) {
  std::lock_guard lock(mu_);
  auto st = db_.prepare(fmt::format("SELECT {} FROM worlds WHERE id = ?", kWorldColumns));
  if (!st) return propagate(st);
  if (auto r = st->bind(1, id); !r) return propagate(r);
  auto row = st->step();
  if (!row) return propagate(row);
  if (!*row) {
    return make_error(
        ErrorCode::kNotFound,
        fmt::format("world '{}' does not exist; `qmtl world list` shows the worlds", id));
  }
  return read_world(*st);
}

Result<std::vector<World>> SqliteStore::list_worlds() {
  std::lock_guard lock(mu_);
  auto st = db_.prepare(fmt::format("SELECT {} FROM worlds ORDER BY id", kWorldColumns));
  if (!st) return propagate(st);
  std::vector<World> out;
  for (;;) {
    auto row = st->step();
    if (!row) return propagate(row);
    if (!*row) break;
    auto w = read_world(*st);
    if (!w) return propagate(w);
    out.push_back(std::move(*w));
  }
  return out;
}

Result<std::unique_ptr<Store>> open_store(std::string_view url) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (url.starts_with(kSqlite)) {
    std::string path(url.substr(kSqlite.size()));
    if (path.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "the sqlite database URL needs a path, e.g. sqlite:qmtl.db");
    }
    auto s = SqliteStore::open(path);
    if (!s) return propagate(s);
    return std::unique_ptr<Store>(std::move(*s));
  }
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
    return make_error(ErrorCode::kInvalidArgument,
                      "PostgreSQL is not supported by this build yet; use sqlite:PATH");
  }
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("unknown database URL '{}'; use sqlite:PATH", url));
}

}  // namespace qmtl::store
