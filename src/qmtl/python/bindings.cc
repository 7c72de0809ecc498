// qmtl._qmtl: the C++ behind the Python package (python/qmtl, docs/python.md).
//
// Plain types at this boundary (NumPy arrays, str, JSON text); the package's
// Python side turns them into pandas objects. Every call does its work through
// the same functions as the CLI (metrics::compute_metrics, the policy's
// evaluate_offline, sdk::Runner::offline), so the answers are the CLI's. Long
// calls release the GIL; errors raise qmtl.Error (a ValueError) with the
// message the CLI prints.
#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "qmtl/core/duration.h"
#include "qmtl/core/json.h"
#include "qmtl/metrics/correlation.h"
#include "qmtl/metrics/kpi.h"
#include "qmtl/policy/document.h"
#include "qmtl/policy/offline.h"
#include "qmtl/policy/yaml_json.h"
#include "qmtl/sdk/program.h"
#include "qmtl/sdk/runner.h"

namespace py = pybind11;

namespace qmtl::python {
namespace {

// Raised as qmtl.Error.
class QmtlError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename T>
T value_or_raise(Result<T> r, std::string_view context = {}) {
  if (!r) {
    throw QmtlError(context.empty() ? r.error().message
                                    : fmt::format("{}: {}", context, r.error().message));
  }
  return std::move(*r);
}

using Int64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
// Values as given: a column-major (Fortran) array, as pandas hands out a
// frame of one dtype, is read in place; others are read through strides.
using DoubleArray = py::array_t<double, py::array::forcecast>;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TimePoint from_ns(int64_t ns) { return TimePoint(Duration(ns / 1000)); }
int64_t to_ns(TimePoint t) { return t.time_since_epoch().count() * 1000; }

struct SeriesInput {
  std::vector<TimePoint> ts;
  const double* data = nullptr;
  ssize_t rows = 0, cols = 0;
  ssize_t row_stride = 0, col_stride = 0;  // in doubles
  bool strict = false;                     // ts strictly increasing
  double at(ssize_t r, ssize_t c) const { return data[r * row_stride + c * col_stride]; }
};

SeriesInput series_input(const Int64Array& ts, const DoubleArray& values) {
  if (values.ndim() != 2) throw QmtlError("values must be two-dimensional (rows x columns)");
  if (ts.ndim() != 1 || ts.shape(0) != values.shape(0)) {
    throw QmtlError("there must be one timestamp per row");
  }
  SeriesInput in;
  in.rows = values.shape(0);
  in.cols = values.shape(1);
  in.data = values.data();
  in.row_stride = values.strides(0) / static_cast<ssize_t>(sizeof(double));
  in.col_stride = values.strides(1) / static_cast<ssize_t>(sizeof(double));
  in.ts.reserve(static_cast<size_t>(in.rows));
  const int64_t* t = ts.data();
  for (ssize_t r = 0; r < in.rows; ++r) in.ts.push_back(from_ns(t[r]));
  in.strict = std::adjacent_find(in.ts.begin(), in.ts.end(), std::greater_equal<>()) == in.ts.end();
  return in;
}

metrics::SeriesKind parse_kind(const std::string& kind) {
  for (auto k :
       {metrics::SeriesKind::kEquity, metrics::SeriesKind::kPnl, metrics::SeriesKind::kReturn}) {
    if (metrics::series_kind_name(k) == kind) return k;
  }
  throw QmtlError(fmt::format("kind must be equity, pnl or return, not '{}'", kind));
}

std::optional<Duration> parse_window(const std::optional<std::string>& text, const char* what) {
  if (!text) return std::nullopt;
  auto d = parse_duration(*text);
  if (!d || d->count() <= 0) {
    throw QmtlError(
        fmt::format("{} takes a positive duration such as 4w or 90d, not '{}'", what, *text));
  }
  return *d;
}

// A thread's buffers, reused from column to column.
struct ColumnBuffers {
  std::vector<metrics::Sample> samples;
  metrics::ReturnSeries series;
  // Columns [block_first, block_first + block_cols) of a row-major frame,
  // copied one after another (see for_each_column).
  std::vector<double> block;
  ssize_t block_first = 0, block_cols = 0;
};

// Columns taken together from a row-major frame: 8 doubles, one cache line.
// (16 and 32 were no faster; a fused build of 8 series at once was slower.)
constexpr ssize_t kBlockColumns = 8;

// Copies columns [first, first + n) of a row-major frame into b.block, one
// column after another. One pass over the rows reads each cache line once;
// reading the columns one at a time reads each line n times, a row (in a
// wide frame, pages) apart, which no prefetcher follows.
void copy_block(const SeriesInput& in, ssize_t first, ssize_t n, ColumnBuffers& b) {
  b.block.resize(static_cast<size_t>(n * in.rows));
  b.block_first = first;
  b.block_cols = n;
  double* out = b.block.data();
  for (ssize_t r = 0; r < in.rows; ++r) {
    const double* row = in.data + r * in.row_stride + first;
    for (ssize_t j = 0; j < n; ++j) out[j * in.rows + r] = row[j];
  }
}

// Column `c` as a return series, in `b`'s buffers; rows whose value is NaN
// are skipped (as the CLI skips rows without a value).
Result<const metrics::ReturnSeries*> column_series(const SeriesInput& in, ssize_t c,
                                                   metrics::SeriesKind kind,
                                                   std::optional<double> initial_equity,
                                                   ColumnBuffers& b) {
  // Read in place when it can be (no NaN, times strictly increasing): the
  // same series without building the samples, which cost half as much as
  // the metrics. Anything else takes the general way, which says what is wrong.
  const bool copied = c >= b.block_first && c < b.block_first + b.block_cols;
  const double* column =
      copied ? b.block.data() + (c - b.block_first) * in.rows : in.data + c * in.col_stride;
  if (in.strict && metrics::from_values(kind, in.ts, column, copied ? 1 : in.row_stride,
                                        {.initial_equity = initial_equity}, b.series)) {
    return &b.series;
  }
  b.samples.clear();
  for (ssize_t r = 0; r < in.rows; ++r) {
    const double v = in.at(r, c);
    if (!std::isnan(v)) b.samples.push_back({in.ts[static_cast<size_t>(r)], v});
  }
  if (auto r = metrics::from_samples(kind, b.samples, {.initial_equity = initial_equity}, b.series);
      !r) {
    return propagate(r);
  }
  return &b.series;
}

// Runs fn(c, buffers) for every column on `threads` threads (0: the
// hardware's). Each thread builds a few series at a time in the same buffers:
// a frame of 10,000 columns never holds 10,000 series, whose fresh pages would
// cost more than the metrics. The first error (by column) is raised, naming it.
void for_each_column(const SeriesInput& in, const std::vector<std::string>& names, unsigned threads,
                     const std::function<Result<void>(ssize_t, ColumnBuffers&)>& fn) {
  const unsigned n = threads == 0 ? std::max(1u, std::thread::hardware_concurrency()) : threads;
  std::atomic<ssize_t> next{0};
  std::mutex mu;
  std::optional<std::pair<ssize_t, Error>> first_error;
  // A DataFrame made from a 2-D array is row-major: a column's values are a
  // row apart. A thread then copies kBlockColumns columns at a time first.
  const bool row_major = in.col_stride == 1 && in.row_stride >= kBlockColumns;
  auto work = [&] {
    ColumnBuffers buffers;
    buffers.samples.reserve(static_cast<size_t>(in.rows));
    for (ssize_t first; (first = next.fetch_add(kBlockColumns)) < in.cols;) {
      const ssize_t cols = std::min(kBlockColumns, in.cols - first);
      if (row_major) copy_block(in, first, cols, buffers);
      for (ssize_t c = first; c < first + cols; ++c) {
        if (auto r = fn(c, buffers); !r) {
          std::lock_guard lock(mu);
          if (!first_error || c < first_error->first) first_error.emplace(c, r.error());
        }
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1;
       t < std::min<unsigned>(n, static_cast<unsigned>(std::max<ssize_t>(in.cols, 1))); ++t) {
    pool.emplace_back(work);
  }
  work();
  for (auto& t : pool) t.join();
  if (first_error) {
    throw QmtlError(fmt::format("{}: {}", names.at(static_cast<size_t>(first_error->first)),
                                first_error->second.message));
  }
}

// metrics(ts_ns, values, names, kind, window, periods_per_year, initial_equity,
// worst_loss, threads) -> (metric names, values [columns x metrics], missing
// [{name: why}] per column). With a window: the last window's metrics,
// annualised like the whole series (as `qmtl metrics --window` does).
py::tuple metrics_fn(const Int64Array& ts, const DoubleArray& values,
                     const std::vector<std::string>& names, const std::string& kind,
                     const std::optional<std::string>& window,
                     std::optional<double> periods_per_year, std::optional<double> initial_equity,
                     const std::vector<std::string>& worst_loss, unsigned threads) {
  const auto k = parse_kind(kind);
  const auto w = parse_window(window, "window");
  if (periods_per_year && !(*periods_per_year > 0 && std::isfinite(*periods_per_year))) {
    throw QmtlError("periods_per_year must be a positive number");
  }
  metrics::MetricsOptions options{.periods_per_year = periods_per_year};
  for (const auto& text : worst_loss) {
    options.worst_loss_windows.push_back(*parse_window(text, "worst_loss"));
  }
  const SeriesInput in = series_input(ts, values);
  std::vector<metrics::Metrics> result(static_cast<size_t>(in.cols));
  {
    py::gil_scoped_release released;
    for_each_column(in, names, threads, [&](ssize_t c, ColumnBuffers& b) -> Result<void> {
      auto s = column_series(in, c, k, initial_equity, b);
      if (!s) return propagate(s);
      const metrics::ReturnSeries* series = *s;
      auto& m = result[static_cast<size_t>(c)];
      m = metrics::compute_metrics(*series, options);
      if (w) {
        // The last window, annualised like the whole series (as the CLI does).
        metrics::MetricsOptions wo = options;
        wo.window = w;
        if (!wo.periods_per_year && m.periods_per_year.present()) {
          wo.periods_per_year = m.periods_per_year.value;
        }
        m = metrics::compute_metrics(*series, wo);
      }
      return Result<void>();
    });
  }
  metrics::Metrics none;  // the names when there are no columns
  for (const auto& d : options.worst_loss_windows)
    none.worst_loss.emplace_back(d, metrics::MetricValue{});
  std::vector<std::string> columns;
  for (const auto& [name, v] : metrics::metric_rows(result.empty() ? none : result.front())) {
    columns.push_back(name);
  }
  py::array_t<double> out(
      {static_cast<ssize_t>(result.size()), static_cast<ssize_t>(columns.size())});
  auto o = out.mutable_unchecked<2>();
  py::list missing;
  for (size_t i = 0; i < result.size(); ++i) {
    py::dict why;
    const auto rows = metrics::metric_rows(result[i]);
    for (size_t j = 0; j < rows.size(); ++j) {
      const auto& [name, v] = rows[j];
      o(static_cast<ssize_t>(i), static_cast<ssize_t>(j)) = v.present() ? *v.value : kNaN;
      if (!v.present()) why[py::str(name)] = py::str(std::string(v.why_missing));
    }
    missing.append(why);
  }
  return py::make_tuple(columns, out, missing);
}

// correlation(ts_ns, values, names, kind, window) -> [columns x columns], NaN
// where a pair has too few common periods (as `qmtl metrics` prints n/a).
py::array_t<double> correlation_fn(const Int64Array& ts, const DoubleArray& values,
                                   const std::vector<std::string>& names, const std::string& kind,
                                   const std::optional<std::string>& window,
                                   std::optional<double> initial_equity) {
  const auto k = parse_kind(kind);
  const auto w = parse_window(window, "window");
  const SeriesInput in = series_input(ts, values);
  const auto n = static_cast<ssize_t>(in.cols);
  py::array_t<double> out({n, n});
  auto o = out.mutable_unchecked<2>();
  {
    py::gil_scoped_release released;
    std::vector<metrics::ReturnSeries> series(static_cast<size_t>(n));
    for_each_column(in, names, 1, [&](ssize_t c, ColumnBuffers& b) -> Result<void> {
      auto s = column_series(in, c, k, initial_equity, b);
      if (!s) return propagate(s);
      // All the series are kept: the thread's own buffer is moved out rather
      // than copied (the next column allocates afresh).
      auto& kept = series[static_cast<size_t>(c)];
      if (*s == &b.series) {
        kept = std::move(b.series);
      } else {
        kept = **s;
      }
      return {};
    });
    for (ssize_t i = 0; i < n; ++i) {
      for (ssize_t j = i; j < n; ++j) {
        const auto c =
            metrics::correlation(series[static_cast<size_t>(i)], series[static_cast<size_t>(j)], w);
        o(i, j) = o(j, i) = c.present() ? *c.value : kNaN;
      }
    }
  }
  return out;
}

policy::PolicyDocument policy_document(const std::string& text, const std::string& source) {
  return value_or_raise(policy::parse_policy_document(text, source));
}

// policy_check(text, source) -> the JSON of `qmtl policy check --output json`.
std::string policy_check_fn(const std::string& text, const std::string& source) {
  return json::dump(
      policy::policy_summary_json(policy::summarize_policy(policy_document(text, source))));
}

boost::json::value parse_json_arg(const std::string& text, const char* what) {
  auto v = json::parse(text);
  if (!v) throw QmtlError(fmt::format("{}: {}", what, v.error().message));
  return std::move(*v);
}

// policy_evaluate(text, source, metrics_json, previous, correlations_json,
// history_json, now, stage) -> the JSON of `qmtl policy eval --output json`.
std::string policy_evaluate_fn(const std::string& text, const std::string& source,
                               const std::string& metrics_json,
                               const std::vector<std::string>& previous,
                               const std::optional<std::string>& correlations_json,
                               const std::optional<std::string>& history_json,
                               const std::optional<std::string>& now,
                               const std::optional<std::string>& stage) {
  const auto doc = policy_document(text, source);
  policy::OfflineInputs in{
      .metrics = parse_json_arg(metrics_json, "metrics"),
      .previous = previous,
      .now = now ? value_or_raise(parse_timestamp(*now), "now") : SystemClock().now(),
      .stage = stage};
  if (correlations_json) in.correlations = parse_json_arg(*correlations_json, "correlations");
  if (history_json) in.history = parse_json_arg(*history_json, "history");
  policy::OfflineResult r;
  {
    py::gil_scoped_release released;
    r = value_or_raise(policy::evaluate_offline(doc, in));
  }
  return json::dump(policy::offline_result_json(r));
}

// strategy_spec(text, source) -> the strategy as JSON text: YAML or JSON read
// as `qmtl backtest` reads a file, and checked by building it.
std::string strategy_spec_fn(const std::string& text, const std::string& source) {
  auto doc = value_or_raise(policy::yaml_to_json(text, source));
  if (!doc.is_object())
    throw QmtlError(fmt::format("{}: a strategy must be a mapping of fields", source));
  value_or_raise(sdk::load_strategy(doc), source);
  return json::dump(doc);
}

// check_declaration(json) -> None: a Python strategy's declaration checked as
// a program's is (qmtl.Error naming what is wrong).
void check_declaration_fn(const std::string& declaration_json) {
  const auto d = parse_json_arg(declaration_json, "declaration");
  if (!d.is_object()) throw QmtlError("the declaration must be a mapping");
  value_or_raise(sdk::function_strategy(d.as_object(), [](TimePoint, const broker::Bar&) {
    return Result<sdk::SignalValues>(sdk::SignalValues{});
  }));
}

// program_spec(command, timeout_s) -> the spec `qmtl strategy submit
// --command` sends, as JSON text.
std::string program_spec_fn(const std::vector<std::string>& command, double timeout_s) {
  if (!(timeout_s > 0 && timeout_s <= 3600)) throw QmtlError("timeout must be from 0 to 3600 s");
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  return json::dump(value_or_raise(sdk::program_spec(command, timeout)));
}

std::vector<broker::Bar> bars_of(const Int64Array& ts, const DoubleArray& ohlcv,
                                 const std::string& symbol) {
  if (ohlcv.ndim() != 2 || ohlcv.shape(1) != 5 || ts.ndim() != 1 || ts.shape(0) != ohlcv.shape(0)) {
    throw QmtlError("bars must be rows of open, high, low, close, volume with one time each");
  }
  auto v = ohlcv.unchecked<2>();
  const int64_t* t = ts.data();
  std::vector<broker::Bar> bars;
  bars.reserve(static_cast<size_t>(ohlcv.shape(0)));
  for (ssize_t r = 0; r < ohlcv.shape(0); ++r) {
    broker::Bar b{.ts = from_ns(t[r]),
                  .symbol = symbol,
                  .open = v(r, 0),
                  .high = v(r, 1),
                  .low = v(r, 2),
                  .close = v(r, 3),
                  .volume = v(r, 4)};
    auto ok = broker::validate_bar(b);
    if (!ok) {
      throw QmtlError(
          fmt::format("bar {} ({}): {}", r, format_timestamp(b.ts), ok.error().message));
    }
    if (!bars.empty() && b.ts <= bars.back().ts) {
      throw QmtlError(
          fmt::format("bar {} ({}) is not after the bar before it: bars must be in "
                      "increasing time order",
                      r, format_timestamp(b.ts)));
    }
    bars.push_back(std::move(b));
  }
  if (bars.size() < 2) throw QmtlError("fewer than two bars");
  return bars;
}

struct CostArgs {
  double cash, fee_bps, slippage_bps, volume_limit, leverage;
};

// `strategy` over the bars as `qmtl backtest` runs it -> dict: the JSON
// fields of `qmtl backtest --output json` plus the equity curve and the fills
// as arrays. The GIL is released while it runs (a Python strategy's callback
// takes it back for each bar).
py::dict run_backtest(sdk::Strategy strategy, const Int64Array& ts, const DoubleArray& ohlcv,
                      const std::optional<std::string>& symbol_arg, const CostArgs& costs) {
  for (auto [name, v] :
       {std::pair{"cash", costs.cash}, std::pair{"fee_bps", costs.fee_bps},
        std::pair{"slippage_bps", costs.slippage_bps},
        std::pair{"volume_limit", costs.volume_limit}, std::pair{"leverage", costs.leverage}}) {
    if (!std::isfinite(v) || v < 0) {
      throw QmtlError(fmt::format("{} must be a finite number >= 0", name));
    }
  }
  const std::string symbol = symbol_arg.value_or(strategy.orders.symbol);
  strategy.orders.symbol = symbol;
  const std::string id = strategy.id.empty() ? "strategy" : strategy.id;
  const auto bars = bars_of(ts, ohlcv, symbol);
  sdk::BacktestResult result;
  metrics::Metrics m;
  {
    py::gil_scoped_release released;
    sdk::OfflineOptions options{.model = {.fee = broker::PercentFee{.rate = costs.fee_bps / 10'000},
                                          .slippage = broker::FixedBps{.bps = costs.slippage_bps},
                                          .volume_limit = costs.volume_limit,
                                          .leverage = costs.leverage},
                                .initial_cash = costs.cash};
    result = value_or_raise(sdk::Runner::offline(std::move(strategy), bars, options), id);
    m = metrics::compute_metrics(
        value_or_raise(sdk::backtest_series(result, bars.front().ts, costs.cash)));
  }
  py::dict kpis;
  for (auto name : metrics::metric_names()) {
    if (name == "worst_loss") continue;
    const auto v = m.get(name);
    kpis[py::str(std::string(name))] =
        v && v->present() ? py::object(py::float_(*v->value)) : py::object(py::none());
  }
  py::array_t<int64_t> eq_ts(static_cast<ssize_t>(result.points.size()));
  py::array_t<double> eq(static_cast<ssize_t>(result.points.size()));
  auto et = eq_ts.mutable_unchecked<1>();
  auto ev = eq.mutable_unchecked<1>();
  for (size_t i = 0; i < result.points.size(); ++i) {
    et(static_cast<ssize_t>(i)) = to_ns(result.points[i].ts);
    ev(static_cast<ssize_t>(i)) = result.points[i].equity;
  }
  py::list fills;
  for (const auto& f : result.fills) {
    fills.append(py::make_tuple(to_ns(f.ts), f.symbol, std::string(broker::side_name(f.side)),
                                f.qty, f.price, f.fee));
  }
  py::list rejected;
  for (const auto& r : result.rejects) {
    rejected.append(py::make_tuple(to_ns(r.ts), r.symbol, std::string(broker::side_name(r.side)),
                                   r.qty, r.reason));
  }
  py::dict exits;
  for (const auto& [why, n] : result.exits) exits[py::str(why)] = n;
  const auto& acct = result.account;
  py::dict out;
  out["strategy"] = id;
  out["symbol"] = symbol;
  out["bars"] = bars.size();
  out["orders"] = result.orders;
  out["exits"] = exits;
  out["final_equity"] = acct.equity();
  out["cash"] = acct.cash;
  out["realised_pnl"] = acct.realised_pnl;
  out["unrealised_pnl"] = acct.unrealised_pnl();
  out["fees"] = acct.fees;
  out["metrics"] = kpis;
  out["equity_ts"] = eq_ts;
  out["equity"] = eq;
  out["fills"] = fills;
  out["rejected"] = rejected;
  return out;
}

py::dict backtest_fn(const std::string& spec_json, const Int64Array& ts, const DoubleArray& ohlcv,
                     const std::optional<std::string>& symbol, double cash, double fee_bps,
                     double slippage_bps, double volume_limit, double leverage) {
  auto strategy =
      value_or_raise(sdk::load_strategy(parse_json_arg(spec_json, "strategy")), "strategy");
  return run_backtest(std::move(strategy), ts, ohlcv, symbol,
                      {cash, fee_bps, slippage_bps, volume_limit, leverage});
}

// A Python strategy (qmtl.Strategy): its declaration, and on_bar(ts_ns, open,
// high, low, close, volume) -> (signal | None, exit | None), called with the
// GIL for each bar. An exception in it fails the strategy, naming it.
py::dict backtest_function_fn(const std::string& declaration_json, py::function on_bar,
                              const Int64Array& ts, const DoubleArray& ohlcv,
                              const std::optional<std::string>& symbol, double cash, double fee_bps,
                              double slippage_bps, double volume_limit, double leverage) {
  const auto declaration = parse_json_arg(declaration_json, "declaration");
  if (!declaration.is_object()) throw QmtlError("the declaration must be a mapping");
  // The Strategy that holds the callback is destroyed where the GIL is
  // released: its last reference goes with the GIL taken back.
  std::shared_ptr<py::function> callback(new py::function(std::move(on_bar)), [](py::function* f) {
    py::gil_scoped_acquire held;
    delete f;
  });
  auto fn = [callback](TimePoint bucket, const broker::Bar& bar) -> Result<sdk::SignalValues> {
    py::gil_scoped_acquire held;
    try {
      const py::tuple r =
          (*callback)(to_ns(bucket), bar.open, bar.high, bar.low, bar.close, bar.volume);
      sdk::SignalValues v;
      if (!r[0].is_none()) v.signal = r[0].cast<double>();
      if (!r[1].is_none()) v.exit = r[1].cast<double>();
      return v;
    } catch (py::error_already_set& e) {
      return make_error(ErrorCode::kFailedPrecondition,
                        fmt::format("on_bar raised at {}: {}", format_timestamp(bucket), e.what()));
    } catch (const py::cast_error& e) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("on_bar returned something that is not a number at {}",
                                    format_timestamp(bucket)));
    }
  };
  auto strategy = value_or_raise(sdk::function_strategy(declaration.as_object(), std::move(fn)),
                                 "the strategy's declaration");
  return run_backtest(std::move(strategy), ts, ohlcv, symbol,
                      {cash, fee_bps, slippage_bps, volume_limit, leverage});
}

}  // namespace
}  // namespace qmtl::python

PYBIND11_MODULE(_qmtl, m) {
  using namespace qmtl::python;
  m.doc() = "qmtl's C++ core; use the qmtl package, not this module";
  py::register_exception<QmtlError>(m, "Error", PyExc_ValueError);
  m.def("metrics", &metrics_fn, py::arg("ts"), py::arg("values"), py::arg("names"), py::arg("kind"),
        py::arg("window"), py::arg("periods_per_year"), py::arg("initial_equity"),
        py::arg("worst_loss"), py::arg("threads"));
  m.def("correlation", &correlation_fn, py::arg("ts"), py::arg("values"), py::arg("names"),
        py::arg("kind"), py::arg("window"), py::arg("initial_equity"));
  m.def("policy_check", &policy_check_fn, py::arg("text"), py::arg("source"));
  m.def("policy_evaluate", &policy_evaluate_fn, py::arg("text"), py::arg("source"),
        py::arg("metrics"), py::arg("previous"), py::arg("correlations"), py::arg("history"),
        py::arg("now"), py::arg("stage"));
  m.def("strategy_spec", &strategy_spec_fn, py::arg("text"), py::arg("source"));
  m.def("check_declaration", &check_declaration_fn, py::arg("declaration"));
  m.def("program_spec", &program_spec_fn, py::arg("command"), py::arg("timeout_s"));
  m.def("backtest_function", &backtest_function_fn, py::arg("declaration"), py::arg("on_bar"),
        py::arg("ts"), py::arg("ohlcv"), py::arg("symbol"), py::arg("cash"), py::arg("fee_bps"),
        py::arg("slippage_bps"), py::arg("volume_limit"), py::arg("leverage"));
  m.def("backtest", &backtest_fn, py::arg("spec"), py::arg("ts"), py::arg("ohlcv"),
        py::arg("symbol"), py::arg("cash"), py::arg("fee_bps"), py::arg("slippage_bps"),
        py::arg("volume_limit"), py::arg("leverage"));
}
