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
from diffpose_viz.diffusion import DDIMSampler, NoiseSchedule, SampleResult
from diffpose_viz.errors import ConfigError
from diffpose_viz.initialization.depth_prior import DepthPrior
from diffpose_viz.initialization.pose_init import PoseGMM


#: Mixed-precision settings a sampling run may ask for ('bf16': the networks under torch.autocast).
AMP_CHOICES = ("none", "bf16")


@dataclass(frozen=True)
class SamplingSetting:
    """How a trained model samples, one value from the command line to the reverse loop.

    A request leaves `n_hypotheses`, `n_steps` and `seed` None for the config's own values;
    `Method.sampling` resolves them once (a deterministic method always gives N = 1, K = 0).
    `start_step`: begin the reverse loop at that step of the K DDIM timesteps (the lab);
    `overrides`: 'key=value' changes of the sampling-only config keys (evaluate's --sampling)."""

    n_hypotheses: int | None = None
    n_steps: int | None = None
    batch_size: int = 256
    amp: str | None = None
    seed: int | None = None
    record: bool = False
    start_step: int = 0
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"--batch-size: expected an integer >= 1, found {self.batch_size}")
        if self.amp not in (None, *AMP_CHOICES):
            raise ValueError(f"amp must be one of {AMP_CHOICES}, found {self.amp!r}")


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
    samples_with_ddim: ClassVar[bool] = False  # runs DDIMSampler.sample (bench times these)
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

    def settings(self, cfg: ExperimentConfig, n_hypotheses: int | None, n_steps: int | None) -> tuple[int, int]:
        """(N hypotheses, K steps) used at test time, from the config unless overridden."""
        n = cfg.diffusion.n_hypotheses if n_hypotheses is None else int(n_hypotheses)
        k = cfg.diffusion.n_sampling_steps if n_steps is None else int(n_steps)
        if n < 1 or k < 1:
            raise ConfigError(f"--hypotheses and --steps: expected integers >= 1, found {n} and {k}")
        return n, k

    def sampling(self, cfg: ExperimentConfig, requested: SamplingSetting | None = None) -> SamplingSetting:
        """The request with N, K and the seed resolved against the config (this method's `settings`)."""
        requested = SamplingSetting() if requested is None else requested
        n, k = self.settings(cfg, requested.n_hypotheses, requested.n_steps)
        seed = cfg.train.seed if requested.seed is None else int(requested.seed)
        return replace(requested, n_hypotheses=n, n_steps=k, seed=seed)

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

    def build_sampler(self, cfg: ExperimentConfig, schedule: NoiseSchedule) -> DDIMSampler:
        raise NotImplementedError(f"method {self.name} does not sample")

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

    def predict(self, model: LoadedModel, cond: torch.Tensor, gmm: PoseGMM | None, *, n_hypotheses: int,
                n_steps: int, record: bool = False, generator: torch.Generator | None = None) -> Prediction:
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

