// `qmtl backtest` as the real binary: a hand-computed backtest, the example
// strategy on real data, the records it writes, and its errors.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "qmtl/core/json.h"
#include "tests/support/browser.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace qmtl {
namespace {

class BacktestTest : public ::testing::Test {
 protected:
  testing::ProcessResult qmtl(std::vector<std::string> args) {
    args.insert(args.begin(), QMTL_BINARY);
    return testing::run_process(args, {{"QMTL_CONFIG", dir_.file("none.yml")}});
  }
  testing::TempDir dir_;
};

TEST_F(BacktestTest, HandComputedCrossoverTrade) {
  // fast SMA(2), slow SMA(3) of the closes 10 9 8 9 12 13: fast crosses above slow
  // at the 5th bar (10.5 > 9.667 after 8.5 < 8.667), so one buy of 10 is decided
  // there and filled at the 6th bar's open (12.5); marked at its close, 13.
  const std::string strategy =
      testing::write_file(dir_.file("s.yml"),
                          "id: tiny\ninputs: {close: {interval: 1d}}\n"
                          "nodes:\n  fast: {indicator: sma, input: close, n: 2}\n"
                          "  slow: {indicator: sma, input: close, n: 3}\n"
                          "  cross: {indicator: crossover, inputs: [fast, slow]}\n"
                          "orders: {signal: cross, symbol: X, qty: 10}\n");
  const std::string data = testing::write_file(dir_.file("bars.csv"),
                                               "date,open,high,low,close,volume\n"
                                               "2026-01-05,10,10,10,10,1000\n"
                                               "2026-01-06,9,9,9,9,1000\n"
                                               "2026-01-07,8,8,8,8,1000\n"
                                               "2026-01-08,9,9,9,9,1000\n"
                                               "2026-01-09,12,12,12,12,1000\n"
                                               "2026-01-12,12.5,13,12.5,13,1000\n");
  auto r = qmtl({"--output", "json", "backtest", strategy, "--data", data, "--cash", "1000",
                 "--records", dir_.file("records.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = *json::parse(r.out);
  EXPECT_EQ(doc.at("strategy").as_string(), "tiny");
  EXPECT_EQ(doc.at("bars").as_int64(), 6);
  EXPECT_EQ(doc.at("orders").as_int64(), 1);
  EXPECT_EQ(doc.at("fills").as_int64(), 1);
  // Whole numbers print without a fraction: read every number as a double.
  auto num = [](const boost::json::value& v) { return v.to_number<double>(); };
  EXPECT_DOUBLE_EQ(num(doc.at("final_equity")), 1000 - 125 + 130);
  EXPECT_DOUBLE_EQ(num(doc.at("unrealised_pnl")), 5);
  EXPECT_NEAR(num(doc.at("metrics").at("return")), 0.005, 1e-12);
  EXPECT_EQ(doc.at("metrics").at("trades").as_int64(), 1);
  // The records are the body of POST /strategies/{id}/performance.
  std::ifstream f(dir_.file("records.json"));
  std::stringstream ss;
  ss << f.rdbuf();
  auto rec = *json::parse(ss.str());
  ASSERT_EQ(rec.at("points").as_array().size(), 6u);
  EXPECT_EQ(num(rec.at("points").as_array()[5].at("equity")), 1005);
  ASSERT_EQ(rec.at("fills").as_array().size(), 1u);
  const auto& fill = rec.at("fills").as_array()[0];
  EXPECT_EQ(fill.at("ts").as_string(), "2026-01-12T00:00:00Z");
  EXPECT_EQ(fill.at("side").as_string(), "buy");
  EXPECT_EQ(num(fill.at("price")), 12.5);
}

TEST_F(BacktestTest, TheExampleStrategyOnRealData) {
  auto r = qmtl({"backtest", fmt::format("{}/examples/strategies/sma_cross.yml", QMTL_SOURCE_DIR),
                 "--data", fmt::format("{}/examples/data/ttrc_ohlcv.csv", QMTL_SOURCE_DIR),
                 "--fee-bps", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("backtest of 'sma-cross' on "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(5550 bars of TTRC, 1985-01-02T00:00:00Z .. 2006-12-29T00:00:00Z)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("METRIC            VALUE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sharpe"), std::string::npos);
}

TEST_F(BacktestTest, BadStrategiesAndDataAreUsageErrors) {
  const std::string ok = testing::write_file(
      dir_.file("ok.yml"),
      "inputs: {close: {interval: 1d}}\norders: {signal: close, symbol: X, qty: 1}\n");
  const std::string bad =
      testing::write_file(dir_.file("bad.yml"),
                          "inputs: {close: {interval: 1d}}\nnodes: {s: {indicator: kama, "
                          "input: close}}\norders: {signal: s, symbol: X, qty: 1}\n");
  const std::string tick = testing::write_file(
      dir_.file("tick.yml"),
      "inputs: {price: {interval: 1d}}\norders: {signal: price, symbol: X, qty: 1}\n");
  const std::string data = testing::write_file(dir_.file("d.csv"),
                                               "date,open,high,low,close,volume\n"
                                               "2026-01-05,10,10,10,10,1000\n"
                                               "2026-01-06,9,9,9,9,1000\n");
  const std::string broken = testing::write_file(dir_.file("broken.csv"),
                                                 "date,open,high,low,close,volume\n"
                                                 "2026-01-05,10,10,10,10,1000\n"
                                                 "2026-01-06,9,8,9,9,1000\n");
  auto a = qmtl({"backtest", bad, "--data", data});
  EXPECT_EQ(a.exit_code, 2);
  EXPECT_NE(a.err.find("nodes.s.indicator: unknown indicator 'kama'"), std::string::npos) << a.err;
  auto b = qmtl({"backtest", ok, "--data", broken});
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_NE(b.err.find("broken.csv:3: bar X at 2026-01-06T00:00:00Z is inconsistent"),
            std::string::npos)
      << b.err;
  auto c = qmtl({"backtest", tick, "--data", data});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_NE(c.err.find("input 'price' is not a bar field"), std::string::npos) << c.err;
  EXPECT_EQ(qmtl({"backtest", ok, "--data", dir_.file("missing.csv")}).exit_code, 2);
}

// Vendor files as downloaded: Yahoo's null rows are skipped and said so,
// Stooq's zone-less date and time need --tz, and the price column is chosen.
TEST_F(BacktestTest, VendorFilesLoadWithTheirQuirks) {
  const std::string strategy = testing::write_file(
      dir_.file("hold.yml"),
      "inputs: {close: {interval: 1h}}\norders: {signal: close, symbol: X, qty: 1}\n");
  const std::string data = fmt::format("{}/tests/sdk/data/dialects/", QMTL_SOURCE_DIR);
  const std::string yahoo = data + "yahoo_with_null_rows.csv";
  auto table = qmtl({"backtest", strategy, "--data", yahoo});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("(4 bars of X,"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("2 rows without values skipped (the first at " + yahoo + ":3)"),
            std::string::npos)
      << table.out;
  auto json =
      qmtl({"--output", "json", "backtest", strategy, "--data", yahoo, "--price", "adj_close"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto o = boost::json::parse(json.out).as_object();
  EXPECT_EQ(o.at("bars").to_number<int>(), 4);
  EXPECT_EQ(o.at("skipped_rows").to_number<int>(), 2);

  const std::string stooq = data + "stooq_date_time.csv";
  auto refused = qmtl({"backtest", strategy, "--data", stooq});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find(stooq + ":2: date '20240301' and time '090000'"), std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("give the offset it was written in (--tz UTC"), std::string::npos);
  auto utc = qmtl({"backtest", strategy, "--data", stooq, "--tz", "UTC"});
  EXPECT_EQ(utc.exit_code, 0) << utc.err;
  EXPECT_NE(utc.out.find("2024-03-01T09:00:00Z .. 2024-03-01T12:00:00Z"), std::string::npos)
      << utc.out;
  auto warsaw = qmtl({"backtest", strategy, "--data", stooq, "--tz", "+01:00"});
  EXPECT_NE(warsaw.out.find("2024-03-01T08:00:00Z .. 2024-03-01T11:00:00Z"), std::string::npos)
      << warsaw.out;

  auto bad_tz = qmtl({"backtest", strategy, "--data", stooq, "--tz", "Europe/Warsaw"});
  EXPECT_EQ(bad_tz.exit_code, 2);
  EXPECT_NE(bad_tz.err.find("--tz: 'Europe/Warsaw' is not an offset from UTC"), std::string::npos)
      << bad_tz.err;
  auto no_adj = qmtl({"backtest", strategy, "--data", data + "plain.csv", "--price", "adj_close"});
  EXPECT_EQ(no_adj.exit_code, 2);
  EXPECT_NE(no_adj.err.find("plain.csv:1: the price is adj_close but the header has no 'Adj "
                            "Close' column"),
            std::string::npos)
      << no_adj.err;
  auto bad_price = qmtl({"backtest", strategy, "--data", yahoo, "--price", "open"});
  EXPECT_EQ(bad_price.exit_code, 2);
  EXPECT_NE(bad_price.err.find("--price: price 'open' is not close or adj_close"),
            std::string::npos)
      << bad_price.err;
}

TEST_F(BacktestTest, TheReportIsOneFileThatARealBrowserDraws) {
  const std::string out = dir_.file("report.html");
  auto r = qmtl({"backtest", fmt::format("{}/examples/strategies/sma_cross.yml", QMTL_SOURCE_DIR),
                 "--data", fmt::format("{}/examples/data/ttrc_ohlcv.csv", QMTL_SOURCE_DIR),
                 "--fee-bps", "5", "--report", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string html = ss.str();
  EXPECT_NE(html.find("<title>Backtest of sma-cross</title>"), std::string::npos);
  EXPECT_NE(html.find("5550 bars of TTRC from 1985-01-02T00:00:00Z"), std::string::npos);
  EXPECT_NE(html.find("<td>sharpe</td>"), std::string::npos);
  // Nothing is loaded from elsewhere (the only address is in uPlot's licence comment).
  for (const char* ref : {"src=\"http", "href=\"http", "url(http", "src=\"//", "<link"}) {
    EXPECT_EQ(html.find(ref), std::string::npos) << "the report must not reach out: " << ref;
  }

  const std::string dom =
      testing::rendered_dom(QMTL_CHROMIUM, "file://" + out, dir_.file("chromium"));
  const std::string status = testing::report_status(dom);
  ASSERT_FALSE(status.empty()) << dom.substr(0, 2000);
  EXPECT_NE(status.find("data-charts=\"3\""), std::string::npos) << status;
  EXPECT_NE(status.find("data-series=\"5\""), std::string::npos) << status;
  EXPECT_EQ(status.find("data-errors"), std::string::npos) << status;
  size_t canvases = 0;
  for (size_t at = 0; (at = dom.find("<canvas", at)) != std::string::npos; ++at) ++canvases;
  EXPECT_EQ(canvases, 3u);
}

TEST_F(BacktestTest, AReportThatCannotBeWrittenIsAnErrorNamingThePath) {
  auto r = qmtl({"backtest", fmt::format("{}/examples/strategies/sma_cross.yml", QMTL_SOURCE_DIR),
                 "--data", fmt::format("{}/examples/data/ttrc_ohlcv.csv", QMTL_SOURCE_DIR),
                 "--report", dir_.file("no/such/dir/report.html")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cannot write the report to"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no/such/dir/report.html"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qmtl
