#include "qmtl/cli/table.h"

#include <gtest/gtest.h>

#include <sstream>

namespace qmtl::cli {
namespace {

TEST(Table, AlignsColumnsByCodePointsWithoutTrailingSpaces) {
  Table t({"ID", "NAME", "STATE"});
  t.add_row({"a", "한국", "Active"});
  t.add_row({"longer-id", "x", ""});
  std::ostringstream out;
  t.print(out);
  EXPECT_EQ(out.str(),
            "ID         NAME  STATE\n"
            "a          한국  Active\n"
            "longer-id  x\n");
}

TEST(Table, ShortRowsArePadded) {
  Table t({"A", "B"});
  t.add_row({"1"});
  std::ostringstream out;
  t.print(out);
  EXPECT_EQ(out.str(), "A  B\n1\n");
}

}  // namespace
}  // namespace qmtl::cli
