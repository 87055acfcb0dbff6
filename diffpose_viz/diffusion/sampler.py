"""The sampler interface: a small object built once per model from the schedule and the setting.

    sampler = SAMPLERS[name](schedule, setting, mode=..., prediction=..., ...)   (diffusion/samplers.py)
    sampler.timesteps()          -> the diffusion t of each denoiser call, descending
    sampler.start(B, N, ...)     -> the chain's first state (every random draw made here, up front)
    sampler.step(state, t)       -> (next state, h_0 estimate made at t)

A sampler holds only the equations. The executor (`diffusion/executor.run_chain`) owns batching around it:
tiles of frames, worker threads, autocast in those threads, the memory check and the recorded trajectory.

Adding a sampler: one file with a `Sampler` subclass (`name`, `timesteps()`, `step()`, and `start()` when it
does not start from H_K) and one line in `SAMPLERS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, NamedTuple, Protocol

import torch

from diffpose_viz.diffusion.forward import draw_kernels, kernel_params
from diffpose_viz.diffusion.schedule import NoiseSchedule
from diffpose_viz.diffusion.setting import SamplingSetting

Tensor = torch.Tensor
Denoiser = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]
PREDICTIONS = ("x0", "eps")
MODES = ("gmm", "gaussian")


class GMMLike(Protocol):
    weights: Tensor  # (B,17,M)
    means: Tensor  # (B,17,M,3)
    variances: Tensor  # (B,17,M,3)


class StepOutput(NamedTuple):
    prev: Tensor  # h at t_prev
    x0: Tensor  # estimate of h_0 made at t


class ChainState(NamedTuple):
    """The reverse chain of a batch of frames: (B,N,17,D) from `start`, (R,17,D) rows of one tile in the loop."""

    x: Tensor  # the state at the current step
    mu: Tensor | None = None  # kernel means (None: 0)
    std: Tensor | None = None  # kernel spreads (None: 1)
    noise: Tensor | None = None  # (S, ...) the fresh N(0, I) of every step (eta > 0), drawn up front
    kernel: Tensor | None = None  # (B,N,17) GMM kernel each hypothesis drew per joint
    denoise: Callable[[Tensor, int], Tensor] | None = None  # the tile's denoiser: (states, t) -> output
    index: int = 0  # how many steps were taken

    def tile(self, s: int, e: int, denoise: Callable[[Tensor, int], Tensor]) -> "ChainState":
        """Frames s:e as rows (hypothesis-major within a frame) with that tile's denoiser."""
        def rows(v: Tensor | None) -> Tensor | None:
            return None if v is None else v[s:e].reshape(-1, *v.shape[2:])

        noise = None if self.noise is None else self.noise[:, s:e].reshape(len(self.noise), -1, *self.noise.shape[3:])
        return ChainState(rows(self.x), rows(self.mu), rows(self.std), noise, None, denoise, 0)


@dataclass
class SampleResult:
    hypotheses: Tensor  # (B,N,17,D) final states
    trajectory: Tensor | None  # (B,N,S,17,D) recorded states h_t; state 0 = start, state n_steps = final
    x0_trajectory: Tensor | None  # (B,N,S,17,D) x0 estimate made from each recorded state (final: itself)
    timesteps: list[int]  # diffusion t of each recorded state (-1 = clean); all states if nothing recorded
    kernel: Tensor | None = None  # (B,N,17) GMM kernel each hypothesis drew per joint (gmm mode)
    step_timesteps: list[int] | None = None  # the t of each denoiser call, descending


class Sampler:
    """The base: the model facts every sampler may read, and the start from H_K (or N(0, s^2 I)).

    mode 'gmm': each hypothesis draws one kernel of H_K per joint and keeps its (mu_G, sigma_G) for the whole
    chain; 'gaussian': mu = 0, sigma = gaussian_scale. keep_root holds joint 0 at the origin. prediction: what
    the denoiser returns ('x0' or the standard-normal 'eps'). official_span: the released procedure's
    test_num_diffusion_timesteps."""

    name: ClassVar[str]

    def __init__(self, schedule: NoiseSchedule, setting: SamplingSetting | None = None, *, mode: str = "gmm",
                 gaussian_scale: float = 1.0, keep_root: bool = True, prediction: str = "x0",
                 official_span: int = 24) -> None:
        if mode not in MODES:
            raise ValueError(f"{type(self).__name__}: mode must be one of {MODES}, found {mode!r}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"{type(self).__name__}: prediction must be one of {PREDICTIONS}, found {prediction!r}")
        self.schedule = schedule
        self.setting = SamplingSetting() if setting is None else setting  # None fields: eta 0, no clip, uniform
        self.mode = mode
        self.gaussian_scale = float(gaussian_scale)
        self.keep_root = keep_root
        self.prediction = prediction
        self.official_span = int(official_span)

    @property
    def eta(self) -> float:
        return float(self.setting.eta or 0.0)

    @property
    def skip(self) -> str:
        return self.setting.skip or "uniform"

    def timesteps(self) -> list[int]:
        """The diffusion t of each denoiser call, descending (the chain ends at the clean state, t = -1)."""
        raise NotImplementedError

    def step(self, state: ChainState, t: int) -> tuple[ChainState, Tensor]:
        """One move of the chain from t (the state's current step) to the next: (next state, h_0 estimate)."""
        raise NotImplementedError

    def draws_step_noise(self) -> bool:
        """Whether `start` draws fresh noise for every step (the memory check counts it)."""
        return False

    def frames(self, gmm: GMMLike | None, context: Tensor | None, start_from: Tensor | None,
               batch_size: int | None) -> int:
        """The number of frames B of a call."""
        if gmm is not None and self.mode == "gmm":
            return gmm.weights.shape[0]
        for v in (gmm.weights if gmm is not None else None, context, start_from):
            if v is not None:
                return v.shape[0]
        if batch_size is None:
            raise ValueError("sample: gaussian mode needs the batch size from gmm, context or batch_size=")
        return int(batch_size)

    def start(self, B: int, N: int, *, gmm: GMMLike | None = None, start_from: Tensor | None = None,
              context: Tensor | None = None, generator: torch.Generator | None = None) -> ChainState:
        """The first state: a draw from H_K (gmm mode) or N(0, s^2 I), or `start_from` (B,17,3) / (B,N,17,3)
        in its place (kernels are still drawn for mu_G, sigma_G). Draw order: kernels, start states."""
        kernel = None
        if self.mode == "gmm":
            if gmm is None:
                raise ValueError("sample: gmm mode needs the H_K mixture (weights/means/variances), found None")
            weights, means, variances = gmm.weights, gmm.means, gmm.variances
            if weights.ndim != 3 or weights.shape[1] != 17 or means.shape != (*weights.shape, 3) \
                    or variances.shape != means.shape:
                raise ValueError("sample: gmm weights must be (B,17,M) and means/variances (B,17,M,3), found "
                                 f"{tuple(weights.shape)}, {tuple(means.shape)}, {tuple(variances.shape)}")
            dtype = means.dtype if means.dtype.is_floating_point else torch.float32
            kernel = draw_kernels(weights, N, generator)
            mu, std = kernel_params(means.to(dtype), variances.to(dtype), kernel)  # (B,N,17,3)
        else:
            device = _device_of(gmm, context, start_from)
            mu = torch.zeros(B, N, 17, 3, device=device, dtype=torch.float32)
            std = torch.full_like(mu, self.gaussian_scale)
        if self.keep_root:
            mu[:, :, 0] = 0.0
            std[:, :, 0] = 0.0
        if start_from is None:
            x = mu + std * torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        else:
            x = broadcast_start(start_from, B, N, 3).to(mu)
        if self.keep_root:
            x = x.clone()
            x[:, :, 0] = 0.0
        return ChainState(x, mu, std, kernel=kernel)


def _device_of(*objs) -> torch.device:
    for o in objs:
        if isinstance(o, Tensor):
            return o.device
        if o is not None and hasattr(o, "means"):
            return o.means.device
    return torch.device("cpu")


def broadcast_start(start: Tensor, B: int, N: int, D: int) -> Tensor:
    """A (B,17,D) start repeated for N hypotheses, or a (B,N,17,D) one as it is."""
    if start.shape == (B, 17, D):
        return start.unsqueeze(1).expand(B, N, 17, D)
    if start.shape == (B, N, 17, D):
        return start
    raise ValueError(f"start state must have shape ({B}, 17, {D}) or ({B}, {N}, 17, {D}), found {tuple(start.shape)}")
