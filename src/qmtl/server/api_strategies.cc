// The /strategies routes of the API.
#include <fmt/format.h>

#include <filesystem>

#include "qmtl/core/file.h"
#include "qmtl/server/api_internal.h"
#include "qmtl/world/performance_records.h"

namespace qmtl::server {

// A program strategy (sdk/program.h) runs only from the directory the operator
// named, and only the build that was submitted; the runner checks the
// declaration itself when it starts the program.
std::optional<ApiResponse> Api::check_program(const boost::json::object& spec) const {
  const auto& program = spec.at("program");
  const auto* command = program.is_object() ? program.as_object().if_contains("command") : nullptr;
  if (command == nullptr || !command->is_array() || command->as_array().empty() ||
      !command->as_array()[0].is_string()) {
    return problem(400,
                   "spec.program.command must be a list: [the program's path, its "
                   "arguments...]; `qmtl strategy submit --command` writes it");
  }
  if (options_.strategy_programs.empty()) {
    return problem(403,
                   "this server runs no strategy programs: its operator allows them with "
                   "`qmtl serve --strategy-programs DIR` (programs must be in DIR)");
  }
  const std::string path(command->as_array()[0].get_string());
  auto outside = [&] {
    return problem(403, fmt::format("program '{}' is not in this server's strategy programs "
                                    "directory {} (give its path there, without links)",
                                    path, options_.strategy_programs));
  };
  // Decided on the text first, so a path elsewhere never touches the file
  // system (nor tells the caller whether something exists there).
  if (std::filesystem::path(path).lexically_normal().string() != path ||
      !path_within(options_.strategy_programs, path)) {
    return outside();
  }
  auto file = inspect_executable(path);
  if (!file) return problem(400, fmt::format("spec.program: {}", file.error().message));
  if (file->path != path) return outside();  // a link out of the directory
  const auto* sha = program.as_object().if_contains("sha256");
  if (sha == nullptr || !sha->is_string() || sha->get_string() != file->sha256) {
    return problem(409, fmt::format("program '{}' on the server is not the build that was "
                                    "described (sha256 {}); submit it again",
                                    path, file->sha256.substr(0, 12)));
  }
  return std::nullopt;
}

ApiResponse Api::submit_strategy(const ApiRequest& req, Call& call) {
  auto obj = body_object(req, {"id", "world", "spec"}, "the strategy");
  if (!obj) return problem(obj.error());
  auto id = json::get_string(*obj, "id");
  if (!id) return problem(id.error());
  auto world = json::get_string(*obj, "world");
  if (!world) return problem(world.error());
  if (auto d = world_access(call, *world)) return *d;
  const auto* spec = obj->if_contains("spec");
  if (spec == nullptr) return problem(400, "field 'spec' is required: the declarative strategy");
  if (!spec->is_object()) {
    return problem(400, fmt::format("field 'spec' must be an object (the declarative strategy), "
                                    "not {}",
                                    json::kind_name(*spec)));
  }
  if (spec->as_object().contains("program")) {
    if (auto refused = check_program(spec->as_object())) return *refused;
  }
  auto s = worlds_.submit_strategy(
      {.id = *id, .world = *world, .spec = json::dump(*spec), .actor = call.principal.name});
  if (!s) return problem(s.error());
  ApiResponse r = json_response(201, strategy_json(*s));
  r.headers.emplace_back("Location", "/strategies/" + s->id);
  return r;
}

ApiResponse Api::list_strategies(const ApiRequest&, Call& call) {
  std::vector<std::string> worlds;
  if (auto it = call.query.find("world"); it != call.query.end()) {
    if (auto d = world_access(call, it->second)) return *d;
    auto w = worlds_.get_world(it->second);
    if (!w) return problem(w.error());
    worlds.push_back(it->second);
  } else {
    auto all = worlds_.list_worlds();
    if (!all) return problem(all.error());
    for (const auto& w : *all) {
      if (call.principal.may_access(w.id)) worlds.push_back(w.id);
    }
  }
  boost::json::array arr;
  for (const auto& w : worlds) {
    auto list = worlds_.list_strategies(w);
    if (!list) return problem(list.error());
    // Each strategy with its result in the world's last evaluation.
    auto runs = worlds_.list_evaluations(w, 1);
    if (!runs) return problem(runs.error());
    boost::json::value detail;
    if (!runs->empty()) {
      if (auto d = json::parse(runs->front().detail)) detail = std::move(*d);
    }
    for (const auto& s : *list) {
      auto o = strategy_json(s);
      o["evaluation"] = runs->empty() ? boost::json::value(nullptr)
                                      : strategy_evaluation_json(runs->front(), detail, s.id);
      arr.push_back(std::move(o));
    }
  }
  return json_response(200, boost::json::object{{"strategies", std::move(arr)}});
}

ApiResponse Api::get_strategy(const ApiRequest&, Call& call) {
  const auto& s = call.strategy;  // read by authorize()
  return json_response(200, strategy_json(*s));
}

ApiResponse Api::strategy_activate(const ApiRequest& req, Call& call) {
  return strategy_event(req, call, lifecycle::StrategyEvent::kReactivate);
}
ApiResponse Api::strategy_deactivate(const ApiRequest& req, Call& call) {
  return strategy_event(req, call, lifecycle::StrategyEvent::kDeactivate);
}
ApiResponse Api::strategy_archive(const ApiRequest& req, Call& call) {
  return strategy_event(req, call, lifecycle::StrategyEvent::kArchive);
}

ApiResponse Api::strategy_error(const ApiRequest& req, Call& call) {
  auto obj = body_object(req, {"reason"}, "the error report");
  if (!obj) return problem(obj.error());
  auto reason = json::get_optional_string(*obj, "reason");
  if (!reason) return problem(reason.error());
  if (!*reason || (*reason)->empty()) {
    return problem(400,
                   "field 'reason' is required: what failed (it is kept in the audit log "
                   "and sent with the failure alert)");
  }
  const auto& s = call.strategy;  // read by authorize()
  auto after = worlds_.apply_strategy_event(s->id, lifecycle::StrategyEvent::kError,
                                            call.principal.name, **reason);
  if (!after) return problem(after.error());
  return json_response(200, strategy_json(*after));
}

ApiResponse Api::strategy_promote(const ApiRequest& req, Call& call) {
  return manual_change(req, call, true);
}
ApiResponse Api::strategy_demote(const ApiRequest& req, Call& call) {
  return manual_change(req, call, false);
}

ApiResponse Api::manual_change(const ApiRequest& req, Call& call, bool promote) {
  auto obj = body_object(req, {"reason", "force"}, "the request");
  if (!obj) return problem(obj.error());
  auto reason = json::get_optional_string(*obj, "reason");
  if (!reason) return problem(reason.error());
  if (!*reason || (*reason)->empty()) {
    return problem(400, fmt::format("field 'reason' is required: say why the strategy is {} by "
                                    "hand (it is kept in the audit log)",
                                    promote ? "promoted" : "demoted"));
  }
  auto force = json::get_optional_bool(*obj, "force");
  if (!force) return problem(force.error());
  if (!promote && force->value_or(false)) {
    return problem(400, "field 'force' is for promotions: a demotion never breaks a cap");
  }
  const auto& s = call.strategy;  // read by authorize()
  const world::WorldService::ManualChange change{
      .actor = call.principal.name, .reason = **reason, .force = force->value_or(false)};
  auto out =
      promote ? worlds_.promote_strategy(s->id, change) : worlds_.demote_strategy(s->id, change);
  if (!out) return problem(out.error());
  return json_response(out->queued ? 202 : 200,
                       manual_outcome_json(*out, options_.activation_ttl_s));
}

ApiResponse Api::strategy_event(const ApiRequest& req, Call& call, lifecycle::StrategyEvent event) {
  auto obj = body_object(req, {"reason"}, "the request", true);
  if (!obj) return problem(obj.error());
  auto reason = json::get_optional_string(*obj, "reason");
  if (!reason) return problem(reason.error());
  const auto& s = call.strategy;  // read by authorize()
  auto after =
      worlds_.apply_strategy_event(s->id, event, call.principal.name, reason->value_or(""));
  if (!after) return problem(after.error());
  return json_response(200, strategy_json(*after));
}

ApiResponse Api::post_performance(const ApiRequest& req, Call& call) {
  const auto& s = call.strategy;  // read by authorize()
  auto obj = body_object(req, {"points", "fills"}, "the performance records");
  if (!obj) return problem(obj.error());
  auto records = world::parse_performance_records(*obj);
  if (!records) return problem(records.error());
  auto& [points, fills] = *records;
  if (points.empty() && fills.empty()) {
    return problem(400, "the body has no 'points' and no 'fills'; send at least one record");
  }
  auto out = worlds_.record_performance(s->id, points, fills, call.principal.name);
  if (!out) return problem(out.error());
  boost::json::array conflicts;
  for (const auto& c : out->conflicts) {
    conflicts.push_back(
        {{"ts", format_timestamp(c.ts)}, {"stored", c.stored}, {"offered", c.offered}});
  }
  return json_response(200, boost::json::object{{"strategy", s->id},
                                                {"points", points.size()},
                                                {"fills", fills.size()},
                                                {"stored", out->points_stored},
                                                {"repeated", out->points_repeated},
                                                {"conflicts", std::move(conflicts)}});
}

namespace {

// The ?from= or ?to= of a read, if given.
Result<std::optional<TimePoint>> query_time(const Query& query, std::string_view name) {
  auto it = query.find(name);
  if (it == query.end()) return std::optional<TimePoint>();
  auto t = parse_timestamp(it->second);
  if (!t) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("query parameter '{}' must be a time like 2026-01-31T00:00:00Z", name));
  }
  return std::optional(*t);
}

Result<world::PerformanceQuery> performance_query(const Query& query) {
  world::PerformanceQuery q;
  if (auto it = query.find("kind"); it != query.end()) {
    auto kind = world::parse_record_kind(it->second);
    if (!kind) return propagate(kind);
    q.kind = *kind;
  }
  for (auto [name, out] : {std::pair{"from", &q.from}, std::pair{"to", &q.to}}) {
    auto t = query_time(query, name);
    if (!t) return propagate(t);
    if (*t) *out = **t;
  }
  auto max_points = query_int(query, "max_points", 2000, 2, 1'000'000);
  if (!max_points) return propagate(max_points);
  q.max_points = static_cast<size_t>(*max_points);
  auto max_fills = query_int(query, "max_fills", 1000, 0, 100'000);
  if (!max_fills) return propagate(max_fills);
  q.max_fills = static_cast<size_t>(*max_fills);
  return q;
}

}  // namespace

ApiResponse Api::get_performance(const ApiRequest&, Call& call) {
  auto q = performance_query(call.query);
  if (!q) return problem(q.error());
  auto v = worlds_.performance(call.strategy->id, *q);
  if (!v) return problem(v.error());
  return json_response(200, performance_view_json(*v, q->kind));
}

ApiResponse Api::get_last_point(const ApiRequest&, Call& call) {
  const auto& s = call.strategy;  // read by authorize()
  auto last = worlds_.last_point(s->id);
  if (!last) return problem(last.error());
  return json_response(
      200, boost::json::object{
               {"strategy", s->id},
               {"last_point", *last ? boost::json::value{{"ts", format_timestamp((*last)->ts)},
                                                         {"equity", (*last)->equity}}
                                    : boost::json::value(nullptr)}});
}

ApiResponse Api::get_validation(const ApiRequest&, Call& call) {
  const auto& s = call.strategy;  // read by authorize()
  bool records = false;
  if (auto it = call.query.find("records"); it != call.query.end()) {
    if (it->second != "true" && it->second != "false") {
      return problem(400, "query parameter 'records' takes true or false");
    }
    records = it->second == "true";
  }
  auto v = worlds_.get_validation(s->id, records);
  if (!v) return problem(v.error());
  if (!*v) {
    return problem(404, fmt::format("strategy '{}' has no validation yet (it is {})", s->id,
                                    lifecycle::strategy_state_name(s->state)));
  }
  const auto& rec = **v;
  auto detail = json::parse(rec.detail);
  boost::json::object o{{"strategy", rec.strategy_id},
                        {"world", rec.world_id},
                        {"outcome", rec.outcome},
                        {"reason", rec.reason},
                        {"started_at", format_timestamp(rec.started_at)},
                        {"finished_at", format_timestamp(rec.finished_at)},
                        {"detail", detail ? *detail : boost::json::value(nullptr)}};
  if (records) {
    o["points"] = points_json(rec.points);
    o["fills"] = fills_json(rec.fills);
  }
  return json_response(200, o);
}

ApiResponse Api::post_handover(const ApiRequest& req, Call& call) {
  const auto& s = call.strategy;  // read by authorize()
  auto obj = body_object(req, {"event", "policy", "orders", "failed", "run_id"}, "the hand-over");
  if (!obj) return problem(obj.error());
  world::HandoverReport report;
  auto event = json::get_string(*obj, "event");
  if (!event) return problem(event.error());
  report.event = *event;
  auto policy = json::get_string(*obj, "policy");
  if (!policy) return problem(policy.error());
  report.policy = *policy;
  auto run_id = json::get_optional_string(*obj, "run_id");
  if (!run_id) return problem(run_id.error());
  report.run_id = *run_id;
  for (auto [key, out] :
       {std::pair{"orders", &report.orders}, std::pair{"failed", &report.failed}}) {
    auto arr = json::get_optional_array(*obj, key);
    if (!arr) return problem(arr.error());
    if (*arr == nullptr) continue;
    for (const auto& v : **arr) {
      if (!v.is_string()) return problem(400, fmt::format("'{}' must be a list of strings", key));
      out->emplace_back(v.as_string());
    }
  }
  auto audit = worlds_.record_handover(s->id, report, call.principal.name);
  if (!audit) return problem(audit.error());
  return json_response(201, audit_json(*audit));
}

}  // namespace qmtl::server
