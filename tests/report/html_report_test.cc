#include "qmtl/report/html_report.h"

#include <gtest/gtest.h>

namespace qmtl::report {
namespace {

TimePoint day(int d) {
  return *parse_timestamp("2026-01-01T00:00:00Z") + std::chrono::hours(24 * d);
}

TEST(HtmlReportTest, DrawdownIsTheFallFromTheRunningPeak) {
  const auto dd =
      drawdown({{day(0), 100}, {day(1), 120}, {day(2), 90}, {day(3), 130}, {day(4), 117}});
  ASSERT_EQ(dd.size(), 5u);
  EXPECT_DOUBLE_EQ(dd[0].value, 0);
  EXPECT_DOUBLE_EQ(dd[1].value, 0);
  EXPECT_DOUBLE_EQ(dd[2].value, 0.25);
  EXPECT_DOUBLE_EQ(dd[3].value, 0);
  EXPECT_DOUBLE_EQ(dd[4].value, 0.1);
  EXPECT_EQ(dd[2].ts, day(2));
  EXPECT_TRUE(drawdown({}).empty());
}

TEST(HtmlReportTest, NoTextOrDataCanBecomeMarkupOrCode) {
  const std::string evil = "</script><script>alert(1)</script><b onload=x>";
  Report r{.title = evil, .subtitle = "a & b"};
  r.equity.push_back({.name = evil, .points = {{day(0), 1}, {day(1), 2}}});
  r.tables.push_back({.title = evil, .header = {evil}, .rows = {{evil}}});
  r.timeline.push_back({.strategy = evil, .states = {{day(0), "DryRun"}}});
  const std::string html = render_html(r);
  // The only script ends are the three the page itself writes.
  size_t ends = 0;
  for (size_t at = 0; (at = html.find("</script>", at)) != std::string::npos; ++at) ++ends;
  EXPECT_EQ(ends, 3u);
  EXPECT_EQ(html.find("<b onload"), std::string::npos);
  EXPECT_NE(html.find("&lt;/script&gt;&lt;script&gt;alert(1)"), std::string::npos);
  EXPECT_NE(html.find("a &amp; b"), std::string::npos);
  EXPECT_NE(html.find("\\u003c/script>"), std::string::npos);  // inside the JSON
}

TEST(HtmlReportTest, TheFileCarriesItsChartLibraryAndEverySection) {
  Report r{.title = "Backtest of x", .subtitle = "6 bars"};
  r.equity.push_back({.name = "x", .points = {{day(0), 100}, {day(1), 90}}});
  r.price = {.name = "ES", .points = {{day(0), 10}, {day(1), 11}}};
  r.trades.push_back({.ts = day(1), .buy = true, .qty = 1, .price = 11});
  r.shades.push_back({.kind = "live", .from = day(1)});
  r.timeline.push_back({.strategy = "a", .states = {{day(0), "DryRun"}, {day(1), "Live"}}});
  r.timeline.push_back({.strategy = "b", .states = {{day(0), "Submitted"}}});
  r.tables.push_back(
      {.title = "Metrics", .header = {"METRIC", "VALUE"}, .rows = {{"sharpe", "1.2"}}});
  const std::string html = render_html(r);
  EXPECT_TRUE(html.starts_with("<!doctype html>"));
  EXPECT_NE(html.find("uPlot"), std::string::npos);
  EXPECT_NE(html.find("id=\"equity\""), std::string::npos);
  EXPECT_NE(html.find("id=\"drawdown\""), std::string::npos);
  EXPECT_NE(html.find("id=\"price\""), std::string::npos);
  EXPECT_NE(html.find("ES with trades"), std::string::npos);
  EXPECT_NE(html.find("<td>sharpe</td><td>1.2</td>"), std::string::npos);
  // Two lanes, three bands, each with its state.
  EXPECT_NE(html.find("data-state=\"Live\""), std::string::npos);
  size_t bands = 0;
  for (size_t at = 0; (at = html.find("<rect ", at)) != std::string::npos; ++at) ++bands;
  EXPECT_EQ(bands, 3u);
  // No reference to anything outside the file.
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  // No price and no equity: no chart sections.
  const std::string bare = render_html({.title = "t"});
  EXPECT_EQ(bare.find("id=\"equity\""), std::string::npos);
  EXPECT_EQ(bare.find("id=\"price\""), std::string::npos);
}

}  // namespace
}  // namespace qmtl::report
