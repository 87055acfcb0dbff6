#!/usr/bin/env python
"""Unseen-viewpoint test file: bandai17's test subjects seen by four new cameras (never committed).

    python scripts/unseen_views.py          # writes data/cache/unseen_views/data_3d_bandai17_unseen_views.npz

The four cameras stand between the Human3.6M rig's corner cameras (yaw 45, 135, 225, 315 degrees from the
rig's first camera), higher (elevation 30 degrees above the mean pelvis) and at 5.5 m, with a 1000 px focal
length on a 1000 x 1000 image and no distortion. Evaluate a bandai17 checkpoint on them with
`diffpose-viz evaluate RUN/best.pt --data data/cache/unseen_views/data_3d_bandai17_unseen_views.npz`.

A validation counterpart (other cameras, the training styles; choose settings on it, never on the test file):

    python scripts/unseen_views.py --subjects active elderly exhausted feminine masculine --yaws 70 160 250 340 \
        --elevation 20 --distance 4.5 --out data/cache/unseen_views/data_3d_bandai17_val_views.npz
    diffpose-viz evaluate RUN/best.pt --split val --data data/cache/unseen_views/data_3d_bandai17_val_views.npz

(`--split val` keeps the checkpoint's held-out validation sequences of the training styles.)
bandai17 is CC BY-NC 4.0: the file is derived from it and stays under the git-ignored data/cache/.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from diffpose_viz.augmentation import ViewAugConfig, virtual_cameras
from diffpose_viz.datasets.vp3d import load_3d, save_3d
from diffpose_viz.entry import run_script

YAWS = (45.0, 135.0, 225.0, 315.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bandai", default="../shared/data/bandai17/data_3d_bandai17.npz")
    ap.add_argument("--subjects", nargs="+", default=["normal", "youthful"])
    ap.add_argument("--out", default="data/cache/unseen_views/data_3d_bandai17_unseen_views.npz")
    ap.add_argument("--elevation", type=float, default=30.0)
    ap.add_argument("--distance", type=float, default=5.5)
    ap.add_argument("--yaws", type=float, nargs=4, default=YAWS, help="degrees from the rig's first camera")
    args = ap.parse_args(argv)
    mocap = load_3d(args.bandai, subjects=args.subjects)
    positions = {s: {a: mocap.sequence(s, a) for a in mocap.actions(s)} for s in args.subjects}
    pelvis = np.concatenate([p[:, 0] for acts in positions.values() for p in acts.values()])
    target = pelvis.mean(0)
    real = mocap.cameras_for(args.subjects[0])[0]
    centre = np.asarray(real.translation, float)
    reference = centre - target  # yaw 0 = the rig's first camera
    cams = []
    for k, yaw in enumerate(args.yaws):
        cfg = ViewAugConfig(yaw_deg=(yaw, yaw), elevation_deg=(args.elevation, args.elevation), roll_deg=(0.0, 0.0),
                            distance_m=(args.distance, args.distance), focal_px=(1000.0, 1000.0),
                            principal_jitter_px=0.0, aim_jitter_m=0.0, image_size=(1000, 1000))
        cam = virtual_cameras(1, 0, cfg, target=target, reference=reference).camera(0)
        cams.append(cam.to_dict() | {"id": f"unseen{k}"})
    out = save_3d(args.out, positions, cameras={s: cams for s in args.subjects},
                  metadata={"source": f"{Path(args.bandai).name} subjects {args.subjects}, four new cameras "
                                      f"(yaw {tuple(args.yaws)}, elevation {args.elevation} deg, {args.distance} m)",
                            "licence": "CC BY-NC 4.0 (derived from bandai17): do not commit or redistribute"})
    print(f"wrote {out}: {sum(len(a) for a in positions.values())} sequences, cameras "
          + ", ".join(f"{c['id']} at {np.round(c['translation'], 2).tolist()}" for c in cams))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
