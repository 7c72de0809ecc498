// The JSON form of a batch of performance records: what runners post
// (POST /strategies/{id}/performance) and what `qmtl backtest --records`
// writes for a validation backtest.
//
// Thread safety: pure functions.
#pragma once

#include <boost/json.hpp>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/store/entities.h"

namespace qmtl::world {

// The records of POST /strategies/{id}/performance (and of `qmtl backtest
// --records`): {"points": [{"ts", "equity"}], "fills": [{"ts", "symbol", "side",
// "qty", "price", "fee"?}]}, both optional. kInvalidArgument names the element,
// e.g. "points[3]: field 'equity' is required".
struct PerformanceRecords {
  std::vector<store::PerformancePoint> points;
  std::vector<store::FillRecord> fills;
};
Result<PerformanceRecords> parse_performance_records(const boost::json::object& obj);

}  // namespace qmtl::world
