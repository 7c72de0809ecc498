// `qmtl demo`: the whole idea on one machine in about a minute (docs/demo.md).
//
// It starts `qmtl serve --demo` (simulated clock) and the FIX exchange
// simulator as child processes, sets up a world through the HTTP API like an
// operator would, submits the example strategies and then plays the real daily
// market data into the runners' feeds as simulated time passes, printing the
// lifecycle from the world's audit log. Ctrl-C (or the end of the span) stops
// the children in order, so the database is left consistent.
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "qmtl/cli/client.h"
#include "qmtl/cli/number_check.h"
#include "qmtl/core/child_process.h"
#include "qmtl/core/file.h"
#include "qmtl/core/json.h"
#include "qmtl/lifecycle/fsm.h"
#include "qmtl/store/store.h"

namespace qmtl::cli {
namespace {

namespace fs = std::filesystem;
using qmtl::ChildProcess;
using std::chrono::milliseconds;

struct DemoOptions {
  std::string dir = ".qmtl-demo";
  std::string examples;              // default: found beside the binary or here
  double speed = 345'600;            // simulated seconds per real second: 4 days
  std::string start = "1994-01-03";  // first day of the live feed
  std::string until = "1994-09-01";  // the demo ends when simulated time reaches it
  std::string exchange_sim;          // default: beside this binary
  bool headless = false;             // plain lines only (tests, logs)
};

// One day's bar as an OHLCV CSV line, and its date.
struct Row {
  TimePoint date;
  std::string line;
};

// Where a symbol's daily bars come from: a column of the EU indices file or
// the TTRC OHLCV file (examples/data/README.md says where those come from).
struct Series {
  std::vector<Row> rows;
};

std::string self_path() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).string();
}

// The examples directory: --examples, or the source tree's (the binary is in
// build/<preset>/apps/qmtl/), an installed share/qmtl/examples, or ./examples.
std::optional<fs::path> find_examples(const std::string& flag) {
  std::vector<fs::path> candidates;
  if (!flag.empty()) {
    candidates.emplace_back(flag);
  } else {
    const fs::path bin = fs::path(self_path()).parent_path();
    candidates = {bin / "../../../../examples", bin / "../share/qmtl/examples", "examples"};
  }
  std::error_code ec;
  for (const auto& c : candidates) {
    if (fs::exists(c / "policies" / "demo.yml", ec)) return fs::weakly_canonical(c, ec);
  }
  return std::nullopt;
}

std::optional<fs::path> find_exchange_sim(const std::string& flag) {
  if (!flag.empty()) return fs::path(flag);
  const fs::path bin = fs::path(self_path()).parent_path();
  std::error_code ec;
  for (const auto& c : {bin / "qmtl-exchange-sim", bin / "../exchange_sim/qmtl-exchange-sim"}) {
    if (fs::exists(c, ec)) return fs::weakly_canonical(c, ec);
  }
  return std::nullopt;
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  for (std::string cell; std::getline(ss, cell, sep);) out.push_back(cell);
  return out;
}

// The daily bars of `symbol` from the example data, as OHLCV lines.
CliResult<Series> load_series(const fs::path& data, const std::string& symbol) {
  const bool ttrc = symbol == "TTRC";
  const fs::path file = data / (ttrc ? "ttrc_ohlcv.csv" : "eu_stock_markets.csv");
  std::ifstream in(file);
  if (!in) return tl::unexpected(Failure{kExitUsage, fmt::format("cannot read {}", file.string())});
  std::string header;
  std::getline(in, header);
  size_t column = 0;
  if (!ttrc) {
    const auto names = split(header, ',');
    const auto it = std::find(names.begin(), names.end(), symbol);
    if (it == names.end() || it == names.begin()) {
      return tl::unexpected(Failure{
          kExitUsage, fmt::format("the demo has no data for symbol '{}' (it has DAX, SMI, CAC, "
                                  "FTSE and TTRC)",
                                  symbol)});
    }
    column = static_cast<size_t>(it - names.begin());
  }
  Series s;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto cells = split(line, ',');
    if (cells.size() < 2) continue;
    auto date = parse_timestamp(cells[0]);
    if (!date) continue;
    if (ttrc) {
      s.rows.push_back({*date, line});
    } else if (column < cells.size()) {
      // An index has only its close: a flat bar at that price, with a nominal
      // volume so that paper fills are not limited by it.
      const std::string& c = cells[column];
      s.rows.push_back({*date, fmt::format("{},{},{},{},{},1000000", cells[0], c, c, c, c)});
    }
  }
  return s;
}

uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// SIGINT or SIGTERM arrived (they are blocked and polled, so no handler and no
// global flag).
bool stop_requested(const sigset_t& set) {
  timespec zero{};
  return ::sigtimedwait(&set, nullptr, &zero) > 0;
}

// Waits until `file` has a line containing `needle`, or the child ends.
std::optional<std::string> wait_for_line(const fs::path& file, std::string_view needle,
                                         ChildProcess& child, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline && child.running()) {
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
      if (line.find(needle) != std::string::npos) return line;
    }
    std::this_thread::sleep_for(milliseconds(50));
    child.poll();
  }
  return std::nullopt;
}

// Stops a child politely, then firmly.
void stop_child(ChildProcess& child, milliseconds grace) {
  child.signal(SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (child.running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
    child.poll();
  }
  if (child.running()) child.signal(SIGKILL);
  while (child.running()) {
    std::this_thread::sleep_for(milliseconds(10));
    child.poll();
  }
}

std::string day(const std::string& iso) { return iso.substr(0, std::min<size_t>(10, iso.size())); }

// One audit record as a line for people; nullopt for records the demo does
// not narrate (evaluations, settings, gates).
std::optional<std::string> narrate(const boost::json::object& a) {
  const std::string event = str_field(a, "event");
  const std::string who = str_field(a, "entity_id");
  const std::string reason = str_field(a, "reason");
  const std::string at = day(str_field(a, "at"));
  const std::string from = str_field(a, "before"), to = str_field(a, "after");
  if (str_field(a, "entity") != "strategy") {
    if (event == "HANDOVER") return fmt::format("[{}] {:<14} hand-over: {}", at, who, reason);
    return std::nullopt;
  }
  static const std::set<std::string> kShown = {
      "SUBMIT", "VALIDATION_PASSED", "VALIDATION_FAILED", "REJECT", "PROMOTE",
      "DEMOTE", "DEACTIVATE",        "REACTIVATE",        "ARCHIVE"};
  if (!kShown.contains(event)) return std::nullopt;
  const char* mark = event == "PROMOTE" ? " ▲" : event == "DEMOTE" ? " ▼" : "";
  return fmt::format("[{}] {:<14} {} -> {}{}{}{}", at, who, from, to, mark,
                     reason.empty() || reason == "-" ? "" : ": ", reason == "-" ? "" : reason);
}

// Why an evaluation run moved `strategy`: its reasons and the gate's clauses
// with their values ("return >= 0.01 = 0.0505 yes").
std::string explain(const boost::json::value& run, const std::string& strategy) {
  static const boost::json::object kNone;
  const auto& all = object_at(run, "strategies");
  const auto* found = all.if_contains(strategy);
  const auto& s = found != nullptr && found->is_object() ? found->as_object() : kNone;
  std::vector<std::string> parts;
  if (const auto* rs = s.if_contains("reasons"); rs != nullptr && rs->is_array()) {
    for (const auto& r : rs->as_array()) {
      if (r.is_string()) parts.emplace_back(r.as_string());
    }
  }
  std::string clauses;
  if (const auto* cs = s.if_contains("clauses"); cs != nullptr && cs->is_array()) {
    for (const auto& c : cs->as_array()) {
      if (!c.is_object()) continue;
      const auto& co = c.as_object();
      const auto* pass = co.if_contains("pass");
      clauses +=
          fmt::format("{}{} = {}{}", clauses.empty() ? "" : ", ", str_field(co, "expr"),
                      display_number(co.if_contains("value")),
                      pass != nullptr && pass->is_bool() ? (pass->as_bool() ? " yes" : " no") : "");
    }
  }
  std::string text;
  for (const auto& p : parts) text += (text.empty() ? "" : "; ") + p;
  if (!clauses.empty()) text += fmt::format(" [{} gate: {}]", str_field(s, "gate"), clauses);
  return text;
}

// A demo strategy: its id and its spec.
struct Demo {
  std::string id;
  boost::json::object spec;
};

// What the demo plays: its directory, strategies, and by symbol the live
// bars not yet in the feed.
struct DemoData {
  fs::path dir;
  std::vector<Demo> strategies;
  std::map<std::string, std::deque<Row>> pending;
};

// A fresh directory (the demo tells one story from the start) with the
// history before `start`, an empty live feed, and the exchange's prices, for
// every symbol the demo strategies trade.
CliResult<DemoData> prepare_demo(const DemoOptions& o, const fs::path& examples, TimePoint start,
                                 TimePoint until) {
  // A fresh directory each time: the demo tells one story from the start.
  std::error_code ec;
  DemoData d;
  d.dir = fs::absolute(o.dir, ec);
  const fs::path& dir = d.dir;
  for (const char* old :
       {"qmtl.db", "qmtl.db-wal", "qmtl.db-shm", "exec", "feeds", "history", "exchange",
        "server.out", "server.log", "exchange.out", "exchange.log", "exchange.err"}) {
    fs::remove_all(dir / old, ec);
  }
  for (const char* sub : {"feeds", "history", "exchange", "exec"}) {
    fs::create_directories(dir / sub, ec);
    if (ec) {
      return tl::unexpected(Failure{
          kExitUsage, fmt::format("cannot create {}: {}", (dir / sub).string(), ec.message())});
    }
  }

  // The strategies and the data of the symbols they trade.
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(examples / "strategies" / "demo", ec)) {
    if (e.path().extension() == ".yml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    return tl::unexpected(Failure{
        kExitUsage, fmt::format("no strategies in {}", (examples / "strategies/demo").string())});
  }
  for (const auto& f : files) {
    auto spec = read_strategy_file(f.string());
    if (!spec) return tl::unexpected(spec.error());
    const auto* orders = spec->if_contains("orders");
    const std::string symbol =
        orders != nullptr && orders->is_object() ? str_field(orders->as_object(), "symbol") : "-";
    d.strategies.push_back({str_field(*spec, "id"), *spec});
    if (d.pending.contains(symbol)) continue;
    auto series = load_series(examples / "data", symbol);
    if (!series) return tl::unexpected(series.error());
    const std::string header = "date,open,high,low,close,volume\n";
    std::string history = header, exchange = header;
    auto& live = d.pending[symbol];
    for (auto& r : series->rows) {
      if (r.date < start) {
        history += r.line + '\n';
      } else if (r.date < until) {
        exchange += r.line + '\n';
        live.push_back(std::move(r));
      }
    }
    for (const auto& [path, text] : {std::pair{dir / "history" / (symbol + ".csv"), history},
                                     std::pair{dir / "feeds" / (symbol + ".csv"), header},
                                     std::pair{dir / "exchange" / (symbol + ".csv"), exchange}}) {
      if (auto w = write_file_atomically(path.string(), text); !w) {
        return tl::unexpected(Failure{kExitRefused, w.error().message});
      }
    }
  }
  return d;
}

// The exchange simulator's command line: one FIX session per strategy,
// prices from the demo's data, one row per simulated trading day (5 a week).
std::vector<std::string> exchange_argv(const fs::path& exchange_bin, const fs::path& dir,
                                       uint16_t fix_port, double speed,
                                       const std::vector<Demo>& strategies,
                                       const std::map<std::string, std::deque<Row>>& pending) {
  std::vector<std::string> xargv{
      exchange_bin.string(),
      "--port",
      std::to_string(fix_port),
      "--store",
      (dir / "exchange" / "store").string(),
      "--log",
      (dir / "exchange.log").string(),
      "--password-env",
      "QMTL_DEMO_FIX_PASS",
      "--tick",
      fmt::format("{}ms", std::max<int64_t>(1, std::llround(7.0 / 5 * 86'400'000 / speed)))};
  for (const auto& s : strategies) {
    xargv.push_back("--target");
    xargv.push_back("QMTL-" + s.id);
  }
  for (const auto& [symbol, rows] : pending) {
    xargv.push_back("--csv");
    xargv.push_back(fmt::format("{}={}", symbol, (dir / "exchange" / (symbol + ".csv")).string()));
  }
  return xargv;
}

// `qmtl serve` on simulated time, for the demo.
std::vector<std::string> server_argv(const fs::path& dir, double speed, TimePoint start) {
  return {self_path(),
          "serve",
          "--db",
          "sqlite:" + (dir / "qmtl.db").string(),
          "--port",
          "0",
          "--no-auth",
          "--demo",
          "--clock-speed",
          fmt::format("{}", speed),
          "--clock-start",
          format_timestamp(start),
          "--scheduler-poll",
          "50ms",
          "--heartbeat",
          "1s",
          "--activation-ttl",
          "5s",
          "--exec-dir",
          (dir / "exec").string(),
          "--access-log",
          "false"};
}

// The world, as an operator would set it up (docs/demo.md shows the
// commands): policy, execution settings, the FIX broker, the strategies.
CliResult<void> set_up_world(const Globals& g, const fs::path& examples, const fs::path& dir,
                             uint16_t fix_port, const std::vector<Demo>& strategies) {
  auto policy = read_file((examples / "policies" / "demo.yml").string());
  if (!policy) return tl::unexpected(Failure{kExitUsage, policy.error().message});
  const std::vector<HttpCall> setup{
      {.method = "POST",
       .path = "/worlds",
       .body = json::dump(
           boost::json::object{{"id", "demo"}, {"name", "qmtl demo"}, {"policy", *policy}})},
      {.method = "PUT",
       .path = "/worlds/demo/execution",
       .body =
           json::dump(boost::json::object{{"history", (dir / "history" / "{symbol}.csv").string()},
                                          {"window", "52w"},
                                          {"feed", (dir / "feeds" / "{symbol}.csv").string()},
                                          {"max_runners", 16},
                                          {"max_validations", 3}})},
      {.method = "PUT",
       .path = "/worlds/demo/broker",
       .body = json::dump(boost::json::object{{"type", "fix"},
                                              {"host", "127.0.0.1"},
                                              {"port", fix_port},
                                              {"sender_comp_id", "QMTL-{strategy}"},
                                              {"target_comp_id", "EXCH"},
                                              {"password_env", "QMTL_DEMO_FIX_PASS"}})},
  };
  for (const auto& call : setup) {
    if (auto r = call_server(g, call); !r) return tl::unexpected(r.error());
  }
  for (const auto& s : strategies) {
    auto r = call_server(g, {.method = "POST",
                             .path = "/strategies",
                             .body = json::dump(boost::json::object{
                                 {"id", s.id}, {"world", "demo"}, {"spec", s.spec}})});
    if (!r) return tl::unexpected(r.error());
  }
  return {};
}

// Reads the world's audit log as it grows and tells it: one line per event,
// promotions and demotions with the evaluation's reasons.
class Narrator {
 public:
  void read(const Globals& g, std::ostream& out, bool live_status) {
    for (;;) {
      auto r = call_server(g, {.path = fmt::format("/worlds/demo/audit?after={}&limit=1000", seq)});
      if (!r) return;
      const auto& records = array_at(*r, "records");
      for (const auto& v : records) {
        const auto& a = v.as_object();
        seq = std::max(seq, a.at("seq").to_number<int64_t>());
        const std::string event = str_field(a, "event");
        if (str_field(a, "entity") == "strategy") {
          if (event == "PROMOTE") ++promotions;
          if (event == "DEMOTE") ++demotions;
          if (str_field(a, "after") == "Rejected") ++rejections;
        }
        auto line = narrate(a);
        if (!line) continue;
        const std::string run_id = str_field(a, "run_id");
        if ((event == "PROMOTE" || event == "DEMOTE") && run_id != "-") {
          if (!runs_.contains(run_id)) {
            if (auto run = call_server(g, {.path = "/worlds/demo/evaluations/" + run_id})) {
              runs_[run_id] = std::move(*run);
            }
          }
          if (runs_.contains(run_id)) {
            *line +=
                fmt::format(" ({}: {})", run_id, explain(runs_[run_id], str_field(a, "entity_id")));
          }
          explained.push_back(*line);
        }
        if (live_status) out << "\r\033[K";
        out << *line << '\n';
      }
      if (records.size() < 1000) return;
    }
  }

  int64_t seq = 0;
  int promotions = 0, demotions = 0, rejections = 0;
  std::vector<std::string> explained;  // promotions and demotions with their reasons

 private:
  std::map<std::string, boost::json::value> runs_;  // evaluation runs, by id
};

// Appends to each symbol's feed the bars complete by `now`: a day's bar is
// complete at the end of that day.
void release_bars(std::map<std::string, std::deque<Row>>& pending, const fs::path& dir,
                  TimePoint now) {
  for (auto& [symbol, rows] : pending) {
    std::string lines;
    while (!rows.empty() && rows.front().date + std::chrono::hours(24) <= now) {
      lines += rows.front().line + '\n';
      rows.pop_front();
    }
    if (!lines.empty()) {
      std::ofstream(dir / "feeds" / (symbol + ".csv"), std::ios::app) << lines << std::flush;
    }
  }
}

// One line of where the demo is: the simulated day, strategies by state, and
// the promotions and demotions so far.
std::string status_line(const Globals& g, TimePoint now, const Narrator& story) {
  std::map<std::string, int> states;
  if (auto r = call_server(g, {.path = "/strategies?world=demo"})) {
    for (const auto& s : array_at(*r, "strategies")) ++states[str_field(s.as_object(), "state")];
  }
  std::string counts;
  for (const auto& [state, n] : states) counts += fmt::format(" {} {}", state, n);
  return fmt::format("[{}] strategies:{}; promotions {}, demotions {}", day(format_timestamp(now)),
                     counts, story.promotions, story.demotions);
}

// The strategies and their states at the end of the demo, read from the
// database once the server has stopped: what is printed is what it left (read
// while it still ran, a late evaluation could make the two disagree).
void print_final_states(const fs::path& dir, std::ostream& out) {
  auto store = store::open_store("sqlite:" + (dir / "qmtl.db").string());
  auto list = store ? (*store)->list_strategies("demo")
                    : Result<std::vector<store::Strategy>>(propagate(store));
  if (!list) {
    out << "\ncannot read the strategies at the end: " << list.error().message << '\n';
    return;
  }
  out << "\nstrategies at the end:\n";
  for (const auto& s : *list) {
    out << fmt::format("  {:<14} {}\n", s.id, lifecycle::strategy_state_name(s.state));
  }
}

// The counts, the reasons of each promotion and demotion, and where to look next.
void print_story_end(const Narrator& story, const fs::path& dir, std::ostream& out) {
  out << fmt::format("\n{} promotion(s), {} demotion(s), {} rejection(s) at validation.\n",
                     story.promotions, story.demotions, story.rejections);
  if (!story.explained.empty()) {
    out << "Why (from the audit log):\n";
    for (const auto& line : story.explained) out << "  " << line << '\n';
  }
  out << fmt::format(
      "\nThe database is {0}/qmtl.db. Look around with:\n"
      "  qmtl serve --db sqlite:{0}/qmtl.db --no-auth --port 8080 --execution false "
      "--scheduler false &\n"
      "  qmtl world status demo; qmtl world evaluations demo; qmtl world audit demo\n",
      dir.string());
}

// Blocks SIGINT and SIGTERM in this thread, to be polled between steps;
// returns the set.
sigset_t block_stop_signals() {
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);
  return stop_set;
}

// The opening lines: where the server is, what it plays, and the console's page.
void print_intro(std::ostream& out, const std::string& url, size_t strategies, TimePoint start,
                 TimePoint until, double speed) {
  out << fmt::format(
             "qmtl demo: world 'demo' at {} with {} strategies on real daily data; simulated time "
             "from {} to {} at {:.0f}x ({:.1f} days a second). Ctrl-C stops it.\n"
             "Watch it in a browser: {}/ui/worlds/demo\n",
             url, strategies, day(format_timestamp(start)), day(format_timestamp(until)), speed,
             speed / 86'400, url)
      << std::flush;
}

int run_demo(const DemoOptions& o, std::ostream& out, std::ostream& err) {
  auto fail = [&](const std::string& m, int code = kExitUsage) {
    err << "qmtl demo: " << m << '\n';
    return code;
  };
  auto start = parse_timestamp(o.start);
  auto until = parse_timestamp(o.until);
  if (!start || !until || *until <= *start) {
    return fail("--start and --until take dates such as 1994-01-03, --until after --start");
  }
  if (!(o.speed >= 1 && o.speed <= 1e9)) return fail("--speed takes 1 to 1e9");
  const auto examples = find_examples(o.examples);
  if (!examples) {
    return fail("cannot find the examples directory (policies/demo.yml); pass --examples DIR");
  }
  const auto exchange_bin = find_exchange_sim(o.exchange_sim);
  if (!exchange_bin) {
    return fail("cannot find qmtl-exchange-sim beside this binary; pass --exchange-sim PATH");
  }

  auto prepared = prepare_demo(o, *examples, *start, *until);
  if (!prepared) return report(prepared.error(), err);
  auto& [dir, strategies, pending] = *prepared;

  // Ctrl-C and SIGTERM are polled between steps; children get their own
  // process groups, so the terminal's Ctrl-C reaches only this process.
  const sigset_t stop_set = block_stop_signals();

  // The exchange simulator: one FIX session per strategy, prices from the same
  // data, one row per simulated trading day (5 rows a week).
  const std::string password = fmt::format("demo-{}", ::getpid());
  const uint16_t fix_port = free_port();
  const auto xargv = exchange_argv(*exchange_bin, dir, fix_port, o.speed, strategies, pending);
  const std::vector<std::pair<std::string, std::string>> env{{"QMTL_DEMO_FIX_PASS", password}};
  auto exchange = ChildProcess::spawn({.argv = xargv,
                                       .env = env,
                                       .stdout_path = (dir / "exchange.out").string(),
                                       .stderr_path = (dir / "exchange.err").string()});
  if (!exchange) return fail(exchange.error().message, kExitRefused);
  if (!wait_for_line(dir / "exchange.out", "listening", *exchange, milliseconds(10'000))) {
    return fail(fmt::format("the exchange simulator did not start; see {}",
                            (dir / "exchange.err").string()),
                kExitRefused);
  }

  // The server, on simulated time.
  auto server = ChildProcess::spawn({.argv = server_argv(dir, o.speed, *start),
                                     .env = env,
                                     .stdout_path = (dir / "server.out").string(),
                                     .stderr_path = (dir / "server.log").string()});
  if (!server) return fail(server.error().message, kExitRefused);
  const auto listening =
      wait_for_line(dir / "server.out", "listening on", *server, milliseconds(10'000));
  if (!listening) {
    stop_child(*exchange, milliseconds(3000));
    return fail(fmt::format("qmtl serve did not start; see {}", (dir / "server.log").string()),
                kExitRefused);
  }
  const auto url_at = listening->find("http://");
  Globals g;
  g.gateway_url = listening->substr(url_at, listening->find(' ', url_at) - url_at);
  auto shutdown = [&] {
    stop_child(*server, milliseconds(15'000));
    stop_child(*exchange, milliseconds(5000));
  };

  if (auto r = set_up_world(g, *examples, dir, fix_port, strategies); !r) {
    shutdown();
    return report(r.error(), err);
  }
  const bool live_status = !o.headless && ::isatty(STDOUT_FILENO) == 1;
  print_intro(out, g.gateway_url, strategies.size(), *start, *until, o.speed);

  // Play the data and tell the story.
  Narrator story;
  bool interrupted = false;
  TimePoint now = *start;
  auto last_status = std::chrono::steady_clock::now();
  while (now < *until) {
    if (stop_requested(stop_set)) {
      interrupted = true;
      break;
    }
    if (server->poll()) {
      out << "\n";
      err << fmt::format("qmtl demo: qmtl serve ended ({}); see {}\n",
                         ChildProcess::describe(*server->poll()), (dir / "server.log").string());
      stop_child(*exchange, milliseconds(5000));
      return kExitRefused;
    }
    if (auto h = call_server(g, {.path = "/healthz"}); h) {
      if (auto t = parse_timestamp(str_field(h->as_object(), "time"))) now = *t;
    }
    release_bars(pending, dir, now);
    story.read(g, out, live_status);
    if (std::chrono::steady_clock::now() - last_status > milliseconds(o.headless ? 2000 : 250)) {
      last_status = std::chrono::steady_clock::now();
      const std::string status = status_line(g, now, story);
      if (live_status) {
        out << "\r\033[K" << status << std::flush;
      } else if (o.headless) {
        out << status << '\n' << std::flush;
      }
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  story.read(g, out, live_status);
  if (live_status) out << "\r\033[K";
  out << (interrupted ? "qmtl demo: stopped (Ctrl-C); stopping the server and its runners\n"
                      : "qmtl demo: the end of the simulated span; stopping the server\n")
      << std::flush;
  shutdown();
  print_final_states(dir, out);
  print_story_end(story, dir, out);
  return interrupted ? 130 : kExitOk;
}

}  // namespace

void add_demo_command(CLI::App& app, int& rc, std::ostream& out, std::ostream& err) {
  auto o = std::make_shared<DemoOptions>();
  auto* cmd = app.add_subcommand(
      "demo",
      "the full lifecycle in about a minute: server, exchange simulator, a world and example "
      "strategies on real daily data, on a simulated clock (docs/demo.md)\n"
      "  e.g. qmtl demo --speed 345600");
  cmd->add_option("--dir", o->dir, "where the database, feeds and logs go (emptied first)")
      ->default_str(o->dir);
  cmd->add_option("--examples", o->examples,
                  "the examples directory (default: the source tree's, found from the binary)");
  cmd->add_option("--speed", o->speed, "simulated seconds per real second (345600 = 4 days)")
      ->default_str("345600")
      ->check(finite_above(0));
  cmd->add_option("--start", o->start, "first simulated day: the live data starts here")
      ->default_str(o->start);
  cmd->add_option("--until", o->until, "the demo ends when simulated time reaches this day")
      ->default_str(o->until);
  cmd->add_option("--exchange-sim", o->exchange_sim,
                  "the qmtl-exchange-sim binary (default: beside this one)");
  cmd->add_flag("--headless", o->headless, "plain progress lines, no live status line");
  cmd->callback([o, &rc, &out, &err] { rc = run_demo(*o, out, err); });
}

}  // namespace qmtl::cli
