// libFuzzer target for the policy parser and the expression language.
//
// The first byte picks what the rest is: a gate expression, a score expression,
// a native policy document, or a document of either form (QMTL's included). Beyond "no crash, no
// leak, no UB", it checks the properties the engine relies on: canonical text round-trips, and
// evaluation never yields anything but true/false/missing or a finite number.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "qmtl/policy/document.h"
#include "qmtl/policy/policy.h"
#include "qmtl/policy/selection.h"

namespace {

using namespace qmtl::policy;

void check(bool ok) {
  if (!ok) std::abort();
}

void fuzz_expr(std::string_view text, ExprType type) {
  RefTable table;
  auto e = Expr::compile(text, type, table);
  if (!e) {
    check(e.error().offset <= text.size());
    check(!e.error().message.empty());
    return;
  }
  const std::string canon = e->to_string();
  RefTable again_table;
  auto again = Expr::compile(canon, type, again_table);
  check(again.has_value());
  check(again->to_string() == canon);
  // Evaluate with present, missing and extreme values.
  for (double v : {0.0, -1.0, 1e308, std::nan("")}) {
    std::vector<std::optional<double>> slots(table.size());
    for (size_t i = 0; i < slots.size(); ++i) {
      if (i % 2 == 0) slots[i] = v;
    }
    if (type == ExprType::kBool) {
      std::vector<ClauseResult> clauses;
      const Tri t = e->test(slots, &clauses);
      check(t == Tri::kTrue || t == Tri::kFalse || t == Tri::kMissing);
    } else {
      const auto x = e->value(slots);
      check(!x || std::isfinite(*x));
    }
  }
}

void fuzz_policy(std::string_view text) {
  auto p = parse_policy(text, "fuzz");
  if (!p) {
    check(!p.error().message.empty());
    return;
  }
  const std::string printed = print_policy(*p);
  auto again = parse_policy(printed, "printed");
  check(again.has_value());
  check(*again == *p);
  // A small selection over the parsed policy must not crash either.
  std::vector<Candidate> cands(3);
  for (size_t i = 0; i < cands.size(); ++i) {
    cands[i].id = std::string(1, static_cast<char>('a' + i));
    cands[i].state = i == 0   ? CandidateState::kLive
                     : i == 1 ? CandidateState::kDryRun
                              : CandidateState::kValidating;
    cands[i].history = p->window;
    cands[i].values.assign(p->refs.size(), std::optional<double>(0.5 * static_cast<double>(i)));
  }
  const auto sel = select(*p, cands, {.now = {}}, {.pairs = {{"a", "b", 0.9}}});
  check(sel.results.size() == cands.size());
}

void fuzz_document(std::string_view text) {
  auto doc = parse_policy_document(text, "fuzz");
  if (!doc) {
    check(!doc.error().message.empty());
    return;
  }
  if (const auto* q = std::get_if<QmtlPolicy>(&*doc)) {
    QmtlInput in;
    in.metrics = {
        {"a", {{"sharpe", 1.0}}}, {"b", {{"sharpe", 2.0}, {"max_drawdown", 0.1}}}, {"c", {}}};
    in.previous = {"a"};
    in.correlations = {{"a", "b", 0.9}};
    in.stage = "paper";
    const auto r = evaluate_qmtl(*q, in);
    check(r.strategies.size() == 3);
    check(r.selected.size() <= 3);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0:
      fuzz_expr(rest, ExprType::kBool);
      break;
    case 1:
      fuzz_expr(rest, ExprType::kNumber);
      break;
    case 2:
      fuzz_policy(rest);
      break;
    default:
      fuzz_document(rest);
  }
  return 0;
}
