"""Time one what-if rerun: one frame, N hypotheses, K steps, H_K re-fitted (median of repeated runs).

    OMP_NUM_THREADS=1 python scripts/bench_lab.py --results results/smoke/diffpose.nc

The model is loaded once (the dashboard and notebooks cache it); each timed run edits the 2D (hides a
joint) and calls `lab.rerun`, so it includes the H_K fit, the sampling with recorded trajectory and the
per-joint statistics.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from diffpose_viz import lab
from diffpose_viz.inference import load_model
from diffpose_viz.entry import run_script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results/smoke/diffpose.nc")
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--hypotheses", type=int, default=20)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--hide", default="left_wrist")
    args = ap.parse_args()
    sample = lab.open_sample(args.results, args.index)
    model = load_model(sample.checkpoint)
    edited = lab.edit_2d(sample, hide=[args.hide])
    lab.rerun(model, edited, args.hypotheses, args.steps, seed=0)  # warm-up
    times = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        lab.rerun(model, edited, args.hypotheses, args.steps, seed=r)
        times.append(time.perf_counter() - t0)
    print(f"lab.rerun {model.name} ({sample.checkpoint}), 1 frame, N={args.hypotheses}, K={args.steps}, "
          f"{torch.get_num_threads()} torch thread(s): median {statistics.median(times) * 1000:.1f} ms over "
          f"{args.repeats} runs (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})")


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
