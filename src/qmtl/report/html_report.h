// Self-contained HTML reports: one file with the chart library, the page's
// script and the data inlined, readable offline and safe to mail (docs/reports.md).
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "qmtl/core/time.h"

namespace qmtl::report {

struct Point {
  TimePoint ts;
  double value = 0;
};

// A named line of a chart; its values are plotted against time.
struct Series {
  std::string name;
  std::vector<Point> points;
};

// A trade drawn on the price: buys below, sells above.
struct Trade {
  TimePoint ts;
  bool buy = true;
  double qty = 0;
  double price = 0;
  double fee = 0;
};

// A span of time drawn shaded behind a chart ("dryrun", "live", "validation").
struct Shade {
  std::string kind;
  TimePoint from;
  std::optional<TimePoint> to;  // open: to the chart's end
};

// One strategy's lane of a promotion timeline: its state from each time on.
struct Lane {
  std::string strategy;
  std::vector<std::pair<TimePoint, std::string>> states;  // oldest first
};

// One row of a table shown as text (a KPI, a transition).
using Row = std::vector<std::string>;

struct Table {
  std::string title;
  Row header;
  std::vector<Row> rows;
};

struct Report {
  std::string title;     // the page's heading and <title>
  std::string subtitle;  // one line under it (what, when, on what data)
  std::string equity_title = "Equity";
  // Equity lines; with `drawdown`, the drawdown of the first is drawn beneath.
  std::vector<Series> equity;
  bool drawdown = true;
  std::vector<Shade> shades;
  Series price;  // empty: no price chart
  std::vector<Trade> trades;
  std::vector<Lane> timeline;  // empty: no timeline
  std::vector<Table> tables;   // KPIs, fills, transitions... in order
};

// The drawdown of an equity line: at each point, how far below its running
// peak it is, as a fraction (0 at a new high, 0.25 a quarter under it).
std::vector<Point> drawdown(const std::vector<Point>& equity);

// The report as one HTML document. Text is escaped; the data travels as JSON
// in a non-executable script element, so no value can become markup or code.
std::string render_html(const Report& report);

}  // namespace qmtl::report
