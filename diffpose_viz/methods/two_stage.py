"""DiffPose as the paper runs it (frame setting): a pre-trained, frozen context encoder phi_ST.

Paper (Gong et al., CVPR 2023, Sec. 4, implementation details): "The Context Encoder phi_ST is pre-trained
on the training set to predict (x, y, z), then frozen during diffusion model training; we use it to produce
features f_ST and also to initialize the z distribution."

Here:
- stage 1 is the `lifter` method (a GraFormer lifter trained with an MPJPE loss);
- stage 2 (`diffpose`) loads that lifter from `model.context_checkpoint`, freezes it (eval mode, no
  gradients, not a registered sub-module, so it is neither in the optimiser nor in the EMA average nor in
  the trainable state dict) and trains the GraFormer denoiser only;
- f_ST = [the lifter's per-joint hidden features, its 3D prediction, the raw 2D (u, v, confidence, mask)];
- with `init.depth_source: context`, H_K's z per joint is N(phi_ST's predicted root-relative z, s_j^2), s_j
  the root-mean-square z residual of phi_ST on the VALIDATION split, separately for joints the detector
  flags occluded and the others; x, y still come from the 2D modes;
- the DiffPose checkpoint embeds phi_ST's config, EMA weights and the residual spreads under extras['context'],
  so the one file serves evaluate / sample / wild / the dashboard.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from diffpose_viz import inputs
from diffpose_viz.checkpoint import load_checkpoint, load_weights
from diffpose_viz.config import ExperimentConfig, from_dict, to_dict, validate
from diffpose_viz.diffusion import SamplingSetting, gaussian_q_sample, gmm_q_sample
from diffpose_viz.errors import CheckpointError, ConfigError
from diffpose_viz.methods.base import LoadedModel, TrainBatch, centre_frame
from diffpose_viz.methods.diffusion import DiffusionMethod
from diffpose_viz.methods.regression import Lifter
from diffpose_viz.methods.video import VideoLifter, build_video_lifter
from diffpose_viz.models import GraFormerDenoiser, GraFormerLifter, masked_2d_features, window_centre

log = logging.getLogger(__name__)

N_JOINTS = 17
#: Fewer occluded (or visible) validation samples of a joint than this: its spread is the joint's overall one.
MIN_SPREAD_SAMPLES = 20
#: Validation rows used to measure the residual spread (evenly thinned).
SPREAD_MAX_ROWS = 20000
#: Floor on the z spread (metres); the EM's reg_covar floors the fitted variances as well.
MIN_Z_STD = 1e-3


class ContextDiffusionNetwork(nn.Module):
    """Frozen phi_ST + trainable GraFormer denoiser. forward(h_t, t, cond (B,17,3)) -> x0 or eps.

    phi_st is held outside the module tree (`self.__dict__`), so `parameters()`, `state_dict()`, `train()`
    and the EMA's average never see it; `.to()` moves it along (`_apply`)."""

    def __init__(self, cfg: ExperimentConfig, phi_st: GraFormerLifter | None = None) -> None:
        super().__init__()
        m = cfg.model
        self.video = m.context == "video"
        if phi_st is None:  # shape-only stand-in (e.g. `bench` without a checkpoint): an untrained lifter
            phi_st = (build_video_lifter(cfg) if self.video else
                      GraFormerLifter(3, hidden=m.hidden, layers=m.layers, heads=m.heads, dropout=m.dropout))
        self.__dict__["phi_st"] = freeze(phi_st)
        with torch.no_grad():
            shape = (1, m.frames, N_JOINTS, 3) if self.video else (1, N_JOINTS, 3)
            probe = torch.zeros(*shape, device=next(phi_st.parameters()).device)
            feat_dim = phi_st.features(probe).shape[-1]
        self.pose_channels = (feat_dim, feat_dim + 3)  # where f_ST carries phi_ST's 3D pose
        residual = self.pose_channels if m.residual_to_context else None
        self.denoiser = GraFormerDenoiser(3, feat_dim + 3 + 4, hidden=m.hidden, layers=m.layers, heads=m.heads,
                                          dropout=m.dropout, prediction=cfg.diffusion.prediction,
                                          residual_context=residual)

    @property
    def prediction(self) -> str:
        return self.denoiser.prediction

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.phi_st._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self.phi_st.eval()  # dropout stays off in the frozen encoder
        return self

    @torch.no_grad()
    def encode(self, cond: torch.Tensor) -> torch.Tensor:
        """f_ST (B,17,H+7) = [phi_ST features, phi_ST's 3D pose, u, v, confidence, mask]."""
        frame = centre_frame(cond)
        if self.video:  # the temporal phi_ST reads the whole window; the denoiser is conditioned on its centre
            pose, feats = self.phi_st.forward_with_features(cond)
            pose, feats = window_centre(pose, cond.shape[1]), window_centre(feats, cond.shape[1])
            pose = pose - pose[:, :1]
        else:
            pose, feats = self.phi_st.forward_with_features(frame)
        return torch.cat([feats, pose.to(feats.dtype), masked_2d_features(frame).to(feats.dtype)], -1)

    def forward(self, h_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, encoded: bool = False) -> torch.Tensor:
        """`encoded`: cond is already f_ST = encode(2D) (the trainer computes it once per row: phi_ST is frozen)."""
        return self.denoiser(h_t, t, cond if encoded else self.encode(cond))


def freeze(net: nn.Module) -> nn.Module:
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


# --------------------------------------------------------------------------- phi_ST from a lifter checkpoint


def expected_normaliser() -> dict:
    return {"2d": inputs.NORMALISER["2d"], "version": inputs.NORMALISER["version"]}


#: What a frozen stage-1 lifter is to the model that embeds it, by the config key that names its checkpoint.
STAGE1_ROLES = {"model.context_checkpoint": "the pre-trained context encoder phi_ST",
                "official.lifter_checkpoint": "the initial-pose lifter"}


def frozen_lifter(payload: dict, where: str, video: bool = False, frames: int | None = None, *,
                  key: str = "model.context_checkpoint", normaliser_recorded: bool = True) -> nn.Module:
    """The one restore of a frozen stage-1 lifter embedded in a checkpoint (DiffPose's phi_ST, the official
    mode's initial-pose lifter): check its parts (method, config, normaliser, weights) and build it, a frame
    'lifter' for the frame setting, a 'video_lifter' of the same window length for the video setting.
    `normaliser_recorded` False: the payload holds no normaliser (the official frame mode's holds the lifter's
    config and weights only)."""
    want = VideoLifter.name if video else Lifter.name
    setting = "video" if video else "frame"
    found = payload.get("method") or (payload.get("config") or {}).get("method")
    if found != want:
        raise CheckpointError(f"{where}: {key} must be a '{want}' checkpoint ({STAGE1_ROLES[key]} of the {setting} "
                              f"setting; train method '{want}' first), found '{found}'")
    try:
        lcfg = from_dict(ExperimentConfig, payload["config"], source=f"{where} (embedded {want} config)")
        validate(lcfg, f"{where} (embedded {want} config)")
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{where}: the embedded {want}'s config does not fit this version: {err}") from None
    if lcfg.model.context != setting:
        raise CheckpointError(f"{where}: expected a {setting}-context lifter for this {setting} model, found "
                              f"model.context {lcfg.model.context!r}")
    if video and frames is not None and lcfg.model.frames != frames:
        raise CheckpointError(f"{where}: the temporal {want} reads {lcfg.model.frames}-frame windows, this model "
                              f"model.frames {frames}")
    if normaliser_recorded:
        norm = payload.get("normaliser") or {}
        expected = expected_normaliser()
        if {k: norm.get(k) for k in expected} != expected:
            raise CheckpointError(f"{where}: the {want} was trained on another 2D normalisation; expected "
                                  f"{expected}, found {({k: norm.get(k) for k in expected})}")
    weights = payload["weights"]
    for name, w in weights.items():
        if name.endswith("adjacency.weight") and tuple(w.shape) != (N_JOINTS, N_JOINTS):
            raise CheckpointError(f"{where}: expected a {N_JOINTS}-joint (H36M-17) lifter, found a "
                                  f"{w.shape[0]}-joint one ({name} {tuple(w.shape)})")
    net = (VideoLifter() if video else Lifter()).build_network(lcfg)
    load_weights(net, weights, f"{want} (EMA)", where)
    return freeze(net.net)


def load_context_payload(path, *, method: str = "diffpose", key: str = "model.context_checkpoint") -> dict:
    """What a DiffPose checkpoint embeds of phi_ST: the lifter's method, config, normaliser and EMA weights."""
    if path is None:
        raise CheckpointError(f"method '{method}' needs {key}: a trained 'lifter' checkpoint (frame setting) or "
                              "'video_lifter' checkpoint (video setting); stage 1, train it first")
    ckpt = load_checkpoint(path)
    ema = ckpt.get("ema") or {}
    return {"method": ckpt.get("method"), "config": ckpt["config"], "normaliser": ckpt.get("normaliser"),
            "weights": ema.get("module", ckpt.get("model")), "source": str(path)}


@torch.no_grad()
def predict_z(phi_st: nn.Module, cond: torch.Tensor, batch: int = 4096, windows: torch.Tensor | None = None) -> np.ndarray:
    """phi_ST's root-relative z (N,17) metres for screen-normalised 2D (N,17,3); with `windows` (N,T) (a temporal
    phi_ST) the z of each window's centre frame, the windows indexing into cond."""
    device = next(phi_st.parameters()).device
    rows = len(cond) if windows is None else len(windows)
    out = []
    for s in range(0, rows, batch):
        x = cond[s:s + batch] if windows is None else cond[windows[s:s + batch]]
        pose = phi_st(x.to(device).float())
        if windows is not None:
            pose = window_centre(pose, windows.shape[1])
            pose = pose - pose[:, :1]
        out.append(pose[..., 2].double().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, N_JOINTS))


def residual_spread(cfg: ExperimentConfig, method, phi_st: nn.Module, lifter_cfg: dict | None = None) -> dict:
    """Per-joint RMS of phi_ST's z residual on the VALIDATION split (never test), for joints flagged occluded
    by the 2D input and for the others. A joint with fewer than MIN_SPREAD_SAMPLES in a group gets its
    overall spread for that group."""
    if lifter_cfg is not None:
        same = (lifter_cfg.get("data") == to_dict(cfg.data)
                and lifter_cfg.get("train", {}).get("seed") == cfg.train.seed)
        if not same:
            log.warning("model.context_checkpoint: the lifter was trained with other data settings or seed; its "
                        "training rows may overlap this run's validation rows, which would understate its spread")
    splits = inputs.load_splits(cfg.data, cfg.train.seed)
    val = inputs.scored_rows(splits.val, SPREAD_MAX_ROWS, cfg, method)  # video: the windows' frames stay
    if len(val.scored) == 0:
        raise ConfigError("init.depth_source 'context' needs validation rows to measure phi_ST's z spread "
                          "(data.validation_fraction > 0)")
    # keypoints, confidence, occlusion only
    feed = inputs.build_feed(val.poses, cfg, "val", method, windows=val.windows, need_modes=False)
    scored = torch.as_tensor(val.scored)
    if feed.windows is None:
        z = predict_z(phi_st, feed.cond[scored])
    else:
        z = predict_z(phi_st, feed.cond, windows=feed.windows.cpu()[scored])
    err2 = (z - val.poses.pose3d[val.scored][..., 2].astype(np.float64)) ** 2  # (N,17)
    occ = np.asarray(feed.det.occluded, bool)[val.scored]
    overall = np.sqrt(err2.mean(0))
    out: dict[str, Any] = {"split": "validation", "rows": len(val.scored)}
    for name, mask in (("visible", ~occ), ("occluded", occ)):
        n = mask.sum(0)
        rms = np.sqrt((err2 * mask).sum(0) / np.maximum(n, 1))
        rms = np.where(n >= MIN_SPREAD_SAMPLES, rms, overall)
        out[f"std_{name}"] = torch.as_tensor(np.maximum(rms, MIN_Z_STD), dtype=torch.float64)
        out[f"n_{name}"] = torch.as_tensor(n, dtype=torch.int64)
    log.info("phi_ST z residual (validation, %d rows): RMS %.1f mm visible, %.1f mm occluded", len(val.scored),
             1000 * float(out["std_visible"][1:].mean()), 1000 * float(out["std_occluded"][1:].mean()))
    return out


# --------------------------------------------------------------------------- the method


class TwoStageDiffPose(DiffusionMethod):
    name = "diffpose"
    summary = ("the paper: frozen pre-trained context encoder phi_ST (a lifter) gives f_ST and H_K's z; "
               "GMM forward diffusion, N hypotheses")
    needs_depth_prior = True  # Z_root from the 2D scale; z too with init.depth_source 'prior'
    hk_at_training = True
    hk_at_test = True
    lifter_checkpoint_key = "model.context_checkpoint"
    ignores = ("official", "model.context_dim", "model.context_hidden", "model.context_layers",
               "model.context_raw_2d", "model.released", "sampling.official_steps")

    def check(self, cfg: ExperimentConfig, source: str) -> None:
        super().check(cfg, source)
        if cfg.diffusion.forward == "gaussian" and cfg.sampling.start_from == "hk" and cfg.init.depth_source != "prior":
            raise ConfigError(f"{source}: init.depth_source: a Gaussian forward process does not use H_K's z")

    def uses_windows(self, cfg: ExperimentConfig) -> bool:
        return cfg.model.context == "video"

    def stage1(self, cfg: ExperimentConfig) -> str | None:
        return VideoLifter.name if cfg.model.context == "video" else Lifter.name

    def build_network(self, cfg: ExperimentConfig) -> nn.Module:
        """The network with an untrained stand-in encoder (shapes and timing only); training and load_model
        use `network`, which puts the frozen pre-trained phi_ST in."""
        return ContextDiffusionNetwork(cfg)

    def network(self, cfg: ExperimentConfig, extras: dict[str, Any]) -> nn.Module:
        return ContextDiffusionNetwork(cfg, extras["phi_st"])

    def training_extras(self, cfg: ExperimentConfig) -> dict[str, Any]:
        payload = load_context_payload(cfg.model.context_checkpoint)
        video = cfg.model.context == "video"
        phi = frozen_lifter(payload, str(cfg.model.context_checkpoint), video, cfg.model.frames)
        payload["z_residual"] = residual_spread(cfg, self, phi, payload["config"])
        return {"context": payload}

    def restore_extras(self, cfg: ExperimentConfig, payload: dict[str, Any], where: str,
                       device: torch.device) -> dict[str, Any]:
        ctx = payload.get("context") if payload else None
        if ctx is None:
            raise CheckpointError(f"{where}: a 'diffpose' checkpoint must embed its context encoder phi_ST "
                                  f"(extras['context']); found none (a jointly trained model is 'diffpose_joint')")
        source = f"{where} (embedded context encoder from {ctx.get('source')})"
        phi = frozen_lifter(ctx, source, cfg.model.context == "video", cfg.model.frames)
        return {"phi_st": phi.to(device), "z_residual": ctx.get("z_residual")}

    def hk_depth(self, cfg: ExperimentConfig, extras: dict[str, Any], cond: torch.Tensor,
                 occluded: np.ndarray, windows: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        if cfg.init.depth_source != "context":
            return None
        spread = extras.get("z_residual")
        if spread is None:
            raise CheckpointError("init.depth_source 'context': the checkpoint holds no phi_ST residual spread")
        z_mean = predict_z(extras["phi_st"], torch.as_tensor(cond), windows=windows)
        occ = np.asarray(occluded, bool)
        z_std = np.where(occ, spread["std_occluded"].numpy()[None], spread["std_visible"].numpy()[None])
        return z_mean, z_std

    @torch.no_grad()
    def frozen_context(self, net: nn.Module, cond: torch.Tensor, windows: torch.Tensor | None,
                       batch: int = 1024) -> torch.Tensor:
        """f_ST of every training row, once: phi_ST is frozen and deterministic (eval mode), so encoding each row
        once instead of in every step of every epoch gives the training step the same input up to float rounding
        (a matrix product rounds a row by its position in the batch). Chunks of `batch` rows (the training batch;
        the last one padded with repeated rows) keep the kernels the step would use."""
        n, parts = len(cond), []
        for s in range(0, n, batch):
            idx = torch.arange(s, s + batch, device=cond.device).clamp_max(n - 1)
            parts.append(net.encode(cond[idx] if windows is None else cond[windows[idx]]).float()[:min(batch, n - s)])
        return torch.cat(parts) if parts else cond.new_zeros((0, N_JOINTS, 0))

    def start_state(self, model: LoadedModel, context: torch.Tensor,
                    setting: SamplingSetting) -> torch.Tensor | None:
        """start_from 'context': phi_ST's pose (the f_ST pose channels), as the official code starts its chain
        from its lifter's estimate; 'hk': a draw from H_K (the paper)."""
        if setting.start_from == "hk":
            return None
        a, b = model.network.pose_channels
        return context[..., a:b]

    def forward_sample(self, batch: TrainBatch, t: torch.Tensor):
        if batch.cfg.diffusion.forward == "gaussian":
            return gaussian_q_sample(batch.x0, t, batch.schedule, batch.noise_gen,
                                     scale=batch.cfg.diffusion.gaussian_scale)
        g = batch.gmm
        return gmm_q_sample(batch.x0, t, g.weights, g.means, g.variances, batch.schedule, batch.noise_gen)

    def sampler_facts(self, cfg: ExperimentConfig) -> dict[str, Any]:
        return {**super().sampler_facts(cfg), "mode": "gaussian" if cfg.diffusion.forward == "gaussian" else "gmm"}
