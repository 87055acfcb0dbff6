"""The one place that assembles a run: data -> 2D input -> H_K -> network -> hypotheses.

Everything downstream (trainer, evaluation, `sample`, the in-the-wild lifting) goes through the
functions here, so a run is built the same way for training and for every kind of inference.

Model inputs (docs/ARCHITECTURE.md): the 2D pose is screen-normalised per row,
u = 2x/w - 1, v = 2y/w - h/w, and carried as (u, v, confidence) with missing joints zeroed and
confidence 0; the 3D state is camera-frame, root-relative metres (no further scaling).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from diffpose_viz.camera import Camera
from diffpose_viz.datasets.poses import PoseSet, build_pose_set, validation_split
from diffpose_viz.datasets.vp3d import load_3d
from diffpose_viz.detector_sim import Detections2D, simulate_from_poseset
from diffpose_viz.diffusion import DDIMSampler, NoiseSchedule, SampleResult
from diffpose_viz.initialization.depth_prior import DepthPrior, depth_prior_from_dict
from diffpose_viz.initialization.pose_init import (
    InitConfig,
    PoseGMM,
    build_pose_gmm,
    fit_depth_prior,
    intrinsics_from_camera,
    modes_from_keypoints,
)
from diffpose_viz.models import (
    FrameContextEncoder,
    GraFormerDenoiser,
    GraFormerLifter,
    MartinezBaseline,
    OfficialDenoiser,
    VideoContextEncoder,
    masked_2d_features,
)
from diffpose_viz.training.config import (
    DIFFUSION_METHODS,
    REGRESSION_METHODS,
    DataConfig,
    ExperimentConfig,
    to_dict,
)

log = logging.getLogger(__name__)

#: Offsets added to the detector/H_K seeds so the splits get independent draws.
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2, "wild": 3}
#: Default focal length for an uncalibrated image, as a multiple of its larger side (~45 deg FOV).
DEFAULT_FOCAL_FACTOR = 1.2
NORMALISER = {"2d": "screen: u = 2x/w - 1, v = 2y/w - h/w, per row (w, h) = image size; channels (u, v, conf)",
              "3d": "camera-frame root-relative metres, unscaled", "version": 1}


class PipelineError(ValueError):
    """Inputs that cannot be assembled into a run (NaN, wrong shape, missing pieces)."""


# --------------------------------------------------------------------------- data


@dataclass
class Splits:
    train: PoseSet
    val: PoseSet
    test: PoseSet


def _camera_selection(cameras: list[str] | None):
    if cameras is None:
        return None
    # Short all-digit entries are list indices; H36M-style ids are long digit strings.
    return [int(c) if str(c).isdigit() and len(str(c)) <= 2 else str(c) for c in cameras]


def _thin(poses: PoseSet, max_rows: int | None) -> PoseSet:
    if max_rows is None or len(poses) <= max_rows:
        return poses
    return poses.subset(np.unique(np.linspace(0, len(poses) - 1, max_rows).round().astype(int)))


def load_poses(cfg: DataConfig, subjects: list[str]) -> PoseSet:
    path = Path(cfg.path)
    if not path.exists():
        hint = " (build it with `diffpose-viz data demo`)" if path.name == "data_3d_demo.npz" else ""
        raise FileNotFoundError(f"data.path {path} does not exist{hint}")
    mocap = load_3d(path, subjects=subjects)
    return build_pose_set(mocap, subjects, cameras=_camera_selection(cfg.cameras), frame_stride=cfg.frame_stride,
                          max_frames_per_sequence=cfg.max_frames)


def load_splits(cfg: DataConfig, seed: int = 0, *, with_test: bool = True) -> Splits:
    """Train/validation (by whole sequences) from the training subjects, test from the test subjects."""
    train_all = load_poses(cfg, list(cfg.train_subjects))
    train, val = validation_split(train_all, cfg.validation_fraction, seed=seed)
    test = _thin(load_poses(cfg, list(cfg.test_subjects)), cfg.max_test_samples) if with_test else train.subset(
        np.zeros(len(train), bool))
    return Splits(train, val, test)


# --------------------------------------------------------------------------- 2D input


def detector_config(cfg: ExperimentConfig, split: str):
    det = replace(cfg.detector, seed=cfg.detector.seed * 10 + SPLIT_SEEDS[split])
    if not cfg.data.occlusion:
        det = replace(det, self_occlusion=False, occluder_prob=0.0, truncation=False)
    return det


def make_inputs(poses: PoseSet, cfg: ExperimentConfig, split: str) -> Detections2D:
    """The 2D input of every row: simulated detections, or the ground-truth projection ('gt')."""
    if cfg.data.input_2d == "gt":
        kp = poses.pose2d.astype(np.float32)
        n = len(kp)
        modes = modes_from_keypoints(kp, cfg.data.gt_noise_std_px).astype(np.float32)
        return Detections2D(kp, np.ones((n, 17), np.float32), modes, np.zeros((n, 17), bool))
    return simulate_from_poseset(poses, detector_config(cfg, split))


def screen_input(keypoints_px: np.ndarray, confidence: np.ndarray, res: np.ndarray) -> np.ndarray:
    """(N,17,2) px, (N,17), (N,2) -> (N,17,3) float32 (u, v, confidence); missing joints -> zeros."""
    kp = np.asarray(keypoints_px, np.float64)
    conf = np.asarray(confidence, np.float64)
    res = np.broadcast_to(np.asarray(res, np.float64), (len(kp), 2))
    if kp.shape[1:] != (17, 2) or conf.shape != kp.shape[:2]:
        raise PipelineError(f"2D input: expected keypoints (N, 17, 2) px and confidence (N, 17), found "
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


def window_indices(poses: PoseSet, frames: int) -> np.ndarray:
    """(N, frames) row indices of a window centred on each row within its (subject, action, camera)
    sequence, in frame order, edge-replicated at the ends (the rows are frames at the data's stride)."""
    n = len(poses)
    key = np.char.add(np.char.add(poses.sequence_key, "|"), poses.camera.astype(str))
    order = np.lexsort((poses.frame, key))
    sorted_key = key[order]
    starts = np.r_[0, np.flatnonzero(sorted_key[1:] != sorted_key[:-1]) + 1]
    ends = np.r_[starts[1:], n]
    seq_of = np.repeat(np.arange(len(starts)), ends - starts)
    pos = np.arange(n)
    half = frames // 2
    offs = np.arange(-half, half + 1)
    lo, hi = starts[seq_of], ends[seq_of] - 1
    win_sorted = np.clip(pos[:, None] + offs[None], lo[:, None], hi[:, None])
    out = np.empty((n, frames), np.int64)
    out[order] = order[win_sorted]
    return out


# --------------------------------------------------------------------------- H_K


def fit_prior(train: PoseSet, init: InitConfig) -> DepthPrior:
    return fit_depth_prior(train.pose3d, init, root_depth=train.root[:, 2])


def _hk_key(cfg: ExperimentConfig, split: str, n: int, prior: DepthPrior) -> str:
    h = hashlib.sha256()
    payload = {"data": to_dict(cfg.data), "detector": to_dict(cfg.detector), "init": to_dict(cfg.init), "split": split,
               "n": n}
    h.update(json.dumps(payload, sort_keys=True).encode())
    for v in prior.to_dict().values():
        h.update(np.ascontiguousarray(np.asarray(v)).tobytes())
    return h.hexdigest()[:16]


def build_hk(det: Detections2D, intrinsics: np.ndarray, prior: DepthPrior, init: InitConfig, *, seed: int,
             device: torch.device | str = "cpu", cache: Path | None = None, progress: bool = False) -> PoseGMM:
    """H_K for every row, fitted with the batched EM (chunks of init.chunk_size frames).

    `cache` (a .pt path): reuse a previous fit of the same inputs; written atomically after fitting.
    """
    if cache is not None and cache.exists():
        d = torch.load(cache, map_location="cpu", weights_only=False)
        return PoseGMM(**{k: (None if v is None else v) for k, v in d.items()}).to(device)
    t0 = time.perf_counter()
    gen = torch.Generator(device=torch.device(device)).manual_seed(int(init.seed) * 10 + seed)
    n = len(det)
    parts = []
    step = max(init.chunk_size * 8, 1)
    it = range(0, n, step)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="H_K (batched EM)", unit="chunk", total=-(-n // step), leave=False)
    for s in it:
        sl = slice(s, min(s + step, n))
        parts.append(build_pose_gmm(det.modes[sl], intrinsics[sl], prior, confidence=det.confidence[sl],
                                    occluded=det.occluded[sl], config=init, generator=gen, device=device))
    gmm = concat_gmms(parts)
    check_gmm(gmm, "H_K")
    log.info("H_K for %d frames in %.1f s (%.2f ms/frame)", n, time.perf_counter() - t0,
             1000 * (time.perf_counter() - t0) / max(n, 1))
    if cache is not None:
        from diffpose_viz.training.checkpoint import atomic_torch_save
        atomic_torch_save({k: getattr(gmm, k) for k in ("weights", "means", "variances", "root_depth",
                                                         "root_depth_source", "missing")}, cache)
    return gmm


def concat_gmms(parts: list[PoseGMM]) -> PoseGMM:
    def cat(name):
        vals = [getattr(p, name) for p in parts]
        return None if any(v is None for v in vals) else torch.cat(vals)

    return PoseGMM(cat("weights"), cat("means"), cat("variances"), cat("root_depth"), cat("root_depth_source"),
                   cat("missing"))


def check_gmm(gmm: PoseGMM, what: str) -> None:
    """A fitted mixture with NaN/inf or non-positive variances is an error, never silently used."""
    for name in ("weights", "means", "variances"):
        t = getattr(gmm, name)
        bad = ~torch.isfinite(t)
        if bad.any():
            rows = torch.nonzero(bad.reshape(len(t), -1).any(1)).flatten()[:5].tolist()
            raise PipelineError(f"{what}: fitted mixture {name} has NaN/inf values (rows {rows}); check the 2D "
                                f"input and the init settings")
    if (gmm.variances <= 0).any():
        raise PipelineError(f"{what}: fitted mixture has non-positive variances")


def check_finite(name: str, arr) -> None:
    a = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
    if not np.isfinite(a).all():
        rows = np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(1))[:5].tolist()
        raise PipelineError(f"{name}: {int((~np.isfinite(a)).sum())} NaN/inf values (rows {rows})")


# --------------------------------------------------------------------------- networks


class DiffusionNetwork(nn.Module):
    """Context encoder phi_ST + GraFormer denoiser. forward(h_t, t, cond) -> x0 or eps (per .prediction)."""

    def __init__(self, cfg: ExperimentConfig) -> None:
        super().__init__()
        m = cfg.model
        if m.context == "video":
            self.encoder = VideoContextEncoder(m.frames, m.context_dim, embed_dim=m.context_hidden,
                                               depth=m.context_layers, heads=m.heads, dropout=min(m.dropout, 0.1))
        else:
            self.encoder = FrameContextEncoder(m.context_dim, hidden=m.context_hidden, layers=m.context_layers,
                                               heads=m.heads, dropout=min(m.dropout, 0.1))
        self.raw_2d = m.context_raw_2d
        self.denoiser = GraFormerDenoiser(3, m.context_dim + (4 if self.raw_2d else 0), hidden=m.hidden,
                                          layers=m.layers, heads=m.heads, dropout=m.dropout,
                                          prediction=cfg.diffusion.prediction)

    @property
    def prediction(self) -> str:
        return self.denoiser.prediction

    def encode(self, cond: torch.Tensor) -> torch.Tensor:
        """(B,17,C) per-joint context; with model.context_raw_2d the (centre frame's) [u, v, confidence,
        mask] are appended, so the denoiser sees the 2D evidence itself and not only learnt features."""
        features = self.encoder(cond)
        if not self.raw_2d:
            return features
        frame = cond if cond.ndim == 3 else cond[:, cond.shape[1] // 2]
        return torch.cat([features, masked_2d_features(frame)], -1)

    def forward(self, h_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.denoiser(h_t, t, self.encode(cond))


class RegressionNetwork(nn.Module):
    """A deterministic 2D -> 3D lifter (GraFormer or Martinez): forward(cond (B,17,3)) -> (B,17,3)."""

    def __init__(self, cfg: ExperimentConfig) -> None:
        super().__init__()
        m = cfg.model
        if cfg.method == "martinez":
            self.net = MartinezBaseline(m.martinez_hidden, m.martinez_blocks, dropout=0.5 if m.dropout > 0 else 0.0,
                                        in_dim=3)
        else:
            self.net = GraFormerLifter(3, hidden=m.hidden, layers=m.layers, heads=m.heads, dropout=m.dropout)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.net(cond)


class OfficialNetwork(nn.Module):
    """The released code's GCNdiff on the 17x5 uvxyz state: forward(x_t, t) -> scaled-noise estimate."""

    prediction = "eps"

    def __init__(self, cfg: ExperimentConfig) -> None:
        super().__init__()
        m = cfg.model
        self.denoiser = OfficialDenoiser(5, hidden=m.hidden, layers=m.layers, heads=m.heads, dropout=m.dropout)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, context=None) -> torch.Tensor:
        return self.denoiser(x_t, t)


def build_network(cfg: ExperimentConfig) -> nn.Module | None:
    """The trainable network of a method (None for init_only)."""
    if cfg.method in DIFFUSION_METHODS:
        return DiffusionNetwork(cfg)
    if cfg.method in REGRESSION_METHODS:
        return RegressionNetwork(cfg)
    if cfg.method == "official":
        return OfficialNetwork(cfg)
    return None


def build_schedule(cfg: ExperimentConfig, device: torch.device | str = "cpu") -> NoiseSchedule:
    if cfg.method == "official":
        return NoiseSchedule.official(device=device)
    return NoiseSchedule.from_config(cfg.diffusion.schedule, device=device)


def build_sampler(cfg: ExperimentConfig, schedule: NoiseSchedule) -> DDIMSampler:
    d = cfg.diffusion
    mode = "gaussian" if cfg.method == "gaussian_diffusion" else "gmm"
    return DDIMSampler(schedule, eta=d.eta, mode=mode, gaussian_scale=d.gaussian_scale, skip=d.skip,
                       clip_x0=d.clip_x0 if cfg.method != "official" else None)


# --------------------------------------------------------------------------- a loaded model


@dataclass
class LoadedModel:
    """Everything inference needs, restored from one checkpoint."""

    cfg: ExperimentConfig
    network: nn.Module | None  # the EMA weights, eval mode
    prior: DepthPrior | None
    lifter: nn.Module | None  # official mode: the deterministic initial-pose lifter
    device: torch.device
    path: str = ""

    @property
    def method(self) -> str:
        return self.cfg.method

    @property
    def needs_hk(self) -> bool:
        return self.cfg.method in ("diffpose", "init_only")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Restore a checkpoint written by the trainer (EMA weights are the ones used)."""
    from diffpose_viz.training.checkpoint import CheckpointError, load_checkpoint, load_weights
    from diffpose_viz.training.config import config_from_dict

    ckpt = load_checkpoint(path)
    try:
        cfg = config_from_dict(ckpt["config"], source=f"{path} (embedded config)")
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: its embedded config does not fit this diffpose_viz version: {err}") from None
    device = torch.device(device)
    net = build_network(cfg)
    if net is not None:
        state = ckpt.get("ema") or {}
        load_weights(net, state.get("module", ckpt["model"]), "EMA", path)
        net = net.to(device).eval()
    prior = depth_prior_from_dict(ckpt["depth_prior"]) if ckpt.get("depth_prior") is not None else None
    lifter = None
    if cfg.method == "official":
        lifter = lifter_from_payload(ckpt.get("lifter"), str(path)).to(device).eval()
    return LoadedModel(cfg, net, prior, lifter, device, str(path))


def lifter_from_payload(payload: dict | None, where: str) -> nn.Module:
    from diffpose_viz.training.checkpoint import CheckpointError, load_weights
    from diffpose_viz.training.config import config_from_dict

    if payload is None:
        raise CheckpointError(f"{where}: official-mode checkpoint has no embedded lifter")
    lcfg = config_from_dict(payload["config"], source=f"{where} (lifter config)")
    if lcfg.method != "lifter":
        raise CheckpointError(f"{where}: official.lifter_checkpoint must be a 'lifter' run, found '{lcfg.method}'")
    net = build_network(lcfg)
    load_weights(net, payload["weights"], "lifter", where)
    return net


def load_lifter_checkpoint(path: str | Path) -> dict:
    """The payload embedded into an official-mode checkpoint: the lifter's config + EMA weights."""
    from diffpose_viz.training.checkpoint import CheckpointError, load_checkpoint

    if path is None:
        raise CheckpointError("method 'official' needs official.lifter_checkpoint (a trained 'lifter' checkpoint)")
    ckpt = load_checkpoint(path)
    if ckpt["method"] != "lifter":
        raise CheckpointError(f"{path}: official.lifter_checkpoint must be a 'lifter' checkpoint, found "
                              f"'{ckpt['method']}'")
    return {"config": ckpt["config"], "weights": ckpt["ema"]["module"], "source": str(path)}


# --------------------------------------------------------------------------- inference


@dataclass
class Prediction:
    hypotheses: np.ndarray  # (B,N,17,3) metres
    trajectory: np.ndarray | None  # (B,N,S,17,3)
    x0_trajectory: np.ndarray | None
    timesteps: list[int] | None
    pred: np.ndarray | None = None  # (B,17,3) when the method defines its output otherwise than P-Agg


def gather_cond(cond_all: torch.Tensor, idx: torch.Tensor, windows: torch.Tensor | None) -> torch.Tensor:
    """The network's 2D input for rows idx: (B,17,3), or (B,T,17,3) windows for video context."""
    if windows is None:
        return cond_all[idx]
    return cond_all[windows[idx]]


@torch.no_grad()
def predict(model: LoadedModel, cond: torch.Tensor, gmm: PoseGMM | None, *, n_hypotheses: int, n_steps: int,
            record: bool = False, generator: torch.Generator | None = None,
            lifter_init: torch.Tensor | None = None, amp: str | None = None) -> Prediction:
    """Hypotheses for one batch of frames. cond: (B,17,3) or (B,T,17,3) on model.device.

    amp='bf16': the networks run under torch.autocast in bfloat16 (GPU, or CPUs with bf16 instructions);
    the diffusion state and the DDIM arithmetic stay float32."""
    with autocast(model.device, amp):
        return _predict(model, cond, gmm, n_hypotheses=n_hypotheses, n_steps=n_steps, record=record,
                        generator=generator, lifter_init=lifter_init)


AMP_CHOICES = ("none", "bf16")


def autocast(device: torch.device | str, amp: str | None):
    """torch.autocast context for `amp` ('bf16'), or a no-op context for None/'none'."""
    if amp not in (None, *AMP_CHOICES):
        raise ValueError(f"amp must be one of {AMP_CHOICES}, found {amp!r}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp == "bf16")


def _predict(model: LoadedModel, cond: torch.Tensor, gmm: PoseGMM | None, *, n_hypotheses: int, n_steps: int,
             record: bool, generator: torch.Generator | None, lifter_init: torch.Tensor | None) -> Prediction:
    cfg, net = model.cfg, model.network
    method = cfg.method
    centre = cond if cond.ndim == 3 else cond[:, cond.shape[1] // 2]
    if method in ("lifter", "martinez"):
        out = net(cond).float()
        return Prediction(out[:, None].cpu().numpy(), None, None, None)
    if method == "init_only":
        poses, _ = gmm.sample(n_hypotheses, generator)
        return Prediction(poses.cpu().numpy(), None, None, None, pred=gmm.mean().cpu().numpy())
    schedule = build_schedule(cfg, model.device)
    sampler = build_sampler(cfg, schedule)
    rec = "all" if record else "none"
    if method == "official":
        xyz = model.lifter(centre) if lifter_init is None else lifter_init
        x_init = torch.cat([centre[..., :2], xyz], -1)
        o = cfg.official
        res = sampler.official_sample(net.denoiser, x_init, o.test_num_diffusion_timesteps, o.test_timesteps,
                                      generator=generator, record=rec, n_hypotheses=1)
        return _from_result(res, channels=slice(2, 5))
    context = net.encode(cond)
    res = sampler.sample(net.denoiser, context, gmm, n_hypotheses, n_steps, generator=generator, record=rec)
    return _from_result(res)


def _from_result(res: SampleResult, channels: slice = slice(0, 3)) -> Prediction:
    def rc(x):  # root-centre xyz channels
        if x is None:
            return None
        x = x[..., channels]
        return (x - x[..., :1, :]).cpu().numpy()

    return Prediction(rc(res.hypotheses), rc(res.trajectory), rc(res.x0_trajectory),
                      list(res.timesteps) if res.trajectory is not None else None)


def default_camera(width: int, height: int, focal: float | None = None, center: tuple[float, float] | None = None,
                   camera_id: str = "user") -> Camera:
    """Pinhole camera for an uncalibrated image: f = 1.2 * max(w, h) px (~45 deg field of view on the long
    side) unless given, principal point at the image centre unless given, no distortion."""
    f = float(focal) if focal is not None else DEFAULT_FOCAL_FACTOR * max(width, height)
    c = tuple(map(float, center)) if center is not None else (width / 2.0, height / 2.0)
    return Camera(id=camera_id, res_w=int(width), res_h=int(height), focal=(f, f), center=c)
