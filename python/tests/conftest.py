"""What the tests share: the qmtl binary under test and a real `qmtl serve`."""
import os
import pathlib
import subprocess

import pandas as pd

ROOT = pathlib.Path(__file__).resolve().parents[2]
QMTL = str(pathlib.Path(os.environ.get("QMTL_BINARY", ROOT / "build" / "release" / "apps" / "qmtl" / "qmtl")).resolve())


def write_live_feed(path: pathlib.Path, bars: int) -> None:
    """Daily bars up to today, so a runner's records fall in an evaluation window."""
    today = pd.Timestamp.now(tz="UTC").normalize()
    with open(path, "w") as f:
        f.write("date,open,high,low,close,volume\n")
        for i, day in enumerate(pd.date_range(end=today, periods=bars, freq="D")):
            c = 100 + (i % 7) - 0.1 * i
            f.write(f"{day.strftime('%Y-%m-%d')},{c},{c + 1},{c - 1},{c},1000000\n")


class Server:
    """`qmtl serve` on a fresh SQLite file and a free port, with tokens
    {name: (role, secret)}; the runners it starts use `runner_token`."""

    def __init__(self, directory: pathlib.Path, tokens: dict, runner_token: str, *extra: str):
        self.dir = directory
        (directory / "tokens").write_text(
            "".join(f"{name} {role} token:{secret}\n" for name, (role, secret) in tokens.items()))
        os.chmod(directory / "tokens", 0o600)
        self._log = open(directory / "server.log", "w")
        self._proc = subprocess.Popen(
            [QMTL, "serve", "--db", f"sqlite:{directory / 'q.db'}", "--port", "0", "--token-file",
             str(directory / "tokens"), "--scheduler", "false", "--exec-dir",
             str(directory / "exec"), "--heartbeat", "200ms", *extra],
            stdout=subprocess.PIPE, stderr=self._log, text=True,
            env={**os.environ, "QMTL_RUNNER_TOKEN": runner_token})
        line = self._proc.stdout.readline()
        assert "listening on" in line, self.log()
        self.url = line.split("listening on ")[1].split()[0]

    def log(self) -> str:
        return (self.dir / "server.log").read_text()

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=20)
        self._log.close()
