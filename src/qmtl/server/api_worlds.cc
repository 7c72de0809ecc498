// The /worlds routes of the API.
#include <fmt/format.h>

#include <charconv>

#include "qmtl/core/http_client.h"
#include "qmtl/policy/document.h"
#include "qmtl/server/api_internal.h"
#include "qmtl/server/redis_cache.h"

namespace qmtl::server {
namespace {

// An If-Match header as a version, if present.
Result<std::optional<int64_t>> if_match(const ApiRequest& req) {
  if (req.if_match.empty()) return std::optional<int64_t>{};
  auto v = parse_etag(req.if_match, "If-Match");
  if (!v) return propagate(v);
  return std::optional<int64_t>(*v);
}

// A world with the evidence a list shows: its policy in brief and its last
// evaluation (shapes.h).
Result<boost::json::object> world_with_evidence(world::WorldService& worlds,
                                                const world::World& w) {
  boost::json::object o = world_json(w);
  auto policy = worlds.parsed_policy_of(w);
  if (!policy) return propagate(policy);
  o["policy"] = policy_summary_json(*policy);
  auto runs = worlds.list_evaluations(w.id, 1);
  if (!runs) return propagate(runs);
  o["last_evaluation"] = last_evaluation_json(
      runs->empty() ? std::nullopt : std::optional<world::EvaluationRunRecord>(runs->front()));
  return o;
}

}  // namespace

ApiResponse Api::list_worlds(const ApiRequest&, Call& call) {
  auto ws = worlds_.list_worlds();
  if (!ws) return problem(ws.error());
  boost::json::array arr;
  for (const auto& w : *ws) {
    if (!call.principal.may_access(w.id)) continue;
    auto o = world_with_evidence(worlds_, w);
    if (!o) return problem(o.error());
    arr.push_back(std::move(*o));
  }
  return json_response(200, boost::json::object{{"worlds", std::move(arr)}});
}

ApiResponse Api::create_world(const ApiRequest& req, Call& call) {
  auto obj = body_object(req, {"id", "name", "policy"}, "the world");
  if (!obj) return problem(obj.error());
  auto id = json::get_string(*obj, "id");
  if (!id) return problem(id.error());
  if (auto d = world_access(call, *id)) return *d;
  auto name = json::get_optional_string(*obj, "name");
  if (!name) return problem(name.error());
  // The policy is checked before the world is created, so a bad policy creates
  // nothing.
  std::optional<std::string> policy_text;
  if (const auto* p = obj->if_contains("policy"); p != nullptr && !p->is_null()) {
    if (p->is_string()) {
      policy_text = std::string(p->get_string());
    } else if (p->is_object()) {
      policy_text = json::dump(*p);
    } else {
      return problem(400, fmt::format("field 'policy' must be a policy document (a YAML string "
                                      "or a JSON object), not {}",
                                      json::kind_name(*p)));
    }
    if (auto r = policy::parse_policy_document(*policy_text, "policy"); !r) {
      return problem(r.error());
    }
  }
  auto w = worlds_.create_world({.id = *id, .name = *name, .actor = call.principal.name});
  if (!w) return problem(w.error());
  if (policy_text) {
    auto v = worlds_.add_policy(w->id, *policy_text, call.principal.name);
    if (!v) return problem(v.error());
    w = worlds_.get_world(w->id);
    if (!w) return problem(w.error());
  }
  ApiResponse r = json_response(201, world_json(*w));
  r.headers.emplace_back("Location", "/worlds/" + w->id);
  return r;
}

ApiResponse Api::get_world(const ApiRequest&, Call& call) {
  const std::string& id = call.segs[1];
  auto w = worlds_.get_world(id);
  if (!w) return problem(w.error());
  auto o = world_with_evidence(worlds_, *w);
  if (!o) return problem(o.error());
  return json_response(200, *o);
}

ApiResponse Api::set_world_state(const ApiRequest& req, Call& call) {
  const std::string& id = call.segs[1];
  auto obj = body_object(req, {"state", "reason"}, "the state change");
  if (!obj) return problem(obj.error());
  auto state_name = json::get_string(*obj, "state");
  if (!state_name) return problem(state_name.error());
  auto state = lifecycle::parse_world_state(*state_name);
  if (!state) return problem(state.error());
  // The route's role_of has required an admin to retire.
  auto reason = json::get_optional_string(*obj, "reason");
  if (!reason) return problem(reason.error());
  auto w = worlds_.set_world_state(id, *state, call.principal.name, reason->value_or(""));
  if (!w) return problem(w.error());
  return json_response(200, world_json(*w));
}

ApiResponse Api::get_current_policy(const ApiRequest&, Call& call) {
  const std::string& id = call.segs[1];
  auto p = worlds_.get_policy(id, std::nullopt);
  if (!p) return problem(p.error());
  ApiResponse r = json_response(200, policy_json(*p, true, true));
  r.headers.emplace_back("ETag", etag(p->version));
  return r;
}

ApiResponse Api::add_policy(const ApiRequest& req, Call& call) {
  const std::string& id = call.segs[1];
  auto expected = if_match(req);
  if (!expected) return problem(expected.error());
  auto v = worlds_.add_policy(id, req.body, call.principal.name, *expected);
  if (!v) return problem(v.error());
  boost::json::object o = policy_json(*v, true, false);
  ApiResponse r = json_response(201, o);
  r.headers.emplace_back("Location", fmt::format("/worlds/{}/policies/{}", id, v->version));
  r.headers.emplace_back("ETag", etag(v->version));
  return r;
}

ApiResponse Api::set_current_policy(const ApiRequest& req, Call& call) {
  const std::string& id = call.segs[1];
  auto obj = body_object(req, {"version", "reason"}, "the policy rollback");
  if (!obj) return problem(obj.error());
  auto version = json::get_optional_int(*obj, "version");
  if (!version) return problem(version.error());
  if (!*version) return problem(400, "field 'version' is required");
  auto reason = json::get_optional_string(*obj, "reason");
  if (!reason) return problem(reason.error());
  auto expected = if_match(req);
  if (!expected) return problem(expected.error());
  auto w = worlds_.set_current_policy(id, **version, call.principal.name, reason->value_or(""),
                                      *expected);
  if (!w) return problem(w.error());
  ApiResponse r = json_response(200, world_json(*w));
  r.headers.emplace_back("ETag", etag(w->policy_version.value_or(0)));
  return r;
}

ApiResponse Api::list_policies(const ApiRequest&, Call& call) {
  const std::string& id = call.segs[1];
  auto w = worlds_.get_world(id);
  if (!w) return problem(w.error());
  auto list = worlds_.list_policies(id);
  if (!list) return problem(list.error());
  boost::json::array arr;
  for (const auto& p : *list) arr.push_back(policy_json(p, p.version == w->policy_version, false));
  boost::json::object o{{"world", id}, {"versions", std::move(arr)}};
  if (w->policy_version) {
    o["current"] = *w->policy_version;
  } else {
    o["current"] = nullptr;
  }
  ApiResponse r = json_response(200, o);
  r.headers.emplace_back("ETag", etag(w->policy_version.value_or(0)));
  return r;
}

ApiResponse Api::get_policy(const ApiRequest&, Call& call) {
  const std::string& id = call.segs[1];
  int64_t version = 0;
  const std::string& v = call.segs[3];
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), version);
  if (ec != std::errc() || p != v.data() + v.size() || version < 1) {
    return problem(400, fmt::format("policy version '{}' is not a number from 1 up", v));
  }
  auto w = worlds_.get_world(id);
  if (!w) return problem(w.error());
  auto pv = worlds_.get_policy(id, version);
  if (!pv) return problem(pv.error());
  ApiResponse r = json_response(200, policy_json(*pv, w->policy_version == version, true));
  r.headers.emplace_back("ETag", etag(version));
  return r;
}

ApiResponse Api::evaluate(const ApiRequest& req, Call& call) {
  const std::string& id = call.segs[1];
  auto obj = body_object(req, {"apply"}, "the evaluation request", true);
  if (!obj) return problem(obj.error());
  auto apply_now = json::get_optional_bool(*obj, "apply");
  if (!apply_now) return problem(apply_now.error());
  auto run = worlds_.evaluate_world(id, call.principal.name);
  if (!run) return problem(run.error());
  boost::json::object o = evaluation_json(*run);
  if (apply_now->value_or(false)) {
    auto applied = worlds_.apply_run(id, run->id, call.principal.name);
    if (!applied) {
      // The run is stored; say so, so the caller can apply it later by id.
      return problem(
          http_status(applied.error().code),
          fmt::format("run '{}' was stored but not applied: {}", run->id, applied.error().message));
    }
    o["apply"] = apply_json(*applied);
  }
  ApiResponse r = json_response(201, o);
  r.headers.emplace_back("Location", fmt::format("/worlds/{}/evaluations/{}", id, run->id));
  return r;
}

ApiResponse Api::list_evaluations(const ApiRequest&, Call& call) {
  const std::string& id = call.segs[1];
  auto limit = query_int(call.query, "limit", 50, 1, 1000);
  if (!limit) return problem(limit.error());
  auto runs = worlds_.list_evaluations(id, static_cast<size_t>(*limit));
  if (!runs) return problem(runs.error());
  boost::json::array arr;
  for (const auto& run : *runs) arr.push_back(evaluation_summary_json(run));
  return json_response(200, boost::json::object{{"world", id}, {"runs", std::move(arr)}});
}

ApiResponse Api::get_schedule(const ApiRequest&, Call& call) {
  const std::string& id = call.segs[1];
  auto w = worlds_.get_world(id);
  if (!w) return problem(w.error());
  auto s = worlds_.get_schedule(id);
  if (!s) return problem(s.error());
  boost::json::object o{{"world", id}, {"scheduled", s->has_value()}};
  if (*s) {
    const auto& st = **s;
    o["spec"] = st.spec;
    o["next_run"] = format_timestamp(st.next_run);
    o["last_run"] = st.last_run ? boost::json::value(format_timestamp(*st.last_run)) : nullptr;
    o["last_run_id"] = st.last_run_id ? boost::json::value(*st.last_run_id) : nullptr;
    o["last_error"] =
        st.last_error.empty() ? boost::json::value(nullptr) : boost::json::value(st.last_error);
  }
  return json_response(200, o);
}

namespace {

// A webhook URL without its path: the path of e.g. a Slack webhook is its secret.
std::string redacted(const std::string& url) {
  auto a = parse_web_url(url);
  if (!a) return "(set)";
  return fmt::format("{}://{}:{}/…", a->scheme, a->host, a->port);
}

boost::json::object alerts_json(std::string_view world,
                                const std::optional<store::AlertHook>& hook) {
  boost::json::object o{{"world", world}};
  if (!hook) {
    o["webhook"] = nullptr;
    o["events"] = boost::json::array();
    return o;
  }
  o["webhook"] = redacted(hook->url);
  boost::json::array events;
  for (const auto& e : hook->events) events.emplace_back(e);
  o["events"] = std::move(events);
  o["updated_at"] = format_timestamp(hook->updated_at);
  return o;
}

}  // namespace

ApiResponse Api::get_alerts(const ApiRequest&, Call& call) {
  const std::string& id = call.segs[1];
  auto w = worlds_.get_world(id);
  if (!w) return problem(w.error());
  auto hook = worlds_.get_alert_hook(id);
  if (!hook) return problem(hook.error());
  return json_response(200, alerts_json(id, *hook));
}

ApiResponse Api::put_alerts(const ApiRequest& req, Call& call) {
  const std::string& id = call.segs[1];
  auto obj = body_object(req, {"webhook", "events"}, "the alert settings");
  if (!obj) return problem(obj.error());
  auto url = json::get_optional_string(*obj, "webhook");
  if (!url) return problem(url.error());
  std::vector<std::string> events;
  if (const auto* e = obj->if_contains("events")) {
    if (!e->is_array()) {
      return problem(400, "field 'events' must be a list of promote, demote, reject, failure");
    }
    for (const auto& x : e->as_array()) {
      if (!x.is_string()) {
        return problem(400, "field 'events' must be a list of promote, demote, reject, failure");
      }
      events.emplace_back(x.as_string());
    }
  }
  auto hook = worlds_.set_alert_hook(id, url->value_or(""), std::move(events), call.principal.name);
  if (!hook) return problem(hook.error());
  return json_response(200, alerts_json(id, hook->url.empty() ? std::optional<store::AlertHook>()
                                                              : std::optional(*hook)));
}

ApiResponse Api::get_evaluation(const ApiRequest&, Call& call) {
  const std::string& id = call.segs[1];
  auto run = worlds_.get_evaluation(id, call.segs[3]);
  if (!run) return problem(run.error());
  return json_response(200, evaluation_json(*run));
}

ApiResponse Api::activation_response(const ApiRequest& req, const CachedActivation& c) {
  ApiResponse r{.status = 200, .content_type = "application/json"};
  if (!req.if_none_match.empty() && req.if_none_match == c.etag) {
    r.status = 304;
  } else {
    r.shared_body = c.body;
  }
  r.headers.emplace_back("ETag", c.etag);
  return r;
}

std::optional<ApiResponse> Api::cached_activation(const ApiRequest& req, const std::string& world) {
  if (options_.shared_store) return std::nullopt;
  std::lock_guard lock(cache_mu_);
  if (!cache_trusted_) return std::nullopt;
  auto it = activation_cache_.find(world);
  if (it == activation_cache_.end()) return std::nullopt;
  return activation_response(req, it->second);
}

ApiResponse Api::get_activation(const ApiRequest& req, Call& call) {
  const std::string& id = call.segs[1];
  if (auto cached = cached_activation(req, id)) return *cached;
  uint64_t generation = 0;
  bool trusted = true;
  {
    std::lock_guard lock(cache_mu_);
    generation = generation_;
    trusted = cache_trusted_;
  }
  const auto remember = [&](const CachedActivation& c) {
    std::lock_guard lock(cache_mu_);
    // A change committed since the read would have bumped the generation: the
    // copy is stale and must not be cached.
    if (generation == generation_ && cache_trusted_ && !options_.shared_store) {
      activation_cache_[id] = c;
    }
  };
  std::optional<RedisActivationCache::Ticket> ticket;
  if (trusted && options_.redis != nullptr) {
    if (auto hit = options_.redis->get(id, ticket)) {
      CachedActivation c{.body = std::make_shared<const std::string>(std::move(hit->body)),
                         .etag = std::move(hit->etag)};
      remember(c);
      return activation_response(req, c);
    }
  }
  auto gates = worlds_.list_activations(id);
  if (!gates) return problem(gates.error());
  CachedActivation c{.body = std::make_shared<const std::string>(
                         json::dump(activation_set_json(*gates, options_.activation_ttl_s))),
                     .etag = etag(activation_set_version(*gates))};
  remember(c);
  if (ticket) options_.redis->put(id, *ticket, {.body = *c.body, .etag = c.etag});
  return activation_response(req, c);
}

ApiResponse Api::put_activation(const ApiRequest& req, Call& call) {
  const std::string& id = call.segs[1];
  auto obj =
      body_object(req, {"strategy", "side", "active", "reason", "force"}, "the activation change");
  if (!obj) return problem(obj.error());
  auto strategy = json::get_string(*obj, "strategy");
  if (!strategy) return problem(strategy.error());
  auto side = json::get_string(*obj, "side");
  if (!side) return problem(side.error());
  auto active = json::get_bool(*obj, "active");
  if (!active) return problem(active.error());
  auto reason = json::get_optional_string(*obj, "reason");
  if (!reason) return problem(reason.error());
  auto force = json::get_optional_bool(*obj, "force");
  if (!force) return problem(force.error());
  auto expected = if_match(req);
  if (!expected) return problem(expected.error());
  auto change = worlds_.set_activation(id, *strategy, *side, *active, call.principal.name,
                                       reason->value_or(""), *expected, force->value_or(false));
  if (!change) return problem(change.error());
  ApiResponse r = json_response(change->queued ? 202 : 200,
                                manual_outcome_json(*change, options_.activation_ttl_s));
  if (change->entry) r.headers.emplace_back("ETag", etag(change->entry->version));
  return r;
}

ApiResponse Api::apply(const ApiRequest& req, Call& call) {
  const std::string& id = call.segs[1];
  auto obj = body_object(req, {"run_id"}, "the apply request");
  if (!obj) return problem(obj.error());
  auto run = json::get_string(*obj, "run_id");
  if (!run) return problem(run.error());
  auto e = worlds_.apply_run(id, *run, call.principal.name);
  if (!e) return problem(e.error());
  return json_response(200, apply_json(*e));
}

ApiResponse Api::get_audit(const ApiRequest&, Call& call) {
  const std::string& id = call.segs[1];
  auto after = query_int(call.query, "after", 0, 0, INT64_MAX);
  if (!after) return problem(after.error());
  auto limit = query_int(call.query, "limit", 1000, 1, 10'000);
  if (!limit) return problem(limit.error());
  auto records = worlds_.list_audit(id, *after, static_cast<size_t>(*limit));
  if (!records) return problem(records.error());
  boost::json::array arr;
  for (const auto& a : *records) arr.push_back(audit_json(a));
  const int64_t next = records->empty() ? *after : records->back().seq;
  return json_response(
      200, boost::json::object{{"world", id}, {"records", std::move(arr)}, {"next_after", next}});
}

ApiResponse Api::get_timeline(const ApiRequest&, Call& call) {
  const std::string& id = call.segs[1];
  std::string strategy;
  if (auto it = call.query.find("strategy"); it != call.query.end()) strategy = it->second;
  auto tl = worlds_.timeline(id, strategy);
  if (!tl) return problem(tl.error());
  boost::json::array arr;
  arr.reserve(tl->size());
  for (const auto& t : *tl) arr.push_back(transition_json(t));
  return json_response(200, boost::json::object{{"world", id}, {"transitions", std::move(arr)}});
}

ApiResponse Api::open_events(const ApiRequest& req, Call& call) {
  const std::string& id = call.segs[1];
  EventStreamRequest s{.world = id};
  if (auto it = call.query.find("strategy"); it != call.query.end()) s.strategy = it->second;
  // EventSource sends Last-Event-ID as a header; clients that cannot set
  // headers may pass ?last_event_id=.
  std::string last = req.last_event_id;
  if (auto it = call.query.find("last_event_id"); last.empty() && it != call.query.end()) {
    last = it->second;
  }
  if (!last.empty()) {
    auto seq = parse_etag(last, "Last-Event-ID");
    if (!seq) return problem(seq.error());
    s.after_seq = *seq;
  }
  // Checked here so that an unknown world is a 404 rather than an empty stream.
  auto w = worlds_.get_world(id);
  if (!w) return problem(w.error());
  ApiResponse r{.status = 200, .content_type = "text/event-stream"};
  r.stream = std::move(s);
  return r;
}

}  // namespace qmtl::server
