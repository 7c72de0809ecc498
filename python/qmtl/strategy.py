"""Strategies written in Python (docs/python.md, "Python strategies").

    class Momentum(qmtl.Strategy):
        id = "momentum"
        interval = "1d"
        signal = "condition"                  # what on_bar's values mean to the order rule
        orders = {"symbol": "TTRC", "qty": 100}

        def __init__(self):
            self.closes = []

        def on_bar(self, bar):
            self.closes.append(bar.close)
            if len(self.closes) < 20:
                return None                   # warming up: no value
            return 1 if bar.close > sum(self.closes[-20:]) / 20 else 0

    qmtl.backtest(Momentum, bars)            # in this process, through the C++ runner

    if __name__ == "__main__":               # as a program, for a server:
        Momentum.main()                      # qmtl strategy submit --command "momentum.py"

A Python strategy computes its signal and nothing else: the order rule, the
paper broker's buying power, the world's gate and the records stay in C++,
exactly as for a YAML strategy. As a program it speaks the runner's line
protocol (docs/sdk.md, "Strategies as programs") on its stdin and stdout.
"""
from __future__ import annotations

import json
import sys
import traceback
from datetime import datetime, timezone
from typing import Any, Optional, Tuple, Union

PROTOCOL = 1

Value = Union[None, float, int, bool]


class Bar:
    """One bar: `time` (a UTC datetime, the bar's bucket start), open, high,
    low, close, volume."""

    __slots__ = ("time", "open", "high", "low", "close", "volume")

    def __init__(self, time: datetime, open: float, high: float, low: float, close: float,
                 volume: float):
        self.time, self.open, self.high, self.low, self.close, self.volume = (
            time, open, high, low, close, volume)

    def __repr__(self) -> str:
        return (f"Bar({self.time.isoformat()}, o={self.open}, h={self.high}, l={self.low}, "
                f"c={self.close}, v={self.volume})")


class Strategy:
    """Subclass it: set `id`, `interval`, `signal` ("event": +1/-1/0 as a
    crossover; "condition": true/false; "numeric": a weight, for weight
    sizing), `orders` (a YAML strategy's orders without signal and exit) and,
    for an entry and an exit, `exit = True`; write `on_bar(bar)`, returning
    the signal (None for no value at this bar) or, with `exit`, a pair
    (signal, exit)."""

    id: str = ""
    interval: str = "1d"
    signal: str = "event"
    exit: bool = False
    orders: dict = {}
    description: Optional[str] = None

    def on_bar(self, bar: Bar) -> Union[Value, Tuple[Value, Value]]:
        raise NotImplementedError("a Strategy needs on_bar(self, bar)")

    @classmethod
    def declaration(cls) -> dict:
        """What the strategy says of itself to the runner (its first line as a program)."""
        d = {"id": cls.id, "interval": cls.interval, "signal": cls.signal,
             "orders": dict(cls.orders)}
        if cls.exit:
            d["exit"] = True
        if cls.description:
            d["description"] = cls.description
        return d

    # The values of one bar: (signal, exit), each a float or None.
    def _values(self, bar: Bar) -> Tuple[Optional[float], Optional[float]]:
        out = self.on_bar(bar)
        if self.exit:
            if not isinstance(out, tuple) or len(out) != 2:
                raise TypeError(f"on_bar must return (signal, exit) when exit = True, not {out!r}")
            signal, exit_ = out
        else:
            signal, exit_ = out, None
        return _number(signal), _number(exit_)

    def serve(self, stdin=None, stdout=None) -> int:
        """Speaks the runner's protocol: declares the strategy, then answers
        each bar with on_bar's value; 0 at the end of the bars, 1 after an
        error (which it reports to the runner, so the strategy fails closed)."""
        stdin = stdin or sys.stdin
        stdout = stdout or sys.stdout
        stdout.write(f"qmtl-strategy {PROTOCOL} {json.dumps(self.declaration())}\n")
        stdout.flush()
        for line in stdin:
            try:
                kind, ts, o, h, l, c, v = line.split()
                if kind != "bar":
                    raise ValueError(f"expected a bar line, got {line.strip()!r}")
                bar = Bar(datetime.fromtimestamp(float(ts), tz=timezone.utc), float(o), float(h),
                          float(l), float(c), float(v))
                signal, exit_ = self._values(bar)
            except Exception as e:  # any failure is the strategy's, reported to the runner
                traceback.print_exc(file=sys.stderr)
                stdout.write(f"error {type(e).__name__}: {e}".replace("\n", " ") + "\n")
                stdout.flush()
                return 1
            text = _text(signal)
            if self.exit:
                text += " " + _text(exit_)
            stdout.write(text + "\n")
            stdout.flush()
        return 0

    @classmethod
    def main(cls) -> None:
        """`if __name__ == "__main__": MyStrategy.main()`: the file as a program."""
        sys.exit(cls().serve())


def _number(v: Any) -> Optional[float]:
    if v is None:
        return None
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    return float(v)


def _text(v: Optional[float]) -> str:
    return "-" if v is None else repr(v)


def callback(strategy: Strategy):
    """on_bar for the C++ runner: (ts_ns, o, h, l, c, v) -> (signal, exit)."""

    def on_bar(ts_ns: int, o: float, h: float, l: float, c: float, v: float):
        bar = Bar(datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc), o, h, l, c, v)
        return strategy._values(bar)

    return on_bar
