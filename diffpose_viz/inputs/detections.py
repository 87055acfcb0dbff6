"""The 2D input of every row (simulated detections, the ground-truth projection or a 2D file), its screen
normalisation for the network, the rows' intrinsics and the default camera of an uncalibrated image.

Model inputs (docs/ARCHITECTURE.md): the 2D pose is screen-normalised per row, u = 2x/w - 1,
v = 2y/w - h/w, carried as (u, v, confidence) with missing joints zeroed and confidence 0; the 3D state
is camera-frame, root-relative metres (no further scaling).
"""
from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import torch

from diffpose_viz.camera import Camera
from diffpose_viz.config import ExperimentConfig
from diffpose_viz.datasets.files_2d import Detections2DFromFile, attach_2d
from diffpose_viz.datasets.poses import PoseSet
from diffpose_viz.detector_sim import Detections2D, simulate_from_poseset
from diffpose_viz.errors import InputError
from diffpose_viz.initialization.detection_error import DetectionErrorModel, fit_from_attached
from diffpose_viz.initialization.pose_init import intrinsics_from_camera, modes_from_keypoints
from diffpose_viz.inputs.splits import SPLIT_SEEDS, _load_mocap, augment_split, augmentation_on

log = logging.getLogger(__name__)


#: Default focal length for an uncalibrated image, as a multiple of its larger side (~45 deg FOV).
DEFAULT_FOCAL_FACTOR = 1.2


NORMALISER = {"2d": "screen: u = 2x/w - 1, v = 2y/w - h/w, per row (w, h) = image size; channels (u, v, conf)",
              "3d": "camera-frame root-relative metres, unscaled", "version": 1}


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
    detector = detector_config(cfg, split)
    return simulate_from_poseset(poses, detector, focal_px=focal_px)


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


def training_2d(train: PoseSet, cfg: ExperimentConfig, max_rows: int, error_model=None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(keypoints (N,17,2) px, confidence (N,17)) of evenly thinned training rows, as the model was trained on
    them: drawn with the config's body/view augmentation and the trainer's seed when augmentation is on."""
    rows = train.thin(max_rows)
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
