#include "qmtl/sdk/gate.h"

#include <fmt/format.h>

#include "qmtl/core/duration.h"

namespace qmtl::sdk {
namespace {

size_t index(broker::Side s) { return s == broker::Side::kBuy ? 0 : 1; }

}  // namespace

std::string_view route_name(Route r) {
  switch (r) {
    case Route::kLive:
      return "live";
    case Route::kPaper:
      return "paper";
    case Route::kBlocked:
      return "blocked";
  }
  return "blocked";
}

void OrderGate::set_strategy_state(std::string state) {
  std::lock_guard lock(mu_);
  state_ = std::move(state);
}

void OrderGate::set_entry(broker::Side side, const GateEntry& entry) {
  std::lock_guard lock(mu_);
  entries_[index(side)] = entry;
  last_heard_ = clock_.now();
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

GateDecision OrderGate::route(broker::Side side) {
  std::lock_guard lock(mu_);
  auto block = [this](std::string why) {
    ++blocked_;
    return GateDecision{.route = Route::kBlocked, .reason = std::move(why)};
  };
  if (!state_) return block("no decision from the world yet");
  const auto& entry = entries_[index(side)];
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
