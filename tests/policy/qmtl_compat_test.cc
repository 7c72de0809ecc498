#include "qmtl/policy/qmtl_compat.h"

#include <gtest/gtest.h>

#include <cmath>

#include "qmtl/policy/document.h"

namespace qmtl::policy {
namespace {

using Metrics = std::vector<std::pair<std::string, std::map<std::string, double, std::less<>>>>;

// One data-driven case: a QMTL policy, inputs, and the selected set QMTL's engine
// gives for them (worked out from its documented steps, noted per case).
struct Case {
  std::string name;
  std::string policy;
  Metrics metrics;
  std::vector<std::string> previous;
  std::vector<CorrelationPair> correlations;
  std::optional<std::string> stage;
  std::vector<std::string> selected;
};

// QMTL's sample policy shape: two profiles picked by stage.
constexpr const char* kProfiles = R"(validation_profiles:
  backtest:
    performance: {sharpe_min: 0.5, max_dd_max: 0.25}
  paper:
    performance: {sharpe_min: 0.8, max_dd_max: 0.2}
default_profile_by_stage:
  backtest_only: backtest
  paper_only: paper
selection:
  top_k: {metric: sharpe, k: 3}
)";

Metrics profile_metrics() {
  return {{"a", {{"sharpe", 0.7}, {"max_drawdown", 0.1}}},
          {"b", {{"sharpe", 0.9}, {"max_drawdown", 0.1}}},
          {"c", {{"sharpe", 1.2}, {"max_drawdown", 0.22}}}};
}

class QmtlCases : public ::testing::TestWithParam<Case> {};

TEST_P(QmtlCases, SelectsLikeQmtl) {
  const Case& c = GetParam();
  ASSERT_TRUE(looks_like_qmtl(c.policy)) << c.policy;
  auto p = parse_qmtl_policy(c.policy, "q.yml");
  ASSERT_TRUE(p) << p.error().message;
  const QmtlResult r = evaluate_qmtl(*p, {.metrics = c.metrics,
                                          .previous = c.previous,
                                          .correlations = c.correlations,
                                          .stage = c.stage});
  EXPECT_EQ(r.selected, c.selected);
  ASSERT_EQ(r.strategies.size(), c.metrics.size());
  for (const auto& s : r.strategies) {
    const bool sel = std::find(c.selected.begin(), c.selected.end(), s.id) != c.selected.end();
    const bool prev = std::find(c.previous.begin(), c.previous.end(), s.id) != c.previous.end();
    const Decision want = sel ? (prev ? Decision::kHold : Decision::kPromote)
                              : (prev ? Decision::kDemote : Decision::kHold);
    EXPECT_EQ(s.decision, want) << s.id;
    EXPECT_FALSE(s.reasons.empty()) << s.id;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Qmtl, QmtlCases,
    ::testing::Values(
        // Inclusive bounds: exactly min and exactly max pass.
        Case{"inclusive_bounds",
             "thresholds:\n  sharpe: {metric: sharpe, min: 1.0}\n  dd: {metric: max_drawdown, max: "
             "0.2}\n",
             {{"a", {{"sharpe", 1.0}, {"max_drawdown", 0.2}}},
              {"b", {{"sharpe", 0.99}, {"max_drawdown", 0.1}}},
              {"c", {{"sharpe", 2.0}, {"max_drawdown", 0.21}}},
              {"d", {{"sharpe", 2.0}}}},  // missing max_drawdown: fails
             {},
             {},
             std::nullopt,
             {"a"}},
        // Top-K: stable descending; ties keep input order; missing sorts last.
        Case{"topk_stable",
             "top_k: {metric: sharpe, k: 3}\n",
             {{"a", {{"sharpe", 1.0}}},
              {"b", {{"sharpe", 2.0}}},
              {"c", {{"sharpe", 1.0}}},
              {"d", {}},
              {"e", {{"sharpe", 1.0}}}},
             {},
             {},
             std::nullopt,
             {"b", "a", "c"}},
        Case{"topk_missing_last",
             "top_k: {metric: sharpe, k: 2}\n",
             {{"x", {}}, {"y", {{"sharpe", -5.0}}}},
             {},
             {},
             std::nullopt,
             {"y", "x"}},
        // Correlation: greedy over the ranked order with |corr|; unknown pairs = 0.
        Case{"correlation_greedy",
             "top_k: {metric: sharpe, k: 4}\ncorrelation: {max: 0.8}\n",
             {{"a", {{"sharpe", 4.0}}},
              {"b", {{"sharpe", 3.0}}},
              {"c", {{"sharpe", 2.0}}},
              {"d", {{"sharpe", 1.0}}}},
             {},
             {{"a", "b", -0.9}, {"b", "c", 0.95}, {"a", "c", 0.5}, {"c", "d", 0.81}},
             std::nullopt,
             // a kept; b |-0.9| > 0.8 with a: dropped; c 0.5 with a: kept (b no longer
             // counts); d 0.81 with c: dropped.
             {"a", "c"}},
        Case{"correlation_without_data_keeps_all",
             "thresholds: {}\ncorrelation: {max: 0.1}\n",
             {{"a", {}}, {"b", {}}},
             {},
             {},
             std::nullopt,
             {"a", "b"}},
        // Hysteresis: previously active stay while >= exit; new need >= enter.
        Case{"hysteresis",
             "hysteresis: {metric: sharpe, enter: 0.6, exit: 0.4}\n",
             {{"old_ok", {{"sharpe", 0.5}}},
              {"old_bad", {{"sharpe", 0.3}}},
              {"new_ok", {{"sharpe", 0.6}}},
              {"new_bad", {{"sharpe", 0.5}}},
              {"none", {}}},
             {"old_ok", "old_bad"},
             {},
             std::nullopt,
             {"old_ok", "new_ok"}},
        // The selection block, merged with top-level keys as QMTL does: top-level
        // thresholds win by key; the selection's top_k wins over the top-level one.
        Case{"selection_block_merge",
             "selection:\n  thresholds:\n    s: {metric: sharpe, min: 2.0}\n    t: {metric: "
             "trades, min: 10}\n"
             "  top_k: {metric: sharpe, k: 1}\n"
             "thresholds:\n  s: {metric: sharpe, min: 0.5}\n"
             "top_k: {metric: trades, k: 5}\n",
             {{"a", {{"sharpe", 1.0}, {"trades", 50}}},
              {"b", {{"sharpe", 1.5}, {"trades", 20}}},
              {"c", {{"sharpe", 3.0}, {"trades", 5}}}},
             {},
             {},
             std::nullopt,
             {"b"}},
        // Validation profiles chosen by stage; QMTL's sample policy.
        Case{"profile_by_stage_paper",
             kProfiles,
             profile_metrics(),
             {},
             {},
             std::string("paper"),
             {"b"}},
        Case{"profile_default_is_first_mapping",
             kProfiles,
             profile_metrics(),
             {},
             {},
             std::nullopt,
             {"c", "b", "a"}},
        Case{"profile_sample_section",
             "validation_profiles:\n  backtest:\n    sample: {min_effective_years: 2.0, "
             "min_trades_total: 50}\n",
             {{"a", {{"effective_history_years", 3.0}, {"n_trades_total", 60}}},
              {"b", {{"effective_history_years", 1.0}, {"n_trades_total", 60}}}},
             {},
             {},
             std::string("backtest"),
             {"a"}},
        // on_missing_metric: warn and ignore let a missing threshold metric pass.
        Case{"on_missing_warn",
             "thresholds:\n  s: {metric: sharpe, min: 1}\nvalidation: {on_missing_metric: warn}\n",
             {{"a", {}}, {"b", {{"sharpe", 0.5}}}},
             {},
             {},
             std::nullopt,
             {"a"}},
        // NaN is missing here (QMTL would let it through every bound).
        Case{"nan_is_missing",
             "thresholds:\n  s: {metric: sharpe, min: 1}\n",
             {{"a", {{"sharpe", std::nan("")}}}, {"b", {{"sharpe", 1.5}}}},
             {},
             {},
             std::nullopt,
             {"b"}}),
    [](const ::testing::TestParamInfo<Case>& param) { return param.param.name; });

TEST(QmtlPolicy, DocumentDispatchAndMixingIsAnError) {
  auto native = parse_policy_document("gates: {promote: 'sharpe > 1'}\ntop_k: {k: 2}");
  ASSERT_TRUE(native) << native.error().message;
  EXPECT_TRUE(std::holds_alternative<Policy>(*native));
  auto qmtl = parse_policy_document("top_k: {metric: sharpe, k: 2}");
  ASSERT_TRUE(qmtl) << qmtl.error().message;
  EXPECT_TRUE(std::holds_alternative<QmtlPolicy>(*qmtl));
  auto mixed = parse_policy_document(
      "thresholds: {s: {metric: sharpe, min: 1}}\ngates: {promote: 'true'}", "m.yml");
  ASSERT_FALSE(mixed);
  EXPECT_NE(mixed.error().message.find("m.yml:2:1: 'gates' belongs to the native policy form"),
            std::string::npos)
      << mixed.error().message;
}

// QMTL reads any subset of its keys; a document of only `correlation` (or
// only `hysteresis`) was refused as a native policy without gates.
TEST(QmtlPolicy, AnySubsetOfQmtlKeysIsQmtlForm) {
  for (const char* text :
       {"correlation: {max: 0.8}", "hysteresis: {metric: sharpe, enter: 1.0, exit: 0.5}",
        "correlation: {max: 0.8}\nhysteresis: {metric: sharpe, enter: 1.0, exit: 0.5}",
        "top_k: {metric: sharpe, k: 2}\ncorrelation: {max: 0.5}", "validation: {on_error: fail}"}) {
    auto doc = parse_policy_document(text);
    ASSERT_TRUE(doc) << text << ": " << doc.error().message;
    EXPECT_TRUE(std::holds_alternative<QmtlPolicy>(*doc)) << text;
  }
  // Correlation only: every strategy passes; the cap keeps the better of a pair.
  auto corr = parse_policy_document("correlation: {max: 0.8}");
  QmtlInput in;
  in.metrics = {{"a", {{"sharpe", 1.2}}}, {"b", {{"sharpe", 0.7}}}};
  in.correlations = {{"a", "b", 0.9}};
  const auto out = evaluate_qmtl(std::get<QmtlPolicy>(*corr), in);
  EXPECT_EQ(out.selected, std::vector<std::string>{"a"});
  // Native shapes without gates stay native, and say what is missing.
  for (const char* text : {"correlation: {max: 0.8, per_group: 1}", "top_k: {k: 2}",
                           "hysteresis: {promote_after: 2}", "{}"}) {
    auto doc = parse_policy_document(text);
    ASSERT_FALSE(doc) << text;
    EXPECT_NE(doc.error().message.find("gates.promote is required"), std::string::npos)
        << text << ": " << doc.error().message;
  }
}

TEST(QmtlPolicy, ErrorsNameLineColumn) {
  struct E {
    std::string text, want;
  };
  for (const E& e : std::vector<E>{
           {"thresholds: {s: {min: 1}}", "thresholds.s needs a metric"},
           {"thresholds: {s: {metric: sharpe, mni: 1}}",
            "unknown key 'mni' in thresholds.s; did you mean 'min'?"},
           {"thresholds: {s: {metric: sharpe, min: 2, max: 1}}", "min 2 is above max 1"},
           {"top_k: {metric: sharpe, k: 0}", "top_k.k must be at least 1"},
           {"correlation: {max: 2}\nthresholds: {}", "correlation.max must be between -1 and 1"},
           {"hysteresis: {metric: sharpe, enter: 0.4, exit: 0.6}",
            "exit (0.6) is above enter (0.4)"},
           {"hysteresis: {metric: sharpe, enter: 0.4}", "needs metric, enter and exit"},
           {"validation: {on_missing_metric: maybe}", "must be fail, warn or ignore"},
           {"validation_profiles: {bt: {performance: {sharpe_mn: 1}}}",
            "did you mean 'sharpe_min'?"},
           {"validation_profiles: {bt: {}}\ndefault_profile_by_stage: {paper_only: paper}",
            "q.yml:2:40: default_profile_by_stage.paper_only names profile 'paper'"},
           {"selection: {thresholds: {}, topk: {}}",
            "unknown key 'topk' in selection; did you mean 'top_k'?"},
       }) {
    auto p = parse_qmtl_policy(e.text, "q.yml");
    ASSERT_FALSE(p) << e.text;
    EXPECT_NE(p.error().message.find(e.want), std::string::npos)
        << e.text << " -> " << p.error().message;
  }
}

TEST(QmtlPolicy, ExplainsEachStep) {
  auto p = parse_qmtl_policy(
      "thresholds: {s: {metric: sharpe, min: 1}}\ntop_k: {metric: sharpe, k: 1}\n");
  ASSERT_TRUE(p);
  auto r = evaluate_qmtl(
      *p,
      {.metrics = {{"a", {{"sharpe", 2.0}}}, {"b", {{"sharpe", 1.5}}}, {"c", {{"sharpe", 0.5}}}},
       .previous = {"b"}});
  EXPECT_EQ(r.selected, std::vector<std::string>{"a"});
  EXPECT_EQ(r.strategies[0].decision, Decision::kPromote);
  EXPECT_EQ(r.strategies[1].decision, Decision::kDemote);
  EXPECT_EQ(r.strategies[1].reasons[0], "rank 2 by sharpe is outside top_k 1");
  EXPECT_EQ(r.strategies[2].clauses[0].expr, "sharpe >= 1");
  EXPECT_EQ(r.strategies[2].clauses[0].pass, Tri::kFalse);
  EXPECT_EQ(r.strategies[2].reasons[0], "a threshold is not met");
}

}  // namespace
}  // namespace qmtl::policy
