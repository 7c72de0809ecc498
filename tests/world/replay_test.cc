// Policy replay over a hand-built world: 30 days of daily evaluations, each
// applied, with a stricter policy version from day 10. The recorded versions
// reproduce every decision; candidates give the differences their gates imply;
// records stamped after the span change nothing. Runs on SQLite and, as
// postgres.*, on PostgreSQL with the same expectations.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "qmtl/store/store.h"
#include "qmtl/world/world_service.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::world {
namespace {

using lifecycle::StrategyEvent;

constexpr int kDays = 30;
const char* kV1 =
    "evaluation: {every: 1d, window: 2w}\n"
    "gates: {promote: 'return >= 0.02', demote: 'return < 0'}\n"
    "score: 'return'\n";
const char* kV2 =
    "evaluation: {every: 1d, window: 2w}\n"
    "gates: {promote: 'return >= 0.03', demote: 'return < 0'}\n"
    "score: 'return'\n";

// Daily growth: "fast" passes either gate within days, "slow" (about 2.1 %
// over two weeks) passes v1's gate only after two weeks, when v2 is in force;
// "flat" never passes.
const std::map<std::string, double> kDrift = {{"fast", 0.004}, {"slow", 0.0015}, {"flat", 0.0002}};

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(*store::open_store(testing::fresh_store_url(dir_, "replay.db")));
    service_ = std::make_unique<WorldService>(*store_, clock_);
    ASSERT_TRUE(service_->create_world({.id = "w"}));
    ASSERT_TRUE(service_->add_policy("w", kV1, "desk"));
    for (const auto& [id, drift] : kDrift) {
      ASSERT_TRUE(service_->submit_strategy({.id = id, .world = "w", .spec = "{}"}));
      ASSERT_TRUE(service_->apply_strategy_event(id, StrategyEvent::kSubmit, "desk", ""));
      ASSERT_TRUE(service_->apply_strategy_event(id, StrategyEvent::kValidationPassed, "v", ""));
      ASSERT_TRUE(service_->record_performance(id, {{{day(0), 100.0}}}, {}));
    }
    for (int d = 1; d <= kDays; ++d) {
      clock_.set(day(d));
      append(d);
      if (d == 10) {
        ASSERT_TRUE(service_->add_policy("w", kV2, "desk"));
      }
      auto run = service_->evaluate_world("w", "scheduler");
      ASSERT_TRUE(run) << run.error().message;
      runs_.push_back(run->id);
      // The apply comes an hour after the run, as a slower server's would.
      clock_.set(day(d) + std::chrono::hours(1));
      ASSERT_TRUE(service_->apply_run("w", run->id, "scheduler"));
    }
  }
  static TimePoint day(int d) { return t0_ + std::chrono::hours(24 * d); }
  void append(int d, double shock = 0) {
    for (const auto& [id, drift] : kDrift) {
      const double eq = 100 * std::pow(1 + drift, d) * (1 + shock);
      ASSERT_TRUE(service_->record_performance(id, {{{day(d), eq}}}, {}));
    }
  }
  // The run id of each recorded decision of `strategy` that is `decision`.
  std::vector<std::string> runs_deciding(const std::string& strategy, const std::string& decision) {
    std::vector<std::string> out;
    for (const auto& id : runs_) {
      auto run = service_->get_evaluation("w", id);
      EXPECT_TRUE(run);
      for (const auto& row : run->results) {
        if (row.strategy_id == strategy && row.decision == decision) out.push_back(id);
      }
    }
    return out;
  }

  static inline const TimePoint t0_ = *parse_timestamp("2026-03-02T00:00:00Z");
  testing::TempDir dir_;
  FakeClock clock_{t0_};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<WorldService> service_;
  std::vector<std::string> runs_;
};

TEST_F(ReplayTest, TheRecordedVersionsReproduceEveryDecisionAcrossAPolicyChange) {
  auto r = service_->replay("w", {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->candidate);
  EXPECT_EQ(r->runs, static_cast<size_t>(kDays));
  EXPECT_EQ(r->decisions, 3u * kDays);
  for (const auto& d : r->differences) {
    ADD_FAILURE() << d.run << " " << d.strategy << ": " << d.recorded << " -> " << d.replayed
                  << ": " << d.why;
  }
  EXPECT_EQ(r->from, day(1));
  EXPECT_EQ(r->until, day(kDays));
  // v2 kept "slow" out: only "fast" was ever promoted, on both paths.
  EXPECT_EQ(runs_deciding("slow", "PROMOTE").size(), 0u);
  ASSERT_EQ(runs_deciding("fast", "PROMOTE").size(), 1u);
  EXPECT_EQ(r->recorded.promotions, 1u);
  EXPECT_EQ(r->replayed.promotions, 1u);
  EXPECT_EQ(r->replayed.live, r->recorded.live);
  ASSERT_EQ(r->recorded.live.size(), 2u);  // nobody, then fast
  EXPECT_EQ(r->recorded.live[1].live, std::vector<std::string>{"fast"});
  EXPECT_EQ(r->replayed.equity, r->recorded.equity);
  // The book holds fast from its promotion on: it ends above 1, below fast's own growth.
  ASSERT_FALSE(r->recorded.equity.empty());
  EXPECT_GT(r->recorded.equity.back().equity, 1.0);
  EXPECT_LT(r->recorded.equity.back().equity, std::pow(1.004, kDays));
  EXPECT_TRUE(r->recorded.kpis.at("return").has_value());
}

TEST_F(ReplayTest, TheFirstPolicyThroughoutWouldHavePromotedSlowWhichProvesTheVersionsAreHonoured) {
  auto r = service_->replay("w", {.policy = kV1});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->candidate);
  // The only differences: slow promoted under v1 where v2 held it.
  ASSERT_EQ(r->differences.size(), 1u);
  const auto& d = r->differences[0];
  EXPECT_EQ(d.strategy, "slow");
  EXPECT_EQ(d.recorded, "HOLD");
  EXPECT_EQ(d.replayed, "PROMOTE");
  EXPECT_GE(d.at, day(14));
  EXPECT_EQ(r->replayed.promotions, 2u);
  EXPECT_EQ(r->replayed.live.back().live, (std::vector<std::string>{"fast", "slow"}));
}

TEST_F(ReplayTest, AStricterPromoteGateKeepsFastOutAndTheBookInCash) {
  // fast earns 1.004^14 - 1 = 5.75 % over every two weeks: short of 6 %.
  const std::string strict =
      "evaluation: {every: 1d, window: 2w}\n"
      "gates: {promote: 'return >= 0.06', demote: 'return < 0'}\n"
      "score: 'return'\n";
  auto r = service_->replay("w", {.policy = strict});
  ASSERT_TRUE(r) << r.error().message;
  const auto promoted = runs_deciding("fast", "PROMOTE");
  ASSERT_EQ(promoted.size(), 1u);
  ASSERT_EQ(r->differences.size(), 1u);
  const auto& d = r->differences[0];
  EXPECT_EQ(d.run, promoted[0]);
  EXPECT_EQ(d.at, day(14));
  EXPECT_EQ(d.strategy, "fast");
  EXPECT_EQ(d.recorded, "PROMOTE");
  EXPECT_EQ(d.replayed, "HOLD");
  EXPECT_NE(d.why.find("promote gate failed: return >= 0.06 (0.05748)"), std::string::npos)
      << d.why;
  EXPECT_EQ(r->replayed.promotions, 0u);
  EXPECT_EQ(r->recorded.promotions, 1u);
  ASSERT_EQ(r->replayed.live.size(), 1u);
  EXPECT_TRUE(r->replayed.live[0].live.empty());
  // Nobody live: the book stays in cash while the recorded one grew.
  for (const auto& p : r->replayed.equity) EXPECT_EQ(p.equity, 1.0);
  EXPECT_GT(r->recorded.equity.back().equity, 1.0);
  ASSERT_TRUE(r->replayed.kpis.at("return").has_value());
  EXPECT_EQ(*r->replayed.kpis.at("return"), 0.0);
}

TEST_F(ReplayTest, RecordsStampedAfterTheSpanLeakIntoNoRun) {
  const ReplayOptions span{.policy = kV1, .until = day(kDays)};
  auto before = service_->replay("w", span);
  ASSERT_TRUE(before) << before.error().message;
  // A crash after the last run: a loss that, read early, would demote everyone.
  for (int d = kDays + 1; d <= kDays + 20; ++d) {
    clock_.set(day(d));
    append(d, -0.5);
  }
  auto after = service_->replay("w", span);
  ASSERT_TRUE(after) << after.error().message;
  ASSERT_EQ(after->differences.size(), before->differences.size());
  for (size_t i = 0; i < after->differences.size(); ++i) {
    EXPECT_EQ(after->differences[i].run, before->differences[i].run);
    EXPECT_EQ(after->differences[i].why, before->differences[i].why);
  }
  EXPECT_EQ(after->replayed.live, before->replayed.live);
  EXPECT_EQ(after->replayed.equity, before->replayed.equity);
  EXPECT_EQ(after->recorded.kpis, before->recorded.kpis);
  EXPECT_EQ(after->decisions, before->decisions);
  // Without `until` the books run on to the newest record, and show the loss.
  auto open = service_->replay("w", {.policy = kV1});
  ASSERT_TRUE(open) << open.error().message;
  EXPECT_EQ(open->replayed.equity.back().ts, day(kDays + 20));
  EXPECT_LT(open->recorded.equity.back().equity, before->recorded.equity.back().equity);
  EXPECT_EQ(open->differences.size(), before->differences.size());
}

TEST_F(ReplayTest, ARecordStoredAfterARunIsNotReadByItsReplay) {
  // Day 31: flat's record for the day arrives two hours after the run, with a
  // gain that passes any gate. The run did not see it; its replay must not.
  clock_.set(day(kDays + 1));
  for (const std::string id : {"fast", "slow"}) {
    const double eq = 100 * std::pow(1 + kDrift.at(id), kDays + 1);
    ASSERT_TRUE(service_->record_performance(id, {{{day(kDays + 1), eq}}}, {}));
  }
  auto run = service_->evaluate_world("w", "scheduler");
  ASSERT_TRUE(run) << run.error().message;
  ASSERT_TRUE(service_->apply_run("w", run->id, "scheduler"));
  clock_.set(day(kDays + 1) + std::chrono::hours(2));
  ASSERT_TRUE(service_->record_performance("flat", {{{day(kDays + 1), 200.0}}}, {}));
  auto r = service_->replay("w", {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->runs, static_cast<size_t>(kDays + 1));
  for (const auto& d : r->differences) {
    ADD_FAILURE() << d.run << " " << d.strategy << ": " << d.recorded << " -> " << d.replayed
                  << ": " << d.why;
  }
  // The next run reads it, and so does its replay.
  clock_.set(day(kDays + 2));
  auto next = service_->evaluate_world("w", "scheduler");
  ASSERT_TRUE(next) << next.error().message;
  bool promoted = false;
  for (const auto& row : next->results)
    promoted |= row.strategy_id == "flat" && row.decision == "PROMOTE";
  EXPECT_TRUE(promoted);
  auto again = service_->replay("w", {});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->differences.empty());
}

TEST_F(ReplayTest, ASpanReplaysOnlyItsRunsStartingFromTheRecordedState) {
  auto r = service_->replay("w", {.policy = kV1, .from = day(20), .until = day(25)});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->runs, 6u);
  EXPECT_EQ(r->from, day(20));
  EXPECT_EQ(r->until, day(25));
  // fast was already Live at day 20 on the record; the replay starts there.
  ASSERT_FALSE(r->replayed.live.empty());
  EXPECT_EQ(r->replayed.live.front().live, std::vector<std::string>{"fast"});
  EXPECT_EQ(r->replayed.equity.front().ts, day(20));
}

TEST_F(ReplayTest, BadRequestsAreRefusedAndChangeNothing) {
  auto audit = service_->list_audit("w", 0, 100000);
  ASSERT_TRUE(audit);
  auto missing = service_->replay("nope", {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto bad = service_->replay("w", {.policy = "gates: {promote: 'return >>= 1'}\n"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  auto backwards = service_->replay("w", {.from = day(5), .until = day(4)});
  ASSERT_FALSE(backwards);
  EXPECT_EQ(backwards.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(service_->list_audit("w", 0, 100000)->size(), audit->size());
}

}  // namespace
}  // namespace qmtl::world
