#include "qmtl/core/id.h"

#include <gtest/gtest.h>

namespace qmtl {
namespace {

TEST(ValidateId, AcceptsSlugs) {
  for (const char* ok : {"a", "0", "demo", "momentum-v2", "mean_revert_7", "a-b_c", "2024q1"}) {
    EXPECT_TRUE(validate_id("world", ok)) << ok;
  }
  EXPECT_TRUE(validate_id("world", std::string(64, 'x')));
}

TEST(ValidateId, RefusesWithAReasonAndTheRule) {
  struct Case {
    std::string id;
    std::string reason;
  };
  for (const Case& c : std::vector<Case>{
           {"", "empty"},
           {std::string(65, 'x'), "65 characters"},
           {"Demo", "uppercase 'D' at position 1"},
           {"my world", "byte 0x20 at position 3"},
           {" demo", "byte 0x20 at position 1"},
           {"demo ", "byte 0x20 at position 5"},
           {"demo\n", "byte 0x0a at position 5"},
           {"-demo", "'-' at position 1"},
           {"demo_", "'_' at position 5"},
           {"a/b", "'/' at position 2"},
           {"..", "'.' at position 1"},
           {"wörld", "byte 0xc3 at position 2"},
           {"世界", "byte 0xe4 at position 1"},
           {std::string("a\0b", 3), "byte 0x00 at position 2"},
       }) {
    auto r = validate_id("strategy", c.id);
    ASSERT_FALSE(r) << "accepted " << c.id;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("invalid strategy id"), std::string::npos)
        << r.error().message;
    EXPECT_NE(r.error().message.find(c.reason), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("lowercase letters"), std::string::npos);
  }
}

}  // namespace
}  // namespace qmtl
