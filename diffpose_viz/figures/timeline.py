"""The Timeline's figures: one frame of a sequence (`figures.sequence.Sequence`) as the video with its 2D
input, the 3D pose with its hypotheses and calibrated radius, strips over time and per-joint traces; and,
for notebooks, one animated figure of the whole sequence.

The 3D axes are fixed over the whole sequence so the person does not jump, and the 3D camera is an explicit
`orbit_camera(azimuth, elevation)` that the page keeps in its session: Streamlit (1.67) draws a chart whose data
changed into a fresh plotly div, so a camera turned with the mouse (or plotly's `uirevision`, which the figures
still set for other front ends) does not survive a step. `timeline_figure` scrubs inside plotly instead, where a
turned camera stays.
"""
from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from diffpose_viz.figures.sequence import Sequence
from diffpose_viz.figures.skeleton3d import (
    GT_COLOR, HYP_COLOR, PRED_COLOR, axis_ranges, bone_polyline, joints_trace, scene_layout, to_plot_axes,
)
from diffpose_viz.skeleton import H36M17

B_COLOR = "#ff7f0e"
B_HYP_COLOR = "rgba(255,127,14,0.35)"
RADIUS_COLOR = "rgba(148,103,189,0.55)"
FLAG_COLOR = "crimson"
#: A joint below this confidence is drawn as low-confidence (red end of the scale, larger ring).
LOW_CONFIDENCE = 0.5
_PARENTS = np.array([p for p, _ in H36M17.bones])
_CHILDREN = np.array([c for _, c in H36M17.bones])


def frame_label(seq: Sequence, i: int) -> str:
    """'frame 42 (1.40 s)' for row i."""
    return f"frame {int(seq.frames[i])} ({seq.time_s()[i]:.2f} s)"


def image_uri(image: np.ndarray, quality: int = 80) -> str:
    """RGB uint8 (H, W, 3) -> a JPEG data URI (a tenth of the PNG that plotly would embed)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _segments_2d(kp: np.ndarray) -> np.ndarray:
    segs = np.stack([kp[_PARENTS], kp[_CHILDREN], np.full((len(_PARENTS), 2), np.nan)], 1)
    return segs.reshape(-1, 2)


def frame_2d_figure(keypoints: np.ndarray, confidence: np.ndarray, occluded: np.ndarray, width: int, height: int,
                    image: np.ndarray | None = None, title: str | None = None, note: str | None = None,
                    height_px: int = 430) -> go.Figure:
    """The 2D input of one frame over the video frame (scaled to the image size in pixels), or on a blank
    canvas of the image size when there is no video. Joints coloured by detector confidence; occluded joints
    hollow, low-confidence joints (< LOW_CONFIDENCE) with an ×."""
    kp = np.asarray(keypoints, dtype=np.float64).reshape(17, 2)
    conf = np.nan_to_num(np.asarray(confidence, dtype=np.float64).reshape(17), nan=0.0)
    occ = np.asarray(occluded, bool).reshape(17)
    seg = _segments_2d(kp)
    symbols = ["circle-open" if o else ("x" if c < LOW_CONFIDENCE else "circle") for o, c in zip(occ, conf)]
    text = [f"{n}: confidence {c:.2f}{' (occluded)' if o else ''}" for n, c, o in zip(H36M17.joint_names, conf, occ)]
    fig = go.Figure([
        go.Scatter(x=seg[:, 0], y=seg[:, 1], mode="lines", name="2D input", line=dict(color="#00e5ff", width=3),
                   hoverinfo="skip"),
        go.Scatter(x=kp[:, 0], y=kp[:, 1], mode="markers", name="joints (colour: confidence)", text=text,
                   hoverinfo="text",
                   marker=dict(color=conf, colorscale="RdYlGn", cmin=0, cmax=1, size=11, symbol=symbols,
                               line=dict(width=2, color="white"), colorbar=dict(title=dict(text="conf."), len=0.6,
                                                                                thickness=10))),
    ])
    if image is not None:
        fig.add_layout_image(dict(source=image_uri(image), xref="x", yref="y", x=0, y=0, sizex=width, sizey=height,
                                  sizing="stretch", layer="below", xanchor="left", yanchor="top"))
    fig.update_xaxes(range=[0, width], showgrid=image is None, zeroline=False, constrain="domain",
                     title_text=None if image is not None else "x (px)")
    fig.update_yaxes(range=[height, 0], scaleanchor="x", showgrid=image is None, zeroline=False, constrain="domain",
                     title_text=None if image is not None else "y (px)")
    heading = title or ""
    if note:
        heading += f"<br><sup>{note}</sup>"
    fig.update_layout(height=height_px, margin=dict(l=10, r=10, t=60 if note else 40, b=10), showlegend=False,
                      title=dict(text=heading) if heading else None, uirevision="timeline2d",
                      plot_bgcolor="rgb(235,235,235)" if image is None else "black")
    return fig


def sequence_ranges(*seqs: Sequence | None) -> list[list[float]]:
    """Fixed 3D axes for whole sequences: every hypothesis (and ground truth) of every frame fits."""
    sets = []
    for s in seqs:
        if s is None:
            continue
        sets.append(to_plot_axes(s.hypotheses))
        if s.gt is not None:
            sets.append(to_plot_axes(s.gt))
    return axis_ranges(*sets, margin=0.1, min_half_extent=0.6)


def radius_rings(pose_plot: np.ndarray, radius_m: np.ndarray, n: int = 20) -> np.ndarray:
    """(J, 3) plot-space pose and (J,) radius in metres -> vertices of a horizontal and a vertical circle
    around each joint (NaN-separated), so one line trace draws every error bar. inf/0 radii are skipped."""
    t = np.linspace(0, 2 * np.pi, n)
    ring_h = np.stack([np.cos(t), np.sin(t), 0 * t], -1)
    ring_v = np.stack([np.cos(t), 0 * t, np.sin(t)], -1)
    gap = np.full((1, 3), np.nan)
    out = []
    for p, r in zip(pose_plot, radius_m):
        if not np.isfinite(r) or r <= 0:
            continue
        out += [p + r * ring_h, gap, p + r * ring_v, gap]
    return np.concatenate(out) if out else np.full((1, 3), np.nan)


#: The 3D view the Timeline starts from: skeleton3d's default camera as azimuth/elevation (degrees), distance.
DEFAULT_VIEW = (-65.0, 10.0, 3.0)


def orbit_camera(azimuth_deg: float, elevation_deg: float, distance: float = DEFAULT_VIEW[2]) -> dict:
    """A plotly scene camera looking at the centre from `azimuth_deg` (about the vertical, 0 = from +x) and
    `elevation_deg` above the horizon. The page keeps the view as these numbers in its session: Streamlit
    redraws a chart whose data change from scratch, so a camera turned with the mouse does not survive a step."""
    a, e = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    eye = distance * np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
    return dict(eye=dict(x=float(eye[0]), y=float(eye[1]), z=float(eye[2])), up=dict(x=0, y=0, z=1),
                center=dict(x=0, y=0, z=0))


def _line3d(v: np.ndarray, name: str, color: str, width: float, showlegend: bool = True) -> go.Scatter3d:
    return go.Scatter3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], mode="lines", name=name, line=dict(color=color, width=width),
                        hoverinfo="skip", showlegend=showlegend)


def pose_3d_figure(pred: np.ndarray, hypotheses: np.ndarray | None = None, radius_mm: np.ndarray | None = None,
                   gt: np.ndarray | None = None, ranges: list[list[float]] | None = None,
                   pred_b: np.ndarray | None = None, hypotheses_b: np.ndarray | None = None,
                   label_a: str = "A", label_b: str = "B", radius_level: float | None = None,
                   title: str | None = None, height_px: int = 430, camera: dict | None = None) -> go.Figure:
    """One frame in 3D (camera-frame metres): A's hypotheses, its mean, the calibrated radius around each
    joint, ground truth when known, and optionally B's mean and hypotheses.

    Trace names are fixed ("A hypotheses", "A mean", "A radius", "ground truth", "B mean", "B hypotheses")
    so tests and the browser can find them."""
    pred_p = to_plot_axes(pred)
    traces = []
    if hypotheses is not None and len(hypotheses) > 1:
        traces.append(_line3d(bone_polyline(to_plot_axes(hypotheses)), f"A hypotheses ({len(hypotheses)})",
                              HYP_COLOR, 2))
    if gt is not None:
        traces.append(_line3d(bone_polyline(to_plot_axes(gt)), "ground truth", GT_COLOR, 5))
    traces.append(_line3d(bone_polyline(pred_p), f"A mean ({label_a})", PRED_COLOR, 6))
    traces.append(joints_trace(pred_p, "A joints", PRED_COLOR, size=5))
    if radius_mm is not None:
        level = f" at {radius_level:.0%}" if radius_level and np.isfinite(radius_level) else ""
        traces.append(_line3d(radius_rings(pred_p, np.asarray(radius_mm, dtype=np.float64) / 1000.0),
                              f"A radius{level}", RADIUS_COLOR, 2))
    if pred_b is not None and np.isfinite(pred_b).all():
        if hypotheses_b is not None and len(hypotheses_b) > 1:
            traces.append(_line3d(bone_polyline(to_plot_axes(hypotheses_b)), f"B hypotheses ({len(hypotheses_b)})",
                                  B_HYP_COLOR, 2))
        traces.append(_line3d(bone_polyline(to_plot_axes(pred_b)), f"B mean ({label_b})", B_COLOR, 6))
    fig = go.Figure(traces)
    scene = scene_layout(ranges or axis_ranges(pred_p))
    if camera is not None:
        scene["camera"] = camera
    fig.update_layout(scene=scene, height=height_px, margin=dict(l=0, r=0, t=40 if title else 10, b=0),
                      title=dict(text=title) if title else None, uirevision="timeline3d",
                      legend=dict(orientation="h", x=0.0, y=1.0, yanchor="bottom", font=dict(size=10)))
    return fig


#: The name of the vertical line that marks the current frame on the strips and traces.
CURRENT = "current frame"


def set_current_frame(fig: go.Figure, frame: int) -> go.Figure:
    """Move the current-frame line of a strips or traces figure to `frame`, in place: the page keeps one
    such figure per sequence and moves only this line while scrubbing (rebuilding them costs ~100 ms each)."""
    for shape in fig.layout.shapes:
        if shape.name == CURRENT:
            shape.x0 = shape.x1 = float(frame)
    return fig


def _strip_rows(seq: Sequence) -> list[str]:
    rows = []
    if seq.mpjpe_mm is not None:
        rows.append("mpjpe")
    if seq.n_hypotheses > 1:
        rows.append("spread")
    if seq.ood_score is not None:
        rows.append("ood")
    rows.append("confidence")
    return rows


STRIP_TITLES = {"mpjpe": "MPJPE (mm)", "spread": "hypothesis spread (mm)", "ood": "out-of-domain score",
                "confidence": "detector confidence"}


def strips_figure(seq: Sequence, position: int, seq_b: Sequence | None = None, label_a: str = "A",
                  label_b: str = "B", height_per_row: int = 110) -> go.Figure:
    """Strips over time (x = source frame): MPJPE with ground truth, mean hypothesis spread, the
    out-of-domain score with its threshold and flagged frames, the detector's mean and lowest confidence.
    A vertical line marks the current frame; B's values are drawn in orange where it has them."""
    rows = _strip_rows(seq)
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.05,
                        subplot_titles=[STRIP_TITLES[r] for r in rows])
    x = seq.frames
    for r, kind in enumerate(rows, start=1):
        if kind == "mpjpe":
            fig.add_trace(go.Scatter(x=x, y=seq.mpjpe_mm, name=f"MPJPE {label_a}", line=dict(color=PRED_COLOR)),
                          row=r, col=1)
            if seq_b is not None and seq_b.mpjpe_mm is not None:
                fig.add_trace(go.Scatter(x=x, y=seq_b.mpjpe_mm, name=f"MPJPE {label_b}", line=dict(color=B_COLOR)),
                              row=r, col=1)
        elif kind == "spread":
            fig.add_trace(go.Scatter(x=x, y=seq.spread_mm[:, 1:].mean(-1), name=f"spread {label_a}",
                                     line=dict(color=PRED_COLOR)), row=r, col=1)
            if seq_b is not None and seq_b.n_hypotheses > 1:
                fig.add_trace(go.Scatter(x=x, y=seq_b.spread_mm[:, 1:].mean(-1), name=f"spread {label_b}",
                                         line=dict(color=B_COLOR)), row=r, col=1)
        elif kind == "ood":
            fig.add_trace(go.Scatter(x=x, y=seq.ood_score, name="OOD score", line=dict(color="#7f7f7f")), row=r, col=1)
            flag = seq.ood_flag if seq.ood_flag is not None else np.zeros(len(seq), bool)
            fig.add_trace(go.Scatter(x=x[flag], y=seq.ood_score[flag], mode="markers", name="flagged: outside training",
                                     marker=dict(color=FLAG_COLOR, size=7)), row=r, col=1)
            if seq.ood_threshold is not None:
                fig.add_hline(y=seq.ood_threshold, line=dict(color=FLAG_COLOR, dash="dot", width=1), row=r, col=1)
        else:
            conf = seq.confidence
            fig.add_trace(go.Scatter(x=x, y=conf.mean(-1), name="mean confidence", line=dict(color="#2ca02c")),
                          row=r, col=1)
            fig.add_trace(go.Scatter(x=x, y=conf.min(-1), name="lowest joint", line=dict(color="#d62728", width=1)),
                          row=r, col=1)
            fig.update_yaxes(range=[-0.05, 1.05], row=r, col=1)
    fig.add_vline(x=float(seq.frames[position]), line=dict(color="black", width=2), name=CURRENT)
    fig.update_xaxes(title_text="frame", row=len(rows), col=1)
    fig.update_layout(height=60 + height_per_row * len(rows), margin=dict(l=10, r=10, t=30, b=10),
                      uirevision="timeline_strips", showlegend=True,
                      legend=dict(orientation="h", x=0, y=-0.12, yanchor="top", font=dict(size=10)))
    return fig


def joint_traces_figure(seq: Sequence, joint: int | str, position: int, seq_b: Sequence | None = None,
                        label_a: str = "A", label_b: str = "B") -> go.Figure:
    """x, y, z of one joint over time (mm, root-relative camera frame): A's mean with the band its
    hypotheses span, ground truth dashed, B's mean; the current frame marked."""
    j = H36M17.index(joint) if isinstance(joint, str) else int(joint)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[f"{H36M17.joint_names[j]} {a} (mm)" for a in "xyz"])
    x = seq.frames
    for r, axis in enumerate(range(3), start=1):
        hyp = seq.hypotheses[:, :, j, axis] * 1000
        first = r == 1
        if seq.n_hypotheses > 1:
            fig.add_trace(go.Scatter(x=x, y=hyp.max(1), line=dict(width=0), hoverinfo="skip", showlegend=False),
                          row=r, col=1)
            fig.add_trace(go.Scatter(x=x, y=hyp.min(1), line=dict(width=0), fill="tonexty",
                                     fillcolor="rgba(31,119,180,0.2)", name="A hypotheses (range)", showlegend=first,
                                     hoverinfo="skip"), row=r, col=1)
        fig.add_trace(go.Scatter(x=x, y=seq.pred[:, j, axis] * 1000, name=f"A mean ({label_a})",
                                 line=dict(color=PRED_COLOR), showlegend=first), row=r, col=1)
        if seq.gt is not None:
            fig.add_trace(go.Scatter(x=x, y=seq.gt[:, j, axis] * 1000, name="ground truth", showlegend=first,
                                     line=dict(color=GT_COLOR, dash="dash")), row=r, col=1)
        if seq_b is not None:
            fig.add_trace(go.Scatter(x=x, y=seq_b.pred[:, j, axis] * 1000, name=f"B mean ({label_b})",
                                     line=dict(color=B_COLOR), showlegend=first), row=r, col=1)
    fig.add_vline(x=float(seq.frames[position]), line=dict(color="black", width=2), name=CURRENT)
    fig.update_xaxes(title_text="frame", row=3, col=1)
    fig.update_layout(height=480, margin=dict(l=10, r=10, t=30, b=10), uirevision="timeline_joint",
                      legend=dict(orientation="h", x=0, y=-0.1, yanchor="top", font=dict(size=10)))
    return fig


def pick_rows(n: int, max_frames: int) -> np.ndarray:
    """At most `max_frames` evenly spaced row positions, first and last kept."""
    if n <= max_frames:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_frames)).astype(int))


def timeline_figure(seq: Sequence, max_frames: int = 120, max_hypotheses: int = 10, height: int = 560) -> go.Figure:
    """The whole sequence in one figure for notebooks: the 3D pose with its hypotheses (left) and the
    strip that best ranks the frames (right: MPJPE, else the OOD score, else the spread) under a frame
    slider with play/pause; at most `max_frames` evenly spaced frames are kept, so it stays light."""
    keep = pick_rows(len(seq), max_frames)
    ranges = sequence_ranges(seq)
    if seq.mpjpe_mm is not None:
        curve, what = seq.mpjpe_mm, "MPJPE (mm)"
    elif seq.ood_score is not None:
        curve, what = seq.ood_score, "out-of-domain score"
    else:
        curve, what = seq.spread_mm[:, 1:].mean(-1), "hypothesis spread (mm)"

    def state(i: int) -> list:
        hyp = seq.hypotheses[i, :max_hypotheses]
        return [
            _line3d(bone_polyline(to_plot_axes(hyp)), f"hypotheses ({len(hyp)})", HYP_COLOR, 2),
            _line3d(bone_polyline(to_plot_axes(seq.pred[i])), "mean", PRED_COLOR, 6),
            _line3d(bone_polyline(to_plot_axes(seq.gt[i])) if seq.gt is not None else np.full((1, 3), np.nan),
                    "ground truth", GT_COLOR, 4, showlegend=seq.gt is not None),
            go.Scatter(x=[seq.frames[i]], y=[curve[i]], mode="markers", name="current frame",
                       marker=dict(size=12, color="crimson", symbol="circle-open", line=dict(width=3))),
        ]

    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], specs=[[{"type": "scene"}, {"type": "xy"}]])
    first = state(int(keep[0]))
    for tr in first[:3]:
        fig.add_trace(tr, row=1, col=1)
    fig.add_trace(go.Scatter(x=seq.frames, y=curve, mode="lines", name=what, line=dict(color=PRED_COLOR)), row=1, col=2)
    fig.add_trace(first[3], row=1, col=2)
    fig.frames = [go.Frame(name=str(int(i)), data=state(int(i)), traces=[0, 1, 2, 4]) for i in keep]
    anim = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    scene = scene_layout(ranges)
    scene["domain"] = dict(x=[0.0, 0.58], y=[0.0, 1.0])
    fig.update_xaxes(title_text="frame", row=1, col=2)
    fig.update_yaxes(title_text=what, row=1, col=2)
    fig.update_layout(
        scene=scene, height=height, uirevision="timeline", title=dict(text=f"{seq.label} ({seq.model})"),
        margin=dict(l=0, r=10, t=60, b=0), legend=dict(orientation="h", x=0, y=1.0, yanchor="bottom"),
        sliders=[dict(active=0, x=0.1, len=0.85, y=0, pad=dict(t=10), currentvalue=dict(prefix="frame "),
                      steps=[dict(method="animate", label=str(int(seq.frames[i])), args=[[str(int(i))], anim])
                             for i in keep])],
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=0, xanchor="left", yanchor="top", pad=dict(t=10),
                          buttons=[dict(label="▶", method="animate",
                                        args=[None, {"mode": "immediate", "fromcurrent": True,
                                                     "frame": {"duration": 1000.0 / max(seq.fps, 1.0),
                                                               "redraw": True}, "transition": {"duration": 0}}]),
                                   dict(label="❚❚", method="animate",
                                        args=[[None], {"mode": "immediate", "frame": {"duration": 0, "redraw": False},
                                                       "transition": {"duration": 0}}])])])
    return fig
