// Orders, bars and fills: the plain values every broker speaks.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"

namespace qmtl::broker {

enum class Side { kBuy, kSell };
enum class OrderType { kMarket, kLimit, kStop };
std::string_view side_name(Side s);             // "buy", "sell"
std::string_view order_type_name(OrderType t);  // "market", "limit", "stop"

struct Order {
  std::string symbol;
  Side side = Side::kBuy;
  double qty = 0;  // > 0, in units (shares, contracts)
  OrderType type = OrderType::kMarket;
  double limit_price = 0;  // kLimit: the worst acceptable price
  double stop_price = 0;   // kStop: becomes a market order once traded through
  TimePoint ts;            // when the strategy decided it
};

// kInvalidArgument naming the field when an order cannot be accepted by any broker.
Result<void> validate_order(const Order& o);

// One OHLCV bar of a symbol. `spread` is the quoted bid-ask spread in price
// units when known (0 = unknown).
struct Bar {
  TimePoint ts;
  std::string symbol;
  double open = 0, high = 0, low = 0, close = 0;
  double volume = 0;
  double spread = 0;
};

// kInvalidArgument for a bar whose prices are not positive and ordered
// (low <= open, close <= high) or whose volume is negative.
Result<void> validate_bar(const Bar& b);

// One execution. `price` includes slippage; `fee` is charged on top.
struct Fill {
  TimePoint ts;
  std::string order_id;
  std::string symbol;
  Side side = Side::kBuy;
  double qty = 0;
  double price = 0;
  double fee = 0;
  bool maker = false;  // a resting limit order that was filled (maker/taker fees)
};

}  // namespace qmtl::broker
