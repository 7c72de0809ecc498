#include "qmtl/cli/metrics_command.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>
#include <filesystem>

#include "qmtl/cli/cli.h"
#include "qmtl/cli/table.h"
#include "qmtl/core/duration.h"
#include "qmtl/core/json.h"
#include "qmtl/metrics/correlation.h"
#include "qmtl/metrics/csv.h"
#include "qmtl/metrics/kpi.h"

namespace qmtl::cli {
namespace {

using metrics::Metrics;
using metrics::MetricValue;

struct Loaded {
  std::string file;
  metrics::SeriesKind kind;
  metrics::ReturnSeries series;
  size_t skipped = 0;  // rows without a time or value
};

std::string show(const std::string& name, const MetricValue& v) {
  if (!v.present()) return fmt::format("n/a ({})", v.why_missing);
  const double x = *v.value;
  if (name == "periods" || name == "trades") return fmt::format("{:.0f}", x);
  if (name == "time_under_water") return fmt::format("{:.2f} d", x);
  if (name == "periods_per_year") return fmt::format("{:g}", x);
  if (std::abs(x) >= 1e6) return fmt::format("{:.4e}", x);
  return fmt::format("{:.4f}", x);
}

boost::json::object to_json(const Metrics& m, boost::json::object& missing) {
  boost::json::object o;
  for (const auto& [name, v] : metrics::metric_rows(m)) {
    if (v.present()) {
      o[name] = *v.value;
    } else {
      o[name] = nullptr;
      missing[name] = v.why_missing;
    }
  }
  return o;
}

std::string label(const std::string& file) {
  return std::filesystem::path(file).filename().string();
}

// Every file as a return series; nullopt (the reason on `err`) when one is refused.
std::optional<std::vector<Loaded>> load_files(const MetricsCommandOptions& o,
                                              const metrics::TimeOptions& time, std::ostream& err) {
  std::vector<Loaded> loaded;
  for (const auto& file : o.files) {
    auto csv = metrics::read_series_csv(file, time);
    if (!csv) {
      err << "qmtl: " << csv.error().message << '\n';
      return std::nullopt;
    }
    if (csv->skipped > 0 && !o.json) {
      err << fmt::format("qmtl: {}: {} row{} without values skipped (the first at line {})\n", file,
                         csv->skipped, csv->skipped == 1 ? "" : "s", csv->first_skipped_line);
    }
    auto series =
        metrics::from_samples(csv->kind, csv->samples, {.initial_equity = o.initial_equity});
    if (!series) {
      err << "qmtl: " << file << ": " << series.error().message << '\n';
      return std::nullopt;
    }
    loaded.push_back({file, csv->kind, std::move(*series), csv->skipped});
  }
  return loaded;
}

}  // namespace

// The first and last rows' times ("-" without rows). An equity file's first
// row is the starting equity, not a return: one row has a time but no returns.
std::pair<std::string, std::string> row_times(const Loaded& l) {
  const bool equity = l.kind == metrics::SeriesKind::kEquity;
  const auto& ts = l.series.ts;
  const auto time_of = [](TimePoint t) { return format_timestamp(t); };
  std::string first = equity ? time_of(l.series.start) : ts.empty() ? "-" : time_of(ts.front());
  std::string last = !ts.empty() ? time_of(ts.back()) : equity ? time_of(l.series.start) : "-";
  return {std::move(first), std::move(last)};
}

int run_metrics_command(const MetricsCommandOptions& o, std::ostream& out, std::ostream& err) {
  metrics::MetricsOptions mo;
  mo.periods_per_year = o.periods_per_year;
  if (o.periods_per_year && !(*o.periods_per_year > 0)) {
    err << "qmtl: --periods-per-year must be positive\n";
    return kExitUsage;
  }
  std::optional<Duration> window;
  if (o.window) {
    auto w = parse_duration(*o.window);
    if (!w || *w <= Duration::zero()) {
      err << "qmtl: --window: " << (w ? "must be longer than zero" : w.error().message) << '\n';
      return kExitUsage;
    }
    window = *w;
  }
  for (const auto& text : o.worst_loss) {
    auto w = parse_duration(text);
    if (!w || *w <= Duration::zero()) {
      err << "qmtl: --worst-loss: " << (w ? "must be longer than zero" : w.error().message) << '\n';
      return kExitUsage;
    }
    mo.worst_loss_windows.push_back(*w);
  }

  metrics::TimeOptions time;
  if (o.tz) {
    auto zone = metrics::parse_time_zone(*o.tz);
    if (!zone) {
      err << "qmtl: --tz: " << zone.error().message << '\n';
      return kExitUsage;
    }
    time = std::move(*zone);
  }
  auto files = load_files(o, time, err);
  if (!files) return kExitUsage;
  const std::vector<Loaded>& loaded = *files;

  boost::json::array files_json;
  for (const auto& l : loaded) {
    const Metrics all = metrics::compute_metrics(l.series, mo);
    std::optional<Metrics> last;
    if (window) {
      metrics::MetricsOptions wo = mo;
      wo.window = window;
      // Annualise the window like the whole series, not from its own few points.
      if (!wo.periods_per_year && all.periods_per_year.present()) {
        wo.periods_per_year = all.periods_per_year.value;
      }
      last = metrics::compute_metrics(l.series, wo);
    }
    const auto [first_ts, last_ts] = row_times(l);
    if (o.json) {
      boost::json::object f;
      f["file"] = l.file;
      f["kind"] = metrics::series_kind_name(l.kind);
      f["first"] = first_ts;
      f["last"] = last_ts;
      f["skipped_rows"] = l.skipped;
      boost::json::object missing_all, missing_window;
      f["all"] = to_json(all, missing_all);
      f["missing"] = boost::json::object{{"all", std::move(missing_all)}};
      if (last) {
        f["window"] = format_duration(*window);
        f["last_window"] = to_json(*last, missing_window);
        f["missing"].as_object()["last_window"] = std::move(missing_window);
      }
      files_json.push_back(std::move(f));
      continue;
    }
    out << fmt::format("{} ({}, {} .. {})\n", l.file, metrics::series_kind_name(l.kind), first_ts,
                       last_ts);
    std::vector<std::string> headers{"METRIC", "ALL"};
    if (last) headers.push_back("LAST " + format_duration(*window));
    Table t(headers);
    const auto all_rows = metrics::metric_rows(all);
    const auto last_rows = last ? metrics::metric_rows(*last) : decltype(all_rows){};
    for (size_t i = 0; i < all_rows.size(); ++i) {
      std::vector<std::string> cells{all_rows[i].first,
                                     show(all_rows[i].first, all_rows[i].second)};
      if (last) cells.push_back(show(last_rows[i].first, last_rows[i].second));
      t.add_row(std::move(cells));
    }
    t.print(out);
    out << '\n';
  }

  // Pairwise correlation of returns, aligned on common timestamps.
  boost::json::array matrix;
  if (loaded.size() > 1) {
    std::vector<std::string> headers{window ? "CORRELATION (LAST " + format_duration(*window) + ")"
                                            : std::string("CORRELATION")};
    for (const auto& l : loaded) headers.push_back(label(l.file));
    Table t(headers);
    for (const auto& a : loaded) {
      std::vector<std::string> cells{label(a.file)};
      boost::json::array row;
      for (const auto& b : loaded) {
        const MetricValue c = metrics::correlation(a.series, b.series, window);
        cells.push_back(c.present() ? fmt::format("{:.4f}", *c.value) : "n/a");
        if (c.present()) {
          row.push_back(*c.value);
        } else {
          row.push_back(nullptr);
        }
      }
      t.add_row(std::move(cells));
      matrix.push_back(std::move(row));
    }
    if (!o.json) t.print(out);
  }
  if (o.json) {
    boost::json::object doc{{"files", std::move(files_json)}};
    if (loaded.size() > 1) doc["correlation"] = std::move(matrix);
    out << json::dump(doc) << '\n';
  }
  return kExitOk;
}

}  // namespace qmtl::cli
