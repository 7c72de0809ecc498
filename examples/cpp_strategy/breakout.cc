// A C++ strategy: hold 100 units from a close above the highest close of the
// previous 20 bars until a close below the lowest. The breakout is a compute
// node (any C++ over a window of its inputs) whose +1 / -1 are events to the
// order rule (docs/sdk.md, "Orders"); the rest is the same Dag, order rule
// and Runner that `qmtl backtest` and `qmtl run` use.
//
//   breakout BARS.csv [SYMBOL]    a backtest of its own, printing its KPIs
//   breakout --serve [SYMBOL]     a strategy program: qmtl runs it and sends it
//                                 the bars (docs/sdk.md, "Strategies as programs")
//
// As a program it goes to a world like a YAML strategy, with the server's
// validation backtest, dry run and order gate:
//
//   qmtl strategy submit --command "/srv/qmtl/strategies/breakout --serve" --world demo
#include <cstdio>
#include <cstring>
#include <string>

#include "qmtl/metrics/kpi.h"
#include "qmtl/sdk/program.h"
#include "qmtl/sdk/runner.h"

using qmtl::sdk::WindowView;

namespace {

qmtl::sdk::Strategy breakout(const std::string& symbol) {
  constexpr size_t kLookback = 20;
  qmtl::sdk::Strategy s{.id = "breakout"};
  s.dag.input("close", std::chrono::hours(24), 1);
  // The window holds this bar and the 20 before it (w[0] is the newest); the
  // node emits nothing until it is full: that is its warm-up.
  s.dag.compute("breakout", {"close"}, kLookback + 1,
                [](const std::vector<WindowView>& in) -> std::optional<double> {
                  const WindowView& w = in[0];
                  double hi = w[1], lo = w[1];
                  for (size_t k = 2; k < w.size(); ++k) {
                    hi = std::max(hi, w[k]);
                    lo = std::min(lo, w[k]);
                  }
                  if (w[0] > hi) return 1.0;
                  if (w[0] < lo) return -1.0;
                  return 0.0;
                });
  s.orders = {.signal = "breakout", .symbol = symbol, .qty = 100};
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: breakout BARS.csv [SYMBOL] | breakout --serve [SYMBOL]\n");
    return 2;
  }
  const std::string symbol = argc > 2 ? argv[2] : "TTRC";
  qmtl::sdk::Strategy s = breakout(symbol);
  if (auto built = s.dag.build(); !built) {
    std::fprintf(stderr, "breakout: %s\n", built.error().message.c_str());
    return 1;
  }
  if (std::strcmp(argv[1], "--serve") == 0) return qmtl::sdk::serve_strategy(std::move(s));

  auto file = qmtl::sdk::read_bars_csv(argv[1], symbol);
  if (!file) {
    std::fprintf(stderr, "breakout: %s\n", file.error().message.c_str());
    return 1;
  }
  auto result = qmtl::sdk::Runner::offline(std::move(s), file->bars, {.initial_cash = 100'000});
  if (!result) {
    std::fprintf(stderr, "breakout: %s\n", result.error().message.c_str());
    return 1;
  }
  std::vector<qmtl::metrics::Sample> samples;
  for (const auto& p : result->points) samples.push_back({p.ts, p.equity});
  auto series = qmtl::metrics::from_samples(qmtl::metrics::SeriesKind::kEquity, samples);
  if (!series) {
    std::fprintf(stderr, "breakout: %s\n", series.error().message.c_str());
    return 1;
  }
  const auto m = qmtl::metrics::compute_metrics(*series);
  auto show = [&](const char* name) {
    auto v = m.get(name);
    if (v && v->present()) {
      std::printf("%s %.6f\n", name, *v->value);
    } else {
      std::printf("%s -\n", name);
    }
  };
  std::printf("bars %zu\norders %llu\nfills %zu\nfinal_equity %.2f\n", file->bars.size(),
              static_cast<unsigned long long>(result->orders), result->fills.size(),
              result->account.equity());
  show("return");
  show("sharpe");
  show("max_drawdown");
  return 0;
}
