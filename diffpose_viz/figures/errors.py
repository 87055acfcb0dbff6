"""Error breakdowns: per joint, per action, per reverse step, per number of hypotheses,
and whether the hypotheses' spread predicts the actual error. All errors in millimetres."""
from __future__ import annotations

import warnings

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from diffpose_viz import uncertainty
from diffpose_viz.skeleton import H36M17

ORACLE_DASH = "dot"  # oracle curves (they need ground truth) are always drawn dotted and labelled


def hypothesis_spread_mm(hypotheses: np.ndarray) -> np.ndarray:
    """(N,H,J,3) metres -> (N,J): mean distance of the hypotheses from their mean, in mm
    (`diffpose_viz.uncertainty.hypothesis_spread_mm(..., "mean")`, the one definition)."""
    h = np.asarray(hypotheses)
    if h.ndim != 4 or h.shape[-1] != 3:
        raise ValueError(f"hypotheses must be (sample, hypothesis, joint, 3), found shape {h.shape}")
    return uncertainty.hypothesis_spread_mm(h, "mean")


def spread_error_correlation(spread: np.ndarray, err: np.ndarray) -> dict:
    """Spearman and Pearson correlation of spread vs error (`diffpose_viz.uncertainty`); the root is excluded."""
    return uncertainty.spread_error_correlation(spread, err)


def spread_vs_error_figure(spread: np.ndarray, err: np.ndarray, joint_names=H36M17.joint_names,
                           max_points: int = 3000, seed: int = 0, height: int = 460) -> go.Figure:
    """Left: per (sample, joint) hypothesis spread against actual error. Right: Spearman rho per joint.

    A positive rho means the model's uncertainty is informative: it spreads where it is wrong.
    """
    s, e = np.asarray(spread, dtype=np.float64), np.asarray(err, dtype=np.float64)
    if s.shape != e.shape:
        raise ValueError(f"spread {s.shape} and error {e.shape} must have the same (sample, joint) shape")
    corr = spread_error_correlation(s, e)
    joint_idx = np.broadcast_to(np.arange(s.shape[1]), s.shape)[:, 1:].ravel()
    xs, ys = s[:, 1:].ravel(), e[:, 1:].ravel()
    if xs.size > max_points:  # keep the browser payload small
        keep = np.random.default_rng(seed).choice(xs.size, max_points, replace=False)
        xs, ys, joint_idx = xs[keep], ys[keep], joint_idx[keep]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.5, 0.5], horizontal_spacing=0.12, subplot_titles=(
        f"spread vs error (Spearman rho = {corr['spearman']:.2f}, Pearson r = {corr['pearson']:.2f})",
        "Spearman rho per joint"))
    fig.add_trace(go.Scattergl(x=xs, y=ys, mode="markers", name="(sample, joint)",
                               marker=dict(size=4, color=joint_idx, colorscale="Turbo", opacity=0.6),
                               text=[joint_names[j] for j in joint_idx], hoverinfo="text+x+y"), row=1, col=1)
    hi = float(np.nanmax([xs.max(initial=1.0), ys.max(initial=1.0)]))
    fig.add_trace(go.Scatter(x=[0, hi], y=[0, hi], mode="lines", name="error = spread",
                             line=dict(color="grey", dash="dash")), row=1, col=1)
    rho = corr["per_joint_spearman"][1:]
    fig.add_trace(go.Bar(x=list(joint_names[1:]), y=rho, name="rho per joint",
                         marker_color=np.where(np.nan_to_num(rho) >= 0, "#2ca02c", "#d62728")), row=1, col=2)
    fig.update_xaxes(title_text="hypothesis spread (mm)", row=1, col=1)
    fig.update_yaxes(title_text="error of P-Agg (mm)", row=1, col=1)
    fig.update_yaxes(title_text="Spearman rho", range=[-1, 1], row=1, col=2)
    fig.update_xaxes(tickangle=-45, row=1, col=2)
    fig.update_layout(height=height, showlegend=False, margin=dict(l=10, r=10, t=50, b=10))
    fig.layout.meta = dict(spearman=corr["spearman"], pearson=corr["pearson"])
    return fig


def per_joint_error_figure(err: np.ndarray, joint_names=H36M17.joint_names, occluded: np.ndarray | None = None,
                           title: str = "error per joint", height: int = 420) -> go.Figure:
    """Mean error per joint (bars, +- std). With `occluded` (N,J) the bars split into visible and occluded."""
    e = np.asarray(err, dtype=np.float64)
    fig = go.Figure()
    groups = [("all", np.ones_like(e, dtype=bool))] if occluded is None else [
        ("visible", ~np.asarray(occluded, dtype=bool)), ("occluded", np.asarray(occluded, dtype=bool))]
    for name, mask in groups:
        em = np.where(mask, e, np.nan)
        count = mask.sum(0)
        with warnings.catch_warnings():  # a joint never occluded gives an all-NaN column: leave it NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std = np.nanmean(em, 0), np.nanstd(em, 0)
        fig.add_trace(go.Bar(x=list(joint_names), y=mean, name=name, error_y=dict(type="data", array=std),
                             customdata=count, hovertemplate="%{x}: %{y:.1f} mm (n=%{customdata})"))
    fig.update_layout(barmode="group", title=dict(text=title), height=height, yaxis_title="MPJPE (mm)",
                      xaxis_tickangle=-45, margin=dict(l=10, r=10, t=50, b=10))
    return fig


def per_action_error_figure(err: np.ndarray, actions: np.ndarray, title: str = "error per action",
                            height: int = 420) -> go.Figure:
    """MPJPE per action (bars, sorted), with the mean over actions and the frame-wise mean as lines."""
    e = np.asarray(err, dtype=np.float64).mean(-1)
    actions = np.asarray(actions).astype(str)
    names = np.unique(actions)
    per = np.array([e[actions == a].mean() for a in names])
    order = np.argsort(per)
    fig = go.Figure(go.Bar(x=names[order], y=per[order], name="per action",
                           customdata=[int((actions == a).sum()) for a in names[order]],
                           hovertemplate="%{x}: %{y:.1f} mm (n=%{customdata})"))
    fig.add_hline(y=float(per.mean()), line_dash="dash", line_color="black",
                  annotation_text=f"mean over actions {per.mean():.1f} mm", annotation_position="top left")
    fig.add_hline(y=float(e.mean()), line_dash="dot", line_color="grey",
                  annotation_text=f"frame-wise {e.mean():.1f} mm", annotation_position="bottom right")
    fig.update_layout(title=dict(text=title), height=height, yaxis_title="MPJPE (mm)", xaxis_tickangle=-30,
                      showlegend=False, margin=dict(l=10, r=10, t=50, b=10))
    return fig


def error_vs_steps_figure(err_step: np.ndarray, timesteps: np.ndarray | None = None,
                          height: int = 380) -> go.Figure:
    """MPJPE of the mean x0 estimate at each recorded reverse step; band = 25-75th percentile over samples."""
    es = np.asarray(err_step, dtype=np.float64)
    if es.ndim != 3:
        raise ValueError(f"err_step must be (sample, step, joint), found shape {es.shape}")
    per_sample = es.mean(-1)  # (N, S)
    x = np.arange(es.shape[1])
    t = np.arange(es.shape[1])[::-1] if timesteps is None else np.asarray(timesteps)
    q25, q75 = np.percentile(per_sample, [25, 75], axis=0)
    fig = go.Figure([
        go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([q75, q25[::-1]]), fill="toself",
                   fillcolor="rgba(31,119,180,0.2)", line=dict(width=0), name="25-75th pct", hoverinfo="skip"),
        go.Scatter(x=x, y=per_sample.mean(0), mode="lines+markers", name="mean", customdata=t,
                   hovertemplate="step %{x} (t=%{customdata}): %{y:.1f} mm"),
    ])
    fig.update_layout(title=dict(text="error vs reverse step (x0 estimate, mean over hypotheses)"), height=height,
                      xaxis_title="reverse step (0 = h_K)", yaxis_title="MPJPE (mm)", yaxis_rangemode="tozero",
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def error_vs_hypotheses(hypotheses: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """MPJPE (mm) using the first n hypotheses, n = 1..H: P-Agg (mean pose), and the oracles
    J-Best (per-joint best) and P-Best (best whole pose). Each curve is (H,)."""
    h = np.asarray(hypotheses, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)[:, None]
    per = np.linalg.norm(h - g, axis=-1) * 1000.0  # (N, H, J)
    n_hyp = h.shape[1]
    csum = np.cumsum(h, axis=1)
    p_agg, j_best, p_best = [], [], []
    for n in range(1, n_hyp + 1):
        mean_pose = csum[:, n - 1] / n
        p_agg.append((np.linalg.norm(mean_pose - g[:, 0], axis=-1) * 1000.0).mean())
        j_best.append(per[:, :n].min(1).mean())
        p_best.append(per[:, :n].mean(-1).min(1).mean())
    return {"n": np.arange(1, n_hyp + 1), "P-Agg": np.array(p_agg),
            "J-Best (oracle)": np.array(j_best), "P-Best (oracle)": np.array(p_best)}


def error_vs_hypotheses_figure(curves: dict[str, np.ndarray], height: int = 380) -> go.Figure:
    fig = go.Figure()
    for name, y in curves.items():
        if name == "n":
            continue
        fig.add_trace(go.Scatter(x=curves["n"], y=y, mode="lines+markers", name=name,
                                 line=dict(dash=ORACLE_DASH if "oracle" in name else "solid")))
    fig.update_layout(title=dict(text="error vs number of hypotheses (oracles use ground truth)"), height=height,
                      xaxis_title="hypotheses used", yaxis_title="MPJPE (mm)", margin=dict(l=10, r=10, t=50, b=10))
    return fig
