// Reading YAML nodes with errors that name line and column: shared by the native
// and the QMTL policy parsers. Internal to the policy part.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <string>
#include <string_view>

#include "qmtl/core/result.h"
#include "qmtl/core/time.h"

namespace qmtl::policy {

using Keys = std::initializer_list<std::string_view>;

// yaml-cpp throws; callers keep every call that can throw inside a try block, and
// every user error goes through fail() with the node's line and column.
class YamlReader {
 public:
  // `source` names the input in errors ("p.yml"); `what` is what it holds
  // ("policy", "strategy").
  explicit YamlReader(std::string_view source, std::string_view what = "policy")
      : source_(source), what_(what) {}

  tl::unexpected<Error> fail(const YAML::Mark& m, std::string_view msg) const;
  tl::unexpected<Error> fail(const YAML::Node& n, std::string_view msg) const {
    return fail(n.Mark(), msg);
  }

  // `n` must be a map whose keys are all in `allowed`, each at most once.
  Result<void> check_map(const YAML::Node& n, Keys allowed, std::string_view where) const;
  Result<std::string> scalar(const YAML::Node& n, std::string_view what) const;
  Result<Duration> duration(const YAML::Node& n, std::string_view what, bool positive) const;
  Result<double> number(const YAML::Node& n, std::string_view what) const;
  Result<int> integer(const YAML::Node& n, std::string_view what) const;

  // Refuses documents nested deeper than any policy needs before yaml-cpp, which
  // recurses per level, sees them: input must not be able to exhaust the stack.
  Result<void> check_nesting(std::string_view text) const;

  // The document in `text`, within bounds: check_nesting, then yaml-cpp's
  // parse (malformed YAML is an error naming line and column), then at most
  // kMaxNodes nodes with every alias expanded. yaml-cpp shares an aliased
  // node, but each reader walks the tree as expanded, so a 1 KB file of
  // aliases of aliases would be gigabytes of nodes to them.
  static constexpr size_t kMaxNodes = 100'000;
  Result<YAML::Node> load(std::string_view text) const;

 private:
  std::string source_;
  std::string what_;
};

}  // namespace qmtl::policy
