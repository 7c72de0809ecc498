#include "qmtl/sdk/gate.h"

#include <fmt/format.h>

#include "qmtl/core/duration.h"
#include "qmtl/core/enum_name.h"

namespace qmtl::sdk {
namespace {

size_t index(broker::Side s) { return s == broker::Side::kBuy ? 0 : 1; }

}  // namespace

std::string_view route_name(Route r) {
  static constexpr std::array<std::string_view, 3> kNames{"live", "paper", "blocked"};
  return enum_name(r, kNames);
}

void OrderGate::set_strategy_state(std::string state) {
  std::lock_guard lock(mu_);
  state_ = std::move(state);
}

void OrderGate::set_world_state(std::string state) {
  std::lock_guard lock(mu_);
  world_state_ = std::move(state);
}

void OrderGate::set_entry(broker::Side side, const GateEntry& entry) {
  std::lock_guard lock(mu_);
  entries_[index(side)] = entry;
  last_heard_ = clock_.now();
}

void OrderGate::reset_entries() {
  std::lock_guard lock(mu_);
  entries_ = {};
}

void OrderGate::heard() {
  std::lock_guard lock(mu_);
  last_heard_ = clock_.now();
}

void OrderGate::set_connected(bool connected) {
  std::lock_guard lock(mu_);
  connected_ = connected;
}

uint64_t OrderGate::blocked() const {
  std::lock_guard lock(mu_);
  return blocked_;
}

OrderGate::View OrderGate::view() const {
  std::lock_guard lock(mu_);
  bool fresh = last_heard_.has_value();
  for (const auto& e : entries_) {
    if (e && fresh) fresh = clock_.now() - *last_heard_ <= e->ttl;
  }
  return View{.strategy_state = state_,
              .world_state = world_state_,
              .entries = entries_,
              .connected = connected_,
              .fresh = fresh};
}

GateDecision OrderGate::route(broker::Side side) {
  std::lock_guard lock(mu_);
  auto d = route_locked(index(side));
  if (d.route == Route::kBlocked) ++blocked_;
  return d;
}

GateDecision OrderGate::route_order(double position, broker::Side side, double qty) {
  const double signed_qty = side == broker::Side::kBuy ? qty : -qty;
  const double after = position + signed_qty;
  // Exposure changes on the long side when the position is long before or
  // after the order (or a buy starts from flat); likewise for short.
  const bool touches_long = position > 0 || after > 0;
  const bool touches_short = position < 0 || after < 0;
  std::lock_guard lock(mu_);
  GateDecision d{.route = Route::kBlocked, .reason = "the order changes no position"};
  bool first = true;
  for (size_t i : {size_t{0}, size_t{1}}) {
    if (!(i == 0 ? touches_long : touches_short)) continue;
    auto one = route_locked(i);
    // Both sides must agree; the first refusal is the answer.
    if (first || one.route == Route::kBlocked) d = std::move(one);
    first = false;
    if (d.route == Route::kBlocked) break;
  }
  if (d.route == Route::kBlocked) ++blocked_;
  return d;
}

GateDecision OrderGate::route_locked(size_t side_index) {
  auto block = [](std::string why) {
    return GateDecision{.route = Route::kBlocked, .reason = std::move(why)};
  };
  if (!state_) return block("no decision from the world yet");
  if (world_state_ && (*world_state_ == "Paused" || *world_state_ == "Retired")) {
    return block(fmt::format("the world is {}", *world_state_));
  }
  const auto& entry = entries_[side_index];
  if (entry && entry->frozen) return block("the gate is frozen: a hand-over is in progress");
  if (*state_ == "DryRun") return GateDecision{.route = Route::kPaper};
  if (*state_ != "Live") return block(fmt::format("the strategy is {}", *state_));
  if (!entry) return block("no activation entry for this side");
  if (!connected_) return block("disconnected from the server");
  const Duration since = last_heard_ ? clock_.now() - *last_heard_ : Duration::max();
  if (since > entry->ttl) {
    return block(fmt::format("the decision is stale: nothing heard for {} (TTL {})",
                             last_heard_ ? format_duration(since) : "ever",
                             format_duration(entry->ttl)));
  }
  if (!entry->active) return block("the gate is closed");
  return GateDecision{.route = Route::kLive};
}

}  // namespace qmtl::sdk
