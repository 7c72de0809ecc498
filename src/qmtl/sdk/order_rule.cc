#include "qmtl/sdk/order_rule.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "qmtl/core/enum_name.h"

namespace qmtl::sdk {
namespace {

double sign(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }

constexpr double kTiny = 1e-9;

// A close at a level reaches it: 100 * (1 + 0.1) is 110.00000000000001 in
// doubles, and a take-profit of 10 % from 100 is meant to take 110.
bool at_or_below(double x, double level) { return x <= level * (1 + 1e-12); }
bool at_or_above(double x, double level) { return x >= level * (1 - 1e-12); }

}  // namespace

std::string_view signal_kind_name(SignalKind k) {
  static constexpr std::array<std::string_view, 3> kNames{"event", "condition", "numeric"};
  return enum_name(k, kNames);
}

double OrderPlanner::desired() const {
  return locked_ != 0 && sign(direction_) == locked_ ? 0.0 : direction_;
}

double OrderPlanner::size(double dir, double close, double equity) const {
  if (dir == 0) return 0;
  double units = 0;
  switch (rule_.sizing) {
    case Sizing::kQty:
      return sign(dir) * rule_.qty;
    case Sizing::kFraction:
      units = sign(dir) * rule_.fraction * std::max(equity, 0.0) / close;
      break;
    case Sizing::kWeight:
      units = dir * std::max(equity, 0.0) / close;
      break;
  }
  // Down to whole lots, towards zero; kTiny absorbs 0.3 / 0.1 = 2.9999...
  return sign(units) * std::floor(std::fabs(units) / rule_.lot + kTiny) * rule_.lot;
}

std::optional<std::string_view> OrderPlanner::exit_reason(double close, const BookView& book) {
  const double entry = book.avg_price;
  if (book.position > 0) {
    if (rule_.stop_loss && at_or_below(close, entry * (1 - *rule_.stop_loss))) return "stop_loss";
    if (rule_.take_profit && at_or_above(close, entry * (1 + *rule_.take_profit))) {
      return "take_profit";
    }
    if (rule_.trailing_stop && at_or_below(close, extreme_ * (1 - *rule_.trailing_stop))) {
      return "trailing_stop";
    }
  } else if (book.position < 0) {
    if (rule_.stop_loss && at_or_above(close, entry * (1 + *rule_.stop_loss))) return "stop_loss";
    if (rule_.take_profit && at_or_below(close, entry * (1 - *rule_.take_profit))) {
      return "take_profit";
    }
    if (rule_.trailing_stop && at_or_above(close, extreme_ * (1 + *rule_.trailing_stop))) {
      return "trailing_stop";
    }
  }
  return std::nullopt;
}

void OrderPlanner::on_signal(double v) {
  double d = direction_;
  switch (rule_.signal_kind) {
    case SignalKind::kEvent:
      if (v != 0) d = v > 0 ? 1.0 : (rule_.sides == Sides::kLongShort ? -1.0 : 0.0);
      break;
    case SignalKind::kCondition:
      if (rule_.exit.empty()) {
        d = v != 0 ? 1.0 : 0.0;
      } else if (v != 0) {
        d = 1.0;  // an entry: only the exit ends it
      }
      break;
    case SignalKind::kNumeric:
      d = v;
      break;
  }
  if (rule_.sizing == Sizing::kWeight) {
    d = std::clamp(d, -rule_.weight, rule_.weight);
    if (rule_.sides == Sides::kLongOnly) d = std::max(d, 0.0);
  }
  // A crossover's 0 and a condition that stays as it was change nothing: the
  // bar needs no decision for them (quiet()).
  if (d != direction_) {
    direction_ = d;
    changed_ = true;
  }
}

bool OrderPlanner::quiet() const {
  const bool watching =
      rule_.sizing == Sizing::kWeight ||
      ((rule_.stop_loss || rule_.take_profit || rule_.trailing_stop) && held_ != 0);
  return !changed_ && !exit_ && settled_ && !watching;
}

std::optional<PlannedOrder> OrderPlanner::decide(double close, const BookView& book) {
  changed_ = false;
  if (exit_) {  // after the signal: the exit wins a tie
    direction_ = 0;
    exit_ = false;
  }
  if (locked_ != 0 && sign(direction_) != locked_) locked_ = 0;  // the signal moved on

  // The best close since the position was entered, for the trailing stop.
  const double pos = book.position;
  if (pos != 0) {
    extreme_ = sign(pos) != sign(held_) ? close
               : pos > 0                ? std::max(extreme_, close)
                                        : std::min(extreme_, close);
  }
  held_ = pos;

  std::string_view reason = "signal";
  double want = desired();
  if (pos != 0 && sign(want) == sign(pos)) {
    if (auto why = exit_reason(close, book)) {
      locked_ = sign(pos);
      want = 0;
      reason = *why;
    }
  }
  const double have = pos + book.pending;
  settled_ = true;
  if (rule_.sizing == Sizing::kWeight) {
    if (want == waived_) return std::nullopt;  // refused at this weight: wait for a new one
    waived_.reset();
    target_ = size(want, close, book.equity);
    // Small drifts of price and equity are not worth a trade; going flat or
    // turning around always is.
    const bool turn = sign(target_) != sign(have);
    if (!turn && std::fabs(target_ - have) * close <= rule_.band * book.equity) {
      return std::nullopt;
    }
  } else if (sign(want) != target_dir_) {
    target_dir_ = sign(want);
    target_ = size(want, close, book.equity);
  }
  const double delta = target_ - have;
  if (std::fabs(delta) < kTiny) return std::nullopt;
  settled_ = false;  // the next bar looks whether the order moved the book
  return PlannedOrder{.side = delta > 0 ? broker::Side::kBuy : broker::Side::kSell,
                      .qty = std::fabs(delta),
                      .reason = reason};
}

void OrderPlanner::resync(const BookView& book) {
  target_ = book.position + book.pending;
  settled_ = false;
  if (rule_.sizing == Sizing::kWeight) waived_ = desired();
}

}  // namespace qmtl::sdk
