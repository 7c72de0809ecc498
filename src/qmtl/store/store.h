// The repository interface behind WorldService, and the factory that opens one
// from a URL.
//
// Every method is one transaction: it either applies completely, audit record
// included, or leaves the store as it was. The store checks referential,
// uniqueness and optimistic-concurrency rules; semantic validation (ids, state
// machines, policies) is the service's job.
//
// Thread safety: implementations are safe to call from several threads at once.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"
#include "qmtl/lifecycle/fsm.h"
#include "qmtl/lifecycle/world_state.h"
#include "qmtl/store/entities.h"

namespace qmtl::store {

class Store {
 public:
  virtual ~Store() = default;

  // Inserts a new world and its CREATE audit record. kAlreadyExists if the id is taken.
  virtual Result<void> insert_world(const World& world, const AuditRecord& audit) = 0;
  // kNotFound if there is no world `id`.
  virtual Result<World> get_world(std::string_view id) = 0;
  // All worlds ordered by id.
  virtual Result<std::vector<World>> list_worlds() = 0;

  // Moves world `id` from `expected` to `next` and appends `audit`. The gates of
  // the world's Live strategies are opened when `next` is Active and closed
  // otherwise; a side closed by hand (manual off) stays closed. When
  // `archive_strategies` is set, every strategy of the world that is not yet
  // Archived is archived too, each with its own audit record and history row,
  // and every queued manual change is dropped (ACTIVATION_DROPPED). Queued
  // changes of a world that resumes are left to the caller
  // (list_queued_activations).
  // kFailedPrecondition if the world is no longer in `expected` (a concurrent change).
  virtual Result<void> set_world_state(std::string_view id, lifecycle::WorldState expected,
                                       lifecycle::WorldState next, TimePoint at,
                                       const AuditRecord& audit, bool archive_strategies) = 0;

  // Appends a new policy version (number = highest + 1), makes it current and
  // records POLICY_ADD. Versions are never edited or deleted.
  virtual Result<PolicyVersion> add_policy_version(std::string_view world_id,
                                                   std::string_view document,
                                                   std::string_view canonical,
                                                   std::string_view checksum, TimePoint at,
                                                   const AuditRecord& audit) = 0;
  // Makes an existing version current (rollback or roll forward); kNotFound if absent.
  virtual Result<void> set_current_policy(std::string_view world_id, int64_t version, TimePoint at,
                                          const AuditRecord& audit) = 0;
  virtual Result<PolicyVersion> get_policy_version(std::string_view world_id, int64_t version) = 0;
  // All versions of a world, oldest first.
  virtual Result<std::vector<PolicyVersion>> list_policy_versions(std::string_view world_id) = 0;

  // Inserts a strategy with its first history row and audit record. kAlreadyExists
  // if the id is taken (strategy ids are global), kNotFound if the world is absent.
  virtual Result<void> insert_strategy(const Strategy& strategy, const AuditRecord& audit) = 0;
  virtual Result<Strategy> get_strategy(std::string_view id) = 0;
  // The strategies of a world ordered by id.
  virtual Result<std::vector<Strategy>> list_strategies(std::string_view world_id) = 0;
  // Moves a strategy from `expected` to `next` (history row + audit record).
  // Its gates follow: open while Live in an Active world, closed otherwise; a
  // strategy leaving Live loses its manual gate marks.
  // kFailedPrecondition if it is no longer in `expected`.
  virtual Result<void> transition_strategy(std::string_view id, lifecycle::StrategyState expected,
                                           lifecycle::StrategyState next, TimePoint at,
                                           const AuditRecord& audit) = 0;

  // Appends performance points and fills of a strategy in one transaction. A
  // point at a timestamp that is already stored (or given earlier in the batch)
  // is a repeat when its equity is the same within kEquityRepeatTolerance, and
  // otherwise a conflict: refused alone, while the rest of the batch is stored.
  // When there are conflicts and `conflict_audit` is given, it is appended in
  // the same transaction with its reason naming them. Fills are not
  // deduplicated: a writer must not send one twice. An error (a bad fill, an
  // unknown strategy) stores nothing.
  // `stored_at` is kept with each new point and fill: when it became known,
  // which is what an evaluation at a given time could read (load_points'
  // `known_at`). Without it a record counts as known from its own time.
  virtual Result<AppendOutcome> append_performance(
      std::string_view strategy_id, std::span<const PerformancePoint> points,
      std::span<const FillRecord> fills, const AuditRecord* conflict_audit = nullptr,
      std::optional<TimePoint> stored_at = std::nullopt) = 0;
  // The newest stored point of a strategy, if any: where a runner resumes.
  virtual Result<std::optional<PerformancePoint>> last_point(std::string_view strategy_id) = 0;
  // Points and fills of a strategy with from <= ts <= to that were stored by
  // `known_at` (TimePoint::max(): all), oldest first.
  virtual Result<std::vector<PerformancePoint>> load_points(
      std::string_view strategy_id, TimePoint from, TimePoint to = TimePoint::max(),
      TimePoint known_at = TimePoint::max()) = 0;
  virtual Result<std::vector<FillRecord>> load_fills(std::string_view strategy_id, TimePoint from,
                                                     TimePoint to = TimePoint::max(),
                                                     TimePoint known_at = TimePoint::max()) = 0;
  // Every point and fill with from <= ts <= to, each with when it was stored
  // (its own time when that was not recorded): what a replay filters by
  // each run's time.
  virtual Result<KnownRecords> load_known_records(std::string_view strategy_id, TimePoint from,
                                                  TimePoint to) = 0;
  // The strategy's hourly rollups whose hour starts in [from, to), oldest
  // first; the points of an hour are all in its row once their append commits.
  virtual Result<std::vector<RollupBucket>> load_rollup(std::string_view strategy_id,
                                                        TimePoint from, TimePoint to) = 0;

  // Stores an evaluation run with its per-strategy rows; returns the run id.
  // With `schedule`, the world's schedule is written in the same transaction
  // (its last_run_id set to the new run): a scheduled evaluation and the
  // advance of its schedule commit together, so a crash neither repeats nor
  // skips it.
  virtual Result<std::string> insert_evaluation_run(
      const EvaluationRunRecord& run, const AuditRecord& audit,
      const std::optional<ScheduleState>& schedule) = 0;

  // The world's alert webhook, if one is set.
  virtual Result<std::optional<AlertHook>> get_alert_hook(std::string_view world_id) = 0;
  // Sets (or, with an empty url, removes) the world's webhook and records
  // `audit`. kNotFound if the world is absent.
  virtual Result<void> put_alert_hook(const AlertHook& hook, const AuditRecord& audit) = 0;

  // The world's settings of `kind`, if set.
  virtual Result<std::optional<WorldSetting>> get_world_setting(std::string_view world_id,
                                                                std::string_view kind) = 0;
  // Sets (or, with an empty doc, removes) them and records `audit`. kNotFound
  // if the world is absent.
  virtual Result<void> put_world_setting(const WorldSetting& setting, const AuditRecord& audit) = 0;

  // Ends a strategy's validation in one transaction: stores `v` with its
  // records (replacing an earlier one of the strategy), moves the strategy from
  // Validating to `next` (history row) and appends `audit`.
  // kFailedPrecondition if the strategy is no longer Validating.
  virtual Result<void> finish_validation(const ValidationRecord& v, lifecycle::StrategyState next,
                                         const AuditRecord& audit) = 0;
  // The strategy's validation, records included only when `with_records`.
  virtual Result<std::optional<ValidationRecord>> get_validation(std::string_view strategy_id,
                                                                 bool with_records) = 0;

  // The world's schedule, or nullopt before the scheduler first saw it.
  virtual Result<std::optional<ScheduleState>> get_schedule(std::string_view world_id) = 0;
  // Inserts or replaces the world's schedule; kNotFound if the world is absent.
  virtual Result<void> put_schedule(const ScheduleState& schedule) = 0;
  virtual Result<EvaluationRunRecord> get_evaluation_run(std::string_view world_id,
                                                         std::string_view run_id) = 0;
  // The newest `limit` runs of a world started at or after `since`, newest
  // first (results included).
  // Each run's results are sorted by strategy id (bytewise, whatever the
  // database's collation). Without `with_detail` the runs' `detail` is left empty (it is most of a
  // run's size; the hysteresis and replays read only the results).
  virtual Result<std::vector<EvaluationRunRecord>> list_evaluation_runs(
      std::string_view world_id, size_t limit, TimePoint since = TimePoint::min(),
      bool with_detail = true) = 0;
  // When the world's newest evaluation run finished; nullopt before the first.
  // One indexed read, without the results (for /metrics at every scrape).
  virtual Result<std::optional<TimePoint>> last_evaluation_finished(std::string_view world_id) = 0;

  // An operator's manual activation of one strategy side: sets the gate and
  // records the override (manual on/off). kVersionMismatch when
  // `expected_version` is given and the entry has another version (If-Match);
  // kNotFound when the strategy is not in the world. With `dequeue_seq`, that
  // queued change is removed in the same transaction.
  virtual Result<Activation> set_manual_activation(
      std::string_view world_id, std::string_view strategy_id, std::string_view side, bool active,
      std::optional<int64_t> expected_version, TimePoint at, const AuditRecord& audit,
      std::optional<int64_t> dequeue_seq = std::nullopt) = 0;
  // Queues a manual change (q.seq is assigned) for when a Paused world resumes.
  virtual Result<void> queue_activation(const QueuedActivation& q, const AuditRecord& audit) = 0;
  // The world's queued changes, oldest first.
  virtual Result<std::vector<QueuedActivation>> list_queued_activations(
      std::string_view world_id) = 0;
  // Removes queued change `seq` without carrying it out, recording `audit`
  // (ACTIVATION_DROPPED and why). kNotFound if it is not queued any more.
  virtual Result<void> drop_queued_activation(int64_t seq, const AuditRecord& audit) = 0;

  // Activation entries of a world ordered by strategy and side.
  virtual Result<std::vector<Activation>> list_activations(std::string_view world_id) = 0;

  // Two-phase apply, one transaction per phase (docs/development.md, the store):
  //  freeze: journal the run (phase Frozen) and freeze the gates of every strategy
  //          entering or leaving live; kAlreadyExists if the run was applied before.
  //          A manual entry with an empty run_id gets the next "<world>-m<n>".
  //          Returns the run id.
  //  switch: move promoted strategies DryRun -> Live and demoted Live -> DryRun
  //          (history + audit with the run id), open or close their gates; a
  //          strategy no longer in the expected state is skipped with an audit note.
  //  finish: unfreeze and mark Done (or RolledBack when rolling back a Frozen run).
  // Freeze and switch refuse (kFailedPrecondition, nothing written) when the
  // entry has a basis the world no longer matches: another policy version is
  // current, or another set of strategies is Live.
  virtual Result<std::string> apply_freeze(const ApplyJournalEntry& entry,
                                           const AuditRecord& audit) = 0;
  virtual Result<void> apply_switch(std::string_view run_id, TimePoint at,
                                    const AuditRecord& audit) = 0;
  virtual Result<void> apply_finish(std::string_view run_id, ApplyPhase final_phase, TimePoint at,
                                    const AuditRecord& audit) = 0;
  virtual Result<std::optional<ApplyJournalEntry>> get_apply(std::string_view run_id) = 0;
  // Journal entries not yet Done or RolledBack (left by a crash).
  virtual Result<std::vector<ApplyJournalEntry>> unfinished_applies() = 0;

  // Appends a record that goes with no other change (e.g. a runner's report
  // of the orders a hand-over caused). kNotFound if the world is absent.
  virtual Result<void> insert_audit(const AuditRecord& audit) = 0;

  // The audit log of a world with seq > after_seq, oldest first, at most `limit`.
  virtual Result<std::vector<AuditRecord>> list_audit(std::string_view world_id, int64_t after_seq,
                                                      size_t limit) = 0;

  // The records of the world's strategies (entity "strategy"), of one strategy
  // when `strategy_id` is not empty, oldest first: their state changes among
  // them (before and after are state names).
  virtual Result<std::vector<AuditRecord>> list_strategy_audit(std::string_view world_id,
                                                               std::string_view strategy_id) = 0;

  // The newest audit record of the world about `entity` `entity_id` whose
  // event is `event` or `or_event` (e.g. a strategy's last PROMOTE or DEMOTE),
  // nullopt when there is none.
  virtual Result<std::optional<AuditRecord>> last_audit(std::string_view world_id,
                                                        std::string_view entity,
                                                        std::string_view entity_id,
                                                        std::string_view event,
                                                        std::string_view or_event) = 0;

  // The highest audit seq of a world (0 when it has none). Seqs are assigned in
  // commit order, so records with a greater seq are newer than this read.
  virtual Result<int64_t> last_audit_seq(std::string_view world_id) = 0;

  // Whether several servers may share this database (PostgreSQL): then what
  // one server caches another may change.
  virtual bool shared() const = 0;

  // Several servers on one database (PostgreSQL replicas) coordinate here.
  // SQLite serves one server per file: there every claim succeeds at once.
  //
  // claim_apply: true when this process now owns the applies of `world_id`
  // until release_apply, false while another live process owns them. Ownership
  // ends with the owner's database session, so a crashed owner's applies can be
  // recovered at once. Claims nest; each successful claim needs one release.
  virtual Result<bool> claim_apply(std::string_view world_id) = 0;
  virtual void release_apply(std::string_view world_id) = 0;
  // Whether this process leads the scheduler of the database, taking the
  // leadership when it is free. Once taken it is kept until this process's
  // session ends (exit, crash, or a lost connection), when another server's
  // next call takes it. Call it before each scheduler pass.
  virtual Result<bool> lead_scheduler() = 0;

  // The schema version the store is at (the highest applied migration).
  virtual Result<int> schema_version() = 0;
  // A short description for logs, e.g. "sqlite:/var/lib/qmtl/qmtl.db".
  virtual std::string describe() const = 0;
};

// Opens the store named by `url` and brings its schema up to date:
//   sqlite:PATH        embedded SQLite file (created if missing)
//   sqlite::memory:    private in-memory database (tests)
//   postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]
//                      PostgreSQL (also postgresql://; libpq's URI syntax;
//                      the password is better kept in PGPASSWORD or ~/.pgpass)
// A database whose schema is newer than this build is refused, not touched.
Result<std::unique_ptr<Store>> open_store(std::string_view url);

}  // namespace qmtl::store
