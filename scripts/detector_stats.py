#!/usr/bin/env python
"""Output statistics of the simulated 2D detector (docs/DETECTOR_SIM.md, "Measured output statistics").

    python scripts/detector_stats.py                      # synthetic frontal body; bandai17 'normal' when present
    python scripts/detector_stats.py --bandai ../shared/data/bandai17/data_3d_bandai17.npz

Synthetic: a standing H36M-17 body (`detector_sim.synthetic_frames`, the scene of the tests too), 20,000 frames,
random heading, 4.5-5.5 m from a 1145 px pinhole camera (person about 330 px tall). Bandai17: subject 'normal'
through each camera of the file. Error = distance of the detection from the ground-truth projection (pixels).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from diffpose_viz.datasets.poses import build_pose_set
from diffpose_viz.datasets.vp3d import load_3d
from diffpose_viz.detector_sim import (NOISE_ONLY, SYNTHETIC_CAMERA, DetectorSimConfig, simulate_detections,
                                       simulate_from_poseset, synthetic_frames)
from diffpose_viz.entry import run_script


def row(label: str, config: str, det, gt2d: np.ndarray) -> str:
    err = np.linalg.norm(det.keypoints - gt2d, axis=-1)
    err = err[np.isfinite(err)]
    p = np.percentile(err, [50, 95, 99])
    return (f"| {label} | {config} | {err.mean():.1f} | {p[0]:.1f} | {p[1]:.1f} | {p[2]:.1f} | "
            f"{100 * det.occluded.mean():.1f} % | {100 * det.swapped.any(1).mean():.1f} % |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bandai", default="../shared/data/bandai17/data_3d_bandai17.npz")
    args = ap.parse_args(argv)
    print("| data | config | mean err px | median | p95 | p99 | occluded | frames with a swap |")
    print("|---|---|---|---|---|---|---|---|")
    pose, p2 = synthetic_frames(20_000)
    res = np.array([[SYNTHETIC_CAMERA.res_w, SYNTHETIC_CAMERA.res_h]] * len(pose))
    for name, cfg in (("noise only", NOISE_ONLY), ("default", DetectorSimConfig())):
        print(row("synthetic", name, simulate_detections(p2, pose, res, cfg, focal_px=1145.0), p2), flush=True)
    if Path(args.bandai).exists():
        poses = build_pose_set(load_3d(args.bandai, subjects=["normal"]), ["normal"])
        for cam in np.unique(poses.camera):
            sub = poses.subset(poses.camera == cam)
            print(row(f"bandai17 normal, camera {cam}", "default", simulate_from_poseset(sub, DetectorSimConfig()),
                      sub.pose2d), flush=True)
    else:
        print(f"(bandai17 not found at {args.bandai}: its rows are skipped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
