// WorldService::replay: a world's recorded evaluations run again, by the
// recorded policy versions or a candidate, over the stored history.
#include "qmtl/world/replay.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "qmtl/metrics/kpi.h"
#include "qmtl/policy/document.h"
#include "qmtl/world/performance_view.h"
#include "qmtl/world/world_internal.h"
#include "qmtl/world/world_service.h"

namespace qmtl::world {
namespace {

using lifecycle::StrategyState;
using lifecycle::WorldState;

// A strategy's state on one path (recorded or replayed) and since when.
struct PathState {
  std::optional<StrategyState> state;  // none before its submission
  TimePoint since;
};

// One strategy's stored records over the replayed span (and the lookback
// before it), oldest first, with when each was stored.
using Records = store::KnownRecords;

template <typename T>
std::span<const T> between(const std::vector<T>& v, TimePoint from, TimePoint to) {
  const auto lo =
      std::lower_bound(v.begin(), v.end(), from, [](const T& x, TimePoint t) { return x.ts < t; });
  const auto hi =
      std::upper_bound(lo, v.end(), to, [](TimePoint t, const T& x) { return t < x.ts; });
  return {lo, hi};
}

// The records of `v` stamped in [from, to]. `lo` is a hint, updated: where
// the previous span of `v` began. The runs go forward in time, so a span
// begins at or a little after the last one; walking from there (and to the
// span's end) reads the records the metrics read next anyway, where two
// binary searches per strategy and run were a twentieth of a replay.
template <typename T>
std::span<const T> between_from(const std::vector<T>& v, TimePoint from, TimePoint to, size_t& lo) {
  if (lo > v.size() || (lo > 0 && v[lo - 1].ts >= from)) {
    lo = static_cast<size_t>(std::lower_bound(v.begin(), v.end(), from,
                                              [](const T& x, TimePoint t) { return x.ts < t; }) -
                             v.begin());
  }
  while (lo < v.size() && v[lo].ts < from) ++lo;
  size_t hi = lo;
  while (hi < v.size() && v[hi].ts <= to) ++hi;
  return {v.data() + lo, hi - lo};
}

// The records of `v` stamped in [from, to] and stored by `to`: a span of `v`
// when none of them was stored later (the usual case), else a copy in `buf`.
template <typename T>
std::span<const T> known_between(const std::vector<T>& v, const std::vector<TimePoint>& known,
                                 TimePoint from, TimePoint to, size_t& lo, std::vector<T>& buf) {
  const std::span<const T> in = between_from(v, from, to, lo);
  const auto late = [&](size_t i) { return known[lo + i] > to; };
  bool any = false;
  for (size_t i = 0; i < in.size() && !any; ++i) any = late(i);
  if (!any) return in;
  buf.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (!late(i)) buf.push_back(in[i]);
  }
  return buf;
}

// What one earlier run recorded (or the replay decided) for the hysteresis, by
// strategy index.
struct PastRun {
  TimePoint at;
  std::vector<std::optional<policy::PastEvaluation>> by_strategy;
};

std::string show_value(const std::optional<double>& v) {
  return v ? fmt::format("{:.6g}", *v) : std::string("missing");
}

std::string show_pass(const boost::json::value& p) {
  return p.is_bool() ? (p.as_bool() ? "true" : "false") : "missing";
}

// Why a replay of the recorded policy decided otherwise than the run did: the
// first clause whose value or result differs from the run's record, else the
// state it was evaluated in, else the replay's reasons.
std::string why_different(const boost::json::value* recorded, const policy::StrategyResult& r,
                          std::string_view replayed_state) {
  if (recorded != nullptr && recorded->is_object()) {
    const auto& o = recorded->as_object();
    if (const auto* st = o.if_contains("state");
        st && st->is_string() && st->as_string() != replayed_state) {
      return fmt::format("evaluated as {} (recorded as {}): an earlier decision differs",
                         replayed_state, std::string_view(st->as_string()));
    }
    const auto* cl = o.if_contains("clauses");
    const auto* clauses = cl && cl->is_array() ? &cl->as_array() : nullptr;
    for (size_t i = 0; clauses && i < std::max(clauses->size(), r.clauses.size()); ++i) {
      const boost::json::value* rec = i < clauses->size() ? &(*clauses)[i] : nullptr;
      if (rec == nullptr || !rec->is_object()) {
        return fmt::format("{} gate: {} was not in the recorded run", r.gate, r.clauses[i].expr);
      }
      const auto& ro = rec->as_object();
      const std::string expr = ro.contains("expr") && ro.at("expr").is_string()
                                   ? std::string(ro.at("expr").as_string())
                                   : std::string("?");
      if (i >= r.clauses.size())
        return fmt::format("the recorded clause {} was not replayed", expr);
      const auto& c = r.clauses[i];
      const auto& rv = ro.contains("value") ? ro.at("value") : boost::json::value(nullptr);
      const std::optional<double> recorded_value =
          rv.is_number() ? std::optional<double>(rv.to_number<double>()) : std::nullopt;
      const boost::json::value rp = ro.contains("pass") ? ro.at("pass") : nullptr;
      const boost::json::value cp = c.pass == policy::Tri::kMissing
                                        ? boost::json::value(nullptr)
                                        : boost::json::value(c.pass == policy::Tri::kTrue);
      if (expr != c.expr || recorded_value != c.value || rp != cp) {
        return fmt::format("{} gate: {} was {} ({}), replays {} ({})", r.gate, c.expr,
                           show_value(recorded_value), show_pass(rp), show_value(c.value),
                           show_pass(cp));
      }
    }
  }
  std::string out;
  for (const auto& reason : r.reasons) out += (out.empty() ? "" : "; ") + reason;
  return out;
}

// The equity of holding `live` (a timeline of live sets) in equal weights over
// [start, end]: at each record time, the mean of the live strategies' returns
// since the previous record time (a strategy without a record then counts 0).
std::vector<PerformancePoint> book_equity(const std::vector<LiveSet>& live,
                                          const std::map<std::string, const Records*>& records,
                                          const std::set<TimePoint>& grid) {
  const TimePoint start = *grid.begin();
  auto equity_at = [&](const std::string& id, TimePoint t) -> std::optional<double> {
    auto it = records.find(id);
    if (it == records.end()) return std::nullopt;
    const auto& pts = it->second->points;
    auto p = std::upper_bound(pts.begin(), pts.end(), t,
                              [](TimePoint x, const PerformancePoint& q) { return x < q.ts; });
    if (p == pts.begin()) return std::nullopt;
    return std::prev(p)->equity;
  };
  std::vector<PerformancePoint> out{{start, 1.0}};
  size_t k = 0;  // live[k] is in force at `prev`
  TimePoint prev = start;
  for (auto it = std::next(grid.begin()); it != grid.end(); ++it) {
    while (k + 1 < live.size() && live[k + 1].at <= prev) ++k;
    double sum = 0;
    const auto& held =
        live.empty() || live[k].at > prev ? std::vector<std::string>{} : live[k].live;
    for (const auto& id : held) {
      const auto a = equity_at(id, prev), b = equity_at(id, *it);
      if (a && b && *a > 0) sum += *b / *a - 1;
    }
    const double r = held.empty() ? 0.0 : sum / static_cast<double>(held.size());
    out.push_back({*it, out.back().equity * (1 + r)});
    prev = *it;
  }
  return out;
}

std::map<std::string, std::optional<double>> book_kpis(const std::vector<PerformancePoint>& eq) {
  std::map<std::string, std::optional<double>> out;
  std::vector<metrics::Sample> samples;
  samples.reserve(eq.size());
  for (const auto& p : eq) samples.push_back({p.ts, p.equity});
  auto rs = metrics::from_samples(metrics::SeriesKind::kEquity, samples);
  if (!rs || eq.size() < 2) return out;
  const auto m = metrics::compute_metrics(*rs, {});
  for (auto name : metrics::metric_names()) {
    if (name == "worst_loss") continue;  // needs a window argument
    if (auto v = m.get(name)) out[std::string(name)] = v->value;
  }
  return out;
}

// Each replayed run's candidate metrics, computed ahead of the walk on other
// threads while the walk selects: a strategy's metrics at a run depend only on
// its records, the run's policy and time (candidate_metrics), never on the
// replayed path, so the selection (serial: it carries the path) and the
// metrics (most of the rest) overlap. Workers claim runs in order, at most
// kAhead beyond the one the walk takes; when the walk needs a run no worker
// has claimed, it computes that run itself (so it never waits on a worker
// that is behind, and no core idles whichever side is slower).
class MetricsAhead {
 public:
  struct Job {
    const EvaluationRunRecord* run;
    const policy::Policy* pol;
  };
  // By strategy index; set for the strategies the run read.
  using RunMetrics = std::vector<std::optional<CandidateMetrics>>;
  // What was allocated for a run, given back when the walk is done with it:
  // freed by the thread that computed it, in its own malloc arena. (Freed by
  // the walk's thread, the blocks went back to a worker's arena under its
  // lock, the threads contended for it and the arena shrank and grew: that
  // cost more than the metrics themselves.)
  struct Spent {
    RunMetrics metrics;
    std::vector<metrics::ReturnSeries> series;
    std::vector<std::vector<std::optional<double>>> values;
  };

  // `records` and `index` (strategy id -> index into records) outlive this.
  MetricsAhead(const std::vector<Records>& records,
               const std::map<std::string, size_t, std::less<>>& index, std::vector<Job> jobs)
      : records_(records),
        index_(index),
        jobs_(std::move(jobs)),
        owner_(jobs_.size(), kWalk),
        own_cursors_(records.size()) {
    const size_t n =
        std::min(std::clamp<size_t>(std::thread::hardware_concurrency(), 2, 8) - 1, jobs_.size());
    spent_.resize(n);
    for (size_t w = 0; w < n; ++w) workers_.emplace_back([this, w] { work(w); });
  }
  MetricsAhead(const MetricsAhead&) = delete;
  MetricsAhead& operator=(const MetricsAhead&) = delete;
  ~MetricsAhead() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
  }  // workers_ join

  // The metrics of job k: computed here when no worker has claimed it, else
  // waited for. Called for k = 0, 1, 2, ... in order, from one thread.
  RunMetrics take(size_t k) {
    std::unique_lock lock(mu_);
    next_ = k;
    if (claimed_ == k) {
      ++claimed_;
      lock.unlock();
      cv_.notify_all();  // the window moved
      return compute(k, own_cursors_);
    }
    cv_.wait(lock, [&] { return done_.contains(k); });
    RunMetrics out = std::move(done_.at(k));
    done_.erase(k);
    next_ = k + 1;
    lock.unlock();
    cv_.notify_all();
    return out;
  }
  // Job k's allocations, back to the thread that made them (see Spent).
  void give_back(size_t k, Spent spent) {
    std::unique_lock lock(mu_);
    if (owner_[k] == kWalk) {
      lock.unlock();
      return;  // `spent` goes here
    }
    spent_[owner_[k]].push_back(std::move(spent));
  }

 private:
  static constexpr size_t kAhead = 4;
  static constexpr size_t kWalk = std::numeric_limits<size_t>::max();  // owner: the walk
  // Where each strategy's last (points, fills) span began (see between_from).
  using Cursors = std::vector<std::pair<size_t, size_t>>;

  void work(size_t w) {
    Cursors cursors(records_.size());
    for (;;) {
      std::vector<Spent> spent;
      size_t k = 0;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock,
                 [&] { return stop_ || claimed_ >= jobs_.size() || claimed_ < next_ + kAhead; });
        if (stop_ || claimed_ >= jobs_.size()) return;
        k = claimed_++;
        owner_[k] = w;
        spent.swap(spent_[w]);
      }
      spent.clear();  // here, not under the lock
      RunMetrics out = compute(k, cursors);
      {
        std::lock_guard lock(mu_);
        done_.emplace(k, std::move(out));
      }
      cv_.notify_all();
    }
  }

  RunMetrics compute(size_t k, Cursors& cursors) const {
    const auto& [run, pol] = jobs_[k];
    const TimePoint t = run->started_at;
    const TimePoint from = records_from(*pol, t);
    // Copies for the records stored late (see known_between).
    std::vector<PerformancePoint> points_buf;
    std::vector<FillRecord> fills_buf;
    RunMetrics out(records_.size());
    for (const auto& row : run->results) {
      const auto it = index_.find(row.strategy_id);
      if (it == index_.end()) continue;
      const size_t i = it->second;
      const auto& rec = records_[i];
      auto& [points_lo, fills_lo] = cursors[i];
      const auto points =
          known_between(rec.points, rec.points_known_at, from, t, points_lo, points_buf);
      const auto fills = known_between(rec.fills, rec.fills_known_at, from, t, fills_lo, fills_buf);
      out[i] = candidate_metrics(*pol, points, fills, false);
    }
    return out;
  }

  const std::vector<Records>& records_;
  const std::map<std::string, size_t, std::less<>>& index_;
  const std::vector<Job> jobs_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<size_t, RunMetrics> done_;      // by job, computed by a worker; guarded by mu_
  std::vector<size_t> owner_;              // by job: its worker, or kWalk; guarded by mu_
  std::vector<std::vector<Spent>> spent_;  // by worker; guarded by mu_
  size_t claimed_ = 0;                     // the next job nobody computes yet; guarded by mu_
  size_t next_ = 0;                        // the job the walk takes next; guarded by mu_
  bool stop_ = false;                      // guarded by mu_
  Cursors own_cursors_;                    // the walk's, for the jobs it computes
  std::vector<std::jthread> workers_;      // last: joined before the members they use go
};

// The replay's walk over the audit log (see replay.h): two paths of strategy
// states, the world's state, and the hysteresis record the replay carries.
class Walk {
 public:
  // records[i] belongs to ids[i].
  Walk(store::Store& store, std::vector<std::string> ids, std::vector<Records> records)
      : store_(store), ids_(std::move(ids)), records_(std::move(records)) {
    for (size_t i = 0; i < ids_.size(); ++i) index_[ids_[i]] = i;
    recorded_.resize(ids_.size());
    replayed_.resize(ids_.size());
  }

  // A recorded state change. `policy_made` when a replayed run's apply made
  // it: the replayed path then follows its own decisions instead.
  void transition(const StrategyTransition& t, bool policy_made) {
    auto it = index_.find(t.strategy);
    if (it == index_.end()) return;
    recorded_[it->second] = {t.to, t.at};
    if (!policy_made) replayed_[it->second] = {t.to, t.at};
    if (started_ && (t.event == "PROMOTE" || t.event == "DEMOTE")) {
      const bool up = t.event == "PROMOTE";
      ++(up ? recorded_moves_.first : recorded_moves_.second);
      if (!policy_made) ++(up ? replayed_moves_.first : replayed_moves_.second);
    }
    note_live(t.at);
  }
  void world_state(WorldState s) { world_ = s; }

  // A run before the span: its records are the replay's starting hysteresis.
  void recorded_run(const EvaluationRunRecord& run) {
    PastRun p{.at = run.started_at,
              .by_strategy = std::vector<std::optional<policy::PastEvaluation>>(ids_.size())};
    for (const auto& row : run.results) {
      if (auto it = index_.find(row.strategy_id); it != index_.end()) {
        p.by_strategy[it->second] = policy::PastEvaluation{
            .at = run.started_at, .promote_pass = row.promote_pass, .out = row.out};
      }
    }
    past_.push_back(std::move(p));
  }

  // Evaluates `pol` at the run's start on the replayed path, with the run's
  // candidate metrics computed ahead (MetricsAhead); compares with what the
  // run recorded.
  // Returns what it took from `metrics`, for MetricsAhead::give_back.
  MetricsAhead::Spent replay_run(const EvaluationRunRecord& run, const policy::Policy& pol,
                                 MetricsAhead::RunMetrics metrics, bool candidate, bool explain,
                                 ReplayReport& report) {
    if (!started_) {
      started_ = true;
      start_ = run.started_at;
      recorded_book_.push_back({run.started_at, live_of(recorded_)});
      replayed_book_.push_back({run.started_at, live_of(replayed_)});
    }
    const TimePoint t = run.started_at;
    const auto [history_runs, history_since] = history_needed(pol, t);
    std::vector<size_t> order;
    // What the run recorded for a strategy ("" when it did not evaluate it).
    // list_evaluation_runs gives the results sorted by strategy id.
    auto recorded_of = [&](const std::string& id) -> std::string_view {
      const auto hit = std::lower_bound(run.results.begin(), run.results.end(), id,
                                        [](const store::EvaluationResultRow& e,
                                           const std::string& x) { return e.strategy_id < x; });
      return hit != run.results.end() && hit->strategy_id == id ? std::string_view(hit->decision)
                                                                : std::string_view();
    };
    LoadedCandidates loaded;
    for (size_t i = 0; i < ids_.size(); ++i) {
      const auto& st = replayed_[i];
      // The run's strategies are the ones it read (and MetricsAhead computed).
      // A strategy submitted while it ran is audited before the run's record
      // but was not read by it.
      if (!st.state || !metrics[i]) continue;
      StrategyInputs in{.id = ids_[i], .state = *st.state, .since = st.since};
      // The newest `history_runs` runs started at or after history_since, oldest first.
      size_t taken = 0;
      for (auto p = past_.rbegin();
           p != past_.rend() && taken < history_runs && p->at >= history_since; ++p, ++taken) {
        if (p->by_strategy[i]) in.past.push_back(*p->by_strategy[i]);
      }
      std::reverse(in.past.begin(), in.past.end());
      add_candidate(pol, in, std::move(*metrics[i]), loaded);
      order.push_back(i);
    }
    // Decisions first, without reasons (making them is most of a selection's
    // cost); the run is selected again with the reasons of the decisions that
    // differ, or of all when the run is explained.
    policy::EvalContext ctx = run_context(world_, t);
    ctx.explain = false;
    const policy::Correlations corr = candidate_correlations(pol, loaded, ctx);
    policy::Selection sel = select_candidates(pol, loaded, ctx, corr);
    // By result (the explained selection gives them in the same order).
    std::vector<std::string_view> recorded_by(sel.results.size());
    std::vector<std::string> differing;
    for (size_t k = 0; k < sel.results.size(); ++k) {
      const auto& r = sel.results[k];
      recorded_by[k] = recorded_of(r.id);
      if (recorded_by[k] != policy::decision_name(r.decision)) differing.push_back(r.id);
    }
    if (explain || !differing.empty()) {
      std::sort(differing.begin(), differing.end());
      ctx.explain = true;
      if (!explain) ctx.explain_only = differing;
      sel = select_candidates(pol, loaded, ctx, corr);
    }
    // The run's explanation is read only to say why a decision differs.
    std::optional<boost::json::value> detail;
    auto recorded_detail = [&](const std::string& id) -> const boost::json::value* {
      if (candidate) return nullptr;
      if (!detail) {
        auto full = store_.get_evaluation_run(run.world_id, run.id);
        auto d =
            full ? json::parse(full->detail) : Result<boost::json::value>(boost::json::value());
        detail = d && d->is_object() ? std::move(*d) : boost::json::value(nullptr);
      }
      if (!detail->is_object()) return nullptr;
      const auto* s = detail->as_object().if_contains("strategies");
      return s && s->is_object() ? s->as_object().if_contains(id) : nullptr;
    };
    PastRun record{.at = t,
                   .by_strategy = std::vector<std::optional<policy::PastEvaluation>>(ids_.size())};
    auto& decisions = decisions_[run.id];
    for (size_t k = 0; k < sel.results.size(); ++k) {
      const auto& r = sel.results[k];
      const size_t i = order[k];
      record.by_strategy[i] = r.record;
      decisions.emplace_back(i, r.decision);
      const std::string_view replayed = policy::decision_name(r.decision);
      const std::string_view recorded = recorded_by[k];
      ++report.decisions;
      if (explain) {
        report.run_decisions.push_back({.strategy = r.id,
                                        .state = loaded.cands[k].state_name,
                                        .recorded = std::string(recorded),
                                        .replayed = std::string(replayed),
                                        .score = r.score,
                                        .rank = r.rank,
                                        .reasons = r.reasons});
      }
      if (recorded == replayed) continue;
      const boost::json::value* rec = recorded_detail(r.id);
      report.differences.push_back(
          {.run = run.id,
           .at = t,
           .strategy = r.id,
           .recorded = std::string(recorded),
           .replayed = std::string(replayed),
           .why = candidate ? why_different(nullptr, r, "")
                            : why_different(rec, r, loaded.cands[k].state_name)});
    }
    past_.push_back(std::move(record));
    ++report.runs;
    if (!report.from) report.from = t;
    report.until = t;
    MetricsAhead::Spent spent{.metrics = std::move(metrics), .series = std::move(loaded.series)};
    spent.values.reserve(loaded.cands.size());
    for (auto& c : loaded.cands) spent.values.push_back(std::move(c.values));
    return spent;
  }

  // The apply of a replayed run: its replayed decisions take effect at `at`.
  void apply(const std::string& run_id, TimePoint at) {
    auto it = decisions_.find(run_id);
    if (it == decisions_.end()) return;
    for (const auto& [i, d] : it->second) {
      auto& st = replayed_[i];
      if (d == policy::Decision::kPromote && st.state == StrategyState::kDryRun) {
        st = {StrategyState::kLive, at};
        ++replayed_moves_.first;
      } else if (d == policy::Decision::kDemote && st.state == StrategyState::kLive) {
        st = {StrategyState::kDryRun, at};
        ++replayed_moves_.second;
      }
    }
    note_live(at);
  }

  bool replayed(const std::string& run_id) const { return decisions_.contains(run_id); }
  bool started() const { return started_; }
  const std::vector<Records>& records() const { return records_; }
  const std::map<std::string, size_t, std::less<>>& index() const { return index_; }

  void finish(ReplayReport& report, TimePoint end) {
    if (!started_) return;
    std::map<std::string, const Records*> recs;
    for (size_t i = 0; i < ids_.size(); ++i) recs[ids_[i]] = &records_[i];
    // Both books on one grid: the record times of every strategy either held.
    std::set<TimePoint> grid{start_};
    std::set<std::string> ever;
    for (const auto* book : {&recorded_book_, &replayed_book_}) {
      for (const auto& l : *book) ever.insert(l.live.begin(), l.live.end());
    }
    for (const auto& id : ever) {
      for (const auto& p : between(records_[index_.at(id)].points, start_, std::max(end, start_))) {
        grid.insert(p.ts);
      }
    }
    for (auto [book, live] : {std::pair{&report.recorded, &recorded_book_},
                              std::pair{&report.replayed, &replayed_book_}}) {
      book->live = *live;
      book->equity = book_equity(*live, recs, grid);
      book->kpis = book_kpis(book->equity);
    }
    std::tie(report.recorded.promotions, report.recorded.demotions) = recorded_moves_;
    std::tie(report.replayed.promotions, report.replayed.demotions) = replayed_moves_;
  }

 private:
  std::vector<std::string> live_of(const std::vector<PathState>& path) const {
    std::vector<std::string> out;
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (path[i].state == StrategyState::kLive) out.push_back(ids_[i]);
    }
    return out;
  }
  void note_live(TimePoint at) {
    if (!started_) return;
    for (auto [book, path] :
         {std::pair{&recorded_book_, &recorded_}, std::pair{&replayed_book_, &replayed_}}) {
      auto now = live_of(*path);
      if (now == book->back().live) continue;
      // The changes of one apply (or of one instant) make one entry.
      if (at <= book->back().at) {
        book->back().live = std::move(now);
        if (book->size() > 1 && (*book)[book->size() - 2].live == book->back().live) {
          book->pop_back();
        }
      } else {
        book->push_back({std::max(at, book->back().at), std::move(now)});
      }
    }
  }

  store::Store& store_;           // for a run's explanation, when a decision differs
  std::vector<std::string> ids_;  // every strategy of the world, by id
  std::map<std::string, size_t, std::less<>> index_;
  std::vector<Records> records_;  // by strategy index
  std::vector<PathState> recorded_, replayed_;
  WorldState world_ = WorldState::kActive;
  std::vector<PastRun> past_;
  std::map<std::string, std::vector<std::pair<size_t, policy::Decision>>> decisions_;
  bool started_ = false;
  TimePoint start_;
  std::vector<LiveSet> recorded_book_, replayed_book_;
  std::pair<size_t, size_t> recorded_moves_, replayed_moves_;  // promotions, demotions
};

bool is_world_state_event(std::string_view e) {
  return e == "CREATE" || e == "ACTIVATE" || e == "EVAL_ONLY" || e == "PAUSE" || e == "RETIRE";
}

// Whether the replay of `opt` replays run `r` (else it is history).
bool replays(const ReplayOptions& opt, const EvaluationRunRecord& r) {
  return opt.run ? r.id == *opt.run : r.started_at >= opt.from && r.started_at <= opt.until;
}

using RunIndex = std::map<std::string, const EvaluationRunRecord*, std::less<>>;

// The walk over the audit log, in its order: world states, strategy
// transitions, the runs before the span (the hysteresis it starts from), the
// runs it replays (by `policy_of(run)`, with their metrics computed ahead)
// and their applies.
template <typename PolicyOf>
void walk_audit(std::span<const AuditRecord> audit, const RunIndex& run_by_id,
                const ReplayOptions& opt, ReplayReport& report, Walk& walk, PolicyOf policy_of) {
  auto run_of = [&](const AuditRecord& a) -> const EvaluationRunRecord* {
    if (a.entity == "strategy" || a.event != "EVALUATE" || !a.run_id) return nullptr;
    const auto it = run_by_id.find(*a.run_id);
    return it != run_by_id.end() ? it->second : nullptr;
  };
  // The runs the walk replays, in its order.
  std::vector<MetricsAhead::Job> jobs;
  for (const auto& a : audit) {
    if (const auto* run = run_of(a); run && replays(opt, *run)) {
      jobs.push_back({.run = run, .pol = &policy_of(*run)});
    }
  }
  MetricsAhead ahead(walk.records(), walk.index(), std::move(jobs));
  size_t taken = 0;
  for (const auto& a : audit) {
    if (a.entity == "world" && a.after && is_world_state_event(a.event)) {
      if (auto s = lifecycle::parse_world_state(*a.after)) walk.world_state(*s);
    } else if (a.entity == "strategy") {
      for (const auto& t : transitions_of(std::span(&a, 1))) {
        const bool policy_made =
            t.run_id && walk.replayed(*t.run_id) && (t.event == "PROMOTE" || t.event == "DEMOTE");
        walk.transition(t, policy_made);
      }
    } else if (const auto* run = run_of(a)) {
      if (!replays(opt, *run)) {
        if (report.runs > 0 && (opt.run || run->started_at > opt.until)) break;
        walk.recorded_run(*run);
        continue;
      }
      ahead.give_back(taken, walk.replay_run(*run, policy_of(*run), ahead.take(taken),
                                             report.candidate, opt.run.has_value(), report));
      ++taken;
    } else if (a.event == "APPLY_SWITCH" && a.run_id) {
      walk.apply(*a.run_id, a.at);
    }
  }
}

}  // namespace

Result<ReplayReport> WorldService::replay(std::string_view world_id, const ReplayOptions& opt) {
  auto w = get_world(world_id);
  if (!w) return propagate(w);
  if (opt.from > opt.until) {
    return make_error(ErrorCode::kInvalidArgument, "the replay's from is after its until");
  }
  std::optional<policy::Policy> candidate;
  if (!opt.policy.empty()) {
    auto doc = policy::parse_policy_document(opt.policy, "candidate policy");
    if (!doc) return propagate(doc);
    const policy::Policy* native = policy::native_policy(*doc);
    if (native == nullptr) {
      return make_error(ErrorCode::kInvalidArgument,
                        "a replay needs a native policy; QMTL-form policies are not "
                        "world-evaluated");
    }
    candidate = *native;
  }
  auto strategies = store_.list_strategies(world_id);
  if (!strategies) return propagate(strategies);
  constexpr auto kAll = static_cast<size_t>(std::numeric_limits<int64_t>::max());
  auto audit = store_.list_audit(world_id, 0, kAll);
  if (!audit) return propagate(audit);
  // Without their explanations (a run's is read only when a decision differs).
  auto runs = store_.list_evaluation_runs(world_id, kAll, TimePoint::min(), false);
  if (!runs) return propagate(runs);
  RunIndex run_by_id;
  for (const auto& r : *runs) run_by_id[r.id] = &r;

  // The policies of the runs in the span, and how far back their metrics read.
  std::map<int64_t, ParsedPolicy> versions;
  TimePoint lo = TimePoint::max(), hi = TimePoint::min();
  auto in_span = [&](const EvaluationRunRecord& r) { return replays(opt, r); };
  if (opt.run && !run_by_id.contains(*opt.run)) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("world '{}' has no evaluation run '{}'", world_id, *opt.run));
  }
  for (const auto& r : *runs) {
    if (!in_span(r)) continue;
    const policy::Policy* pol = candidate ? &*candidate : nullptr;
    if (!pol) {
      if (!versions.contains(r.policy_version)) {
        auto p = parsed_policy(world_id, r.policy_version);
        if (!p) return propagate(p);
        if (p->native() == nullptr) {
          return make_error(ErrorCode::kFailedPrecondition,
                            fmt::format("run '{}' was made by QMTL-form policy v{}, which is not "
                                        "world-evaluated: nothing to replay",
                                        r.id, r.policy_version));
        }
        versions.emplace(r.policy_version, std::move(*p));
      }
      pol = versions.at(r.policy_version).native();
    }
    lo = std::min(lo, records_from(*pol, r.started_at));
    hi = std::max(hi, r.started_at);
  }
  // The books run to `until`, or to the newest record: what the live set
  // after the last run has earned since. (Decisions read only what each run
  // could; the books read every record.)
  const bool open_end = !opt.run && opt.until == TimePoint::max();
  TimePoint end = opt.run ? hi : opt.until;

  std::vector<std::string> ids;
  std::vector<Records> records;
  for (const auto& s : *strategies) {
    ids.push_back(s.id);
    Records& rec = records.emplace_back();
    if (lo > hi) continue;  // no run in the span
    auto known = store_.load_known_records(s.id, lo, end);
    if (!known) return propagate(known);
    rec = std::move(*known);
  }
  if (open_end) {
    end = hi;
    for (const auto& r : records) {
      if (!r.points.empty()) end = std::max(end, r.points.back().ts);
    }
  }

  ReplayReport report{.world = std::string(world_id), .candidate = candidate.has_value()};
  Walk walk(store_, std::move(ids), std::move(records));
  walk_audit(*audit, run_by_id, opt, report, walk,
             [&](const EvaluationRunRecord& run) -> const policy::Policy& {
               return candidate ? *candidate : *versions.at(run.policy_version).native();
             });
  walk.finish(report, end);
  return report;
}

}  // namespace qmtl::world
