// The store's own rules, on whichever backend the run uses (SQLite, or
// PostgreSQL in the postgres.* run; tests/support/test_store.h).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "qmtl/store/sql_store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_store.h"

namespace qmtl::store {
namespace {

World make_world(const std::string& id, int64_t t_us = 1'700'000'000'000'000) {
  const TimePoint t{Duration(t_us)};
  return World{.id = id, .name = "World " + id, .created_at = t, .updated_at = t};
}

AuditRecord audit_of(const World& w, std::string event = "CREATE") {
  return AuditRecord{.at = w.created_at,
                     .actor = "test",
                     .world_id = w.id,
                     .entity = "world",
                     .entity_id = w.id,
                     .event = std::move(event)};
}

class StoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> open() {
    auto s = open_store(url_);
    EXPECT_TRUE(s) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
  std::unique_ptr<SqlDb> raw() {
    auto db = open_sql_db(url_);
    EXPECT_TRUE(db) << db.error().message;
    return db ? std::move(*db) : nullptr;
  }
  // A store with world "w" and its strategy "s", submitted at t0_.
  std::unique_ptr<Store> open_with_strategy() {
    auto s = open();
    if (!s || !s->insert_world(make_world("w"), audit_of(make_world("w"))) ||
        !s->insert_strategy(
            Strategy{
                .id = "s", .world_id = "w", .state_since = t0_, .spec = "{}", .created_at = t0_},
            audit_of(make_world("w"), "SUBMIT"))) {
      ADD_FAILURE() << "cannot set up world w with strategy s";
      return nullptr;
    }
    return s;
  }
  size_t migrations() const {
    return testing::on_postgres() ? postgres_migrations().size() : sqlite_migrations().size();
  }
  testing::TempDir dir_;
  const std::string url_ = testing::fresh_store_url(dir_, "qmtl.db");
  const TimePoint t0_{Duration(1'700'000'000'000'000)};
};

TEST_F(StoreTest, MigratesAFreshDatabaseToTheLatestVersion) {
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(*s->schema_version(), static_cast<int>(migrations()));
  EXPECT_EQ(s->describe().starts_with(testing::on_postgres() ? "postgres://" : "sqlite:"), true);
}

TEST_F(StoreTest, WorldsSurviveReopening) {
  {
    auto s = open();
    ASSERT_TRUE(s->insert_world(make_world("beta"), audit_of(make_world("beta"))));
    ASSERT_TRUE(s->insert_world(make_world("alpha"), audit_of(make_world("alpha"))));
  }
  auto s = open();  // migrations run again and find nothing to do
  auto all = s->list_worlds();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0], make_world("alpha"));  // ordered by id, every field intact
  EXPECT_EQ((*all)[1].id, "beta");
  EXPECT_EQ(*s->get_world("beta"), make_world("beta"));
  EXPECT_EQ(*s->schema_version(), static_cast<int>(migrations()));
}

TEST_F(StoreTest, DuplicateWorldIsRefusedAndChangesNothing) {
  auto s = open();
  ASSERT_TRUE(s->insert_world(make_world("alpha", 1), audit_of(make_world("alpha", 1))));
  World again = make_world("alpha", 2);
  again.name = "different";
  auto r = s->insert_world(again, audit_of(again));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kAlreadyExists);
  EXPECT_NE(r.error().message.find("world 'alpha' already exists"), std::string::npos);
  EXPECT_EQ(*s->get_world("alpha"), make_world("alpha", 1));
  EXPECT_EQ(s->list_worlds()->size(), 1u);
  EXPECT_EQ(s->list_audit("alpha", 0, 10)->size(), 1u);  // the refused insert left no record
  // The store goes on working after the failed transaction.
  ASSERT_TRUE(s->insert_world(make_world("beta"), audit_of(make_world("beta"))));
}

TEST_F(StoreTest, UnknownWorldIsNotFound) {
  auto s = open();
  auto r = s->get_world("nope");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(s->list_worlds()->empty());
}

TEST_F(StoreTest, TimestampsAndOptionalFieldsRoundTripExactly) {
  auto s = open();
  World w = make_world("p", 1'234'567'890'123'456);  // beyond 32 bits, microsecond precision
  w.policy_version = 7;
  w.state = lifecycle::WorldState::kPaused;
  ASSERT_TRUE(s->insert_world(w, audit_of(w)));
  EXPECT_EQ(*s->get_world("p"), w);
  AuditRecord a = audit_of(w, "NOTE");
  a.before = "it's \"quoted\" ? and ?1 stay text";  // placeholders inside values are data
  a.reason = "über 100% — unicode";
  ASSERT_TRUE(s->insert_audit(a));
  auto log = s->list_audit("p", 0, 10);
  ASSERT_TRUE(log);
  ASSERT_EQ(log->size(), 2u);
  EXPECT_EQ((*log)[1].before, a.before);
  EXPECT_EQ((*log)[1].after, std::nullopt);
  EXPECT_EQ((*log)[1].reason, a.reason);
  EXPECT_LT((*log)[0].seq, (*log)[1].seq);
}

// What load_rollup must give: each hour's count and its first, lowest,
// highest and last point (the earliest on a tie), from the points themselves.
std::vector<RollupBucket> rollup_of(const std::vector<PerformancePoint>& pts) {
  std::vector<RollupBucket> out;
  for (const auto& p : pts) {
    const TimePoint hour = rollup_start(p.ts);
    if (out.empty() || out.back().start != hour) {
      out.push_back({.start = hour, .n = 0, .first = p, .low = p, .high = p, .last = p});
    }
    auto& b = out.back();
    ++b.n;
    if (p.equity < b.low.equity) b.low = p;
    if (p.equity > b.high.equity) b.high = p;
    b.last = p;
  }
  return out;
}

void expect_rollup(Store& s, TimePoint from, TimePoint to) {
  const auto pts = *s.load_points("s", TimePoint::min());
  auto want = rollup_of(pts);
  std::erase_if(want, [&](const RollupBucket& b) { return b.start < from || b.start >= to; });
  auto got = s.load_rollup("s", from, to);
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& g = (*got)[i];
    const auto& w = want[i];
    EXPECT_EQ(g.start, w.start) << i;
    EXPECT_EQ(g.n, w.n) << i;
    EXPECT_EQ(g.first, w.first) << i;
    EXPECT_EQ(g.low, w.low) << i;
    EXPECT_EQ(g.high, w.high) << i;
    EXPECT_EQ(g.last, w.last) << i;
  }
}

TEST_F(StoreTest, HourlyRollupsFollowEveryAppendRepeatsAndConflictsIncluded) {
  auto s = open_with_strategy();
  ASSERT_TRUE(s);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> eq(90, 110);
  std::uniform_int_distribution<int> minute(0, 60 * 30);  // thirty hours
  for (int batch = 0; batch < 12; ++batch) {
    std::vector<PerformancePoint> pts;
    for (int i = 0; i < 40; ++i) {
      pts.push_back({t0_ + std::chrono::minutes(minute(rng)), std::round(eq(rng))});
    }
    std::sort(pts.begin(), pts.end(), [](auto& a, auto& b) { return a.ts < b.ts; });
    ASSERT_TRUE(s->append_performance("s", pts, {}));  // later batches repeat and conflict
    expect_rollup(*s, TimePoint::min(), TimePoint::max());
  }
  // Points years apart in one batch, and before 1970.
  const std::vector<PerformancePoint> far{{t0_ - std::chrono::hours(24 * 365 * 60), 5},
                                          {t0_ + std::chrono::hours(24 * 365 * 3), 7}};
  ASSERT_TRUE(s->append_performance("s", far, {}));
  expect_rollup(*s, TimePoint::min(), TimePoint::max());
  // A window starts at whole hours.
  expect_rollup(*s, t0_ + std::chrono::hours(3), t0_ + std::chrono::hours(9));
  EXPECT_TRUE(s->load_rollup("nope", TimePoint::min(), TimePoint::max())->empty());
  // Hours are whole hours since the epoch, on both sides of it.
  EXPECT_EQ(rollup_start(TimePoint(Duration(-1))), TimePoint(Duration(-3'600'000'000)));
  EXPECT_EQ(rollup_start(TimePoint(Duration(3'600'000'000))), TimePoint(Duration(3'600'000'000)));
  EXPECT_EQ(rollup_start(TimePoint(Duration(7'199'999'999))), TimePoint(Duration(3'600'000'000)));
}

TEST_F(StoreTest, MigrationTenBuildsTheRollupsOfPointsStoredBeforeIt) {
  std::vector<PerformancePoint> pts;
  for (int m = 0; m < 500; ++m) {
    pts.push_back({t0_ + std::chrono::minutes(7 * m), 100.0 + ((m * 37) % 23)});
  }
  pts.push_back({t0_ - std::chrono::hours(24 * 365 * 60), 3});  // before 1970
  {
    auto s = open_with_strategy();
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->append_performance("s", pts, {}));
  }
  {
    // Back to version 9: the points without their rollups or storage times.
    auto db = raw();
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("DROP TABLE performance_rollup"));
    ASSERT_TRUE(db->exec("ALTER TABLE performance_points DROP COLUMN stored_at_us"));
    ASSERT_TRUE(db->exec("ALTER TABLE fills DROP COLUMN stored_at_us"));
    ASSERT_TRUE(db->exec("DELETE FROM schema_migrations WHERE version >= 10"));
  }
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(*s->schema_version(), static_cast<int>(migrations()));
  expect_rollup(*s, TimePoint::min(), TimePoint::max());
  EXPECT_GT(s->load_rollup("s", TimePoint::min(), TimePoint::max())->size(), 50u);
  // Migration 11: points stored before it count as known from their own time.
  auto known = s->load_known_records("s", TimePoint::min(), TimePoint::max());
  ASSERT_TRUE(known);
  ASSERT_EQ(known->points.size(), pts.size());
  for (size_t i = 0; i < known->points.size(); ++i) {
    EXPECT_EQ(known->points_known_at[i], known->points[i].ts);
  }
}

TEST_F(StoreTest, ARecordIsReadAsOfWhenItWasStored) {
  auto s = open_with_strategy();
  ASSERT_TRUE(s);
  const TimePoint t0 = t0_, t1 = t0_ + std::chrono::hours(24), t2 = t0_ + std::chrono::hours(48);
  const FillRecord fill{.ts = t0, .symbol = "X", .side = "buy", .qty = 1, .price = 10};
  // Stamped t0 but stored at t2 (a late runner), then one stored on time.
  ASSERT_TRUE(s->append_performance("s", std::vector<PerformancePoint>{{t0, 100}},
                                    std::vector<FillRecord>{fill}, nullptr, t2));
  ASSERT_TRUE(
      s->append_performance("s", std::vector<PerformancePoint>{{t1, 101}}, {}, nullptr, t1));
  EXPECT_EQ(s->load_points("s", TimePoint::min(), t2, t1)->size(), 1u);  // only t1's
  EXPECT_EQ(s->load_points("s", TimePoint::min(), t2, t1)->front().ts, t1);
  EXPECT_EQ(s->load_points("s", TimePoint::min(), t2, t2)->size(), 2u);
  EXPECT_EQ(s->load_points("s", TimePoint::min())->size(), 2u);
  EXPECT_TRUE(s->load_fills("s", TimePoint::min(), t2, t1)->empty());
  EXPECT_EQ(s->load_fills("s", TimePoint::min(), t2, t2)->size(), 1u);
  auto known = s->load_known_records("s", TimePoint::min(), TimePoint::max());
  ASSERT_TRUE(known);
  EXPECT_EQ(known->points_known_at, (std::vector<TimePoint>{t2, t1}));
  EXPECT_EQ(known->fills, std::vector<FillRecord>{fill});
  EXPECT_EQ(known->fills_known_at, std::vector<TimePoint>{t2});
}

TEST_F(StoreTest, EquityRoundTripsToTheLastBit) {
  auto s = open_with_strategy();
  ASSERT_TRUE(s);
  const TimePoint t0 = t0_;
  const std::vector<PerformancePoint> pts{
      {t0, 0.1 + 0.2}, {t0 + Duration(1), 1e-300}, {t0 + Duration(2), 123456789.123456789}};
  ASSERT_TRUE(s->append_performance("s", pts, {}));
  EXPECT_EQ(*s->load_points("s", TimePoint::min()), pts);
  // A retry of the same points is a repeat, and so is a value that differs in
  // the last bits (a recomputed history); another value at a stored time is a
  // conflict, refused and reported while the rest of its batch is stored.
  auto again = s->append_performance("s", pts, {});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->points_stored, 0u);
  EXPECT_EQ(again->points_repeated, 3u);
  EXPECT_TRUE(again->conflicts.empty());
  const std::vector<PerformancePoint> bits{{t0 + Duration(2), 123456789.12345681}};
  EXPECT_EQ(s->append_performance("s", bits, {})->points_repeated, 1u);
  const std::vector<PerformancePoint> other{{t0 + Duration(3), 7.0}, {t0, 0.31}};
  const store::AuditRecord audit{.at = t0,
                                 .actor = "runner",
                                 .world_id = "w",
                                 .entity = "strategy",
                                 .entity_id = "s",
                                 .event = "PERFORMANCE_CONFLICT"};
  auto r = s->append_performance("s", other, {}, &audit);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->points_stored, 1u);
  ASSERT_EQ(r->conflicts.size(), 1u);
  EXPECT_EQ(r->conflicts[0],
            (store::PointConflict{.ts = t0, .stored = 0.1 + 0.2, .offered = 0.31}));
  EXPECT_EQ(s->load_points("s", TimePoint::min())->size(), 4u);
  EXPECT_EQ(s->load_points("s", TimePoint::min())->front().equity, 0.1 + 0.2);  // not rewritten
  EXPECT_EQ(s->last_point("s")->value(), (PerformancePoint{t0 + Duration(3), 7.0}));
  const auto log = *s->list_audit("w", 0, 100);
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back().event, "PERFORMANCE_CONFLICT");
  EXPECT_NE(log.back().reason.find("1 performance point refused"), std::string::npos)
      << log.back().reason;
  EXPECT_NE(log.back().reason.find("stored 0.30000000000000004, offered 0.31"), std::string::npos)
      << log.back().reason;
}

TEST_F(StoreTest, ABatchKeepsAllButItsConflictsAndFillsKeepEveryCharacter) {
  auto s = open_with_strategy();
  ASSERT_TRUE(s);
  const TimePoint t0 = t0_;
  EXPECT_EQ(*s->last_point("s"), std::nullopt);
  // The same time twice in one batch with two equities: the first stands, the
  // second is the conflict.
  const std::vector<PerformancePoint> torn{{t0, 1.0}, {t0 + Duration(1), 2.0}, {t0, 1.5}};
  auto r = s->append_performance("s", torn, {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->points_stored, 2u);
  ASSERT_EQ(r->conflicts.size(), 1u);
  EXPECT_EQ(r->conflicts[0].offered, 1.5);
  EXPECT_EQ(s->load_points("s", TimePoint::min())->front().equity, 1.0);
  // ... and the same time twice with one equity is a retry within the batch.
  const std::vector<PerformancePoint> twice{{t0 + Duration(7), 1.0}, {t0 + Duration(7), 1.0}};
  auto t = s->append_performance("s", twice, {});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->points_stored, 1u);
  EXPECT_EQ(t->points_repeated, 1u);
  EXPECT_EQ(s->load_points("s", TimePoint::min())->size(), 3u);
  const std::vector<FillRecord> fills{
      {.ts = t0, .symbol = R"(a"b\c,{d} 'e')", .side = "buy", .qty = 0.1, .price = 1e-7, .fee = 0},
      {.ts = t0, .symbol = "NULL", .side = "sell", .qty = 3, .price = 2.5, .fee = 0.01}};
  ASSERT_TRUE(s->append_performance("s", {}, fills));
  EXPECT_EQ(*s->load_fills("s", TimePoint::min()), fills);  // in order, every byte
  // A bad fill fails the batch, points included.
  const std::vector<PerformancePoint> more{{t0 + Duration(5), 3.0}};
  const std::vector<FillRecord> bad{
      {.ts = t0, .symbol = "x", .side = "hold", .qty = 1, .price = 1}};
  EXPECT_FALSE(s->append_performance("s", more, bad));
  EXPECT_EQ(s->load_points("s", TimePoint::min())->size(), 3u);
  EXPECT_EQ(s->load_fills("s", TimePoint::min())->size(), 2u);
}

TEST_F(StoreTest, RefusesADatabaseFromANewerQmtl) {
  { ASSERT_TRUE(open()); }
  {
    auto db = raw();
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("INSERT INTO schema_migrations VALUES (999, 'future', 0)"));
  }
  auto s = open_store(url_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(s.error().message.find("newer than this qmtl"), std::string::npos);
}

TEST_F(StoreTest, SchemaRejectsCorruptStatesEvenBehindTheService) {
  auto s = open();
  auto db = raw();
  ASSERT_TRUE(db);
  EXPECT_FALSE(db->exec("INSERT INTO worlds VALUES ('x', 'x', 'Bogus', NULL, 0, 0)"));
  EXPECT_TRUE(s->list_worlds()->empty());
}

TEST_F(StoreTest, AuditLogAndPolicyVersionsCannotBeRewrittenEvenBehindTheService) {
  auto s = open();
  const World w = make_world("w");
  ASSERT_TRUE(s->insert_world(w, audit_of(w)));
  ASSERT_TRUE(
      s->add_policy_version("w", "doc", "canon", "sum", w.created_at, audit_of(w, "POLICY_ADD")));
  auto db = raw();
  ASSERT_TRUE(db);
  for (const char* sql :
       {"UPDATE audit_log SET reason = 'forged'", "DELETE FROM audit_log",
        "UPDATE policy_versions SET document = 'forged'", "DELETE FROM policy_versions"}) {
    auto r = db->exec(sql);
    ASSERT_FALSE(r) << sql;
    EXPECT_TRUE(r.error().message.find("append-only") != std::string::npos ||
                r.error().message.find("immutable") != std::string::npos)
        << r.error().message;
  }
  if (testing::on_postgres()) {
    EXPECT_FALSE(db->exec("TRUNCATE audit_log"));
  }
  EXPECT_EQ(s->list_audit("w", 0, 10)->size(), 2u);
  EXPECT_EQ(s->get_policy_version("w", 1)->document, "doc");
}

TEST_F(StoreTest, TransactionRollsBackUnlessCommitted) {
  auto db = raw();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t (x BIGINT)"));
  {
    auto tx = Transaction::begin(*db);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES (1)"));
  }
  {
    auto tx = Transaction::begin(*db);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES (2)"));
    ASSERT_TRUE(tx->commit());
  }
  auto st = db->prepare("SELECT x FROM t");
  ASSERT_TRUE(st);
  ASSERT_TRUE(*st->step());
  EXPECT_EQ(st->column_int(0), 2);
  EXPECT_FALSE(*st->step());
}

TEST_F(StoreTest, PreparedStatementsRebindAndCountChanges) {
  auto db = raw();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v DOUBLE PRECISION, n BIGINT)"));
  auto ins = db->prepare("INSERT INTO kv (k, v, n) VALUES (?, ?, ?3)");
  ASSERT_TRUE(ins);
  for (int i = 0; i < 3; ++i) {
    ins->reset();
    ASSERT_TRUE(ins->bind(1, std::string_view("k" + std::to_string(i))));
    ASSERT_TRUE(ins->bind(2, 0.5 * i));
    ASSERT_TRUE(ins->bind(3, int64_t{i}));
    ASSERT_TRUE(ins->run());
    EXPECT_EQ(db->changes(), 1);
  }
  ins->reset();
  ASSERT_TRUE(ins->bind(1, std::string_view("k0")));
  ASSERT_TRUE(ins->bind(2, 1.0));
  ASSERT_TRUE(ins->bind_null(3));
  EXPECT_FALSE(ins->run());
  EXPECT_TRUE(db->last_error_is_unique_violation());
  auto upd = db->prepare("UPDATE kv SET n = NULL WHERE v >= ?");
  ASSERT_TRUE(upd);
  ASSERT_TRUE(upd->bind(1, 0.5));
  ASSERT_TRUE(upd->run());
  EXPECT_EQ(db->changes(), 2);
  EXPECT_FALSE(db->last_error_is_unique_violation());
  auto sel = db->prepare("SELECT k, v, n FROM kv ORDER BY k");
  ASSERT_TRUE(sel);
  ASSERT_TRUE(*sel->step());
  EXPECT_EQ(sel->column_text(0), "k0");
  EXPECT_EQ(sel->column_double(1), 0.0);
  EXPECT_FALSE(sel->column_is_null(2));
  ASSERT_TRUE(*sel->step());
  EXPECT_EQ(sel->column_double(1), 0.5);
  EXPECT_TRUE(sel->column_is_null(2));
}

}  // namespace
}  // namespace qmtl::store
