"""The feed: everything one split hands a method, built once per split and method.

    rows (PoseSet, or user 2D keypoints + a camera)
      -> 2D input per row (detections, modes)      inputs.detections.make_inputs / modes_from_keypoints
      -> network condition (u, v, confidence)      inputs.detections.screen_input
      -> video windows, when the method reads them  inputs.windows
      -> intrinsics, and H_K when the method needs it (z from the method or the depth prior), cached
                                                   inputs.hk.build_hk, inputs.hk.hk_cache_file

The trainer, `inference.lift`, the lab and the two-stage method's residual spread consume a `Feed`; whether a
method reads windows and whether it needs H_K is asked here (and in `methods/`) only. The method is passed in
as an object (`MethodNeeds`); this layer does not import the method table.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch

from diffpose_viz.camera import Camera
from diffpose_viz.config import ExperimentConfig
from diffpose_viz.datasets.poses import PoseSet
from diffpose_viz.detector_sim import Detections2D
from diffpose_viz.errors import InputError
from diffpose_viz.initialization.depth_prior import DepthPrior
from diffpose_viz.initialization.pose_init import PoseGMM, intrinsics_from_camera, modes_from_keypoints
from diffpose_viz.inputs.detections import check_finite, make_inputs, row_intrinsics, screen_input
from diffpose_viz.inputs.hk import build_hk, hk_cache_file, rows_digest
from diffpose_viz.inputs.splits import SPLIT_SEEDS, AugmentedSplit
from diffpose_viz.inputs.windows import (
    WindowedRows,
    sequence_windows,
    thin_windowed,
    window_centres,
    window_indices,
)


class MethodNeeds(Protocol):
    """What the feed asks of a method (`diffpose_viz.methods.Method` answers it)."""

    name: str
    hk_at_training: bool
    hk_at_test: bool

    def uses_windows(self, cfg: ExperimentConfig) -> bool: ...

    def hk_depth(self, cfg: ExperimentConfig, extras: dict[str, Any], cond: torch.Tensor,
                 occluded: np.ndarray, windows: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray] | None: ...


#: A hook that times the feed's phases: called with a phase name ('detections_2d', 'screen_normalise', 'hk_fit'),
#: it returns the context the phase runs in (the training benchmark's timer; None: no timing).
PhaseTimer = Callable[[str], AbstractContextManager]


def _phase(timer: PhaseTimer | None, name: str) -> AbstractContextManager:
    return nullcontext() if timer is None else timer(name)


def hk_needed(method: MethodNeeds, split: str) -> bool:
    """Whether the method reads H_K on `split`: its training loss on 'train', its predict elsewhere."""
    return method.hk_at_training if split == "train" else method.hk_at_test


def window_length(cfg: ExperimentConfig, method: MethodNeeds) -> int | None:
    """The frames of the window each row is read with (model.frames), or None when the method reads frames."""
    return cfg.model.frames if method.uses_windows(cfg) else None


def scored_rows(poses: PoseSet, max_rows: int | None, cfg: ExperimentConfig, method: MethodNeeds) -> WindowedRows:
    """`max_rows` evenly thinned rows to score; for a method that reads windows, their frames stay (unscored)."""
    return thin_windowed(poses, max_rows, window_length(cfg, method))


@dataclass
class FeedBatch:
    """One batch of a feed as `Method.predict` reads it (tensors on the feed's device)."""

    cond: torch.Tensor  # (B,17,3) the network condition, or (B,T,17,3) windows for video context
    gmm: PoseGMM | None  # H_K of these rows, when the method reads it
    generator: torch.Generator | None = None  # the run's generator (every batch draws from the same one)


@dataclass
class Feed:
    """One split as a method is fed it (numpy on the CPU, tensors on `device`).

    `det` the 2D input of every row; `res` (N,2) image sizes; `intrinsics` (N,4) [fx, fy, cx, cy]; `cond` (N,17,3)
    the network condition; `windows` (N,T) row indices (None: the method reads single frames); `pose3d` (N,17,3)
    targets when asked for; `scored` the rows a validation scores (None: all); `gmm` H_K of the rows `hk_rows`
    (None: all rows) once `with_hk` has fitted it; `z_from_method`: H_K's z came from the method (phi_ST);
    `centres` the training rows batches are drawn from (None: all; train.window_stride); `context` (N,17,C) the
    frozen encoder's f_ST per row, when the trainer caches it (Method.frozen_context)."""

    cfg: ExperimentConfig
    method: MethodNeeds
    split: str
    det: Detections2D
    res: np.ndarray
    intrinsics: np.ndarray
    cond: torch.Tensor
    windows: torch.Tensor | None
    device: torch.device
    poses: PoseSet | None = None
    pose3d: torch.Tensor | None = None
    scored: np.ndarray | None = None
    gmm: PoseGMM | None = None
    hk_rows: np.ndarray | None = None
    z_from_method: bool = False
    centres: torch.Tensor | None = None
    context: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.cond)

    @property
    def n_centres(self) -> int:
        return len(self) if self.centres is None else len(self.centres)

    @property
    def needs_hk(self) -> bool:
        """Whether the method reads H_K on this split (its training loss on 'train', predict elsewhere)."""
        return hk_needed(self.method, self.split)

    def with_hk(self, prior: DepthPrior | None, extras: dict[str, Any] | None = None, *,
                rows: np.ndarray | None = None, seed: int | None = None, cache: Path | None = None,
                checkpoint: str | Path | None = None, progress: bool = False,
                root_depth: np.ndarray | None = None, timer: PhaseTimer | None = None) -> "Feed":
        """This feed with H_K of `rows` (default: all) when the method needs it on this split (else unchanged).

        `seed`: the EM's seed offset (default: the split's); `cache`: a folder for the fitted H_K, named by
        `hk_cache_file` (`checkpoint`: an evaluation of that checkpoint); `root_depth` (len(rows),) m: a given
        root depth (the lab's what-if); `extras`: the method's restored parts, for a z from the method."""
        if not self.needs_hk or len(self) == 0:
            return self
        idx = np.arange(len(self)) if rows is None else np.asarray(rows)
        sub = self.det if rows is None else self.det.subset(idx)
        if self.windows is None:
            cond = self.cond.cpu() if rows is None else self.cond[torch.as_tensor(idx, device=self.cond.device)].cpu()
            depth = self.method.hk_depth(self.cfg, extras or {}, cond, sub.occluded)
        else:  # a temporal phi_ST reads each row's window: all rows' 2D, and the windows of the rows asked for
            win = self.windows if rows is None else self.windows[torch.as_tensor(idx, device=self.windows.device)]
            depth = self.method.hk_depth(self.cfg, extras or {}, self.cond.cpu(), sub.occluded, win.cpu())
        seed = SPLIT_SEEDS[self.split] if seed is None else seed
        intrinsics = np.asarray(self.intrinsics)[idx]
        file = None if cache is None else hk_cache_file(cache, self.cfg, self.split, len(idx), prior, checkpoint,
                                                        rows=rows_digest(sub, intrinsics, seed))
        with _phase(timer, "hk_fit"):
            gmm = build_hk(sub, intrinsics, prior, self.cfg.init, seed=seed, device=self.device, cache=file,
                           progress=progress, depth=depth, root_depth=root_depth)
        return replace(self, gmm=gmm, hk_rows=None if rows is None else idx, z_from_method=depth is not None)

    def network_input(self, idx: torch.Tensor) -> torch.Tensor:
        """The network's 2D input for rows idx: (B,17,3), or (B,T,17,3) windows for video context."""
        return self.cond[idx] if self.windows is None else self.cond[self.windows[idx]]

    def with_windows(self, frames: int | None) -> "Feed":
        """This feed read in windows of `frames` (None or 1: single frames), e.g. one prepared split for several
        window lengths (the training benchmark)."""
        if frames is None or frames <= 1:
            return replace(self, windows=None)
        return replace(self, windows=torch.as_tensor(window_indices(self.poses, frames), device=self.device))

    def without_hk(self) -> "Feed":
        """This feed for a method that does not read H_K."""
        return replace(self, gmm=None, hk_rows=None)

    def with_context(self, context: torch.Tensor | None) -> "Feed":
        """This feed with the frozen encoder's f_ST per row (Method.frozen_context), which batches then carry."""
        return replace(self, context=context)

    def batch(self, rows: np.ndarray, generator: torch.Generator | None = None) -> FeedBatch:
        """The rows' network input (their windows, for video context) and H_K, for one predict call."""
        cond = self.network_input(torch.as_tensor(rows, device=self.device))
        gmm = None
        if self.gmm is not None:
            gmm = self.gmm.select(torch.as_tensor(self.gmm_index(np.asarray(rows)), device=self.device))
        return FeedBatch(cond, gmm, generator)

    def gmm_index(self, rows: np.ndarray) -> np.ndarray:
        """Position in `gmm` of each of `rows`."""
        if self.hk_rows is None:
            return np.asarray(rows)
        where = np.full(len(self), -1, np.int64)
        where[self.hk_rows] = np.arange(len(self.hk_rows))
        out = where[np.asarray(rows)]
        if (out < 0).any():
            raise InputError(f"rows {np.asarray(rows)[out < 0][:5].tolist()} have no H_K in this feed")
        return out


def _feed(cfg: ExperimentConfig, method: MethodNeeds, split: str, det: Detections2D, res: np.ndarray,
          intrinsics: np.ndarray, windows: np.ndarray | None, device, timer: PhaseTimer | None = None, **more) -> Feed:
    device = torch.device(device)
    with _phase(timer, "screen_normalise"):
        cond = torch.as_tensor(screen_input(det.keypoints, det.confidence, res), device=device)
    win = None if windows is None or not method.uses_windows(cfg) else torch.as_tensor(windows, device=device)
    return Feed(cfg, method, split, det, np.asarray(res), np.asarray(intrinsics), cond, win, device, **more)


def build_feed(poses: PoseSet, cfg: ExperimentConfig, split: str, method: MethodNeeds, *,
               device: torch.device | str = "cpu", error_model=None, augmented: AugmentedSplit | None = None,
               windows: np.ndarray | None = None, scored: np.ndarray | None = None, targets: bool = False,
               need_modes: bool = True, timer: PhaseTimer | None = None) -> Feed:
    """The feed of a split's rows: their 2D input (`cfg.data.input_2d`; `error_model` for uncertainty_2d
    'error_model'), condition, windows (given, e.g. by `scored_rows`, or every row's own) and intrinsics.

    `augmented`: the split's augmented rows (real or virtual cameras); `targets`: also the 3D targets on the
    device (checked finite); `need_modes` False: a caller reading only keypoints, confidence and occlusion;
    `timer`: times the phases (the training benchmark)."""
    if augmented is not None:
        poses = augmented.poses
    if targets:
        check_finite(f"{split} 3D targets", poses.pose3d)
    with _phase(timer, "detections_2d"):
        det = make_inputs(poses, cfg, split, focal_px=None if augmented is None else augmented.focal_px,
                          error_model=error_model, need_modes=need_modes)
    if method.uses_windows(cfg) and windows is None:
        windows = window_indices(poses, cfg.model.frames)
    intrinsics = row_intrinsics(poses) if augmented is None else augmented.intrinsics
    pose3d = torch.as_tensor(poses.pose3d, device=torch.device(device)) if targets else None
    centres = None  # train.window_stride: batches drawn from strided window centres
    if method.uses_windows(cfg) and split == "train" and cfg.train.window_stride > 1:
        centres = torch.as_tensor(window_centres(poses, cfg.model.frames, cfg.train.window_stride),
                                  device=torch.device(device))
    return _feed(cfg, method, split, det, poses.res, intrinsics, windows, device, timer, poses=poses, pose3d=pose3d,
                 scored=scored, centres=centres)


def feed_from_keypoints(keypoints_px: np.ndarray, confidence: np.ndarray, occluded: np.ndarray,
                        std_px: float | np.ndarray, camera: Camera, cfg: ExperimentConfig, method: MethodNeeds, *,
                        device: torch.device | str = "cpu") -> Feed:
    """The feed of user 2D keypoints (F,17,2) px seen by one `camera`, consecutive rows one sequence: one 2D
    mode per joint at the keypoint with spread `std_px` (scalar or (F,17) px)."""
    kp = np.asarray(keypoints_px, np.float32)
    conf = np.asarray(confidence, np.float32)
    det = Detections2D(kp, conf, modes_from_keypoints(kp, std_px, conf).astype(np.float32), np.asarray(occluded, bool))
    n = len(kp)
    windows = sequence_windows(np.zeros(n, np.int64), np.arange(n), cfg.model.frames) if method.uses_windows(cfg) \
        else None
    return _feed(cfg, method, "wild", det, np.array([[camera.res_w, camera.res_h]] * n),
                 np.broadcast_to(intrinsics_from_camera(camera), (n, 4)).copy(), windows, device)
