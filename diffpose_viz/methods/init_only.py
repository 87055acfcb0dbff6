"""H_K alone: the mean of the pose-specific initialization, no network and no diffusion (an ablation)."""
from __future__ import annotations

from dataclasses import replace

from diffpose_viz.config import ExperimentConfig
from diffpose_viz.diffusion import SamplingSetting
from diffpose_viz.inputs.feed import FeedBatch
from diffpose_viz.methods.base import LoadedModel, Method, Prediction


class InitOnly(Method):
    name = "init_only"
    summary = "the mean of H_K, no diffusion"
    trainable = False
    needs_depth_prior = True
    hk_at_test = True
    ignores = ("model", "train.lr", "train.batch_size", "diffusion.schedule", "official")

    def resolve(self, cfg: ExperimentConfig, setting: SamplingSetting) -> SamplingSetting:
        return replace(setting, n_steps=0)

    def predict(self, model: LoadedModel, batch: FeedBatch, setting: SamplingSetting) -> Prediction:
        gmm = batch.gmm
        poses, _ = gmm.sample(setting.n_hypotheses, batch.generator)
        return Prediction(poses.cpu().numpy(), None, None, None, pred=gmm.mean().cpu().numpy())
