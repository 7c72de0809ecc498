#!/usr/bin/env python3
"""An independent model of the 90-day world simulation in simulation_test.cc.

It re-implements the documented selection rules (docs/policy.md "Selection" and
"Hard caps", docs/scheduler.md) in plain Python, runs the same scenario, and prints the
promotions and demotions it expects, day by day, in the form the C++ test
asserts. The C++ test does not run this script: its expected sequence was
produced here, and reading this file is how to check it (or regenerate it after
changing the scenario on both sides).

  python3 tests/scheduler/simulation_model.py
"""
import math

DAYS = 90
WINDOW = 14           # evaluation.window: 2w, in daily points
MIN_DRY_RUN = 14      # evaluation.min_dry_run: 14d
LOOKBACK = WINDOW + 7  # the evaluation reads window + a week of points
PROMOTE_MIN = 0.02    # gates.promote: return >= 0.02
TOP_K = 3
CORR_MAX = 0.9        # correlation: {max: 0.9, per_group: 1}
PROMOTE_AFTER = 3     # hysteresis: {promote_after: 3, demote_after: 3}
DEMOTE_AFTER = 3
SIGMA = 0.0002


def walsh(k, d):
    return -1.0 if bin(k & (d % 8)).count("1") % 2 else 1.0


def noise(i, d):
    # A fixed +-1 sequence per strategy (the C++ test uses the same formula).
    x = (i * 7919 + d * 104729) % 1000003
    return 1.0 if (x * x) % 7 < 3 else -1.0


# id: (first day, pattern, drift function of the day)
STRATEGIES = {
    "a1": (0, ("w", 1), lambda d: 0.0040),
    "a2": (0, ("w", 1), lambda d: 0.0036),
    "a3": (0, ("w", 1), lambda d: 0.0032),
    "b": (0, ("w", 2), lambda d: 0.0034 if d <= 55 else -0.0030),
    "c": (0, ("w", 3), lambda d: 0.0029),
    "d": (0, ("w", 4), lambda d: 0.0026),
    "e": (30, ("w", 5), lambda d: 0.0060),
    "f": (0, ("w", 6), lambda d: 0.0031),
}
for n in range(1, 9):
    STRATEGIES[f"w{n}"] = (0, ("n", n), lambda d: 0.0005)
for n in range(1, 5):
    STRATEGIES[f"l{n}"] = (0, ("n", 10 + n), lambda d: -0.0010)

EVAL_ONLY = range(44, 49)  # days 44..48 the world is EvalOnly
PAUSED = range(57, 61)     # days 57..60 the world is Paused
MANUAL_OFF = {15: "f"}     # day: strategy whose gates an operator closes


def daily_return(sid, d):
    first, (kind, k), mu = STRATEGIES[sid]
    shape = walsh(k, d) if kind == "w" else noise(k, d)
    return mu(d) + SIGMA * shape


def equity(sid, d):
    first = STRATEGIES[sid][0]
    e = 100.0
    for t in range(first + 1, d + 1):
        e *= 1 + daily_return(sid, t)
    return e


def returns_window(sid, d):
    first = STRATEGIES[sid][0]
    lo = max(first + 1, d - WINDOW + 1)
    return [daily_return(sid, t) for t in range(lo, d + 1)]


def pearson(x, y):
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cx = [v - mx for v in x]
    cy = [v - my for v in y]
    nx, ny = math.sqrt(sum(v * v for v in cx)), math.sqrt(sum(v * v for v in cy))
    if nx == 0 or ny == 0:
        return None
    return sum(a * b for a, b in zip(cx, cy)) / (nx * ny)


def main():
    state = {}   # sid -> {"state", "since", "live_since", "past": [(promote_pass, out)]}
    manual = {}
    events = []
    for d in range(1, DAYS + 1):
        for sid, (first, _, _) in STRATEGIES.items():
            if first == d or (first == 0 and sid not in state):
                state[sid] = {"state": "DryRun", "since": first, "live_since": None, "past": []}
        if d in MANUAL_OFF:
            manual[MANUAL_OFF[d]] = False
        if d in PAUSED:
            continue
        allow_promotion = d not in EVAL_ONLY
        res = {}
        ranked = []
        live_out = set()
        for sid, st in state.items():
            first = STRATEGIES[sid][0]
            r = {"pass": False, "out": False, "decision": None, "score": None}
            res[sid] = r
            ret = equity(sid, d) / equity(sid, d - WINDOW) - 1 if d - WINDOW >= first else None
            if st["state"] == "DryRun":
                history = d - max(first, d - LOOKBACK)
                if d - st["since"] < MIN_DRY_RUN or history < WINDOW:
                    r["decision"] = "INELIGIBLE"
                    continue
                r["pass"] = ret >= PROMOTE_MIN
                if not r["pass"]:
                    r["decision"] = "HOLD"
                    continue
            else:
                if ret < 0:
                    live_out.add(sid)
                    continue
            r["score"] = ret
            ranked.append(sid)
        ranked.sort(key=lambda s: (-res[s]["score"],
                                   0 if state[s]["live_since"] is not None else 1,
                                   state[s]["live_since"] or 0, s))
        # Correlation groups: connected components of corr >= max among the ranked.
        parent = {s: s for s in ranked}

        def find(s):
            while parent[s] != s:
                s = parent[s]
            return s
        for i, a in enumerate(ranked):
            for b in ranked[i + 1:]:
                c = pearson(returns_window(a, d), returns_window(b, d))
                if c is not None and c >= CORR_MAX:
                    parent[find(a)] = find(b)
        size = {}
        for s in ranked:
            size[find(s)] = size.get(find(s), 0) + 1
        kept = {}
        survivors = []
        for s in ranked:
            root = find(s)
            if size[root] < 2 or kept.get(root, 0) < 1:
                kept[root] = kept.get(root, 0) + 1
                survivors.append(s)
        target = set(survivors[:TOP_K])

        def streak(sid, key, now_value):
            n = 1 if now_value else 0
            for past in reversed(state[sid]["past"]):
                if not past[key]:
                    break
                n += 1
            return n
        # Live strategies first: each stays (selected), waits out its demotion
        # (and keeps its slot), or is demoted.
        staying = []
        for sid, st in state.items():
            r = res[sid]
            if st["state"] != "Live":
                continue
            if sid in target and sid not in live_out:
                r["decision"] = "HOLD"
                staying.append((0, sid))
            else:
                r["out"] = True
                r["decision"] = "DEMOTE" if streak(sid, 1, True) >= DEMOTE_AFTER else "HOLD"
                if r["decision"] == "HOLD":
                    staying.append((1, sid))
        # The hard caps (docs/policy.md "Hard caps"): top_k, and per_group 1 among
        # the Live strategies; selected first, then pending, each by rank.
        rank = {s: i for i, s in enumerate(ranked)}
        staying.sort(key=lambda x: (x[0], rank.get(x[1], len(ranked)), x[1]))
        kept = []

        def fits(sid):
            if len(kept) >= TOP_K:
                return False
            for k in kept:
                c = pearson(returns_window(sid, d), returns_window(k, d))
                if c is not None and c >= CORR_MAX:
                    return False
            return True
        for _, sid in staying:
            if fits(sid):
                kept.append(sid)
            else:
                res[sid].update(out=True, decision="DEMOTE")
        for sid in ranked:
            st, r = state[sid], res[sid]
            if st["state"] != "DryRun":
                continue
            if sid not in target or not allow_promotion:
                r["decision"] = "HOLD"
            elif streak(sid, 0, True) < PROMOTE_AFTER or not fits(sid):
                r["decision"] = "HOLD"
            else:
                r["decision"] = "PROMOTE"
                kept.append(sid)
        for sid, st in state.items():
            st["past"].append((res[sid]["pass"], res[sid]["out"]))
        for sid in sorted(state):
            r = res[sid]
            if r["decision"] == "PROMOTE":
                note = " (undoes a manual override (off))" if manual.get(sid) is False else ""
                events.append((d, "PROMOTE", sid, note))
                state[sid].update(state="Live", live_since=d)
                manual.pop(sid, None)
            elif r["decision"] == "DEMOTE":
                events.append((d, "DEMOTE", sid, ""))
                state[sid].update(state="DryRun", since=d, live_since=None)
    for d, what, sid, note in events:
        print(f'      {{{d}, "{what}", "{sid}"}},  //{note}')


if __name__ == "__main__":
    main()
