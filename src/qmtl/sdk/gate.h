// OrderGate: where a strategy's order may go, decided from what the world last
// said — and never open when that is in doubt (docs/architecture.md, docs/sdk.md).
//
//   Live strategy, its side's gate active, not frozen, fresh, connected -> live broker
//   DryRun strategy, not frozen                                         -> paper broker
//   anything else                                                       -> blocked
// and nothing trades, not even on paper, while the world is Paused or Retired
// (docs/architecture.md, state machines: no strategy execution).
//
// Sides: the long gate governs orders that change long exposure (buys from
// flat or long, sells that reduce a long), the short gate those that change
// short exposure; an order that crosses zero needs both (route_order).
//
// "Fresh" means the runner heard from the server (an event or a heartbeat)
// within the entry's TTL; a Live strategy whose decision is stale or whose
// stream is disconnected is blocked, not sent to paper: its orders are counted
// as blocked so the operator sees them. Paper orders risk no money, so a
// DryRun strategy keeps trading on paper through a disconnect, but not while
// frozen (a hand-over to or from live is in progress). Before the first
// decision everything is blocked.
//
// Thread safety: every method may be called from any thread (the event stream
// updates the gate while the strategy routes orders).
#pragma once

#include <array>
#include <mutex>
#include <optional>
#include <string>

#include "qmtl/broker/order.h"
#include "qmtl/core/time.h"

namespace qmtl::sdk {

enum class Route { kLive, kPaper, kBlocked };
std::string_view route_name(Route r);  // "live", "paper", "blocked"

struct GateDecision {
  Route route = Route::kBlocked;
  std::string reason;  // why, for logs and counters; empty when routed
};

// The activation entry of one side, as the server sent it.
struct GateEntry {
  bool active = false;
  bool frozen = false;
  Duration ttl = std::chrono::seconds(15);
};

class OrderGate {
 public:
  // `clock` must outlive the gate.
  explicit OrderGate(const Clock& clock) : clock_(clock) {}

  // The strategy's lifecycle state ("DryRun", "Live", ...), from the server.
  void set_strategy_state(std::string state);
  // The world's state ("Active", "EvalOnly", "Paused", "Retired"); unknown
  // until set, which blocks nothing by itself.
  void set_world_state(std::string state);
  // The entry of `side` (kBuy = long, kSell = short). Also counts as news.
  void set_entry(broker::Side side, const GateEntry& entry);
  // Forgets both entries (a fresh snapshot replaces them all).
  void reset_entries();
  // Any event or heartbeat from the server: the decisions are fresh as of now.
  void heard();
  void set_connected(bool connected);

  // Where an order on the `side` gate (kBuy = long, kSell = short) goes now;
  // counts the blocked ones.
  GateDecision route(broker::Side side);
  // Where an order goes given the strategy's position before it (> 0 long,
  // < 0 short): the gates of every side whose exposure it changes must allow
  // it (see above). Counts one blocked order at most.
  GateDecision route_order(double position, broker::Side side, double qty);

  // What the gate holds now, for logs, tests and the flip-latency benchmark.
  struct View {
    std::optional<std::string> strategy_state;
    std::optional<std::string> world_state;
    std::array<std::optional<GateEntry>, 2> entries;  // [long, short]
    bool connected = false;
    // Heard from the server within every present entry's TTL, as of view().
    bool fresh = false;
  };
  View view() const;
  uint64_t blocked() const;

 private:
  const Clock& clock_;
  mutable std::mutex mu_;
  GateDecision route_locked(size_t side_index);

  std::optional<std::string> state_;
  std::optional<std::string> world_state_;
  std::array<std::optional<GateEntry>, 2> entries_;
  std::optional<TimePoint> last_heard_;
  bool connected_ = false;
  uint64_t blocked_ = 0;
};

}  // namespace qmtl::sdk
