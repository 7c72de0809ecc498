// WorldService: the operations on worlds, policies and strategies that the API,
// the CLI and the scheduler call.
//
// The service validates every input before it reaches the store, checks every
// state change against the lifecycle tables and the world's state, stamps times
// from the injected clock, and maps each operation to one store transaction
// with its audit record, so a refused request changes nothing.
//
// World states are enforced here: a Retired world is read-only; a Paused world
// refuses strategy transitions; an EvalOnly world refuses promotion to live.
//
// Thread safety: safe to call from several threads at once. Operations that
// change a world (state, policy, evaluation, apply, activation) hold that world's
// lock, so one world changes by one operation at a time while different worlds
// proceed in parallel; the store also detects concurrent changes.
#pragma once

#include <boost/json.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/core/duration.h"
#include "qmtl/core/result.h"
#include "qmtl/core/time.h"
#include "qmtl/lifecycle/fsm.h"
#include "qmtl/policy/document.h"
#include "qmtl/store/store.h"
#include "qmtl/world/performance_view.h"
#include "qmtl/world/replay.h"

namespace qmtl::world {

using store::Activation;
using store::ApplyJournalEntry;
using store::AuditRecord;
using store::EvaluationRunRecord;
using store::FillRecord;
using store::PerformancePoint;
using store::PolicyVersion;
using store::Strategy;
using store::World;

inline constexpr size_t kMaxWorldNameLength = 200;
inline constexpr size_t kMaxReasonLength = 1000;
inline constexpr size_t kMaxSpecBytes = 1 << 20;

struct CreateWorldRequest {
  std::string id;
  std::optional<std::string> name;  // defaults to the id
  std::string actor = "local";
};

struct SubmitStrategyRequest {
  std::string id;
  std::string world;
  std::string spec;  // JSON object text: the declarative strategy (docs/sdk.md)
  std::string actor = "local";
};

// How the server executes a world's strategies (issue #9): validation
// backtests over a history file, and one `qmtl run` per DryRun or Live
// strategy on a live bar feed. Set by an admin; paths are on the server.
struct ExecutionSettings {
  std::string history;             // absolute path of an OHLCV CSV: validation backtests
  std::optional<Duration> window;  // backtest only the last `window` of it (all when absent)
  std::string feed;                // absolute path of the live bar CSV runners follow; "" = none
  std::string live_broker;         // where Live orders go ("journal:/abs/path", where
                                   // {strategy} becomes the strategy id); "" = blocked
  std::string symbol;              // symbol of the bars; "" = each strategy's own
  double cash = 100'000;           // starting cash of backtests and paper books
  int max_runners = 8;             // runners at once in the world
  int max_validations = 2;         // validation backtests at once in the world
  TimePoint updated_at;
};

// Parses the JSON object of PUT /worlds/{id}/execution; kInvalidArgument names
// the field and what to fix. Unknown keys are errors.
Result<ExecutionSettings> parse_execution_settings(std::string_view json);
// The settings as that JSON object (with "updated_at").
boost::json::object execution_settings_json(const ExecutionSettings& s);

// A world's live broker (docs/brokers.md): a FIX 4.4 session per runner. Holds the
// *names* of its secrets (an environment variable or a file on the server),
// never a secret itself. In sender_comp_id and store paths, {strategy}
// becomes the strategy id, so each runner has a session of its own.
struct BrokerSettings {
  std::string type = "fix";
  std::string host = "127.0.0.1";
  int port = 0;
  std::string sender_comp_id;
  std::string target_comp_id;
  std::string account;
  std::string username;
  std::string password_env;   // the variable that holds the password, or
  std::string password_file;  // the file that does (absolute path)
  int heartbeat_s = 30;
  TimePoint updated_at;
};
// Parses the JSON object of PUT /worlds/{id}/broker. kInvalidArgument names
// the field; a field that would hold a secret ("password", "secret", ...) is
// refused without repeating its value.
Result<BrokerSettings> parse_broker_settings(std::string_view json);
// As shown by the API and CLI: references to secrets, never values.
boost::json::object broker_settings_json(const BrokerSettings& s);

// Where a world's alerts also go by e-mail (docs/api.md, alerts), beside the webhook: an
// SMTP server (smtp:// or smtps://host[:port]), a sender and recipients, and
// which kinds of alert. Like the broker it names where its password is (an
// environment variable or a file on the server), never the password.
struct EmailSettings {
  std::string smtp;  // smtp://host:port (STARTTLS when `starttls`) or smtps://host:port
  bool starttls = false;
  std::string from;
  std::vector<std::string> to;
  std::string username;
  std::string password_env;
  std::string password_file;
  std::vector<std::string> events;  // promote, demote, reject, failure (default: all)
  TimePoint updated_at;
};
// Parses the JSON object of PUT /worlds/{id}/alerts/email; kInvalidArgument
// names the field; secret-looking fields are refused without their value.
Result<EmailSettings> parse_email_settings(std::string_view json);
// As shown by the API and CLI (and audited): references to secrets only.
boost::json::object email_settings_json(const EmailSettings& s);

// Where a world's alerts also go as Telegram messages (docs/api.md, alerts): a
// bot posts them to a chat. The bot's token is named (a variable of the
// server's environment or a file on the server), never given: it is read when
// a message is sent and travels only in the Bot API's request path.
struct TelegramSettings {
  std::string chat_id;  // -1001234567890 (a group or channel), 12345 (a user) or @channel
  std::string token_env;
  std::string token_file;
  std::string api = "https://api.telegram.org";  // the Bot API server, without a path
  std::vector<std::string> events;               // promote, demote, reject, failure (default: all)
  TimePoint updated_at;
};
// Parses the JSON object of PUT /worlds/{id}/alerts/telegram; kInvalidArgument
// names the field; a `token` (or other secret-looking) field is refused
// without its value.
Result<TelegramSettings> parse_telegram_settings(std::string_view json);
// As shown by the API and CLI (and audited): where the token is, never it.
boost::json::object telegram_settings_json(const TelegramSettings& s);

// What a runner did with its positions when its strategy was promoted or
// demoted (docs/policy.md, position), as it reports it.
struct HandoverReport {
  std::string event;                // "PROMOTE" or "DEMOTE"
  std::string policy;               // "flat" | "carry" (PROMOTE), "flatten" | "keep" (DEMOTE)
  std::vector<std::string> orders;  // "buy 2 ZZ (fix-1)", one per order sent
  std::vector<std::string> failed;  // "sell 2 ZZ: <why>", one per order not sent
  std::optional<std::string> run_id;
};

// A demotion whose positions have not been handed over.
struct PendingHandover {
  std::string event;  // "DEMOTE"
  TimePoint at;
  std::optional<std::string> run_id;
};

// What a validation backtest produced, for finish_validation.
struct BacktestOutcome {
  bool ok = false;    // the run completed
  std::string error;  // why it did not
  std::vector<PerformancePoint> points;
  std::vector<FillRecord> fills;
  double initial_equity = 0;  // equity before the first bar
  size_t bars = 0;
  TimePoint started_at;  // when the job started
};

// Told about every change the service commits, for event streams, caches and
// metrics. Called on the thread that made the change, after it committed and
// before the operation returns, so whoever sees an operation's result knows the
// observer has already been told. A refused write may also be reported (it
// changed nothing, so reading again finds nothing new). Implementations must be
// thread-safe, quick, and must not call the service's writing operations.
class WorldObserver {
 public:
  virtual ~WorldObserver() = default;
  // Something of world `world_id` may have changed: its audit log has grown.
  virtual void world_changed(std::string_view world_id) = 0;
  // An evaluation of the world ended after `seconds`, successfully or not.
  virtual void evaluation_finished(std::string_view world_id, double seconds, bool ok) = 0;
  // An apply ended after `seconds`; `done` is the finished entry, or null when
  // the apply failed. `fresh` is false when the run had been applied before and
  // this call changed nothing.
  virtual void apply_finished(std::string_view world_id, const ApplyJournalEntry* done, bool fresh,
                              double seconds) = 0;
};

class WorldService {
 public:
  // `store`, `clock` and `observer` (if given) must outlive the service.
  WorldService(store::Store& store, const Clock& clock, WorldObserver* observer = nullptr)
      : store_(store), clock_(clock), observer_(observer) {}

  // Replaces the observer (null: none). Not thread-safe: call before the service
  // is shared between threads, or after they have stopped using it.
  void set_observer(WorldObserver* observer) { observer_ = observer; }

  // Creates a world in state Active with no policy. Errors: kInvalidArgument for a
  // bad id or name, kAlreadyExists if the id is taken.
  Result<World> create_world(const CreateWorldRequest& req);
  // kNotFound if absent; kInvalidArgument if `id` is not a valid id at all.
  Result<World> get_world(std::string_view id);
  // All worlds ordered by id.
  Result<std::vector<World>> list_worlds();

  // Moves a world to `target` by the world machine. Retiring archives every
  // strategy of the world in the same transaction. kFailedPrecondition (409) for
  // a transition the machine refuses (e.g. out of Retired, or to the same state).
  Result<World> set_world_state(std::string_view id, lifecycle::WorldState target,
                                std::string_view actor, std::string_view reason);

  // Parses `document` (native or QMTL form; errors with line:column), stores it as
  // the world's next version and makes it current.
  // `if_current` is the policy version the caller last read (0 = none yet; an
  // HTTP If-Match): kVersionMismatch if another version is current by now.
  Result<PolicyVersion> add_policy(std::string_view world_id, std::string_view document,
                                   std::string_view actor,
                                   std::optional<int64_t> if_current = std::nullopt);
  // Makes an existing version current again (rollback); `if_current` as above.
  Result<World> set_current_policy(std::string_view world_id, int64_t version,
                                   std::string_view actor, std::string_view reason,
                                   std::optional<int64_t> if_current = std::nullopt);
  // The given version, or the current one; kNotFound if the world has none.
  Result<PolicyVersion> get_policy(std::string_view world_id, std::optional<int64_t> version);
  Result<std::vector<PolicyVersion>> list_policies(std::string_view world_id);

  // A policy version, parsed. Versions never change, so each (world, version)
  // is parsed once and every caller (evaluation, apply, execution, the
  // scheduler, the event stream, the API) shares the same immutable document.
  struct ParsedPolicy {
    int64_t version = 0;
    std::shared_ptr<const policy::PolicyDocument> document;  // never null
    // The native policy, or null for a QMTL-form document.
    const policy::Policy* native() const { return policy::native_policy(*document); }
  };
  // The world's policy `version`, or its current one; errors as get_policy. A
  // stored text that no longer parses is the parser's error (kInvalidArgument).
  Result<ParsedPolicy> parsed_policy(std::string_view world_id,
                                     std::optional<int64_t> version = std::nullopt);
  // The current policy of `w` as read by the caller; nullopt when it has none.
  Result<std::optional<ParsedPolicy>> parsed_policy_of(const World& w);

  // Registers a strategy in state Submitted.
  Result<Strategy> submit_strategy(const SubmitStrategyRequest& req);
  Result<Strategy> get_strategy(std::string_view id);
  Result<std::vector<Strategy>> list_strategies(std::string_view world_id);
  // Applies a lifecycle event to a strategy, enforcing the world's state.
  // `run_id` ties the change to an evaluation run in the audit log. PROMOTE
  // and DEMOTE go through promote_strategy / demote_strategy (caps, two-phase
  // apply); a queued one is an error here (use those for a Paused world).
  Result<Strategy> apply_strategy_event(std::string_view id, lifecycle::StrategyEvent event,
                                        std::string_view actor, std::string_view reason,
                                        std::optional<std::string> run_id = std::nullopt);

  // Records a hand-over in the audit log (entity "handover", event HANDOVER,
  // before = PROMOTE|DEMOTE, after = the policy, reason = the orders). kInvalidArgument names what
  // is wrong.
  Result<AuditRecord> record_handover(std::string_view strategy_id, const HandoverReport& report,
                                      std::string_view actor);

  // The strategy's last demotion when it is its last move and no hand-over
  // has been recorded since (its runner was gone: the server was stopping,
  // the runner had crashed, or none was running), so that the next runner
  // flattens on start; nullopt when none is pending (a promotion never is: at
  // a runner's start its paper book is empty and there is nothing to carry).
  // kNotFound for an unknown strategy.
  Result<std::optional<PendingHandover>> pending_handover(std::string_view strategy_id);

  // Validates and stores a batch of performance points (equity > 0, finite) and
  // fills of a strategy in one transaction. Re-sending a stored point is a
  // repeat (equal within store::kEquityRepeatTolerance); a point whose time
  // holds another equity is a conflict: refused alone, the rest stored, and
  // recorded in the audit log (PERFORMANCE_CONFLICT, alerted as a failure)
  // with `actor`. A malformed batch (kInvalidArgument) stores nothing.
  Result<store::AppendOutcome> record_performance(std::string_view strategy_id,
                                                  std::span<const PerformancePoint> points,
                                                  std::span<const FillRecord> fills,
                                                  std::string_view actor = "runner");
  // The newest stored dry-run/live point of a strategy: where a runner resumes.
  Result<std::optional<PerformancePoint>> last_point(std::string_view strategy_id);

  // Evaluates every strategy of the world against its current policy now:
  // metrics over the policy's windows from stored records, the selection
  // pipeline with hysteresis from earlier runs, and the run persisted (docs/api.md
  // shape in `detail`). Decisions are not applied here. A strategy whose records
  // cannot be evaluated is recorded as INELIGIBLE with the reason; the others
  // proceed. Refused in a Paused or Retired world and without a native policy.
  // `schedule`, from the scheduler, is stored with the run in one transaction.
  Result<EvaluationRunRecord> evaluate_world(
      std::string_view world_id, std::string_view actor,
      const std::optional<store::ScheduleState>& schedule = std::nullopt);

  // Where the world's alerts go (docs/api.md, alerts): a webhook URL (http://; it may embed
  // a secret, so it is never written to the audit log or logs) and the event
  // kinds sent, a subset of "promote", "demote", "reject", "failure" (all when
  // empty). An empty url removes the hook. kInvalidArgument names what to fix.
  Result<store::AlertHook> set_alert_hook(std::string_view world_id, std::string_view url,
                                          std::vector<std::string> events, std::string_view actor);
  Result<std::optional<store::AlertHook>> get_alert_hook(std::string_view world_id);

  // The world's execution settings; `doc` is their JSON (parse_execution_settings),
  // or empty to remove them. Recorded in the audit log.
  Result<std::optional<ExecutionSettings>> set_execution(std::string_view world_id,
                                                         std::string_view doc,
                                                         std::string_view actor);
  Result<std::optional<ExecutionSettings>> get_execution(std::string_view world_id);
  // The world's live broker; `doc` empty removes it. Audited as BROKER_SET
  // with the settings as shown (no secret exists in them to leak).
  Result<std::optional<BrokerSettings>> set_broker(std::string_view world_id, std::string_view doc,
                                                   std::string_view actor);
  Result<std::optional<BrokerSettings>> get_broker(std::string_view world_id);
  // The world's e-mail alerts; `doc` empty removes them. Audited as
  // EMAIL_ALERTS_SET / EMAIL_ALERTS_REMOVED.
  Result<std::optional<EmailSettings>> set_email_alerts(std::string_view world_id,
                                                        std::string_view doc,
                                                        std::string_view actor);
  Result<std::optional<EmailSettings>> get_email_alerts(std::string_view world_id);
  // The world's Telegram alerts; `doc` empty removes them. Audited as
  // TELEGRAM_ALERTS_SET / TELEGRAM_ALERTS_REMOVED.
  Result<std::optional<TelegramSettings>> set_telegram_alerts(std::string_view world_id,
                                                              std::string_view doc,
                                                              std::string_view actor);
  Result<std::optional<TelegramSettings>> get_telegram_alerts(std::string_view world_id);

  // Ends the validation of a Validating strategy (docs/architecture.md, state machines): a failed
  // run, or a true or unevaluable `reject` gate of the world's current policy over the backtest's
  // own records, moves it to Rejected (VALIDATION_FAILED, with the reason); otherwise to DryRun
  // (VALIDATION_PASSED). The backtest's records and the explanation are stored with the transition
  // in one transaction (store::ValidationRecord); they are not dry-run records and evaluations do
  // not read them. Refused in a Paused or Retired world (kFailedPrecondition).
  Result<store::ValidationRecord> finish_validation(std::string_view strategy_id,
                                                    const BacktestOutcome& outcome,
                                                    std::string_view actor);
  Result<std::optional<store::ValidationRecord>> get_validation(std::string_view strategy_id,
                                                                bool with_records);

  // What `opt.policy` (or, when empty, the recorded policy versions) would have
  // decided at each recorded evaluation run of the world in [opt.from,
  // opt.until], and the live books of both paths (replay.h). Reads only: no
  // state changes, no audit record. Deterministic: the same store and options
  // give the same report. kInvalidArgument for a candidate that does not parse
  // or is QMTL-form; kNotFound for an unknown world. Takes no world lock: it
  // reads a consistent prefix of the audit log and the records it names.
  Result<ReplayReport> replay(std::string_view world_id, const ReplayOptions& opt);

  // The world's evaluation schedule (see store::ScheduleState); nullopt before
  // the scheduler first saw the world.
  Result<std::optional<store::ScheduleState>> get_schedule(std::string_view world_id);
  // Writes it; kNotFound for an unknown world.
  Result<void> put_schedule(const store::ScheduleState& schedule);
  Result<EvaluationRunRecord> get_evaluation(std::string_view world_id, std::string_view run_id);
  Result<std::vector<EvaluationRunRecord>> list_evaluations(std::string_view world_id,
                                                            size_t limit = 50);

  // Fault injection for crash tests: called after each apply phase commits
  // ("frozen", "switched", "done"). Production code passes nothing.
  struct ApplyHooks {
    std::function<void(std::string_view phase)> after_phase;
  };

  // Applies the PROMOTE and DEMOTE decisions of an evaluation run by two-phase
  // apply: freeze the gates of every strategy entering or leaving live, switch
  // states and gates, unfreeze. Idempotent by run id: a run already Done is
  // returned as is; one interrupted by a crash is recovered first. Refused in a
  // Paused or Retired world, and in an EvalOnly world when it would promote;
  // kUnavailable while another server sharing the database applies the world.
  Result<ApplyJournalEntry> apply_run(std::string_view world_id, std::string_view run_id,
                                      std::string_view actor, const ApplyHooks* hooks = nullptr);
  // Finishes what a crash interrupted: a run that reached the switch is
  // completed, one that did not is rolled back; the audit log says which. Call
  // on start-up and from time to time (the scheduler leader does, every pass).
  // Applies another live server is still making (Store::claim_apply) are left
  // to it, and one this process is making is waited for. Returns the entries
  // it finished.
  Result<std::vector<ApplyJournalEntry>> recover_applies(std::string_view actor = "recovery");
  // Whether this server leads the scheduler (Store::lead_scheduler).
  Result<bool> lead_scheduler() { return store_.lead_scheduler(); }
  Result<std::vector<Activation>> list_activations(std::string_view world_id);

  // An operator's intervention (docs/policy.md, manual changes): who, why, and whether to promote
  // past the policy's caps (top_k, per_group), which is then recorded.
  struct ManualChange {
    std::string actor;
    std::string reason;
    bool force = false;
  };
  // What the next evaluation would decide for a strategy: the evaluation the
  // scheduler runs (the same code, not persisted), on the records stored now,
  // at the time it is due.
  struct NextEvaluation {
    TimePoint at;  // when it is due (now when the world has no schedule yet)
    std::string decision;
    std::vector<std::string> reasons;
    bool undoes = false;  // it would reverse the change just made
  };
  struct ManualOutcome {
    bool queued = false;                  // the world is Paused: carried out when it resumes
    Strategy strategy;                    // as it is after the change
    std::optional<std::string> apply_id;  // the apply journal entry of a state change
    std::optional<Activation> entry;      // set_activation: the side's gate after the change
    std::optional<std::string> forced;    // the cap a forced promotion went past
    std::optional<NextEvaluation> next;   // none without a native policy, or when queued
    std::optional<std::string> warning;   // set when the next evaluation would undo this
  };
  using ActivationChange = ManualOutcome;

  // Manual promotion DryRun -> Live (the design's `strategy activate`) and
  // demotion Live -> DryRun, by the two-phase apply like an evaluation's
  // decisions (journal entry "<world>-m<n>", audited with the actor and
  // reason). A promotion that would break the policy's caps is refused
  // (kFailedPrecondition naming the cap) unless `force`. Refused in a Retired
  // world and (promotion) in an EvalOnly one; queued in a Paused world. The
  // outcome says what the next evaluation would do (NextEvaluation).
  Result<ManualOutcome> promote_strategy(std::string_view id, const ManualChange& change);
  Result<ManualOutcome> demote_strategy(std::string_view id, const ManualChange& change);

  // An operator's override of one strategy side's gate (docs/api.md PUT
  // activation), an FSM event like the above: opening a side of a DryRun
  // strategy promotes it with only that side open (within the caps unless
  // `force`); closing the last side of a Live strategy that is not already
  // closed by hand demotes it; otherwise the gate is set and marked manual.
  // Opening a gate of a strategy that is neither DryRun nor Live is refused.
  // `if_match` is the entry version the caller read (ETag). Refused in a
  // Retired world, for an Archived strategy, and when opening a gate in an
  // EvalOnly world; queued in a Paused world.
  Result<ActivationChange> set_activation(std::string_view world_id, std::string_view strategy_id,
                                          std::string_view side, bool active,
                                          std::string_view actor, std::string_view reason,
                                          std::optional<int64_t> if_match = std::nullopt,
                                          bool force = false);

  // What the next evaluation of the world would decide for `strategy_id`, as
  // in NextEvaluation (undoes = false). nullopt when the world has no native
  // policy or is not evaluated (Paused, Retired).
  Result<std::optional<NextEvaluation>> next_evaluation(std::string_view world_id,
                                                        std::string_view strategy_id);

  // Every change of state of the world's strategies (of one, when
  // `strategy_id` is not empty), oldest first. kNotFound for an unknown world,
  // or a strategy not in it.
  Result<std::vector<StrategyTransition>> timeline(std::string_view world_id,
                                                   std::string_view strategy_id = {});
  // A strategy's records of one kind (or its runs', when q.kind is nullopt)
  // with from <= ts <= to, points downsampled to q.max_points, the newest
  // q.max_fills fills, and the periods to shade. kInvalidArgument when from is
  // after to; kNotFound for an unknown strategy.
  Result<PerformanceView> performance(std::string_view strategy_id, const PerformanceQuery& q);

  // The world's audit log after `after_seq`, oldest first, at most `limit` rows.
  Result<std::vector<AuditRecord>> list_audit(std::string_view world_id, int64_t after_seq = 0,
                                              size_t limit = 1000);
  // The seq of the world's newest audit record (0 if none).
  Result<int64_t> last_audit_seq(std::string_view world_id);
  // When the world's newest evaluation run finished; nullopt before the first.
  Result<std::optional<TimePoint>> last_evaluation_finished(std::string_view world_id);

 private:
  // Tells the observer, when the enclosing write operation returns, that
  // `world` may have changed.
  class Notify {
   public:
    Notify(WorldObserver* o, std::string_view world) : observer_(o), world_(world) {}
    ~Notify() {
      if (observer_ != nullptr) observer_->world_changed(world_);
    }
    Notify(const Notify&) = delete;
    Notify& operator=(const Notify&) = delete;

   private:
    WorldObserver* observer_;
    std::string world_;
  };
  Result<ApplyJournalEntry> apply_run_locked(std::string_view world_id, std::string_view run_id,
                                             std::string_view actor, const ApplyHooks* hooks,
                                             bool& fresh);
  Result<EvaluationRunRecord> evaluate_world_locked(
      std::string_view world_id, std::string_view actor,
      const std::optional<store::ScheduleState>& schedule);
  // An evaluation of the world at `at`, not persisted: the run (no id yet)
  // and each strategy's result. evaluate_world_locked persists it.
  struct PreparedRun {
    EvaluationRunRecord run;                        // no id yet
    std::vector<std::vector<std::string>> reasons;  // per row of run.results
  };
  Result<PreparedRun> prepare_run_locked(const World& w, TimePoint at);
  Result<std::optional<NextEvaluation>> next_evaluation_locked(const World& w,
                                                               std::string_view strategy_id);
  enum class ManualAction { kPromote, kDemote, kGate };
  // Which way a manual change moved a strategy: what an evaluation would undo.
  struct Direction {
    bool made_live = false;  // promoted, or a side opened
    bool made_dry = false;   // demoted, or a side of a DryRun strategy closed
  };
  // Carries out a manual change; the caller holds the world's lock.
  // `dequeue_seq`: the queued change this carries out (resume of a Paused world).
  // `direction` (if not null) receives which way it went.
  Result<ManualOutcome> manual_change_locked(const World& w, Strategy s, ManualAction action,
                                             std::string_view side, bool active,
                                             const ManualChange& change,
                                             std::optional<int64_t> if_match,
                                             std::optional<int64_t> dequeue_seq,
                                             Direction* direction);
  // set_activation under the world's lock, without the forecast.
  Result<ActivationChange> set_activation_change(std::string_view world_id,
                                                 std::string_view strategy_id,
                                                 std::string_view side, bool active,
                                                 std::string_view actor, std::string_view reason,
                                                 std::optional<int64_t> if_match, bool force,
                                                 Direction* direction);
  // Fills out.next (and out.warning when that evaluation would undo the change)
  // from next_evaluation; called without the world's lock, after the change
  // was published.
  void forecast(ManualOutcome& out, std::string_view world_id, Direction direction);
  // Promotes or demotes `s` by a manual journal entry; a promotion within the
  // caps, or past them when change.force (recorded).
  Result<ManualOutcome> manual_apply_locked(const World& w, const Strategy& s, bool promote,
                                            std::optional<std::string> only_side,
                                            const ManualChange& change,
                                            std::optional<int64_t> dequeue_seq);
  // promote_strategy / demote_strategy: the change, then its forecast.
  Result<ManualOutcome> manual_with_forecast(std::string_view id, const ManualChange& change,
                                             bool promote);
  // The change alone (also apply_strategy_event's PROMOTE and DEMOTE).
  Result<ManualOutcome> manual_strategy_change(std::string_view id, const ManualChange& change,
                                               bool promote, Direction* direction = nullptr);
  // Why promoting `strategy_id` would break the world's caps (policy::cap_breach
  // over the Live set `live`, with correlations from stored records).
  Result<std::optional<std::string>> promotion_cap_breach(const World& w,
                                                          std::string_view strategy_id,
                                                          const std::vector<std::string>& live);
  // Freeze, switch and finish of `e`, with its audit records; a basis that no
  // longer holds at the switch rolls the entry back and returns the error.
  Result<ApplyJournalEntry> two_phase_locked(ApplyJournalEntry e, const AuditRecord& tmpl,
                                             std::string freeze_reason, const ApplyHooks* hooks);
  // Carries out (or drops, with the reason) the changes queued while the world
  // was Paused; the caller holds the world's lock.
  Result<void> drain_queue_locked(std::string_view world_id);
  Result<void> check_policy_version(const World& w, std::optional<int64_t> if_current) const;
  // Writes the world's settings of `kind` (`doc` empty: removes them) with the
  // audit record <event>_SET or <event>_REMOVED; returns when.
  Result<TimePoint> write_setting(std::string_view world_id, std::string_view kind, std::string doc,
                                  std::string_view event, std::string_view actor);
  // Parses, stores (as shown, minus "credentials") and audits, or reads back, a
  // settings document of type T; SettingKind<T> (world_internal.h) names its
  // kind, audit event, parser and JSON form.
  template <typename T>
  Result<std::optional<T>> set_setting(std::string_view world_id, std::string_view doc,
                                       std::string_view actor);
  template <typename T>
  Result<std::optional<T>> get_setting(std::string_view world_id);

  Result<World> writable_world(std::string_view id);
  // Serialises the operations on one world.
  std::unique_lock<std::mutex> lock_world(std::string_view id);
  // Recovers run `run_id` if it is still unfinished and no live server owns
  // it; the caller holds the world's lock. The entry it finished, if any.
  Result<std::optional<ApplyJournalEntry>> recover_apply_locked(std::string_view run_id,
                                                                std::string_view actor);

  store::Store& store_;
  const Clock& clock_;
  WorldObserver* observer_;
  // Parsed policy versions by (world, version); guarded by policies_mu_.
  std::mutex policies_mu_;
  std::map<std::pair<std::string, int64_t>, std::shared_ptr<const policy::PolicyDocument>>
      policies_;
  std::mutex locks_mu_;
  std::map<std::string, std::unique_ptr<std::mutex>, std::less<>> locks_;
};

}  // namespace qmtl::world
