#!/usr/bin/env python3
"""qmtl.metrics on a 10,000-column frame of 2,520 daily rows (issue 25): the
binding against the C++ benchmark on the same data (bench/synthetic.h).

    .venv/bin/python bench/python_metrics_bench.py [build/release/bench/metrics_bench]

Three rounds, each the median of 7 calls next to metrics_bench's
BM_AllKpis/10000/2520 run right after, and the median of their ratios
(docs/performance.md)."""
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd

import qmtl

N, T = 10_000, 2_520


def synthetic_equity(n: int, t: int) -> pd.DataFrame:
    """Equity from 100 by the returns of bench/synthetic.h; row 0 is the start."""
    i = np.arange(n, dtype=np.float64)[None, :]
    k = np.arange(t, dtype=np.float64)[:, None]
    h = np.sin(i * 12.9898 + k * 78.233) * 43758.5453
    u = h - np.floor(h)
    r = 0.0004 + 0.01 * np.sqrt(12.0) * (u - 0.5)
    eq = 100.0 * np.cumprod(1.0 + r, axis=0)
    eq = np.vstack([np.full((1, n), 100.0), eq])
    index = pd.date_range("2000-01-03", periods=t + 1, freq="D", tz="UTC")
    return pd.DataFrame(eq, index=index, columns=[f"s{c}" for c in range(n)])


def python_time(frame: pd.DataFrame) -> float:
    """Median of 7 calls after one untimed call (as the C++ side times calls
    on series already built, not the first touch of fresh memory)."""
    qmtl.metrics(frame, worst_loss=["5d"], threads=2)
    times = []
    for _ in range(7):
        start = time.perf_counter()
        out = qmtl.metrics(frame, worst_loss=["5d"], threads=2)
        times.append(time.perf_counter() - start)
    assert out.shape[0] == N and out["periods"].eq(T).all()
    return sorted(times)[len(times) // 2]


def cpp_time(bench: str) -> float:
    r = subprocess.run([bench, "--benchmark_filter=BM_AllKpis/10000/2520",
                        "--benchmark_format=json"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["benchmarks"][0]["real_time"] / 1000.0


def main() -> int:
    bench = sys.argv[1] if len(sys.argv) > 1 else "build/release/bench/metrics_bench"
    frame = synthetic_equity(N, T)
    # Alternated rounds: a shared 2-core VM drifts by 10-20 % over a minute,
    # so each ratio compares neighbours and the median ratio is reported.
    ratios = []
    for k in range(3):
        py, cpp = python_time(frame), cpp_time(bench)
        ratios.append(py / cpp)
        print(f"round {k + 1}: qmtl.metrics 10,000 x 2,520 {py:.3f} s, "
              f"BM_AllKpis {cpp:.3f} s, ratio {py / cpp:.2f}")
    print(f"median ratio {sorted(ratios)[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
