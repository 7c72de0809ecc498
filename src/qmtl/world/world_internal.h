// Helpers shared by the world part's source files. Not installed, not for
// other parts.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qmtl/core/id.h"
#include "qmtl/core/json.h"
#include "qmtl/core/result.h"
#include "qmtl/core/time.h"
#include "qmtl/metrics/series.h"
#include "qmtl/policy/policy.h"
#include "qmtl/policy/selection.h"
#include "qmtl/store/store.h"
#include "qmtl/world/world_service.h"

namespace qmtl::world {

// Free text of one line (no control characters), at most `max` bytes.
Result<void> validate_text(std::string_view what, std::string_view text, size_t max,
                           bool allow_empty);
Result<void> validate_actor(std::string_view actor);

// kFailedPrecondition when the world is Paused: no strategy changes state then.
Result<void> check_transitions_allowed(const store::World& w);

// A metric value for the run's JSON: null when absent.
boost::json::value number_or_null(std::optional<double> v);
// The metrics an explanation shows ({"sharpe": 1.2, ...}, null when absent)
// and a gate's clauses ([{"expr", "value", "pass": true|false|null}]), as
// evaluation runs and validations store them.
boost::json::object shown_metrics_json(const std::map<std::string, std::optional<double>>& shown);
boost::json::array clauses_json(const std::vector<policy::ClauseResult>& clauses);

// The value of every metric the policy refers to (one per policy.refs slot),
// computed over `rs` with `window` as the policy window; `shown`, when given,
// gets each reference's text -> value, for explanations.
std::vector<std::optional<double>> policy_values(
    const policy::Policy& pol, const metrics::ReturnSeries& rs, Duration window,
    std::map<std::string, std::optional<double>>* shown);

// The pairs among strategies `ids` whose return correlation over `window`
// (from their stored dry-run and live records up to `now`) is at least `max`.
Result<std::vector<policy::CorrelationPair>> correlated_pairs_of(
    store::Store& store, const std::vector<std::string>& ids, TimePoint now, Duration window,
    double max);

// ---- evaluation (evaluation.cc), shared with the replay (replay.cc) ----

// The strategies of a world as the selection sees them, and what the run
// reports beside each (index i of every vector is strategy i).
struct LoadedCandidates {
  std::vector<policy::Candidate> cands;
  std::vector<metrics::ReturnSeries> series;
  std::map<std::string, std::string, std::less<>> load_errors;  // records that cannot be read
  std::vector<std::map<std::string, std::optional<double>>> metric_values;  // as shown
};

// One strategy as an evaluation at some time sees it: its state then and since
// when, its records (those the policy reads, up to that time), the hysteresis
// record of earlier runs (oldest first) and a manual override in force.
struct StrategyInputs {
  std::string id;
  lifecycle::StrategyState state = lifecycle::StrategyState::kDryRun;
  TimePoint since;
  std::span<const PerformancePoint> points;
  std::span<const FillRecord> fills;
  std::vector<policy::PastEvaluation> past;
  std::optional<bool> manual;
};

// Appends one strategy to `out` as a candidate of `pol`: metric values from its
// records, or its load error when they do not form a series.
void add_candidate(const policy::Policy& pol, const StrategyInputs& in, LoadedCandidates& out);

// What a candidate's records give, computed from them alone: the same in
// every state that is evaluated (DryRun, Live), so it can be computed before
// the state is known (the replay does, ahead of its walk). Thread-safe: reads
// only its arguments.
struct CandidateMetrics {
  metrics::ReturnSeries rs;
  std::vector<std::optional<double>> values;           // one per pol.refs slot; empty on error
  Duration history{0};                                 // span of the series
  std::map<std::string, std::optional<double>> shown;  // with `explain`
  std::optional<std::string> error;                    // the records do not form a series
};
CandidateMetrics candidate_metrics(const policy::Policy& pol,
                                   std::span<const PerformancePoint> points,
                                   std::span<const FillRecord> fills, bool explain);
// add_candidate with metrics computed before (ignored when in.state is not
// evaluated; in.points and in.fills are not read).
void add_candidate(const policy::Policy& pol, const StrategyInputs& in, CandidateMetrics&& m,
                   LoadedCandidates& out);
// add_candidate for each of `inputs`, in order; for many strategies the
// metrics are computed on several threads (the calling one included).
// Without `explain` each candidate's metric_values entry is left empty (a
// replay shows no run's metrics; building them is a good part of the cost).
void add_candidates(const policy::Policy& pol, std::span<const StrategyInputs> inputs,
                    LoadedCandidates& out, bool explain = true);

// What a run at `now` in a world in `state` may do: EvalOnly holds promotions
// back. Explains (reasons and clauses) unless the caller turns it off.
policy::EvalContext run_context(lifecycle::WorldState state, TimePoint now);

// The correlations the selection of `pol` over `in` reads, over the
// correlation window: among the strategies that compete for a slot (those a
// selection without correlations ranks) and every Live one. None when the
// policy has no correlation cap.
policy::Correlations candidate_correlations(const policy::Policy& pol, const LoadedCandidates& in,
                                            const policy::EvalContext& ctx);

// The selection of `pol` over `in` in `ctx` with `corr`; records that could
// not be read hold a promotion and are named first in the reasons.
policy::Selection select_candidates(const policy::Policy& pol, const LoadedCandidates& in,
                                    const policy::EvalContext& ctx,
                                    const policy::Correlations& corr);
// The same, with run_context(state, now) and candidate_correlations.
policy::Selection select_candidates(const policy::Policy& pol, const LoadedCandidates& in,
                                    lifecycle::WorldState state, TimePoint now);

// Which earlier runs the hysteresis of `p` reads at `now`: the newest N
// started at or after the time returned.
std::pair<size_t, TimePoint> history_needed(const policy::Policy& p, TimePoint now);

// The earliest record time any metric of `pol` reads at `now`.
TimePoint records_from(const policy::Policy& pol, TimePoint now);

// DryRun and Live are candidates; every other state is not evaluated.
policy::CandidateState candidate_state(lifecycle::StrategyState s);

// A settings object with null members dropped, or kInvalidArgument naming a
// member that would hold a secret ("password", "secret", "token", "api_key")
// — by its key only, never its value. password_env, password_file, token_env
// and token_file (names of where a secret is) pass.
Result<boost::json::object> without_secrets(const boost::json::object& o);

// The JSON object of a settings document with secrets refused
// (without_secrets) and only `allowed` keys; `what` names it in errors ("the
// broker settings"). kInvalidArgument naming what to fix; the caller adds
// its prefix.
Result<boost::json::object> settings_object(std::string_view text, std::string_view what,
                                            std::initializer_list<std::string_view> allowed);

// A settings string as shown: null when it is not set.
inline boost::json::value null_if_empty(const std::string& v) {
  return v.empty() ? boost::json::value(nullptr) : boost::json::value(v);
}

// Checks the <what>_env / <what>_file pair of a settings object (what =
// "password": password_env, password_file): at most one, a variable name, an
// absolute path. The message names what to fix.
Result<void> check_secret_reference(const std::string& env, const std::string& file,
                                    std::string_view what = "password");

// kInvalidArgument when a secret file (`field`: the key that named it) that
// exists is open to group or others: refused when settings are set (reading
// them back stays possible, and the file is checked again each time the
// secret is read).
Result<void> check_secret_file(const std::string& file, std::string_view field = "password_file");

// The "events" list of a settings object: promote, demote, reject, failure,
// all four when the key is absent. kInvalidArgument naming the bad entry.
Result<std::vector<std::string>> parse_alert_kinds(const boost::json::object& o);

// What set_setting/get_setting need to know of each kind of world settings.
template <typename T>
struct SettingKind;
template <>
struct SettingKind<ExecutionSettings> {
  static constexpr std::string_view kKind = "execution", kEvent = "EXECUTION";
  static Result<ExecutionSettings> parse(std::string_view d) { return parse_execution_settings(d); }
  static boost::json::object to_json(const ExecutionSettings& s) {
    return execution_settings_json(s);
  }
  static Result<void> check_on_set(const ExecutionSettings&) { return {}; }
};
template <>
struct SettingKind<BrokerSettings> {
  static constexpr std::string_view kKind = "broker", kEvent = "BROKER";
  static Result<BrokerSettings> parse(std::string_view d) { return parse_broker_settings(d); }
  static boost::json::object to_json(const BrokerSettings& s) { return broker_settings_json(s); }
  static Result<void> check_on_set(const BrokerSettings& s) {
    return check_secret_file(s.password_file);
  }
};
template <>
struct SettingKind<EmailSettings> {
  static constexpr std::string_view kKind = "email", kEvent = "EMAIL_ALERTS";
  static Result<EmailSettings> parse(std::string_view d) { return parse_email_settings(d); }
  static boost::json::object to_json(const EmailSettings& s) { return email_settings_json(s); }
  static Result<void> check_on_set(const EmailSettings& s) {
    return check_secret_file(s.password_file);
  }
};

template <>
struct SettingKind<TelegramSettings> {
  static constexpr std::string_view kKind = "telegram", kEvent = "TELEGRAM_ALERTS";
  static Result<TelegramSettings> parse(std::string_view d) { return parse_telegram_settings(d); }
  static boost::json::object to_json(const TelegramSettings& s) {
    return telegram_settings_json(s);
  }
  static Result<void> check_on_set(const TelegramSettings& s) {
    return check_secret_file(s.token_file, "token_file");
  }
};

template <typename T>
Result<std::optional<T>> WorldService::set_setting(std::string_view world_id, std::string_view doc,
                                                   std::string_view actor) {
  if (auto r = validate_actor(actor); !r) return propagate(r);
  if (auto r = validate_id("world", world_id); !r) return propagate(r);
  std::optional<T> settings;
  std::string stored;
  if (!doc.empty()) {
    auto s = SettingKind<T>::parse(doc);
    if (!s) return propagate(s);
    if (auto r = SettingKind<T>::check_on_set(*s); !r) return propagate(r);
    settings = std::move(*s);
    auto o = SettingKind<T>::to_json(*settings);
    o.erase("credentials");  // derived from the references, shown but not stored
    stored = json::dump(o);
  }
  auto at = write_setting(world_id, SettingKind<T>::kKind, std::move(stored),
                          SettingKind<T>::kEvent, actor);
  if (!at) return propagate(at);
  if (settings) settings->updated_at = *at;
  return settings;
}

template <typename T>
Result<std::optional<T>> WorldService::get_setting(std::string_view world_id) {
  if (auto r = validate_id("world", world_id); !r) return propagate(r);
  auto c = store_.get_world_setting(world_id, SettingKind<T>::kKind);
  if (!c) return propagate(c);
  if (!*c) return std::optional<T>();
  auto s = SettingKind<T>::parse((*c)->doc);
  if (!s) return propagate(s);
  s->updated_at = (*c)->updated_at;
  return std::optional<T>(std::move(*s));
}

}  // namespace qmtl::world
