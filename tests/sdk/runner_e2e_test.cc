// Runner::run against the real server binary: a declarative strategy submitted
// with the CLI, backtested on the example data, then run on a followed CSV feed
// while the world promotes it (orders move from paper to the live broker),
// an operator closes its gate (blocked) and the world demotes it (back to
// paper); and the gate failing closed when the server is frozen (stale) or
// killed (disconnected) mid-run, then reopening when it is back.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "qmtl/sdk/runner.h"
#include "qmtl/store/store.h"
#include "qmtl/world/world_service.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace qmtl::sdk {
namespace {

using lifecycle::StrategyEvent;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Buys after a rising bar, sells after a falling one: with closes that zigzag,
// every bar after the first decides an order.
const char* kZigzag =
    "id: zig\n"
    "inputs: {close: {interval: 1m}}\n"
    "nodes: {r: {indicator: returns, input: close}, up: {indicator: gt, input: r, value: 0}}\n"
    "orders: {signal: up, symbol: ZZ, qty: 1}\n";

// The live broker: the outside world, recorded. It fills each order at once.
class RecordingBroker final : public broker::Broker {
 public:
  Result<std::string> submit(const broker::Order& o) override {
    std::lock_guard lock(mu_);
    orders_.push_back(o);
    const std::string id = fmt::format("live-{}", orders_.size());
    fills_.push_back({.ts = o.ts,
                      .order_id = id,
                      .symbol = o.symbol,
                      .side = o.side,
                      .qty = o.qty,
                      .price = 100});
    return id;
  }
  Result<void> cancel(std::string_view) override {
    return make_error(ErrorCode::kNotFound, "nothing to cancel");
  }
  std::vector<broker::Fill> take_fills() override {
    std::lock_guard lock(mu_);
    return std::exchange(fills_, {});
  }
  broker::Account account() const override { return {}; }
  size_t orders() const {
    std::lock_guard lock(mu_);
    return orders_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<broker::Order> orders_;
  std::vector<broker::Fill> fills_;
};

// Runner::run on its own thread, with what it reports kept for the test.
class RunnerThread {
 public:
  RunnerThread(Strategy strategy, std::string feed_path, RunOptions options)
      : feed_path_(std::move(feed_path)) {
    options.stop = stop_.get_token();
    options.on_order = [this](const OrderRecord& r) {
      std::lock_guard lock(mu_);
      orders_.push_back(r);
      cv_.notify_all();
    };
    options.on_gate = [this](const OrderGate::View& v) {
      std::lock_guard lock(mu_);
      gate_ = v;
      ++gate_updates_;
      cv_.notify_all();
    };
    options.log = [](std::string_view line) { fmt::print(stderr, "runner: {}\n", line); };
    std::ofstream(feed_path_) << "date,open,high,low,close,volume\n";
    auto feed = CsvBarFeed::open_file(feed_path_, "ZZ", true);
    EXPECT_TRUE(feed);
    feed_ = std::move(*feed);
    thread_ = std::thread([this, s = std::move(strategy), o = std::move(options)]() mutable {
      auto r = Runner::run(std::move(s), *feed_, o);
      std::lock_guard lock(mu_);
      result_ = std::move(r);
      cv_.notify_all();
    });
  }
  ~RunnerThread() {
    if (thread_.joinable()) finish();
  }

  // Appends a bar one minute after the previous one and waits for the order it
  // decides; the zigzag makes one per bar after the first, as long as every
  // order moved the position.
  OrderRecord bar() {
    const size_t before = order_count();
    append_bar();
    std::unique_lock lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, seconds(10), [&] { return orders_.size() > before; }))
        << "no order after bar " << bars_;
    return orders_.empty() ? OrderRecord{} : orders_.back();
  }
  void append_bar() {
    const TimePoint ts = start_ + std::chrono::minutes(bars_);
    const double close = bars_ % 2 == 0 ? 100 : 101;
    ++bars_;
    std::ofstream(feed_path_, std::ios::app) << fmt::format(
        "{},{},{},{},{},1000000\n", format_timestamp(ts), close, close, close, close);
  }
  // Waits until the gate view satisfies `pred`.
  bool wait_gate(const std::function<bool(const OrderGate::View&)>& pred,
                 milliseconds timeout = milliseconds(10'000)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return gate_ && pred(*gate_); });
  }
  // Like wait_gate, but only a view the runner reports after this call counts:
  // a view taken before the server froze still says "fresh".
  bool wait_next_gate(const std::function<bool(const OrderGate::View&)>& pred,
                      milliseconds timeout = milliseconds(10'000)) {
    std::unique_lock lock(mu_);
    const uint64_t seen = gate_updates_;
    return cv_.wait_for(lock, timeout,
                        [&] { return gate_updates_ > seen && gate_ && pred(*gate_); });
  }
  size_t order_count() {
    std::lock_guard lock(mu_);
    return orders_.size();
  }
  Result<RunSummary> finish() {
    stop_.request_stop();
    thread_.join();
    std::lock_guard lock(mu_);
    return result_.value_or(make_error(ErrorCode::kInternal, "no result"));
  }

 private:
  std::string feed_path_;
  // Recent bars, one minute apart, inside the world's evaluation window.
  TimePoint start_ =
      std::chrono::floor<std::chrono::minutes>(SystemClock().now()) - std::chrono::minutes(30);
  int bars_ = 0;
  std::unique_ptr<CsvBarFeed> feed_;
  std::stop_source stop_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<OrderRecord> orders_;
  std::optional<OrderGate::View> gate_;
  uint64_t gate_updates_ = 0;
  std::optional<Result<RunSummary>> result_;
  std::thread thread_;
};

bool live_and_open(const OrderGate::View& v) {
  return v.connected && v.fresh && v.strategy_state == "Live" && v.entries[0] &&
         v.entries[0]->active && !v.entries[0]->frozen;
}

class RunnerE2eTest : public ::testing::Test {
 protected:
  void start_server(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--no-auth", "--heartbeat", "100ms", "--activation-ttl", "1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<testing::ServerProcess>(QMTL_BINARY, dir_.file("s.db"),
                                                       dir_.file("server.log"), args);
  }
  testing::ProcessResult qmtl(std::vector<std::string> args) {
    args.insert(args.begin(), QMTL_BINARY);
    return testing::run_process(
        args, {{"QMTL_CONFIG", dir_.file("none.yml")},
               {"QMTL_GATEWAY_URL", server_ ? server_->url() : std::string("http://127.0.0.1:9")}});
  }
  HttpReply call(const std::string& method, const std::string& path, const std::string& body = "",
                 const std::string& content_type = "application/json") {
    auto r =
        http_request(server_->url(),
                     {.method = method, .path = path, .body = body, .content_type = content_type});
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : HttpReply{};
  }
  // Applies lifecycle events through the service on the server's database
  // while no server runs: passing validation is not an API operation.
  void with_service(const std::function<void(world::WorldService&)>& fn) {
    auto store = std::move(*store::open_store(fmt::format("sqlite:{}", dir_.file("s.db"))));
    SystemClock clock;
    world::WorldService s(*store, clock);
    fn(s);
  }
  Strategy submitted_strategy() {
    auto got = call("GET", "/strategies/zig");
    EXPECT_EQ(got.status, 200) << got.body;
    auto doc = json::parse(got.body);
    auto s = parse_strategy(doc->at("spec"));
    EXPECT_TRUE(s) << s.error().message;
    return std::move(*s);
  }
  RunOptions options(broker::Broker* live) {
    return {.gateway_url = server_->url(),
            .world_id = "w",
            .strategy_id = "zig",
            .model = {.volume_limit = 0},
            .live = live,
            .post_every = milliseconds(50),
            .backoff_min = milliseconds(50),
            .backoff_max = milliseconds(400),
            .flush_timeout = milliseconds(3000)};
  }
  // Evaluates and applies until the strategy reaches `state` (the runner's
  // records arrive in batches, so the first evaluations may see too few).
  void evaluate_until(const std::string& state) {
    for (int i = 0; i < 50; ++i) {
      auto r = call("POST", "/worlds/w/evaluate", R"({"apply":true})");
      ASSERT_EQ(r.status, 201) << r.body;
      auto s = json::parse(call("GET", "/strategies/zig").body);
      if (s->at("state").as_string() == state) return;
      std::this_thread::sleep_for(milliseconds(100));
    }
    FAIL() << "zig never reached " << state;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(RunnerE2eTest, SubmittedBacktestedThenPaperLiveBlockedAndBackToPaper) {
  start_server();
  const auto strategy_file = testing::write_file(dir_.file("zig.yml"), kZigzag);
  const auto promote = testing::write_file(
      dir_.file("promote.yml"),
      "gates: {promote: 'periods >= 3', demote: 'periods < 3'}\nevaluation: {window: 3m}\n");
  auto made = qmtl({"world", "create", "w", "--policy-file", promote});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto submitted = qmtl({"strategy", "submit", strategy_file, "--world", "w"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  // The same file backtests on the example data.
  auto bt = qmtl({"--output", "json", "backtest", strategy_file, "--data",
                  std::string(QMTL_SOURCE_DIR) + "/examples/data/ttrc_ohlcv.csv"});
  ASSERT_EQ(bt.exit_code, 0) << bt.err;
  EXPECT_GT(json::parse(bt.out)->at("orders").as_int64(), 100);

  server_->stop();
  with_service([](world::WorldService& s) {
    ASSERT_TRUE(s.apply_strategy_event("zig", StrategyEvent::kSubmit, "validator", ""));
    ASSERT_TRUE(s.apply_strategy_event("zig", StrategyEvent::kValidationPassed, "validator", ""));
  });
  start_server();

  RecordingBroker live;
  RunnerThread runner(submitted_strategy(), dir_.file("feed.csv"), options(&live));
  ASSERT_TRUE(runner.wait_gate([](const auto& v) { return v.strategy_state == "DryRun"; }));
  runner.append_bar();
  for (int i = 0; i < 4; ++i) {
    const auto o = runner.bar();
    EXPECT_EQ(o.route, Route::kPaper) << o.reason;
    EXPECT_FALSE(o.order_id.empty());
  }
  EXPECT_EQ(live.orders(), 0u);

  // The world promotes it on the records the runner posted: orders go live.
  evaluate_until("Live");
  ASSERT_TRUE(runner.wait_gate(live_and_open));
  for (int i = 0; i < 3; ++i) {
    const auto o = runner.bar();
    EXPECT_EQ(o.route, Route::kLive) << o.reason;
    EXPECT_EQ(o.order_id.rfind("live-", 0), 0u);
  }
  EXPECT_EQ(live.orders(), 3u);

  // An operator closes the long gate (the side zig trades): blocked, not
  // paper; it stays Live (closing the short side as well would demote it).
  ASSERT_EQ(
      call("PUT", "/worlds/w/activation", R"({"strategy":"zig","side":"long","active":false})")
          .status,
      200);
  ASSERT_TRUE(runner.wait_gate([](const auto& v) {
    return v.strategy_state == "Live" && v.entries[0] && !v.entries[0]->active;
  }));
  const auto closed = runner.bar();
  EXPECT_EQ(closed.route, Route::kBlocked);
  EXPECT_EQ(closed.reason, "the gate is closed");
  EXPECT_EQ(live.orders(), 3u);

  // A policy that demotes it: back to paper.
  const auto demote = testing::write_file(
      dir_.file("demote.yml"),
      "gates: {promote: 'periods >= 1000000', demote: 'periods >= 1'}\nevaluation: {window: 3m}\n");
  ASSERT_EQ(qmtl({"world", "policy", "set", "w", "--policy-file", demote}).exit_code, 0);
  evaluate_until("DryRun");
  ASSERT_TRUE(runner.wait_gate([](const auto& v) { return v.strategy_state == "DryRun"; }));
  // The blocked sale left the position long, which is what the next rising bar
  // asks for: no order (the rule trades towards a target, not per bar). The
  // falling bar after it sells, on paper.
  runner.append_bar();
  const auto back = runner.bar();
  EXPECT_EQ(back.route, Route::kPaper) << back.reason;
  EXPECT_EQ(back.order.side, broker::Side::kSell);
  EXPECT_EQ(live.orders(), 3u);

  auto summary = runner.finish();
  ASSERT_TRUE(summary) << summary.error().message;
  EXPECT_EQ(summary->bars, 11u);
  EXPECT_EQ(summary->orders, 9u);
  EXPECT_EQ(summary->live, 3u);
  EXPECT_EQ(summary->paper, 5u);
  EXPECT_EQ(summary->blocked, 1u);
  EXPECT_EQ(summary->points_posted, 11u);
  EXPECT_EQ(summary->records_dropped, 0u);
  // The live fills were posted with the paper ones.
  EXPECT_GE(summary->fills_posted, 3u);
  // Every step is in the world's audit log, in order.
  const auto audit = call("GET", "/worlds/w/audit").body;
  const auto promote_at = audit.find("\"PROMOTE\"");
  const auto manual_at = audit.find("ACTIVATION_SET");
  const auto demote_at = audit.find("\"DEMOTE\"");
  ASSERT_NE(promote_at, std::string::npos);
  ASSERT_NE(manual_at, std::string::npos);
  ASSERT_NE(demote_at, std::string::npos);
  EXPECT_LT(promote_at, manual_at);
  EXPECT_LT(manual_at, demote_at);
}

TEST_F(RunnerE2eTest, ServerFrozenOrKilledMidRunBlocksLiveOrdersThenRecovers) {
  // A Live strategy with open gates, set up before the server starts.
  with_service([](world::WorldService& s) {
    ASSERT_TRUE(s.create_world({.id = "w"}));
    ASSERT_TRUE(s.submit_strategy({.id = "zig", .world = "w", .spec = R"({
        "inputs": {"close": {"interval": "1m"}},
        "nodes": {"r": {"indicator": "returns", "input": "close"},
                  "up": {"indicator": "gt", "input": "r", "value": 0}},
        "orders": {"signal": "up", "symbol": "ZZ", "qty": 1}})"}));
    for (auto e :
         {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed, StrategyEvent::kPromote}) {
      ASSERT_TRUE(s.apply_strategy_event("zig", e, "setup", ""));
    }
    for (const char* side : {"long", "short"}) {
      ASSERT_TRUE(s.set_activation("w", "zig", side, true, "setup", ""));
    }
  });
  start_server();
  const std::string port = server_->url().substr(server_->url().rfind(':') + 1);
  RecordingBroker live;
  RunnerThread runner(submitted_strategy(), dir_.file("feed.csv"), options(&live));
  ASSERT_TRUE(runner.wait_gate(live_and_open));
  runner.append_bar();
  EXPECT_EQ(runner.bar().route, Route::kLive);

  // Frozen: the connection stays up but nothing arrives. Within the TTL (1 s)
  // the decision is stale and live orders stop.
  const pid_t pid = server_->child().pid();
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  const auto frozen_at = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(milliseconds(1100));
  const auto stale = runner.bar();
  EXPECT_EQ(stale.route, Route::kBlocked);
  EXPECT_TRUE(stale.reason.find("stale") != std::string::npos ||
              stale.reason.find("disconnected") != std::string::npos)
      << stale.reason;
  EXPECT_LT(std::chrono::steady_clock::now() - frozen_at, seconds(3));
  ASSERT_EQ(::kill(pid, SIGCONT), 0);
  ASSERT_TRUE(runner.wait_next_gate(live_and_open));
  // The blocked sale left the position as the next bar wants it (no order);
  // the one after trades live.
  runner.append_bar();
  EXPECT_EQ(runner.bar().route, Route::kLive);

  // Killed: the stream breaks and orders are blocked at once.
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(runner.wait_gate([](const auto& v) { return !v.connected; }));
  const auto gone = runner.bar();
  EXPECT_EQ(gone.route, Route::kBlocked);
  EXPECT_EQ(gone.reason, "disconnected from the server");

  // Back on the same port: the runner reconnects by itself and trades again.
  server_.reset();
  start_server({"--port", port});
  ASSERT_TRUE(runner.wait_gate(live_and_open, milliseconds(15'000)));
  runner.append_bar();
  EXPECT_EQ(runner.bar().route, Route::kLive);

  auto summary = runner.finish();
  ASSERT_TRUE(summary) << summary.error().message;
  EXPECT_EQ(summary->live, 3u);
  EXPECT_EQ(summary->blocked, 2u);
  EXPECT_GE(summary->connects, 2u);
  EXPECT_EQ(live.orders(), 3u);
}

}  // namespace
}  // namespace qmtl::sdk
