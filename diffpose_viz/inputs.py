"""What a run is fed: data splits, the 2D input of every row, the network's 2D encoding, video windows,
and H_K (fitted with the batched EM, cached as a plain tensor file).

Model inputs (docs/ARCHITECTURE.md): the 2D pose is screen-normalised per row, u = 2x/w - 1,
v = 2y/w - h/w, carried as (u, v, confidence) with missing joints zeroed and confidence 0; the 3D state
is camera-frame, root-relative metres (no further scaling).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from diffpose_viz.augmentation import augment_rows
from diffpose_viz.camera import Camera
from diffpose_viz.checkpoint import safe_torch_load
from diffpose_viz.config import DataConfig, ExperimentConfig, MotionSource, to_dict
from diffpose_viz.datasets.poses import PoseSet, build_pose_set, concatenate, prefixed, reweighted, validation_split
from diffpose_viz.datasets.files_2d import Detections2DFromFile, attach_2d, drop_damaged_sequences
from diffpose_viz.datasets.vp3d import load_3d
from diffpose_viz.detector_sim import Detections2D, simulate_detections, simulate_from_poseset
from diffpose_viz.errors import InputError
from diffpose_viz.initialization.depth_prior import DepthPrior
from diffpose_viz.initialization.detection_error import DetectionErrorModel, fit_from_attached
from diffpose_viz.initialization.pose_init import (
    InitConfig,
    PoseGMM,
    build_pose_gmm,
    fit_depth_prior,
    intrinsics_from_camera,
    modes_from_keypoints,
)
from diffpose_viz.progress import progress as progress_bar

log = logging.getLogger(__name__)

#: Offsets added to the detector/H_K seeds so the splits get independent draws.
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2, "wild": 3}
#: Default focal length for an uncalibrated image, as a multiple of its larger side (~45 deg FOV).
DEFAULT_FOCAL_FACTOR = 1.2
NORMALISER = {"2d": "screen: u = 2x/w - 1, v = 2y/w - h/w, per row (w, h) = image size; channels (u, v, conf)",
              "3d": "camera-frame root-relative metres, unscaled", "version": 1}


# --------------------------------------------------------------------------- data


@dataclass
class Splits:
    train: PoseSet
    val: PoseSet
    test: PoseSet


def camera_selection(cameras: list[str] | None):
    if cameras is None:
        return None
    # Short all-digit entries are list indices; H36M-style ids are long digit strings.
    return [int(c) if str(c).isdigit() and len(str(c)) <= 2 else str(c) for c in cameras]


def thin(poses: PoseSet, max_rows: int | None) -> PoseSet:
    """Evenly spaced rows (every sequence keeps its share); None = all rows."""
    if max_rows is None or len(poses) <= max_rows:
        return poses
    return poses.subset(np.unique(np.linspace(0, len(poses) - 1, max_rows).round().astype(int)))


def load_poses(cfg: DataConfig, subjects: list[str]) -> PoseSet:
    path = Path(cfg.path)
    if not path.exists():
        hint = " (build it with `diffpose-viz data demo`)" if path.name == "data_3d_demo.npz" else ""
        raise FileNotFoundError(f"data.path {path} does not exist{hint}")
    mocap = _load_mocap(cfg, subjects)
    return build_pose_set(mocap, subjects, cameras=camera_selection(cfg.cameras), frame_stride=cfg.frame_stride,
                          max_frames_per_sequence=cfg.max_frames)


def load_test_poses(cfg: DataConfig) -> PoseSet:
    """The test rows: the test subjects of `path`, or the valid frames of an MPI-INF-3DHP test file."""
    if cfg.test_3dhp is not None:
        from diffpose_viz.datasets.mpi3dhp import test_pose_set

        if not Path(cfg.test_3dhp).exists():
            raise FileNotFoundError(f"data.test_3dhp {cfg.test_3dhp} does not exist (data_test_3dhp.npz in the "
                                    "lifting-paper layout; docs/REPRODUCE_PAPER.md says where to get it)")
        return thin(test_pose_set(cfg.test_3dhp, list(cfg.test_subjects) or None, units=cfg.test_3dhp_units),
                    cfg.max_test_samples)
    return thin(load_poses(cfg, list(cfg.test_subjects)), cfg.max_test_samples)


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


def load_splits(cfg: DataConfig, seed: int = 0, *, with_test: bool = True) -> Splits:
    """Train/validation (by whole sequences) from the training subjects, test from the test subjects."""
    train_all = load_poses(cfg, list(cfg.train_subjects))
    train, val = validation_split(train_all, cfg.validation_fraction, seed=seed)
    if cfg.extra_train:  # the main file's split is unchanged; each source is split the same way and appended
        trains, vals = [train], [val]
        for src in cfg.extra_train:
            src_train, src_val = validation_split(load_source(cfg, src), cfg.validation_fraction, seed=seed)
            trains.append(reweighted(src_train, src.weight))
            vals.append(src_val)
        train, val = concatenate(trains), concatenate(vals)
    test = thin(load_poses(cfg, list(cfg.test_subjects)), cfg.max_test_samples) if with_test else train.subset(
        np.zeros(len(train), bool))
    return Splits(train, val, test)


def load_source(cfg: DataConfig, src: MotionSource) -> PoseSet:
    """An extra training source's rows, at the main file's frame stride and per-sequence frame cap, prefixed with
    the source's name."""
    name = src.prefix
    if not Path(src.path).exists():
        raise FileNotFoundError(f"data.extra_train: {src.path} does not exist (source {name!r})")
    sub = replace(cfg, path=src.path, cameras=src.cameras, input_2d="gt" if cfg.input_2d == "file" else cfg.input_2d,
                  extra_train=[])
    return prefixed(load_poses(sub, list(src.subjects)), name)


# --------------------------------------------------------------------------- 2D input


def detector_config(cfg: ExperimentConfig, split: str):
    det = replace(cfg.detector, seed=cfg.detector.seed * 10 + SPLIT_SEEDS[split])
    if not cfg.data.occlusion:
        det = replace(det, self_occlusion=False, occluder_prob=0.0, truncation=False)
    return det


def file_2d_path(cfg: ExperimentConfig, split: str) -> str | None:
    """The 2D file of a split with input_2d 'file' (None: the ground-truth projection)."""
    return cfg.data.test_2d if split == "test" else cfg.data.train_2d


def attach_file(poses: PoseSet, cfg: ExperimentConfig, path: str) -> Detections2DFromFile:
    """The rows' 2D from `path`; every row must be matched (the damaged sequence is already left out)."""
    mocap = _load_mocap(cfg.data, sorted(set(poses.subject.tolist())))
    r = attach_2d(poses, path, mocap=mocap)
    if not r.keep.all():
        raise InputError(f"{path}: {int((~r.keep).sum())} of {len(poses)} rows of {cfg.data.path} have no 2D in this "
                         f"file (sequences {list(r.skipped)[:5]})")
    return r


def fit_error_model(train: PoseSet, cfg: ExperimentConfig) -> DetectionErrorModel | None:
    """With input_2d 'file' and uncertainty_2d 'error_model': the per-joint mixture of detection errors
    (detection minus ground-truth projection) on the TRAINING rows of train_2d, or of test_2d when the model
    trains on projections (the training subjects' rows of the detection file; never the test subjects')."""
    if cfg.data.input_2d != "file" or cfg.data.uncertainty_2d != "error_model":
        return None
    path = cfg.data.train_2d or cfg.data.test_2d
    r = attach_file(train, cfg, path)
    model = fit_from_attached(train, r, n_kernels=cfg.data.error_model_kernels)
    log.info("detection error model: %d kernels per joint from %d training rows of %s",
             cfg.data.error_model_kernels, len(r), path)
    return model


def make_inputs(poses: PoseSet, cfg: ExperimentConfig, split: str, *, focal_px: np.ndarray | None = None,
                error_model: DetectionErrorModel | None = None, need_modes: bool = True) -> Detections2D:
    """The 2D input of every row: simulated detections, the ground-truth projection ('gt'), or a file.
    `focal_px` (N,): per-row focal lengths when rows are not seen by `poses.cameras` (augmented views);
    `error_model`: the fitted detection error model when uncertainty_2d is 'error_model'; `need_modes` False
    (a caller that reads only keypoints and confidence) lets a missing error model fall back to fixed modes."""
    if cfg.data.input_2d == "file":
        return _file_inputs(poses, cfg, split, error_model, need_modes)
    if cfg.data.input_2d == "gt":
        kp = poses.pose2d.astype(np.float32)
        n = len(kp)
        modes = modes_from_keypoints(kp, cfg.data.gt_noise_std_px).astype(np.float32)
        return Detections2D(kp, np.ones((n, 17), np.float32), modes, np.zeros((n, 17), bool))
    if focal_px is not None:
        absolute = poses.pose3d.astype(np.float64) + poses.root.astype(np.float64)[:, None, :]
        return simulate_detections(poses.pose2d, absolute, poses.res, detector_config(cfg, split), focal_px=focal_px)
    return simulate_from_poseset(poses, detector_config(cfg, split))


def _file_inputs(poses: PoseSet, cfg: ExperimentConfig, split: str, error_model: DetectionErrorModel | None,
                 need_modes: bool = True) -> Detections2D:
    path = file_2d_path(cfg, split)
    n = len(poses)
    file_modes = None
    if path is None:  # the ground-truth projection (the released frame recipe trains on it)
        kp, conf, has_conf = poses.pose2d.astype(np.float32), np.ones((n, 17), np.float32), False
    else:
        r = attach_file(poses, cfg, path)
        kp, conf, has_conf, file_modes = r.keypoints, r.confidence, r.has_confidence, r.modes
    rule = cfg.data.uncertainty_2d
    if rule == "file_gmm" and path is None:  # projection rows (training on GT 2D) have no file kernels
        rule = "fixed"
    if rule == "file_gmm":
        if file_modes is None:
            raise InputError(f"data.uncertainty_2d: file_gmm needs a DiffPose GMM file for the {split} rows; "
                             f"found {path or 'the ground-truth projection'}")
        modes = file_modes
    elif rule == "error_model" and (error_model is not None or need_modes):
        if error_model is None:
            raise InputError("data.uncertainty_2d: error_model, but no detection error model was fitted or stored "
                             "(train with input_2d: file to fit it)")
        modes = error_model.modes_for(kp, conf if has_conf else None)
    else:
        modes = modes_from_keypoints(kp, cfg.data.gt_noise_std_px, conf)
    return Detections2D(kp.astype(np.float32), conf.astype(np.float32), np.asarray(modes, np.float32),
                        np.zeros((n, 17), bool), scored=has_conf)


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
    out = augment_rows(poses.pose3d, poses.root, poses.camera, poses.cameras, seed, cfg.augmentation)
    new = replace(poses, pose3d=out.pose3d.astype(np.float32), root=out.root.astype(np.float32),
                  pose2d=out.pose2d.astype(np.float32), res=out.res.astype(np.int32))
    log.info("augmentation: %d rows, %d through virtual cameras", len(new), int(out.virtual.sum()))
    return AugmentedSplit(new, out.intrinsics, out.focal, out.virtual)


def calibration_rows(cfg: DataConfig, seed: int, max_rows: int, extra_paths=()) -> PoseSet:
    """Validation rows for the error-bar calibration: the training data's held-out sequences, plus those of the
    same training subjects in each of `extra_paths` (e.g. the same takes through held-out validation cameras),
    each thinned to `max_rows` and prefixed 'calib<i>' (the subjects too: evaluate tells them apart by it, and
    camera keys never collide). Never test rows."""
    sets = [thin(load_splits(cfg, seed, with_test=False).val, max_rows)]
    for i, path in enumerate(extra_paths):
        other = replace(cfg, path=str(path), extra_train=[])
        val = load_splits(other, seed, with_test=False).val
        if len(val) == 0:
            raise InputError(f"--calibrate-with {path}: no validation rows of the training subjects "
                             f"{list(cfg.train_subjects)}")
        sets.append(prefixed(thin(val, max_rows), f"calib{i}"))
    return concatenate(sets)


def training_2d(train: PoseSet, cfg: ExperimentConfig, max_rows: int, error_model=None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(keypoints (N,17,2) px, confidence (N,17)) of evenly thinned training rows, as the model was trained on
    them: drawn with the config's body/view augmentation and the trainer's seed when augmentation is on."""
    rows = thin(train, max_rows)
    if augmentation_on(cfg):
        aug = augment_split(rows, cfg, cfg.train.seed)
        det = make_inputs(aug.poses, cfg, "train", focal_px=aug.focal_px, error_model=error_model, need_modes=False)
    else:
        det = make_inputs(rows, cfg, "train", error_model=error_model, need_modes=False)
    return det.keypoints, det.confidence


def screen_input(keypoints_px: np.ndarray, confidence: np.ndarray, res: np.ndarray) -> np.ndarray:
    """(N,17,2) px, (N,17), (N,2) -> (N,17,3) float32 (u, v, confidence); missing joints -> zeros."""
    kp = np.asarray(keypoints_px, np.float64)
    conf = np.asarray(confidence, np.float64)
    res = np.broadcast_to(np.asarray(res, np.float64), (len(kp), 2))
    if kp.ndim != 3 or kp.shape[1:] != (17, 2) or conf.shape != kp.shape[:2]:
        raise InputError(f"2D input: expected keypoints (N, 17, 2) px and confidence (N, 17), found "
                         f"{kp.shape} and {conf.shape}")
    w, h = res[:, 0:1], res[:, 1:2]
    uv = np.stack([2 * kp[..., 0] / w - 1, 2 * kp[..., 1] / w - h / w], -1)
    valid = np.isfinite(uv).all(-1) & np.isfinite(conf) & (conf > 0)
    out = np.concatenate([np.where(valid[..., None], uv, 0.0), np.where(valid, conf, 0.0)[..., None]], -1)
    return out.astype(np.float32)


def row_intrinsics(poses: PoseSet) -> np.ndarray:
    """(N,4) [fx, fy, cx, cy] pixels of every row's camera."""
    out = np.empty((len(poses), 4))
    for key in np.unique(poses.camera):
        out[poses.camera == key] = intrinsics_from_camera(poses.cameras[str(key)])
    return out


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
    """`thin` for scoring; with `frames` (video windows) the kept rows' windows keep their full-rate frames."""
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


def check_finite(name: str, arr) -> None:
    a = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
    if not np.isfinite(a).all():
        rows = np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(1))[:5].tolist()
        raise InputError(f"{name}: {int((~np.isfinite(a)).sum())} NaN/inf values (rows {rows})")


def default_camera(width: int, height: int, focal: float | None = None, center: tuple[float, float] | None = None,
                   camera_id: str = "user", focal_factor: float = DEFAULT_FOCAL_FACTOR) -> Camera:
    """The one pinhole camera for an uncalibrated image: f = focal_factor * max(w, h) px (1.2: ~45 deg field
    of view on the long side, typical of phones and action cameras) unless `focal` is given, principal
    point at the image centre unless given, no distortion."""
    if width <= 0 or height <= 0:
        raise InputError(f"image size: expected positive width and height in pixels, found {width} x {height}")
    f = float(focal) if focal is not None else float(focal_factor) * max(width, height)
    if not (np.isfinite(f) and f > 0):
        raise InputError(f"focal length (--focal): expected a finite number > 0 pixels, found {f}")
    c = tuple(map(float, center)) if center is not None else (width / 2.0, height / 2.0)
    if not np.isfinite(c).all():
        raise InputError(f"principal point (--center): expected finite pixel coordinates, found {c[0]} {c[1]}")
    return Camera(id=camera_id, res_w=int(width), res_h=int(height), focal=(f, f), center=c)


# --------------------------------------------------------------------------- H_K


def fit_prior(train: PoseSet, init: InitConfig) -> DepthPrior:
    return fit_depth_prior(train.pose3d, init, root_depth=train.root[:, 2])


def hk_cache_key(cfg: ExperimentConfig, split: str, n: int, prior: DepthPrior, extra: str = "") -> str:
    """A digest of everything H_K of a split depends on: reuse is safe only under the same key. `extra`: what
    else it depends on (e.g. the identity of the checkpoint whose phi_ST gives H_K's z)."""
    h = hashlib.sha256()
    payload = {"data": to_dict(cfg.data), "detector": to_dict(cfg.detector), "init": to_dict(cfg.init), "split": split,
               "n": n}
    if extra:
        payload["extra"] = extra
    if cfg.init.depth_source != "prior":  # z from a network: which one
        payload["context_checkpoint"] = file_identity(cfg.model.context_checkpoint)
    if split == "train" and augmentation_on(cfg):  # the augmented rows depend on these too
        payload.update(augmentation=to_dict(cfg.augmentation), seed=cfg.train.seed)
    h.update(json.dumps(payload, sort_keys=True).encode())
    for v in prior.to_dict().values():
        h.update(np.ascontiguousarray(np.asarray(v)).tobytes())
    return h.hexdigest()[:16]


def file_identity(path) -> str:
    """Path, size and modification time of a file (or the path alone when it does not exist)."""
    if path is None:
        return "none"
    p = Path(path)
    if not p.exists():
        return str(p)
    st = p.stat()
    return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"


HK_FIELDS = ("weights", "means", "variances", "root_depth", "root_depth_source", "missing")


def _read_hk_cache(cache: Path, n: int) -> PoseGMM | None:
    """A cached H_K (tensors only, read with weights_only=True), or None when it is unreadable or does not
    fit; a bad cache is deleted (and refitted by the caller) with a warning, never trusted."""
    try:
        d = safe_torch_load(cache, "cpu", what="H_K cache")  # its messages never advise unsafe loading
        if not isinstance(d, dict) or set(d) != set(HK_FIELDS):
            raise ValueError(f"expected the keys {HK_FIELDS}")
        gmm = PoseGMM(**d)
        if len(gmm.weights) != n:
            raise ValueError(f"expected {n} rows, found {len(gmm.weights)}")
        check_gmm(gmm, f"H_K cache {cache}")
        return gmm
    except Exception as err:  # noqa: BLE001 - any failure means: refit
        log.warning("H_K cache %s is unusable (%s: %s); deleting it and refitting", cache, type(err).__name__, err)
        cache.unlink(missing_ok=True)
        return None


def build_hk(det: Detections2D, intrinsics: np.ndarray, prior: DepthPrior, init: InitConfig, *, seed: int,
             device: torch.device | str = "cpu", cache: Path | None = None, progress: bool = False,
             depth: tuple[np.ndarray, np.ndarray] | None = None) -> PoseGMM:
    """H_K for every row, fitted with the batched EM (chunks of init.chunk_size frames).

    `cache` (a .pt path): reuse a previous fit of the same inputs; written atomically after fitting.
    `depth`: per-row (z_mean, z_std), each (N,17) metres, replacing the depth prior's z (init.depth_source
    'context'); the cache file name then carries a digest of them.
    """
    n = len(det)
    if depth is not None and cache is not None:
        h = hashlib.sha256()
        for a in depth:
            h.update(np.ascontiguousarray(np.asarray(a, np.float64)).tobytes())
        cache = cache.with_name(f"{cache.stem}_z{h.hexdigest()[:12]}{cache.suffix}")
    if cache is not None and cache.exists():
        gmm = _read_hk_cache(cache, n)
        if gmm is not None:
            return gmm.to(device)
    t0 = time.perf_counter()
    gen = torch.Generator(device=torch.device(device)).manual_seed(int(init.seed) * 10 + seed)
    parts = []
    step = max(init.chunk_size * 8, 1)
    for s in progress_bar(range(0, n, step), desc="H_K (batched EM)", unit="chunk", enabled=progress, leave=False):
        sl = slice(s, min(s + step, n))
        zm, zs = (None, None) if depth is None else (depth[0][sl], depth[1][sl])
        parts.append(build_pose_gmm(det.modes[sl], intrinsics[sl], prior, confidence=det.confidence[sl],
                                    occluded=det.occluded[sl], config=init, generator=gen, device=device,
                                    z_mean=zm, z_std=zs))
    gmm = concat_gmms(parts)
    check_gmm(gmm, "H_K")
    log.info("H_K for %d frames in %.1f s (%.2f ms/frame)", n, time.perf_counter() - t0,
             1000 * (time.perf_counter() - t0) / max(n, 1))
    if cache is not None:
        from diffpose_viz.checkpoint import atomic_torch_save

        try:
            atomic_torch_save({k: getattr(gmm, k) for k in HK_FIELDS}, cache)
        except OSError as err:  # a cache only saves time: a read-only checkpoint folder must not stop the run
            log.warning("H_K cache not written (%s); it will be refitted next time", err)
    return gmm


def concat_gmms(parts: list[PoseGMM]) -> PoseGMM:
    def cat(name):
        vals = [getattr(p, name) for p in parts]
        return None if any(v is None for v in vals) else torch.cat(vals)

    return PoseGMM(*(cat(name) for name in HK_FIELDS))


def check_gmm(gmm: PoseGMM, what: str) -> None:
    """A fitted mixture with NaN/inf or non-positive variances is an error, never silently used."""
    for name in ("weights", "means", "variances"):
        t = getattr(gmm, name)
        bad = ~torch.isfinite(t)
        if bad.any():
            rows = torch.nonzero(bad.reshape(len(t), -1).any(1)).flatten()[:5].tolist()
            raise InputError(f"{what}: fitted mixture {name} has NaN/inf values (rows {rows}); check the 2D "
                             f"input and the init settings")
    if (gmm.variances <= 0).any():
        raise InputError(f"{what}: fitted mixture has non-positive variances")
