#include "qmtl/broker/paper_broker.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace qmtl::broker {
namespace {

constexpr double kEpsilon = 1e-9;

double sign(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }

}  // namespace

double Account::unrealised_pnl() const {
  double u = 0;
  for (const auto& [s, p] : positions) u += p.qty * (p.last_price - p.avg_price);
  return u;
}

double Account::equity() const {
  double e = cash;
  for (const auto& [s, p] : positions) e += p.qty * p.last_price;
  return e;
}

PaperBroker::PaperBroker(BrokerageModel model, double initial_cash) : model_(model) {
  account_.cash = initial_cash;
}

Result<std::string> PaperBroker::submit(const Order& order) {
  if (auto r = validate_order(order); !r) return propagate(r);
  std::string id = fmt::format("paper-{}", next_id_++);
  open_.push_back(Open{.id = id, .order = order, .remaining = order.qty});
  return id;
}

Result<void> PaperBroker::cancel(std::string_view order_id) {
  auto it =
      std::find_if(open_.begin(), open_.end(), [&](const Open& o) { return o.id == order_id; });
  if (it == open_.end()) {
    return make_error(
        ErrorCode::kNotFound,
        fmt::format("order '{}' is not open (unknown, filled or cancelled)", order_id));
  }
  open_.erase(it);
  return {};
}

std::vector<Fill> PaperBroker::take_fills() {
  if (fills_.empty()) return {};
  std::vector<Fill> out;
  out.swap(fills_);
  return out;
}

std::vector<OrderReject> PaperBroker::take_rejects() {
  std::vector<OrderReject> out;
  out.swap(rejects_);
  return out;
}

const Position* PaperBroker::position(std::string_view symbol) const {
  auto it = account_.positions.find(symbol);
  return it == account_.positions.end() ? nullptr : &it->second;
}

double PaperBroker::pending(std::string_view symbol) const {
  double units = 0;
  for (const auto& o : open_) {
    if (o.order.symbol == symbol) units += o.order.side == Side::kBuy ? o.remaining : -o.remaining;
  }
  return units;
}

void PaperBroker::book(const Fill& f) { book_fill(account_, f); }

std::string PaperBroker::beyond_buying_power(const Fill& f) const {
  const double delta = f.side == Side::kBuy ? f.qty : -f.qty;
  const Position* held = position(f.symbol);
  const double before = held != nullptr ? held->qty : 0;
  const double after = before + delta;
  // Reducing a position needs no buying power; turning it around does (the
  // new side is a new position).
  const bool reduces = std::fabs(after) <= std::fabs(before) + kEpsilon && before * after >= 0;
  if (reduces) return {};
  // Gross exposure and equity after the fill, this symbol marked at the fill.
  double gross = std::fabs(after) * f.price;
  double equity = account_.cash - delta * f.price - f.fee + after * f.price;
  for (const auto& [symbol, p] : account_.positions) {
    if (symbol == f.symbol) continue;
    gross += std::fabs(p.qty) * p.last_price;
    equity += p.qty * p.last_price;
  }
  const double limit = model_.leverage * equity;
  if (equity > 0 && gross <= limit * (1 + 1e-12) + kEpsilon) return {};
  return fmt::format(
      "beyond buying power: {} {:g} {} at {:.4f} (fee {:.2f}) would take gross exposure to "
      "{:.2f} against equity {:.2f} x leverage {:g} = {:.2f}",
      f.side == Side::kBuy ? "buying" : "selling", f.qty, f.symbol, f.price, f.fee, gross, equity,
      model_.leverage, limit);
}

void book_fill(Account& account, const Fill& f) {
  Position& p = account.positions[f.symbol];
  const double delta = f.side == Side::kBuy ? f.qty : -f.qty;
  if (std::fabs(p.qty) < kEpsilon || sign(p.qty) == sign(delta)) {
    p.avg_price = (p.avg_price * std::fabs(p.qty) + f.price * f.qty) / (std::fabs(p.qty) + f.qty);
    p.qty += delta;
  } else {
    const double closing = std::min(std::fabs(delta), std::fabs(p.qty));
    account.realised_pnl += closing * (f.price - p.avg_price) * sign(p.qty);
    p.qty += delta;
    if (std::fabs(p.qty) < kEpsilon) {
      p.qty = 0;
      p.avg_price = 0;
    } else if (sign(p.qty) == sign(delta)) {
      p.avg_price = f.price;  // flipped: the rest opened a new position at this price
    }
  }
  p.last_price = f.price;
  account.cash -= delta * f.price + f.fee;
  account.fees += f.fee;
  if (p.qty == 0) account.positions.erase(f.symbol);
}

Result<void> PaperBroker::on_bar(const Bar& bar) {
  if (auto r = validate_bar(bar); !r) return r;
  if (!open_.empty()) fill_open_orders(bar);
  if (auto it = account_.positions.find(bar.symbol); it != account_.positions.end()) {
    it->second.last_price = bar.close;
  }
  return {};
}

void PaperBroker::fill_open_orders(const Bar& bar) {
  for (auto& o : open_) {
    const Order& ord = o.order;
    if (ord.symbol != bar.symbol || !(ord.ts < bar.ts)) continue;
    const bool buy = ord.side == Side::kBuy;
    double ref = bar.open;
    bool maker = false;
    switch (ord.type) {
      case OrderType::kMarket:
        break;
      case OrderType::kLimit:
        if (buy ? bar.low > ord.limit_price : bar.high < ord.limit_price) continue;
        if (buy ? bar.open <= ord.limit_price : bar.open >= ord.limit_price) {
          ref = bar.open;  // marketable at the open
        } else {
          ref = ord.limit_price;
          maker = true;
        }
        break;
      case OrderType::kStop:
        if (!o.triggered) {
          if (buy ? bar.high < ord.stop_price : bar.low > ord.stop_price) continue;
          o.triggered = true;
          ref = buy ? std::max(bar.open, ord.stop_price) : std::min(bar.open, ord.stop_price);
        }
        break;
    }
    double qty = o.remaining;
    if (model_.volume_limit > 0) qty = std::min(qty, model_.volume_limit * bar.volume);
    if (qty <= kEpsilon) continue;
    double price = slipped_price(model_.slippage, ord.side, ref, qty, bar);
    if (ord.type == OrderType::kLimit) {
      price = buy ? std::min(price, ord.limit_price) : std::max(price, ord.limit_price);
    }
    Fill f{.ts = bar.ts,
           .order_id = o.id,
           .symbol = ord.symbol,
           .side = ord.side,
           .qty = qty,
           .price = price,
           .fee = fee_for(model_.fee, qty, price, maker),
           .maker = maker};
    if (auto why = beyond_buying_power(f); !why.empty()) {
      rejects_.push_back({.order_id = o.id,
                          .reason = std::move(why),
                          .ts = bar.ts,
                          .symbol = ord.symbol,
                          .side = ord.side,
                          .qty = o.remaining});
      o.remaining = 0;  // what is left of it is refused, not retried
      continue;
    }
    book(f);
    fills_.push_back(std::move(f));
    o.remaining -= qty;
  }
  std::erase_if(open_, [](const Open& o) { return o.remaining <= kEpsilon; });
}

}  // namespace qmtl::broker
