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

#include "qmtl/core/sha256.h"

namespace qmtl {
namespace {

TEST(Sha256, KnownVectors) {
  // FIPS 180-4 / NIST examples, and the 55/56/64-byte padding boundaries.
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(sha256_hex(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(sha256_hex(std::string(56, 'a')),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(sha256_hex(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

}  // namespace
}  // namespace qmtl
