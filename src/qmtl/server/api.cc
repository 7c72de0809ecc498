#include "qmtl/server/api.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <charconv>
#include <stdexcept>

#include "qmtl/core/sha256.h"
#include "qmtl/server/api_internal.h"
#include "qmtl/server/redis_cache.h"

namespace qmtl::server {
namespace {

std::string_view status_title(int status) {
  switch (status) {
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 503:
      return "Service Unavailable";
    default:
      return status >= 500 ? "Internal Server Error" : "Error";
  }
}

ApiResponse problem_response(int status, std::string_view type, std::string_view detail) {
  boost::json::object o;
  o["type"] = type;
  o["title"] = status_title(status);
  o["status"] = status;
  o["detail"] = detail;
  return ApiResponse{
      .status = status, .content_type = "application/problem+json", .body = json::dump(o)};
}

bool is_json_content_type(std::string_view ct) {
  const auto semi = ct.find(';');
  std::string_view base = ct.substr(0, semi);
  while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
  return base.empty() || base == "application/json";
}

bool is_policy_content_type(std::string_view ct) {
  const std::string_view base = ct.substr(0, ct.find(';'));
  return is_json_content_type(ct) || base == "application/yaml" || base == "application/x-yaml" ||
         base == "text/yaml" || base == "text/x-yaml";
}

bool match(std::string_view tmpl, const std::vector<std::string>& segs) {
  size_t i = 0;
  tmpl.remove_prefix(1);
  while (!tmpl.empty()) {
    const auto slash = tmpl.find('/');
    const std::string_view part = tmpl.substr(0, slash);
    if (part == "{*}") return true;  // the rest of the path, however long
    if (i >= segs.size()) return false;
    if (!(part.starts_with('{') || part == segs[i])) return false;
    ++i;
    if (slash == std::string_view::npos) break;
    tmpl.remove_prefix(slash + 1);
  }
  return i == segs.size();
}

bool valid_idempotency_key(std::string_view k) {
  if (k.empty() || k.size() > 200) return false;
  for (char c : k) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kVersionMismatch:
      return 412;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

ApiResponse problem(int status, std::string_view detail) {
  return problem_response(status, "about:blank", detail);
}

ApiResponse problem(const Error& error) {
  return problem_response(http_status(error.code),
                          fmt::format("urn:qmtl:problem:{}", error_code_name(error.code)),
                          error.message);
}

Result<boost::json::object> body_object(const ApiRequest& req,
                                        std::initializer_list<std::string_view> allowed,
                                        std::string_view what, bool empty_ok) {
  if (empty_ok && req.body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return boost::json::object{};
  }
  auto doc = json::parse(req.body);
  if (!doc) return propagate(doc);
  auto obj = json::as_object(*doc, "the request body");
  if (!obj) return propagate(obj);
  if (auto r = json::check_keys(**obj, allowed, what); !r) return propagate(r);
  return std::move(doc->as_object());
}

Result<int64_t> query_int(const Query& query, std::string_view name, int64_t fallback, int64_t lo,
                          int64_t hi) {
  auto it = query.find(name);
  if (it == query.end()) return fallback;
  int64_t v = 0;
  const auto& s = it->second;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("query parameter '{}' must be a whole number from {} to {}", name, lo, hi));
  }
  return v;
}

Api::Api(world::WorldService& worlds, const Clock& clock, ApiOptions options)
    : worlds_(worlds),
      clock_(clock),
      options_(std::move(options)),
      events_(worlds, options_.activation_ttl_s, 10'000, &outage_),
      metrics_(worlds, clock),
      idempotency_(clock, options_.idempotency_capacity, options_.idempotency_ttl),
      sessions_(clock, options_.session_idle, 10'000) {
  if (options_.alerts) {
    alerts_ =
        std::make_unique<AlertDispatcher>(worlds_, metrics_, options_.alert_options, &outage_);
  }
  worlds_.set_observer(this);
}

Api::~Api() {
  worlds_.set_observer(nullptr);
  alerts_.reset();
}

std::vector<std::string> Api::route_names() {
  std::vector<std::string> out;
  for (const auto& r : routes()) out.push_back(fmt::format("{} {}", r.method, r.path));
  return out;
}

std::vector<Api::RouteInfo> Api::route_infos() {
  std::vector<RouteInfo> out;
  for (const auto& r : routes()) {
    out.push_back({.method = std::string(r.method),
                   .path = std::string(r.path),
                   .role = r.scope == Scope::kPublic ? std::nullopt : std::optional(r.role)});
  }
  return out;
}

namespace {

// Retiring archives every strategy and cannot be undone: admins only. A body
// that does not parse needs only the route's role; the handler refuses it.
Role role_of_state_change(const ApiRequest& req) {
  auto doc = json::parse(req.body);
  if (!doc || !doc->is_object()) return Role::kOperator;
  const auto* state = doc->as_object().if_contains("state");
  if (state == nullptr || !state->is_string()) return Role::kOperator;
  auto parsed = lifecycle::parse_world_state(state->get_string());
  return parsed && *parsed == lifecycle::WorldState::kRetired ? Role::kAdmin : Role::kOperator;
}

}  // namespace

const std::vector<Api::Route>& Api::routes() {
  using enum Role;
  using enum Scope;
  using enum Body;
  // Reading broker and e-mail settings needs an operator: they name where
  // orders and alerts go. Every change of settings or policy needs an admin.
  static const std::vector<Route> kRoutes = {
      {"GET", "/healthz", &Api::get_health, kViewer, kPublic, kNone, nullptr, &Api::fast_health},
      {"GET", "/openapi.json", &Api::get_openapi, kViewer, kPublic, kNone, nullptr,
       &Api::fast_openapi},
      {"POST", "/ui/session", &Api::open_session, kViewer, kPublic, kJson},
      {"GET", "/ui/session", &Api::get_session, kViewer, kInRequest},
      {"DELETE", "/ui/session", &Api::close_session, kViewer, kPublic},
      {"GET", "/ui/{*}", &Api::get_console, kViewer, kPublic, kNone, nullptr, &Api::fast_console},
      {"GET", "/metrics", &Api::get_metrics, kViewer, kEveryWorld},
      {"GET", "/worlds", &Api::list_worlds, kViewer, kInRequest},
      {"POST", "/worlds", &Api::create_world, kAdmin, kInRequest, kJson},
      {"GET", "/worlds/{id}", &Api::get_world, kViewer, kPathWorld},
      {"POST", "/worlds/{id}/state", &Api::set_world_state, kOperator, kPathWorld, kJson,
       &role_of_state_change},
      {"GET", "/worlds/{id}/policy", &Api::get_current_policy, kViewer, kPathWorld},
      {"POST", "/worlds/{id}/policy", &Api::add_policy, kAdmin, kPathWorld, kPolicy},
      {"POST", "/worlds/{id}/policy/current", &Api::set_current_policy, kAdmin, kPathWorld, kJson},
      {"GET", "/worlds/{id}/policies", &Api::list_policies, kViewer, kPathWorld},
      {"GET", "/worlds/{id}/policies/{version}", &Api::get_policy, kViewer, kPathWorld},
      {"POST", "/worlds/{id}/evaluate", &Api::evaluate, kOperator, kPathWorld, kJson},
      {"GET", "/worlds/{id}/evaluations", &Api::list_evaluations, kViewer, kPathWorld},
      {"GET", "/worlds/{id}/evaluations/{run}", &Api::get_evaluation, kViewer, kPathWorld},
      {"GET", "/worlds/{id}/schedule", &Api::get_schedule, kViewer, kPathWorld},
      {"POST", "/worlds/{id}/replay", &Api::replay, kViewer, kPathWorld, kJson},
      {"GET", "/worlds/{id}/alerts", &Api::get_alerts, kOperator, kPathWorld},
      {"PUT", "/worlds/{id}/alerts", &Api::put_alerts, kAdmin, kPathWorld, kJson},
      {"GET", "/worlds/{id}/alerts/email", &Api::get_setting, kOperator, kPathWorld, kNone, nullptr,
       nullptr, &kEmailSettings},
      {"PUT", "/worlds/{id}/alerts/email", &Api::put_setting, kAdmin, kPathWorld, kJson, nullptr,
       nullptr, &kEmailSettings},
      {"DELETE", "/worlds/{id}/alerts/email", &Api::delete_setting, kAdmin, kPathWorld, kNone,
       nullptr, nullptr, &kEmailSettings},
      {"GET", "/worlds/{id}/alerts/telegram", &Api::get_setting, kOperator, kPathWorld, kNone,
       nullptr, nullptr, &kTelegramSettings},
      {"PUT", "/worlds/{id}/alerts/telegram", &Api::put_setting, kAdmin, kPathWorld, kJson, nullptr,
       nullptr, &kTelegramSettings},
      {"DELETE", "/worlds/{id}/alerts/telegram", &Api::delete_setting, kAdmin, kPathWorld, kNone,
       nullptr, nullptr, &kTelegramSettings},
      {"GET", "/worlds/{id}/execution", &Api::get_setting, kViewer, kPathWorld, kNone, nullptr,
       nullptr, &kExecutionSettings},
      {"PUT", "/worlds/{id}/execution", &Api::put_setting, kAdmin, kPathWorld, kJson, nullptr,
       nullptr, &kExecutionSettings},
      {"DELETE", "/worlds/{id}/execution", &Api::delete_setting, kAdmin, kPathWorld, kNone, nullptr,
       nullptr, &kExecutionSettings},
      {"GET", "/worlds/{id}/broker", &Api::get_setting, kOperator, kPathWorld, kNone, nullptr,
       nullptr, &kBrokerSettings},
      {"PUT", "/worlds/{id}/broker", &Api::put_setting, kAdmin, kPathWorld, kJson, nullptr, nullptr,
       &kBrokerSettings},
      {"DELETE", "/worlds/{id}/broker", &Api::delete_setting, kAdmin, kPathWorld, kNone, nullptr,
       nullptr, &kBrokerSettings},
      {"GET", "/worlds/{id}/activation", &Api::get_activation, kViewer, kPathWorld, kNone, nullptr,
       &Api::fast_activation},
      {"PUT", "/worlds/{id}/activation", &Api::put_activation, kOperator, kPathWorld, kJson},
      {"POST", "/worlds/{id}/apply", &Api::apply, kOperator, kPathWorld, kJson},
      {"GET", "/worlds/{id}/audit", &Api::get_audit, kViewer, kPathWorld},
      {"GET", "/worlds/{id}/events", &Api::open_events, kViewer, kPathWorld},
      {"GET", "/worlds/{id}/timeline", &Api::get_timeline, kViewer, kPathWorld},
      {"POST", "/strategies", &Api::submit_strategy, kOperator, kInRequest, kJson},
      {"GET", "/strategies", &Api::list_strategies, kViewer, kInRequest},
      {"GET", "/strategies/{id}", &Api::get_strategy, kViewer, kStrategyWorld},
      {"POST", "/strategies/{id}/activate", &Api::strategy_activate, kOperator, kStrategyWorld,
       kJson},
      {"POST", "/strategies/{id}/deactivate", &Api::strategy_deactivate, kOperator, kStrategyWorld,
       kJson},
      {"POST", "/strategies/{id}/archive", &Api::strategy_archive, kOperator, kStrategyWorld,
       kJson},
      {"POST", "/strategies/{id}/promote", &Api::strategy_promote, kOperator, kStrategyWorld,
       kJson},
      {"POST", "/strategies/{id}/demote", &Api::strategy_demote, kOperator, kStrategyWorld, kJson},
      {"POST", "/strategies/{id}/error", &Api::strategy_error, kOperator, kStrategyWorld, kJson},
      {"POST", "/strategies/{id}/performance", &Api::post_performance, kOperator, kStrategyWorld,
       kJson},
      {"GET", "/strategies/{id}/performance", &Api::get_performance, kViewer, kStrategyWorld},
      {"GET", "/strategies/{id}/performance/last", &Api::get_last_point, kViewer, kStrategyWorld},
      {"POST", "/strategies/{id}/handover", &Api::post_handover, kOperator, kStrategyWorld, kJson},
      {"GET", "/strategies/{id}/validation", &Api::get_validation, kViewer, kStrategyWorld},
  };
  static const bool kChecked = [] {
    for (const auto& r : kRoutes) {
      const bool writes = r.method == "POST" || r.method == "PUT";
      // A body route without a content type would skip the 415 check; a fast
      // route with a strategy scope would block on the database.
      if (writes != (r.body != kNone) || (r.fast != nullptr && r.scope == kStrategyWorld)) {
        throw std::logic_error(fmt::format("route {} {} is declared wrongly", r.method, r.path));
      }
    }
    return true;
  }();
  (void)kChecked;
  return kRoutes;
}

std::optional<ApiResponse> Api::check_content_type(const ApiRequest& req, const Route& route) {
  switch (route.body) {
    case Body::kNone:
      return std::nullopt;
    case Body::kJson:
      if (is_json_content_type(req.content_type)) return std::nullopt;
      return problem(415, fmt::format("Content-Type '{}' is not supported on {}; send "
                                      "application/json",
                                      req.content_type, route.path));
    case Body::kPolicy:
      if (is_policy_content_type(req.content_type)) return std::nullopt;
      return problem(415, fmt::format("Content-Type '{}' is not a policy document; send "
                                      "application/yaml or application/json",
                                      req.content_type));
  }
  return std::nullopt;
}

ApiResponse Api::handle(const ApiRequest& req) { return *dispatch(req, false); }

std::optional<ApiResponse> Api::try_handle_fast(const ApiRequest& req) {
  return dispatch(req, true);
}

std::optional<ApiResponse> Api::dispatch(const ApiRequest& req, bool fast_only) {
  auto url = boost::urls::parse_origin_form(req.target);
  if (!url) return problem(400, fmt::format("malformed request target '{}'", req.target));
  Call call;
  for (auto seg : url->segments()) call.segs.emplace_back(seg);
  // A trailing slash ("/worlds/") yields an empty last segment; treat it as absent.
  if (!call.segs.empty() && call.segs.back().empty()) call.segs.pop_back();
  for (auto p : url->params()) call.query[std::string(p.key)] = p.has_value ? p.value : "";
  const std::string path(url->path());

  std::string allow;
  for (const auto& r : routes()) {
    if (!match(r.path, call.segs)) continue;
    call.route = r.path;
    if (r.method == req.method) {
      call.entry = &r;
      break;
    }
    allow += allow.empty() ? "" : ", ";
    allow += r.method;
  }
  if (call.entry == nullptr) {
    if (fast_only) return std::nullopt;
    if (!allow.empty()) {
      ApiResponse r =
          problem(405, fmt::format("{} is not allowed on {}; use {}", req.method, path, allow));
      r.headers.emplace_back("Allow", allow);
      r.route = call.route;
      return r;
    }
    return problem(
        404, fmt::format("no route for {} {}; see docs/api.md for the routes", req.method, path));
  }
  const Route& route = *call.entry;
  if (fast_only && route.fast == nullptr) return std::nullopt;
  auto resp = [&]() -> std::optional<ApiResponse> {
    if (route.scope != Scope::kPublic) {
      if (auto denied = authenticate(req, call)) return denied;
      if (auto denied = authorize(req, route, call)) return denied;
      // A cookie goes with every request the browser makes, a forged one from
      // another site too; only the console's own script sets this header.
      if (call.by_cookie && req.method != "GET" && req.console.empty()) {
        return problem(403,
                       "a change made with the console's session must come from the "
                       "console (X-QMTL-Console); cross-site requests are refused");
      }
    }
    if (auto refused = check_content_type(req, route)) return refused;
    if (fast_only) return (this->*route.fast)(req, call);
    if (route.body != Body::kNone) return with_idempotency(req, call, route.handler);
    return (this->*route.handler)(req, call);
  }();
  if (resp) resp->route = call.route;
  return resp;
}

std::optional<ApiResponse> Api::authenticate(const ApiRequest& req, Call& call) {
  if (options_.tokens == nullptr) {
    call.principal = Principal{.name = "local", .role = Role::kAdmin};
    return std::nullopt;
  }
  auto unauthorized = [](std::string_view detail) {
    ApiResponse r = problem(401, detail);
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"qmtl\"");
    return r;
  };
  std::string_view h = req.authorization;
  if (h.empty()) {
    if (auto id = cookie_value(req.cookie, kSessionCookie); !id.empty()) {
      auto p = sessions_.find(id);
      if (!p) return unauthorized("the console session has ended; sign in again");
      call.principal = std::move(*p);
      call.by_cookie = true;
      return std::nullopt;
    }
    return unauthorized(
        "this route needs a bearer token: send 'Authorization: Bearer <token>' (the CLI reads "
        "QMTL_TOKEN)");
  }
  if (h.size() < 7 || !(h.substr(0, 7) == "Bearer " || h.substr(0, 7) == "bearer ")) {
    return unauthorized("the Authorization header must be 'Bearer <token>'");
  }
  auto p = options_.tokens->find(h.substr(7));
  if (!p) return unauthorized("the bearer token is not valid; ask an admin for a token");
  call.principal = std::move(*p);
  return std::nullopt;
}

std::optional<ApiResponse> Api::authorize(const ApiRequest& req, const Route& route, Call& call) {
  const Principal& p = call.principal;
  Role needed = route.role;
  if (route.role_of != nullptr) needed = std::max(needed, route.role_of(req));
  if (!p.has_role(needed)) {
    return problem(403, fmt::format("token '{}' has role {}; this needs {} or higher", p.name,
                                    role_name(p.role), role_name(needed)));
  }
  switch (route.scope) {
    case Scope::kPublic:
    case Scope::kInRequest:
      return std::nullopt;
    case Scope::kEveryWorld:
      if (!p.worlds) return std::nullopt;
      return problem(403, fmt::format("token '{}' is limited to some worlds; {} needs a token for "
                                      "every world",
                                      p.name, route.path));
    case Scope::kPathWorld:
      return world_access(call, call.segs[1]);
    case Scope::kStrategyWorld: {
      auto s = worlds_.get_strategy(call.segs[1]);
      if (!s) return problem(s.error());
      call.strategy = std::move(*s);
      return world_access(call, call.strategy->world_id);
    }
  }
  return std::nullopt;
}

std::optional<ApiResponse> Api::world_access(const Call& call, std::string_view world) {
  const Principal& p = call.principal;
  if (p.may_access(world)) return std::nullopt;
  return problem(403, fmt::format("token '{}' may not access world '{}'", p.name, world));
}

ApiResponse Api::with_idempotency(const ApiRequest& req, Call& call, Handler handler) {
  if (req.idempotency_key.empty()) return (this->*handler)(req, call);
  if (!valid_idempotency_key(req.idempotency_key)) {
    return problem(400,
                   "Idempotency-Key must be 1-200 printable ASCII characters without spaces, "
                   "e.g. a UUID");
  }
  // Scoped by principal so that two callers never see each other's responses.
  const std::string key = call.principal.name + '\n' + req.idempotency_key;
  const std::string fingerprint =
      fmt::format("{} {} {} {}", req.method, req.target, req.content_type, sha256_hex(req.body));
  auto begin = idempotency_.begin(key, fingerprint);
  switch (begin.outcome) {
    case IdempotencyCache::Outcome::kReplay:
      begin.response.headers.emplace_back("Idempotent-Replayed", "true");
      return begin.response;
    case IdempotencyCache::Outcome::kMismatch:
      return problem(422, fmt::format("Idempotency-Key '{}' was used for a different request; "
                                      "use a new key for a new request",
                                      req.idempotency_key));
    case IdempotencyCache::Outcome::kInProgress:
      return problem(409, fmt::format("the request with Idempotency-Key '{}' is still running; "
                                      "retry when it has answered",
                                      req.idempotency_key));
    case IdempotencyCache::Outcome::kNew:
      break;
  }
  ApiResponse resp = (this->*handler)(req, call);
  idempotency_.finish(key, resp);
  return resp;
}

void Api::world_changed(std::string_view world_id) {
  // Before the change is acknowledged: no server serves the old gates from Redis after.
  if (options_.redis != nullptr) options_.redis->changed();
  {
    std::lock_guard lock(cache_mu_);
    ++generation_;
    if (auto it = activation_cache_.find(world_id); it != activation_cache_.end()) {
      activation_cache_.erase(it);
    }
  }
  events_.publish(world_id);
  if (alerts_) alerts_->world_changed(world_id);
  if (auto* m = execution_.load()) m->wake();
}

void Api::set_change_feed(bool up) {
  {
    std::lock_guard lock(cache_mu_);
    cache_trusted_ = up;
    ++generation_;
    activation_cache_.clear();
  }
  if (!up) return;
  // Changes made while the feed was down were not heard: every world may have
  // changed (event streams read the audit log from their cursors, so nothing
  // is lost for them).
  auto worlds = worlds_.list_worlds();
  if (!worlds) return;
  for (const auto& w : *worlds) world_changed(w.id);
}

void Api::evaluation_finished(std::string_view world_id, double seconds, bool ok) {
  metrics_.evaluation(world_id, seconds, ok);
}

void Api::apply_finished(std::string_view world_id, const world::ApplyJournalEntry* done,
                         bool fresh, double seconds) {
  metrics_.apply(world_id, done, fresh, seconds);
}

std::optional<ApiResponse> Api::fast_health(const ApiRequest& req, Call& call) {
  return get_health(req, call);
}

std::optional<ApiResponse> Api::fast_activation(const ApiRequest& req, Call& call) {
  return cached_activation(req, call.segs[1]);
}

ApiResponse Api::get_health(const ApiRequest&, Call&) {
  boost::json::object o{{"status", "ok"}, {"time", format_timestamp(clock_.now())}};
  if (options_.simulated_clock_speed > 0) {
    o["clock"] = "simulated";
    o["clock_speed"] = options_.simulated_clock_speed;
  } else {
    o["clock"] = "system";
  }
  return json_response(200, std::move(o));
}

// Route scope kEveryWorld: the metrics name every world.
ApiResponse Api::get_metrics(const ApiRequest&, Call&) {
  auto text = metrics_.render(events_.open_streams());
  if (!text) return problem(text.error());
  return ApiResponse{.status = 200,
                     .content_type = "text/plain; version=0.0.4; charset=utf-8",
                     .body = std::move(*text)};
}

}  // namespace qmtl::server
