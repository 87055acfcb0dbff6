"""Occlusion: the same input with joints hidden. Does H_K widen there, do the hypotheses
widen, and where does the final pose go wrong?"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

from diffpose_viz.figures.compare import SAMPLE_KEYS
from diffpose_viz.figures.errors import hypothesis_spread_mm
from diffpose_viz.figures.gmm import mixture_std
from diffpose_viz.skeleton import H36M17


def occlusion_pairs(ds: xr.Dataset) -> list[tuple[int, int]]:
    """(clean, occluded) sample positions that share subject/action/camera/frame, where the clean one
    has no occluded joint and the other has at least one."""
    if "occluded" not in ds:
        return []
    occ = ds["occluded"].values.astype(bool).any(-1)
    keys = ["/".join(p) for p in zip(*[ds[k].values.astype(str) for k in SAMPLE_KEYS if k in ds.coords])]
    clean = {k: i for i, k in enumerate(keys) if not occ[i]}
    return [(clean[k], i) for i, k in enumerate(keys) if occ[i] and k in clean]


def occlusion_case(ds: xr.Dataset, clean: int, occluded: int) -> dict[str, np.ndarray]:
    """Per-joint numbers for one (clean, occluded) pair: initial spread (std of H_K, mm), spread of the
    final hypotheses (mm) and error (mm), each (2, J) as [clean, occluded]; plus the occluded mask (J,)."""
    out: dict[str, np.ndarray] = {"occluded": ds["occluded"].values[occluded].astype(bool)}
    pos = [clean, occluded]
    if "gmm_weight" in ds:
        out["initial_spread"] = np.stack([mixture_std(ds["gmm_weight"].values[i], ds["gmm_mean"].values[i],
                                                      ds["gmm_var"].values[i]) * 1000.0 for i in pos])
    if "hypotheses" in ds and ds.sizes.get("hypothesis", 1) > 1:
        out["hypothesis_spread"] = hypothesis_spread_mm(ds["hypotheses"].values[pos])
    if "err" in ds:
        out["error"] = ds["err"].values[pos]
    return out


def occlusion_comparison_figure(case: dict[str, np.ndarray], joint_names=H36M17.joint_names,
                                title: str | None = None, height: int = 620) -> go.Figure:
    """Rows of grouped bars (clean vs occluded input) for whatever `case` holds among initial_spread,
    hypothesis_spread and error. Occluded joints are marked with '*' and a shaded column."""
    panels = [(k, label) for k, label in (("initial_spread", "H_K spread (mm)"),
                                          ("hypothesis_spread", "hypothesis spread (mm)"),
                                          ("error", "error (mm)")) if k in case]
    if not panels:
        raise ValueError("occlusion case has none of initial_spread, hypothesis_spread, error")
    occ = np.asarray(case["occluded"], dtype=bool)
    ticks = [f"{n}*" if o else n for n, o in zip(joint_names, occ)]
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[label for _, label in panels])
    for r, (key, label) in enumerate(panels, start=1):
        vals = np.asarray(case[key])
        for c, (name, color) in enumerate((("all joints visible", "#1f77b4"), ("joints hidden", "#d62728"))):
            fig.add_trace(go.Bar(x=ticks, y=vals[c], name=name, marker_color=color, legendgroup=name,
                                 showlegend=r == 1), row=r, col=1)
        fig.update_yaxes(title_text=label.split(" (")[0], row=r, col=1)
        for j in np.flatnonzero(occ):
            fig.add_vrect(x0=j - 0.5, x1=j + 0.5, fillcolor="orange", opacity=0.15, line_width=0, row=r, col=1)
    fig.update_xaxes(tickangle=-45, row=len(panels), col=1)
    fig.update_layout(barmode="group", height=height, title=dict(text=title or "same frame, joints hidden (*)"),
                      legend=dict(orientation="h", y=1.08), margin=dict(l=10, r=10, t=80, b=10))
    return fig


def occlusion_summary_figure(ds: xr.Dataset, joint_names=H36M17.joint_names, height: int = 420) -> go.Figure:
    """Across all samples: mean error and hypothesis spread per joint when the joint is visible vs occluded."""
    occ = ds["occluded"].values.astype(bool)
    series = {"error (mm)": ds["err"].values}
    if "hypotheses" in ds and ds.sizes.get("hypothesis", 1) > 1:
        series["hypothesis spread (mm)"] = hypothesis_spread_mm(ds["hypotheses"].values)
    fig = make_subplots(rows=1, cols=len(series), subplot_titles=list(series), horizontal_spacing=0.08)
    for c, (label, vals) in enumerate(series.items(), start=1):
        for name, mask, color in (("visible", ~occ, "#1f77b4"), ("occluded", occ, "#d62728")):
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(mask, vals, 0).sum(0) / mask.sum(0)
            fig.add_trace(go.Bar(x=list(joint_names), y=mean, name=name, marker_color=color, legendgroup=name,
                                 showlegend=c == 1, customdata=mask.sum(0),
                                 hovertemplate="%{x}: %{y:.1f} (n=%{customdata})"), row=1, col=c)
    fig.update_xaxes(tickangle=-45)
    fig.update_layout(barmode="group", height=height, title=dict(text="visible vs occluded joints, all samples"),
                      margin=dict(l=10, r=10, t=70, b=10), legend=dict(orientation="h", y=1.12))
    return fig
