#!/usr/bin/env python
"""Write the simulated detector's 2D of a config's test rows as a VideoPose3D `data_2d` file, so that the
file path (`evaluate --test-2d`, `data.input_2d: file`) can be checked against the in-memory path at scale.

    python scripts/detections_to_file.py configs/bandai_cpu.yaml --out data/cache/bandai17_det/data_2d_bandai17_det.npz
    diffpose-viz evaluate RUN/best.pt --out a.nc                       # in memory
    diffpose-viz evaluate RUN/best.pt --out b.nc --test-2d data/cache/bandai17_det/data_2d_bandai17_det.npz

The test rows are built exactly as `evaluate` builds them (same thinning, same detector seeds), and their
detections (x, y, confidence) are written at their frames; every other frame of a sequence holds the
ground-truth projection with score 1 (never read by that evaluation; the file's metadata says so).
Files derived from licensed motion capture (bandai17: CC BY-NC) stay under the git-ignored data/cache/.
"""
from __future__ import annotations

import argparse

import numpy as np

from diffpose_viz.datasets.poses import build_pose_set
from diffpose_viz.datasets.vp3d import load_3d
from diffpose_viz.inputs import load_poses, make_inputs
from diffpose_viz.methods import load_config
from diffpose_viz.entry import run_script


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--out", required=True)
    ap.add_argument("--override", action="append", default=[])
    args = ap.parse_args(argv)
    cfg = load_config(args.config, args.override)
    subjects = list(cfg.data.test_subjects)
    rows = load_poses(cfg.data, subjects).thin(cfg.data.max_test_samples)
    det = make_inputs(rows, cfg, "test")
    mocap = load_3d(cfg.data.path, subjects=subjects)
    full = build_pose_set(mocap, subjects, cameras=cfg.data.cameras)  # every frame
    positions: dict = {}
    for s in subjects:
        cams = [c.id for c in mocap.cameras_for(s)]
        for a in mocap.actions(s):
            n = len(mocap.sequence(s, a))
            arrs = []
            for cid in cams:
                arr = np.zeros((n, 17, 3), np.float32)
                arr[..., 2] = 1.0
                sel = (full.subject == s) & (full.action == a) & np.array([full.cameras[str(k)].id == cid
                                                                           for k in full.camera])
                if sel.any():
                    arr[full.frame[sel], :, :2] = full.pose2d[sel]
                pick = (rows.subject == s) & (rows.action == a) & np.array([rows.cameras[str(k)].id == cid
                                                                            for k in rows.camera])
                arr[rows.frame[pick], :, :2] = det.keypoints[pick]
                arr[rows.frame[pick], :, 2] = det.confidence[pick]
                arrs.append(arr)
            positions.setdefault(s, {})[a] = arrs
    meta = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]],
            "note": f"simulated detections of {len(rows)} test rows of {args.config}; other frames: ground-truth "
                    "projection with score 1"}
    from pathlib import Path

    from diffpose_viz.atomic import atomic_target

    out = Path(args.out)
    with atomic_target(out) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, positions_2d=np.array(positions, dtype=object), metadata=np.array(meta, dtype=object))
    print(f"wrote {out}: detections of {len(rows)} rows, {sum(len(v) for v in positions.values())} sequences")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
