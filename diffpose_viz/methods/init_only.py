"""H_K alone: the mean of the pose-specific initialization, no network and no diffusion (an ablation)."""
from __future__ import annotations

import torch

from diffpose_viz.config import ExperimentConfig
from diffpose_viz.methods.base import LoadedModel, Method, Prediction


class InitOnly(Method):
    name = "init_only"
    summary = "the mean of H_K, no diffusion"
    trainable = False
    needs_depth_prior = True
    hk_at_test = True
    ignores = ("model", "train.lr", "train.batch_size", "diffusion.schedule", "official")

    def settings(self, cfg: ExperimentConfig, n_hypotheses: int | None, n_steps: int | None) -> tuple[int, int]:
        n = cfg.diffusion.n_hypotheses if n_hypotheses is None else int(n_hypotheses)
        if n < 1:
            from diffpose_viz.errors import ConfigError
            raise ConfigError(f"--hypotheses: expected an integer >= 1, found {n}")
        return n, 0

    def predict(self, model: LoadedModel, cond: torch.Tensor, gmm, *, n_hypotheses: int, n_steps: int,
                record: bool = False, generator: torch.Generator | None = None) -> Prediction:
        poses, _ = gmm.sample(n_hypotheses, generator)
        return Prediction(poses.cpu().numpy(), None, None, None, pred=gmm.mean().cpu().numpy())
