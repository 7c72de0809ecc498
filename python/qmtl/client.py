"""qmtl.Client: a qmtl server's HTTP API from Python (docs/api.md, docs/python.md).

    c = qmtl.Client("http://127.0.0.1:8080")      # token from QMTL_TOKEN, like the CLI
    c.worlds()                                     # a DataFrame, one row per world
    c.strategies("demo")                           # with each one's last decision
    c.evaluations("demo")                          # runs, newest first
    c.evaluation("demo", run_id)                   # one run, every explanation
    c.timeline("demo")                             # promotions and demotions
    c.performance("sma-cross")                     # equity (Series) and fills (DataFrame)
    c.submit("sma_cross.yml", world="demo")        # a declarative strategy
    for event in c.events("demo"): ...             # the world's event stream

Refusals raise qmtl.Error with the server's `detail` (what to fix) and keep the
HTTP status in `.status`; an unreachable server raises ConnectionError naming
the URL. Only the standard library talks to the server.
"""
from __future__ import annotations

import http.client
import json
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

import pandas as pd

from . import _qmtl
from ._text import text_of


class ApiError(_qmtl.Error):
    """A refusal by the server: `status` is the HTTP status, the message its detail."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status


@dataclass
class Event:
    """One event of a world's stream: `id` (the audit sequence; None for a
    heartbeat), `type` ("snapshot", "strategy", "heartbeat", ...) and `data`."""

    id: Optional[int]
    type: str
    data: Any


def _frame(rows, index: Optional[str] = None) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    for col in frame.columns:
        if col.endswith("_at") or col in ("state_since", "at", "ts"):
            frame[col] = pd.to_datetime(frame[col], utc=True, errors="coerce")
    if index is not None and index in frame.columns:
        frame = frame.set_index(index)
    return frame


class Client:
    """A qmtl server at `url` (default: $QMTL_GATEWAY_URL, else
    http://127.0.0.1:8080), with `token` (default: $QMTL_TOKEN). Thread safety:
    one connection per call, so a Client may be shared."""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None,
                 timeout: float = 30.0):
        self.url = (url or os.environ.get("QMTL_GATEWAY_URL") or "http://127.0.0.1:8080").rstrip("/")
        self.token = token if token is not None else os.environ.get("QMTL_TOKEN") or None
        self.timeout = timeout
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _qmtl.Error(f"the server URL must be http(s)://host[:port], not '{self.url}'")
        self._parts = parts

    # -- plumbing -----------------------------------------------------------

    def _connection(self, timeout: Optional[float]):
        cls = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
        return cls(self._parts.hostname, self._parts.port, timeout=timeout)

    def _headers(self, content_type: Optional[str] = None) -> dict:
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if content_type:
            h["Content-Type"] = content_type
        return h

    def request(self, method: str, path: str, body: Union[None, str, Mapping] = None,
                content_type: str = "application/json") -> Any:
        """One call of the API; the decoded JSON answer. ApiError for a refusal."""
        if isinstance(body, Mapping):
            body = json.dumps(body)
        conn = self._connection(self.timeout)
        try:
            conn.request(method, path, body=None if body is None else body.encode(),
                         headers=self._headers(content_type if body is not None else None))
            r = conn.getresponse()
            text = r.read().decode()
        except OSError as e:
            raise ConnectionError(f"cannot reach the qmtl server at {self.url}: {e}") from None
        finally:
            conn.close()
        if r.status >= 400:
            try:
                detail = json.loads(text).get("detail") or text
            except ValueError:
                detail = text or r.reason
            raise ApiError(r.status, detail)
        return json.loads(text) if text else None

    @staticmethod
    def _quote(part: str) -> str:
        return urllib.parse.quote(str(part), safe="")

    # -- worlds ---------------------------------------------------------------

    def health(self) -> dict:
        return self.request("GET", "/healthz")

    def worlds(self) -> pd.DataFrame:
        """One row per world the token may see, indexed by id."""
        return _frame(self.request("GET", "/worlds")["worlds"], index="id")

    def world(self, world: str) -> dict:
        return self.request("GET", f"/worlds/{self._quote(world)}")

    def create_world(self, world: str, name: Optional[str] = None,
                     policy: Union[None, str, os.PathLike, Mapping] = None) -> dict:
        body = {"id": world}
        if name is not None:
            body["name"] = name
        if policy is not None:
            body["policy"] = text_of(policy, "policy")[0]
        return self.request("POST", "/worlds", body)

    def set_policy(self, world: str, policy: Union[str, os.PathLike, Mapping]) -> dict:
        """A new policy version (YAML or JSON text, a path or a mapping)."""
        text, _ = text_of(policy, "policy")
        return self.request("POST", f"/worlds/{self._quote(world)}/policy", text,
                            content_type="application/yaml")

    def evaluate(self, world: str, apply: bool = False) -> dict:
        """Runs an evaluation now (operator); the run with every explanation."""
        return self.request("POST", f"/worlds/{self._quote(world)}/evaluate", {"apply": apply})

    def evaluations(self, world: str, limit: int = 50) -> pd.DataFrame:
        """The world's runs, newest first: one row per run with its decisions."""
        runs = self.request("GET", f"/worlds/{self._quote(world)}/evaluations?limit={int(limit)}")
        return _frame(runs["runs"], index="id")

    def evaluation(self, world: str, run: str) -> dict:
        """One run with every strategy's metrics, clauses, rank and reasons."""
        return self.request("GET", f"/worlds/{self._quote(world)}/evaluations/{self._quote(run)}")

    def decisions(self, world: str, run: str) -> pd.DataFrame:
        """One run as a table: a row per strategy (decision, rank, score,
        reasons, and each metric the policy read)."""
        doc = self.evaluation(world, run)
        rows = []
        for sid, r in doc["strategies"].items():
            row = {"strategy": sid, "state": r.get("state"), "decision": r.get("decision"),
                   "rank": r.get("rank"), "score": r.get("score"), "group": r.get("group"),
                   "reasons": "; ".join(r.get("reasons") or [])}
            row.update({f"metric:{k}": v for k, v in (r.get("metrics") or {}).items()})
            rows.append(row)
        return pd.DataFrame(rows).set_index("strategy") if rows else pd.DataFrame()

    def timeline(self, world: str, strategy: Optional[str] = None) -> pd.DataFrame:
        """Every change of state of the world's strategies, oldest first."""
        q = f"?strategy={self._quote(strategy)}" if strategy else ""
        return _frame(self.request("GET", f"/worlds/{self._quote(world)}/timeline{q}")["transitions"])

    def audit(self, world: str, after: int = 0, limit: int = 1000) -> pd.DataFrame:
        path = f"/worlds/{self._quote(world)}/audit?after={int(after)}&limit={int(limit)}"
        return _frame(self.request("GET", path)["records"], index="seq")

    def activation(self, world: str) -> pd.DataFrame:
        """The world's gates: one row per (strategy, side)."""
        return _frame(self.request("GET", f"/worlds/{self._quote(world)}/activation")["entries"])

    # -- strategies -----------------------------------------------------------

    def strategies(self, world: Optional[str] = None) -> pd.DataFrame:
        """One row per strategy, indexed by id, with its last evaluation's
        decision, rank and score."""
        q = f"?world={self._quote(world)}" if world else ""
        rows = []
        for s in self.request("GET", f"/strategies{q}")["strategies"]:
            ev = s.get("evaluation") or {}
            rows.append({"id": s["id"], "world": s["world"], "state": s["state"],
                         "state_since": s.get("state_since"), "mode": s.get("effective_mode"),
                         "decision": ev.get("decision"), "rank": ev.get("rank"),
                         "score": ev.get("score")})
        return _frame(rows, index="id") if rows else pd.DataFrame()

    def strategy(self, strategy: str) -> dict:
        return self.request("GET", f"/strategies/{self._quote(strategy)}")

    def submit(self, strategy: Union[None, str, os.PathLike, Mapping] = None, *, world: str,
               id: Optional[str] = None, command: Union[None, str, Sequence[str]] = None,
               timeout: float = 5.0) -> dict:
        """Submits a strategy to `world`: a declarative one (YAML or JSON text,
        a path or a mapping), or a program (`command`: its path and arguments,
        a string split as a shell would or a list; a qmtl.Strategy file is one)
        whose declaration is read by starting it, as `qmtl strategy submit
        --command` does. Checked here first. The id is `id`, else the
        strategy's own, else the file's name."""
        if (strategy is None) == (command is None):
            raise _qmtl.Error("give a strategy or command=, one of them")
        source = "strategy"
        if command is not None:
            argv = [os.fspath(a) for a in command] if not isinstance(command, str) else None
            if argv is None:
                import shlex

                argv = shlex.split(command)
            if not argv:
                raise _qmtl.Error("command= is empty: give the program's path and its arguments")
            spec = json.loads(_qmtl.program_spec(argv, float(timeout)))
        else:
            text, source = text_of(strategy, "strategy")
            spec = json.loads(_qmtl.strategy_spec(text, source))
        sid = id or spec.get("id")
        if not sid and source != "strategy":
            sid = os.path.splitext(os.path.basename(source))[0]
        if not sid:
            raise _qmtl.Error("the strategy has no id: give id=")
        return self.request("POST", "/strategies", {"id": sid, "world": world, "spec": spec})

    def validation(self, strategy: str, records: bool = False) -> dict:
        q = "?records=true" if records else ""
        return self.request("GET", f"/strategies/{self._quote(strategy)}/validation{q}")

    def performance(self, strategy: str, kind: Optional[str] = None, start=None, end=None,
                    max_points: int = 2000, max_fills: int = 1000):
        """(equity, fills): the strategy's records read back, equity as a Series
        by time and fills as a DataFrame. kind: "validation", "dryrun", "live",
        or None for every record its runs posted."""
        q = {"max_points": int(max_points), "max_fills": int(max_fills)}
        if kind:
            q["kind"] = kind
        for key, t in (("from", start), ("to", end)):
            if t is not None:
                ts = pd.Timestamp(t)
                ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
                q[key] = ts.strftime("%Y-%m-%dT%H:%M:%SZ")
        doc = self.request("GET", f"/strategies/{self._quote(strategy)}/performance?"
                           + urllib.parse.urlencode(q))
        points = doc.get("points") or []
        equity = pd.Series([p["equity"] for p in points],
                           index=pd.to_datetime([p["ts"] for p in points], utc=True),
                           name="equity", dtype="float64")
        fills = _frame(doc.get("fills") or [])
        if "ts" in fills.columns:
            fills = fills.set_index("ts")
        equity.attrs["total_points"] = doc.get("total_points")
        equity.attrs["periods"] = doc.get("periods")
        return equity, fills

    def _strategy_event(self, strategy: str, verb: str, body: Mapping) -> dict:
        return self.request("POST", f"/strategies/{self._quote(strategy)}/{verb}", body)

    def promote(self, strategy: str, reason: str, force: bool = False) -> dict:
        return self._strategy_event(strategy, "promote", {"reason": reason, "force": force})

    def demote(self, strategy: str, reason: str) -> dict:
        return self._strategy_event(strategy, "demote", {"reason": reason})

    def activate(self, strategy: str, reason: str = "") -> dict:
        return self._strategy_event(strategy, "activate", {"reason": reason})

    def deactivate(self, strategy: str, reason: str = "") -> dict:
        return self._strategy_event(strategy, "deactivate", {"reason": reason})

    def archive(self, strategy: str, reason: str = "") -> dict:
        return self._strategy_event(strategy, "archive", {"reason": reason})

    # -- the event stream -----------------------------------------------------

    def events(self, world: str, strategy: Optional[str] = None,
               last_event_id: Optional[int] = None, heartbeats: bool = False,
               timeout: Optional[float] = None) -> Iterator[Event]:
        """The world's events as they happen: a snapshot first, then each
        change (and heartbeats when asked for). Ends when the server ends the
        stream; `timeout` (seconds without a byte) raises TimeoutError. Resume
        after a break with last_event_id=the last Event.id seen."""
        q = f"?strategy={self._quote(strategy)}" if strategy else ""
        headers = self._headers()
        headers["Accept"] = "text/event-stream"
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(int(last_event_id))
        conn = self._connection(timeout)
        try:
            conn.request("GET", f"/worlds/{self._quote(world)}/events{q}", headers=headers)
            r = conn.getresponse()
            if r.status >= 400:
                text = r.read().decode()
                try:
                    detail = json.loads(text).get("detail") or text
                except ValueError:
                    detail = text
                raise ApiError(r.status, detail)
            ev_id, ev_type, data = None, "message", []
            while True:
                try:
                    raw = r.readline()
                except OSError as e:
                    if "timed out" in str(e):
                        raise TimeoutError(f"no event from {self.url} within {timeout} s") from None
                    raise
                if not raw:
                    return
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if data:
                        event = Event(ev_id, ev_type, json.loads("\n".join(data)))
                        if heartbeats or ev_type != "heartbeat":
                            yield event
                    ev_id, ev_type, data = None, "message", []
                    continue
                if line.startswith(":"):
                    continue
                key, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if key == "id":
                    ev_id = int(value)
                elif key == "event":
                    ev_type = value
                elif key == "data":
                    data.append(value)
        finally:
            conn.close()
