"""Shared pieces of the dashboard pages: where the results are, cached loading, error display.

Pages import this as `common` (the dashboard folder is put on sys.path by each page).
Every problem with a file ends as `st.error` + `st.stop()` on the page, never a traceback.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st
import xarray as xr

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

ENV_VAR = "DIFFPOSE_VIZ_RESULTS"
DEFAULT_RESULTS = "results/demo"
DEFAULT_MODEL = "diffpose"
REQUIRED_VARS = ("pred", "input_2d")


def default_results_dir() -> str:
    return os.environ.get(ENV_VAR) or DEFAULT_RESULTS


def resolve(path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def _validate(ds: xr.Dataset, path: Path) -> xr.Dataset:
    missing = [v for v in REQUIRED_VARS if v not in ds]
    if missing or "sample" not in ds.dims or "joint" not in ds.dims:
        raise ValueError(f"{path.name}: not a diffpose_viz results file (missing {missing or 'sample/joint dims'}); "
                         "see docs/RESULTS_SCHEMA.md")
    if ds.sizes["joint"] != 17:
        raise ValueError(f"{path.name}: expected 17 joints, found {ds.sizes['joint']}")
    return ds


@st.cache_resource(show_spinner="Loading results…", max_entries=16)
def _load(path: str, mtime: float) -> xr.Dataset:
    """Cached per (path, modification time): a rewritten file is read again. Read-only by convention."""
    p = Path(path)
    try:
        from diffpose_viz.evaluation.results import load_results  # the package's validating loader
    except ImportError:
        load_results = None
    ds = load_results(p) if load_results is not None else xr.load_dataset(p)
    return _validate(ds, p)


def load_results_file(path: Path) -> xr.Dataset:
    return _load(str(path), path.stat().st_mtime)


def results_files(directory: Path) -> dict[str, Path]:
    """Model name -> file for every *.nc in the folder, DiffPose first."""
    files = {p.stem: p for p in sorted(directory.glob("*.nc"))}
    return dict(sorted(files.items(), key=lambda kv: (kv[0] != DEFAULT_MODEL, kv[0])))


def sidebar_results_dir() -> Path:
    """The results folder: a sidebar text input, defaulting to $DIFFPOSE_VIZ_RESULTS or results/demo.

    The value lives in a plain session-state key so it survives page switches.
    """
    if "results_dir" not in st.session_state:
        st.session_state["results_dir"] = default_results_dir()

    def _changed() -> None:
        st.session_state["results_dir"] = st.session_state["_results_dir_input"]

    st.sidebar.text_input("Results folder", value=st.session_state["results_dir"], key="_results_dir_input",
                          on_change=_changed, help=f"A folder of results .nc files (env {ENV_VAR}).")
    return resolve(st.session_state["results_dir"])


def require_results(directory: Path) -> dict[str, Path]:
    """The folder's results files, or a message on the page and stop."""
    if not directory.is_dir():
        st.error(f"Results folder not found: `{directory}`. Run `make demo` (writes `results/demo/`) or "
                 f"`diffpose-viz evaluate`, then point the sidebar (or ${ENV_VAR}) at the folder.")
        st.stop()
    files = results_files(directory)
    if not files:
        st.error(f"No results files (*.nc) in `{directory}`. Run `make demo` or `diffpose-viz evaluate` first.")
        st.stop()
    return files


def open_results(path: Path) -> xr.Dataset:
    """Load one results file, or show what is wrong with it and stop the page."""
    try:
        return load_results_file(path)
    except Exception as exc:  # any unreadable file must become a message, not a traceback
        st.error(f"Could not read `{path}`: {type(exc).__name__}: {exc}")
        st.stop()


def pick_model(files: dict[str, Path], key: str, label: str = "Model") -> tuple[str, xr.Dataset]:
    name = st.sidebar.selectbox(label, list(files), key=key)
    return name, open_results(files[name])


def sample_labels(ds: xr.Dataset) -> list[str]:
    from diffpose_viz.figures import describe_sample
    mpjpe = ds["err"].values.mean(-1) if "err" in ds else None
    occ = ds["occluded"].values.sum(-1) if "occluded" in ds else None
    labels = []
    for i in range(ds.sizes["sample"]):
        text = f"#{i}: {describe_sample(ds, i)}"
        if mpjpe is not None:
            text += f" — {mpjpe[i]:.0f} mm"
        if occ is not None and occ[i]:
            text += f" ({int(occ[i])} hidden)"
        labels.append(text)
    return labels


def pick_sample(ds: xr.Dataset, key: str) -> int:
    labels = sample_labels(ds)
    return st.selectbox("Sample", range(len(labels)), format_func=lambda i: labels[i], key=key)


def plot(fig, key: str) -> None:
    """Every page shows its figures through here; `key` keeps one chart element per slot across reruns."""
    st.plotly_chart(fig, key=key, config={"displaylogo": False})


def page_header(title: str, caption: str) -> None:
    st.set_page_config(page_title=f"DiffPose · {title}", layout="wide")
    st.title(title)
    st.caption(caption)


# ---------------------------------------------------------------- your own input

LAYOUTS = ("H36M-17", "COCO-17")


def _as_frames(arr, source: str):
    """(17,C) or (T,17,C) or (T,17*C) with C in {2,3} -> (T,17,2) pixels and (T,17) confidence."""
    import numpy as np
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim == 2 and a.shape[1] in (34, 51):
        a = a.reshape(len(a), 17, a.shape[1] // 17)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1] != 17 or a.shape[2] not in (2, 3):
        raise ValueError(f"{source}: expected keypoints shaped (T,17,2), (T,17,3), (17,2) or (T,34|51); "
                         f"found {a.shape}")
    conf = a[..., 2] if a.shape[2] == 3 else np.isfinite(a[..., :2]).all(-1).astype(np.float64)
    return a[..., :2], conf


def parse_keypoints(filename: str, data: bytes, layout: str):
    """An uploaded npz/csv/json of 2D keypoints -> H36M-17 pixels (T,17,2) and confidence (T,17).

    npz: key `keypoints` (or the only array); csv: one row per frame, 34 (x,y) or 51 (x,y,c) numbers,
    an optional header; json: a list of frames or {"keypoints": ...}.
    """
    import io
    import json as _json

    import numpy as np

    from diffpose_viz.skeleton import coco17_to_h36m17

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    suffix = Path(filename).suffix.lower()
    if suffix == ".npz":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            keys = list(z.files)
            key = "keypoints" if "keypoints" in keys else keys[0] if len(keys) == 1 else None
            if key is None:
                raise KeyError(f"{filename}: no 'keypoints' array; found keys {keys}")
            arr = z[key]
    elif suffix == ".csv":
        text = data.decode("utf-8")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if lines and not lines[0].replace(",", "").replace(".", "").replace("-", "").replace(" ", "").replace(
                "e", "").replace("nan", "").isdigit():
            lines = lines[1:]  # header
        arr = np.loadtxt(io.StringIO("\n".join(lines)), delimiter=",", ndmin=2)
    elif suffix == ".json":
        obj = _json.loads(data.decode("utf-8"))
        arr = obj["keypoints"] if isinstance(obj, dict) else obj
    else:
        raise ValueError(f"{filename}: unsupported file type {suffix!r}; use .npz, .csv or .json")
    kp, conf = _as_frames(arr, filename)
    if layout == "COCO-17":
        kp, conf = coco17_to_h36m17(kp, conf)
    return kp.astype(np.float32), conf.astype(np.float32)


def sampling_command() -> list[str] | None:
    """The package's sampling CLI (`diffpose-viz sample`), or None when this install lacks it."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("diffpose_viz.cli") is None:
        return None
    cmd = [sys.executable, "-m", "diffpose_viz.cli", "sample"]
    try:
        probe = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return cmd if probe.returncode == 0 else None
