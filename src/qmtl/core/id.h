// Identifiers of worlds and strategies.
//
// An id is a lowercase slug of 1 to 64 characters: ASCII letters a-z, digits, '-'
// and '_', starting and ending with a letter or digit. Ids appear in URLs, file
// names and metric labels, so nothing else is allowed and nothing is normalised:
// "Demo" is refused, not lower-cased.
//
// Thread safety: pure function.
#pragma once

#include <string_view>

#include "qmtl/core/result.h"

namespace qmtl {

inline constexpr size_t kMaxIdLength = 64;

// Ok if `id` is valid. Otherwise an kInvalidArgument error naming `kind` (e.g.
// "world") and the first offending character, with the rule to follow.
Result<void> validate_id(std::string_view kind, std::string_view id);

}  // namespace qmtl
