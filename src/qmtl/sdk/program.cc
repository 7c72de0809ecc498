#include "qmtl/sdk/program.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>

#include "qmtl/core/child_process.h"
#include "qmtl/core/duration.h"
#include "qmtl/core/file.h"
#include "qmtl/core/json.h"
#include "qmtl/sdk/runner.h"

namespace qmtl::sdk {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr std::string_view kHello = "qmtl-strategy";
constexpr size_t kMaxDeclaration = size_t{64} * 1024;  // a declaration is a few hundred bytes
constexpr size_t kMaxReply = 1024;                     // two numbers
constexpr std::array<std::string_view, 5> kBarFields{"open", "high", "low", "close", "volume"};

tl::unexpected<Error> bad(std::string msg) {
  return make_error(ErrorCode::kInvalidArgument, std::move(msg));
}

// A number in the shortest form that reads back to the same double.
std::string number(double v) { return fmt::format("{}", v); }

std::string unix_seconds(TimePoint t) {
  const int64_t us = t.time_since_epoch().count();
  const int64_t s = us / 1'000'000;
  int64_t frac = us % 1'000'000;
  if (frac == 0) return std::to_string(s);
  if (frac < 0) return fmt::format("{}", static_cast<double>(us) / 1e6);  // before 1970
  std::string digits = fmt::format("{:06d}", frac);
  while (digits.back() == '0') digits.pop_back();
  return fmt::format("{}.{}", s, digits);
}

std::optional<double> parse_number(std::string_view text) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

// What a declaration says, checked.
struct Declaration {
  std::string id;
  Duration interval{};
  OrderRule rule;
};

Result<SignalKind> parse_signal_kind(std::string_view name) {
  for (auto k : {SignalKind::kEvent, SignalKind::kCondition, SignalKind::kNumeric}) {
    if (signal_kind_name(k) == name) return k;
  }
  return bad(fmt::format("signal must be event, condition or numeric, not '{}'", name));
}

Result<Declaration> check_declaration(const boost::json::object& d) {
  for (const auto& kv : d) {
    const std::string_view k = kv.key();
    if (k != "id" && k != "interval" && k != "signal" && k != "exit" && k != "orders" &&
        k != "description") {
      return bad(
          fmt::format("unknown field '{}' (known: id, interval, signal, exit, orders, "
                      "description)",
                      k));
    }
  }
  Declaration out;
  auto id = json::get_string(d, "id");
  if (!id || id->empty()) return bad("field 'id' is required: the strategy's id");
  out.id = *id;
  auto interval_text = json::get_string(d, "interval");
  if (!interval_text) return bad("field 'interval' is required: the bars' interval, e.g. \"1d\"");
  auto interval = parse_duration(*interval_text);
  if (!interval || *interval <= Duration::zero()) {
    return bad(
        fmt::format("interval '{}' is not a positive duration (e.g. 1m, 1h, 1d)", *interval_text));
  }
  out.interval = *interval;
  auto kind_text = json::get_optional_string(d, "signal");
  if (!kind_text) return propagate(kind_text);
  auto kind = parse_signal_kind(kind_text->value_or("event"));
  if (!kind) return propagate(kind);
  auto exit = json::get_optional_bool(d, "exit");
  if (!exit) return propagate(exit);
  const auto* orders = d.if_contains("orders");
  if (orders == nullptr || !orders->is_object()) {
    return bad("field 'orders' is required: a mapping like a YAML strategy's orders");
  }
  for (std::string_view k : {"signal", "exit"}) {
    if (orders->as_object().contains(k)) {
      return bad(
          fmt::format("orders.{} is the program's own output; leave it out (say what the "
                      "values mean with 'signal' and 'exit')",
                      k));
    }
  }
  boost::json::object named = orders->as_object();
  named["signal"] = "signal";
  if (exit->value_or(false)) named["exit"] = "exit";
  auto rule = parse_order_rule(named);
  if (!rule) return propagate(rule);
  rule->signal_kind = *kind;
  const auto exit_kind =
      exit->value_or(false) ? std::optional(SignalKind::kCondition) : std::optional<SignalKind>();
  if (auto r = check_signal_kinds(*rule, exit_kind,
                                  fmt::format("the program's {} signal", signal_kind_name(*kind)));
      !r) {
    return propagate(r);
  }
  out.rule = std::move(*rule);
  return out;
}

// A started program and the line protocol with it.
class Session {
 public:
  static Result<std::unique_ptr<Session>> start(const std::vector<std::string>& command,
                                                milliseconds timeout) {
    auto child = ChildProcess::spawn({.argv = command, .channel = true, .inherit_stderr = true});
    if (!child) return propagate(child);
    return std::unique_ptr<Session>(new Session(std::move(*child), command[0], timeout));
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  // Tells the program the bars have ended and gives it a moment to exit
  // before ChildProcess kills it.
  ~Session() {
    ::shutdown(child_.channel(), SHUT_WR);
    const auto until = steady_clock::now() + milliseconds(1000);
    while (!child_.poll() && steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(5));
    }
  }

  // The declaration line's JSON.
  Result<boost::json::object> declaration() {
    auto line = read_line(kMaxDeclaration, "its declaration (qmtl-strategy 1 {...})");
    if (!line) return propagate(line);
    const std::string_view text = *line;
    if (!text.starts_with(kHello) || text.size() == kHello.size() || text[kHello.size()] != ' ') {
      return bad(
          fmt::format("program {} did not declare itself: its first line must be "
                      "'qmtl-strategy 1 {{...}}', not '{}'",
                      path_, text.substr(0, 80)));
    }
    std::string_view rest = text.substr(kHello.size() + 1);
    const size_t space = rest.find(' ');
    const std::string_view version = rest.substr(0, space);
    if (version != std::to_string(kProgramProtocol)) {
      return bad(fmt::format("program {} speaks protocol version '{}'; this qmtl speaks {}", path_,
                             version, kProgramProtocol));
    }
    auto doc = json::parse(space == std::string_view::npos ? "" : rest.substr(space + 1));
    if (!doc || !doc->is_object()) {
      return bad(
          fmt::format("program {} declared something that is not a JSON object: {}", path_,
                      doc ? "a " + std::string(json::kind_name(*doc)) : doc.error().message));
    }
    return std::move(doc->as_object());
  }

  // Sends the bar and reads the program's values for it.
  Result<SignalValues> exchange(TimePoint bucket, const broker::Bar& bar) {
    std::string line =
        fmt::format("bar {} {} {} {} {} {}\n", unix_seconds(bucket), number(bar.open),
                    number(bar.high), number(bar.low), number(bar.close), number(bar.volume));
    if (auto r = send(line); !r) return propagate(r);
    auto reply =
        read_line(kMaxReply, fmt::format("its values for the bar at {}", format_timestamp(bucket)));
    if (!reply) return propagate(reply);
    return parse_reply(*reply, bucket);
  }

  bool has_exit = false;

 private:
  Session(ChildProcess child, std::string path, milliseconds timeout)
      : child_(std::move(child)), path_(std::move(path)), timeout_(timeout) {}

  Result<SignalValues> parse_reply(std::string_view reply, TimePoint bucket) const {
    const auto w = words(reply);
    if (!w.empty() && w[0] == "error") {
      const size_t at = reply.find("error") + 5;
      return make_error(ErrorCode::kFailedPrecondition,
                        fmt::format("program {} failed at {}:{}", path_, format_timestamp(bucket),
                                    reply.substr(at)));
    }
    const size_t expected = has_exit ? 2 : 1;
    if (w.size() != expected) {
      return bad(fmt::format(
          "program {} answered '{}' for the bar at {}: expected {}", path_, reply.substr(0, 80),
          format_timestamp(bucket),
          has_exit ? "two values (signal and exit, '-' for none)" : "one value ('-' for none)"));
    }
    SignalValues values;
    std::array<std::optional<double>*, 2> into{&values.signal, &values.exit};
    for (size_t k = 0; k < w.size(); ++k) {
      if (w[k] == "-") continue;
      auto v = parse_number(w[k]);
      if (!v || !std::isfinite(*v)) {
        return bad(fmt::format("program {} answered '{}' for the bar at {}: not a finite number",
                               path_, w[k], format_timestamp(bucket)));
      }
      *into[k] = *v;
    }
    return values;
  }

  Result<void> send(std::string_view text) {
    while (!text.empty()) {
      const ssize_t n = ::send(child_.channel(), text.data(), text.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return gone("while qmtl was sending it a bar");
      text.remove_prefix(static_cast<size_t>(n));
    }
    return {};
  }

  // One line without its '\n', within the timeout.
  Result<std::string> read_line(size_t most, std::string_view what) {
    const auto deadline = steady_clock::now() + timeout_;
    for (;;) {
      if (const size_t nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      if (buffer_.size() > most) {
        return bad(
            fmt::format("program {} sent a line of more than {} bytes for {}", path_, most, what));
      }
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now()).count();
      if (left <= 0) return late(what);
      pollfd p{.fd = child_.channel(), .events = POLLIN, .revents = 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left));
      if (ready <= 0) continue;  // EINTR, or the deadline (checked above)
      std::array<char, 4096> chunk{};
      const ssize_t n = ::recv(child_.channel(), chunk.data(), chunk.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return gone(fmt::format("before it sent {}", what));
      buffer_.append(chunk.data(), static_cast<size_t>(n));
    }
  }

  tl::unexpected<Error> late(std::string_view what) const {
    return make_error(ErrorCode::kUnavailable, fmt::format("program {} did not send {} within {}",
                                                           path_, what, format_duration(timeout_)));
  }

  // The program closed its end or exited: how it ended, when it has.
  tl::unexpected<Error> gone(std::string_view when) {
    const auto until = steady_clock::now() + milliseconds(500);
    while (!child_.poll() && steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    const auto status = child_.poll();
    return make_error(ErrorCode::kUnavailable,
                      fmt::format("program {} {} {}", path_,
                                  status ? "ended (" + ChildProcess::describe(*status) + ")"
                                         : std::string("closed its output"),
                                  when));
  }

  ChildProcess child_;
  std::string path_;
  milliseconds timeout_;
  std::string buffer_;
};

struct ProgramCommand {
  std::vector<std::string> argv;
  std::optional<std::string> sha256;
  milliseconds timeout = kDefaultProgramTimeout;
};

Result<ProgramCommand> parse_program(const boost::json::value& v) {
  if (!v.is_object()) return bad("program must be a mapping: {command: [path, args...], ...}");
  const auto& o = v.get_object();
  ProgramCommand out;
  for (const auto& kv : o) {
    const std::string_view k = kv.key();
    if (k != "command" && k != "sha256" && k != "timeout") {
      return bad(fmt::format("program.{} is not a field (known: command, sha256, timeout)", k));
    }
  }
  const auto* command = o.if_contains("command");
  if (command == nullptr || !command->is_array() || command->as_array().empty()) {
    return bad("program.command is required: [absolute path of the program, its arguments...]");
  }
  for (const auto& a : command->as_array()) {
    if (!a.is_string()) return bad("program.command must be a list of strings");
    out.argv.emplace_back(a.get_string());
  }
  if (!out.argv[0].starts_with('/')) {
    return bad(fmt::format("program.command's program '{}' must be an absolute path", out.argv[0]));
  }
  auto sha = json::get_optional_string(o, "sha256");
  if (!sha) return bad("program.sha256 must be a string (the executable's SHA-256, hex)");
  out.sha256 = *sha;
  auto timeout = json::get_optional_string(o, "timeout");
  if (!timeout) return bad("program.timeout must be a duration like \"5s\"");
  if (*timeout) {
    auto d = parse_duration(**timeout);
    if (!d || *d < milliseconds(1) || *d > std::chrono::hours(1)) {
      return bad(fmt::format("program.timeout '{}' must be a duration from 1ms to 1h", **timeout));
    }
    out.timeout = std::chrono::duration_cast<milliseconds>(*d);
  }
  return out;
}

// The Dag of a strategy whose signal comes from `fn`: the bar fields, a node
// that calls fn once a bar, and its signal (and exit) as nodes the order rule
// reads. Anything fn reports fails the node, so the runner fails closed.
Result<Dag> signal_dag(Duration interval, bool exit, SignalFn fn) {
  Dag dag;
  std::vector<std::string> fields;
  for (auto f : kBarFields) {
    dag.input(std::string(f), interval, 1);
    fields.emplace_back(f);
  }
  auto values = std::make_shared<SignalValues>();
  dag.timed_compute(
      "program", std::move(fields), 1,
      [values, fn = std::move(fn)](TimePoint bucket, const std::vector<WindowView>& w) {
        const broker::Bar bar{.ts = bucket,
                              .open = w[0][0],
                              .high = w[1][0],
                              .low = w[2][0],
                              .close = w[3][0],
                              .volume = w[4][0]};
        auto r = fn(bucket, bar);
        // The Dag's way to fail a node: its function throws.
        if (!r) throw NodeFailure(r.error().message);
        for (const auto* v : {&r->signal, &r->exit}) {
          if (*v && !std::isfinite(**v)) {
            throw NodeFailure(
                fmt::format("the strategy's value for the bar at {} is {}, not a "
                            "finite number",
                            format_timestamp(bucket), **v));
          }
        }
        *values = *r;
        return std::optional<double>(1.0);
      });
  dag.compute("signal", {"program"}, 1,
              [values](const std::vector<WindowView>&) { return values->signal; });
  if (exit) {
    dag.compute("exit", {"program"}, 1,
                [values](const std::vector<WindowView>&) { return values->exit; });
  }
  if (auto r = dag.build(); !r) return propagate(r);
  return dag;
}

// The strategy a checked declaration describes, its signal from `fn`.
Result<Strategy> declared_strategy(Declaration declared, SignalFn fn) {
  auto dag = signal_dag(declared.interval, !declared.rule.exit.empty(), std::move(fn));
  if (!dag) return propagate(dag);
  Strategy s;
  s.id = std::move(declared.id);
  s.dag = std::move(*dag);
  s.orders = std::move(declared.rule);
  return s;
}

Result<Strategy> load_program(const boost::json::object& spec, const LoadOptions& options) {
  auto program = parse_program(spec.at("program"));
  if (!program) return propagate(program);
  if (options.programs_dir) {
    const bool within = path_within(*options.programs_dir, program->argv[0]);
    if (!within) {
      return make_error(
          ErrorCode::kPermissionDenied,
          options.programs_dir->empty()
              ? fmt::format("program {} may not run here: strategy programs are off (the "
                            "server's --strategy-programs)",
                            program->argv[0])
              : fmt::format("program {} is not in the strategy programs directory {}",
                            program->argv[0], *options.programs_dir));
    }
  }
  boost::json::object declared = spec;
  declared.erase("program");
  auto checked = check_declaration(declared);
  if (!checked) return propagate(checked);
  auto file = inspect_executable(program->argv[0]);
  if (!file) return propagate(file);
  if (options.programs_dir && file->path != program->argv[0]) {
    return make_error(ErrorCode::kPermissionDenied,
                      fmt::format("program {} is a link (to {}); name the file itself",
                                  program->argv[0], file->path));
  }
  if (program->sha256 && *program->sha256 != file->sha256) {
    return bad(
        fmt::format("program {} has changed since it was submitted (sha256 {}, now {}); "
                    "submit it again so the new build is validated",
                    file->path, program->sha256->substr(0, 12), file->sha256.substr(0, 12)));
  }
  auto session = Session::start(program->argv, program->timeout);
  if (!session) return propagate(session);
  auto said = (*session)->declaration();
  if (!said) return propagate(said);
  if (*said != declared) {
    return bad(
        fmt::format("program {} now declares {}, but the strategy was submitted as {}; "
                    "submit it again",
                    file->path, json::dump(*said), json::dump(declared)));
  }
  std::shared_ptr<Session> shared(std::move(*session));
  shared->has_exit = !checked->rule.exit.empty();
  return declared_strategy(std::move(*checked), [shared](TimePoint bucket, const broker::Bar& bar) {
    return shared->exchange(bucket, bar);
  });
}

}  // namespace

Result<Strategy> load_strategy(const boost::json::value& spec, const LoadOptions& options) {
  if (spec.is_object() && spec.as_object().contains("program")) {
    return load_program(spec.as_object(), options);
  }
  return parse_strategy(spec);
}

Result<Strategy> function_strategy(const boost::json::object& declaration, SignalFn fn) {
  auto checked = check_declaration(declaration);
  if (!checked) return propagate(checked);
  return declared_strategy(std::move(*checked), std::move(fn));
}

Result<boost::json::object> describe_program(const std::vector<std::string>& command,
                                             milliseconds timeout) {
  if (command.empty()) return bad("no program to run");
  auto session = Session::start(command, timeout);
  if (!session) return propagate(session);
  auto said = (*session)->declaration();
  if (!said) return propagate(said);
  if (auto r = check_declaration(*said); !r) {
    return bad(fmt::format("program {} declares {}: {}", command[0], json::dump(*said),
                           r.error().message));
  }
  return said;
}

Result<boost::json::object> program_spec(std::vector<std::string> command, milliseconds timeout) {
  if (command.empty()) return bad("no program to run");
  auto file = inspect_executable(command[0]);
  if (!file) return propagate(file);
  command[0] = file->path;
  auto spec = describe_program(command, timeout);
  if (!spec) return propagate(spec);
  boost::json::array argv;
  for (const auto& a : command) argv.emplace_back(a);
  (*spec)["program"] = boost::json::object{
      {"command", std::move(argv)},
      {"sha256", file->sha256},
      {"timeout", format_duration(std::chrono::duration_cast<Duration>(timeout))}};
  if (auto loaded = load_strategy(*spec); !loaded) return propagate(loaded);
  return spec;
}

Result<std::vector<std::string>> split_command(std::string_view line) {
  std::vector<std::string> out;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::exchange(word, {}));
      in_word = false;
    } else if (c == '\'') {
      const size_t end = line.find('\'', i + 1);
      if (end == std::string_view::npos) return bad("the command has an unclosed ' quote");
      word.append(line.substr(i + 1, end - i - 1));
      in_word = true;
      i = end;
    } else if (c == '"') {
      in_word = true;
      for (++i; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) ++i;
        word += line[i];
      }
      if (i == line.size()) return bad("the command has an unclosed \" quote");
    } else if (c == '\\') {
      if (i + 1 == line.size()) return bad("the command ends in a lone backslash");
      word += line[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(std::move(word));
  if (out.empty()) return bad("the command is empty: give the program's path and its arguments");
  return out;
}

namespace {

// One "bar <time> <open> <high> <low> <close> <volume>" line.
Result<broker::Bar> parse_bar_line(std::string_view line) {
  const auto w = words(line);
  if (w.size() != 7 || w[0] != "bar") {
    return bad(fmt::format("expected 'bar <time> <open> <high> <low> <close> <volume>', got '{}'",
                           line.substr(0, 80)));
  }
  broker::Bar bar;
  const std::string_view t = w[1];
  const size_t dot = t.find('.');
  int64_t seconds = 0;
  const std::string_view whole = t.substr(0, dot);
  if (auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), seconds);
      ec != std::errc() || end != whole.data() + whole.size()) {
    return bad(fmt::format("bar time '{}' is not Unix seconds", t));
  }
  int64_t micros = 0;
  if (dot != std::string_view::npos) {
    const std::string_view frac = t.substr(dot + 1);
    if (frac.empty() || frac.size() > 6 ||
        frac.find_first_not_of("0123456789") != std::string_view::npos) {
      return bad(fmt::format("bar time '{}' is not Unix seconds", t));
    }
    std::from_chars(frac.data(), frac.data() + frac.size(), micros);
    for (size_t k = frac.size(); k < 6; ++k) micros *= 10;
  }
  bar.ts = TimePoint(Duration(seconds * 1'000'000 + micros));
  std::array<double*, 5> into{&bar.open, &bar.high, &bar.low, &bar.close, &bar.volume};
  for (size_t k = 0; k < into.size(); ++k) {
    auto v = parse_number(w[k + 2]);
    if (!v || !std::isfinite(*v))
      return bad(fmt::format("bar value '{}' is not a number", w[k + 2]));
    *into[k] = *v;
  }
  return bar;
}

int serve_error(std::ostream& out, std::string_view message) {
  std::string line(message);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  out << "error " << line << '\n' << std::flush;
  return 1;
}

}  // namespace

int serve_strategy(Strategy strategy, std::istream& in, std::ostream& out) {
  Dag& dag = strategy.dag;
  const OrderRule& rule = strategy.orders;
  const auto names = dag.input_names();
  const auto interval = names.empty() ? std::nullopt : dag.input_interval(names.front());
  boost::json::object declaration{
      {"id", strategy.id},
      {"interval", interval ? format_duration(*interval) : std::string()},
      {"signal", signal_kind_name(rule.signal_kind)},
      {"orders", order_rule_json(rule)}};
  if (!rule.exit.empty()) declaration["exit"] = true;
  out << kHello << ' ' << kProgramProtocol << ' ' << json::dump(declaration) << '\n' << std::flush;
  if (auto r = check_bar_inputs(dag); !r) return serve_error(out, r.error().message);
  std::optional<double> signal, exit;
  if (auto r = dag.subscribe(rule.signal, [&](TimePoint, double v) { signal = v; }); !r) {
    return serve_error(out, r.error().message);
  }
  if (!rule.exit.empty()) {
    if (auto r = dag.subscribe(rule.exit, [&](TimePoint, double v) { exit = v; }); !r) {
      return serve_error(out, r.error().message);
    }
  }
  const BarInputs inputs(dag);
  std::string line;
  while (std::getline(in, line)) {
    auto bar = parse_bar_line(line);
    if (!bar) return serve_error(out, bar.error().message);
    signal.reset();
    exit.reset();
    if (auto r = inputs.push(dag, *bar); !r) return serve_error(out, r.error().message);
    if (dag.failure()) return serve_error(out, dag.failure()->message);
    out << (signal ? number(*signal) : "-");
    if (!rule.exit.empty()) out << ' ' << (exit ? number(*exit) : "-");
    out << '\n' << std::flush;
  }
  return 0;
}

int serve_strategy(Strategy strategy) {
  std::ios::sync_with_stdio(false);
  return serve_strategy(std::move(strategy), std::cin, std::cout);
}

}  // namespace qmtl::sdk
