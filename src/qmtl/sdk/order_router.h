// OrderRouter: carries out the gate's decision for each order of a live run —
// the one place where an order is sent live, copied to paper, or blocked.
//
//   gate says live, a new bar, a live broker takes it -> live (and a paper copy,
//                                                        so the paper book
//                                                        follows the live one)
//   gate says live, the bar was replayed               -> paper, never live
//   gate says live, no live broker configured          -> blocked
//   gate says live, the live broker refuses it          -> blocked (a reject
//                                                        unless it is only
//                                                        unreachable)
//   gate says paper                                    -> paper
//   gate says blocked                                  -> blocked
//
// It also counts live rejects in a row (a live fill resets the count) so the
// run can stop a strategy whose broker keeps refusing it, and keeps the paper
// copies of live orders out of the fills the run reports.
//
// Thread safety: not thread-safe; the runner's thread drives it (the gate it
// reads is itself thread-safe).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "qmtl/broker/broker.h"
#include "qmtl/broker/paper_broker.h"
#include "qmtl/core/result.h"
#include "qmtl/sdk/gate.h"

namespace qmtl::sdk {

// One order the strategy decided and where it went.
struct OrderRecord {
  broker::Order order;
  Route route = Route::kBlocked;
  std::string reason;    // why it was blocked; empty otherwise
  std::string order_id;  // the id the receiving broker gave it
};

class OrderRouter {
 public:
  // `gate`, `paper` and `live` (null: no live broker; live orders are then
  // blocked) must outlive the router.
  OrderRouter(OrderGate& gate, broker::PaperBroker& paper, broker::Broker* live)
      : gate_(gate), paper_(paper), live_(live) {}

  // Routes `order` as the gate decides now, given the paper position before
  // it. `replayed`: the bar that made it was in the feed before the run
  // started, so it never goes live.
  OrderRecord route(const broker::Order& order, bool replayed);

  // Sends a hand-over order live without the gate (a promotion's carry or a
  // demotion's flatten, which the world decided). kFailedPrecondition when
  // there is no live broker.
  Result<std::string> submit_live(const broker::Order& order);

  // The fills to report since the last call: paper fills that are not copies
  // of live orders, then the live broker's fills (which reset the reject count).
  std::vector<broker::Fill> take_fills();

  // Live orders refused in a row, counting the live broker's final rejects
  // reported since the last call.
  int consecutive_rejects();
  // The last of them: "<why>" or "<order id>: <why>".
  const std::string& last_reject() const { return last_reject_; }

  // The first paper order that could not be placed (a malformed order): the
  // run ends with it.
  const std::optional<Error>& paper_error() const { return paper_error_; }

 private:
  OrderGate& gate_;
  broker::PaperBroker& paper_;
  broker::Broker* live_;
  std::set<std::string> mirrors_;  // paper ids of the copies of live orders
  int consecutive_rejects_ = 0;
  std::string last_reject_;
  std::optional<Error> paper_error_;
};

}  // namespace qmtl::sdk
