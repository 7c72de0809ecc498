// Dag: a strategy's nodes and how data flows through them (docs/architecture.md, docs/sdk.md).
//
// Nodes are declared by name in any order, then build() checks the graph:
// unknown inputs, duplicate names, cycles and inputs of different intervals are
// errors that name the nodes involved.
//
// Data: an input node receives (ts, value) and buckets it by its `interval`
// (bucket = ts floored to the interval). A later value in the same bucket
// replaces the earlier one (duplicates: last wins); a value older than the open
// bucket is refused. A bucket closes when a value of a later bucket arrives (or
// at finish()); the node then emits the bucket's value. Missing buckets (gaps)
// are not filled: windows hold the last `period` buckets that had data.
//
// States (docs/architecture.md, state machines): Initialized until a node's first input; PreWarmup
// while its window is not full (an input with interval 60s and period 30 emits nothing until 30
// buckets have closed: its first output is bucket 30's, emitted when bucket 31 begins); Active once
// it emits; Completed after finish(); Error when its computation fails (a non-finite result or an
// exception), which stops it and its dependents and marks the Dag failed.
//
// A node with several inputs computes when all of them have emitted the same
// bucket.
//
// Thread safety: not thread-safe; one runner thread drives a Dag.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"
#include "qmtl/sdk/indicators.h"

namespace qmtl::sdk {

enum class NodeState { kInitialized, kPreWarmup, kActive, kCompleted, kError };
std::string_view node_state_name(NodeState s);

// The built-in nodes (indicators.h and operators.h define each; docs/sdk.md
// lists their inputs, parameters and conventions).
enum class IndicatorKind {
  kReturns,
  kSma,
  kEma,
  kRsi,
  kRollingStd,
  kZScore,
  kCrossover,
  kRollingMax,
  kRollingMin,
  kRoc,
  kBollinger,
  kAtr,
  kMacd,
  kStochastic,
  kDonchian,
  kVwap,
  kGt,
  kGe,
  kLt,
  kLe,
  kAnd,
  kOr,
  kNot,
  kAdd,
  kSub,
  kMul,
  kDiv,
};
// "returns", "sma", "ema", "rsi", "rolling_std", "zscore", "crossover",
// "rolling_max", "rolling_min", "roc", "bollinger", "atr", "macd",
// "stochastic", "donchian", "vwap", "gt", "ge", "lt", "le", "and", "or", "not",
// "add", "sub", "mul", "div".
std::string_view indicator_name(IndicatorKind k);
// kInvalidArgument for an unknown name, listing the known ones.
Result<IndicatorKind> parse_indicator(std::string_view name);

// An indicator's parameters. Which apply to which indicator is in docs/sdk.md;
// build() checks their values and the node's inputs, naming the node.
struct IndicatorParams {
  size_t n = 1;                 // the window
  std::optional<double> value;  // crossover, comparisons, arithmetic: a constant last operand
  double k = 2;                 // bollinger: the bands' distance in deviations
  bool sample = false;          // bollinger: the sample deviation (ddof 1), not the population's
  bool log = false;             // roc: log(x_t / x_{t-n}) instead of x_t / x_{t-n} - 1
  bool percent = false;         // macd: 100 (EMA(fast) / EMA(slow) - 1) instead of the difference
  size_t fast = 12, slow = 26;  // macd's averages
  size_t signal = 0;            // macd's signal average (0: 9), stochastic's %D (0: 3)
  // Indicators that draw several lines: the one the node emits.
  //   bollinger: upper, middle, lower, pct_b   macd: macd, signal, histogram
  //   stochastic: k, d                          donchian: upper, middle, lower
  std::string output;
};

// The last values of one input of a compute node, newest first: w[0] is the
// latest, w[size() - 1] the oldest kept.
class WindowView {
 public:
  WindowView(const std::vector<double>* values, size_t head, size_t size)
      : values_(values), head_(head), size_(size) {}
  double operator[](size_t k) const;
  size_t size() const { return size_; }

 private:
  const std::vector<double>* values_;
  size_t head_;  // index of the newest value
  size_t size_;
};

// Thrown by a compute node's function to fail the node with what() as the
// reason; other exceptions fail it as "its function threw: <what()>".
class NodeFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A compute node's function: windows of its inputs, in declaration order.
// Returning nullopt emits nothing for this bucket.
using ComputeFn = std::function<std::optional<double>(const std::vector<WindowView>& inputs)>;
// The same with the bucket's time (its start), for a function that must say
// which bar it computes (a strategy program, sdk/program.h).
using TimedComputeFn =
    std::function<std::optional<double>(TimePoint bucket, const std::vector<WindowView>& inputs)>;

class Dag {
 public:
  Dag();
  ~Dag();
  Dag(Dag&&) noexcept;
  Dag& operator=(Dag&&) noexcept;

  // Declarations; checked by build(). A declaration after build() undoes it:
  // push() refuses values until build() succeeds again.
  void input(std::string name, Duration interval, size_t period);
  void indicator(std::string name, IndicatorKind kind, std::vector<std::string> inputs,
                 size_t n = 1);
  void indicator(std::string name, IndicatorKind kind, std::vector<std::string> inputs,
                 IndicatorParams params);
  void compute(std::string name, std::vector<std::string> inputs, size_t period, ComputeFn fn);
  void timed_compute(std::string name, std::vector<std::string> inputs, size_t period,
                     TimedComputeFn fn);

  // Checks the graph and orders it. Errors (kInvalidArgument) name the node:
  // duplicate names, unknown inputs, a wrong number of inputs, a period or n
  // below 1 (2 for rolling_std and bollinger), a parameter out of range or an
  // unknown output line, a cycle (with its path), inputs with different
  // intervals.
  Result<void> build();

  // Feeds input node `input`. kInvalidArgument for an unknown input, a
  // non-finite value, or a value older than the input's open bucket; the Dag
  // is unchanged then.
  Result<void> push(std::string_view input, TimePoint ts, double value);
  // An input resolved once, for feeding it without a lookup by name.
  struct InputId {
    size_t index;
  };
  // The id of input node `name` (after build()), or nullopt.
  std::optional<InputId> find_input(std::string_view name) const;
  Result<void> push(InputId input, TimePoint ts, double value);
  // Closes every input's open bucket now, for sources whose values are complete
  // when they arrive (bars in a backtest): outputs follow without waiting for
  // the next bucket.
  void close_buckets();
  // End of finite input: closes the open buckets and completes every node.
  void finish();
  // True when `name` is an input node.
  bool is_input(std::string_view name) const;
  // The kind of indicator node `name`; nullopt for inputs, compute nodes and
  // names that are not nodes.
  std::optional<IndicatorKind> indicator_kind(std::string_view name) const;
  // The input nodes' names, in declaration order.
  std::vector<std::string> input_names() const;
  // The interval of input node `name`; nullopt for other names.
  std::optional<Duration> input_interval(std::string_view name) const;

  // Called for every value a node emits: (node name, bucket time, value).
  void on_output(std::function<void(std::string_view, TimePoint, double)> fn);
  // Called for every value `node` emits: (bucket time, value); how the order
  // node of a strategy hears its signal. kNotFound for an unknown node.
  Result<void> subscribe(std::string_view node, std::function<void(TimePoint, double)> fn);

  NodeState state(std::string_view node) const;
  // The node's latest output, if any.
  std::optional<std::pair<TimePoint, double>> latest(std::string_view node) const;
  // The first error of any node, with the node's name.
  const std::optional<Error>& failure() const;
  // Values computed so far by all non-input nodes (for throughput figures).
  uint64_t updates() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qmtl::sdk
