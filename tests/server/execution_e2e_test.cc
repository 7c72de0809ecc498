// The automated lifecycle on real processes (issue #9): `qmtl serve` with
// execution settings validates submitted strategies by running `qmtl backtest`
// children (passing two, rejecting one by the reject gate and one whose run
// fails), starts a `qmtl run` child for each DryRun strategy on a followed bar
// feed, an evaluation promotes one of them and its runner's orders reach the
// live broker (a journal), a runner killed with SIGKILL is started again, an
// archived strategy's runner is stopped, and stopping the server stops them all.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "qmtl/core/time.h"
#include "tests/support/process.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/temp_dir.h"
#include "tests/support/webhook_receiver.h"

namespace qmtl {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Buys after a rising bar and sells after a falling one; `qty` tells the two
// apart so their returns (and so their ranks) differ.
std::string zigzag(const std::string& id, int qty) {
  return fmt::format(
      "id: {}\ninputs: {{close: {{interval: 1m}}}}\nnodes: {{r: {{indicator: returns, input: "
      "close}}, up: {{indicator: gt, input: r, value: 0}}}}\norders: {{signal: up, symbol: ZZ, "
      "qty: {}}}\n",
      id, qty);
}

// Never warm within the history: no orders, so `trades < 1` rejects it.
const char* kIdle =
    "id: idle\ninputs: {close: {interval: 1m, period: 100000}}\n"
    "nodes: {r: {indicator: returns, input: close}, up: {indicator: gt, input: r, value: 0}}\n"
    "orders: {signal: up, symbol: ZZ, qty: 1}\n";

// Valid JSON, so the server takes it; `qmtl backtest` refuses the indicator.
const char* kBroken =
    R"({"id": "broken", "inputs": {"close": {"interval": "1m"}},
        "nodes": {"r": {"indicator": "no-such-indicator", "input": "close"}},
        "orders": {"signal": "r", "symbol": "ZZ", "qty": 1}})";

// Minute bars whose close zigzags by 1, drifting up by `drift` per bar.
void append_bars(const std::string& path, TimePoint start, int from, int to, double drift) {
  std::ofstream f(path, std::ios::app);
  for (int i = from; i < to; ++i) {
    const double close = 100 + drift * i + (i % 2 == 0 ? 0 : 1);
    f << fmt::format("{},{},{},{},{},1000000\n", format_timestamp(start + std::chrono::minutes(i)),
                     close, close + 0.5, close - 0.5, close);
  }
}

class ExecutionE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    history_ = dir_.file("history.csv");
    feed_ = dir_.file("live.csv");
    std::ofstream(history_) << "date,open,high,low,close,volume\n";
    append_bars(history_, TimePoint(std::chrono::sys_days(std::chrono::year(2024) / 1 / 2)), 0, 600,
                0.01);
    // The live feed ends now: evaluations look back from the present.
    feed_start_ = std::chrono::floor<std::chrono::minutes>(std::chrono::system_clock::now()) -
                  std::chrono::minutes(kLiveBars);
    std::ofstream(feed_) << "date,open,high,low,close,volume\n";
    append_bars(feed_, feed_start_, 0, kLiveBars - 20, 0.01);
    server_ = std::make_unique<testing::ServerProcess>(
        QMTL_BINARY, dir_.file("s.db"), dir_.file("server.log"),
        std::vector<std::string>{"--no-auth", "--exec-dir", dir_.file("exec")});
  }

  HttpReply call(const std::string& method, const std::string& path, const std::string& body = "",
                 const std::string& type = "application/json") {
    auto r = http_request(server_->url(), {.method = method,
                                           .path = path,
                                           .body = body,
                                           .content_type = type,
                                           .bearer_token = token_});
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : HttpReply{};
  }
  boost::json::value get(const std::string& path) {
    auto r = call("GET", path);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    auto v = json::parse(r.body);
    return v ? *v : boost::json::value();
  }
  std::string state_of(const std::string& id) {
    auto s = get("/strategies/" + id);
    return s.is_object() ? std::string(s.at("state").as_string()) : "";
  }
  // The world's runner entry for `id`, or null.
  boost::json::value runner(const std::string& id) {
    auto e = get("/worlds/w/execution");
    for (const auto& r : e.at("runners").as_array()) {
      if (r.at("strategy").as_string() == id) return r;
    }
    return nullptr;
  }
  // Polls `pred` every 50 ms for up to `timeout`.
  static bool eventually(const std::function<bool()>& pred, milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return pred();
  }
  static size_t lines_of(const std::string& path) {
    std::ifstream f(path);
    size_t n = 0;
    for (std::string line; std::getline(f, line);) n += line.empty() ? 0u : 1u;
    return n;
  }
  testing::ProcessResult qmtl(std::vector<std::string> args) {
    args.insert(args.begin(), {QMTL_BINARY, "--gateway-url", server_->url()});
    return testing::run_process(args);
  }
  std::string server_log() { return read(dir_.file("server.log")); }
  static std::string read(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  static constexpr int kLiveBars = 60;
  std::string token_;  // sent with every call() when set
  testing::TempDir dir_;
  std::string history_, feed_;
  TimePoint feed_start_;
  std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(ExecutionE2eTest, ValidatesRunsPromotesAndSupervisesStrategies) {
  ASSERT_EQ(call("POST", "/worlds", R"({"id":"w"})").status, 201);
  ASSERT_EQ(call("POST", "/worlds/w/policy",
                 "evaluation: {every: 1d, min_dry_run: 0s, window: 20m}\n"
                 "gates: {promote: 'trades >= 1', demote: 'trades < 0', "
                 "reject: 'max_drawdown > 0.5 or trades < 1'}\n"
                 "score: return\ntop_k: {k: 1}\n",
                 "application/yaml")
                .status,
            201);
  // Bad settings are refused and change nothing.
  auto bad = call("PUT", "/worlds/w/execution", R"({"history": "relative.csv"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("absolute path"), std::string::npos) << bad.body;
  EXPECT_TRUE(get("/worlds/w/execution").at("settings").is_null());
  const std::string journal = dir_.file("orders-{strategy}.jsonl");
  auto set = qmtl({"world", "execution", "w", "--history", history_, "--window", "8h", "--feed",
                   feed_, "--live-broker", "journal:" + journal, "--max-runners", "4"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(set.out, "world 'w' execution settings saved\n");

  for (const auto& [id, spec] : std::vector<std::pair<std::string, std::string>>{
           {"zig-a", zigzag("zig-a", 1)}, {"zig-b", zigzag("zig-b", 3)}, {"idle", kIdle}}) {
    const auto file = testing::write_file(dir_.file(id + ".yml"), spec);
    auto r = testing::run_process(
        {QMTL_BINARY, "--gateway-url", server_->url(), "strategy", "submit", file, "--world", "w"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  ASSERT_EQ(call("POST", "/strategies",
                 fmt::format(R"({{"id": "broken", "world": "w", "spec": {}}})", kBroken))
                .status,
            201);

  // Validation: two pass, the idle one is rejected by the gate, the broken one by its run.
  ASSERT_TRUE(eventually(
      [&] {
        return state_of("zig-a") == "DryRun" && state_of("zig-b") == "DryRun" &&
               state_of("idle") == "Rejected" && state_of("broken") == "Rejected";
      },
      seconds(30)))
      << server_log();
  auto va = get("/strategies/zig-a/validation");
  EXPECT_EQ(va.at("outcome").as_string(), "passed");
  EXPECT_EQ(va.at("detail").at("bars").as_int64(), 481);  // 8 hours of minute bars, both ends
  EXPECT_GT(va.at("detail").at("fills").as_int64(), 100);
  auto vi = get("/strategies/idle/validation?records=true");
  EXPECT_EQ(vi.at("outcome").as_string(), "rejected");
  EXPECT_NE(vi.at("reason").as_string().find("trades < 1"), std::string::npos) << vi;
  EXPECT_EQ(vi.at("fills").as_array().size(), 0u);
  EXPECT_EQ(vi.at("points").as_array().size(), 481u);
  auto shown = qmtl({"strategy", "validation", "idle"});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("strategy 'idle' validation rejected"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("trades"), std::string::npos) << shown.out;
  auto vb = get("/strategies/broken/validation");
  EXPECT_EQ(vb.at("outcome").as_string(), "failed");
  EXPECT_NE(vb.at("reason").as_string().find("no-such-indicator"), std::string::npos) << vb;
  // The audit log says why, with the actor that did it.
  const std::string audit = boost::json::serialize(get("/worlds/w/audit"));
  EXPECT_NE(audit.find("VALIDATION_FAILED"), std::string::npos);
  EXPECT_NE(audit.find("\"actor\":\"execution\""), std::string::npos);

  // Runners: one per DryRun strategy, none for the rejected.
  ASSERT_TRUE(eventually(
      [&] {
        auto a = runner("zig-a"), b = runner("zig-b");
        return a.is_object() && a.at("state") == "running" && b.is_object() &&
               b.at("state") == "running";
      },
      seconds(20)))
      << boost::json::serialize(get("/worlds/w/execution"));
  EXPECT_TRUE(runner("idle").is_null());
  EXPECT_TRUE(runner("broken").is_null());
  auto table = qmtl({"world", "execution", "w"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("at most 4 runners"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("zig-a     runner"), std::string::npos) << table.out;

  // Their paper records reach the server; an evaluation then promotes exactly one.
  std::string run_id, promoted;
  ASSERT_TRUE(eventually(
      [&] {
        auto r = call("POST", "/worlds/w/evaluate");
        auto v = json::parse(r.body);
        if (r.status != 201 || !v) return false;
        for (const auto& [id, res] : v->at("strategies").as_object()) {
          if (res.at("decision") == "PROMOTE") {
            promoted = std::string(id);
            run_id = std::string(v->at("id").as_string());
            return true;
          }
        }
        return false;
      },
      seconds(30)))
      << server_log();
  ASSERT_EQ(call("POST", "/worlds/w/apply", fmt::format(R"({{"run_id": "{}"}})", run_id)).status,
            200);
  EXPECT_EQ(state_of(promoted), "Live");
  const std::string other = promoted == "zig-a" ? "zig-b" : "zig-a";
  EXPECT_EQ(state_of(other), "DryRun");

  // New bars: the promoted runner's orders go to the live journal, the other's stay paper.
  const std::string live_journal = dir_.file(fmt::format("orders-{}.jsonl", promoted));
  const std::string other_journal = dir_.file(fmt::format("orders-{}.jsonl", other));
  append_bars(feed_, feed_start_, kLiveBars - 20, kLiveBars - 10, 0.01);
  ASSERT_TRUE(eventually([&] { return lines_of(live_journal) >= 5; }, seconds(20)))
      << "live orders: " << lines_of(live_journal) << "\n"
      << server_log();
  EXPECT_EQ(lines_of(other_journal), 0u);

  // A runner killed is started again, with the exit recorded.
  const auto before = runner(promoted);
  const auto pid = static_cast<pid_t>(before.at("pid").as_int64());
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(eventually(
      [&] {
        auto r = runner(promoted);
        return r.is_object() && r.at("state") == "running" && r.at("restarts").as_int64() == 1 &&
               r.at("pid").is_int64() && r.at("pid").as_int64() != pid;
      },
      seconds(20)))
      << boost::json::serialize(get("/worlds/w/execution"));
  EXPECT_EQ(runner(promoted).at("last_exit").as_string(), "signal 9 (Killed)");
  // ...and trades live again once it has replayed the feed (bars it replays
  // warm it up and rebuild its paper book but are never sent live again).
  const std::string runner_log = dir_.file(fmt::format("exec/{}.runner.log", promoted));
  ASSERT_TRUE(eventually(
      [&] { return read(runner_log).find("replayed 50 bars") != std::string::npos; }, seconds(20)))
      << read(runner_log);
  const size_t live_before = lines_of(live_journal);
  append_bars(feed_, feed_start_, kLiveBars - 10, kLiveBars, 0.01);
  EXPECT_TRUE(eventually([&] { return lines_of(live_journal) > live_before; }, seconds(20)))
      << read(runner_log);

  // Archiving the other strategy stops its runner.
  const auto other_pid = static_cast<pid_t>(runner(other).at("pid").as_int64());
  ASSERT_EQ(call("POST", "/strategies/" + other + "/archive", R"({"reason": "test"})").status, 200);
  EXPECT_TRUE(eventually([&] { return runner(other).is_null(); }, seconds(10)));
  EXPECT_TRUE(eventually([&] { return ::kill(other_pid, 0) != 0 && errno == ESRCH; }, seconds(5)));

  // Metrics count what happened.
  auto m = call("GET", "/metrics");
  EXPECT_NE(m.body.find(R"(qmtl_validations_total{outcome="rejected",world="w"} 1)"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find(R"(qmtl_runner_starts_total{restart="true",world="w"} 1)"),
            std::string::npos);

  // Stopping the server stops its runners (this server has no scheduler; the
  // demo's test checks that a scheduler stops before them).
  const auto last_pid = static_cast<pid_t>(runner(promoted).at("pid").as_int64());
  EXPECT_EQ(server_->stop(), 0);
  EXPECT_TRUE(eventually([&] { return ::kill(last_pid, 0) != 0 && errno == ESRCH; }, seconds(5)));
  const std::string log = server_log();
  const size_t signal = log.find("received signal 15");
  const size_t runners_stopping = log.find("stopping the runners and validations");
  ASSERT_NE(signal, std::string::npos) << log;
  ASSERT_NE(runners_stopping, std::string::npos) << log;
  EXPECT_LT(signal, runners_stopping);
}

TEST_F(ExecutionE2eTest, RunnersWaitForASlotAndResumeAfterARestart) {
  ASSERT_EQ(call("POST", "/worlds", R"({"id":"w"})").status, 201);
  ASSERT_EQ(
      call("PUT", "/worlds/w/execution",
           fmt::format(R"({{"history": "{}", "feed": "{}", "max_runners": 1}})", history_, feed_))
          .status,
      200);
  for (const char* id : {"one", "two"}) {
    ASSERT_EQ(call("POST", "/strategies",
                   fmt::format(R"({{"id": "{}", "world": "w", "spec": {{"inputs": {{"close":
                   {{"interval": "1m"}}}}, "nodes": {{"r": {{"indicator": "returns", "input":
                   "close"}}, "up": {{"indicator": "gt", "input": "r", "value": 0}}}}, "orders":
                   {{"signal": "up", "symbol": "ZZ", "qty": 1}}}}}})",
                               id))
                  .status,
              201);
  }
  // One slot: whichever passed validation first runs, the other waits and says
  // why (the two validations run in parallel and may finish in either order).
  std::string first, second;
  ASSERT_TRUE(eventually(
      [&] {
        auto a = runner("one"), b = runner("two");
        if (!a.is_object() || !b.is_object()) return false;
        if (a.at("state") == "running" && b.at("state") == "waiting") {
          first = "one", second = "two";
        } else if (b.at("state") == "running" && a.at("state") == "waiting") {
          first = "two", second = "one";
        }
        return !first.empty();
      },
      seconds(20)))
      << boost::json::serialize(get("/worlds/w/execution"));
  EXPECT_EQ(runner(second).at("why").as_string(), "max_runners 1 reached in world 'w'");
  EXPECT_TRUE(runner(second).at("pid").is_null());
  // The slot frees when the first is archived.
  ASSERT_EQ(call("POST", fmt::format("/strategies/{}/archive", first)).status, 200);
  ASSERT_TRUE(eventually(
      [&] {
        auto b = runner(second);
        return runner(first).is_null() && b.is_object() && b.at("state") == "running";
      },
      seconds(20)))
      << boost::json::serialize(get("/worlds/w/execution"));

  // A restarted server starts the runners of its DryRun strategies again.
  const auto old_pid = static_cast<pid_t>(runner(second).at("pid").as_int64());
  const std::string port = server_->url().substr(server_->url().rfind(':') + 1);
  ASSERT_EQ(server_->stop(), 0);
  EXPECT_TRUE(eventually([&] { return ::kill(old_pid, 0) != 0 && errno == ESRCH; }, seconds(5)));
  server_ = std::make_unique<testing::ServerProcess>(
      QMTL_BINARY, dir_.file("s.db"), dir_.file("server2.log"),
      std::vector<std::string>{"--no-auth", "--exec-dir", dir_.file("exec"), "--port", port});
  ASSERT_TRUE(eventually(
      [&] {
        auto b = runner(second);
        return b.is_object() && b.at("state") == "running" && b.at("pid").as_int64() != old_pid;
      },
      seconds(20)))
      << boost::json::serialize(get("/worlds/w/execution"));
  EXPECT_EQ(state_of(second), "DryRun");
}

// A world's FIX broker, configured through the CLI with the password named,
// not given: the server's runner trades live on the exchange simulator, and
// the password appears in no log, store, audit record, API answer or error.
TEST_F(ExecutionE2eTest, AWorldsFixBrokerTradesLiveAndItsSecretLeaksNowhere) {
  const std::string secret = "Zq9-fix-SECRET-77";
  const int port = testing::free_port();
  testing::ChildProcess sim(
      {EXCHANGE_SIM, "--port", std::to_string(port), "--store", dir_.file("sim-store"), "--log",
       dir_.file("sim.log"), "--password-env", "SIM_PASS", "--target", "QMTL-zig", "--path",
       "ZZ=100,101"},
      dir_.file("sim.err"), {{"SIM_PASS", secret}});
  auto ready = sim.read_line(seconds(10));
  ASSERT_TRUE(ready && ready->find("listening") != std::string::npos) << read(dir_.file("sim.err"));
  // The server (and so its runners) has the password in its environment.
  ASSERT_EQ(server_->stop(), 0);
  server_ = std::make_unique<testing::ServerProcess>(
      QMTL_BINARY, dir_.file("s2.db"), dir_.file("server.log"),
      std::vector<std::string>{"--no-auth", "--exec-dir", dir_.file("exec")},
      testing::EnvOverrides{{"FIX_PASS", secret}});

  std::vector<std::string> said;  // every answer and error, to search
  auto cli = [&](std::vector<std::string> args) {
    auto r = qmtl(std::move(args));
    said.push_back(r.out + r.err);
    return r;
  };
  ASSERT_EQ(call("POST", "/worlds", R"({"id":"w"})").status, 201);
  ASSERT_EQ(call("POST", "/worlds/w/policy",
                 "evaluation: {every: 1d, min_dry_run: 0s, window: 20m}\n"
                 "gates: {promote: 'trades >= 1', demote: 'trades < 0'}\n",
                 "application/yaml")
                .status,
            201);
  ASSERT_EQ(cli({"world", "execution", "w", "--history", history_, "--feed", feed_}).exit_code, 0);
  // A secret written into the file is refused without being repeated.
  const auto leaky = testing::write_file(
      dir_.file("leaky.yml"),
      fmt::format("port: {}\nsender_comp_id: QMTL-{{strategy}}\ntarget_comp_id: EXCH\n"
                  "password: {}\n",
                  port, secret));
  auto refused = cli({"world", "broker", "set", "w", "--config", leaky});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("a secret never goes in the settings"), std::string::npos)
      << refused.err;
  const auto good = testing::write_file(
      dir_.file("broker.yml"),
      fmt::format("port: {}\nsender_comp_id: QMTL-{{strategy}}\ntarget_comp_id: EXCH\n"
                  "account: ACC-7\npassword_env: FIX_PASS\nheartbeat: 1s\n",
                  port));
  auto set = cli({"world", "broker", "set", "w", "--config", good});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_NE(set.out.find("from environment variable FIX_PASS"), std::string::npos) << set.out;
  cli({"world", "broker", "show", "w"});
  cli({"-o", "json", "world", "broker", "show", "w"});

  const auto file = testing::write_file(dir_.file("zig.yml"), zigzag("zig", 1));
  ASSERT_EQ(cli({"strategy", "submit", file, "--world", "w"}).exit_code, 0);
  ASSERT_TRUE(eventually(
      [&] {
        auto r = runner("zig");
        return r.is_object() && r.at("state") == "running";
      },
      seconds(30)))
      << server_log();
  std::string run_id;
  ASSERT_TRUE(eventually(
      [&] {
        auto r = call("POST", "/worlds/w/evaluate");
        auto v = json::parse(r.body);
        if (r.status != 201 || !v) return false;
        if (v->at("strategies").at("zig").at("decision") != "PROMOTE") return false;
        run_id = std::string(v->at("id").as_string());
        return true;
      },
      seconds(30)))
      << server_log();
  ASSERT_EQ(call("POST", "/worlds/w/apply", fmt::format(R"({{"run_id": "{}"}})", run_id)).status,
            200);
  const std::string runner_log = dir_.file("exec/zig.runner.log");
  ASSERT_TRUE(eventually([&] { return read(runner_log).find("replayed") != std::string::npos; },
                         seconds(20)))
      << read(runner_log);
  append_bars(feed_, feed_start_, kLiveBars - 20, kLiveBars - 10, 0.01);
  // Live orders reach the exchange over the runner's own FIX session and fill.
  ASSERT_TRUE(eventually(
      [&] {
        const auto log = read(dir_.file("sim.log"));
        return log.find("|35=D|") != std::string::npos &&
               log.find("|49=QMTL-zig|") != std::string::npos &&
               log.find("|150=F|") != std::string::npos;
      },
      seconds(20)))
      << read(runner_log) << read(dir_.file("exec/zig.fix.log"));
  EXPECT_NE(read(runner_log).find("-> live (fix-"), std::string::npos) << read(runner_log);

  // Now look everywhere for the password.
  said.push_back(call("GET", "/worlds/w/broker").body);
  said.push_back(call("GET", "/worlds/w/audit").body);
  said.push_back(call("GET", "/worlds/w/execution").body);
  said.push_back(call("GET", "/metrics").body);
  ASSERT_EQ(server_->stop(), 0);
  std::vector<std::string> files{dir_.file("server.log"), dir_.file("sim.log"),
                                 dir_.file("sim.err")};
  for (const auto* tree : {"exec", "sim-store"}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.file(tree))) {
      if (e.is_regular_file()) files.push_back(e.path().string());
    }
  }
  size_t fix_files = 0;
  for (const auto& f : files) {
    EXPECT_EQ(read(f).find(secret), std::string::npos) << f;
    if (f.find("fix") != std::string::npos) ++fix_files;
  }
  EXPECT_GE(fix_files, 3u);  // the runner's session log and store were searched
  // The database itself: the audit log and settings as stored.
  std::ifstream db(dir_.file("s2.db"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(db)), std::istreambuf_iterator<char>());
  EXPECT_GT(bytes.size(), 0u);
  EXPECT_EQ(bytes.find(secret), std::string::npos);
  for (const auto& text : said) EXPECT_EQ(text.find(secret), std::string::npos) << text;
}

// A runner that keeps dying is not restarted forever: past the crash limit
// its strategy fails (ERROR: Inactive, its gates closed) and the world's
// "failure" alert goes out with the reason.
TEST_F(ExecutionE2eTest, ACrashLoopingRunnerFailsItsStrategyAndAlerts) {
  server_->stop();  // the fixture's; this test needs short restart backoffs
  server_ = std::make_unique<testing::ServerProcess>(
      QMTL_BINARY, dir_.file("s.db"), dir_.file("server.log"),
      std::vector<std::string>{"--no-auth", "--exec-dir", dir_.file("exec"), "--runner-backoff",
                               "50ms", "--runner-crash-limit", "3"});
  testing::WebhookReceiver hook;
  ASSERT_EQ(call("POST", "/worlds", R"({"id":"w"})").status, 201);
  ASSERT_EQ(call("PUT", "/worlds/w/alerts",
                 fmt::format(R"({{"webhook":"{}","events":["failure"]}})", hook.url()))
                .status,
            200);
  // Validated on the history, then run on a feed that does not exist (the
  // settings name one feed per symbol, and there is none for ZZ): every runner
  // exits at once.
  std::filesystem::create_directories(dir_.file("feeds"));
  auto set = qmtl({"world", "execution", "w", "--history", history_, "--window", "8h", "--feed",
                   dir_.file("feeds/{symbol}.csv")});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  const auto file = testing::write_file(dir_.file("zig.yml"), zigzag("zig", 1));
  ASSERT_EQ(qmtl({"strategy", "submit", file, "--world", "w"}).exit_code, 0);
  ASSERT_TRUE(eventually([&] { return state_of("zig") == "Inactive"; }, seconds(60)))
      << state_of("zig") << "\n"
      << server_log();
  EXPECT_TRUE(runner("zig").is_null());  // not started again
  const auto audit = get("/worlds/w/audit");
  std::string error;
  for (const auto& a : audit.at("records").as_array()) {
    if (a.at("event") == "ERROR") error = json::dump(a);
  }
  EXPECT_NE(error.find("its runner ended 3 times in a row"), std::string::npos) << error;
  EXPECT_NE(error.find("\"actor\":\"execution\""), std::string::npos) << error;
  EXPECT_NE(error.find("\"before\":\"DryRun\",\"after\":\"Inactive\""), std::string::npos) << error;
  const auto bodies = hook.wait_for(1, milliseconds(10'000));
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_NE(bodies[0].find("'zig' failed: its runner ended 3 times in a row"), std::string::npos)
      << bodies[0];
  EXPECT_NE(server_log().find("execution: strategy 'zig' failed"), std::string::npos);
}

TEST_F(ExecutionE2eTest, WorldsWithoutSettingsAreLeftAlone) {
  ASSERT_EQ(call("POST", "/worlds", R"({"id":"w"})").status, 201);
  const auto file = testing::write_file(dir_.file("z.yml"), zigzag("z", 1));
  auto r = testing::run_process(
      {QMTL_BINARY, "--gateway-url", server_->url(), "strategy", "submit", file, "--world", "w"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_EQ(state_of("z"), "Submitted");
  auto e = get("/worlds/w/execution");
  EXPECT_TRUE(e.at("settings").is_null());
  EXPECT_TRUE(e.at("manager").as_bool());
  EXPECT_EQ(call("GET", "/strategies/z/validation").status, 404);
  auto shown = qmtl({"world", "execution", "w"});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("has no execution settings"), std::string::npos) << shown.out;
  auto usage = qmtl({"world", "execution", "w", "--feed", feed_});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.err.find("--history is required"), std::string::npos) << usage.err;
  // Only an admin-shaped body is taken; unknown keys are refused by name.
  auto bad = call("PUT", "/worlds/w/execution",
                  fmt::format(R"({{"history": "{}", "speed": 3}})", history_));
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("speed"), std::string::npos) << bad.body;
}

// With authentication on, a runner needs an operator token for its world
// (QMTL_RUNNER_TOKEN). Without a usable one no runner is started (each would
// fail at its first request and, restarted five times, fail its strategy for
// a setting of the server): the strategy waits in DryRun and the world's
// execution says why. With one, it runs.
TEST_F(ExecutionE2eTest, WithoutAUsableRunnerTokenRunnersWaitAndSayWhy) {
  const std::string tokens =
      testing::write_private_file(dir_.file("tokens.txt"),
                                  "root admin token:root-secret-0123456789\n"
                                  "look viewer token:look-secret-0123456789\n"
                                  "away operator token:away-secret-0123456789 worlds=elsewhere\n"
                                  "run operator token:run-secret-0123456789 worlds=w\n");
  int started = 0;
  auto start = [&](std::optional<std::string> runner_token) {
    // (The fixture's server may still be starting: its exit code says nothing.)
    if (server_) server_->stop();
    server_ = std::make_unique<testing::ServerProcess>(
        QMTL_BINARY, dir_.file("s.db"), dir_.file(fmt::format("server{}.log", ++started)),
        std::vector<std::string>{"--token-file", tokens, "--exec-dir", dir_.file("exec")},
        testing::EnvOverrides{{"QMTL_RUNNER_TOKEN", std::move(runner_token)},
                              {"QMTL_API_TOKENS", std::nullopt}});
  };
  auto waits_saying = [&](const std::string& why) {
    return eventually(
        [&] {
          auto r = runner("z");
          return r.is_object() && r.at("state") == "waiting" && r.at("pid").is_null() &&
                 std::string_view(r.at("why").as_string()).find(why) != std::string_view::npos;
        },
        seconds(20));
  };
  token_ = "root-secret-0123456789";
  start(std::nullopt);
  ASSERT_EQ(call("POST", "/worlds", R"({"id":"w"})").status, 201);
  ASSERT_EQ(call("PUT", "/worlds/w/execution",
                 fmt::format(R"({{"history": "{}", "feed": "{}"}})", history_, feed_))
                .status,
            200);
  const auto file = testing::write_file(dir_.file("z.yml"), zigzag("z", 1));
  auto submitted = testing::run_process(
      {QMTL_BINARY, "--gateway-url", server_->url(), "strategy", "submit", file, "--world", "w"},
      {{"QMTL_TOKEN", token_}});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  ASSERT_TRUE(eventually([&] { return state_of("z") == "DryRun"; }, seconds(20))) << server_log();
  ASSERT_TRUE(waits_saying("QMTL_RUNNER_TOKEN is not set"))
      << boost::json::serialize(get("/worlds/w/execution"));
  // And goes on waiting: not started, not failed.
  std::this_thread::sleep_for(milliseconds(2500));
  EXPECT_EQ(state_of("z"), "DryRun");
  EXPECT_EQ(runner("z").at("starts").as_int64(), 0);
  auto shown = testing::run_process(
      {QMTL_BINARY, "--gateway-url", server_->url(), "world", "execution", "w"},
      {{"QMTL_TOKEN", token_}});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("QMTL_RUNNER_TOKEN is not set"), std::string::npos) << shown.out;
  const std::string log = read(dir_.file("server1.log"));
  EXPECT_NE(log.find("no runner will be started"), std::string::npos) << log;
  EXPECT_NE(log.find("world 'w': no runner is started"), std::string::npos) << log;

  // Tokens that would not do, each named for what is wrong with it.
  for (const auto& [runner_token, why] : std::vector<std::pair<std::string, std::string>>{
           {"no-such-secret-0123456789", "is not one of this server's tokens"},
           {"look-secret-0123456789", "is look's, a viewer: runners need the operator role"},
           {"away-secret-0123456789", "is away's, which may not touch world 'w'"}}) {
    start(runner_token);
    EXPECT_TRUE(waits_saying(why))
        << runner_token << ": " << boost::json::serialize(get("/worlds/w/execution"));
    EXPECT_EQ(state_of("z"), "DryRun");
  }
  // An operator token for the world: the runner starts.
  start("run-secret-0123456789");
  EXPECT_TRUE(eventually(
      [&] {
        auto r = runner("z");
        return r.is_object() && r.at("state") == "running" && r.at("pid").is_int64();
      },
      seconds(20)))
      << boost::json::serialize(get("/worlds/w/execution"));
  EXPECT_EQ(state_of("z"), "DryRun");

  // A second runner started by hand is warned that the server runs one; the
  // server's own runner (the same command) is not.
  const auto pid = runner("z").at("pid").as_int64();
  auto by_hand = testing::run_process(
      {QMTL_BINARY, "--gateway-url", server_->url(), "run", "z", "--feed", feed_},
      {{"QMTL_TOKEN", "run-secret-0123456789"}});
  EXPECT_NE(
      by_hand.err.find(fmt::format("warning: the server already runs strategy 'z' (pid {})", pid)),
      std::string::npos)
      << by_hand.err;
  const std::string runner_log = read(dir_.file("exec/z.runner.log"));
  EXPECT_NE(runner_log.find("qmtl run: strategy 'z' in world 'w'"), std::string::npos)
      << runner_log;
  EXPECT_EQ(runner_log.find("already runs"), std::string::npos) << runner_log;
}

}  // namespace
}  // namespace qmtl
