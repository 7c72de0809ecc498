#include "qmtl/server/auth.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "qmtl/core/enum_name.h"
#include "qmtl/core/file.h"
#include "qmtl/core/id.h"
#include "qmtl/core/sha256.h"

namespace qmtl::server {
namespace {

bool equal_constant_time(std::string_view a, std::string_view b) {
  // Digests all have the same length; a length difference is not secret.
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = static_cast<unsigned char>(
        diff | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
  }
  return diff == 0;
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i == line.size()) break;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

bool is_hex_digest(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

std::string_view role_name(Role role) {
  static constexpr std::array<std::string_view, 3> kNames{"viewer", "operator", "admin"};
  return enum_name(role, kNames);
}

Result<Role> parse_role(std::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "operator") return Role::kOperator;
  if (name == "admin") return Role::kAdmin;
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("unknown role '{}'; use viewer, operator or admin", name));
}

bool Principal::may_access(std::string_view world) const {
  if (!worlds) return true;
  return std::find(worlds->begin(), worlds->end(), world) != worlds->end();
}

Result<TokenTable> TokenTable::parse(std::string_view text, std::string_view source) {
  TokenTable table;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find_first_of(";\n", pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (const auto hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto fields = split_fields(line);
    if (fields.empty()) continue;
    auto fail = [&](std::string_view msg) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("{}:{}: {}", source, line_no, msg));
    };
    if (fields.size() < 3 || fields.size() > 4) {
      return fail("expected '<name> <role> sha256:<hex>|token:<secret> [worlds=a,b]'");
    }
    if (auto r = validate_id("token name", fields[0]); !r) return fail(r.error().message);
    auto role = parse_role(fields[1]);
    if (!role) return fail(role.error().message);
    Entry e{.principal = {.name = std::string(fields[0]), .role = *role}};
    const std::string_view secret = fields[2];
    if (secret.starts_with("sha256:")) {
      std::string hex(secret.substr(7));
      std::transform(hex.begin(), hex.end(), hex.begin(),
                     [](char c) { return static_cast<char>(std::tolower(c)); });
      if (!is_hex_digest(hex)) return fail("sha256: must be followed by 64 hex digits");
      e.digest = std::move(hex);
    } else if (secret.starts_with("token:")) {
      // Short secrets can be guessed; 16 characters of a random token are plenty.
      if (secret.size() - 6 < 16) return fail("a token must be at least 16 characters long");
      e.digest = sha256_hex(secret.substr(6));
    } else {
      // Do not echo the field: it may be a secret with a missing prefix.
      return fail("the third field must start with sha256: or token:");
    }
    if (fields.size() == 4) {
      if (!fields[3].starts_with("worlds=")) return fail("the fourth field must be worlds=a,b");
      std::vector<std::string> worlds;
      std::string_view list = fields[3].substr(7);
      while (!list.empty()) {
        const auto comma = list.find(',');
        const auto w = list.substr(0, comma);
        if (auto r = validate_id("world", w); !r) return fail(r.error().message);
        worlds.emplace_back(w);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
      if (worlds.empty()) return fail("worlds= needs at least one world");
      e.principal.worlds = std::move(worlds);
    }
    TokenTable one;
    one.entries_.push_back(std::move(e));
    if (auto r = table.merge(one); !r) return fail(r.error().message);
  }
  return table;
}

Result<TokenTable> TokenTable::load_file(const std::string& path) {
  auto text = read_private_file(path, "token file");
  if (!text) return propagate(text);
  return parse(*text, path);
}

Result<void> TokenTable::merge(const TokenTable& other) {
  for (const auto& e : other.entries_) {
    for (const auto& mine : entries_) {
      if (mine.principal.name == e.principal.name) {
        return make_error(ErrorCode::kInvalidArgument,
                          fmt::format("token name '{}' is defined twice", e.principal.name));
      }
      if (mine.digest == e.digest) {
        return make_error(ErrorCode::kInvalidArgument,
                          fmt::format("tokens '{}' and '{}' have the same secret",
                                      mine.principal.name, e.principal.name));
      }
    }
  }
  entries_.insert(entries_.end(), other.entries_.begin(), other.entries_.end());
  return {};
}

std::optional<Principal> TokenTable::find(std::string_view token) const {
  const std::string digest = sha256_hex(token);
  const Entry* match = nullptr;
  for (const auto& e : entries_) {
    // No early exit: every entry costs the same whether it matches or not.
    const bool eq = equal_constant_time(e.digest, digest);
    if (eq) match = &e;
  }
  if (match == nullptr) return std::nullopt;
  return match->principal;
}

}  // namespace qmtl::server
