#include "qmtl/sdk/spec.h"

#include <fmt/format.h>

#include "qmtl/core/duration.h"
#include "qmtl/core/json.h"

namespace qmtl::sdk {
namespace {

tl::unexpected<Error> bad(std::string msg) {
  return make_error(ErrorCode::kInvalidArgument, std::move(msg));
}

Result<const boost::json::object*> object_field(const boost::json::object& o, std::string_view key,
                                                const std::string& path) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return bad(fmt::format("{}{} is required", path, key));
  if (!v->is_object()) {
    return bad(fmt::format("{}{} must be a mapping, not {}", path, key, json::kind_name(*v)));
  }
  return &v->get_object();
}

Result<std::string> string_field(const boost::json::object& o, std::string_view key,
                                 const std::string& path) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return bad(fmt::format("{}{} is required", path, key));
  if (!v->is_string()) {
    return bad(fmt::format("{}{} must be a string, not {}", path, key, json::kind_name(*v)));
  }
  return std::string(v->get_string());
}

Result<size_t> count_field(const boost::json::object& o, std::string_view key,
                           const std::string& path, size_t fallback) {
  auto v = json::get_optional_int(o, key);
  if (!v || (*v && **v < 1)) {
    return bad(fmt::format("{}{} must be a whole number from 1", path, key));
  }
  return v->has_value() ? static_cast<size_t>(**v) : fallback;
}

Result<void> keys(const boost::json::object& o, std::initializer_list<std::string_view> allowed,
                  const std::string& path) {
  const std::string what = path.empty() ? "the strategy" : path.substr(0, path.size() - 1);
  if (auto r = json::check_keys(o, allowed, what); !r) return r;
  return {};
}

}  // namespace

Result<Strategy> parse_strategy(const boost::json::value& spec) {
  if (!spec.is_object()) return bad("a strategy must be a mapping of fields");
  const auto& root = spec.get_object();
  if (auto r = keys(root, {"id", "inputs", "nodes", "orders", "description"}, ""); !r) {
    return propagate(r);
  }
  Strategy s;
  if (root.contains("id")) {
    auto id = string_field(root, "id", "");
    if (!id) return propagate(id);
    s.id = *id;
  }
  auto inputs = object_field(root, "inputs", "");
  if (!inputs) return propagate(inputs);
  if ((*inputs)->empty()) return bad("inputs needs at least one input");
  for (const auto& kv : **inputs) {
    const std::string path = fmt::format("inputs.{}.", std::string_view(kv.key()));
    if (!kv.value().is_object())
      return bad(fmt::format("inputs.{} must be a mapping", std::string_view(kv.key())));
    const auto& in = kv.value().get_object();
    if (auto r = keys(in, {"interval", "period"}, path); !r) return propagate(r);
    auto interval_text = string_field(in, "interval", path);
    if (!interval_text) return propagate(interval_text);
    auto interval = parse_duration(*interval_text);
    if (!interval) return bad(fmt::format("{}interval: {}", path, interval.error().message));
    auto period = count_field(in, "period", path, 1);
    if (!period) return propagate(period);
    s.dag.input(std::string(kv.key()), *interval, *period);
  }
  if (const auto* nodes = root.if_contains("nodes")) {
    if (!nodes->is_object()) return bad("nodes must be a mapping of name: node");
    for (const auto& kv : nodes->get_object()) {
      const std::string path = fmt::format("nodes.{}.", std::string_view(kv.key()));
      if (!kv.value().is_object())
        return bad(fmt::format("nodes.{} must be a mapping", std::string_view(kv.key())));
      const auto& n = kv.value().get_object();
      if (auto r = keys(n, {"indicator", "input", "inputs", "n"}, path); !r) return propagate(r);
      auto kind_text = string_field(n, "indicator", path);
      if (!kind_text) return propagate(kind_text);
      auto kind = parse_indicator(*kind_text);
      if (!kind) return bad(fmt::format("{}indicator: {}", path, kind.error().message));
      std::vector<std::string> ins;
      if (n.contains("input") == n.contains("inputs")) {
        return bad(fmt::format("{} needs exactly one of input (one name) or inputs (a list)",
                               path.substr(0, path.size() - 1)));
      }
      if (n.contains("input")) {
        auto one = string_field(n, "input", path);
        if (!one) return propagate(one);
        ins.push_back(*one);
      } else {
        const auto& list = n.at("inputs");
        if (!list.is_array()) return bad(fmt::format("{}inputs must be a list of names", path));
        for (const auto& x : list.get_array()) {
          if (!x.is_string()) return bad(fmt::format("{}inputs must be a list of names", path));
          ins.emplace_back(x.get_string());
        }
      }
      auto count = count_field(n, "n", path, 1);
      if (!count) return propagate(count);
      s.dag.indicator(std::string(kv.key()), *kind, std::move(ins), *count);
    }
  }
  auto orders = object_field(root, "orders", "");
  if (!orders) return propagate(orders);
  if (auto r = keys(**orders, {"signal", "symbol", "qty"}, "orders."); !r) return propagate(r);
  auto signal = string_field(**orders, "signal", "orders.");
  if (!signal) return propagate(signal);
  auto symbol = string_field(**orders, "symbol", "orders.");
  if (!symbol) return propagate(symbol);
  auto qty = json::get_optional_number(**orders, "qty");
  if (!qty || !*qty || !(**qty > 0)) return bad("orders.qty must be a positive number");
  s.orders = {.signal = *signal, .symbol = *symbol, .qty = **qty};
  if (auto r = s.dag.build(); !r) return propagate(r);
  if (s.dag.state(s.orders.signal) == NodeState::kError) {
    return bad(fmt::format("orders.signal '{}' is not a node", s.orders.signal));
  }
  return s;
}

}  // namespace qmtl::sdk
