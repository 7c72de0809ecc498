#include "qmtl/server/events.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "qmtl/core/json.h"
#include "qmtl/policy/document.h"
#include "qmtl/server/shapes.h"

namespace qmtl::server {
namespace {

// The strategy an audit record concerns ("" for world-wide records).
std::string strategy_of(const world::AuditRecord& a) {
  if (a.entity == "strategy") return a.entity_id;
  if (a.entity == "activation") return a.entity_id.substr(0, a.entity_id.find('/'));
  return "";
}

// The world's position hand-over policy (docs/policy.md), for runners that act on a
// promotion or demotion: {"on_promote": "flat"|"carry", "on_demote":
// "flatten"|"keep"}; the defaults when the world has no native policy.
boost::json::object position_json(world::WorldService& worlds, const std::string& world) {
  const policy::Policy defaults;
  const policy::Policy* p = &defaults;
  auto parsed = worlds.parsed_policy(world);
  if (parsed && parsed->native() != nullptr) p = parsed->native();
  return {{"on_promote", p->on_promote == policy::OnPromote::kCarry ? "carry" : "flat"},
          {"on_demote", p->on_demote == policy::OnDemote::kKeep ? "keep" : "flatten"}};
}

bool wanted(const StreamEvent& e, const std::string& strategy) {
  return strategy.empty() || e.strategy.empty() || e.strategy == strategy;
}

}  // namespace

std::string format_sse(const StreamEvent& e) {
  std::string out;
  out.reserve(e.data.size() + 48);
  if (e.id > 0) out += fmt::format("id: {}\n", e.id);
  out += "event: ";
  out += e.type;
  out += "\ndata: ";
  out += e.data;  // compact JSON has no newlines
  out += "\n\n";
  return out;
}

std::vector<StreamEvent> EventHub::Subscriber::take() {
  std::lock_guard lock(mu_);
  std::vector<StreamEvent> out(std::make_move_iterator(queue_.begin()),
                               std::make_move_iterator(queue_.end()));
  queue_.clear();
  return out;
}

Result<std::vector<StreamEvent>> EventHub::read_events(const std::string& world, int64_t after_seq,
                                                       size_t limit) {
  auto records = worlds_.list_audit(world, after_seq, limit);
  if (!records) return propagate(records);
  std::vector<StreamEvent> out;
  if (records->empty()) return out;
  // Gates as they are now: later events supersede earlier ones, so a client
  // acting on the newest state of each entry is right.
  auto gates = worlds_.list_activations(world);
  if (!gates) return propagate(gates);
  for (const auto& a : *records) {
    StreamEvent e{.id = a.seq, .type = a.entity, .strategy = strategy_of(a)};
    boost::json::object data = audit_json(a);
    // World-wide changes (state, apply) may move every gate; a strategy's own
    // change moves its gates only.
    if (a.entity == "world" || a.entity == "apply" || !e.strategy.empty()) {
      data["activation"] = activation_set_json(*gates, ttl_s_, e.strategy);
    }
    // A runner hands its positions over by the policy on these.
    if (a.entity == "strategy" && (a.event == "PROMOTE" || a.event == "DEMOTE")) {
      data["position"] = position_json(worlds_, world);
    }
    e.data = json::dump(data);
    out.push_back(std::move(e));
  }
  return out;
}

std::shared_ptr<EventHub::Subscriber> EventHub::subscribe(const std::string& world,
                                                          int64_t after_seq,
                                                          const std::string& strategy,
                                                          std::function<void()> wake) {
  auto s = std::make_shared<Subscriber>();
  s->world_ = world;
  s->strategy_ = strategy;
  s->wake_ = std::move(wake);
  s->cursor_ = after_seq;
  std::lock_guard lock(mu_);
  if (closing_) {
    s->closed_ = true;
  } else {
    subs_[world].push_back(s);
  }
  return s;
}

void EventHub::unsubscribe(const std::shared_ptr<Subscriber>& s) {
  std::lock_guard lock(mu_);
  auto it = subs_.find(s->world_);
  if (it == subs_.end()) return;
  std::erase(it->second, s);
  if (it->second.empty()) subs_.erase(it);
}

void EventHub::publish(std::string_view world) {
  // Under the hub's lock so that two publishes of one world queue in seq order
  // and never twice: each subscriber's cursor moves forward only.
  std::lock_guard lock(mu_);
  auto it = subs_.find(world);
  if (it == subs_.end()) return;
  auto& subs = it->second;
  int64_t from = subs.front()->cursor_;
  for (const auto& s : subs) from = std::min(from, s->cursor_);
  const std::string w(world);
  for (;;) {
    auto events = read_events(w, from, 1000);
    if (!events) {
      // The audit log could not be read: end the streams so clients reconnect
      // and replay, rather than silently miss events.
      if (outage_ == nullptr || !outage_->failed("event streams", events.error())) {
        spdlog::error("event stream of world '{}': {}", w, events.error().message);
      }
      for (auto& s : subs) {
        s->closed_ = true;
        s->wake_();
      }
      subs_.erase(it);
      return;
    }
    if (events->empty()) break;
    for (auto& s : subs) {
      bool queued = false;
      {
        std::lock_guard sl(s->mu_);
        for (const auto& e : *events) {
          if (e.id <= s->cursor_) continue;
          s->cursor_ = e.id;
          if (!wanted(e, s->strategy_)) continue;
          s->queue_.push_back(e);
          queued = true;
        }
        if (s->queue_.size() > max_queue_) {
          s->closed_ = true;
          s->queue_.clear();
        }
      }
      if (queued || s->closed_) s->wake_();
    }
    from = events->back().id;
    if (events->size() < 1000) break;
  }
  std::erase_if(subs, [](const auto& s) { return s->closed(); });
  if (subs.empty()) subs_.erase(it);
}

Result<std::vector<StreamEvent>> EventHub::replay(const std::string& world, int64_t after_seq,
                                                  const std::string& strategy, size_t limit) {
  auto events = read_events(world, after_seq, limit);
  if (!events) return events;
  std::erase_if(*events, [&](const StreamEvent& e) { return !wanted(e, strategy); });
  return events;
}

Result<StreamEvent> EventHub::snapshot(const std::string& world, const std::string& strategy) {
  auto seq = worlds_.last_audit_seq(world);
  if (!seq) return propagate(seq);
  auto w = worlds_.get_world(world);
  if (!w) return propagate(w);
  auto gates = worlds_.list_activations(world);
  if (!gates) return propagate(gates);
  boost::json::object data{{"world", world_json(*w)},
                           {"activation", activation_set_json(*gates, ttl_s_, strategy)}};
  if (!strategy.empty()) {
    auto s = worlds_.get_strategy(strategy);
    if (!s && s.error().code != ErrorCode::kNotFound) return propagate(s);
    if (s && s->world_id == world) {
      data["strategy"] = {{"id", s->id},
                          {"state", lifecycle::strategy_state_name(s->state)},
                          {"state_since", format_timestamp(s->state_since)},
                          {"position", position_json(worlds_, world)}};
      // A move no runner handed over: the runner that connects does it.
      auto pending = worlds_.pending_handover(s->id);
      if (!pending) return propagate(pending);
      if (*pending) {
        boost::json::object p{{"event", (*pending)->event},
                              {"at", format_timestamp((*pending)->at)}};
        if ((*pending)->run_id) p["run_id"] = *(*pending)->run_id;
        data["strategy"].as_object()["pending_handover"] = std::move(p);
      }
    } else {
      data["strategy"] = nullptr;
    }
  }
  return StreamEvent{.id = *seq, .type = "snapshot", .data = json::dump(data)};
}

StreamEvent EventHub::heartbeat(TimePoint now, int64_t last_id) const {
  boost::json::object data{{"at", format_timestamp(now)}, {"last_id", last_id}, {"ttl_s", ttl_s_}};
  return StreamEvent{.type = "heartbeat", .data = json::dump(data)};
}

void EventHub::close_all() {
  std::lock_guard lock(mu_);
  closing_ = true;
  for (auto& [w, subs] : subs_) {
    for (auto& s : subs) {
      s->closed_ = true;
      s->wake_();
    }
  }
  subs_.clear();
}

size_t EventHub::open_streams() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [w, subs] : subs_) n += subs.size();
  return n;
}

}  // namespace qmtl::server
