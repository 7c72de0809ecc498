// PaperBroker: simulated execution against bars with a BrokerageModel, and the
// cash, positions and PnL that follow.
//
// Orders fill on bars strictly after the one they were decided on (an order
// with ts t fills from the first bar with ts > t): no look-ahead.
//   market  at the bar's open, slipped;
//   limit   when the bar trades through the limit: at the open if it opened
//           beyond it (taker), else at the limit (maker); never worse than the
//           limit, slippage included;
//   stop    once the bar trades through the stop it is a market order: at the
//           worse of the open and the stop, slipped.
// Each order takes at most model.volume_limit of a bar's volume; what is left
// stays open for later bars (partial fills). A bar without volume fills nothing
// while a volume limit is set. Positions are marked to each bar's close.
//
// Buying power (model.leverage): a fill that would raise the gross exposure
// above leverage x equity (both after the fill, its fee included) is not made;
// what is left of the order is refused with the figures (take_rejects). Fills
// that reduce a position always go through. Cash never goes negative
// silently.
//
// Thread safety: not thread-safe; drive it from one thread.
#pragma once

#include <string>
#include <vector>

#include "qmtl/broker/broker.h"
#include "qmtl/broker/brokerage_model.h"

namespace qmtl::broker {

class PaperBroker final : public Broker {
 public:
  PaperBroker(BrokerageModel model, double initial_cash);

  Result<std::string> submit(const Order& order) override;
  Result<void> cancel(std::string_view order_id) override;
  std::vector<Fill> take_fills() override;
  // Orders refused for buying power since the previous call, oldest first.
  std::vector<OrderReject> take_rejects() override;
  Account account() const override { return account_; }
  // account().equity() without copying the account (once per bar in a backtest).
  double equity() const { return account_.equity(); }

  // Fills the open orders of bar.symbol that it can (see above) and marks the
  // symbol's position to the close. kInvalidArgument for an inconsistent bar
  // (nothing changes).
  Result<void> on_bar(const Bar& bar);
  // Orders still (partly) open.
  size_t open_orders() const { return open_.size(); }
  // The position in `symbol`, or null when flat.
  const Position* position(std::string_view symbol) const;
  // The signed units still open in orders of `symbol` (buys > 0).
  double pending(std::string_view symbol) const;

 private:
  struct Open {
    std::string id;
    Order order;
    double remaining = 0;
    bool triggered = false;  // a stop order that has become a market order
  };
  void book(const Fill& f);
  // Empty when `f` fits the buying power; otherwise why not.
  std::string beyond_buying_power(const Fill& f) const;
  // Fills what `bar` can fill of the open orders; drops those done.
  void fill_open_orders(const Bar& bar);

  BrokerageModel model_;
  Account account_;
  std::vector<Open> open_;
  std::vector<Fill> fills_;
  std::vector<OrderReject> rejects_;
  uint64_t next_id_ = 1;
};

}  // namespace qmtl::broker
