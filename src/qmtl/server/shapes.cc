#include "qmtl/server/shapes.h"

#include <fmt/format.h>

#include <charconv>

#include "qmtl/core/duration.h"
#include "qmtl/core/json.h"
#include "qmtl/policy/document.h"

namespace qmtl::server {
namespace {

boost::json::value optional_string(const std::optional<std::string>& s) {
  if (s) return boost::json::value(*s);
  return nullptr;
}

}  // namespace

boost::json::object world_json(const world::World& w) {
  boost::json::object o;
  o["id"] = w.id;
  o["name"] = w.name;
  o["state"] = lifecycle::world_state_name(w.state);
  if (w.policy_version) {
    o["policy_version"] = *w.policy_version;
  } else {
    o["policy_version"] = nullptr;
  }
  o["created_at"] = format_timestamp(w.created_at);
  o["updated_at"] = format_timestamp(w.updated_at);
  return o;
}

boost::json::object strategy_json(const world::Strategy& s) {
  boost::json::object o;
  o["id"] = s.id;
  o["world"] = s.world_id;
  o["state"] = lifecycle::strategy_state_name(s.state);
  o["state_since"] = format_timestamp(s.state_since);
  o["effective_mode"] = lifecycle::effective_mode(s.state);
  // The spec was validated as a JSON object when it was submitted.
  auto spec = json::parse(s.spec);
  o["spec"] = spec ? std::move(*spec) : boost::json::value(s.spec);
  o["created_at"] = format_timestamp(s.created_at);
  return o;
}

boost::json::object policy_json(const world::PolicyVersion& p, bool current, bool with_document) {
  boost::json::object o;
  o["world"] = p.world_id;
  o["version"] = p.version;
  o["checksum"] = p.checksum;
  o["created_at"] = format_timestamp(p.created_at);
  o["current"] = current;
  if (with_document) {
    o["document"] = p.document;
    o["canonical"] = p.canonical;
  }
  return o;
}

boost::json::object audit_json(const world::AuditRecord& a) {
  boost::json::object o;
  o["seq"] = a.seq;
  o["at"] = format_timestamp(a.at);
  o["actor"] = a.actor;
  o["world"] = a.world_id;
  o["entity"] = a.entity;
  o["entity_id"] = a.entity_id;
  o["event"] = a.event;
  o["before"] = optional_string(a.before);
  o["after"] = optional_string(a.after);
  o["reason"] = a.reason;
  o["run_id"] = optional_string(a.run_id);
  return o;
}

boost::json::object apply_json(const world::ApplyJournalEntry& e) {
  boost::json::object o;
  o["run_id"] = e.run_id;
  o["world"] = e.world_id;
  o["phase"] = store::apply_phase_name(e.phase);
  boost::json::array promote(e.promote.begin(), e.promote.end());
  boost::json::array demote(e.demote.begin(), e.demote.end());
  o["promote"] = std::move(promote);
  o["demote"] = std::move(demote);
  o["started_at"] = format_timestamp(e.started_at);
  o["updated_at"] = format_timestamp(e.updated_at);
  return o;
}

boost::json::object manual_outcome_json(const world::WorldService::ManualOutcome& o,
                                        int64_t ttl_s) {
  const auto text_or_null = [](const std::optional<std::string>& v) {
    return v ? boost::json::value(*v) : boost::json::value(nullptr);
  };
  boost::json::object strategy = strategy_json(o.strategy);
  strategy.erase("spec");  // GET /strategies/{id} has it; here it would bury the answer
  boost::json::object out{{"queued", o.queued},
                          {"strategy", std::move(strategy)},
                          {"apply_id", text_or_null(o.apply_id)},
                          {"forced", text_or_null(o.forced)},
                          {"warning", text_or_null(o.warning)}};
  if (o.next) {
    boost::json::array reasons;
    for (const auto& r : o.next->reasons) reasons.emplace_back(r);
    out["next_evaluation"] = boost::json::object{{"at", format_timestamp(o.next->at)},
                                                 {"decision", o.next->decision},
                                                 {"reasons", std::move(reasons)},
                                                 {"undoes", o.next->undoes}};
  } else {
    out["next_evaluation"] = nullptr;
  }
  if (o.entry) out["entry"] = activation_json(*o.entry, ttl_s);
  return out;
}

namespace {

std::string holding_summary(const policy::Holding& h) {
  std::string text = policy::holding_text(h);
  if (std::holds_alternative<int>(h.value)) text += " evaluations";
  return text;
}

}  // namespace

boost::json::value policy_summary_json(const std::optional<world::WorldService::ParsedPolicy>& p) {
  if (!p) return nullptr;
  boost::json::object o{{"version", p->version}};
  const policy::Policy* pol = p->native();
  if (pol == nullptr) {
    o["form"] = "qmtl";
    return o;
  }
  o["form"] = "native";
  o["promote"] = pol->promote.to_string();
  o["demote"] = pol->demote.to_string();
  o["reject"] =
      pol->reject ? boost::json::value(pol->reject->to_string()) : boost::json::value(nullptr);
  o["score"] = pol->score.to_string();
  o["top_k"] = pol->top_k ? boost::json::value(*pol->top_k) : boost::json::value(nullptr);
  o["correlation"] = pol->correlation
                         ? boost::json::value{{"max", pol->correlation->max},
                                              {"per_group", pol->correlation->per_group}}
                         : boost::json::value(nullptr);
  o["window"] = format_duration(pol->window);
  o["min_dry_run"] = format_duration(pol->min_dry_run);
  o["schedule"] =
      pol->cron
          ? fmt::format("cron {}", *pol->cron)
          : fmt::format("every {}", format_duration(pol->every.value_or(std::chrono::hours(24))));
  o["hysteresis"] = boost::json::object{{"promote_after", holding_summary(pol->promote_after)},
                                        {"demote_after", holding_summary(pol->demote_after)}};
  return o;
}

boost::json::value last_evaluation_json(const std::optional<world::EvaluationRunRecord>& run) {
  if (!run) return nullptr;
  boost::json::object decisions;
  for (const auto& r : run->results) {
    auto& n = decisions[r.decision];
    n = n.is_int64() ? n.as_int64() + 1 : 1;
  }
  boost::json::array live;
  auto detail = json::parse(run->detail);
  if (detail && detail->is_object()) {
    if (const auto* l = detail->as_object().if_contains("live"); l != nullptr && l->is_array()) {
      live = l->as_array();
    }
  }
  return boost::json::object{{"run", run->id},
                             {"finished_at", format_timestamp(run->finished_at)},
                             {"policy_version", run->policy_version},
                             {"live", std::move(live)},
                             {"decisions", std::move(decisions)}};
}

boost::json::value strategy_evaluation_json(const world::EvaluationRunRecord& run,
                                            const boost::json::value& detail,
                                            std::string_view strategy_id) {
  const auto* strategies =
      detail.is_object() ? detail.as_object().if_contains("strategies") : nullptr;
  const auto* row = strategies != nullptr && strategies->is_object()
                        ? strategies->as_object().if_contains(strategy_id)
                        : nullptr;
  if (row == nullptr || !row->is_object()) return nullptr;
  const auto& r = row->as_object();
  const auto field = [&](std::string_view k) {
    const auto* v = r.if_contains(k);
    return v != nullptr ? *v : boost::json::value(nullptr);
  };
  return boost::json::object{{"run", run.id},
                             {"at", format_timestamp(run.finished_at)},
                             {"decision", field("decision")},
                             {"score", field("score")},
                             {"rank", field("rank")},
                             {"group", field("group")},
                             {"metrics", field("metrics")}};
}

boost::json::object evaluation_json(const world::EvaluationRunRecord& run) {
  boost::json::object o;
  o["id"] = run.id;
  auto detail = json::parse(run.detail);
  if (detail && detail->is_object()) {
    for (auto& kv : detail->as_object()) o[kv.key()] = std::move(kv.value());
  }
  return o;
}

boost::json::object evaluation_summary_json(const world::EvaluationRunRecord& run) {
  boost::json::object o;
  o["id"] = run.id;
  o["world"] = run.world_id;
  o["policy_version"] = run.policy_version;
  o["started_at"] = format_timestamp(run.started_at);
  o["finished_at"] = format_timestamp(run.finished_at);
  boost::json::object decisions;
  for (const auto& r : run.results) decisions[r.strategy_id] = r.decision;
  o["decisions"] = std::move(decisions);
  return o;
}

boost::json::object activation_json(const world::Activation& a, int64_t ttl_s) {
  boost::json::object o;
  o["strategy"] = a.strategy_id;
  o["side"] = a.side;
  o["active"] = a.active;
  o["weight"] = a.weight;
  o["frozen"] = a.frozen;
  o["etag"] = etag(a.version);
  o["version"] = a.version;
  o["updated_at"] = format_timestamp(a.updated_at);
  o["ttl_s"] = ttl_s;
  if (a.manual) {
    o["manual"] = *a.manual;
  } else {
    o["manual"] = nullptr;
  }
  return o;
}

int64_t activation_set_version(const std::vector<world::Activation>& entries) {
  int64_t v = 0;
  for (const auto& a : entries) v += a.version;
  return v;
}

boost::json::object activation_set_json(const std::vector<world::Activation>& entries,
                                        int64_t ttl_s, std::string_view strategy) {
  boost::json::array arr;
  for (const auto& a : entries) {
    if (strategy.empty() || a.strategy_id == strategy) arr.push_back(activation_json(a, ttl_s));
  }
  return boost::json::object{{"version", activation_set_version(entries)},
                             {"entries", std::move(arr)}};
}

std::string etag(int64_t version) { return fmt::format("\"{}\"", version); }

Result<int64_t> parse_etag(std::string_view value, std::string_view header) {
  std::string_view v = value;
  if (v.starts_with("W/")) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  int64_t n = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 0 || v.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} must be the ETag you read, e.g. \"3\"; got '{}'", header,
                                  value.substr(0, 40)));
  }
  return n;
}

boost::json::object transition_json(const world::StrategyTransition& t) {
  return {{"seq", t.seq},
          {"strategy", t.strategy},
          {"from", t.from ? boost::json::value(lifecycle::strategy_state_name(*t.from))
                          : boost::json::value(nullptr)},
          {"to", lifecycle::strategy_state_name(t.to)},
          {"at", format_timestamp(t.at)},
          {"event", t.event},
          {"actor", t.actor},
          {"reason", t.reason},
          {"run_id", t.run_id ? boost::json::value(*t.run_id) : boost::json::value(nullptr)}};
}

boost::json::array points_json(const std::vector<world::PerformancePoint>& points) {
  boost::json::array out;
  out.reserve(points.size());
  for (const auto& p : points) {
    out.push_back({{"ts", format_timestamp(p.ts)}, {"equity", p.equity}});
  }
  return out;
}

boost::json::array fills_json(const std::vector<store::FillRecord>& fills) {
  boost::json::array out;
  out.reserve(fills.size());
  for (const auto& f : fills) {
    out.push_back({{"ts", format_timestamp(f.ts)},
                   {"symbol", f.symbol},
                   {"side", f.side},
                   {"qty", f.qty},
                   {"price", f.price},
                   {"fee", f.fee}});
  }
  return out;
}

boost::json::object performance_view_json(const world::PerformanceView& v,
                                          std::optional<world::RecordKind> kind) {
  boost::json::array points = points_json(v.points), fills = fills_json(v.fills), periods;
  for (const auto& p : v.periods) {
    periods.push_back(
        {{"kind", world::record_kind_name(p.kind)},
         {"from", format_timestamp(p.from)},
         {"to", p.to ? boost::json::value(format_timestamp(*p.to)) : boost::json::value(nullptr)}});
  }
  return {{"strategy", v.strategy},
          {"world", v.world},
          {"kind", kind ? world::record_kind_name(*kind) : std::string_view("runs")},
          {"total_points", v.total_points},
          {"points", std::move(points)},
          {"total_fills", v.total_fills},
          {"fills", std::move(fills)},
          {"periods", std::move(periods)}};
}

}  // namespace qmtl::server
