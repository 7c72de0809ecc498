"""examples/notebooks/tour.ipynb executed as a user would run it (issue 25):
every cell runs without an error, the plots are drawn, and the numbers it
shows are the ones the rest of the suite checks against the CLI."""
import os
import subprocess
import sys

import nbformat

from conftest import QMTL, ROOT


def test_the_tour_notebook_runs(tmp_path):
    out = tmp_path / "tour.ipynb"
    r = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=600", "--output", str(out),
         str(ROOT / "examples" / "notebooks" / "tour.ipynb")],
        capture_output=True, text=True, timeout=900, env={**os.environ, "QMTL_BINARY": QMTL})
    assert r.returncode == 0, r.stderr[-4000:]
    nb = nbformat.read(out, as_version=4)
    errors, images, text = [], 0, []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.output_type == "error":
                errors.append(f"{o.ename}: {o.evalue}")
            data = o.get("data", {})
            images += "image/png" in data
            text.append(o.get("text", "") + data.get("text/plain", ""))
    assert not errors
    assert images == 2  # the backtest's equity and drawdown, the demo's Live strategy
    shown = "\n".join(text)
    assert "44 orders, exits {'stop_loss': 5}" in shown
    assert "dax-trend" in shown and "Live" in shown
