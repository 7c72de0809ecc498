#!/usr/bin/python3
"""A straightforward numpy/pandas implementation of qmtl's metrics (docs/metrics.md).

Two uses:
  metrics_peer.py compare QMTL_BINARY FILE.csv...
      Recomputes every KPI of each equity CSV with pandas and compares it with
      `qmtl metrics --output json`; prints 'N passed, M failed' and exits non-zero on
      any mismatch. Run by CTest, so the C++ definitions are checked against an
      independent implementation on real market data.
  metrics_peer.py bench [--series 10000] [--points 2520] [--corr-points 252]
      Times the same KPIs and the correlation matrix on the synthetic data of
      bench/synthetic.h, for the ratio in docs/performance.md.
"""
import argparse
import json
import math
import subprocess
import sys
import time

import numpy as np
import pandas as pd

PPY = 252.0


def kpis(eq: pd.DataFrame, worst_loss_window) -> dict:
    """Every KPI of each column of an equity frame indexed by daily timestamps."""
    r = eq.pct_change().iloc[1:]
    n = len(r)
    mean = r.mean()
    sd = r.std(ddof=1)
    down = np.sqrt((r.clip(upper=0.0) ** 2).mean())
    total = eq.iloc[-1] / eq.iloc[0] - 1.0
    peak = eq.cummax()
    mdd = ((peak - eq) / peak).max()
    pnl = eq.diff().iloc[1:]
    gains = pnl.clip(lower=0).sum()
    losses = -pnl.clip(upper=0).sum()
    out = {
        "return": total,
        "volatility": sd * math.sqrt(PPY),
        "sharpe": mean / sd * math.sqrt(PPY),
        "sortino": mean / down * math.sqrt(PPY),
        "max_drawdown": mdd,
        "calmar": ((1 + total) ** (PPY / n) - 1) / mdd,
        "win_rate": (r > 0).sum() / (r != 0).sum(),
        "profit_factor": gains / losses,
        "gain_to_pain": r.sum() / -r.clip(upper=0).sum(),
        "daily_pnl": pnl.groupby(pnl.index.floor("D")).sum().mean(),
        "periods": pd.Series(float(n), index=eq.columns),
        # Pairs at most the window apart: a time-based window closed at both ends, or
        # on gap-free daily data simply that many rows plus one.
        "worst_loss": (eq / worst_loss_window(eq).max() - 1).min().clip(upper=0),
    }
    return out


def time_under_water_days(eq: pd.Series) -> float:
    peak_t, peak, longest, under = eq.index[0], eq.iloc[0], pd.Timedelta(0), False
    for t, v in eq.iloc[1:].items():
        if v >= peak:
            if under:
                longest = max(longest, t - peak_t)
            under, peak, peak_t = False, v, t
        else:
            under = True
    if under:
        longest = max(longest, eq.index[-1] - peak_t)
    return longest / pd.Timedelta(days=1)


def compare(binary: str, files: list) -> int:
    passed = failed = 0
    for f in files:
        df = pd.read_csv(f)
        df.index = pd.to_datetime(df.iloc[:, 0], utc=True)
        eq = df[["equity"]]
        want = kpis(eq, lambda e: e.rolling("1D", closed="both"))
        want["time_under_water"] = pd.Series(time_under_water_days(eq["equity"]), index=eq.columns)
        got = json.loads(subprocess.check_output(
            [binary, "--output", "json", "metrics", f, "--worst-loss", "1d"]))["files"][0]["all"]
        for name, series in want.items():
            key = "worst_loss(1d)" if name == "worst_loss" else name
            w, g = float(series.iloc[0]), got[key]
            ok = g is not None and math.isclose(w, g, rel_tol=1e-9, abs_tol=1e-12)
            if ok:
                passed += 1
            else:
                failed += 1
                print(f"MISMATCH {f} {key}: pandas {w!r} qmtl {g!r}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def synthetic(n: int, t: int) -> np.ndarray:
    """bench/synthetic.h: a (t, n) array of daily returns."""
    i = np.arange(n, dtype=np.float64)[None, :]
    k = np.arange(t, dtype=np.float64)[:, None]
    h = np.sin(i * 12.9898 + k * 78.233) * 43758.5453
    u = h - np.floor(h)
    return 0.0004 + 0.01 * math.sqrt(12.0) * (u - 0.5)


def bench(n: int, t: int, corr_t: int) -> int:
    r = synthetic(n, t)
    eq = np.vstack([np.full((1, n), 100.0), 100.0 * np.cumprod(1.0 + r, axis=0)])
    idx = pd.date_range("2000-01-03", periods=t + 1, freq="D", tz="UTC")
    frame = pd.DataFrame(eq, index=idx)
    start = time.perf_counter()
    out = kpis(frame, lambda e: e.rolling(6, min_periods=1))
    kpi_s = time.perf_counter() - start
    assert len(out["sharpe"]) == n

    c = synthetic(n, corr_t)
    start = time.perf_counter()
    m = np.corrcoef(c, rowvar=False)
    corr_s = time.perf_counter() - start
    assert m.shape == (n, n)
    print(json.dumps({"series": n, "points": t, "kpis_s": kpi_s,
                      "corr_points": corr_t, "corrcoef_s": corr_s,
                      "numpy": np.__version__, "pandas": pd.__version__}))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare")
    c.add_argument("binary")
    c.add_argument("files", nargs="+")
    b = sub.add_parser("bench")
    b.add_argument("--series", type=int, default=10000)
    b.add_argument("--points", type=int, default=2520)
    b.add_argument("--corr-points", type=int, default=252)
    a = p.parse_args()
    if a.cmd == "compare":
        return compare(a.binary, a.files)
    return bench(a.series, a.points, a.corr_points)


if __name__ == "__main__":
    sys.exit(main())
