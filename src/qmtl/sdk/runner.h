// Runner: one strategy over bars, offline (a backtest) or live (following its
// world's decisions).
//
// Runner::offline: a strategy over history (a backtest), producing the same
// performance records that dry-run produces (equity points and fills).
//
// Per bar, in order: the PaperBroker fills what earlier bars decided (at this
// bar's open, see broker/paper_broker.h) and marks to this bar's close; then the
// bar's fields go into the strategy's inputs of the same name (`open`, `high`,
// `low`, `close`, `volume`), whose buckets close at once (a bar is complete when
// it arrives); the order rule (order_rule.h) then decides on the signal and the
// book at the bar's close, and an order it places is stamped with the bar's
// time; finally the account's equity is recorded at the bar's time. Orders the
// PaperBroker refuses for buying power are kept in BacktestResult::rejects.
//
// Runner::run: the same strategy over a live BarFeed, with every order routed
// by an OrderGate that follows the world's event stream (see gate.h):
//
//   - A follower thread keeps GET /worlds/{w}/events?strategy={s} open: the
//     snapshot gives the world's state, the strategy's state and its gates;
//     later events and heartbeats keep them fresh. The gate counts as connected
//     only from a snapshot on; a broken stream, or silence longer than the
//     TTL, disconnects it and the follower reconnects with Last-Event-ID and
//     exponential backoff (backoff_min doubling up to backoff_max).
//   - Orders: live-routed ones go to `live` (none configured = blocked),
//     paper-routed ones to the PaperBroker, blocked ones nowhere (counted, and
//     reported through on_order with the reason). The paper book also takes a
//     copy of every live order, so it is the strategy's continuous record
//     across promotions and demotions, comparable with its backtest.
//   - Performance: one equity point per bar (the paper book's equity) and the
//     fills that happened at it (paper fills of paper orders, the live
//     broker's fills) are posted to POST /strategies/{s}/performance by a
//     poster thread in batches of whole bars (every post_every, or once
//     post_batch records wait). Before its first post, and again after any
//     post whose outcome it could not see (no answer, a 5xx), the poster asks
//     GET /strategies/{s}/performance/last where the server's records end and
//     drops the bars up to it: a runner started again (after a crash, a
//     pause, a server restart) resumes after what is stored, and a retry never
//     stores a fill twice. Points the server reports as conflicts (another
//     equity stored at that time) are counted and logged; a batch refused as
//     invalid (4xx) is dropped and counted, since resending cannot fix it.
//     Nothing is dropped without a log line and a count in the summary.
//   - Failure: when a node fails (a non-finite value, see dag.h) or the live
//     broker refuses max_consecutive_rejects orders in a row, the runner
//     reports the strategy's ERROR to the server (POST /strategies/{s}/error:
//     DryRun or Live -> Inactive, a failure alert) and run() returns the error.
//
// Thread safety: offline is a pure function; run blocks the calling thread and
// runs two helper threads of its own, which it joins before returning.
#pragma once

#include <boost/json.hpp>
#include <functional>
#include <map>
#include <stop_token>
#include <string>
#include <vector>

#include "qmtl/broker/paper_broker.h"
#include "qmtl/core/result.h"
#include "qmtl/metrics/series.h"
#include "qmtl/sdk/feed.h"
#include "qmtl/sdk/gate.h"
#include "qmtl/sdk/order_router.h"
#include "qmtl/sdk/spec.h"

namespace qmtl::sdk {

struct EquityPoint {
  TimePoint ts;
  double equity = 0;
};

struct BacktestResult {
  std::vector<EquityPoint> points;  // one per bar (none with OfflineOptions::on_point)
  std::vector<broker::Fill> fills;
  uint64_t orders = 0;                       // orders the rule placed (entries, exits, rebalances)
  std::map<std::string, uint64_t> exits;     // orders of stop_loss, take_profit, trailing_stop
  std::vector<broker::OrderReject> rejects;  // orders the paper broker refused (buying power)
  uint64_t node_updates = 0;                 // node computations, for throughput figures
  broker::Account account;                   // at the end
};

// The backtest as a return series for the metrics (metrics/kpi.h): the
// initial cash one day before the first bar, then each equity point, with the
// fills (so `trades` counts them). kInvalidArgument if the equity is not
// positive. `qmtl backtest` and the Python package both report these.
Result<metrics::ReturnSeries> backtest_series(const BacktestResult& result, TimePoint first_bar,
                                              double initial_cash);

struct OfflineOptions {
  broker::BrokerageModel model;
  double initial_cash = 100'000;
  // When set, each equity point goes here as it is made instead of into
  // BacktestResult::points: a backtest of any length in constant memory.
  std::function<void(const EquityPoint&)> on_point;
};

// What the runner did with its positions when its strategy was promoted or
// demoted (the world policy's position.on_promote / on_demote, docs/policy.md).
struct HandoverRecord {
  std::string event;   // "PROMOTE" or "DEMOTE"
  std::string policy;  // "flat" | "carry" | "flatten" | "keep"
  std::optional<std::string> run_id;
  std::map<std::string, double> live_positions;  // the live account's, before the orders
  std::vector<std::string> orders;               // "buy 2 ZZ (fix-1)"
  std::vector<std::string> failed;               // "sell 2 ZZ: <why>"
};

struct RunOptions {
  std::string gateway_url;  // e.g. http://127.0.0.1:8080
  std::string token;        // bearer token (operator: it posts performance)
  std::string world_id;
  std::string strategy_id;
  broker::BrokerageModel model;  // of the paper book
  double initial_cash = 100'000;
  broker::Broker* live = nullptr;  // must outlive run(); null: Live orders are blocked
  const Clock* clock = nullptr;    // for the gate's freshness; null: the system clock
  std::chrono::milliseconds post_every{1000};
  size_t post_batch = 5000;
  std::chrono::milliseconds backoff_min{200};
  std::chrono::milliseconds backoff_max{10'000};
  // How long run() waits for the world's first snapshot before reading bars
  // (orders of bars read before it would be blocked).
  std::chrono::milliseconds wait_for_world{5000};
  // How long run() keeps trying to post what is left once the feed has ended.
  std::chrono::milliseconds flush_timeout{5000};
  // Live orders the broker may refuse in a row (in submit, or rejected later)
  // before the strategy is failed; a live fill starts the count again. 0: never.
  int max_consecutive_rejects = 5;
  std::stop_token stop;  // a stop request ends run() after the current bar
  // Called on run()'s thread for every order.
  std::function<void(const OrderRecord&)> on_order;
  // Called on the follower thread after every change it made to the gate.
  std::function<void(const OrderGate::View&)> on_gate;
  // Called on run()'s thread after each hand-over (also reported to the server).
  std::function<void(const HandoverRecord&)> on_handover;
  // Status lines: connected, disconnected, posts failing.
  std::function<void(std::string_view)> log;
};

struct RunSummary {
  uint64_t bars = 0;
  uint64_t orders = 0, live = 0, paper = 0, blocked = 0;
  uint64_t points_posted = 0, fills_posted = 0;
  uint64_t points_repeated = 0;        // posted, and the server already had them (equal)
  uint64_t points_already_stored = 0;  // not posted: the server's records reach past them
  uint64_t points_conflicting = 0;     // refused by the server: another equity is stored
  uint64_t posts_failed = 0;           // attempts that will be retried
  uint64_t records_dropped = 0;        // refused by the server, beyond the queue's bound, or
                                       // unposted at the end (the server did not answer)
  uint64_t connects = 0;               // snapshots received (1 + reconnects)
  broker::Account paper_account;       // the paper book at the end
  std::map<std::string, double> live_positions;  // the live broker's at the end
  uint64_t handovers = 0;
  uint64_t paper_rejected = 0;  // paper orders refused for buying power (each logged)
  bool error_reported = false;  // the run failed and told the server (ERROR)
};

class Runner {
 public:
  // Runs `strategy` (its Dag is consumed) over `bars`. kInvalidArgument when an
  // input is not a bar field or a bar is inconsistent; kFailedPrecondition when
  // a node fails (naming it).
  static Result<BacktestResult> offline(Strategy strategy, const std::vector<broker::Bar>& bars,
                                        const OfflineOptions& options);
  // The same over a finite feed read to its end (bars need not fit in memory);
  // the feed's errors end the backtest.
  static Result<BacktestResult> offline(Strategy strategy, BarFeed& bars,
                                        const OfflineOptions& options);

  // Runs `strategy` over `feed` until the feed ends or options.stop is
  // requested, then flushes its performance records (see above). The feed's
  // bars must be of orders.symbol. Errors: kInvalidArgument for inputs that are
  // not bar fields or missing options; the feed's error; kFailedPrecondition
  // when a node fails. A server that cannot be reached is not an error: orders
  // are blocked (or kept on paper for a DryRun strategy) until it is back.
  static Result<RunSummary> run(Strategy strategy, BarFeed& feed, const RunOptions& options);
};

// One equity point and one fill as POST /strategies/{id}/performance takes them
// (the same records from a backtest and from a live run).
boost::json::object point_json(TimePoint ts, double equity);
boost::json::object fill_json(const broker::Fill& f);

// The paper book's position in `symbol`, what is open in it and its equity,
// as an OrderPlanner decides on them.
BookView book_view(const broker::PaperBroker& paper, std::string_view symbol);

// kInvalidArgument unless every input of `dag` is a bar field (open, high, low,
// close, volume).
Result<void> check_bar_inputs(const Dag& dag);
// The inputs of a Dag that take bar fields, resolved once.
class BarInputs {
 public:
  explicit BarInputs(const Dag& dag);
  // Feeds the bar's fields to the inputs of the same name and closes their buckets.
  Result<void> push(Dag& dag, const broker::Bar& bar) const;

 private:
  struct Field {
    double broker::Bar::*value;
    Dag::InputId id;
  };
  std::vector<Field> fields_;  // only the fields the Dag reads
};

}  // namespace qmtl::sdk
