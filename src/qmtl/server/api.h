// The HTTP/JSON API (docs/api.md) as a function from request to response.
//
// Api knows routes, roles, JSON shapes and error mapping but nothing about
// sockets, so it can be tested directly; HttpServer carries requests to it. It
// registers itself as the WorldService's observer: every committed change
// invalidates the cached activation set of its world and is published to the
// world's event streams before the operation returns.
//
// Thread safety: handle() and try_handle_fast() may be called from several
// threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/execution/manager.h"
#include "qmtl/execution/outage.h"
#include "qmtl/server/alerts.h"
#include "qmtl/server/auth.h"
#include "qmtl/server/events.h"
#include "qmtl/server/idempotency.h"
#include "qmtl/server/metrics.h"
#include "qmtl/server/response.h"
#include "qmtl/server/session.h"
#include "qmtl/world/world_service.h"

namespace qmtl::server {

class RedisActivationCache;

struct ApiOptions {
  // The accepted tokens; null turns authentication off (`qmtl serve --no-auth`):
  // every caller is the admin "local".
  const TokenTable* tokens = nullptr;
  // How long a runner may trust an activation entry without hearing from the
  // server (sent as ttl_s); must exceed the event stream's heartbeat interval.
  int64_t activation_ttl_s = 15;
  size_t idempotency_capacity = 10'000;
  Duration idempotency_ttl = std::chrono::hours(24);
  // > 0: the clock is simulated, running this many times real time (`qmtl serve
  // --demo`); GET /healthz says so.
  double simulated_clock_speed = 0;
  // A shared activation cache in Redis behind the Api's own (redis_cache.h);
  // null: none. Must outlive the Api.
  RedisActivationCache* redis = nullptr;
  // Other servers share the database (Store::shared). The Api's own cache of
  // activation sets is then off: it would serve a gate another server closed
  // until the change feed says so, milliseconds after that close was
  // acknowledged. Reads go to Redis, which every server updates before it
  // acknowledges a change, or to the database.
  bool shared_store = false;
  // How long a console session lasts without being used (docs/console.md).
  Duration session_idle = std::chrono::hours(12);
  // The directory (canonical) that strategy programs must be in for the server
  // to accept them (`qmtl serve --strategy-programs DIR`); "" refuses every
  // program strategy: submitting a command is running code on this machine.
  std::string strategy_programs;
  // Post alerts to world webhooks (see alerts.h); off in unit tests of the Api.
  bool alerts = true;
  AlertDispatcher::Options alert_options;
};

class Api : private world::WorldObserver {
 public:
  // `worlds` and `clock` (and options.tokens) must outlive the Api.
  Api(world::WorldService& worlds, const Clock& clock, ApiOptions options = {});
  ~Api() override;
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Routes `req`; may block on the database. Never throws for bad input: every
  // failure is a problem response.
  ApiResponse handle(const ApiRequest& req);
  // Answers `req` if that needs no blocking call (health, cached activation
  // reads, refusals of bad credentials); nullopt means "call handle()".
  std::optional<ApiResponse> try_handle_fast(const ApiRequest& req);

  EventHub& events() { return events_; }
  // Where every part of the server reports that the database cannot be reached.
  execution::DatabaseOutage& outage() { return outage_; }
  ServerMetrics& metrics() { return metrics_; }
  // Null when alerts are off.
  AlertDispatcher* alerts() { return alerts_.get(); }
  const Clock& clock() const { return clock_; }
  // The execution manager whose status GET /worlds/{id}/execution reports and
  // which hears of every change; null (the default) when the server runs no
  // strategies. Safe to call while requests are being served.
  void set_execution_manager(execution::ExecutionManager* m) { execution_.store(m); }
  int64_t activation_ttl_s() const { return options_.activation_ttl_s; }

  // Several servers on one database: `world` changed, on this server or
  // another (store::ChangeListener). Drops cached state, wakes event streams.
  // Thread-safe.
  void changed_elsewhere(std::string_view world) { world_changed(world); }
  // Whether this server hears every change other servers make. While it does
  // not (the listener's connection is down) activation reads bypass the caches
  // (its own and Redis), so a gate another server closed is never served open; when it comes back
  // every world is treated as changed. Servers alone on their database never
  // call this. Thread-safe.
  void set_change_feed(bool up);

  // Every route served, as "METHOD /template" ("GET /worlds/{id}"), in routing
  // order; docs/api.md is checked against it. Thread-safe.
  static std::vector<std::string> route_names();
  struct RouteInfo {
    std::string method;
    std::string path;
    std::optional<Role> role;  // the least role; nullopt: no token needed
  };
  // The same routes with the role each needs (some need more for some bodies:
  // retiring a world needs an admin). Thread-safe.
  static std::vector<RouteInfo> route_infos();
  // The OpenAPI 3.1 description served at GET /openapi.json, generated from
  // the route table. Thread-safe.
  static boost::json::object openapi();
  // The summary of route "METHOD /template" in that description; nullopt for
  // a route that has none (a test keeps every route described).
  static std::optional<std::string> route_summary(std::string_view route);

 private:
  struct Call;
  struct SettingFamily;  // api_settings.cc
  using Handler = ApiResponse (Api::*)(const ApiRequest&, Call&);
  // Answers without blocking, or nullopt: "go the blocking way".
  using FastHandler = std::optional<ApiResponse> (Api::*)(const ApiRequest&, Call&);

  // Which world a caller must be allowed to touch for a route.
  enum class Scope {
    kPublic,         // no credentials at all (/healthz)
    kEveryWorld,     // a token limited to some worlds is refused (/metrics)
    kPathWorld,      // the world in the path: /worlds/{id}/...
    kStrategyWorld,  // the world of the strategy in the path, looked up (404 if none)
    kInRequest,      // named in the body or query, or the handler lists only the
                     // worlds the caller may access: the handler calls world_access()
  };
  // What a POST or PUT body must be; anything else is a 415.
  enum class Body { kNone, kJson, kPolicy /* YAML or JSON */ };

  // One route: everything dispatch() checks before the handler runs. Handlers
  // check neither roles nor the world of the path.
  struct Route {
    std::string_view method;
    std::string_view path;  // template, e.g. "/worlds/{id}/activation"
    Handler handler;
    Role role;  // the least role of the caller
    Scope scope;
    Body body = Body::kNone;
    // When set, the role the request needs given its body (it may only raise `role`).
    Role (*role_of)(const ApiRequest&) = nullptr;
    FastHandler fast = nullptr;              // when set, try_handle_fast() may answer the route
    const SettingFamily* setting = nullptr;  // for the shared settings handlers
  };
  static const std::vector<Route>& routes();
  static const SettingFamily kBrokerSettings, kEmailSettings, kTelegramSettings, kExecutionSettings;

  std::optional<ApiResponse> dispatch(const ApiRequest& req, bool fast_only);
  std::optional<ApiResponse> authenticate(const ApiRequest& req, Call& call);
  // The route's role and scope; may read the strategy (blocking) for kStrategyWorld.
  std::optional<ApiResponse> authorize(const ApiRequest& req, const Route& route, Call& call);
  // 403 unless the caller may touch `world` (kInRequest routes).
  static std::optional<ApiResponse> world_access(const Call& call, std::string_view world);
  // 415 unless the Content-Type suits the route's body.
  static std::optional<ApiResponse> check_content_type(const ApiRequest& req, const Route& route);
  ApiResponse with_idempotency(const ApiRequest& req, Call& call, Handler handler);
  std::optional<ApiResponse> cached_activation(const ApiRequest& req, const std::string& world);
  struct CachedActivation;
  // 200 with the set, or 304 when If-None-Match names its ETag.
  static ApiResponse activation_response(const ApiRequest& req, const CachedActivation& c);

  // WorldObserver
  void world_changed(std::string_view world_id) override;
  void evaluation_finished(std::string_view world_id, double seconds, bool ok) override;
  void apply_finished(std::string_view world_id, const world::ApplyJournalEntry* done, bool fresh,
                      double seconds) override;

  ApiResponse get_health(const ApiRequest&, Call&);
  ApiResponse get_openapi(const ApiRequest&, Call&);
  std::optional<ApiResponse> fast_openapi(const ApiRequest&, Call&);
  // The web console: its page and assets, and sign-in sessions (api_console.cc).
  ApiResponse get_console(const ApiRequest&, Call&);
  std::optional<ApiResponse> fast_console(const ApiRequest&, Call&);
  ApiResponse open_session(const ApiRequest&, Call&);
  ApiResponse get_session(const ApiRequest&, Call&);
  ApiResponse close_session(const ApiRequest&, Call&);
  std::optional<ApiResponse> fast_health(const ApiRequest&, Call&);
  std::optional<ApiResponse> fast_activation(const ApiRequest&, Call&);
  ApiResponse get_metrics(const ApiRequest&, Call&);
  ApiResponse list_worlds(const ApiRequest&, Call&);
  ApiResponse create_world(const ApiRequest&, Call&);
  ApiResponse get_world(const ApiRequest&, Call&);
  ApiResponse set_world_state(const ApiRequest&, Call&);
  ApiResponse get_current_policy(const ApiRequest&, Call&);
  ApiResponse add_policy(const ApiRequest&, Call&);
  ApiResponse list_policies(const ApiRequest&, Call&);
  ApiResponse get_policy(const ApiRequest&, Call&);
  ApiResponse set_current_policy(const ApiRequest&, Call&);
  ApiResponse evaluate(const ApiRequest&, Call&);
  ApiResponse list_evaluations(const ApiRequest&, Call&);
  ApiResponse get_evaluation(const ApiRequest&, Call&);
  ApiResponse get_schedule(const ApiRequest&, Call&);
  ApiResponse get_alerts(const ApiRequest&, Call&);
  ApiResponse put_alerts(const ApiRequest&, Call&);
  ApiResponse get_validation(const ApiRequest&, Call&);
  // Broker, e-mail alert and execution settings (Route::setting says which).
  ApiResponse get_setting(const ApiRequest&, Call&);
  ApiResponse put_setting(const ApiRequest&, Call&);
  ApiResponse delete_setting(const ApiRequest&, Call&);
  ApiResponse get_activation(const ApiRequest&, Call&);
  ApiResponse put_activation(const ApiRequest&, Call&);
  ApiResponse apply(const ApiRequest&, Call&);
  ApiResponse get_audit(const ApiRequest&, Call&);
  ApiResponse open_events(const ApiRequest&, Call&);
  ApiResponse get_timeline(const ApiRequest&, Call&);
  ApiResponse replay(const ApiRequest&, Call&);
  ApiResponse submit_strategy(const ApiRequest&, Call&);
  std::optional<ApiResponse> check_program(const boost::json::object& spec) const;
  ApiResponse list_strategies(const ApiRequest&, Call&);
  ApiResponse get_strategy(const ApiRequest&, Call&);
  ApiResponse strategy_activate(const ApiRequest&, Call&);
  ApiResponse strategy_deactivate(const ApiRequest&, Call&);
  ApiResponse strategy_archive(const ApiRequest&, Call&);
  ApiResponse strategy_promote(const ApiRequest&, Call&);
  ApiResponse strategy_demote(const ApiRequest&, Call&);
  ApiResponse strategy_error(const ApiRequest&, Call&);
  ApiResponse manual_change(const ApiRequest&, Call&, bool promote);
  ApiResponse strategy_event(const ApiRequest&, Call&, lifecycle::StrategyEvent event);
  ApiResponse post_performance(const ApiRequest&, Call&);
  ApiResponse get_last_point(const ApiRequest&, Call&);
  ApiResponse get_performance(const ApiRequest&, Call&);
  ApiResponse post_handover(const ApiRequest&, Call&);

  world::WorldService& worlds_;
  const Clock& clock_;
  const ApiOptions options_;
  execution::DatabaseOutage outage_;  // before its users: the event hub and the alerts
  EventHub events_;
  ServerMetrics metrics_;
  IdempotencyCache idempotency_;
  SessionTable sessions_;
  std::unique_ptr<AlertDispatcher> alerts_;  // after metrics_: stopped before it goes
  std::atomic<execution::ExecutionManager*> execution_{nullptr};

  // The activation set of each world as served, dropped on every change.
  // `generation_` grows on every drop, so a reader that loaded the set from the
  // database before a change cannot store that stale copy after it.
  struct CachedActivation {
    std::shared_ptr<const std::string> body;
    std::string etag;
  };
  std::mutex cache_mu_;
  uint64_t generation_ = 0;
  bool cache_trusted_ = true;  // false while another server's changes may go unheard
  std::map<std::string, CachedActivation, std::less<>> activation_cache_;
};

}  // namespace qmtl::server
