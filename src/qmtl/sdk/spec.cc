#include "qmtl/sdk/spec.h"

#include <fmt/format.h>

#include <algorithm>

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

// The keys a node of kind `k` may have besides indicator, input and inputs.
std::vector<std::string_view> parameter_keys(IndicatorKind k) {
  switch (k) {
    case IndicatorKind::kReturns:
    case IndicatorKind::kSma:
    case IndicatorKind::kEma:
    case IndicatorKind::kRsi:
    case IndicatorKind::kRollingStd:
    case IndicatorKind::kZScore:
    case IndicatorKind::kRollingMax:
    case IndicatorKind::kRollingMin:
    case IndicatorKind::kAtr:
    case IndicatorKind::kVwap:
      return {"n"};
    case IndicatorKind::kDonchian:
      return {"n", "output"};
    case IndicatorKind::kRoc:
      return {"n", "log"};
    case IndicatorKind::kBollinger:
      return {"n", "k", "sample", "output"};
    case IndicatorKind::kMacd:
      return {"fast", "slow", "signal", "percent", "output"};
    case IndicatorKind::kStochastic:
      return {"n", "signal", "output"};
    case IndicatorKind::kAnd:
    case IndicatorKind::kOr:
    case IndicatorKind::kNot:
      return {};
    default:  // crossover, comparisons, arithmetic
      return {"value"};
  }
}

// Indicators added with issue 24 have no sensible window of 1: n is required.
bool needs_n(IndicatorKind k) {
  switch (k) {
    case IndicatorKind::kRollingMax:
    case IndicatorKind::kRollingMin:
    case IndicatorKind::kRoc:
    case IndicatorKind::kBollinger:
    case IndicatorKind::kAtr:
    case IndicatorKind::kStochastic:
    case IndicatorKind::kDonchian:
    case IndicatorKind::kVwap:
      return true;
    default:
      return false;
  }
}

Result<void> bool_param(const boost::json::object& n, std::string_view key, const std::string& path,
                        bool& out) {
  auto v = json::get_optional_bool(n, key);
  if (!v) return bad(fmt::format("{}{} must be true or false", path, key));
  if (*v) out = **v;
  return {};
}

Result<void> parse_params(const boost::json::object& n, IndicatorKind kind, const std::string& path,
                          IndicatorParams& p) {
  if (needs_n(kind) && !n.contains("n")) {
    return bad(fmt::format("{}n is required: the window of {}", path, indicator_name(kind)));
  }
  auto count = count_field(n, "n", path, 1);
  if (!count) return propagate(count);
  p.n = *count;
  for (auto [key, field] :
       {std::pair{"fast", &p.fast}, std::pair{"slow", &p.slow}, std::pair{"signal", &p.signal}}) {
    auto v = count_field(n, key, path, *field);
    if (!v) return propagate(v);
    *field = *v;
  }
  auto value = json::get_optional_number(n, "value");
  if (!value) return bad(fmt::format("{}value must be a number", path));
  p.value = *value;
  auto k = json::get_optional_number(n, "k");
  if (!k || (*k && !(**k > 0))) return bad(fmt::format("{}k must be a positive number", path));
  if (*k) p.k = **k;
  if (auto r = bool_param(n, "sample", path, p.sample); !r) return r;
  if (auto r = bool_param(n, "log", path, p.log); !r) return r;
  if (auto r = bool_param(n, "percent", path, p.percent); !r) return r;
  if (n.contains("output")) {
    auto out = string_field(n, "output", path);
    if (!out) return propagate(out);
    p.output = *out;
  }
  return {};
}

Result<std::vector<std::string>> node_inputs(const boost::json::object& n,
                                             const std::string& path) {
  std::vector<std::string> ins;
  if (n.contains("input") == n.contains("inputs")) {
    return bad(fmt::format("{} needs exactly one of input (one name) or inputs (a list)",
                           path.substr(0, path.size() - 1)));
  }
  if (n.contains("input")) {
    auto one = string_field(n, "input", path);
    if (!one) return propagate(one);
    ins.push_back(*one);
    return ins;
  }
  const auto& list = n.at("inputs");
  if (!list.is_array()) return bad(fmt::format("{}inputs must be a list of names", path));
  for (const auto& x : list.get_array()) {
    if (!x.is_string()) return bad(fmt::format("{}inputs must be a list of names", path));
    ins.emplace_back(x.get_string());
  }
  return ins;
}

// One entry of `nodes`, declared in `dag` (which build() checks as a whole).
Result<void> parse_node(Dag& dag, std::string_view name, const boost::json::value& v) {
  const std::string path = fmt::format("nodes.{}.", name);
  if (!v.is_object()) return bad(fmt::format("nodes.{} must be a mapping", name));
  const auto& n = v.get_object();
  auto kind_text = string_field(n, "indicator", path);
  if (!kind_text) return propagate(kind_text);
  auto kind = parse_indicator(*kind_text);
  if (!kind) return bad(fmt::format("{}indicator: {}", path, kind.error().message));
  std::vector<std::string_view> allowed{"indicator", "input", "inputs"};
  for (auto key : parameter_keys(*kind)) allowed.push_back(key);
  for (const auto& kv : n) {
    if (std::find(allowed.begin(), allowed.end(), kv.key()) != allowed.end()) continue;
    std::string list;
    for (size_t i = 3; i < allowed.size(); ++i) {
      list += (list.empty() ? "" : ", ") + std::string(allowed[i]);
    }
    return bad(fmt::format("{}{} does not apply to {} (its parameters: {})", path,
                           std::string_view(kv.key()), *kind_text, list.empty() ? "none" : list));
  }
  auto ins = node_inputs(n, path);
  if (!ins) return propagate(ins);
  IndicatorParams params;
  if (auto r = parse_params(n, *kind, path, params); !r) return r;
  dag.indicator(std::string(name), *kind, std::move(*ins), std::move(params));
  return {};
}

// A positive number at `key`, at most `most`, or nullopt when absent.
Result<std::optional<double>> fraction_field(const boost::json::object& o, std::string_view key,
                                             double most) {
  auto v = json::get_optional_number(o, key);
  if (!v || (*v && !(**v > 0 && **v <= most))) {
    return bad(fmt::format("orders.{} must be a number above 0 and at most {}", key, most));
  }
  return *v;
}

Result<OrderRule> parse_orders(const boost::json::object& o) {
  if (auto r = keys(o,
                    {"signal", "exit", "symbol", "qty", "fraction", "weight", "band", "lot", "side",
                     "stop_loss", "take_profit", "trailing_stop"},
                    "orders.");
      !r) {
    return propagate(r);
  }
  OrderRule rule;
  auto signal = string_field(o, "signal", "orders.");
  if (!signal) return propagate(signal);
  auto symbol = string_field(o, "symbol", "orders.");
  if (!symbol) return propagate(symbol);
  rule.signal = *signal;
  rule.symbol = *symbol;
  if (o.contains("exit")) {
    auto exit = string_field(o, "exit", "orders.");
    if (!exit) return propagate(exit);
    rule.exit = *exit;
  }
  const int sizings = (o.contains("qty") ? 1 : 0) + (o.contains("fraction") ? 1 : 0) +
                      (o.contains("weight") ? 1 : 0);
  if (sizings != 1) {
    return bad(
        "orders needs exactly one sizing: qty (units), fraction (of equity) or weight "
        "(the signal as a share of equity, capped at this)");
  }
  if (o.contains("qty")) {
    auto qty = json::get_optional_number(o, "qty");
    if (!qty || !*qty || !(**qty > 0)) return bad("orders.qty must be a positive number");
    rule.qty = **qty;
  }
  // Above 10 times equity is a typo, not a strategy.
  auto fraction = fraction_field(o, "fraction", 10);
  if (!fraction) return propagate(fraction);
  if (*fraction) {
    rule.sizing = Sizing::kFraction;
    rule.fraction = **fraction;
  }
  auto weight = fraction_field(o, "weight", 10);
  if (!weight) return propagate(weight);
  if (*weight) {
    rule.sizing = Sizing::kWeight;
    rule.weight = **weight;
  }
  if (o.contains("band") && rule.sizing != Sizing::kWeight) {
    return bad("orders.band applies to weight sizing only");
  }
  auto band = fraction_field(o, "band", 1);
  if (!band) return propagate(band);
  if (*band) rule.band = **band;
  auto lot = json::get_optional_number(o, "lot");
  if (!lot || (*lot && !(**lot > 0))) return bad("orders.lot must be a positive number");
  if (*lot) rule.lot = **lot;
  if (o.contains("side")) {
    auto side = string_field(o, "side", "orders.");
    if (!side) return propagate(side);
    if (*side != "long_only" && *side != "long_short") {
      return bad(fmt::format("orders.side must be long_only or long_short, not '{}'", *side));
    }
    rule.sides = *side == "long_short" ? Sides::kLongShort : Sides::kLongOnly;
  }
  for (auto [key, field] :
       {std::pair{"stop_loss", &rule.stop_loss}, std::pair{"take_profit", &rule.take_profit},
        std::pair{"trailing_stop", &rule.trailing_stop}}) {
    auto v = fraction_field(o, key, key == std::string_view("take_profit") ? 100 : 0.99);
    if (!v) return propagate(v);
    *field = *v;
  }
  return rule;
}

// What the values of node `name` mean to an order rule.
SignalKind signal_kind_of(const Dag& dag, const std::string& name) {
  const auto k = dag.indicator_kind(name);
  if (!k) return SignalKind::kNumeric;  // an input: a price, a volume
  switch (*k) {
    case IndicatorKind::kCrossover:
      return SignalKind::kEvent;
    case IndicatorKind::kGt:
    case IndicatorKind::kGe:
    case IndicatorKind::kLt:
    case IndicatorKind::kLe:
    case IndicatorKind::kAnd:
    case IndicatorKind::kOr:
    case IndicatorKind::kNot:
      return SignalKind::kCondition;
    default:
      return SignalKind::kNumeric;
  }
}

std::string node_description(const Dag& dag, const std::string& name) {
  const auto k = dag.indicator_kind(name);
  return k ? fmt::format("a {} node", indicator_name(*k)) : "an input";
}

Result<void> check_signal(const Dag& dag, OrderRule& rule) {
  if (!rule.exit.empty() && dag.state(rule.exit) == NodeState::kError) {
    return bad(fmt::format("orders.exit '{}' is not a node", rule.exit));
  }
  rule.signal_kind = signal_kind_of(dag, rule.signal);
  const std::optional<SignalKind> exit_kind =
      rule.exit.empty() ? std::nullopt : std::optional(signal_kind_of(dag, rule.exit));
  return check_signal_kinds(rule, exit_kind, node_description(dag, rule.signal));
}

}  // namespace

// Refuses a signal whose values the sizing would misread (issue 24: an RSI fed
// straight to a qty rule bought on every bar), naming the node.
Result<void> check_signal_kinds(const OrderRule& rule, std::optional<SignalKind> exit_kind,
                                std::string_view what) {
  if (rule.signal_kind == SignalKind::kNumeric && rule.sizing != Sizing::kWeight) {
    return bad(fmt::format(
        "orders.signal '{}' is {}: its values are levels, not a direction to trade; trade a "
        "condition on it (lt, gt with a value, crossover) or size it with weight",
        rule.signal, what));
  }
  if (exit_kind) {
    if (*exit_kind != SignalKind::kCondition || rule.signal_kind != SignalKind::kCondition) {
      return bad(fmt::format(
          "orders.exit needs conditions (gt, lt, and, ...) for both the signal and the exit; "
          "'{}' and '{}' are {} and {}",
          rule.signal, rule.exit, signal_kind_name(rule.signal_kind),
          signal_kind_name(*exit_kind)));
    }
  }
  if (rule.signal_kind == SignalKind::kEvent && rule.sizing == Sizing::kWeight) {
    return bad(
        fmt::format("orders.signal '{}' is {}: its +1/-1 are events and 0 means "
                    "no change, not a weight; size it with qty or fraction",
                    rule.signal, what));
  }
  return {};
}

Result<OrderRule> parse_order_rule(const boost::json::object& orders) {
  return parse_orders(orders);
}

boost::json::object order_rule_json(const OrderRule& rule) {
  boost::json::object o{{"symbol", rule.symbol}};
  switch (rule.sizing) {
    case Sizing::kQty:
      o["qty"] = rule.qty;
      break;
    case Sizing::kFraction:
      o["fraction"] = rule.fraction;
      break;
    case Sizing::kWeight:
      o["weight"] = rule.weight;
      o["band"] = rule.band;
      break;
  }
  if (rule.sizing != Sizing::kQty && rule.lot != 1) o["lot"] = rule.lot;
  if (rule.sides == Sides::kLongShort) o["side"] = "long_short";
  for (auto [key, field] :
       {std::pair{"stop_loss", &rule.stop_loss}, std::pair{"take_profit", &rule.take_profit},
        std::pair{"trailing_stop", &rule.trailing_stop}}) {
    if (*field) o[key] = **field;
  }
  return o;
}

namespace {}  // namespace

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
      if (auto r = parse_node(s.dag, kv.key(), kv.value()); !r) return propagate(r);
    }
  }
  auto orders = object_field(root, "orders", "");
  if (!orders) return propagate(orders);
  auto rule = parse_orders(**orders);
  if (!rule) return propagate(rule);
  s.orders = std::move(*rule);
  if (auto r = s.dag.build(); !r) return propagate(r);
  if (s.dag.state(s.orders.signal) == NodeState::kError) {
    return bad(fmt::format("orders.signal '{}' is not a node", s.orders.signal));
  }
  if (auto r = check_signal(s.dag, s.orders); !r) return propagate(r);
  return s;
}

}  // namespace qmtl::sdk
