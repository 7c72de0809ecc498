#include "qmtl/sdk/runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "qmtl/core/file.h"
#include "qmtl/metrics/csv.h"

namespace qmtl::sdk {
namespace {

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> cells;
  size_t start = 0;
  for (;;) {
    const auto comma = line.find(',', start);
    cells.push_back(line.substr(start, comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return cells;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

Result<std::vector<broker::Bar>> parse_bars_csv(std::string_view text, std::string_view source,
                                                const std::string& symbol) {
  std::vector<broker::Bar> bars;
  size_t line_no = 0, pos = 0;
  // Column indexes: time, open, high, low, close, volume.
  std::array<int, 6> col{-1, -1, -1, -1, -1, -1};
  auto fail = [&](std::string msg) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{}:{}: {}", source, line_no, std::move(msg)));
  };
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const auto cells = split(line);
    if (col[0] < 0) {
      for (size_t i = 0; i < cells.size(); ++i) {
        const auto name = lower(cells[i]);
        if (name == "date" || name == "timestamp" || name == "ts" || name == "time" ||
            name == "datetime") {
          col[0] = static_cast<int>(i);
        }
        const std::array<std::string_view, 5> fields{"open", "high", "low", "close", "volume"};
        for (size_t f = 0; f < fields.size(); ++f) {
          if (name == fields[f]) col[f + 1] = static_cast<int>(i);
        }
      }
      if (std::find(col.begin(), col.end(), -1) != col.end()) {
        return fail("the header must name a date column and open, high, low, close, volume");
      }
      continue;
    }
    const int widest = *std::max_element(col.begin(), col.end());
    if (static_cast<int>(cells.size()) <= widest) {
      return fail(fmt::format("{} cells; the header has at least {}", cells.size(), widest + 1));
    }
    auto ts = metrics::parse_time_cell(cells[static_cast<size_t>(col[0])]);
    if (!ts) return fail(ts.error().message);
    std::array<double, 5> v{};
    for (size_t f = 0; f < 5; ++f) {
      const auto cell = cells[static_cast<size_t>(col[f + 1])];
      const auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v[f]);
      if (ec != std::errc() || p != cell.data() + cell.size()) {
        return fail(fmt::format("'{}' is not a number", cell));
      }
    }
    broker::Bar bar{.ts = *ts,
                    .symbol = symbol,
                    .open = v[0],
                    .high = v[1],
                    .low = v[2],
                    .close = v[3],
                    .volume = v[4]};
    if (auto r = broker::validate_bar(bar); !r) return fail(r.error().message);
    if (!bars.empty() && !(bars.back().ts < bar.ts)) {
      return fail("rows must be in increasing time order");
    }
    bars.push_back(std::move(bar));
  }
  if (col[0] < 0) return fail("the file is empty");
  return bars;
}

Result<std::vector<broker::Bar>> read_bars_csv(const std::string& path, const std::string& symbol) {
  auto text = read_file(path, "bar file");
  if (!text) return propagate(text);
  return parse_bars_csv(*text, path, symbol);
}

Result<BacktestResult> Runner::offline(DeclarativeStrategy strategy,
                                       const std::vector<broker::Bar>& bars,
                                       const OfflineOptions& options) {
  for (const auto& in : strategy.dag.input_names()) {
    if (in != "open" && in != "high" && in != "low" && in != "close" && in != "volume") {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("input '{}' is not a bar field; a backtest feeds open, high, "
                                    "low, close and volume",
                                    in));
    }
  }
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
    for (const auto& [field, value] :
         std::array<std::pair<std::string_view, double>, 5>{{{"open", bar.open},
                                                             {"high", bar.high},
                                                             {"low", bar.low},
                                                             {"close", bar.close},
                                                             {"volume", bar.volume}}}) {
      if (!dag.is_input(field)) continue;
      if (auto r = dag.push(field, bar.ts, value); !r) return propagate(r);
    }
    dag.close_buckets();
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
