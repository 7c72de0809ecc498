// What every client command shares: the global options, the call to the server
// with its error mapping, and output helpers. Internal to the cli part.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "qmtl/cli/cli.h"
#include "qmtl/core/http_client.h"
#include "qmtl/core/result.h"
#include "qmtl/core/time.h"

namespace CLI {
class App;
}

namespace qmtl::cli {

using qmtl::http_request;
using qmtl::HttpCall;
using qmtl::HttpReply;

inline constexpr std::string_view kDefaultGateway = "http://127.0.0.1:8080";

struct Globals {
  std::string gateway_url{kDefaultGateway};
  std::string output = "table";
  std::string token;  // --token, QMTL_TOKEN or the config file
  bool json() const { return output == "json"; }
};

// A command's failure: the exit code and the one line to print.
struct Failure {
  int exit_code;
  std::string message;
};

template <typename T>
using CliResult = tl::expected<T, Failure>;

// Calls the server and decodes a JSON answer. Non-2xx answers become a Failure
// carrying the problem's `detail` (exit 1); an unreachable server exits 3.
CliResult<boost::json::value> call_server(const Globals& g, HttpCall call);
// Calls the server for a command that shows what it answers: on failure the
// error is reported, with --output json the answer is printed as is; either way
// nullopt with the exit code in `rc`. Otherwise the answer, for a table.
std::optional<boost::json::value> answer_for_table(const Globals& g, HttpCall call,
                                                   std::ostream& out, std::ostream& err, int& rc);
// Prints "qmtl: <message>" and returns the exit code.
int report(const Failure& f, std::ostream& err);
// A usage error (exit 2) for a bad id, so it never becomes another URL path.
CliResult<void> check_id(std::string_view what, std::string_view id);

// A field as display text: strings as they are, null or absent as "-".
std::string str_field(const boost::json::object& o, std::string_view key);
// Whole seconds are enough for people; JSON output keeps full precision.
std::string display_time(const std::string& iso);
// "3d 4h", "5m 2s": how long since `iso` at `now`.
std::string display_age(const std::string& iso, TimePoint now);
// Numbers rounded for people (4 significant digits), null as "-".
std::string display_number(const boost::json::value* v);
void print_json(const boost::json::value& v, std::ostream& out);
// o[key] as an object/array, or an empty one when absent or of another type.
const boost::json::object& object_at(const boost::json::value& v, std::string_view key);
const boost::json::array& array_at(const boost::json::value& v, std::string_view key);

// The declarative strategy in `path` (JSON, or YAML converted to JSON); usage
// errors (exit 2) name the file, line and column.
CliResult<boost::json::object> read_strategy_file(const std::string& path);
// Where a strategy comes from: a file (read_strategy_file), or a program and
// its arguments (`--command`, sdk/program.h) whose spec is made by starting it
// (sdk::program_spec; it is loaded once, so a spec returned is a valid one).
struct StrategySource {
  std::string file;
  std::string command;
  std::string timeout = "5s";  // for a program: to declare itself, to answer each bar
};
// Usage errors (exit 2) name the file or the program.
CliResult<boost::json::object> strategy_source(const StrategySource& source);
// Any mapping file the same way; `what` names the file in errors ("broker
// file"), `thing` what it must hold ("a broker configuration").
CliResult<boost::json::object> read_mapping_file(const std::string& path, std::string_view what,
                                                 std::string_view thing);

// `--strategy-programs DIR|none` of backtest and run, for sdk::LoadOptions:
// unset allows programs anywhere, "none" none ("" returned), else the
// directory made canonical (a usage error if it is not one).
CliResult<std::optional<std::string>> programs_dir_option(const std::optional<std::string>& flag);

void print_worlds_table(const boost::json::array& worlds, std::ostream& out);

// A manual promotion, demotion or gate override as the server answered it
// (docs/api.md, manual outcome): the JSON with --output json, else `summary`
// and what the next evaluation would decide on `out`. The warning that the
// next evaluation would undo the change goes to `err` in both modes.
void print_manual_outcome(const Globals& g, const boost::json::value& answer,
                          const std::string& summary, std::ostream& out, std::ostream& err);

// Registers `qmtl world ...` and `qmtl strategy ...` on `app`. The callbacks
// set `rc` and write to `out`/`err`; `g` is read when they run.
void add_world_commands(CLI::App& app, const Globals& g, int& rc, std::ostream& out,
                        std::ostream& err);
// A policy file's text, checked locally first so that an error names the file
// with line and column (a usage error, exit 2).
CliResult<std::string> read_policy(const std::string& path);
// `qmtl world replay` and `world evaluations --run R --replay` (world_replay_command.cc).
void add_world_replay_command(CLI::App* world, const Globals& g, int& rc, std::ostream& out,
                              std::ostream& err);
int print_run_replay(const Globals& g, const std::string& world, const std::string& run,
                     std::ostream& out, std::ostream& err);
// `qmtl world report` (world_report_command.cc).
void add_world_report_command(CLI::App* world, const Globals& g, int& rc, std::ostream& out,
                              std::ostream& err);
// `qmtl world alerts|broker|execution` under `world` (world_setting_commands.cc).
void add_world_setting_commands(CLI::App* world, const Globals& g, int& rc, std::ostream& out,
                                std::ostream& err);
void add_strategy_commands(CLI::App& app, const Globals& g, int& rc, std::ostream& out,
                           std::ostream& err);
// Registers `qmtl run`.
void add_run_command(CLI::App& app, const Globals& g, int& rc, std::ostream& out,
                     std::ostream& err);
// Registers `qmtl backtest`.
void add_backtest_command(CLI::App& app, const Globals& g, int& rc, std::ostream& out,
                          std::ostream& err);
// Registers `qmtl serve`.
void add_serve_command(CLI::App& app, int& rc, std::ostream& out, std::ostream& err);
// Registers `qmtl demo`.
void add_demo_command(CLI::App& app, int& rc, std::ostream& out, std::ostream& err);

}  // namespace qmtl::cli
