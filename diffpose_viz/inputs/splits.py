"""The rows of a run: training/validation/test splits of the data file(s), evenly thinned subsets, and the
seeded body/view augmentation of the training split."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from diffpose_viz.augmentation import augment_rows
from diffpose_viz.config import DataConfig, ExperimentConfig, MotionSource
from diffpose_viz.datasets.files_2d import drop_damaged_sequences
from diffpose_viz.datasets.poses import PoseSet, build_pose_set, join_pose_sets, prefixed, reweighted, validation_split
from diffpose_viz.datasets.skeleton_bank import read_skeleton_bank
from diffpose_viz.datasets.vp3d import load_3d

log = logging.getLogger(__name__)


#: Offsets added to the detector/H_K seeds so the splits get independent draws.
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2, "wild": 3}


@dataclass
class Splits:
    """The training data's rows: training and validation (held-out sequences). The test rows are
    `load_test_poses`'s."""

    train: PoseSet
    val: PoseSet


def load_poses(cfg: DataConfig, subjects: list[str]) -> PoseSet:
    path = Path(cfg.path)
    if not path.exists():
        hint = " (build it with `diffpose-viz data demo`)" if path.name == "data_3d_demo.npz" else ""
        raise FileNotFoundError(f"data.path {path} does not exist{hint}")
    mocap = _load_mocap(cfg, subjects)
    return build_pose_set(mocap, subjects, cameras=cfg.cameras, frame_stride=cfg.frame_stride,
                          max_frames_per_sequence=cfg.max_frames)


def load_test_poses(cfg: DataConfig) -> PoseSet:
    """Every test row: the test subjects of `path`, or the valid frames of an MPI-INF-3DHP test file (the scored
    rows are thinned to data.max_test_samples where they are scored, `scored_rows`: video windows keep their
    frames)."""
    if cfg.test_3dhp is not None:
        from diffpose_viz.datasets.mpi3dhp import test_pose_set

        if not Path(cfg.test_3dhp).exists():
            raise FileNotFoundError(f"data.test_3dhp {cfg.test_3dhp} does not exist (data_test_3dhp.npz in the "
                                    "lifting-paper layout; docs/REPRODUCE_PAPER.md says where to get it)")
        return test_pose_set(cfg.test_3dhp, list(cfg.test_subjects) or None, units=cfg.test_3dhp_units)
    return load_poses(cfg, list(cfg.test_subjects))


def _load_mocap(cfg: DataConfig, subjects: list[str]):
    """The subjects' mocap (read once per file version and subject set: building rows and attaching 2D files
    to the same subjects need it again)."""
    path = Path(cfg.path)
    stamp = path.stat().st_mtime_ns if path.exists() else 0
    return _read_mocap(str(path), stamp, tuple(sorted(subjects)), cfg.input_2d == "file")


@functools.lru_cache(maxsize=4)
def _read_mocap(path: str, stamp: int, subjects: tuple[str, ...], drop_damaged: bool):
    mocap = load_3d(Path(path), subjects=list(subjects))
    if drop_damaged:  # VideoPose3D discards the corrupted S11 'Directions' video; so do we
        mocap, dropped = drop_damaged_sequences(mocap)
        if dropped:
            log.info("%s: left out damaged sequences %s (as VideoPose3D)", path, dropped)
    return mocap


def load_splits(cfg: DataConfig, seed: int = 0) -> Splits:
    """Train/validation (by whole sequences) from the training subjects."""
    train_all = load_poses(cfg, list(cfg.train_subjects))
    train, val = validation_split(train_all, cfg.validation_fraction, seed=seed)
    if cfg.extra_train:  # the main file's split is unchanged; each source is split the same way and appended
        trains, vals = [train], [val]
        for src in cfg.extra_train:
            src_train, src_val = validation_split(load_source(cfg, src), cfg.validation_fraction, seed=seed)
            trains.append(reweighted(src_train, src.weight))
            vals.append(src_val)
        train, val = join_pose_sets(trains), join_pose_sets(vals)
    return Splits(train, val)


def load_source(cfg: DataConfig, src: MotionSource) -> PoseSet:
    """An extra training source's rows, at its own frame stride and per-sequence frame cap (else the main file's),
    prefixed with the source's name."""
    name = src.prefix
    if not Path(src.path).exists():
        raise FileNotFoundError(f"data.extra_train: {src.path} does not exist (source {name!r})")
    sub = replace(cfg, path=src.path, cameras=src.cameras, input_2d="gt" if cfg.input_2d == "file" else cfg.input_2d,
                  extra_train=[], max_frames=cfg.max_frames if src.max_frames is None else src.max_frames,
                  frame_stride=cfg.frame_stride if src.frame_stride is None else src.frame_stride)
    return prefixed(load_poses(sub, list(src.subjects)), name)


def augmentation_on(cfg: ExperimentConfig) -> bool:
    return cfg.augmentation.body.enabled or cfg.augmentation.view.enabled


@dataclass
class AugmentedSplit:
    poses: PoseSet  # new bodies (and views): pose3d, root, pose2d, res replaced
    intrinsics: np.ndarray  # (N,4) of each row's real or virtual camera
    focal_px: np.ndarray  # (N,)
    virtual: np.ndarray  # (N,) bool


def augment_split(poses: PoseSet, cfg: ExperimentConfig, seed: int) -> AugmentedSplit:
    """One seeded draw of body and viewpoint augmentation over a (training) split: every row's skeleton
    rescaled along the kinematic tree and, for a fraction of rows, seen by a virtual camera; the 2D is
    re-projected with the same camera code. Evaluation never calls this."""
    body = cfg.augmentation.body
    bank = None
    if body.enabled and body.bank is not None:
        bank = read_skeleton_bank(body.bank, body.bank_exclude)
        log.info("augmentation: %d real people from %s (left out: %s; same body as a kept number: %s)",
                 len(bank.people), bank.path, list(bank.excluded), list(bank.repeats))
    out = augment_rows(poses.pose3d, poses.root, poses.camera, poses.cameras, seed, cfg.augmentation,
                       bank_bones=None if bank is None else bank.bones_m)
    new = replace(poses, pose3d=out.pose3d.astype(np.float32), root=out.root.astype(np.float32),
                  pose2d=out.pose2d.astype(np.float32), res=out.res.astype(np.int32))
    log.info("augmentation: %d rows, %d through virtual cameras", len(new), int(out.virtual.sum()))
    return AugmentedSplit(new, out.intrinsics, out.focal, out.virtual)
