#include "qmtl/policy/yaml_json.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <string>

#include "qmtl/core/json.h"
#include "qmtl/policy/yaml_reader.h"

namespace qmtl::policy {
namespace {

boost::json::value to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      boost::json::object o;
      for (const auto& kv : n) o[kv.first.as<std::string>()] = to_json(kv.second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      boost::json::array a;
      for (const auto& x : n) a.push_back(to_json(x));
      return a;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return boost::json::value(s);  // quoted: always a string
      if (s == "true" || s == "false") return s == "true";
      if (auto j = json::parse(s); j && j->is_number()) return *j;
      return boost::json::value(s);
    }
    default:
      return nullptr;
  }
}

}  // namespace

Result<boost::json::value> yaml_to_json(std::string_view text, std::string_view source) {
  auto root = YamlReader(source, "document").load(text);
  if (!root) return propagate(root);
  // yaml-cpp throws; its errors become values here, at the boundary.
  try {
    return to_json(*root);
  } catch (const YAML::Exception& e) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("{}:{}:{}: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

}  // namespace qmtl::policy
