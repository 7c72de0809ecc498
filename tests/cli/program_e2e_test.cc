// A C++ strategy as a program (examples/cpp_strategy, `breakout --serve`) on
// real processes: `qmtl backtest --command` trades exactly as the example's
// own in-process backtest; a server started with --strategy-programs
// validates a submitted program with `qmtl backtest` and runs it in dry run
// with `qmtl run`, whose paper records reach the server; a server without the
// option, or a program outside its directory, is refused.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "qmtl/core/http_client.h"
#include "qmtl/core/json.h"
#include "qmtl/core/time.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace qmtl {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kTtrc = std::string(QMTL_SOURCE_DIR) + "/examples/data/ttrc_ohlcv.csv";

// The value after `key ` on its own line of the example's output.
std::string field(const std::string& out, const std::string& key) {
  const auto at = out.find(key + " ");
  if (at == std::string::npos) return "";
  const auto end = out.find('\n', at);
  return out.substr(at + key.size() + 1, end - at - key.size() - 1);
}

bool eventually(const std::function<bool()>& pred, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return pred();
}

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(ProgramE2e, ABacktestOfTheProgramTradesAsTheExampleItself) {
  auto own = testing::run_process({BREAKOUT_PROGRAM, kTtrc});
  ASSERT_EQ(own.exit_code, 0) << own.err;
  ASSERT_EQ(field(own.out, "orders"), "171") << own.out;
  auto r = testing::run_process({QMTL_BINARY, "--output", "json", "backtest", "--command",
                                 fmt::format("{} --serve", BREAKOUT_PROGRAM), "--data", kTtrc},
                                {}, seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = json::parse(r.out);
  ASSERT_TRUE(doc) << r.out;
  const auto& o = doc->as_object();
  EXPECT_EQ(o.at("strategy"), "breakout");
  EXPECT_EQ(o.at("bars").to_number<int64_t>(), 5550);
  EXPECT_EQ(o.at("orders").to_number<int64_t>(), 171);
  EXPECT_EQ(o.at("fills").to_number<int64_t>(), 171);
  EXPECT_EQ(fmt::format("{:.2f}", o.at("final_equity").to_number<double>()),
            field(own.out, "final_equity"));
  // A program that is not one: the usage error names it.
  auto bad = testing::run_process(
      {QMTL_BINARY, "backtest", "--command", "/bin/echo hello", "--data", kTtrc});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("echo did not declare itself"), std::string::npos) << bad.err;
  auto both = testing::run_process(
      {QMTL_BINARY, "backtest", kTtrc, "--command", "/bin/true", "--data", kTtrc});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("one of them"), std::string::npos) << both.err;
}

class ProgramServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The programs directory holds a copy of the example (a server runs
    // programs only from there).
    std::filesystem::create_directory(dir_.file("programs"));
    program_ = dir_.file("programs/breakout");
    std::filesystem::copy_file(BREAKOUT_PROGRAM, program_);
    program_ = std::filesystem::canonical(program_).string();
    // The live feed: daily bars up to today, so its records fall in an evaluation window.
    feed_ = dir_.file("live.csv");
    std::ofstream f(feed_);
    f << "date,open,high,low,close,volume\n";
    const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
    for (int i = 0; i < kLiveBars; ++i) {
      const double close = 100 + (i % 7) - 0.1 * i;
      f << fmt::format("{},{},{},{},{},1000000\n",
                       format_timestamp(TimePoint(today - std::chrono::days(kLiveBars - 1 - i))),
                       close, close + 1, close - 1, close);
    }
  }
  void start(const std::vector<std::string>& extra) {
    std::vector<std::string> args{"--no-auth", "--exec-dir", dir_.file("exec")};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<testing::ServerProcess>(QMTL_BINARY, dir_.file("s.db"),
                                                       dir_.file("server.log"), args);
  }
  testing::ProcessResult qmtl(std::vector<std::string> args) {
    args.insert(args.begin(), {QMTL_BINARY, "--gateway-url", server_->url()});
    return testing::run_process(args, {}, seconds(60));
  }
  boost::json::value get(const std::string& path) {
    auto r = http_request(server_->url(), {.method = "GET", .path = path});
    if (!r || r->status != 200) return nullptr;
    auto v = json::parse(r->body);
    return v ? *v : boost::json::value();
  }
  void make_world() {
    const auto policy = testing::write_file(
        dir_.file("policy.yml"),
        "evaluation: {every: 1d, min_dry_run: 0s, window: 30d}\n"
        "gates: {promote: 'trades >= 100', demote: 'trades < 0', reject: 'trades < 1'}\n"
        "score: return\ntop_k: {k: 1}\n");
    auto w = qmtl({"world", "create", "w", "--policy-file", policy});
    ASSERT_EQ(w.exit_code, 0) << w.err;
  }

  static constexpr int kLiveBars = 40;
  testing::TempDir dir_;
  std::string program_, feed_;
  std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(ProgramServerTest, AServerValidatesAndRunsASubmittedProgramInDryRun) {
  start({"--strategy-programs", dir_.file("programs")});
  make_world();
  auto set =
      qmtl({"world", "execution", "w", "--history", kTtrc, "--feed", feed_, "--symbol", "TTRC"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  auto submit = qmtl({"strategy", "submit", "--command", program_ + " --serve", "--world", "w"});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  EXPECT_EQ(submit.out, "submitted strategy 'breakout' to world 'w' (state Submitted)\n");
  // What the server stores: the declaration and the program with its digest.
  auto s = get("/strategies/breakout");
  ASSERT_TRUE(s.is_object());
  EXPECT_EQ(s.at("spec").at("program").at("command"), (boost::json::array{program_, "--serve"}));
  EXPECT_EQ(s.at("spec").at("orders"), boost::json::parse(R"({"symbol":"TTRC","qty":100})"));
  // Validated as a YAML strategy is: `qmtl backtest` over the history.
  ASSERT_TRUE(eventually(
      [&] {
        auto st = get("/strategies/breakout");
        return st.is_object() && st.at("state") == "DryRun";
      },
      seconds(60)))
      << read(dir_.file("server.log")) << read(dir_.file("exec/breakout.validation.log"));
  auto v = get("/strategies/breakout/validation");
  EXPECT_EQ(v.at("outcome"), "passed");
  EXPECT_EQ(v.at("detail").at("bars").to_number<int64_t>(), 5550);
  EXPECT_EQ(v.at("detail").at("fills").to_number<int64_t>(), 171);
  // In dry run, `qmtl run` starts the program on the live feed and posts its paper records.
  ASSERT_TRUE(eventually(
      [&] {
        auto p = get("/strategies/breakout/performance?kind=dryrun");
        return p.is_object() && p.at("total_points").to_number<int64_t>() == kLiveBars;
      },
      seconds(60)))
      << read(dir_.file("exec/breakout.runner.log"));
  EXPECT_EQ(get("/strategies/breakout").at("state"), "DryRun");

  // The same database under a server that does not allow programs: its runner
  // refuses to start the program, whatever the store says.
  ASSERT_TRUE(server_->stop());
  start({"--runner-backoff", "50ms"});
  ASSERT_TRUE(eventually(
      [&] {
        return read(dir_.file("exec/breakout.runner.log"))
                   .find("may not run here: strategy programs are off") != std::string::npos;
      },
      seconds(30)))
      << read(dir_.file("exec/breakout.runner.log"));
}

TEST_F(ProgramServerTest, ProgramsAreRefusedUnlessTheServerRunsThemFromItsDirectory) {
  start({});
  make_world();
  auto off = qmtl({"strategy", "submit", "--command", program_ + " --serve", "--world", "w"});
  EXPECT_EQ(off.exit_code, 1);
  EXPECT_NE(off.err.find("this server runs no strategy programs"), std::string::npos) << off.err;
  ASSERT_TRUE(server_->stop());
  std::filesystem::create_directory(dir_.file("elsewhere"));
  start({"--strategy-programs", dir_.file("elsewhere")});
  auto outside = qmtl({"strategy", "submit", "--command", program_ + " --serve", "--world", "w"});
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_NE(outside.err.find("is not in this server's strategy programs directory"),
            std::string::npos)
      << outside.err;
  EXPECT_TRUE(get("/strategies/breakout").is_null());

  // Straight to the API: the file in the directory must be the build described.
  const auto inside = dir_.file("elsewhere/breakout");
  std::filesystem::copy_file(program_, inside);
  auto post = [&](const std::string& path, const std::string& sha) {
    const auto body = fmt::format(
        R"({{"id": "b", "world": "w", "spec": {{"id": "breakout", "interval": "1d",
            "orders": {{"symbol": "TTRC", "qty": 100}},
            "program": {{"command": ["{}", "--serve"], "sha256": "{}"}}}}}})",
        path, sha);
    auto r = http_request(server_->url(), {.method = "POST", .path = "/strategies", .body = body});
    return r ? *r : HttpReply{};
  };
  auto stale = post(std::filesystem::canonical(inside).string(), std::string(64, '0'));
  EXPECT_EQ(stale.status, 409) << stale.body;
  EXPECT_NE(stale.body.find("is not the build that was described"), std::string::npos);
  const auto text = testing::write_file(dir_.file("elsewhere/notes.txt"), "not a program\n");
  auto plain = post(std::filesystem::canonical(text).string(), std::string(64, '0'));
  EXPECT_EQ(plain.status, 400) << plain.body;
  EXPECT_NE(plain.body.find("is not an executable file"), std::string::npos) << plain.body;
  // Paths outside are refused on their text, whether or not something is there.
  const auto elsewhere = std::filesystem::canonical(dir_.file("elsewhere")).string();
  for (const auto& path : {std::string("/etc/passwd"), std::string("/no/such/file"),
                           elsewhere + "/../programs/breakout", elsewhere + "//breakout"}) {
    auto r = post(path, std::string(64, '0'));
    EXPECT_EQ(r.status, 403) << path << ": " << r.body;
  }
  EXPECT_TRUE(get("/strategies/b").is_null());
}

}  // namespace
}  // namespace qmtl
