"""DDIM sampling over the GMM diffusion, with optional trajectories.

We work in the shifted variable y = h - mu_G, in which the GMM forward process is an ordinary
Gaussian one with noise eps_G = sigma_G * eps: y_t = sqrt(abar_t) y_0 + sqrt(1 - abar_t) eps_G.
Each hypothesis draws one kernel per joint at the start and keeps its (mu_G, sigma_G) for the
whole trajectory. The DDIM update (Song et al.) in y, with eta scaling the fresh noise:

    eps_G_hat = (y_t - sqrt(abar_t) y0_hat) / sqrt(1 - abar_t)
    y_prev    = sqrt(abar_prev) y0_hat + sqrt(1 - abar_prev - s^2) eps_G_hat + s * sigma_G * z
    s         = eta * sqrt((1 - abar_prev) / (1 - abar_t)) * sqrt(1 - abar_t / abar_prev)

The denoiser is any callable `denoiser(h_t (R,17,D), t (R,) long, context (R,17,C) | None)`
returning either the h_0 estimate ('x0') or the standard-normal eps ('eps'; the noise it stands
for is sigma_G * eps). In 'official' sampling the denoiser predicts the scaled noise itself, which
is the same update with mu = 0, sigma = 1.

GPU note: inside the step loop nothing reads a value back to the host (no .item(), .cpu(), or
data-dependent Python branches); timesteps are Python ints, recordings are written into
preallocated device tensors and only the caller decides when to move results to the CPU.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, NamedTuple, Protocol, Sequence

import torch

from diffpose_viz.diffusion.forward import draw_kernels, kernel_params, x0_from_eps
from diffpose_viz.memory import check_fits
from diffpose_viz.diffusion.schedule import (
    SKIP_KINDS,
    NoiseSchedule,
    official_timesteps,
)

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


@dataclass
class SampleResult:
    hypotheses: Tensor  # (B,N,17,D) final states
    trajectory: Tensor | None  # (B,N,S,17,D) recorded states h_t; state 0 = start, state n_steps = final
    x0_trajectory: Tensor | None  # (B,N,S,17,D) x0 estimate made from each recorded state (final: itself)
    timesteps: list[int]  # diffusion t of each recorded state (-1 = clean); all states if nothing recorded
    kernel: Tensor | None = None  # (B,N,17) GMM kernel each hypothesis drew per joint (gmm mode)
    step_timesteps: list[int] | None = None  # the t of each denoiser call, descending


class DDIMSampler:
    """DDIM over the GMM (or, in 'gaussian' mode, the standard) diffusion.

    eta = 0 is deterministic given the start state. `keep_root` holds joint 0 at the origin.
    `clip_x0` (metres, eps-prediction only) bounds the x0 estimate to [-clip_x0, clip_x0].
    """

    def __init__(self, schedule: NoiseSchedule, *, eta: float = 0.0, mode: str = "gmm",
                 gaussian_scale: float = 1.0, skip: str = "uniform", keep_root: bool = True,
                 clip_x0: float | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"DDIMSampler: mode must be one of {MODES}, found {mode!r}")
        if skip not in SKIP_KINDS:
            raise ValueError(f"DDIMSampler: skip must be one of {SKIP_KINDS}, found {skip!r}")
        if eta < 0:
            raise ValueError(f"DDIMSampler: eta must be >= 0, found {eta}")
        self.schedule = schedule
        self.eta = float(eta)
        self.mode = mode
        self.gaussian_scale = float(gaussian_scale)
        self.skip = skip
        self.keep_root = keep_root
        if clip_x0 is not None and clip_x0 <= 0:
            raise ValueError(f"DDIMSampler: clip_x0 must be a positive bound (metres) or None, found {clip_x0}")
        self.clip_x0 = clip_x0
        self._tables: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    # ------------------------------------------------------------------ one step
    def step(self, model_output: Tensor, t: int | Tensor, t_prev: int | Tensor, h_t: Tensor,
             mu: Tensor | float | None = None, std: Tensor | float | None = None, *,
             prediction: str = "x0", eta: float | None = None, generator: torch.Generator | None = None,
             noise: Tensor | None = None, keep_root: bool | None = None) -> StepOutput:
        """One DDIM move from step t to t_prev (< t; -1 = clean). mu/std default to 0/1.

        t, t_prev are ints (one step for the whole batch) or integer tensors of shape (R,).
        `noise` fixes the fresh N(0, I) draw used when eta > 0; keep_root defaults to the sampler's.
        """
        if prediction not in PREDICTIONS:
            raise ValueError(f"DDIMSampler.step: prediction must be one of {PREDICTIONS}, found {prediction!r}")
        if isinstance(t, int) and isinstance(t_prev, int) and t_prev >= t:
            raise ValueError(f"DDIMSampler.step: t_prev must be below t, found t={t}, t_prev={t_prev}")
        eta = self.eta if eta is None else float(eta)
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
        keep_root = self.keep_root if keep_root is None else keep_root
        if keep_root:
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

    # ------------------------------------------------------------------ the paper's sampler
    @torch.no_grad()
    def sample(self, denoiser: Denoiser, context: Tensor | None, gmm: GMMLike | None, n_hypotheses: int,
               n_steps: int, *, prediction: str | None = None, generator: torch.Generator | None = None,
               record: str | Sequence[int] = "none", start_from: Tensor | None = None, t_max: int | None = None,
               batch_size: int | None = None, chunk_frames: int | str | None = "auto",
               workers: int | str = "auto") -> SampleResult:
        """N hypotheses per frame: draw h_K from H_K (gmm mode) or N(0, scale^2 I) (gaussian mode),
        then n_steps DDIM moves over `schedule.ddim_timesteps(n_steps, skip, t_max)`.

        context (B,17,C) or None; gmm has weights (B,17,M), means/variances (B,17,M,3) (unused in
        gaussian mode, where B comes from gmm, context or batch_size). start_from (B,17,3) or (B,N,17,3)
        replaces the draw from H_K as the state at t_max (kernels are still drawn for mu_G, sigma_G).
        record: 'none', 'all', or indices of states (0 = start, n_steps = final; negatives count back).
        chunk_frames: run the reverse loop over tiles of this many frames (every hypothesis of a frame in
        the same tile), so that a tile's activations stay in the CPU's cache across layers and steps;
        None = all frames in one tile (one forward per step); 'auto' = None on GPU and about
        CPU_TILE_ROWS states per tile on CPU. All random draws happen before the loop, so the result
        does not depend on the tiling (to float rounding).
        workers: CPU only, tiles run this many at a time on threads, each op on one core, instead of
        splitting every small op across cores ('auto' = torch.get_num_threads(); 1.28x faster on 2
        cores, docs/BENCHMARKS.md). torch's intra-op thread count is set to 1 meanwhile and restored.

        The start is exact only if abar at t_max is about 0 (h_K then follows H_K); with a weak schedule
        (e.g. the official one, abar_50 = 0.972) the draw from H_K is treated as the state at t_max anyway.
        """
        prediction = _resolve_prediction(prediction, denoiser)
        N = int(n_hypotheses)
        if N < 1:
            raise ValueError(f"sample: n_hypotheses must be >= 1, found {n_hypotheses}")
        timesteps = self.schedule.ddim_timesteps(n_steps, self.skip, t_max)
        kernel = None
        if self.mode == "gmm":
            if gmm is None:
                raise ValueError("sample: gmm mode needs the H_K mixture (weights/means/variances), found None")
            weights, means, variances = gmm.weights, gmm.means, gmm.variances
            if weights.ndim != 3 or weights.shape[1] != 17 or means.shape != (*weights.shape, 3) \
                    or variances.shape != means.shape:
                raise ValueError("sample: gmm weights must be (B,17,M) and means/variances (B,17,M,3), found "
                                 f"{tuple(weights.shape)}, {tuple(means.shape)}, {tuple(variances.shape)}")
            B = weights.shape[0]
            _check_memory(B, N, len(timesteps), record, self.eta > 0)
            dtype = means.dtype if means.dtype.is_floating_point else torch.float32
            kernel = draw_kernels(weights, N, generator)
            mu, std = kernel_params(means.to(dtype), variances.to(dtype), kernel)  # (B,N,17,3)
        else:
            B = _batch_size(gmm, context, batch_size)
            _check_memory(B, N, len(timesteps), record, self.eta > 0)
            device = _device_of(gmm, context, start_from)
            dtype = torch.float32
            mu = torch.zeros(B, N, 17, 3, device=device, dtype=dtype)
            std = torch.full_like(mu, self.gaussian_scale)
        if self.keep_root:
            mu[:, :, 0] = 0.0
            std[:, :, 0] = 0.0
        if start_from is None:
            x = mu + std * torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        else:
            x = _broadcast_start(start_from, B, N, 3).to(mu)
        noise = None
        if self.eta > 0:  # drawn up front so that the tiling does not change which draw a state gets
            noise = torch.randn((len(timesteps), B, N, 17, 3), generator=generator, dtype=mu.dtype, device=mu.device)
        tile = _tile_frames(chunk_frames, B, N, mu.device)
        tiles = [(s, min(B, s + tile)) for s in range(0, B, tile)]
        dev_type = mu.device.type
        amp = (torch.is_autocast_enabled(dev_type), torch.get_autocast_dtype(dev_type))

        def run_tile(span: tuple[int, int]) -> SampleResult:
            s, e = span
            # grad mode and autocast are thread-local: restate them for worker threads
            with torch.no_grad(), torch.autocast(dev_type, dtype=amp[1], enabled=amp[0]):
                return self._run(
                    _frame_batched(denoiser, None if context is None else context[s:e], e - s, N),
                    x[s:e].reshape(-1, 17, 3), mu[s:e].reshape(-1, 17, 3), std[s:e].reshape(-1, 17, 3), timesteps,
                    prediction, generator, record, e - s, N,
                    noise=None if noise is None else noise[:, s:e].reshape(len(timesteps), -1, 17, 3))

        n_workers = _n_workers(workers, len(tiles), mu.device)
        if n_workers > 1:
            intra = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                with ThreadPoolExecutor(n_workers) as pool:
                    parts = list(pool.map(run_tile, tiles))
            finally:
                torch.set_num_threads(intra)
        else:
            parts = [run_tile(span) for span in tiles]
        out = parts[0] if len(parts) == 1 else _concat_results(parts)
        out.kernel = kernel
        return out

    # ------------------------------------------------------------------ the released code's sampler
    @torch.no_grad()
    def official_sample(self, denoiser: Denoiser, x_init: Tensor, test_num_diffusion_timesteps: int,
                        test_timesteps: int, *, context: Tensor | None = None,
                        generator: torch.Generator | None = None, record: str | Sequence[int] = "none",
                        n_hypotheses: int | None = None) -> SampleResult:
        """The official test procedure (notes §2c): DDIM (this sampler's eta, 0 in the code) on the
        uvxyz state, eps-prediction of the scaled noise, starting from the *clean* initial pose
        x_init (B,17,D) or (B,N,17,D) labelled as the first step of
        seq = range(0, T_test, T_test // steps) reversed; the last move goes to abar = 1.

        The root is not touched (uv are not root-relative); callers root-centre the xyz output.
        """
        if x_init.ndim == 3:
            B, N = x_init.shape[0], n_hypotheses or 1
        elif x_init.ndim == 4:
            B, N = x_init.shape[:2]
        else:
            raise ValueError(f"official_sample: x_init must be (B,17,D) or (B,N,17,D), found {tuple(x_init.shape)}")
        D = x_init.shape[-1]
        x = _broadcast_start(x_init, B, N, D)
        timesteps = official_timesteps(test_num_diffusion_timesteps, test_timesteps, self.skip)
        if timesteps[0] > self.schedule.num_steps - 1:
            raise ValueError(f"official_sample: first step {timesteps[0]} exceeds the schedule's "
                             f"{self.schedule.num_steps - 1}")
        return self._run(_frame_batched(denoiser, context, B, N), x.reshape(B * N, 17, D), None, None,
                         timesteps, "eps", generator, record, B, N, keep_root=False)

    # ------------------------------------------------------------------ shared loop
    def _run(self, denoise: Callable[[Tensor, int], Tensor], x: Tensor, mu: Tensor | None,
             std: Tensor | None, timesteps: list[int], prediction: str, generator: torch.Generator | None,
             record: str | Sequence[int], B: int, N: int, keep_root: bool | None = None,
             noise: Tensor | None = None) -> SampleResult:
        keep_root = self.keep_root if keep_root is None else keep_root
        n = len(timesteps)
        state_t = list(timesteps) + [-1]
        slots = _record_slots(record, n + 1)
        traj = x0_traj = None
        if slots:
            traj = x.new_empty((len(slots), *x.shape))
            x0_traj = x.new_empty((len(slots), *x.shape))
        if keep_root:
            x = x.clone()
            x[:, 0] = 0.0
        self._abar(0, x)  # build the device copy of the alpha_bar table now: a blocking copy in the loop would sync
        for i, (t, t_prev) in enumerate(zip(state_t[:-1], state_t[1:])):
            out = self.step(denoise(x, t), t, t_prev, x, mu, std, prediction=prediction,
                            generator=generator, keep_root=keep_root, noise=None if noise is None else noise[i])
            if i in slots:
                traj[slots[i]] = x
                x0_traj[slots[i]] = out.x0
            x = out.prev
        if n in slots:
            traj[slots[n]] = x
            x0_traj[slots[n]] = x

        def per_sample(rec: Tensor) -> Tensor:  # (S, B*N, 17, D) -> (B, N, S, 17, D)
            return rec.view(rec.shape[0], B, N, *rec.shape[2:]).permute(1, 2, 0, 3, 4)

        return SampleResult(
            hypotheses=x.view(B, N, *x.shape[1:]),
            trajectory=None if traj is None else per_sample(traj),
            x0_trajectory=None if x0_traj is None else per_sample(x0_traj),
            timesteps=[state_t[s] for s in sorted(slots)] if slots else state_t,
            step_timesteps=list(timesteps),
        )


# ---------------------------------------------------------------------- helpers
def _resolve_prediction(prediction: str | None, denoiser) -> str:
    if prediction is None:
        prediction = getattr(denoiser, "prediction", None)
        if prediction is None:
            raise ValueError("sample: pass prediction='x0' or 'eps' (the denoiser has no .prediction attribute)")
    if prediction not in PREDICTIONS:
        raise ValueError(f"sample: prediction must be one of {PREDICTIONS}, found {prediction!r}")
    return prediction


def _record_slots(record: str | Sequence[int], n_states: int) -> dict[int, int]:
    """Map state index -> slot in the recording buffer."""
    if isinstance(record, str):
        if record == "none":
            return {}
        if record == "all":
            return {s: s for s in range(n_states)}
        raise ValueError(f"record must be 'none', 'all' or a list of state indices, found {record!r}")
    states = set()
    for s in record:
        s = int(s)
        if not -n_states <= s < n_states:
            raise ValueError(f"record: state index {s} out of range for {n_states} states (0 = start, "
                             f"{n_states - 1} = final)")
        states.add(s % n_states)
    return {s: k for k, s in enumerate(sorted(states))}


def _batch_size(gmm, context: Tensor | None, batch_size: int | None) -> int:
    if gmm is not None:
        return gmm.weights.shape[0]
    if context is not None:
        return context.shape[0]
    if batch_size is None:
        raise ValueError("sample: gaussian mode needs the batch size from gmm, context or batch_size=")
    return int(batch_size)


def _device_of(*objs) -> torch.device:
    for o in objs:
        if isinstance(o, Tensor):
            return o.device
        if o is not None and hasattr(o, "means"):
            return o.means.device
    return torch.device("cpu")


def _broadcast_start(start: Tensor, B: int, N: int, D: int) -> Tensor:
    if start.shape == (B, 17, D):
        return start.unsqueeze(1).expand(B, N, 17, D)
    if start.shape == (B, N, 17, D):
        return start
    raise ValueError(f"start state must have shape ({B}, 17, {D}) or ({B}, {N}, 17, {D}), found {tuple(start.shape)}")


#: States per tile on CPU: 17 joints x 96 channels x 4 bytes x 128 states is 0.8 MB per activation, about
#: what stays in a core's L2 between layers (docs/BENCHMARKS.md, "Sampler throughput (CPU)").
CPU_TILE_ROWS = 128


def _n_workers(workers: int | str, n_tiles: int, device: torch.device) -> int:
    if workers != "auto" and (isinstance(workers, str) or int(workers) < 1):
        raise ValueError(f"sample: workers must be a positive int or 'auto', found {workers!r}")
    if device.type != "cpu":
        return 1
    return min(torch.get_num_threads() if workers == "auto" else int(workers), n_tiles)


def _tile_frames(chunk_frames: int | str | None, B: int, N: int, device: torch.device) -> int:
    if chunk_frames is None:
        return max(B, 1)
    if chunk_frames == "auto":
        return max(B, 1) if device.type != "cpu" else max(1, CPU_TILE_ROWS // N)
    if isinstance(chunk_frames, str) or int(chunk_frames) < 1:
        raise ValueError(f"sample: chunk_frames must be a positive int, None or 'auto', found {chunk_frames!r}")
    return int(chunk_frames)


def _concat_results(parts: list[SampleResult]) -> SampleResult:
    def cat(name: str) -> Tensor | None:
        first = getattr(parts[0], name)
        return None if first is None else torch.cat([getattr(p, name) for p in parts], 0)

    return SampleResult(hypotheses=cat("hypotheses"), trajectory=cat("trajectory"),
                        x0_trajectory=cat("x0_trajectory"), timesteps=parts[0].timesteps,
                        step_timesteps=parts[0].step_timesteps)


def _frame_batched(denoiser: Denoiser, context: Tensor | None, B: int, N: int) -> Callable[[Tensor, int], Tensor]:
    """denoise(states (B*N,17,D), t int) for the loop. A denoiser in eval mode with a
    `conditioned(context, n_frames)` method (GraFormerDenoiser) gets its fast path, which computes the
    per-frame and per-step terms once instead of for every hypothesis; any other callable is called
    with the context repeated per hypothesis."""
    if context is not None and context.shape[0] != B:
        raise ValueError(f"context batch {context.shape[0]} != number of frames {B}")
    conditioned = getattr(denoiser, "conditioned", None)
    if conditioned is not None and not getattr(denoiser, "training", True):
        fast = conditioned(context, B)
        return fast
    ctx = _repeat_context(context, B, N)
    return lambda x, t: denoiser(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device), ctx)


def _repeat_context(context: Tensor | None, B: int, N: int) -> Tensor | None:
    """(B,17,C) -> (B*N,17,C), hypothesis-major within each frame (matches the state layout)."""
    if context is None:
        return None
    return context.unsqueeze(1).expand(B, N, *context.shape[1:]).reshape(B * N, *context.shape[1:])


def _check_memory(frames: int, n: int, n_steps: int, record, eta_noise: bool) -> None:
    """Refuse, before the up-front draws, a batch whose states would not fit: kernels, means, spreads, the
    state and its estimates (about 8 state-sized tensors), the eta noise of every step, recorded states."""
    recorded = 0 if isinstance(record, str) and record == "none" else (
        n_steps + 1 if isinstance(record, str) else len(list(record)))
    states = 8 + (n_steps if eta_noise else 0) + 2 * recorded
    check_fits(frames * n * 17 * 3 * 4 * states, f"sampling {frames} frames x {n} hypotheses",
               "the hypotheses (--hypotheses) or the frames per batch (--batch-size, --batch-sizes)")
