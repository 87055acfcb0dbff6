"""Noise schedules: betas and cumulative alphas as a small, device-agnostic, serialisable object.

Convention (the one the official DiffPose/DDIM code uses): training step t runs over 0..K-1 and
`alpha_bar(t)` is the cumulative product of (1 - beta_i) for i <= t, so even t = 0 carries a little
noise. t = -1 means "clean" (alpha_bar = 1); the DDIM sampler's last step goes to t = -1, which is
what the official `compute_alpha` achieves by padding beta with a leading 0.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

Tensor = torch.Tensor
SCHEDULE_KINDS = ("linear", "cosine", "quad")
SKIP_KINDS = ("uniform", "quad")


@dataclass(frozen=True)
class ScheduleConfig:
    kind: str = "linear"
    num_steps: int = 51
    beta_start: float = 1e-4
    beta_end: float = 1e-3
    cosine_s: float = 0.008  # offset of the cosine schedule (Nichol & Dhariwal); unused otherwise

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"NoiseSchedule: kind must be one of {SCHEDULE_KINDS}, found {self.kind!r}")
        if int(self.num_steps) != self.num_steps or self.num_steps < 1:
            raise ValueError(f"NoiseSchedule: num_steps must be a positive integer, found {self.num_steps!r}")
        if not (0.0 < self.beta_start <= self.beta_end < 1.0):
            raise ValueError("NoiseSchedule: need 0 < beta_start <= beta_end < 1, found "
                             f"beta_start={self.beta_start}, beta_end={self.beta_end}")


def _betas(cfg: ScheduleConfig) -> np.ndarray:
    k = cfg.num_steps
    if cfg.kind == "linear":
        return np.linspace(cfg.beta_start, cfg.beta_end, k, dtype=np.float64)
    if cfg.kind == "quad":
        return np.linspace(cfg.beta_start ** 0.5, cfg.beta_end ** 0.5, k, dtype=np.float64) ** 2
    # cosine: alpha_bar follows cos^2; beta_start/beta_end do not apply.
    s = cfg.cosine_s
    f = np.cos((np.arange(k + 1, dtype=np.float64) / k + s) / (1 + s) * math.pi / 2) ** 2
    return np.clip(1.0 - f[1:] / f[:-1], 1e-8, 0.999)


class NoiseSchedule:
    """betas (K,), alphas_cumprod (K,) as tensors; `.to(device)` moves them in place and returns self."""

    def __init__(self, kind: str = "linear", num_steps: int = 51, beta_start: float = 1e-4,
                 beta_end: float = 1e-3, *, cosine_s: float = 0.008, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        self.config = ScheduleConfig(kind, int(num_steps), float(beta_start), float(beta_end), float(cosine_s))
        betas = _betas(self.config)
        alphas_cumprod = np.cumprod(1.0 - betas)  # float64 product, cast once at the end
        self.betas = torch.as_tensor(betas, dtype=dtype, device=device)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.as_tensor(alphas_cumprod, dtype=dtype, device=device)
        # Index t + 1 holds alpha_bar_t; index 0 (t = -1) is the clean state.
        self._alpha_bar_padded = torch.cat([torch.ones(1, dtype=dtype, device=device), self.alphas_cumprod])

    # ------------------------------------------------------------------ construction / serialisation
    @classmethod
    def official(cls, **kwargs) -> "NoiseSchedule":
        """The schedule of all four official configs: linear beta 1e-4 -> 1e-3 over 51 steps."""
        return cls("linear", 51, 1e-4, 1e-3, **kwargs)

    @classmethod
    def from_config(cls, config: ScheduleConfig | dict, **kwargs) -> "NoiseSchedule":
        if isinstance(config, dict):
            unknown = set(config) - set(ScheduleConfig.__dataclass_fields__)
            if unknown:
                raise KeyError(f"NoiseSchedule.from_config: unknown keys {sorted(unknown)}; "
                               f"expected {sorted(ScheduleConfig.__dataclass_fields__)}")
            config = ScheduleConfig(**config)
        return cls(config.kind, config.num_steps, config.beta_start, config.beta_end,
                   cosine_s=config.cosine_s, **kwargs)

    def to_dict(self) -> dict:
        return asdict(self.config)

    def __repr__(self) -> str:
        c = self.config
        return (f"NoiseSchedule(kind={c.kind!r}, num_steps={c.num_steps}, beta_start={c.beta_start}, "
                f"beta_end={c.beta_end}, alpha_bar[-1]={float(self.alphas_cumprod[-1]):.5f})")

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "NoiseSchedule":
        for name in ("betas", "alphas", "alphas_cumprod", "_alpha_bar_padded"):
            setattr(self, name, getattr(self, name).to(device=device, dtype=dtype))
        return self

    # ------------------------------------------------------------------ queries
    @property
    def num_steps(self) -> int:
        return self.config.num_steps

    @property
    def device(self) -> torch.device:
        return self.betas.device

    def alpha_bar(self, t: Tensor | int) -> Tensor:
        """alpha_bar_t gathered by integer step (tensor of any shape, or an int); t = -1 gives 1.

        The range is checked for ints and CPU tensors only, so a GPU call never syncs with the host.
        """
        if isinstance(t, int):
            self.check_range(t, t)
            return self._alpha_bar_padded[t + 1]
        if not isinstance(t, Tensor) or t.dtype.is_floating_point or t.dtype == torch.bool:
            raise ValueError(f"NoiseSchedule.alpha_bar: t must be an int or an integer tensor, found "
                             f"{type(t).__name__} {getattr(t, 'dtype', '')}")
        if t.device.type == "cpu" and t.numel():
            self.check_range(int(t.min()), int(t.max()))
        return self._alpha_bar_padded.to(t.device)[t.long() + 1]

    def check_range(self, lo: int, hi: int) -> None:
        if lo < -1 or hi > self.num_steps - 1:
            raise ValueError(f"NoiseSchedule.alpha_bar: t must lie in [-1, {self.num_steps - 1}], "
                             f"found range [{lo}, {hi}]")

    def ddim_timesteps(self, n_steps: int, skip: str = "uniform", t_max: int | None = None) -> list[int]:
        """n_steps distinct steps from t_max (default K-1, the noisiest) down to 0, descending.

        One denoiser call per entry; the sampler's last call goes from 0 to the clean state (-1).
        'uniform' spaces them evenly; 'quad' puts more of them near t = 0 (DDIM's quadratic skip).
        """
        t_max = self.num_steps - 1 if t_max is None else int(t_max)
        if not 0 <= t_max <= self.num_steps - 1:
            raise ValueError(f"ddim_timesteps: t_max must lie in [0, {self.num_steps - 1}], found {t_max}")
        if skip not in SKIP_KINDS:
            raise ValueError(f"ddim_timesteps: skip must be one of {SKIP_KINDS}, found {skip!r}")
        if not 1 <= n_steps <= t_max + 1:
            raise ValueError(f"ddim_timesteps: n_steps must lie in [1, t_max + 1 = {t_max + 1}], found {n_steps}")
        if n_steps == 1:
            return [t_max]
        frac = np.linspace(0.0, 1.0, n_steps)
        ts = np.rint(t_max * (frac if skip == "uniform" else frac ** 2)).astype(int)
        # Rounding can merge the first quadratic steps; push them apart (ends stay at 0 and t_max).
        for i in range(1, n_steps):
            ts[i] = max(ts[i], ts[i - 1] + 1)
        for i in range(n_steps - 2, -1, -1):
            ts[i] = min(ts[i], ts[i + 1] - 1)
        return [int(t) for t in ts[::-1]]


def official_timesteps(test_num_diffusion_timesteps: int, test_timesteps: int, skip: str = "uniform") -> list[int]:
    """The official test-time step list, descending: seq = range(0, T, T // steps) (uniform) or
    int(linspace(0, sqrt(0.8 T), steps)^2) (quad). E.g. (24, 2) -> [12, 0]; (6, 1) -> [0]."""
    T, n = int(test_num_diffusion_timesteps), int(test_timesteps)
    if T < 1 or n < 1 or n > T:
        raise ValueError(f"official_timesteps: need 1 <= test_timesteps <= test_num_diffusion_timesteps, "
                         f"found test_timesteps={n}, test_num_diffusion_timesteps={T}")
    if skip == "uniform":
        seq = list(range(0, T, T // n))
    elif skip == "quad":
        seq = [int(s) for s in np.linspace(0, np.sqrt(T * 0.8), n) ** 2]
    else:
        raise ValueError(f"official_timesteps: skip must be one of {SKIP_KINDS}, found {skip!r}")
    return seq[::-1]
