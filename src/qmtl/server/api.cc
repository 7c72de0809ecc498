#include "qmtl/server/api.h"

#include <fmt/format.h>

#include <boost/url/parse.hpp>
#include <charconv>

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

bool match(std::string_view tmpl, const std::vector<std::string>& segs) {
  size_t i = 0;
  tmpl.remove_prefix(1);
  while (!tmpl.empty()) {
    const auto slash = tmpl.find('/');
    const std::string_view part = tmpl.substr(0, slash);
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
      options_(options),
      events_(worlds, options.activation_ttl_s, 10'000, &outage_),
      metrics_(worlds, clock),
      idempotency_(clock, options.idempotency_capacity, options.idempotency_ttl) {
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

const std::vector<Api::Route>& Api::routes() {
  static const std::vector<Route> kRoutes = {
      {"GET", "/healthz", &Api::get_health},
      {"GET", "/metrics", &Api::get_metrics},
      {"GET", "/worlds", &Api::list_worlds},
      {"POST", "/worlds", &Api::create_world},
      {"GET", "/worlds/{id}", &Api::get_world},
      {"POST", "/worlds/{id}/state", &Api::set_world_state},
      {"GET", "/worlds/{id}/policy", &Api::get_current_policy},
      {"POST", "/worlds/{id}/policy", &Api::add_policy},
      {"POST", "/worlds/{id}/policy/current", &Api::set_current_policy},
      {"GET", "/worlds/{id}/policies", &Api::list_policies},
      {"GET", "/worlds/{id}/policies/{version}", &Api::get_policy},
      {"POST", "/worlds/{id}/evaluate", &Api::evaluate},
      {"GET", "/worlds/{id}/evaluations", &Api::list_evaluations},
      {"GET", "/worlds/{id}/evaluations/{run}", &Api::get_evaluation},
      {"GET", "/worlds/{id}/schedule", &Api::get_schedule},
      {"GET", "/worlds/{id}/alerts", &Api::get_alerts},
      {"PUT", "/worlds/{id}/alerts", &Api::put_alerts},
      {"GET", "/worlds/{id}/alerts/email", &Api::get_email_alerts},
      {"PUT", "/worlds/{id}/alerts/email", &Api::put_email_alerts},
      {"DELETE", "/worlds/{id}/alerts/email", &Api::delete_email_alerts},
      {"GET", "/worlds/{id}/execution", &Api::get_execution},
      {"PUT", "/worlds/{id}/execution", &Api::put_execution},
      {"DELETE", "/worlds/{id}/execution", &Api::delete_execution},
      {"GET", "/worlds/{id}/broker", &Api::get_broker},
      {"PUT", "/worlds/{id}/broker", &Api::put_broker},
      {"DELETE", "/worlds/{id}/broker", &Api::delete_broker},
      {"GET", "/worlds/{id}/activation", &Api::get_activation},
      {"PUT", "/worlds/{id}/activation", &Api::put_activation},
      {"POST", "/worlds/{id}/apply", &Api::apply},
      {"GET", "/worlds/{id}/audit", &Api::get_audit},
      {"GET", "/worlds/{id}/events", &Api::open_events},
      {"POST", "/strategies", &Api::submit_strategy},
      {"GET", "/strategies", &Api::list_strategies},
      {"GET", "/strategies/{id}", &Api::get_strategy},
      {"POST", "/strategies/{id}/activate", &Api::strategy_activate},
      {"POST", "/strategies/{id}/deactivate", &Api::strategy_deactivate},
      {"POST", "/strategies/{id}/archive", &Api::strategy_archive},
      {"POST", "/strategies/{id}/promote", &Api::strategy_promote},
      {"POST", "/strategies/{id}/demote", &Api::strategy_demote},
      {"POST", "/strategies/{id}/error", &Api::strategy_error},
      {"POST", "/strategies/{id}/performance", &Api::post_performance},
      {"GET", "/strategies/{id}/performance/last", &Api::get_last_point},
      {"POST", "/strategies/{id}/handover", &Api::post_handover},
      {"GET", "/strategies/{id}/validation", &Api::get_validation},
  };
  return kRoutes;
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

  const Route* found = nullptr;
  std::string allow;
  for (const auto& r : routes()) {
    if (!match(r.path, call.segs)) continue;
    call.route = r.path;
    if (r.method == req.method) {
      found = &r;
      break;
    }
    allow += allow.empty() ? "" : ", ";
    allow += r.method;
  }
  if (found == nullptr) {
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
  const bool is_fast = found->handler == &Api::get_health || found->handler == &Api::get_activation;
  if (fast_only && !is_fast) return std::nullopt;
  if (found->handler != &Api::get_health) {
    if (auto denied = authenticate(req, call)) {
      denied->route = call.route;
      return denied;
    }
  }
  if ((req.method == "POST" || req.method == "PUT") && found->handler != &Api::add_policy &&
      !is_json_content_type(req.content_type)) {
    ApiResponse r = problem(415, fmt::format("Content-Type '{}' is not supported on {}; send "
                                             "application/json",
                                             req.content_type, call.route));
    r.route = call.route;
    return r;
  }
  std::optional<ApiResponse> resp;
  if (fast_only && found->handler == &Api::get_activation) {
    if (auto d = authorize(call, Role::kViewer, call.segs[1])) {
      resp = std::move(d);
    } else {
      resp = cached_activation(req, call.segs[1]);
    }
  } else if (req.method == "POST" || req.method == "PUT") {
    resp = with_idempotency(req, call, found->handler);
  } else {
    resp = (this->*(found->handler))(req, call);
  }
  if (resp) resp->route = call.route;
  return resp;
}

std::optional<ApiResponse> Api::authenticate(const ApiRequest& req, Call& call) const {
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

std::optional<ApiResponse> Api::authorize(const Call& call, Role needed,
                                          std::string_view world) const {
  const Principal& p = call.principal;
  if (!p.has_role(needed)) {
    return problem(403, fmt::format("token '{}' has role {}; this needs {} or higher", p.name,
                                    role_name(p.role), role_name(needed)));
  }
  if (!world.empty() && !p.may_access(world)) {
    return problem(403, fmt::format("token '{}' may not access world '{}'", p.name, world));
  }
  return std::nullopt;
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

ApiResponse Api::get_metrics(const ApiRequest&, Call& call) {
  // The metrics name every world, so only a token that sees every world reads them.
  if (auto d = authorize(call, Role::kViewer, {})) return *d;
  if (call.principal.worlds) {
    return problem(403, fmt::format("token '{}' is limited to some worlds; /metrics needs a "
                                    "token for every world",
                                    call.principal.name));
  }
  auto text = metrics_.render(events_.open_streams());
  if (!text) return problem(text.error());
  return ApiResponse{.status = 200,
                     .content_type = "text/plain; version=0.0.4; charset=utf-8",
                     .body = std::move(*text)};
}

}  // namespace qmtl::server
