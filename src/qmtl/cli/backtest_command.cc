// `qmtl backtest`: a declarative strategy over a CSV of bars, through the
// PaperBroker, with the metrics of the equity it made.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <fstream>

#include "qmtl/cli/client.h"
#include "qmtl/cli/number_check.h"
#include "qmtl/cli/table.h"
#include "qmtl/core/duration.h"
#include "qmtl/core/json.h"
#include "qmtl/metrics/csv.h"
#include "qmtl/metrics/kpi.h"
#include "qmtl/report/html_report.h"
#include "qmtl/sdk/program.h"
#include "qmtl/sdk/runner.h"

namespace qmtl::cli {
namespace {

struct BacktestOptions {
  StrategySource source;  // a strategy file or a program (--command)
  std::string data, records, window, report, price = "close", tz;
  std::optional<std::string> symbol;
  std::optional<std::string> strategy_programs;  // DIR or "none"; unset: programs anywhere
  double cash = 100'000;
  double fee_bps = 0, slippage_bps = 0, volume_limit = 0.025, leverage = 1;
};

// Orders the paper broker refused, as JSON.
boost::json::array rejects_json(const std::vector<broker::OrderReject>& rejects) {
  boost::json::array out;
  for (const auto& r : rejects) {
    out.push_back({{"ts", format_timestamp(r.ts)},
                   {"symbol", r.symbol},
                   {"side", broker::side_name(r.side)},
                   {"qty", r.qty},
                   {"reason", r.reason}});
  }
  return out;
}

// "orders 12 (2 stop_loss, 1 take_profit)" style detail of the rule's exits.
std::string exits_text(const std::map<std::string, uint64_t>& exits) {
  std::string out;
  for (const auto& [why, n] : exits) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", n, why);
  return out.empty() ? "" : fmt::format(" ({})", out);
}

// The body of POST /strategies/{id}/performance: the same records dry-run sends.
boost::json::object records_json(const sdk::BacktestResult& r) {
  boost::json::array points, fills;
  for (const auto& p : r.points) points.push_back(sdk::point_json(p.ts, p.equity));
  for (const auto& f : r.fills) fills.push_back(sdk::fill_json(f));
  return {{"points", std::move(points)}, {"fills", std::move(fills)}};
}

struct BacktestRun {
  std::string id, symbol, data;
  double cash = 0;
};

std::string day_of(TimePoint t) {
  return format_timestamp(std::chrono::floor<std::chrono::seconds>(t));
}

// `qmtl backtest --report`: the equity with its drawdown, the trades on the
// price, the metrics and the fills in one HTML file (docs/reports.md).
Result<void> write_report(const std::string& path, const BacktestRun& run,
                          const std::vector<broker::Bar>& bars, const sdk::BacktestResult& result,
                          const boost::json::object& metric_values) {
  report::Report r{.title = fmt::format("Backtest of {}", run.id),
                   .subtitle = fmt::format("{} bars of {} from {} to {} ({}), starting cash {:.2f}",
                                           bars.size(), run.symbol, day_of(bars.front().ts),
                                           day_of(bars.back().ts), run.data, run.cash)};
  report::Series equity{.name = run.id};
  for (const auto& p : result.points) equity.points.push_back({p.ts, p.equity});
  r.equity.push_back(std::move(equity));
  r.price.name = run.symbol;
  for (const auto& b : bars) r.price.points.push_back({b.ts, b.close});
  report::Table fills{.title = "Fills", .header = {"TIME", "SIDE", "QTY", "PRICE", "FEE"}};
  for (const auto& f : result.fills) {
    const bool buy = f.side == broker::Side::kBuy;
    r.trades.push_back({.ts = f.ts, .buy = buy, .qty = f.qty, .price = f.price, .fee = f.fee});
    fills.rows.push_back({day_of(f.ts), buy ? "buy" : "sell", fmt::format("{:g}", f.qty),
                          fmt::format("{:.4f}", f.price), fmt::format("{:.2f}", f.fee)});
  }
  report::Table kpis{.title = "Metrics", .header = {"METRIC", "VALUE", "UNIT"}};
  for (const auto& kv : metric_values) {
    kpis.rows.push_back({std::string(kv.key()), display_number(&kv.value()),
                         std::string(metrics::metric_unit(kv.key()))});
  }
  r.tables.push_back(std::move(kpis));
  r.tables.push_back(std::move(fills));
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << report::render_html(r);
  f.close();
  if (!f) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("cannot write the report to {}; check the path", path));
  }
  return {};
}

struct Skips {
  size_t skipped = 0;
  std::string skipped_text;  // the table's line about them; empty when none
};

// The backtest's outcome: a JSON object, or a summary and the metrics table.
void print_backtest(const Globals& g, const BacktestRun& run, const std::vector<broker::Bar>& bars,
                    const Skips& skips, const sdk::BacktestResult& result,
                    boost::json::object metric_values, std::ostream& out) {
  const auto& acct = result.account;
  boost::json::object exits_json;
  for (const auto& [why, n] : result.exits) exits_json[why] = n;
  if (g.json()) {
    boost::json::object o_json{{"strategy", run.id},
                               {"symbol", run.symbol},
                               {"bars", bars.size()},
                               {"skipped_rows", skips.skipped},
                               {"orders", result.orders},
                               {"exits", exits_json},
                               {"fills", result.fills.size()},
                               {"rejected", rejects_json(result.rejects)},
                               {"final_equity", acct.equity()},
                               {"cash", acct.cash},
                               {"realised_pnl", acct.realised_pnl},
                               {"unrealised_pnl", acct.unrealised_pnl()},
                               {"fees", acct.fees},
                               {"metrics", std::move(metric_values)}};
    print_json(o_json, out);
    return;
  }
  out << fmt::format("backtest of '{}' on {} ({} bars of {}, {} .. {})\n", run.id, run.data,
                     bars.size(), run.symbol,
                     format_timestamp(std::chrono::floor<std::chrono::seconds>(bars.front().ts)),
                     format_timestamp(std::chrono::floor<std::chrono::seconds>(bars.back().ts)));
  if (!skips.skipped_text.empty()) out << skips.skipped_text << '\n';
  out << fmt::format(
      "orders {}{}, fills {}, final equity {:.2f} (cash {:.2f}, realised {:.2f}, "
      "unrealised {:.2f}, fees {:.2f})\n",
      result.orders, exits_text(result.exits), result.fills.size(), acct.equity(), acct.cash,
      acct.realised_pnl, acct.unrealised_pnl(), acct.fees);
  if (!result.rejects.empty()) {
    const auto& first = result.rejects.front();
    out << fmt::format("{} order{} refused by the paper broker; the first, {} {} {:g} {}: {}\n",
                       result.rejects.size(), result.rejects.size() == 1 ? "" : "s",
                       day_of(first.ts), broker::side_name(first.side), first.qty, first.symbol,
                       first.reason);
  }
  Table t({"METRIC", "VALUE", "UNIT"});
  for (const auto& kv : metric_values) {
    t.add_row({std::string(kv.key()), display_number(&kv.value()),
               std::string(metrics::metric_unit(kv.key()))});
  }
  t.print(out);
}

int backtest(const Globals& g, const BacktestOptions& o, std::ostream& out, std::ostream& err) {
  auto spec = strategy_source(o.source);
  if (!spec) return report(spec.error(), err);
  auto programs = programs_dir_option(o.strategy_programs);
  if (!programs) return report(programs.error(), err);
  // Errors name the file, or the program (its messages do).
  const std::string source = o.source.file.empty() ? std::string("--command") : o.source.file;
  auto strategy = sdk::load_strategy(*spec, {.programs_dir = *programs});
  if (!strategy)
    return report({kExitUsage, fmt::format("{}: {}", source, strategy.error().message)}, err);
  const std::string symbol = o.symbol.value_or(strategy->orders.symbol);
  sdk::BarCsvOptions csv;
  if (auto p = sdk::parse_price_column(o.price); p) {
    csv.price = *p;
  } else {
    return report({kExitUsage, fmt::format("--price: {}", p.error().message)}, err);
  }
  if (!o.tz.empty()) {
    auto zone = metrics::parse_time_zone(o.tz);
    if (!zone) return report({kExitUsage, fmt::format("--tz: {}", zone.error().message)}, err);
    csv.time = std::move(*zone);
  }
  auto file = sdk::read_bars_csv(o.data, symbol, csv);
  if (!file) return report({kExitUsage, file.error().message}, err);
  // Rows without values (a holiday in a Yahoo file) are skipped, and said so.
  const std::string skipped =
      file->skipped == 0
          ? std::string()
          : fmt::format("{} row{} without values skipped (the first at {}:{})", file->skipped,
                        file->skipped == 1 ? "" : "s", o.data, file->first_skipped_line);
  auto& bars = file->bars;
  if (!o.window.empty()) {
    // The last `window` of the data, as a validation over a history window asks.
    auto w = parse_duration(o.window);
    if (!w || w->count() <= 0) {
      return report({kExitUsage, fmt::format("--window takes a positive duration such as 26w, not "
                                             "'{}'",
                                             o.window)},
                    err);
    }
    if (!bars.empty()) {
      const TimePoint from = bars.back().ts - *w;
      std::erase_if(bars, [from](const auto& b) { return b.ts < from; });
    }
  }
  if (bars.size() < 2) {
    return report({kExitUsage, fmt::format("{}: fewer than two bars{}", o.data,
                                           o.window.empty() ? "" : " in the window")},
                  err);
  }
  const std::string id = strategy->id.empty() ? "strategy" : strategy->id;
  sdk::OfflineOptions options{.model = {.fee = broker::PercentFee{.rate = o.fee_bps / 10'000},
                                        .slippage = broker::FixedBps{.bps = o.slippage_bps},
                                        .volume_limit = o.volume_limit,
                                        .leverage = o.leverage},
                              .initial_cash = o.cash};
  auto result = sdk::Runner::offline(std::move(*strategy), bars, options);
  if (!result)
    return report({kExitRefused, fmt::format("{}: {}", source, result.error().message)}, err);

  // The initial cash is the equity before the first bar.
  auto series = sdk::backtest_series(*result, bars.front().ts, o.cash);
  if (!series) return report({kExitRefused, series.error().message}, err);
  const auto m = metrics::compute_metrics(*series);

  if (!o.records.empty()) {
    std::ofstream f(o.records);
    f << json::dump(records_json(*result)) << '\n';
    if (!f) return report({kExitUsage, fmt::format("cannot write {}", o.records)}, err);
  }
  boost::json::object metric_values;
  for (auto name : metrics::metric_names()) {
    if (name == "worst_loss") continue;
    auto v = m.get(name);
    metric_values[name] = v && v->present() ? boost::json::value(*v->value) : nullptr;
  }
  const BacktestRun run{.id = id, .symbol = symbol, .data = o.data, .cash = o.cash};
  if (!o.report.empty()) {
    if (auto r = write_report(o.report, run, bars, *result, metric_values); !r) {
      return report({kExitUsage, r.error().message}, err);
    }
  }
  print_backtest(g, run, bars, {.skipped = file->skipped, .skipped_text = skipped}, *result,
                 std::move(metric_values), out);
  return kExitOk;
}

}  // namespace

void add_backtest_command(CLI::App& app, const Globals& g, int& rc, std::ostream& out,
                          std::ostream& err) {
  auto o = std::make_shared<BacktestOptions>();
  auto* cmd =
      app.add_subcommand("backtest",
                         "run a strategy over a CSV of bars through the paper broker\n"
                         "  e.g. qmtl backtest examples/strategies/sma_cross.yml --data "
                         "examples/data/ttrc_ohlcv.csv\n"
                         "       qmtl backtest --command \"./breakout --serve\" --data bars.csv");
  cmd->add_option("strategy", o->source.file, "strategy file (YAML or JSON)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--command", o->source.command,
                  "instead of a file: a strategy program and its arguments (docs/sdk.md)");
  cmd->add_option("--timeout", o->source.timeout,
                  "with --command: how long the program may take to declare itself and to "
                  "answer each bar")
      ->default_str(o->source.timeout);
  cmd->add_option("--data", o->data, "CSV with date, open, high, low, close, volume")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--symbol", o->symbol, "symbol of the bars (default: the strategy's)");
  cmd->add_option("--price", o->price,
                  "trade at close, or adj_close (bars scaled by Adj Close / Close)")
      ->default_str("close");
  cmd->add_option("--tz", o->tz,
                  "zone of date-times written without one (UTC, +01:00, Europe/Berlin); "
                  "without it they are refused");
  cmd->add_option("--cash", o->cash, "starting cash")
      ->default_str("100000")
      ->check(finite_above(0));
  cmd->add_option("--fee-bps", o->fee_bps, "fee in basis points of notional")
      ->default_str("0")
      ->check(finite_at_least(0));
  cmd->add_option("--slippage-bps", o->slippage_bps, "slippage in basis points")
      ->default_str("0")
      ->check(finite_at_least(0));
  cmd->add_option("--volume-limit", o->volume_limit, "share of a bar's volume one order may take")
      ->default_str("0.025")
      ->check(finite_in(0.0, 1.0));
  cmd->add_option("--leverage", o->leverage,
                  "buying power: gross exposure at most this times equity (1: a cash account, "
                  "no margin); orders beyond it are refused")
      ->default_str("1")
      ->check(finite_in(0.01, 100.0));
  cmd->add_option("--strategy-programs", o->strategy_programs,
                  "run a program strategy only from this directory (none: no programs); a "
                  "server passes its own");
  cmd->add_option("--window", o->window,
                  "use only the last W of the data (e.g. 26w, 730d), ending at its last bar");
  cmd->add_option("--report", o->report,
                  "write an HTML report (equity, drawdown, trades on the price, metrics) here");
  cmd->add_option("--records", o->records,
                  "also write the performance records (points and fills) as JSON to this file");
  cmd->callback([o, &g, &rc, &out, &err] { rc = backtest(g, *o, out, err); });
}

}  // namespace qmtl::cli
