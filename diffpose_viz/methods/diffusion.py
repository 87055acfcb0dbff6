"""The diffusion family: DiffPose (GMM forward from H_K, the paper) and Gaussian diffusion (N(0, s^2 I)
forward, no pose-specific initialization), sharing one network, loss and sampler."""
from __future__ import annotations

import torch
from torch import nn

from diffpose_viz.config import ExperimentConfig
from typing import Any

from diffpose_viz.diffusion import (
    NoiseSchedule,
    SamplingSetting,
    antithetic_timesteps,
    gaussian_q_sample,
    gmm_q_sample,
    run_chain,
    x0_from_eps,
)
from diffpose_viz.errors import ConfigError
from diffpose_viz.inputs.feed import FeedBatch
from diffpose_viz.methods.base import LoadedModel, Method, Prediction, TrainBatch, prediction_from_result
from diffpose_viz.models import FrameContextEncoder, GraFormerDenoiser, VideoContextEncoder, masked_2d_features


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


class DiffusionMethod(Method):
    """Shared by DiffPose and Gaussian diffusion; subclasses say how the forward process noises."""

    samples_with_ddim = True
    sampler_name = "ddim"
    has_trajectory = True
    sampler_mode = "gmm"
    ignores = ("official", "model.context_checkpoint", "diffusion.forward", "model.released", "sampling.official_steps")

    def uses_windows(self, cfg: ExperimentConfig) -> bool:
        return cfg.model.context == "video"

    def build_network(self, cfg: ExperimentConfig) -> nn.Module:
        return DiffusionNetwork(cfg)

    def build_schedule(self, cfg: ExperimentConfig, device: torch.device | str = "cpu") -> NoiseSchedule:
        return NoiseSchedule.from_config(cfg.diffusion.schedule, device=device)

    def sampler_facts(self, cfg: ExperimentConfig) -> dict[str, Any]:
        return {"mode": self.sampler_mode, "gaussian_scale": cfg.diffusion.gaussian_scale,
                "prediction": cfg.diffusion.prediction}

    def forward_sample(self, batch: TrainBatch, t: torch.Tensor):
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, x0, schedule = batch.cfg, batch.x0, batch.schedule
        B, K = len(x0), schedule.num_steps
        if cfg.diffusion.antithetic:
            t = antithetic_timesteps(B, K, batch.noise_gen, x0.device)
        else:
            t = torch.randint(0, K, (B,), generator=batch.noise_gen, device=x0.device)
        fs = self.forward_sample(batch, t)
        out = model(fs.h_t, t, batch.cond, encoded=True) if batch.encoded else model(fs.h_t, t, batch.cond)
        if cfg.diffusion.prediction == "x0":
            if cfg.diffusion.loss == "mpjpe":
                loss = torch.linalg.vector_norm((out - x0)[:, 1:], dim=-1).mean()
            else:
                loss = ((out - x0)[:, 1:] ** 2).sum((1, 2)).mean()
            x0_hat = out.detach()
        else:
            loss = ((out - fs.eps)[:, 1:] ** 2).sum((1, 2)).mean()
            abar = schedule.alpha_bar(t).view(B, 1, 1)
            x0_hat = x0_from_eps(fs.h_t, out.detach(), abar, fs.mu, fs.std, clip=cfg.sampling.clip_x0)
        x0_hat = x0_hat - x0_hat[:, :1]
        return loss, torch.linalg.vector_norm(x0_hat - x0, dim=-1).mean() * 1000

    def predict(self, model: LoadedModel, batch: FeedBatch, setting: SamplingSetting) -> Prediction:
        net = model.network
        context = net.encode(batch.cond)
        res = run_chain(self.sampler(model, setting), net.denoiser, context, setting.n_hypotheses, gmm=batch.gmm,
                        generator=batch.generator, record="all" if setting.record else "none",
                        start_from=self.start_state(model, context, setting))
        return prediction_from_result(res)

    def start_state(self, model: LoadedModel, context: torch.Tensor,
                    setting: SamplingSetting) -> torch.Tensor | None:
        """The state the reverse chain starts from instead of an H_K draw (None: the draw)."""
        if setting.start_from != "hk":
            raise ConfigError(f"sampling start_from {setting.start_from!r}: method {self.name} starts from H_K "
                              "only ('hk')")
        return None


class DiffPoseJoint(DiffusionMethod):
    """DiffPose with its context encoder trained jointly from scratch and z from the depth prior (named
    'diffpose' up to diffpose_viz 0.2.0; `diffpose` is now the paper's two-stage form, methods/two_stage.py)."""

    name = "diffpose_joint"
    summary = "DiffPose, context encoder trained jointly from scratch, H_K z from the depth prior"
    needs_depth_prior = True
    hk_at_training = True
    hk_at_test = True
    # No pre-trained context encoder: z always comes from the depth prior (a shared config may still say
    # init.depth_source 'context' for the two-stage 'diffpose'; the config check warns).
    ignores = ("official", "model.context_checkpoint", "init.depth_source", "diffusion.forward", "model.released",
               "sampling.official_steps")

    def forward_sample(self, batch: TrainBatch, t: torch.Tensor):
        g = batch.gmm
        return gmm_q_sample(batch.x0, t, g.weights, g.means, g.variances, batch.schedule, batch.noise_gen)


class GaussianDiffusion(DiffusionMethod):
    name = "gaussian_diffusion"
    summary = "same network and sampler, N(0, s^2 I) forward, no pose-specific initialization"
    sampler_mode = "gaussian"
    ignores = ("official", "init", "model.context_checkpoint", "diffusion.forward", "model.released",
               "sampling.official_steps")

    def forward_sample(self, batch: TrainBatch, t: torch.Tensor):
        return gaussian_q_sample(batch.x0, t, batch.schedule, batch.noise_gen, scale=batch.cfg.diffusion.gaussian_scale)
