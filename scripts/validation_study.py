#!/usr/bin/env python
"""Why does DiffPose not beat the lifter? Train variants and compare them on the VALIDATION split only.

Every variant is one `diffpose-viz train` run; its score is the best validation MPJPE (mm, mean of the
hypotheses, EMA weights) that the trainer logged. The test split is never loaded for scoring, so the
settings chosen here can be carried to the benchmark without tuning on the test set.

    python scripts/validation_study.py --config configs/bandai_cpu.yaml --out runs/study
    python scripts/validation_study.py --dry-run            # print the variants

Writes OUT/STUDY.md (one row per variant: overrides, best validation MPJPE, epoch, wall time) and reuses
finished runs (a run folder with best.pt) unless --force.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from diffpose_viz.entry import run_script
from diffpose_viz.methods import load_config

REPO = Path(__file__).resolve().parents[1]

# name -> overrides. Each names one suspect: training length, loss form, H_K spread, conditioning.
VARIANTS: dict[str, list[str]] = {
    "lifter": ["method=lifter"],
    "gaussian": ["method=gaussian_diffusion"],
    "diffpose": ["method=diffpose"],
    "lifter_24ep": ["method=lifter", "train.epochs=24"],
    "gaussian_24ep": ["method=gaussian_diffusion", "train.epochs=24"],
    "diffpose_24ep": ["method=diffpose", "train.epochs=24"],
    "gaussian_mpjpe": ["method=gaussian_diffusion", "diffusion.loss=mpjpe"],
    "diffpose_mpjpe": ["method=diffpose", "diffusion.loss=mpjpe"],
    "diffpose_narrow_occluded": ["method=diffpose", "init.occluded_std_px=15", "init.occluded_std_m=0.05"],
    "diffpose_raw2d": ["method=diffpose", "model.context_raw_2d=true"],
    "gaussian_raw2d": ["method=gaussian_diffusion", "model.context_raw_2d=true"],
    "diffpose_wide_context": ["method=diffpose", "model.context_dim=64", "model.context_hidden=64",
                              "model.context_layers=2"],
}


def best_validation(run: Path) -> tuple[float, int]:
    best, epoch = float("inf"), -1
    for line in (run / "train_log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "val_mpjpe_mm" in rec and rec["val_mpjpe_mm"] < best:
            best, epoch = rec["val_mpjpe_mm"], rec["epoch"]
    return best, epoch


def diagnose(run: Path, n_hypotheses: int = 5, n_steps: int | None = None) -> list[tuple[int, float, float]]:
    """Per reverse step on the validation rows of `run`: (t, MPJPE of the mean x0 estimate, mean MPJPE of
    the single hypotheses' x0 estimates), in mm. Shows whether refinement helps or hurts, and where."""
    import numpy as np
    import torch

    from diffpose_viz.inference import SamplingSetting, load_model, predict
    from diffpose_viz.methods import load_config
    from diffpose_viz.training.trainer import Trainer

    cfg = load_config(run / "config.yaml")
    # resume=True: the run folder is an earlier run's, reused read-only (H_K read from run/cache)
    trainer = Trainer(cfg, run, progress=False, resume=True)
    trainer.setup()  # rebuilds the validation split exactly as training did
    data = trainer.val_data
    model = load_model(run / "best.pt", trainer.device)
    sampling = SamplingSetting(n_hypotheses, n_steps, record=True)  # n_steps None: the model's own K
    pred = predict(model, data.batch(np.arange(len(data)), torch.Generator().manual_seed(0)), sampling)
    gt = data.pose3d.cpu().numpy()[:, None, None]  # (R,1,1,17,3)
    x0 = pred.x0_trajectory  # (R,N,S,17,3)
    single = np.linalg.norm(x0 - gt, axis=-1).mean((0, 1, 3)) * 1000
    mean = np.linalg.norm(x0.mean(1, keepdims=True) - gt, axis=-1).mean((0, 1, 3)) * 1000
    return list(zip(pred.timesteps, mean.tolist(), single.tolist()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/bandai_cpu.yaml")
    ap.add_argument("--out", type=Path, default=Path("runs/study"))
    ap.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    ap.add_argument("--extra", nargs="*", default=[], help="overrides applied to every variant before its own")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--diagnose", type=Path, nargs="*", help="run folders: print the per-step validation error "
                    "of the x0 estimate instead of training")
    args = ap.parse_args(argv)
    if args.diagnose:
        for run in args.diagnose:
            print(f"{run}: t, MPJPE of the mean x0 estimate, mean MPJPE of single hypotheses (validation, mm)")
            for t, m, single in diagnose(run):
                print(f"  t={t:3d}  {m:6.1f}  {single:6.1f}")
        return 0
    names = args.only or list(VARIANTS)
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        ap.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    for name in names:  # every variant's config is checked before anything runs (one line naming file and key)
        load_config(args.config, [*args.extra, *VARIANTS[name]])
    rows = []
    for name in names:
        run = args.out / name
        cmd = [sys.executable, "-m", "diffpose_viz.cli", "train", args.config, "--out", str(run), "--no-progress",
               "--force"]
        for ov in [*args.extra, *VARIANTS[name]]:  # a variant's own overrides win
            cmd += ["--override", ov]
        shown = " ".join(shlex.quote(c) for c in ["diffpose-viz", *cmd[3:]])
        if args.dry_run:
            print(shown)
            continue
        wall = None
        if args.force or not (run / "best.pt").exists():
            t0 = time.perf_counter()
            if subprocess.run(cmd, cwd=REPO).returncode != 0:
                raise RuntimeError(f"variant {name}: `{shown}` failed (its error is printed above)")
            wall = time.perf_counter() - t0
            (run / "study_wall_s.txt").write_text(f"{wall:.1f}\n")
        elif (run / "study_wall_s.txt").exists():
            wall = float((run / "study_wall_s.txt").read_text())
        best, epoch = best_validation(run)
        rows.append((name, shown, best, epoch, wall))
        print(f"{name}: best validation MPJPE {best:.1f} mm at epoch {epoch}", flush=True)
    if args.dry_run:
        return 0
    lines = ["| variant | best validation MPJPE (mm) | at epoch | train wall (s) | command |", "|---|---|---|---|---|"]
    for name, shown, best, epoch, wall in rows:
        lines.append(f"| {name} | {best:.1f} | {epoch} | {'' if wall is None else f'{wall:.0f}'} | `{shown}` |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "STUDY.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
