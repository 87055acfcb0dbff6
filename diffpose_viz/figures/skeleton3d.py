"""3D skeletons in plotly: upright, to scale, one trace for all bones.

Poses arrive in the camera frame (x right, y down, z forward, metres). Plotly's
3D scene has z up, so every point is drawn at plot (x, z, -y): the person stands
on the plot's vertical axis and the camera looks along plot +y.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from diffpose_viz.skeleton import H36M17, Skeleton

#: Colour scale for per-joint errors (mm); fixed so colours mean the same everywhere.
ERROR_COLORSCALE = "YlOrRd"
GT_COLOR = "#2ca02c"
PRED_COLOR = "#1f77b4"
HYP_COLOR = "rgba(70,70,70,0.45)"

# Looking at the person from slightly in front, above and to the side (plot y is depth).
DEFAULT_CAMERA = dict(eye=dict(x=1.3, y=-2.7, z=0.5), up=dict(x=0, y=0, z=1), center=dict(x=0, y=0, z=0))


def to_plot_axes(points: np.ndarray) -> np.ndarray:
    """Camera-frame (..., 3) -> plot (..., 3) as (x, z, -y), so that 'up' is plot +z."""
    points = np.asarray(points, dtype=np.float32)
    if points.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) camera-frame points, found shape {points.shape}")
    return np.stack([points[..., 0], points[..., 2], -points[..., 1]], axis=-1)


def bone_polyline(poses: np.ndarray, skeleton: Skeleton = H36M17) -> np.ndarray:
    """(..., J, 3) plot-space poses -> (M, 3) vertices with a NaN row after every bone.

    All bones of all given poses become one polyline, so one trace draws them.
    """
    poses = np.asarray(poses, dtype=np.float32)
    if poses.shape[-2] != skeleton.num_joints:
        raise ValueError(f"expected {skeleton.num_joints} joints on axis -2, found shape {poses.shape}")
    flat = poses.reshape(-1, skeleton.num_joints, 3)
    parents = np.array([p for p, _ in skeleton.bones])
    children = np.array([c for _, c in skeleton.bones])
    gap = np.full((flat.shape[0], len(parents), 3), np.nan, dtype=np.float32)
    segs = np.stack([flat[:, parents], flat[:, children], gap], axis=2)  # (P, B, 3 vertices, 3)
    return segs.reshape(-1, 3)


def axis_ranges(*pose_sets: np.ndarray | None, margin: float = 0.15, min_half_extent: float = 0.5) -> list[list[float]]:
    """Fixed [lo, hi] per plot axis covering every given plot-space pose (NaNs ignored).

    Each axis gets its own extent; with `aspectmode="data"` a metre is then equally long on all three.
    """
    sets = [np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in pose_sets if p is not None]
    pts = np.concatenate(sets) if sets else np.zeros((0, 3))
    pts = pts[np.isfinite(pts).all(-1)]
    if len(pts) == 0:
        return [[-1.0, 1.0]] * 3
    lo, hi = pts.min(0), pts.max(0)
    centre = (lo + hi) / 2
    half = np.maximum((hi - lo) / 2 + margin, min_half_extent)
    return [[float(c - h), float(c + h)] for c, h in zip(centre, half)]


def scene_layout(ranges: list[list[float]], title: str | None = None) -> dict:
    """A scene with fixed ranges, equal scale and an explicit camera."""
    names = ("x right (m)", "depth (m)", "up (m)")
    axes = {
        key: dict(range=r, title=dict(text=name), autorange=False, zeroline=False,
                  backgroundcolor="rgb(245,245,245)", showbackground=True)
        for key, r, name in zip(("xaxis", "yaxis", "zaxis"), ranges, names)
    }
    return dict(**axes, aspectmode="data", camera=DEFAULT_CAMERA)


def bones_trace(poses_plot: np.ndarray, name: str, color: str, width: float = 5.0,
                showlegend: bool = True, skeleton: Skeleton = H36M17, scene: str = "scene") -> go.Scatter3d:
    v = bone_polyline(poses_plot, skeleton)
    return go.Scatter3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], mode="lines", name=name, scene=scene,
                        line=dict(color=color, width=width), hoverinfo="skip", showlegend=showlegend)


def joints_trace(pose_plot: np.ndarray, name: str, color: str | None = None, errors_mm: np.ndarray | None = None,
                 cmax: float = 150.0, size: float = 5.0, skeleton: Skeleton = H36M17, scene: str = "scene",
                 showscale: bool = True, colorbar_x: float = 1.0) -> go.Scatter3d:
    """One marker per joint; coloured by `errors_mm` on a fixed 0..cmax scale when given."""
    p = np.asarray(pose_plot, dtype=np.float32).reshape(skeleton.num_joints, 3)
    if errors_mm is not None:
        e = np.asarray(errors_mm, dtype=np.float32).reshape(skeleton.num_joints)
        marker = dict(size=size, color=e, colorscale=ERROR_COLORSCALE, cmin=0.0, cmax=float(cmax),
                      showscale=showscale, colorbar=dict(title=dict(text="error (mm)"), len=0.5, x=colorbar_x, thickness=12,
                                    xanchor="left" if colorbar_x < 0.5 else "right"),
                      line=dict(color="black", width=1))
        text = [f"{n}: {v:.0f} mm" for n, v in zip(skeleton.joint_names, e)]
    else:
        marker = dict(size=size * 0.7, color=color)
        text = list(skeleton.joint_names)
    return go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", name=name, scene=scene,
                        marker=marker, text=text, hoverinfo="text")


def error_cmax(errors_mm: np.ndarray | None, floor: float = 100.0) -> float:
    """Upper end of the error colour scale: the 95th percentile, at least `floor` mm."""
    if errors_mm is None:
        return floor
    e = np.asarray(errors_mm, dtype=np.float64)
    e = e[np.isfinite(e)]
    return float(max(floor, np.percentile(e, 95))) if e.size else floor


def skeleton_figure(
    pred: np.ndarray,
    gt: np.ndarray | None = None,
    errors_mm: np.ndarray | None = None,
    hypotheses: np.ndarray | None = None,
    title: str | None = None,
    skeleton: Skeleton = H36M17,
    height: int = 560,
) -> go.Figure:
    """Prediction (J,3) against ground truth (J,3), optional hypotheses (H,J,3), camera frame metres.

    Traces, in order: hypotheses' bones (one trace, when given), GT bones, GT joints (when given),
    prediction bones, prediction joints (coloured by `errors_mm` when given).
    """
    pred_p = to_plot_axes(pred)
    gt_p = to_plot_axes(gt) if gt is not None else None
    hyp_p = to_plot_axes(hypotheses) if hypotheses is not None else None
    traces: list[go.Scatter3d] = []
    if hyp_p is not None:
        traces.append(bones_trace(hyp_p, f"hypotheses ({hyp_p.reshape(-1, skeleton.num_joints, 3).shape[0]})",
                                  HYP_COLOR, width=2, skeleton=skeleton))
    if gt_p is not None:
        traces.append(bones_trace(gt_p, "ground truth", GT_COLOR, width=6, skeleton=skeleton))
        traces.append(joints_trace(gt_p, "GT joints", color=GT_COLOR, skeleton=skeleton))
    traces.append(bones_trace(pred_p, "prediction", PRED_COLOR, width=6, skeleton=skeleton))
    traces.append(joints_trace(pred_p, "pred joints (error)", PRED_COLOR, errors_mm=errors_mm,
                               cmax=error_cmax(errors_mm), size=6, skeleton=skeleton))
    fig = go.Figure(data=traces)
    fig.update_layout(
        scene=scene_layout(axis_ranges(pred_p, gt_p, hyp_p)),
        title=dict(text=title) if title else None,
        height=height, margin=dict(l=0, r=0, t=70 if title else 40, b=0),
        legend=dict(orientation="h", x=0.0, y=1.0, yanchor="bottom"),
        uirevision="skeleton",  # keep the user's camera when the data change
    )
    return fig
