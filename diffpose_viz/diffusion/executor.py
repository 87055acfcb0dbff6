"""The one executor around every sampler: tiles of frames, worker threads, autocast in those threads, the
memory check before the up-front draws, and the recorded trajectory.

`run_chain(sampler, denoiser, context, N, ...)`: N hypotheses per frame. The sampler draws every random number
in `start` (kernels, start states, per-step noise), so the result does not depend on the tiling (to float
rounding). On CPU the reverse loop runs over tiles of frames (every hypothesis of a frame in the same tile) so that
a tile's activations stay in the core's cache across layers and steps, and tiles run on worker threads, each op
on one core (1.28x faster on 2 cores, docs/BENCHMARKS.md); on GPU one tile.

A denoiser with a `conditioned(context, n_frames)` method (GraFormerDenoiser, in eval mode) is specialised per
tile so that per-frame and per-step terms are computed once; any other callable `denoiser(h_t, t_vec, context)`
works with the context repeated per hypothesis.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import torch

from diffpose_viz.diffusion.sampler import ChainState, Denoiser, GMMLike, SampleResult, Sampler
from diffpose_viz.memory import check_fits

Tensor = torch.Tensor


@torch.no_grad()
def run_chain(sampler: Sampler, denoiser: Denoiser, context: Tensor | None, n_hypotheses: int, *,
              gmm: GMMLike | None = None, start_from: Tensor | None = None, batch_size: int | None = None,
              generator: torch.Generator | None = None, record: str | Sequence[int] = "none",
              chunk_frames: int | str | None = "auto", workers: int | str = "auto") -> SampleResult:
    """N hypotheses per frame from `sampler` (see the module docstring).

    context (B,17,C) or None; gmm: H_K, weights (B,17,M), means/variances (B,17,M,3) (the gmm mode's start);
    start_from: a state that replaces the start draw (B,17,D) or (B,N,17,D); batch_size: B when nothing else
    gives it. record: 'none', 'all', or indices of states (0 = start, n_steps = final; negatives count back).
    chunk_frames: frames per tile (None: all in one tile; 'auto': one tile on GPU, about CPU_TILE_ROWS states per
    tile on CPU). workers: CPU only, tiles run this many at a time ('auto' = torch.get_num_threads()); torch's
    intra-op thread count is set to 1 meanwhile and restored."""
    N = int(n_hypotheses)
    if N < 1:
        raise ValueError(f"sample: n_hypotheses must be >= 1, found {n_hypotheses}")
    B = sampler.frames(gmm, context, start_from, batch_size)
    _check_memory(B, N, len(sampler.timesteps()), record, sampler.draws_step_noise())
    first = sampler.start(B, N, gmm=gmm, start_from=start_from, context=context, generator=generator)
    device = first.x.device
    tile = _tile_frames(chunk_frames, B, N, device)
    tiles = [(s, min(B, s + tile)) for s in range(0, B, tile)]
    dev_type = device.type
    amp = (torch.is_autocast_enabled(dev_type), torch.get_autocast_dtype(dev_type))

    def run_tile(span: tuple[int, int]) -> SampleResult:
        s, e = span
        # grad mode and autocast are thread-local: restate them for worker threads
        with torch.no_grad(), torch.autocast(dev_type, dtype=amp[1], enabled=amp[0]):
            denoise = _frame_batched(denoiser, None if context is None else context[s:e], e - s, N)
            return _run(sampler, first.tile(s, e, denoise), record, e - s, N)

    n_workers = _n_workers(workers, len(tiles), device)
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
    out.kernel = first.kernel
    return out


def _run(sampler: Sampler, state: ChainState, record: str | Sequence[int], B: int, N: int) -> SampleResult:
    """The reverse loop of one tile: the sampler's steps, and the recorded states and estimates."""
    timesteps = sampler.timesteps()
    n = len(timesteps)
    state_t = list(timesteps) + [-1]
    slots = _record_slots(record, n + 1)
    x = state.x
    traj = x0_traj = None
    if slots:
        traj = x.new_empty((len(slots), *x.shape))
        x0_traj = x.new_empty((len(slots), *x.shape))
    for i, t in enumerate(timesteps):
        nxt, x0 = sampler.step(state, t)
        if i in slots:
            traj[slots[i]] = state.x
            x0_traj[slots[i]] = x0
        state = nxt
    x = state.x
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
