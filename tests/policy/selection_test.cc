#include "qmtl/policy/selection.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

namespace qmtl::policy {
namespace {

using std::chrono::hours;
using Values = std::map<std::string, std::optional<double>>;

TimePoint now() { return *parse_timestamp("2026-03-01T00:00:00Z"); }
Duration days(int n) { return hours(24 * n); }

class SelectionTest : public ::testing::Test {
 protected:
  void policy(const std::string& yaml) {
    auto p = parse_policy(yaml);
    ASSERT_TRUE(p) << p.error().message;
    policy_ = std::move(*p);
  }
  Candidate& add(const std::string& id, CandidateState state, const Values& v) {
    Candidate c;
    c.id = id;
    c.state = state;
    c.history = days(365);
    c.dry_run_since = now() - days(100);
    if (state == CandidateState::kLive) c.live_since = now() - days(50);
    c.values.resize(policy_.refs.size());
    for (size_t i = 0; i < policy_.refs.size(); ++i) {
      auto it = v.find(policy_.refs.refs()[i].text());
      if (it != v.end()) c.values[i] = it->second;
    }
    cands_.push_back(c);
    return cands_.back();
  }
  Selection run(const Correlations& corr = {}, EvalContext ctx = {.now = now()}) {
    return select(policy_, cands_, ctx, corr);
  }
  static const StrategyResult& of(const Selection& s, const std::string& id) {
    for (const auto& r : s.results) {
      if (r.id == id) return r;
    }
    throw std::runtime_error("no result for " + id);
  }
  static bool has_reason(const StrategyResult& r, const std::string& part) {
    for (const auto& x : r.reasons) {
      if (x.find(part) != std::string::npos) return true;
    }
    return false;
  }
  // A selection without reasons decides as `full` did; one explaining some
  // strategies gives them the reasons `full` gave, and the others none; the
  // competing() strategies are those `full` ranked.
  void expect_same_without_reasons(const Selection& full, const Correlations& corr,
                                   const std::string& where,
                                   const EvalContext& base = {.now = now()}) {
    const std::vector<std::string> some{cands_.front().id};
    std::vector<size_t> ranked;
    for (size_t i = 0; i < full.results.size(); ++i) {
      if (full.results[i].rank) ranked.push_back(i);
    }
    EXPECT_EQ(competing(policy_, cands_, base), ranked) << where;
    for (const bool partly : {false, true}) {
      EvalContext ctx = base;
      ctx.explain = partly;
      if (partly) ctx.explain_only = some;
      const Selection quiet = run(corr, ctx);
      ASSERT_EQ(quiet.results.size(), full.results.size()) << where;
      EXPECT_EQ(quiet.live, full.live) << where;
      for (size_t i = 0; i < full.results.size(); ++i) {
        const auto &a = full.results[i], &b = quiet.results[i];
        EXPECT_EQ(a.decision, b.decision) << where << " " << a.id;
        EXPECT_EQ(a.score, b.score) << where << " " << a.id;
        EXPECT_EQ(a.rank, b.rank) << where << " " << a.id;
        EXPECT_EQ(a.group, b.group) << where << " " << a.id;
        EXPECT_EQ(a.gate_result, b.gate_result) << where << " " << a.id;
        EXPECT_EQ(a.record.promote_pass, b.record.promote_pass) << where << " " << a.id;
        EXPECT_EQ(a.record.out, b.record.out) << where << " " << a.id;
        const bool explained = partly && a.id == some.front();
        EXPECT_EQ(b.reasons, explained ? a.reasons : std::vector<std::string>{})
            << where << " " << a.id;
        EXPECT_EQ(b.clauses.size(), explained ? a.clauses.size() : 0) << where << " " << a.id;
      }
    }
  }
  Policy policy_;
  std::vector<Candidate> cands_;
};

TEST_F(SelectionTest, GatesDecideAndExplain) {
  policy("gates: {promote: 'sharpe >= 1.5 and trades >= 20', demote: 'sharpe < 1'}");
  add("good", CandidateState::kDryRun, {{"sharpe", 2.0}, {"trades", 30.0}});
  add("few-trades", CandidateState::kDryRun, {{"sharpe", 2.0}, {"trades", 5.0}});
  add("no-data", CandidateState::kDryRun, {{"sharpe", std::nullopt}, {"trades", 30.0}});
  add("live-ok", CandidateState::kLive, {{"sharpe", 1.2}, {"trades", 30.0}});
  add("live-bad", CandidateState::kLive, {{"sharpe", 0.5}, {"trades", 30.0}});
  add("live-blind", CandidateState::kLive, {{"sharpe", std::nullopt}});
  auto s = run();
  expect_same_without_reasons(s, {}, "first");
  EXPECT_EQ(of(s, "good").decision, Decision::kPromote);
  // No hysteresis in this policy: nothing is said about how long the gate held.
  EXPECT_EQ(of(s, "good").reasons.back(), "selected at rank 1");
  EXPECT_EQ(of(s, "good").clauses.size(), 2u);
  EXPECT_EQ(of(s, "good").clauses[0].expr, "sharpe >= 1.5");
  EXPECT_EQ(of(s, "good").clauses[0].value, 2.0);
  EXPECT_EQ(of(s, "good").clauses[0].pass, Tri::kTrue);
  const auto& few = of(s, "few-trades");
  EXPECT_EQ(few.decision, Decision::kHold);
  EXPECT_TRUE(has_reason(few, "promote gate failed: trades >= 20 (5)")) << few.reasons[0];
  const auto& nd = of(s, "no-data");
  EXPECT_EQ(nd.decision, Decision::kHold);
  EXPECT_EQ(nd.gate_result, Tri::kMissing);
  EXPECT_TRUE(has_reason(nd, "sharpe >= 1.5 (missing)"));
  EXPECT_EQ(of(s, "live-ok").decision, Decision::kHold);  // hysteresis by value: 1 <= 1.2 < 1.5
  EXPECT_EQ(of(s, "live-bad").decision, Decision::kDemote);
  EXPECT_TRUE(has_reason(of(s, "live-bad"), "demote gate is true: sharpe < 1 (0.5)"));
  const auto& blind = of(s, "live-blind");
  EXPECT_EQ(blind.decision, Decision::kDemote);  // missing data never keeps a strategy live
  EXPECT_TRUE(has_reason(blind, "missing values (counts as demote)"));
  EXPECT_EQ(s.live, (std::vector<std::string>{"good", "live-ok"}));
}

TEST_F(SelectionTest, EligibilityComesFirst) {
  policy("evaluation: {min_dry_run: 14d, window: 4w}\ngates: {promote: 'sharpe >= 1'}");
  add("young", CandidateState::kDryRun, {{"sharpe", 3.0}}).dry_run_since = now() - days(3);
  add("thin", CandidateState::kDryRun, {{"sharpe", 3.0}}).history = days(10);
  add("archived", CandidateState::kOther, {{"sharpe", 3.0}}).state_name = "Archived";
  add("ok", CandidateState::kDryRun, {{"sharpe", 3.0}});
  auto s = run();
  expect_same_without_reasons(s, {}, "first");
  EXPECT_EQ(of(s, "young").decision, Decision::kIneligible);
  EXPECT_TRUE(has_reason(of(s, "young"), "in dry-run for 3d; min_dry_run is 2w"));
  EXPECT_EQ(of(s, "thin").decision, Decision::kIneligible);
  EXPECT_TRUE(has_reason(of(s, "thin"), "only 10d of data; the evaluation window is 4w"));
  EXPECT_EQ(of(s, "archived").decision, Decision::kIneligible);
  EXPECT_TRUE(has_reason(of(s, "archived"), "state Archived is not evaluated"));
  EXPECT_EQ(of(s, "ok").decision, Decision::kPromote);
}

TEST_F(SelectionTest, RejectGateAtValidation) {
  policy("gates: {promote: 'sharpe >= 1', reject: 'max_drawdown > 0.5 or trades < 1'}");
  add("blown", CandidateState::kValidating, {{"max_drawdown", 0.7}, {"trades", 10.0}});
  add("idle", CandidateState::kValidating, {{"max_drawdown", 0.1}, {"trades", 0.0}});
  add("unknown", CandidateState::kValidating, {{"max_drawdown", std::nullopt}, {"trades", 10.0}});
  add("fine", CandidateState::kValidating, {{"max_drawdown", 0.1}, {"trades", 10.0}});
  auto s = run();
  expect_same_without_reasons(s, {}, "first");
  EXPECT_EQ(of(s, "blown").decision, Decision::kReject);
  EXPECT_TRUE(has_reason(of(s, "blown"), "reject gate is true: max_drawdown > 0.5 (0.7)"));
  EXPECT_EQ(of(s, "idle").decision, Decision::kReject);
  EXPECT_EQ(of(s, "unknown").decision, Decision::kReject);  // cannot prove it is safe
  EXPECT_TRUE(has_reason(of(s, "unknown"), "cannot be evaluated"));
  EXPECT_EQ(of(s, "fine").decision, Decision::kHold);
  EXPECT_TRUE(has_reason(of(s, "fine"), "validation passed"));
  EXPECT_TRUE(s.live.empty());
}

TEST_F(SelectionTest, RankTiesEarlierPromotionThenId) {
  policy("gates: {promote: 'sharpe >= 0'}\ntop_k: {k: 2}");
  add("b", CandidateState::kDryRun, {{"sharpe", 1.0}});
  add("a", CandidateState::kDryRun, {{"sharpe", 1.0}});
  add("late", CandidateState::kLive, {{"sharpe", 1.0}}).live_since = now() - days(5);
  add("early", CandidateState::kLive, {{"sharpe", 1.0}}).live_since = now() - days(90);
  add("best", CandidateState::kDryRun, {{"sharpe", 2.0}});
  auto s = run();
  EXPECT_EQ(*of(s, "best").rank, 1);
  EXPECT_EQ(*of(s, "early").rank, 2);
  EXPECT_EQ(*of(s, "late").rank, 3);
  EXPECT_EQ(*of(s, "a").rank, 4);
  EXPECT_EQ(*of(s, "b").rank, 5);
  EXPECT_EQ(s.live, (std::vector<std::string>{"best", "early"}));
  EXPECT_EQ(of(s, "late").decision, Decision::kDemote);  // incumbents ranked like everyone
  EXPECT_TRUE(has_reason(of(s, "late"), "outside top_k 2 (position 3"));
  EXPECT_EQ(of(s, "a").decision, Decision::kHold);
}

TEST_F(SelectionTest, MissingScoreIsNotRanked) {
  policy("gates: {promote: 'sharpe >= 0'}\nscore: 'sharpe / volatility'");
  add("zero-vol", CandidateState::kDryRun, {{"sharpe", 1.0}, {"volatility", 0.0}});
  add("live-zero-vol", CandidateState::kLive, {{"sharpe", 1.0}, {"volatility", 0.0}});
  add("ok", CandidateState::kDryRun, {{"sharpe", 1.0}, {"volatility", 0.5}});
  auto s = run();
  EXPECT_FALSE(of(s, "zero-vol").rank);
  EXPECT_EQ(of(s, "zero-vol").decision, Decision::kHold);
  EXPECT_TRUE(has_reason(of(s, "zero-vol"), "score is missing"));
  EXPECT_EQ(of(s, "live-zero-vol").decision, Decision::kDemote);
  EXPECT_EQ(*of(s, "ok").score, 2.0);
  EXPECT_EQ(s.live, std::vector<std::string>{"ok"});
}

TEST_F(SelectionTest, CorrelationGroupsAreConnectedComponents) {
  policy("gates: {promote: 'sharpe >= 0'}\ncorrelation: {max: 0.8, per_group: 1}");
  // a-b 0.9 and b-c 0.85 chain a, b, c into one group although a-c is 0.1.
  add("a", CandidateState::kDryRun, {{"sharpe", 3.0}});
  add("b", CandidateState::kDryRun, {{"sharpe", 2.0}});
  add("c", CandidateState::kLive, {{"sharpe", 1.0}});
  add("d", CandidateState::kDryRun, {{"sharpe", 0.5}});
  Correlations corr{
      .pairs = {{"a", "b", 0.9}, {"b", "c", 0.85}, {"a", "c", 0.1}, {"c", "d", 0.79}}};
  auto s = run(corr);
  EXPECT_EQ(*of(s, "a").group, 1);
  EXPECT_EQ(*of(s, "b").group, 1);
  EXPECT_EQ(*of(s, "c").group, 1);
  EXPECT_FALSE(of(s, "d").group);  // 0.79 < 0.8
  EXPECT_EQ(of(s, "a").decision, Decision::kPromote);
  EXPECT_EQ(of(s, "b").decision, Decision::kHold);
  EXPECT_TRUE(has_reason(of(s, "b"), "correlation 0.900 >= 0.8 with a (group 1 keeps its best 1)"));
  EXPECT_EQ(of(s, "c").decision, Decision::kDemote);
  EXPECT_EQ(of(s, "d").decision, Decision::kPromote);
  EXPECT_EQ(s.live, (std::vector<std::string>{"a", "d"}));
}

TEST_F(SelectionTest, CorrelationPerGroupAndMatrixInput) {
  policy("gates: {promote: 'sharpe >= 0'}\ncorrelation: {max: 0.8, per_group: 2}\ntop_k: {k: 2}");
  add("s0", CandidateState::kDryRun, {{"sharpe", 4.0}});
  add("s1", CandidateState::kDryRun, {{"sharpe", 3.0}});
  add("s2", CandidateState::kDryRun, {{"sharpe", 2.0}});
  add("s3", CandidateState::kDryRun, {{"sharpe", 1.0}});
  // Three identical series (s0, s1, s2) and one independent (s3), 4 x 4 periods.
  std::vector<double> r{0.01, -0.02, 0.03, 0.00, 0.01, -0.02, 0.03,  0.00,
                        0.01, -0.02, 0.03, 0.00, 0.02, 0.01,  -0.01, 0.03};
  auto m = metrics::correlation_matrix(r, 4, 4);
  auto s = run({.matrix = &m});
  EXPECT_EQ(of(s, "s2").decision, Decision::kHold);  // third of a group of 2 allowed
  EXPECT_TRUE(has_reason(of(s, "s2"), "group 1 keeps its best 2"));
  // Top-K is applied to the survivors: s0, s1 (s3 is fourth by score but third survivor).
  EXPECT_EQ(s.live, (std::vector<std::string>{"s0", "s1"}));
  EXPECT_TRUE(has_reason(of(s, "s3"), "outside top_k 2 (position 3 after correlation)"));
}

TEST_F(SelectionTest, PromoteAfterDuration) {
  policy("gates: {promote: 'sharpe >= 1'}\nhysteresis: {promote_after: 7d}");
  auto& held = add("held", CandidateState::kDryRun, {{"sharpe", 2.0}});
  for (int d = 8; d >= 1; --d) held.past.push_back({.at = now() - days(d), .promote_pass = true});
  auto& broken = add("broken", CandidateState::kDryRun, {{"sharpe", 2.0}});
  for (int d = 8; d >= 1; --d)
    broken.past.push_back({.at = now() - days(d), .promote_pass = d != 3});
  auto& fresh = add("fresh", CandidateState::kDryRun, {{"sharpe", 2.0}});
  (void)fresh;
  auto s = run();
  EXPECT_EQ(of(s, "held").decision, Decision::kPromote);
  EXPECT_TRUE(has_reason(of(s, "held"), "held 8d of 1w"));
  EXPECT_EQ(of(s, "broken").decision, Decision::kHold);
  EXPECT_TRUE(has_reason(of(s, "broken"), "has held 2d of 1w (hysteresis)"));
  EXPECT_EQ(of(s, "fresh").decision, Decision::kHold);
  EXPECT_TRUE(of(s, "fresh").record.promote_pass);
  EXPECT_EQ(s.live, std::vector<std::string>{"held"});
}

TEST_F(SelectionTest, DemoteAfterCount) {
  policy("gates: {promote: 'sharpe >= 1.5', demote: 'sharpe < 1'}\nhysteresis: {demote_after: 3}");
  auto& two = add("two-bad", CandidateState::kLive, {{"sharpe", 0.5}});
  two.past = {{.at = now() - days(2), .out = false}, {.at = now() - days(1), .out = true}};
  auto& three = add("three-bad", CandidateState::kLive, {{"sharpe", 0.5}});
  three.past = {{.at = now() - days(2), .out = true}, {.at = now() - days(1), .out = true}};
  auto s = run();
  EXPECT_EQ(of(s, "two-bad").decision, Decision::kHold);
  EXPECT_TRUE(has_reason(of(s, "two-bad"), "demotion pending: out for 2 of 3 evaluations"));
  EXPECT_TRUE(of(s, "two-bad").record.out);
  EXPECT_EQ(of(s, "three-bad").decision, Decision::kDemote);
  EXPECT_EQ(s.live, std::vector<std::string>{"two-bad"});
}

TEST_F(SelectionTest, PromoteAfterCountAndDemoteAfterDuration) {
  policy("gates: {promote: 'sharpe >= 1'}\nhysteresis: {promote_after: 2, demote_after: 2d}");
  auto& p = add("p", CandidateState::kDryRun, {{"sharpe", 2.0}});
  p.past = {{.at = now() - days(1), .promote_pass = true}};
  auto& d = add("d", CandidateState::kLive, {{"sharpe", 0.0}});
  d.past = {{.at = now() - days(1), .out = true}};
  auto s = run();
  EXPECT_EQ(of(s, "p").decision, Decision::kPromote);
  EXPECT_EQ(of(s, "d").decision, Decision::kHold);  // out for 1d of 2d
  d.past.insert(d.past.begin(), {.at = now() - days(2), .out = true});
  cands_[1] = d;
  EXPECT_EQ(of(run(), "d").decision, Decision::kDemote);
}

TEST_F(SelectionTest, EvalOnlyBlocksPromotion) {
  policy("gates: {promote: 'sharpe >= 1'}");
  add("x", CandidateState::kDryRun, {{"sharpe", 2.0}});
  auto s = run(
      {}, {.now = now(), .allow_promotion = false, .promotion_blocked_why = "world is EvalOnly"});
  expect_same_without_reasons(
      s, {}, "eval only",
      {.now = now(), .allow_promotion = false, .promotion_blocked_why = "world is EvalOnly"});
  EXPECT_EQ(of(s, "x").decision, Decision::kHold);
  EXPECT_TRUE(has_reason(of(s, "x"), "promotion is blocked: world is EvalOnly"));
  EXPECT_TRUE(s.live.empty());
}

TEST_F(SelectionTest, ManualOverridesAreReportedWhenUndone) {
  policy("gates: {promote: 'sharpe >= 1'}");
  add("forced-live", CandidateState::kLive, {{"sharpe", 0.2}}).manual = true;
  add("forced-off", CandidateState::kDryRun, {{"sharpe", 2.0}}).manual = false;
  add("kept", CandidateState::kLive, {{"sharpe", 2.0}}).manual = true;
  auto s = run();
  expect_same_without_reasons(s, {}, "first");
  EXPECT_TRUE(of(s, "forced-live").undoes_manual);
  EXPECT_TRUE(has_reason(of(s, "forced-live"), "undoes a manual override (on)"));
  EXPECT_TRUE(has_reason(of(s, "forced-off"), "undoes a manual override (off)"));
  EXPECT_TRUE(of(s, "forced-off").undoes_manual);
  EXPECT_FALSE(of(s, "kept").undoes_manual);
}

// The caps are hard (issue #20): a Live strategy waiting out its demotion
// keeps its slot, and its replacement waits, naming it.
TEST_F(SelectionTest, TopKWaitsForAPendingDemotion) {
  policy(
      "gates: {promote: 'sharpe >= 1', demote: 'sharpe < 0.5'}\ntop_k: {k: 1}\n"
      "hysteresis: {demote_after: 3}");
  add("old", CandidateState::kLive, {{"sharpe", 0.2}});
  add("new", CandidateState::kDryRun, {{"sharpe", 2.0}});
  auto s = run();
  expect_same_without_reasons(s, {}, "first");
  EXPECT_EQ(of(s, "old").decision, Decision::kHold);
  EXPECT_TRUE(has_reason(of(s, "old"), "demotion pending: out for 1 of 3"));
  EXPECT_EQ(of(s, "new").decision, Decision::kHold);
  EXPECT_TRUE(has_reason(of(s, "new"),
                         "waiting for a slot: old stays Live until its demotion completes (top_k "
                         "1 is full (old is Live))"))
      << of(s, "new").reasons.back();
  EXPECT_TRUE(of(s, "new").record.promote_pass);  // its hysteresis keeps counting
  EXPECT_EQ(s.live, std::vector<std::string>{"old"});
  // Once the demotion completes, the slot is free in the same evaluation.
  cands_[0].past = {{.at = now() - days(2), .out = true}, {.at = now() - days(1), .out = true}};
  s = run();
  EXPECT_EQ(of(s, "old").decision, Decision::kDemote);
  EXPECT_EQ(of(s, "new").decision, Decision::kPromote);
  EXPECT_EQ(s.live, std::vector<std::string>{"new"});
}

TEST_F(SelectionTest, TopKOfTwoNeverHoldsThree) {
  policy(
      "gates: {promote: 'sharpe >= 1', demote: 'sharpe < 0.5'}\ntop_k: {k: 2}\n"
      "hysteresis: {demote_after: 2}");
  add("keep", CandidateState::kLive, {{"sharpe", 1.5}});
  add("fading", CandidateState::kLive, {{"sharpe", 0.1}});
  add("x", CandidateState::kDryRun, {{"sharpe", 3.0}});
  add("y", CandidateState::kDryRun, {{"sharpe", 2.5}});
  auto s = run();
  // x and y rank above keep, so keep is out too, and both wait out their demotions.
  EXPECT_EQ(s.live, (std::vector<std::string>{"keep", "fading"}));
  EXPECT_EQ(of(s, "x").decision, Decision::kHold);
  EXPECT_EQ(of(s, "y").decision, Decision::kHold);
  EXPECT_TRUE(has_reason(of(s, "x"), "keep and fading stay Live until their demotions complete"))
      << of(s, "x").reasons.back();
}

TEST_F(SelectionTest, CorrelationGroupWaitsForAPendingDemotion) {
  policy(
      "gates: {promote: 'sharpe >= 1', demote: 'sharpe < 0.5'}\n"
      "correlation: {max: 0.8, per_group: 1}\nhysteresis: {demote_after: 3}");
  add("old", CandidateState::kLive, {{"sharpe", 0.2}});  // out: not even ranked
  add("twin", CandidateState::kDryRun, {{"sharpe", 2.0}});
  add("other", CandidateState::kDryRun, {{"sharpe", 1.5}});
  auto s = run({.pairs = {{"old", "twin", 1.0}}});
  expect_same_without_reasons(s, {.pairs = {{"old", "twin", 1.0}}}, "first");
  EXPECT_EQ(of(s, "old").decision, Decision::kHold);
  EXPECT_EQ(of(s, "twin").decision, Decision::kHold);
  EXPECT_TRUE(has_reason(of(s, "twin"),
                         "waiting for a slot: old stays Live until its demotion completes "
                         "(correlation 1.000 >= 0.8 with old (Live), and a correlation group may "
                         "have at most 1 Live)"))
      << of(s, "twin").reasons.back();
  EXPECT_EQ(of(s, "other").decision, Decision::kPromote);  // another group: a free slot
  EXPECT_EQ(s.live, (std::vector<std::string>{"other", "old"}));
}

TEST_F(SelectionTest, LiveBeyondACapIsDemotedAtOnce) {
  // k lowered from 3 to 1 with three Live: hysteresis does not keep the excess.
  policy(
      "gates: {promote: 'sharpe >= 1', demote: 'sharpe < 0.5'}\ntop_k: {k: 1}\n"
      "hysteresis: {demote_after: 5}");
  add("a", CandidateState::kLive, {{"sharpe", 3.0}});
  add("b", CandidateState::kLive, {{"sharpe", 2.0}});
  add("c", CandidateState::kLive, {{"sharpe", 0.1}});
  auto s = run();
  expect_same_without_reasons(s, {}, "first");
  EXPECT_EQ(of(s, "a").decision, Decision::kHold);
  EXPECT_EQ(of(s, "b").decision, Decision::kDemote);
  EXPECT_TRUE(has_reason(of(s, "b"), "demoted now: top_k 1 is full (a is Live)"));
  EXPECT_TRUE(of(s, "b").record.out);
  EXPECT_EQ(of(s, "c").decision, Decision::kDemote);
  EXPECT_EQ(s.live, std::vector<std::string>{"a"});
  // Two Live strategies whose correlation rose: the lower ranked leaves now.
  cands_.clear();
  policy(
      "gates: {promote: 'sharpe >= 1', demote: 'sharpe < 0.5'}\n"
      "correlation: {max: 0.8, per_group: 1}\nhysteresis: {demote_after: 5}");
  add("p", CandidateState::kLive, {{"sharpe", 3.0}});
  add("q", CandidateState::kLive, {{"sharpe", 2.0}});
  s = run({.pairs = {{"p", "q", 0.95}}});
  EXPECT_EQ(of(s, "q").decision, Decision::kDemote);
  EXPECT_TRUE(has_reason(of(s, "q"), "demoted now: correlation 0.950 >= 0.8 with p (Live)"));
  EXPECT_EQ(s.live, std::vector<std::string>{"p"});
}

TEST_F(SelectionTest, CapBreachForAManualPromotion) {
  policy("gates: {promote: 'sharpe >= 1'}\ntop_k: {k: 2}\ncorrelation: {max: 0.8}");
  add("a", CandidateState::kLive, {});
  add("b", CandidateState::kLive, {});
  add("c", CandidateState::kDryRun, {});
  const std::vector<size_t> two{0, 1}, one{0};
  EXPECT_EQ(cap_breach(policy_, cands_, two, 2), "top_k 2 is full (a and b are Live)");
  EXPECT_EQ(cap_breach(policy_, cands_, one, 2), std::nullopt);
  EXPECT_EQ(cap_breach(policy_, cands_, one, 2, {.pairs = {{"c", "a", 0.9}}}),
            "correlation 0.900 >= 0.8 with a (Live), and a correlation group may have at most 1 "
            "Live");
}

// Property: whatever the live set before (within the caps), the metrics, the
// correlations and the hysteresis records, the live set after select() is
// within the caps, and every Live strategy is either kept or demoted.
TEST_F(SelectionTest, RandomWorldsNeverExceedTheCaps) {
  std::mt19937_64 rng(20);
  std::uniform_real_distribution<double> u(0, 1);
  for (int world = 0; world < 400; ++world) {
    const int k = 1 + static_cast<int>(rng() % 4), per_group = 1 + static_cast<int>(rng() % 2);
    policy(
        fmt::format("gates: {{promote: 'sharpe >= 1', demote: 'sharpe < 0.5'}}\n"
                    "top_k: {{k: {}}}\ncorrelation: {{max: 0.8, per_group: {}}}\n"
                    "hysteresis: {{demote_after: {}, promote_after: {}}}",
                    k, per_group, 1 + rng() % 4, 1 + rng() % 2));
    cands_.clear();
    const size_t n = 2 + rng() % 10;
    std::vector<std::string> ids;
    for (size_t i = 0; i < n; ++i) ids.push_back(fmt::format("s{}", i));
    Correlations corr;
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = i + 1; j < n; ++j) {
        if (u(rng) < 0.3) corr.pairs.push_back({ids[i], ids[j], 0.8 + 0.2 * u(rng)});
      }
    }
    // A live set within the caps to start from.
    std::vector<size_t> live;
    std::vector<Candidate> tmp;
    for (size_t i = 0; i < n; ++i) {
      Candidate c;
      c.id = ids[i];
      tmp.push_back(c);
    }
    for (size_t i = 0; i < n; ++i) {
      if (u(rng) < 0.5 && !cap_breach(policy_, tmp, live, i, corr)) {
        live.push_back(i);
      }
    }
    for (size_t i = 0; i < n; ++i) {
      const bool is_live = std::find(live.begin(), live.end(), i) != live.end();
      std::optional<double> sharpe = 3 * u(rng);
      if (u(rng) < 0.05) sharpe.reset();
      auto& c = add(ids[i], is_live ? CandidateState::kLive : CandidateState::kDryRun,
                    {{"sharpe", sharpe}});
      for (int d = 3; d >= 1; --d) {
        c.past.push_back(
            {.at = now() - days(d), .promote_pass = u(rng) < 0.7, .out = u(rng) < 0.5});
      }
    }
    const auto s = run(corr);
    expect_same_without_reasons(s, corr, "world " + std::to_string(world));
    std::vector<size_t> after;
    for (const auto& id : s.live) {
      after.push_back(static_cast<size_t>(std::stoi(id.substr(1))));
    }
    ASSERT_LE(after.size(), static_cast<size_t>(k)) << "world " << world;
    for (size_t m = 0; m < after.size(); ++m) {
      std::vector<size_t> others(after.begin(), after.begin() + static_cast<ptrdiff_t>(m));
      ASSERT_EQ(cap_breach(policy_, cands_, others, after[m], corr), std::nullopt)
          << "world " << world << ": " << s.live[m];
    }
    for (size_t i = 0; i < cands_.size(); ++i) {
      const auto& r = s.results[i];
      const bool in_after = std::find(after.begin(), after.end(), i) != after.end();
      if (cands_[i].state == CandidateState::kLive) {
        ASSERT_EQ(in_after, r.decision != Decision::kDemote) << "world " << world << " " << r.id;
      } else {
        ASSERT_EQ(in_after, r.decision == Decision::kPromote) << "world " << world << " " << r.id;
      }
    }
  }
}

TEST(DecisionName, All) {
  EXPECT_EQ(decision_name(Decision::kPromote), "PROMOTE");
  EXPECT_EQ(decision_name(Decision::kIneligible), "INELIGIBLE");
}

}  // namespace
}  // namespace qmtl::policy
