"""Python strategies (issue 25): on_bar in process trades exactly as the same
strategy in YAML; the same file as a program gives `qmtl backtest --command`
the same answer; failures fail the strategy; and a server validates a
submitted Python strategy and runs it in dry run through the C++ runner."""
import importlib.util
import json
import os
import stat
import subprocess
import sys
import time

import pandas as pd
import pytest

import qmtl

from conftest import QMTL, ROOT, Server, write_live_feed

DATA = ROOT / "examples" / "data" / "ttrc_ohlcv.csv"
ADMIN = "admin-secret-0123456789abcdef"

# Long while the close is above its 20-bar mean: the YAML strategy below says
# the same with an sma node and a gt of two series.
MOMENTUM = '''#!{python}
import qmtl


class Momentum(qmtl.Strategy):
    id = "momentum"
    interval = "1d"
    signal = "condition"
    orders = {{"symbol": "TTRC", "qty": 1000}}

    def __init__(self):
        self.closes = []

    def on_bar(self, bar):
        self.closes.append(bar.close)
        if len(self.closes) < 20:
            return None
        mean = sum(self.closes[-20:]) / 20
        return bar.close > mean


if __name__ == "__main__":
    Momentum.main()
'''

MOMENTUM_YAML = {
    "id": "momentum", "inputs": {"close": {"interval": "1d"}},
    "nodes": {"mean": {"indicator": "sma", "input": "close", "n": 20},
              "up": {"indicator": "gt", "inputs": ["close", "mean"]}},
    "orders": {"signal": "up", "symbol": "TTRC", "qty": 1000},
}


def bars():
    return pd.read_csv(DATA, index_col=0, parse_dates=True)


def program(directory, name, text):
    path = directory / name
    path.write_text(text.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def load_class(path, name):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def test_on_bar_trades_exactly_as_the_same_strategy_in_yaml(tmp_path):
    Momentum = load_class(program(tmp_path, "momentum.py", MOMENTUM), "Momentum")
    ours = qmtl.backtest(Momentum, bars(), fee_bps=5)
    theirs = qmtl.backtest(MOMENTUM_YAML, bars(), fee_bps=5)
    assert ours.orders == theirs.orders and ours.orders > 100
    pd.testing.assert_frame_equal(ours.fills, theirs.fills)
    pd.testing.assert_series_equal(ours.equity, theirs.equity)
    assert ours.to_dict() == theirs.to_dict()


def test_the_file_as_a_program_backtests_as_in_process(tmp_path):
    path = program(tmp_path, "momentum.py", MOMENTUM)
    r = subprocess.run([QMTL, "--output", "json", "backtest", "--command", str(path), "--data",
                        DATA, "--fee-bps", "5"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cli = json.loads(r.stdout)
    ours = qmtl.backtest(load_class(path, "Momentum"), bars(), fee_bps=5).to_dict()
    for key in ("strategy", "orders", "fills", "final_equity", "cash", "fees"):
        assert ours[key] == cli[key], key
    assert ours["metrics"] == cli["metrics"]


BROKEN = '''#!{python}
import qmtl


class Broken(qmtl.Strategy):
    id = "broken"
    signal = "event"
    orders = {{"symbol": "TTRC", "qty": 1}}

    def on_bar(self, bar):
        if bar.time.year >= 1986:
            return 1 / 0
        return 0


if __name__ == "__main__":
    Broken.main()
'''


def test_an_exception_in_on_bar_fails_the_strategy(tmp_path):
    path = program(tmp_path, "broken.py", BROKEN)
    with pytest.raises(qmtl.Error, match="on_bar raised at 1986-01-02T00:00:00Z: ZeroDivisionError"):
        qmtl.backtest(load_class(path, "Broken"), bars())
    r = subprocess.run([QMTL, "backtest", "--command", str(path), "--data", DATA],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "failed at 1986-01-02T00:00:00Z: ZeroDivisionError: division by zero" in r.stderr


def test_values_that_are_not_numbers_fail_it():
    class Nan(qmtl.Strategy):
        id, signal, orders = "nan", "numeric", {"symbol": "X", "weight": 1}

        def on_bar(self, bar):
            return float("nan")

    with pytest.raises(qmtl.Error, match="is nan, not a finite number"):
        qmtl.backtest(Nan, bars())

    class NoExit(qmtl.Strategy):
        id, signal, exit, orders = "e", "condition", True, {"symbol": "X", "qty": 1}

        def on_bar(self, bar):
            return 1

    with pytest.raises(qmtl.Error, match=r"must return \(signal, exit\)"):
        qmtl.backtest(NoExit, bars())


def test_the_declaration_is_checked_as_a_programs():
    class Levels(qmtl.Strategy):
        id, signal, orders = "levels", "numeric", {"symbol": "X", "qty": 1}

        def on_bar(self, bar):
            return bar.close

    with pytest.raises(qmtl.Error, match="the program's numeric signal: its values are levels"):
        qmtl.backtest(Levels, bars())


def test_an_entry_and_an_exit():
    class Band(qmtl.Strategy):
        id, signal, exit, orders = "band", "condition", True, {"symbol": "TTRC", "qty": 100}

        def on_bar(self, bar):
            return bar.close < 4, bar.close > 5

    r = qmtl.backtest(Band, bars())
    sides = list(r.fills["side"])
    assert sides[:4] == ["buy", "sell", "buy", "sell"]


def test_a_server_validates_and_runs_a_python_strategy(tmp_path):
    programs = tmp_path / "programs"
    programs.mkdir()
    path = program(programs, "momentum.py", MOMENTUM)
    write_live_feed(tmp_path / "live.csv", 40)
    server = Server(tmp_path, {"admin": ("admin", ADMIN)}, ADMIN, "--strategy-programs",
                    str(programs))
    try:
        c = qmtl.Client(server.url, token=ADMIN)
        c.create_world("py", policy="gates: {promote: 'trades >= 0', reject: 'trades < 1'}\n")
        c.request("PUT", "/worlds/py/execution",
                  {"history": str(DATA), "window": "104w", "feed": str(tmp_path / "live.csv")})
        submitted = c.submit(command=str(path), world="py")
        assert submitted["state"] == "Submitted"
        assert c.strategy("momentum")["spec"]["program"]["command"] == [str(path)]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and c.strategy("momentum")["state"] != "DryRun":
            time.sleep(0.2)
        assert c.strategy("momentum")["state"] == "DryRun", server.log()
        v = c.validation("momentum")
        assert v["outcome"] == "passed" and v["detail"]["fills"] > 10
        while time.monotonic() < deadline and len(c.performance("momentum", kind="dryrun")[0]) < 40:
            time.sleep(0.2)
        equity, _ = c.performance("momentum", kind="dryrun")
        assert len(equity) == 40
    finally:
        server.stop()
