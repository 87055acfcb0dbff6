#!/usr/bin/env python
"""Output statistics of the simulated 2D detector (docs/DETECTOR_SIM.md, "Measured output statistics").

    python scripts/detector_stats.py                      # synthetic frontal body; bandai17 'normal' when present
    python scripts/detector_stats.py --bandai ../shared/data/bandai17/data_3d_bandai17.npz

Synthetic: a standing H36M-17 body (the one of tests/test_detector_sim.py), 20,000 frames, random heading,
4.5-5.5 m from a 1145 px pinhole camera (person about 330 px tall). Bandai17: subject 'normal' through each
camera of the file. Error = distance of the detection from the ground-truth projection (pixels).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from diffpose_viz.camera import Camera
from diffpose_viz.datasets.poses import build_pose_set
from diffpose_viz.datasets.vp3d import load_3d
from diffpose_viz.detector_sim import DetectorSimConfig, simulate_detections, simulate_from_poseset
from diffpose_viz.entry import run_script

CAM = Camera(id="synthetic", res_w=1000, res_h=1000, focal=(1145.0, 1145.0), center=(500.0, 500.0))
BODY = np.array([
    [0.00, 0.00, 0.00],
    [-0.13, 0.00, 0.00], [-0.14, 0.45, -0.03], [-0.14, 0.88, 0.00],
    [0.13, 0.00, 0.00], [0.14, 0.45, -0.03], [0.14, 0.88, 0.00],
    [0.00, -0.23, 0.00], [0.00, -0.48, 0.00], [0.00, -0.58, -0.06], [0.00, -0.72, 0.00],
    [0.18, -0.45, 0.00], [0.24, -0.18, 0.02], [0.27, 0.06, 0.00],
    [-0.18, -0.45, 0.00], [-0.24, -0.18, 0.02], [-0.27, 0.06, 0.00],
])
NOISE_ONLY = DetectorSimConfig(gross_error_prob=0.0, swap_prob=0.0, self_occlusion=False, occluder_prob=0.0,
                               truncation=False)


def synthetic(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yaw = rng.uniform(-np.pi, np.pi, n)
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.zeros((n, 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s, 1.0, -s, c
    root = np.stack([rng.uniform(-0.5, 0.5, n), rng.uniform(-0.2, 0.2, n), rng.uniform(4.5, 5.5, n)], -1)
    pose = np.einsum("nij,kj->nki", rot, BODY) + root[:, None]
    return pose, CAM.project(pose, distort=False)


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
    pose, p2 = synthetic()
    res = np.array([[CAM.res_w, CAM.res_h]] * len(pose))
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
