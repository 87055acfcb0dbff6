"""Side-by-side MP4 of a sequence: the video frame with its 2D input | the 3D view with every hypothesis.

Frames are drawn straight into numpy/PIL images (a plotly figure per frame would take seconds each) and
encoded with PyAV (its wheel ships FFmpeg and libx264; no system ffmpeg). The 3D panel is an orthographic
view from the front-left and a little above, with the axes fixed over the take, so the person does not jump.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from diffpose_viz.atomic import atomic_target
from diffpose_viz.figures.sequence import Sequence
from diffpose_viz.figures.skeleton3d import to_plot_axes
from diffpose_viz.figures.timeline import LOW_CONFIDENCE, sequence_ranges
from diffpose_viz.figures.video_frames import VideoFrames, _av
from diffpose_viz.skeleton import H36M17

BONES = H36M17.bones
AZIMUTH_DEG, ELEVATION_DEG = 25.0, 12.0
BACKGROUND = (245, 245, 245)
CANVAS = (60, 60, 60)
PRED_RGB, HYP_RGB, GT_RGB, RADIUS_RGB = (31, 119, 180), (150, 150, 150), (44, 160, 44), (148, 103, 189)


def _even(n: float) -> int:
    return max(2, int(round(n / 2)) * 2)


def _conf_rgb(c: float) -> tuple[int, int, int]:
    c = float(np.clip(np.nan_to_num(c, nan=0.0), 0, 1))
    return int(255 * min(1, 2 * (1 - c))), int(255 * min(1, 2 * c)), 0


class Projector:
    """Plot-space points (x right, y depth, z up; metres) -> panel pixels, one fixed view for the take."""

    def __init__(self, ranges: list[list[float]], size: int):
        a, e = np.deg2rad(AZIMUTH_DEG), np.deg2rad(ELEVATION_DEG)
        right = np.array([np.cos(a), np.sin(a), 0.0])
        up = np.array([-np.sin(a) * np.sin(e), np.cos(a) * np.sin(e), np.cos(e)])
        self.basis = np.stack([right, up], 1)  # (3, 2)
        corners = np.array(np.meshgrid(*ranges)).reshape(3, -1).T @ self.basis
        lo, hi = corners.min(0), corners.max(0)
        self.scale = 0.92 * size / float((hi - lo).max())
        self.centre = (lo + hi) / 2
        self.size = size

    def __call__(self, points: np.ndarray) -> np.ndarray:
        uv = (np.asarray(points) @ self.basis - self.centre) * self.scale
        return np.stack([self.size / 2 + uv[..., 0], self.size / 2 - uv[..., 1]], -1)


def _skeleton(draw: ImageDraw.ImageDraw, pts: np.ndarray, colour, width: int) -> None:
    for p, c in BONES:
        if np.isfinite(pts[[p, c]]).all():
            draw.line([tuple(pts[p]), tuple(pts[c])], fill=colour, width=width)


def draw_2d_panel(image: np.ndarray | None, kp: np.ndarray, conf: np.ndarray, occ: np.ndarray,
                  src_size: tuple[int, int],
                  panel: tuple[int, int], label: str) -> np.ndarray:
    """The video frame (or a grey canvas of the image's shape) scaled to `panel` (w, h), the 2D input on
    it: bones in cyan, joints coloured by confidence, occluded joints hollow, low-confidence ones crossed."""
    w, h = panel
    base = Image.fromarray(image).resize((w, h)) if image is not None else Image.new("RGB", (w, h), CANVAS)
    draw = ImageDraw.Draw(base)
    pts = np.asarray(kp, dtype=np.float64) * np.array([w / src_size[0], h / src_size[1]])
    _skeleton(draw, pts, (0, 229, 255), max(2, h // 180))
    r = max(3, h // 110)
    for (x, y), c, o in zip(pts, conf, occ):
        if not np.isfinite([x, y]).all():
            continue
        box = [x - r, y - r, x + r, y + r]
        if o:
            draw.ellipse(box, outline=_conf_rgb(c), width=2)
        else:
            draw.ellipse(box, fill=_conf_rgb(c), outline=(255, 255, 255))
        if c < LOW_CONFIDENCE:
            draw.line([x - r, y - r, x + r, y + r], fill=(255, 255, 255), width=1)
    box = draw.textbbox((8, 6), label)
    draw.rectangle([box[0] - 4, box[1] - 3, box[2] + 4, box[3] + 3], fill=(0, 0, 0))
    draw.text((8, 6), label, fill=(255, 255, 255))
    return np.asarray(base)


def draw_3d_panel(seq: Sequence, i: int, proj: Projector, label: str) -> np.ndarray:
    """Row i in 3D: every hypothesis (grey), ground truth (green) when known, the mean (blue) and the
    calibrated radius around its joints (purple circles, drawn to scale)."""
    size = proj.size
    base = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(base)
    for hyp in seq.hypotheses[i]:
        _skeleton(draw, proj(to_plot_axes(hyp)), HYP_RGB, 1)
    if seq.gt is not None:
        _skeleton(draw, proj(to_plot_axes(seq.gt[i])), GT_RGB, 2)
    mean = proj(to_plot_axes(seq.pred[i]))
    _skeleton(draw, mean, PRED_RGB, max(2, size // 160))
    if seq.radius_mm is not None:
        for (x, y), r_mm in zip(mean, seq.radius_mm[i]):
            if np.isfinite(r_mm) and r_mm > 0:
                r = r_mm / 1000.0 * proj.scale
                draw.ellipse([x - r, y - r, x + r, y + r], outline=RADIUS_RGB, width=1)
    draw.text((8, 6), label, fill=(0, 0, 0))
    return np.asarray(base)


def render_frames(seq: Sequence, video: VideoFrames | None, height: int = 480, src_size: tuple[int, int] | None = None):
    """Yield one side-by-side RGB frame (height x width, both even) per row of the sequence."""
    if src_size is None:
        src_size = (video.width, video.height) if video is not None else seq.image_size()
    left_w = _even(height * src_size[0] / src_size[1])
    proj = Projector(sequence_ranges(seq), _even(height))
    for i in range(len(seq)):
        f = int(seq.frames[i])
        image = video.frame(f) if video is not None and 0 <= f < len(video) else None
        label = f"frame {f}  {seq.time_s()[i]:.2f} s"
        left = draw_2d_panel(image, seq.input_2d[i], seq.confidence[i], seq.occluded[i], src_size,
                             (left_w, _even(height)), label)
        right = draw_3d_panel(seq, i, proj, f"{seq.model}: {seq.n_hypotheses} hypotheses"
                              + (", radius" if seq.radius_mm is not None else ""))
        yield np.concatenate([left, right], axis=1)


def write_mp4(seq: Sequence, out: Path, video: VideoFrames | None = None, height: int = 480,
              metadata: dict | None = None) -> tuple[int, int, int]:
    """Encode the side-by-side frames as H.264 MP4 (yuv420p, plays in browsers) at the sequence's fps,
    atomically; returns (frames, width, height)."""
    av = _av()
    n = 0
    size = (0, 0)
    with atomic_target(out) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            for k, v in (metadata or {}).items():
                container.metadata[str(k)] = str(v)
            stream = None
            for rgb in render_frames(seq, video, height):
                if stream is None:
                    stream = container.add_stream("libx264", rate=_rate(seq.fps))
                    stream.height, stream.width = rgb.shape[:2]
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": "23", "preset": "veryfast"}
                    size = (rgb.shape[1], rgb.shape[0])
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    container.mux(packet)
                n += 1
            for packet in stream.encode():
                container.mux(packet)
    return n, size[0], size[1]


def _rate(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
