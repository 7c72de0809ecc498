// The schema of the SQLite store. Its PostgreSQL twin is pg_migrations.cc:
// change both together, with the same version and description.
#include <array>

#include "qmtl/store/sql_store.h"

namespace qmtl::store {
namespace {

// Never edit a migration that has shipped: add a new one. Version numbers are dense.
constexpr std::array<Migration, 11> kMigrations{{
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
    {2, "audit log, policy versions, strategies",
     R"sql(
CREATE TABLE audit_log (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  at_us      INTEGER NOT NULL,
  actor      TEXT NOT NULL,
  world_id   TEXT NOT NULL,
  entity     TEXT NOT NULL,
  entity_id  TEXT NOT NULL,
  event      TEXT NOT NULL,
  before     TEXT,
  after      TEXT,
  reason     TEXT NOT NULL,
  run_id     TEXT
) STRICT;
CREATE INDEX audit_log_by_world ON audit_log (world_id, seq);
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE policy_versions (
  world_id      TEXT NOT NULL REFERENCES worlds (id),
  version       INTEGER NOT NULL CHECK (version >= 1),
  document      TEXT NOT NULL,
  canonical     TEXT NOT NULL,
  checksum      TEXT NOT NULL,
  created_at_us INTEGER NOT NULL,
  PRIMARY KEY (world_id, version)
) STRICT;
CREATE TRIGGER policy_versions_immutable_update BEFORE UPDATE ON policy_versions
  BEGIN SELECT RAISE(ABORT, 'policy versions are immutable'); END;
CREATE TRIGGER policy_versions_immutable_delete BEFORE DELETE ON policy_versions
  BEGIN SELECT RAISE(ABORT, 'policy versions are immutable'); END;

CREATE TABLE strategies (
  id             TEXT PRIMARY KEY,
  world_id       TEXT NOT NULL REFERENCES worlds (id),
  state          TEXT NOT NULL CHECK (state IN ('Submitted', 'Validating', 'Rejected', 'DryRun',
                                                'Live', 'Inactive', 'Archived')),
  state_since_us INTEGER NOT NULL,
  spec           TEXT NOT NULL,
  created_at_us  INTEGER NOT NULL
) STRICT;
CREATE INDEX strategies_by_world ON strategies (world_id, id);

CREATE TABLE strategy_state_history (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  strategy_id TEXT NOT NULL REFERENCES strategies (id),
  at_us       INTEGER NOT NULL,
  from_state  TEXT,
  to_state    TEXT NOT NULL,
  event       TEXT NOT NULL
) STRICT;
CREATE INDEX strategy_state_history_by_strategy ON strategy_state_history (strategy_id, seq);
)sql"},
    {3, "performance records and evaluation runs",
     R"sql(
CREATE TABLE performance_points (
  strategy_id TEXT NOT NULL REFERENCES strategies (id),
  ts_us       INTEGER NOT NULL,
  equity      REAL NOT NULL CHECK (equity > 0),
  PRIMARY KEY (strategy_id, ts_us)
) STRICT, WITHOUT ROWID;

CREATE TABLE fills (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  strategy_id TEXT NOT NULL REFERENCES strategies (id),
  ts_us       INTEGER NOT NULL,
  symbol      TEXT NOT NULL,
  side        TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
  qty         REAL NOT NULL CHECK (qty > 0),
  price       REAL NOT NULL CHECK (price > 0),
  fee         REAL NOT NULL
) STRICT;
CREATE INDEX fills_by_strategy ON fills (strategy_id, ts_us);

CREATE TABLE evaluation_runs (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,
  id             TEXT NOT NULL UNIQUE,
  world_id       TEXT NOT NULL REFERENCES worlds (id),
  policy_version INTEGER NOT NULL,
  started_at_us  INTEGER NOT NULL,
  finished_at_us INTEGER NOT NULL,
  detail         TEXT NOT NULL
) STRICT;
CREATE INDEX evaluation_runs_by_world ON evaluation_runs (world_id, seq);

CREATE TABLE evaluation_results (
  run_id       TEXT NOT NULL REFERENCES evaluation_runs (id),
  strategy_id  TEXT NOT NULL,
  decision     TEXT NOT NULL,
  promote_pass INTEGER NOT NULL,
  out          INTEGER NOT NULL,
  PRIMARY KEY (run_id, strategy_id)
) STRICT;
CREATE INDEX evaluation_results_by_strategy ON evaluation_results (strategy_id);
)sql"},
    {4, "activation gates and the apply journal",
     R"sql(
CREATE TABLE activations (
  world_id      TEXT NOT NULL REFERENCES worlds (id),
  strategy_id   TEXT NOT NULL REFERENCES strategies (id),
  side          TEXT NOT NULL CHECK (side IN ('long', 'short')),
  active        INTEGER NOT NULL CHECK (active IN (0, 1)),
  weight        REAL NOT NULL,
  frozen        INTEGER NOT NULL CHECK (frozen IN (0, 1)),
  version       INTEGER NOT NULL,
  updated_at_us INTEGER NOT NULL,
  PRIMARY KEY (world_id, strategy_id, side)
) STRICT;

CREATE TABLE apply_journal (
  run_id        TEXT PRIMARY KEY REFERENCES evaluation_runs (id),
  world_id      TEXT NOT NULL REFERENCES worlds (id),
  phase         TEXT NOT NULL CHECK (phase IN ('Frozen', 'Switched', 'Done', 'RolledBack')),
  promote       TEXT NOT NULL,
  demote        TEXT NOT NULL,
  started_at_us INTEGER NOT NULL,
  updated_at_us INTEGER NOT NULL
) STRICT;
)sql"},
    {5, "manual activation overrides and the queue of a paused world",
     R"sql(
ALTER TABLE activations ADD COLUMN manual INTEGER CHECK (manual IN (0, 1));
CREATE TABLE pending_activations (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  world_id    TEXT NOT NULL REFERENCES worlds (id),
  strategy_id TEXT NOT NULL REFERENCES strategies (id),
  side        TEXT NOT NULL CHECK (side IN ('long', 'short')),
  active      INTEGER NOT NULL CHECK (active IN (0, 1)),
  actor       TEXT NOT NULL,
  reason      TEXT NOT NULL,
  at_us       INTEGER NOT NULL
) STRICT;
)sql"},
    {6, "evaluation schedules",
     R"sql(
CREATE TABLE schedules (
  world_id     TEXT PRIMARY KEY REFERENCES worlds (id),
  spec         TEXT NOT NULL,
  next_run_us  INTEGER NOT NULL,
  last_run_us  INTEGER,
  last_run_id  TEXT,
  last_error   TEXT NOT NULL DEFAULT ''
) STRICT;
)sql"},
    {7, "alert webhooks",
     R"sql(
CREATE TABLE alert_hooks (
  world_id      TEXT PRIMARY KEY REFERENCES worlds (id),
  url           TEXT NOT NULL,
  events        TEXT NOT NULL,
  updated_at_us INTEGER NOT NULL
) STRICT;
)sql"},
    {8, "world settings and validation backtests",
     R"sql(
CREATE TABLE world_settings (
  world_id      TEXT NOT NULL REFERENCES worlds (id),
  kind          TEXT NOT NULL,
  doc           TEXT NOT NULL,
  updated_at_us INTEGER NOT NULL,
  PRIMARY KEY (world_id, kind)
) STRICT;
CREATE TABLE validations (
  strategy_id    TEXT PRIMARY KEY REFERENCES strategies (id),
  world_id       TEXT NOT NULL REFERENCES worlds (id),
  outcome        TEXT NOT NULL CHECK (outcome IN ('passed', 'rejected', 'failed')),
  reason         TEXT NOT NULL,
  detail         TEXT NOT NULL,
  started_at_us  INTEGER NOT NULL,
  finished_at_us INTEGER NOT NULL
) STRICT;
CREATE TABLE validation_points (
  strategy_id TEXT NOT NULL REFERENCES validations (strategy_id),
  ts_us       INTEGER NOT NULL,
  equity      REAL NOT NULL,
  PRIMARY KEY (strategy_id, ts_us)
) STRICT, WITHOUT ROWID;
CREATE TABLE validation_fills (
  strategy_id TEXT NOT NULL REFERENCES validations (strategy_id),
  seq         INTEGER NOT NULL,
  ts_us       INTEGER NOT NULL,
  symbol      TEXT NOT NULL,
  side        TEXT NOT NULL,
  qty         REAL NOT NULL,
  price       REAL NOT NULL,
  fee         REAL NOT NULL,
  PRIMARY KEY (strategy_id, seq)
) STRICT, WITHOUT ROWID;
)sql"},
    {9, "manual promotions through the apply journal, apply basis, queued promotions",
     // A manual promotion or demotion is applied like an evaluation run, so the
     // journal's run_id no longer always names an evaluation run. SQLite cannot
     // drop a constraint: the table is rebuilt.
     R"sql(
CREATE TABLE apply_journal_v9 (
  run_id        TEXT PRIMARY KEY,
  world_id      TEXT NOT NULL REFERENCES worlds (id),
  phase         TEXT NOT NULL CHECK (phase IN ('Frozen', 'Switched', 'Done', 'RolledBack')),
  promote       TEXT NOT NULL,
  demote        TEXT NOT NULL,
  started_at_us INTEGER NOT NULL,
  updated_at_us INTEGER NOT NULL,
  kind          TEXT NOT NULL DEFAULT 'evaluation' CHECK (kind IN ('evaluation', 'manual')),
  only_side     TEXT CHECK (only_side IN ('long', 'short')),
  basis_policy  INTEGER,
  basis_live    TEXT
) STRICT;
INSERT INTO apply_journal_v9 (run_id, world_id, phase, promote, demote, started_at_us,
                              updated_at_us)
  SELECT run_id, world_id, phase, promote, demote, started_at_us, updated_at_us
  FROM apply_journal;
DROP TABLE apply_journal;
ALTER TABLE apply_journal_v9 RENAME TO apply_journal;
ALTER TABLE pending_activations ADD COLUMN action TEXT NOT NULL DEFAULT 'gate'
  CHECK (action IN ('gate', 'promote', 'demote'));
ALTER TABLE pending_activations ADD COLUMN forced INTEGER NOT NULL DEFAULT 0
  CHECK (forced IN (0, 1));
)sql"},
    {10, "hourly rollups of performance points, for reading long histories back",
     // One row per strategy and hour with the hour's count and its first, lowest,
     // highest and last point (docs/development.md, the store); kept by
     // append_performance in the same transaction.
     R"sql(
CREATE TABLE performance_rollup (
  strategy_id TEXT NOT NULL REFERENCES strategies (id),
  bucket_us   INTEGER NOT NULL,
  n           INTEGER NOT NULL,
  first_ts_us INTEGER NOT NULL,
  first_eq    REAL NOT NULL,
  low_ts_us   INTEGER NOT NULL,
  low_eq      REAL NOT NULL,
  high_ts_us  INTEGER NOT NULL,
  high_eq     REAL NOT NULL,
  last_ts_us  INTEGER NOT NULL,
  last_eq     REAL NOT NULL,
  PRIMARY KEY (strategy_id, bucket_us)
) STRICT, WITHOUT ROWID;
INSERT INTO performance_rollup (strategy_id, bucket_us, n, first_ts_us, first_eq, low_ts_us, low_eq, high_ts_us, high_eq, last_ts_us, last_eq)
SELECT strategy_id, b, n, first_ts, first_eq, low_ts, low_eq, high_ts, high_eq, last_ts, last_eq
FROM (
  SELECT strategy_id, b,
    COUNT(*) OVER w AS n,
    FIRST_VALUE(ts_us) OVER (w ORDER BY ts_us) AS first_ts,
    FIRST_VALUE(equity) OVER (w ORDER BY ts_us) AS first_eq,
    FIRST_VALUE(ts_us) OVER (w ORDER BY equity, ts_us) AS low_ts,
    FIRST_VALUE(equity) OVER (w ORDER BY equity, ts_us) AS low_eq,
    FIRST_VALUE(ts_us) OVER (w ORDER BY equity DESC, ts_us) AS high_ts,
    FIRST_VALUE(equity) OVER (w ORDER BY equity DESC, ts_us) AS high_eq,
    FIRST_VALUE(ts_us) OVER (w ORDER BY ts_us DESC) AS last_ts,
    FIRST_VALUE(equity) OVER (w ORDER BY ts_us DESC) AS last_eq,
    ROW_NUMBER() OVER (w ORDER BY ts_us) AS rn
  FROM (
    SELECT strategy_id, ts_us, equity,
      ts_us - (((ts_us % 3600000000) + 3600000000) % 3600000000) AS b
    FROM performance_points
  ) p
  WINDOW w AS (PARTITION BY strategy_id, b)
) q
WHERE rn = 1;
)sql"},
    {11, "when each performance record was stored, for replays",
     R"sql(
-- NULL for records stored before this version: they count as known from their own time.
ALTER TABLE performance_points ADD COLUMN stored_at_us INTEGER;
ALTER TABLE fills ADD COLUMN stored_at_us INTEGER;
)sql"},
}};

}  // namespace

std::span<const Migration> sqlite_migrations() { return kMigrations; }

}  // namespace qmtl::store
