// `qmtl run` as the real binary against a real server: a Live strategy's
// orders reach the order journal, a DryRun one's stay on paper, SIGTERM ends a
// followed run with its summary, and the errors a user can make.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "qmtl/world/world_service.h"
#include "tests/support/process.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/temp_dir.h"

namespace qmtl {
namespace {

using lifecycle::StrategyEvent;

const char* kSpec = R"({
    "inputs": {"close": {"interval": "1m"}},
    "nodes": {"r": {"indicator": "returns", "input": "close"},
              "up": {"indicator": "gt", "input": "r", "value": 0}},
    "orders": {"signal": "up", "symbol": "ZZ", "qty": 2}})";

class RunCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    {
      auto store = std::move(*store::open_store(fmt::format("sqlite:{}", dir_.file("run.db"))));
      SystemClock clock;
      world::WorldService s(*store, clock);
      ASSERT_TRUE(s.create_world({.id = "w"}));
      // live: Live with both gates open; paper: DryRun; broken: a spec that is not one.
      for (const auto& [id, spec] : std::vector<std::pair<std::string, std::string>>{
               {"live", kSpec}, {"paper", kSpec}, {"broken", "{}"}}) {
        ASSERT_TRUE(s.submit_strategy({.id = id, .world = "w", .spec = spec}));
        ASSERT_TRUE(s.apply_strategy_event(id, StrategyEvent::kSubmit, "setup", ""));
        ASSERT_TRUE(s.apply_strategy_event(id, StrategyEvent::kValidationPassed, "setup", ""));
      }
      ASSERT_TRUE(s.apply_strategy_event("live", StrategyEvent::kPromote, "setup", ""));
      for (const char* side : {"long", "short"}) {
        ASSERT_TRUE(s.set_activation("w", "live", side, true, "setup", ""));
      }
    }
    server_ = std::make_unique<testing::ServerProcess>(
        QMTL_BINARY, dir_.file("run.db"), dir_.file("server.log"),
        std::vector<std::string>{"--no-auth", "--heartbeat", "100ms"});
    bars_ = zigzag("bars.csv", std::chrono::hours(2));
  }
  // Six zigzag bars from `ago` before now, a minute apart: five orders,
  // alternately buy and sell. Runs of one strategy need bars of their own
  // times: the server refuses to rewrite an equity point.
  std::string zigzag(const std::string& name, std::chrono::minutes ago) {
    std::string csv = "date,open,high,low,close,volume\n";
    const TimePoint start = std::chrono::floor<std::chrono::minutes>(SystemClock().now()) - ago;
    for (int i = 0; i < 6; ++i) {
      const int close = i % 2 == 0 ? 100 : 101;
      csv += fmt::format("{},{},{},{},{},1000\n", format_timestamp(start + std::chrono::minutes(i)),
                         close, close, close, close);
    }
    return testing::write_file(dir_.file(name), csv);
  }
  testing::ProcessResult qmtl(std::vector<std::string> args) {
    args.insert(args.begin(), QMTL_BINARY);
    return testing::run_process(args, env());
  }
  testing::EnvOverrides env() const {
    return {{"QMTL_CONFIG", dir_.file("none.yml")}, {"QMTL_GATEWAY_URL", server_->url()}};
  }
  static std::vector<boost::json::value> json_lines(const std::string& text) {
    std::vector<boost::json::value> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      auto v = json::parse(line);
      EXPECT_TRUE(v) << line;
      if (v) out.push_back(*v);
    }
    return out;
  }
  std::string slurp(const std::string& path) const {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::string bars_;
};

TEST_F(RunCommandTest, LiveOrdersReachTheJournalAndPerformanceIsPosted) {
  const auto journal = dir_.file("orders.jsonl");
  auto r = qmtl({"-o", "json", "run", "live", "--feed", bars_, "--live-broker",
                 "journal:" + journal, "--post-every", "0.05"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 6u) << r.out;  // five orders, then the summary
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(lines[i].at("route").as_string(), "live") << r.out;
    EXPECT_EQ(lines[i].at("side").as_string(), i % 2 == 0 ? "buy" : "sell");
    EXPECT_EQ(lines[i].at("order_id").as_string(), fmt::format("j-{}", i + 1));
  }
  const auto& summary = lines.back();
  EXPECT_EQ(summary.at("bars").as_int64(), 6);
  EXPECT_EQ(summary.at("live").as_int64(), 5);
  EXPECT_EQ(summary.at("blocked").as_int64(), 0);
  EXPECT_EQ(summary.at("points_posted").as_int64(), 6);
  auto orders = json_lines(slurp(journal));
  ASSERT_EQ(orders.size(), 5u);
  EXPECT_EQ(orders[0].at("symbol").as_string(), "ZZ");
  EXPECT_EQ(orders[0].at("qty").to_number<double>(), 2);
  EXPECT_EQ(orders[0].at("type").as_string(), "market");

  // Without a live broker, Live orders are blocked and say why.
  auto none = qmtl({"run", "live", "--feed", zigzag("later.csv", std::chrono::hours(1))});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_NE(none.out.find("-> blocked: the live broker did not take it: no live broker is "
                          "configured"),
            std::string::npos)
      << none.out;
  EXPECT_NE(none.err.find("live broker: none (live orders are blocked)"), std::string::npos);
}

TEST_F(RunCommandTest, LiveOrdersGoToAFixExchangeAndAreBlockedWhileItIsDown) {
  const int port = testing::free_port();
  testing::EnvOverrides sim_env{{"SIM_PASS", "hunter2-fix"}};
  auto sim = std::make_unique<testing::ChildProcess>(
      std::vector<std::string>{EXCHANGE_SIM, "--port", std::to_string(port), "--store",
                               dir_.file("sim-store"), "--log", dir_.file("sim.log"),
                               "--password-env", "SIM_PASS", "--path", "ZZ=100,101"},
      dir_.file("sim.err"), sim_env);
  auto ready = sim->read_line(std::chrono::seconds(10));
  ASSERT_TRUE(ready && ready->find("listening") != std::string::npos)
      << slurp(dir_.file("sim.err"));
  const auto broker = testing::write_file(
      dir_.file("broker.yml"),
      fmt::format("port: {}\nsender_comp_id: QMTL\ntarget_comp_id: EXCH\naccount: A1\n"
                  "password_env: FIX_PASS\nstore_dir: {}\nheartbeat: 1s\n",
                  port, dir_.file("fix-store")));
  auto run = [&](const std::string& bars) {
    std::vector<std::string> args{QMTL_BINARY,     "-o",           "json", "run",
                                  "live",          "--feed",       bars,   "--live-broker",
                                  "fix:" + broker, "--post-every", "0.05"};
    auto e = env();
    e["FIX_PASS"] = "hunter2-fix";
    return testing::run_process(args, e);
  };
  auto r = run(bars_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 6u) << r.out;
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(lines[i].at("route").as_string(), "live") << r.out;
    EXPECT_EQ(lines[i].at("order_id").as_string(), fmt::format("fix-{}", i + 1));
  }
  EXPECT_EQ(lines.back().at("live").as_int64(), 5);
  EXPECT_EQ(slurp(dir_.file("sim.log")).find("hunter2"), std::string::npos);
  EXPECT_NE(slurp(dir_.file("sim.log")).find("|35=8|"), std::string::npos);  // filled there

  // The exchange is gone: live orders are blocked with the reason, never sent elsewhere.
  ASSERT_EQ(sim->stop(SIGTERM, std::chrono::seconds(10)), 0);
  auto down = run(zigzag("down.csv", std::chrono::hours(1)));
  ASSERT_EQ(down.exit_code, 0) << down.err;
  auto blocked = json_lines(down.out);
  // Nothing moves the position, so only the rising bars want a change (a
  // purchase): three orders over the five signals, and the summary.
  ASSERT_EQ(blocked.size(), 4u) << down.out;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(blocked[i].at("side").as_string(), "buy") << down.out;
    EXPECT_EQ(blocked[i].at("route").as_string(), "blocked") << down.out;
    EXPECT_NE(blocked[i].at("reason").as_string().find("not logged on"), std::string::npos)
        << down.out;
  }
  EXPECT_NE(down.err.find("not logged on yet"), std::string::npos) << down.err;
  EXPECT_EQ(down.err.find("hunter2"), std::string::npos);
}

// A live broker that refuses every order (the FIX exchange rejects orders
// above 1 ZZ; the strategy trades 2): after --max-rejects in a row the
// strategy fails, reported to the world as its ERROR (Live -> Inactive, gates
// closed), and the run ends with the reason.
TEST_F(RunCommandTest, RepeatedBrokerRejectsFailTheStrategy) {
  const int port = testing::free_port();
  testing::ChildProcess sim(
      {EXCHANGE_SIM, "--port", std::to_string(port), "--store", dir_.file("sim-store"), "--log",
       dir_.file("sim.log"), "--path", "ZZ=100,101", "--max-order-qty", "1"},
      dir_.file("sim.err"));
  auto ready = sim.read_line(std::chrono::seconds(10));
  ASSERT_TRUE(ready && ready->find("listening") != std::string::npos)
      << slurp(dir_.file("sim.err"));
  const auto broker = testing::write_file(
      dir_.file("broker.yml"),
      fmt::format("port: {}\nsender_comp_id: QMTL\ntarget_comp_id: EXCH\nstore_dir: {}\n"
                  "heartbeat: 1s\n",
                  port, dir_.file("fix-store")));
  // New bars on a followed feed (bars already there would only be replayed
  // to paper); the run goes on after the last one until the rejects come back.
  const std::string feed = testing::write_file(dir_.file("new.csv"), slurp(bars_).substr(0, 33));
  testing::ChildProcess run({QMTL_BINARY, "run", "live", "--feed", feed, "--follow",
                             "--live-broker", "fix:" + broker, "--max-rejects", "3"},
                            dir_.file("run.err"), env());
  for (int i = 0; i < 200 && slurp(dir_.file("run.err")).find("logged on") == std::string::npos &&
                  slurp(dir_.file("run.err")).find("following world") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  {
    std::ofstream f(feed, std::ios::app);
    f << slurp(bars_).substr(33);
  }
  for (int i = 0; i < 400 && run.running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string err = slurp(dir_.file("run.err"));
  EXPECT_EQ(run.stop(SIGKILL, std::chrono::seconds(1)), 1) << err;
  // Rejects come back asynchronously: by the time the runner looks, 3 or more.
  EXPECT_NE(err.find("the live broker rejected "), std::string::npos) << err;
  EXPECT_NE(err.find(" orders in a row (last: fix-"), std::string::npos) << err;
  EXPECT_NE(err.find("order exceeds the quantity limit)"), std::string::npos) << err;
  EXPECT_NE(err.find("reported to the world (ERROR: the strategy is now Inactive)"),
            std::string::npos)
      << err;
  auto s = http_request(server_->url(), {.path = "/strategies/live"});
  ASSERT_TRUE(s);
  EXPECT_EQ(json::parse(s->body)->at("state").as_string(), "Inactive");
  auto gates = http_request(server_->url(), {.path = "/worlds/w/activation"});
  const auto entries = json::parse(gates->body)->at("entries").as_array();
  for (const auto& e : entries) {
    if (e.at("strategy") == "live") {
      EXPECT_FALSE(e.at("active").as_bool());
    }
  }
  auto audit = http_request(server_->url(), {.path = "/worlds/w/audit"});
  EXPECT_NE(audit->body.find(R"("event":"ERROR","before":"Live","after":"Inactive")"),
            std::string::npos)
      << audit->body;
}

// A node that computes a non-finite value stops the strategy: its ERROR is
// reported to the world (DryRun -> Inactive), not just printed by a runner
// that the server would restart into the same failure.
TEST_F(RunCommandTest, ANonFiniteNodeValueFailsTheStrategy) {
  const TimePoint start =
      std::chrono::floor<std::chrono::minutes>(SystemClock().now()) - std::chrono::hours(3);
  std::string csv = "date,open,high,low,close,volume\n";
  for (const auto& [i, close] :
       std::vector<std::pair<int, std::string>>{{0, "1e-300"}, {1, "1e-300"}, {2, "1e300"}}) {
    csv += fmt::format("{},{},{},{},{},1000\n", format_timestamp(start + std::chrono::minutes(i)),
                       close, close, close, close);
  }
  const auto bars = testing::write_file(dir_.file("overflow.csv"), csv);
  auto r = qmtl({"run", "paper", "--feed", bars});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("node 'r'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("reported to the world (ERROR: the strategy is now Inactive)"),
            std::string::npos)
      << r.err;
  auto s = http_request(server_->url(), {.path = "/strategies/paper"});
  EXPECT_EQ(json::parse(s->body)->at("state").as_string(), "Inactive");
  auto audit = http_request(server_->url(), {.path = "/worlds/w/audit"});
  EXPECT_NE(audit->body.find(R"("event":"ERROR","before":"DryRun","after":"Inactive")"),
            std::string::npos)
      << audit->body;
  EXPECT_NE(audit->body.find("node 'r': computed inf for "), std::string::npos) << audit->body;
  // Reporting is for the world's strategies: a reason is required.
  auto bare = http_request(server_->url(),
                           {.method = "POST", .path = "/strategies/live/error", .body = "{}"});
  EXPECT_EQ(bare->status, 400);
}

// A strategy's hand-overs on real processes: the FIX exchange simulator, a
// runner of 'paper' with a FIX live broker (its journal keeps the account
// across runner restarts), and the world's evaluate and apply.
class HandoverTest : public RunCommandTest {
 protected:
  void SetUp() override {
    RunCommandTest::SetUp();
    const int port = testing::free_port();
    sim_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{EXCHANGE_SIM, "--port", std::to_string(port), "--store",
                                 dir_.file("sim-store"), "--log", dir_.file("sim.log"), "--path",
                                 "ZZ=100"},
        dir_.file("sim.err"));
    auto ready = sim_->read_line(std::chrono::seconds(10));
    ASSERT_TRUE(ready && ready->find("listening") != std::string::npos)
        << slurp(dir_.file("sim.err"));
    broker_ = testing::write_file(
        dir_.file("broker.yml"),
        fmt::format("port: {}\nsender_comp_id: QMTL\ntarget_comp_id: EXCH\nstore_dir: {}\n"
                    "heartbeat: 1s\n",
                    port, dir_.file("fix-store")));
    // Three bars: a buy after the rise fills at the third bar's open, so the
    // paper book holds +2 ZZ (the sell after the fall is still open).
    std::string csv = "date,open,high,low,close,volume\n";
    const TimePoint start =
        std::chrono::floor<std::chrono::minutes>(SystemClock().now()) - std::chrono::minutes(10);
    for (int i = 0; i < 3; ++i) {
      const int close = i == 1 ? 101 : 100;
      csv += fmt::format("{},{},{},{},{},1000\n", format_timestamp(start + std::chrono::minutes(i)),
                         close, close, close, close);
    }
    feed_ = testing::write_file(dir_.file("paper.csv"), csv);
  }
  std::unique_ptr<testing::ChildProcess> start_runner(const std::string& err_name) {
    return std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{QMTL_BINARY, "-o", "json", "run", "paper", "--feed", feed_,
                                 "--follow", "--live-broker", "fix:" + broker_, "--post-every",
                                 "0.05"},
        dir_.file(err_name), env());
  }
  // The runner's next JSON line that has `key`.
  boost::json::value next_line(testing::ChildProcess& runner, const std::string& key) {
    for (int i = 0; i < 20; ++i) {
      auto l = runner.read_line(std::chrono::seconds(10));
      if (!l) break;
      auto v = json::parse(*l);
      if (v && v->is_object() && v->as_object().contains(key)) return *v;
    }
    ADD_FAILURE() << "no line with '" << key << "'";
    return nullptr;
  }
  HttpReply post(const std::string& path, const std::string& body, const std::string& type) {
    auto r = http_request(server_->url(),
                          {.method = "POST", .path = path, .body = body, .content_type = type});
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : HttpReply{};
  }
  // A policy that promotes 'paper' (or, with promote false, demotes it),
  // carrying positions at promotion and flattening them at demotion.
  void set_policy(bool promote) {
    ASSERT_EQ(post("/worlds/w/policy",
                   fmt::format("evaluation: {{every: 1d, min_dry_run: 0s, window: 1m}}\n"
                               "gates: {{promote: 'trades {} 0'}}\nscore: trades\n"
                               "position: {{on_promote: carry, on_demote: flatten}}\n",
                               promote ? ">=" : "<"),
                   "application/yaml")
                  .status,
              201);
  }
  // Evaluate until the decision for 'paper' is `want`, then apply that run.
  bool evaluate_and_apply(const std::string& want) {
    for (int i = 0; i < 100; ++i) {
      auto r = post("/worlds/w/evaluate", "", "application/json");
      auto v = json::parse(r.body);
      if (r.status == 201 && v && v->at("strategies").at("paper").at("decision") == want.c_str()) {
        auto a = post("/worlds/w/apply",
                      fmt::format(R"({{"run_id": "{}"}})", v->at("id").as_string().c_str()),
                      "application/json");
        EXPECT_EQ(a.status, 200) << a.body;
        return true;
      }
      if (i == 99) ADD_FAILURE() << r.body;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // Waits until the exchange has filled `n` orders.
  void wait_fills(size_t n) {
    for (int i = 0; i < 100; ++i) {
      const auto log = slurp(dir_.file("sim.log"));
      size_t fills = 0;
      for (size_t at = 0; (at = log.find("|150=F|", at)) != std::string::npos; ++at) ++fills;
      if (fills >= n) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "the exchange filled fewer than " << n << " orders";
  }
  std::string audit() {
    auto r = http_request(server_->url(), {.path = "/worlds/w/audit"});
    EXPECT_TRUE(r);
    return r ? r->body : "";
  }

  std::unique_ptr<testing::ChildProcess> sim_;
  std::string broker_, feed_;
};

// The world's position policy: promoted with carry, the runner buys its paper
// position on the FIX exchange; demoted with flatten, it sells what it holds
// live; both are in the audit log with their orders.
TEST_F(HandoverTest, HandsPositionsOverOnPromotionAndDemotion) {
  auto runner = start_runner("runner.err");
  ASSERT_FALSE(next_line(*runner, "route").is_null());  // the buy
  ASSERT_FALSE(next_line(*runner, "route").is_null());  // the sell
  set_policy(true);
  ASSERT_TRUE(evaluate_and_apply("PROMOTE"));
  auto promoted = next_line(*runner, "handover");
  ASSERT_TRUE(promoted.is_object()) << slurp(dir_.file("runner.err"));
  EXPECT_EQ(promoted.at("handover"), "PROMOTE");
  EXPECT_EQ(promoted.at("policy"), "carry");
  EXPECT_TRUE(promoted.at("live_positions").as_object().empty());  // a fresh live account
  ASSERT_EQ(promoted.at("orders").as_array().size(), 1u) << promoted;
  EXPECT_EQ(promoted.at("orders").at(0), "buy 2 ZZ (fix-1)");
  wait_fills(1);  // filled at the exchange before the demotion

  set_policy(false);
  ASSERT_TRUE(evaluate_and_apply("DEMOTE"));
  auto demoted = next_line(*runner, "handover");
  ASSERT_TRUE(demoted.is_object());
  EXPECT_EQ(demoted.at("handover"), "DEMOTE");
  EXPECT_EQ(demoted.at("policy"), "flatten");
  EXPECT_EQ(demoted.at("live_positions").at("ZZ").to_number<double>(), 2);  // what carry made
  ASSERT_EQ(demoted.at("orders").as_array().size(), 1u) << demoted;
  EXPECT_EQ(demoted.at("orders").at(0), "sell 2 ZZ (fix-2)");

  // The audit log has both, with their orders.
  const std::string log = audit();
  EXPECT_NE(log.find("on_promote carry; buy 2 ZZ (fix-1)"), std::string::npos) << log;
  EXPECT_NE(log.find("on_demote flatten; sell 2 ZZ (fix-2)"), std::string::npos);

  // Once the flatten has filled, the live account is flat.
  wait_fills(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(runner->stop(SIGTERM, std::chrono::seconds(10)), 0);
  auto summary = next_line(*runner, "bars");
  ASSERT_TRUE(summary.is_object());
  EXPECT_EQ(summary.at("handovers").as_int64(), 2);
  EXPECT_TRUE(summary.at("live_positions").as_object().empty()) << summary;
}

// Demoted while no runner ran (the server stopping, a crash): the demotion is
// a pending hand-over, and the next runner flattens the live position when it
// connects, once; the audit log then has it and nothing is pending.
TEST_F(HandoverTest, ADemotionWithNoRunnerIsHandedOverByTheNextOne) {
  auto first = start_runner("first.err");
  ASSERT_FALSE(next_line(*first, "route").is_null());
  ASSERT_FALSE(next_line(*first, "route").is_null());
  set_policy(true);
  ASSERT_TRUE(evaluate_and_apply("PROMOTE"));
  ASSERT_TRUE(next_line(*first, "handover").is_object()) << slurp(dir_.file("first.err"));
  wait_fills(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the fill reaches the journal
  ASSERT_EQ(first->stop(SIGTERM, std::chrono::seconds(10)), 0);
  first.reset();

  set_policy(false);
  ASSERT_TRUE(evaluate_and_apply("DEMOTE"));  // nobody hands this over now
  EXPECT_EQ(audit().find("on_demote flatten"), std::string::npos);

  auto second = start_runner("second.err");
  auto demoted = next_line(*second, "handover");
  ASSERT_TRUE(demoted.is_object()) << slurp(dir_.file("second.err"));
  EXPECT_EQ(demoted.at("handover"), "DEMOTE");
  EXPECT_EQ(demoted.at("policy"), "flatten");
  EXPECT_EQ(demoted.at("live_positions").at("ZZ").to_number<double>(), 2);
  ASSERT_EQ(demoted.at("orders").as_array().size(), 1u) << demoted;
  EXPECT_EQ(std::string(demoted.at("orders").at(0).as_string()).substr(0, 10), "sell 2 ZZ ");
  EXPECT_NE(slurp(dir_.file("second.err")).find("was not handed over (no runner then)"),
            std::string::npos);
  wait_fills(2);
  const std::string log = audit();
  EXPECT_NE(log.find("on_demote flatten; sell 2 ZZ"), std::string::npos) << log;

  // Settled: a third runner finds nothing pending and trades nothing live.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(second->stop(SIGTERM, std::chrono::seconds(10)), 0);
  second.reset();
  auto third = start_runner("third.err");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ASSERT_EQ(third->stop(SIGTERM, std::chrono::seconds(10)), 0);
  auto summary = next_line(*third, "bars");
  ASSERT_TRUE(summary.is_object());
  EXPECT_EQ(summary.at("handovers").as_int64(), 0) << summary;
  EXPECT_TRUE(summary.at("live_positions").as_object().empty()) << summary;
}

TEST_F(RunCommandTest, DryRunTradesOnPaperAndSigtermEndsAFollowedRun) {
  testing::ChildProcess run({QMTL_BINARY, "run", "paper", "--feed", bars_, "--follow"},
                            dir_.file("run.err"), env());
  for (int i = 0; i < 5; ++i) {
    auto line = run.read_line(std::chrono::seconds(10));
    ASSERT_TRUE(line) << slurp(dir_.file("run.err"));
    EXPECT_NE(line->find("-> paper (paper-"), std::string::npos) << *line;
  }
  // Following: it waits for more bars until told to stop.
  EXPECT_FALSE(run.read_line(std::chrono::milliseconds(300)));
  ASSERT_EQ(::kill(run.pid(), SIGTERM), 0);
  auto summary = run.read_line(std::chrono::seconds(10));
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->rfind("bars 6, orders 5 (live 0, paper 5, blocked 0), posted 6 points", 0), 0u)
      << *summary;
  EXPECT_EQ(run.stop(0, std::chrono::seconds(10)), 0);  // signal 0: just wait
}

TEST_F(RunCommandTest, ErrorsNameWhatToFix) {
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"run", "ghost", "--feed", bars_}, 1, "strategy 'ghost'"},
      {{"run", "broken", "--feed", bars_}, 2, "strategy 'broken': inputs is required"},
      {{"run", "live", "--feed", bars_, "--live-broker", "ib:x"},
       2,
       "--live-broker 'ib:x': write journal:<file> or fix:<broker.yml>"},
      {{"run", "live", "--feed", bars_, "--live-broker", "fix:" + dir_.file("none.yml")},
       2,
       "cannot open broker file"},
      {{"run", "live", "--feed", bars_, "--live-broker",
        "fix:" + testing::write_file(dir_.file("bad.yml"), "port: 1\npassword: x\n")},
       2,
       "unknown key 'password' (a password goes in password_env or password_file"},
      {{"run", "live", "--feed", dir_.file("missing.csv")}, 2, "cannot open bar feed"},
      {{"run", "live"}, 2, "--feed is required"},
  };
  for (const auto& c : cases) {
    auto r = qmtl(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << fmt::format("{}", fmt::join(c.args, " ")) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  // A malformed bar ends the run with the line named.
  const auto bad = testing::write_file(dir_.file("bad.csv"),
                                       "date,open,high,low,close,volume\n2026-01-01,1,1,1,x,1\n");
  auto r = qmtl({"run", "paper", "--feed", bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(bad + ":2: 'x' is not a number"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qmtl
