// Bearer-token authentication and roles for the HTTP API (docs/api.md).
//
// Each token belongs to a named principal with a role (viewer < operator <
// admin) and optionally a list of worlds it may touch. Tokens are kept only as
// SHA-256 digests and compared in constant time; neither a token nor its digest
// is ever logged or echoed back.
//
// Token file (and the QMTL_API_TOKENS variable, entries separated by ';' or
// newlines), one principal per line, '#' starts a comment:
//
//   # name   role      secret                        worlds (optional)
//   ci       operator  sha256:<64 hex digits>        worlds=demo,eu
//   alice    admin     token:<the secret itself>
//
// Thread safety: a TokenTable is immutable after loading; find() may be called
// from any number of threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qmtl/core/result.h"

namespace qmtl::server {

enum class Role { kViewer = 0, kOperator = 1, kAdmin = 2 };
std::string_view role_name(Role role);
// "viewer", "operator" or "admin"; kInvalidArgument otherwise.
Result<Role> parse_role(std::string_view name);

struct Principal {
  std::string name;  // recorded as the actor of every change the principal makes
  Role role = Role::kViewer;
  std::optional<std::vector<std::string>> worlds;  // nullopt: every world

  bool has_role(Role needed) const { return static_cast<int>(role) >= static_cast<int>(needed); }
  bool may_access(std::string_view world) const;
};

class TokenTable {
 public:
  // Parses the token file format above. `source` names the input in errors
  // ("tokens.txt:3: ..."). Duplicate names or secrets are refused.
  static Result<TokenTable> parse(std::string_view text, std::string_view source);
  // Reads and parses a token file.
  static Result<TokenTable> load_file(const std::string& path);

  // Adds the principals of `other`; refused on a duplicate name or secret.
  Result<void> merge(const TokenTable& other);

  // The principal whose secret is `token`. Every entry is compared, in time
  // independent of where (or whether) the token matches.
  std::optional<Principal> find(std::string_view token) const;

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    std::string digest;  // lower-case hex SHA-256 of the secret
    Principal principal;
  };
  std::vector<Entry> entries_;
};

}  // namespace qmtl::server
