"""Reverse diffusion, step by step: h_k and the x0 estimate of every hypothesis, plus the error per step.

One scene holds both poses side by side (h_k left, the estimate of h_0 right) so the
figure takes a single WebGL context; a 2D panel shows the error of each step.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from diffpose_viz.figures.skeleton3d import (
    GT_COLOR, HYP_COLOR, PRED_COLOR, axis_ranges, bone_polyline, error_cmax, joints_trace, scene_layout, to_plot_axes,
)

HK_COLOR = "rgba(214,39,40,0.55)"


def pick_steps(n_steps: int, max_steps: int) -> np.ndarray:
    """Evenly spaced step indices, always keeping the first (h_K) and the last (h_0)."""
    if n_steps <= max_steps:
        return np.arange(n_steps)
    return np.unique(np.round(np.linspace(0, n_steps - 1, max_steps)).astype(int))


def _bones(points: np.ndarray, name: str, color: str, width: float, showlegend: bool = True) -> go.Scatter3d:
    v = bone_polyline(points)
    return go.Scatter3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], mode="lines", name=name, scene="scene",
                        line=dict(color=color, width=width), hoverinfo="skip", showlegend=showlegend)


def _cloud(points: np.ndarray, name: str, color: str) -> go.Scatter3d:
    p = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    return go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", name=name, scene="scene",
                        marker=dict(size=2.5, color=color), hoverinfo="skip")


def trajectory_figure(
    trajectory: np.ndarray,
    x0_estimate: np.ndarray | None = None,
    gt: np.ndarray | None = None,
    err_step_mm: np.ndarray | None = None,
    timesteps: np.ndarray | None = None,
    max_hypotheses: int = 10,
    max_steps: int = 60,
    title: str | None = None,
    height: int = 600,
) -> go.Figure:
    """Animated reverse diffusion.

    trajectory (H, S, J, 3) and x0_estimate (H, S, J, 3): camera-frame metres, step 0 = h_K.
    gt (J, 3); err_step_mm (S, J) or (S,): error of the mean x0 estimate per step; timesteps (S,).
    Traces: 0 GT bones (static), 1 h_k bones, 2 h_k joints, 3 x0 bones, 4 mean-x0 joints
    (coloured by error), 5 labels (static), then when an error curve exists: 6 curve, 7 current-step marker.
    One animation frame and one slider step per kept step.
    """
    traj = np.asarray(trajectory, dtype=np.float32)
    if traj.ndim != 4 or traj.shape[-1] != 3:
        raise ValueError(f"trajectory must be (hypothesis, step, joint, 3), found shape {traj.shape}")
    traj = traj[:max_hypotheses]
    n_steps = traj.shape[1]
    x0 = np.asarray(x0_estimate, dtype=np.float32)[:max_hypotheses] if x0_estimate is not None else traj
    if x0.shape != traj.shape:
        raise ValueError(f"x0_estimate shape {x0.shape} differs from trajectory shape {traj.shape}")
    if timesteps is None:
        timesteps = np.arange(n_steps)[::-1]
    timesteps = np.asarray(timesteps)
    if err_step_mm is None and gt is not None:
        err_step_mm = np.linalg.norm(x0.mean(0) - np.asarray(gt)[None], axis=-1) * 1000.0
    err_joint = None
    if err_step_mm is not None:
        err_step_mm = np.asarray(err_step_mm, dtype=np.float32)
        if err_step_mm.shape[0] != n_steps:
            raise ValueError(f"err_step has {err_step_mm.shape[0]} steps, trajectory has {n_steps}")
        err_joint = err_step_mm if err_step_mm.ndim == 2 else None
    err_curve = None if err_step_mm is None else (err_step_mm.mean(-1) if err_step_mm.ndim == 2 else err_step_mm)
    steps = pick_steps(n_steps, max_steps)

    hk_p = to_plot_axes(traj)  # (H, S, J, 3)
    x0_p = to_plot_axes(x0)
    gt_p = to_plot_axes(gt) if gt is not None else None
    # Put the x0 panel to the right of everything h_k ever reaches.
    finite_x = hk_p[..., 0][np.isfinite(hk_p[..., 0])]
    offset = float(finite_x.max() - min(x0_p[..., 0].min(), 0.0)) + 0.5 if finite_x.size else 1.5
    shift = np.array([offset, 0.0, 0.0], dtype=np.float32)
    x0_p = x0_p + shift
    ranges = axis_ranges(hk_p, x0_p, gt_p, gt_p + shift if gt_p is not None else None)
    cmax = error_cmax(err_joint)

    has_curve = err_curve is not None

    def state(s: int) -> list:
        mean_x0 = x0_p[:, s].mean(0)
        return [
            _bones(hk_p[:, s], f"h_k ({hk_p.shape[0]} hypotheses)", HK_COLOR, 2),
            _cloud(hk_p[:, s], "h_k joints", HK_COLOR),
            _bones(x0_p[:, s], "x0 estimate per hypothesis", HYP_COLOR, 2),
            joints_trace(mean_x0, "mean x0 estimate (error)", PRED_COLOR,
                         errors_mm=None if err_joint is None else err_joint[s], cmax=cmax, size=6,
                         colorbar_x=0.0 if has_curve else 1.0),
        ]

    if has_curve:
        fig = make_subplots(rows=1, cols=2, column_widths=[0.66, 0.34], horizontal_spacing=0.14,
                            specs=[[{"type": "scene"}, {"type": "xy"}]])
    else:
        fig = go.Figure()
    gt_both = np.stack([gt_p, gt_p + shift]) if gt_p is not None else np.full((1, 17, 3), np.nan, np.float32)
    fig.add_trace(_bones(gt_both, "ground truth", GT_COLOR, 4, showlegend=gt_p is not None))
    for tr in state(int(steps[0])):
        fig.add_trace(tr)
    top = ranges[2][1] - 0.1
    centre_hk = float(np.nanmean(hk_p[..., 0]))
    fig.add_trace(go.Scatter3d(x=[centre_hk, centre_hk + offset], y=[ranges[1][0]] * 2, z=[top, top],
                               mode="text", text=["h_k (state)", "estimate of h_0"], scene="scene",
                               textfont=dict(size=14), showlegend=False, hoverinfo="skip"))
    animated = [1, 2, 3, 4]
    if has_curve:
        fig.add_trace(go.Scatter(x=np.arange(n_steps), y=err_curve, mode="lines+markers", name="MPJPE of mean x0",
                                 customdata=timesteps, hovertemplate="step %{x} (t=%{customdata})<br>%{y:.1f} mm",
                                 line=dict(color=PRED_COLOR)), row=1, col=2)
        s0 = int(steps[0])
        fig.add_trace(go.Scatter(x=[s0], y=[err_curve[s0]], mode="markers", name="current step",
                                 marker=dict(size=13, color="crimson", symbol="circle-open", line=dict(width=3))),
                      row=1, col=2)
        animated.append(7)
        fig.update_xaxes(title_text="reverse step (0 = h_K)", row=1, col=2)
        fig.update_yaxes(title_text="MPJPE (mm)", rangemode="tozero", row=1, col=2)

    frames = []
    for s in steps:
        s = int(s)
        data = state(s)
        if has_curve:
            data.append(go.Scatter(x=[s], y=[err_curve[s]], mode="markers"))
        frames.append(go.Frame(name=str(s), data=data, traces=animated))
    fig.frames = frames
    anim = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    scene = scene_layout(ranges)
    # two poses side by side make a wide box: come a little closer than for a single skeleton
    scene["camera"] = dict(scene["camera"], eye=dict(x=1.0, y=-2.1, z=0.45))
    if has_curve:  # leave room on the left for the error colour bar
        scene["domain"] = dict(x=[0.08, 0.62], y=[0.0, 1.0])
    fig.update_layout(
        scene=scene,
        height=height, title=dict(text=title) if title else None,
        margin=dict(l=0, r=10, t=80 if title else 50, b=0),
        legend=dict(orientation="h", x=0.0, y=1.0, yanchor="bottom", font=dict(size=11)),
        sliders=[dict(
            active=0, x=0.16, len=0.46 if has_curve else 0.84, y=0, pad=dict(t=10),
            currentvalue=dict(prefix="step ", xanchor="right"),
            steps=[dict(method="animate", label=f"{int(s)} (t={int(timesteps[int(s)])})", args=[[str(int(s))], anim])
                   for s in steps],
        )],
        updatemenus=[dict(
            type="buttons", direction="left", x=0.0, y=0, xanchor="left", yanchor="top", pad=dict(t=10),
            buttons=[
                dict(label="▶ play", method="animate",
                     args=[None, {"mode": "immediate", "fromcurrent": True, "frame": {"duration": 500, "redraw": True},
                                  "transition": {"duration": 0}}]),
                dict(label="❚❚ pause", method="animate",
                     args=[[None], {"mode": "immediate", "frame": {"duration": 0, "redraw": False},
                                    "transition": {"duration": 0}}]),
            ],
        )],
    )
    return fig
