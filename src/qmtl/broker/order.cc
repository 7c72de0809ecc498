#include "qmtl/broker/order.h"

#include <fmt/format.h>

#include <cmath>

#include "qmtl/core/enum_name.h"

namespace qmtl::broker {

std::string_view side_name(Side s) { return s == Side::kBuy ? "buy" : "sell"; }

std::string_view order_type_name(OrderType t) {
  static constexpr std::array<std::string_view, 3> kNames{"market", "limit", "stop"};
  return enum_name(t, kNames);
}

Result<void> validate_order(const Order& o) {
  auto bad = [](std::string msg) {
    return make_error(ErrorCode::kInvalidArgument, std::move(msg));
  };
  if (o.symbol.empty()) return bad("an order needs a symbol");
  if (!(std::isfinite(o.qty) && o.qty > 0)) {
    return bad(fmt::format("order quantity must be a positive number, not {}", o.qty));
  }
  if (o.type == OrderType::kLimit && !(std::isfinite(o.limit_price) && o.limit_price > 0)) {
    return bad(fmt::format("a limit order needs a positive limit price, not {}", o.limit_price));
  }
  if (o.type == OrderType::kStop && !(std::isfinite(o.stop_price) && o.stop_price > 0)) {
    return bad(fmt::format("a stop order needs a positive stop price, not {}", o.stop_price));
  }
  return {};
}

namespace {

// Out of line and cold: a backtest validates every bar, and the message's
// formatting would otherwise weigh on the path of the good ones.
[[gnu::cold, gnu::noinline]] Error bar_error(const Bar& b) {
  return Error{
      ErrorCode::kInvalidArgument,
      fmt::format("bar {} at {} is inconsistent (open {}, high {}, low {}, close "
                  "{}, volume {}): prices must be positive with low <= open, "
                  "close <= high",
                  b.symbol, format_timestamp(b.ts), b.open, b.high, b.low, b.close, b.volume)};
}

}  // namespace

Result<void> validate_bar(const Bar& b) {
  const bool finite = std::isfinite(b.open) && std::isfinite(b.high) && std::isfinite(b.low) &&
                      std::isfinite(b.close) && std::isfinite(b.volume) && std::isfinite(b.spread);
  if (!finite || b.low <= 0 || b.low > std::min(b.open, b.close) ||
      b.high < std::max(b.open, b.close) || b.volume < 0 || b.spread < 0) {
    return tl::unexpected(bar_error(b));
  }
  return {};
}

}  // namespace qmtl::broker
