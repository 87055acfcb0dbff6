"""One sequence of a results file, in time order and aligned with its video: what the Timeline page, the
notebooks and the exports show frame by frame.

A sequence is the rows of one (subject, action, camera) ordered by their `frame` coordinate (for a `wild` run
the source video's frame index; for `sample` the keypoint file's row). Problems that still leave something to
show (no usable order, a video of another length, a missing video) become one-line `notes`; only results that
cannot be shown at all raise.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import xarray as xr

from diffpose_viz import uncertainty
from diffpose_viz.errors import ResultsError
from diffpose_viz.safe_io import SafeLoadError, load_npz

#: The coordinates that name a sequence, and the one that orders it.
SEQUENCE_KEYS = ("subject", "action", "camera")
ORDER_KEY = "frame"
#: What a wild run's folder holds next to its results (the detections name their source video).
WILD_DETECTIONS = "detections.npz"
#: Frame rate assumed when neither the video nor the results give one.
DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class SequenceKey:
    subject: str
    action: str
    camera: str

    @property
    def label(self) -> str:
        return f"{self.subject} / {self.action} / cam {self.camera}"


def _coord(ds: xr.Dataset, name: str) -> np.ndarray | None:
    return np.asarray(ds[name].values) if name in ds.coords else None


def sequence_keys(ds: xr.Dataset) -> list[tuple[SequenceKey, int]]:
    """Every (subject, action, camera) of the results with its number of rows, in order of first appearance."""
    n = ds.sizes["sample"]
    cols = [(_coord(ds, k) if _coord(ds, k) is not None else np.full(n, "?")).astype(str) for k in SEQUENCE_KEYS]
    counts: dict[SequenceKey, int] = {}
    for row in zip(*cols):
        key = SequenceKey(*(str(v) for v in row))
        counts[key] = counts.get(key, 0) + 1
    return list(counts.items())


@dataclass
class Sequence:
    """The rows of one sequence in time order. `ds` is the ordered subset of the results; `frames` the
    source frame index of each row; `notes` one line per problem found while assembling it."""

    ds: xr.Dataset
    key: SequenceKey
    frames: np.ndarray
    ordered: bool
    source: str = ""
    notes: list[str] = field(default_factory=list)
    fps: float = DEFAULT_FPS

    def __len__(self) -> int:
        return int(self.ds.sizes["sample"])

    @property
    def model(self) -> str:
        return str(self.ds.attrs.get("model", "?"))

    @property
    def label(self) -> str:
        return self.key.label

    def _var(self, name: str) -> np.ndarray | None:
        return np.asarray(self.ds[name].values) if name in self.ds else None

    @cached_property
    def pred(self) -> np.ndarray:
        """(T, 17, 3) P-Agg pose, camera-frame metres, root-relative."""
        return self._var("pred").astype(np.float64)

    @cached_property
    def hypotheses(self) -> np.ndarray:
        """(T, H, 17, 3); a deterministic model's single pose when the file has none."""
        h = self._var("hypotheses")
        return (self.pred[:, None] if h is None else h).astype(np.float64)

    @property
    def gt(self) -> np.ndarray | None:
        return self._var("gt")

    @property
    def input_2d(self) -> np.ndarray:
        return self._var("input_2d")

    @property
    def confidence(self) -> np.ndarray:
        c = self._var("confidence")
        return np.ones(self.pred.shape[:2]) if c is None else c

    @property
    def occluded(self) -> np.ndarray:
        o = self._var("occluded")
        return np.zeros(self.pred.shape[:2], bool) if o is None else o.astype(bool)

    @property
    def radius_mm(self) -> np.ndarray | None:
        """(T, 17) calibrated radius (mm) at the level in `radius_level`, or None without a calibration."""
        return self._var("radius")

    @property
    def radius_level(self) -> float | None:
        return float(self.ds["radius"].attrs.get("level", np.nan)) if "radius" in self.ds else None

    @property
    def ood_score(self) -> np.ndarray | None:
        return self._var("ood_score")

    @property
    def ood_flag(self) -> np.ndarray | None:
        f = self._var("ood_flag")
        return None if f is None else f.astype(bool)

    @property
    def ood_threshold(self) -> float | None:
        t = self.ds.attrs.get("ood_threshold")
        return None if t is None else float(t)

    @cached_property
    def mpjpe_mm(self) -> np.ndarray | None:
        """(T,) mean per-joint error of `pred` (needs ground truth)."""
        err = self._var("err")
        return None if err is None else err.mean(-1)

    @cached_property
    def spread_mm(self) -> np.ndarray:
        """(T, 17) RMS distance of the hypotheses to their mean (the package's one definition); 0 for N = 1."""
        if self.hypotheses.shape[1] < 2:
            return np.zeros(self.pred.shape[:2])
        return uncertainty.hypothesis_spread_mm(self.hypotheses, "rms")

    @property
    def n_hypotheses(self) -> int:
        return int(self.hypotheses.shape[1])

    @property
    def trajectory(self) -> np.ndarray | None:
        """(T, H, S, 17, 3) reverse-diffusion states when recorded."""
        return self._var("trajectory")

    @property
    def timesteps(self) -> np.ndarray | None:
        return _coord(self.ds, "timestep")

    def image_size(self) -> tuple[int, int]:
        """(width, height) of the input's images: the camera's of user input (`camera_json`), else the
        extent of the 2D input with a margin (a canvas for input without video)."""
        cam = self.ds.attrs.get("camera_json")
        if cam:
            try:
                c = json.loads(cam)
                return int(c["res_w"]), int(c["res_h"])
            except (ValueError, KeyError, TypeError):
                pass
        kp = self.input_2d[np.isfinite(self.input_2d).all(-1)]
        hi = kp.max(0) if len(kp) else np.array([1000.0, 1000.0])
        return int(max(hi[0] * 1.1, 64)), int(max(hi[1] * 1.1, 64))

    def time_s(self) -> np.ndarray:
        """Seconds from the video's start of every row (frame index / fps)."""
        return self.frames / (self.fps if self.fps > 0 else DEFAULT_FPS)

    def worst(self, k: int = 5) -> tuple[np.ndarray, str]:
        """Positions of the k worst rows and what ranked them: the error with ground truth, else the
        out-of-domain score, else the mean hypothesis spread."""
        if self.mpjpe_mm is not None:
            values, what = self.mpjpe_mm, "MPJPE"
        elif self.ood_score is not None and np.isfinite(self.ood_score).any():
            values, what = np.nan_to_num(self.ood_score, nan=-np.inf), "out-of-domain score"
        else:
            values, what = self.spread_mm[:, 1:].mean(-1), "hypothesis spread"
        order = np.argsort(-values, kind="stable")
        return order[:k], what

    def metadata(self) -> dict:
        """What an export records about its source: the model and anything naming its checkpoint."""
        attrs = self.ds.attrs
        meta = {"model": str(attrs.get("model", "?")), "sequence": self.label, "source": self.source,
                "dataset": str(attrs.get("dataset", "")), "split": str(attrs.get("split", "")),
                "n_frames": len(self), "n_hypotheses": self.n_hypotheses, "fps": float(self.fps)}
        for name, value in attrs.items():
            if name == "checkpoint" or "fingerprint" in name:
                meta[name] = str(value)
        return meta


def select_sequence(ds: xr.Dataset, key: SequenceKey | int | None = None, *, source: str = "") -> Sequence:
    """The rows of sequence `key` (a SequenceKey, an index into `sequence_keys`, or None for the first) in
    time order. Frames that repeat within the sequence leave no usable order: the rows stay in file order
    and a note says so."""
    keys = sequence_keys(ds)
    if not keys:
        raise ResultsError("holds no samples", source=source or None, expected="at least one sample", found=0)
    if key is None:
        key = keys[0][0]
    elif isinstance(key, (int, np.integer)):
        if not 0 <= int(key) < len(keys):
            raise ResultsError("no such sequence", source=source or None, expected=f"0..{len(keys) - 1}",
                               found=int(key))
        key = keys[int(key)][0]
    n = ds.sizes["sample"]
    match = np.ones(n, bool)
    for name, value in zip(SEQUENCE_KEYS, (key.subject, key.action, key.camera)):
        col = _coord(ds, name)
        if col is not None:
            match &= col.astype(str) == value
    rows = np.flatnonzero(match)
    if len(rows) == 0:
        raise ResultsError(f"has no sequence {key.label}", source=source or None,
                           expected=[k.label for k, _ in keys[:5]], found=key.label)
    notes: list[str] = []
    frames = _coord(ds, ORDER_KEY)
    name = Path(source).name if source else "the results"
    if frames is None:
        frames, ordered = np.arange(len(rows)), False
        notes.append(f"{name}: no '{ORDER_KEY}' coordinate, so no sequence order: rows shown in file order")
    else:
        frames = frames[rows].astype(np.int64)
        repeats = len(frames) - len(np.unique(frames))
        ordered = repeats == 0
        if ordered:
            order = np.argsort(frames, kind="stable")
            rows, frames = rows[order], frames[order]
        else:
            notes.append(f"{name}: sequence {key.label} has {repeats} repeated '{ORDER_KEY}' value(s), so no "
                         "sequence order: rows shown in file order")
            frames = np.arange(len(rows))
    sub = ds.isel(sample=rows)
    return Sequence(sub, key, frames, ordered, source=source, notes=notes)


def match_rows(seq: Sequence, other: xr.Dataset) -> np.ndarray:
    """(T,) position in `other` of each row of `seq` (same subject, action, camera and frame), -1 where
    `other` has no such row: how a second results file of the same sequence is overlaid (A/B)."""
    cols = {k: _coord(other, k) for k in (*SEQUENCE_KEYS, ORDER_KEY)}
    if any(c is None for c in cols.values()):
        return np.full(len(seq), -1)
    index: dict[tuple, int] = {}
    for i, row in enumerate(zip(*(cols[k].astype(str) if k != ORDER_KEY else cols[k].astype(np.int64)
                                  for k in (*SEQUENCE_KEYS, ORDER_KEY)))):
        index.setdefault(row, i)
    own = [seq.key.subject, seq.key.action, seq.key.camera]
    frames = _coord(seq.ds, ORDER_KEY)
    if frames is None or not seq.ordered:
        return np.full(len(seq), -1)
    return np.array([index.get((*own, int(f)), -1) for f in frames.astype(np.int64)])


def overlay_sequence(seq: Sequence, other: xr.Dataset, source: str = "") -> tuple[Sequence | None, str]:
    """The rows of `other` that match `seq` row by row (B of an A/B view) and a one-line summary. Rows B
    lacks are NaN; None when B shares no row with A."""
    pos = match_rows(seq, other)
    name = Path(source).name if source else "B"
    found = int((pos >= 0).sum())
    if found == 0:
        return None, f"{name}: no row matches sequence {seq.label} (same subject, action, camera and frame)"
    sub = other.isel(sample=np.where(pos >= 0, pos, 0))
    for var in ("pred", "hypotheses", "err", "radius", "ood_score"):
        if var in sub and sub[var].dtype.kind == "f":
            values = sub[var].values.copy()
            values[pos < 0] = np.nan
            sub[var] = (sub[var].dims, values, sub[var].attrs)
    out = Sequence(sub, seq.key, seq.frames, seq.ordered, source=source, fps=seq.fps)
    line = f"{name}: {found} of {len(seq)} rows matched" + ("" if found == len(seq) else " (the rest left blank)")
    return out, line


def run_video(results_path: str | Path) -> Path | None:
    """The source video of a `wild` run: the `source` recorded in the detections next to its results, or
    None when the results are not a wild run's."""
    det = Path(results_path).with_name(WILD_DETECTIONS)
    if not det.exists():
        return None
    try:
        source = load_npz(det, keys=["source"])["source"]
    except (SafeLoadError, KeyError, OSError):
        return None
    text = str(np.asarray(source).item()) if np.asarray(source).size == 1 else ""
    return Path(text) if text else None


def align_with_video(seq: Sequence, n_video_frames: int, fps: float, video_name: str) -> np.ndarray:
    """(T,) bool: rows whose frame lies inside the video. Sets the sequence's fps from the video and adds a
    note when the video's frame count differs from what the results cover."""
    if fps > 0:
        seq.fps = float(fps)
    inside = (seq.frames >= 0) & (seq.frames < n_video_frames)
    expected = int(seq.frames.max()) + 1 if len(seq) else 0
    if not inside.all():
        seq.notes.append(f"{video_name}: {n_video_frames} frames, but the results reach frame {expected - 1}: "
                         f"{int((~inside).sum())} row(s) shown without video")
    elif expected < n_video_frames:
        seq.notes.append(f"{video_name}: {n_video_frames} frames, the results cover frames 0-{expected - 1}")
    return inside


@dataclass
class TimelineSource:
    """A sequence ready to show: the ordered rows, the open video (or None) and which rows it covers."""

    seq: Sequence
    video: object | None  # figures.video_frames.VideoFrames
    in_video: np.ndarray  # (T,) bool
    video_error: str | None = None  # a video that was asked for but cannot be read (0 frames, corrupt)


def open_timeline(results: xr.Dataset, source: str | Path, sequence: SequenceKey | int | None = None,
                  video: str | Path | None = None) -> TimelineSource:
    """Sequence `sequence` of `results` (read from `source`) with its video: `video` when given, else the
    source of a `wild` run's detections. A missing video is a note; one that cannot be read (no frames,
    corrupt, PyAV missing) is `video_error`; either way the 2D is then drawn on a blank canvas."""
    from diffpose_viz.errors import DataError
    from diffpose_viz.figures.video_frames import VideoFrames

    seq = select_sequence(results, sequence, source=str(source))
    path = Path(video) if video else run_video(source)
    frames, error = None, None
    if path is not None:
        if not path.exists():
            seq.notes.append(f"{path}: video not found; the 2D is drawn on a blank canvas")
        else:
            try:
                frames = VideoFrames(path)
            except (DataError, ImportError) as err:
                error = f"{err}; the 2D is drawn on a blank canvas"
    if frames is None:
        return TimelineSource(seq, None, np.zeros(len(seq), bool), error)
    inside = align_with_video(seq, len(frames), frames.fps, path.name)
    return TimelineSource(seq, frames, inside)
