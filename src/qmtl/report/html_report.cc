#include "qmtl/report/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <map>

#include "qmtl/core/json.h"
#include "qmtl/report/assets.h"

namespace qmtl::report {
namespace {

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

double seconds(TimePoint t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

boost::json::object series_json(const std::string& name, const std::vector<Point>& points) {
  boost::json::array ts, v;
  ts.reserve(points.size());
  v.reserve(points.size());
  for (const auto& p : points) {
    ts.push_back(seconds(p.ts));
    v.push_back(p.value);
  }
  return {{"name", name}, {"ts", std::move(ts)}, {"v", std::move(v)}};
}

// The charts' data as JSON that cannot end the script element it sits in.
std::string data_json(const Report& r) {
  boost::json::array equity, trades, shades;
  for (const auto& s : r.equity) equity.push_back(series_json(s.name, s.points));
  for (const auto& t : r.trades) {
    trades.push_back({{"ts", seconds(t.ts)}, {"buy", t.buy}, {"qty", t.qty}, {"price", t.price}});
  }
  for (const auto& s : r.shades) {
    shades.push_back({{"kind", s.kind},
                      {"from", seconds(s.from)},
                      {"to", s.to ? boost::json::value(seconds(*s.to)) : nullptr}});
  }
  boost::json::object o{
      {"equity", std::move(equity)}, {"trades", std::move(trades)}, {"shades", std::move(shades)}};
  o["drawdown"] =
      r.equity.empty() || !r.drawdown
          ? boost::json::value(nullptr)
          : boost::json::value(series_json("drawdown", drawdown(r.equity.front().points)));
  o["price"] = r.price.points.empty()
                   ? boost::json::value(nullptr)
                   : boost::json::value(series_json(r.price.name, r.price.points));
  std::string text = json::dump(o);
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '<') {
      out += "\\u003c";  // only ever inside a JSON string
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view state_colour(std::string_view state) {
  static const std::map<std::string_view, std::string_view> kColours = {
      {"Submitted", "#c8c8c8"}, {"Validating", "#9cc3e6"}, {"Rejected", "#e06666"},
      {"DryRun", "#f1c232"},    {"Live", "#38a169"},       {"Inactive", "#e2e2e2"},
      {"Archived", "#8a8a8a"}};
  auto it = kColours.find(state);
  return it == kColours.end() ? "#cccccc" : it->second;
}

// The promotion timeline as inline SVG: a lane per strategy, a band per state.
std::string timeline_svg(const std::vector<Lane>& lanes) {
  TimePoint lo = TimePoint::max(), hi = TimePoint::min();
  for (const auto& l : lanes) {
    for (const auto& [t, s] : l.states) {
      lo = std::min(lo, t);
      hi = std::max(hi, t);
    }
  }
  if (lo > hi) return "";
  if (hi == lo) hi = lo + std::chrono::hours(1);
  hi += (hi - lo) / 20;  // room for the last band
  constexpr int kLabel = 160, kWidth = 900, kLane = 22;
  const double span = seconds(hi) - seconds(lo);
  auto x = [&](TimePoint t) { return kLabel + (seconds(t) - seconds(lo)) / span * kWidth; };
  const int height = static_cast<int>(lanes.size()) * kLane + 30;
  std::string out = fmt::format(
      "<svg class=\"timeline\" role=\"img\" aria-label=\"promotion timeline\" "
      "viewBox=\"0 0 {} {}\" width=\"100%\">",
      kLabel + kWidth + 10, height);
  int y = 0;
  for (const auto& l : lanes) {
    out +=
        fmt::format("<text x=\"4\" y=\"{}\" class=\"lane\">{}</text>", y + 15, escape(l.strategy));
    for (size_t i = 0; i < l.states.size(); ++i) {
      const auto& [t, s] = l.states[i];
      const TimePoint end = i + 1 < l.states.size() ? l.states[i + 1].first : hi;
      out += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\" "
          "data-state=\"{}\"><title>{} from {}</title></rect>",
          x(t), y + 3, std::max(1.0, x(end) - x(t)), kLane - 6, state_colour(s), escape(s),
          escape(s), format_timestamp(std::chrono::floor<std::chrono::seconds>(t)));
    }
    y += kLane;
  }
  out += fmt::format("<text x=\"{}\" y=\"{}\" class=\"axis\">{}</text>", kLabel, y + 18,
                     format_timestamp(std::chrono::floor<std::chrono::seconds>(lo)));
  out += fmt::format("<text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">{}</text>",
                     kLabel + kWidth, y + 18,
                     format_timestamp(std::chrono::floor<std::chrono::seconds>(hi)));
  out += "</svg><p class=\"legend\">";
  for (const char* s :
       {"Submitted", "Validating", "DryRun", "Live", "Inactive", "Rejected", "Archived"}) {
    out += fmt::format("<span><i style=\"background:{}\"></i>{}</span>", state_colour(s), s);
  }
  out += "</p>";
  return out;
}

std::string table_html(const Table& t) {
  std::string out =
      fmt::format("<section class=\"table\"><h2>{}</h2><table><thead><tr>", escape(t.title));
  for (const auto& h : t.header) out += fmt::format("<th>{}</th>", escape(h));
  out += "</tr></thead><tbody>";
  for (const auto& row : t.rows) {
    out += "<tr>";
    for (const auto& cell : row) out += fmt::format("<td>{}</td>", escape(cell));
    out += "</tr>";
  }
  out += "</tbody></table></section>";
  return out;
}

}  // namespace

std::vector<Point> drawdown(const std::vector<Point>& equity) {
  std::vector<Point> out;
  out.reserve(equity.size());
  double peak = 0;
  for (const auto& p : equity) {
    peak = std::max(peak, p.value);
    out.push_back({p.ts, peak > 0 ? 1 - p.value / peak : 0});
  }
  return out;
}

std::string render_html(const Report& r) {
  std::string out = fmt::format(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<meta name=\"generator\" content=\"qmtl\"><title>{}</title>"
      "<style>{}\n{}</style></head><body><main>"
      "<header><h1>{}</h1><p>{}</p></header>",
      escape(r.title), kUplotCss, kReportCss, escape(r.title), escape(r.subtitle));
  if (!r.equity.empty()) {
    out += fmt::format("<section class=\"chart\"><h2>{}</h2><div id=\"equity\"></div>{}</section>",
                       escape(r.equity_title),
                       r.drawdown ? "<h2>Drawdown</h2><div id=\"drawdown\"></div>" : "");
  }
  if (!r.price.points.empty()) {
    out += fmt::format(
        "<section class=\"chart\"><h2>{} with trades</h2><div id=\"price\"></div></section>",
        escape(r.price.name));
  }
  if (!r.timeline.empty()) {
    out += "<section class=\"timeline\"><h2>Promotion timeline</h2>" + timeline_svg(r.timeline) +
           "</section>";
  }
  for (const auto& t : r.tables) out += table_html(t);
  out += fmt::format(
      "<p id=\"status\" hidden></p></main>"
      "<script type=\"application/json\" id=\"report-data\">{}</script>"
      "<script>{}</script><script>{}</script>"
      "<footer>Charts: uPlot, inlined under its MIT licence (in this file's source).</footer>"
      "<!-- uPlot's licence:\n{}-->\n"
      "</body></html>\n",
      data_json(r), kUplotJs, kReportJs, kUplotLicense);
  return out;
}

}  // namespace qmtl::report
