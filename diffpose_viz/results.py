"""The results file (docs/RESULTS_SCHEMA.md): build the xarray Dataset, write it atomically, load it back
with validation. Figures, notebooks and the dashboard read nothing else.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from diffpose_viz.atomic import atomic_target, atomic_targets
from diffpose_viz.datasets.actions import action_group
from diffpose_viz.errors import ResultsError
from diffpose_viz.metrics import ORACLE_NOTE, mpjpe_per_joint
from diffpose_viz.memory import USABLE_FRACTION, available_bytes, format_bytes
from diffpose_viz.safe_io import SafeLoadError, check_input_file
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
    # optional, written with an out-of-domain model fitted on validation (diffpose_viz.ood, `add_ood`)
    "ood_score": (("sample",), "1", "out-of-domain score: mean robust z of its components against validation "
                                    "rows (no ground truth used)"),
    "ood_flag": (("sample",), "1", "outside what this model was trained on: ood_score above the validation "
                                   "threshold (bool as int8)"),
    "ood_components": (("sample", "ood_component"), "1", "robust z of each score component (NaN: not used)"),
    "radius": (("sample", "joint"), "mm", "calibrated error-bar radius around pred, conditional on ood_score "
                                         "(level in the attribute 'level'; inf: too little validation data)"),
}
#: Variables that may hold +inf outside missing samples (an interval without enough validation data), and
#: variables that may hold NaN (a score component not used by the model, a score not computable).
MAY_BE_INFINITE = ("radius",)
MAY_BE_NAN = ("ood_score", "ood_components")
ALWAYS_REQUIRED = ("input_2d", "confidence", "occluded", "hypotheses", "pred", "pred_jagg")
REQUIRED_WITH_GT = ("gt", "err", "err_hyp")
REQUIRED_ATTRS = ("model", "config", "versions", "created", "dataset", "split", "oracle_note")
REQUIRED_COORDS = ("subject", "action", "action_group", "camera", "frame")
#: Optional per-sample flag: a sample whose outputs could not be computed. NaN is allowed in its rows only.
MISSING_VARIABLES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "missing": (("sample",), "1", "no estimate for this sample: its values may be NaN (bool)"),
    "missing_reason": (("sample",), "1", "why the sample is missing ('' when it is not)"),
}
#: Error variable (mm) -> the pose variable it measures against gt.
ERROR_DEFINITIONS = {"err": "pred", "err_hyp": "hypotheses", "err_step": "x0_estimate"}
#: Largest |stored error - recomputed error| in mm (plus float32 rounding, relative 1e-6).
ERROR_TOLERANCE_MM = 1e-3
#: Root-relative ground truth in metres: any bone above this, or a median bone above MAX_MEDIAN_BONE_M, means mm.
MAX_BONE_M = 1.5
MAX_MEDIAN_BONE_M = 0.8
#: A model's estimate may be far from a body (an undertrained model gives bones of metres), so `pred` is only
#: taken for millimetres when its median bone exceeds this (a body in millimetres has ~250).
PRED_MM_MEDIAN_BONE = 50.0
#: Attributes that hold JSON text.
JSON_ATTRS = ("config", "versions")




@dataclass(frozen=True)
class Samples:
    """Which frame each sample is: (sample,) subject, action, camera, frame; `missing` (sample,) bool flags samples
    without an estimate (their values may be NaN) and `missing_reason` (sample,) strings say why."""

    subject: Any
    action: Any
    camera: Any
    frame: Any
    missing: np.ndarray | None = None
    missing_reason: Any = None


@dataclass(frozen=True)
class Inputs2D:
    """The 2D a model lifted: input_2d (sample,17,2) px, confidence (sample,17), occluded (sample,17)."""

    input_2d: np.ndarray
    confidence: np.ndarray
    occluded: np.ndarray


@dataclass(frozen=True)
class Estimates:
    """What a model made of it (metres): hypotheses (sample,N,17,3), pred and pred_jagg (sample,17,3); with a
    recorded reverse diffusion trajectory / x0_estimate (sample,N,S,17,3) and their timesteps; H_K (`gmm`: weights,
    means, variances)."""

    hypotheses: np.ndarray
    pred: np.ndarray
    pred_jagg: np.ndarray
    trajectory: np.ndarray | None = None
    x0_estimate: np.ndarray | None = None
    timesteps: list[int] | None = None
    gmm: dict[str, np.ndarray] | None = None


@dataclass(frozen=True)
class Provenance:
    """Where the results come from: the model's name, config and package versions, the dataset and split, and
    any further attributes (docs/RESULTS_SCHEMA.md)."""

    model: str
    config: dict
    versions: dict
    dataset: str
    split: str
    attrs: dict[str, Any] = field(default_factory=dict)


def build_results(inputs: Inputs2D, estimates: Estimates, samples: Samples, provenance: Provenance,
                  gt: np.ndarray | None = None) -> xr.Dataset:
    """Assemble a schema-conformant Dataset; errors are computed here from gt (sample,17,3) (mm, root-relative)."""
    hypotheses, pred, pred_jagg = estimates.hypotheses, estimates.pred, estimates.pred_jagg
    trajectory, x0_estimate, timesteps, gmm = (estimates.trajectory, estimates.x0_estimate, estimates.timesteps,
                                               estimates.gmm)
    subject, action = samples.subject, samples.action
    missing, missing_reason = samples.missing, samples.missing_reason
    n, h = hypotheses.shape[:2]
    if hypotheses.shape[2:] != (17, 3):
        raise ResultsError(f"hypotheses: expected (sample, hypothesis, 17, 3), found {hypotheses.shape}")
    data: dict[str, np.ndarray] = {
        "input_2d": inputs.input_2d, "confidence": inputs.confidence,
        "occluded": np.asarray(inputs.occluded).astype(np.int8),
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
        "camera": ("sample", np.asarray(samples.camera, dtype=str)),
        "frame": ("sample", np.asarray(samples.frame, dtype=np.int64)),
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
    if missing is not None:
        flags = np.asarray(missing, dtype=bool).reshape(-1)
        reasons = np.asarray([""] * n if missing_reason is None else missing_reason, dtype=str).reshape(-1)
        if len(flags) != n or len(reasons) != n:
            raise ResultsError("missing/missing_reason: one entry per sample needed", expected=f"{n} entries",
                               found=f"{len(flags)} and {len(reasons)}")
        for name, values in (("missing", flags), ("missing_reason", reasons)):
            dims, units, long_name = MISSING_VARIABLES[name]
            variables[name] = xr.DataArray(values, dims=dims, attrs={"units": units, "long_name": long_name})
    ds = xr.Dataset(variables, coords=coords)
    ds.attrs = {
        "model": provenance.model, "config": json.dumps(provenance.config), "versions": json.dumps(provenance.versions),
        "created": _dt.datetime.now().isoformat(timespec="seconds"), "dataset": provenance.dataset,
        "split": provenance.split, "oracle_note": ORACLE_NOTE,
    }
    for k, v in provenance.attrs.items():
        ds.attrs[k] = v if isinstance(v, (str, int, float)) and not isinstance(v, bool) else json.dumps(v)
    return ds


def add_ood(ds: xr.Dataset, scored, model) -> xr.Dataset:
    """`ds` with the out-of-domain variables of `diffpose_viz.ood.Scored` and the model's threshold/level."""
    from diffpose_viz import ood

    out = ds.copy()
    values = {"ood_score": scored.score, "ood_flag": np.asarray(scored.flag).astype(np.int8),
              "ood_components": scored.components, "radius": scored.radius}
    for name, arr in values.items():
        dims, units, long_name = VARIABLES[name]
        arr = np.asarray(arr)
        out[name] = xr.DataArray(arr.astype(np.float32) if arr.dtype.kind == "f" else arr, dims=dims,
                                 attrs={"units": units, "long_name": long_name})
    out = out.assign_coords(ood_component=list(ood.COMPONENTS))
    out["radius"].attrs.update(level=ood.RADIUS_LEVEL, calibration=f"{getattr(model, 'radius_from', 'normalised')} conformal on validation rows")
    out.attrs.update(ood_threshold=float(model.scorer.threshold), ood_flag_level=float(model.scorer.flag_level),
                     ood_components_used=json.dumps(list(model.scorer.components)))
    return out


def write_results(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """netCDF4 to a temp file in the same folder, then os.replace (never a half-written file)."""
    path = Path(path)
    with atomic_target(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")
    return path


def metrics_path_for(results_path: str | os.PathLike) -> Path:
    """Where the metrics JSON of a results file goes: same name, `.metrics.json`."""
    return Path(results_path).with_suffix(".metrics.json")


def write_results_with_metrics(ds: xr.Dataset, path: str | os.PathLike, metrics: dict,
                               metrics_path: str | os.PathLike) -> tuple[Path, Path]:
    """The results file and its metrics JSON, both written before either is renamed into place (metrics
    last), so a failure never leaves a results file that looks finished without its metrics."""
    with atomic_targets(path, metrics_path) as (tmp_nc, tmp_json):
        ds.to_netcdf(tmp_nc, engine="netcdf4")
        tmp_json.write_text(json.dumps(metrics, indent=2))
    return Path(path), Path(metrics_path)


def _where(ds: xr.Dataset, name: str, index: tuple[int, ...]) -> str:
    """'sample 3, joint 'left_wrist'' for a position in variable `name`."""
    out = []
    for dim, i in zip(ds[name].dims, index):
        label = ds[dim].values[i] if dim in ds.coords and dim in ("joint", "xyz", "uv") else i
        out.append(f"{dim} '{label}'" if isinstance(label, str) else f"{dim} {int(label)}")
    return ", ".join(out)


def _missing_flags(ds: xr.Dataset, source: str) -> np.ndarray:
    """(sample,) bool: samples explicitly flagged missing (all False without a `missing` variable)."""
    n = ds.sizes["sample"]
    if "missing" not in ds:
        if "missing_reason" in ds:
            raise ResultsError("present without 'missing'", source=source, variable="missing_reason",
                               expected="a 'missing' (sample,) bool variable next to it", found="no 'missing'")
        return np.zeros(n, bool)
    for name, (dims, _, _) in MISSING_VARIABLES.items():
        if name in ds and tuple(ds[name].dims) != dims:
            raise ResultsError("wrong dims", source=source, variable=name, expected=dims,
                               found=tuple(ds[name].dims))
    flags = ds["missing"].values
    if flags.dtype.kind not in "biu" or not np.isin(flags, (0, 1)).all():
        raise ResultsError("not a boolean flag", source=source, variable="missing", expected="bool (or 0/1)",
                           found=f"dtype {flags.dtype}, values {np.unique(flags)[:5]}")
    if "missing_reason" in ds and ds["missing_reason"].dtype.kind not in "USO":
        raise ResultsError("not text", source=source, variable="missing_reason", expected="strings",
                           found=f"dtype {ds['missing_reason'].dtype}")
    return flags.astype(bool)


def _check_finite(ds: xr.Dataset, source: str, missing: np.ndarray) -> None:
    """NaN/inf only in samples flagged missing, and in `input_2d` where `confidence` is 0 (a missing joint)."""
    first = ("gt", "pred", "hypotheses", "pred_jagg", "err", "err_hyp", "input_2d", "confidence")
    for name in dict.fromkeys([*first, *VARIABLES]):  # the headline variables are reported first
        if name not in ds or ds[name].dtype.kind not in "fc":
            continue
        if name in MAY_BE_NAN:
            continue
        bad = np.isnan(ds[name].values) if name in MAY_BE_INFINITE else ~np.isfinite(ds[name].values)
        bad[missing] = False
        if name == "input_2d" and "confidence" in ds:
            bad &= (ds["confidence"].values != 0)[..., None]
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            allowed = "finite values (NaN only in samples flagged in 'missing'"
            allowed += ", or in input_2d where confidence is 0)" if name == "input_2d" else ")"
            raise ResultsError(f"{int(bad.sum())} NaN/inf value(s), first at {_where(ds, name, first)}",
                               source=source, variable=name, expected=allowed, found="NaN/inf")


def _check_non_negative(ds: xr.Dataset, source: str, missing: np.ndarray) -> None:
    for name in ("err", "err_hyp", "err_step", "gmm_weight", "gmm_var", "confidence"):
        if name not in ds:
            continue
        values = ds[name].values
        negative = values < 0
        negative[missing] = False
        if negative.any():
            first = tuple(int(i) for i in np.argwhere(negative)[0])
            raise ResultsError(f"{int(negative.sum())} negative value(s), first at {_where(ds, name, first)}",
                               source=source, variable=name, expected="values >= 0",
                               found=f"{float(values[first]):.6g}")


def _check_units(ds: xr.Dataset, source: str, missing: np.ndarray) -> None:
    """Root-relative poses in metres. gt: a bone over MAX_BONE_M or a median bone over MAX_MEDIAN_BONE_M
    means millimetres; pred: a median bone over PRED_MM_MEDIAN_BONE does."""
    keep = ~missing
    for name, max_bone, max_median in (("gt", MAX_BONE_M, MAX_MEDIAN_BONE_M),
                                       ("pred", float("inf"), PRED_MM_MEDIAN_BONE)):
        if name not in ds or not keep.any():
            continue
        bones = H36M17.bone_lengths(ds[name].values[keep].astype(np.float64))  # (n, bones)
        longest, median = float(bones.max()), float(np.median(bones))
        if longest > max_bone or median > max_median:
            row, b = np.unravel_index(int(bones.argmax()), bones.shape)
            parent, child = H36M17.bones[b]
            names = H36M17.joint_names
            limit = (f"bones <= {max_bone} m and a median bone <= {max_median} m" if np.isfinite(max_bone)
                     else f"a median bone <= {max_median} m")
            raise ResultsError(
                "looks like millimetres, expected metres", source=source, variable=name, expected=limit,
                found=f"median bone {median:.4g}, longest {longest:.4g} ({names[parent]}-{names[child]} at sample "
                      f"{int(np.flatnonzero(keep)[row])})")


def _check_errors(ds: xr.Dataset, source: str, missing: np.ndarray) -> None:
    """err, err_hyp, err_step equal 1000 * ||pose - gt|| per joint (root-relative) within ERROR_TOLERANCE_MM."""
    if "gt" not in ds:
        return
    keep = ~missing
    gt = ds["gt"].values[keep].astype(np.float64)
    for name, pose_name in ERROR_DEFINITIONS.items():
        if name not in ds or pose_name not in ds:
            continue
        values = ds[pose_name].values[keep]
        if name == "err":
            expected = mpjpe_per_joint(values.astype(np.float64), gt)
        elif name == "err_hyp":
            expected = mpjpe_per_joint(values.astype(np.float64), gt[:, None])
        else:  # the mean over hypotheses, without a float64 copy of every trajectory
            expected = mpjpe_per_joint(values.mean(1, dtype=np.float64), gt[:, None])
        stored = ds[name].values[keep].astype(np.float64)
        diff = np.abs(stored - expected)
        bad = diff > ERROR_TOLERANCE_MM + 1e-6 * expected
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            where = _where(ds, name, (int(np.flatnonzero(keep)[first[0]]), *first[1:]))
            formula = {"err": "1000 * ||pred - gt||", "err_hyp": "1000 * ||hypotheses - gt||",
                       "err_step": "1000 * ||mean over hypotheses of x0_estimate - gt||"}[name]
            raise ResultsError(
                f"does not match {pose_name} and gt in {int(bad.sum())} place(s), first at {where}", source=source,
                variable=name, expected=f"{formula} per joint (root-relative, mm) within {ERROR_TOLERANCE_MM} mm: "
                f"{expected[first]:.4f}", found=f"{stored[first]:.4f} (max difference {diff.max():.4g} mm)")


def _check_json_attrs(ds: xr.Dataset, source: str) -> None:
    for name in JSON_ATTRS:
        text = ds.attrs.get(name)
        try:
            value = json.loads(text) if isinstance(text, (str, bytes)) else None
        except json.JSONDecodeError as err:
            raise ResultsError("not JSON", source=source, attribute=name, expected="a JSON object string",
                               found=f"{str(text)[:60]!r} ({err.msg} at char {err.pos})") from None
        if not isinstance(value, dict):
            raise ResultsError("not a JSON object", source=source, attribute=name, expected="a JSON object string",
                               found=f"{type(text).__name__} {str(text)[:60]!r}")


def _check_fingerprint_attr(ds: xr.Dataset, source: str) -> None:
    """`checkpoint_fingerprint` (optional: files written before it lack it) is a sha256 hex digest."""
    fp = ds.attrs.get("checkpoint_fingerprint")
    if fp is not None and not (isinstance(fp, str) and len(fp) == 64 and all(c in "0123456789abcdef" for c in fp)):
        raise ResultsError("not a content fingerprint", source=source, attribute="checkpoint_fingerprint",
                           expected="64 lowercase hex digits (sha256)", found=repr(fp)[:80])


def validate_results(ds: xr.Dataset, source: str = "results") -> xr.Dataset:
    """Check `ds` against docs/RESULTS_SCHEMA.md: structure, then values (finite, non-negative, metres,
    errors consistent with the poses, JSON attributes). Raises ResultsError naming source and variable."""
    missing_attrs = [a for a in REQUIRED_ATTRS if a not in ds.attrs]
    if missing_attrs:
        raise ResultsError("missing attribute (see docs/RESULTS_SCHEMA.md)", source=source,
                           attribute=missing_attrs[0], expected=f"attributes {list(REQUIRED_ATTRS)}",
                           found=f"attributes {sorted(ds.attrs)}")
    required = list(ALWAYS_REQUIRED) + (list(REQUIRED_WITH_GT) if "gt" in ds or "err" in ds else [])
    for name in required:
        if name not in ds:
            raise ResultsError("missing variable (see docs/RESULTS_SCHEMA.md)", source=source, variable=name,
                               expected=f"variables {required}", found=f"variables {sorted(map(str, ds.data_vars))}")
    for name in ds.data_vars:
        if name in VARIABLES:
            dims = VARIABLES[name][0]
            if tuple(ds[name].dims) != dims:
                raise ResultsError("wrong dims", source=source, variable=name, expected=dims,
                                   found=tuple(ds[name].dims))
            if ds[name].dtype.kind not in "biuf":
                raise ResultsError("not numeric", source=source, variable=name, expected="numbers",
                                   found=f"dtype {ds[name].dtype}")
            if "units" not in ds[name].attrs:
                raise ResultsError("lacks a 'units' attribute", source=source, variable=name,
                                   expected=f"units {VARIABLES[name][1]!r}", found="no units")
    for c in REQUIRED_COORDS:
        if c not in ds.coords:
            raise ResultsError(f"missing coordinate '{c}' along 'sample'", source=source,
                               expected=f"coordinates {list(REQUIRED_COORDS)}",
                               found=f"coordinates {sorted(map(str, ds.coords))}")
    if ds.sizes.get("joint") != 17:
        raise ResultsError("wrong joint count", source=source, expected="17 joints", found=ds.sizes.get("joint"))
    if "trajectory" in ds and "timestep" not in ds.coords:
        raise ResultsError("present but coordinate 'timestep' is missing", source=source, variable="trajectory",
                           expected="a 'timestep' coordinate along 'step'", found="none")
    if ds.sizes.get("sample", 0) == 0:
        raise ResultsError("no samples", source=source, expected="at least 1 sample", found="0 samples")
    _check_json_attrs(ds, source)
    _check_fingerprint_attr(ds, source)
    missing = _missing_flags(ds, source)
    _check_finite(ds, source, missing)
    _check_non_negative(ds, source, missing)
    _check_units(ds, source, missing)
    _check_errors(ds, source, missing)
    return ds


def drop_missing(ds: xr.Dataset, source: str = "results") -> xr.Dataset:
    """`ds` without the samples flagged in `missing` (their count in attr `missing_dropped`).

    Raises ResultsError when no sample is left, so readers never average an empty selection.
    """
    if "missing" not in ds:
        return ds
    flags = ds["missing"].values.astype(bool)
    if flags.all():
        reasons = sorted({str(r) for r in ds["missing_reason"].values}) if "missing_reason" in ds else []
        raise ResultsError("every sample is flagged missing", source=source, variable="missing",
                           expected="at least one sample with an estimate",
                           found=f"{len(flags)} of {len(flags)} missing" + (f" (reasons {reasons[:3]})" if reasons
                                                                           else ""))
    out = ds.isel(sample=np.flatnonzero(~flags))
    out.attrs["missing_dropped"] = int(flags.sum())
    return out


def load_results(path: str | os.PathLike, *, keep_missing: bool = False) -> xr.Dataset:
    """Open a results file fully into memory (the file is closed again) and validate it.

    Samples flagged in `missing` are dropped unless `keep_missing` (see docs/RESULTS_SCHEMA.md), so
    figures, notebooks and the dashboard only see samples with an estimate.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"results file {path} does not exist")
    try:
        check_input_file(path, "a results file (.nc)")
    except SafeLoadError as err:
        raise ResultsError(err.problem, source=str(path), expected=err.expected, found=err.found) from None
    try:
        with xr.open_dataset(path) as lazy:  # shapes only: a tiny file may declare huge (never written) arrays
            _check_declared_size(lazy, str(path))
        ds = xr.load_dataset(path)
    except ResultsError:
        raise
    except Exception as err:  # noqa: BLE001 - any backend error means "not a readable netCDF file"
        raise ResultsError(f"cannot read as netCDF ({type(err).__name__}: {err})", source=str(path),
                           expected="a netCDF4 results file (docs/RESULTS_SCHEMA.md)", found="an unreadable file") \
            from None
    ds = validate_results(ds, str(path))
    return ds if keep_missing else drop_missing(ds, str(path))


def _check_declared_size(lazy: xr.Dataset, source: str) -> None:
    """Refuse, before loading, a file whose declared arrays would not fit in memory, naming the largest."""
    total = int(lazy.nbytes)
    budget = available_bytes() * USABLE_FRACTION
    if total > budget:
        name = max(lazy.variables, key=lambda v: lazy[v].nbytes)
        raise ResultsError("declares more data than fits in memory", source=source, variable=str(name),
                           expected=f"at most {format_bytes(budget)} in all (the memory available)",
                           found=f"{format_bytes(total)}, of which {format_bytes(lazy[name].nbytes)} for shape "
                                 f"{tuple(lazy[name].shape)}")


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
