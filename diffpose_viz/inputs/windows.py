"""Video windows: for every row the rows of a window centred on it within its sequence, and thinning that
keeps the scored rows' windows at full rate."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffpose_viz.datasets.poses import PoseSet


def sequence_windows(sequence_id: np.ndarray, frame: np.ndarray, frames: int) -> np.ndarray:
    """(N, frames) row indices of a window centred on each row within its sequence (rows sharing
    `sequence_id`), in `frame` order, edge-replicated at both ends (VideoPose3D / MixSTE padding)."""
    n = len(sequence_id)
    order = np.lexsort((frame, sequence_id))
    sorted_key = np.asarray(sequence_id)[order]
    starts = np.r_[0, np.flatnonzero(sorted_key[1:] != sorted_key[:-1]) + 1] if n else np.zeros(0, int)
    ends = np.r_[starts[1:], n]
    seq_of = np.repeat(np.arange(len(starts)), ends - starts)
    half = frames // 2
    offs = np.arange(-half, half + 1)
    lo, hi = starts[seq_of], ends[seq_of] - 1
    win_sorted = np.clip(np.arange(n)[:, None] + offs[None], lo[:, None], hi[:, None])
    out = np.empty((n, frames), np.int64)
    out[order] = order[win_sorted]
    return out


def window_indices(poses: PoseSet, frames: int) -> np.ndarray:
    """Windows within each (subject, action, camera) sequence of a PoseSet (rows at the data's stride)."""
    key = np.char.add(np.char.add(poses.sequence_key, "|"), poses.camera.astype(str))
    return sequence_windows(key, poses.frame, frames)


def strided_centres(sequence_id: np.ndarray, frame: np.ndarray, frames: int, stride: int) -> np.ndarray:
    """Sorted row indices of the windows centred on every `stride`-th frame of each sequence (positions
    stride // 2, stride // 2 + stride, ...), plus the centre that covers a sequence's tail when the last of
    them does not (its window reaches the last frame). stride = frames tiles a sequence with non-overlapping
    windows, as MixSTE trains its seq2seq loss; stride 1 is every row."""
    n = len(sequence_id)
    if stride <= 1 or n == 0:
        return np.arange(n)
    order = np.lexsort((frame, sequence_id))
    sorted_key = np.asarray(sequence_id)[order]
    starts = np.r_[0, np.flatnonzero(sorted_key[1:] != sorted_key[:-1]) + 1]
    lengths = np.diff(np.r_[starts, n])
    pos = np.arange(n) - np.repeat(starts, lengths)
    keep = pos % stride == stride // 2
    half = frames // 2
    for s, length in zip(starts, lengths):  # one iteration per sequence, not per row
        centres = np.arange(stride // 2, length, stride)
        last = centres[-1] if len(centres) else -(half + 1)
        if last + half < length - 1:
            keep[s + max(length - 1 - half, 0)] = True
    return np.sort(order[keep])


def window_centres(poses: PoseSet, frames: int, stride: int) -> np.ndarray:
    """`strided_centres` over the (subject, action, camera) sequences of a PoseSet."""
    key = np.char.add(np.char.add(poses.sequence_key, "|"), poses.camera.astype(str))
    return strided_centres(key, poses.frame, frames, stride)


@dataclass
class WindowedRows:
    """Rows to score and the rows their windows read. `poses` holds both (the scored rows and their window
    neighbours); `windows` (len(poses), T) index into it (None without windows); `scored` are the positions in
    `poses` of the rows to score, in order. Thinning a video split must not thin the windows' frames away."""

    poses: PoseSet
    windows: np.ndarray | None
    scored: np.ndarray


def thin_windowed(poses: PoseSet, max_rows: int | None, frames: int | None) -> WindowedRows:
    """`PoseSet.thin` for scoring; with `frames` (video windows) the kept rows' windows keep their full-rate frames."""
    n = len(poses)
    keep = (np.arange(n) if max_rows is None or n <= max_rows
            else np.unique(np.linspace(0, n - 1, max_rows).round().astype(int)))
    if frames is None:
        return WindowedRows(poses.subset(keep), None, np.arange(len(keep)))
    full = window_indices(poses, frames)
    needed = np.unique(np.concatenate([keep, full[keep].ravel()]))
    local = np.full(n, -1, np.int64)
    local[needed] = np.arange(len(needed))
    windows = np.repeat(np.arange(len(needed))[:, None], frames, 1)  # rows never scored: a window of themselves
    windows[local[keep]] = local[full[keep]]
    return WindowedRows(poses.subset(needed), windows, local[keep])
