#include "qmtl/world/performance_view.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <utility>

#include "qmtl/core/enum_name.h"
#include "qmtl/metrics/downsample.h"
#include "qmtl/world/world_service.h"

namespace qmtl::world {
namespace {

constexpr std::array<std::string_view, 3> kKindNames = {"validation", "dryrun", "live"};

using lifecycle::StrategyState;

}  // namespace

std::string_view record_kind_name(RecordKind kind) { return enum_name(kind, kKindNames); }

Result<RecordKind> parse_record_kind(std::string_view name) {
  for (size_t i = 0; i < kKindNames.size(); ++i) {
    if (kKindNames[i] == name) return static_cast<RecordKind>(i);
  }
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("kind '{}' is not one of validation, dryrun, live", name));
}

std::vector<StrategyTransition> transitions_of(std::span<const store::AuditRecord> audit) {
  std::vector<StrategyTransition> out;
  for (const auto& a : audit) {
    if (a.entity != "strategy" || !a.after) continue;
    auto to = lifecycle::parse_strategy_state(*a.after);
    if (!to) continue;
    std::optional<StrategyState> from;
    if (a.before) {
      auto b = lifecycle::parse_strategy_state(*a.before);
      if (!b) continue;
      from = *b;
    }
    out.push_back({.seq = a.seq,
                   .strategy = a.entity_id,
                   .from = from,
                   .to = *to,
                   .at = a.at,
                   .event = a.event,
                   .actor = a.actor,
                   .reason = a.reason,
                   .run_id = a.run_id});
  }
  return out;
}

std::vector<Period> run_periods(std::span<const StrategyTransition> transitions) {
  std::vector<Period> out;
  for (const auto& t : transitions) {
    if (!out.empty() && !out.back().to) out.back().to = t.at;
    if (t.to == StrategyState::kDryRun || t.to == StrategyState::kLive) {
      out.push_back({.kind = t.to == StrategyState::kLive ? RecordKind::kLive : RecordKind::kDryRun,
                     .from = t.at});
    }
  }
  return out;
}

RecordKind kind_at(std::span<const Period> periods, TimePoint ts) {
  // The last period that began at or before ts.
  auto it = std::upper_bound(periods.begin(), periods.end(), ts,
                             [](TimePoint t, const Period& p) { return t < p.from; });
  if (it == periods.begin()) return RecordKind::kDryRun;
  const Period& p = *std::prev(it);
  const bool inside = !p.to || ts < *p.to;
  return inside && p.kind == RecordKind::kLive ? RecordKind::kLive : RecordKind::kDryRun;
}

Result<std::vector<StrategyTransition>> WorldService::timeline(std::string_view world_id,
                                                               std::string_view strategy_id) {
  if (auto w = get_world(world_id); !w) return propagate(w);
  if (!strategy_id.empty()) {
    auto s = get_strategy(strategy_id);
    if (!s) return propagate(s);
    if (s->world_id != world_id) {
      return make_error(ErrorCode::kNotFound,
                        fmt::format("strategy '{}' is not in world '{}'", strategy_id, world_id));
    }
  }
  auto audit = store_.list_strategy_audit(world_id, strategy_id);
  if (!audit) return propagate(audit);
  return transitions_of(*audit);
}

namespace {

using Span = std::pair<TimePoint, TimePoint>;  // from <= ts <= to

constexpr Duration kTick{1};

// The parts of [from, to] whose run records are of `kind` (all of it when nullopt).
std::vector<Span> spans_of(std::optional<RecordKind> kind, std::span<const Period> runs,
                           TimePoint from, TimePoint to) {
  if (!kind) return {{from, to}};
  std::vector<Span> live, out;
  for (const auto& p : runs) {
    if (p.kind != RecordKind::kLive) continue;
    const TimePoint a = std::max(from, p.from);
    const TimePoint b = p.to ? std::min(to, *p.to - kTick) : to;
    if (a <= b) live.emplace_back(a, b);
  }
  if (*kind == RecordKind::kLive) return live;
  TimePoint at = from;  // dry-run: what the live spans leave
  for (const auto& [a, b] : live) {
    if (at < a) out.emplace_back(at, a - kTick);
    at = b + kTick;
  }
  if (at <= to) out.emplace_back(at, to);
  return out;
}

// One span's records as the rollups give them: the points of the partial hours
// at its edges, and the whole hours between.
struct SpanParts {
  std::vector<store::PerformancePoint> left, right;
  std::vector<store::RollupBucket> hours;
  size_t total() const {
    size_t n = left.size() + right.size();
    for (const auto& h : hours) n += static_cast<size_t>(h.n);
    return n;
  }
};

Result<SpanParts> parts_of(store::Store& store, std::string_view id, Span span) {
  // Far enough that the hour arithmetic cannot overflow (about 146,000 years).
  constexpr TimePoint kFar{Duration(int64_t{1} << 62)};
  const TimePoint a = std::max(span.first, TimePoint() - (kFar - TimePoint()));
  const TimePoint b = std::min(span.second, kFar);
  SpanParts out;
  TimePoint first_hour = store::rollup_start(a);
  if (first_hour < a) first_hour += store::kRollupWidth;
  const TimePoint end_hour = store::rollup_start(b + kTick);  // exclusive
  if (first_hour >= end_hour) {                               // within one hour
    auto p = store.load_points(id, a, b);
    if (!p) return propagate(p);
    out.left = std::move(*p);
    return out;
  }
  if (a < first_hour) {
    auto p = store.load_points(id, a, first_hour - kTick);
    if (!p) return propagate(p);
    out.left = std::move(*p);
  }
  auto h = store.load_rollup(id, first_hour, end_hour);
  if (!h) return propagate(h);
  out.hours = std::move(*h);
  if (end_hour <= b) {
    auto p = store.load_points(id, end_hour, b);
    if (!p) return propagate(p);
    out.right = std::move(*p);
  }
  return out;
}

// The run records of `spans` to draw: every point when there are few, or when
// the whole hours are too few to show max_points of detail; otherwise each
// hour's first, lowest, highest and last point stand for it. Either way every
// point returned is a stored one, and the lowest and highest are among them.
Result<std::vector<store::PerformancePoint>> drawn_points(store::Store& store, std::string_view id,
                                                          std::span<const Span> spans,
                                                          size_t max_points, size_t& total) {
  std::vector<SpanParts> parts;
  size_t hours = 0;
  total = 0;
  for (const auto& span : spans) {
    auto p = parts_of(store, id, span);
    if (!p) return propagate(p);
    total += p->total();
    hours += p->hours.size();
    parts.push_back(std::move(*p));
  }
  std::vector<store::PerformancePoint> out;
  if (total <= max_points || 4 * hours < max_points) {
    for (const auto& [a, b] : spans) {
      auto p = store.load_points(id, a, b);
      if (!p) return propagate(p);
      out.insert(out.end(), p->begin(), p->end());
    }
    return out;
  }
  for (auto& p : parts) {
    out.insert(out.end(), p.left.begin(), p.left.end());
    for (const auto& h : p.hours) {
      std::array<store::PerformancePoint, 4> four = {h.first, h.low, h.high, h.last};
      std::sort(four.begin(), four.end(), [](const auto& x, const auto& y) { return x.ts < y.ts; });
      for (const auto& q : four) {
        if (out.empty() || out.back().ts != q.ts) out.push_back(q);
      }
    }
    out.insert(out.end(), p.right.begin(), p.right.end());
  }
  return out;
}

// Downsamples `points` into out.points.
void keep_drawn(const std::vector<store::PerformancePoint>& points, size_t max_points,
                PerformanceView& out) {
  std::vector<double> equity(points.size());
  for (size_t i = 0; i < points.size(); ++i) equity[i] = points[i].equity;
  const auto keep = metrics::downsample_min_max(equity, max_points);
  out.points.reserve(keep.size());
  for (size_t i : keep) out.points.push_back(points[i]);
}

void select_fills(std::vector<store::FillRecord>& fills, std::span<const Period> runs,
                  std::optional<RecordKind> kind, size_t max_fills, PerformanceView& out) {
  if (kind && *kind != RecordKind::kValidation) {
    std::erase_if(fills, [&](const auto& f) { return kind_at(runs, f.ts) != *kind; });
  }
  out.total_fills = fills.size();
  const size_t skip = fills.size() > max_fills ? fills.size() - max_fills : 0;
  out.fills.assign(std::make_move_iterator(fills.begin() + static_cast<ptrdiff_t>(skip)),
                   std::make_move_iterator(fills.end()));
}

}  // namespace

Result<PerformanceView> WorldService::performance(std::string_view strategy_id,
                                                  const PerformanceQuery& q) {
  if (q.from > q.to) {
    return make_error(ErrorCode::kInvalidArgument, "'from' is after 'to'; swap them");
  }
  auto s = get_strategy(strategy_id);
  if (!s) return propagate(s);
  PerformanceView out{.strategy = s->id, .world = s->world_id};
  auto audit = store_.list_strategy_audit(s->world_id, s->id);
  if (!audit) return propagate(audit);
  const auto runs = run_periods(transitions_of(*audit));

  const bool validation = q.kind == RecordKind::kValidation;
  std::optional<store::ValidationRecord> backtest;
  if (validation) {
    auto v = store_.get_validation(s->id, true);
    if (!v) return propagate(v);
    backtest = std::move(*v);
    if (backtest && !backtest->points.empty()) {
      out.periods.push_back({.kind = RecordKind::kValidation,
                             .from = backtest->points.front().ts,
                             .to = backtest->points.back().ts});
    }
  }
  out.periods.insert(out.periods.end(), runs.begin(), runs.end());

  std::vector<store::PerformancePoint> points;
  std::vector<store::FillRecord> fills;
  if (validation) {
    if (backtest) {
      for (const auto& p : backtest->points) {
        if (p.ts >= q.from && p.ts <= q.to) points.push_back(p);
      }
      for (auto& f : backtest->fills) {
        if (f.ts >= q.from && f.ts <= q.to) fills.push_back(std::move(f));
      }
    }
    out.total_points = points.size();
  } else {
    const auto spans = spans_of(q.kind, runs, q.from, q.to);
    auto p = drawn_points(store_, s->id, spans, q.max_points, out.total_points);
    if (!p) return propagate(p);
    points = std::move(*p);
    auto f = store_.load_fills(s->id, q.from, q.to);
    if (!f) return propagate(f);
    fills = std::move(*f);
  }
  keep_drawn(points, q.max_points, out);
  select_fills(fills, runs, q.kind, q.max_fills, out);
  return out;
}

}  // namespace qmtl::world
