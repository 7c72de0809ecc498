// WorldService over a real SQLite file: world states enforced, strategy events
// through the lifecycle table, policy versions, the audit trail, and refused
// operations leaving the database logically identical.
#include <gtest/gtest.h>

#include "qmtl/store/sql_store.h"
#include "qmtl/store/sqlite_db.h"
#include "qmtl/world/world_service.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::world {
namespace {

using lifecycle::StrategyEvent;
using lifecycle::StrategyState;
using lifecycle::WorldState;

constexpr const char* kPolicy =
    "gates: {promote: 'sharpe >= 1.5', demote: 'sharpe < 1'}\ntop_k: {k: 2}\n";

class WorldLifecycleTest : public ::testing::Test {
 protected:
  WorldLifecycleTest()
      : store_(std::move(*store::open_store(url_))),
        clock_(*parse_timestamp("2026-01-05T10:00:00Z")),
        service_(*store_, clock_) {
    EXPECT_TRUE(service_.create_world({.id = "desk", .actor = "alice"}));
  }

  // Every row of every table, in a fixed order: the database's logical content.
  std::string dump() {
    auto db = store::open_sql_db(url_);
    EXPECT_TRUE(db);
    std::string out;
    for (const char* table : {"worlds", "audit_log", "policy_versions", "strategies",
                              "strategy_state_history", "schema_migrations"}) {
      auto st = (*db)->prepare(std::string("SELECT * FROM ") + table + " ORDER BY 1, 2");
      EXPECT_TRUE(st);
      out += std::string("[") + table + "]\n";
      while (*st->step()) {
        for (int c = 0; c < 12; ++c) out += st->column_text(c) + "|";
        out += "\n";
      }
    }
    return out;
  }

  Strategy submit(const std::string& id) {
    auto s = service_.submit_strategy(
        {.id = id, .world = "desk", .spec = R"({"nodes": []})", .actor = "bob"});
    EXPECT_TRUE(s) << s.error().message;
    return *s;
  }
  void to_state(const std::string& id, std::vector<StrategyEvent> events) {
    for (auto e : events) {
      auto r = service_.apply_strategy_event(id, e, "scheduler", "test");
      ASSERT_TRUE(r) << r.error().message;
    }
  }

  testing::TempDir dir_;
  const std::string url_ = testing::fresh_store_url(dir_, "w.db");
  std::unique_ptr<store::Store> store_;
  FakeClock clock_;
  WorldService service_;
};

TEST_F(WorldLifecycleTest, StrategyWalksTheLifecycleWithHistoryAndAudit) {
  submit("mom");
  clock_.advance(std::chrono::hours(1));
  to_state("mom",
           {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed, StrategyEvent::kPromote});
  auto s = service_.get_strategy("mom");
  EXPECT_EQ(s->state, StrategyState::kLive);
  EXPECT_EQ(format_timestamp(s->state_since), "2026-01-05T11:00:00Z");
  EXPECT_EQ(s->spec, R"({"nodes":[]})");
  auto audit = service_.list_audit("desk");
  ASSERT_TRUE(audit);
  // CREATE world, SUBMIT, SUBMIT (to Validating), VALIDATION_PASSED, and the
  // manual promotion's two-phase apply: APPLY_FREEZE, PROMOTE, APPLY_SWITCH, APPLY_DONE.
  std::vector<std::string> events;
  for (const auto& a : *audit) events.push_back(a.event);
  ASSERT_EQ(events,
            (std::vector<std::string>{"CREATE", "SUBMIT", "SUBMIT", "VALIDATION_PASSED",
                                      "APPLY_FREEZE", "PROMOTE", "APPLY_SWITCH", "APPLY_DONE"}));
  EXPECT_EQ((*audit)[0].actor, "alice");
  EXPECT_EQ((*audit)[5].before, "DryRun");
  EXPECT_EQ((*audit)[5].after, "Live");
  EXPECT_EQ((*audit)[5].actor, "scheduler");
  EXPECT_EQ((*audit)[5].run_id, "desk-m1");  // the manual change's journal entry
  for (size_t i = 1; i < audit->size(); ++i) EXPECT_GT((*audit)[i].seq, (*audit)[i - 1].seq);
  // Paging by sequence number.
  EXPECT_EQ(service_.list_audit("desk", (*audit)[2].seq, 10)->size(), 5u);
  EXPECT_EQ(service_.list_audit("desk", (*audit)[2].seq, 2)->size(), 2u);
}

// A demotion that no runner has handed over is pending until a HANDOVER of
// a demotion is recorded after it; a promotion never is (docs/brokers.md).
TEST_F(WorldLifecycleTest, ADemotionIsPendingUntilItsHandOverIsRecorded) {
  submit("mom");
  auto pending = [&] {
    auto p = service_.pending_handover("mom");
    EXPECT_TRUE(p) << p.error().message;
    return p ? *p : std::nullopt;
  };
  EXPECT_FALSE(pending());  // never moved
  to_state("mom",
           {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed, StrategyEvent::kPromote});
  EXPECT_FALSE(pending());  // a promotion is not owed
  clock_.advance(std::chrono::hours(1));
  to_state("mom", {StrategyEvent::kDemote});
  auto p = pending();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->event, "DEMOTE");
  EXPECT_EQ(format_timestamp(p->at), "2026-01-05T11:00:00Z");
  EXPECT_TRUE(p->run_id);  // the manual change's journal entry
  // A hand-over of the promotion does not settle the demotion.
  ASSERT_TRUE(service_.record_handover("mom", {.event = "PROMOTE", .policy = "flat"}, "runner"));
  EXPECT_TRUE(pending());
  ASSERT_TRUE(service_.record_handover("mom", {.event = "DEMOTE", .policy = "flatten"}, "runner"));
  EXPECT_FALSE(pending());
  // Promoted and demoted again: owed again.
  to_state("mom", {StrategyEvent::kPromote, StrategyEvent::kDemote});
  EXPECT_TRUE(pending());
  EXPECT_EQ(service_.pending_handover("nobody").error().code, ErrorCode::kNotFound);
}

TEST_F(WorldLifecycleTest, IllegalEventNamesStateAndEvent) {
  submit("mom");
  auto r = service_.apply_strategy_event("mom", StrategyEvent::kPromote, "op", "");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(r.error().message,
            "strategy 'mom' is Submitted: only a DryRun strategy can be promoted");
  auto back = service_.apply_strategy_event("mom", StrategyEvent::kReactivate, "op", "");
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().message,
            "strategy 'mom': strategy event REACTIVATE is not allowed in state Submitted");
}

TEST_F(WorldLifecycleTest, EvalOnlyRefusesPromotionOnly) {
  submit("mom");
  to_state("mom", {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed});
  ASSERT_TRUE(service_.set_world_state("desk", WorldState::kEvalOnly, "op", "audit week"));
  const std::string before = dump();
  auto r = service_.apply_strategy_event("mom", StrategyEvent::kPromote, "op", "");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("EvalOnly: nothing is promoted"), std::string::npos);
  EXPECT_EQ(dump(), before);
  to_state("mom", {StrategyEvent::kDeactivate});  // other transitions continue
}

TEST_F(WorldLifecycleTest, PausedRefusesEveryTransitionUntilResumed) {
  submit("mom");
  ASSERT_TRUE(service_.set_world_state("desk", WorldState::kPaused, "op", "incident 42"));
  const std::string before = dump();
  for (auto e : {StrategyEvent::kSubmit, StrategyEvent::kArchive, StrategyEvent::kError}) {
    auto r = service_.apply_strategy_event("mom", e, "op", "");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
    EXPECT_NE(r.error().message.find("is Paused"), std::string::npos);
  }
  EXPECT_EQ(dump(), before);
  ASSERT_TRUE(service_.set_world_state("desk", WorldState::kActive, "op", "resolved"));
  to_state("mom", {StrategyEvent::kSubmit});
}

TEST_F(WorldLifecycleTest, RetiringArchivesEveryStrategyAndFreezesTheWorld) {
  submit("a");
  submit("b");
  to_state("b",
           {StrategyEvent::kSubmit, StrategyEvent::kValidationPassed, StrategyEvent::kPromote});
  clock_.advance(std::chrono::hours(2));
  auto w = service_.set_world_state("desk", WorldState::kRetired, "carol", "desk closed");
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(w->state, WorldState::kRetired);
  const auto strategies = service_.list_strategies("desk");
  ASSERT_TRUE(strategies);
  for (const auto& s : *strategies) {
    EXPECT_EQ(s.state, StrategyState::kArchived) << s.id;
    EXPECT_EQ(format_timestamp(s.state_since), "2026-01-05T12:00:00Z");
  }
  auto audit = *service_.list_audit("desk");
  const auto& last = audit.back();
  EXPECT_EQ(last.event, "ARCHIVE");
  EXPECT_EQ(last.reason, "desk closed");
  EXPECT_EQ(audit[audit.size() - 3].event, "RETIRE");
  // Read-only from now on, and nothing changes when refused.
  const std::string before = dump();
  EXPECT_EQ(service_.set_world_state("desk", WorldState::kActive, "op", "").error().code,
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(service_.add_policy("desk", kPolicy, "op").error().code,
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(service_.submit_strategy({.id = "c", .world = "desk", .spec = "{}"}).error().code,
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(service_.apply_strategy_event("a", StrategyEvent::kArchive, "op", "").error().code,
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(dump(), before);
}

TEST_F(WorldLifecycleTest, SameStateIsRefused) {
  auto r = service_.set_world_state("desk", WorldState::kActive, "op", "");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "world 'desk' cannot go from Active to Active: world event ACTIVATE is not allowed in "
            "state Active");
}

TEST_F(WorldLifecycleTest, PolicyVersionsAreImmutableWithRollback) {
  auto v1 = service_.add_policy("desk", kPolicy, "alice");
  ASSERT_TRUE(v1) << v1.error().message;
  EXPECT_EQ(v1->version, 1);
  EXPECT_EQ(v1->checksum.size(), 64u);
  auto v2 = service_.add_policy("desk", "gates: {promote: 'sharpe >= 2'}", "alice");
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(*service_.get_world("desk")->policy_version, 2);
  EXPECT_EQ(service_.get_policy("desk", std::nullopt)->version, 2);
  auto back = service_.set_current_policy("desk", 1, "alice", "v2 too strict");
  ASSERT_TRUE(back);
  EXPECT_EQ(*back->policy_version, 1);
  EXPECT_EQ(service_.get_policy("desk", std::nullopt)->document, kPolicy);
  EXPECT_EQ(service_.list_policies("desk")->size(), 2u);  // rollback adds no version
  // The same canonical policy has the same checksum however it is written.
  auto v3 = service_.add_policy("desk",
                                "{\"top_k\": {\"k\": 2}, \"gates\": {\"demote\": \"sharpe < 1\", "
                                "\"promote\": \"sharpe >= 1.5\"}}",
                                "alice");
  ASSERT_TRUE(v3) << v3.error().message;
  EXPECT_EQ(v3->checksum, v1->checksum);
  // The database itself refuses edits of a stored version.
  auto db = store::open_sql_db(url_);
  ASSERT_TRUE(db);
  EXPECT_FALSE((*db)->exec("UPDATE policy_versions SET document = 'x' WHERE version = 1"));
  EXPECT_FALSE((*db)->exec("DELETE FROM audit_log"));
  auto events = *service_.list_audit("desk");
  EXPECT_EQ(events[1].event, "POLICY_ADD");
  EXPECT_EQ(events[3].event, "POLICY_CURRENT");
  EXPECT_EQ(events[3].before, "2");
  EXPECT_EQ(events[3].after, "1");
  EXPECT_EQ(events[3].reason, "v2 too strict");
}

TEST_F(WorldLifecycleTest, RefusedInputChangesNothing) {
  submit("mom");
  ASSERT_TRUE(service_.add_policy("desk", kPolicy, "alice"));
  const std::string before = dump();
  auto bad_policy = service_.add_policy("desk", "gates: {promote: 'sharp > 1'}", "alice");
  ASSERT_FALSE(bad_policy);
  EXPECT_NE(bad_policy.error().message.find("policy:1:19: gates.promote: unknown metric 'sharp'"),
            std::string::npos)
      << bad_policy.error().message;
  EXPECT_EQ(service_.set_current_policy("desk", 9, "alice", "").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(service_.set_current_policy("desk", 0, "alice", "").error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(service_.submit_strategy({.id = "mom", .world = "desk", .spec = "{}"}).error().code,
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(service_.submit_strategy({.id = "x", .world = "nowhere", .spec = "{}"}).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(service_.submit_strategy({.id = "x", .world = "desk", .spec = "[1]"}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(service_.submit_strategy({.id = "x", .world = "desk", .spec = "{"}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(service_.submit_strategy({.id = "Bad", .world = "desk", .spec = "{}"}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(service_.apply_strategy_event("mom", StrategyEvent::kDemote, "op", "").error().code,
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(
      service_.apply_strategy_event("mom", StrategyEvent::kSubmit, "op", "two\nlines").error().code,
      ErrorCode::kInvalidArgument);
  EXPECT_EQ(service_.apply_strategy_event("ghost", StrategyEvent::kSubmit, "op", "").error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(service_.set_world_state("desk", WorldState::kPaused, "", "").error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(service_.create_world({.id = "desk"}).error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(dump(), before);
}

TEST_F(WorldLifecycleTest, ConcurrentChangeIsDetectedByTheStore) {
  submit("mom");
  // Another writer moved the strategy after we read it: the store refuses.
  auto r = store_->transition_strategy("mom", StrategyState::kValidating, StrategyState::kDryRun,
                                       clock_.now(), {.world_id = "desk", .event = "X"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message.find("no longer Validating"), std::string::npos);
  auto w = store_->set_world_state("desk", WorldState::kPaused, WorldState::kActive, clock_.now(),
                                   {.world_id = "desk", .event = "X"}, false);
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message.find("changed concurrently"), std::string::npos);
}

TEST(SqliteMigrations, AVersionOneDatabaseIsUpgradedKeepingItsWorlds) {
  testing::TempDir dir;
  {
    auto db = store::SqliteDb::open(dir.file("old.db"));
    ASSERT_TRUE((*db)->exec(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
        "applied_at_us INTEGER NOT NULL) STRICT;"
        "INSERT INTO schema_migrations VALUES (1, 'worlds', 0);"
        "CREATE TABLE worlds (id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL CHECK "
        "(state IN "
        "('Active', 'EvalOnly', 'Paused', 'Retired')), policy_version INTEGER, created_at_us "
        "INTEGER NOT NULL, "
        "updated_at_us INTEGER NOT NULL) STRICT;"
        "INSERT INTO worlds VALUES ('legacy', 'Legacy', 'Active', NULL, 1, 1);"));
  }
  auto store = store::open_store("sqlite:" + dir.file("old.db"));
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_EQ(*(*store)->schema_version(), static_cast<int>(store::sqlite_migrations().size()));
  EXPECT_EQ((*store)->get_world("legacy")->name, "Legacy");
  FakeClock clock(TimePoint{});
  WorldService s(**store, clock);
  EXPECT_TRUE(s.submit_strategy({.id = "x", .world = "legacy", .spec = "{}"}));
}

}  // namespace
}  // namespace qmtl::world
