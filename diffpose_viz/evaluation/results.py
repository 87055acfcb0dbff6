"""The results file (docs/RESULTS_SCHEMA.md): build the xarray Dataset, write it atomically, load it back
with validation. Figures, notebooks and the dashboard read nothing else.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from diffpose_viz.atomic import atomic_target
from diffpose_viz.datasets.actions import action_group
from diffpose_viz.metrics import ORACLE_NOTE, mpjpe_per_joint
from diffpose_viz.skeleton import H36M17

#: name -> (dims, units, long_name)
VARIABLES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "gt": (("sample", "joint", "xyz"), "m", "ground truth, root-relative camera frame"),
    "input_2d": (("sample", "joint", "uv"), "px", "2D input given to the model"),
    "confidence": (("sample", "joint"), "1", "per-joint 2D confidence (0 = missing/occluded)"),
    "occluded": (("sample", "joint"), "1", "joint was occluded in the input (bool as int8)"),
    "trajectory": (("sample", "hypothesis", "step", "joint", "xyz"), "m", "h_k at each recorded step"),
    "x0_estimate": (("sample", "hypothesis", "step", "joint", "xyz"), "m",
                    "the model's estimate of h_0 at each recorded step"),
    "hypotheses": (("sample", "hypothesis", "joint", "xyz"), "m", "final pose of every hypothesis"),
    "pred": (("sample", "joint", "xyz"), "m", "P-Agg: mean of the hypotheses (the paper's output)"),
    "pred_jagg": (("sample", "joint", "xyz"), "m",
                  "J-Agg: per joint, the hypothesis with the smallest 2D reprojection error"),
    "err": (("sample", "joint"), "mm", "per-joint error of pred (MPJPE, root-relative)"),
    "err_hyp": (("sample", "hypothesis", "joint"), "mm", "per-joint error of every hypothesis"),
    "err_step": (("sample", "step", "joint"), "mm", "per-joint error of the mean x0-estimate at each step"),
    "gmm_weight": (("sample", "joint", "kernel"), "1", "fitted H_K mixture weights"),
    "gmm_mean": (("sample", "joint", "kernel", "xyz"), "m", "fitted H_K kernel means"),
    "gmm_var": (("sample", "joint", "kernel", "xyz"), "m2", "fitted H_K kernel variances (diagonal)"),
}
ALWAYS_REQUIRED = ("input_2d", "confidence", "occluded", "hypotheses", "pred", "pred_jagg")
REQUIRED_WITH_GT = ("gt", "err", "err_hyp")
REQUIRED_ATTRS = ("model", "config", "versions", "created", "dataset", "split", "oracle_note")
REQUIRED_COORDS = ("subject", "action", "action_group", "camera", "frame")


class ResultsError(ValueError):
    """A results file does not follow docs/RESULTS_SCHEMA.md."""


def build_results(
    *,
    input_2d: np.ndarray,
    confidence: np.ndarray,
    occluded: np.ndarray,
    hypotheses: np.ndarray,
    pred: np.ndarray,
    pred_jagg: np.ndarray,
    subject, action, camera, frame,
    model: str,
    config: dict,
    versions: dict,
    dataset: str,
    split: str,
    gt: np.ndarray | None = None,
    trajectory: np.ndarray | None = None,
    x0_estimate: np.ndarray | None = None,
    timesteps: list[int] | None = None,
    gmm: dict[str, np.ndarray] | None = None,
    extra_attrs: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Assemble a schema-conformant Dataset; errors are computed here from gt (mm, root-relative)."""
    n, h = hypotheses.shape[:2]
    if hypotheses.shape[2:] != (17, 3):
        raise ResultsError(f"hypotheses: expected (sample, hypothesis, 17, 3), found {hypotheses.shape}")
    data: dict[str, np.ndarray] = {
        "input_2d": input_2d, "confidence": confidence, "occluded": np.asarray(occluded).astype(np.int8),
        "hypotheses": hypotheses, "pred": pred, "pred_jagg": pred_jagg,
    }
    if gt is not None:
        data["gt"] = gt
        data["err"] = mpjpe_per_joint(pred, gt)
        data["err_hyp"] = mpjpe_per_joint(hypotheses, gt[:, None])
    coords: dict[str, Any] = {
        "sample": np.arange(n), "joint": list(H36M17.joint_names), "xyz": ["x", "y", "z"], "uv": ["u", "v"],
        "hypothesis": np.arange(h),
        "subject": ("sample", np.asarray(subject, dtype=str)), "action": ("sample", np.asarray(action, dtype=str)),
        "action_group": ("sample", np.array([action_group(a) for a in np.asarray(action, dtype=str)], dtype=str)),
        "camera": ("sample", np.asarray(camera, dtype=str)), "frame": ("sample", np.asarray(frame, dtype=np.int64)),
    }
    if trajectory is not None:
        if timesteps is None or len(timesteps) != trajectory.shape[2]:
            raise ResultsError(f"trajectory has {trajectory.shape[2]} steps but timesteps is {timesteps}")
        data["trajectory"] = trajectory
        data["x0_estimate"] = x0_estimate
        coords["step"] = np.arange(trajectory.shape[2])
        coords["timestep"] = ("step", np.asarray(timesteps, dtype=np.int64))
        if gt is not None:
            data["err_step"] = mpjpe_per_joint(x0_estimate.mean(1), gt[:, None])
    if gmm is not None:
        data["gmm_weight"], data["gmm_mean"], data["gmm_var"] = gmm["weights"], gmm["means"], gmm["variances"]
        coords["kernel"] = np.arange(gmm["weights"].shape[-1])
    variables = {}
    for name, values in data.items():
        dims, units, long_name = VARIABLES[name]
        arr = np.asarray(values)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        if arr.ndim != len(dims):
            raise ResultsError(f"{name}: expected dims {dims}, found an array of shape {arr.shape}")
        variables[name] = xr.DataArray(arr, dims=dims, attrs={"units": units, "long_name": long_name})
    ds = xr.Dataset(variables, coords=coords)
    ds.attrs = {
        "model": model, "config": json.dumps(config), "versions": json.dumps(versions),
        "created": _dt.datetime.now().isoformat(timespec="seconds"), "dataset": dataset, "split": split,
        "oracle_note": ORACLE_NOTE,
    }
    for k, v in (extra_attrs or {}).items():
        ds.attrs[k] = v if isinstance(v, (str, int, float)) and not isinstance(v, bool) else json.dumps(v)
    return ds


def write_results(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """netCDF4 to a temp file in the same folder, then os.replace (never a half-written file)."""
    path = Path(path)
    with atomic_target(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")
    return path


def validate_results(ds: xr.Dataset, source: str = "results") -> xr.Dataset:
    missing_attrs = [a for a in REQUIRED_ATTRS if a not in ds.attrs]
    if missing_attrs:
        raise ResultsError(f"{source}: missing attribute '{missing_attrs[0]}' (see docs/RESULTS_SCHEMA.md)")
    required = list(ALWAYS_REQUIRED) + (list(REQUIRED_WITH_GT) if "gt" in ds or "err" in ds else [])
    for name in required:
        if name not in ds:
            raise ResultsError(f"{source}: missing variable '{name}' (see docs/RESULTS_SCHEMA.md)")
    for name in ds.data_vars:
        if name in VARIABLES:
            dims = VARIABLES[name][0]
            if tuple(ds[name].dims) != dims:
                raise ResultsError(f"{source}: variable '{name}' has dims {tuple(ds[name].dims)}, expected {dims}")
            if "units" not in ds[name].attrs:
                raise ResultsError(f"{source}: variable '{name}' lacks a 'units' attribute")
    for c in REQUIRED_COORDS:
        if c not in ds.coords:
            raise ResultsError(f"{source}: missing coordinate '{c}' along 'sample'")
    if ds.sizes.get("joint") != 17:
        raise ResultsError(f"{source}: expected 17 joints, found {ds.sizes.get('joint')}")
    if "trajectory" in ds and "timestep" not in ds.coords:
        raise ResultsError(f"{source}: 'trajectory' present but coordinate 'timestep' is missing")
    return ds


def load_results(path: str | os.PathLike) -> xr.Dataset:
    """Open a results file fully into memory (the file is closed again) and validate it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"results file {path} does not exist")
    try:
        ds = xr.load_dataset(path)
    except Exception as err:  # noqa: BLE001 - any backend error means "not a readable netCDF file"
        raise ResultsError(f"{path}: cannot read as netCDF ({type(err).__name__}: {err})") from None
    return validate_results(ds, str(path))


def results_config(ds: xr.Dataset) -> dict:
    return json.loads(ds.attrs["config"])


# --------------------------------------------------------------------------- a folder of results

#: Environment variable naming the results folder the dashboard and notebooks open.
RESULTS_ENV = "DIFFPOSE_VIZ_RESULTS"
DEFAULT_RESULTS = "results/demo"
#: The model listed first (the paper's method).
FIRST_MODEL = "diffpose"


def results_dir_setting() -> str:
    """$DIFFPOSE_VIZ_RESULTS, else results/demo (what `make demo` writes)."""
    return os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS


def results_files(directory: str | os.PathLike) -> dict[str, Path]:
    """Model name (file stem) -> results file for every *.nc in the folder, DiffPose first."""
    files = {p.stem: p for p in sorted(Path(directory).glob("*.nc"))}
    return dict(sorted(files.items(), key=lambda kv: (kv[0] != FIRST_MODEL, kv[0])))
