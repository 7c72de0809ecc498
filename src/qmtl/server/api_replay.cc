// POST /worlds/{id}/replay (docs/api.md, "Policy replay"): what a candidate
// policy, or the recorded versions, would have decided over the world's own
// history. A read: it changes nothing and writes no audit record.
#include <fmt/format.h>

#include <vector>

#include "qmtl/core/duration.h"
#include "qmtl/metrics/downsample.h"
#include "qmtl/server/api_internal.h"

namespace qmtl::server {
namespace {

boost::json::value time_or_null(const std::optional<TimePoint>& t) {
  return t ? boost::json::value(format_timestamp(*t)) : boost::json::value(nullptr);
}

boost::json::object book_json(const world::ReplayBook& b, size_t max_points) {
  boost::json::array live;
  for (const auto& l : b.live) {
    boost::json::array ids;
    for (const auto& id : l.live) ids.emplace_back(id);
    live.push_back({{"at", format_timestamp(l.at)}, {"live", std::move(ids)}});
  }
  std::vector<double> values;
  values.reserve(b.equity.size());
  for (const auto& p : b.equity) values.push_back(p.equity);
  std::vector<world::PerformancePoint> shown;
  for (size_t i : metrics::downsample_min_max(values, max_points)) shown.push_back(b.equity[i]);
  boost::json::object kpis;
  for (const auto& [name, v] : b.kpis) {
    kpis[name] = v ? boost::json::value(*v) : boost::json::value(nullptr);
  }
  return {{"promotions", b.promotions},   {"demotions", b.demotions},
          {"live", std::move(live)},      {"total_points", b.equity.size()},
          {"equity", points_json(shown)}, {"kpis", std::move(kpis)}};
}

boost::json::object replay_json(const world::ReplayReport& r, size_t max_points,
                                size_t max_differences) {
  boost::json::array diffs;
  for (size_t i = 0; i < r.differences.size() && i < max_differences; ++i) {
    const auto& d = r.differences[i];
    diffs.push_back({{"run", d.run},
                     {"at", format_timestamp(d.at)},
                     {"strategy", d.strategy},
                     {"recorded", d.recorded.empty() ? boost::json::value(nullptr)
                                                     : boost::json::value(d.recorded)},
                     {"replayed", d.replayed},
                     {"why", d.why}});
  }
  boost::json::object o{{"world", r.world},
                        {"policy", r.candidate ? "candidate" : "recorded"},
                        {"runs", r.runs},
                        {"from", time_or_null(r.from)},
                        {"until", time_or_null(r.until)},
                        {"decisions", r.decisions},
                        {"matching", r.decisions - r.differences.size()},
                        {"total_differences", r.differences.size()},
                        {"differences", std::move(diffs)},
                        {"recorded", book_json(r.recorded, max_points)},
                        {"candidate", book_json(r.replayed, max_points)}};
  if (!r.run_decisions.empty()) {
    boost::json::array rows;
    for (const auto& d : r.run_decisions) {
      boost::json::array reasons;
      for (const auto& x : d.reasons) reasons.emplace_back(x);
      rows.push_back(
          {{"strategy", d.strategy},
           {"state", d.state},
           {"recorded",
            d.recorded.empty() ? boost::json::value(nullptr) : boost::json::value(d.recorded)},
           {"replayed", d.replayed},
           {"score", d.score ? boost::json::value(*d.score) : boost::json::value(nullptr)},
           {"rank", d.rank ? boost::json::value(*d.rank) : boost::json::value(nullptr)},
           {"reasons", std::move(reasons)}});
    }
    o["run_decisions"] = std::move(rows);
  }
  return o;
}

// A whole number member in [lo, hi], or `fallback` when absent.
Result<size_t> bounded(const boost::json::object& o, std::string_view key, int64_t fallback,
                       int64_t lo, int64_t hi) {
  auto v = json::get_optional_int(o, key);
  if (!v) return propagate(v);
  const int64_t n = v->value_or(fallback);
  if (n < lo || n > hi) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("'{}' must be a whole number from {} to {}", key, lo, hi));
  }
  return static_cast<size_t>(n);
}

Result<std::optional<TimePoint>> time_member(const boost::json::object& o, std::string_view key) {
  auto s = json::get_optional_string(o, key);
  if (!s) return propagate(s);
  if (!*s) return std::optional<TimePoint>();
  auto t = parse_timestamp(**s);
  if (!t) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("'{}' must be a time such as 2026-01-05T00:00:00Z", key));
  }
  return std::optional<TimePoint>(*t);
}

}  // namespace

ApiResponse Api::replay(const ApiRequest& req, Call& call) {
  const std::string& id = call.segs[1];
  auto obj =
      body_object(req, {"policy", "from", "until", "since", "run", "max_points", "max_differences"},
                  "the replay request", true);
  if (!obj) return problem(obj.error());
  world::ReplayOptions opt;
  auto policy = json::get_optional_string(*obj, "policy");
  if (!policy) return problem(policy.error());
  if (*policy) {
    if ((*policy)->empty())
      return problem(400, "'policy' is empty: omit it to replay the recorded versions");
    opt.policy = **policy;
  }
  auto from = time_member(*obj, "from");
  if (!from) return problem(from.error());
  auto until = time_member(*obj, "until");
  if (!until) return problem(until.error());
  auto since = json::get_optional_string(*obj, "since");
  if (!since) return problem(since.error());
  auto run = json::get_optional_string(*obj, "run");
  if (!run) return problem(run.error());
  if (*since && *from) return problem(400, "give 'since' or 'from', not both");
  if (*run && (*since || *from || *until)) {
    return problem(400, "'run' replays that run alone: give no 'from', 'until' or 'since'");
  }
  if (*since) {
    auto d = parse_duration(**since);
    if (!d || *d <= Duration::zero()) {
      return problem(400, "'since' must be a positive duration such as 90d");
    }
    opt.from = clock().now() - *d;
  }
  if (*from) opt.from = **from;
  if (*until) opt.until = **until;
  opt.run = *run;
  auto max_points = bounded(*obj, "max_points", 2000, 2, 1'000'000);
  if (!max_points) return problem(max_points.error());
  auto max_differences = bounded(*obj, "max_differences", 1000, 0, 100'000);
  if (!max_differences) return problem(max_differences.error());
  auto report = worlds_.replay(id, opt);
  if (!report) return problem(report.error());
  return json_response(200, replay_json(*report, *max_points, *max_differences));
}

}  // namespace qmtl::server
