#include "qmtl/world/performance_records.h"

#include <fmt/format.h>

#include "qmtl/core/json.h"
#include "qmtl/core/time.h"

namespace qmtl::world {
namespace {

// "points[3]: ...", so the caller can find the bad element in a large batch.
tl::unexpected<Error> element_error(std::string_view array, size_t i, std::string_view msg) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("{}[{}]: {}", array, i, msg));
}

Result<TimePoint> element_ts(const boost::json::object& o, std::string_view array, size_t i) {
  auto ts = json::get_string(o, "ts");
  if (!ts) return element_error(array, i, ts.error().message);
  auto t = parse_timestamp(*ts);
  if (!t) return element_error(array, i, t.error().message);
  return *t;
}

Result<double> element_number(const boost::json::object& o, std::string_view key,
                              std::string_view array, size_t i, bool required) {
  auto v = json::get_optional_number(o, key);
  if (!v) return element_error(array, i, v.error().message);
  if (!*v) {
    if (required) return element_error(array, i, fmt::format("field '{}' is required", key));
    return 0.0;
  }
  return **v;
}

}  // namespace

Result<PerformanceRecords> parse_performance_records(const boost::json::object& obj) {
  auto points_json = json::get_optional_array(obj, "points");
  if (!points_json) return propagate(points_json);
  auto fills_json = json::get_optional_array(obj, "fills");
  if (!fills_json) return propagate(fills_json);
  std::vector<store::PerformancePoint> points;
  if (*points_json != nullptr) {
    points.reserve((*points_json)->size());
    size_t i = 0;
    for (const auto& v : **points_json) {
      if (!v.is_object()) return element_error("points", i, "must be an object");
      const auto& o = v.get_object();
      if (auto r = json::check_keys(o, {"ts", "equity"}, "a point"); !r) {
        return element_error("points", i, r.error().message);
      }
      auto ts = element_ts(o, "points", i);
      if (!ts) return propagate(ts);
      auto equity = element_number(o, "equity", "points", i, true);
      if (!equity) return propagate(equity);
      points.push_back({.ts = *ts, .equity = *equity});
      ++i;
    }
  }
  std::vector<store::FillRecord> fills;
  if (*fills_json != nullptr) {
    fills.reserve((*fills_json)->size());
    size_t i = 0;
    for (const auto& v : **fills_json) {
      if (!v.is_object()) return element_error("fills", i, "must be an object");
      const auto& o = v.get_object();
      if (auto r = json::check_keys(o, {"ts", "symbol", "side", "qty", "price", "fee"}, "a fill");
          !r) {
        return element_error("fills", i, r.error().message);
      }
      auto ts = element_ts(o, "fills", i);
      if (!ts) return propagate(ts);
      auto symbol = json::get_string(o, "symbol");
      if (!symbol) return element_error("fills", i, symbol.error().message);
      auto side = json::get_string(o, "side");
      if (!side) return element_error("fills", i, side.error().message);
      auto qty = element_number(o, "qty", "fills", i, true);
      if (!qty) return propagate(qty);
      auto price = element_number(o, "price", "fills", i, true);
      if (!price) return propagate(price);
      auto fee = element_number(o, "fee", "fills", i, false);
      if (!fee) return propagate(fee);
      fills.push_back({.ts = *ts,
                       .symbol = std::move(*symbol),
                       .side = std::move(*side),
                       .qty = *qty,
                       .price = *price,
                       .fee = *fee});
      ++i;
    }
  }
  return PerformanceRecords{std::move(points), std::move(fills)};
}

}  // namespace qmtl::world
