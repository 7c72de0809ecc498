// Strategies as programs (docs/sdk.md, "Strategies as programs").
//
// A strategy can be a program (C++ built against the SDK, or any executable)
// that computes the signal while qmtl keeps everything that guards capital:
// the order rule, the paper broker's buying power, the world's order gate, the
// performance records. The runner starts the program with the strategy's
// command and talks to it over its stdin and stdout (one socket; the program's
// stderr goes to the runner's own, so to the runner's log under a server):
//
//   program -> qmtl, first, within the timeout:
//     qmtl-strategy 1 {"id": "sma-cross-cpp", "interval": "1d", "signal": "event",
//                      "orders": {"symbol": "X", "qty": 10}}
//   qmtl -> program, per bar:
//     bar <time> <open> <high> <low> <close> <volume>
//   program -> qmtl, per bar, one line, within the timeout:
//     <signal>            a number: the signal's value at this bar
//     -                   no value at this bar (warming up)
//     <signal> <exit>     when the declaration has "exit": true (either may be -)
//     error <message>     the strategy fails with this message
//   qmtl closes its end after the last bar; the program should then exit.
//
// <time> is the bar's bucket start in Unix seconds (a fraction when it has
// one); numbers are written so that they read back to the same double. The
// declaration: `id`, `interval` (of the bars, as in a YAML input), `signal`:
// what its values mean to the order rule (`event` +1/-1/0, `condition`
// non-zero/0, or `numeric` for weight sizing; order_rule.h), `exit` (default
// false: a second value, a condition), `orders` (a YAML strategy's `orders`
// without `signal` and `exit`), optionally `description`. The same checks as a
// YAML strategy's apply (a numeric signal sized by qty is refused).
//
// A program strategy's spec, as the server stores it, is the declaration plus
// `program`: {"command": [absolute path, args...], "sha256": digest of the
// executable, "timeout": "5s"}. Each start checks that the executable still
// has that digest and that the program declares exactly what was submitted,
// so the program that runs is the one validated. Everything that goes wrong
// (no declaration, a late or malformed reply, the program exiting, a
// non-finite value) fails the strategy's signal node, so the runner fails
// closed: a backtest ends in error, a live runner reports ERROR to its world.
//
// Thread safety: a Strategy from load_strategy is driven by one thread, like
// any Dag; the functions themselves are thread-safe.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "qmtl/broker/order.h"
#include "qmtl/core/result.h"
#include "qmtl/sdk/spec.h"

namespace qmtl::sdk {

inline constexpr int kProgramProtocol = 1;
inline constexpr std::chrono::seconds kDefaultProgramTimeout{5};

struct LoadOptions {
  // Where program strategies may be: nullopt allows any path (a user's own
  // `qmtl backtest`), "" allows none, else only programs inside this directory
  // (canonical). A server passes its `--strategy-programs` to its children.
  std::optional<std::string> programs_dir;
};

// A YAML/JSON strategy (parse_strategy) or a program strategy (a spec with
// `program`), started and checked as above. Errors are kInvalidArgument for a
// spec or a declaration that is wrong, kPermissionDenied for a program outside
// options.programs_dir, kUnavailable when the program cannot be started or
// does not answer; their messages name the program.
Result<Strategy> load_strategy(const boost::json::value& spec, const LoadOptions& options = {});

// A signal from a function rather than a program, for bindings (the Python
// package's strategies): per bar, its bucket time and fields in; the signal
// and, when declared, the exit out (nullopt: none at this bar). An error, or
// a value that is not finite, fails the strategy as a program's would.
struct SignalValues {
  std::optional<double> signal, exit;
};
using SignalFn = std::function<Result<SignalValues>(TimePoint bucket, const broker::Bar& bar)>;
// A strategy declared as a program declares itself (above), its signal from
// `fn`. kInvalidArgument for a declaration that is wrong.
Result<Strategy> function_strategy(const boost::json::object& declaration, SignalFn fn);

// Starts `command` (argv; argv[0] a path) and returns its declaration, checked
// (kInvalidArgument naming what is wrong). For `qmtl strategy submit --command`.
Result<boost::json::object> describe_program(const std::vector<std::string>& command,
                                             std::chrono::milliseconds timeout);

// The spec to submit for `command`: its declaration plus `program` with the
// command (argv[0] made absolute and canonical), the executable's digest and
// the timeout. Checked by loading it once.
Result<boost::json::object> program_spec(std::vector<std::string> command,
                                         std::chrono::milliseconds timeout);

// Splits a command line into words as a shell would without expanding
// anything: blanks separate words; '...' keeps everything, "..." and a
// backslash keep the next character. kInvalidArgument for an open quote or
// an empty command.
Result<std::vector<std::string>> split_command(std::string_view line);

// The program side, for C++ strategies: declares `strategy` on `out`, then
// answers each bar of `in` with the values of its signal (and exit) nodes at
// that bar, until `in` ends. The Dag's inputs are the bar fields they are
// named after (open, high, low, close, volume). Returns 0 at the end of input,
// 1 after a failure (which it also reports to qmtl as `error <message>`).
// The declaration's signal kind is strategy.orders.signal_kind.
int serve_strategy(Strategy strategy, std::istream& in, std::ostream& out);
// The same over the process's stdin and stdout: `return serve_strategy(s);` in main.
int serve_strategy(Strategy strategy);

}  // namespace qmtl::sdk
