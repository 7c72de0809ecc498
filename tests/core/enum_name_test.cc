#include "qmtl/core/enum_name.h"

#include <gtest/gtest.h>

#include "qmtl/core/result.h"

namespace qmtl {
namespace {

enum class Colour { kRed, kGreen, kBlue };

TEST(EnumName, NamesFollowTheDeclarationOrder) {
  static constexpr std::array<std::string_view, 3> kNames{"red", "green", "blue"};
  EXPECT_EQ(enum_name(Colour::kRed, kNames), "red");
  EXPECT_EQ(enum_name(Colour::kBlue, kNames), "blue");
  EXPECT_EQ(enum_name(static_cast<Colour>(7), kNames), "?");  // only a cast makes one
}

TEST(EnumName, EveryErrorCodeHasItsOwnName) {
  // The table of error_code_name must follow ErrorCode's declaration.
  EXPECT_EQ(error_code_name(ErrorCode::kInvalidArgument), "invalid_argument");
  EXPECT_EQ(error_code_name(ErrorCode::kFailedPrecondition), "failed_precondition");
  EXPECT_EQ(error_code_name(ErrorCode::kVersionMismatch), "version_mismatch");
  EXPECT_EQ(error_code_name(ErrorCode::kUnauthenticated), "unauthenticated");
  EXPECT_EQ(error_code_name(ErrorCode::kPermissionDenied), "permission_denied");
  EXPECT_EQ(error_code_name(ErrorCode::kInternal), "internal");
}

}  // namespace
}  // namespace qmtl
