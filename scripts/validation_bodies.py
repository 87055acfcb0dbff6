#!/usr/bin/env python
"""A held-out-domain VALIDATION file: the training styles with adult-proportion bodies (never committed).

bandai17 has one proportion-aligned skeleton (hip-joint spacing 0.13 m, shoulder-joint spacing 0.20 m). This
writes the same takes with every bone rescaled along the tree (`augmentation.rescale_bones`, angles kept) to the
adult joint-centre spacings of docs/AUGMENTATION.md (hips x1.4, shoulders x1.6, neck and head x1.2, upper arms
x1.15: anthropometric ratios, not fitted to any test set), seen by bandai17's own cameras:

    python scripts/validation_bodies.py     # data/cache/validation_bodies/data_3d_bandai17_val_bodies.npz
    diffpose-viz evaluate RUN/best.pt --out x.nc --calibrate-with data/cache/validation_bodies/data_3d_bandai17_val_bodies.npz

`evaluate --calibrate-with` uses only the validation rows (held-out sequences) of the training styles from it, so
the test styles and the cross-body people stay unseen. Caveat: those ratios were written down (round 4) after
the cross-body table had been measured, though they follow anthropometry, not that table. Derived from bandai17
(CC BY-NC 4.0): it stays under the git-ignored data/cache/.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from diffpose_viz.augmentation import BODY_GROUPS, bone_scale_matrix, rescale_bones
from diffpose_viz.datasets.vp3d import load_3d, save_3d
from diffpose_viz.entry import run_script

SCALES = {"hips": 1.4, "shoulders": 1.6, "neck_head": 1.2, "upper_arms": 1.15}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bandai", default="../shared/data/bandai17/data_3d_bandai17.npz")
    ap.add_argument("--styles", nargs="+", default=["active", "elderly", "exhausted", "feminine", "masculine"])
    ap.add_argument("--out", default="data/cache/validation_bodies/data_3d_bandai17_val_bodies.npz")
    args = ap.parse_args(argv)
    mocap = load_3d(args.bandai, subjects=args.styles)
    scale = {"global": np.ones(1), **{g: np.full(1, SCALES.get(g, 1.0)) for g in BODY_GROUPS}}
    k = bone_scale_matrix(scale)[0]
    out = {s: {a: rescale_bones(np.asarray(p, np.float64), np.broadcast_to(k, (len(p), 16))).astype(np.float32)
               for a, p in acts.items()} for s, acts in mocap.positions.items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_3d(args.out, out, cameras={s: mocap.cameras_for(s) for s in out},
            metadata={**dict(mocap.metadata), "derived": f"bones rescaled {SCALES} (scripts/validation_bodies.py)"})
    print(f"wrote {args.out}: {len(out)} styles, bones x{SCALES}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
