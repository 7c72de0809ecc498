#include "qmtl/core/id.h"

#include <fmt/format.h>

namespace qmtl {
namespace {

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

constexpr std::string_view kRule =
    "use 1-64 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit";

// Shows the character readably: printable ASCII as itself, anything else (a space,
// a control byte, part of a UTF-8 sequence) as its byte value.
std::string show(char c) {
  const auto b = static_cast<unsigned char>(c);
  if (b > 0x20 && b < 0x7f) return fmt::format("'{}'", c);
  return fmt::format("byte 0x{:02x}", b);
}

}  // namespace

Result<void> validate_id(std::string_view kind, std::string_view id) {
  auto bad = [&](const std::string& why) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("invalid {} id '{}': {}; {}", kind, id, why, kRule));
  };
  if (id.empty()) return bad("it is empty");
  if (id.size() > kMaxIdLength) {
    return bad(fmt::format("it is {} characters long", id.size()));
  }
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (is_alnum(c)) continue;
    if ((c == '-' || c == '_') && i != 0 && i + 1 != id.size()) continue;
    if (c >= 'A' && c <= 'Z') {
      return bad(fmt::format("uppercase {} at position {}", show(c), i + 1));
    }
    return bad(fmt::format("{} at position {} is not allowed", show(c), i + 1));
  }
  return {};
}

}  // namespace qmtl
