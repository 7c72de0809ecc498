// OrderRule and OrderPlanner: how a strategy's signal becomes orders
// (docs/sdk.md, "Orders").
//
// The signal sets a *target position*, and the planner orders the difference
// between it and the position held (plus what is still open), so a condition
// that stays true for a hundred bars trades once, not a hundred times.
//
//   signal kind      value                    target
//   event            +1 / -1 / 0              +1: long; -1: short (long_short)
//   (crossover, C++)                          or flat (long_only); 0: as before
//   condition        non-zero / 0             non-zero: long; 0: flat
//   (gt ... not)
//   numeric          any number               only with `weight` sizing: the
//   (the rest)                                target weight of equity
//
// With an `exit` node (a condition), a condition signal is an entry instead:
// it goes long when it is true and stays long until `exit` is true (then flat
// until the entry is true again); when both are true on one bar, the exit
// wins. "Buy when RSI < 30, sell when RSI > 50" is an entry and an exit.
//
// Sizing, one of: `qty` units; `fraction` of equity at the decision bar's
// close, fixed when the position is entered; `weight`: the signal's value as a
// fraction of equity, capped at +/- weight and rebalanced when the position is
// off target by more than `band` of equity. Units from fraction and weight are
// rounded down to a multiple of `lot`.
//
// Exits, checked at each bar's close against the position's average entry
// price: `stop_loss` (close at or below entry * (1 - stop_loss) for a long,
// at or above entry * (1 + stop_loss) for a short), `take_profit` (the
// reverse), `trailing_stop` (close at or below the highest close since entry
// * (1 - trailing_stop); the lowest, for a short). An exit orders the position
// flat at the next bar's open like any order, and the planner then waits for
// the signal to leave the direction it stopped out of before entering that way
// again (a condition still true does not re-enter at once).
//
// Thread safety: plain values; one planner per runner thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "qmtl/broker/order.h"

namespace qmtl::sdk {

enum class Sizing { kQty, kFraction, kWeight };
enum class Sides { kLongOnly, kLongShort };
// What a signal node's values mean (see above); kEvent for compute nodes,
// whose values the planner cannot know ahead.
enum class SignalKind { kEvent, kCondition, kNumeric };
std::string_view signal_kind_name(SignalKind k);

struct OrderRule {
  std::string signal;  // the node whose values trade
  std::string exit;    // optional: the condition that ends a position the signal entered
  std::string symbol;
  double qty = 0;  // kQty: units per position
  Sizing sizing = Sizing::kQty;
  double fraction = 0;  // kFraction: of equity, in (0, 10]
  double weight = 0;    // kWeight: the largest |weight|, in (0, 10]
  double band = 0.02;   // kWeight: rebalance when off target by more than this share of equity
  double lot = 1;       // kFraction, kWeight: units are a multiple of this
  Sides sides = Sides::kLongOnly;
  std::optional<double> stop_loss, take_profit, trailing_stop;  // fractions of the price
  SignalKind signal_kind = SignalKind::kEvent;
};

// The account as the planner sees it when deciding, after the bar's fills and
// marked to its close.
struct BookView {
  double position = 0;   // units held (< 0 short)
  double pending = 0;    // units still open in orders (signed)
  double avg_price = 0;  // of the position
  double equity = 0;
};

struct PlannedOrder {
  broker::Side side = broker::Side::kBuy;
  double qty = 0;
  std::string_view reason;  // "signal", "stop_loss", "take_profit", "trailing_stop" (static)
};

class OrderPlanner {
 public:
  explicit OrderPlanner(OrderRule rule) : rule_(std::move(rule)) {}

  // The signal's value for the bar now deciding (call before decide()).
  void on_signal(double value);
  // The exit node's value for the bar now deciding.
  void on_exit(double value) { exit_ = exit_ || value != 0; }

  // True when decide() would order nothing whatever the book: no new
  // direction, no exit, the last decision needed no order, and no stop or
  // weight to watch. Lets a runner skip reading its book on most bars.
  bool quiet() const;

  // Once per bar, after the strategy's nodes ran (or only when !quiet()): the
  // order that moves the book to its target, if any. `close` is the bar's close.
  std::optional<PlannedOrder> decide(double close, const BookView& book);

  // The book changed outside the planner (an order refused, a hand-over): the
  // target becomes what is held and open, until the signal changes direction.
  void resync(const BookView& book);

  const OrderRule& rule() const { return rule_; }

 private:
  // The direction the signal asks for now: -1, 0, +1 (the weight for kWeight).
  double desired() const;
  // The units of a new position of direction `dir` (or weight) at `close`.
  double size(double dir, double close, double equity) const;
  std::optional<std::string_view> exit_reason(double close, const BookView& book);

  OrderRule rule_;
  bool changed_ = false;          // the direction changed since the last decision
  bool exit_ = false;             // the exit node was true this bar
  bool settled_ = true;           // the last decision ordered nothing
  double direction_ = 0;          // the latest direction (or weight) asked for
  double target_ = 0;             // units
  double target_dir_ = 0;         // the direction target_ was sized for
  std::optional<double> waived_;  // kWeight: the weight an order was refused at
  double locked_ = 0;             // the direction stopped out of (0: none)
  double extreme_ = 0;            // the best close since entry (trailing stop)
  double held_ = 0;               // the position at the previous decision
};

}  // namespace qmtl::sdk
