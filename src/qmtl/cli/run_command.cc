// `qmtl run`: a submitted strategy on a live bar feed, its orders routed by
// its world's decisions (sdk::Runner::run).
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <iostream>
#include <thread>

#include "qmtl/broker/fix/fix_broker.h"
#include "qmtl/broker/journal_broker.h"
#include "qmtl/cli/client.h"
#include "qmtl/cli/number_check.h"
#include "qmtl/core/json.h"
#include "qmtl/sdk/program.h"
#include "qmtl/sdk/runner.h"

namespace qmtl::cli {
namespace {

struct RunCommandOptions {
  std::string strategy, feed, spec, live_broker;
  std::optional<std::string> symbol;
  std::optional<std::string> strategy_programs;  // DIR or "none"; unset: programs anywhere
  bool follow = false;
  double cash = 100'000;
  double fee_bps = 0, slippage_bps = 0, volume_limit = 0.025, leverage = 1;
  double post_every_s = 1;
  size_t post_batch = 5000;
  int max_rejects = 5;
};

// SIGINT and SIGTERM request a stop; the run ends after its current bar and
// posts what is left. Asio's signal_set owns the handler (a self-pipe), so any
// thread may take the signal, including library threads that block nothing.
class StopOnSignal {
 public:
  StopOnSignal() : signals_(io_, SIGINT, SIGTERM) {
    signals_.async_wait([this](const boost::system::error_code& ec, int) {
      if (!ec) source_.request_stop();
    });
    thread_ = std::thread([this] { io_.run(); });
  }
  ~StopOnSignal() {
    io_.stop();
    thread_.join();
  }
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
  std::stop_token token() const { return source_.get_token(); }

 private:
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  std::stop_source source_;
  std::thread thread_;
};

boost::json::object live_positions_json(const sdk::RunSummary& s) {
  boost::json::object o;
  for (const auto& [sym, qty] : s.live_positions) o[sym] = qty;
  return o;
}

boost::json::object order_json(const sdk::OrderRecord& r) {
  boost::json::object o{{"ts", format_timestamp(r.order.ts)},
                        {"symbol", r.order.symbol},
                        {"side", broker::side_name(r.order.side)},
                        {"qty", r.order.qty},
                        {"route", sdk::route_name(r.route)}};
  if (!r.order_id.empty()) o["order_id"] = r.order_id;
  if (!r.reason.empty()) o["reason"] = r.reason;
  return o;
}

// The live broker `spec` names: journal:<file> or fix:<broker.yml>. A FIX
// session connects in the background; until it is logged on, live orders are
// refused by it and so blocked, never sent elsewhere.
CliResult<std::unique_ptr<broker::Broker>> open_live_broker(const std::string& spec,
                                                            const Clock& clock, std::ostream& err) {
  if (spec.starts_with("journal:") && spec.size() > 8) {
    auto j = broker::JournalBroker::open(spec.substr(8));
    if (!j) return tl::unexpected(Failure{kExitUsage, j.error().message});
    return std::unique_ptr<broker::Broker>(std::move(*j));
  }
  if (spec.starts_with("fix:") && spec.size() > 4) {
    auto config = broker::load_fix_config(spec.substr(4));
    if (!config) return tl::unexpected(Failure{kExitUsage, config.error().message});
    auto f = broker::FixBroker::connect(std::move(*config), clock);
    if (!f) return tl::unexpected(Failure{kExitUsage, f.error().message});
    if (!(*f)->wait_logged_on(std::chrono::seconds(5))) {
      err << "qmtl run: the FIX session is not logged on yet: live orders are blocked until "
             "it is\n";
    }
    return std::unique_ptr<broker::Broker>(std::move(*f));
  }
  return tl::unexpected(
      Failure{kExitUsage,
              fmt::format("--live-broker '{}': write journal:<file> or fix:<broker.yml>", spec)});
}

// A hand-over as the run prints it: a JSON line, or one line of text.
std::string handover_line(const sdk::HandoverRecord& h, bool as_json) {
  boost::json::object positions;
  for (const auto& [sym, qty] : h.live_positions) positions[sym] = qty;
  if (as_json) {
    boost::json::array orders, failed;
    for (const auto& x : h.orders) orders.emplace_back(x);
    for (const auto& x : h.failed) failed.emplace_back(x);
    return json::dump(boost::json::object{{"handover", h.event},
                                          {"policy", h.policy},
                                          {"live_positions", std::move(positions)},
                                          {"orders", std::move(orders)},
                                          {"failed", std::move(failed)}});
  }
  std::string what;
  for (const auto& x : h.orders) what += fmt::format("{}{}", what.empty() ? "" : "; ", x);
  for (const auto& x : h.failed) {
    what += fmt::format("{}not sent: {}", what.empty() ? "" : "; ", x);
  }
  return fmt::format("hand-over on {}: {} ({})", h.event, h.policy,
                     what.empty() ? "no orders" : what);
}

// The run's summary: a JSON object, or one line of text.
void print_run_summary(const Globals& g, const RunCommandOptions& o, const std::string& world,
                       const sdk::RunSummary& s, std::ostream& out) {
  if (g.json()) {
    print_json(boost::json::object{{"strategy", o.strategy},
                                   {"world", world},
                                   {"bars", s.bars},
                                   {"orders", s.orders},
                                   {"live", s.live},
                                   {"paper", s.paper},
                                   {"blocked", s.blocked},
                                   {"paper_rejected", s.paper_rejected},
                                   {"points_posted", s.points_posted},
                                   {"fills_posted", s.fills_posted},
                                   {"points_repeated", s.points_repeated},
                                   {"points_already_stored", s.points_already_stored},
                                   {"points_conflicting", s.points_conflicting},
                                   {"records_dropped", s.records_dropped},
                                   {"connects", s.connects},
                                   {"handovers", s.handovers},
                                   {"live_positions", live_positions_json(s)},
                                   {"paper_equity", s.paper_account.equity()}},
               out);
  } else {
    out << fmt::format(
        "bars {}, orders {} (live {}, paper {}, blocked {}{}), posted {} points and {} fills "
        "({} already stored before this run), {} conflicting, {} dropped, paper equity {:.2f}\n",
        s.bars, s.orders, s.live, s.paper, s.blocked,
        s.paper_rejected > 0 ? fmt::format(", {} refused on paper", s.paper_rejected) : "",
        s.points_posted, s.fills_posted, s.points_already_stored, s.points_conflicting,
        s.records_dropped, s.paper_account.equity());
  }
}

// Warns when the server already runs `strategy` (its runner is another
// process): both would route the strategy's orders, so its paper book, its
// records and its live orders would count twice. Best effort: a server that
// does not say (no execution manager, an older server) gets no warning.
void warn_if_server_runs(const Globals& g, const std::string& world, const std::string& strategy,
                         std::ostream& err) {
  auto e = call_server(g, {.path = fmt::format("/worlds/{}/execution", world),
                           .bearer_token = g.token,
                           .timeout = std::chrono::seconds(2)});
  if (!e || !e->is_object()) return;
  const auto* runners = e->as_object().if_contains("runners");
  if (runners == nullptr || !runners->is_array()) return;
  for (const auto& r : runners->as_array()) {
    if (!r.is_object() || str_field(r.as_object(), "strategy") != strategy) continue;
    const std::string state = str_field(r.as_object(), "state");
    const auto* pid = r.as_object().if_contains("pid");
    const bool running = state == "running" && pid != nullptr && pid->is_int64();
    if (running && pid->as_int64() == static_cast<int64_t>(::getpid())) return;  // it is us
    if (!running && state != "restarting") return;
    err << fmt::format(
        "qmtl run: warning: the server already runs strategy '{}' ({}): both runners would "
        "route its orders, so its records and live orders would count twice; stop this one, or "
        "take the world's execution settings off the server (docs/execution.md)\n",
        strategy,
        running ? fmt::format("pid {}", pid->as_int64()) : std::string("its runner restarts"));
    return;
  }
}

int run(const Globals& g, const RunCommandOptions& o, std::ostream& out, std::ostream& err) {
  if (auto r = check_id("strategy", o.strategy); !r) return report(r.error(), err);
  // The strategy as submitted: its world and its spec.
  auto record =
      call_server(g, {.path = fmt::format("/strategies/{}", o.strategy), .bearer_token = g.token});
  if (!record) return report(record.error(), err);
  const std::string world = str_field(record->as_object(), "world");
  warn_if_server_runs(g, world, o.strategy, err);
  boost::json::value spec;
  if (!o.spec.empty()) {
    auto file = read_strategy_file(o.spec);
    if (!file) return report(file.error(), err);
    spec = std::move(*file);
  } else {
    spec = record->as_object().contains("spec") ? record->at("spec") : boost::json::value();
  }
  auto programs = programs_dir_option(o.strategy_programs);
  if (!programs) return report(programs.error(), err);
  auto strategy = sdk::load_strategy(spec, {.programs_dir = *programs});
  if (!strategy) {
    return report(
        {kExitUsage, fmt::format("strategy '{}': {}", o.strategy, strategy.error().message)}, err);
  }
  const std::string symbol = o.symbol.value_or(strategy->orders.symbol);
  strategy->orders.symbol = symbol;

  std::unique_ptr<sdk::CsvBarFeed> feed;
  if (o.feed == "-") {
    feed = sdk::CsvBarFeed::from_fd(STDIN_FILENO, symbol);
  } else {
    auto f = sdk::CsvBarFeed::open_file(o.feed, symbol, o.follow);
    if (!f) return report({kExitUsage, f.error().message}, err);
    feed = std::move(*f);
  }
  SystemClock clock;  // outlives the broker that reads it
  std::unique_ptr<broker::Broker> live;
  if (!o.live_broker.empty()) {
    auto opened = open_live_broker(o.live_broker, clock, err);
    if (!opened) return report(opened.error(), err);
    live = std::move(*opened);
  }

  StopOnSignal signals;
  std::mutex out_mu;
  sdk::RunOptions options{
      .gateway_url = g.gateway_url,
      .token = g.token,
      .world_id = world,
      .strategy_id = o.strategy,
      .model = {.fee = broker::PercentFee{.rate = o.fee_bps / 10'000},
                .slippage = broker::FixedBps{.bps = o.slippage_bps},
                .volume_limit = o.volume_limit,
                .leverage = o.leverage},
      .initial_cash = o.cash,
      .live = live.get(),
      .post_every = std::chrono::milliseconds(static_cast<int64_t>(o.post_every_s * 1000)),
      .post_batch = o.post_batch,
      .max_consecutive_rejects = o.max_rejects,
      .stop = signals.token(),
      .on_order =
          [&](const sdk::OrderRecord& r) {
            std::lock_guard lock(out_mu);
            if (g.json()) {
              out << json::dump(order_json(r)) << std::endl;
              return;
            }
            out << fmt::format("{} {} {} {} -> {}{}", format_timestamp(r.order.ts),
                               broker::side_name(r.order.side), r.order.qty, r.order.symbol,
                               sdk::route_name(r.route),
                               r.reason.empty() ? fmt::format(" ({})", r.order_id)
                                                : fmt::format(": {}", r.reason))
                << std::endl;
          },
      .on_handover =
          [&](const sdk::HandoverRecord& h) {
            std::lock_guard lock(out_mu);
            out << handover_line(h, g.json()) << std::endl;
          },
      .log =
          [&](std::string_view line) {
            std::lock_guard lock(out_mu);
            err << "qmtl run: " << line << std::endl;
          },
  };
  if (!g.json()) {
    err << fmt::format("qmtl run: strategy '{}' in world '{}' on {} ({}), live broker: {}\n",
                       o.strategy, world, o.feed == "-" ? "stdin" : o.feed, symbol,
                       live ? o.live_broker : "none (live orders are blocked)");
  }
  auto summary = sdk::Runner::run(std::move(*strategy), *feed, options);
  if (!summary) {
    return report(
        {kExitRefused, fmt::format("strategy '{}': {}", o.strategy, summary.error().message)}, err);
  }
  const auto& s = *summary;
  print_run_summary(g, o, world, s, out);
  return s.records_dropped > 0 || s.points_conflicting > 0 ? kExitRefused : kExitOk;
}

}  // namespace

void add_run_command(CLI::App& app, const Globals& g, int& rc, std::ostream& out,
                     std::ostream& err) {
  auto o = std::make_shared<RunCommandOptions>();
  auto* cmd = app.add_subcommand(
      "run",
      "run a submitted strategy on a live bar feed, routing its orders by its world's decisions\n"
      "  e.g. qmtl run sma-cross --feed bars.csv --follow --live-broker journal:orders.jsonl");
  cmd->add_option("strategy", o->strategy, "id of a submitted strategy")->required();
  cmd->add_option("--feed", o->feed, "CSV of bars (date, open, high, low, close, volume), or -")
      ->required();
  cmd->add_flag("--follow", o->follow, "keep reading the feed file as it grows (like tail -f)");
  cmd->add_option("--spec", o->spec,
                  "run this strategy file instead of the submitted spec (same id and world)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--symbol", o->symbol, "symbol of the bars (default: the strategy's)");
  cmd->add_option("--live-broker", o->live_broker,
                  "where Live orders go: journal:<file> (one JSON line per order) or "
                  "fix:<broker.yml> (a FIX 4.4 session, docs/brokers.md); "
                  "default none: Live orders are blocked");
  cmd->add_option("--cash", o->cash, "starting cash of the paper book")
      ->default_str("100000")
      ->check(finite_above(0));
  cmd->add_option("--fee-bps", o->fee_bps, "paper fee in basis points of notional")
      ->default_str("0")
      ->check(finite_at_least(0));
  cmd->add_option("--slippage-bps", o->slippage_bps, "paper slippage in basis points")
      ->default_str("0")
      ->check(finite_at_least(0));
  cmd->add_option("--volume-limit", o->volume_limit, "share of a bar's volume one order may take")
      ->default_str("0.025")
      ->check(finite_in(0.0, 1.0));
  cmd->add_option("--leverage", o->leverage,
                  "paper buying power: gross exposure at most this times equity (1: no margin)")
      ->default_str("1")
      ->check(finite_in(0.01, 100.0));
  cmd->add_option("--strategy-programs", o->strategy_programs,
                  "run a program strategy only from this directory (none: no programs); a "
                  "server passes its own");
  cmd->add_option("--post-every", o->post_every_s, "seconds between performance posts")
      ->default_str("1")
      ->check(finite_in(0.01, 3600.0));
  cmd->add_option("--max-rejects", o->max_rejects,
                  "live orders the broker may refuse in a row before the strategy is failed "
                  "(ERROR; 0 = never)")
      ->default_str("5")
      ->check(CLI::Range(0, 1'000'000));
  cmd->add_option("--post-batch", o->post_batch, "records per post, at most (whole bars)")
      ->default_str("5000")
      ->check(CLI::Range(1, 1'000'000));
  cmd->callback([o, &g, &rc, &out, &err] { rc = run(g, *o, out, err); });
}

}  // namespace qmtl::cli
