"""qmtl from Python: metrics, correlations, the policy engine and the backtester
on pandas objects, computed by qmtl's C++ core (docs/python.md).

    import qmtl
    qmtl.metrics(equity)                      # a Series of every KPI
    qmtl.metrics(frame, window="4w")          # one row per column, the last 4 weeks
    qmtl.correlation(frame)                   # a square DataFrame
    qmtl.policy.evaluate("policy.yml", kpis)  # the decisions, as `qmtl policy eval`
    qmtl.backtest("sma_cross.yml", bars)      # equity, fills and KPIs
    qmtl.Client(url).strategies("demo")       # a server's worlds, runs, records

The numbers are the CLI's: each call goes through the same C++ functions as
`qmtl metrics`, `qmtl policy eval` and `qmtl backtest`. Errors raise
qmtl.Error (a ValueError) with the message the CLI would print.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from . import _qmtl
from . import policy
from .client import ApiError, Client, Event
from .strategy import Bar, Strategy
from . import strategy as _strategy
from ._text import text_of as _text_of

Error = _qmtl.Error

__all__ = [
    "Error", "metrics", "correlation", "backtest", "BacktestResult", "policy", "Client",
    "ApiError", "Event", "Strategy", "Bar",
]
__version__ = "0.1.0"

Frame = Union[pd.Series, pd.DataFrame]


def _timestamps_ns(index: pd.Index, what: str) -> np.ndarray:
    """Nanoseconds since the epoch (UTC) of a time index; naive times are UTC."""
    if not isinstance(index, pd.DatetimeIndex):
        try:
            index = pd.DatetimeIndex(index)
        except (TypeError, ValueError) as e:
            raise Error(f"{what} needs a time index (a DatetimeIndex): {e}") from None
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return np.ascontiguousarray(index.asi8, dtype=np.int64)


def _columns(data: Frame, what: str):
    """(timestamps, 2-D float values, column names) of a Series or DataFrame."""
    if isinstance(data, pd.Series):
        names = [str(data.name) if data.name is not None else "series"]
        values = data.to_numpy(dtype=np.float64).reshape(-1, 1)
    elif isinstance(data, pd.DataFrame):
        names = [str(c) for c in data.columns]
        # A frame of one float dtype hands out its block without a copy
        # (column-major); the C++ side reads it through its strides.
        values = data.to_numpy(dtype=np.float64, copy=False)
    else:
        raise Error(f"{what} must be a pandas Series or DataFrame, not {type(data).__name__}")
    return _timestamps_ns(data.index, what), values, names


def metrics(
    data: Frame,
    window: Optional[str] = None,
    periods_per_year: Optional[float] = None,
    kind: str = "equity",
    initial_equity: Optional[float] = None,
    worst_loss: Sequence[str] = ("1d",),
    threads: int = 0,
) -> Frame:
    """Every KPI of a series (a Series of values by metric) or of each column
    of a frame (a DataFrame, one row per column), as `qmtl metrics` computes
    them. `kind` says what the values are: equity, pnl (needs initial_equity)
    or return. `window` ("4w", "90d") gives the last window's metrics,
    annualised like the whole series. Missing values (NaN) mean the metric is
    not defined there; `result.attrs["missing"]` says why."""
    ts, values, names = _columns(data, "metrics")
    columns, matrix, missing = _qmtl.metrics(
        ts, values, names, kind, window, periods_per_year, initial_equity, list(worst_loss), threads
    )
    if isinstance(data, pd.Series):
        out = pd.Series(matrix[0], index=columns, name=names[0])
        out.attrs["missing"] = missing[0]
        return out
    out = pd.DataFrame(matrix, index=names, columns=columns)
    out.attrs["missing"] = dict(zip(names, missing))
    return out


def correlation(
    frame: pd.DataFrame,
    window: Optional[str] = None,
    kind: str = "equity",
    initial_equity: Optional[float] = None,
) -> pd.DataFrame:
    """The correlation of the columns' returns over their common periods (the
    last `window` of them), as `qmtl metrics` and the policy engine compute
    it: a square DataFrame, NaN where a pair has too few common periods."""
    ts, values, names = _columns(frame, "correlation")
    matrix = _qmtl.correlation(ts, values, names, kind, window, initial_equity)
    return pd.DataFrame(matrix, index=names, columns=names)


@dataclass
class BacktestResult:
    """What `qmtl backtest --output json` reports, with the equity curve and
    the fills as pandas objects."""

    strategy: str
    symbol: str
    bars: int
    orders: int
    exits: dict
    final_equity: float
    cash: float
    realised_pnl: float
    unrealised_pnl: float
    fees: float
    metrics: pd.Series
    equity: pd.Series
    fills: pd.DataFrame
    rejected: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict:
        """The fields of `qmtl backtest --output json` (without skipped_rows)."""
        return {
            "strategy": self.strategy,
            "symbol": self.symbol,
            "bars": self.bars,
            "orders": self.orders,
            "exits": dict(self.exits),
            "fills": len(self.fills),
            "rejected": [
                {"ts": _iso(r.Index), "symbol": r.symbol, "side": r.side, "qty": r.qty,
                 "reason": r.reason}
                for r in self.rejected.itertuples()
            ],
            "final_equity": self.final_equity,
            "cash": self.cash,
            "realised_pnl": self.realised_pnl,
            "unrealised_pnl": self.unrealised_pnl,
            "fees": self.fees,
            "metrics": {k: (None if pd.isna(v) else float(v)) for k, v in self.metrics.items()},
        }


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + "Z"


_BAR_FIELDS = ("open", "high", "low", "close", "volume")


def _bars(bars: pd.DataFrame):
    if not isinstance(bars, pd.DataFrame):
        raise Error(f"bars must be a pandas DataFrame, not {type(bars).__name__}")
    by_lower = {str(c).lower(): c for c in bars.columns}
    frame = bars
    if not isinstance(frame.index, pd.DatetimeIndex):
        for name in ("date", "datetime", "timestamp", "time"):
            if name in by_lower:
                frame = frame.set_index(pd.to_datetime(frame[by_lower[name]], utc=True))
                break
    missing = [f for f in _BAR_FIELDS if f not in by_lower]
    if missing:
        raise Error(f"bars need the columns open, high, low, close, volume; missing {', '.join(missing)}")
    ohlcv = frame[[by_lower[f] for f in _BAR_FIELDS]].to_numpy(dtype=np.float64)
    return _timestamps_ns(frame.index, "bars"), ohlcv


def backtest(
    strategy: Union[str, os.PathLike, Mapping, Strategy, type],
    bars: pd.DataFrame,
    symbol: Optional[str] = None,
    cash: float = 100_000,
    fee_bps: float = 0,
    slippage_bps: float = 0,
    volume_limit: float = 0.025,
    leverage: float = 1,
) -> BacktestResult:
    """A strategy over bars (a DataFrame with open, high, low, close, volume
    and a time index or date column) through the paper broker, as `qmtl
    backtest` runs it. The strategy is declarative (YAML or JSON text, a path,
    or a mapping) or a qmtl.Strategy (a subclass or an instance), whose
    on_bar runs in this process for each bar."""
    ts, ohlcv = _bars(bars)
    costs = (cash, fee_bps, slippage_bps, volume_limit, leverage)
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        strategy = strategy()
    if isinstance(strategy, Strategy):
        r = _qmtl.backtest_function(json.dumps(strategy.declaration()),
                                    _strategy.callback(strategy), ts, ohlcv, symbol, *costs)
    else:
        text, source = _text_of(strategy, "strategy")
        r = _qmtl.backtest(_qmtl.strategy_spec(text, source), ts, ohlcv, symbol, *costs)
    fills = pd.DataFrame(r["fills"], columns=["ts", "symbol", "side", "qty", "price", "fee"])
    fills["ts"] = pd.to_datetime(fills["ts"], unit="ns", utc=True)
    rejected = pd.DataFrame(r["rejected"], columns=["ts", "symbol", "side", "qty", "reason"])
    rejected["ts"] = pd.to_datetime(rejected["ts"], unit="ns", utc=True)
    return BacktestResult(
        strategy=r["strategy"],
        symbol=r["symbol"],
        bars=r["bars"],
        orders=r["orders"],
        exits=dict(r["exits"]),
        final_equity=r["final_equity"],
        cash=r["cash"],
        realised_pnl=r["realised_pnl"],
        unrealised_pnl=r["unrealised_pnl"],
        fees=r["fees"],
        metrics=pd.Series(r["metrics"], dtype="float64"),
        equity=pd.Series(r["equity"], index=pd.to_datetime(r["equity_ts"], unit="ns", utc=True),
                         name="equity"),
        fills=fills.set_index("ts"),
        rejected=rejected.set_index("ts"),
    )
