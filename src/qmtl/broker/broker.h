// The Broker interface every order goes through, and the account it keeps.
//
// A runner talks to one interface whether orders are paper (PaperBroker) or
// live (a real broker adapter); which one receives an order is the gate's
// decision, not the strategy's.
//
// Thread safety: implementations state their own; PaperBroker is not
// thread-safe (one runner thread drives it).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/broker/order.h"
#include "qmtl/core/result.h"

namespace qmtl::broker {

// A position by average cost: `qty` > 0 long, < 0 short.
struct Position {
  double qty = 0;
  double avg_price = 0;
  double last_price = 0;  // the latest mark
};

struct Account {
  double cash = 0;
  std::map<std::string, Position, std::less<>> positions;  // only non-zero ones
  double realised_pnl = 0;  // closed trades at average cost, before fees
  double fees = 0;          // every fee paid

  // Open positions marked to their last price against their average cost.
  double unrealised_pnl() const;
  // Cash plus the marked value of every position (what a backtest records).
  double equity() const;
};

// Books one fill into `account`: position by average cost (long and short,
// flips included), realised PnL of what it closed, cash and fees.
void book_fill(Account& account, const Fill& fill);

// An order the broker refused for good after accepting it for sending (an
// asynchronous reject; one it will retry is not reported).
struct OrderReject {
  std::string order_id;
  std::string reason;
  // What was refused, when the broker says (the PaperBroker does).
  TimePoint ts{};
  std::string symbol;
  Side side = Side::kBuy;
  double qty = 0;
};

class Broker {
 public:
  virtual ~Broker() = default;

  // Accepts an order and returns its id. kInvalidArgument for a malformed
  // order (see validate_order); kUnavailable when the broker cannot take
  // orders now (e.g. disconnected).
  virtual Result<std::string> submit(const Order& order) = 0;
  // Cancels what is left of an open order; kNotFound if it is not open.
  virtual Result<void> cancel(std::string_view order_id) = 0;
  // The fills since the previous call, oldest first.
  virtual std::vector<Fill> take_fills() = 0;
  // The final rejects since the previous call, oldest first. A broker that
  // refuses only in submit() reports none.
  virtual std::vector<OrderReject> take_rejects() { return {}; }
  virtual Account account() const = 0;
};

}  // namespace qmtl::broker
