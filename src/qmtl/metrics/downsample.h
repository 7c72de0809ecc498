// Downsampling of a series for drawing: at most N points that keep its shape,
// extremes included, so a drawdown is never smoothed away.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace qmtl::metrics {

// The indices (ascending) of the points of `values` to keep, at most
// `max_points` of them (and all when there are no more than that). The first
// and the last point are kept; the points between are cut into equal runs
// (max_points - 2) / 2 of them, and each run gives its lowest and its highest
// point, in their order. So the series' lowest and highest values, and any
// dip or spike, survive at every size; no value is invented or averaged.
// max_points < 4 keeps the first and the last point only (or the one point).
std::vector<size_t> downsample_min_max(std::span<const double> values, size_t max_points);

}  // namespace qmtl::metrics
