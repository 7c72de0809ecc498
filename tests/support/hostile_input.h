// Inputs made to break parsers, shared by the tests that check they are refused.
#pragma once

#include <fmt/format.h>

#include <string>

namespace qmtl::testing {

// "Billion laughs" in YAML: 511 bytes whose keys x1..x8 each name ten aliases
// of the level below (anchors a0..a8, a0 a list of ten values): 10^9 values
// to a reader that walks the aliases expanded.
inline std::string yaml_alias_bomb() {
  std::string bomb = "x: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n";
  for (int i = 1; i < 9; ++i) {
    bomb += fmt::format("x{}: &a{} [", i, i);
    for (int k = 0; k < 10; ++k) bomb += fmt::format("{}*a{}", k ? ", " : "", i - 1);
    bomb += "]\n";
  }
  return bomb;
}

}  // namespace qmtl::testing
