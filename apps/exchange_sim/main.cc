// qmtl-exchange-sim: a FIX 4.4 exchange that fills orders against quoted price
// paths, for tests and the demo (docs/brokers.md#the-exchange-simulator).
#include <fmt/format.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "qmtl/broker/fix/fix_engine.h"
#include "qmtl/core/duration.h"

namespace {

// "ES=100,101.5,99" -> a path.
bool parse_path(const std::string& text, qmtl::fix::ExchangeConfig::Path* out, std::string* error) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    *error = fmt::format("--path takes SYMBOL=p1,p2,..., not '{}'", text);
    return false;
  }
  out->symbol = text.substr(0, eq);
  size_t start = eq + 1;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const std::string piece = text.substr(start, comma - start);
    char* end = nullptr;
    const double v = std::strtod(piece.c_str(), &end);
    if (piece.empty() || end == nullptr || *end != '\0' || !(v > 0)) {
      *error = fmt::format("--path {}: '{}' is not a positive price", out->symbol, piece);
      return false;
    }
    out->prices.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return true;
}

// The close column of an OHLCV CSV (header row naming "close", any case).
// Kept free of the sdk: it would bring OpenBLAS, whose thread blocks no
// signals, and sigwait below would no longer see SIGTERM.
bool read_closes(const std::string& path, std::vector<double>* out, std::string* error) {
  std::ifstream f(path);
  if (!f) {
    *error = fmt::format("cannot open {}", path);
    return false;
  }
  std::string line;
  long column = -1;
  for (size_t n = 1; std::getline(f, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
    if (column < 0) {
      for (size_t i = 0; i < cells.size(); ++i) {
        std::string lower = cells[i];
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        if (lower == "close") column = static_cast<long>(i);
      }
      if (column < 0) {
        *error = fmt::format("{}:{}: the header names no close column", path, n);
        return false;
      }
      continue;
    }
    const auto i = static_cast<size_t>(column);
    char* end = nullptr;
    const double v = i < cells.size() ? std::strtod(cells[i].c_str(), &end) : 0;
    if (i >= cells.size() || end == cells[i].c_str() || !(v > 0)) {
      *error = fmt::format("{}:{}: no positive close", path, n);
      return false;
    }
    out->push_back(v);
  }
  if (out->empty()) {
    *error = fmt::format("{}: no rows", path);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"a FIX 4.4 exchange simulator: fills orders against quoted price paths"};
  qmtl::fix::ExchangeConfig c;
  c.session.sender_comp_id = "EXCH";
  c.session.heartbeat_s = 30;
  std::vector<std::string> paths, csvs;
  std::string password_env, tick = "0s";
  app.add_option("--port", c.session.port, "port to listen on")
      ->required()
      ->check(CLI::Range(1, 65535));
  app.add_option("--sender", c.session.sender_comp_id, "its SenderCompID")->default_str("EXCH");
  std::vector<std::string> targets{"QMTL"};
  app.add_option("--target", targets, "the clients' CompIDs (repeatable)")->default_str("QMTL");
  app.add_option("--store", c.session.store_dir, "sequence numbers and sent messages")->required();
  app.add_option("--log", c.session.log_path, "session log file (passwords as ***)");
  app.add_option("--password-env", password_env,
                 "variable holding the password a logon must carry (default: none needed)");
  app.add_option("--path", paths, "SYMBOL=p1,p2,...: a quoted price path (repeatable)");
  app.add_option("--csv", csvs, "SYMBOL=FILE: the close prices of an OHLCV CSV as the path");
  app.add_option("--tick", tick, "move every path one step this often (0s = never)")
      ->default_str("0s");
  app.add_option("--max-fill", c.max_fill_qty, "largest single fill (0 = whole orders)");
  app.add_option("--max-order-qty", c.max_order_qty, "larger orders are rejected");
  app.add_option("--throttle-first", c.throttle_first,
                 "reject the first N orders as throttled (transient)");
  CLI11_PARSE(app, argc, argv);

  c.session.target_comp_id = targets.front();
  c.more_targets.assign(targets.begin() + 1, targets.end());
  std::string error;
  for (const auto& p : paths) {
    qmtl::fix::ExchangeConfig::Path path;
    if (!parse_path(p, &path, &error)) {
      std::cerr << "qmtl-exchange-sim: " << error << '\n';
      return 2;
    }
    c.paths.push_back(std::move(path));
  }
  for (const auto& spec : csvs) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos) {
      std::cerr << "qmtl-exchange-sim: --csv takes SYMBOL=FILE\n";
      return 2;
    }
    qmtl::fix::ExchangeConfig::Path path{.symbol = spec.substr(0, eq)};
    if (!read_closes(spec.substr(eq + 1), &path.prices, &error)) {
      std::cerr << "qmtl-exchange-sim: " << error << '\n';
      return 2;
    }
    c.paths.push_back(std::move(path));
  }
  if (c.paths.empty()) {
    std::cerr << "qmtl-exchange-sim: give at least one --path or --csv\n";
    return 2;
  }
  if (!password_env.empty()) {
    const char* v = std::getenv(password_env.c_str());
    if (v == nullptr || *v == '\0') {
      std::cerr << "qmtl-exchange-sim: " << password_env << " is not set\n";
      return 2;
    }
    c.session.password = v;
  }
  auto every = qmtl::parse_duration(tick);
  if (!every) {
    std::cerr << "qmtl-exchange-sim: --tick: " << every.error().message << '\n';
    return 2;
  }

  // Signals are taken by sigwait below, so block them before any thread starts.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  auto exchange = qmtl::fix::Exchange::start(c, &error);
  if (!exchange) {
    std::cerr << "qmtl-exchange-sim: " << error << '\n';
    return 3;
  }
  std::cout << fmt::format("qmtl-exchange-sim: listening on port {} as {}", c.session.port,
                           c.session.sender_comp_id)
            << std::endl;
  std::jthread ticker;
  if (every->count() > 0) {
    ticker = std::jthread([&exchange, d = *every](std::stop_token st) {
      while (!st.stop_requested()) {
        std::this_thread::sleep_for(d);
        exchange->advance();
      }
    });
  }
  int sig = 0;
  sigwait(&stop, &sig);
  ticker = {};
  exchange->stop();
  return 0;
}
