"""Running a fixed-window temporal model (e.g. MixSTELifter, T frames) over a whole sequence of L frames.

Two ways, both returning one row per frame:

* seq2seq chunks (`chunk_indices`, `evaluate_sequence`): MixSTE's test-time scheme. The sequence is cut
  into consecutive non-overlapping windows of T frames; every output frame of a window is used. The last,
  incomplete window is either the sequence's last T frames with only its not-yet-covered frames kept
  (`last='overlap'`, what MixSTE's evaluation does when L >= T) or the remaining frames padded by repeating
  the last frame (`last='pad'`). A sequence shorter than T is one window padded with its last frame in both
  modes (as MixSTE does). Every frame is predicted exactly once.
* centre-frame sliding windows (`windows`, `evaluate_centre`): one window per frame, centred on it
  (window position T // 2), edge-replicated at both ends. For odd T this is the same convention as
  `pipeline.window_indices` (offsets -T//2 .. T//2 clipped to the sequence), applied to one sequence.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

Tensor = torch.Tensor
LAST_MODES = ("overlap", "pad")


def _check_lengths(length: int, frames: int, what: str) -> None:
    if length < 1:
        raise ValueError(f"{what}: the sequence must have at least 1 frame, found {length}")
    if frames < 1:
        raise ValueError(f"{what}: the window must have at least 1 frame, found {frames}")


def windows(length: int, frames: int) -> np.ndarray:
    """(L, T) int64 frame indices: row i is the window centred on frame i (i sits at column T // 2),
    edge-replicated (indices clipped to [0, L-1])."""
    _check_lengths(length, frames, "windows")
    offsets = np.arange(frames) - frames // 2
    return np.clip(np.arange(length)[:, None] + offsets[None], 0, length - 1).astype(np.int64)


def chunk_indices(length: int, frames: int, last: str = "overlap") -> tuple[np.ndarray, np.ndarray]:
    """Seq2seq chunks covering a sequence of L frames with windows of T.

    Returns (index (n, T) int64 frame indices into the sequence, keep (n, T) bool): the outputs at the kept
    positions, read in row-major order, are frames 0, 1, ..., L-1, each exactly once."""
    _check_lengths(length, frames, "chunk_indices")
    if last not in LAST_MODES:
        raise ValueError(f"chunk_indices: last must be one of {LAST_MODES}, found {last!r}")
    full, rest = divmod(length, frames)
    rows = [np.arange(k * frames, (k + 1) * frames) for k in range(full)]
    keeps = [np.ones(frames, bool) for _ in range(full)]
    if rest:
        if last == "overlap" and full > 0:  # the last T frames; keep the `rest` frames not covered yet
            rows.append(np.arange(length - frames, length))
            keeps.append(np.arange(frames) >= frames - rest)
        else:  # the remaining frames, then the last frame repeated
            rows.append(np.minimum(np.arange(full * frames, (full + 1) * frames), length - 1))
            keeps.append(np.arange(frames) < rest)
    return np.stack(rows).astype(np.int64), np.stack(keeps)


def _frames_of(fn: Callable, frames: int | None, what: str) -> int:
    if frames is None:
        frames = getattr(fn, "num_frames", None) or getattr(getattr(fn, "__self__", None), "num_frames", None)
        if frames is None:
            raise ValueError(f"{what}: give num_frames (fn has no num_frames attribute)")
    return int(frames)


def _run_batched(fn: Callable[[Tensor], Tensor], seq: Tensor, index: np.ndarray, batch_size: int) -> Tensor:
    idx = torch.as_tensor(index, device=seq.device)
    outs = [fn(seq[idx[i:i + batch_size]]) for i in range(0, len(idx), batch_size)]
    return torch.cat(outs, 0)


def evaluate_sequence(fn: Callable[[Tensor], Tensor], pose2d: Tensor, num_frames: int | None = None, *,
                      last: str = "overlap", batch_size: int = 64) -> Tensor:
    """Run a seq2seq model fn ((B,T,17,C) -> (B,T,17,D)) over a whole sequence (L,17,C) -> (L,17,D).

    fn is e.g. a MixSTELifter (D = 3), its `features` (D = hidden width) or a FlipTestTime wrapper;
    num_frames defaults to fn.num_frames. Call under torch.no_grad() for evaluation."""
    if pose2d.ndim != 3:
        raise ValueError(f"evaluate_sequence: expected one sequence (L, 17, C), found {tuple(pose2d.shape)}")
    T = _frames_of(fn, num_frames, "evaluate_sequence")
    index, keep = chunk_indices(pose2d.shape[0], T, last)
    out = _run_batched(fn, pose2d, index, batch_size)  # (n, T, 17, D)
    return out[torch.as_tensor(keep, device=out.device)]


def evaluate_centre(fn: Callable[[Tensor], Tensor], pose2d: Tensor, num_frames: int | None = None, *,
                    batch_size: int = 64) -> Tensor:
    """Centre-frame sliding-window evaluation: (L,17,C) -> (L,17,D), frame i read at position T // 2 of
    the edge-replicated window centred on it (`windows`). L model calls' worth of work instead of L / T."""
    if pose2d.ndim != 3:
        raise ValueError(f"evaluate_centre: expected one sequence (L, 17, C), found {tuple(pose2d.shape)}")
    T = _frames_of(fn, num_frames, "evaluate_centre")
    idx = windows(pose2d.shape[0], T)
    return _run_batched(lambda x: fn(x)[:, T // 2], pose2d, idx, batch_size)


def window_centre(out: Tensor, frames: int) -> Tensor:
    """A temporal lifter's output for a window of `frames` frames -> the window's centre frame: (B, T_out, ...)
    -> (B, ...). A seq2seq lifter (MixSTE) gives T_out = frames (the centre is frames // 2); a temporal
    convolution whose receptive field is the window (TCNLifter) gives T_out = 1, the centre frame's own."""
    if out.shape[1] == frames:
        return out[:, frames // 2]
    if out.shape[1] == 1:
        return out[:, 0]
    raise ValueError(f"window_centre: a {frames}-frame window gave {out.shape[1]} output frames; expected "
                     f"{frames} (seq2seq) or 1 (receptive field = window)")
