#include "qmtl/cli/policy_command.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <map>

#include "qmtl/cli/cli.h"
#include "qmtl/cli/table.h"
#include "qmtl/core/duration.h"
#include "qmtl/core/file.h"
#include "qmtl/core/id.h"
#include "qmtl/core/json.h"
#include "qmtl/policy/document.h"
#include "qmtl/policy/selection.h"

namespace qmtl::cli {
namespace {

using namespace qmtl::policy;

Result<boost::json::value> read_json(const std::string& path) {
  auto text = read_file(path);
  if (!text) return propagate(text);
  auto doc = json::parse(*text);
  if (!doc) return make_error(doc.error().code, fmt::format("{}: {}", path, doc.error().message));
  return doc;
}

tl::unexpected<Error> bad(const std::string& file, std::string_view why) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("{}: {}", file, why));
}

std::optional<double> number_of(const boost::json::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return std::nullopt;
}

Result<std::vector<Candidate>> load_candidates(const PolicyEvalOptions& o, const Policy& p,
                                               TimePoint now) {
  auto doc = read_json(o.metrics);
  if (!doc) return propagate(doc);
  if (!doc->is_object())
    return bad(o.metrics, "must be an object {\"<strategy>\": {\"<metric>\": number}}");
  std::vector<Candidate> out;
  for (const auto& [key, metrics] : doc->get_object()) {
    const std::string id(key);
    if (auto v = validate_id("strategy", id); !v) return bad(o.metrics, v.error().message);
    if (!metrics.is_object())
      return bad(o.metrics, fmt::format("'{}' must map metric names to numbers", id));
    Candidate c;
    c.id = id;
    const bool live = std::find(o.previous.begin(), o.previous.end(), id) != o.previous.end();
    c.state = live ? CandidateState::kLive : CandidateState::kDryRun;
    // The file has no timestamps: every strategy counts as eligible by time.
    c.history = p.window;
    c.dry_run_since = now - p.min_dry_run;
    if (live) c.live_since = now;
    c.values.resize(p.refs.size());
    for (size_t s = 0; s < p.refs.size(); ++s) {
      const auto* v = metrics.get_object().if_contains(p.refs.refs()[s].text());
      if (v == nullptr || v->is_null()) continue;
      auto x = number_of(*v);
      if (!x) {
        return bad(o.metrics,
                   fmt::format("'{}'.'{}' must be a number or null", id, p.refs.refs()[s].text()));
      }
      c.values[s] = *x;
    }
    out.push_back(std::move(c));
  }
  for (const auto& id : o.previous) {
    if (std::none_of(out.begin(), out.end(), [&](const Candidate& c) { return c.id == id; })) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--previous names '{}', which is not in {}", id, o.metrics));
    }
  }
  return out;
}

Result<void> load_correlations(const std::string& path, Correlations& corr) {
  auto doc = read_json(path);
  if (!doc) return propagate(doc);
  if (!doc->is_array()) return bad(path, "must be a list [{\"a\": id, \"b\": id, \"value\": x}]");
  for (const auto& item : doc->get_array()) {
    const auto* o = item.if_object();
    const auto* a = o ? o->if_contains("a") : nullptr;
    const auto* b = o ? o->if_contains("b") : nullptr;
    const auto* v = o ? o->if_contains("value") : nullptr;
    if (!a || !b || !v || !a->is_string() || !b->is_string() || !number_of(*v)) {
      return bad(path, "each entry needs \"a\" and \"b\" (ids) and a numeric \"value\"");
    }
    const double x = *number_of(*v);
    if (x < -1 || x > 1) return bad(path, fmt::format("correlation {} is outside [-1, 1]", x));
    corr.pairs.push_back({std::string(a->get_string()), std::string(b->get_string()), x});
  }
  return {};
}

Result<void> load_history(const std::string& path, std::vector<Candidate>& cands) {
  auto doc = read_json(path);
  if (!doc) return propagate(doc);
  if (!doc->is_object())
    return bad(path, "must be an object {\"<strategy>\": [{\"at\", \"promote_pass\", \"out\"}]}");
  for (const auto& [key, list] : doc->get_object()) {
    const std::string_view id = key;  // a structured binding cannot be captured in C++20
    auto it =
        std::find_if(cands.begin(), cands.end(), [&](const Candidate& c) { return c.id == id; });
    if (it == cands.end()) continue;  // history of a strategy not evaluated now
    if (!list.is_array())
      return bad(path, fmt::format("'{}' must be a list", std::string_view(key)));
    for (const auto& e : list.get_array()) {
      const auto* o = e.if_object();
      const auto* at = o ? o->if_contains("at") : nullptr;
      if (!at || !at->is_string()) return bad(path, "each entry needs \"at\" (an ISO-8601 time)");
      auto t = parse_timestamp(at->get_string());
      if (!t) return bad(path, t.error().message);
      PastEvaluation pe{.at = *t};
      if (const auto* x = o->if_contains("promote_pass"); x && x->is_bool())
        pe.promote_pass = x->get_bool();
      if (const auto* x = o->if_contains("out"); x && x->is_bool()) pe.out = x->get_bool();
      if (!it->past.empty() && pe.at < it->past.back().at) {
        return bad(path,
                   fmt::format("entries of '{}' must be in time order", std::string_view(key)));
      }
      it->past.push_back(pe);
    }
  }
  return {};
}

boost::json::value to_json(const StrategyResult& r) {
  boost::json::object o;
  boost::json::array clauses;
  for (const auto& c : r.clauses) {
    boost::json::object x{{"expr", c.expr}};
    if (c.value) {
      x["value"] = *c.value;
    } else {
      x["value"] = nullptr;
    }
    if (c.pass == Tri::kMissing) {
      x["pass"] = nullptr;
    } else {
      x["pass"] = c.pass == Tri::kTrue;
    }
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

int run_policy_check(const std::string& path, bool as_json, std::ostream& out, std::ostream& err) {
  auto doc = read_policy_document(path);
  if (!doc) {
    err << "qmtl: " << doc.error().message << '\n';
    return kExitRefused;
  }
  std::vector<std::string> metrics;
  std::string form = "native";
  if (const auto* p = std::get_if<Policy>(&*doc)) {
    for (const auto& r : p->refs.refs()) metrics.push_back(r.text());
  } else {
    form = "qmtl";
    const auto& q = std::get<QmtlPolicy>(*doc);
    auto add = [&](const std::string& m) {
      if (std::find(metrics.begin(), metrics.end(), m) == metrics.end()) metrics.push_back(m);
    };
    for (const auto& t : q.thresholds) add(t.metric);
    for (const auto& [name, th] : q.profiles) {
      for (const auto& t : th) add(t.metric);
    }
    if (q.top_k) add(q.top_k->metric);
    if (q.hysteresis) add(q.hysteresis->metric);
  }
  if (as_json) {
    boost::json::array m;
    for (const auto& x : metrics) m.emplace_back(x);
    boost::json::object o{{"valid", true}, {"form", form}, {"metrics", std::move(m)}};
    if (const auto* p = std::get_if<Policy>(&*doc)) o["canonical"] = print_policy(*p);
    out << json::dump(o) << '\n';
  } else {
    out << fmt::format("{}: ok ({} form); reads {}\n", path, form == "qmtl" ? "QMTL" : "native",
                       fmt::join(metrics, ", "));
  }
  return kExitOk;
}

namespace {

void print_results(const std::vector<std::string>& selected,
                   const std::vector<StrategyResult>& results,
                   const std::optional<std::string>& profile, bool as_json, std::ostream& out) {
  if (as_json) {
    boost::json::array sel;
    for (const auto& id : selected) sel.emplace_back(id);
    boost::json::object strategies;
    for (const auto& r : results) strategies[r.id] = to_json(r);
    boost::json::object doc{{"selected", std::move(sel)}, {"strategies", std::move(strategies)}};
    if (profile) doc["profile"] = *profile;
    out << json::dump(doc) << '\n';
    return;
  }
  Table t({"STRATEGY", "DECISION", "RANK", "SCORE", "GROUP", "REASONS"});
  for (const auto& r : results) {
    t.add_row({r.id, std::string(decision_name(r.decision)), r.rank ? std::to_string(*r.rank) : "-",
               r.score ? fmt::format("{:.4f}", *r.score) : "-",
               r.group ? std::to_string(*r.group) : "-",
               fmt::format("{}", fmt::join(r.reasons, "; "))});
  }
  t.print(out);
  if (profile) out << fmt::format("\nvalidation profile: {}", *profile);
  out << fmt::format("\nlive after this evaluation: {}\n",
                     selected.empty() ? "(none)" : fmt::format("{}", fmt::join(selected, ", ")));
}

// QMTL's metric payloads may nest; like QMTL, each numeric leaf is reachable by
// its own name and by its dotted path, the first occurrence winning.
void flatten(const boost::json::value& v, std::vector<std::string>& path,
             std::map<std::string, double, std::less<>>& out) {
  if (const auto* o = v.if_object()) {
    for (const auto& [k, x] : *o) {
      path.emplace_back(k);
      flatten(x, path, out);
      path.pop_back();
    }
    return;
  }
  const auto x = number_of(v);
  if (!x || path.empty()) return;
  out.emplace(path.back(), *x);
  out.emplace(fmt::format("{}", fmt::join(path, ".")), *x);
}

Result<QmtlInput> load_qmtl_input(const PolicyEvalOptions& o) {
  auto doc = read_json(o.metrics);
  if (!doc) return propagate(doc);
  if (!doc->is_object())
    return bad(o.metrics, "must be an object {\"<strategy>\": {\"<metric>\": number}}");
  QmtlInput in;
  for (const auto& [key, metrics] : doc->get_object()) {
    const std::string id(key);
    if (auto v = validate_id("strategy", id); !v) return bad(o.metrics, v.error().message);
    if (!metrics.is_object())
      return bad(o.metrics, fmt::format("'{}' must map metric names to numbers", id));
    std::vector<std::string> path;
    std::map<std::string, double, std::less<>> flat;
    flatten(metrics, path, flat);
    in.metrics.emplace_back(id, std::move(flat));
  }
  for (const auto& id : o.previous) {
    if (std::none_of(in.metrics.begin(), in.metrics.end(),
                     [&](const auto& m) { return m.first == id; })) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("--previous names '{}', which is not in {}", id, o.metrics));
    }
  }
  in.previous = o.previous;
  in.stage = o.stage;
  if (o.correlations) {
    Correlations c;
    if (auto r = load_correlations(*o.correlations, c); !r) return propagate(r);
    in.correlations = std::move(c.pairs);
  }
  return in;
}

}  // namespace

int run_policy_eval(const PolicyEvalOptions& o, std::ostream& out, std::ostream& err) {
  auto fail = [&](const Error& e) {
    err << "qmtl: " << e.message << '\n';
    return kExitRefused;
  };
  TimePoint now = SystemClock().now();
  if (o.now) {
    auto t = parse_timestamp(*o.now);
    if (!t) {
      err << "qmtl: --now: " << t.error().message << '\n';
      return kExitUsage;
    }
    now = *t;
  }
  auto doc = read_policy_document(o.policy);
  if (!doc) return fail(doc.error());

  if (const auto* q = std::get_if<QmtlPolicy>(&*doc)) {
    if (o.history) {
      err << "qmtl: --history applies to native policies; QMTL's hysteresis uses --previous\n";
      return kExitUsage;
    }
    auto in = load_qmtl_input(o);
    if (!in) return fail(in.error());
    const QmtlResult r = evaluate_qmtl(*q, *in);
    print_results(r.selected, r.strategies, r.profile, o.json, out);
    return kExitOk;
  }

  if (o.stage) {
    err << "qmtl: --stage applies to QMTL policies with validation_profiles\n";
    return kExitUsage;
  }
  const Policy& p = std::get<Policy>(*doc);
  auto cands = load_candidates(o, p, now);
  if (!cands) return fail(cands.error());
  Correlations corr;
  if (o.correlations) {
    if (auto r = load_correlations(*o.correlations, corr); !r) return fail(r.error());
  }
  if (o.history) {
    if (auto r = load_history(*o.history, *cands); !r) return fail(r.error());
  }
  const Selection sel = select(p, *cands, {.now = now}, corr);
  print_results(sel.live, sel.results, std::nullopt, o.json, out);
  return kExitOk;
}

}  // namespace qmtl::cli
