#include "qmtl/policy/offline.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "qmtl/core/id.h"

namespace qmtl::policy {
namespace {

tl::unexpected<Error> bad(const std::string& input, std::string_view why) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("{}: {}", input, why));
}

// A JSON number beyond a double's range reads as infinity: an error, not a
// value the policy would treat as missing.
constexpr std::string_view kNotFinite =
    "is not a finite number (beyond +-1.8e308); give a finite value or null";

std::optional<double> number_of(const boost::json::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return std::nullopt;
}

Result<void> check_previous(const OfflineInputs& in, const std::vector<std::string>& ids) {
  for (const auto& id : in.previous) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
      return make_error(
          ErrorCode::kInvalidArgument,
          fmt::format("{} names '{}', which is not in {}", in.previous_name, id, in.metrics_name));
    }
  }
  return {};
}

// Calls fn(id, metrics) for each strategy of the metrics document, after
// checking its shape and ids, then checks that `previous` names only them.
Result<void> each_strategy(
    const OfflineInputs& in,
    const std::function<Result<void>(const std::string&, const boost::json::object&)>& fn) {
  if (!in.metrics.is_object())
    return bad(in.metrics_name, "must be an object {\"<strategy>\": {\"<metric>\": number}}");
  std::vector<std::string> ids;
  for (const auto& [key, metrics] : in.metrics.get_object()) {
    const std::string id(key);
    if (auto v = validate_id("strategy", id); !v) return bad(in.metrics_name, v.error().message);
    if (!metrics.is_object())
      return bad(in.metrics_name, fmt::format("'{}' must map metric names to numbers", id));
    if (auto r = fn(id, metrics.get_object()); !r) return r;
    ids.push_back(id);
  }
  return check_previous(in, ids);
}

Result<std::vector<Candidate>> load_candidates(const OfflineInputs& in, const Policy& p) {
  std::vector<Candidate> out;
  auto each = each_strategy(
      in, [&](const std::string& id, const boost::json::object& metrics) -> Result<void> {
        Candidate c;
        c.id = id;
        const bool live =
            std::find(in.previous.begin(), in.previous.end(), id) != in.previous.end();
        c.state = live ? CandidateState::kLive : CandidateState::kDryRun;
        c.history = p.window;
        c.dry_run_since = in.now - p.min_dry_run;
        if (live) c.live_since = in.now;
        c.values.resize(p.refs.size());
        for (size_t s = 0; s < p.refs.size(); ++s) {
          const auto* v = metrics.if_contains(p.refs.refs()[s].text());
          if (v == nullptr || v->is_null()) continue;
          auto x = number_of(*v);
          if (!x) {
            return bad(in.metrics_name, fmt::format("'{}'.'{}' must be a number or null", id,
                                                    p.refs.refs()[s].text()));
          }
          if (!std::isfinite(*x)) {
            return bad(in.metrics_name,
                       fmt::format("'{}'.'{}' {}", id, p.refs.refs()[s].text(), kNotFinite));
          }
          c.values[s] = *x;
        }
        out.push_back(std::move(c));
        return {};
      });
  if (!each) return propagate(each);
  return out;
}

Result<void> load_correlations(const boost::json::value& doc, const std::string& name,
                               Correlations& corr) {
  if (!doc.is_array()) return bad(name, "must be a list [{\"a\": id, \"b\": id, \"value\": x}]");
  for (const auto& item : doc.get_array()) {
    const auto* o = item.if_object();
    const auto* a = o ? o->if_contains("a") : nullptr;
    const auto* b = o ? o->if_contains("b") : nullptr;
    const auto* v = o ? o->if_contains("value") : nullptr;
    if (!a || !b || !v || !a->is_string() || !b->is_string() || !number_of(*v)) {
      return bad(name, "each entry needs \"a\" and \"b\" (ids) and a numeric \"value\"");
    }
    const double x = *number_of(*v);
    if (x < -1 || x > 1) return bad(name, fmt::format("correlation {} is outside [-1, 1]", x));
    corr.pairs.push_back({std::string(a->get_string()), std::string(b->get_string()), x});
  }
  return {};
}

Result<void> load_history(const boost::json::value& doc, const std::string& name,
                          std::vector<Candidate>& cands) {
  if (!doc.is_object())
    return bad(name, "must be an object {\"<strategy>\": [{\"at\", \"promote_pass\", \"out\"}]}");
  for (const auto& [key, list] : doc.get_object()) {
    const std::string_view id = key;  // a structured binding cannot be captured in C++20
    auto it =
        std::find_if(cands.begin(), cands.end(), [&](const Candidate& c) { return c.id == id; });
    if (it == cands.end()) continue;  // history of a strategy not evaluated now
    if (!list.is_array()) return bad(name, fmt::format("'{}' must be a list", id));
    for (const auto& e : list.get_array()) {
      const auto* o = e.if_object();
      const auto* at = o ? o->if_contains("at") : nullptr;
      if (!at || !at->is_string()) return bad(name, "each entry needs \"at\" (an ISO-8601 time)");
      auto t = parse_timestamp(at->get_string());
      if (!t) return bad(name, t.error().message);
      PastEvaluation pe{.at = *t};
      if (const auto* x = o->if_contains("promote_pass"); x && x->is_bool())
        pe.promote_pass = x->get_bool();
      if (const auto* x = o->if_contains("out"); x && x->is_bool()) pe.out = x->get_bool();
      if (!it->past.empty() && pe.at < it->past.back().at) {
        return bad(name, fmt::format("entries of '{}' must be in time order", id));
      }
      it->past.push_back(pe);
    }
  }
  return {};
}

// QMTL's metric payloads may nest; like QMTL, each numeric leaf is reachable by
// its own name and by its dotted path, the first occurrence winning.
Result<void> flatten(const boost::json::value& v, std::vector<std::string>& path,
                     std::map<std::string, double, std::less<>>& out) {
  if (const auto* o = v.if_object()) {
    for (const auto& [k, x] : *o) {
      path.emplace_back(k);
      if (auto r = flatten(x, path, out); !r) return r;
      path.pop_back();
    }
    return {};
  }
  const auto x = number_of(v);
  if (!x || path.empty()) return {};
  const std::string dotted = fmt::format("{}", fmt::join(path, "."));
  if (!std::isfinite(*x)) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("'{}' {}", dotted, kNotFinite));
  }
  out.emplace(path.back(), *x);
  out.emplace(dotted, *x);
  return {};
}

Result<QmtlInput> load_qmtl_input(const OfflineInputs& in) {
  QmtlInput out;
  auto each = each_strategy(
      in, [&](const std::string& id, const boost::json::object& metrics) -> Result<void> {
        std::vector<std::string> path;
        std::map<std::string, double, std::less<>> flat;
        if (auto r = flatten(metrics, path, flat); !r) {
          return bad(in.metrics_name, fmt::format("'{}'.{}", id, r.error().message));
        }
        out.metrics.emplace_back(id, std::move(flat));
        return {};
      });
  if (!each) return propagate(each);
  out.previous = in.previous;
  out.stage = in.stage;
  if (in.correlations) {
    Correlations c;
    if (auto r = load_correlations(*in.correlations, in.correlations_name, c); !r) {
      return propagate(r);
    }
    out.correlations = std::move(c.pairs);
  }
  return out;
}

boost::json::value result_json(const StrategyResult& r) {
  boost::json::object o;
  boost::json::array clauses;
  for (const auto& c : r.clauses) {
    boost::json::object x{{"expr", c.expr}};
    x["value"] = c.value ? boost::json::value(*c.value) : boost::json::value(nullptr);
    x["pass"] = c.pass == Tri::kMissing ? boost::json::value(nullptr)
                                        : boost::json::value(c.pass == Tri::kTrue);
    clauses.push_back(std::move(x));
  }
  o["gate"] = r.gate.empty() ? boost::json::value(nullptr) : boost::json::value(r.gate);
  o["clauses"] = std::move(clauses);
  o["score"] = r.score ? boost::json::value(*r.score) : boost::json::value(nullptr);
  o["rank"] = r.rank ? boost::json::value(*r.rank) : boost::json::value(nullptr);
  o["group"] = r.group ? boost::json::value(*r.group) : boost::json::value(nullptr);
  o["decision"] = decision_name(r.decision);
  boost::json::array reasons;
  for (const auto& x : r.reasons) reasons.emplace_back(x);
  o["reasons"] = std::move(reasons);
  o["undoes_manual"] = r.undoes_manual;
  return o;
}

}  // namespace

PolicySummary summarize_policy(const PolicyDocument& doc) {
  PolicySummary s;
  if (const auto* p = std::get_if<Policy>(&doc)) {
    s.form = "native";
    for (const auto& r : p->refs.refs()) s.metrics.push_back(r.text());
    s.canonical = print_policy(*p);
    return s;
  }
  s.form = "qmtl";
  const auto& q = std::get<QmtlPolicy>(doc);
  auto add = [&](const std::string& m) {
    if (std::find(s.metrics.begin(), s.metrics.end(), m) == s.metrics.end()) s.metrics.push_back(m);
  };
  for (const auto& t : q.thresholds) add(t.metric);
  for (const auto& [name, th] : q.profiles) {
    for (const auto& t : th) add(t.metric);
  }
  if (q.top_k) add(q.top_k->metric);
  if (q.hysteresis) add(q.hysteresis->metric);
  return s;
}

boost::json::object policy_summary_json(const PolicySummary& s) {
  boost::json::array m;
  for (const auto& x : s.metrics) m.emplace_back(x);
  boost::json::object o{{"valid", true}, {"form", s.form}, {"metrics", std::move(m)}};
  if (s.canonical) o["canonical"] = *s.canonical;
  return o;
}

Result<OfflineResult> evaluate_offline(const PolicyDocument& doc, const OfflineInputs& in) {
  if (const auto* q = std::get_if<QmtlPolicy>(&doc)) {
    if (in.history) {
      return make_error(ErrorCode::kInvalidArgument,
                        "history applies to native policies; QMTL's hysteresis uses previous");
    }
    auto input = load_qmtl_input(in);
    if (!input) return propagate(input);
    QmtlResult r = evaluate_qmtl(*q, *input);
    return OfflineResult{std::move(r.selected), std::move(r.strategies), std::move(r.profile)};
  }
  if (in.stage) {
    return make_error(ErrorCode::kInvalidArgument,
                      "stage applies to QMTL policies with validation_profiles");
  }
  const Policy& p = std::get<Policy>(doc);
  auto cands = load_candidates(in, p);
  if (!cands) return propagate(cands);
  Correlations corr;
  if (in.correlations) {
    if (auto r = load_correlations(*in.correlations, in.correlations_name, corr); !r) {
      return propagate(r);
    }
  }
  if (in.history) {
    if (auto r = load_history(*in.history, in.history_name, *cands); !r) return propagate(r);
  }
  Selection sel = select(p, *cands, {.now = in.now}, corr);
  return OfflineResult{std::move(sel.live), std::move(sel.results), std::nullopt};
}

boost::json::object offline_result_json(const OfflineResult& r) {
  boost::json::array sel;
  for (const auto& id : r.selected) sel.emplace_back(id);
  boost::json::object strategies;
  for (const auto& x : r.results) strategies[x.id] = result_json(x);
  boost::json::object doc{{"selected", std::move(sel)}, {"strategies", std::move(strategies)}};
  if (r.profile) doc["profile"] = *r.profile;
  return doc;
}

}  // namespace qmtl::policy
