"""Deterministic 2D -> 3D lifters trained with an MPJPE loss: the same-backbone GraFormer lifter and
the Martinez et al. (2017) MLP."""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from diffpose_viz.config import ExperimentConfig
from diffpose_viz.diffusion import SamplingSetting
from diffpose_viz.inputs.feed import FeedBatch
from diffpose_viz.methods.base import LoadedModel, Method, Prediction, TrainBatch
from diffpose_viz.models import GraFormerLifter, MartinezBaseline


class RegressionMethod(Method):
    ignores = ("diffusion", "init", "official", "sampling")

    def resolve(self, cfg: ExperimentConfig, setting: SamplingSetting) -> SamplingSetting:
        return replace(setting, n_hypotheses=1, n_steps=0)

    def loss(self, model: nn.Module, batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor]:
        out = model(batch.cond)
        err = torch.linalg.vector_norm(out - batch.x0, dim=-1)
        return err.mean(), err.detach().mean() * 1000

    def predict(self, model: LoadedModel, batch: FeedBatch, setting: SamplingSetting) -> Prediction:
        out = model.network(batch.cond).float()
        return Prediction(out[:, None].cpu().numpy(), None, None, None)


class RegressionNetwork(nn.Module):
    """Wraps a lifter so checkpoints keep the `net.` prefix: forward(cond (B,17,3)) -> (B,17,3)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.net(cond)


class Lifter(RegressionMethod):
    name = "lifter"
    # The results files (and their names, e.g. deterministic_lifter.nc) have carried this label since the first
    # release; the dashboards, notebooks and stored results read it, so the method name and the label stay two.
    results_name = "deterministic_lifter"
    summary = "deterministic GraFormer lifter, the denoiser's backbone"

    def build_network(self, cfg: ExperimentConfig) -> nn.Module:
        m = cfg.model
        return RegressionNetwork(GraFormerLifter(2 if m.released else 3, hidden=m.hidden, layers=m.layers,
                                                 heads=m.heads, dropout=m.dropout, released=m.released))


class Martinez(RegressionMethod):
    name = "martinez"
    summary = "Martinez et al. 2017 residual MLP"

    def build_network(self, cfg: ExperimentConfig) -> nn.Module:
        m = cfg.model
        return RegressionNetwork(MartinezBaseline(m.martinez_hidden, m.martinez_blocks,
                                                  dropout=0.5 if m.dropout > 0 else 0.0, in_dim=3))
