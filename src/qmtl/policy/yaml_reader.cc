#include "qmtl/policy/yaml_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <vector>

#include "qmtl/core/duration.h"
#include "qmtl/policy/expr.h"

namespace qmtl::policy {

tl::unexpected<Error> YamlReader::fail(const YAML::Mark& m, std::string_view msg) const {
  if (m.line < 0)
    return make_error(ErrorCode::kInvalidArgument, fmt::format("{}: {}", source_, msg));
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("{}:{}:{}: {}", source_, m.line + 1, m.column + 1, msg));
}

Result<void> YamlReader::check_map(const YAML::Node& n, Keys allowed,
                                   std::string_view where) const {
  if (!n.IsMap()) return fail(n, fmt::format("{} must be a mapping of keys to values", where));
  std::set<std::string> seen;
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      const std::vector<std::string_view> names(allowed.begin(), allowed.end());
      const std::string hint = did_you_mean(key, names);
      return fail(
          kv.first,
          fmt::format("unknown key '{}' in {}; {}", key, where,
                      hint.empty() ? fmt::format("allowed: {}", fmt::join(allowed, ", ")) : hint));
    }
    if (!seen.insert(key).second)
      return fail(kv.first, fmt::format("duplicate key '{}' in {}", key, where));
  }
  return {};
}
Result<std::string> YamlReader::scalar(const YAML::Node& n, std::string_view what) const {
  if (!n.IsScalar()) return fail(n, fmt::format("{} must be a single value", what));
  return n.Scalar();
}
Result<Duration> YamlReader::duration(const YAML::Node& n, std::string_view what,
                                      bool positive) const {
  auto s = scalar(n, what);
  if (!s) return propagate(s);
  auto d = parse_duration(*s);
  if (!d) return fail(n, fmt::format("{}: {}", what, d.error().message));
  if (positive && *d <= Duration::zero())
    return fail(n, fmt::format("{} must be longer than zero", what));
  return *d;
}
Result<double> YamlReader::number(const YAML::Node& n, std::string_view what) const {
  auto s = scalar(n, what);
  if (!s) return propagate(s);
  double v = 0;
  const auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc() || p != s->data() + s->size() || !std::isfinite(v)) {
    return fail(n, fmt::format("{} must be a number, not '{}'", what, *s));
  }
  return v;
}
Result<int> YamlReader::integer(const YAML::Node& n, std::string_view what) const {
  auto s = scalar(n, what);
  if (!s) return propagate(s);
  int v = 0;
  const auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc() || p != s->data() + s->size()) {
    return fail(n, fmt::format("{} must be a whole number, not '{}'", what, *s));
  }
  return v;
}
// yaml-cpp recurses once per nesting level; refuse documents that nest deeper
// than any policy needs before they reach it, so input cannot exhaust the stack.
Result<void> YamlReader::check_nesting(std::string_view text) const {
  constexpr int kMaxDepth = 32;
  constexpr size_t kMaxBytes = 1 << 20;
  if (text.size() > kMaxBytes) {
    return fail(YAML::Mark::null_mark(), fmt::format("the {} is larger than 1 MiB", what_));
  }
  int depth = 0, line = 0, column = 0;
  size_t indent = 0;
  bool at_line_start = true;
  char quote = 0;
  for (char c : text) {
    if (c == '\n') {
      ++line;
      column = 0;
      indent = 0;
      at_line_start = true;
      continue;
    }
    ++column;
    if (at_line_start && c == ' ') {
      if (++indent > 4 * static_cast<size_t>(kMaxDepth)) {
        YAML::Mark m;
        m.line = line;
        m.column = column - 1;
        return fail(m, fmt::format("the {} is indented too deeply", what_));
      }
      continue;
    }
    at_line_start = false;
    if (quote != 0) {
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) {
        YAML::Mark m;
        m.line = line;
        m.column = column - 1;
        return fail(m, fmt::format("the {} is nested too deeply", what_));
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return {};
}

namespace {

// How the walk of a document ends: within the limits, or which one it passed.
enum class Walk { kOk, kTooMany, kTooDeep };

// Walks `n` as a reader sees it (aliases expanded), counting nodes, and stops
// as soon as the count passes `limit` or the depth passes kMaxWalkDepth: the
// walk is bounded whatever the document expands to. Depth is checked here too
// because aliases of aliases nest without brackets or indentation.
constexpr int kMaxWalkDepth = 64;
Walk walk(const YAML::Node& n, size_t& count, size_t limit, int depth) {
  if (++count > limit) return Walk::kTooMany;
  if (depth > kMaxWalkDepth) return Walk::kTooDeep;
  if (n.IsMap()) {
    for (const auto& kv : n) {
      for (const YAML::Node& x : {kv.first, kv.second}) {
        if (const Walk w = walk(x, count, limit, depth + 1); w != Walk::kOk) return w;
      }
    }
  } else if (n.IsSequence()) {
    for (const auto& x : n) {
      if (const Walk w = walk(x, count, limit, depth + 1); w != Walk::kOk) return w;
    }
  }
  return Walk::kOk;
}

}  // namespace

Result<YAML::Node> YamlReader::load(std::string_view text) const {
  if (auto r = check_nesting(text); !r) return propagate(r);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
    size_t count = 0;
    switch (walk(root, count, kMaxNodes, 0)) {
      case Walk::kOk:
        break;
      case Walk::kTooMany:
        return fail(YAML::Mark::null_mark(),
                    fmt::format("the {} expands to more than {} values (a YAML alias * repeats "
                                "what it names); write the values out",
                                what_, kMaxNodes));
      case Walk::kTooDeep:
        return fail(YAML::Mark::null_mark(),
                    fmt::format("the {} is nested too deeply (through YAML aliases)", what_));
    }
  } catch (const YAML::Exception& e) {
    return fail(e.mark, fmt::format("malformed YAML/JSON: {}", e.msg));
  }
  return root;
}

}  // namespace qmtl::policy
