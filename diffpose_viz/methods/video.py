"""The temporal lifter of the video setting: a MixSTE-style seq2seq network over T frames (Zhang et al.,
CVPR 2022), trained with MPJPE on all T frames and random left/right flips, tested with flip averaging on
the centre frame of an edge-padded window (VideoPose3D / MixSTE padding). It is also phi_ST of the
two-stage DiffPose in the video setting."""
from __future__ import annotations

import torch
from torch import nn

from diffpose_viz.config import ExperimentConfig
from diffpose_viz.errors import ConfigError
from diffpose_viz.methods.base import LoadedModel, Prediction, TrainBatch
from diffpose_viz.methods.regression import RegressionMethod, RegressionNetwork
from diffpose_viz.models import MixSTELifter
from diffpose_viz.models.flip import FlipTestTime, random_flip


def build_mixste(cfg: ExperimentConfig) -> MixSTELifter:
    m = cfg.model
    return MixSTELifter(m.frames, embed_dim=m.hidden, depth=m.layers, heads=m.heads, dropout=min(m.dropout, 0.1),
                        released=m.released)


class VideoLifter(RegressionMethod):
    name = "video_lifter"
    summary = "MixSTE-style temporal lifter (seq2seq over model.frames frames, flip augmentation and test-time flip)"
    ignores = ("diffusion", "init", "official", "model.context_dim", "model.context_hidden", "model.context_layers",
               "model.context_raw_2d", "model.martinez_hidden", "model.martinez_blocks")

    def check(self, cfg: ExperimentConfig, source: str) -> None:
        if cfg.model.context != "video":
            raise ConfigError(f"{source}: model.context: method {self.name} lifts windows of model.frames frames; "
                              f"expected 'video', found {cfg.model.context!r}")

    def uses_windows(self, cfg: ExperimentConfig) -> bool:
        return True

    def build_network(self, cfg: ExperimentConfig) -> nn.Module:
        return RegressionNetwork(build_mixste(cfg))

    def loss(self, model: nn.Module, batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor]:
        if batch.x0_window is None:
            raise ConfigError(f"method {self.name}: training needs the targets of every frame of a window")
        cond, target, _ = random_flip(batch.cond, batch.x0_window, 0.5, generator=batch.noise_gen)
        out = model(cond)
        err = torch.linalg.vector_norm(out - target, dim=-1)  # (B,T,17): every frame of the window
        centre = err[:, err.shape[1] // 2]
        return err.mean(), centre.detach().mean() * 1000

    @torch.no_grad()
    def predict(self, model: LoadedModel, cond: torch.Tensor, gmm, *, n_hypotheses: int, n_steps: int,
                record: bool = False, generator: torch.Generator | None = None) -> Prediction:
        out = FlipTestTime(model.network.net)(cond)[:, cond.shape[1] // 2].float()
        out = out - out[:, :1]
        return Prediction(out[:, None].cpu().numpy(), None, None, None)
