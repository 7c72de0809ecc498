// Every indicator of the declarative language against an independent
// reference: R's TTR (Debian's r-cran-ttr, installed by scripts/setup.sh) on
// the repository's ttrc bars. tests/sdk/ttr/reference.R writes TTR's values;
// this test builds the same indicators as one strategy, feeds it the same bars
// and compares bar by bar: the same bars have a value (warm-up and undefined
// values agree), and the values agree within 1e-9 relative (a z-score near 0
// within 1e-9 of a deviation). It prints the worst difference per indicator.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "qmtl/core/json.h"
#include "qmtl/sdk/feed.h"
#include "qmtl/sdk/runner.h"
#include "qmtl/sdk/spec.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace qmtl::sdk {
namespace {

// The strategy: one node per column of reference.R's output, named alike.
constexpr const char* kNodes = R"({
  "returns": {"indicator": "returns", "input": "close"},
  "sma": {"indicator": "sma", "input": "close", "n": 20},
  "ema": {"indicator": "ema", "input": "close", "n": 20},
  "rsi": {"indicator": "rsi", "input": "close", "n": 14},
  "rolling_std": {"indicator": "rolling_std", "input": "close", "n": 20},
  "zscore": {"indicator": "zscore", "input": "close", "n": 20},
  "rolling_max": {"indicator": "rolling_max", "input": "close", "n": 20},
  "rolling_min": {"indicator": "rolling_min", "input": "close", "n": 20},
  "roc": {"indicator": "roc", "input": "close", "n": 10},
  "roc_log": {"indicator": "roc", "input": "close", "n": 10, "log": true},
  "bb_upper": {"indicator": "bollinger", "input": "close", "n": 20, "output": "upper"},
  "bb_middle": {"indicator": "bollinger", "input": "close", "n": 20, "output": "middle"},
  "bb_lower": {"indicator": "bollinger", "input": "close", "n": 20, "output": "lower"},
  "bb_pct_b": {"indicator": "bollinger", "input": "close", "n": 20, "output": "pct_b"},
  "bb_sample_upper": {"indicator": "bollinger", "input": "close", "n": 20, "sample": true,
                      "output": "upper"},
  "atr": {"indicator": "atr", "inputs": ["high", "low", "close"], "n": 14},
  "macd": {"indicator": "macd", "input": "close", "output": "macd"},
  "macd_signal": {"indicator": "macd", "input": "close", "output": "signal"},
  "macd_histogram": {"indicator": "macd", "input": "close", "output": "histogram"},
  "macd_percent": {"indicator": "macd", "input": "close", "percent": true, "output": "macd"},
  "stoch_k": {"indicator": "stochastic", "inputs": ["high", "low", "close"], "n": 14,
              "output": "k"},
  "stoch_d": {"indicator": "stochastic", "inputs": ["high", "low", "close"], "n": 14,
              "signal": 3, "output": "d"},
  "donchian_upper": {"indicator": "donchian", "inputs": ["high", "low"], "n": 20,
                     "output": "upper"},
  "donchian_middle": {"indicator": "donchian", "inputs": ["high", "low"], "n": 20,
                      "output": "middle"},
  "donchian_lower": {"indicator": "donchian", "inputs": ["high", "low"], "n": 20,
                     "output": "lower"},
  "vwap": {"indicator": "vwap", "inputs": ["close", "volume"], "n": 20}
})";

std::optional<std::string> rscript() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const auto candidate = std::filesystem::path(dir) / "Rscript";
    if (std::filesystem::exists(candidate)) return candidate.string();
  }
  return std::nullopt;
}

// reference.R's output: column name -> one optional value per bar.
using Columns = std::map<std::string, std::vector<std::optional<double>>>;

Columns read_reference(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  std::vector<std::string> names;
  std::istringstream header(line);
  for (std::string name; std::getline(header, name, ',');) names.push_back(name);
  Columns out;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    size_t from = 0;
    for (size_t comma; (comma = line.find(',', from)) != std::string::npos; from = comma + 1) {
      cells.push_back(line.substr(from, comma - from));
    }
    cells.push_back(line.substr(from));
    for (size_t i = 0; i < names.size(); ++i) {
      out[names[i]].push_back(i < cells.size() && !cells[i].empty()
                                  ? std::optional<double>(std::stod(cells[i]))
                                  : std::nullopt);
    }
  }
  return out;
}

TEST(TtrReference, EveryIndicatorAgreesWithTtrOnTheRepositorysBars) {
  const auto r = rscript();
  if (!r) GTEST_SKIP() << "Rscript is not installed (scripts/setup.sh installs r-cran-ttr)";
  const std::string data = QMTL_SOURCE_DIR "/examples/data/ttrc_ohlcv.csv";
  testing::TempDir dir;
  const auto ran = testing::run_process(
      {*r, QMTL_SOURCE_DIR "/tests/sdk/ttr/reference.R", data, dir.file("ttr.csv")}, {},
      std::chrono::seconds(120));
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  const Columns want = read_reference(dir.file("ttr.csv"));

  auto file = read_bars_csv(data, "TTRC");
  ASSERT_TRUE(file) << file.error().message;
  const auto& bars = file->bars;
  const std::string spec = std::string(R"({"inputs": {"high": {"interval": "1d"},
      "low": {"interval": "1d"}, "close": {"interval": "1d"}, "volume": {"interval": "1d"}},
      "orders": {"signal": "sma", "symbol": "TTRC", "weight": 1}, "nodes": )") +
                           kNodes + "}";
  auto strategy = parse_strategy(*json::parse(spec));
  ASSERT_TRUE(strategy) << strategy.error().message;
  std::map<TimePoint, size_t> row;
  for (size_t i = 0; i < bars.size(); ++i) row[bars[i].ts] = i;
  Columns got;
  for (const auto& [name, values] : want) got[name].assign(bars.size(), std::nullopt);
  strategy->dag.on_output([&](std::string_view node, TimePoint ts, double v) {
    auto it = got.find(std::string(node));
    if (it != got.end()) it->second[row.at(ts)] = v;
  });
  const BarInputs inputs(strategy->dag);
  for (const auto& bar : bars) ASSERT_TRUE(inputs.push(strategy->dag, bar));
  ASSERT_FALSE(strategy->dag.failure());

  ASSERT_EQ(want.size(), 26u) << "a column of reference.R without a node here, or the reverse";
  for (const auto& [name, ref] : want) {
    ASSERT_EQ(ref.size(), bars.size()) << name;
    const auto& ours = got.at(name);
    size_t compared = 0;
    double worst = 0;
    for (size_t i = 0; i < bars.size(); ++i) {
      ASSERT_EQ(ours[i].has_value(), ref[i].has_value())
          << name << " at row " << i + 2 << " (" << format_timestamp(bars[i].ts) << "): ours "
          << (ours[i] ? std::to_string(*ours[i]) : "missing") << ", TTR "
          << (ref[i] ? std::to_string(*ref[i]) : "NA");
      if (!ref[i]) continue;
      // A z-score is in deviations: where the close equals the window's mean
      // it is 0 in exact arithmetic, and both sides hold rounding noise
      // (1e-14) whose ratio means nothing. It is compared relative to one
      // deviation there; every other value relative to itself.
      const double floor = name == "zscore" ? 1.0 : 1e-300;
      const double scale = std::max(std::fabs(*ref[i]), floor);
      const double rel = std::fabs(*ours[i] - *ref[i]) / scale;
      worst = std::max(worst, rel);
      EXPECT_LE(rel, 1e-9) << name << " at row " << i + 2 << ": ours " << *ours[i] << ", TTR "
                           << *ref[i];
      ++compared;
    }
    EXPECT_GT(compared, bars.size() - 40) << name;
    RecordProperty(name + "_worst_relative_error", std::to_string(worst));
    std::printf("%-16s %5zu values, worst relative difference %.3g\n", name.c_str(), compared,
                worst);
  }
}

}  // namespace
}  // namespace qmtl::sdk
