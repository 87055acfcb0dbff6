"""An executed notebook exported to HTML shows its figures offline (plotly.js inline, no CDN).

nb_setup.py sets plotly's renderer to "plotly_mimetype+notebook", so every figure also carries a
text/html output with the plotly.js bundle embedded once per notebook.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.notebooks  # runs in `make test` (CI), under 60 s

from tiny_runs import REPO, SMOKE_RESULTS as SMOKE

NOTEBOOK = REPO / "notebooks" / "02_gmm_initialization.ipynb"


def test_exported_html_has_plotly_inline(tmp_path, smoke_run):
    pytest.importorskip("nbconvert")
    env = {**os.environ, "DIFFPOSE_VIZ_SMOKE": "1", "DIFFPOSE_VIZ_RESULTS": str(SMOKE), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute", str(NOTEBOOK),
                    "--output-dir", str(tmp_path), "--ExecutePreprocessor.timeout=55"],
                   check=True, env=env, cwd=NOTEBOOK.parent, timeout=60, capture_output=True)
    html = (tmp_path / NOTEBOOK.with_suffix(".html").name).read_text()
    assert re.search(r"plotly\.js v\d", html), "the plotly.js bundle is not embedded"
    assert "Plotly.newPlot" in html, "no figure was rendered as HTML"
    assert not re.search(r'<script[^>]+src="[^"]*plot\.ly', html), "plotly.js is loaded from a CDN"
