#include "qmtl/server/auth.h"

#include <gtest/gtest.h>

#include "qmtl/core/sha256.h"

namespace qmtl::server {
namespace {

TEST(TokenTable, ParsesNamesRolesSecretsAndWorlds) {
  const std::string digest = sha256_hex("hashed-secret-0123456789");
  auto t = TokenTable::parse(
      "# comment line\n"
      "\n"
      "alice admin token:plain-secret-0123456789   # trailing comment\n"
      "ci operator sha256:" +
          digest +
          " worlds=demo,eu\n"
          "grafana viewer token:viewer-secret-01234567;",
      "tokens");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->size(), 3u);
  auto alice = t->find("plain-secret-0123456789");
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->name, "alice");
  EXPECT_EQ(alice->role, Role::kAdmin);
  EXPECT_TRUE(alice->may_access("anything"));
  auto ci = t->find("hashed-secret-0123456789");
  ASSERT_TRUE(ci);
  EXPECT_EQ(ci->role, Role::kOperator);
  EXPECT_TRUE(ci->may_access("eu"));
  EXPECT_FALSE(ci->may_access("asia"));
  EXPECT_TRUE(ci->has_role(Role::kViewer));
  EXPECT_FALSE(ci->has_role(Role::kAdmin));
  EXPECT_EQ(t->find("viewer-secret-01234567")->role, Role::kViewer);
  EXPECT_FALSE(t->find("plain-secret-012345678"));  // one character more
  EXPECT_FALSE(t->find(""));
  EXPECT_FALSE(t->find(digest));  // the digest is not the secret
}

TEST(TokenTable, BadLinesAreRefusedWithTheirLineAndNoSecret) {
  struct Case {
    std::string text;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"alice admin", "tokens:1: expected '<name> <role>"},
           {"\nalice root token:0123456789abcdefgh", "tokens:2: unknown role 'root'"},
           {"Alice admin token:0123456789abcdefgh", "tokens:1: invalid token name"},
           {"alice admin token:short", "at least 16 characters"},
           {"alice admin sha256:abc", "64 hex digits"},
           {"alice admin s3cr3t-without-prefix-123", "must start with sha256: or token:"},
           {"alice admin token:0123456789abcdefgh dev", "fourth field must be worlds="},
           {"alice admin token:0123456789abcdefgh worlds=", "needs at least one world"},
           {"alice admin token:0123456789abcdefgh worlds=Bad", "invalid world id"},
           {"a admin token:0123456789abcdefgh\na viewer token:0123456789abcdefgX",
            "tokens:2: token name 'a' is defined twice"},
           {"a admin token:0123456789abcdefgh\nb viewer token:0123456789abcdefgh",
            "tokens 'a' and 'b' have the same secret"},
       }) {
    auto t = TokenTable::parse(c.text, "tokens");
    ASSERT_FALSE(t) << c.text;
    EXPECT_NE(t.error().message.find(c.message), std::string::npos) << t.error().message;
    EXPECT_EQ(t.error().message.find("s3cr3t"), std::string::npos);
  }
}

TEST(TokenTable, MergeRefusesClashes) {
  auto a = *TokenTable::parse("a admin token:0123456789abcdefgh", "f");
  auto b = *TokenTable::parse("b viewer token:bbbbbbbbbbbbbbbbbb", "env");
  ASSERT_TRUE(a.merge(b));
  EXPECT_EQ(a.size(), 2u);
  EXPECT_FALSE(a.merge(b));
  EXPECT_TRUE(
      TokenTable::load_file("/nonexistent/tokens").error().message.find("/nonexistent/tokens") !=
      std::string::npos);
}

}  // namespace
}  // namespace qmtl::server
