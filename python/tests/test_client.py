"""qmtl.Client against a real `qmtl serve` (issue 25): a world whose server
validates two strategies and runs them in dry run, read back as DataFrames;
an evaluation with its explanations; the event stream as an iterator; the
token from QMTL_TOKEN; refusals as qmtl.ApiError with the server's detail."""
import time

import pandas as pd
import pytest

import qmtl

from conftest import ROOT, Server, write_live_feed

ADMIN = "admin-secret-0123456789abcdef"
VIEWER = "viewer-secret-0123456789abcdef"
LIVE_BARS = 40
POLICY = """evaluation: {every: 1d, min_dry_run: 0s, window: 30d}
gates: {promote: 'trades >= 0', demote: 'trades < 0', reject: 'trades < 1'}
score: return
top_k: {k: 1}
"""
SLOW = """id: slow
inputs: {close: {interval: 1d}}
nodes: {fast: {indicator: sma, input: close, n: 20}, slow: {indicator: sma, input: close, n: 60},
        cross: {indicator: crossover, inputs: [fast, slow]}}
orders: {signal: cross, symbol: TTRC, qty: 50}
"""


def wait_for(pred, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("server")
    write_live_feed(d / "live.csv", LIVE_BARS)
    s = Server(d, {"admin": ("admin", ADMIN), "watcher": ("viewer", VIEWER)}, ADMIN)
    yield {"url": s.url, "dir": d, "server": s}
    s.stop()


@pytest.fixture(scope="module")
def world(server):
    """World w: two strategies validated on ttrc and running in dry run."""
    c = qmtl.Client(server["url"], token=ADMIN)
    c.create_world("w", name="Python desk", policy=POLICY)
    c.request("PUT", "/worlds/w/execution",
              {"history": str(ROOT / "examples/data/ttrc_ohlcv.csv"), "window": "104w",
               "feed": str(server["dir"] / "live.csv"), "symbol": "TTRC"})
    c.submit(ROOT / "examples/strategies/sma_cross.yml", world="w")
    c.submit(SLOW, world="w")
    assert wait_for(lambda: set(c.strategies("w")["state"]) == {"DryRun"}), server["server"].log()
    for sid in ("sma-cross", "slow"):
        assert wait_for(lambda: len(c.performance(sid, kind="dryrun")[0]) == LIVE_BARS), sid
    return c


def test_the_token_comes_from_QMTL_TOKEN_like_the_cli(server, monkeypatch):
    monkeypatch.setenv("QMTL_TOKEN", VIEWER)
    c = qmtl.Client(server["url"])
    assert c.token == VIEWER
    assert isinstance(c.worlds(), pd.DataFrame)
    with pytest.raises(qmtl.ApiError) as e:
        c.create_world("nope")
    assert e.value.status == 403
    monkeypatch.delenv("QMTL_TOKEN")
    with pytest.raises(qmtl.ApiError) as e:
        qmtl.Client(server["url"]).worlds()
    assert e.value.status == 401 and "Authorization: Bearer" in str(e.value)


def test_worlds_and_strategies_read_back_as_frames(world):
    w = world.worlds()
    assert w.loc["w", "name"] == "Python desk"
    s = world.strategies("w")
    assert sorted(s.index) == ["slow", "sma-cross"]
    assert (s["world"] == "w").all() and (s["state"] == "DryRun").all()
    assert str(s["state_since"].dtype).startswith("datetime64")
    v = world.validation("sma-cross")
    assert v["outcome"] == "passed"
    assert world.strategy("slow")["spec"]["orders"]["qty"] == 50


def test_performance_reads_the_runners_records(world):
    equity, fills = world.performance("sma-cross", kind="dryrun")
    assert len(equity) == LIVE_BARS
    assert equity.index.is_monotonic_increasing and str(equity.index.tz) == "UTC"
    assert equity.iloc[0] == pytest.approx(100_000, rel=0.05)
    assert equity.attrs["total_points"] == LIVE_BARS
    validation, vfills = world.performance("sma-cross", kind="validation")
    assert len(validation) > 400 and len(vfills) > 0
    assert set(vfills.columns) >= {"symbol", "side", "qty", "price"}


def test_an_evaluation_with_its_explanations_and_the_event_stream(world):
    events = world.events("w", heartbeats=True, timeout=10)
    first = next(events)
    assert first.type == "snapshot" and first.data["world"]["id"] == "w"
    run = world.evaluate("w")
    seen = []
    for e in events:
        seen.append(e.type)
        if e.type == "evaluation":
            assert e.id > first.id
            break
    assert "evaluation" in seen
    events.close()
    runs = world.evaluations("w")
    assert run["id"] in runs.index
    table = world.decisions("w", run["id"])
    assert sorted(table.index) == ["slow", "sma-cross"]
    assert set(table["decision"]) <= {"PROMOTE", "HOLD", "DEMOTE", "REJECT", "INELIGIBLE"}
    assert (table["decision"] == "PROMOTE").sum() == 1  # top_k 1
    assert "metric:return" in table.columns
    assert table.loc[table["decision"] == "PROMOTE", "rank"].iloc[0] == 1
    explained = world.evaluation("w", run["id"])["strategies"]["slow"]
    assert explained["clauses"] and explained["reasons"]


def test_the_timeline_says_what_happened(world):
    t = world.timeline("w")
    assert {"strategy", "from", "to", "at", "event"} <= set(t.columns)
    to_dryrun = t[(t["strategy"] == "slow") & (t["to"] == "DryRun")]
    assert len(to_dryrun) == 1
    assert t["at"].is_monotonic_increasing


def test_refusals_carry_the_servers_detail(world, server):
    with pytest.raises(qmtl.ApiError) as e:
        world.world("nowhere")
    assert e.value.status == 404 and "nowhere" in str(e.value)
    with pytest.raises(qmtl.Error, match="orders.signal 'x' is not a node"):
        world.submit("id: bad\ninputs: {close: {interval: 1d}}\n"
                     "orders: {signal: x, symbol: X, qty: 1}\n", world="w")
    with pytest.raises(ConnectionError, match="cannot reach the qmtl server at http://127.0.0.1:9"):
        qmtl.Client("http://127.0.0.1:9", token=ADMIN).worlds()
    with pytest.raises(qmtl.Error, match="must be http"):
        qmtl.Client("ftp://x")
