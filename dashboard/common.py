"""Shared pieces of the dashboard pages: where the results are, cached loading, error display.

Pages import this as `common` (the dashboard folder is put on sys.path by each page).
Every problem with a file ends as `st.error` + `st.stop()` on the page, never a traceback.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st
import xarray as xr

from diffpose_viz.results import RESULTS_ENV, results_dir_setting, results_files  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[1]

ENV_VAR = RESULTS_ENV
DEFAULT_RESULTS = "results/demo"
DEFAULT_MODEL = "diffpose"
REQUIRED_VARS = ("pred", "input_2d")


def default_results_dir() -> str:
    return results_dir_setting()


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
        from diffpose_viz.results import load_results  # the package's validating loader
    except ImportError:
        load_results = None
    ds = load_results(p) if load_results is not None else xr.load_dataset(p)
    return _validate(ds, p)


def load_results_file(path: Path) -> xr.Dataset:
    return _load(str(path), path.stat().st_mtime)


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


def pick_model_with_gt(files: dict[str, Path], key: str, without: str) -> xr.Dataset:
    """`pick_model` for a page that reads the error (`err`): a file without ground truth stops the page with
    a message ending in `without` (what cannot be done)."""
    name, ds = pick_model(files, key)
    if "err" not in ds:
        st.error(f"`{files[name].name}` has no ground truth (`err`){without}")
        st.stop()
    return ds


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


def results_page(title: str, caption: str) -> dict[str, Path]:
    """A page that reads results files: its header, then the sidebar's results folder and the files in it (or a
    message on the page and stop)."""
    page_header(title, caption)
    return require_results(sidebar_results_dir())


# ---------------------------------------------------------------- your own input

LAYOUTS = ("H36M-17", "COCO-17")
LAYOUT_FORMATS = {"H36M-17": "h36m17", "COCO-17": "coco17"}


def parse_keypoints(filename: str, data: bytes, layout: str):
    """An uploaded npz/csv/json of 2D keypoints -> H36M-17 pixels (T,17,2) and confidence (T,17), read by
    the package's one keypoint-file reader (`diffpose_viz.datasets.keypoints_file`)."""
    from diffpose_viz.datasets.keypoints_file import load_keypoints_h36m17

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    kp, conf, _ = load_keypoints_h36m17(filename, LAYOUT_FORMATS[layout], data=data)
    return kp, conf


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _model(path: str, mtime: float, device: str):
    from diffpose_viz.inference import load_model

    return load_model(path, device)


def load_model_cached(path: Path, device: str = "cpu"):
    """The checkpoint's model, loaded once per (path, modification time)."""
    return _model(str(path), path.stat().st_mtime, device)
