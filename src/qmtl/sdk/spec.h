// Declarative strategies: a strategy of built-in nodes written as data, so
// `qmtl strategy submit s.yml` needs no compiler (docs/sdk.md). The CLI turns YAML
// into JSON; the server stores the JSON; the runner builds a Dag from it.
//
//   {"id": "sma-cross",
//    "inputs": {"close": {"interval": "1m", "period": 1}},
//    "nodes": {"fast": {"indicator": "sma", "input": "close", "n": 10},
//              "slow": {"indicator": "sma", "input": "close", "n": 30},
//              "cross": {"indicator": "crossover", "inputs": ["fast", "slow"]}},
//    "orders": {"signal": "cross", "symbol": "X", "qty": 10}}
//
// `orders` says which node's value trades and how (order_rule.h): the
// signal sets a target position, sized by `qty`, `fraction` of equity or
// `weight`; `side: long_only` (the default) or `long_short`; exits by
// `stop_loss`, `take_profit`, `trailing_stop`. A signal whose values do not
// suit the sizing (an RSI sized by qty) is refused, naming the node. Unknown
// keys are errors, like everywhere else.
//
// Thread safety: pure functions.
#pragma once

#include <boost/json.hpp>
#include <string>

#include "qmtl/core/result.h"
#include "qmtl/sdk/dag.h"
#include "qmtl/sdk/order_rule.h"

namespace qmtl::sdk {

// A strategy: its DAG and its order node (the rule above). A declarative file
// becomes one through parse_strategy; C++ code builds one directly (a Dag with
// compute nodes, then build()) and hands it to the same Runner.
struct Strategy {
  std::string id;
  Dag dag;  // built
  OrderRule orders;
};

// Parses and builds the strategy. Errors (kInvalidArgument) name the path of the
// offending field, e.g. "nodes.fast.n must be a whole number from 1".
Result<Strategy> parse_strategy(const boost::json::value& spec);

// A strategy's `orders` mapping (its keys as above, `signal` required);
// errors name the field ("orders.qty must be a positive number").
Result<OrderRule> parse_order_rule(const boost::json::object& orders);
// The mapping parse_order_rule reads back to `rule`, without `signal` and
// `exit` (a program strategy's declaration, program.h).
boost::json::object order_rule_json(const OrderRule& rule);
// Refuses a rule whose signal (rule.signal_kind) or exit (exit_kind; nullopt
// without one) its sizing would misread, naming the signal as `what` ("an
// rsi node").
Result<void> check_signal_kinds(const OrderRule& rule, std::optional<SignalKind> exit_kind,
                                std::string_view what);

}  // namespace qmtl::sdk
