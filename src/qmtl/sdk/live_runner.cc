// Runner::run: a strategy on live bars, its orders routed by the world's
// decisions (see runner.h for the contract).
#include <fmt/format.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "qmtl/core/time.h"
#include "qmtl/sdk/event_stream.h"
#include "qmtl/sdk/runner.h"

namespace qmtl::sdk {
namespace {

using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock::time_point;

constexpr milliseconds kReadSlice{200};
constexpr size_t kMaxQueued = 1'000'000;

void say(const RunOptions& o, std::string_view line) {
  if (o.log) o.log(line);
}

// Sleeps `d` unless a stop is requested first; false when stopped.
bool sleep_for(std::stop_token stop, milliseconds d) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  return !cv.wait_for(lock, stop, d, [] { return false; });
}

// Follows the world's event stream and keeps the gate current.
class Follower {
 public:
  Follower(const RunOptions& o, OrderGate& gate) : o_(o), gate_(gate) {}

  void run(std::stop_token stop) {
    milliseconds backoff = o_.backoff_min;
    while (!stop.stop_requested()) {
      auto stream = EventStream::open({.base_url = o_.gateway_url,
                                       .token = o_.token,
                                       .world = o_.world_id,
                                       .strategy = o_.strategy_id,
                                       .last_event_id = last_id_});
      if (stream) {
        follow(**stream, stop, backoff);
      } else {
        say(o_, fmt::format("event stream: {}; retrying in {} ms", stream.error().message,
                            backoff.count()));
      }
      disconnect();
      if (!sleep_for(stop, backoff)) break;
      backoff = std::min(backoff * 2, o_.backoff_max);
    }
    disconnect();
  }

  uint64_t connects() const { return connects_.load(); }

  // Waits until the first snapshot has arrived, at most `timeout`.
  bool wait_first_snapshot(std::stop_token stop, milliseconds timeout) {
    std::unique_lock lock(first_mu_);
    return first_cv_.wait_for(lock, stop, timeout, [&] { return connects_.load() > 0; });
  }

 private:
  void follow(EventStream& stream, std::stop_token stop, milliseconds& backoff) {
    SteadyTime heard = std::chrono::steady_clock::now();
    while (!stop.stop_requested()) {
      auto e = stream.next(kReadSlice);
      if (!e) {
        say(o_, fmt::format("event stream: {}; reconnecting", e.error().message));
        return;
      }
      const auto now = std::chrono::steady_clock::now();
      if (!*e) {
        // Silence beyond the TTL: the connection may be dead without an error.
        if (now - heard > ttl_) {
          say(o_, fmt::format("event stream: nothing heard for {} ms; reconnecting",
                              std::chrono::duration_cast<milliseconds>(now - heard).count()));
          return;
        }
        continue;
      }
      heard = now;
      if (stream.last_event_id()) last_id_ = stream.last_event_id();
      if (auto r = apply(**e); !r) {
        say(o_, fmt::format("event stream: {}; reconnecting", r.error().message));
        return;
      }
      if ((*e)->type == "snapshot") backoff = o_.backoff_min;
    }
  }

  void disconnect() {
    if (!connected_) return;
    connected_ = false;
    gate_.set_connected(false);
    if (o_.on_gate) o_.on_gate(gate_.view());
  }

  void take_entries(const boost::json::value& data) {
    const auto* activation =
        data.is_object() ? data.as_object().if_contains("activation") : nullptr;
    if (activation == nullptr || !activation->is_object()) return;
    const auto* entries = activation->as_object().if_contains("entries");
    if (entries == nullptr || !entries->is_array()) return;
    for (const auto& v : entries->as_array()) {
      if (!v.is_object()) continue;
      const auto& en = v.as_object();
      const auto* id = en.if_contains("strategy");
      if (id == nullptr || !id->is_string() || id->as_string() != o_.strategy_id) continue;
      const auto* side = en.if_contains("side");
      if (side == nullptr || !side->is_string()) continue;
      GateEntry g;
      const auto* active = en.if_contains("active");
      const auto* frozen = en.if_contains("frozen");
      const auto* ttl = en.if_contains("ttl_s");
      // A malformed entry stays closed.
      g.active = active != nullptr && active->is_bool() && active->as_bool();
      g.frozen = frozen == nullptr || !frozen->is_bool() || frozen->as_bool();
      if (ttl != nullptr && ttl->is_number()) {
        const double secs = ttl->to_number<double>();
        if (secs > 0) {
          g.ttl = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(secs));
          ttl_ = std::chrono::duration_cast<std::chrono::steady_clock::duration>(g.ttl);
        }
      }
      gate_.set_entry(side->as_string() == "short" ? broker::Side::kSell : broker::Side::kBuy, g);
    }
  }

  // Queues the hand-over of `event` (PROMOTE or DEMOTE) by the policy in
  // `holder`'s "position" (an event's data, or a snapshot's strategy), with
  // the defaults (flat, flatten) when it names none.
  void queue_handover(const std::string& event, const boost::json::value& holder,
                      std::optional<std::string> run_id) {
    const bool promote = event == "PROMOTE";
    auto policy = string_at(holder, {"position", promote ? "on_promote" : "on_demote"});
    std::lock_guard lock(handover_mu_);
    handovers_.push_back({.event = event,
                          .policy = policy.value_or(promote ? "flat" : "flatten"),
                          .run_id = std::move(run_id)});
  }

  static std::optional<std::string> string_at(const boost::json::value& v,
                                              std::initializer_list<std::string_view> path) {
    const boost::json::value* cur = &v;
    for (auto key : path) {
      if (!cur->is_object()) return std::nullopt;
      cur = cur->as_object().if_contains(key);
      if (cur == nullptr) return std::nullopt;
    }
    if (!cur->is_string()) return std::nullopt;
    return std::string(cur->as_string());
  }

  Result<void> apply(const ServerEvent& e) {
    auto data = json::parse(e.data);
    if (!data) return propagate(data);
    if (e.type == "heartbeat") {
      const auto* ttl = data->is_object() ? data->as_object().if_contains("ttl_s") : nullptr;
      if (ttl != nullptr && ttl->is_number() && ttl->to_number<double>() > 0) {
        ttl_ = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(ttl->to_number<double>()));
      }
      gate_.heard();
      // Freshness is part of the view: a watcher must see it come back.
      if (o_.on_gate) o_.on_gate(gate_.view());
      return {};
    }
    if (e.type == "snapshot") {
      gate_.reset_entries();
      if (auto ws = string_at(*data, {"world", "state"})) gate_.set_world_state(*ws);
      auto state = string_at(*data, {"strategy", "state"});
      if (!state) {
        say(o_, fmt::format("strategy '{}' is not in world '{}': every order is blocked",
                            o_.strategy_id, o_.world_id));
      }
      gate_.set_strategy_state(state.value_or("not in the world"));
      // A promotion or demotion made while no runner was there to hand the
      // positions over (the server stopping, a crash): done now, once.
      if (auto pending_event = string_at(*data, {"strategy", "pending_handover", "event"})) {
        const auto at = string_at(*data, {"strategy", "pending_handover", "at"});
        const std::string key = *pending_event + "@" + at.value_or("");
        if (pending_done_.insert(key).second) {
          say(o_, fmt::format("the {} of {} was not handed over (no runner then): doing it now",
                              *pending_event == "PROMOTE" ? "promotion" : "demotion",
                              at.value_or("?")));
          queue_handover(*pending_event, data->as_object().at("strategy"),
                         string_at(*data, {"strategy", "pending_handover", "run_id"}));
        }
      }
      take_entries(*data);
      gate_.heard();
      gate_.set_connected(true);
      if (!connected_) {
        connected_ = true;
        {
          std::lock_guard lock(first_mu_);
          ++connects_;
        }
        first_cv_.notify_all();
        say(o_, fmt::format("following world '{}' (event {})", o_.world_id, e.id));
      }
    } else {
      const auto entity_id = string_at(*data, {"entity_id"});
      const auto after = string_at(*data, {"after"});
      if (e.type == "strategy" && entity_id == o_.strategy_id && after) {
        gate_.set_strategy_state(*after);
        // A promotion or demotion hands positions over by the world's policy.
        const auto event = string_at(*data, {"event"});
        if (event == "PROMOTE" || event == "DEMOTE") {
          queue_handover(*event, *data, string_at(*data, {"run_id"}));
        }
      }
      if (e.type == "world" && after) gate_.set_world_state(*after);
      take_entries(*data);
      gate_.heard();
    }
    if (o_.on_gate) o_.on_gate(gate_.view());
    return {};
  }

  const RunOptions& o_;
  OrderGate& gate_;
  std::mutex handover_mu_;
  std::vector<HandoverRecord> handovers_;  // seen, not yet acted on
  std::set<std::string> pending_done_;     // pending hand-overs taken ("DEMOTE@<at>")

 public:
  std::vector<HandoverRecord> take_handovers() {
    std::lock_guard lock(handover_mu_);
    return std::exchange(handovers_, {});
  }

 private:
  std::optional<std::string> last_id_;
  bool connected_ = false;
  std::atomic<uint64_t> connects_{0};
  std::mutex first_mu_;
  std::condition_variable_any first_cv_;
  std::chrono::steady_clock::duration ttl_ = std::chrono::seconds(15);
};

// Posts performance records in batches of whole bars, retrying what fails.
//
// A bar's equity point and the fills taken at it travel in one batch, which
// the server stores in one transaction; so the server's newest point says
// that every record up to it is stored. The poster learns it before its first
// post (a runner started again resumes after it instead of posting its
// history twice, which would repeat fills and may not even match: a replay can
// route differently) and again after any post whose outcome it could not see.
class Poster {
 public:
  explicit Poster(const RunOptions& o) : o_(o) {}

  void add_bar(TimePoint ts, double equity, std::vector<broker::Fill> fills) {
    std::lock_guard lock(mu_);
    if (synced_ && resume_after_ && ts <= *resume_after_) {
      ++already_stored_;
      return;
    }
    queued_records_ += 1 + fills.size();
    bars_.push_back({ts, equity, std::move(fills)});
    bound_locked();
    if (queued_records_ >= o_.post_batch) cv_.notify_one();
  }

  // Until `stop`; then what is left, within flush_timeout.
  void run(std::stop_token stop) {
    milliseconds backoff = o_.backoff_min;
    while (!stop.stop_requested()) {
      {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, stop, o_.post_every,
                     [&] { return synced_ && queued_records_ >= o_.post_batch; });
      }
      if (stop.stop_requested()) break;
      if (step()) {
        backoff = o_.backoff_min;
      } else {
        if (!sleep_for(stop, backoff)) break;
        backoff = std::min(backoff * 2, o_.backoff_max);
      }
    }
    const auto deadline = std::chrono::steady_clock::now() + o_.flush_timeout;
    while (pending() > 0 && std::chrono::steady_clock::now() < deadline) {
      if (!step()) std::this_thread::sleep_for(o_.backoff_min);
    }
    std::lock_guard lock(mu_);
    if (!bars_.empty()) {
      dropped_ += queued_records_;
      say(o_, fmt::format("{} performance records of {} bars ({} .. {}) could not be posted "
                          "before the end: the server did not answer; a new run of this "
                          "strategy on the same feed posts them (it resumes after the server's "
                          "last point)",
                          queued_records_, bars_.size(), format_timestamp(bars_.front().ts),
                          format_timestamp(bars_.back().ts)));
      bars_.clear();
      queued_records_ = 0;
    }
  }

  void fill_summary(RunSummary& s) const {
    std::lock_guard lock(mu_);
    s.points_posted = points_posted_;
    s.fills_posted = fills_posted_;
    s.points_repeated = repeated_;
    s.points_already_stored = already_stored_;
    s.points_conflicting = conflicting_;
    s.posts_failed = failed_;
    s.records_dropped = dropped_;
  }

 private:
  struct BarRecords {
    TimePoint ts;
    double equity = 0;
    std::vector<broker::Fill> fills;
  };

  size_t pending() const {
    std::lock_guard lock(mu_);
    return bars_.size();
  }

  void bound_locked() {
    // Memory is bounded even if the server stays away for days: the oldest go,
    // said once per run (a new run posts them again from the feed).
    while (queued_records_ > kMaxQueued && bars_.size() > 1) {
      queued_records_ -= 1 + bars_.front().fills.size();
      dropped_ += 1 + bars_.front().fills.size();
      bars_.pop_front();
      if (!said_bound_) {
        said_bound_ = true;
        say(o_, fmt::format("more than {} performance records wait for the server: the oldest "
                            "are dropped (counted in the summary)",
                            kMaxQueued));
      }
    }
  }

  // One step: learn where the server's records end if needed, else post one
  // batch. True when it was settled (or there was nothing to do).
  bool step() { return synced() ? post_once() : sync(); }

  bool synced() const {
    std::lock_guard lock(mu_);
    return synced_;
  }

  // Asks the server for the strategy's newest stored point and forgets the
  // queued bars up to it.
  bool sync() {
    auto reply = http_request(
        o_.gateway_url, {.path = fmt::format("/strategies/{}/performance/last", o_.strategy_id),
                         .bearer_token = o_.token});
    std::optional<TimePoint> last;
    if (reply && reply->status == 200) {
      auto v = json::parse(reply->body);
      const auto* p = v && v->is_object() ? v->as_object().if_contains("last_point") : nullptr;
      if (p != nullptr && p->is_object()) {
        const auto* ts = p->as_object().if_contains("ts");
        if (ts != nullptr && ts->is_string()) {
          if (auto t = parse_timestamp(ts->as_string())) last = *t;
        }
      }
    } else {
      ++failed_sync_;
      if (failed_sync_ == 1 || failed_sync_ % 20 == 0) {
        say(o_, fmt::format("cannot learn where the server's records of '{}' end ({}); will "
                            "retry before posting",
                            o_.strategy_id,
                            reply ? fmt::format("HTTP {}: {}", reply->status, reply->body)
                                  : reply.error().message));
      }
      return false;
    }
    std::lock_guard lock(mu_);
    const bool first = !resume_after_.has_value() && !synced_;
    synced_ = true;
    resume_after_ = last;
    size_t skipped = 0;
    while (!bars_.empty() && last && bars_.front().ts <= *last) {
      queued_records_ -= 1 + bars_.front().fills.size();
      bars_.pop_front();
      ++skipped;
    }
    already_stored_ += skipped;
    if (first && last) {
      say(o_, fmt::format("the server has records of '{}' up to {}: posting resumes after it",
                          o_.strategy_id, format_timestamp(*last)));
    }
    return true;
  }

  bool post_once() {
    boost::json::array points, fills;
    size_t n_bars = 0, n_records = 0, n_fills = 0;
    {
      std::lock_guard lock(mu_);
      // Whole bars, at least one, up to post_batch records.
      while (n_bars < bars_.size()) {
        const auto& b = bars_[n_bars];
        if (n_bars > 0 && n_records + 1 + b.fills.size() > o_.post_batch) break;
        points.push_back(point_json(b.ts, b.equity));
        for (const auto& f : b.fills) fills.push_back(fill_json(f));
        n_records += 1 + b.fills.size();
        n_fills += b.fills.size();
        ++n_bars;
      }
    }
    if (n_bars == 0) return true;
    boost::json::object body{{"points", std::move(points)}, {"fills", std::move(fills)}};
    auto reply = http_request(o_.gateway_url,
                              {.method = "POST",
                               .path = fmt::format("/strategies/{}/performance", o_.strategy_id),
                               .body = json::dump(body),
                               .bearer_token = o_.token});
    std::lock_guard lock(mu_);
    const bool ok = reply && reply->status == 200;
    const bool refused = reply && reply->status >= 400 && reply->status < 500 &&
                         reply->status != 401 && reply->status != 408 && reply->status != 429;
    if (ok || refused) {
      for (size_t i = 0; i < n_bars; ++i) bars_.pop_front();
      queued_records_ -= n_records;
    }
    if (ok) {
      points_posted_ += n_bars;
      fills_posted_ += n_fills;
      auto v = json::parse(reply->body);
      const auto* o = v && v->is_object() ? &v->as_object() : nullptr;
      if (const auto* r = o != nullptr ? o->if_contains("repeated") : nullptr;
          r != nullptr && r->is_number()) {
        repeated_ += r->to_number<uint64_t>();
      }
      if (const auto* c = o != nullptr ? o->if_contains("conflicts") : nullptr;
          c != nullptr && c->is_array() && !c->as_array().empty()) {
        conflicting_ += c->as_array().size();
        say(o_, fmt::format("the server refused {} of {} points: another equity is stored at "
                            "their times (recorded and alerted on the server): {}",
                            c->as_array().size(), n_bars, json::dump(*c)));
      }
      return true;
    }
    if (refused) {
      dropped_ += n_records;
      say(o_, fmt::format("the server refused {} performance records ({} .. ): HTTP {}: {}",
                          n_records, n_bars, reply->status, reply->body));
      return true;
    }
    // No answer, or a server error: the batch may or may not have been stored.
    // Learn where the records end before trying again, so nothing is sent twice.
    ++failed_;
    synced_ = false;
    say(o_, fmt::format("posting performance failed: {}; will retry",
                        reply ? fmt::format("HTTP {}: {}", reply->status, reply->body)
                              : reply.error().message));
    return false;
  }

  const RunOptions& o_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<BarRecords> bars_;
  size_t queued_records_ = 0;
  bool synced_ = false;
  std::optional<TimePoint> resume_after_;
  bool said_bound_ = false;
  uint64_t failed_sync_ = 0;
  uint64_t points_posted_ = 0, fills_posted_ = 0, repeated_ = 0, already_stored_ = 0;
  uint64_t conflicting_ = 0, failed_ = 0, dropped_ = 0;
};

// Tells the server the strategy failed (its ERROR event: DryRun or Live ->
// Inactive, and a failure alert); says whether that was recorded.
bool report_error(const RunOptions& o, std::string reason) {
  // One line of at most 900 bytes: the audit log's rules for a reason.
  for (char& c : reason) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  if (reason.size() > 900) reason = reason.substr(0, 897) + "...";
  auto r = http_request(o.gateway_url, {.method = "POST",
                                        .path = fmt::format("/strategies/{}/error", o.strategy_id),
                                        .body = json::dump(boost::json::object{{"reason", reason}}),
                                        .bearer_token = o.token});
  if (r && r->status == 200) {
    say(o, fmt::format("reported the failure to the server: strategy '{}' is Inactive now",
                       o.strategy_id));
    return true;
  }
  say(o, fmt::format("the failure could not be reported to the server: {}",
                     r ? fmt::format("HTTP {}: {}", r->status, r->body) : r.error().message));
  return false;
}

// Positions at a promotion (carry: the paper positions are bought or sold
// live) or a demotion (flatten: the live positions are closed), reported to
// the server's audit log. These orders pass no gate: they are the hand-over
// the world decided, and a flatten only ever reduces risk.
HandoverRecord hand_over(HandoverRecord h, OrderRouter& router, const broker::PaperBroker& paper,
                         const RunOptions& options, TimePoint now) {
  if (options.live != nullptr) {
    for (const auto& [sym, p] : options.live->account().positions) h.live_positions[sym] = p.qty;
  }
  std::map<std::string, double> target;  // what to trade, by symbol: + buy, - sell
  if (h.event == "PROMOTE" && h.policy == "carry") {
    for (const auto& [sym, p] : paper.account().positions) target[sym] = p.qty;
  } else if (h.event == "DEMOTE" && h.policy == "flatten") {
    for (const auto& [sym, qty] : h.live_positions) target[sym] = -qty;
  }
  for (const auto& [sym, qty] : target) {
    if (qty == 0) continue;
    const broker::Order o{.symbol = sym,
                          .side = qty > 0 ? broker::Side::kBuy : broker::Side::kSell,
                          .qty = std::abs(qty),
                          .ts = now};
    const std::string what = fmt::format("{} {} {}", broker::side_name(o.side), o.qty, o.symbol);
    if (auto id = router.submit_live(o)) {
      h.orders.push_back(fmt::format("{} ({})", what, *id));
    } else {
      h.failed.push_back(fmt::format("{}: {}", what, id.error().message));
    }
  }
  boost::json::array orders, failed;
  for (const auto& x : h.orders) orders.emplace_back(x);
  for (const auto& x : h.failed) failed.emplace_back(x);
  boost::json::object body{{"event", h.event},
                           {"policy", h.policy},
                           {"orders", std::move(orders)},
                           {"failed", std::move(failed)}};
  if (h.run_id) body["run_id"] = *h.run_id;
  auto r = http_request(options.gateway_url,
                        {.method = "POST",
                         .path = fmt::format("/strategies/{}/handover", options.strategy_id),
                         .body = json::dump(body),
                         .bearer_token = options.token});
  if (!r || r->status / 100 != 2) {
    say(options, fmt::format("the hand-over could not be recorded on the server: {}",
                             r ? r->body : r.error().message));
  }
  return h;
}

// A strategy that cannot go on reports its ERROR to the world, which takes it
// out of trading (Inactive) and alerts; the run then ends with the error.
Error fail_strategy(const RunOptions& options, const std::string& reason, RunSummary& summary) {
  const bool reported = report_error(options, reason);
  summary.error_reported = reported;
  return Error{ErrorCode::kFailedPrecondition,
               fmt::format("{}{}", reason,
                           reported ? "; reported to the world (ERROR: the strategy is now "
                                      "Inactive)"
                                    : "; the server could not be told")};
}

void count_route(RunSummary& summary, Route route) {
  ++summary.orders;
  switch (route) {
    case Route::kLive:
      ++summary.live;
      break;
    case Route::kPaper:
      ++summary.paper;
      break;
    case Route::kBlocked:
      ++summary.blocked;
      break;
  }
}

Result<void> check_run_options(const Strategy& strategy, const RunOptions& options) {
  if (auto r = check_bar_inputs(strategy.dag); !r) return propagate(r);
  if (options.gateway_url.empty() || options.world_id.empty() || options.strategy_id.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a live run needs the gateway URL, the world and the strategy id");
  }
  if (options.post_batch == 0) {
    return make_error(ErrorCode::kInvalidArgument, "post_batch must be at least 1");
  }
  if (auto r = parse_server_url(options.gateway_url); !r) return propagate(r);
  return {};
}

// Paper orders refused for buying power: logged, counted, and the rule's
// target set back to what is held.
void note_paper_rejects(broker::PaperBroker& paper, OrderPlanner& planner,
                        const std::string& symbol, RunSummary& summary, const RunOptions& options) {
  for (const auto& reject : paper.take_rejects()) {
    ++summary.paper_rejected;
    say(options, fmt::format("paper order {} refused: {}", reject.order_id, reject.reason));
    planner.resync(book_view(paper, symbol));
  }
}

// The rule's decision at the bar's close (none on a quiet bar), routed as the
// gate decides and reported.
void decide_and_route(OrderPlanner& planner, OrderRouter& router, const broker::PaperBroker& paper,
                      const std::string& symbol, const broker::Bar& bar, bool replaying,
                      RunSummary& summary, const RunOptions& options) {
  if (planner.quiet()) return;
  auto order = planner.decide(bar.close, book_view(paper, symbol));
  if (!order) return;
  const OrderRecord rec = router.route(
      {.symbol = symbol, .side = order->side, .qty = order->qty, .ts = bar.ts}, replaying);
  count_route(summary, rec.route);
  if (options.on_order) options.on_order(rec);
}

}  // namespace

Result<RunSummary> Runner::run(Strategy strategy, BarFeed& feed, const RunOptions& options) {
  if (auto r = check_run_options(strategy, options); !r) return propagate(r);
  SystemClock system_clock;
  const Clock& clock = options.clock != nullptr ? *options.clock : system_clock;
  OrderGate gate(clock);
  Follower follower(options, gate);
  Poster poster(options);
  broker::PaperBroker paper(options.model, options.initial_cash);
  OrderRouter router(gate, paper, options.live);
  RunSummary summary;

  std::jthread follow_thread([&](std::stop_token st) { follower.run(st); });
  std::jthread post_thread([&](std::stop_token st) { poster.run(st); });

  Dag& dag = strategy.dag;
  const OrderRule rule = strategy.orders;
  TimePoint now{};
  bool replaying = false;  // the current bar is history the feed replays
  uint64_t replayed_bars = 0;
  bool caught_up = false;
  const BarInputs inputs(dag);
  OrderPlanner planner(rule);
  auto subscribed = dag.subscribe(rule.signal, [&](TimePoint, double v) { planner.on_signal(v); });
  if (!subscribed) return propagate(subscribed);
  if (!rule.exit.empty()) {
    auto exits = dag.subscribe(rule.exit, [&](TimePoint, double v) { planner.on_exit(v); });
    if (!exits) return propagate(exits);
  }

  // Bars read before the world has been heard would only be blocked.
  if (!follower.wait_first_snapshot(options.stop, options.wait_for_world)) {
    say(options, fmt::format("no decision from world '{}' within {} ms: orders are blocked until "
                             "one arrives",
                             options.world_id, options.wait_for_world.count()));
  }

  Result<void> outcome;
  while (!options.stop.stop_requested()) {
    for (auto& h : follower.take_handovers()) {
      const HandoverRecord done = hand_over(std::move(h), router, paper, options, now);
      planner.resync(book_view(paper, rule.symbol));  // the hand-over moved the book
      ++summary.handovers;
      if (options.on_handover) options.on_handover(done);
    }
    if (const int rejects = router.consecutive_rejects();
        options.live != nullptr && options.max_consecutive_rejects > 0 &&
        rejects >= options.max_consecutive_rejects) {
      outcome = tl::unexpected(
          fail_strategy(options,
                        fmt::format("the live broker rejected {} orders in a row (last: {})",
                                    rejects, router.last_reject()),
                        summary));
      break;
    }
    auto item = feed.next(kReadSlice);
    if (!item) {
      outcome = propagate(item);
      break;
    }
    if (item->kind == FeedItem::Kind::kEnd) break;
    const bool replayed = item->kind == FeedItem::Kind::kBar && item->replayed;
    if (replayed) {
      ++replayed_bars;
    } else if (replayed_bars > 0 && !caught_up) {
      caught_up = true;
      say(options, fmt::format("replayed {} bars that were in the feed before this run; orders "
                               "of new bars may go live",
                               replayed_bars));
    }
    if (item->kind == FeedItem::Kind::kIdle) continue;
    const broker::Bar& bar = *item->bar;
    replaying = replayed;
    if (bar.symbol != rule.symbol) {
      outcome = make_error(
          ErrorCode::kInvalidArgument,
          fmt::format("a bar of '{}' reached a strategy trading '{}'", bar.symbol, rule.symbol));
      break;
    }
    if (auto r = paper.on_bar(bar); !r) {
      outcome = r;
      break;
    }
    std::vector<broker::Fill> fills = router.take_fills();
    note_paper_rejects(paper, planner, rule.symbol, summary, options);
    now = bar.ts;
    ++summary.bars;
    if (auto r = inputs.push(dag, bar); !r) {
      outcome = r;
      break;
    }
    if (dag.failure()) {
      outcome = tl::unexpected(fail_strategy(options, dag.failure()->message, summary));
      break;
    }
    decide_and_route(planner, router, paper, rule.symbol, bar, replaying, summary, options);
    if (router.paper_error()) {
      outcome = tl::unexpected(*router.paper_error());
      break;
    }
    poster.add_bar(bar.ts, paper.equity(), std::move(fills));
  }
  follow_thread.request_stop();
  post_thread.request_stop();
  follow_thread.join();
  post_thread.join();
  summary.connects = follower.connects();
  summary.paper_account = paper.account();
  if (options.live != nullptr) {
    for (const auto& [sym, p] : options.live->account().positions) {
      summary.live_positions[sym] = p.qty;
    }
  }
  poster.fill_summary(summary);
  if (!outcome) return tl::unexpected(outcome.error());
  return summary;
}

}  // namespace qmtl::sdk
