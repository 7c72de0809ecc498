#include "qmtl/sdk/order_router.h"

#include <fmt/format.h>

#include <utility>

namespace qmtl::sdk {

OrderRecord OrderRouter::route(const broker::Order& order, bool replayed) {
  OrderRecord rec{.order = order};
  const auto acct = paper_.account();
  const auto pos = acct.positions.find(order.symbol);
  auto d =
      gate_.route_order(pos == acct.positions.end() ? 0.0 : pos->second.qty, order.side, order.qty);
  rec.route = d.route;
  rec.reason = std::move(d.reason);
  if (rec.route == Route::kLive && replayed) {
    rec.route = Route::kPaper;
    rec.reason = "a replayed bar (in the feed before this run started): never sent live";
  }
  if (rec.route == Route::kLive) {
    auto id = submit_live(order);
    if (id) {
      rec.order_id = *id;
      if (auto copy = paper_.submit(order); copy) mirrors_.insert(*copy);
    } else {
      rec.route = Route::kBlocked;
      rec.reason = fmt::format("the live broker did not take it: {}", id.error().message);
      // Refused, not merely unreachable: a reject.
      if (live_ != nullptr && id.error().code != ErrorCode::kUnavailable) {
        ++consecutive_rejects_;
        last_reject_ = id.error().message;
      }
    }
  } else if (rec.route == Route::kPaper) {
    auto id = paper_.submit(order);
    if (id) {
      rec.order_id = *id;
    } else if (!paper_error_) {
      paper_error_ = id.error();
    }
  }
  return rec;
}

Result<std::string> OrderRouter::submit_live(const broker::Order& order) {
  if (live_ == nullptr) {
    return make_error(ErrorCode::kFailedPrecondition, "no live broker is configured");
  }
  return live_->submit(order);
}

std::vector<broker::Fill> OrderRouter::take_fills() {
  std::vector<broker::Fill> fills;
  for (auto& f : paper_.take_fills()) {
    if (!mirrors_.contains(f.order_id)) fills.push_back(std::move(f));
  }
  if (live_ != nullptr) {
    auto live_fills = live_->take_fills();
    if (!live_fills.empty()) consecutive_rejects_ = 0;  // orders go through again
    for (auto& f : live_fills) fills.push_back(std::move(f));
  }
  return fills;
}

int OrderRouter::consecutive_rejects() {
  if (live_ != nullptr) {
    for (auto& r : live_->take_rejects()) {
      ++consecutive_rejects_;
      last_reject_ = fmt::format("{}: {}", r.order_id, r.reason);
    }
  }
  return consecutive_rejects_;
}

}  // namespace qmtl::sdk
