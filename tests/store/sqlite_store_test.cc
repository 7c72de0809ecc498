// What only the SQLite backend does: files, ":memory:", URLs.
#include <gtest/gtest.h>

#include "qmtl/store/sql_store.h"
#include "qmtl/store/sqlite_db.h"
#include "tests/support/temp_dir.h"

namespace qmtl::store {
namespace {

TEST(SqliteStore, UrlNamesTheFile) {
  testing::TempDir dir;
  auto s = open_store("sqlite:" + dir.file("qmtl.db"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ((*s)->describe(), "sqlite:" + dir.file("qmtl.db"));
  EXPECT_TRUE(std::filesystem::exists(dir.file("qmtl.db")));
  auto mem = open_store("sqlite::memory:");
  ASSERT_TRUE(mem);
  EXPECT_EQ(*(*mem)->schema_version(), static_cast<int>(sqlite_migrations().size()));
}

TEST(SqliteOpenStore, RefusesUnknownOrIncompleteUrls) {
  for (const char* url : {"", "sqlite:", "mysql://x", "qmtl.db", "postgre://localhost/qmtl"}) {
    auto s = open_store(url);
    ASSERT_FALSE(s) << url;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument) << url;
  }
}

TEST(SqliteOpenStore, UnwritableLocationIsAClearError) {
  auto s = open_store("sqlite:/nonexistent-dir/qmtl.db");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("/nonexistent-dir/qmtl.db"), std::string::npos);
}

}  // namespace
}  // namespace qmtl::store
