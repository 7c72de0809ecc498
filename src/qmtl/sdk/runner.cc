#include "qmtl/sdk/runner.h"

#include <fmt/format.h>

#include <array>

namespace qmtl::sdk {

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

Result<void> push_bar(Dag& dag, const broker::Bar& bar) {
  for (const auto& [field, value] :
       std::array<std::pair<std::string_view, double>, 5>{{{"open", bar.open},
                                                           {"high", bar.high},
                                                           {"low", bar.low},
                                                           {"close", bar.close},
                                                           {"volume", bar.volume}}}) {
    if (!dag.is_input(field)) continue;
    if (auto r = dag.push(field, bar.ts, value); !r) return r;
  }
  dag.close_buckets();
  return {};
}

Result<BacktestResult> Runner::offline(DeclarativeStrategy strategy,
                                       const std::vector<broker::Bar>& bars,
                                       const OfflineOptions& options) {
  if (auto r = check_bar_inputs(strategy.dag); !r) return propagate(r);
  broker::PaperBroker paper(options.model, options.initial_cash);
  BacktestResult result;
  result.points.reserve(bars.size());
  Dag& dag = strategy.dag;
  const OrderRule rule = strategy.orders;
  std::optional<Error> order_error;
  TimePoint now{};
  dag.on_output([&](std::string_view node, TimePoint, double v) {
    if (node != rule.signal || v == 0) return;
    auto id = paper.submit({.symbol = rule.symbol,
                            .side = v > 0 ? broker::Side::kBuy : broker::Side::kSell,
                            .qty = rule.qty,
                            .ts = now});
    if (!id && !order_error) order_error = id.error();
    ++result.orders;
  });
  for (const auto& bar : bars) {
    if (auto r = paper.on_bar(bar); !r) return propagate(r);
    auto fills = paper.take_fills();
    result.fills.insert(result.fills.end(), fills.begin(), fills.end());
    now = bar.ts;
    if (auto r = push_bar(dag, bar); !r) return propagate(r);
    if (dag.failure()) return tl::unexpected(*dag.failure());
    if (order_error) return tl::unexpected(*order_error);
    result.points.push_back({bar.ts, paper.account().equity()});
  }
  dag.finish();
  result.node_updates = dag.updates();
  result.account = paper.account();
  return result;
}

}  // namespace qmtl::sdk
