// `qmtl demo` as the real binary, headless, on a fast simulated clock: the
// server, the exchange simulator, runners and the scheduler all run for real
// and the demo must end with at least one promotion and one demotion, each
// explained; Ctrl-C must leave a database a new server can read.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <regex>
#include <sstream>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace qmtl {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Ten simulated days a real second: fast, and still slower than the runners'
// posts (100 ms), so evaluations see data up to a day or two old.
constexpr const char* kSpeed = "864000";

class DemoE2eTest : public ::testing::Test {
 protected:
  std::vector<std::string> demo_args(const std::string& until) {
    return {QMTL_BINARY,
            "demo",
            "--dir",
            dir_.file("demo"),
            "--headless",
            "--speed",
            kSpeed,
            "--until",
            until,
            "--examples",
            std::string(QMTL_SOURCE_DIR) + "/examples",
            "--exchange-sim",
            EXCHANGE_SIM};
  }
  // A plain server on what the demo left, and these CLI commands on it.
  std::vector<testing::ProcessResult> cli_after(
      const std::vector<std::vector<std::string>>& commands) {
    testing::ServerProcess server(QMTL_BINARY, dir_.file("demo/qmtl.db"), dir_.file("after.log"),
                                  {"--no-auth", "--execution", "false", "--scheduler", "false"});
    std::vector<testing::ProcessResult> out;
    for (auto args : commands) {
      args.insert(args.begin(), QMTL_BINARY);
      out.push_back(testing::run_process(
          args, {{"QMTL_GATEWAY_URL", server.url()}, {"QMTL_CONFIG", dir_.file("none.yml")}}));
    }
    return out;
  }
  testing::ProcessResult status_after() { return cli_after({{"world", "status", "demo"}})[0]; }
  testing::TempDir dir_;
};

TEST_F(DemoE2eTest, HeadlessRunShowsTheLifecycleWithPromotionsAndDemotionsExplained) {
  const auto r = testing::run_process(demo_args("1994-07-15"), {}, seconds(180));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // Validation: five pass, the slow one is rejected with its reason.
  EXPECT_NE(r.out.find("smi-slow       Validating -> Rejected: reject gate is true: trades < 5"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("dax-trend      Validating -> DryRun: validation passed"),
            std::string::npos);
  // The summary counts and explains the moves.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex(R"((\d+) promotion\(s\), (\d+) demotion)")))
      << r.out;
  EXPECT_GE(std::stoi(m[1]), 1) << r.out;
  EXPECT_GE(std::stoi(m[2]), 1) << r.out;
  const auto why = r.out.find("Why (from the audit log):");
  ASSERT_NE(why, std::string::npos) << r.out;
  const std::string explained = r.out.substr(why);
  EXPECT_TRUE(std::regex_search(
      explained, std::regex(R"(DryRun -> Live .*promote gate passed; selected at rank \d.*)"
                            R"(\[promote gate: return >= 0.01 = [-0-9.e]+ yes)")))
      << explained;
  EXPECT_TRUE(std::regex_search(
      explained, std::regex(R"(Live -> DryRun .*demoted: out for 3 of 3 evaluations)")))
      << explained;
  // Live orders went to the exchange simulator over FIX at the hand-over.
  EXPECT_NE(r.out.find("hand-over: on_promote flat"), std::string::npos);
  EXPECT_NE(r.out.find("[1994-"), std::string::npos);  // simulated dates, not today's

  // The database is whole and a plain server reads it; replaying the recorded
  // policy over the demo's whole span reproduces every decision, though the
  // runners post in real time around the scheduler's runs (docs/policy.md,
  // "Trying a policy before applying it").
  const auto after = cli_after({{"world", "status", "demo"},
                                {"--output", "json", "world", "replay", "demo"},
                                {"world", "replay", "demo"}});
  const auto& status = after[0];
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("smi-slow"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("Rejected"), std::string::npos) << status.out;
  ASSERT_EQ(after[1].exit_code, 0) << after[1].err;
  auto replay = json::parse(after[1].out);
  ASSERT_TRUE(replay && replay->is_object()) << after[1].out;
  const auto& o = replay->as_object();
  EXPECT_GT(o.at("runs").as_int64(), 50) << after[1].out;
  EXPECT_EQ(o.at("matching").as_int64(), o.at("decisions").as_int64()) << after[1].out;
  EXPECT_EQ(o.at("total_differences").as_int64(), 0) << after[1].out;
  EXPECT_GE(o.at("recorded").at("promotions").as_int64(), 1);
  EXPECT_EQ(json::dump(o.at("recorded").at("live")), json::dump(o.at("candidate").at("live")));
  EXPECT_NE(after[2].out.find(" as recorded, 0 differ"), std::string::npos) << after[2].out;
}

TEST_F(DemoE2eTest, CtrlCStopsEverythingAndLeavesAConsistentDatabase) {
  testing::ChildProcess demo(demo_args("1995-06-01"), dir_.file("demo.err"));
  // Wait until it is well under way: strategies are in dry run.
  bool dry_run = false;
  for (int i = 0; i < 600 && !dry_run; ++i) {
    auto line = demo.read_line(milliseconds(100));
    dry_run = line && line->find("-> DryRun") != std::string::npos;
  }
  ASSERT_TRUE(dry_run) << "the demo did not get to dry run";
  std::this_thread::sleep_for(seconds(2));  // runners trading, evaluations running
  const auto code = demo.stop(SIGINT, milliseconds(40'000));
  ASSERT_TRUE(code) << "the demo did not stop on Ctrl-C";
  EXPECT_EQ(*code, 130);
  std::string rest;
  while (auto line = demo.read_line(milliseconds(100))) rest += *line + '\n';
  EXPECT_NE(rest.find("stopped (Ctrl-C)"), std::string::npos) << rest;
  EXPECT_NE(rest.find("strategies at the end:"), std::string::npos) << rest;
  // The server stopped in order (not killed), its scheduler before its
  // runners: nothing was evaluated once the stop began, so no Live strategy
  // was demoted with no runner left to hand its position over ...
  const auto log = testing::run_process({"/bin/cat", dir_.file("demo/server.log")});
  EXPECT_NE(log.out.find("stopped"), std::string::npos) << log.out;
  const size_t signal = log.out.find("received signal 15");
  const size_t sched_stopped = log.out.find("scheduler stopped");
  const size_t runners = log.out.find("stopping the runners and validations");
  ASSERT_NE(signal, std::string::npos) << log.out;
  ASSERT_NE(sched_stopped, std::string::npos) << log.out;
  ASSERT_NE(runners, std::string::npos) << log.out;
  EXPECT_LT(signal, sched_stopped);
  EXPECT_LT(sched_stopped, runners);
  // An evaluation under way when the signal came may finish (the runners are
  // still up to hand positions over); none starts after it. The demo has one
  // world, whose ticks run one at a time: at most one, before the scheduler
  // says it stopped.
  size_t after_signal = 0;
  for (size_t at = log.out.find("evaluated (", signal); at != std::string::npos;
       at = log.out.find("evaluated (", at + 1)) {
    ++after_signal;
    EXPECT_LT(at, sched_stopped) << log.out.substr(signal);
  }
  EXPECT_LE(after_signal, 1u) << log.out.substr(signal);
  // ... SQLite finds nothing wrong, and a new server reads the world.
  const auto check = testing::run_process({"/usr/bin/sqlite3", dir_.file("demo/qmtl.db"),
                                           "PRAGMA integrity_check; PRAGMA foreign_key_check;"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_EQ(check.out, "ok\n");
  const auto status = status_after();
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("DryRun"), std::string::npos) << status.out;
  // ... and the states the demo printed at the end are the database's.
  const auto states = testing::run_process(
      {"/usr/bin/sqlite3", dir_.file("demo/qmtl.db"),
       "SELECT id, state FROM strategies WHERE world_id = 'demo' ORDER BY id;"});
  ASSERT_EQ(states.exit_code, 0) << states.err;
  std::istringstream rows(states.out);
  for (std::string row; std::getline(rows, row);) {
    const std::string id = row.substr(0, row.find('|')), state = row.substr(row.find('|') + 1);
    EXPECT_TRUE(std::regex_search(rest, std::regex("  " + id + " +" + state + "\n")))
        << id << " is " << state << " in the database; the demo said:\n"
        << rest;
  }
}

TEST_F(DemoE2eTest, BadOptionsAreUsageErrors) {
  auto args = demo_args("1993-01-01");  // before the start
  auto r = testing::run_process(args);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--until after --start"), std::string::npos) << r.err;
  args = demo_args("1994-07-01");
  args[10] = dir_.file("nowhere");
  r = testing::run_process(args);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("pass --examples DIR"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qmtl
