"""Shared set-up for the notebooks: where the results are, the smoke switch, and making the results
when they are missing. Kept in one place so the four notebooks stay about the analysis.

- results folder: $DIFFPOSE_VIZ_RESULTS, else <repo>/results/demo (written by `make demo`);
- smoke switch: DIFFPOSE_VIZ_SMOKE=1 keeps every notebook small (CI);
- missing results: `scripts/run_demo.py` is run (with configs/smoke.yaml in smoke mode) to produce them.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import plotly.io as pio
import xarray as xr

from diffpose_viz.results import load_results, results_dir_setting, results_files

REPO = Path(__file__).resolve().parents[1]

# Every figure stores a self-contained HTML representation next to Jupyter's plotly JSON: an executed
# notebook exported with `jupyter nbconvert --to html` then shows its figures offline (plotly.js inline once).
pio.renderers.default = "plotly_mimetype+notebook"

SMOKE = os.environ.get("DIFFPOSE_VIZ_SMOKE", "0") == "1"
MAX_SAMPLES = 64 if SMOKE else None  # how many samples the heavier cells look at


def results_dir() -> Path:
    p = Path(results_dir_setting()).expanduser()
    return p if p.is_absolute() else REPO / p


def _demo_command(out: Path) -> list[str]:
    script = REPO / "scripts" / "run_demo.py"
    if not script.exists():
        raise FileNotFoundError(
            f"no results in {out} and no {script.relative_to(REPO)} to make them; run `make demo` "
            "or set DIFFPOSE_VIZ_RESULTS to a folder of results files")
    cmd = [sys.executable, str(script), "--out", str(out), "--device", "cpu"]
    smoke_cfg = REPO / "configs" / "smoke.yaml"
    if SMOKE and smoke_cfg.exists():
        cmd += ["--config", str(smoke_cfg)]
    return cmd


def ensure_results(model: str = "diffpose") -> Path:
    """The results folder, after producing it with the package when `<model>.nc` is missing."""
    out = results_dir()
    if not (out / f"{model}.nc").exists():
        cmd = _demo_command(out)
        print("results missing; running:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=REPO)
        if not (out / f"{model}.nc").exists():
            raise FileNotFoundError(f"{' '.join(cmd)} finished but wrote no {out / (model + '.nc')}")
    return out


def open_results(path: Path) -> xr.Dataset:
    """The package's validating loader."""
    return load_results(path)


def open_all(directory: Path) -> dict[str, xr.Dataset]:
    """Every results file in the folder, by model name (file stem), DiffPose first."""
    return {name: open_results(p) for name, p in results_files(directory).items()}


def head(ds: xr.Dataset) -> xr.Dataset:
    """The first MAX_SAMPLES samples in smoke mode, everything otherwise."""
    return ds if MAX_SAMPLES is None else ds.isel(sample=slice(0, MAX_SAMPLES))
