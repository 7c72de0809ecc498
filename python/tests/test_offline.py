"""The Python package against the CLI on the same inputs (issue 25): metrics
and correlations within 1e-12 relative, policy decisions exactly, backtests
to the fill. QMTL_BINARY names the qmtl executable (scripts/python_test.sh
sets it); the inputs are the repository's example files."""
import json
import math
import subprocess

import numpy as np
import pandas as pd
import pytest

import qmtl

from conftest import QMTL, ROOT

DATA = ROOT / "examples" / "data"
EQUITY_FILES = ["dax_equity.csv", "smi_equity.csv", "cac_equity.csv", "ftse_equity.csv"]
NOW = "2026-12-04T00:00:00Z"


def cli(*args, ok=True):
    r = subprocess.run([QMTL, *map(str, args)], capture_output=True, text=True, timeout=120)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def cli_json(*args):
    return json.loads(cli("--output", "json", *args).stdout)


def close(a, b, rel=1e-12):
    """Equal within `rel` relative; None (the CLI's missing) matches NaN."""
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if b is None:
        return False
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b))


def assert_metrics_equal(ours: pd.Series, theirs: dict):
    assert list(ours.index) == list(theirs.keys())
    for name, v in theirs.items():
        assert close(v, ours[name]), f"{name}: cli {v}, python {ours[name]}"


def equity(name):
    return pd.read_csv(DATA / name, index_col=0, parse_dates=True).iloc[:, 0].rename(name)


def frame():
    return pd.concat([equity(f) for f in EQUITY_FILES], axis=1)


@pytest.mark.parametrize("name", EQUITY_FILES)
def test_metrics_of_a_series_equal_the_cli(name):
    doc = cli_json("metrics", DATA / name, "--window", "4w", "--worst-loss", "1d", "--worst-loss", "1w")
    f = doc["files"][0]
    s = equity(name)
    assert_metrics_equal(qmtl.metrics(s, worst_loss=["1d", "1w"]), f["all"])
    windowed = qmtl.metrics(s, window="4w", worst_loss=["1d", "1w"])
    assert_metrics_equal(windowed, f["last_window"])
    # Why a metric is missing, as the CLI says it.
    assert windowed.attrs["missing"] == f["missing"]["last_window"]


def test_metrics_of_a_frame_and_its_correlation_equal_the_cli():
    doc = cli_json("metrics", *[DATA / f for f in EQUITY_FILES], "--window", "26w")
    fr = frame()
    ours = qmtl.metrics(fr)
    last = qmtl.metrics(fr, window="26w")
    for i, f in enumerate(EQUITY_FILES):
        assert_metrics_equal(ours.loc[f], doc["files"][i]["all"])
        assert_metrics_equal(last.loc[f], doc["files"][i]["last_window"])
    corr = qmtl.correlation(fr, window="26w")
    for i in range(len(EQUITY_FILES)):
        for j in range(len(EQUITY_FILES)):
            assert close(doc["correlation"][i][j], corr.iat[i, j]), (i, j)
    assert list(corr.columns) == EQUITY_FILES


def test_a_columns_missing_rows_are_its_own(tmp_path):
    # A frame joins series with different rows: NaN where a column has none,
    # read as the CLI reads that column's own file.
    dax = equity("dax_equity.csv")
    holes = dax.iloc[[i for i in range(len(dax)) if i % 7 != 3]]
    path = tmp_path / "holes.csv"
    holes.to_frame("equity").to_csv(path, index_label="date", date_format="%Y-%m-%d")
    theirs = cli_json("metrics", path)["files"][0]["all"]
    fr = pd.concat([dax.rename("full"), holes.rename("holes")], axis=1)
    assert fr["holes"].isna().sum() > 200
    assert_metrics_equal(qmtl.metrics(fr).loc["holes"], theirs)


def test_metrics_take_numpy_layouts_without_changing_the_answer():
    fr = frame().dropna()
    base = qmtl.metrics(fr)
    fortran = pd.DataFrame(np.asfortranarray(fr.to_numpy()), index=fr.index, columns=fr.columns)
    strided = pd.DataFrame(np.ascontiguousarray(fr.to_numpy()), index=fr.index, columns=fr.columns)
    pd.testing.assert_frame_equal(qmtl.metrics(fortran), base)
    pd.testing.assert_frame_equal(qmtl.metrics(strided), base)


def test_a_wide_row_major_frame_equals_its_columns_one_by_one():
    # From a row-major frame columns are copied out 8 at a time: every column,
    # wherever it falls in a block, is what it is alone, holes and kinds too.
    dax = equity("dax_equity.csv").to_numpy()
    growth = np.linspace(0.999, 1.001, 19)[None, :] ** np.arange(len(dax))[:, None]
    values = np.ascontiguousarray(dax[:, None] * growth)
    values[::5, 9] = np.nan  # a column with holes, mid-block
    index = equity("dax_equity.csv").index
    fr = pd.DataFrame(values, index=index, columns=[f"s{i}" for i in range(19)])
    assert fr.to_numpy(copy=False).strides == (19 * 8, 8)
    returns = fr.pct_change().iloc[1:]
    for data, kind in ((fr, "equity"), (returns, "return")):
        whole = qmtl.metrics(data, kind=kind, threads=2)
        for c in data.columns:
            alone = qmtl.metrics(data[c], kind=kind)
            pd.testing.assert_series_equal(whole.loc[c], alone, check_names=False)
    bad = fr.copy()
    bad.iloc[40, 11] = -1.0
    with pytest.raises(qmtl.Error, match="^s11: "):
        qmtl.metrics(bad)


def test_bad_input_raises_the_clis_message():
    s = equity("dax_equity.csv")
    with pytest.raises(qmtl.Error, match="kind must be equity, pnl or return"):
        qmtl.metrics(s, kind="prices")
    with pytest.raises(qmtl.Error, match="window takes a positive duration"):
        qmtl.metrics(s, window="soon")
    with pytest.raises(qmtl.Error, match="needs a time index"):
        qmtl.metrics(pd.Series([1.0, 2.0], index=["a", "b"]))
    bad = s.copy()
    bad.iloc[3] = -5
    with pytest.raises(qmtl.Error, match="dax_equity.csv: .*equity"):
        qmtl.metrics(bad)
    with pytest.raises(ValueError):  # qmtl.Error is a ValueError
        qmtl.metrics(s, kind="prices")


@pytest.mark.parametrize("policy", sorted((ROOT / "examples" / "policies").glob("*.yml")))
def test_policy_check_equals_the_cli(policy):
    theirs = cli_json("policy", "check", policy)
    assert qmtl.policy.check(policy) == theirs
    assert qmtl.policy.check(policy.read_text()) == theirs


def test_policy_check_names_the_line_of_an_error(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("gates:\n  promote: 'sharpe >'\n")
    r = cli("policy", "check", bad, ok=False)
    assert r.returncode == 2
    with pytest.raises(qmtl.Error) as e:
        qmtl.policy.check(bad)
    assert str(e.value) == r.stderr.strip().removeprefix("qmtl: ")


def test_policy_evaluate_decides_exactly_as_the_cli(tmp_path):
    kpis = qmtl.metrics(frame(), window="26w")
    kpis.index = ["dax", "smi", "cac", "ftse"]
    corr = qmtl.correlation(frame(), window="26w")
    corr.index = corr.columns = kpis.index
    metrics_file = tmp_path / "metrics.json"
    metrics_file.write_text(
        json.dumps({sid: {k: (None if pd.isna(v) else v) for k, v in row.items()}
                    for sid, row in kpis.iterrows()}))
    pairs = [{"a": a, "b": b, "value": float(corr.loc[a, b])}
             for i, a in enumerate(kpis.index) for b in kpis.index[i + 1:]]
    corr_file = tmp_path / "corr.json"
    corr_file.write_text(json.dumps(pairs))
    for policy in ("design.yml", "demo.yml", "qmtl_sample.yml"):
        path = ROOT / "examples" / "policies" / policy
        theirs = cli_json("policy", "eval", path, "--metrics", metrics_file, "--previous", "smi",
                          "--now", NOW, "--correlations", corr_file)
        ours = qmtl.policy.evaluate(path, kpis, previous=["smi"], correlations=corr, now=NOW)
        assert ours == theirs, policy
        # The same from plain mappings and a list of pairs.
        again = qmtl.policy.evaluate(path.read_text(), json.loads(metrics_file.read_text()),
                                     previous=["smi"], correlations=pairs, now=NOW)
        assert again == theirs, policy


def test_policy_evaluate_refuses_what_the_cli_refuses():
    with pytest.raises(qmtl.Error, match="previous names 'nobody'"):
        qmtl.policy.evaluate(ROOT / "examples/policies/design.yml", {"a": {"sharpe": 1}},
                             previous=["nobody"])
    with pytest.raises(qmtl.Error, match="must be a number or null"):
        qmtl.policy.evaluate(ROOT / "examples/policies/design.yml", {"a": {"sharpe": "high"}})


def bars():
    return pd.read_csv(DATA / "ttrc_ohlcv.csv", index_col=0, parse_dates=True)


@pytest.mark.parametrize("strategy", ["sma_cross.yml", "rsi_mean_reversion.yml",
                                      "bollinger_breakout.yml"])
def test_backtest_equals_the_cli_to_the_fill(strategy, tmp_path):
    path = ROOT / "examples" / "strategies" / strategy
    records = tmp_path / "records.json"
    theirs = cli_json("backtest", path, "--data", DATA / "ttrc_ohlcv.csv", "--fee-bps", 5,
                      "--slippage-bps", 2, "--records", records)
    r = qmtl.backtest(path, bars(), fee_bps=5, slippage_bps=2)
    ours = r.to_dict()
    for key in ("strategy", "symbol", "bars", "orders", "exits", "fills", "rejected"):
        assert ours[key] == theirs[key], key
    for key in ("final_equity", "cash", "realised_pnl", "unrealised_pnl", "fees"):
        assert close(theirs[key], ours[key]), key
    for name, v in theirs["metrics"].items():
        assert close(v, ours["metrics"][name]), name
    rec = json.loads(records.read_text())
    assert len(rec["points"]) == len(r.equity)
    assert close(rec["points"][-1]["equity"], float(r.equity.iloc[-1]))
    assert [f["price"] for f in rec["fills"]] == list(r.fills["price"])
    assert [f["side"] for f in rec["fills"]] == list(r.fills["side"])
    assert r.equity.index[0] == pd.Timestamp("1985-01-02", tz="UTC")


def test_backtest_takes_a_mapping_and_a_date_column():
    spec = {"id": "up", "inputs": {"close": {"interval": "1d"}},
            "nodes": {"r": {"indicator": "returns", "input": "close"},
                      "up": {"indicator": "gt", "input": "r", "value": 0}},
            "orders": {"signal": "up", "symbol": "X", "qty": 1}}
    b = bars().reset_index()  # a "Date" column, capitalised names
    assert "Date" in b.columns and "Close" in b.columns
    r = qmtl.backtest(spec, b)
    assert r.strategy == "up" and r.symbol == "X" and r.orders > 100
    assert r.fills["symbol"].eq("X").all()


def test_backtest_refuses_bad_strategies_and_bars():
    with pytest.raises(qmtl.Error, match="nodes.fast.n must be a whole number"):
        qmtl.backtest("id: x\ninputs: {close: {interval: 1d}}\n"
                      "nodes: {fast: {indicator: sma, input: close, n: 0}}\n"
                      "orders: {signal: fast, symbol: X, qty: 1}\n", bars())
    with pytest.raises(
        qmtl.Error, match=r"strategy:\d+:\d+: malformed YAML/JSON: end of sequence"
    ):
        qmtl.backtest("id: x\ninputs: [\n", bars())
    shuffled = bars().iloc[[1, 0, 2, 3]]
    with pytest.raises(qmtl.Error, match="increasing time order"):
        qmtl.backtest(ROOT / "examples/strategies/sma_cross.yml", shuffled)
    with pytest.raises(qmtl.Error, match="missing volume"):
        qmtl.backtest(ROOT / "examples/strategies/sma_cross.yml", bars().drop(columns="Volume"))
