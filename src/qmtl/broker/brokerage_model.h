// BrokerageModel: what trading costs and how orders fill against bars, for the
// PaperBroker and backtests.
//
//   fee      PercentFee (rate of notional, with a minimum), PerShareFee (per
//            unit, with a minimum and a cap as a rate of notional), MakerTakerFee
//            (one rate for resting limit orders, another for the rest);
//   slippage FixedBps (basis points against the trader), SpreadSlippage (half
//            the bar's quoted spread, or a default in bps when the bar has none),
//            VolumeShareSlippage (impact * (qty / bar volume)^2 of the price);
//   fills    at most `volume_limit` of each bar's volume per order (the rest
//            stays open for later bars: partial fills); 0 disables the limit;
//   buying   `leverage`: gross exposure at most leverage x equity (1: no margin).
//
// Thread safety: plain values; the functions are pure.
#pragma once

#include <variant>

#include "qmtl/broker/order.h"

namespace qmtl::broker {

struct PercentFee {
  double rate = 0;     // of notional, e.g. 0.001 = 10 bps
  double minimum = 0;  // per fill
};
struct PerShareFee {
  double per_unit = 0;
  double minimum = 0;   // per fill
  double max_rate = 0;  // cap as a rate of notional; 0 = no cap
};
struct MakerTakerFee {
  double maker_rate = 0;  // may be negative (a rebate)
  double taker_rate = 0;
};
using FeeModel = std::variant<PercentFee, PerShareFee, MakerTakerFee>;

struct FixedBps {
  double bps = 0;
};
struct SpreadSlippage {
  double default_bps = 0;  // when the bar carries no spread
};
struct VolumeShareSlippage {
  double impact = 0.1;  // zipline's default price impact
};
using SlippageModel = std::variant<FixedBps, SpreadSlippage, VolumeShareSlippage>;

struct BrokerageModel {
  FeeModel fee = PercentFee{};
  SlippageModel slippage = FixedBps{};
  double volume_limit = 0.025;  // share of a bar's volume one order may take; 0 = no limit
  // Buying power: a fill may raise the account's gross exposure (the sum of
  // |position| x price) to at most leverage x equity. 1 is a cash account: a
  // long never borrows (cash stays >= 0) and a short is covered by equity;
  // above 1 is margin. A fill beyond it is refused (PaperBroker::take_rejects).
  double leverage = 1;
};

// The fee of a fill of `qty` at `price`.
double fee_for(const FeeModel& m, double qty, double price, bool maker);
// The execution price of `side` at reference price `price` for `qty` in `bar`:
// always worse for the trader (higher for buys, lower for sells).
double slipped_price(const SlippageModel& m, Side side, double price, double qty, const Bar& bar);

}  // namespace qmtl::broker
