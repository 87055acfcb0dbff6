"""The temporal lifter of the video setting, `model.video_lifter.kind`:

* 'mixste': a MixSTE-style seq2seq network over T frames (Zhang et al., CVPR 2022), trained with MPJPE on all
  T frames;
* 'tcn': VideoPose3D's dilated temporal convolutions (Pavllo et al., CVPR 2019) whose receptive field is the
  T-frame window, trained as its authors train it: MPJPE on the window's centre frame through the strided
  model (`models.tcn`), the BatchNorm momentum decayed exponentially over the epochs (VideoPose3D: 0.1 to
  0.001; model.video_lifter.bn_momentum[_final]), evaluated with the dense model and the same weights.

Both train with random left/right flips and are tested with flip averaging on the centre frame of an
edge-padded window (VideoPose3D / MixSTE padding). Either is phi_ST of the two-stage DiffPose in the video
setting and the official video mode's initial pose."""
from __future__ import annotations

import math

import torch
from torch import nn

from diffpose_viz.config import ExperimentConfig
from diffpose_viz.diffusion import SamplingSetting
from diffpose_viz.errors import ConfigError
from diffpose_viz.inputs.feed import FeedBatch
from diffpose_viz.methods.base import LoadedModel, Prediction, TrainBatch
from diffpose_viz.methods.regression import RegressionMethod, RegressionNetwork
from diffpose_viz.models import MixSTELifter, TCNLifter, window_centre
from diffpose_viz.models.coco_input import COCOInputTCNLifter
from diffpose_viz.models.flip import FlipTestTime, random_flip

def build_video_lifter(cfg: ExperimentConfig) -> MixSTELifter | TCNLifter:
    """The temporal lifter `model.video_lifter.kind` names, for model.frames-frame windows."""
    m, v = cfg.model, cfg.model.video_lifter
    if v.kind == "tcn":  # released: VideoPose3D's (u, v) input, in the joint order the file was trained on
        cls = COCOInputTCNLifter if m.released_input == "coco17" else TCNLifter
        return cls(m.frames, in_features=2 if m.released else 4, channels=v.channels, filter_width=v.filter_width,
                   dropout=v.dropout, bn_momentum=v.bn_momentum)
    return MixSTELifter(m.frames, embed_dim=m.hidden, depth=m.layers, heads=m.heads, dropout=min(m.dropout, 0.1),
                        released=m.released)


def bn_momentum(epoch: int, epochs: int, first: float, final: float) -> float:
    """VideoPose3D's schedule: the momentum at the start of `epoch` (0-based) of `epochs`, exponential from
    `first` (epoch 0) towards `final` (reached at epoch `epochs`)."""
    return first * math.exp(-epoch / max(epochs, 1) * math.log(first / final))


class VideoLifter(RegressionMethod):
    name = "video_lifter"
    summary = ("temporal lifter over model.frames frames, MixSTE-style or VideoPose3D's TCN (model.video_lifter.kind); "
               "flip augmentation and test-time flip")
    ignores = ("diffusion", "init", "official", "model.context_dim", "model.context_hidden", "model.context_layers",
               "model.context_raw_2d", "model.martinez_hidden", "model.martinez_blocks")

    def check(self, cfg: ExperimentConfig, source: str) -> None:
        if cfg.model.context != "video":
            raise ConfigError(f"{source}: model.context: method {self.name} lifts windows of model.frames frames; "
                              f"expected 'video', found {cfg.model.context!r}")
        if cfg.model.released_input == "coco17" and not (cfg.model.released and cfg.model.video_lifter.kind == "tcn"):
            raise ConfigError(f"{source}: model.released_input 'coco17' is for an imported VideoPose3D COCO model "
                              "(model.released true, model.video_lifter.kind 'tcn')")

    def uses_windows(self, cfg: ExperimentConfig) -> bool:
        return True

    def supervised_frames(self, cfg: ExperimentConfig) -> int:
        # the MixSTE-style lifter's loss covers all T frames of a window, a TCN's only the centre frame
        return cfg.model.frames if cfg.model.video_lifter.kind == "mixste" else 1

    def build_network(self, cfg: ExperimentConfig) -> nn.Module:
        return RegressionNetwork(build_video_lifter(cfg))

    def start_epoch(self, net: nn.Module, cfg: ExperimentConfig, epoch: int) -> None:
        if cfg.model.video_lifter.kind == "tcn":
            v = cfg.model.video_lifter
            net.net.set_bn_momentum(bn_momentum(epoch, cfg.train.epochs, v.bn_momentum, v.bn_momentum_final))

    def loss(self, model: nn.Module, batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor]:
        if batch.x0_window is None:
            raise ConfigError(f"method {self.name}: training needs the targets of every frame of a window")
        cond, target, _ = random_flip(batch.cond, batch.x0_window, 0.5, generator=batch.noise_gen)
        out = model(cond)
        if out.shape[1] == 1:  # a TCN: the window determines its centre frame only
            target = target[:, target.shape[1] // 2, None]
        err = torch.linalg.vector_norm(out - target, dim=-1)  # (B,T_out,17): every output frame
        centre = window_centre(err, cond.shape[1])
        return err.mean(), centre.detach().mean() * 1000

    @torch.no_grad()
    def predict(self, model: LoadedModel, batch: FeedBatch, setting: SamplingSetting) -> Prediction:
        cond = batch.cond
        out = window_centre(FlipTestTime(model.network.net)(cond), cond.shape[1]).float()
        out = out - out[:, :1]
        return Prediction(out[:, None].cpu().numpy(), None, None, None)
