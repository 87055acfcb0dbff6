"""An executed notebook exported to HTML shows its figures offline (plotly.js inline, no CDN).

nb_setup.py sets plotly's renderer to "plotly_mimetype+notebook", so every figure also carries a
text/html output with the plotly.js bundle embedded once per notebook.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebooks  # runs in `make test` (CI), under 60 s

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "02_gmm_initialization.ipynb"
SMOKE = REPO / "results" / "smoke"


def test_exported_html_has_plotly_inline(tmp_path):
    pytest.importorskip("nbconvert")
    if not (SMOKE / "diffpose.nc").exists():
        pytest.skip(f"no smoke results in {SMOKE}; `make test` creates them with scripts/run_demo.py")
    env = {**os.environ, "DIFFPOSE_VIZ_SMOKE": "1", "DIFFPOSE_VIZ_RESULTS": str(SMOKE), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute", str(NOTEBOOK),
                    "--output-dir", str(tmp_path), "--ExecutePreprocessor.timeout=55"],
                   check=True, env=env, cwd=NOTEBOOK.parent, timeout=60, capture_output=True)
    html = (tmp_path / NOTEBOOK.with_suffix(".html").name).read_text()
    assert re.search(r"plotly\.js v\d", html), "the plotly.js bundle is not embedded"
    assert "Plotly.newPlot" in html, "no figure was rendered as HTML"
    assert not re.search(r'<script[^>]+src="[^"]*plot\.ly', html), "plotly.js is loaded from a CDN"
