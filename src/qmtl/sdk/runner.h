// Runner::offline: a strategy over history (a backtest), producing the same
// performance records that dry-run produces (equity points and fills).
//
// Per bar, in order: the PaperBroker fills what earlier bars decided (at this
// bar's open, see broker/paper_broker.h) and marks to this bar's close; then the
// bar's fields go into the strategy's inputs of the same name (`open`, `high`,
// `low`, `close`, `volume`), whose buckets close at once (a bar is complete when
// it arrives); each output of the signal node becomes an order stamped with
// the bar's time; finally the account's equity is recorded at the bar's time.
//
// Thread safety: pure function over its arguments.
#pragma once

#include <string>
#include <vector>

#include "qmtl/broker/paper_broker.h"
#include "qmtl/core/result.h"
#include "qmtl/sdk/spec.h"

namespace qmtl::sdk {

// Reads OHLCV bars: a header naming a time column (`date`, `timestamp`, `ts`,
// `time`, `datetime`) and `open`, `high`, `low`, `close`, `volume`
// (case-insensitive; other columns ignored). Errors name the line.
Result<std::vector<broker::Bar>> parse_bars_csv(std::string_view text, std::string_view source,
                                                const std::string& symbol);
Result<std::vector<broker::Bar>> read_bars_csv(const std::string& path, const std::string& symbol);

struct EquityPoint {
  TimePoint ts;
  double equity = 0;
};

struct BacktestResult {
  std::vector<EquityPoint> points;  // one per bar
  std::vector<broker::Fill> fills;
  uint64_t orders = 0;        // orders the signal placed
  uint64_t node_updates = 0;  // node computations, for throughput figures
  broker::Account account;    // at the end
};

struct OfflineOptions {
  broker::BrokerageModel model;
  double initial_cash = 100'000;
};

class Runner {
 public:
  // Runs `strategy` (its Dag is consumed) over `bars`. kInvalidArgument when an
  // input is not a bar field or a bar is inconsistent; kFailedPrecondition when
  // a node fails (naming it).
  static Result<BacktestResult> offline(DeclarativeStrategy strategy,
                                        const std::vector<broker::Bar>& bars,
                                        const OfflineOptions& options);
};

}  // namespace qmtl::sdk
