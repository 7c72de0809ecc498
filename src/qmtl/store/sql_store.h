// The Store on a SQL database: SQLite (the embedded default) or PostgreSQL.
//
// One implementation for both: the queries are written in the SQL both accept
// and run through SqlDb; only the schema (the migrations) is written per
// dialect, with the same versions and the same tables, columns and rules.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "qmtl/store/sql_db.h"
#include "qmtl/store/store.h"

namespace qmtl::store {

// The migrations SqlStore knows, as (version, SQL), one list per dialect with
// the same versions and descriptions. Applied in order, each in its own
// transaction together with its row in schema_migrations.
struct Migration {
  int version;
  std::string_view description;
  std::string_view sql;
};
std::span<const Migration> sqlite_migrations();
std::span<const Migration> postgres_migrations();

// Opens the SQL connection `url` names (see open_store()) without touching
// its schema: for tools and tests that read or check the database directly.
Result<std::unique_ptr<SqlDb>> open_sql_db(std::string_view url);

class SqlStore final : public Store {
 public:
  // Takes over `db` and applies pending migrations. See open_store().
  static Result<std::unique_ptr<SqlStore>> open(std::unique_ptr<SqlDb> db);

  Result<void> insert_world(const World& world, const AuditRecord& audit) override;
  Result<World> get_world(std::string_view id) override;
  Result<std::vector<World>> list_worlds() override;
  Result<void> set_world_state(std::string_view id, lifecycle::WorldState expected,
                               lifecycle::WorldState next, TimePoint at, const AuditRecord& audit,
                               bool archive_strategies) override;
  Result<PolicyVersion> add_policy_version(std::string_view world_id, std::string_view document,
                                           std::string_view canonical, std::string_view checksum,
                                           TimePoint at, const AuditRecord& audit) override;
  Result<void> set_current_policy(std::string_view world_id, int64_t version, TimePoint at,
                                  const AuditRecord& audit) override;
  Result<PolicyVersion> get_policy_version(std::string_view world_id, int64_t version) override;
  Result<std::vector<PolicyVersion>> list_policy_versions(std::string_view world_id) override;
  Result<void> insert_strategy(const Strategy& strategy, const AuditRecord& audit) override;
  Result<Strategy> get_strategy(std::string_view id) override;
  Result<std::vector<Strategy>> list_strategies(std::string_view world_id) override;
  Result<void> transition_strategy(std::string_view id, lifecycle::StrategyState expected,
                                   lifecycle::StrategyState next, TimePoint at,
                                   const AuditRecord& audit) override;
  Result<AppendOutcome> append_performance(std::string_view strategy_id,
                                           std::span<const PerformancePoint> points,
                                           std::span<const FillRecord> fills,
                                           const AuditRecord* conflict_audit,
                                           std::optional<TimePoint> stored_at) override;
  Result<std::optional<PerformancePoint>> last_point(std::string_view strategy_id) override;
  Result<std::vector<PerformancePoint>> load_points(std::string_view strategy_id, TimePoint from,
                                                    TimePoint to, TimePoint known_at) override;
  Result<std::vector<FillRecord>> load_fills(std::string_view strategy_id, TimePoint from,
                                             TimePoint to, TimePoint known_at) override;
  Result<KnownRecords> load_known_records(std::string_view strategy_id, TimePoint from,
                                          TimePoint to) override;
  Result<std::vector<RollupBucket>> load_rollup(std::string_view strategy_id, TimePoint from,
                                                TimePoint to) override;
  Result<std::optional<AlertHook>> get_alert_hook(std::string_view world_id) override;
  Result<void> put_alert_hook(const AlertHook& hook, const AuditRecord& audit) override;
  Result<std::optional<WorldSetting>> get_world_setting(std::string_view world_id,
                                                        std::string_view kind) override;
  Result<void> put_world_setting(const WorldSetting& setting, const AuditRecord& audit) override;
  Result<void> finish_validation(const ValidationRecord& v, lifecycle::StrategyState next,
                                 const AuditRecord& audit) override;
  Result<std::optional<ValidationRecord>> get_validation(std::string_view strategy_id,
                                                         bool with_records) override;
  Result<std::optional<ScheduleState>> get_schedule(std::string_view world_id) override;
  Result<void> put_schedule(const ScheduleState& schedule) override;
  Result<std::string> insert_evaluation_run(const EvaluationRunRecord& run,
                                            const AuditRecord& audit,
                                            const std::optional<ScheduleState>& schedule) override;
  Result<EvaluationRunRecord> get_evaluation_run(std::string_view world_id,
                                                 std::string_view run_id) override;
  Result<std::vector<EvaluationRunRecord>> list_evaluation_runs(std::string_view world_id,
                                                                size_t limit, TimePoint since,
                                                                bool with_detail) override;
  Result<std::vector<Activation>> list_activations(std::string_view world_id) override;
  Result<Activation> set_manual_activation(std::string_view world_id, std::string_view strategy_id,
                                           std::string_view side, bool active,
                                           std::optional<int64_t> expected_version, TimePoint at,
                                           const AuditRecord& audit,
                                           std::optional<int64_t> dequeue_seq) override;
  Result<void> queue_activation(const QueuedActivation& q, const AuditRecord& audit) override;
  Result<std::vector<QueuedActivation>> list_queued_activations(std::string_view world_id) override;
  Result<void> drop_queued_activation(int64_t seq, const AuditRecord& audit) override;
  Result<std::string> apply_freeze(const ApplyJournalEntry& entry,
                                   const AuditRecord& audit) override;
  Result<void> apply_switch(std::string_view run_id, TimePoint at,
                            const AuditRecord& audit) override;
  Result<void> apply_finish(std::string_view run_id, ApplyPhase final_phase, TimePoint at,
                            const AuditRecord& audit) override;
  Result<std::optional<ApplyJournalEntry>> get_apply(std::string_view run_id) override;
  Result<std::vector<ApplyJournalEntry>> unfinished_applies() override;
  Result<int64_t> last_audit_seq(std::string_view world_id) override;
  Result<std::optional<TimePoint>> last_evaluation_finished(std::string_view world_id) override;
  Result<void> insert_audit(const AuditRecord& audit) override;
  Result<std::optional<AuditRecord>> last_audit(std::string_view world_id, std::string_view entity,
                                                std::string_view entity_id, std::string_view event,
                                                std::string_view or_event) override;
  Result<std::vector<AuditRecord>> list_strategy_audit(std::string_view world_id,
                                                       std::string_view strategy_id) override;
  Result<std::vector<AuditRecord>> list_audit(std::string_view world_id, int64_t after_seq,
                                              size_t limit) override;
  bool shared() const override { return db_.dialect() == SqlDialect::kPostgres; }
  Result<bool> claim_apply(std::string_view world_id) override;
  void release_apply(std::string_view world_id) override;
  Result<bool> lead_scheduler() override;
  Result<int> schema_version() override;
  std::string describe() const override { return db_.describe(); }

 private:
  explicit SqlStore(std::unique_ptr<SqlDb> db) : owned_db_(std::move(db)), db_(*owned_db_) {}
  Result<void> migrate();
  // Callers hold mu_ and an open transaction.
  Result<void> append_audit(const AuditRecord& a);
  Result<void> append_history(std::string_view strategy_id,
                              std::optional<lifecycle::StrategyState> from,
                              lifecycle::StrategyState to, std::string_view event, TimePoint at);
  Result<World> get_world_locked(std::string_view id);
  Result<void> transition_strategy_locked(std::string_view id, lifecycle::StrategyState expected,
                                          lifecycle::StrategyState next, TimePoint at,
                                          const AuditRecord& audit);
  Result<void> write_schedule_locked(const ScheduleState& s);
  // PostgreSQL's ingest path: a statement per table and batch.
  // Adds newly stored points to their hours' rollups (mu_ held, in a transaction).
  Result<void> fold_rollup(std::string_view strategy_id, std::span<const PerformancePoint> stored);
  Result<void> append_performance_batched(std::string_view strategy_id,
                                          std::span<const PerformancePoint> points,
                                          std::span<const FillRecord> fills,
                                          std::optional<TimePoint> stored_at, AppendOutcome& out);
  Result<std::vector<EvaluationResultRow>> load_results(std::string_view run_id);
  Result<std::optional<ApplyJournalEntry>> get_apply_locked(std::string_view run_id);
  Result<std::optional<Activation>> get_activation_locked(std::string_view world_id,
                                                          std::string_view strategy_id,
                                                          std::string_view side);
  // The world's queued changes, oldest first.
  Result<std::vector<QueuedActivation>> queued_locked(std::string_view world_id);
  // Drops every queued change of a world that becomes `next` (Retired).
  Result<void> drop_all_queued_locked(std::string_view world_id, lifecycle::WorldState next,
                                      TimePoint at, const AuditRecord& audit);
  // Removes queued change `seq` (if given); kAlreadyExists when it is gone
  // (another server carried it out).
  Result<void> dequeue_locked(std::optional<int64_t> seq);
  // kFailedPrecondition unless the world still has the basis' policy version
  // and Live set (ApplyBasis).
  Result<void> check_basis_locked(const ApplyJournalEntry& e);
  Result<void> set_gates(std::string_view world_id, const std::vector<std::string>& strategies,
                         std::optional<bool> active, std::optional<bool> frozen, TimePoint at);

  std::mutex mu_;  // serialises all use of db_
  const std::unique_ptr<SqlDb> owned_db_;
  SqlDb& db_;
};

}  // namespace qmtl::store
