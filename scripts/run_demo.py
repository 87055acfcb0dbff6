#!/usr/bin/env python
"""Build the demo results the dashboard and notebooks open on: train DiffPose and every baseline on the
embedded demo data, evaluate each on the held-out subject, and write OUT/<model>.nc.

    python scripts/run_demo.py --out results/demo                       # configs/demo.yaml, minutes on 2 cores
    python scripts/run_demo.py --out results/smoke --config configs/smoke.yaml   # seconds (tests, notebooks)

Every step is a `diffpose-viz` command, printed before it runs. Finished runs are reused (a run folder with
best.pt is not retrained) unless --force. The demo dataset is built first if it is missing.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

from diffpose_viz.methods import METHODS, applicable, load_config, training_order
from diffpose_viz.entry import run_script

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "diffpose_viz.cli", *args]
    print("$ diffpose-viz " + " ".join(shlex.quote(a) for a in args), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--out", default="results/demo", help="folder for the results .nc files")
    ap.add_argument("--runs", default=None, help="folder for checkpoints (default: runs/<config name>)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--methods", nargs="+", default=None, choices=list(METHODS),
                    help="default: every method the config can run (methods.applicable)")
    ap.add_argument("--force", action="store_true", help="retrain even when a checkpoint exists")
    args = ap.parse_args(argv)

    config = Path(args.config)
    out = Path(args.out)
    runs = Path(args.runs) if args.runs else REPO / "runs" / config.stem
    out.mkdir(parents=True, exist_ok=True)
    if not (REPO / "data/demo/data_3d_demo.npz").exists():
        run(["data", "demo"])

    t0 = time.time()
    cfg = load_config(config)
    chosen = args.methods or applicable(cfg)
    for name in training_order(chosen):
        method = METHODS[name]
        run_dir = runs / name
        overrides = ["--override", f"method={name}"]
        if method.lifter_checkpoint_key:  # stage 1 (the lifter, or the temporal lifter for video) trains first
            overrides += ["--override", f"{method.lifter_checkpoint_key}={runs / method.stage1(cfg) / 'best.pt'}"]
        if args.force or not (run_dir / "best.pt").exists():
            run(["train", str(config), "--out", str(run_dir), "--device", args.device, "--force", *overrides])
        result = out / f"{method.model_name}.nc"
        evaluate = ["evaluate", str(run_dir / "best.pt"), "--out", str(result), "--device", args.device, "--force"]
        if method.has_trajectory:
            evaluate.append("--record-trajectory")
        run(evaluate)
    print(f"demo results in {out} ({time.time() - t0:.0f} s); open them with: diffpose-viz dashboard --results {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
