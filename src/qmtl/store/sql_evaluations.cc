#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "qmtl/store/sql_helpers.h"
#include "qmtl/store/sql_store.h"

namespace qmtl::store {

Result<std::optional<ScheduleState>> SqlStore::get_schedule(std::string_view world_id) {
  std::lock_guard lock(mu_);
  return query_one(
      db_,
      "SELECT world_id, spec, next_run_us, last_run_us, last_run_id, last_error "
      "FROM schedules WHERE world_id = ?",
      [](const Statement& st) {
        ScheduleState s{.world_id = st.column_text(0),
                        .spec = st.column_text(1),
                        .next_run = from_us(st.column_int(2)),
                        .last_error = st.column_text(5)};
        if (!st.column_is_null(3)) s.last_run = from_us(st.column_int(3));
        if (!st.column_is_null(4)) s.last_run_id = st.column_text(4);
        return s;
      },
      world_id);
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
  auto found = found_or(
      query_one(
          db_,
          fmt::format("SELECT {} FROM evaluation_runs WHERE world_id = ? AND id = ?", kRunColumns),
          read_run, world_id, run_id),
      [&] {
        return make_error(ErrorCode::kNotFound,
                          fmt::format("world '{}' has no evaluation run '{}'", world_id, run_id));
      });
  if (!found) return found;
  EvaluationRunRecord& run = *found;
  auto results = load_results(run.id);
  if (!results) return propagate(results);
  run.results = std::move(*results);
  return run;
}

Result<std::vector<EvaluationRunRecord>> SqlStore::list_evaluation_runs(std::string_view world_id,
                                                                        size_t limit,
                                                                        TimePoint since,
                                                                        bool with_detail) {
  std::lock_guard lock(mu_);
  const std::string_view columns =
      with_detail ? kRunColumns : "id, world_id, policy_version, started_at_us, finished_at_us, ''";
  auto st = prepared(
      db_,
      fmt::format("SELECT {}, seq FROM evaluation_runs WHERE world_id = ? AND started_at_us >= ? "
                  "ORDER BY seq DESC LIMIT ?",
                  columns),
      world_id, since, static_cast<int64_t>(limit));
  if (!st) return propagate(st);
  std::vector<EvaluationRunRecord> runs;
  std::vector<int64_t> seqs;  // by run
  int64_t lo = 0, hi = 0;
  for (;;) {
    auto row = st->step();
    if (!row) return propagate(row);
    if (!*row) break;
    runs.push_back(read_run(*st));
    lo = st->column_int(6);  // descending: the last row is the oldest
    seqs.push_back(lo);
    if (runs.size() == 1) hi = lo;
  }
  if (runs.empty()) return runs;
  // Every run's results in one read (not one per run), by the runs' sequence
  // numbers, so a run added meanwhile cannot take another's place. Rows are
  // matched to runs by sequence number (an integer: a replay reads hundreds
  // of thousands) and come a run at a time.
  std::map<int64_t, size_t> index;
  for (size_t i = 0; i < runs.size(); ++i) index[seqs[i]] = i;
  auto res = prepared(db_,
                      "SELECT x.seq, r.strategy_id, r.decision, r.promote_pass, r.out FROM "
                      "evaluation_results r JOIN evaluation_runs x ON r.run_id = x.id WHERE "
                      "x.world_id = ? AND x.seq >= ? AND x.seq <= ?",
                      world_id, lo, hi);
  if (!res) return propagate(res);
  int64_t seq = -1;
  auto it = index.end();
  for (;;) {
    auto row = res->step();
    if (!row) return propagate(row);
    if (!*row) break;
    if (const int64_t s = res->column_int(0); s != seq) {
      seq = s;
      it = index.find(seq);
    }
    if (it == index.end()) continue;  // a run inserted between the two reads
    runs[it->second].results.push_back({.strategy_id = res->column_text(1),
                                        .decision = res->column_text(2),
                                        .promote_pass = res->column_int(3) != 0,
                                        .out = res->column_int(4) != 0});
  }
  const auto by_strategy = [](const auto& a, const auto& b) {
    return a.strategy_id < b.strategy_id;
  };
  for (auto& run : runs) {
    // SQLite gives them in its primary key's order already (a replay reads
    // hundreds of thousands); PostgreSQL may not.
    if (!std::is_sorted(run.results.begin(), run.results.end(), by_strategy)) {
      std::sort(run.results.begin(), run.results.end(), by_strategy);
    }
  }
  return runs;
}

Result<std::optional<TimePoint>> SqlStore::last_evaluation_finished(std::string_view world_id) {
  std::lock_guard lock(mu_);
  return query_one(
      db_,
      "SELECT finished_at_us FROM evaluation_runs WHERE world_id = ? ORDER BY seq DESC LIMIT 1",
      [](const Statement& st) { return from_us(st.column_int(0)); }, world_id);
}

}  // namespace qmtl::store
