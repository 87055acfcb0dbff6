"""The notebooks: paired with their py:percent sources, runnable metadata, and executed top to bottom on the
schema-conformant test fixture (conftest.py) in smoke mode. CI also runs them on the real demo results with
`pytest --nbmake notebooks/`."""
from __future__ import annotations

from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_reverse_diffusion", "02_gmm_initialization", "03_baselines", "04_failures_occlusion"]


@pytest.mark.parametrize("name", NAMES)
def test_paired_and_runnable_metadata(name):
    py, ipynb = NB_DIR / f"{name}.py", NB_DIR / f"{name}.ipynb"
    assert py.exists() and ipynb.exists(), f"{name}: both {py.name} and {ipynb.name} must exist (jupytext pair)"
    src, nb = jupytext.read(py), nbformat.read(ipynb, as_version=4)
    code = lambda n: [c.source for c in n.cells if c.cell_type == "code"]  # noqa: E731
    assert code(src) == code(nb), f"{name}: .py and .ipynb differ; run `jupytext --sync notebooks/*.py`"
    assert nb.metadata["kernelspec"]["name"] == "python3" and nb.metadata["language_info"]["name"] == "python"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name}: strip outputs"
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 4, f"{name}: explain the steps in markdown"
    assert "ensure_results" in py.read_text()  # runs on results/demo, produced on demand


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NAMES)
def test_runs_on_fixture_results(name, results_dir, monkeypatch):
    from nbclient import NotebookClient
    monkeypatch.setenv("DIFFPOSE_VIZ_RESULTS", str(results_dir))
    monkeypatch.setenv("DIFFPOSE_VIZ_SMOKE", "1")
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NB_DIR)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    plots = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert plots, f"{name}: no plotly figure was displayed"
