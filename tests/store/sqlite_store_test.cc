#include "qmtl/store/sqlite_store.h"

#include <gtest/gtest.h>

#include "qmtl/store/sqlite_db.h"
#include "tests/support/temp_dir.h"

namespace qmtl::store {
namespace {

World make_world(const std::string& id, int64_t t_us = 1'700'000'000'000'000) {
  const TimePoint t{Duration(t_us)};
  return World{.id = id, .name = "World " + id, .created_at = t, .updated_at = t};
}

AuditRecord audit_of(const World& w) {
  return AuditRecord{.at = w.created_at,
                     .actor = "test",
                     .world_id = w.id,
                     .entity = "world",
                     .entity_id = w.id,
                     .event = "CREATE"};
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> open() {
    auto s = open_store("sqlite:" + dir_.file("qmtl.db"));
    EXPECT_TRUE(s) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
  testing::TempDir dir_;
};

TEST_F(SqliteStoreTest, MigratesAFreshFileToTheLatestVersion) {
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(*s->schema_version(), static_cast<int>(sqlite_migrations().size()));
  EXPECT_EQ(s->describe(), "sqlite:" + dir_.file("qmtl.db"));
}

TEST_F(SqliteStoreTest, WorldsSurviveReopening) {
  {
    auto s = open();
    ASSERT_TRUE(s->insert_world(make_world("beta"), audit_of(make_world("beta"))));
    ASSERT_TRUE(s->insert_world(make_world("alpha"), audit_of(make_world("alpha"))));
  }
  auto s = open();
  auto all = s->list_worlds();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0], make_world("alpha"));  // ordered by id, every field intact
  EXPECT_EQ((*all)[1].id, "beta");
  EXPECT_EQ(*s->get_world("beta"), make_world("beta"));
  EXPECT_EQ(*s->schema_version(), static_cast<int>(sqlite_migrations().size()));
}

TEST_F(SqliteStoreTest, DuplicateWorldIsRefusedAndChangesNothing) {
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
}

TEST_F(SqliteStoreTest, UnknownWorldIsNotFound) {
  auto s = open();
  auto r = s->get_world("nope");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(s->list_worlds()->empty());
}

TEST_F(SqliteStoreTest, PolicyVersionNullAndSetRoundTrip) {
  auto s = open();
  World w = make_world("p");
  w.policy_version = 7;
  w.state = lifecycle::WorldState::kPaused;
  ASSERT_TRUE(s->insert_world(w, audit_of(w)));
  EXPECT_EQ(*s->get_world("p"), w);
}

TEST_F(SqliteStoreTest, RefusesADatabaseFromANewerQmtl) {
  { ASSERT_TRUE(open()); }
  {
    auto db = SqliteDb::open(dir_.file("qmtl.db"));
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("INSERT INTO schema_migrations VALUES (999, 'future', 0)"));
  }
  auto s = open_store("sqlite:" + dir_.file("qmtl.db"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(s.error().message.find("newer than this qmtl"), std::string::npos);
}

TEST_F(SqliteStoreTest, SchemaRejectsCorruptStatesEvenBehindTheService) {
  auto s = open();
  auto db = SqliteDb::open(dir_.file("qmtl.db"));
  ASSERT_TRUE(db);
  EXPECT_FALSE(db->exec("INSERT INTO worlds VALUES ('x', 'x', 'Bogus', NULL, 0, 0)"));
  EXPECT_TRUE(s->list_worlds()->empty());
}

TEST(OpenStore, RefusesUnknownOrIncompleteUrls) {
  for (const char* url : {"", "sqlite:", "mysql://x", "qmtl.db", "postgres://localhost/qmtl"}) {
    auto s = open_store(url);
    ASSERT_FALSE(s) << url;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument) << url;
  }
}

TEST(OpenStore, UnwritableLocationIsAClearError) {
  auto s = open_store("sqlite:/nonexistent-dir/qmtl.db");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("/nonexistent-dir/qmtl.db"), std::string::npos);
}

TEST(Transaction, RollsBackUnlessCommitted) {
  auto db = SqliteDb::open(":memory:");
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t (x INTEGER)"));
  {
    auto tx = Transaction::begin(*db);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES (1)"));
  }
  {
    auto tx = Transaction::begin(*db);
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES (2)"));
    ASSERT_TRUE(tx->commit());
  }
  auto st = db->prepare("SELECT group_concat(x) FROM t");
  ASSERT_TRUE(st);
  ASSERT_TRUE(*st->step());
  EXPECT_EQ(st->column_text(0), "2");
}

}  // namespace
}  // namespace qmtl::store
