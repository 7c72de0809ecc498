// `qmtl backtest` as the real binary: a hand-computed backtest, the example
// strategy on real data, the records it writes, and its errors.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
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
  // Each number says what it counts: time under water is in days.
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\ntime_under_water +[0-9.]+ +days\n)")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\nmax_drawdown +[0-9.e-]+ +fraction)")));
}

// The example strategies of issue 24 on the ttrc bars, their first trades
// worked by hand (RSI and bands from R's TTR, which the indicators match to
// 1e-9: tests/sdk/ttr_reference_test.cc). Every order fills at the next
// bar's open; sizes are half the equity at the deciding close, in whole units.
class ExampleStrategyTest : public BacktestTest {
 protected:
  struct Run {
    boost::json::value summary;
    std::vector<std::string> fills;  // "1986-09-15 buy 11235 @ 4.46"
  };
  Run backtest(const std::string& example) {
    return backtest_with(example, QMTL_SOURCE_DIR "/examples/data/ttrc_ohlcv.csv", {});
  }
  Run backtest_with(const std::string& example, const std::string& data,
                    const std::vector<std::string>& extra) {
    const std::string records = dir_.file(example + ".json");
    std::vector<std::string> args{
        "--output",  "json",
        "backtest",  fmt::format("{}/examples/strategies/{}.yml", QMTL_SOURCE_DIR, example),
        "--data",    data,
        "--records", records};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = qmtl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    Run run{.summary = boost::json::parse(r.out)};
    std::ifstream f(records);
    std::stringstream text;
    text << f.rdbuf();
    // boost's parser: json::parse refuses documents beyond a request body's size.
    const auto doc = boost::json::parse(text.str());
    for (const auto& fill : doc.at("fills").as_array()) {
      run.fills.push_back(
          fmt::format("{} {} {} @ {}", fill.at("ts").as_string().subview().substr(0, 10),
                      fill.at("side").as_string().subview(), fill.at("qty").to_number<double>(),
                      fill.at("price").to_number<double>()));
    }
    return run;
  }
};

TEST_F(ExampleStrategyTest, RsiMeanReversionBuysBelow30SellsAbove50AndStopsAt8Percent) {
  auto run = backtest("rsi_mean_reversion");
  ASSERT_GE(run.fills.size(), 7u);
  // 1986-09-12: RSI 27.74 < 30 at the close 4.45; equity 100,000: 50,000 / 4.45
  // = 11,235.9 -> 11,235, bought at the next open. 1986-10-15: RSI 50.14 > 50.
  EXPECT_EQ(run.fills[0], "1986-09-15 buy 11235 @ 4.46");
  EXPECT_EQ(run.fills[1], "1986-10-16 sell 11235 @ 4.52");
  // 1987-04-29: RSI 29.48, close 4.25, equity 100,000 + 11,235 x 0.06 =
  // 100,674.10: 11,844.0 -> 11,844. 1987-05-28: RSI 54.42.
  EXPECT_EQ(run.fills[2], "1987-04-30 buy 11844 @ 4.25");
  EXPECT_EQ(run.fills[3], "1987-05-29 sell 11844 @ 4.39");
  // 1987-10-16: RSI 25.12, close 4.54, equity 102,332.26 -> 11,270, filled at
  // 4.30 on Monday 19 October, whose close 3.78 is below 4.30 x 0.92 = 3.956:
  // the stop-loss sells at the next open.
  EXPECT_EQ(run.fills[4], "1987-10-19 buy 11270 @ 4.3");
  EXPECT_EQ(run.fills[5], "1987-10-20 sell 11270 @ 3.83");
  // RSI stays below 30 after the stop (11.90 on the 20th): no re-entry until it
  // has been back above 30; the next entry is in 1990.
  EXPECT_EQ(run.fills[6].substr(0, 14), "1990-08-07 buy");
  EXPECT_EQ(run.summary.at("orders").as_int64(), 44);
  EXPECT_EQ(run.summary.at("exits").at("stop_loss").as_int64(), 5);
  EXPECT_TRUE(run.summary.at("rejected").as_array().empty());
}

TEST_F(ExampleStrategyTest, BollingerBreakoutHoldsUntilTheMiddleBandOrAStop) {
  auto run = backtest("bollinger_breakout");
  ASSERT_GE(run.fills.size(), 28u);
  // 1985-06-06: close 3.62 > upper band 3.5763; 50,000 / 3.62 = 13,812.2.
  // 1985-06-13: close 3.47 < middle 3.4795.
  EXPECT_EQ(run.fills[0], "1985-06-07 buy 13812 @ 3.61");
  EXPECT_EQ(run.fills[1], "1985-06-14 sell 13812 @ 3.48");
  // 1985-07-01: close 3.63 > 3.6288; 1985-07-29: close 3.67 < 3.7425.
  EXPECT_EQ(run.fills[2], "1985-07-02 buy 13526 @ 3.63");
  EXPECT_EQ(run.fills[3], "1985-07-30 sell 13526 @ 3.67");
  // The first stop: bought at 3.98 after the close of 1987-12-21 broke out;
  // the close of 12-29, 3.84, is under 3.98 x 0.97 = 3.8606 but still above
  // the middle band (3.7505): the stop-loss, not the exit, sells.
  EXPECT_EQ(run.fills[26], "1987-12-22 buy 12159 @ 3.98");
  EXPECT_EQ(run.fills[27], "1987-12-30 sell 12159 @ 3.84");
  // The whole run agrees with a loop over TTR's bands written apart from qmtl
  // (a stop waits for the exit before a new entry): 232 fills, 14 stops.
  EXPECT_EQ(run.fills.size(), 232u);
  EXPECT_EQ(run.summary.at("exits").at("stop_loss").as_int64(), 11);
  EXPECT_EQ(run.summary.at("exits").at("trailing_stop").as_int64(), 3);
  EXPECT_NEAR(run.summary.at("final_equity").to_number<double>(), 129832.85, 0.005);
}

// Intraday warm-up on real hourly bars (examples/data/usdthb_hourly.csv): an
// input of interval 1h and period 24 emits nothing until 24 hourly buckets with
// data have closed, which over the hours without quotes is more than a day.
TEST_F(ExampleStrategyTest, HourlyWarmUpCountsBucketsWithData) {
  const std::string data = QMTL_SOURCE_DIR "/examples/data/usdthb_hourly.csv";
  std::vector<std::string> times;
  {
    std::ifstream in(data);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) times.push_back(line.substr(0, line.find(',')));
  }
  ASSERT_EQ(times.size(), 404u);
  const std::string always =
      testing::write_file(dir_.file("always.yml"),
                          "inputs: {close: {interval: 1h, period: 24}}\n"
                          "nodes: {up: {indicator: gt, input: close, value: 0}}\n"
                          "orders: {signal: up, symbol: USDTHB, qty: 100}\n");
  const std::string records = dir_.file("always.json");
  auto r = qmtl({"backtest", always, "--data", data, "--volume-limit", "0", "--records", records});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream f(records);
  std::stringstream text;
  text << f.rdbuf();
  const auto doc = boost::json::parse(text.str());
  const auto& fills = doc.at("fills").as_array();
  ASSERT_EQ(fills.size(), 1u);
  // Decided at the close of the 24th bar, filled at the 25th's open.
  EXPECT_EQ(fills[0].at("ts").as_string(), times[24]);
  EXPECT_EQ(times[0], "1997-06-01T19:00:00Z");
  EXPECT_EQ(times[23], "1997-06-03T02:00:00Z");  // 31 hours of calendar time

  // The example's EMAs need 24 values more: no trade before the 49th bar.
  auto run = backtest_with("usdthb_hourly", data, {"--volume-limit", "0"});
  ASSERT_FALSE(run.fills.empty());
  EXPECT_GE(run.fills[0].substr(0, 10), times[48].substr(0, 10));
  EXPECT_TRUE(run.summary.at("rejected").as_array().empty());
}

// An order beyond the cash is refused with the reason, in the table and the
// JSON; the cash never goes negative.
TEST_F(BacktestTest, OrdersBeyondBuyingPowerAreRefusedAndSaidSo) {
  const std::string strategy = testing::write_file(
      dir_.file("big.yml"),
      "inputs: {close: {interval: 1d}}\nnodes: {up: {indicator: gt, input: close, value: 0}}\n"
      "orders: {signal: up, symbol: X, qty: 200}\n");
  const std::string data = testing::write_file(dir_.file("bars.csv"),
                                               "date,open,high,low,close,volume\n"
                                               "2026-01-05,10,10,10,10,100000\n"
                                               "2026-01-06,10,10,10,10,100000\n"
                                               "2026-01-07,10,10,10,10,100000\n");
  auto table =
      qmtl({"backtest", strategy, "--data", data, "--cash", "1000", "--volume-limit", "0"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("1 order refused by the paper broker; the first, 2026-01-06T00:00:00Z "
                           "buy 200 X: beyond buying power: buying 200 X at 10.0000 (fee 0.00) "
                           "would take gross exposure to 2000.00 against equity 1000.00 x "
                           "leverage 1 = 1000.00"),
            std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("final equity 1000.00 (cash 1000.00"), std::string::npos) << table.out;
  auto margin = qmtl({"--output", "json", "backtest", strategy, "--data", data, "--cash", "1000",
                      "--volume-limit", "0", "--leverage", "2"});
  ASSERT_EQ(margin.exit_code, 0) << margin.err;
  auto doc = *json::parse(margin.out);
  EXPECT_TRUE(doc.at("rejected").as_array().empty());
  EXPECT_EQ(doc.at("fills").as_int64(), 1);
  EXPECT_DOUBLE_EQ(doc.at("cash").to_number<double>(), -1000);
}

TEST_F(BacktestTest, BadStrategiesAndDataAreUsageErrors) {
  const std::string ok = testing::write_file(
      dir_.file("ok.yml"),
      "inputs: {close: {interval: 1d}}\norders: {signal: close, symbol: X, weight: 0.5}\n");
  const std::string bad =
      testing::write_file(dir_.file("bad.yml"),
                          "inputs: {close: {interval: 1d}}\nnodes: {s: {indicator: kama, "
                          "input: close}}\norders: {signal: s, symbol: X, qty: 1}\n");
  const std::string tick = testing::write_file(
      dir_.file("tick.yml"),
      "inputs: {price: {interval: 1d}}\norders: {signal: price, symbol: X, weight: 0.5}\n");
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
  // CLI11's own range checks let NaN through (every comparison with it is
  // false): --fee-bps NaN was a fee of 0.
  for (const auto& [option, value] :
       std::vector<std::pair<std::string, std::string>>{{"--fee-bps", "NaN"},
                                                        {"--slippage-bps", "nan"},
                                                        {"--volume-limit", "NaN"},
                                                        {"--leverage", "inf"},
                                                        {"--cash", "-inf"},
                                                        {"--fee-bps", "1e999"}}) {
    auto r = qmtl({"backtest", ok, "--data", data, option, value});
    EXPECT_EQ(r.exit_code, 2) << option << ' ' << value;
    EXPECT_NE(r.err.find(option + ": " + value + " is not a finite number"), std::string::npos)
        << r.err;
    EXPECT_EQ(r.out, "");
  }
  auto range = qmtl({"backtest", ok, "--data", data, "--volume-limit", "2"});
  EXPECT_EQ(range.exit_code, 2);
  EXPECT_NE(range.err.find("--volume-limit: 2 must be between 0 and 1"), std::string::npos)
      << range.err;
}

// Vendor files as downloaded: Yahoo's null rows are skipped and said so,
// Stooq's zone-less date and time need --tz, and the price column is chosen.
TEST_F(BacktestTest, VendorFilesLoadWithTheirQuirks) {
  const std::string strategy = testing::write_file(
      dir_.file("hold.yml"),
      "inputs: {close: {interval: 1h}}\norders: {signal: close, symbol: X, weight: 0.5}\n");
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
  EXPECT_NE(refused.err.find("give the zone it was written in (--tz UTC"), std::string::npos);
  auto utc = qmtl({"backtest", strategy, "--data", stooq, "--tz", "UTC"});
  EXPECT_EQ(utc.exit_code, 0) << utc.err;
  EXPECT_NE(utc.out.find("2024-03-01T09:00:00Z .. 2024-03-01T12:00:00Z"), std::string::npos)
      << utc.out;
  auto warsaw = qmtl({"backtest", strategy, "--data", stooq, "--tz", "+01:00"});
  EXPECT_NE(warsaw.out.find("2024-03-01T08:00:00Z .. 2024-03-01T11:00:00Z"), std::string::npos)
      << warsaw.out;

  // Stooq writes Warsaw's wall-clock time: in March, CET (+01:00), from the
  // tzdata's rules rather than an offset the user must know.
  auto named = qmtl({"backtest", strategy, "--data", stooq, "--tz", "Europe/Warsaw"});
  EXPECT_EQ(named.exit_code, 0) << named.err;
  EXPECT_NE(named.out.find("2024-03-01T08:00:00Z .. 2024-03-01T11:00:00Z"), std::string::npos)
      << named.out;
  auto bad_tz = qmtl({"backtest", strategy, "--data", stooq, "--tz", "Europe/Atlantis"});
  EXPECT_EQ(bad_tz.exit_code, 2);
  EXPECT_NE(bad_tz.err.find("--tz: 'Europe/Atlantis' is not a time zone of this system's tzdata"),
            std::string::npos)
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
