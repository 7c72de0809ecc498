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

namespace qmtl::store {

struct World {
  std::string id;
  std::string name;
  lifecycle::WorldState state = lifecycle::WorldState::kActive;
  std::optional<int64_t> policy_version;  // the current version; none until a policy is set
  TimePoint created_at;
  TimePoint updated_at;

  friend bool operator==(const World&, const World&) = default;
};

// One line of the audit log: who did what to which object, from which state to
// which, and why. `seq` is assigned by the store and strictly increasing.
struct AuditRecord {
  int64_t seq = 0;
  TimePoint at;
  std::string actor;
  std::string world_id;
  std::string entity;     // "world", "policy", "strategy"
  std::string entity_id;  // world id, policy version, strategy id
  std::string event;      // e.g. "CREATE", "PAUSE", "PROMOTE", "POLICY_ADD"
  std::optional<std::string> before;
  std::optional<std::string> after;
  std::string reason;
  std::optional<std::string> run_id;

  friend bool operator==(const AuditRecord&, const AuditRecord&) = default;
};

// An immutable policy version of a world.
struct PolicyVersion {
  std::string world_id;
  int64_t version = 0;
  std::string document;   // as submitted
  std::string canonical;  // normalised form the engine evaluates
  std::string checksum;   // sha256 of canonical
  TimePoint created_at;

  friend bool operator==(const PolicyVersion&, const PolicyVersion&) = default;
};

struct Strategy {
  std::string id;
  std::string world_id;
  lifecycle::StrategyState state = lifecycle::StrategyState::kSubmitted;
  TimePoint state_since;
  std::string spec;  // the declarative strategy, as submitted (JSON)
  TimePoint created_at;

  friend bool operator==(const Strategy&, const Strategy&) = default;
};

// One equity observation of a strategy (backtest, paper or live: same shape).
struct PerformancePoint {
  TimePoint ts;
  double equity = 0;
  friend bool operator==(const PerformancePoint&, const PerformancePoint&) = default;
};

// One execution reported by a broker.
struct FillRecord {
  TimePoint ts;
  std::string symbol;
  std::string side;  // "buy" or "sell"
  double qty = 0;    // > 0
  double price = 0;  // > 0
  double fee = 0;
  friend bool operator==(const FillRecord&, const FillRecord&) = default;
};

// Two equities of one point are the same record when they differ by at most
// this much, relative to the larger: a runner that recomputes its history
// after a restart may differ in the last bits (100004.09999999996 against
// ...98), which is a repeat, not a conflict.
inline constexpr double kEquityRepeatTolerance = 1e-9;

// A point offered at a time that already holds another equity (beyond the
// tolerance): refused, with both values.
struct PointConflict {
  TimePoint ts;
  double stored = 0;
  double offered = 0;
  friend bool operator==(const PointConflict&, const PointConflict&) = default;
};

// What append_performance did with a batch.
struct AppendOutcome {
  size_t points_stored = 0;    // new points
  size_t points_repeated = 0;  // already stored with the same equity (within the tolerance)
  size_t fills_stored = 0;
  std::vector<PointConflict> conflicts;  // refused points, oldest first
};

// What one evaluation decided for one strategy; the hysteresis of later runs
// reads `promote_pass` and `out`.
struct EvaluationResultRow {
  std::string strategy_id;
  std::string decision;
  bool promote_pass = false;
  bool out = false;
};

struct EvaluationRunRecord {
  std::string id;  // assigned by the store: "<world>-<n>"
  std::string world_id;
  int64_t policy_version = 0;
  TimePoint started_at;
  TimePoint finished_at;
  std::string detail;  // the run as JSON (SPEC §6 shape)
  std::vector<EvaluationResultRow> results;
};

// The activation gate of one strategy side in a world (SPEC §6): orders go out
// only while `active` and not `frozen`. `version` changes on every write (ETag).
struct Activation {
  std::string world_id;
  std::string strategy_id;
  std::string side;  // "long" or "short"
  bool active = false;
  double weight = 1.0;
  bool frozen = false;
  int64_t version = 0;
  TimePoint updated_at;
  std::optional<bool> manual;  // an operator's override in force: true = on, false = off
  friend bool operator==(const Activation&, const Activation&) = default;
};

// A world's evaluation schedule: when the next scheduled evaluation is due,
// and what the last one did. `spec` is the schedule the times were computed
// from ("every 1d", "cron 0 0 * * 1"); a policy with another one starts afresh.
struct ScheduleState {
  std::string world_id;
  std::string spec;
  TimePoint next_run;
  std::optional<TimePoint> last_run;       // when the last scheduled evaluation was due
  std::optional<std::string> last_run_id;  // its run (set by insert_evaluation_run)
  std::string last_error;                  // why the last scheduled evaluation failed; "" if not
  friend bool operator==(const ScheduleState&, const ScheduleState&) = default;
};

// Where a world's alerts go: a webhook URL (may embed a secret, e.g. Slack's)
// and the kinds of events that are sent ("promote", "demote", "reject",
// "failure").
struct AlertHook {
  std::string world_id;
  std::string url;
  std::vector<std::string> events;
  TimePoint updated_at;
  friend bool operator==(const AlertHook&, const AlertHook&) = default;
};

// A world's settings of one kind, as a JSON object the world service
// validated: "execution" (how the server validates and runs its strategies),
// "broker" (its live broker connection; names of secrets, never secrets).
struct WorldSetting {
  std::string world_id;
  std::string kind;
  std::string doc;
  TimePoint updated_at;
  friend bool operator==(const WorldSetting&, const WorldSetting&) = default;
};

// The validation backtest of a strategy (SPEC §3 Validating): its outcome, why,
// and the performance records the backtest made. Kept apart from the records
// of dry-run and live trading, which the evaluation reads: a backtest's equity
// over history must not blend into the equity a strategy earns in real time.
struct ValidationRecord {
  std::string strategy_id;
  std::string world_id;
  std::string outcome;  // "passed", "rejected" (the reject gate) or "failed" (the run)
  std::string reason;
  std::string detail;  // JSON: metrics, reject clauses, bars, time range
  TimePoint started_at;
  TimePoint finished_at;
  std::vector<PerformancePoint> points;
  std::vector<FillRecord> fills;
  friend bool operator==(const ValidationRecord&, const ValidationRecord&) = default;
};

// Where a two-phase apply of an evaluation run stands.
enum class ApplyPhase { kFrozen, kSwitched, kDone, kRolledBack };
std::string_view apply_phase_name(ApplyPhase p);

// What an apply was decided on: the world's current policy version and its
// Live strategies at the time. The caps of the policy (top_k, per_group) were
// checked against exactly this live set, so an apply switches only while the
// world still matches it (checked in the freeze and the switch transactions).
struct ApplyBasis {
  int64_t policy_version = 0;     // 0: the world had no policy
  std::vector<std::string> live;  // sorted ids
  friend bool operator==(const ApplyBasis&, const ApplyBasis&) = default;
};

struct ApplyJournalEntry {
  std::string run_id;  // the evaluation run, or "<world>-m<n>" for a manual change
  std::string world_id;
  ApplyPhase phase = ApplyPhase::kFrozen;
  std::vector<std::string> promote;  // DryRun -> Live
  std::vector<std::string> demote;   // Live -> DryRun
  TimePoint started_at;
  TimePoint updated_at;
  // "evaluation" (the decisions of run `run_id`) or "manual" (an operator's
  // promotion or demotion: the switch marks the gates as manual instead of
  // clearing the marks).
  std::string kind = "evaluation";
  // Manual promotion of one side only (an activation override): that side
  // opens, the other stays closed (marked manual off).
  std::optional<std::string> only_side;
  std::optional<ApplyBasis> basis;  // none: not checked (entries from before it existed)
  // Not stored: the queued manual change (QueuedActivation::seq) this apply
  // carries out; removed from the queue in the freeze transaction.
  std::optional<int64_t> dequeue_seq;
};

// A manual change asked for while the world was Paused, carried out when it
// resumes (in `seq` order). `action` is "gate" (set one side's gate), "promote"
// or "demote" (side unused).
struct QueuedActivation {
  int64_t seq = 0;
  std::string world_id;
  std::string strategy_id;
  std::string side;
  bool active = false;
  std::string action = "gate";
  bool forced = false;
  std::string actor;
  std::string reason;
  TimePoint at;
  friend bool operator==(const QueuedActivation&, const QueuedActivation&) = default;
};

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
  virtual Result<AppendOutcome> append_performance(std::string_view strategy_id,
                                                   std::span<const PerformancePoint> points,
                                                   std::span<const FillRecord> fills,
                                                   const AuditRecord* conflict_audit = nullptr) = 0;
  // The newest stored point of a strategy, if any: where a runner resumes.
  virtual Result<std::optional<PerformancePoint>> last_point(std::string_view strategy_id) = 0;
  // Points and fills of a strategy with ts >= from, oldest first.
  virtual Result<std::vector<PerformancePoint>> load_points(std::string_view strategy_id,
                                                            TimePoint from) = 0;
  virtual Result<std::vector<FillRecord>> load_fills(std::string_view strategy_id,
                                                     TimePoint from) = 0;

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
  virtual Result<std::vector<EvaluationRunRecord>> list_evaluation_runs(
      std::string_view world_id, size_t limit, TimePoint since = TimePoint::min()) = 0;
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

  // Two-phase apply, one transaction per phase (SPEC §6):
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
