"""`diffpose-viz bench`: how fast the batched sampler lifts poses, against a naive loop.

For every (N hypotheses, K DDIM steps, batch size B) it times
- batched: one `DDIMSampler.sample` call for B frames x N hypotheses (all B*N states in one tensor);
- naive: one call per frame and per hypothesis (B = N = 1), as a per-sample Python loop would do,
  timed on a few frames and reported per pose;
and reports poses/second (one pose = one hypothesis of one frame), peak memory (GPU:
torch.cuda.max_memory_allocated; CPU: peak resident set size, reset per measurement through
/proc/self/clear_refs where Linux allows it), and the achieved FLOP rate (FLOPs counted with
torch.utils.flop_counter over one whole batched call) against the device's measured float32 matmul rate.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from diffpose_viz.atomic import atomic_write_text
from diffpose_viz.initialization.pose_init import PoseGMM
from diffpose_viz.training.bench import count_flops as _count_flops
from diffpose_viz.training.bench import device_name, matmul_peak_gflops  # shared with bench --train
from diffpose_viz.training.bench import sync as _sync


@dataclass
class BenchRow:
    n_hypotheses: int
    n_steps: int
    batch_size: int
    batched_poses_per_s: float
    naive_poses_per_s: float
    speedup: float
    peak_mem_mb: float
    achieved_gflops: float
    pct_of_matmul_peak: float


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: writing 5 resets the peak RSS (VmHWM) of this process
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_inputs(B: int, M: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, PoseGMM]:
    """Random 2D input (B,17,3) and an H_K-shaped mixture (B,17,M) for timing only (values do not matter)."""
    g = torch.Generator().manual_seed(seed)
    cond = torch.cat([torch.rand(B, 17, 2, generator=g) * 2 - 1, torch.ones(B, 17, 1)], -1).to(device)
    w = torch.softmax(torch.randn(B, 17, M, generator=g), -1)
    mu = 0.3 * torch.randn(B, 17, M, 3, generator=g)
    var = torch.full((B, 17, M, 3), 0.01)
    return cond, PoseGMM(w.to(device), mu.to(device), var.to(device))


def _time(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def parse_tile(value: str) -> int | str | None:
    """CLI value of --tile-frames: 'auto', 'none' or a positive int."""
    if value == "none":
        return None
    return parse_workers(value, "--tile-frames", "'auto', 'none' or an integer >= 1")


def parse_workers(value: str, option: str = "--workers", expected: str = "'auto' or an integer >= 1") -> int | str:
    """CLI value of --workers (and a number of --tile-frames): 'auto' or a positive int."""
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{option}: expected {expected}, found {value!r}")
    return n


def run_bench(*, device: str = "cpu", hypotheses=(1, 5, 10), steps=(1, 5, 10), batch_sizes=(64, 256),
              checkpoint: str | None = None, out: str | None = None, naive_max: int = 8, repeats: int = 2,
              kernels: int = 5, tile_frames: int | str | None = "auto", workers: int | str = "auto",
              amp: str | None = None, verbose: bool = True) -> list[BenchRow]:
    """Time the sampler on `device` for every (N, K, B). FLOP rates use the FLOPs each batched call
    executes (context encoder included), so work saved by the fast path is not counted as done."""
    from diffpose_viz.config import ExperimentConfig
    from diffpose_viz.inference import autocast, load_model
    from diffpose_viz.inputs import window_length
    from diffpose_viz.diffusion import SamplingSetting, run_chain
    from diffpose_viz.methods import LoadedModel, get_method, names

    for name, values in (("--batch-sizes", batch_sizes), ("--hypotheses", hypotheses), ("--steps", steps)):
        if not values or any(int(v) < 1 for v in values):
            raise ValueError(f"bench {name}: expected integers >= 1, found {list(values)}")
    dev = torch.device(device)
    if checkpoint:
        loaded = load_model(checkpoint, dev)
        cfg, net, method = loaded.cfg, loaded.network, loaded.method
        if not method.samples_with_ddim:
            raise ValueError(f"bench: {checkpoint} is a '{cfg.method}' model; the benchmark times the diffusion "
                             f"sampler ({' or '.join(names(samples_with_ddim=True))})")
        if window_length(cfg, method) is not None:
            raise ValueError("bench: video-context models are not supported; use a frame-context checkpoint")
    else:
        cfg = ExperimentConfig()
        method = get_method(cfg.method)
        torch.manual_seed(0)
        net = method.build_network(cfg).to(dev).eval()
        loaded = LoadedModel(cfg, method, net, None, device=dev)
    num_steps = method.build_schedule(cfg, dev).num_steps
    peak = matmul_peak_gflops(dev)
    rows: list[BenchRow] = []
    gen = torch.Generator(device=dev).manual_seed(0)
    flops_pose_step = None
    for B in batch_sizes:
        cond, gmm = synthetic_inputs(B, kernels, dev)
        for N in hypotheses:
            for K in steps:
                if K > num_steps:
                    continue
                # the whole schedule, as every row of the table (a checkpoint's own start_t is not timed)
                asked = SamplingSetting(N, K, start_t=num_steps - 1)
                sampler = method.sampler(loaded, method.sampling(cfg, asked))

                @torch.inference_mode()
                def batched(n_workers=workers):
                    with autocast(dev, amp):
                        ctx = net.encode(cond)
                        run_chain(sampler, net.denoiser, ctx, N, gmm=gmm, generator=gen, chunk_frames=tile_frames,
                                  workers=n_workers)

                # The counter sees only its own thread, so count on one worker: the same work is done.
                flops = _count_flops(lambda: batched(1))
                if flops_pose_step is None:
                    flops_pose_step = flops / (B * N * K)
                _reset_peak(dev)
                t_b = _time(batched, dev, repeats)
                mem = _peak_mb(dev)
                nf = min(naive_max, B)

                @torch.inference_mode()
                def naive():
                    for i in range(nf):
                        g1 = gmm.select([i])
                        for _ in range(N):
                            with autocast(dev, amp):
                                run_chain(sampler, net.denoiser, net.encode(cond[i:i + 1]), 1, gmm=g1, generator=gen)

                t_n = _time(naive, dev, repeats)  # best of the same number of repeats as batched
                batched_pps = B * N / t_b
                naive_pps = nf * N / t_n
                achieved = flops / t_b / 1e9
                rows.append(BenchRow(N, K, B, batched_pps, naive_pps, batched_pps / naive_pps, mem, achieved,
                                     100 * achieved / peak))
                if verbose:
                    r = rows[-1]
                    print(f"  N={N:3d} K={K:3d} B={B:5d}: batched {r.batched_poses_per_s:10.0f} poses/s, naive "
                          f"{r.naive_poses_per_s:8.0f} poses/s ({r.speedup:5.1f}x), peak {r.peak_mem_mb:7.0f} MB, "
                          f"{r.achieved_gflops:7.1f} GFLOP/s", flush=True)
    n_params = sum(p.numel() for p in net.denoiser.parameters())
    table = format_table(rows, dev, peak, flops_pose_step or 0.0, n_params, tile_frames, workers, amp)
    print(table)
    if out:
        atomic_write_text(out, json.dumps({"device": str(dev), "device_name": device_name(dev),
                                           "matmul_peak_gflops": peak, "flops_per_pose_step_first_row": flops_pose_step,
                                           "tile_frames": tile_frames, "workers": workers, "amp": amp or "none",
                                           "denoiser_params": n_params,
                                           "rows": [asdict(r) for r in rows]}, indent=2))
    return rows


def format_table(rows: list[BenchRow], dev: torch.device, peak: float, flops_pose_step: float, n_params: int,
                 tile_frames: int | str | None = "auto", workers: int | str = "auto", amp: str | None = None) -> str:
    head = (f"device {dev} [{device_name(dev)}]; measured float32 matmul peak {peak:.1f} GFLOP/s; denoiser "
            f"{n_params:,} params; {flops_pose_step / 1e6:.2f} MFLOP executed per pose per step (first row, "
            f"encoder included); tile_frames={tile_frames}, workers={workers}; amp={amp or 'none'}"
            + (" (bf16 rates are compared with the float32 peak)" if amp == "bf16" else "") + "\n"
            "| N | K | batch | batched poses/s | naive poses/s | speed-up | peak mem (MB) | GFLOP/s | % of matmul peak |\n"
            "|---|---|---|---|---|---|---|---|---|")
    body = [f"| {r.n_hypotheses} | {r.n_steps} | {r.batch_size} | {r.batched_poses_per_s:.0f} | "
            f"{r.naive_poses_per_s:.0f} | {r.speedup:.1f}x | {r.peak_mem_mb:.0f} | {r.achieved_gflops:.1f} | "
            f"{r.pct_of_matmul_peak:.1f} |" for r in rows]
    return "\n".join([head, *body])
