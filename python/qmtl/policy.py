"""The policy engine offline: `qmtl policy check` and `qmtl policy eval`.

    qmtl.policy.check("examples/policies/design.yml")
    qmtl.policy.evaluate(policy_text, {"a": {"sharpe": 1.2, ...}, ...}, previous=["a"])

Both answer with the JSON document of the CLI's `--output json` as a dict, so
a decision here is the CLI's decision.
"""
from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from typing import Iterable, Mapping, Optional, Union

import pandas as pd

from . import _qmtl
from ._text import text_of

__all__ = ["check", "evaluate"]

Document = Union[str, os.PathLike, Mapping]


def check(policy: Document) -> dict:
    """{"valid": True, "form": "native"|"qmtl", "metrics": [...], "canonical"?}
    for a valid policy (text, path or mapping); qmtl.Error naming the line and
    column otherwise."""
    text, source = text_of(policy, "policy")
    return json.loads(_qmtl.policy_check(text, source))


def _number(v):
    if v is None:
        return None
    x = float(v)
    return None if math.isnan(x) else x


def _clean(v):
    """NaN (pandas' missing) as null; nested mappings (QMTL's payloads) kept."""
    if isinstance(v, Mapping):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _metrics_doc(metrics) -> dict:
    """{"<strategy>": {"<metric>": number | None}} from a mapping or a DataFrame
    (one row per strategy, as qmtl.metrics returns for a frame)."""
    if isinstance(metrics, pd.DataFrame):
        return {
            str(sid): {str(k): _number(v) for k, v in row.items()} for sid, row in metrics.iterrows()
        }
    if isinstance(metrics, Mapping):
        out = {}
        for sid, values in metrics.items():
            if isinstance(values, pd.Series):
                values = values.to_dict()
            out[str(sid)] = _clean(values)
        return out
    raise _qmtl.Error(f"metrics must be a mapping or a DataFrame, not {type(metrics).__name__}")


def _correlations_doc(correlations) -> list:
    """[{"a", "b", "value"}] from such a list or a square DataFrame (as
    qmtl.correlation returns); NaN pairs are left out."""
    if isinstance(correlations, pd.DataFrame):
        names = [str(c) for c in correlations.columns]
        out = []
        for i, a in enumerate(names):
            for j in range(i + 1, len(names)):
                v = correlations.iat[i, j]
                if not pd.isna(v):
                    out.append({"a": a, "b": names[j], "value": float(v)})
        return out
    return list(correlations)


def _time(now) -> Optional[str]:
    if now is None:
        return None
    if isinstance(now, str):
        return now
    ts = pd.Timestamp(now)
    if ts.tzinfo is None:
        ts = ts.tz_localize(timezone.utc)
    return ts.tz_convert(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def evaluate(
    policy: Document,
    metrics,
    previous: Iterable[str] = (),
    correlations=None,
    history: Optional[Mapping] = None,
    now: Union[None, str, datetime, pd.Timestamp] = None,
    stage: Optional[str] = None,
) -> dict:
    """The selection a policy makes on the given metrics, as `qmtl policy
    eval --output json`: {"selected": [...], "strategies": {"<id>":
    {"decision", "rank", "score", "gate", "clauses", "reasons", ...}}}.

    previous: the ids live before this evaluation. correlations: a list of
    {"a", "b", "value"} or a square DataFrame. history (native policies):
    {"<id>": [{"at", "promote_pass", "out"}]} for hysteresis. now: the
    evaluation's time (default: the clock). stage: a QMTL policy's validation
    profile."""
    text, source = text_of(policy, "policy")
    result = _qmtl.policy_evaluate(
        text,
        source,
        json.dumps(_metrics_doc(metrics)),
        [str(p) for p in previous],
        None if correlations is None else json.dumps(_correlations_doc(correlations)),
        None if history is None else json.dumps(history),
        _time(now),
        stage,
    )
    return json.loads(result)
