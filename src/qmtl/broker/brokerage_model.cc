#include "qmtl/broker/brokerage_model.h"

#include <algorithm>
#include <cmath>

namespace qmtl::broker {

double fee_for(const FeeModel& m, double qty, double price, bool maker) {
  const double notional = qty * price;
  struct Visitor {
    double notional, qty;
    bool maker;
    double operator()(const PercentFee& f) const { return std::max(f.minimum, f.rate * notional); }
    double operator()(const PerShareFee& f) const {
      double fee = std::max(f.minimum, f.per_unit * qty);
      if (f.max_rate > 0) fee = std::min(fee, f.max_rate * notional);
      return fee;
    }
    double operator()(const MakerTakerFee& f) const {
      return (maker ? f.maker_rate : f.taker_rate) * notional;
    }
  };
  return std::visit(Visitor{notional, qty, maker}, m);
}

double slipped_price(const SlippageModel& m, Side side, double price, double qty, const Bar& bar) {
  struct Visitor {
    double price, qty;
    const Bar& bar;
    double operator()(const FixedBps& s) const { return price * s.bps / 10'000; }
    double operator()(const SpreadSlippage& s) const {
      return bar.spread > 0 ? bar.spread / 2 : price * s.default_bps / 10'000;
    }
    double operator()(const VolumeShareSlippage& s) const {
      if (bar.volume <= 0) return 0;
      const double share = std::min(1.0, qty / bar.volume);
      return price * s.impact * share * share;
    }
  };
  const double slip = std::visit(Visitor{price, qty, bar}, m);
  return side == Side::kBuy ? price + slip : std::max(price - slip, 0.0);
}

}  // namespace qmtl::broker
