#include "qmtl/policy/qmtl_compat.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "qmtl/policy/yaml_reader.h"

namespace qmtl::policy {
namespace {

constexpr std::array<std::string_view, 5> kNativeOnly{"gates", "score", "evaluation", "position",
                                                      "description"};

// QMTL compares profile and stage names after trimming, lower-casing and
// turning '-' into '_'.
std::string normalize_key(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  std::string out;
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    out += c == '-' ? '_' : c;
  }
  return out;
}

// Later entries replace earlier ones with the same key in place; new keys append
// (Python's dict.update, which QMTL uses to merge threshold maps).
void update(std::vector<QmtlThreshold>& into, const std::vector<QmtlThreshold>& from) {
  for (const auto& t : from) {
    auto it = std::find_if(into.begin(), into.end(),
                           [&](const QmtlThreshold& x) { return x.key == t.key; });
    if (it != into.end()) {
      *it = t;
    } else {
      into.push_back(t);
    }
  }
}

class QmtlParser : public YamlReader {
 public:
  using YamlReader::YamlReader;

  Result<std::vector<QmtlThreshold>> thresholds(const YAML::Node& n, std::string_view where) const {
    if (!n.IsMap()) return fail(n, fmt::format("{} must map names to {{metric, min, max}}", where));
    std::vector<QmtlThreshold> out;
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      const std::string what = fmt::format("{}.{}", where, key);
      if (auto r = check_map(kv.second, {"metric", "min", "max"}, what); !r) return propagate(r);
      if (!kv.second["metric"]) return fail(kv.second, fmt::format("{} needs a metric", what));
      auto metric = scalar(kv.second["metric"], what + ".metric");
      if (!metric) return propagate(metric);
      QmtlThreshold t{.key = key, .metric = *metric};
      if (const auto m = kv.second["min"]; m && !m.IsNull()) {
        auto v = number(m, what + ".min");
        if (!v) return propagate(v);
        t.min = *v;
      }
      if (const auto m = kv.second["max"]; m && !m.IsNull()) {
        auto v = number(m, what + ".max");
        if (!v) return propagate(v);
        t.max = *v;
      }
      if (t.min && t.max && *t.min > *t.max) {
        return fail(kv.second, fmt::format("{}: min {} is above max {}; no value can pass", what,
                                           *t.min, *t.max));
      }
      out.push_back(std::move(t));
    }
    return out;
  }

  Result<void> selection_rules(const YAML::Node& n, std::string_view where, QmtlPolicy& p,
                               bool fill_only_missing) const {
    if (const auto t = n["top_k"]) {
      if (auto r = check_map(t, {"metric", "k"}, fmt::format("{}top_k", where)); !r)
        return propagate(r);
      if (!t["metric"] || !t["k"])
        return fail(t, "top_k needs metric and k, e.g. {metric: sharpe, k: 3}");
      auto metric = scalar(t["metric"], "top_k.metric");
      if (!metric) return propagate(metric);
      auto k = integer(t["k"], "top_k.k");
      if (!k) return propagate(k);
      if (*k <= 0) return fail(t["k"], "top_k.k must be at least 1");
      if (!fill_only_missing || !p.top_k) p.top_k = QmtlPolicy::TopK{*metric, *k};
    }
    if (const auto c = n["correlation"]) {
      if (auto r = check_map(c, {"max"}, fmt::format("{}correlation", where)); !r)
        return propagate(r);
      if (!c["max"]) return fail(c, "correlation needs max");
      auto max = number(c["max"], "correlation.max");
      if (!max) return propagate(max);
      if (*max < -1 || *max > 1) return fail(c["max"], "correlation.max must be between -1 and 1");
      if (!fill_only_missing || !p.correlation_max) p.correlation_max = *max;
    }
    if (const auto h = n["hysteresis"]) {
      if (auto r = check_map(h, {"metric", "enter", "exit"}, fmt::format("{}hysteresis", where));
          !r) {
        return propagate(r);
      }
      if (!h["metric"] || !h["enter"] || !h["exit"])
        return fail(h, "hysteresis needs metric, enter and exit");
      auto metric = scalar(h["metric"], "hysteresis.metric");
      if (!metric) return propagate(metric);
      auto enter = number(h["enter"], "hysteresis.enter");
      if (!enter) return propagate(enter);
      auto exit = number(h["exit"], "hysteresis.exit");
      if (!exit) return propagate(exit);
      if (*exit > *enter) {
        return fail(
            h, fmt::format("hysteresis.exit ({}) is above enter ({}): an active strategy would be "
                           "dropped while a new one with the same value enters",
                           *exit, *enter));
      }
      if (!fill_only_missing || !p.hysteresis)
        p.hysteresis = QmtlPolicy::Hysteresis{*metric, *enter, *exit};
    }
    return {};
  }

  // One section of a validation profile: each known field becomes a threshold on
  // QMTL's metric for it.
  struct FieldMap {
    std::string_view field, metric;
    bool is_min;
  };
  Result<void> profile_section(const YAML::Node& n, std::string_view where,
                               std::initializer_list<FieldMap> fields,
                               std::initializer_list<std::string_view> ignored,
                               std::vector<QmtlThreshold>& out) const {
    std::vector<std::string_view> allowed{"severity", "owner"};
    for (const auto& f : fields) allowed.push_back(f.field);
    for (auto x : ignored) allowed.push_back(x);
    if (!n.IsMap()) return fail(n, fmt::format("{} must be a mapping", where));
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        const std::string hint = did_you_mean(key, allowed);
        return fail(kv.first,
                    fmt::format("unknown key '{}' in {}; {}", key, where,
                                hint.empty() ? fmt::format("allowed: {}", fmt::join(allowed, ", "))
                                             : hint));
      }
    }
    for (const auto& f : fields) {
      const auto v = n[std::string(f.field)];
      if (!v || v.IsNull()) continue;
      auto x = number(v, fmt::format("{}.{}", where, f.field));
      if (!x) return propagate(x);
      QmtlThreshold t{.key = std::string(f.metric), .metric = std::string(f.metric)};
      (f.is_min ? t.min : t.max) = *x;
      out.push_back(std::move(t));
    }
    for (auto meta : {"severity", "owner"}) {
      if (const auto v = n[meta]) {
        if (auto s = scalar(v, fmt::format("{}.{}", where, meta)); !s) return propagate(s);
      }
    }
    return {};
  }

  Result<std::vector<QmtlThreshold>> profile(const YAML::Node& n, std::string_view where) const {
    if (auto r = check_map(n, {"sample", "performance", "robustness", "risk"}, where); !r)
      return propagate(r);
    std::vector<QmtlThreshold> out;
    if (const auto s = n["sample"]) {
      if (auto r = profile_section(s, fmt::format("{}.sample", where),
                                   {{"min_effective_years", "effective_history_years", true},
                                    {"min_trades_total", "n_trades_total", true}},
                                   {}, out);
          !r) {
        return propagate(r);
      }
    }
    if (const auto s = n["performance"]) {
      if (auto r = profile_section(s, fmt::format("{}.performance", where),
                                   {{"sharpe_min", "sharpe", true},
                                    {"max_dd_max", "max_drawdown", false},
                                    {"gain_to_pain_min", "gain_to_pain_ratio", true}},
                                   {}, out);
          !r) {
        return propagate(r);
      }
    }
    if (const auto s = n["robustness"]) {
      // cv_sharpe_gap_max is accepted and, as in QMTL, not turned into a threshold.
      if (auto r = profile_section(s, fmt::format("{}.robustness", where),
                                   {{"dsr_min", "deflated_sharpe_ratio", true}},
                                   {"cv_sharpe_gap_max"}, out);
          !r) {
        return propagate(r);
      }
    }
    if (const auto s = n["risk"]) {
      if (auto r =
              profile_section(s, fmt::format("{}.risk", where),
                              {{"adv_utilization_p95_max", "adv_utilization_p95", false},
                               {"participation_rate_p95_max", "participation_rate_p95", false}},
                              {}, out);
          !r) {
        return propagate(r);
      }
    }
    return out;
  }

  Result<QmtlPolicy> policy(const YAML::Node& root) const {
    if (!root.IsDefined() || root.IsNull()) return fail(root, "the policy is empty");
    if (!root.IsMap()) return fail(root, "the policy must be a mapping of keys to values");
    for (const auto& kv : root) {
      const std::string key = kv.first.Scalar();
      if (std::find(kNativeOnly.begin(), kNativeOnly.end(), key) != kNativeOnly.end()) {
        return fail(
            kv.first,
            fmt::format("'{}' belongs to the native policy form, but this policy uses QMTL's "
                        "form (thresholds/selection/top_k.metric); use one form",
                        key));
      }
    }
    if (auto r = check_map(root,
                           {"thresholds", "top_k", "correlation", "hysteresis", "selection",
                            "validation_profiles", "default_profile_by_stage", "validation"},
                           "the QMTL policy");
        !r) {
      return propagate(r);
    }
    QmtlPolicy p;
    // QMTL merges selection.* with the top-level keys: top-level thresholds win by
    // key; for top_k, correlation and hysteresis the selection block wins.
    if (const auto sel = root["selection"]) {
      if (auto r =
              check_map(sel, {"thresholds", "top_k", "correlation", "hysteresis"}, "selection");
          !r) {
        return propagate(r);
      }
      if (const auto t = sel["thresholds"]) {
        auto th = thresholds(t, "selection.thresholds");
        if (!th) return propagate(th);
        p.thresholds = std::move(*th);
      }
      if (auto r = selection_rules(sel, "selection.", p, false); !r) return propagate(r);
    }
    if (const auto t = root["thresholds"]) {
      auto th = thresholds(t, "thresholds");
      if (!th) return propagate(th);
      update(p.thresholds, *th);
    }
    if (auto r = selection_rules(root, "", p, true); !r) return propagate(r);
    if (const auto vp = root["validation_profiles"]) {
      if (!vp.IsMap()) return fail(vp, "validation_profiles must map profile names to profiles");
      for (const auto& kv : vp) {
        const std::string name = kv.first.Scalar();
        auto th = profile(kv.second, fmt::format("validation_profiles.{}", name));
        if (!th) return propagate(th);
        p.profiles.emplace_back(name, std::move(*th));
      }
    }
    if (const auto d = root["default_profile_by_stage"]) {
      if (!d.IsMap()) return fail(d, "default_profile_by_stage must map stages to profile names");
      for (const auto& kv : d) {
        auto v = scalar(kv.second, fmt::format("default_profile_by_stage.{}", kv.first.Scalar()));
        if (!v) return propagate(v);
        const bool known = std::any_of(p.profiles.begin(), p.profiles.end(), [&](const auto& x) {
          return normalize_key(x.first) == normalize_key(*v);
        });
        if (!known) {
          return fail(kv.second,
                      fmt::format("default_profile_by_stage.{} names profile '{}', which "
                                  "validation_profiles does not define",
                                  kv.first.Scalar(), *v));
        }
        p.default_profile_by_stage.emplace_back(kv.first.Scalar(), *v);
      }
    }
    if (const auto v = root["validation"]) {
      if (auto r = check_map(v, {"on_error", "on_missing_metric"}, "validation"); !r)
        return propagate(r);
      if (const auto e = v["on_error"]) {
        auto s = scalar(e, "validation.on_error");
        if (!s) return propagate(s);
        if (*s != "fail" && *s != "warn")
          return fail(e, "validation.on_error must be fail or warn");
      }
      if (const auto m = v["on_missing_metric"]) {
        auto s = scalar(m, "validation.on_missing_metric");
        if (!s) return propagate(s);
        if (*s == "fail") {
          p.on_missing = QmtlPolicy::OnMissing::kFail;
        } else if (*s == "warn") {
          p.on_missing = QmtlPolicy::OnMissing::kWarn;
        } else if (*s == "ignore") {
          p.on_missing = QmtlPolicy::OnMissing::kIgnore;
        } else {
          return fail(m, "validation.on_missing_metric must be fail, warn or ignore");
        }
      }
    }
    return p;
  }
};

std::optional<std::string> choose_profile(const QmtlPolicy& p,
                                          const std::optional<std::string>& stage) {
  if (p.profiles.empty()) return std::nullopt;
  auto resolve = [&](std::string_view candidate) -> std::optional<std::string> {
    const std::string n = normalize_key(candidate);
    if (n.empty()) return std::nullopt;
    for (const auto& [name, th] : p.profiles) {
      if (normalize_key(name) == n) return name;
    }
    return std::nullopt;
  };
  if (stage) {
    const std::string s = normalize_key(*stage);
    for (const std::string& key : {s, s + "_only"}) {
      for (const auto& [k, v] : p.default_profile_by_stage) {
        if (normalize_key(k) == key) {
          if (auto r = resolve(v)) return r;
        }
      }
    }
    if (auto r = resolve(*stage)) return r;
  }
  for (const auto& [k, v] : p.default_profile_by_stage) {
    if (auto r = resolve(v)) return r;
  }
  for (const char* fallback : {"backtest", "paper"}) {
    if (auto r = resolve(fallback)) return r;
  }
  return p.profiles.front().first;
}

std::optional<double> metric_of(const QmtlInput& in, size_t i, std::string_view name) {
  const auto& m = in.metrics[i].second;
  const auto it = m.find(name);
  if (it == m.end() || !std::isfinite(it->second)) return std::nullopt;  // NaN is missing
  return it->second;
}

}  // namespace

bool looks_like_qmtl(std::string_view text) {
  auto loaded = YamlReader("policy").load(text);
  if (!loaded) return false;
  try {
    const YAML::Node& root = *loaded;
    if (!root.IsMap()) return false;
    for (const char* key : {"thresholds", "selection", "validation_profiles",
                            "default_profile_by_stage", "validation"}) {
      if (root[key]) return true;
    }
    if (const auto t = root["top_k"]; t && t.IsMap() && t["metric"]) return true;
    if (const auto h = root["hysteresis"];
        h && h.IsMap() && (h["metric"] || h["enter"] || h["exit"]))
      return true;
    // Any other subset of QMTL's keys (only `correlation: {max}`, say) is QMTL's
    // form too, as QMTL reads it: a native policy always has `gates`, so a
    // document without it whose keys, and the keys of its blocks, are all
    // QMTL's cannot be native. An empty document stays native (and refused).
    if (root.size() == 0 || root["gates"]) return false;
    auto only = [](const YAML::Node& n, std::initializer_list<std::string_view> keys) {
      if (!n.IsMap()) return false;
      for (const auto& kv : n) {
        if (std::find(keys.begin(), keys.end(), kv.first.Scalar()) == keys.end()) return false;
      }
      return true;
    };
    for (const auto& kv : root) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      const bool qmtl_block = (key == "correlation" && only(v, {"max"})) ||
                              (key == "top_k" && only(v, {"metric", "k"}) && v["metric"]) ||
                              (key == "hysteresis" && only(v, {"metric", "enter", "exit"}));
      if (!qmtl_block) return false;
    }
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

Result<QmtlPolicy> parse_qmtl_policy(std::string_view text, std::string_view source) {
  QmtlParser parser(source);
  auto root = parser.load(text);
  if (!root) return propagate(root);
  try {
    return parser.policy(*root);
  } catch (const YAML::Exception& e) {
    return parser.fail(e.mark, fmt::format("malformed YAML/JSON: {}", e.msg));
  }
}

namespace {

// Step 1 for strategy i: every threshold, as clauses of r; true when it passes
// (a missing metric as on_missing_metric says).
bool meets_thresholds(const QmtlPolicy& policy, const std::vector<QmtlThreshold>& thresholds,
                      const QmtlInput& in, size_t i, StrategyResult& r) {
  bool ok = true, any_missing = false;
  for (const auto& t : thresholds) {
    const auto v = metric_of(in, i, t.metric);
    auto clause = [&](std::string_view op, double bound, bool pass) {
      ClauseResult c{.expr = fmt::format("{} {} {}", t.metric, op, bound), .value = v};
      c.pass = !v ? Tri::kMissing : pass ? Tri::kTrue : Tri::kFalse;
      r.clauses.push_back(std::move(c));
    };
    if (!v) {
      any_missing = true;
      if (t.min) clause(">=", *t.min, false);
      if (t.max) clause("<=", *t.max, false);
      if (!t.min && !t.max)
        r.clauses.push_back({.expr = t.metric + " present", .pass = Tri::kMissing});
      if (policy.on_missing == QmtlPolicy::OnMissing::kFail) ok = false;
      continue;
    }
    if (t.min) {
      clause(">=", *t.min, *v >= *t.min);
      ok = ok && *v >= *t.min;
    }
    if (t.max) {
      clause("<=", *t.max, *v <= *t.max);
      ok = ok && *v <= *t.max;
    }
  }
  r.gate_result = ok                                                                 ? Tri::kTrue
                  : any_missing && policy.on_missing == QmtlPolicy::OnMissing::kFail ? Tri::kMissing
                                                                                     : Tri::kFalse;
  if (!ok) {
    r.reasons.push_back(r.gate_result == Tri::kMissing
                            ? "a threshold metric is missing (on_missing_metric: fail)"
                            : "a threshold is not met");
    return false;
  }
  if (any_missing) {
    r.reasons.push_back(policy.on_missing == QmtlPolicy::OnMissing::kWarn
                            ? "warning: a threshold metric is missing (on_missing_metric: warn)"
                            : "a missing threshold metric was ignored (on_missing_metric: ignore)");
  }
  return true;
}

// Step 3: greedy over the ranked order, keeping a candidate if |corr| <= max
// with every kept one; unknown pairs count as 0.
std::vector<size_t> decorrelate(const QmtlPolicy& policy, const QmtlInput& in,
                                const std::vector<size_t>& cands, QmtlResult& out) {
  std::unordered_map<std::string, double> pair;
  auto key = [](std::string_view a, std::string_view b) {
    return a < b ? fmt::format("{}\n{}", a, b) : fmt::format("{}\n{}", b, a);
  };
  for (const auto& c : in.correlations) pair[key(c.a, c.b)] = c.value;
  std::vector<size_t> kept;
  for (size_t i : cands) {
    bool ok = true;
    for (size_t j : kept) {
      const auto it = pair.find(key(in.metrics[i].first, in.metrics[j].first));
      const double c = it == pair.end() ? 0.0 : it->second;
      if (std::abs(c) > *policy.correlation_max) {
        out.strategies[i].reasons.push_back(fmt::format("|correlation| {:.3f} > {} with {}",
                                                        std::abs(c), *policy.correlation_max,
                                                        in.metrics[j].first));
        ok = false;
        break;
      }
    }
    if (ok) kept.push_back(i);
  }
  return kept;
}

}  // namespace

QmtlResult evaluate_qmtl(const QmtlPolicy& policy, const QmtlInput& in) {
  QmtlResult out;
  const size_t n = in.metrics.size();
  out.strategies.resize(n);
  std::vector<QmtlThreshold> thresholds = policy.thresholds;
  out.profile = choose_profile(policy, in.stage);
  if (out.profile) {
    for (const auto& [name, th] : policy.profiles) {
      if (name == *out.profile) update(thresholds, th);
    }
  }
  auto was_active = [&](const std::string& id) {
    return std::find(in.previous.begin(), in.previous.end(), id) != in.previous.end();
  };

  // 1. Thresholds, in input order.
  std::vector<size_t> cands;
  for (size_t i = 0; i < n; ++i) {
    StrategyResult& r = out.strategies[i];
    r.id = in.metrics[i].first;
    r.gate = "thresholds";
    if (meets_thresholds(policy, thresholds, in, i, r)) cands.push_back(i);
  }

  // 2. Top-K: stable, descending, missing last.
  if (policy.top_k) {
    constexpr double kNegInf = -std::numeric_limits<double>::infinity();
    for (size_t i : cands) {
      out.strategies[i].score = metric_of(in, i, policy.top_k->metric);
    }
    std::stable_sort(cands.begin(), cands.end(), [&](size_t a, size_t b) {
      return out.strategies[a].score.value_or(kNegInf) > out.strategies[b].score.value_or(kNegInf);
    });
    for (size_t k = 0; k < cands.size(); ++k)
      out.strategies[cands[k]].rank = static_cast<int>(k + 1);
    if (cands.size() > static_cast<size_t>(policy.top_k->k)) {
      for (size_t k = static_cast<size_t>(policy.top_k->k); k < cands.size(); ++k) {
        out.strategies[cands[k]].reasons.push_back(fmt::format(
            "rank {} by {} is outside top_k {}", k + 1, policy.top_k->metric, policy.top_k->k));
      }
      cands.resize(static_cast<size_t>(policy.top_k->k));
    }
  }

  // 3. Correlation.
  if (policy.correlation_max && !in.correlations.empty())
    cands = decorrelate(policy, in, cands, out);

  // 4. Hysteresis: the previously active stay while >= exit; new need >= enter.
  if (policy.hysteresis) {
    std::vector<size_t> kept;
    const auto& h = *policy.hysteresis;
    for (size_t i : cands) {
      const auto v = metric_of(in, i, h.metric);
      const bool prev = was_active(in.metrics[i].first);
      const double bar = prev ? h.exit : h.enter;
      if (v && *v >= bar) {
        kept.push_back(i);
      } else {
        out.strategies[i].reasons.push_back(
            v ? fmt::format("{} {} is below the hysteresis {} of {}", h.metric, *v,
                            prev ? "exit" : "enter", bar)
              : fmt::format("{} is missing (hysteresis)", h.metric));
      }
    }
    cands = std::move(kept);
  }

  std::vector<char> selected(n, 0);
  for (size_t i : cands) {
    selected[i] = 1;
    out.selected.push_back(in.metrics[i].first);
  }
  for (size_t i = 0; i < n; ++i) {
    StrategyResult& r = out.strategies[i];
    const bool prev = was_active(r.id);
    if (selected[i]) {
      r.decision = prev ? Decision::kHold : Decision::kPromote;
      r.reasons.push_back(prev ? "stays active" : "selected");
    } else {
      r.decision = prev ? Decision::kDemote : Decision::kHold;
    }
    r.record = {.promote_pass = r.gate_result == Tri::kTrue, .out = prev && !selected[i]};
  }
  return out;
}

}  // namespace qmtl::policy
