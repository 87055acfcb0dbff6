"""The released DiffPose code's behaviour, for comparison with the paper's method.

The state is 17 x 5 (u, v, x, y, z); per-channel noise without a mu_G shift (u, v scaled by
`official.uv_noise_scale`); the official linear schedule (beta 1e-4 -> 1e-3 over 51 steps); a
deterministic DDIM from a pretrained lifter's pose over `sampling.official_steps` steps; one hypothesis.
Source: the official repository github.com/GONGJIA0208/Diffpose, runners/diffpose_frame.py and
configs/human36m_diffpose_uvxyz_cpn.yml. The video mode (`model.context: video`) takes the released video
runner's start: a temporal lifter's flip-averaged centre-frame pose (here a `video_lifter`; the released code
uses MixSTE-243), refined by the same frame denoiser on the centre frame over `sampling.official_steps`
deterministic steps. The released video denoiser itself is temporal and runs one step; that is not reproduced.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from diffpose_viz.checkpoint import load_checkpoint, load_weights
from diffpose_viz.config import ExperimentConfig
from diffpose_viz.diffusion import (
    NoiseSchedule,
    SamplingSetting,
    antithetic_timesteps,
    official_q_sample,
    run_chain,
    x0_from_eps,
)
from diffpose_viz.errors import CheckpointError
from diffpose_viz.inputs.feed import FeedBatch
from diffpose_viz.methods.base import (
    LoadedModel,
    Method,
    Prediction,
    TrainBatch,
    centre_frame,
    prediction_from_result,
)
from diffpose_viz.methods.regression import Lifter
from diffpose_viz.methods.two_stage import frozen_lifter, load_context_payload
from diffpose_viz.methods.video import VideoLifter
from diffpose_viz.models import OfficialDenoiser
from diffpose_viz.models.flip import CentreFramePose


class OfficialNetwork(nn.Module):
    """The released code's GCNdiff on the 17x5 uvxyz state: forward(x_t, t) -> scaled-noise estimate."""

    prediction = "eps"

    def __init__(self, cfg: ExperimentConfig) -> None:
        super().__init__()
        m = cfg.model
        self.denoiser = OfficialDenoiser(5, hidden=m.hidden, layers=m.layers, heads=m.heads, dropout=m.dropout,
                                         released=m.released)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, context=None) -> torch.Tensor:
        return self.denoiser(x_t, t)


class Official(Method):
    name = "official"
    summary = "the released code: 17x5 uvxyz state, lifter init, deterministic DDIM, one hypothesis"
    lifter_checkpoint_key = "official.lifter_checkpoint"
    has_trajectory = True
    sampler_name = "released"
    ignores = ("init", "diffusion.schedule", "sampling.n_hypotheses", "sampling.n_steps", "sampling.start_t",
               "sampling.start_from", "sampling.clip_x0", "diffusion.prediction", "diffusion.loss")

    def uses_windows(self, cfg: ExperimentConfig) -> bool:
        return cfg.model.context == "video"  # the window feeds the temporal lifter; the denoiser sees its centre

    def stage1(self, cfg: ExperimentConfig) -> str | None:
        return VideoLifter.name if cfg.model.context == "video" else Lifter.name

    def resolve(self, cfg: ExperimentConfig, setting: SamplingSetting) -> SamplingSetting:
        return replace(setting, n_hypotheses=1, n_steps=setting.official_steps)

    def build_network(self, cfg: ExperimentConfig) -> nn.Module:
        return OfficialNetwork(cfg)

    def build_schedule(self, cfg: ExperimentConfig, device: torch.device | str = "cpu") -> NoiseSchedule:
        return NoiseSchedule.official(device=device)

    def sampler_facts(self, cfg: ExperimentConfig) -> dict[str, Any]:
        return {"official_span": cfg.official.test_num_diffusion_timesteps}

    # ------------------------------------------------------------------ the initial-pose lifter
    def training_extras(self, cfg: ExperimentConfig) -> dict[str, Any]:
        if cfg.model.context != "video":
            return {"lifter": load_lifter_payload(cfg.official.lifter_checkpoint)}
        path = cfg.official.lifter_checkpoint
        payload = load_context_payload(path, method=self.name, key=self.lifter_checkpoint_key)
        frozen_lifter(payload, str(path), True, cfg.model.frames, key=self.lifter_checkpoint_key)  # refuse early
        return {"lifter": payload}

    def restore_extras(self, cfg: ExperimentConfig, payload: dict[str, Any], where: str,
                       device: torch.device) -> dict[str, Any]:
        video = cfg.model.context == "video"
        if payload.get("lifter") is None:
            raise CheckpointError(f"{where}: official-mode checkpoint has no embedded {'temporal ' if video else ''}"
                                  "lifter")
        # a frame lifter's payload (load_lifter_payload) records no normaliser
        net = frozen_lifter(payload["lifter"], where, video, cfg.model.frames, key=self.lifter_checkpoint_key,
                            normaliser_recorded=video)
        return {"lifter": (CentreFramePose(net) if video else net).to(device).eval()}

    # ------------------------------------------------------------------ train / predict
    def loss(self, model: nn.Module, batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, x0, schedule = batch.cfg, batch.x0, batch.schedule
        B = len(x0)
        t = antithetic_timesteps(B, schedule.num_steps, batch.noise_gen, x0.device)
        abar = schedule.alpha_bar(t).view(B, 1, 1)
        state = torch.cat([centre_frame(batch.cond)[..., :2], x0], -1)
        scale = torch.tensor([cfg.official.uv_noise_scale] * 2 + [1.0] * 3, device=x0.device)
        x_t, e = official_q_sample(state, t, scale, schedule, batch.noise_gen)
        out = model(x_t, t)
        loss = ((out - e) ** 2).sum((1, 2)).mean()
        xyz = x0_from_eps(x_t, out.detach(), abar)[..., 2:]
        xyz = xyz - xyz[:, :1]
        return loss, torch.linalg.vector_norm(xyz - x0, dim=-1).mean() * 1000

    def predict(self, model: LoadedModel, batch: FeedBatch, setting: SamplingSetting) -> Prediction:
        cond = batch.cond
        centre = centre_frame(cond)
        # a frame lifter reads the centre frame, a temporal one the whole window
        xyz = model.extras["lifter"](cond if self.uses_windows(model.cfg) else centre)
        x_init = torch.cat([centre[..., :2], xyz], -1)
        # one tile: the released code denoises the whole batch at once
        res = run_chain(self.sampler(model, setting), model.network.denoiser, None, 1, start_from=x_init,
                        generator=batch.generator, record="all" if setting.record else "none", chunk_frames=None)
        return prediction_from_result(res, channels=slice(2, 5))


def load_lifter_payload(path) -> dict:
    """The payload embedded into an official-mode checkpoint: the lifter's config + EMA weights."""
    if path is None:
        raise CheckpointError("method 'official' needs official.lifter_checkpoint (a trained 'lifter' checkpoint)")
    ckpt = load_checkpoint(path)
    if ckpt["method"] != Lifter.name:
        raise CheckpointError(f"{path}: official.lifter_checkpoint must be a 'lifter' checkpoint, found "
                              f"'{ckpt['method']}'")
    return {"config": ckpt["config"], "weights": ckpt["ema"]["module"], "source": str(path)}
