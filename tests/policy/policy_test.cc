#include "qmtl/policy/policy.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "qmtl/policy/document.h"
#include "qmtl/policy/yaml_json.h"
#include "tests/support/hostile_input.h"

namespace qmtl::policy {
namespace {

using std::chrono::hours;

constexpr const char* kDesign = R"(
evaluation:
  every: 1d
  min_dry_run: 14d
  window: 4w
gates:
  promote: "return >= 0.05 and sharpe >= 1.5 and trades >= 20 and worst_loss(5m) >= -0.005"
  demote:  "return < 0.03 or sharpe < 1.0"
  reject:  "max_drawdown > 0.5"
score: "sharpe + 0.1 * win_rate - 0.2 * max_drawdown"
top_k: { k: 3 }
correlation: { max: 0.8, per_group: 1, window: 4w }
hysteresis: { promote_after: 7d, demote_after: 3 }
position: { on_promote: flat, on_demote: flatten }
)";

TEST(ParsePolicy, TheDesignPolicy) {
  auto p = parse_policy(kDesign, "design.yml");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->every, hours(24));
  EXPECT_EQ(p->min_dry_run, hours(24 * 14));
  EXPECT_EQ(p->window, hours(24 * 28));
  EXPECT_EQ(p->promote.to_string(),
            "return >= 0.05 and sharpe >= 1.5 and trades >= 20 and worst_loss(5m) >= -0.005");
  EXPECT_FALSE(p->demote_is_default);
  EXPECT_EQ(p->top_k, 3);
  ASSERT_TRUE(p->correlation);
  EXPECT_EQ(p->correlation->max, 0.8);
  EXPECT_EQ(p->correlation->window, hours(24 * 28));
  EXPECT_EQ(p->promote_after, Holding{.value = Duration(hours(24 * 7))});
  EXPECT_EQ(p->demote_after, Holding{.value = 3});
  // return, sharpe, trades, worst_loss(5m), max_drawdown, win_rate: each read once.
  ASSERT_EQ(p->refs.size(), 6u);
  EXPECT_EQ(p->refs.refs()[3].text(), "worst_loss(5m)");
}

TEST(ParsePolicy, TheExampleFileParses) {
  auto p = read_policy_file(std::string(QMTL_SOURCE_DIR) + "/examples/policies/design.yml");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(*p, *parse_policy(kDesign));
}

TEST(ParsePolicy, JsonIsAccepted) {
  auto p = parse_policy(R"({"gates": {"promote": "sharpe >= 1"}, "top_k": {"k": 2},
                            "hysteresis": {"promote_after": "2d", "demote_after": 2}})");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->top_k, 2);
  EXPECT_EQ(p->promote_after, Holding{.value = Duration(hours(48))});
}

TEST(ParsePolicy, DefaultsAreFailClosed) {
  auto p = parse_policy("gates: {promote: 'sharpe >= 1'}");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->every, hours(24));
  EXPECT_EQ(p->window, hours(24 * 28));
  EXPECT_TRUE(p->demote_is_default);
  EXPECT_EQ(p->demote.to_string(), "not sharpe >= 1");  // demote as soon as promote fails
  EXPECT_EQ(p->score.to_string(), "sharpe");
  EXPECT_FALSE(p->top_k);
  EXPECT_EQ(p->demote_after, Holding{.value = 1});
}

TEST(ParsePolicy, StructuredGates) {
  auto p = parse_policy(R"(
gates:
  promote:
    and:
      - "sharpe >= 1.5"
      - or: ["trades >= 20", "win_rate > 60%"]
)");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->promote.to_string(), "sharpe >= 1.5 and (trades >= 20 or win_rate > 0.6)");
}

TEST(ParsePolicy, CronInsteadOfEvery) {
  auto p = parse_policy("evaluation: {cron: '0 0 * * 1'}\ngates: {promote: 'sharpe > 1'}");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_FALSE(p->every);
  EXPECT_EQ(p->cron, "0 0 * * 1");
  EXPECT_TRUE(
      parse_policy("evaluation: {cron: '*/15 9-17 1,15 1-12 0-7'}\ngates: {promote: 'true'}"));
}

TEST(ParsePolicy, RoundTrips) {
  for (const char* text :
       {kDesign, "gates: {promote: 'sharpe >= 1'}",
        "description: \"desk \\\"A\\\"\"\nevaluation: {cron: '0 0 * * 1', window: 2w}\n"
        "gates: {promote: {or: ['sharpe > 2', 'return(1w) >= 5%']}}\n"
        "correlation: {max: -0.5}\nhysteresis: {promote_after: 3}\n"
        "position: {on_promote: carry, on_demote: keep}"}) {
    auto p = parse_policy(text);
    ASSERT_TRUE(p) << p.error().message;
    const std::string printed = print_policy(*p);
    auto again = parse_policy(printed, "printed");
    ASSERT_TRUE(again) << again.error().message << "\n" << printed;
    EXPECT_EQ(*again, *p) << printed;
    EXPECT_EQ(print_policy(*again), printed);
  }
}

TEST(ParsePolicy, ErrorsNameLineColumnAndFix) {
  struct Case {
    std::string text;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {"", "p.yml: the policy is empty"},
           {"gatse: {}\n", "p.yml:1:1: unknown key 'gatse' in the policy; did you mean 'gates'?"},
           {"evaluation: {every: 1d}\n", "gates.promote is required"},
           {"gates: {demote: 'sharpe < 1'}", "p.yml:1:8: gates.promote is required"},
           {"gates:\n  promote: sharp >= 1\n",
            "p.yml:2:12: gates.promote: unknown metric 'sharp'; did you mean 'sharpe'?"},
           {"gates:\n  promote: \"sharpe >= 1 and tardes > 2\"\n",
            "p.yml:2:29: gates.promote: unknown metric 'tardes'"},
           {"gates: {promote: 'sharpe'}", "a gate must be a condition"},
           {"gates: {promote: 'true'}\nscore: 'sharpe > 1'",
            "p.yml:2:9: score: a score must be a number"},
           {"gates: {promote: 'true'}\nevaluation: {every: 6mo}",
            "p.yml:2:21: evaluation.every: invalid duration '6mo': months vary"},
           {"gates: {promote: 'true'}\nevaluation: {window: 0s}",
            "evaluation.window must be longer than zero"},
           {"gates: {promote: 'true'}\nevaluation: {every: 1d, cron: '0 0 * * *'}", "not both"},
           {"gates: {promote: 'true'}\nevaluation: {cron: '0 0 * *'}", "needs 5 fields"},
           {"gates: {promote: 'true'}\nevaluation: {cron: '0 24 * * *'}",
            "'24' is not a valid hour field"},
           {"gates: {promote: 'true'}\nevaluation: {cron: '0 0 * JAN *'}",
            "not a valid month field"},
           {"gates: {promote: 'true'}\nevaluation: {cron: '0 0 31 2 *'}",
            "evaluation.cron: the cron schedule \"0 0 31 2 *\" never matches a real date"},
           {"gates: {promote: 'true'}\ntop_k: {k: 0}", "p.yml:2:12: top_k.k must be at least 1"},
           {"gates: {promote: 'true'}\ntop_k: {k: -2}", "top_k.k must be at least 1"},
           {"gates: {promote: 'true'}\ntop_k: {k: two}",
            "top_k.k must be a whole number, not 'two'"},
           {"gates: {promote: 'true'}\ntop_k: 3", "top_k must be a mapping"},
           {"gates: {promote: 'true'}\ncorrelation: {max: 1.5}",
            "correlation.max must be between -1 and 1"},
           {"gates: {promote: 'true'}\ncorrelation: {max: 0.8, per_group: 0}",
            "per_group must be at least 1"},
           {"gates: {promote: 'true'}\ncorrelation: {per_group: 1}", "correlation needs max"},
           {"gates: {promote: 'true'}\nhysteresis: {promote_after: 0}",
            "must be at least 1; use 0s"},
           {"gates: {promote: 'true'}\nhysteresis: {demote_after: soon}",
            "a duration (e.g. 7d) or a number"},
           {"gates: {promote: 'true'}\nhysteresis: {promote_afer: 7d}",
            "did you mean 'promote_after'?"},
           {"gates: {promote: 'true'}\nposition: {on_promote: yolo}",
            "on_promote must be flat or carry"},
           {"gates: {promote: 'true', promote: 'false'}", "duplicate key 'promote'"},
           {"gates: {promote: {xor: ['true']}}", "unknown operator 'xor'"},
           {"gates: {promote: {and: []}}", "non-empty list"},
           {"gates: {promote: [1, 2]}", "must be an expression string"},
           {"gates: {promote: 'sharpe >= 1.5', demote: 'sharpe < 2'}",
            "gates.demote (sharpe < 2) is stricter than gates.promote (sharpe >= 1.5)"},
           {"gates: {promote: 'max_drawdown <= 0.2 and sharpe > 1', demote: 'max_drawdown > 0.1'}",
            "gates.demote (max_drawdown > 0.1) is stricter"},
           {"gates: {promote: 'sharpe >= 1.5', demote: 'sharpe <= 1.5'}", "is stricter"},
           {"gates: {promote: 'true'\n", "p.yml:2:1: malformed YAML/JSON"},
           {"{\"gates\": {\"promote\": \"sharpe > 1\",}", "malformed YAML/JSON"},
       }) {
    auto p = parse_policy(c.text, "p.yml");
    ASSERT_FALSE(p) << c.text;
    EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(p.error().message.find(c.want), std::string::npos)
        << c.text << "\n -> " << p.error().message;
  }
  // Hysteresis by value in the right direction is fine.
  EXPECT_TRUE(parse_policy("gates: {promote: 'sharpe >= 1.5', demote: 'sharpe < 1.0'}"));
  EXPECT_TRUE(parse_policy("gates: {promote: 'sharpe >= 1.5', demote: 'sharpe < 1.5'}"));
}

TEST(ReadPolicyFile, MissingFile) {
  auto p = read_policy_file("/nonexistent/policy.yml");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace qmtl::policy

namespace qmtl::policy {
namespace {

TEST(ParsePolicy, HostileNestingIsRefusedNotACrash) {
  const std::string deep_flow = "gates: " + std::string(10000, '[');
  auto a = parse_policy(deep_flow, "p.yml");
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("p.yml:1:40: the policy is nested too deeply"),
            std::string::npos)
      << a.error().message;
  std::string deep_block = "gates:\n";
  for (int i = 1; i < 200; ++i) deep_block += std::string(static_cast<size_t>(i), ' ') + "- \n";
  EXPECT_NE(parse_policy(deep_block).error().message.find("indented too deeply"),
            std::string::npos);
  const std::string deep_expr =
      "gates: {promote: '" + std::string(5000, '(') + "true" + std::string(5000, ')') + "'}";
  EXPECT_NE(parse_policy(deep_expr).error().message.find("nested too deeply"), std::string::npos);
  EXPECT_NE(parse_policy("gates: {promote: '" + std::string(5000, '-') + "1 > 0'}")
                .error()
                .message.find("nested too deeply"),
            std::string::npos);
  EXPECT_NE(parse_policy(std::string(2 << 20, '#')).error().message.find("larger than 1 MiB"),
            std::string::npos);
  // Brackets inside quotes do not count.
  EXPECT_TRUE(
      parse_policy("description: '" + std::string(100, '[') + "'\ngates: {promote: 'true'}"));
}

// "Billion laughs": 511 bytes whose aliases name ten of the previous level
// each, 10^9 values when walked. Refused after at most 100,000, in either
// form, and by the YAML reader that strategies and settings go through.
TEST(ParsePolicy, AliasExpansionIsBounded) {
  const std::string bomb = testing::yaml_alias_bomb();
  const std::string native = "gates: {promote: 'true'}\ndescription: *a8\n";
  const std::string expected = "the policy expands to more than 100000 values";
  for (const std::string& doc : {native, std::string("thresholds: *a8\n"), std::string()}) {
    auto p = parse_policy_document(bomb + doc, "p.yml");
    ASSERT_FALSE(p);
    EXPECT_NE(p.error().message.find(expected), std::string::npos) << p.error().message;
  }
  auto j = yaml_to_json(bomb, "s.yml");
  ASSERT_FALSE(j);
  EXPECT_NE(j.error().message.find("s.yml: the document expands to more than 100000 values"),
            std::string::npos)
      << j.error().message;
  // Aliases of aliases nest without brackets or indentation.
  std::string chain = "a0: &a0 1\n";
  for (int i = 1; i < 200; ++i) chain += fmt::format("a{}: &a{} [*a{}]\n", i, i, i - 1);
  auto deep = yaml_to_json(chain, "s.yml");
  ASSERT_FALSE(deep);
  EXPECT_NE(deep.error().message.find("nested too deeply (through YAML aliases)"),
            std::string::npos)
      << deep.error().message;
  // A few aliases, as people write them, still read.
  auto fine = yaml_to_json("base: &b {k: 1}\nx: *b\ny: *b\n", "s.yml");
  ASSERT_TRUE(fine) << fine.error().message;
  EXPECT_EQ(fine->at("y").at("k").as_int64(), 1);
}

}  // namespace
}  // namespace qmtl::policy
