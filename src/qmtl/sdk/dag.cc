#include "qmtl/sdk/dag.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <span>
#include <variant>

#include "qmtl/core/duration.h"
#include "qmtl/core/enum_name.h"
#include "qmtl/sdk/operators.h"

namespace qmtl::sdk {
namespace {

using AnyIndicator =
    std::variant<Returns, Sma, Ema, Rsi, RollingStd, ZScore, Crossover, RollingMax, RollingMin, Roc,
                 Bollinger, Atr, Macd, Stochastic, Donchian, Vwap, Compare, Logic, Not, Arith>;

constexpr std::array kAllKinds{
    IndicatorKind::kReturns,   IndicatorKind::kSma,        IndicatorKind::kEma,
    IndicatorKind::kRsi,       IndicatorKind::kRollingStd, IndicatorKind::kZScore,
    IndicatorKind::kCrossover, IndicatorKind::kRollingMax, IndicatorKind::kRollingMin,
    IndicatorKind::kRoc,       IndicatorKind::kBollinger,  IndicatorKind::kAtr,
    IndicatorKind::kMacd,      IndicatorKind::kStochastic, IndicatorKind::kDonchian,
    IndicatorKind::kVwap,      IndicatorKind::kGt,         IndicatorKind::kGe,
    IndicatorKind::kLt,        IndicatorKind::kLe,         IndicatorKind::kAnd,
    IndicatorKind::kOr,        IndicatorKind::kNot,        IndicatorKind::kAdd,
    IndicatorKind::kSub,       IndicatorKind::kMul,        IndicatorKind::kDiv};

// How many inputs a kind reads; `constant`: the last one may be a `value`.
struct Arity {
  size_t min, max;
  bool constant;
};

Arity arity_of(IndicatorKind k) {
  switch (k) {
    case IndicatorKind::kCrossover:
    case IndicatorKind::kGt:
    case IndicatorKind::kGe:
    case IndicatorKind::kLt:
    case IndicatorKind::kLe:
    case IndicatorKind::kAdd:
    case IndicatorKind::kSub:
    case IndicatorKind::kMul:
    case IndicatorKind::kDiv:
      return {2, 2, true};
    case IndicatorKind::kAnd:
    case IndicatorKind::kOr:
      return {2, 64, false};
    case IndicatorKind::kDonchian:
    case IndicatorKind::kVwap:
      return {2, 2, false};
    case IndicatorKind::kAtr:
    case IndicatorKind::kStochastic:
      return {3, 3, false};
    default:
      return {1, 1, false};
  }
}

// The lines a multi-line kind can emit (empty: one line, no `output`).
std::vector<std::pair<std::string_view, Line>> lines_of(IndicatorKind k) {
  switch (k) {
    case IndicatorKind::kBollinger:
      return {{"upper", Line::kUpper},
              {"middle", Line::kMiddle},
              {"lower", Line::kLower},
              {"pct_b", Line::kPctB}};
    case IndicatorKind::kMacd:
      return {{"macd", Line::kMain}, {"signal", Line::kSignal}, {"histogram", Line::kHistogram}};
    case IndicatorKind::kStochastic:
      return {{"k", Line::kMain}, {"d", Line::kD}};
    case IndicatorKind::kDonchian:
      return {{"upper", Line::kUpper}, {"middle", Line::kMiddle}, {"lower", Line::kLower}};
    default:
      return {};
  }
}

// The default of `signal`: macd's 9, stochastic's 3.
size_t signal_of(IndicatorKind k, const IndicatorParams& p) {
  if (p.signal != 0) return p.signal;
  return k == IndicatorKind::kMacd ? 9 : 3;
}

AnyIndicator make_indicator(IndicatorKind k, const IndicatorParams& p, Line line) {
  const size_t n = p.n;
  const double c = p.value.value_or(0);
  switch (k) {
    case IndicatorKind::kReturns:
      return Returns{};
    case IndicatorKind::kSma:
      return Sma(n);
    case IndicatorKind::kEma:
      return Ema(n);
    case IndicatorKind::kRsi:
      return Rsi(n);
    case IndicatorKind::kRollingStd:
      return RollingStd(n);
    case IndicatorKind::kZScore:
      return ZScore(n);
    case IndicatorKind::kCrossover:
      return Crossover(c);
    case IndicatorKind::kRollingMax:
      return RollingMax(n);
    case IndicatorKind::kRollingMin:
      return RollingMin(n);
    case IndicatorKind::kRoc:
      return Roc(n, p.log);
    case IndicatorKind::kBollinger:
      return Bollinger(n, p.k, p.sample, line);
    case IndicatorKind::kAtr:
      return Atr(n);
    case IndicatorKind::kMacd:
      return Macd(p.fast, p.slow, signal_of(k, p), p.percent, line);
    case IndicatorKind::kStochastic:
      return Stochastic(n, signal_of(k, p), line);
    case IndicatorKind::kDonchian:
      return Donchian(n, line);
    case IndicatorKind::kVwap:
      return Vwap(n);
    case IndicatorKind::kGt:
      return Compare(CompareOp::kGt, c);
    case IndicatorKind::kGe:
      return Compare(CompareOp::kGe, c);
    case IndicatorKind::kLt:
      return Compare(CompareOp::kLt, c);
    case IndicatorKind::kLe:
      return Compare(CompareOp::kLe, c);
    case IndicatorKind::kAnd:
      return Logic(true);
    case IndicatorKind::kOr:
      return Logic(false);
    case IndicatorKind::kNot:
      return Not{};
    case IndicatorKind::kAdd:
      return Arith(ArithOp::kAdd, c);
    case IndicatorKind::kSub:
      return Arith(ArithOp::kSub, c);
    case IndicatorKind::kMul:
      return Arith(ArithOp::kMul, c);
    case IndicatorKind::kDiv:
      return Arith(ArithOp::kDiv, c);
  }
  return Returns{};
}

// The line a node emits (kMain for single-line kinds); `output` was checked.
Line line_of(IndicatorKind k, const IndicatorParams& p) {
  for (const auto& [name, line] : lines_of(k)) {
    if (name == p.output) return line;
  }
  return Line::kMain;
}

// kInvalidArgument naming the node when `count` inputs or a parameter do not
// suit the kind.
Result<void> check_indicator(const std::string& name, IndicatorKind k, const IndicatorParams& p,
                             size_t count) {
  auto bad = [&](std::string_view what) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("node '{}': {}", name, what));
  };
  const std::string_view kind = indicator_name(k);
  const Arity a = arity_of(k);
  if (p.value) {
    if (!a.constant) return bad(fmt::format("{} takes no value", kind));
    if (!std::isfinite(*p.value)) return bad("value must be a finite number");
    if (count != a.min - 1) {
      return bad(fmt::format("{} with a value takes {} input, not {}", kind, a.min - 1, count));
    }
  } else if (count < a.min || count > a.max) {
    const std::string want = a.min == a.max      ? fmt::format("{}", a.min)
                             : a.max > a.min + 1 ? fmt::format("{} to {}", a.min, a.max)
                                                 : fmt::format("{} or {}", a.min, a.max);
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("node '{}' takes {} input{}{}, not {}", name, want, a.max == 1 ? "" : "s",
                    a.constant ? " (or 1 and a value)" : "", count));
  }
  if ((k == IndicatorKind::kRollingStd || k == IndicatorKind::kBollinger) && p.n < 2) {
    return bad(fmt::format("{} needs n >= 2", kind));
  }
  if (k == IndicatorKind::kMacd) {
    if (p.fast < 1 || p.slow < 1) return bad("macd's fast and slow must be at least 1");
    if (p.fast >= p.slow) {
      return bad(
          fmt::format("macd's fast ({}) must be shorter than its slow ({})", p.fast, p.slow));
    }
  }
  if (k == IndicatorKind::kBollinger && !(std::isfinite(p.k) && p.k > 0)) {
    return bad("bollinger's k must be a positive number");
  }
  const auto lines = lines_of(k);
  if (lines.empty() && !p.output.empty())
    return bad(fmt::format("{} draws one line: no output", kind));
  if (!lines.empty()) {
    std::string names;
    for (const auto& [line_name, line] : lines) {
      if (line_name == p.output) return {};
      names += (names.empty() ? "" : ", ") + std::string(line_name);
    }
    return bad(fmt::format("{} needs output: one of {}{}", kind, names,
                           p.output.empty() ? "" : fmt::format(" (not '{}')", p.output)));
  }
  return {};
}

TimePoint bucket_of(TimePoint ts, Duration interval) {
  const auto t = ts.time_since_epoch().count();
  const auto iv = interval.count();
  auto q = t / iv;
  if (t % iv != 0 && t < 0) --q;  // floor, also before 1970
  return TimePoint(Duration(q * iv));
}

}  // namespace

std::string_view node_state_name(NodeState s) {
  static constexpr std::array<std::string_view, 5> kNames{"Initialized", "PreWarmup", "Active",
                                                          "Completed", "Error"};
  return enum_name(s, kNames);
}

std::string_view indicator_name(IndicatorKind k) {
  static constexpr std::array<std::string_view, kAllKinds.size()> kNames{
      "returns",     "sma",         "ema", "rsi",       "rolling_std", "zscore", "crossover",
      "rolling_max", "rolling_min", "roc", "bollinger", "atr",         "macd",   "stochastic",
      "donchian",    "vwap",        "gt",  "ge",        "lt",          "le",     "and",
      "or",          "not",         "add", "sub",       "mul",         "div"};
  return enum_name(k, kNames);
}

Result<IndicatorKind> parse_indicator(std::string_view name) {
  std::string known;
  for (auto k : kAllKinds) {
    if (indicator_name(k) == name) return k;
    known += (known.empty() ? "" : ", ") + std::string(indicator_name(k));
  }
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("unknown indicator '{}'; use one of {}", name, known));
}

double WindowView::operator[](size_t k) const {
  const size_t cap = values_->size();
  if (k >= cap) k %= cap;  // outside the contract (k < size()); wraps as before
  return (*values_)[head_ >= k ? head_ - k : head_ + cap - k];
}

// Evaluation is a sweep, not a recursion: when inputs close buckets, the
// derived nodes below them are visited once each in topological order, and a
// node computes when all its inputs hold the same latest bucket and it has not
// computed that bucket yet. A node with several inputs thus computes once per
// bucket however many of its inputs closed it, with no per-input bookkeeping.
struct Dag::Impl {
  enum class Kind { kInput, kIndicator, kCompute };
  struct Node {
    Kind kind = Kind::kInput;
    std::string name;
    std::vector<std::string> input_names;
    std::vector<size_t> inputs;
    // Derived nodes, from build(): the first and second inputs (the vector of
    // nodes does not move after build()).
    const Node* first = nullptr;
    const Node* second = nullptr;
    const Node* third = nullptr;
    Duration interval{0};
    size_t period = 1;
    IndicatorKind indicator_kind = IndicatorKind::kReturns;
    IndicatorParams params;    // indicators only
    AnyIndicator indicator;    // indicators only, from build()
    std::vector<double> args;  // indicators of more than three inputs: their values
    // Derived nodes, from build(): computes the node if it is due.
    void (*step)(Impl&, Node&) = nullptr;
    TimedComputeFn fn;
    NodeState state = NodeState::kInitialized;
    // The latest output (valid once `emitted`).
    bool emitted = false;
    TimePoint last_ts{};
    double last_value = 0;
    // Derived nodes: the bucket computed last, so each bucket computes once.
    bool computed = false;
    TimePoint computed_ts{};
    // Emitted values, newest at hist_head, for the windows of compute dependents
    // (kept only when a compute node reads this one).
    bool keeps_history = false;
    std::vector<double> hist = std::vector<double>(1);
    size_t hist_head = 0, hist_size = 0;
    // Inputs only: the open bucket.
    std::optional<TimePoint> open_bucket;
    std::optional<TimePoint> last_closed;
    double open_value = 0;
    size_t closed_buckets = 0;
    // Inputs only: the derived nodes that read this input, directly or not, in
    // topological order.
    std::vector<Node*> downstream;
    // Compute nodes: the windows handed to `fn`, reused from call to call.
    std::vector<WindowView> windows;
    // Subscribers to this node's outputs (the order node, observers).
    std::vector<std::function<void(TimePoint, double)>> sinks;
  };

  std::vector<Node> nodes;
  std::map<std::string, size_t, std::less<>> by_name;
  std::vector<size_t> input_ids;  // after build(), for close_buckets
  std::vector<Node*> derived;     // after build(): every non-input node, in topological order
  bool built = false;
  std::optional<Error> failure;
  std::function<void(std::string_view, TimePoint, double)> on_output;
  uint64_t updates = 0;

  void fail(Node& n, std::string message) {
    n.state = NodeState::kError;
    if (!failure) {
      failure = Error{ErrorCode::kFailedPrecondition,
                      fmt::format("node '{}': {}", n.name, std::move(message))};
    }
  }

  void emit(Node& n, TimePoint ts, double v) {
    n.state = NodeState::kActive;
    n.emitted = true;
    n.last_ts = ts;
    n.last_value = v;
    if (n.keeps_history) {
      // No modulo: a division per emitted value is measurable in a backtest.
      if (++n.hist_head == n.hist.size()) n.hist_head = 0;
      n.hist[n.hist_head] = v;
      n.hist_size = std::min(n.hist_size + 1, n.hist.size());
    }
    if (on_output) on_output(n.name, ts, v);
    for (const auto& sink : n.sinks) sink(ts, v);
  }

  void sweep(const std::vector<Node*>& order) {
    for (Node* n : order) n->step(*this, *n);
  }

  // True when `n`'s inputs hold a bucket it has not computed yet, which is
  // then `ts` and counted as computed; moves `n` to PreWarmup on its first
  // input. kArity: 1, 2 or 3 inputs known at compile time, 0 for any number.
  template <int kArity>
  bool due(Node& n, TimePoint& ts) {
    const Node& first = *n.first;
    ts = first.last_ts;
    bool ready = first.emitted;
    bool any = ready;
    if constexpr (kArity == 2) {
      const Node& second = *n.second;
      any |= second.emitted;
      ready &= second.emitted && second.last_ts == ts;
    } else if constexpr (kArity == 0 || kArity == 3) {
      for (size_t k = 1; k < n.inputs.size(); ++k) {
        const Node& src = nodes[n.inputs[k]];
        any |= src.emitted;
        ready &= src.emitted && src.last_ts == ts;
      }
    }
    if (any && n.state == NodeState::kInitialized) n.state = NodeState::kPreWarmup;
    if (!ready || (n.computed && n.computed_ts >= ts)) return false;
    n.computed = true;
    n.computed_ts = ts;
    ++updates;
    return true;
  }

  void deliver(Node& n, TimePoint ts, std::optional<double> out) {
    if (!out) return;
    if (!std::isfinite(*out)) {
      fail_non_finite(n, *out, ts);
      return;
    }
    emit(n, ts, *out);
  }

  // One step function per indicator type and number of inputs, chosen at
  // build(): no dispatch on the node's kind or its indicator's type per value.
  template <class Ind, int kArity>
  static void step_indicator(Impl& self, Node& n) {
    if (n.state == NodeState::kError) return;
    TimePoint ts;
    if (!self.due<kArity>(n, ts)) return;
    auto& ind = *std::get_if<Ind>(&n.indicator);
    if constexpr (kArity == 1) {
      self.deliver(n, ts, ind.update(n.first->last_value));
    } else if constexpr (kArity == 2) {
      self.deliver(n, ts, ind.update(n.first->last_value, n.second->last_value));
    } else if constexpr (kArity == 3) {
      self.deliver(n, ts,
                   ind.update(n.first->last_value, n.second->last_value, n.third->last_value));
    } else {
      for (size_t k = 0; k < n.inputs.size(); ++k) n.args[k] = self.nodes[n.inputs[k]].last_value;
      self.deliver(n, ts, ind.update(std::span<const double>(n.args)));
    }
  }

  static void step_compute(Impl& self, Node& n) {
    if (n.state == NodeState::kError) return;
    TimePoint ts;
    if (!self.due<0>(n, ts)) return;
    self.deliver(n, ts, self.call_fn(n, ts));
  }

  using StepFn = void (*)(Impl&, Node&);
  // The step of a derived node; null when its indicator cannot take that many
  // inputs (build() checks the count first, so null is a bug).
  static StepFn step_for(const Node& n) {
    if (n.kind == Kind::kCompute) return &step_compute;
    const size_t count = n.inputs.size();
    return std::visit(
        [count](const auto& ind) -> StepFn {
          using Ind = std::decay_t<decltype(ind)>;
          if constexpr (requires(Ind i, double x) { i.update(x); }) {
            if (count == 1) return &step_indicator<Ind, 1>;
          }
          if constexpr (requires(Ind i, double x) { i.update(x, x); }) {
            if (count == 2) return &step_indicator<Ind, 2>;
          }
          if constexpr (requires(Ind i, double x) { i.update(x, x, x); }) {
            if (count == 3) return &step_indicator<Ind, 3>;
          }
          if constexpr (requires(Ind i, std::span<const double> xs) { i.update(xs); }) {
            if (count >= 3) return &step_indicator<Ind, 0>;
          }
          return nullptr;
        },
        n.indicator);
  }

  // A compute node's function over windows of its inputs; nullopt while an
  // input has fewer than `period` values or when the function fails (which
  // fails the node). Out of line: it keeps the indicators' path short.
  [[gnu::noinline]] std::optional<double> call_fn(Node& n, TimePoint ts) {
    n.windows.clear();
    for (size_t in : n.inputs) {
      const Node& src = nodes[in];
      if (src.hist_size < n.period) return std::nullopt;  // still warming up
      n.windows.emplace_back(&src.hist, src.hist_head, n.period);
    }
    try {
      return n.fn(ts, n.windows);
    } catch (const NodeFailure& e) {
      fail(n, e.what());
      return std::nullopt;
    } catch (const std::exception& e) {
      fail(n, fmt::format("its function threw: {}", e.what()));
      return std::nullopt;
    }
  }

  [[gnu::cold, gnu::noinline]] void fail_non_finite(Node& n, double v, TimePoint ts) {
    fail(n, fmt::format("computed {} for {}", v, format_timestamp(ts)));
  }

  // Closes input `i`'s open bucket; true when it emitted (its window is full).
  bool close_bucket(size_t i) {
    Node& n = nodes[i];
    const TimePoint ts = *n.open_bucket;
    n.open_bucket.reset();
    n.last_closed = ts;
    ++n.closed_buckets;
    if (n.closed_buckets < n.period) return false;  // PreWarmup: no output yet
    emit(n, ts, n.open_value);
    return true;
  }
};

Dag::Dag() : impl_(std::make_unique<Impl>()) {}
Dag::~Dag() = default;
Dag::Dag(Dag&&) noexcept = default;
Dag& Dag::operator=(Dag&&) noexcept = default;

// Nodes are built field by field: a designated initializer that leaves the
// params' string to its default trips GCC 12's -Wmaybe-uninitialized.
void Dag::input(std::string name, Duration interval, size_t period) {
  Impl::Node& n = impl_->nodes.emplace_back();
  n.kind = Impl::Kind::kInput;
  n.name = std::move(name);
  n.interval = interval;
  n.period = period;
  impl_->built = false;  // the nodes may have moved: build() again
}

void Dag::indicator(std::string name, IndicatorKind kind, std::vector<std::string> inputs,
                    size_t n) {
  IndicatorParams params;
  params.n = n;
  indicator(std::move(name), kind, std::move(inputs), std::move(params));
}

void Dag::indicator(std::string name, IndicatorKind kind, std::vector<std::string> inputs,
                    IndicatorParams params) {
  Impl::Node& node = impl_->nodes.emplace_back();
  node.kind = Impl::Kind::kIndicator;
  node.name = std::move(name);
  node.input_names = std::move(inputs);
  node.period = params.n;
  node.indicator_kind = kind;
  node.params = std::move(params);
  impl_->built = false;  // the nodes may have moved: build() again
}

void Dag::compute(std::string name, std::vector<std::string> inputs, size_t period, ComputeFn fn) {
  timed_compute(
      std::move(name), std::move(inputs), period,
      [fn = std::move(fn)](TimePoint, const std::vector<WindowView>& w) { return fn(w); });
}

void Dag::timed_compute(std::string name, std::vector<std::string> inputs, size_t period,
                        TimedComputeFn fn) {
  Impl::Node& node = impl_->nodes.emplace_back();
  node.kind = Impl::Kind::kCompute;
  node.name = std::move(name);
  node.input_names = std::move(inputs);
  node.period = period;
  node.fn = std::move(fn);
  impl_->built = false;  // the nodes may have moved: build() again
}

Result<void> Dag::build() {
  auto& nodes = impl_->nodes;
  impl_->built = false;
  auto bad = [](std::string msg) {
    return make_error(ErrorCode::kInvalidArgument, std::move(msg));
  };
  impl_->by_name.clear();
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].name.empty()) return bad("a node needs a name");
    if (!impl_->by_name.emplace(nodes[i].name, i).second) {
      return bad(fmt::format("node name '{}' is used twice", nodes[i].name));
    }
  }
  for (auto& n : nodes) {
    if (n.period < 1) return bad(fmt::format("node '{}': period must be at least 1", n.name));
    if (n.kind == Impl::Kind::kInput) {
      if (n.interval.count() <= 0) {
        return bad(fmt::format("input '{}': interval must be positive", n.name));
      }
      continue;
    }
    if (n.kind == Impl::Kind::kIndicator) {
      if (auto r = check_indicator(n.name, n.indicator_kind, n.params, n.input_names.size()); !r) {
        return r;
      }
    } else if (n.input_names.empty()) {
      return bad(fmt::format("node '{}' takes 1 input, not 0", n.name));
    }
    n.inputs.clear();
    for (const auto& in : n.input_names) {
      auto it = impl_->by_name.find(in);
      if (it == impl_->by_name.end()) {
        return bad(fmt::format("node '{}' reads '{}', which is not a node", n.name, in));
      }
      n.inputs.push_back(it->second);
    }
  }
  // Depth-first order; a grey node met again closes a cycle.
  std::vector<int> color(nodes.size(), 0);
  std::vector<size_t> order, path;
  std::optional<std::string> cycle;
  auto visit = [&](auto&& self, size_t i) -> void {
    if (cycle || color[i] == 2) return;
    if (color[i] == 1) {
      auto from = std::find(path.begin(), path.end(), i);
      std::string text;
      for (auto it = from; it != path.end(); ++it) text += nodes[*it].name + " -> ";
      cycle = text + nodes[i].name;
      return;
    }
    color[i] = 1;
    path.push_back(i);
    for (size_t in : nodes[i].inputs) self(self, in);
    path.pop_back();
    color[i] = 2;
    order.push_back(i);
  };
  for (size_t i = 0; i < nodes.size(); ++i) visit(visit, i);
  if (cycle) return bad(fmt::format("the nodes form a cycle: {}", *cycle));
  for (size_t i : order) {
    auto& n = nodes[i];
    if (n.kind == Impl::Kind::kInput) continue;
    n.interval = nodes[n.inputs[0]].interval;
    for (size_t in : n.inputs) {
      if (nodes[in].interval != n.interval) {
        return bad(fmt::format(
            "node '{}' mixes inputs of different intervals: '{}' every {} "
            "and '{}' every {}",
            n.name, nodes[n.inputs[0]].name, format_duration(nodes[n.inputs[0]].interval),
            nodes[in].name, format_duration(nodes[in].interval)));
      }
    }
    if (n.kind == Impl::Kind::kIndicator) {
      n.indicator = make_indicator(n.indicator_kind, n.params, line_of(n.indicator_kind, n.params));
      n.args.assign(n.inputs.size(), 0.0);
    }
  }
  for (size_t i : order) {
    for (size_t in : nodes[i].inputs) {
      if (nodes[i].kind != Impl::Kind::kCompute) continue;
      nodes[in].keeps_history = true;
      if (nodes[in].hist.size() < nodes[i].period) nodes[in].hist.assign(nodes[i].period, 0.0);
    }
  }
  impl_->input_ids.clear();
  impl_->derived.clear();
  for (size_t i : order) {
    auto& n = nodes[i];
    if (n.kind == Impl::Kind::kInput) continue;
    n.first = &nodes[n.inputs[0]];
    n.second = n.inputs.size() > 1 ? &nodes[n.inputs[1]] : nullptr;
    n.third = n.inputs.size() > 2 ? &nodes[n.inputs[2]] : nullptr;
    n.step = Impl::step_for(n);
    if (n.step == nullptr) return bad(fmt::format("node '{}': no step for its inputs", n.name));
    impl_->derived.push_back(&n);
  }
  for (size_t j = 0; j < nodes.size(); ++j) {
    if (nodes[j].kind != Impl::Kind::kInput) continue;
    impl_->input_ids.push_back(j);
    // Inputs come before their readers in `order`, so one pass marks every
    // node that reads j, directly or through others.
    std::vector<char> reads(nodes.size(), 0);
    reads[j] = 1;
    nodes[j].downstream.clear();
    for (Impl::Node* n : impl_->derived) {
      const auto i = static_cast<size_t>(n - nodes.data());
      for (size_t in : n->inputs) {
        if (reads[in] != 0) reads[i] = 1;
      }
      if (reads[i]) nodes[j].downstream.push_back(n);
    }
  }
  impl_->built = true;
  return {};
}

Result<void> Dag::push(std::string_view input, TimePoint ts, double value) {
  if (!impl_->built) {
    return make_error(ErrorCode::kFailedPrecondition, "call build() before feeding the Dag");
  }
  auto id = find_input(input);
  if (!id) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("'{}' is not an input node", input));
  }
  return push(*id, ts, value);
}

std::optional<Dag::InputId> Dag::find_input(std::string_view name) const {
  auto it = impl_->by_name.find(name);
  if (it == impl_->by_name.end() || impl_->nodes[it->second].kind != Impl::Kind::kInput) {
    return std::nullopt;
  }
  return InputId{it->second};
}

Result<void> Dag::subscribe(std::string_view node, std::function<void(TimePoint, double)> fn) {
  auto it = impl_->by_name.find(node);
  if (it == impl_->by_name.end()) {
    return make_error(ErrorCode::kNotFound, fmt::format("no node '{}'", node));
  }
  impl_->nodes[it->second].sinks.push_back(std::move(fn));
  return {};
}

Result<void> Dag::push(InputId id, TimePoint ts, double value) {
  if (!impl_->built) {
    return make_error(ErrorCode::kFailedPrecondition, "call build() before feeding the Dag");
  }
  if (id.index >= impl_->nodes.size() || impl_->nodes[id.index].kind != Impl::Kind::kInput) {
    return make_error(ErrorCode::kInvalidArgument, "not an input node of this Dag");
  }
  auto& n = impl_->nodes[id.index];
  const std::string_view input = n.name;
  if (!std::isfinite(value)) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("input '{}' at {}: {} is not a number", input, format_timestamp(ts), value));
  }
  const TimePoint bucket = bucket_of(ts, n.interval);
  if (!n.open_bucket && n.last_closed && bucket <= *n.last_closed) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("input '{}': the bucket of {} is already closed", input, format_timestamp(ts)));
  }
  if (n.open_bucket && bucket < *n.open_bucket) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("input '{}': {} is older than the open bucket {}", input,
                                  format_timestamp(ts), format_timestamp(*n.open_bucket)));
  }
  if (n.state == NodeState::kInitialized) n.state = NodeState::kPreWarmup;
  if (n.open_bucket && bucket > *n.open_bucket && impl_->close_bucket(id.index)) {
    impl_->sweep(n.downstream);
  }
  impl_->nodes[id.index].open_bucket = bucket;
  impl_->nodes[id.index].open_value = value;
  return {};
}

void Dag::close_buckets() {
  // One sweep for all the buckets closed here: a node reading several inputs
  // computes once, after all of them.
  size_t emitted = 0, last = 0;
  for (size_t i : impl_->input_ids) {
    if (impl_->nodes[i].open_bucket && impl_->close_bucket(i)) {
      ++emitted;
      last = i;
    }
  }
  if (emitted == 1) {
    impl_->sweep(impl_->nodes[last].downstream);
  } else if (emitted > 1) {
    impl_->sweep(impl_->derived);
  }
}

bool Dag::is_input(std::string_view name) const {
  auto it = impl_->by_name.find(name);
  return it != impl_->by_name.end() && impl_->nodes[it->second].kind == Impl::Kind::kInput;
}

std::optional<IndicatorKind> Dag::indicator_kind(std::string_view name) const {
  auto it = impl_->by_name.find(name);
  if (it == impl_->by_name.end()) return std::nullopt;
  const auto& n = impl_->nodes[it->second];
  if (n.kind != Impl::Kind::kIndicator) return std::nullopt;
  return n.indicator_kind;
}

std::vector<std::string> Dag::input_names() const {
  std::vector<std::string> out;
  for (const auto& n : impl_->nodes) {
    if (n.kind == Impl::Kind::kInput) out.push_back(n.name);
  }
  return out;
}

std::optional<Duration> Dag::input_interval(std::string_view name) const {
  for (const auto& n : impl_->nodes) {
    if (n.kind == Impl::Kind::kInput && n.name == name) return n.interval;
  }
  return std::nullopt;
}

void Dag::finish() {
  close_buckets();
  for (auto& n : impl_->nodes) {
    if (n.state != NodeState::kError) n.state = NodeState::kCompleted;
  }
}

void Dag::on_output(std::function<void(std::string_view, TimePoint, double)> fn) {
  impl_->on_output = std::move(fn);
}

NodeState Dag::state(std::string_view node) const {
  auto it = impl_->by_name.find(node);
  return it == impl_->by_name.end() ? NodeState::kError : impl_->nodes[it->second].state;
}

std::optional<std::pair<TimePoint, double>> Dag::latest(std::string_view node) const {
  auto it = impl_->by_name.find(node);
  if (it == impl_->by_name.end()) return std::nullopt;
  const auto& n = impl_->nodes[it->second];
  if (!n.emitted) return std::nullopt;
  return std::pair{n.last_ts, n.last_value};
}

const std::optional<Error>& Dag::failure() const { return impl_->failure; }

uint64_t Dag::updates() const { return impl_->updates; }

}  // namespace qmtl::sdk
