#!/usr/bin/env python
"""Errors split by what a joint convention decides (docs/AUGMENTATION.md, "Joint conventions across rigs").

    python scripts/joint_conventions.py "rig model, bk=runs/conv/rig_bk.nc" "harmonised model, bk=runs/conv/h_bk.nc"
    python scripts/joint_conventions.py --by-source "rig model, validation=runs/conv/rig_val.nc"

For each `diffpose-viz evaluate` results file: frame-wise P1 over all 17 joints, over the 13 joints the harmonised
convention leaves in place (`mocap.conventions.MOVED_JOINTS` are the shoulders and hips; the pelvis counts, as in
P1) and over the four it moves, and the mean predicted vs true shoulder and hip spacing. The 13-joint P1 has the
same ground truth in either convention, so it compares models trained in different conventions. `--by-source`
splits the rows by source: the subject's prefix of a `data.extra_train` row (`hdm05:bd` -> hdm05), else `main`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from diffpose_viz.entry import run_script
from diffpose_viz.errors import InputError
from diffpose_viz.mocap.conventions import convention_errors
from diffpose_viz.results import load_results

COLUMNS = ("rows", "P1_mm", "P1_kept_joints_mm", "P1_moved_joints_mm", "shoulders_pred_mm", "shoulders_true_mm",
           "hips_pred_mm", "hips_true_mm")


def rows_of(label: str, path: Path, by_source: bool) -> list[tuple[str, dict]]:
    ds = load_results(path)
    if "gt" not in ds:
        raise InputError(f"{path}: variable 'gt': missing (expected results of `diffpose-viz evaluate`, which "
                         "scores against ground truth)")
    pred, gt = ds["pred"].values, ds["gt"].values
    subject = ds["subject"].values.astype(str)
    source = np.array([s.split(":", 1)[0] if ":" in s else "main" for s in subject])
    groups = sorted(set(source)) if by_source else []
    out = [(label, convention_errors(pred, gt))]
    out += [(f"{label} / {g}", convention_errors(pred[source == g], gt[source == g])) for g in groups]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", metavar="LABEL=RESULTS_NC", help="results files of `diffpose-viz evaluate`")
    ap.add_argument("--by-source", action="store_true", help="also one row per source of the rows")
    args = ap.parse_args(argv)
    table = []
    for item in args.results:
        label, sep, path = item.rpartition("=")
        if not sep or not label:
            raise InputError(f"{item!r}: expected LABEL=RESULTS_NC")
        table += rows_of(label, Path(path), args.by_source)
    print("| results | " + " | ".join(COLUMNS) + " |\n|---|" + "---:|" * len(COLUMNS))
    for label, e in table:
        print(f"| {label} | " + " | ".join(str(e[c]) if c == "rows" else f"{e[c]:.1f}" for c in COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
