// Strategies as programs (sdk/program.h) over real child processes: a Python
// program trades exactly as the same strategy in YAML; every way a program
// can go wrong fails the strategy with a message naming it; the digest, the
// declaration and the programs directory are checked at each start; the C++
// side (serve_strategy) speaks the protocol.
#include "qmtl/sdk/program.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "qmtl/core/file.h"
#include "qmtl/core/json.h"
#include "qmtl/sdk/runner.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace qmtl::sdk {
namespace {

using std::chrono::milliseconds;

constexpr const char* kDeclaration =
    R"({"id":"above","interval":"1d","signal":"condition","orders":{"symbol":"X","qty":10}})";

// Daily bars whose close wanders across 100.
std::vector<broker::Bar> bars(int n) {
  std::vector<broker::Bar> out;
  const TimePoint start(std::chrono::sys_days(std::chrono::year(2025) / 1 / 6));
  for (int i = 0; i < n; ++i) {
    const double close = 100 + 3 * std::sin(i * 0.37) + 0.25 * (i % 3);
    out.push_back({.ts = start + std::chrono::days(i),
                   .symbol = "X",
                   .open = close - 0.125,
                   .high = close + 0.5,
                   .low = close - 0.5,
                   .close = close,
                   .volume = 1e6});
  }
  return out;
}

class ProgramTest : public ::testing::Test {
 protected:
  // An executable file in the test's directory.
  std::string program(const std::string& name, const std::string& text) {
    const auto path = testing::write_file(dir_.file(name), text);
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
    return std::filesystem::canonical(path).string();
  }
  // A shell program that declares `declaration`, then runs `body` (sh).
  std::string shell(const std::string& name, const std::string& declaration,
                    const std::string& body) {
    return program(name,
                   fmt::format("#!/bin/sh\necho 'qmtl-strategy 1 {}'\n{}\n", declaration, body));
  }
  // The spec as `qmtl strategy submit --command` makes it.
  boost::json::object spec_of(const std::string& path, milliseconds timeout = milliseconds(2000)) {
    auto s = program_spec({path}, timeout);
    EXPECT_TRUE(s) << s.error().message;
    return s ? *s : boost::json::object();
  }
  Result<BacktestResult> backtest(const boost::json::value& spec, int n = 40) {
    auto s = load_strategy(spec);
    if (!s) return propagate(s);
    return Runner::offline(std::move(*s), bars(n), {.initial_cash = 10'000});
  }
  testing::TempDir dir_;
};

TEST_F(ProgramTest, APythonProgramTradesExactlyAsTheSameStrategyInYaml) {
  const auto path = program("above.py", fmt::format(R"(#!/usr/bin/python3
import sys
print('qmtl-strategy 1 {}', flush=True)
for line in sys.stdin:
    kind, ts, o, h, l, c, v = line.split()
    print(1 if float(c) > 100 else 0, flush=True)
)",
                                                    kDeclaration));
  const auto spec = spec_of(path);
  ASSERT_FALSE(spec.empty());
  // What submit stores: the declaration, the canonical command, its digest.
  EXPECT_EQ(spec.at("id"), "above");
  EXPECT_EQ(spec.at("program").at("command"), boost::json::array{path});
  EXPECT_EQ(spec.at("program").at("sha256").as_string(), inspect_executable(path)->sha256);
  EXPECT_EQ(spec.at("program").at("timeout"), "2s");
  auto by_program = backtest(spec);
  ASSERT_TRUE(by_program) << by_program.error().message;
  auto yaml = parse_strategy(boost::json::parse(
      R"({"id": "above", "inputs": {"close": {"interval": "1d"}},
          "nodes": {"up": {"indicator": "gt", "input": "close", "value": 100}},
          "orders": {"signal": "up", "symbol": "X", "qty": 10}})"));
  ASSERT_TRUE(yaml) << yaml.error().message;
  auto by_yaml = Runner::offline(std::move(*yaml), bars(40), {.initial_cash = 10'000});
  ASSERT_TRUE(by_yaml);
  ASSERT_GE(by_yaml->fills.size(), 4u);  // it crosses 100 several times
  ASSERT_EQ(by_program->fills.size(), by_yaml->fills.size());
  for (size_t i = 0; i < by_yaml->fills.size(); ++i) {
    EXPECT_EQ(by_program->fills[i].ts, by_yaml->fills[i].ts) << i;
    EXPECT_EQ(by_program->fills[i].side, by_yaml->fills[i].side) << i;
    EXPECT_EQ(by_program->fills[i].price, by_yaml->fills[i].price) << i;
  }
  ASSERT_EQ(by_program->points.size(), 40u);
  EXPECT_EQ(by_program->points.back().equity, by_yaml->points.back().equity);
}

TEST_F(ProgramTest, TheProgramSeesEachBarExactlyAndCanAnswerNothing) {
  // It echoes what it was sent to its stderr file and answers "-" (no value).
  const auto seen = dir_.file("seen.txt");
  const auto path =
      shell("echo.sh", kDeclaration,
            fmt::format("while read -r line; do echo \"$line\" >> {}; echo -; done", seen));
  auto bt = backtest(spec_of(path), 3);
  ASSERT_TRUE(bt) << bt.error().message;
  EXPECT_EQ(bt->orders, 0u);
  std::ifstream f(seen);
  std::stringstream ss;
  ss << f.rdbuf();
  // 2025-01-06 is 1736121600; numbers read back to the same doubles.
  const auto b = bars(3);
  EXPECT_EQ(ss.str(),
            fmt::format("bar 1736121600 {} {} {} {} 1000000\n"
                        "bar 1736208000 {} {} {} {} 1000000\n"
                        "bar 1736294400 {} {} {} {} 1000000\n",
                        b[0].open, b[0].high, b[0].low, b[0].close, b[1].open, b[1].high, b[1].low,
                        b[1].close, b[2].open, b[2].high, b[2].low, b[2].close));
}

struct Failure {
  const char* name;
  const char* body;  // after the declaration
  const char* message;
};

void PrintTo(const Failure& f, std::ostream* os) { *os << f.name; }

class ProgramFailureTest : public ProgramTest, public ::testing::WithParamInterface<Failure> {};

// Every way a running program goes wrong fails the backtest (and so a live
// runner: the same node fails), naming the program and what it did.
TEST_P(ProgramFailureTest, FailsTheStrategyNamingTheProgram) {
  const auto& c = GetParam();
  const auto path = shell(std::string(c.name) + ".sh", kDeclaration, c.body);
  auto spec = spec_of(path, milliseconds(300));
  ASSERT_FALSE(spec.empty());
  auto bt = backtest(spec);
  ASSERT_FALSE(bt) << c.name;
  EXPECT_NE(bt.error().message.find(path), std::string::npos) << bt.error().message;
  EXPECT_NE(bt.error().message.find(c.message), std::string::npos) << bt.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ProgramFailureTest,
    ::testing::Values(
        Failure{"garbage", "while read -r l; do echo banana; done",
                "answered 'banana' for the bar at 2025-01-06T00:00:00Z: not a finite number"},
        Failure{"nan", "while read -r l; do echo nan; done", "answered 'nan'"},
        Failure{"two", "while read -r l; do echo 1 1; done", "expected one value"},
        Failure{"exits",
                "n=0; while read -r l; do n=$((n+1)); [ $n -gt 3 ] && exit 3; echo 0; done",
                "node 'program': program "},
        Failure{"exits3",
                "n=0; while read -r l; do n=$((n+1)); [ $n -gt 3 ] && exit 3; echo 0; done",
                "ended (exit 3) before it sent its values for the bar at 2025-01-09"},
        Failure{"error", "while read -r l; do echo 'error out of data'; done",
                "failed at 2025-01-06T00:00:00Z: out of data"},
        Failure{"slow", "while read -r l; do sleep 2; echo 0; done",
                "did not send its values for the bar at 2025-01-06T00:00:00Z within 300ms"},
        Failure{"long", "while read -r l; do printf '%05000d\\n' 0; done",
                "sent a line of more than 1024 bytes"}),
    [](const ::testing::TestParamInfo<Failure>& p) { return std::string(p.param.name); });

TEST_F(ProgramTest, AProgramThatDoesNotDeclareItselfIsRefused) {
  struct Case {
    std::string text, message;
  };
  for (const auto& [text, message] : std::vector<Case>{
           {"#!/bin/sh\nsleep 3\n", "did not send its declaration"},
           {"#!/bin/sh\necho hello\n",
            "its first line must be 'qmtl-strategy 1 {...}', not 'hello'"},
           {"#!/bin/sh\necho 'qmtl-strategy 2 {}'\n", "speaks protocol version '2'"},
           {"#!/bin/sh\necho 'qmtl-strategy 1 [1]'\n", "not a JSON object"},
           {"#!/bin/sh\nexit 4\n", "ended (exit 4)"},
           {"#!/bin/sh\necho 'qmtl-strategy 1 {\"id\":\"x\",\"interval\":\"1d\","
            "\"signal\":\"numeric\",\"orders\":{\"symbol\":\"X\",\"qty\":1}}'\n",
            "orders.signal 'signal' is the program's numeric signal: its values are levels"},
           {"#!/bin/sh\necho 'qmtl-strategy 1 {\"id\":\"x\",\"interval\":\"1d\",\"orders\":"
            "{\"signal\":\"s\",\"symbol\":\"X\",\"qty\":1}}'\n",
            "orders.signal is the program's own output"},
           {"#!/bin/sh\necho 'qmtl-strategy 1 {\"id\":\"x\",\"interval\":\"1d\",\"exit\":true,"
            "\"orders\":{\"symbol\":\"X\",\"qty\":1}}'\n",
            "orders.exit needs conditions"},
           {"#!/bin/sh\necho 'qmtl-strategy 1 {\"id\":\"x\",\"interval\":\"0s\","
            "\"orders\":{\"symbol\":\"X\",\"qty\":1}}'\n",
            "interval '0s' is not a positive duration"}}) {
    const auto path = program("p.sh", text);
    auto spec = program_spec({path}, milliseconds(300));
    ASSERT_FALSE(spec) << text;
    EXPECT_NE(spec.error().message.find(message), std::string::npos) << text << "\n"
                                                                     << spec.error().message;
  }
}

TEST_F(ProgramTest, TheProgramThatRunsIsTheOneSubmitted) {
  const auto path = shell("s.sh", kDeclaration, "while read -r l; do echo 0; done");
  auto spec = spec_of(path);
  ASSERT_TRUE(load_strategy(spec));
  // Another build: the digest no longer matches.
  { std::ofstream(path, std::ios::app) << "# rebuilt\n"; }
  auto changed = load_strategy(spec);
  ASSERT_FALSE(changed);
  EXPECT_NE(changed.error().message.find("has changed since it was submitted"), std::string::npos)
      << changed.error().message;
  // The same digest, but a declaration other than the one submitted.
  spec = spec_of(path);
  spec["orders"].as_object()["qty"] = 20;
  auto other = load_strategy(spec);
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find("but the strategy was submitted as"), std::string::npos)
      << other.error().message;
  // Malformed program fields are named.
  spec = spec_of(path);
  spec["program"].as_object()["command"] = boost::json::array{"relative/path"};
  auto relative = load_strategy(spec);
  ASSERT_FALSE(relative);
  EXPECT_NE(relative.error().message.find("must be an absolute path"), std::string::npos);
  spec = spec_of(path);
  spec["program"].as_object()["timeout"] = "2h";
  EXPECT_FALSE(load_strategy(spec));
}

TEST_F(ProgramTest, OnlyProgramsInTheAllowedDirectoryRun) {
  const auto path = shell("s.sh", kDeclaration, "while read -r l; do echo 0; done");
  const auto spec = spec_of(path);
  const auto dir = std::filesystem::path(path).parent_path().string();
  EXPECT_TRUE(load_strategy(spec, {.programs_dir = dir}));
  auto off = load_strategy(spec, {.programs_dir = ""});
  ASSERT_FALSE(off);
  EXPECT_EQ(off.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(off.error().message.find("strategy programs are off"), std::string::npos);
  auto elsewhere = load_strategy(spec, {.programs_dir = dir + "/sub"});
  ASSERT_FALSE(elsewhere);
  EXPECT_EQ(elsewhere.error().code, ErrorCode::kPermissionDenied);
  // A link inside the directory to a program outside it is refused.
  testing::TempDir inside;
  std::filesystem::create_symlink(path, inside.file("link"));
  auto linked = spec;
  linked["program"].as_object()["command"] = boost::json::array{inside.file("link")};
  auto through = load_strategy(linked, {.programs_dir = inside.path().string()});
  ASSERT_FALSE(through);
  EXPECT_NE(through.error().message.find("is a link"), std::string::npos)
      << through.error().message;
}

TEST(SplitCommand, SplitsAsAShellWouldWithoutExpanding) {
  EXPECT_EQ(*split_command("/a/b --x 1"), (std::vector<std::string>{"/a/b", "--x", "1"}));
  EXPECT_EQ(*split_command("  '/a b/c'  \"d \\\"e\\\"\" f\\ g $HOME"),
            (std::vector<std::string>{"/a b/c", "d \"e\"", "f g", "$HOME"}));
  EXPECT_EQ(*split_command("x ''"), (std::vector<std::string>{"x", ""}));
  EXPECT_FALSE(split_command(""));
  EXPECT_FALSE(split_command("a 'b"));
  EXPECT_FALSE(split_command("a \"b"));
  EXPECT_FALSE(split_command("a\\"));
}

// The C++ side: a Strategy served over streams declares itself and answers
// each bar with its signal, "-" while warming up.
TEST(ServeStrategy, DeclaresTheStrategyAndAnswersEachBar) {
  Strategy s{.id = "up2"};
  s.dag.input("close", std::chrono::hours(24), 1);
  s.dag.compute("up", {"close"}, 2, [](const std::vector<WindowView>& w) {
    return std::optional<double>(w[0][0] > w[0][1] ? 1.0 : 0.0);
  });
  s.orders = {.signal = "up", .symbol = "X", .qty = 5, .signal_kind = SignalKind::kCondition};
  ASSERT_TRUE(s.dag.build());
  std::istringstream in(
      "bar 86400 1 1 1 1 10\nbar 172800 2 2 2 2 10\nbar 259200.25 1.5 1.5 1.5 1.5 10\n");
  std::ostringstream out;
  EXPECT_EQ(serve_strategy(std::move(s), in, out), 0);
  std::istringstream lines(out.str());
  std::string hello, a, b, c;
  std::getline(lines, hello);
  std::getline(lines, a);
  std::getline(lines, b);
  std::getline(lines, c);
  ASSERT_TRUE(hello.starts_with("qmtl-strategy 1 ")) << hello;
  auto d = json::parse(hello.substr(16));
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, boost::json::parse(R"({"id":"up2","interval":"1d","signal":"condition",
                                       "orders":{"symbol":"X","qty":5}})"));
  EXPECT_EQ(a, "-");
  EXPECT_EQ(b, "1");
  EXPECT_EQ(c, "0");

  Strategy t{.id = "t"};
  t.dag.input("close", std::chrono::hours(24), 1);
  t.dag.indicator("r", IndicatorKind::kReturns, {"close"});
  t.orders = {.signal = "r",
              .symbol = "X",
              .sizing = Sizing::kWeight,
              .weight = 1,
              .signal_kind = SignalKind::kNumeric};
  ASSERT_TRUE(t.dag.build());
  std::istringstream bad("bar 86400 1 1 1 1 10\nbar yesterday 1 1 1 1 1\n");
  std::ostringstream said;
  EXPECT_EQ(serve_strategy(std::move(t), bad, said), 1);
  EXPECT_NE(said.str().find("\n-\nerror bar time 'yesterday' is not Unix seconds\n"),
            std::string::npos)
      << said.str();
}

}  // namespace
}  // namespace qmtl::sdk
