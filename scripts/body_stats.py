#!/usr/bin/env python
"""Print per-subject body measurements (metres) of VideoPose3D `data_3d_*.npz` files.

    python scripts/body_stats.py ../shared/data/bandai17/data_3d_bandai17.npz data/cache/cross_body/data_3d_cross_body.npz

Columns: hip and shoulder width (joint centres), height (95th percentile of the head-top joint above the lower
ankle joint, Z up), chain_height (shin + thigh + spine + neck_head, posture-free) and segment lengths; see
`diffpose_viz.datasets.cross_body.measure_body`. With --ratio, each row is also shown divided by the first
file's subject-mean, to see how far other bodies are from the training skeleton.
"""
from __future__ import annotations

import argparse

import numpy as np

from diffpose_viz.datasets import load_3d
from diffpose_viz.datasets.cross_body import MEASUREMENTS, body_measurements, format_measurements
from diffpose_viz.entry import run_script


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="data_3d_*.npz files (world frame, Z up, metres)")
    ap.add_argument("--ratio", action="store_true", help="also print every row divided by the first file's mean")
    args = ap.parse_args(argv)
    reference = None
    for path in args.paths:
        table = body_measurements(load_3d(path))
        print(format_measurements(table, f"== {path}"))
        if reference is None:
            reference = {c: float(np.mean([m[c] for m in table.values()])) for c in MEASUREMENTS}
        elif args.ratio:
            ratios = {s: {**{c: m[c] / reference[c] for c in MEASUREMENTS}, "frames": m["frames"]}
                      for s, m in table.items()}
            print(format_measurements(ratios, f"-- ratio to the mean of {args.paths[0]}"))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
