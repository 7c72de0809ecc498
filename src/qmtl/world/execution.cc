// Execution settings of a world and the end of a strategy's validation.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "qmtl/core/file.h"
#include "qmtl/core/id.h"
#include "qmtl/core/json.h"
#include "qmtl/metrics/kpi.h"
#include "qmtl/policy/document.h"
#include "qmtl/policy/selection.h"
#include "qmtl/world/world_internal.h"
#include "qmtl/world/world_service.h"

namespace qmtl::world {
namespace {

tl::unexpected<Error> bad(std::string msg) {
  return make_error(ErrorCode::kInvalidArgument, "execution: " + std::move(msg));
}

// An absolute path to a regular file the server can see: relative paths would
// depend on the directory the server happened to start in.
Result<std::string> server_file(const boost::json::object& o, std::string_view key, bool required) {
  auto v = json::get_optional_string(o, key);
  if (!v) return bad(v.error().message);
  if (!*v || (*v)->empty()) {
    if (required) return bad(fmt::format("field '{}' is required: an absolute path", key));
    return std::string();
  }
  const std::filesystem::path p(**v);
  if (!p.is_absolute()) {
    return bad(fmt::format("'{}' must be an absolute path on the server, not '{}'", key, **v));
  }
  std::error_code ec;
  if ((*v)->find("{symbol}") != std::string::npos) {
    // One file per symbol, named when a strategy needs it: its directory must
    // exist now; a missing file fails that strategy's validation or runner.
    if ((*v)->find('{') != (*v)->rfind('{') ||
        p.parent_path().string().find("{symbol}") != std::string::npos) {
      return bad(
          fmt::format("'{}': {{symbol}} may appear once, in the file name, not in '{}'", key, **v));
    }
    if (!std::filesystem::is_directory(p.parent_path(), ec)) {
      return bad(
          fmt::format("'{}': {} is not a directory on the server", key, p.parent_path().string()));
    }
    return **v;
  }
  if (!std::filesystem::is_regular_file(p, ec)) {
    return bad(fmt::format("'{}': {} is not a file on the server", key, **v));
  }
  return **v;
}

Result<int> bounded_int(const boost::json::object& o, std::string_view key, int fallback, int lo,
                        int hi) {
  auto v = json::get_optional_int(o, key);
  if (!v) return bad(v.error().message);
  if (!*v) return fallback;
  if (**v < lo || **v > hi) {
    return bad(fmt::format("'{}' must be between {} and {}, not {}", key, lo, hi, **v));
  }
  return static_cast<int>(**v);
}

}  // namespace

Result<ExecutionSettings> parse_execution_settings(std::string_view text) {
  auto doc = json::parse(text);
  if (!doc) return bad(doc.error().message);
  auto o = json::as_object(*doc, "the execution settings");
  if (!o) return bad(o.error().message);
  // null means "not set", so what GET returns can be sent back as it is.
  boost::json::object obj;
  for (const auto& kv : **o) {
    if (!kv.value().is_null()) obj.emplace(kv.key(), kv.value());
  }
  if (auto r = json::check_keys(obj,
                                {"history", "window", "feed", "live_broker", "symbol", "cash",
                                 "max_runners", "max_validations", "updated_at"},
                                "the execution settings");
      !r) {
    return bad(r.error().message);
  }
  ExecutionSettings s;
  auto history = server_file(obj, "history", true);
  if (!history) return propagate(history);
  s.history = std::move(*history);
  auto feed = server_file(obj, "feed", false);
  if (!feed) return propagate(feed);
  s.feed = std::move(*feed);
  auto window = json::get_optional_string(obj, "window");
  if (!window) return bad(window.error().message);
  if (*window) {
    auto d = parse_duration(**window);
    if (!d || d->count() <= 0) {
      return bad(fmt::format("'window' takes a positive duration such as 26w or 730d, not '{}'",
                             **window));
    }
    s.window = *d;
  }
  auto broker = json::get_optional_string(obj, "live_broker");
  if (!broker) return bad(broker.error().message);
  if (*broker && !(*broker)->empty()) {
    const std::string_view b = **broker;
    if (!b.starts_with("journal:") || !std::filesystem::path(b.substr(8)).is_absolute()) {
      return bad(fmt::format(
          "'live_broker' takes journal:/absolute/file (FIX brokers come with issue #10), not '{}'",
          b));
    }
    s.live_broker = std::string(b);
  }
  auto symbol = json::get_optional_string(obj, "symbol");
  if (!symbol) return bad(symbol.error().message);
  if (*symbol) {
    if ((*symbol)->size() > 64 || !std::all_of((*symbol)->begin(), (*symbol)->end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
                 c == '/';
        })) {
      return bad(fmt::format("'symbol' takes letters, digits and . - _ /, not '{}'", **symbol));
    }
    s.symbol = **symbol;
  }
  auto cash = json::get_optional_number(obj, "cash");
  if (!cash) return bad(cash.error().message);
  if (*cash) {
    if (!std::isfinite(**cash) || **cash <= 0) return bad("'cash' must be a positive number");
    s.cash = **cash;
  }
  auto runners = bounded_int(obj, "max_runners", s.max_runners, 0, 1000);
  if (!runners) return propagate(runners);
  s.max_runners = *runners;
  auto validations = bounded_int(obj, "max_validations", s.max_validations, 1, 64);
  if (!validations) return propagate(validations);
  s.max_validations = *validations;
  return s;
}

boost::json::object execution_settings_json(const ExecutionSettings& s) {
  boost::json::object o{
      {"history", s.history},
      {"window",
       s.window ? boost::json::value(format_duration(*s.window)) : boost::json::value(nullptr)},
      {"feed", s.feed.empty() ? boost::json::value(nullptr) : boost::json::value(s.feed)},
      {"live_broker",
       s.live_broker.empty() ? boost::json::value(nullptr) : boost::json::value(s.live_broker)},
      {"symbol", s.symbol.empty() ? boost::json::value(nullptr) : boost::json::value(s.symbol)},
      {"cash", s.cash},
      {"max_runners", s.max_runners},
      {"max_validations", s.max_validations}};
  if (s.updated_at != TimePoint{}) o["updated_at"] = format_timestamp(s.updated_at);
  return o;
}

namespace {

tl::unexpected<Error> bad_broker(std::string msg) {
  return make_error(ErrorCode::kInvalidArgument, "broker: " + std::move(msg));
}

bool comp_id_ok(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '{' || c == '}';
  });
}

}  // namespace

Result<BrokerSettings> parse_broker_settings(std::string_view text) {
  auto parsed = settings_object(
      text, "the broker settings",
      {"type", "host", "port", "sender_comp_id", "target_comp_id", "account", "username",
       "password_env", "password_file", "heartbeat", "credentials", "updated_at"});
  if (!parsed) return bad_broker(parsed.error().message);
  const boost::json::object& obj = *parsed;
  BrokerSettings s;
  auto str = [&](std::string_view key, std::string& out, bool required) -> Result<void> {
    auto v = json::get_optional_string(obj, key);
    if (!v) return bad_broker(v.error().message);
    if (!*v || (*v)->empty()) {
      if (required) return bad_broker(fmt::format("field '{}' is required", key));
      return {};
    }
    out = **v;
    return {};
  };
  std::string type = "fix";
  if (auto r = str("type", type, false); !r) return propagate(r);
  if (type != "fix") return bad_broker(fmt::format("type '{}' is not one of: fix", type));
  if (auto r = str("host", s.host, false); !r) return propagate(r);
  auto port = json::get_optional_int(obj, "port");
  if (!port) return bad_broker(port.error().message);
  if (!*port || **port < 1 || **port > 65535) {
    return bad_broker("field 'port' is required: a number from 1 to 65535");
  }
  s.port = static_cast<int>(**port);
  for (auto [key, out] : {std::pair{"sender_comp_id", &s.sender_comp_id},
                          std::pair{"target_comp_id", &s.target_comp_id}}) {
    if (auto r = str(key, *out, true); !r) return propagate(r);
    if (!comp_id_ok(*out)) {
      return bad_broker(fmt::format("'{}' takes letters, digits, - _ . and {{strategy}}", key));
    }
  }
  if (auto r = str("account", s.account, false); !r) return propagate(r);
  if (auto r = str("username", s.username, false); !r) return propagate(r);
  if (auto r = str("password_env", s.password_env, false); !r) return propagate(r);
  if (auto r = str("password_file", s.password_file, false); !r) return propagate(r);
  if (auto r = check_secret_reference(s.password_env, s.password_file); !r) {
    return bad_broker(r.error().message);
  }
  std::string hb;
  if (auto r = str("heartbeat", hb, false); !r) return propagate(r);
  if (!hb.empty()) {
    auto d = parse_duration(hb);
    if (!d || *d < std::chrono::seconds(1)) {
      return bad_broker("'heartbeat' takes a duration of at least 1s, such as 30s");
    }
    s.heartbeat_s = static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(*d).count());
  }
  return s;
}

boost::json::object broker_settings_json(const BrokerSettings& s) {
  boost::json::object o{
      {"type", s.type},
      {"host", s.host},
      {"port", s.port},
      {"sender_comp_id", s.sender_comp_id},
      {"target_comp_id", s.target_comp_id},
      {"account", null_if_empty(s.account)},
      {"username", null_if_empty(s.username)},
      {"password_env", null_if_empty(s.password_env)},
      {"password_file", null_if_empty(s.password_file)},
      {"heartbeat", format_duration(std::chrono::seconds(s.heartbeat_s))},
      {"credentials", !s.password_env.empty()    ? "from environment variable " + s.password_env
                      : !s.password_file.empty() ? "from file " + s.password_file
                                                 : std::string("none")}};
  if (s.updated_at != TimePoint{}) o["updated_at"] = format_timestamp(s.updated_at);
  return o;
}

Result<TimePoint> WorldService::write_setting(std::string_view world_id, std::string_view kind,
                                              std::string doc, std::string_view event,
                                              std::string_view actor) {
  const auto lock = lock_world(world_id);
  const Notify notify(observer_, world_id);
  auto w = writable_world(world_id);
  if (!w) return propagate(w);
  const TimePoint now = clock_.now();
  const bool removing = doc.empty();
  const AuditRecord audit{.at = now,
                          .actor = std::string(actor),
                          .world_id = std::string(world_id),
                          .entity = "world",
                          .entity_id = std::string(world_id),
                          .event = fmt::format("{}_{}", event, removing ? "REMOVED" : "SET"),
                          .after = removing ? std::nullopt : std::optional<std::string>(doc)};
  const store::WorldSetting setting{.world_id = std::string(world_id),
                                    .kind = std::string(kind),
                                    .doc = std::move(doc),
                                    .updated_at = now};
  if (auto r = store_.put_world_setting(setting, audit); !r) return propagate(r);
  return now;
}

Result<std::optional<BrokerSettings>> WorldService::set_broker(std::string_view world_id,
                                                               std::string_view doc,
                                                               std::string_view actor) {
  return set_setting<BrokerSettings>(world_id, doc, actor);
}

Result<std::optional<BrokerSettings>> WorldService::get_broker(std::string_view world_id) {
  return get_setting<BrokerSettings>(world_id);
}

Result<std::optional<ExecutionSettings>> WorldService::set_execution(std::string_view world_id,
                                                                     std::string_view doc,
                                                                     std::string_view actor) {
  return set_setting<ExecutionSettings>(world_id, doc, actor);
}

Result<std::optional<ExecutionSettings>> WorldService::get_execution(std::string_view world_id) {
  auto s = get_setting<ExecutionSettings>(world_id);
  if (!s && s.error().code == ErrorCode::kInvalidArgument) {
    // Files named in the settings may have gone since they were set.
    return make_error(s.error().code,
                      fmt::format("{} (in the stored settings of world '{}'; set them again)",
                                  s.error().message, world_id));
  }
  return s;
}

Result<store::ValidationRecord> WorldService::finish_validation(std::string_view strategy_id,
                                                                const BacktestOutcome& outcome,
                                                                std::string_view actor) {
  if (auto r = validate_actor(actor); !r) return propagate(r);
  auto s = get_strategy(strategy_id);
  if (!s) return propagate(s);
  const auto lock = lock_world(s->world_id);
  const Notify notify(observer_, s->world_id);
  auto w = writable_world(s->world_id);
  if (!w) return propagate(w);
  if (auto r = check_transitions_allowed(*w); !r) return propagate(r);
  if (s->state != lifecycle::StrategyState::kValidating) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("strategy '{}' is {}, not Validating", s->id,
                                  lifecycle::strategy_state_name(s->state)));
  }
  const TimePoint now = clock_.now();
  store::ValidationRecord v{.strategy_id = s->id,
                            .world_id = s->world_id,
                            .started_at = outcome.started_at,
                            .finished_at = now,
                            .points = outcome.points,
                            .fills = outcome.fills};
  boost::json::object detail{
      {"bars", outcome.bars}, {"points", outcome.points.size()}, {"fills", outcome.fills.size()}};
  if (!outcome.points.empty()) {
    detail["from"] = format_timestamp(outcome.points.front().ts);
    detail["to"] = format_timestamp(outcome.points.back().ts);
  }
  if (!outcome.ok) {
    v.outcome = "failed";
    v.reason = fmt::format("validation backtest failed: {}", outcome.error);
  } else if (outcome.points.empty()) {
    v.outcome = "failed";
    v.reason = "validation backtest produced no performance records (no bars in the window?)";
  } else {
    auto parsed = parsed_policy_of(*w);
    if (!parsed) return propagate(parsed);
    const policy::Policy* pol = *parsed ? (*parsed)->native() : nullptr;
    if (*parsed) detail["policy_version"] = (*parsed)->version;
    if (!pol || !pol->reject) {
      v.outcome = "passed";
      v.reason = pol ? "validation passed: the policy has no reject gate"
                     : "validation passed: the world has no native policy to reject by";
    } else {
      // The equity before the first bar starts the series, one bar interval
      // earlier, so the first bar's return counts.
      const auto& pts = outcome.points;
      const Duration step = pts.size() >= 2 ? pts[1].ts - pts[0].ts : std::chrono::hours(24);
      std::vector<metrics::Sample> samples{{pts.front().ts - step, outcome.initial_equity}};
      for (const auto& p : pts) samples.push_back({p.ts, p.equity});
      auto rs = metrics::from_samples(metrics::SeriesKind::kEquity, samples);
      if (!rs) {
        v.outcome = "failed";
        v.reason =
            fmt::format("validation backtest records cannot be evaluated: {}", rs.error().message);
      } else {
        rs->fills.emplace();
        for (const auto& f : outcome.fills) {
          rs->fills->push_back({.ts = f.ts,
                                .symbol = f.symbol,
                                .qty = f.side == "buy" ? f.qty : -f.qty,
                                .price = f.price,
                                .fee = f.fee});
        }
        // The whole backtest is the window the reject gate judges.
        const Duration window = pts.back().ts - samples.front().ts + std::chrono::hours(24);
        std::map<std::string, std::optional<double>> shown;
        policy::Candidate c{.id = s->id,
                            .state = policy::CandidateState::kValidating,
                            .state_name = "Validating",
                            .values = policy_values(*pol, *rs, window, &shown)};
        const auto sel = policy::select(*pol, std::span(&c, 1), {.now = now});
        const auto& r = sel.results.front();
        v.outcome = r.decision == policy::Decision::kReject ? "rejected" : "passed";
        v.reason = r.reasons.empty() ? std::string("validation passed") : r.reasons.front();
        detail["metrics"] = shown_metrics_json(shown);
        detail["clauses"] = clauses_json(r.clauses);
      }
    }
  }
  detail["outcome"] = v.outcome;
  detail["reason"] = v.reason;
  v.detail = json::dump(detail);
  const bool passed = v.outcome == "passed";
  const auto next =
      passed ? lifecycle::StrategyState::kDryRun : lifecycle::StrategyState::kRejected;
  const AuditRecord audit{.at = now,
                          .actor = std::string(actor),
                          .world_id = s->world_id,
                          .entity = "strategy",
                          .entity_id = s->id,
                          .event = passed ? "VALIDATION_PASSED" : "VALIDATION_FAILED",
                          .before = std::string(lifecycle::strategy_state_name(s->state)),
                          .after = std::string(lifecycle::strategy_state_name(next)),
                          .reason = v.reason.size() > kMaxReasonLength
                                        ? v.reason.substr(0, kMaxReasonLength)
                                        : v.reason};
  if (auto r = store_.finish_validation(v, next, audit); !r) return propagate(r);
  return v;
}

Result<std::optional<store::ValidationRecord>> WorldService::get_validation(
    std::string_view strategy_id, bool with_records) {
  if (auto r = validate_id("strategy", strategy_id); !r) return propagate(r);
  return store_.get_validation(strategy_id, with_records);
}

Result<AuditRecord> WorldService::record_handover(std::string_view strategy_id,
                                                  const HandoverReport& report,
                                                  std::string_view actor) {
  if (auto r = validate_actor(actor); !r) return propagate(r);
  const bool promote = report.event == "PROMOTE";
  if (!promote && report.event != "DEMOTE") {
    return make_error(ErrorCode::kInvalidArgument, "handover: 'event' must be PROMOTE or DEMOTE");
  }
  if (promote ? report.policy != "flat" && report.policy != "carry"
              : report.policy != "flatten" && report.policy != "keep") {
    return make_error(ErrorCode::kInvalidArgument,
                      promote ? "handover: on PROMOTE 'policy' must be flat or carry"
                              : "handover: on DEMOTE 'policy' must be flatten or keep");
  }
  std::string reason = fmt::format("on_{} {}", promote ? "promote" : "demote", report.policy);
  if (report.orders.empty() && report.failed.empty()) reason += ": no orders";
  for (const auto& o : report.orders) reason += "; " + o;
  for (const auto& f : report.failed) reason += "; not sent: " + f;
  for (char& c : reason) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (reason.size() > kMaxReasonLength) reason = reason.substr(0, kMaxReasonLength - 3) + "...";
  auto s = get_strategy(strategy_id);
  if (!s) return propagate(s);
  AuditRecord audit{.at = clock_.now(),
                    .actor = std::string(actor),
                    .world_id = s->world_id,
                    // Not "strategy": those records carry lifecycle states, which
                    // runners read from the event stream.
                    .entity = "handover",
                    .entity_id = s->id,
                    .event = "HANDOVER",
                    .before = report.event,
                    .after = report.policy,
                    .reason = std::move(reason),
                    .run_id = report.run_id};
  const Notify notify(observer_, s->world_id);
  if (auto r = store_.insert_audit(audit); !r) return propagate(r);
  return audit;
}

Result<std::optional<PendingHandover>> WorldService::pending_handover(
    std::string_view strategy_id) {
  auto s = get_strategy(strategy_id);
  if (!s) return propagate(s);
  auto moved = store_.last_audit(s->world_id, "strategy", s->id, "PROMOTE", "DEMOTE");
  if (!moved) return propagate(moved);
  // Only a demotion can be owed: a promotion's carry at a runner's start
  // finds an empty paper book, and a Live strategy's runner trades anyway.
  if (!*moved || (*moved)->event != "DEMOTE") return std::optional<PendingHandover>();
  auto done = store_.last_audit(s->world_id, "handover", s->id, "HANDOVER", "HANDOVER");
  if (!done) return propagate(done);
  // A hand-over recorded after the move, of that move, settles it.
  if (*done && (*done)->seq > (*moved)->seq && (*done)->before == (*moved)->event) {
    return std::optional<PendingHandover>();
  }
  return std::optional<PendingHandover>(
      PendingHandover{.event = (*moved)->event, .at = (*moved)->at, .run_id = (*moved)->run_id});
}

Result<boost::json::object> without_secrets(const boost::json::object& o) {
  boost::json::object obj;
  for (const auto& kv : o) {
    const std::string_view key = kv.key();
    // Never echo what might be a secret: only the key is named.
    if (key.find("password") != std::string_view::npos && key != "password_env" &&
        key != "password_file") {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("'{}' is not taken: a secret never goes in the settings; "
                                    "name the variable (password_env) or file (password_file) "
                                    "that holds it on the server",
                                    key));
    }
    if (key == "secret" || key == "api_key" ||
        (key.find("token") != std::string_view::npos && key != "token_env" &&
         key != "token_file")) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("'{}' is not taken: a secret never goes in the settings; "
                                    "name the variable or file that holds it on the server",
                                    key));
    }
    if (!kv.value().is_null()) obj.emplace(kv.key(), kv.value());
  }
  return obj;
}

Result<boost::json::object> settings_object(std::string_view text, std::string_view what,
                                            std::initializer_list<std::string_view> allowed) {
  auto doc = json::parse(text);
  if (!doc) return propagate(doc);
  auto o = json::as_object(*doc, what);
  if (!o) return propagate(o);
  auto cleaned = without_secrets(**o);
  if (!cleaned) return propagate(cleaned);
  if (auto r = json::check_keys(*cleaned, allowed, what); !r) return propagate(r);
  return cleaned;
}

Result<void> check_secret_reference(const std::string& env, const std::string& file,
                                    std::string_view what) {
  if (!env.empty() && !file.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("give {0}_env or {0}_file, not both", what));
  }
  if (!env.empty() && !std::all_of(env.begin(), env.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
      })) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("'{}_env' takes the name of an environment variable", what));
  }
  if (!file.empty() && !std::filesystem::path(file).is_absolute()) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("'{}_file' must be an absolute path on the server", what));
  }
  return {};
}

Result<void> check_secret_file(const std::string& file, std::string_view field) {
  if (file.empty()) return {};
  if (auto r = check_private_file(file, field); !r) {
    return make_error(ErrorCode::kInvalidArgument, r.error().message);
  }
  return {};
}

}  // namespace qmtl::world
