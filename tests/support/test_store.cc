#include "tests/support/test_store.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>

#include "qmtl/store/pg_db.h"

namespace qmtl::testing {

bool on_postgres() { return std::getenv("QMTL_TEST_PG_URL_FILE") != nullptr; }

std::string fresh_store_url(const TempDir& dir, std::string_view name) {
  const char* url_file = std::getenv("QMTL_TEST_PG_URL_FILE");
  if (url_file == nullptr) return "sqlite:" + dir.file(std::string(name));
  std::ifstream in(url_file);
  std::string base;
  if (!std::getline(in, base) || base.empty()) {
    ADD_FAILURE() << "no PostgreSQL test server: " << url_file
                  << " is missing or empty (the pg fixture starts one)";
    return "";
  }
  static std::atomic<int> counter{0};
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  const std::string schema =
      fmt::format("t_{}_{}_{}", getpid(), ++counter, static_cast<uint64_t>(now) % 1000000);
  auto admin = store::PgDb::open(base);
  if (!admin) {
    ADD_FAILURE() << admin.error().message;
    return "";
  }
  if (auto r = (*admin)->exec(fmt::format("CREATE SCHEMA {}", schema)); !r) {
    ADD_FAILURE() << r.error().message;
    return "";
  }
  const char sep = base.find('?') == std::string::npos ? '?' : '&';
  // application_name lets a test find its own sessions on the shared server.
  return fmt::format("{}{}options=-c%20search_path%3D{}&application_name={}", base, sep, schema,
                     schema);
}

}  // namespace qmtl::testing
