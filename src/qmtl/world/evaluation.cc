// WorldService::evaluate_world and friends: stored records -> metrics -> policy
// engine -> a persisted evaluation run.
#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <map>
#include <thread>
#include <unordered_map>

#include "qmtl/core/duration.h"
#include "qmtl/core/id.h"
#include "qmtl/core/json.h"
#include "qmtl/metrics/correlation.h"
#include "qmtl/metrics/kpi.h"
#include "qmtl/policy/document.h"
#include "qmtl/policy/selection.h"
#include "qmtl/world/world_internal.h"
#include "qmtl/world/world_service.h"

namespace qmtl::world {
namespace {

using lifecycle::StrategyState;
using policy::CandidateState;

// The pairs among `ranked` whose return correlation over `window` is at least
// `max` (metrics::correlation's definition: common periods, the window ending
// at the latest common one). Series reporting the same timestamps — the usual
// case, runners posting at the same bar closes — are correlated together in
// blocks (BLAS), which is what makes thousands of strategies feasible; pairs
// across different timestamp sets are computed one by one.
std::vector<policy::CorrelationPair> correlated_among(
    const std::vector<policy::Candidate>& cands, const std::vector<metrics::ReturnSeries>& series,
    const std::vector<size_t>& ranked, Duration window, double max) {
  std::vector<policy::CorrelationPair> out;
  std::vector<std::vector<size_t>> groups;                  // indexes with identical timestamps
  std::unordered_map<size_t, std::vector<size_t>> by_hash;  // hash -> group numbers
  for (size_t i : ranked) {
    size_t h = series[i].ts.size();
    for (const auto& t : series[i].ts) {
      h = h * 1000003u ^ static_cast<size_t>(t.time_since_epoch().count());
    }
    auto& candidates_groups = by_hash[h];
    bool placed = false;
    for (size_t g : candidates_groups) {
      if (series[groups[g].front()].ts == series[i].ts) {
        groups[g].push_back(i);
        placed = true;
        break;
      }
    }
    if (!placed) {
      candidates_groups.push_back(groups.size());
      groups.push_back({i});
    }
  }
  for (const auto& g : groups) {
    if (g.size() < 2) continue;
    const auto& ts = series[g.front()].ts;
    if (ts.empty()) continue;
    const auto k = static_cast<size_t>(std::upper_bound(ts.begin(), ts.end(), ts.back() - window) -
                                       ts.begin());
    const size_t t = ts.size() - k;
    std::vector<double> returns;
    returns.reserve(g.size() * t);
    for (size_t i : g) {
      returns.insert(returns.end(), series[i].r.begin() + static_cast<ptrdiff_t>(k),
                     series[i].r.end());
    }
    for (const auto& p : metrics::correlated_pairs(returns, g.size(), t, max)) {
      out.push_back({cands[g[p.i]].id, cands[g[p.j]].id, p.value});
    }
  }
  for (size_t a = 0; a < groups.size(); ++a) {
    for (size_t b = a + 1; b < groups.size(); ++b) {
      for (size_t i : groups[a]) {
        for (size_t j : groups[b]) {
          const auto v = metrics::correlation(series[i], series[j], window);
          if (v.present() && *v.value >= max) out.push_back({cands[i].id, cands[j].id, *v.value});
        }
      }
    }
  }
  return out;
}

}  // namespace

// At most this many earlier runs are read for the hysteresis: a promote_after or
// demote_after that needs more evaluations than this cannot be satisfied.
constexpr size_t kHistoryRuns = 400;

// Which earlier runs the hysteresis can need: the last N for counts; for
// durations, those since (now - duration - one evaluation period), so a streak
// that began before the duration is seen to have held for all of it.
std::pair<size_t, TimePoint> history_needed(const policy::Policy& p, TimePoint now) {
  size_t count = 1;
  Duration span{0};
  for (const auto* h : {&p.promote_after, &p.demote_after}) {
    if (const auto* n = std::get_if<int>(&h->value))
      count = std::max(count, static_cast<size_t>(*n));
    if (const auto* d = std::get_if<Duration>(&h->value)) span = std::max(span, *d);
  }
  if (span == Duration::zero()) return {std::min(count, kHistoryRuns), TimePoint::min()};
  const Duration period = p.every.value_or(std::chrono::hours(24 * 7));
  return {kHistoryRuns, now - span - period};
}

CandidateState candidate_state(StrategyState s) {
  switch (s) {
    // Validating strategies are judged by their validation backtest
    // (finish_validation), whose records are not the ones evaluated here.
    case StrategyState::kDryRun:
      return CandidateState::kDryRun;
    case StrategyState::kLive:
      return CandidateState::kLive;
    default:
      return CandidateState::kOther;
  }
}

namespace {

// What earlier runs recorded, per strategy, oldest first: the hysteresis input.
Result<std::map<std::string, std::vector<policy::PastEvaluation>, std::less<>>> load_past(
    store::Store& store, std::string_view world_id, const policy::Policy& pol, TimePoint now) {
  const auto [history_runs, history_since] = history_needed(pol, now);
  // Results only: each run's explanation is most of its size and not needed here.
  auto runs = store.list_evaluation_runs(world_id, history_runs, history_since, false);
  if (!runs) return propagate(runs);
  std::map<std::string, std::vector<policy::PastEvaluation>, std::less<>> past;
  for (auto it = runs->rbegin(); it != runs->rend(); ++it) {
    for (const auto& row : it->results) {
      past[row.strategy_id].push_back(
          {.at = it->started_at, .promote_pass = row.promote_pass, .out = row.out});
    }
  }
  return past;
}

}  // namespace

TimePoint records_from(const policy::Policy& pol, TimePoint now) {
  Duration lookback =
      std::max(pol.window,
               pol.correlation && pol.correlation->window ? *pol.correlation->window : pol.window);
  for (const auto& ref : pol.refs.refs()) {
    if (ref.arg && ref.name != "worst_loss") lookback = std::max(lookback, *ref.arg);
  }
  return now - lookback - std::chrono::hours(24 * 7);
}

namespace {

// The return series of a DryRun or Live strategy's stored records, fills
// included (none is a known empty list: such a strategy trades through its
// runner, which records every fill); an error when they do not form a series.
Result<metrics::ReturnSeries> series_of(std::span<const PerformancePoint> points,
                                        std::span<const FillRecord> fills) {
  std::vector<metrics::Sample> samples;
  samples.reserve(points.size());
  for (const auto& p : points) samples.push_back({p.ts, p.equity});
  auto rs = metrics::from_samples(metrics::SeriesKind::kEquity, samples);
  if (!rs) return rs;
  rs->fills.emplace();
  rs->fills->reserve(fills.size());
  for (const auto& f : fills) {
    rs->fills->push_back({.ts = f.ts,
                          .symbol = f.symbol,
                          .qty = f.side == "buy" ? f.qty : -f.qty,
                          .price = f.price,
                          .fee = f.fee});
  }
  return rs;
}

// Every strategy of the world as a candidate at `now`: its state, history,
// hysteresis record, manual override and metric values. A strategy whose
// records cannot be read is kept with its error (reported, not skipped); a
// failing store read is an error.
Result<LoadedCandidates> load_candidates(store::Store& store, std::string_view world_id,
                                         const policy::Policy& pol, TimePoint now) {
  auto strategies = store.list_strategies(world_id);
  if (!strategies) return propagate(strategies);
  auto past = load_past(store, world_id, pol, now);
  if (!past) return propagate(past);
  const TimePoint from = records_from(pol, now);
  // Manual overrides in force, so the run can say when it would undo one.
  auto gates = store.list_activations(world_id);
  if (!gates) return propagate(gates);
  std::map<std::string, bool, std::less<>> manual;
  for (const auto& g : *gates) {
    if (g.manual) manual[g.strategy_id] = *g.manual;
  }

  // Read first, then compute (add_candidates spreads the metrics over threads).
  std::vector<StrategyInputs> inputs;
  std::vector<std::pair<std::vector<PerformancePoint>, std::vector<FillRecord>>> records(
      strategies->size());
  for (size_t k = 0; k < strategies->size(); ++k) {
    const auto& s = (*strategies)[k];
    StrategyInputs in{.id = s.id, .state = s.state, .since = s.state_since};
    if (auto it = past->find(s.id); it != past->end()) in.past = it->second;
    if (auto it = manual.find(s.id); it != manual.end()) in.manual = it->second;
    auto& [points, fills] = records[k];
    if (candidate_state(s.state) != CandidateState::kOther) {
      // What was stamped and stored by `now`: nothing a later run or a
      // replay at `now` would not see the same.
      auto p = store.load_points(s.id, from, now, now);
      if (!p) return propagate(p);
      auto f = store.load_fills(s.id, from, now, now);
      if (!f) return propagate(f);
      points = std::move(*p);
      fills = std::move(*f);
    }
    in.points = points;
    in.fills = fills;
    inputs.push_back(std::move(in));
  }
  LoadedCandidates out;
  add_candidates(pol, inputs, out);
  return out;
}

}  // namespace

namespace {

// One strategy as a candidate, before it joins the others.
struct CandidateParts {
  policy::Candidate c;
  CandidateMetrics m;
};

// The candidate of `in` without its metrics (values all missing).
policy::Candidate candidate_of(const policy::Policy& pol, const StrategyInputs& in) {
  policy::Candidate c{.id = in.id,
                      .state = candidate_state(in.state),
                      .state_name = std::string(lifecycle::strategy_state_name(in.state))};
  if (in.state == StrategyState::kDryRun) c.dry_run_since = in.since;
  if (in.state == StrategyState::kLive) c.live_since = in.since;
  c.past = in.past;
  c.manual = in.manual;
  c.values.assign(pol.refs.size(), std::nullopt);
  return c;
}

CandidateParts candidate_parts(const policy::Policy& pol, const StrategyInputs& in,
                               bool explain = true) {
  CandidateParts out{.c = candidate_of(pol, in)};
  if (out.c.state != CandidateState::kOther) {
    out.m = candidate_metrics(pol, in.points, in.fills, explain);
  }
  return out;
}

void push(CandidateParts&& p, LoadedCandidates& out) {
  if (p.c.state != CandidateState::kOther) {
    if (p.m.error) out.load_errors[p.c.id] = std::move(*p.m.error);
    p.c.history = p.m.history;
    if (!p.m.values.empty()) p.c.values = std::move(p.m.values);
  } else {
    p.m = {};  // metrics of a state that is not evaluated are not shown
  }
  out.metric_values.push_back(std::move(p.m.shown));
  out.series.push_back(std::move(p.m.rs));
  out.cands.push_back(std::move(p.c));
}

// Below this many strategies the metrics are computed on the calling thread.
constexpr size_t kParallelFrom = 256;

}  // namespace

CandidateMetrics candidate_metrics(const policy::Policy& pol,
                                   std::span<const PerformancePoint> points,
                                   std::span<const FillRecord> fills, bool explain) {
  CandidateMetrics out;
  auto built = series_of(points, fills);
  if (!built) {
    out.error = built.error().message;
    return out;
  }
  out.rs = std::move(*built);
  if (!out.rs.ts.empty()) out.history = out.rs.ts.back() - out.rs.start;
  out.values = policy_values(pol, out.rs, pol.window, explain ? &out.shown : nullptr);
  return out;
}

void add_candidate(const policy::Policy& pol, const StrategyInputs& in, LoadedCandidates& out) {
  push(candidate_parts(pol, in), out);
}

void add_candidate(const policy::Policy& pol, const StrategyInputs& in, CandidateMetrics&& m,
                   LoadedCandidates& out) {
  push({.c = candidate_of(pol, in), .m = std::move(m)}, out);
}

void add_candidates(const policy::Policy& pol, std::span<const StrategyInputs> inputs,
                    LoadedCandidates& out, bool explain) {
  std::vector<CandidateParts> parts(inputs.size());
  const size_t threads = inputs.size() < kParallelFrom
                             ? 1
                             : std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8);
  // Strategy i goes to thread i % threads: the work is even without a queue.
  auto work = [&](size_t k) {
    for (size_t i = k; i < inputs.size(); i += threads)
      parts[i] = candidate_parts(pol, inputs[i], explain);
  };
  {
    std::vector<std::jthread> helpers;
    for (size_t k = 1; k < threads; ++k) helpers.emplace_back(work, k);
    work(0);
  }  // joined
  for (auto& p : parts) push(std::move(p), out);
}

policy::EvalContext run_context(lifecycle::WorldState state, TimePoint now) {
  policy::EvalContext ctx{.now = now};
  if (state == lifecycle::WorldState::kEvalOnly) {
    ctx.allow_promotion = false;
    ctx.promotion_blocked_why = "world is EvalOnly";
  }
  return ctx;
}

// (world_internal.h.) Every Live strategy is correlated because it holds its
// slot until its demotion completes; only pairs at or above the limit can
// join a group, so only those are kept.
policy::Correlations candidate_correlations(const policy::Policy& pol, const LoadedCandidates& in,
                                            const policy::EvalContext& ctx) {
  policy::Correlations corr;
  if (!pol.correlation) return corr;
  std::vector<size_t> ranked;
  const std::vector<size_t> ranks = policy::competing(pol, in.cands, ctx);
  for (size_t i = 0, k = 0; i < in.cands.size(); ++i) {
    const bool in_ranks = k < ranks.size() && ranks[k] == i;
    if (in_ranks) ++k;
    if (in_ranks || in.cands[i].state == CandidateState::kLive) ranked.push_back(i);
  }
  corr.pairs = correlated_among(in.cands, in.series, ranked,
                                pol.correlation->window.value_or(pol.window), pol.correlation->max);
  return corr;
}

policy::Selection select_candidates(const policy::Policy& pol, const LoadedCandidates& in,
                                    const policy::EvalContext& ctx,
                                    const policy::Correlations& corr) {
  policy::Selection sel = policy::select(pol, in.cands, ctx, corr);
  for (auto& r : sel.results) {
    if (auto it = in.load_errors.find(r.id); it != in.load_errors.end()) {
      r.decision = r.decision == policy::Decision::kPromote ? policy::Decision::kHold : r.decision;
      if (policy::explains(ctx, r.id)) {
        r.reasons.insert(r.reasons.begin(),
                         fmt::format("performance records cannot be evaluated: {}", it->second));
      }
    }
  }
  return sel;
}

policy::Selection select_candidates(const policy::Policy& pol, const LoadedCandidates& in,
                                    lifecycle::WorldState state, TimePoint now) {
  const policy::EvalContext ctx = run_context(state, now);
  return select_candidates(pol, in, ctx, candidate_correlations(pol, in, ctx));
}

namespace {

// One strategy's entry of the run's detail (docs/api.md, evaluation runs).
boost::json::object strategy_detail_json(
    const policy::StrategyResult& r, const policy::Candidate& c,
    const std::map<std::string, std::optional<double>>& shown) {
  boost::json::array reasons;
  for (const auto& x : r.reasons) reasons.emplace_back(x);
  return boost::json::object{
      {"state", c.state_name},
      {"metrics", shown_metrics_json(shown)},
      {"gate", r.gate.empty() ? boost::json::value(nullptr) : boost::json::value(r.gate)},
      {"clauses", clauses_json(r.clauses)},
      {"score", number_or_null(r.score)},
      {"rank", r.rank ? boost::json::value(*r.rank) : boost::json::value(nullptr)},
      {"group", r.group ? boost::json::value(*r.group) : boost::json::value(nullptr)},
      {"decision", policy::decision_name(r.decision)},
      {"reasons", std::move(reasons)},
      {"undoes_manual", r.undoes_manual}};
}

// The run's detail as stored and served (docs/api.md).
std::string run_detail_json(const EvaluationRunRecord& run, const LoadedCandidates& in,
                            const policy::Selection& sel) {
  boost::json::object strategies_json;
  for (size_t i = 0; i < sel.results.size(); ++i) {
    strategies_json[sel.results[i].id] =
        strategy_detail_json(sel.results[i], in.cands[i], in.metric_values[i]);
  }
  boost::json::array live;
  for (const auto& id : sel.live) live.emplace_back(id);
  const boost::json::object detail{{"world", run.world_id},
                                   {"policy_version", run.policy_version},
                                   {"started_at", format_timestamp(run.started_at)},
                                   {"finished_at", format_timestamp(run.finished_at)},
                                   {"live", std::move(live)},
                                   {"strategies", std::move(strategies_json)}};
  return json::dump(detail);
}

}  // namespace

Result<std::vector<policy::CorrelationPair>> correlated_pairs_of(
    store::Store& store, const std::vector<std::string>& ids, TimePoint now, Duration window,
    double max) {
  std::vector<policy::Candidate> cands(ids.size());
  std::vector<metrics::ReturnSeries> series(ids.size());
  std::vector<size_t> all(ids.size());
  const TimePoint from = now - window - std::chrono::hours(24 * 7);
  for (size_t i = 0; i < ids.size(); ++i) {
    cands[i].id = ids[i];
    all[i] = i;
    auto points = store.load_points(ids[i], from);
    if (!points) return propagate(points);
    std::vector<metrics::Sample> samples;
    samples.reserve(points->size());
    for (const auto& p : *points) samples.push_back({p.ts, p.equity});
    // A series that cannot be built has no correlation with anything.
    if (auto built = metrics::from_samples(metrics::SeriesKind::kEquity, samples)) {
      series[i] = std::move(*built);
    }
  }
  return correlated_among(cands, series, all, window, max);
}

boost::json::value number_or_null(std::optional<double> v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

boost::json::object shown_metrics_json(const std::map<std::string, std::optional<double>>& shown) {
  boost::json::object m;
  for (const auto& [name, v] : shown) m[name] = number_or_null(v);
  return m;
}

boost::json::array clauses_json(const std::vector<policy::ClauseResult>& clauses) {
  boost::json::array out;
  for (const auto& cl : clauses) {
    out.push_back({{"expr", cl.expr},
                   {"value", number_or_null(cl.value)},
                   {"pass", cl.pass == policy::Tri::kMissing
                                ? boost::json::value(nullptr)
                                : boost::json::value(cl.pass == policy::Tri::kTrue)}});
  }
  return out;
}

std::vector<std::optional<double>> policy_values(
    const policy::Policy& pol, const metrics::ReturnSeries& rs, Duration window,
    std::map<std::string, std::optional<double>>* shown) {
  std::vector<std::optional<double>> values(pol.refs.size());
  // One Metrics per distinct window (a policy has one or a few: a list, not a
  // map, as this runs per strategy and evaluation); worst_loss(w) is read over
  // the policy window.
  std::vector<std::pair<Duration, metrics::Metrics>> by_window;
  by_window.reserve(pol.refs.size() + 1);  // references stay valid
  auto metrics_for = [&](Duration w) -> const metrics::Metrics& {
    for (const auto& [d, m] : by_window) {
      if (d == w) return m;
    }
    metrics::MetricsOptions o{.window = w};
    for (const auto& ref : pol.refs.refs()) {
      if (ref.name == "worst_loss" && ref.arg) o.worst_loss_windows.push_back(*ref.arg);
    }
    return by_window.emplace_back(w, metrics::compute_metrics(rs, o)).second;
  };
  for (size_t k = 0; k < pol.refs.size(); ++k) {
    const auto& ref = pol.refs.refs()[k];
    const bool lookback_arg = ref.arg && ref.name != "worst_loss";
    const auto& m = metrics_for(lookback_arg ? *ref.arg : window);
    const auto v = m.get(ref.name, ref.name == "worst_loss" ? ref.arg : std::nullopt);
    values[k] = v ? v->value : std::nullopt;
    if (shown != nullptr) (*shown)[ref.text()] = values[k];
  }
  return values;
}

Result<std::optional<PerformancePoint>> WorldService::last_point(std::string_view strategy_id) {
  if (auto s = get_strategy(strategy_id); !s) return propagate(s);
  return store_.last_point(strategy_id);
}

Result<store::AppendOutcome> WorldService::record_performance(
    std::string_view strategy_id, std::span<const PerformancePoint> points,
    std::span<const FillRecord> fills, std::string_view actor) {
  auto s = get_strategy(strategy_id);
  if (!s) return propagate(s);
  if (s->state == StrategyState::kArchived) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("strategy '{}' is Archived and takes no more records", strategy_id));
  }
  if (auto w = writable_world(s->world_id); !w) return propagate(w);
  for (size_t i = 0; i < points.size(); ++i) {
    if (!std::isfinite(points[i].equity) || points[i].equity <= 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("points[{}]: equity must be a positive number", i));
    }
  }
  for (size_t i = 0; i < fills.size(); ++i) {
    const auto& f = fills[i];
    if (f.side != "buy" && f.side != "sell") {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("fills[{}]: side must be buy or sell", i));
    }
    if (f.symbol.empty() || f.symbol.size() > 64) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("fills[{}]: symbol must be 1-64 bytes", i));
    }
    if (!(f.qty > 0) || !(f.price > 0) || !std::isfinite(f.qty) || !std::isfinite(f.price) ||
        !std::isfinite(f.fee)) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("fills[{}]: qty and price must be positive and fee finite", i));
    }
  }
  const AuditRecord conflict{.at = clock_.now(),
                             .actor = std::string(actor),
                             .world_id = s->world_id,
                             .entity = "strategy",
                             .entity_id = s->id,
                             .event = "PERFORMANCE_CONFLICT"};
  // Stamped with when it became known: an evaluation at time t reads only what
  // was stored by t, so a replay can see exactly what the run saw.
  auto out = store_.append_performance(strategy_id, points, fills, &conflict, conflict.at);
  if (out && !out->conflicts.empty() && observer_ != nullptr) {
    observer_->world_changed(s->world_id);  // the audit log grew: alerts, streams
  }
  return out;
}

Result<EvaluationRunRecord> WorldService::evaluate_world(
    std::string_view world_id, std::string_view actor,
    const std::optional<store::ScheduleState>& schedule) {
  const auto lock = lock_world(world_id);
  const Notify notify(observer_, world_id);
  const auto start = std::chrono::steady_clock::now();
  auto result = evaluate_world_locked(world_id, actor, schedule);
  if (observer_ != nullptr) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    observer_->evaluation_finished(world_id, took.count(), result.has_value());
  }
  return result;
}

Result<EvaluationRunRecord> WorldService::evaluate_world_locked(
    std::string_view world_id, std::string_view actor,
    const std::optional<store::ScheduleState>& schedule) {
  const TimePoint started = clock_.now();
  auto w = get_world(world_id);
  if (!w) return propagate(w);
  auto prepared = prepare_run_locked(*w, started);
  if (!prepared) return propagate(prepared);
  EvaluationRunRecord& run = prepared->run;
  const AuditRecord audit{
      .at = run.finished_at,
      .actor = std::string(actor),
      .world_id = std::string(world_id),
      .entity = "evaluation",
      .event = "EVALUATE",
      .reason = fmt::format("policy v{}; {} strategies", run.policy_version, run.results.size())};
  auto id = store_.insert_evaluation_run(run, audit, schedule);
  if (!id) return propagate(id);
  run.id = *id;
  return std::move(run);
}

Result<WorldService::PreparedRun> WorldService::prepare_run_locked(const World& w,
                                                                   TimePoint started) {
  if (w.state == lifecycle::WorldState::kPaused || w.state == lifecycle::WorldState::kRetired) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("world '{}' is {}: it is not evaluated", w.id,
                                  lifecycle::world_state_name(w.state)));
  }
  auto parsed = parsed_policy(w.id);
  if (!parsed) return propagate(parsed);
  const policy::Policy* pol = parsed->native();
  if (pol == nullptr) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        "world evaluation needs a native policy; QMTL-form policies are evaluated with "
        "`qmtl policy eval`");
  }
  auto loaded = load_candidates(store_, w.id, *pol, started);
  if (!loaded) return propagate(loaded);
  const policy::Selection sel = select_candidates(*pol, *loaded, w.state, started);
  // A forecast (next_evaluation) is made for a later time: it finishes when it starts.
  const TimePoint finished = std::max(started, clock_.now());

  PreparedRun prepared;
  EvaluationRunRecord& run = prepared.run;
  run = EvaluationRunRecord{.world_id = w.id,
                            .policy_version = parsed->version,
                            .started_at = started,
                            .finished_at = finished};
  for (const auto& r : sel.results) {
    run.results.push_back({.strategy_id = r.id,
                           .decision = std::string(policy::decision_name(r.decision)),
                           .promote_pass = r.record.promote_pass,
                           .out = r.record.out});
    prepared.reasons.push_back(r.reasons);
  }
  run.detail = run_detail_json(run, *loaded, sel);
  return prepared;
}

Result<std::optional<store::ScheduleState>> WorldService::get_schedule(std::string_view world_id) {
  if (auto r = validate_id("world", world_id); !r) return propagate(r);
  return store_.get_schedule(world_id);
}

Result<void> WorldService::put_schedule(const store::ScheduleState& schedule) {
  if (auto r = validate_id("world", schedule.world_id); !r) return r;
  return store_.put_schedule(schedule);
}

Result<EvaluationRunRecord> WorldService::get_evaluation(std::string_view world_id,
                                                         std::string_view run_id) {
  if (auto r = validate_id("world", world_id); !r) return propagate(r);
  return store_.get_evaluation_run(world_id, run_id);
}

Result<std::optional<TimePoint>> WorldService::last_evaluation_finished(std::string_view world_id) {
  if (auto r = validate_id("world", world_id); !r) return propagate(r);
  return store_.last_evaluation_finished(world_id);
}

Result<std::vector<EvaluationRunRecord>> WorldService::list_evaluations(std::string_view world_id,
                                                                        size_t limit) {
  auto w = get_world(world_id);
  if (!w) return propagate(w);
  return store_.list_evaluation_runs(world_id, limit);
}

}  // namespace qmtl::world
