"""Plotly figure builders for DiffPose results.

The builders in the submodules take numpy arrays and return `go.Figure`s; the
`*_from_results` helpers here pick one sample out of a results Dataset
(docs/RESULTS_SCHEMA.md) and call them, so notebooks and the dashboard share one path.
"""
from __future__ import annotations

import plotly.graph_objects as go
import xarray as xr

from diffpose_viz.figures.compare import (
    matched_sample_errors, model_comparison_figure, paired_error_figure, per_action_table, model_summary_table,
)
from diffpose_viz.figures.errors import (
    error_vs_hypotheses, error_vs_hypotheses_figure, error_vs_steps_figure, hypothesis_spread_mm,
    per_action_error_figure, per_joint_error_figure, spread_error_correlation, spread_vs_error_figure,
)
from diffpose_viz.figures.gmm import fit_weak_perspective, gmm_figure, mixture_std, sample_gmm
from diffpose_viz.figures.occlusion import (
    occlusion_case, occlusion_comparison_figure, occlusion_pairs, occlusion_summary_figure,
)
from diffpose_viz.figures.skeleton3d import skeleton_figure, to_plot_axes
from diffpose_viz.figures.trajectory import trajectory_figure

__all__ = [
    "describe_sample", "error_vs_hypotheses", "error_vs_hypotheses_figure", "error_vs_steps_figure",
    "fit_weak_perspective", "gmm_figure", "gmm_from_results", "hypothesis_spread_mm", "matched_sample_errors",
    "mixture_std", "model_comparison_figure", "occlusion_case", "occlusion_comparison_figure", "occlusion_pairs",
    "occlusion_summary_figure", "paired_error_figure", "per_action_error_figure", "per_action_table",
    "per_joint_error_figure", "sample_gmm", "skeleton_figure", "skeleton_from_results", "spread_error_correlation",
    "spread_vs_error_figure", "model_summary_table", "to_plot_axes", "trajectory_figure", "trajectory_from_results",
]


def _require(ds: xr.Dataset, *names: str) -> None:
    missing = [n for n in names if n not in ds]
    if missing:
        model = ds.attrs.get("model", "?")
        raise KeyError(f"results of model {model!r} lack {missing}; present: {sorted(ds.data_vars)}")


def _check_sample(ds: xr.Dataset, i: int) -> int:
    n = int(ds.sizes["sample"])
    if not 0 <= int(i) < n:
        raise IndexError(f"sample position {i} out of range: the results hold {n} samples")
    return int(i)


def describe_sample(ds: xr.Dataset, i: int) -> str:
    """'S9 / Walking / cam 54138969 / frame 120' for sample position i."""
    i = _check_sample(ds, i)
    parts = []
    for key, fmt in (("subject", "{}"), ("action", "{}"), ("camera", "cam {}"), ("frame", "frame {}")):
        if key in ds.coords:
            parts.append(fmt.format(ds[key].values[i]))
    return " / ".join(parts) or f"sample {i}"


def skeleton_from_results(ds: xr.Dataset, i: int, max_hypotheses: int = 10, **kwargs) -> go.Figure:
    """P-Agg prediction of sample i against GT (when present), joints coloured by error, with hypotheses."""
    i = _check_sample(ds, i)
    _require(ds, "pred")
    hyps = ds["hypotheses"].values[i, :max_hypotheses] if "hypotheses" in ds and ds.sizes.get("hypothesis", 1) > 1 \
        else None
    return skeleton_figure(
        ds["pred"].values[i], gt=ds["gt"].values[i] if "gt" in ds else None,
        errors_mm=ds["err"].values[i] if "err" in ds else None, hypotheses=hyps,
        title=kwargs.pop("title", describe_sample(ds, i)), **kwargs)


def trajectory_from_results(ds: xr.Dataset, i: int, max_hypotheses: int = 10, **kwargs) -> go.Figure:
    i = _check_sample(ds, i)
    _require(ds, "trajectory")
    return trajectory_figure(
        ds["trajectory"].values[i],
        x0_estimate=ds["x0_estimate"].values[i] if "x0_estimate" in ds else None,
        gt=ds["gt"].values[i] if "gt" in ds else None,
        err_step_mm=ds["err_step"].values[i] if "err_step" in ds else None,
        timesteps=ds["timestep"].values if "timestep" in ds.coords else None,
        max_hypotheses=max_hypotheses, title=kwargs.pop("title", describe_sample(ds, i)), **kwargs)


def gmm_from_results(ds: xr.Dataset, i: int, joints: list[int] | None = None, **kwargs) -> go.Figure:
    i = _check_sample(ds, i)
    _require(ds, "input_2d", "gmm_weight", "gmm_mean", "gmm_var")
    return gmm_figure(
        ds["input_2d"].values[i], ds["gmm_weight"].values[i], ds["gmm_mean"].values[i], ds["gmm_var"].values[i],
        confidence=ds["confidence"].values[i] if "confidence" in ds else None, joints=joints,
        title=kwargs.pop("title", describe_sample(ds, i)), **kwargs)


def steps_available(ds: xr.Dataset) -> bool:
    return "trajectory" in ds and "step" in ds.dims and ds.sizes["step"] > 1
