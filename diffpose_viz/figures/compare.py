"""Model against model, from several results files (one per model, same test set)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import xarray as xr

from diffpose_viz import metrics

SAMPLE_KEYS = ("subject", "action", "camera", "frame")


def _group_coord(ds: xr.Dataset) -> str:
    return "action_group" if "action_group" in ds.coords else "action"


def model_summary_table(results: dict[str, xr.Dataset]) -> pd.DataFrame:
    """One row per model: MPJPE of P-Agg (frame-wise and action-wise), J-Agg, and the oracles J-Best /
    P-Best (they use ground truth; labelled as such). Millimetres; every number from `diffpose_viz.metrics`."""
    rows = []
    for name, ds in results.items():
        if "err" not in ds:
            raise KeyError(f"results for {name!r} lack the variable 'err' (needs ground truth)")
        err = ds["err"].values
        group = ds[_group_coord(ds)].values.astype(str)
        row = {"model": name, "samples": int(ds.sizes["sample"]),
               "hypotheses": int(ds.sizes.get("hypothesis", 1)),
               "MPJPE P-Agg (mm)": metrics.frame_wise(err),
               "MPJPE mean over actions (mm)": metrics.action_wise(err, group)[0]}
        if "pred_jagg" in ds and "gt" in ds:
            row["MPJPE J-Agg (mm)"] = metrics.frame_wise(metrics.mpjpe_per_joint(ds["pred_jagg"].values,
                                                                                 ds["gt"].values))
        if "hypotheses" in ds and "gt" in ds:
            hyps, gt = ds["hypotheses"].values.astype(np.float64), ds["gt"].values.astype(np.float64)
            row["J-Best, oracle (mm)"] = metrics.frame_wise(
                metrics.mpjpe_per_joint(metrics.j_best(hyps, gt), gt))
            row["P-Best, oracle (mm)"] = metrics.frame_wise(
                metrics.mpjpe_per_joint(metrics.p_best(hyps, gt), gt))
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def per_action_table(results: dict[str, xr.Dataset]) -> pd.DataFrame:
    """MPJPE (mm) of P-Agg per action group (rows) and model (columns)."""
    cols = {}
    for name, ds in results.items():
        group = ds[_group_coord(ds)].values.astype(str)
        err = ds["err"].values.mean(-1)
        cols[name] = pd.Series({g: float(err[group == g].mean()) for g in np.unique(group)})
    return pd.DataFrame(cols).sort_index()


def model_comparison_figure(per_action: pd.DataFrame, height: int = 420) -> go.Figure:
    """Grouped bars: one group per action, one bar per model."""
    fig = go.Figure([go.Bar(x=per_action.index.astype(str), y=per_action[m].to_numpy(), name=str(m))
                     for m in per_action.columns])
    fig.update_layout(barmode="group", title=dict(text="MPJPE per action and model"), height=height,
                      yaxis_title="MPJPE (mm)", xaxis_tickangle=-30, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", y=1.1))
    return fig


def matched_sample_errors(ds_a: xr.Dataset, ds_b: xr.Dataset) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-sample MPJPE of two runs on the samples they share, matched on (subject, action, camera, frame)
    and, when both have it, the occlusion pattern. Returns (err_a, err_b, labels)."""
    def keys(ds):
        parts = [ds[k].values.astype(str) for k in SAMPLE_KEYS if k in ds.coords]
        if "occluded" in ds_a and "occluded" in ds_b:
            parts.append(np.array(["".join(map(str, r)) for r in ds["occluded"].values.astype(int)]))
        return ["/".join(p) for p in zip(*parts)]
    ka, kb = keys(ds_a), keys(ds_b)
    pos_b = {k: i for i, k in enumerate(kb)}
    pairs = [(i, pos_b[k]) for i, k in enumerate(ka) if k in pos_b]
    if not pairs:
        raise ValueError("the two results files share no samples (matched on subject/action/camera/frame)")
    ia, ib = map(np.array, zip(*pairs))
    ea, eb = ds_a["err"].values.mean(-1)[ia], ds_b["err"].values.mean(-1)[ib]
    return ea, eb, [ka[i] for i in ia]


def paired_error_figure(err_a: np.ndarray, err_b: np.ndarray, name_a: str, name_b: str,
                        labels: list[str] | None = None, height: int = 460) -> go.Figure:
    """Per-sample MPJPE of model A (x) against model B (y); points below the diagonal favour B."""
    ea, eb = np.asarray(err_a, dtype=np.float64), np.asarray(err_b, dtype=np.float64)
    hi = float(max(ea.max(initial=1.0), eb.max(initial=1.0))) * 1.05
    b_better = int((eb < ea).sum())
    fig = go.Figure([
        go.Scattergl(x=ea, y=eb, mode="markers", name="sample", text=labels, marker=dict(size=5, opacity=0.6)),
        go.Scatter(x=[0, hi], y=[0, hi], mode="lines", name="equal", line=dict(color="grey", dash="dash")),
    ])
    fig.update_layout(title=dict(text=f"per-sample MPJPE: {name_b} better on {b_better}/{len(ea)} samples"),
                      xaxis_title=f"{name_a} (mm)", yaxis_title=f"{name_b} (mm)", height=height,
                      xaxis_range=[0, hi], yaxis_range=[0, hi], showlegend=False,
                      margin=dict(l=10, r=10, t=50, b=10))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig
