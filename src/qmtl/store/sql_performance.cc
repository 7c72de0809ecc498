#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>

#include "qmtl/store/sql_helpers.h"
#include "qmtl/store/sql_store.h"

namespace qmtl::store {

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
                                                   const AuditRecord* conflict_audit,
                                                   std::optional<TimePoint> stored_at) {
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
    if (auto r = append_performance_batched(strategy_id, points, fills, stored_at, out); !r) {
      return propagate(r);
    }
    return finish();
  }
  // One prepared statement per table, re-bound per row: this is the ingest path.
  auto ins =
      prepared(db_,
               "INSERT INTO performance_points (strategy_id, ts_us, equity, stored_at_us) VALUES "
               "(?, ?, ?, ?) ON CONFLICT (strategy_id, ts_us) DO NOTHING");
  if (!ins) return propagate(ins);
  auto same =
      prepared(db_, "SELECT equity FROM performance_points WHERE strategy_id = ? AND ts_us = ?");
  if (!same) return propagate(same);
  std::vector<PerformancePoint> stored;
  for (const auto& p : points) {
    ins->reset();
    if (auto r = bind_one(*ins, 1, strategy_id); !r) return propagate(r);
    if (auto r = bind_one(*ins, 2, p.ts); !r) return propagate(r);
    if (auto r = ins->bind(3, p.equity); !r) return propagate(r);
    if (auto r = bind_one(*ins, 4, stored_at); !r) return propagate(r);
    if (auto r = ins->run(); !r) return propagate(r);
    if (db_.changes() == 1) {
      ++out.points_stored;
      stored.push_back(p);
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
                       "INSERT INTO fills (strategy_id, ts_us, symbol, side, qty, price, fee, "
                       "stored_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  if (!fill) return propagate(fill);
  for (const auto& f : fills) {
    fill->reset();
    if (auto r = bind_one(*fill, 1, strategy_id); !r) return propagate(r);
    if (auto r = bind_fill(*fill, 2, f); !r) return propagate(r);
    if (auto r = bind_one(*fill, 8, stored_at); !r) return propagate(r);
    if (auto r = fill->run(); !r) return propagate(r);
  }
  std::sort(out.conflicts.begin(), out.conflicts.end(),
            [](const auto& x, const auto& y) { return x.ts < y.ts; });
  if (auto r = fold_rollup(strategy_id, stored); !r) return propagate(r);
  return finish();
}

namespace {

// Folds the hour's new points into its stored row: counts add, and the first,
// lowest, highest and last point of the two are kept (the earlier on a tie),
// so the row is what recomputing the hour from all its points would give.
constexpr std::string_view kFoldRollup =
    "INSERT INTO performance_rollup AS r (strategy_id, bucket_us, n, first_ts_us, first_eq, "
    "low_ts_us, low_eq, high_ts_us, high_eq, last_ts_us, last_eq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (strategy_id, bucket_us) DO UPDATE SET n = r.n + excluded.n, "
    "first_ts_us = CASE WHEN excluded.first_ts_us < r.first_ts_us THEN excluded.first_ts_us "
    "ELSE r.first_ts_us END, "
    "first_eq = CASE WHEN excluded.first_ts_us < r.first_ts_us THEN excluded.first_eq "
    "ELSE r.first_eq END, "
    "low_ts_us = CASE WHEN excluded.low_eq < r.low_eq OR (excluded.low_eq = r.low_eq AND "
    "excluded.low_ts_us < r.low_ts_us) THEN excluded.low_ts_us ELSE r.low_ts_us END, "
    "low_eq = CASE WHEN excluded.low_eq < r.low_eq THEN excluded.low_eq ELSE r.low_eq END, "
    "high_ts_us = CASE WHEN excluded.high_eq > r.high_eq OR (excluded.high_eq = r.high_eq AND "
    "excluded.high_ts_us < r.high_ts_us) THEN excluded.high_ts_us ELSE r.high_ts_us END, "
    "high_eq = CASE WHEN excluded.high_eq > r.high_eq THEN excluded.high_eq ELSE r.high_eq END, "
    "last_ts_us = CASE WHEN excluded.last_ts_us > r.last_ts_us THEN excluded.last_ts_us "
    "ELSE r.last_ts_us END, "
    "last_eq = CASE WHEN excluded.last_ts_us > r.last_ts_us THEN excluded.last_eq "
    "ELSE r.last_eq END";

// The rollups of `points` alone, by hour.
std::vector<RollupBucket> buckets_of(std::span<const PerformancePoint> points) {
  std::vector<PerformancePoint> sorted(points.begin(), points.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.ts < b.ts; });
  std::vector<RollupBucket> out;
  for (const auto& p : sorted) {
    const TimePoint hour = rollup_start(p.ts);
    if (out.empty() || out.back().start != hour) {
      out.push_back({.start = hour, .n = 0, .first = p, .low = p, .high = p, .last = p});
    }
    auto& b = out.back();
    ++b.n;
    if (p.equity < b.low.equity) b.low = p;
    if (p.equity > b.high.equity) b.high = p;
    b.last = p;
  }
  return out;
}

}  // namespace

Result<void> SqlStore::fold_rollup(std::string_view strategy_id,
                                   std::span<const PerformancePoint> stored) {
  if (stored.empty()) return {};
  auto st = prepared(db_, kFoldRollup);
  if (!st) return propagate(st);
  for (const auto& b : buckets_of(stored)) {
    st->reset();
    int i = 0;
    Result<void> ok = bind_one(*st, ++i, strategy_id);
    if (ok) ok = bind_one(*st, ++i, b.start);
    if (ok) ok = st->bind(++i, b.n);
    for (const auto* p : {&b.first, &b.low, &b.high, &b.last}) {
      if (ok) ok = bind_one(*st, ++i, p->ts);
      if (ok) ok = st->bind(++i, p->equity);
    }
    if (!ok) return ok;
    if (auto r = st->run(); !r) return r;
  }
  return {};
}

Result<std::vector<RollupBucket>> SqlStore::load_rollup(std::string_view strategy_id,
                                                        TimePoint from, TimePoint to) {
  std::lock_guard lock(mu_);
  auto st = prepared(db_,
                     "SELECT bucket_us, n, first_ts_us, first_eq, low_ts_us, low_eq, high_ts_us, "
                     "high_eq, last_ts_us, last_eq FROM performance_rollup WHERE strategy_id = ? "
                     "AND bucket_us >= ? AND bucket_us < ? ORDER BY bucket_us",
                     strategy_id, from, to);
  if (!st) return propagate(st);
  return collect(*st, [](const Statement& r) {
    auto point = [&](int col) {
      return PerformancePoint{from_us(r.column_int(col)), r.column_double(col + 1)};
    };
    return RollupBucket{.start = from_us(r.column_int(0)),
                        .n = r.column_int(1),
                        .first = point(2),
                        .low = point(4),
                        .high = point(6),
                        .last = point(8)};
  });
}

Result<std::optional<PerformancePoint>> SqlStore::last_point(std::string_view strategy_id) {
  std::lock_guard lock(mu_);
  return query_one(
      db_,
      "SELECT ts_us, equity FROM performance_points WHERE strategy_id = ? ORDER BY "
      "ts_us DESC LIMIT 1",
      [](const Statement& st) {
        return PerformancePoint{.ts = from_us(st.column_int(0)), .equity = st.column_double(1)};
      },
      strategy_id);
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
                                                  std::optional<TimePoint> stored_at,
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
    auto ins = prepared(db_,
                        "INSERT INTO performance_points (strategy_id, ts_us, equity, "
                        "stored_at_us) SELECT ?1, ts_us, equity, ?4::bigint FROM "
                        "unnest(?2::bigint[], ?3::float8[]) WITH ORDINALITY AS i (ts_us, equity, "
                        "n) ORDER BY n ON CONFLICT (strategy_id, ts_us) DO NOTHING RETURNING "
                        "ts_us, equity",
                        strategy_id, ts, eq, stored_at);
    if (!ins) return propagate(ins);
    auto stored = collect(*ins, [](const Statement& r) {
      return PerformancePoint{from_us(r.column_int(0)), r.column_double(1)};
    });
    if (!stored) return propagate(stored);
    if (auto r = fold_rollup(strategy_id, *stored); !r) return r;
    out.points_stored = stored->size();
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
        "INSERT INTO fills (strategy_id, ts_us, symbol, side, qty, price, fee, stored_at_us) "
        "SELECT ?1, *, ?8::bigint FROM unnest(?2::bigint[], ?3::text[], ?4::text[], "
        "?5::float8[], ?6::float8[], ?7::float8[])",
        strategy_id, col([](std::string& o, const FillRecord& f) {
          fmt::format_to(std::back_inserter(o), "{}", to_us(f.ts));
        }),
        col([](std::string& o, const FillRecord& f) { append_quoted(o, f.symbol); }),
        col([](std::string& o, const FillRecord& f) { append_quoted(o, f.side); }),
        col([](std::string& o, const FillRecord& f) { append_double(o, f.qty); }),
        col([](std::string& o, const FillRecord& f) { append_double(o, f.price); }),
        col([](std::string& o, const FillRecord& f) { append_double(o, f.fee); }), stored_at);
    if (!st) return propagate(st);
    if (auto r = st->run(); !r) return r;
  }
  return {};
}

namespace {

// "" or the condition that keeps what was stored by `known_at` (a bound
// parameter after the others).
std::string_view known_by(TimePoint known_at) {
  return known_at == TimePoint::max() ? "" : " AND COALESCE(stored_at_us, ts_us) <= ?";
}

}  // namespace

Result<std::vector<PerformancePoint>> SqlStore::load_points(std::string_view strategy_id,
                                                            TimePoint from, TimePoint to,
                                                            TimePoint known_at) {
  std::lock_guard lock(mu_);
  const std::string sql = fmt::format(
      "SELECT ts_us, equity FROM performance_points WHERE strategy_id = ? AND ts_us >= ? AND "
      "ts_us <= ?{} ORDER BY ts_us",
      known_by(known_at));
  auto st = known_at == TimePoint::max() ? prepared(db_, sql, strategy_id, from, to)
                                         : prepared(db_, sql, strategy_id, from, to, known_at);
  if (!st) return propagate(st);
  return collect(*st, [](const Statement& r) {
    return PerformancePoint{from_us(r.column_int(0)), r.column_double(1)};
  });
}

Result<std::vector<FillRecord>> SqlStore::load_fills(std::string_view strategy_id, TimePoint from,
                                                     TimePoint to, TimePoint known_at) {
  std::lock_guard lock(mu_);
  const std::string sql = fmt::format(
      "SELECT ts_us, symbol, side, qty, price, fee FROM fills WHERE strategy_id = ? AND ts_us >= "
      "? AND ts_us <= ?{} ORDER BY ts_us, seq",
      known_by(known_at));
  auto st = known_at == TimePoint::max() ? prepared(db_, sql, strategy_id, from, to)
                                         : prepared(db_, sql, strategy_id, from, to, known_at);
  if (!st) return propagate(st);
  return collect(*st, read_fill);
}

Result<KnownRecords> SqlStore::load_known_records(std::string_view strategy_id, TimePoint from,
                                                  TimePoint to) {
  std::lock_guard lock(mu_);
  KnownRecords out;
  auto points = prepared(db_,
                         "SELECT ts_us, equity, COALESCE(stored_at_us, ts_us) FROM "
                         "performance_points WHERE strategy_id = ? AND ts_us >= ? AND ts_us <= ? "
                         "ORDER BY ts_us",
                         strategy_id, from, to);
  if (!points) return propagate(points);
  for (;;) {
    auto row = points->step();
    if (!row) return propagate(row);
    if (!*row) break;
    out.points.push_back({from_us(points->column_int(0)), points->column_double(1)});
    out.points_known_at.push_back(from_us(points->column_int(2)));
  }
  auto fills = prepared(db_,
                        "SELECT ts_us, symbol, side, qty, price, fee, COALESCE(stored_at_us, "
                        "ts_us) FROM fills WHERE strategy_id = ? AND ts_us >= ? AND ts_us <= ? "
                        "ORDER BY ts_us, seq",
                        strategy_id, from, to);
  if (!fills) return propagate(fills);
  for (;;) {
    auto row = fills->step();
    if (!row) return propagate(row);
    if (!*row) break;
    out.fills.push_back(read_fill(*fills));
    out.fills_known_at.push_back(from_us(fills->column_int(6)));
  }
  return out;
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

}  // namespace qmtl::store
