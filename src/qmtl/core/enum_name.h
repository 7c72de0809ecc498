// Names of enumerators from a table, for enums whose enumerators are 0..N-1
// in declaration order (the table lists them in that order).
//
// Thread safety: pure.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace qmtl {

// The name of `e` in `names`; "?" for a value outside the table (only a cast
// can make one).
template <typename E, size_t N>
constexpr std::string_view enum_name(E e, const std::array<std::string_view, N>& names) {
  const auto i = static_cast<size_t>(e);
  return i < N ? names[i] : std::string_view("?");
}

}  // namespace qmtl
