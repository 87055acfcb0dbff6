"""Interleaved A/B of training steps in one process: `bench --train`'s step (the trainer's batching, the method's
loss, backward, `apply_update`) for two settings of one row, stepped A B A B …, each step timed by the wall clock
and by this process's CPU time (`train.threads` in --a / --b sets each setting's threads; compare those by
the wall clock). On a shared machine the CPU time of a one-thread step is barely moved by other
jobs (the wall clock moves ±30 %), so its pairwise median ratio is the figure to quote for one-thread changes.

    python scripts/ab_train_steps.py --row lifter --pairs 8 --a train.dropout_mask=bits
    python scripts/ab_train_steps.py --row video_lifter_T9 --pairs 4 --a train.dropout_mask=bits

Prints per-pair ratios B/A (time of the default over time of the change: > 1 means the change is faster).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from diffpose_viz import inputs
from diffpose_viz.config import ExperimentConfig, apply_overrides, to_dict
from diffpose_viz.methods import config_from_dict, get_method
from diffpose_viz.models.dropout import use_dropout_mask
from diffpose_viz.training import bench, perf
from diffpose_viz.training.ema import EMA
from diffpose_viz.training.trainer import apply_update, make_batch
from diffpose_viz.entry import run_script


def setup(row: str, overrides: list[str], dev: torch.device):
    base = config_from_dict(apply_overrides(to_dict(ExperimentConfig()), overrides, "ab"), "ab")
    cfg = bench.row_config(base, row, "cpu", None, False)
    method = get_method(cfg.method)
    frames = inputs.window_length(cfg, method) or 1
    data = bench.synthetic_split(4096, frames, inputs.hk_needed(method, "train"), cfg.init.n_kernels, dev)
    torch.manual_seed(0)
    net = use_dropout_mask(method.build_network(cfg).to(dev), cfg.train.dropout_mask)
    net.train()
    fwd = perf.forward_module(net, dev, perf.resolve_amp(cfg.train.amp, dev), cfg.train.compile)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.train.lr)
    ema = EMA(net, cfg.train.ema_decay)
    schedule = method.build_schedule(cfg, dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    B = cfg.train.batch_size
    if cfg.train.cache_context:
        data.context = method.frozen_context(net, data.cond, data.windows, B)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))

    def step(i: int) -> None:
        s = (i * B) % (len(data) - B + 1)
        loss, _ = method.loss(fwd, make_batch(data, order[s:s + B], schedule, gen, cfg))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        apply_update(net, opt, ema, cfg.train.grad_clip)

    return step, B, cfg.train.threads


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--row", default="lifter")
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--a", nargs="*", default=[], help="overrides of setting A (the change)")
    p.add_argument("--b", nargs="*", default=[], help="overrides of setting B (default: the defaults)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device("cpu")
    (step_a, B, threads_a), (step_b, _, threads_b) = setup(args.row, args.a, dev), setup(args.row, args.b, dev)
    threads = {"a": threads_a or args.threads, "b": threads_b or args.threads}  # train.threads: per setting
    for i in range(args.warmup):
        for name, step in (("a", step_a), ("b", step_b)):
            torch.set_num_threads(threads[name])
            step(i)
    wall, cpu = [], []
    for i in range(args.pairs):
        t = {}
        for name, step in (("a", step_a), ("b", step_b)):
            torch.set_num_threads(threads[name])
            w0, c0 = time.perf_counter(), time.process_time()
            step(args.warmup + i)
            t[name] = (time.perf_counter() - w0, time.process_time() - c0)
        wall.append(t["b"][0] / t["a"][0])
        cpu.append(t["b"][1] / t["a"][1])
        print(f"pair {i}: A {t['a'][0] * 1e3:.0f} ms wall / {t['a'][1] * 1e3:.0f} ms cpu, "
              f"B {t['b'][0] * 1e3:.0f} / {t['b'][1] * 1e3:.0f}", flush=True)
    for what, r in (("wall", wall), ("cpu", cpu)):
        print(f"{args.row} A={args.a} vs B={args.b or 'defaults'} (batch {B}): B/A {what} time pairwise median "
              f"{statistics.median(r):.3f} (min {min(r):.3f}, max {max(r):.3f}, {len(r)} pairs)")


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
