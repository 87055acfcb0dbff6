#!/usr/bin/env python
"""How much of the error is body size (docs/AUGMENTATION.md, "Real bodies from a bank of people").

    python scripts/body_size.py "E bk=runs/conv/E_bk_rig.nc" "E ri013=runs/conv/E_ri013_rig.nc"
    python scripts/body_size.py --train configs/people_cpu.yaml --override augmentation.body.bank_fraction=1.0 ...

For each `diffpose-viz evaluate` results file: P1, P1 after giving every predicted pose the one global scale that
fits its ground truth best (least squares about the pelvis: what a perfect reading of body size would leave), the
median of that scale, and the median true and predicted leg (thigh + shin, one side). `--train CONFIG`: instead,
the leg lengths of that config's augmented training rows (body and view augmentation as the trainer draws them).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from diffpose_viz.augmentation import BODY_GROUPS, group_lengths
from diffpose_viz.skeleton import H36M17
from diffpose_viz.entry import run_script
from diffpose_viz.errors import InputError
from diffpose_viz.results import load_results

LEGS = [BODY_GROUPS.index("thighs"), BODY_GROUPS.index("shins")]


def leg_m(pose3d: np.ndarray) -> np.ndarray:
    """(N,) thigh + shin of one side (the mean of both), metres."""
    return group_lengths(H36M17.bone_lengths(np.asarray(pose3d, dtype=np.float64)))[:, LEGS].sum(-1) / 2


def size_part(path: Path) -> dict:
    ds = load_results(path)
    if "gt" not in ds:
        raise InputError(f"{path}: variable 'gt': missing (expected results of `diffpose-viz evaluate`)")
    pred = ds["pred"].values.astype(np.float64)
    gt = ds["gt"].values.astype(np.float64)
    pred, gt = pred - pred[:, :1], gt - gt[:, :1]
    scale = (pred * gt).sum((1, 2)) / np.maximum((pred * pred).sum((1, 2)), 1e-12)
    return {"rows": len(gt), "P1_mm": 1000 * np.linalg.norm(pred - gt, axis=-1).mean(),
            "P1_best_scale_mm": 1000 * np.linalg.norm(scale[:, None, None] * pred - gt, axis=-1).mean(),
            "best_scale": np.median(scale), "leg_true_m": np.median(leg_m(gt)), "leg_pred_m": np.median(leg_m(pred))}


def training_legs(config: str, overrides: list[str]) -> str:
    from diffpose_viz import inputs  # the training rows need the config and input layers
    from diffpose_viz.methods import load_config
    cfg = load_config(config, overrides)
    splits = inputs.load_splits(cfg.data, cfg.train.seed)
    rows = splits.train
    if inputs.augmentation_on(cfg):
        rows = inputs.augment_split(rows, cfg, cfg.train.seed).poses
    leg = leg_m(rows.pose3d)
    q = np.percentile(leg, [5, 50, 95, 99])
    return (f"{len(leg)} training rows: leg 5 / 50 / 95 / 99 % = {' / '.join(f'{v:.3f}' for v in q)} m, max "
            f"{leg.max():.3f} m, {100 * (leg >= 0.90).mean():.1f} % of rows >= 0.90 m")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="*", metavar="LABEL=RESULTS_NC", help="results files of `diffpose-viz evaluate`")
    ap.add_argument("--train", metavar="CONFIG", help="report the augmented training rows of this config instead")
    ap.add_argument("--override", action="append", default=[], help="dotted.key=value, as for `diffpose-viz train`")
    args = ap.parse_args(argv)
    if args.train:
        print(training_legs(args.train, args.override))
        return 0
    if not args.results:
        raise InputError("give LABEL=RESULTS_NC files or --train CONFIG")
    cols = ("rows", "P1_mm", "P1_best_scale_mm", "best_scale", "leg_true_m", "leg_pred_m")
    print("| results | " + " | ".join(cols) + " |\n|---|" + "---:|" * len(cols))
    for item in args.results:
        label, sep, path = item.rpartition("=")
        if not sep or not label:
            raise InputError(f"{item!r}: expected LABEL=RESULTS_NC")
        r = size_part(Path(path))
        print(f"| {label} | {r['rows']} | {r['P1_mm']:.1f} | {r['P1_best_scale_mm']:.1f} | {r['best_scale']:.3f} | "
              f"{r['leg_true_m']:.3f} | {r['leg_pred_m']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
