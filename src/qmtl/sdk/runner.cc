#include "qmtl/sdk/runner.h"

#include <fmt/format.h>

#include <array>

namespace qmtl::sdk {

boost::json::object point_json(TimePoint ts, double equity) {
  return {{"ts", format_timestamp(ts)}, {"equity", equity}};
}

boost::json::object fill_json(const broker::Fill& f) {
  return {{"ts", format_timestamp(f.ts)},
          {"symbol", f.symbol},
          {"side", broker::side_name(f.side)},
          {"qty", f.qty},
          {"price", f.price},
          {"fee", f.fee}};
}

Result<void> check_bar_inputs(const Dag& dag) {
  for (const auto& in : dag.input_names()) {
    if (in != "open" && in != "high" && in != "low" && in != "close" && in != "volume") {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("input '{}' is not a bar field; a runner feeds open, high, "
                                    "low, close and volume",
                                    in));
    }
  }
  return {};
}

BarInputs::BarInputs(const Dag& dag) {
  using broker::Bar;
  const std::array<std::pair<std::string_view, double Bar::*>, 5> fields{
      {{"open", &Bar::open},
       {"high", &Bar::high},
       {"low", &Bar::low},
       {"close", &Bar::close},
       {"volume", &Bar::volume}}};
  for (const auto& [name, value] : fields) {
    if (auto id = dag.find_input(name)) fields_.push_back({value, *id});
  }
}

Result<void> BarInputs::push(Dag& dag, const broker::Bar& bar) const {
  for (const Field& f : fields_) {
    if (auto r = dag.push(f.id, bar.ts, bar.*f.value); !r) return r;
  }
  dag.close_buckets();
  return {};
}

Result<metrics::ReturnSeries> backtest_series(const BacktestResult& result, TimePoint first_bar,
                                              double initial_cash) {
  std::vector<metrics::Sample> samples{{first_bar - std::chrono::hours(24), initial_cash}};
  samples.reserve(result.points.size() + 1);
  for (const auto& p : result.points) samples.push_back({p.ts, p.equity});
  auto series = metrics::from_samples(metrics::SeriesKind::kEquity, samples);
  if (!series) return propagate(series);
  std::vector<metrics::Fill> fills;
  fills.reserve(result.fills.size());
  for (const auto& f : result.fills) {
    fills.push_back({.ts = f.ts,
                     .symbol = f.symbol,
                     .qty = f.side == broker::Side::kBuy ? f.qty : -f.qty,
                     .price = f.price,
                     .fee = f.fee});
  }
  series->fills = std::move(fills);
  return series;
}

BookView book_view(const broker::PaperBroker& paper, std::string_view symbol) {
  BookView view{.pending = paper.pending(symbol), .equity = paper.equity()};
  if (const auto* p = paper.position(symbol)) {
    view.position = p->qty;
    view.avg_price = p->avg_price;
  }
  return view;
}

namespace {

// Bars already in memory, as a feed.
class VectorFeed final : public BarFeed {
 public:
  explicit VectorFeed(const std::vector<broker::Bar>& bars) : bars_(bars) {}
  Result<FeedItem> next(std::chrono::milliseconds) override {
    if (i_ == bars_.size()) return FeedItem{.kind = FeedItem::Kind::kEnd};
    return FeedItem{.kind = FeedItem::Kind::kBar, .bar = &bars_[i_++]};
  }
  std::optional<size_t> size_hint() const override { return bars_.size() - i_; }

 private:
  const std::vector<broker::Bar>& bars_;
  size_t i_ = 0;
};

}  // namespace

Result<BacktestResult> Runner::offline(Strategy strategy, const std::vector<broker::Bar>& bars,
                                       const OfflineOptions& options) {
  VectorFeed feed(bars);
  auto r = offline(std::move(strategy), feed, options);
  return r;
}

Result<BacktestResult> Runner::offline(Strategy strategy, BarFeed& bars,
                                       const OfflineOptions& options) {
  if (auto r = check_bar_inputs(strategy.dag); !r) return propagate(r);
  broker::PaperBroker paper(options.model, options.initial_cash);
  BacktestResult result;
  if (auto n = bars.size_hint(); n && !options.on_point) result.points.reserve(*n);
  Dag& dag = strategy.dag;
  const OrderRule rule = strategy.orders;
  OrderPlanner planner(rule);
  const BarInputs inputs(dag);
  auto subscribed = dag.subscribe(rule.signal, [&](TimePoint, double v) { planner.on_signal(v); });
  if (!subscribed) return propagate(subscribed);
  if (!rule.exit.empty()) {
    auto exits = dag.subscribe(rule.exit, [&](TimePoint, double v) { planner.on_exit(v); });
    if (!exits) return propagate(exits);
  }
  for (;;) {
    auto item = bars.next(std::chrono::seconds(1));
    if (!item) return propagate(item);
    if (item->kind == FeedItem::Kind::kEnd) break;
    if (item->kind == FeedItem::Kind::kIdle) continue;
    const broker::Bar& bar = *item->bar;
    if (auto r = paper.on_bar(bar); !r) return propagate(r);
    auto fills = paper.take_fills();
    result.fills.insert(result.fills.end(), fills.begin(), fills.end());
    if (auto rejects = paper.take_rejects(); !rejects.empty()) {
      planner.resync(book_view(paper, rule.symbol));
      result.rejects.insert(result.rejects.end(), rejects.begin(), rejects.end());
    }
    if (auto r = inputs.push(dag, bar); !r) return propagate(r);
    if (dag.failure()) return tl::unexpected(*dag.failure());
    // The order node: the signal's target against what is held and open.
    if (planner.quiet()) {
      // Most bars: nothing to decide, and the book is not read.
    } else if (auto order = planner.decide(bar.close, book_view(paper, rule.symbol))) {
      auto id = paper.submit(
          {.symbol = rule.symbol, .side = order->side, .qty = order->qty, .ts = bar.ts});
      if (!id) return propagate(id);
      ++result.orders;
      if (order->reason != "signal") ++result.exits[std::string(order->reason)];
    }
    const EquityPoint point{bar.ts, paper.equity()};
    if (options.on_point) {
      options.on_point(point);
    } else {
      result.points.push_back(point);
    }
  }
  dag.finish();
  result.node_updates = dag.updates();
  result.account = paper.account();
  return result;
}

}  // namespace qmtl::sdk
