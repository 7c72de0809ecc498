#include "qmtl/policy/selection.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <unordered_map>

#include "qmtl/core/duration.h"
#include "qmtl/core/enum_name.h"

namespace qmtl::policy {
namespace {

std::string fmt_value(std::optional<double> v) {
  return v ? fmt::format("{:.4g}", *v) : std::string("missing");
}

// Names the clauses whose result is `want` (and those that are missing), with
// their values, for the reason text.
std::string clauses_with(const std::vector<ClauseResult>& clauses, Tri want) {
  std::vector<std::string> parts;
  for (const auto& c : clauses) {
    if (c.pass == Tri::kMissing) {
      parts.push_back(fmt::format("{} (missing)", c.expr));
    } else if (c.pass == want) {
      parts.push_back(fmt::format("{} ({})", c.expr, fmt_value(c.value)));
    }
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

class UnionFind {
 public:
  explicit UnionFind(size_t n) : parent_(n), size_(n, 1) {
    std::iota(parent_.begin(), parent_.end(), size_t{0});
  }
  size_t find(size_t x) {
    while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  void unite(size_t a, size_t b) {
    a = find(a);
    b = find(b);
    if (a == b) return;
    const size_t root = std::min(a, b), child = std::max(a, b);
    parent_[child] = root;
    size_[root] += size_[child];
  }
  // Members of x's set (valid for roots and non-roots alike).
  size_t size_of(size_t x) { return size_[find(x)]; }

 private:
  std::vector<size_t> parent_;
  std::vector<size_t> size_;
};

// "a", "a and b", "a, b and c": names for a reason.
std::string names_of(std::span<const Candidate> candidates, const std::vector<size_t>& who) {
  std::vector<std::string_view> names;
  names.reserve(who.size());
  for (size_t i : who) names.push_back(candidates[i].id);
  if (names.size() <= 1) return names.empty() ? std::string() : std::string(names.front());
  return fmt::format("{} and {}", fmt::join(names.begin(), names.end() - 1, ", "), names.back());
}

// The live set being built, and whether one more strategy fits it: at most
// top_k members, and no connected component of correlation >= max among the
// members larger than per_group. Members are added one at a time; a union-find
// over them keeps each component's size, so a check costs one correlation
// lookup per member.
class LiveCaps {
 public:
  struct Breach {
    bool top_k = false;           // else the correlation group
    std::vector<size_t> holders;  // the members that fill the slot(s)
    double value = 0;             // group: the strongest correlation with a holder
  };

  LiveCaps(const Policy& policy, std::span<const Candidate> candidates,
           const Correlations& correlations)
      : policy_(policy),
        candidates_(candidates),
        correlations_(correlations),
        groups_(candidates.size()) {
    if (!policy.correlation || correlations.matrix != nullptr) return;
    std::unordered_map<std::string_view, size_t> index;
    for (size_t i = 0; i < candidates.size(); ++i) index.emplace(candidates[i].id, i);
    for (const auto& p : correlations.pairs) {
      const auto a = index.find(p.a), b = index.find(p.b);
      if (a == index.end() || b == index.end() || a->second == b->second) continue;
      pairs_[std::minmax(a->second, b->second)] = p.value;
    }
  }

  std::optional<Breach> check(size_t i) {
    if (policy_.top_k && members_.size() >= static_cast<size_t>(*policy_.top_k)) {
      return Breach{.top_k = true, .holders = members_};
    }
    if (!policy_.correlation) return std::nullopt;
    const double max = policy_.correlation->max;
    std::vector<size_t> roots;
    double strongest = 0;
    bool linked = false;
    for (size_t j : members_) {
      const auto v = correlation(i, j);
      if (!v || *v < max) continue;
      strongest = linked ? std::max(strongest, *v) : *v;
      linked = true;
      const size_t r = groups_.find(j);
      if (std::find(roots.begin(), roots.end(), r) == roots.end()) roots.push_back(r);
    }
    size_t size = 1;
    for (size_t r : roots) size += groups_.size_of(r);
    if (size <= static_cast<size_t>(policy_.correlation->per_group)) return std::nullopt;
    Breach b{.top_k = false, .value = strongest};
    for (size_t j : members_) {
      if (std::find(roots.begin(), roots.end(), groups_.find(j)) != roots.end()) {
        b.holders.push_back(j);
      }
    }
    return b;
  }

  void add(size_t i) {
    if (policy_.correlation) {
      for (size_t j : members_) {
        const auto v = correlation(i, j);
        if (v && *v >= policy_.correlation->max) groups_.unite(i, j);
      }
    }
    members_.push_back(i);
  }

  const std::vector<size_t>& members() const { return members_; }

  // The breach as the end of a sentence: "top_k 2 is full (a and b are Live)".
  std::string describe(const Breach& b) const {
    if (b.top_k) {
      return fmt::format("top_k {} is full ({} {} Live)", *policy_.top_k,
                         names_of(candidates_, b.holders), b.holders.size() == 1 ? "is" : "are");
    }
    return fmt::format(
        "correlation {:.3f} >= {} with {} (Live), and a correlation group may have at most {} Live",
        b.value, policy_.correlation->max, names_of(candidates_, b.holders),
        policy_.correlation->per_group);
  }

 private:
  std::optional<double> correlation(size_t i, size_t j) const {
    if (correlations_.matrix != nullptr) return correlations_.matrix->at(i, j);
    const auto it = pairs_.find(std::minmax(i, j));
    if (it == pairs_.end()) return std::nullopt;
    return it->second;
  }

  const Policy& policy_;
  std::span<const Candidate> candidates_;
  const Correlations& correlations_;
  std::map<std::pair<size_t, size_t>, double> pairs_;
  UnionFind groups_;
  std::vector<size_t> members_;
};

// Adds the reason `text()` makes, when the context asks for reasons: making
// the texts is most of a selection's cost, and a replay needs them only where
// it explains.
template <typename F>
void say_if(const EvalContext& ctx, StrategyResult& r, F text) {
  if (explains(ctx, r.id)) r.reasons.emplace_back(text());
}

// A held time for people, in its two largest units: "8d 23h", "5h 12m", "42s".
std::string held_text(Duration d) {
  using namespace std::chrono;
  const auto secs = duration_cast<seconds>(d).count();
  const auto two = [](int64_t big, const char* bu, int64_t small, const char* su) {
    return small == 0 ? fmt::format("{}{}", big, bu) : fmt::format("{}{} {}{}", big, bu, small, su);
  };
  if (secs >= 86'400) return two(secs / 86'400, "d", secs % 86'400 / 3600, "h");
  if (secs >= 3600) return two(secs / 3600, "h", secs % 3600 / 60, "m");
  if (secs >= 60) return two(secs / 60, "m", secs % 60, "s");
  return fmt::format("{}s", secs);
}

// How long (or how many evaluations) `holds` has been true up to and including
// now, and whether that satisfies `need` (the text only when `explain`).
template <typename Pred>
std::pair<bool, std::string> held(const Holding& need, const std::vector<PastEvaluation>& past,
                                  TimePoint now, bool explain, Pred holds) {
  size_t streak = 1;  // this evaluation
  TimePoint since = now;
  for (auto it = past.rbegin(); it != past.rend() && holds(*it); ++it) {
    ++streak;
    since = it->at;
  }
  if (const auto* d = std::get_if<Duration>(&need.value)) {
    const Duration held_for = now - since;
    return {held_for >= *d, explain
                                ? fmt::format("{} of {}", held_text(held_for), format_duration(*d))
                                : std::string()};
  }
  const int n = std::get<int>(need.value);
  return {static_cast<int>(streak) >= n,
          explain ? fmt::format("{} of {} evaluations", streak, n) : std::string()};
}

}  // namespace

bool explains(const EvalContext& ctx, std::string_view id) {
  return ctx.explain &&
         (ctx.explain_only.empty() ||
          std::binary_search(ctx.explain_only.begin(), ctx.explain_only.end(), id, std::less<>()));
}

std::string_view decision_name(Decision d) {
  static constexpr std::array<std::string_view, 5> kNames{"PROMOTE", "DEMOTE", "HOLD", "REJECT",
                                                          "INELIGIBLE"};
  return enum_name(d, kNames);
}

namespace {

// Steps 1-3 for one candidate: eligibility, its state's gate, and its score.
// True when it competes for a live slot (gate passed, score present).
bool gate_and_score(const Policy& policy, const Candidate& c, const EvalContext& ctx,
                    StrategyResult& r) {
  r.id = c.id;
  const auto say = [&](auto text) { say_if(ctx, r, text); };
  std::vector<ClauseResult>* clauses = explains(ctx, c.id) ? &r.clauses : nullptr;
  r.record.at = ctx.now;
  switch (c.state) {
    case CandidateState::kOther:
      r.decision = Decision::kIneligible;
      say([&] {
        return fmt::format("state {} is not evaluated",
                           c.state_name.empty() ? "other" : c.state_name);
      });
      return false;
    case CandidateState::kValidating: {
      if (!policy.reject) {
        r.decision = Decision::kHold;
        say([&] { return "validation passed: the policy has no reject gate"; });
        return false;
      }
      r.gate = "reject";
      r.gate_result = policy.reject->test(c.values, clauses);
      if (r.gate_result == Tri::kFalse) {
        r.decision = Decision::kHold;
        say([&] { return "validation passed: the reject gate is false"; });
      } else {
        r.decision = Decision::kReject;
        say([&] {
          return r.gate_result == Tri::kTrue
                     ? fmt::format("reject gate is true: {}", clauses_with(r.clauses, Tri::kTrue))
                     : fmt::format("reject gate cannot be evaluated: {}",
                                   clauses_with(r.clauses, Tri::kTrue));
        });
      }
      return false;
    }
    case CandidateState::kDryRun: {
      if (policy.min_dry_run > Duration::zero()) {
        const Duration in_dry_run = c.dry_run_since ? ctx.now - *c.dry_run_since : Duration::zero();
        if (in_dry_run < policy.min_dry_run) {
          r.decision = Decision::kIneligible;
          say([&] {
            return fmt::format(
                "in dry-run for {}; min_dry_run is {}",
                format_duration(std::chrono::floor<std::chrono::seconds>(in_dry_run)),
                format_duration(policy.min_dry_run));
          });
          return false;
        }
      }
      if (c.history < policy.window) {
        r.decision = Decision::kIneligible;
        say([&] {
          return fmt::format("only {} of data; the evaluation window is {}",
                             format_duration(std::chrono::floor<std::chrono::seconds>(c.history)),
                             format_duration(policy.window));
        });
        return false;
      }
      r.gate = "promote";
      r.gate_result = policy.promote.test(c.values, clauses);
      r.record.promote_pass = r.gate_result == Tri::kTrue;
      if (r.gate_result != Tri::kTrue) {
        r.decision = Decision::kHold;
        say([&] {
          return fmt::format("promote gate {}: {}",
                             r.gate_result == Tri::kFalse ? "failed" : "has missing values",
                             clauses_with(r.clauses, Tri::kFalse));
        });
        return false;
      }
      say([&] { return "promote gate passed"; });
      break;
    }
    case CandidateState::kLive: {
      r.gate = "demote";
      r.gate_result = policy.demote.test(c.values, clauses);
      if (r.gate_result != Tri::kFalse) {
        say([&] {
          return r.gate_result == Tri::kTrue
                     ? fmt::format("demote gate is true: {}", clauses_with(r.clauses, Tri::kTrue))
                     : fmt::format("demote gate has missing values (counts as demote): {}",
                                   clauses_with(r.clauses, Tri::kTrue));
        });
        return false;
      }
      say([&] { return "demote gate is false"; });
      break;
    }
  }

  r.score = policy.score.value(c.values);
  if (!r.score) {
    say([&] { return "score is missing"; });
    return false;
  }
  return true;
}

// Step 3: ranks the competing candidates, best score first; ties: earlier
// promotion, then id. Sets each one's rank.
void rank(std::span<const Candidate> candidates, std::vector<size_t>& ranked, Selection& sel) {
  std::sort(ranked.begin(), ranked.end(), [&](size_t a, size_t b) {
    const double sa = *sel.results[a].score, sb = *sel.results[b].score;
    if (sa != sb) return sa > sb;
    const auto& la = candidates[a].live_since;
    const auto& lb = candidates[b].live_since;
    if (la.has_value() != lb.has_value()) return la.has_value();
    if (la && lb && *la != *lb) return *la < *lb;
    return candidates[a].id < candidates[b].id;
  });
  for (size_t k = 0; k < ranked.size(); ++k) sel.results[ranked[k]].rank = static_cast<int>(k + 1);
}

// Step 4: correlation groups, the connected components of corr >= max among
// the ranked; each group keeps its best per_group. The survivors in rank order.
std::vector<size_t> correlation_survivors(const Policy& policy, const EvalContext& ctx,
                                          std::span<const Candidate> candidates,
                                          const Correlations& correlations,
                                          const std::vector<size_t>& ranked, Selection& sel) {
  std::vector<size_t> survivors;
  if (policy.correlation && ranked.size() > 1) {
    const double max = policy.correlation->max;
    UnionFind uf(candidates.size());
    // The strongest link of each strategy, to name in its reason.
    std::vector<std::pair<size_t, double>> link(candidates.size(), {SIZE_MAX, 0.0});
    auto connect = [&](size_t a, size_t b, double v) {
      uf.unite(a, b);
      if (link[a].first == SIZE_MAX || v > link[a].second) link[a] = {b, v};
      if (link[b].first == SIZE_MAX || v > link[b].second) link[b] = {a, v};
    };
    if (correlations.matrix != nullptr) {
      // Visit pairs in matrix order: rows are read front to back instead of jumping
      // around an N x N matrix in rank order (3x faster at N = 10,000).
      std::vector<size_t> by_index = ranked;
      std::sort(by_index.begin(), by_index.end());
      for (size_t x = 0; x < by_index.size(); ++x) {
        for (size_t y = x + 1; y < by_index.size(); ++y) {
          const auto v = correlations.matrix->at(by_index[x], by_index[y]);
          if (v && *v >= max) connect(by_index[x], by_index[y], *v);
        }
      }
    } else if (!correlations.pairs.empty()) {
      std::unordered_map<std::string_view, size_t> index;
      for (size_t i : ranked) index.emplace(candidates[i].id, i);
      for (const auto& p : correlations.pairs) {
        const auto a = index.find(p.a), b = index.find(p.b);
        if (a != index.end() && b != index.end() && a->second != b->second && p.value >= max) {
          connect(a->second, b->second, p.value);
        }
      }
    }
    std::unordered_map<size_t, std::pair<int, int>> groups;  // root -> (group id, kept)
    std::unordered_map<size_t, size_t> group_size;
    for (size_t i : ranked) ++group_size[uf.find(i)];
    int next_group = 1;
    for (size_t i : ranked) {
      const size_t root = uf.find(i);
      if (group_size[root] < 2) {
        survivors.push_back(i);
        continue;
      }
      auto [it, inserted] = groups.try_emplace(root, std::make_pair(next_group, 0));
      if (inserted) ++next_group;
      StrategyResult& r = sel.results[i];
      r.group = it->second.first;
      if (it->second.second < policy.correlation->per_group) {
        ++it->second.second;
        survivors.push_back(i);
        continue;
      }
      say_if(ctx, r, [&] {
        return fmt::format("correlation {:.3f} >= {} with {} (group {} keeps its best {})",
                           link[i].second, max, candidates[link[i].first].id, r.group.value(),
                           policy.correlation->per_group);
      });
    }
  } else {
    survivors = ranked;
  }
  return survivors;
}

// Step 5: Top-K over the survivors; target[i] is 1 for those within it.
std::vector<char> top_k_targets(const Policy& policy, const EvalContext& ctx, size_t n,
                                const std::vector<size_t>& survivors, Selection& sel) {
  std::vector<char> target(n, 0);
  for (size_t k = 0; k < survivors.size(); ++k) {
    const size_t i = survivors[k];
    if (policy.top_k && static_cast<int>(k) >= *policy.top_k) {
      say_if(ctx, sel.results[i], [&] {
        return fmt::format("outside top_k {} (position {} after correlation)", *policy.top_k,
                           k + 1);
      });
      continue;
    }
    target[i] = 1;
  }
  return target;
}

// Why a selected strategy waits: the cap it would breach, and the Live
// strategies (if any) whose pending demotions will free the slot.
std::string waiting_reason(std::span<const Candidate> candidates, const LiveCaps& caps,
                           const LiveCaps::Breach& breach, const std::vector<char>& pending) {
  std::vector<size_t> waiting_for;
  for (size_t j : breach.holders) {
    if (pending[j]) waiting_for.push_back(j);
  }
  if (waiting_for.empty()) {
    return fmt::format("selected, waiting for a slot: {}", caps.describe(breach));
  }
  return fmt::format("selected, waiting for a slot: {} {} ({})", names_of(candidates, waiting_for),
                     waiting_for.size() == 1 ? "stays Live until its demotion completes"
                                             : "stay Live until their demotions complete",
                     caps.describe(breach));
}

// Step 6: decisions with time hysteresis, within the hard caps.
Selection decide(const Policy& policy, std::span<const Candidate> candidates,
                 const EvalContext& ctx, const Correlations& correlations,
                 const std::vector<size_t>& ranked, const std::vector<char>& target,
                 Selection sel) {
  //
  // The caps (top_k, per_group) hold for the live set after this evaluation,
  // and since an apply switches every state in one transaction, at every moment.
  // A Live strategy waiting out its demotion still holds its slot, so first the
  // Live strategies that stay are placed (selected ones by rank, then those
  // whose demotion is pending); any beyond a cap (k lowered, correlations that
  // rose, a forced promotion) leaves now. Then the promotions, in rank order,
  // into the slots that are left; one that does not fit waits and says for whom.
  std::vector<char> pending(candidates.size(), 0);
  std::vector<size_t> staying;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    StrategyResult& r = sel.results[i];
    if (c.state != CandidateState::kLive) continue;
    if (target[i]) {
      r.decision = Decision::kHold;
      say_if(ctx, r, [&] { return fmt::format("stays live at rank {}", r.rank.value()); });
      staying.push_back(i);
      continue;
    }
    r.record.out = true;
    const auto [ok, how_] = held(policy.demote_after, c.past, ctx.now, explains(ctx, c.id),
                                 [](const PastEvaluation& p) { return p.out; });
    const std::string& how = how_;  // clang 14 lambdas cannot capture a binding
    if (!ok) {
      r.decision = Decision::kHold;
      say_if(ctx, r, [&] { return fmt::format("demotion pending: out for {} (hysteresis)", how); });
      pending[i] = 1;
      staying.push_back(i);
      continue;
    }
    r.decision = Decision::kDemote;
    say_if(ctx, r, [&] { return fmt::format("demoted: out for {}", how); });
  }
  const auto rank_of = [&](size_t i) { return sel.results[i].rank.value_or(INT32_MAX); };
  std::stable_sort(staying.begin(), staying.end(), [&](size_t a, size_t b) {
    if (pending[a] != pending[b]) return pending[a] < pending[b];
    return rank_of(a) < rank_of(b);
  });
  LiveCaps caps(policy, candidates, correlations);
  for (size_t i : staying) {
    if (auto breach = caps.check(i)) {
      StrategyResult& r = sel.results[i];
      r.decision = Decision::kDemote;
      r.record.out = true;
      say_if(ctx, r, [&] {
        return fmt::format(
            "demoted now: {}; the caps are hard limits, which hysteresis does not wait out",
            caps.describe(*breach));
      });
      continue;
    }
    caps.add(i);
  }
  for (size_t i : ranked) {
    const Candidate& c = candidates[i];
    StrategyResult& r = sel.results[i];
    if (c.state != CandidateState::kDryRun) continue;
    if (!target[i]) {
      r.decision = Decision::kHold;
      continue;
    }
    if (!ctx.allow_promotion) {
      r.decision = Decision::kHold;
      say_if(ctx, r, [&] {
        return fmt::format("selected, but promotion is blocked: {}", ctx.promotion_blocked_why);
      });
      continue;
    }
    const auto [ok, how_] = held(policy.promote_after, c.past, ctx.now, explains(ctx, c.id),
                                 [](const PastEvaluation& p) { return p.promote_pass; });
    const std::string& how = how_;
    if (!ok) {
      r.decision = Decision::kHold;
      say_if(ctx, r,
             [&] { return fmt::format("selected; promote gate has held {} (hysteresis)", how); });
      continue;
    }
    if (auto breach = caps.check(i)) {
      r.decision = Decision::kHold;
      say_if(ctx, r, [&] { return waiting_reason(candidates, caps, *breach, pending); });
      continue;
    }
    r.decision = Decision::kPromote;
    const bool no_hysteresis =
        std::visit([](auto need) { return need == decltype(need){}; }, policy.promote_after.value);
    say_if(ctx, r, [&] {
      return no_hysteresis
                 ? fmt::format("selected at rank {}", r.rank.value())
                 : fmt::format("selected at rank {}; promote gate held {}", r.rank.value(), how);
    });
    caps.add(i);
  }
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    StrategyResult& r = sel.results[i];
    if (!c.manual) continue;
    const bool undo = (*c.manual && r.decision == Decision::kDemote) ||
                      (!*c.manual && r.decision == Decision::kPromote);
    if (undo) {
      r.undoes_manual = true;
      say_if(ctx, r, [&] {
        return *c.manual ? "this demotion undoes a manual override (on)"
                         : "this promotion undoes a manual override (off)";
      });
    }
  }
  // Ranked first (by rank), then held Live strategies without a rank.
  std::vector<size_t> live_after = caps.members();
  std::stable_sort(live_after.begin(), live_after.end(),
                   [&](size_t a, size_t b) { return rank_of(a) < rank_of(b); });
  for (size_t i : live_after) sel.live.push_back(candidates[i].id);
  return sel;
}

}  // namespace

Selection select(const Policy& policy, std::span<const Candidate> candidates,
                 const EvalContext& ctx, const Correlations& correlations) {
  Selection sel;
  sel.results.resize(candidates.size());
  std::vector<size_t> ranked;  // candidates competing for live slots
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (gate_and_score(policy, candidates[i], ctx, sel.results[i])) ranked.push_back(i);
  }
  rank(candidates, ranked, sel);
  const std::vector<size_t> survivors =
      correlation_survivors(policy, ctx, candidates, correlations, ranked, sel);
  const std::vector<char> target = top_k_targets(policy, ctx, candidates.size(), survivors, sel);
  return decide(policy, candidates, ctx, correlations, ranked, target, std::move(sel));
}

std::vector<size_t> competing(const Policy& policy, std::span<const Candidate> candidates,
                              const EvalContext& ctx) {
  EvalContext quiet = ctx;
  quiet.explain = false;
  std::vector<size_t> out;
  StrategyResult scratch;
  for (size_t i = 0; i < candidates.size(); ++i) {
    scratch = StrategyResult{};
    if (gate_and_score(policy, candidates[i], quiet, scratch)) out.push_back(i);
  }
  return out;
}

std::optional<std::string> cap_breach(const Policy& policy, std::span<const Candidate> candidates,
                                      std::span<const size_t> live, size_t newcomer,
                                      const Correlations& correlations) {
  LiveCaps caps(policy, candidates, correlations);
  for (size_t i : live) caps.add(i);
  auto b = caps.check(newcomer);
  if (!b) return std::nullopt;
  return caps.describe(*b);
}

}  // namespace qmtl::policy
