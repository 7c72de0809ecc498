// Several `qmtl serve` replicas on one PostgreSQL database, as real processes:
// one scheduler leader with failover and each due time evaluated exactly once,
// an apply left by a killed server finished or rolled back by another, and
// activation events reaching the clients of every replica.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cctype>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <tuple>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "qmtl/world/world_service.h"
#include "tests/support/process.h"
#include "tests/support/sse_client.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl {
namespace {

using lifecycle::StrategyEvent;
using lifecycle::StrategyState;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(testing::on_postgres()); }

  testing::ServerProcess& start(const std::string& name, std::vector<std::string> extra = {}) {
    logs_.push_back(dir_.file(name + ".log"));
    std::vector<std::string> args{"--no-auth", "--scheduler", "true",  "--scheduler-poll",
                                  "50ms",      "--execution", "false", "--heartbeat",
                                  "200ms"};
    args.insert(args.end(), extra.begin(), extra.end());
    replicas_.push_back(
        std::make_unique<testing::ServerProcess>(QMTL_BINARY, url_, logs_.back(), args));
    return *replicas_.back();
  }
  int request(const testing::ServerProcess& s, const std::string& method, const std::string& path,
              const std::string& body = "", const std::string& type = "application/json") {
    auto r =
        http_request(s.url(), {.method = method, .path = path, .body = body, .content_type = type});
    EXPECT_TRUE(r) << r.error().message;
    return r ? r->status : 0;
  }
  boost::json::value get(const testing::ServerProcess& s, const std::string& path) {
    auto r = http_request(s.url(), {.path = path});
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : r.error().message);
    auto v = r ? json::parse(r->body) : Result<boost::json::value>(boost::json::value());
    return v ? *v : boost::json::value();
  }
  // The replica whose log does not say it stands by (the others do within a pass).
  size_t leader() {
    for (int i = 0; i < 100; ++i) {
      std::vector<size_t> leading;
      for (size_t k = 0; k < replicas_.size(); ++k) {
        if (replicas_[k] && slurp(logs_[k]).find("standing by") == std::string::npos) {
          leading.push_back(k);
        }
      }
      if (leading.size() == 1) return leading[0];
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << "no single leader";
    return 0;
  }

  testing::TempDir dir_;
  const std::string url_ = testing::fresh_store_url(dir_, "");
  std::vector<std::string> logs_;
  std::vector<std::unique_ptr<testing::ServerProcess>> replicas_;
};

TEST_F(ReplicasTest, ThreeReplicasEvaluateEachDueTimeOnceAcrossAFailover) {
  auto& first = start("r0");
  ASSERT_EQ(request(first, "POST", "/worlds", R"({"id":"w"})"), 201);
  ASSERT_EQ(
      request(first, "POST", "/worlds/w/policy",
              "gates: {promote: 'return >= 0.01'}\nevaluation: {every: 1s}\n", "application/yaml"),
      201);
  start("r1");
  start("r2");
  // The schedule as another replica reads it: the first due time.
  std::optional<TimePoint> t0;
  for (int i = 0; i < 100 && !t0; ++i) {
    auto s = get(*replicas_[1], "/worlds/w/schedule");
    if (s.as_object().contains("next_run") && s.at("next_run").is_string()) {
      t0 = *parse_timestamp(std::string(s.at("next_run").as_string()));
    } else {
      std::this_thread::sleep_for(milliseconds(50));
    }
  }
  ASSERT_TRUE(t0);
  const size_t lead = leader();
  // Half way, the leader dies (SIGKILL: no goodbye); another takes over.
  std::this_thread::sleep_until(std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          (*t0 + milliseconds(4500)).time_since_epoch())));
  ASSERT_EQ(replicas_[lead]->child().stop(SIGKILL, seconds(5)), 128 + 9);
  replicas_[lead].reset();
  std::this_thread::sleep_until(std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          (*t0 + milliseconds(9500)).time_since_epoch())));
  for (auto& r : replicas_) {
    if (r) r->child().stop(SIGSTOP, milliseconds(0));  // freeze all at once, then read
  }
  auto store = store::open_store(url_);
  ASSERT_TRUE(store) << store.error().message;
  auto runs = (*store)->list_evaluation_runs("w", 100);
  ASSERT_TRUE(runs);
  ASSERT_FALSE(runs->empty());
  // Each second is one due time: one run in each, none twice, and all of the
  // ten from t0 to t0+9s there. (Under load t0 as read may already be the
  // second due time; a run before it is counted in its own second.)
  std::map<int64_t, int> per_second;
  for (const auto& r : *runs) {
    const auto ms = std::chrono::duration_cast<milliseconds>(r.started_at - *t0).count();
    ++per_second[ms >= 0 ? ms / 1000 : (ms - 999) / 1000];
  }
  for (const auto& [second, n] : per_second) {
    EXPECT_EQ(n, 1) << n << " runs in second " << second << " after t0";
  }
  for (int64_t k = 0; k < 10; ++k) EXPECT_EQ(per_second.count(k), 1u) << "no run in second " << k;
  EXPECT_EQ(per_second.rbegin()->first, 9) << "a run after t0+9s";
  std::cout << runs->size() << " runs, " << per_second.size() << " distinct seconds\n";
  size_t took_over = 0;
  for (size_t k = 0; k < logs_.size(); ++k) {
    if (k != lead && slurp(logs_[k]).find("now leads the scheduler") != std::string::npos) {
      ++took_over;
    }
  }
  EXPECT_EQ(took_over, 1u) << "exactly one standby takes over";
  for (auto& r : replicas_) {
    if (r) r->child().stop(SIGKILL, seconds(5));
  }
}

TEST_F(ReplicasTest, AChangeOnOneReplicaReachesEventStreamsAndReadsOnTheOthers) {
  auto& a = start("a");
  auto& b = start("b");
  ASSERT_EQ(request(a, "POST", "/worlds", R"({"id":"w"})"), 201);
  ASSERT_EQ(request(a, "POST", "/strategies", R"({"id":"s","world":"w","spec":{"nodes":[]}})"),
            201);
  // b serves the activation set (and caches it) before the change.
  ASSERT_EQ(get(b, "/worlds/w/activation").at("entries").as_array().size(), 0u);
  testing::SseClient stream(b.url(), "/worlds/w/events", {});
  ASSERT_EQ(stream.status(), 200);
  // The stream subscribes after its headers and before its snapshot: a change
  // made before the snapshot arrives would be in it, not an event after it.
  auto snap = stream.next_non_heartbeat(milliseconds(5000));
  ASSERT_TRUE(snap);
  ASSERT_EQ(snap->type, "snapshot");
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_EQ(request(a, "PUT", "/worlds/w/activation",
                    R"({"strategy":"s","side":"long","active":false,"reason":"ops"})"),
            200);
  std::optional<testing::SseEvent> e;
  for (;;) {
    e = stream.next_non_heartbeat(milliseconds(3000));
    ASSERT_TRUE(e) << "no event on replica b";
    if (e->type == "activation") break;
  }
  const auto took = std::chrono::steady_clock::now() - sent;
  EXPECT_LT(took, milliseconds(1000));
  std::cout << "change on replica a -> event on replica b: "
            << std::chrono::duration_cast<std::chrono::microseconds>(took).count() << " us\n";
  EXPECT_NE(e->data.find("\"active\":false"), std::string::npos) << e->data;
  // b's cached activation set was dropped: it serves the new entry.
  auto entries = get(b, "/worlds/w/activation").at("entries").as_array();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_FALSE(entries[0].at("active").as_bool());
}

// PostgreSQL itself killed (SIGKILL to the postmaster) while two replicas
// evaluate and apply under load, and one replica killed as well: after
// PostgreSQL's crash recovery every apply acknowledged to a client is there
// and complete, no apply is left half made, no gate is frozen, and each gate
// is open exactly when its strategy is Live (the checks of the SQLite crash
// tests). A cluster of its own, durable as in production (the shared one
// serves the other tests and runs without fsync).
TEST_F(ReplicasTest, PostgresKilledUnderApplyLoadLosesNoAcknowledgedApply) {
  const std::string url_file = dir_.file("own-pg.url");
  auto cluster = [&](const std::string& action) {
    return testing::run_process({QMTL_SOURCE_DIR "/scripts/pg_test_cluster.sh", action, url_file},
                                {{"QMTL_PG_DURABLE", "1"}});
  };
  const auto up = cluster("start");
  ASSERT_EQ(up.exit_code, 0) << up.err;
  struct Cleanup {
    std::function<void()> f;
    ~Cleanup() { f(); }
  } cleanup{[&] {
    replicas_.clear();
    cluster("stop");
  }};
  std::string url = slurp(url_file);
  while (!url.empty() && std::isspace(static_cast<unsigned char>(url.back()))) url.pop_back();
  constexpr int kStrategies = 4;
  {
    auto store = store::open_store(url);
    ASSERT_TRUE(store) << store.error().message;
    SystemClock clock;
    world::WorldService svc(**store, clock);
    ASSERT_TRUE(svc.create_world({.id = "w"}));
    ASSERT_TRUE(svc.add_policy("w", "gates: {promote: 'return >= 0.01'}\nevaluation: {window: 2w}",
                               "alice"));
    for (int k = 0; k < kStrategies; ++k) {
      const std::string id = fmt::format("s{}", k);
      ASSERT_TRUE(svc.submit_strategy({.id = id, .world = "w", .spec = "{}"}));
      for (auto e : {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed}) {
        ASSERT_TRUE(svc.apply_strategy_event(id, e, "setup", ""));
      }
      std::vector<store::PerformancePoint> pts;
      double eq = 100;
      for (int d = 30; d >= 0; --d) {
        pts.push_back({clock.now() - std::chrono::hours(24 * d), eq});
        eq *= 1.003 + (d % 2 == 0 ? 0.001 : -0.001);
      }
      ASSERT_TRUE(svc.record_performance(id, pts, {}));
    }
  }
  std::vector<std::string> urls;
  for (const char* name : {"a", "b"}) {
    logs_.push_back(dir_.file(fmt::format("{}.log", name)));
    replicas_.push_back(std::make_unique<testing::ServerProcess>(
        QMTL_BINARY, url, logs_.back(),
        std::vector<std::string>{"--no-auth", "--scheduler", "true", "--scheduler-poll", "50ms",
                                 "--execution", "false", "--heartbeat", "200ms"}));
    urls.push_back(replicas_.back()->url());
  }
  // The load: each round demotes a Live strategy by hand (an apply of its
  // own) and evaluates with apply (which promotes it again), on the replicas
  // in turn. What a client was told is done must be in the database after.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> acknowledged;  // runs whose apply answered "Done"
  int answered = 0, refused = 0;
  std::thread load([&] {
    for (int i = 0; !stop; ++i) {
      const std::string& base = urls[static_cast<size_t>(i) % urls.size()];
      (void)http_request(base, {.method = "POST",
                                .path = fmt::format("/strategies/s{}/demote", i % kStrategies),
                                .body = R"({"reason": "load"})",
                                .timeout = seconds(5)});
      auto r = http_request(base, {.method = "POST",
                                   .path = "/worlds/w/evaluate",
                                   .body = R"({"apply": true})",
                                   .timeout = seconds(5)});
      std::lock_guard lock(mu);
      auto body = r && r->status == 201 ? json::parse(r->body) : Result<boost::json::value>();
      if (!body || !body->is_object() || !body->as_object().contains("apply")) {
        ++refused;
        std::this_thread::sleep_for(milliseconds(20));
        continue;
      }
      ++answered;
      const auto& apply = body->at("apply").as_object();
      if (apply.at("phase") == "Done") {
        acknowledged.push_back(std::string(body->at("id").as_string()));
      }
    }
  });
  // Stopped and joined on every way out of the test (a failed ASSERT returns).
  struct Join {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Join() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join{stop, load};
  auto acknowledged_count = [&] {
    std::lock_guard lock(mu);
    return acknowledged.size();
  };
  auto wait_for_acks = [&](size_t n) {
    for (int i = 0; i < 400 && acknowledged_count() < n; ++i) {
      std::this_thread::sleep_for(milliseconds(25));
    }
    return acknowledged_count() >= n;
  };
  EXPECT_TRUE(wait_for_acks(5)) << slurp(logs_[0]);
  // PostgreSQL dies in the middle of it, and comes back from its WAL.
  const auto crashed = cluster("crash");
  ASSERT_EQ(crashed.exit_code, 0) << crashed.err;
  const size_t before_crash = acknowledged_count();
  std::this_thread::sleep_for(milliseconds(500));
  const auto restarted = cluster("restart");
  ASSERT_EQ(restarted.exit_code, 0) << restarted.err;
  EXPECT_TRUE(wait_for_acks(before_crash + 5)) << slurp(logs_[0]) << slurp(logs_[1]);
  // Then replica b dies, its applies in flight.
  ASSERT_EQ(replicas_[1]->child().stop(SIGKILL, seconds(5)), 128 + 9);
  const size_t before_kill = acknowledged_count();
  EXPECT_TRUE(wait_for_acks(before_kill + 3)) << slurp(logs_[0]);
  // And PostgreSQL once more.
  ASSERT_EQ(cluster("crash").exit_code, 0);
  std::this_thread::sleep_for(milliseconds(200));
  ASSERT_EQ(cluster("restart").exit_code, 0);
  EXPECT_TRUE(wait_for_acks(acknowledged_count() + 3)) << slurp(logs_[0]);
  stop = true;
  load.join();
  std::cout << "applies acknowledged " << acknowledged.size() << ", evaluations answered "
            << answered << ", refused or failed " << refused << "\n";

  auto store = store::open_store(url);
  ASSERT_TRUE(store) << store.error().message;
  // Every acknowledged apply is complete.
  for (const auto& run : acknowledged) {
    auto e = (*store)->get_apply(run);
    ASSERT_TRUE(e && *e) << run;
    EXPECT_EQ((*e)->phase, store::ApplyPhase::kDone) << run;
  }
  // No apply is left half made once the leader has recovered the dead
  // replica's (within a pass or two), no gate is frozen, and each is open
  // exactly when its strategy is Live. The surviving replica's scheduler
  // still evaluates and applies every second, and mid-apply a gate is
  // rightly frozen: the checks are read again until one reading is quiet.
  std::vector<std::string> problems;
  std::map<std::string, StrategyState> states;
  for (int i = 0; i < 200; ++i) {
    problems.clear();
    auto runs = (*store)->list_evaluation_runs("w", 100000, TimePoint::min(), false);
    const auto strategies = (*store)->list_strategies("w");
    const auto gates = (*store)->list_activations("w");
    ASSERT_TRUE(runs && strategies && gates);
    for (const auto& r : *runs) {
      auto e = (*store)->get_apply(r.id);
      if (e && *e &&
          ((*e)->phase == store::ApplyPhase::kFrozen ||
           (*e)->phase == store::ApplyPhase::kSwitched)) {
        problems.push_back("apply of " + r.id + " unfinished");
      }
    }
    states.clear();
    for (const auto& st : *strategies) states[st.id] = st.state;
    for (const auto& a : *gates) {
      if (a.frozen) problems.push_back("gate of " + a.strategy_id + " frozen");
      if (a.active != (states.at(a.strategy_id) == StrategyState::kLive)) {
        problems.push_back("gate of " + a.strategy_id + " disagrees with its state");
      }
    }
    if (problems.empty()) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(problems.empty()) << fmt::format("{}", fmt::join(problems, ", "));
  // The surviving replica serves what the database says.
  const auto served = get(*replicas_[0], "/worlds/w/activation");  // held: see above
  for (const auto& a : served.at("entries").as_array()) {
    const std::string id(a.at("strategy").as_string());
    EXPECT_EQ(a.at("active").as_bool(), states.at(id) == StrategyState::kLive) << id;
  }
}

// (phase where the applying server stops, whether it is the scheduler leader)
using MidApply = std::tuple<std::string, bool>;

class KilledMidApply : public ReplicasTest, public ::testing::WithParamInterface<MidApply> {
 protected:
  // A world where `up` is promoted and `down` demoted by run w-1.
  std::string evaluated_world() {
    auto store = store::open_store(url_);
    EXPECT_TRUE(store);
    FakeClock clock(*parse_timestamp("2026-03-01T00:00:00Z"));
    world::WorldService svc(**store, clock);
    EXPECT_TRUE(svc.create_world({.id = "w"}));
    EXPECT_TRUE(svc.add_policy(
        "w", "gates: {promote: 'return >= 0.03', demote: 'return < 0'}\nevaluation: {window: 2w}",
        "alice"));
    const auto add = [&](const std::string& id, double daily, std::vector<StrategyEvent> events) {
      ASSERT_TRUE(svc.submit_strategy({.id = id, .world = "w", .spec = "{}"}));
      for (auto e : events) ASSERT_TRUE(svc.apply_strategy_event(id, e, "setup", ""));
      std::vector<store::PerformancePoint> pts;
      double eq = 100;
      for (int d = 30; d >= 0; --d) {
        pts.push_back({clock.now() - std::chrono::hours(24 * d), eq});
        eq *= 1 + daily + (d % 2 == 0 ? 0.001 : -0.001);
      }
      ASSERT_TRUE(svc.record_performance(id, pts, {}));
    };
    add("up", 0.003, {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed});
    add("down", -0.003,
        {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed, StrategyEvent::kPromote});
    auto run = svc.evaluate_world("w", "test");
    EXPECT_TRUE(run) << run.error().message;
    return run ? run->id : "";
  }
  std::optional<store::ApplyPhase> phase(const std::string& run) {
    auto store = store::open_store(url_);
    auto e = (*store)->get_apply(run);
    if (!e || !*e) return std::nullopt;
    return (*e)->phase;
  }
};

TEST_P(KilledMidApply, AnotherReplicaFinishesOrRollsBackAndTheAuditSaysSo) {
  const auto& [at, leads] = GetParam();
  const std::string run = evaluated_world();
  ASSERT_FALSE(run.empty());
  // Not the leader: an apply asked of one replica over the API; the other
  // replicas run, one of them leads.
  if (!leads) {
    start("a");
    start("b");
  }
  // The applying server stops in the middle (SIGSTOP: alive, its database
  // session holding its claim on the apply, and the leadership if it leads).
  std::vector<std::string> argv{APPLY_CRASH_HELPER, url_, "w", run, "pause-" + at};
  if (leads) argv.push_back("lead");
  testing::ChildProcess applier(argv, dir_.file("applier.log"));
  const auto paused = at == "frozen" ? store::ApplyPhase::kFrozen : store::ApplyPhase::kSwitched;
  for (int i = 0; i < 200 && phase(run) != paused; ++i) {
    std::this_thread::sleep_for(milliseconds(25));
  }
  ASSERT_EQ(phase(run), paused) << slurp(dir_.file("applier.log"));
  if (leads) {
    start("a");
    start("b");
  }
  // The replicas leave a live server's apply alone, however long it takes.
  std::this_thread::sleep_for(milliseconds(1000));
  ASSERT_EQ(phase(run), paused) << "a replica recovered an apply its owner was still making";
  if (leads) {
    for (const auto& log : logs_) {
      EXPECT_NE(slurp(log).find("another server leads the scheduler"), std::string::npos) << log;
    }
  }
  // Now it dies. The leader (a new one, if the dead server led) recovers the
  // apply within a pass or two.
  ASSERT_EQ(applier.stop(SIGKILL, seconds(5)), 128 + 9);
  const auto killed = std::chrono::steady_clock::now();
  const auto done = at == "frozen" ? store::ApplyPhase::kRolledBack : store::ApplyPhase::kDone;
  while (phase(run) != done && std::chrono::steady_clock::now() - killed < seconds(10)) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  const auto took = std::chrono::steady_clock::now() - killed;
  ASSERT_EQ(phase(run), done);
  std::cout << "apply recovered " << std::chrono::duration_cast<milliseconds>(took).count()
            << " ms after its server was killed\n";
  EXPECT_LT(took, milliseconds(2000))
      << "recovered after " << std::chrono::duration_cast<milliseconds>(took).count() << " ms";
  if (leads) {
    // The scheduler logs its pass after the pass, so after the recovery.
    size_t took_over = 0;
    for (int i = 0; i < 100 && took_over == 0; ++i) {
      if (i > 0) std::this_thread::sleep_for(milliseconds(20));
      for (const auto& log : logs_) {
        if (slurp(log).find("now leads the scheduler") != std::string::npos) ++took_over;
      }
    }
    EXPECT_EQ(took_over, 1u) << "exactly one replica takes the leadership over";
  }
  auto audit = get(*replicas_[0], "/worlds/w/audit").at("records").as_array();
  const auto& last = audit.back();
  EXPECT_EQ(last.at("event").as_string(), at == "frozen" ? "APPLY_ROLLED_BACK" : "APPLY_COMPLETED");
  EXPECT_EQ(last.at("actor").as_string(), "scheduler");
  // No gate is left frozen, and each is open exactly when its strategy is Live.
  auto store = store::open_store(url_);
  std::map<std::string, StrategyState> states;
  const auto strategies = (*store)->list_strategies("w");  // held: a range-for over *f() dangles
  ASSERT_TRUE(strategies);
  for (const auto& s : *strategies) states[s.id] = s.state;
  EXPECT_EQ(states.at("up"), at == "frozen" ? StrategyState::kDryRun : StrategyState::kLive);
  const auto gates = (*store)->list_activations("w");
  ASSERT_TRUE(gates);
  for (const auto& a : *gates) {
    EXPECT_FALSE(a.frozen) << a.strategy_id;
    EXPECT_EQ(a.active, states.at(a.strategy_id) == StrategyState::kLive) << a.strategy_id;
  }
}

INSTANTIATE_TEST_SUITE_P(Phases, KilledMidApply,
                         ::testing::Combine(::testing::Values("frozen", "switched"),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<MidApply>& p) {
                           return std::get<0>(p.param) +
                                  (std::get<1>(p.param) ? "_Leader" : "_NotLeader");
                         });

// Two replicas with a shared Redis activation cache; Redis is killed,
// restarted empty, and restarted from a snapshot older than the last change.
class RedisCacheTest : public ReplicasTest {
 protected:
  void start_redis() {
    redis_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(redis_port_),
                                 "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                                 dir_.path().string(), "--dbfilename", "dump.rdb"},
        dir_.file("redis.log"));
    for (int i = 0; i < 100; ++i) {
      if (redis_cli({"PING"}) == "PONG\n") return;
      std::this_thread::sleep_for(milliseconds(50));
    }
    FAIL() << "redis-server did not start: " << slurp(dir_.file("redis.log"));
  }
  std::string redis_cli(std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/redis-cli", "-p", std::to_string(redis_port_)};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run_process(argv).out;
  }
  // World w with strategy s Live (no policy, so no caps): its long gate is
  // the one the tests flip; its short side stays open, so closing long keeps
  // it Live.
  void seed_live(const std::string& url) {
    auto store = store::open_store(url);
    ASSERT_TRUE(store) << store.error().message;
    SystemClock clock;
    world::WorldService svc(**store, clock);
    ASSERT_TRUE(svc.create_world({.id = "w"}));
    ASSERT_TRUE(svc.submit_strategy({.id = "s", .world = "w", .spec = R"({"nodes":[]})"}));
    for (auto e : {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed}) {
      ASSERT_TRUE(svc.apply_strategy_event("s", e, "setup", ""));
    }
    ASSERT_TRUE(svc.promote_strategy("s", {.actor = "setup", .reason = "gate under test"}));
  }
  bool cached_in_redis() {
    return redis_cli({"--scan", "--pattern", "qmtl:*:act:w"}).find(":act:w") != std::string::npos;
  }
  // Reads through `s` until a read has cached the entry in Redis (2 s at most).
  bool read_until_cached(const testing::ServerProcess& s) {
    for (int i = 0; i < 40 && !cached_in_redis(); ++i) {
      (void)active(s);
      std::this_thread::sleep_for(milliseconds(50));
    }
    return cached_in_redis();
  }
  bool active(const testing::ServerProcess& s, int* status = nullptr) {
    auto r = http_request(s.url(), {.path = "/worlds/w/activation"});
    if (status != nullptr) *status = r ? r->status : 0;
    if (!r || r->status != 200) return false;
    auto v = json::parse(r->body);
    const auto& entries = v->at("entries").as_array();
    for (const auto& e : entries) {
      if (e.at("side").as_string() == "long") return e.at("active").as_bool();
    }
    return false;
  }
  void set(const testing::ServerProcess& s, bool on) {
    ASSERT_EQ(request(s, "PUT", "/worlds/w/activation",
                      fmt::format(R"({{"strategy":"s","side":"long","active":{}}})", on)),
              200);
  }

  const int redis_port_ = testing::free_port();
  std::unique_ptr<testing::ChildProcess> redis_;
};

TEST_F(RedisCacheTest, RedisLostRestartedOrRolledBackNeverServesAStaleOpenGate) {
  start_redis();
  const std::vector<std::string> with_redis{"--redis",
                                            fmt::format("redis://127.0.0.1:{}", redis_port_)};
  seed_live(url_);
  auto& a = start("a", with_redis);
  auto& b = start("b", with_redis);
  set(a, true);
  EXPECT_TRUE(active(b));
  EXPECT_TRUE(cached_in_redis()) << "reads go through Redis";

  // Readers on both replicas while the gate flips on a: a read made wholly
  // between a close's acknowledgement and the next open's request (an odd
  // `window`, unchanged from the read's start to its end) must see it closed.
  std::atomic<bool> stop{false};
  std::atomic<int> window{0};
  std::atomic<int> reads{0}, errors{0}, stale{0};
  std::vector<std::thread> readers;
  for (auto* s : {&a, &b}) {
    readers.emplace_back([&, s] {
      while (!stop) {
        const int before = window.load();
        int status = 0;
        const bool open = active(*s, &status);
        const bool must_be_closed = before % 2 == 1 && window.load() == before;
        ++reads;
        if (status != 200) ++errors;
        if (must_be_closed && open) ++stale;
      }
    });
  }
  for (int i = 0; i < 30; ++i) {
    if (i == 10) redis_->stop(SIGKILL, seconds(5));  // Redis dies mid-reads
    if (i == 20) start_redis();                      // and comes back empty
    set(a, false);
    ++window;  // closed and acknowledged
    std::this_thread::sleep_for(milliseconds(60));
    ++window;  // about to open
    set(a, true);
    std::this_thread::sleep_for(milliseconds(20));
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(errors.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_EQ(stale.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_GT(reads.load(), 300);
  // Back in use after the restart.
  set(a, false);
  set(a, true);
  EXPECT_TRUE(read_until_cached(b)) << "the cache is rebuilt after Redis restarts";

  // Flushed under the servers: nothing is lost, the cache fills again, and a
  // close after the flush is served closed everywhere.
  EXPECT_TRUE(active(b));
  ASSERT_EQ(redis_cli({"FLUSHALL"}), "OK\n");
  EXPECT_TRUE(active(b));
  EXPECT_TRUE(active(a));
  set(a, false);
  EXPECT_FALSE(active(b));
  EXPECT_FALSE(active(a));
  set(a, true);
  EXPECT_TRUE(read_until_cached(b)) << "the cache is rebuilt after a flush";

  // A snapshot taken while the gate was open, restored after it was closed:
  // its entry is of an old generation and never served.
  EXPECT_TRUE(active(b));
  ASSERT_EQ(redis_cli({"SAVE"}), "OK\n");
  set(a, false);
  redis_->stop(SIGKILL, seconds(5));
  start_redis();  // loads dump.rdb: the open gate of before the close
  EXPECT_NE(redis_cli({"--scan", "--pattern", "qmtl:*"}), "") << "the snapshot was restored";
  auto& c = start("c", with_redis);  // a replica whose first read goes to Redis
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(active(c)) << "read " << i << " on c";
    EXPECT_FALSE(active(b)) << "read " << i << " on b";
    EXPECT_FALSE(active(a)) << "read " << i << " on a";
    std::this_thread::sleep_for(milliseconds(50));
  }
}

// One server alone on its SQLite file hears no change feed: it is the bump on
// connecting that voids a snapshot restored from before its last change.
TEST_F(RedisCacheTest, ASqliteServerRestartedOnARestoredSnapshotServesTheClosedGate) {
  start_redis();
  const std::vector<std::string> args{"--no-auth", "--execution", "false", "--redis",
                                      fmt::format("redis://127.0.0.1:{}", redis_port_)};
  seed_live("sqlite:" + dir_.file("one.db"));
  auto server = std::make_unique<testing::ServerProcess>(QMTL_BINARY, dir_.file("one.db"),
                                                         dir_.file("one.log"), args);
  set(*server, true);
  EXPECT_TRUE(active(*server));
  ASSERT_TRUE(cached_in_redis());
  ASSERT_EQ(redis_cli({"SAVE"}), "OK\n");  // the open gate, at the current generation
  set(*server, false);
  EXPECT_FALSE(active(*server));
  ASSERT_EQ(server->stop(), 0);
  redis_->stop(SIGKILL, seconds(5));
  start_redis();  // back from the snapshot: open, and the generation of then
  server = std::make_unique<testing::ServerProcess>(QMTL_BINARY, dir_.file("one.db"),
                                                    dir_.file("one.log"), args);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(active(*server)) << "read " << i;
}

// The database away under load (issue #20): a replica whose connection to
// PostgreSQL is cut while clients keep writing and an event stream is open
// logs the outage once, not once per failed operation, and says when the
// database answers again.
TEST_F(ReplicasTest, AnUnreachableDatabaseIsLoggedOncePerIntervalWithACount) {
  // The server reaches PostgreSQL through a proxy the test can cut.
  const auto at = url_.find("127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << url_;
  const auto port_end = url_.find('/', at);
  const int pg_port = std::stoi(url_.substr(at + 10, port_end - at - 10));
  testing::TcpProxy proxy(pg_port);
  const std::string via_proxy =
      url_.substr(0, at) + fmt::format("127.0.0.1:{}", proxy.port()) + url_.substr(port_end);
  logs_.push_back(dir_.file("cut.log"));
  testing::ServerProcess s(QMTL_BINARY, via_proxy, logs_.back(),
                           {"--no-auth", "--scheduler-poll", "50ms", "--heartbeat", "200ms"});
  ASSERT_EQ(request(s, "POST", "/worlds", R"({"id":"w"})"), 201);
  ASSERT_EQ(request(s, "POST", "/strategies", R"({"id":"s","world":"w","spec":{}})"), 201);
  ASSERT_EQ(request(s, "PUT", "/worlds/w/alerts", R"({"webhook":"http://127.0.0.1:9/x"})"), 200);
  testing::SseClient stream(s.url(), "/worlds/w/events", {});
  ASSERT_TRUE(stream.next(milliseconds(5000)));  // the snapshot

  // Lines of the server's log other than the access log.
  const auto noise = [&] {
    std::vector<std::string> out;
    std::istringstream in(slurp(logs_.back()));
    for (std::string line; std::getline(in, line);) {
      if (line.find("[access]") == std::string::npos) out.push_back(line);
    }
    return out;
  };
  const size_t before = noise().size();
  proxy.cut();
  // Three seconds of writes (each refused with 503) against the cut database.
  int refused = 0;
  const auto until = std::chrono::steady_clock::now() + seconds(3);
  while (std::chrono::steady_clock::now() < until) {
    const int status = request(s, "PUT", "/worlds/w/activation",
                               R"({"strategy":"s","side":"long","active":false})");
    refused += status == 503 ? 1 : 0;
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_GT(refused, 50);
  const auto during = noise();
  std::string said;
  for (size_t i = before; i < during.size(); ++i) said += during[i] + "\n";
  // The outage (once), the change feed lost (once), and nothing per failure.
  EXPECT_LE(during.size() - before, 4u) << said;
  EXPECT_NE(said.find("the database cannot be reached ("), std::string::npos) << said;
  EXPECT_NE(said.find("logged once per 10 s with a count"), std::string::npos) << said;

  proxy.restore();
  bool back = false;
  for (int i = 0; i < 200 && !back; ++i) {
    back = slurp(logs_.back()).find("the database answers again after") != std::string::npos;
    if (!back) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(back) << slurp(logs_.back()).substr(0, 4000);
  EXPECT_NE(slurp(logs_.back()).find("operations failed meanwhile"), std::string::npos);
  EXPECT_EQ(
      request(s, "PUT", "/worlds/w/activation", R"({"strategy":"s","side":"long","active":false})"),
      200);
}

}  // namespace
}  // namespace qmtl
