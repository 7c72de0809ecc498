// `qmtl policy check|eval` through the real binary.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "qmtl/core/json.h"
#include "tests/support/cli_fixture.h"
#include "tests/support/hostile_input.h"

namespace qmtl {
namespace {

class PolicyCommandTest : public testing::CliTest {
 protected:
  const std::string design_ = std::string(QMTL_SOURCE_DIR) + "/examples/policies/design.yml";
};

TEST_F(PolicyCommandTest, CheckAcceptsTheExampleAndRefusesWithLineColumn) {
  auto ok = qmtl({"policy", "check", design_});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("ok (native form); reads return, sharpe, trades, worst_loss(5m)"),
            std::string::npos);
  auto bad = qmtl({"policy", "check", write("bad.yml", "gates:\n  promote: \"sharp >= 1\"\n")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "qmtl: " + dir_.file("bad.yml") +
                         ":2:13: gates.promote: unknown metric 'sharp'; did you mean 'sharpe'?\n");
  auto missing = qmtl({"policy", "check", dir_.file("absent.yml")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("cannot open policy file"), std::string::npos);
}

TEST_F(PolicyCommandTest, EvalSelectsAndExplains) {
  const auto metrics = write("m.json", R"J({
    "alpha": {"return": 0.08, "sharpe": 2.1, "trades": 40, "worst_loss(5m)": -0.002, "win_rate": 0.6, "max_drawdown": 0.05},
    "beta":  {"return": 0.07, "sharpe": 1.9, "trades": 25, "worst_loss(5m)": -0.001, "win_rate": 0.5, "max_drawdown": 0.08},
    "gamma": {"return": 0.02, "sharpe": 0.8, "trades": 30, "worst_loss(5m)": -0.001, "win_rate": 0.5, "max_drawdown": 0.1},
    "delta": {"return": 0.09, "sharpe": null, "trades": 30, "worst_loss(5m)": -0.001, "win_rate": 0.5, "max_drawdown": 0.1}})J");
  const auto corr = write("c.json", R"([{"a": "alpha", "b": "beta", "value": 0.93}])");
  // alpha has held the promote gate for 7 days already; gamma has been out twice.
  const auto history = write("h.json", R"({
    "alpha": [{"at": "2026-02-22T00:00:00Z", "promote_pass": true}, {"at": "2026-02-28T00:00:00Z", "promote_pass": true}],
    "gamma": [{"at": "2026-02-27T00:00:00Z", "out": true}, {"at": "2026-02-28T00:00:00Z", "out": true}]})");
  auto r =
      qmtl({"policy", "eval", design_, "--metrics", metrics, "--correlations", corr, "--history",
            history, "--previous", "gamma", "--now", "2026-03-01T00:00:00Z", "--output", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = json::parse(r.out);
  ASSERT_TRUE(doc) << r.out;
  EXPECT_EQ(json::dump(doc->at("selected")), R"(["alpha"])");
  const auto& s = doc->at("strategies");
  EXPECT_EQ(s.at("alpha").at("decision").as_string(), "PROMOTE");
  EXPECT_EQ(s.at("alpha").at("rank").as_int64(), 1);
  EXPECT_EQ(s.at("alpha").at("group").as_int64(), 1);
  EXPECT_EQ(json::dump(s.at("alpha").at("clauses").at(1)),
            R"({"expr":"sharpe >= 1.5","value":2.1,"pass":true})");
  EXPECT_EQ(s.at("beta").at("decision").as_string(), "HOLD");
  EXPECT_NE(json::dump(s.at("beta").at("reasons")).find("correlation 0.930 >= 0.8 with alpha"),
            std::string::npos);
  EXPECT_EQ(s.at("gamma").at("decision").as_string(), "DEMOTE");
  EXPECT_EQ(s.at("delta").at("decision").as_string(), "HOLD");
  EXPECT_TRUE(s.at("delta").at("clauses").at(1).at("pass").is_null());  // missing, not a pass

  auto table = qmtl({"policy", "eval", design_, "--metrics", metrics, "--previous", "gamma"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("STRATEGY  DECISION  RANK  SCORE", 0), 0u) << table.out;
  EXPECT_NE(table.out.find("live after this evaluation: gamma"), std::string::npos) << table.out;
}

TEST_F(PolicyCommandTest, EvalRefusesBadInputs) {
  const auto metrics = write("m.json", R"({"a": {"sharpe": 1}})");
  struct Case {
    std::vector<std::string> extra;
    std::string part;
  };
  for (const Case& c : std::vector<Case>{
           {{"--metrics", write("x.json", "[1]")}, "must be an object"},
           {{"--metrics", write("y.json", R"({"Bad Id": {}})")}, "invalid strategy id 'Bad Id'"},
           {{"--metrics", write("z.json", R"({"a": {"sharpe": "high"}})")},
            "'a'.'sharpe' must be a number"},
           {{"--metrics", write("w.json", "{")}, "malformed JSON"},
           // 1e999 overflows a double: an error, not a metric the policy reads as missing.
           {{"--metrics", write("v.json", R"({"a": {"sharpe": 1e999}})")},
            "'a'.'sharpe' is not a finite number"},
           {{"--metrics", metrics, "--previous", "nobody"}, "--previous names 'nobody'"},
           {{"--metrics", metrics, "--correlations",
             write("c.json", R"([{"a": "a", "b": "b", "value": 2}])")},
            "outside [-1, 1]"},
           {{"--metrics", metrics, "--history", write("h.json", R"({"a": [{"at": "yesterday"}]})")},
            "invalid timestamp 'yesterday'"},
       }) {
    std::vector<std::string> args{"policy", "eval", design_};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    auto r = qmtl(args);
    EXPECT_EQ(r.exit_code, 2) << c.part;
    EXPECT_NE(r.err.find(c.part), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

}  // namespace
}  // namespace qmtl

namespace qmtl {
namespace {

TEST_F(PolicyCommandTest, QmtlFormWithStageAndNestedMetrics) {
  const std::string sample = std::string(QMTL_SOURCE_DIR) + "/examples/policies/qmtl_sample.yml";
  auto check = qmtl({"policy", "check", sample});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_NE(check.out.find("ok (QMTL form); reads effective_history_years, n_trades_total, sharpe"),
            std::string::npos)
      << check.out;
  // Metrics nest as in QMTL's payloads; leaves are found by name.
  const auto metrics = write("m.json", R"({
    "a": {"performance": {"sharpe": 0.7, "max_drawdown": 0.1, "gain_to_pain_ratio": 1.5},
          "sample": {"effective_history_years": 4, "n_trades_total": 80}},
    "b": {"performance": {"sharpe": 0.9, "max_drawdown": 0.1, "gain_to_pain_ratio": 1.5},
          "sample": {"effective_history_years": 4, "n_trades_total": 80}},
    "c": {"performance": {"sharpe": 1.4, "max_drawdown": 0.22, "gain_to_pain_ratio": 1.5},
          "sample": {"effective_history_years": 4, "n_trades_total": 80}}})");
  // backtest profile: all pass thresholds; top 3 by sharpe c, b, a; hysteresis
  // enter 0.6: all enter.
  auto backtest =
      qmtl({"policy", "eval", sample, "--metrics", metrics, "--stage", "backtest", "-o", "json"});
  ASSERT_EQ(backtest.exit_code, 0) << backtest.err;
  auto doc = json::parse(backtest.out);
  EXPECT_EQ(json::dump(doc->at("selected")), R"(["c","b","a"])");
  EXPECT_EQ(doc->at("profile").as_string(), "backtest");
  // paper profile: sharpe >= 0.8 and max_drawdown <= 0.2 leave only b.
  auto paper =
      qmtl({"policy", "eval", sample, "--metrics", metrics, "--stage", "paper_only", "-o", "json"});
  ASSERT_EQ(paper.exit_code, 0) << paper.err;
  doc = json::parse(paper.out);
  EXPECT_EQ(json::dump(doc->at("selected")), R"(["b"])");
  EXPECT_EQ(doc->at("profile").as_string(), "paper");
  EXPECT_EQ(doc->at("strategies").at("c").at("decision").as_string(), "HOLD");
  auto overflow = qmtl({"policy", "eval", sample, "--metrics",
                        write("inf.json", R"({"a": {"performance": {"sharpe": -1e999}}})")});
  EXPECT_EQ(overflow.exit_code, 2);
  EXPECT_NE(overflow.err.find("'a'.'performance.sharpe' is not a finite number"), std::string::npos)
      << overflow.err;
  // Native-only and QMTL-only options are refused with the reason.
  auto hist = qmtl({"policy", "eval", sample, "--metrics", metrics, "--history", metrics});
  EXPECT_EQ(hist.exit_code, 2);
  EXPECT_NE(hist.err.find("--history applies to native policies"), std::string::npos);
  auto stage = qmtl({"policy", "eval", design_, "--metrics", metrics, "--stage", "paper"});
  EXPECT_EQ(stage.exit_code, 2);
  EXPECT_NE(stage.err.find("--stage applies to QMTL policies"), std::string::npos);
}

// A bad local file is a usage error (exit 2) with one line naming it, whatever
// is wrong with it, and nothing grows without bound on the way: /dev/zero
// would be read forever, a 511-byte YAML file of aliases is 10^9 values.
TEST_F(PolicyCommandTest, EveryCommandBoundsWhatItReads) {
  const std::string bomb = testing::yaml_alias_bomb();
  const std::string strategy = write("bomb.yml", bomb);
  const std::string bars = write("bars.csv",
                                 "date,open,high,low,close,volume\n"
                                 "2026-01-05,10,10,10,10,1000\n2026-01-06,9,9,9,9,1000\n");
  const std::string ok = write("ok.yml",
                               "inputs: {close: {interval: 1d}}\n"
                               "orders: {signal: close, symbol: X, weight: 0.5}\n");
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {{"policy", "check", "/dev/zero"}, "policy file '/dev/zero' is a device, not a file"},
           {{"policy", "eval", design_, "--metrics", "/dev/zero"}, "'/dev/zero' is a device"},
           {{"metrics", "/dev/zero"}, "file '/dev/zero' is a device, not a file"},
           {{"backtest", ok, "--data", "/dev/zero"}, "bar file '/dev/zero' is a device"},
           {{"backtest", strategy, "--data", bars}, "expands to more than 100000 values"},
           {{"policy", "check", strategy}, "expands to more than 100000 values"},
       }) {
    auto r = qmtl(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << ' ' << c.args[1];
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace
}  // namespace qmtl
