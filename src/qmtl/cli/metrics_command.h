// `qmtl metrics <file.csv>...`: every KPI of each series, offline (no server).
//
// Thread safety: not reentrant with respect to the streams it is given.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace qmtl::cli {

struct MetricsCommandOptions {
  std::vector<std::string> files;
  std::optional<std::string> window;  // e.g. "4w"
  std::optional<double> periods_per_year;
  std::optional<double> initial_equity;          // for pnl files
  std::vector<std::string> worst_loss = {"1d"};  // windows for worst_loss(w)
  std::optional<std::string> tz;                 // offset of date-times written without a zone
  bool json = false;
};

// Returns the exit code: 0 ok, 1 a file was refused (unreadable or invalid; the
// message names file and line), 2 a bad option value.
int run_metrics_command(const MetricsCommandOptions& options, std::ostream& out, std::ostream& err);

}  // namespace qmtl::cli
