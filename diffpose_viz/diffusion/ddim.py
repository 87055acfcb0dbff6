"""DDIM over the GMM diffusion (the paper's sampler).

We work in the shifted variable y = h - mu_G, in which the GMM forward process is an ordinary
Gaussian one with noise eps_G = sigma_G * eps: y_t = sqrt(abar_t) y_0 + sqrt(1 - abar_t) eps_G.
Each hypothesis draws one kernel per joint at the start and keeps its (mu_G, sigma_G) for the
whole trajectory. The DDIM update (Song et al.) in y, with eta scaling the fresh noise:

    eps_G_hat = (y_t - sqrt(abar_t) y0_hat) / sqrt(1 - abar_t)
    y_prev    = sqrt(abar_prev) y0_hat + sqrt(1 - abar_prev - s^2) eps_G_hat + s * sigma_G * z
    s         = eta * sqrt((1 - abar_prev) / (1 - abar_t)) * sqrt(1 - abar_t / abar_prev)

The denoiser returns either the h_0 estimate ('x0') or the standard-normal eps ('eps'; the noise it
stands for is sigma_G * eps). The released procedure (diffusion/released.py) is the same update with
mu = 0, sigma = 1 on another step list.

GPU note: inside the step loop nothing reads a value back to the host (no .item(), .cpu(), or
data-dependent Python branches); timesteps are Python ints and the alpha_bar table is on the device
before the loop.
"""
from __future__ import annotations

import torch

from diffpose_viz.diffusion.forward import x0_from_eps
from diffpose_viz.diffusion.sampler import PREDICTIONS, ChainState, Sampler, StepOutput
from diffpose_viz.errors import ConfigError

Tensor = torch.Tensor


class DDIMSampler(Sampler):
    """K = setting.n_steps DDIM moves over `schedule.ddim_timesteps(K, skip, start_t)` (from the
    start_step-th of them, the lab); eta = 0 is deterministic given the start state. `clip_x0` (metres,
    eps-prediction only) bounds the x0 estimate to [-clip_x0, clip_x0]."""

    name = "ddim"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._tables: dict[tuple[torch.device, torch.dtype], Tensor] = {}
        self._steps: list[int] | None = None

    @property
    def clip_x0(self) -> float | None:
        return self.setting.clip_x0

    def timesteps(self) -> list[int]:
        if self._steps is None:
            self._steps = self._timesteps()
        return self._steps

    def _timesteps(self) -> list[int]:
        s = self.setting
        k = s.n_steps
        if k is None:
            raise ValueError("DDIMSampler: the setting names no number of steps (n_steps)")
        if s.start_t is not None and k > s.start_t + 1:
            raise ConfigError(f"--steps {k}: more DDIM steps than fit below start_t {s.start_t}")
        start_step = s.start_step or 0
        if not 0 <= start_step < k:
            raise ConfigError(f"start_step: expected 0..{k - 1} (one of the K = {k} steps), found {start_step}")
        t_max = s.start_t
        if start_step:  # the chain's start state is taken at that one of the K steps, then K - start_step moves
            t_max = self.schedule.ddim_timesteps(k, self.skip, t_max)[start_step]
            k -= start_step
        return self.schedule.ddim_timesteps(k, self.skip, t_max)

    def draws_step_noise(self) -> bool:
        return self.eta > 0

    def start(self, B: int, N: int, **kwargs) -> ChainState:
        state = super().start(B, N, **kwargs)
        return self._with_step_noise(state, kwargs.get("generator"))

    def _with_step_noise(self, state: ChainState, generator: torch.Generator | None) -> ChainState:
        """The state with every step's fresh noise drawn now (so that the tiling does not change which draw a
        state gets), and the alpha_bar table on the state's device (a blocking copy in the loop would sync)."""
        self._abar(0, state.x)
        if self.eta > 0:
            noise = torch.randn((len(self.timesteps()), *state.x.shape), generator=generator, dtype=state.x.dtype,
                                device=state.x.device)
            state = state._replace(noise=noise)
        return state

    def step(self, state: ChainState, t: int) -> tuple[ChainState, Tensor]:
        ts = self.timesteps()
        i = state.index
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        out = self.move(state.denoise(state.x, t), t, t_prev, state.x, state.mu, state.std,
                        noise=None if state.noise is None else state.noise[i])
        return state._replace(x=out.prev, index=i + 1), out.x0

    # ------------------------------------------------------------------ the equations
    def move(self, model_output: Tensor, t: int | Tensor, t_prev: int | Tensor, h_t: Tensor,
             mu: Tensor | float | None = None, std: Tensor | float | None = None, *,
             prediction: str | None = None, generator: torch.Generator | None = None,
             noise: Tensor | None = None) -> StepOutput:
        """One DDIM move from step t to t_prev (< t; -1 = clean). mu/std default to 0/1.

        t, t_prev are ints (one step for the whole batch) or integer tensors of shape (R,).
        `noise` fixes the fresh N(0, I) draw used when eta > 0 (else it is drawn from `generator`).
        """
        prediction = self.prediction if prediction is None else prediction
        if prediction not in PREDICTIONS:
            raise ValueError(f"DDIMSampler.move: prediction must be one of {PREDICTIONS}, found {prediction!r}")
        if isinstance(t, int) and isinstance(t_prev, int) and t_prev >= t:
            raise ValueError(f"DDIMSampler.move: t_prev must be below t, found t={t}, t_prev={t_prev}")
        eta = self.eta
        model_output = model_output.to(h_t.dtype)  # a bf16 (autocast) network output; the state stays float32
        mu = 0.0 if mu is None else mu
        std = 1.0 if std is None else std
        a_t = self._abar(t, h_t)
        a_prev = self._abar(t_prev, h_t)
        y_t = h_t - mu
        if prediction == "x0":
            x0 = model_output
            y0 = x0 - mu
            eps_g = (y_t - a_t.sqrt() * y0) / (1.0 - a_t).sqrt()
        else:
            eps_g = std * model_output
            # eps-prediction divides by sqrt(abar_t), ~1e-3 at the end of a cosine schedule, so a small eps
            # error becomes metres of x0 error; clip_x0 (on by default, 2 m) bounds x0 diffusers-style: the
            # eps estimate is kept, only x0 is clipped. x0-prediction never clips.
            x0 = x0_from_eps(h_t, model_output, a_t, mu, std, clip=self.clip_x0)
            y0 = x0 - mu
        if isinstance(t_prev, int) and t_prev < 0:
            prev = x0  # abar_prev = 1: the clean state is the estimate itself (exact, no rounding)
        else:
            s = eta * ((1.0 - a_prev) / (1.0 - a_t)).sqrt() * (1.0 - a_t / a_prev).sqrt()
            y_prev = a_prev.sqrt() * y0 + (1.0 - a_prev - s ** 2).clamp_min(0).sqrt() * eps_g
            if eta > 0:
                if noise is None:
                    noise = torch.randn(h_t.shape, generator=generator, dtype=h_t.dtype, device=h_t.device)
                y_prev = y_prev + s * std * noise
            prev = y_prev + mu
        if self.keep_root:
            prev, x0 = prev.clone(), x0.clone()
            prev[:, 0] = 0.0
            x0[:, 0] = 0.0
        return StepOutput(prev, x0)

    def _abar(self, t: int | Tensor, like: Tensor) -> Tensor:
        # A per-(device, dtype) copy of the padded table, so that no step copies host -> device.
        key = (like.device, like.dtype)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = self.schedule.alpha_bar(
                torch.arange(-1, self.schedule.num_steps)).to(device=like.device, dtype=like.dtype)
        if isinstance(t, int):
            self.schedule.check_range(t, t)
            return table[t + 1]
        return table[t.long() + 1].view(-1, *([1] * (like.ndim - 1)))
