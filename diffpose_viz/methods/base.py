"""What every method of the table is: the `Method` interface, the loaded-model and prediction records.

A method owns its name, the name its results carry, what it needs (a depth prior, H_K at training and
at test, video windows, a lifter checkpoint), how it builds its network, its training loss and its
`predict`. The trainer, evaluation, bench and sample code ask the method; they hold no method names.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from diffpose_viz.config import ExperimentConfig
from diffpose_viz.diffusion import SAMPLERS, NoiseSchedule, SampleResult, Sampler, SamplingSetting
from diffpose_viz.errors import ConfigError
from diffpose_viz.initialization.depth_prior import DepthPrior
from diffpose_viz.initialization.pose_init import PoseGMM
from diffpose_viz.inputs.feed import FeedBatch


@dataclass
class LoadedModel:
    """Everything inference needs, restored from one checkpoint (or handed over by the trainer)."""

    cfg: ExperimentConfig
    method: "Method"
    network: nn.Module | None  # the EMA weights, eval mode
    prior: DepthPrior | None
    extras: dict[str, Any] = field(default_factory=dict)  # method-owned parts (the official mode's lifter)
    device: torch.device = torch.device("cpu")
    path: str = ""
    detection_error: Any = None  # DetectionErrorModel fitted on the training rows' 2D files, when used
    fingerprint: str | None = None  # the checkpoint's content fingerprint (what derived files record); None: no file
    samplers: dict = field(default_factory=dict, repr=False)  # built once per setting (Method.sampler)

    @property
    def name(self) -> str:
        return self.method.name


@dataclass
class Prediction:
    hypotheses: np.ndarray  # (B,N,17,3) metres
    trajectory: np.ndarray | None  # (B,N,S,17,3)
    x0_trajectory: np.ndarray | None
    timesteps: list[int] | None
    pred: np.ndarray | None = None  # (B,17,3) when the method defines its output otherwise than P-Agg


@dataclass
class TrainBatch:
    """One training batch as a method's loss sees it (all tensors on the device)."""

    x0: torch.Tensor  # (B,17,3) targets
    cond: torch.Tensor  # (B,17,3) or (B,T,17,3) network input
    gmm: PoseGMM | None  # H_K of these rows, when the method trains with it
    schedule: NoiseSchedule | None
    noise_gen: torch.Generator
    cfg: ExperimentConfig
    x0_window: torch.Tensor | None = None  # (B,T,17,3) targets of every frame of each row's window (video)
    encoded: bool = False  # cond is already the network's frozen encoding of the 2D (Method.frozen_context)


class Method:
    """The interface; subclasses override what differs. Class attributes describe needs."""

    name: ClassVar[str]
    results_name: ClassVar[str | None] = None  # the results' `model` attribute (default: name)
    summary: ClassVar[str] = ""
    trainable: ClassVar[bool] = True
    needs_depth_prior: ClassVar[bool] = False
    hk_at_training: ClassVar[bool] = False  # the training loss reads H_K
    hk_at_test: ClassVar[bool] = False  # predict() reads H_K (validation and test)
    #: The sampler (a name of diffusion.samplers.SAMPLERS) predict runs unless the setting names another; None:
    #: the method does not sample. `samples_with_ddim`: it runs the DDIM sampler from H_K (bench times these).
    sampler_name: ClassVar[str | None] = None
    samples_with_ddim: ClassVar[bool] = False
    #: The config key naming a trained `lifter` checkpoint this method is built on (None: it needs none);
    #: training_order() trains the lifter first and the scripts set this key to the lifter's best.pt.
    lifter_checkpoint_key: ClassVar[str | None] = None
    has_trajectory: ClassVar[bool] = False  # predict(record=True) returns the reverse-diffusion states
    #: Config sections (or dotted keys) this method never reads; `check_config` warns when they differ
    #: from their defaults, so a user is not misled into thinking a setting took effect.
    ignores: ClassVar[tuple[str, ...]] = ()

    @property
    def model_name(self) -> str:
        return self.results_name or self.name

    # ------------------------------------------------------------------ config
    def check(self, cfg: ExperimentConfig, source: str) -> None:
        """Raise ConfigError for settings this method cannot run with."""

    def uses_windows(self, cfg: ExperimentConfig) -> bool:
        """Whether the network input is a (T,17,3) window per row."""
        return False

    def sampling(self, cfg: ExperimentConfig, requested: SamplingSetting | None = None) -> SamplingSetting:
        """The request over the config's own setting (cfg.sampling), the seed resolved (train.seed), then what
        this method makes of it (`resolve`): the one setting predict, the sampler and the results read."""
        setting = (requested or SamplingSetting()).over(cfg.sampling)
        return self.resolve(cfg, replace(setting, seed=cfg.train.seed if setting.seed is None else setting.seed))

    def resolve(self, cfg: ExperimentConfig, setting: SamplingSetting) -> SamplingSetting:
        """A method's own reading of a full setting (a deterministic one gives N = 1, K = 0)."""
        return setting

    def supervised_frames(self, cfg: ExperimentConfig) -> int:
        """Frames a training row supervises (a seq2seq video lifter: its whole window; the training benchmark)."""
        return 1

    def stage1(self, cfg: ExperimentConfig) -> str | None:
        """The method whose trained checkpoint `lifter_checkpoint_key` must name (None: no stage 1)."""
        return "lifter" if self.lifter_checkpoint_key else None

    # ------------------------------------------------------------------ parts
    def build_network(self, cfg: ExperimentConfig) -> nn.Module | None:
        return None

    def network(self, cfg: ExperimentConfig, extras: dict[str, Any]) -> nn.Module | None:
        """The trainable network given the restored extras (the trainer and load_model call this; a method
        whose network is built around a frozen part from its extras overrides it)."""
        return self.build_network(cfg)

    def hk_depth(self, cfg: ExperimentConfig, extras: dict[str, Any], cond: torch.Tensor,
                 occluded: np.ndarray, windows: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-row (z_mean, z_std), each (N,17) metres, for H_K instead of the depth prior, or None (the
        prior). cond: (N,17,3) screen-normalised 2D of the rows; occluded: (N,17) bool. With video windows,
        `windows` (N,T) are the rows' windows as indices into cond (which then holds every row of the split)."""
        return None

    def build_schedule(self, cfg: ExperimentConfig, device: torch.device | str = "cpu") -> NoiseSchedule | None:
        return None

    def sampler_facts(self, cfg: ExperimentConfig) -> dict[str, Any]:
        """What a sampler must know of this model beyond the setting (keyword arguments of `Sampler`)."""
        return {}

    def sampler(self, model: "LoadedModel", setting: SamplingSetting) -> Sampler:
        """The model's sampler for a resolved setting, built once (from the schedule, the setting and the facts)."""
        name = setting.sampler or self.sampler_name
        if name is None:
            raise NotImplementedError(f"method {self.name} does not sample")
        # what a run changes without changing the chain (seed, batch, amp, N, recording) builds no new sampler
        setting = replace(setting, n_hypotheses=None, seed=None, amp=None, record=None, batch_size=None)
        key = (name, setting)
        if key not in model.samplers:
            schedule = self.build_schedule(model.cfg, model.device)
            model.samplers[key] = SAMPLERS[name](schedule, setting, **self.sampler_facts(model.cfg))
        return model.samplers[key]

    def training_extras(self, cfg: ExperimentConfig) -> dict[str, Any]:
        """Plain data stored in the checkpoint under 'extras' (loaded with weights_only=True)."""
        return {}

    def restore_extras(self, cfg: ExperimentConfig, payload: dict[str, Any], where: str,
                       device: torch.device) -> dict[str, Any]:
        """Live objects predict() needs, rebuilt from `training_extras`' payload."""
        return {}

    def frozen_context(self, net: nn.Module, cond: torch.Tensor, windows: torch.Tensor | None,
                       batch: int = 1024) -> torch.Tensor | None:
        """The per-row encoding of the 2D input by a frozen part of `net`, computed once for every training row
        (then batches carry it with `encoded=True` and the frozen part never runs again), or None when the
        network has no frozen part that reads the 2D."""
        return None

    # ------------------------------------------------------------------ train / predict
    def start_epoch(self, net: nn.Module, cfg: ExperimentConfig, epoch: int) -> None:
        """Called by the trainer before every epoch (0-based), after the learning rate is set: a schedule the
        network holds itself (e.g. VideoPose3D's BatchNorm momentum). A function of the epoch, so resume is exact."""

    def loss(self, model: nn.Module, batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, MPJPE in mm of the clean-pose estimate) for one batch."""
        raise NotImplementedError(f"method {self.name} is not trained")

    def predict(self, model: LoadedModel, batch: FeedBatch, setting: SamplingSetting) -> Prediction:
        """Hypotheses for one batch of a feed under a resolved setting (`sampling`)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<method {self.name}>"


def prediction_from_result(res: SampleResult, channels: slice = slice(0, 3)) -> Prediction:
    """numpy Prediction from a sampler result, root-centred on the xyz channels."""
    def rc(x):
        if x is None:
            return None
        x = x[..., channels]
        return (x - x[..., :1, :]).cpu().numpy()

    return Prediction(rc(res.hypotheses), rc(res.trajectory), rc(res.x0_trajectory),
                      list(res.timesteps) if res.trajectory is not None else None)


def centre_frame(cond: torch.Tensor) -> torch.Tensor:
    """The (B,17,C) frame a (B,T,17,C) window is centred on (a (B,17,C) input is returned as is)."""
    return cond if cond.ndim == 3 else cond[:, cond.shape[1] // 2]

