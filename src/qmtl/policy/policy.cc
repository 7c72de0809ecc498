#include "qmtl/policy/policy.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <charconv>
#include <cmath>
#include <set>
#include <sstream>

#include "qmtl/core/cron.h"
#include "qmtl/core/duration.h"
#include "qmtl/core/file.h"
#include "qmtl/policy/yaml_reader.h"

namespace qmtl::policy {
namespace {

// Converts yaml-cpp nodes into the native model.
class Parser : public YamlReader {
 public:
  using YamlReader::YamlReader;

  Result<Holding> holding(const YAML::Node& n, std::string_view what) const {
    auto s = scalar(n, what);
    if (!s) return propagate(s);
    if (!s->empty() &&
        std::all_of(s->begin(), s->end(), [](char c) { return c >= '0' && c <= '9'; })) {
      auto count = integer(n, what);
      if (!count) return propagate(count);
      if (*count < 1) {
        return fail(n, fmt::format("{} counts evaluations and must be at least 1; use 0s for "
                                   "'immediately'",
                                   what));
      }
      return Holding{.value = *count};
    }
    auto d = duration(n, what, false);
    if (!d) {
      return fail(n, fmt::format("{} must be a duration (e.g. 7d) or a number of evaluations "
                                 "(e.g. 3), not '{}'",
                                 what, *s));
    }
    return Holding{.value = *d};
  }

  // A gate or score: a string expression, or {and: [...]} / {or: [...]} for gates.
  Result<Expr> expression(const YAML::Node& n, ExprType type, std::string_view what,
                          RefTable& refs) const {
    if (n.IsScalar()) {
      auto e = Expr::compile(n.Scalar(), type, refs);
      if (!e) {
        // Point at the offending character: the scalar's column, plus one for an
        // opening quote, plus the offset (exact for single-line expressions).
        YAML::Mark m = n.Mark();
        const bool quoted = n.Tag() == "!";
        m.column += static_cast<int>(e.error().offset) + (quoted ? 1 : 0);
        return fail(m, fmt::format("{}: {}", what, e.error().message));
      }
      return std::move(*e);
    }
    if (n.IsMap() && type == ExprType::kBool) {
      if (n.size() != 1) return fail(n, fmt::format("{}: use exactly one of 'and' or 'or'", what));
      const auto kv = *n.begin();
      const std::string op = kv.first.Scalar();
      if (op != "and" && op != "or") {
        return fail(kv.first,
                    fmt::format("{}: unknown operator '{}'; use 'and' or 'or'", what, op));
      }
      if (!kv.second.IsSequence() || kv.second.size() == 0) {
        return fail(kv.second,
                    fmt::format("{}: '{}' takes a non-empty list of conditions", what, op));
      }
      std::vector<Expr> parts;
      for (const auto& item : kv.second) {
        auto e = expression(item, ExprType::kBool, what, refs);
        if (!e) return e;
        parts.push_back(std::move(*e));
      }
      return op == "and" ? Expr::all_of(std::move(parts)) : Expr::any_of(std::move(parts));
    }
    return fail(n, fmt::format("{} must be an expression string{}", what,
                               type == ExprType::kBool ? " or {and: [...]} / {or: [...]}" : ""));
  }

  Result<void> cron(const YAML::Node& n) const {
    auto s = scalar(n, "evaluation.cron");
    if (!s) return propagate(s);
    auto c = CronSchedule::parse(*s);
    if (!c) return fail(n, fmt::format("evaluation.cron: {}", c.error().message));
    // "0 0 31 2 *" parses but never comes: refuse it here, not at the first tick.
    if (auto next = c->next_after(TimePoint{}); !next) {
      return fail(n, fmt::format("evaluation.cron: {}", next.error().message));
    }
    return {};
  }

  Result<Policy> policy(const YAML::Node& root) const {
    if (!root.IsDefined() || root.IsNull()) return fail(root, "the policy is empty");
    if (auto r = check_map(root,
                           {"description", "evaluation", "gates", "score", "top_k", "correlation",
                            "hysteresis", "position"},
                           "the policy");
        !r) {
      return propagate(r);
    }
    Policy p;
    if (const auto d = root["description"]) {
      auto s = scalar(d, "description");
      if (!s) return propagate(s);
      p.description = *s;
    }
    if (const auto ev = root["evaluation"]) {
      if (auto r = evaluation(ev, p); !r) return propagate(r);
    }

    if (auto r = gates(root, p); !r) return propagate(r);

    if (const auto n = root["score"]) {
      auto s = expression(n, ExprType::kNumber, "score", p.refs);
      if (!s) return propagate(s);
      p.score = std::move(*s);
    } else {
      p.score = *Expr::compile("sharpe", ExprType::kNumber, p.refs);
    }

    if (const auto n = root["top_k"]) {
      if (auto r = check_map(n, {"k"}, "top_k"); !r) return propagate(r);
      if (!n["k"]) return fail(n, "top_k needs k, e.g. top_k: {k: 3}");
      auto k = integer(n["k"], "top_k.k");
      if (!k) return propagate(k);
      if (*k <= 0) return fail(n["k"], "top_k.k must be at least 1");
      p.top_k = *k;
    }
    if (const auto n = root["correlation"]) {
      auto c = correlation(n);
      if (!c) return propagate(c);
      p.correlation = *c;
    }
    if (const auto n = root["hysteresis"]) {
      if (auto r = check_map(n, {"promote_after", "demote_after"}, "hysteresis"); !r)
        return propagate(r);
      if (const auto a = n["promote_after"]) {
        auto h = holding(a, "hysteresis.promote_after");
        if (!h) return propagate(h);
        p.promote_after = *h;
      }
      if (const auto a = n["demote_after"]) {
        auto h = holding(a, "hysteresis.demote_after");
        if (!h) return propagate(h);
        p.demote_after = *h;
      }
    }
    if (const auto n = root["position"]) {
      if (auto r = position(n, p); !r) return propagate(r);
    }
    return p;
  }

  // The evaluation: section (schedule, min_dry_run, window) into p.
  Result<void> evaluation(const YAML::Node& ev, Policy& p) const {
    if (auto r = check_map(ev, {"every", "cron", "min_dry_run", "window"}, "evaluation"); !r)
      return propagate(r);
    if (ev["every"] && ev["cron"])
      return fail(ev["cron"], "give evaluation.every or evaluation.cron, not both");
    if (const auto n = ev["every"]) {
      auto d = duration(n, "evaluation.every", true);
      if (!d) return propagate(d);
      p.every = *d;
    }
    if (const auto n = ev["cron"]) {
      if (auto r = cron(n); !r) return propagate(r);
      p.every.reset();
      p.cron = n.Scalar();
    }
    if (const auto n = ev["min_dry_run"]) {
      auto d = duration(n, "evaluation.min_dry_run", false);
      if (!d) return propagate(d);
      p.min_dry_run = *d;
    }
    if (const auto n = ev["window"]) {
      auto d = duration(n, "evaluation.window", true);
      if (!d) return propagate(d);
      p.window = *d;
    }
    return {};
  }

  // The gates: section (promote required; demote defaults to `not promote`).
  Result<void> gates(const YAML::Node& root, Policy& p) const {
    const auto gates = root["gates"];
    if (!gates) {
      return fail(root, "gates.promote is required: a policy must say what earns live trading");
    }
    if (auto r = check_map(gates, {"promote", "demote", "reject"}, "gates"); !r)
      return propagate(r);
    if (!gates["promote"])
      return fail(gates, "gates.promote is required: a policy must say what earns live trading");
    auto promote = expression(gates["promote"], ExprType::kBool, "gates.promote", p.refs);
    if (!promote) return propagate(promote);
    p.promote = std::move(*promote);
    if (const auto n = gates["demote"]) {
      auto demote = expression(n, ExprType::kBool, "gates.demote", p.refs);
      if (!demote) return propagate(demote);
      p.demote = std::move(*demote);
      p.demote_is_default = false;
      if (auto r = check_hysteresis_by_value(p, n); !r) return propagate(r);
    } else {
      p.demote = Expr::negate(p.promote);
    }
    if (const auto n = gates["reject"]) {
      auto reject = expression(n, ExprType::kBool, "gates.reject", p.refs);
      if (!reject) return propagate(reject);
      p.reject = std::move(*reject);
    }
    return {};
  }

  Result<Policy::Correlation> correlation(const YAML::Node& n) const {
    if (auto r = check_map(n, {"max", "per_group", "window"}, "correlation"); !r)
      return propagate(r);
    Policy::Correlation c;
    if (!n["max"]) return fail(n, "correlation needs max, e.g. correlation: {max: 0.8}");
    auto max = number(n["max"], "correlation.max");
    if (!max) return propagate(max);
    if (*max < -1 || *max > 1) return fail(n["max"], "correlation.max must be between -1 and 1");
    c.max = *max;
    if (const auto g = n["per_group"]) {
      auto pg = integer(g, "correlation.per_group");
      if (!pg) return propagate(pg);
      if (*pg < 1) return fail(g, "correlation.per_group must be at least 1");
      c.per_group = *pg;
    }
    if (const auto w = n["window"]) {
      auto d = duration(w, "correlation.window", true);
      if (!d) return propagate(d);
      c.window = *d;
    }
    return c;
  }

  // The position: section (hand-over at promotion and demotion) into p.
  Result<void> position(const YAML::Node& n, Policy& p) const {
    if (auto r = check_map(n, {"on_promote", "on_demote"}, "position"); !r) return propagate(r);
    if (const auto a = n["on_promote"]) {
      auto s = scalar(a, "position.on_promote");
      if (!s) return propagate(s);
      if (*s != "flat" && *s != "carry")
        return fail(a, "position.on_promote must be flat or carry");
      p.on_promote = *s == "carry" ? OnPromote::kCarry : OnPromote::kFlat;
    }
    if (const auto a = n["on_demote"]) {
      auto s = scalar(a, "position.on_demote");
      if (!s) return propagate(s);
      if (*s != "flatten" && *s != "keep")
        return fail(a, "position.on_demote must be flatten or keep");
      p.on_demote = *s == "keep" ? OnDemote::kKeep : OnDemote::kFlatten;
    }
    return {};
  }

  // A demote bound tighter than the promote bound on the same metric means a
  // strategy can pass promote and trigger demote in the same evaluation: it would
  // flap. Detected for `metric OP constant` clauses of the top-level and/or chains.
  Result<void> check_hysteresis_by_value(const Policy& p, const YAML::Node& at) const {
    for (const auto& pr : p.promote.conjunct_bounds()) {
      for (const auto& de : p.demote.disjunct_bounds()) {
        if (pr.slot != de.slot) continue;
        // Promote bounds the value from one side, demote from the other; they
        // conflict when some value satisfies both.
        const bool promote_lower = pr.op[0] == '>';
        const bool demote_upper = de.op[0] == '<';
        if (promote_lower != demote_upper) continue;
        const bool both_inclusive = pr.op.size() == 2 && de.op.size() == 2;
        const bool overlap = promote_lower ? de.constant > pr.constant : de.constant < pr.constant;
        if (!overlap && !(de.constant == pr.constant && both_inclusive)) continue;
        const std::string metric = p.refs.refs()[static_cast<size_t>(pr.slot)].text();
        return fail(
            at, fmt::format("gates.demote ({} {} {}) is stricter than gates.promote ({} {} {}): "
                            "a strategy could be promoted and demoted at once; demote {} "
                            "the promote threshold, e.g. {} {} {}",
                            metric, de.op, de.constant, metric, pr.op, pr.constant,
                            promote_lower ? "below" : "above", metric, promote_lower ? "<" : ">",
                            pr.constant));
      }
    }
    return {};
  }
};

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string holding_text(const Holding& h) {
  if (const auto* d = std::get_if<Duration>(&h.value)) return format_duration(*d);
  return std::to_string(std::get<int>(h.value));
}

bool operator==(const Policy& a, const Policy& b) {
  return a.description == b.description && a.every == b.every && a.cron == b.cron &&
         a.min_dry_run == b.min_dry_run && a.window == b.window && a.promote == b.promote &&
         a.demote == b.demote && a.demote_is_default == b.demote_is_default &&
         a.reject == b.reject && a.score == b.score && a.top_k == b.top_k &&
         a.correlation == b.correlation && a.promote_after == b.promote_after &&
         a.demote_after == b.demote_after && a.on_promote == b.on_promote &&
         a.on_demote == b.on_demote;
}

Result<Policy> parse_policy(std::string_view text, std::string_view source) {
  Parser parser(source);
  auto root = parser.load(text);
  if (!root) return propagate(root);
  try {
    return parser.policy(*root);
  } catch (const YAML::Exception& e) {
    return parser.fail(e.mark, fmt::format("malformed YAML/JSON: {}", e.msg));
  }
}

Result<Policy> read_policy_file(const std::string& path) {
  auto text = read_file(path, "policy file");
  if (!text) return propagate(text);
  return parse_policy(*text, path);
}

std::string print_policy(const Policy& p) {
  std::string out;
  if (!p.description.empty()) out += fmt::format("description: {}\n", quote(p.description));
  out += "evaluation:\n";
  if (p.cron) {
    out += fmt::format("  cron: {}\n", quote(*p.cron));
  } else if (p.every) {
    out += fmt::format("  every: {}\n", format_duration(*p.every));
  }
  out += fmt::format("  min_dry_run: {}\n  window: {}\n", format_duration(p.min_dry_run),
                     format_duration(p.window));
  out += fmt::format("gates:\n  promote: {}\n", quote(p.promote.to_string()));
  if (!p.demote_is_default) out += fmt::format("  demote: {}\n", quote(p.demote.to_string()));
  if (p.reject) out += fmt::format("  reject: {}\n", quote(p.reject->to_string()));
  out += fmt::format("score: {}\n", quote(p.score.to_string()));
  if (p.top_k) out += fmt::format("top_k: {{k: {}}}\n", *p.top_k);
  if (p.correlation) {
    out += fmt::format("correlation: {{max: {}, per_group: {}", p.correlation->max,
                       p.correlation->per_group);
    if (p.correlation->window)
      out += fmt::format(", window: {}", format_duration(*p.correlation->window));
    out += "}\n";
  }
  out += fmt::format("hysteresis: {{promote_after: {}, demote_after: {}}}\n",
                     holding_text(p.promote_after), holding_text(p.demote_after));
  out += fmt::format("position: {{on_promote: {}, on_demote: {}}}\n",
                     p.on_promote == OnPromote::kCarry ? "carry" : "flat",
                     p.on_demote == OnDemote::kKeep ? "keep" : "flatten");
  return out;
}

}  // namespace qmtl::policy
