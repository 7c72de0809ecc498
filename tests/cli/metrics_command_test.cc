// `qmtl metrics` through the real binary: output shape, JSON fields, exit codes.
#include <gtest/gtest.h>

#include "qmtl/core/json.h"
#include "tests/support/cli_fixture.h"

namespace qmtl {
namespace {

class MetricsCommandTest : public testing::CliTest {};

// The hand-computed series of tests/metrics/kpi_test.cc.
constexpr const char* kEquity =
    "timestamp,equity\n"
    "2024-01-01T00:00:00Z,100\n2024-01-02T00:00:00Z,110\n2024-01-03T00:00:00Z,99\n"
    "2024-01-04T00:00:00Z,108.9\n2024-01-05T00:00:00Z,119.79\n";

TEST_F(MetricsCommandTest, TablePrintsEveryMetric) {
  auto r = qmtl({"metrics", write("a.csv", kEquity), "--window", "2d"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* line :
       {"METRIC            ALL", "LAST 2d", "return            0.1979", "sharpe            7.9373",
        "max_drawdown      0.1000", "time_under_water  3.00 d", "worst_loss(1d)    -0.1000",
        "trades            n/a (no fills reported)"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  }
}

TEST_F(MetricsCommandTest, JsonHasValuesNullsAndReasons) {
  auto r = qmtl({"metrics", write("a.csv", kEquity), "--window", "2d", "--output", "json",
                 "--worst-loss", "1d,1h"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = json::parse(r.out);
  ASSERT_TRUE(doc) << r.out;
  const auto& f = doc->at("files").at(0);
  EXPECT_EQ(f.at("kind").as_string(), "equity");
  EXPECT_EQ(f.at("first").as_string(), "2024-01-01T00:00:00Z");
  EXPECT_NEAR(f.at("all").at("sharpe").as_double(), 0.5 * std::sqrt(252.0), 1e-9);
  EXPECT_NEAR(f.at("all").at("worst_loss(1d)").as_double(), -0.1, 1e-12);
  EXPECT_TRUE(f.at("all").at("worst_loss(1h)").is_null());
  EXPECT_TRUE(f.at("missing").at("all").at("worst_loss(1h)").is_string());
  EXPECT_TRUE(f.at("last_window").at("sharpe").is_null());
  EXPECT_EQ(f.at("missing").at("last_window").at("sharpe").as_string(), "returns do not vary");
  EXPECT_FALSE(doc->as_object().contains("correlation"));
}

// One row of equity is a start without returns; one row of returns is one
// period: both name their row's time as first and last.
TEST_F(MetricsCommandTest, OneRowStillNamesItsTime) {
  for (const char* text : {"date,equity\n2024-03-01,100\n", "date,return\n2024-03-01,0.01\n"}) {
    auto r = qmtl({"metrics", write("one.csv", text), "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto doc = json::parse(r.out);
    ASSERT_TRUE(doc) << r.out;
    const auto& f = doc->at("files").at(0);
    EXPECT_EQ(f.at("first").as_string(), "2024-03-01T00:00:00Z") << text;
    EXPECT_EQ(f.at("last").as_string(), "2024-03-01T00:00:00Z") << text;
  }
  // A pnl file's first is its first row, not the start of its first period.
  auto r = qmtl({"metrics", write("pnl.csv", "date,pnl\n2024-03-01,5\n2024-03-04,-2\n"),
                 "--initial-equity", "100", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)->at("files").at(0).at("first").as_string(), "2024-03-01T00:00:00Z");
}

TEST_F(MetricsCommandTest, SeveralFilesGiveACorrelationMatrix) {
  auto a = write("a.csv", "date,return\n2024-01-01,0.01\n2024-01-02,0.02\n2024-01-03,0.03\n");
  auto b = write("b.csv", "date,return\n2024-01-01,0.01\n2024-01-02,0.03\n2024-01-03,0.02\n");
  auto r = qmtl({"metrics", a, b, "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = json::parse(r.out);
  const auto& c = doc->at("correlation");
  EXPECT_NEAR(c.at(0).at(1).as_double(), 0.5, 1e-12);  // hand-computed in correlation_test
  EXPECT_NEAR(c.at(1).at(1).as_double(), 1.0, 1e-12);
  auto table = qmtl({"metrics", a, b});
  EXPECT_NE(table.out.find("CORRELATION  a.csv   b.csv"), std::string::npos) << table.out;
}

TEST_F(MetricsCommandTest, BadInputExitsNonZeroWithOneLine) {
  auto unsorted =
      qmtl({"metrics", write("u.csv", "timestamp,equity\n2024-01-02,1\n2024-01-01,2\n")});
  EXPECT_EQ(unsorted.exit_code, 2);
  EXPECT_NE(unsorted.err.find("u.csv:3: timestamp 2024-01-01 is earlier"), std::string::npos)
      << unsorted.err;
  auto pnl = qmtl({"metrics", write("p.csv", "timestamp,pnl\n2024-01-01,5\n")});
  EXPECT_EQ(pnl.exit_code, 2);
  EXPECT_NE(pnl.err.find("--initial-equity"), std::string::npos);
  auto ok_pnl = qmtl({"metrics", dir_.file("p.csv"), "--initial-equity", "100"});
  EXPECT_EQ(ok_pnl.exit_code, 0) << ok_pnl.err;
  auto months = qmtl({"metrics", write("a.csv", kEquity), "--window", "6mo"});
  EXPECT_EQ(months.exit_code, 2);
  EXPECT_NE(months.err.find("use days instead, e.g. 180d"), std::string::npos) << months.err;
  auto missing = qmtl({"metrics", dir_.file("absent.csv")});
  EXPECT_EQ(missing.exit_code, 2);
  for (const auto* r : {&unsorted, &pnl, &months, &missing}) {
    EXPECT_EQ(std::count(r->err.begin(), r->err.end(), '\n'), 1) << r->err;
    EXPECT_EQ(r->out, "");
  }
}

}  // namespace
}  // namespace qmtl
