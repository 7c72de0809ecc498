// Checks for numeric options. CLI11's own Range and NonNegativeNumber let NaN
// through (every comparison with it is false), so `--fee-bps NaN` became a fee
// of 0; these read the value as the option will and refuse anything that is not
// a finite number in range, which CLI11 reports as a usage error (exit 2).
// Internal to the cli part.
#pragma once

#include <CLI/CLI.hpp>

namespace qmtl::cli {

// A finite number in [lo, hi].
CLI::Validator finite_in(double lo, double hi);
// A finite number > lo.
CLI::Validator finite_above(double lo);
// A finite number >= lo.
CLI::Validator finite_at_least(double lo);

}  // namespace qmtl::cli
