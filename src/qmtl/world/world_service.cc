#include "qmtl/world/world_service.h"

#include <fmt/format.h>

#include <array>

#include "qmtl/core/http_client.h"
#include "qmtl/core/id.h"
#include "qmtl/core/json.h"
#include "qmtl/core/sha256.h"
#include "qmtl/policy/document.h"
#include "qmtl/world/world_internal.h"

namespace qmtl::world {

// A display name or a reason is free text but one line: control characters would
// break tables and logs. UTF-8 is allowed; limits are in bytes.
Result<void> validate_text(std::string_view what, std::string_view text, size_t max,
                           bool allow_empty) {
  if (text.empty() && !allow_empty) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("{} must not be empty", what));
  }
  if (text.size() > max) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} is {} bytes long; the limit is {}", what, text.size(), max));
  }
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      return make_error(
          ErrorCode::kInvalidArgument,
          fmt::format("{} must not contain control characters such as newlines or tabs", what));
    }
  }
  return {};
}

Result<void> check_transitions_allowed(const store::World& w) {
  if (w.state != lifecycle::WorldState::kPaused) return {};
  return make_error(
      ErrorCode::kFailedPrecondition,
      fmt::format("world '{}' is Paused: no strategy transitions until it is resumed", w.id));
}

Result<void> validate_actor(std::string_view actor) {
  return validate_text("actor", actor, 200, false);
}

namespace {

using lifecycle::StrategyEvent;
using lifecycle::WorldState;

}  // namespace

Result<World> WorldService::create_world(const CreateWorldRequest& req) {
  if (auto r = validate_id("world", req.id); !r) return propagate(r);
  const std::string name = req.name.value_or(req.id);
  if (auto r = validate_text("world name", name, kMaxWorldNameLength, false); !r)
    return propagate(r);
  if (auto r = validate_actor(req.actor); !r) return propagate(r);
  const TimePoint now = clock_.now();
  World w{.id = req.id,
          .name = name,
          .state = WorldState::kActive,
          .policy_version = std::nullopt,
          .created_at = now,
          .updated_at = now};
  const AuditRecord audit{.at = now,
                          .actor = req.actor,
                          .world_id = w.id,
                          .entity = "world",
                          .entity_id = w.id,
                          .event = "CREATE",
                          .after = std::string(lifecycle::world_state_name(w.state))};
  const Notify notify(observer_, w.id);
  if (auto r = store_.insert_world(w, audit); !r) return propagate(r);
  return w;
}

Result<World> WorldService::get_world(std::string_view id) {
  if (auto r = validate_id("world", id); !r) return propagate(r);
  return store_.get_world(id);
}

Result<std::vector<World>> WorldService::list_worlds() { return store_.list_worlds(); }

std::unique_lock<std::mutex> WorldService::lock_world(std::string_view id) {
  std::mutex* m = nullptr;
  {
    std::lock_guard guard(locks_mu_);
    auto it = locks_.find(id);
    if (it == locks_.end())
      it = locks_.emplace(std::string(id), std::make_unique<std::mutex>()).first;
    m = it->second.get();
  }
  return std::unique_lock<std::mutex>(*m);
}

Result<World> WorldService::writable_world(std::string_view id) {
  auto w = get_world(id);
  if (!w) return w;
  if (w->state == WorldState::kRetired) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("world '{}' is Retired and read-only", id));
  }
  return w;
}

Result<World> WorldService::set_world_state(std::string_view id, WorldState target,
                                            std::string_view actor, std::string_view reason) {
  const auto lock = lock_world(id);
  const Notify notify(observer_, id);
  if (auto r = validate_actor(actor); !r) return propagate(r);
  if (auto r = validate_text("reason", reason, kMaxReasonLength, true); !r) return propagate(r);
  auto w = get_world(id);
  if (!w) return w;
  const auto event = lifecycle::world_event_for(target);
  auto next = lifecycle::next_world_state(w->state, event);
  if (!next) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("world '{}' cannot go from {} to {}: {}", id,
                                  lifecycle::world_state_name(w->state),
                                  lifecycle::world_state_name(target), next.error().message));
  }
  const TimePoint now = clock_.now();
  const AuditRecord audit{.at = now,
                          .actor = std::string(actor),
                          .world_id = w->id,
                          .entity = "world",
                          .entity_id = w->id,
                          .event = std::string(lifecycle::world_event_name(event)),
                          .before = std::string(lifecycle::world_state_name(w->state)),
                          .after = std::string(lifecycle::world_state_name(*next)),
                          .reason = std::string(reason)};
  if (auto r =
          store_.set_world_state(id, w->state, *next, now, audit, *next == WorldState::kRetired);
      !r) {
    return propagate(r);
  }
  if (w->state == WorldState::kPaused && *next != WorldState::kRetired) {
    // The resume has committed; what was queued meanwhile follows. Should
    // this fail, the queue stays and the next recovery pass carries it out.
    (void)drain_queue_locked(id);
  }
  return store_.get_world(id);
}

Result<void> WorldService::check_policy_version(const World& w,
                                                std::optional<int64_t> if_current) const {
  const int64_t have = w.policy_version.value_or(0);
  if (if_current && *if_current != have) {
    return make_error(ErrorCode::kVersionMismatch,
                      fmt::format("world '{}' is at policy version {}, not {}; read it again and "
                                  "retry",
                                  w.id, have, *if_current));
  }
  return {};
}

Result<PolicyVersion> WorldService::add_policy(std::string_view world_id, std::string_view document,
                                               std::string_view actor,
                                               std::optional<int64_t> if_current) {
  const auto lock = lock_world(world_id);
  const Notify notify(observer_, world_id);
  if (auto r = validate_actor(actor); !r) return propagate(r);
  auto w = writable_world(world_id);
  if (!w) return propagate(w);
  if (auto r = check_policy_version(*w, if_current); !r) return propagate(r);
  auto doc = policy::parse_policy_document(document, "policy");
  if (!doc) return propagate(doc);
  // The engine evaluates the canonical form; QMTL-form documents have none of
  // their own and are kept as written.
  const std::string canonical = std::holds_alternative<policy::Policy>(*doc)
                                    ? policy::print_policy(std::get<policy::Policy>(*doc))
                                    : std::string(document);
  const TimePoint now = clock_.now();
  const AuditRecord audit{.at = now,
                          .actor = std::string(actor),
                          .world_id = w->id,
                          .entity = "policy",
                          .event = "POLICY_ADD",
                          .before = w->policy_version
                                        ? std::optional(std::to_string(*w->policy_version))
                                        : std::nullopt};
  auto v =
      store_.add_policy_version(world_id, document, canonical, sha256_hex(canonical), now, audit);
  return v;
}

Result<World> WorldService::set_current_policy(std::string_view world_id, int64_t version,
                                               std::string_view actor, std::string_view reason,
                                               std::optional<int64_t> if_current) {
  const auto lock = lock_world(world_id);
  const Notify notify(observer_, world_id);
  if (auto r = validate_actor(actor); !r) return propagate(r);
  if (auto r = validate_text("reason", reason, kMaxReasonLength, true); !r) return propagate(r);
  auto w = writable_world(world_id);
  if (!w) return w;
  if (auto r = check_policy_version(*w, if_current); !r) return propagate(r);
  if (version < 1) {
    return make_error(ErrorCode::kInvalidArgument, "policy versions start at 1");
  }
  const TimePoint now = clock_.now();
  const AuditRecord audit{.at = now,
                          .actor = std::string(actor),
                          .world_id = w->id,
                          .entity = "policy",
                          .entity_id = std::to_string(version),
                          .event = "POLICY_CURRENT",
                          .before = w->policy_version
                                        ? std::optional(std::to_string(*w->policy_version))
                                        : std::nullopt,
                          .after = std::to_string(version),
                          .reason = std::string(reason)};
  if (auto r = store_.set_current_policy(world_id, version, now, audit); !r) return propagate(r);
  return store_.get_world(world_id);
}

Result<PolicyVersion> WorldService::get_policy(std::string_view world_id,
                                               std::optional<int64_t> version) {
  auto w = get_world(world_id);
  if (!w) return propagate(w);
  if (!version) {
    if (!w->policy_version) {
      return make_error(
          ErrorCode::kNotFound,
          fmt::format("world '{}' has no policy yet; set one with `qmtl world policy set`",
                      world_id));
    }
    version = w->policy_version;
  }
  return store_.get_policy_version(world_id, *version);
}

Result<WorldService::ParsedPolicy> WorldService::parsed_policy(std::string_view world_id,
                                                               std::optional<int64_t> version) {
  if (!version) {
    auto w = get_world(world_id);
    if (!w) return propagate(w);
    auto p = parsed_policy_of(*w);
    if (!p) return propagate(p);
    if (!*p) {
      return make_error(
          ErrorCode::kNotFound,
          fmt::format("world '{}' has no policy yet; set one with `qmtl world policy set`",
                      world_id));
    }
    return std::move(**p);
  }
  std::pair<std::string, int64_t> key{world_id, *version};
  {
    std::lock_guard lock(policies_mu_);
    if (auto it = policies_.find(key); it != policies_.end()) {
      return ParsedPolicy{.version = *version, .document = it->second};
    }
  }
  // Parsed outside the lock: two threads may both parse a version once, and
  // the first stored copy wins; either is the same document.
  auto pv = store_.get_policy_version(world_id, *version);
  if (!pv) return propagate(pv);
  auto doc = policy::parse_policy_document(pv->canonical, fmt::format("policy v{}", pv->version));
  if (!doc) return propagate(doc);
  auto shared = std::make_shared<const policy::PolicyDocument>(std::move(*doc));
  std::lock_guard lock(policies_mu_);
  const auto& kept = policies_.try_emplace(std::move(key), std::move(shared)).first->second;
  return ParsedPolicy{.version = *version, .document = kept};
}

Result<std::optional<WorldService::ParsedPolicy>> WorldService::parsed_policy_of(const World& w) {
  if (!w.policy_version) return std::optional<ParsedPolicy>();
  auto p = parsed_policy(w.id, *w.policy_version);
  if (!p) return propagate(p);
  return std::optional(std::move(*p));
}

Result<std::vector<PolicyVersion>> WorldService::list_policies(std::string_view world_id) {
  if (auto r = validate_id("world", world_id); !r) return propagate(r);
  return store_.list_policy_versions(world_id);
}

Result<Strategy> WorldService::submit_strategy(const SubmitStrategyRequest& req) {
  if (auto r = validate_id("strategy", req.id); !r) return propagate(r);
  if (auto r = validate_actor(req.actor); !r) return propagate(r);
  if (req.spec.size() > kMaxSpecBytes) {
    return make_error(ErrorCode::kInvalidArgument, "the strategy spec is larger than 1 MiB");
  }
  auto spec = json::parse(req.spec);
  if (!spec) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("strategy spec: {}", spec.error().message));
  }
  if (auto o = json::as_object(*spec, "the strategy spec"); !o) return propagate(o);
  auto w = writable_world(req.world);
  if (!w) return propagate(w);
  const TimePoint now = clock_.now();
  Strategy s{.id = req.id,
             .world_id = req.world,
             .state = lifecycle::StrategyState::kSubmitted,
             .state_since = now,
             .spec = json::dump(*spec),
             .created_at = now};
  const AuditRecord audit{.at = now,
                          .actor = req.actor,
                          .world_id = req.world,
                          .entity = "strategy",
                          .entity_id = req.id,
                          .event = "SUBMIT",
                          .after = std::string(lifecycle::strategy_state_name(s.state))};
  const Notify notify(observer_, req.world);
  if (auto r = store_.insert_strategy(s, audit); !r) return propagate(r);
  return s;
}

Result<Strategy> WorldService::get_strategy(std::string_view id) {
  if (auto r = validate_id("strategy", id); !r) return propagate(r);
  return store_.get_strategy(id);
}

Result<std::vector<Strategy>> WorldService::list_strategies(std::string_view world_id) {
  if (auto r = validate_id("world", world_id); !r) return propagate(r);
  return store_.list_strategies(world_id);
}

Result<Strategy> WorldService::apply_strategy_event(std::string_view id, StrategyEvent event,
                                                    std::string_view actor, std::string_view reason,
                                                    std::optional<std::string> run_id) {
  if (auto r = validate_actor(actor); !r) return propagate(r);
  if (auto r = validate_text("reason", reason, kMaxReasonLength, true); !r) return propagate(r);
  auto s = get_strategy(id);
  if (!s) return s;
  auto w = writable_world(s->world_id);
  if (!w) return propagate(w);
  if (auto r = check_transitions_allowed(*w); !r) return propagate(r);
  if (event == StrategyEvent::kPromote || event == StrategyEvent::kDemote) {
    // Into or out of Live only by the two-phase apply, within the caps.
    auto o =
        manual_strategy_change(id, {.actor = std::string(actor), .reason = std::string(reason)},
                               event == StrategyEvent::kPromote);
    if (!o) return propagate(o);
    return std::move(o->strategy);
  }
  if (event == StrategyEvent::kReactivate && (s->state == lifecycle::StrategyState::kDryRun ||
                                              s->state == lifecycle::StrategyState::kLive)) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("strategy '{}' is {}: activate brings an Inactive strategy back to DryRun; {}",
                    id, lifecycle::strategy_state_name(s->state),
                    s->state == lifecycle::StrategyState::kLive
                        ? "it is Live already"
                        : fmt::format("to trade it live use `qmtl strategy promote {}` (POST "
                                      "/strategies/{}/promote)",
                                      id, id)));
  }
  auto next = lifecycle::next_strategy_state(s->state, event);
  if (!next)
    return make_error(next.error().code,
                      fmt::format("strategy '{}': {}", id, next.error().message));
  const TimePoint now = clock_.now();
  const AuditRecord audit{.at = now,
                          .actor = std::string(actor),
                          .world_id = s->world_id,
                          .entity = "strategy",
                          .entity_id = s->id,
                          .event = std::string(lifecycle::strategy_event_name(event)),
                          .before = std::string(lifecycle::strategy_state_name(s->state)),
                          .after = std::string(lifecycle::strategy_state_name(*next)),
                          .reason = std::string(reason),
                          .run_id = std::move(run_id)};
  const Notify notify(observer_, s->world_id);
  if (auto r = store_.transition_strategy(id, s->state, *next, now, audit); !r) return propagate(r);
  s->state = *next;
  s->state_since = now;
  return s;
}

Result<std::vector<AuditRecord>> WorldService::list_audit(std::string_view world_id,
                                                          int64_t after_seq, size_t limit) {
  auto w = get_world(world_id);
  if (!w) return propagate(w);
  return store_.list_audit(world_id, after_seq, limit);
}

Result<int64_t> WorldService::last_audit_seq(std::string_view world_id) {
  auto w = get_world(world_id);
  if (!w) return propagate(w);
  return store_.last_audit_seq(world_id);
}

Result<store::AlertHook> WorldService::set_alert_hook(std::string_view world_id,
                                                      std::string_view url,
                                                      std::vector<std::string> events,
                                                      std::string_view actor) {
  if (auto r = validate_actor(actor); !r) return propagate(r);
  if (auto r = validate_id("world", world_id); !r) return propagate(r);
  if (!url.empty()) {
    if (auto r = parse_web_url(url); !r) {
      return make_error(ErrorCode::kInvalidArgument, fmt::format("webhook: {}", r.error().message));
    }
  }
  static constexpr std::array<std::string_view, 4> kKinds{"promote", "demote", "reject", "failure"};
  if (events.empty()) events.assign(kKinds.begin(), kKinds.end());
  for (const auto& e : events) {
    if (std::find(kKinds.begin(), kKinds.end(), e) == kKinds.end()) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("alert event '{}' is not one of promote, demote, reject, "
                                    "failure",
                                    e));
    }
  }
  const auto lock = lock_world(world_id);
  const Notify notify(observer_, world_id);
  auto w = writable_world(world_id);
  if (!w) return propagate(w);
  store::AlertHook hook{.world_id = std::string(world_id),
                        .url = std::string(url),
                        .events = url.empty() ? std::vector<std::string>{} : std::move(events),
                        .updated_at = clock_.now()};
  std::string kinds;
  for (const auto& e : hook.events) kinds += fmt::format("{}{}", kinds.empty() ? "" : ",", e);
  // The URL may carry a secret: the audit log says that it changed, not what it is.
  const AuditRecord audit{.at = hook.updated_at,
                          .actor = std::string(actor),
                          .world_id = std::string(world_id),
                          .entity = "world",
                          .entity_id = std::string(world_id),
                          .event = url.empty() ? "ALERTS_REMOVED" : "ALERTS_SET",
                          .after = url.empty() ? std::nullopt : std::optional<std::string>(kinds)};
  if (auto r = store_.put_alert_hook(hook, audit); !r) return propagate(r);
  return hook;
}

Result<std::optional<store::AlertHook>> WorldService::get_alert_hook(std::string_view world_id) {
  if (auto r = validate_id("world", world_id); !r) return propagate(r);
  return store_.get_alert_hook(world_id);
}

}  // namespace qmtl::world
