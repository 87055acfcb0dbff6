"""The pose-specific initial distribution H_K, drawn over the 2D input.

H_K lives in the model's state space (camera-frame, root-relative metres). Its x/y part is
mapped onto the image plane with a weak-perspective fit (scale + offset) against the 2D
keypoints, because results files carry no intrinsics; depth (z) gets its own panel.
Kernels have diagonal variances, so each one is an axis-aligned ellipse (a plotly "circle"
shape spanning mean +- 2 sigma) whose opacity is the kernel weight.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from diffpose_viz.skeleton import H36M17

SIDE_COLORS = {"left": "#1f77b4", "right": "#d62728", "centre": "#7f7f7f"}
MIN_OPACITY = 0.05  # a kernel of weight ~0 stays faintly visible rather than vanishing


def joint_colors(skeleton=H36M17) -> list[str]:
    return [SIDE_COLORS["left"] if j in skeleton.left else SIDE_COLORS["right"] if j in skeleton.right
            else SIDE_COLORS["centre"] for j in range(skeleton.num_joints)]


def mixture_mean(weight: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(J,K) weights and (J,K,D) means -> (J,D) mixture mean."""
    w = np.asarray(weight, dtype=np.float64)
    w = w / np.clip(w.sum(-1, keepdims=True), 1e-12, None)
    return (w[..., None] * np.asarray(mean, dtype=np.float64)).sum(-2)


def mixture_std(weight: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Per-joint standard deviation of the whole mixture, sqrt(E|x - E x|^2), in the units of `mean`: (J,)."""
    w = np.asarray(weight, dtype=np.float64)
    w = w / np.clip(w.sum(-1, keepdims=True), 1e-12, None)
    mu = np.asarray(mean, dtype=np.float64)
    m = (w[..., None] * mu).sum(-2, keepdims=True)
    second = (w[..., None] * (np.asarray(var, dtype=np.float64) + (mu - m) ** 2)).sum(-2)
    return np.sqrt(second.sum(-1))


def sample_gmm(weight: np.ndarray, mean: np.ndarray, var: np.ndarray, n: int,
               rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """Draw n points per joint from diagonal mixtures: (J,K),(J,K,D),(J,K,D) -> (J,n,D)."""
    rng = np.random.default_rng(rng)
    w = np.asarray(weight, dtype=np.float64)
    w = w / np.clip(w.sum(-1, keepdims=True), 1e-12, None)
    n_joints, n_kernels = w.shape
    cdf = np.cumsum(w, -1)
    u = rng.random((n_joints, n))
    k = np.minimum((u[..., None] > cdf[:, None, :]).sum(-1), n_kernels - 1)  # (J, n)
    mu = np.take_along_axis(np.asarray(mean), k[..., None], axis=1)
    sd = np.sqrt(np.take_along_axis(np.asarray(var), k[..., None], axis=1))
    return mu + sd * rng.standard_normal(mu.shape)


def fit_weak_perspective(points_m: np.ndarray, keypoints_px: np.ndarray, mask: np.ndarray | None = None
                         ) -> tuple[float, np.ndarray]:
    """Least-squares px = scale * xy_m + offset over joints in `mask` (finite ones only)."""
    x = np.asarray(points_m, dtype=np.float64)[..., :2]
    y = np.asarray(keypoints_px, dtype=np.float64)
    ok = np.isfinite(x).all(-1) & np.isfinite(y).all(-1)
    if mask is not None:
        ok &= np.asarray(mask, dtype=bool)
    if ok.sum() < 2:
        raise ValueError(f"need at least 2 visible joints to place H_K on the image, found {int(ok.sum())}")
    xm, ym = x[ok].mean(0), y[ok].mean(0)
    xc, yc = x[ok] - xm, y[ok] - ym
    scale = float((xc * yc).sum() / max((xc**2).sum(), 1e-12))
    if scale <= 0:
        raise ValueError(f"weak-perspective scale came out {scale:.3g} <= 0; 2D input and H_K disagree")
    return scale, ym - scale * xm


def gmm_figure(
    input_2d: np.ndarray,
    weight: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    confidence: np.ndarray | None = None,
    joints: list[int] | None = None,
    n_samples: int = 50,
    seed: int = 0,
    n_sigma: float = 2.0,
    title: str | None = None,
    height: int = 520,
    skeleton=H36M17,
) -> go.Figure:
    """Left: image plane (px) with the 2D input, kernel ellipses (opacity = weight) and samples.
    Right: depth (root-relative z, m) per joint, kernels as bands mean +- n_sigma*std, and samples.

    input_2d (J,2) px; confidence (J,) (0 = missing); weight (J,K); mean/var (J,K,3) metres / m^2.
    Traces: 0 2D bones, 1 2D keypoints, 2 image-plane samples, 3 depth samples, 4 depth kernel means.
    Shapes: one ellipse per (selected joint, kernel) on the image plane, then one band per depth kernel.
    """
    kp = np.asarray(input_2d, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    mu = np.asarray(mean, dtype=np.float64)
    va = np.asarray(var, dtype=np.float64)
    n_joints = skeleton.num_joints
    if kp.shape != (n_joints, 2) or w.ndim != 2 or mu.shape != (*w.shape, 3) or va.shape != mu.shape:
        raise ValueError(f"expected input_2d (17,2), weight (17,K), mean/var (17,K,3); found {kp.shape}, "
                         f"{w.shape}, {mu.shape}, {va.shape}")
    conf = np.ones(n_joints) if confidence is None else np.asarray(confidence, dtype=np.float64)
    sel = list(range(n_joints)) if not joints else [int(j) for j in joints]
    colors = joint_colors(skeleton)

    visible = conf > 0
    scale, offset = fit_weak_perspective(mixture_mean(w, mu), kp, visible)
    samples = sample_gmm(w, mu, va, n_samples, seed)  # (J, n, 3)

    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.1,
                        subplot_titles=("image plane: 2D input and H_K kernels (x, y)",
                                        "depth: H_K kernels along z (root-relative)"))
    # 2D input skeleton, one trace, NaN between bones.
    par = np.array([p for p, _ in skeleton.bones])
    chi = np.array([c for _, c in skeleton.bones])
    segs = np.stack([kp[par], kp[chi], np.full((len(par), 2), np.nan)], 1).reshape(-1, 2)
    fig.add_trace(go.Scatter(x=segs[:, 0], y=segs[:, 1], mode="lines", name="2D input",
                             line=dict(color="black", width=1.5), hoverinfo="skip"), row=1, col=1)
    fig.add_trace(go.Scatter(
        x=kp[:, 0], y=kp[:, 1], mode="markers", name="keypoints (hollow = occluded)",
        marker=dict(size=8, color=colors, symbol=["circle" if v else "circle-open" for v in visible],
                    line=dict(width=1.5, color=colors)),
        text=[f"{n} (conf {c:.2f})" for n, c in zip(skeleton.joint_names, conf)], hoverinfo="text"), row=1, col=1)
    s_img = samples[sel, :, :2] * scale + offset
    fig.add_trace(go.Scatter(
        x=s_img[..., 0].ravel(), y=s_img[..., 1].ravel(), mode="markers", name=f"samples ({n_samples}/joint)",
        marker=dict(size=3, color=np.repeat([colors[j] for j in sel], n_samples), opacity=0.5),
        hoverinfo="skip"), row=1, col=1)
    jitter = np.random.default_rng(seed).uniform(-0.25, 0.25, (len(sel), n_samples))
    fig.add_trace(go.Scatter(
        x=(np.arange(len(sel))[:, None] + jitter).ravel(), y=samples[sel, :, 2].ravel(), mode="markers",
        name="depth samples", showlegend=False,
        marker=dict(size=3, color=np.repeat([colors[j] for j in sel], n_samples), opacity=0.5),
        hoverinfo="skip"), row=1, col=2)
    kj, kk = np.meshgrid(np.arange(len(sel)), np.arange(w.shape[1]), indexing="ij")
    fig.add_trace(go.Scatter(
        x=kj.ravel(), y=mu[sel, :, 2].ravel(), mode="markers", name="kernel means",
        marker=dict(size=9, symbol="line-ew", line=dict(width=3, color="black")),
        text=[f"{skeleton.joint_names[sel[j]]} k={k}: w={w[sel[j], k]:.2f}" for j, k in zip(kj.ravel(), kk.ravel())],
        hoverinfo="text", showlegend=False), row=1, col=2)

    shapes = []
    for j in sel:
        for k in range(w.shape[1]):
            cx, cy = mu[j, k, :2] * scale + offset
            rx, ry = n_sigma * np.sqrt(va[j, k, :2]) * scale
            shapes.append(dict(type="circle", xref="x", yref="y", x0=cx - rx, x1=cx + rx, y0=cy - ry, y1=cy + ry,
                               fillcolor=colors[j], line=dict(color=colors[j], width=1),
                               opacity=float(np.clip(w[j, k], MIN_OPACITY, 1.0)), layer="below"))
    for i, j in enumerate(sel):
        for k in range(w.shape[1]):
            z, sz = mu[j, k, 2], n_sigma * np.sqrt(va[j, k, 2])
            shapes.append(dict(type="rect", xref="x2", yref="y2", x0=i - 0.35, x1=i + 0.35, y0=z - sz, y1=z + sz,
                               fillcolor=colors[j], line=dict(width=0),
                               opacity=float(np.clip(w[j, k], MIN_OPACITY, 1.0)), layer="below"))
    fig.update_layout(shapes=shapes, height=height, title=dict(text=title) if title else None,
                      margin=dict(l=10, r=10, t=70 if title else 50, b=10),
                      legend=dict(orientation="h", y=-0.12))
    fig.update_xaxes(title_text="u (px)", row=1, col=1)
    fig.update_yaxes(title_text="v (px, down)", autorange="reversed", scaleanchor="x", scaleratio=1, row=1, col=1)
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(sel))),
                     ticktext=[skeleton.joint_names[j] for j in sel], tickangle=-45, row=1, col=2)
    fig.update_yaxes(title_text="z (m, away from camera)", row=1, col=2)
    fig.layout.meta = dict(weak_perspective_scale_px_per_m=scale)
    return fig
