#!/usr/bin/env python
"""Diagnostic test files that separate a new body from a new motion (never committed).

A cross-body test row differs from bandai17's test rows in two ways at once: another skeleton (bone lengths and
rig conventions) and other motion. This script writes two files that each keep only one of the two changes,
by retargeting along the H36M-17 tree: every bone keeps its direction in every frame (so joint angles are
unchanged) and gets the median length of that bone on another body (`augmentation.rescale_bones`):

    python scripts/swap_bodies.py      # writes both files under data/cache/swapped_bodies/

* `data_3d_cross_motion_bandai_body.npz`: the cross-body people's motion on bandai17's body (each bone the
  median over bandai17's training styles), seen by the same cameras as the cross-body file. What is left of
  the cross-body gap here is motion (and rig details that bone lengths do not capture).
* `data_3d_bandai_motion_cross_bodies.npz`: bandai17's test styles on each cross-body person's bone lengths
  (subjects named `<style>@<person>`), seen by bandai17's own cameras. What is left here is the body.

Evaluate as any file: `diffpose-viz evaluate RUN/best.pt --data FILE --max-samples 3000`. Both files are
derived from bandai17 (CC BY-NC 4.0) or LAFAN1 (CC BY-NC-ND 4.0): they stay under the git-ignored data/cache/.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from diffpose_viz.augmentation import rescale_bones
from diffpose_viz.datasets.vp3d import Mocap3D, load_3d, save_3d
from diffpose_viz.skeleton import H36M17
from diffpose_viz.entry import run_script


def median_bone_lengths(mocap: Mocap3D, subjects: list[str]) -> np.ndarray:
    """(16,) median length of every bone of `H36M17.bones` over all frames of `subjects` (metres)."""
    poses = np.concatenate([np.asarray(a, np.float64) for s in subjects for a in mocap.positions[s].values()])
    return np.array([np.median(np.linalg.norm(poses[:, c] - poses[:, p], axis=-1)) for p, c in H36M17.bones])


def retarget(poses: np.ndarray, own: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(T,17,3) poses whose bones have median lengths `own` -> the same angles with lengths `target`.

    The pelvis keeps its world position, so the body stays where the cameras look."""
    scale = np.broadcast_to(target / own, (len(poses), len(own)))
    return rescale_bones(np.asarray(poses, np.float64), scale).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bandai", default="../shared/data/bandai17/data_3d_bandai17.npz")
    ap.add_argument("--train-styles", nargs="+", default=["active", "elderly", "exhausted", "feminine", "masculine"])
    ap.add_argument("--test-styles", nargs="+", default=["normal", "youthful"])
    ap.add_argument("--cross-body", default="data/cache/cross_body/data_3d_cross_body.npz")
    ap.add_argument("--out", default="data/cache/swapped_bodies")
    args = ap.parse_args(argv)
    bandai = load_3d(args.bandai, subjects=args.train_styles + args.test_styles)
    cross = load_3d(args.cross_body)
    out = Path(args.out)
    licence = "derived from bandai17 (CC BY-NC 4.0) and LAFAN1 (CC BY-NC-ND 4.0): do not commit or redistribute"

    bandai_bones = median_bone_lengths(bandai, args.train_styles)
    people = cross.subjects
    person_bones = {p: median_bone_lengths(cross, [p]) for p in people}

    motion = {p: {a: retarget(seq, person_bones[p], bandai_bones) for a, seq in cross.positions[p].items()}
              for p in people}
    path = save_3d(out / "data_3d_cross_motion_bandai_body.npz", motion,
                   cameras={p: cross.cameras_for(p) for p in people},
                   metadata={"source": f"{Path(args.cross_body).name}: motion of {people} on bandai17's median "
                                       f"bone lengths ({args.train_styles})", "licence": licence})
    print(f"wrote {path}: {sum(len(a) for a in motion.values())} sequences of {people}")

    bodies: dict[str, dict[str, np.ndarray]] = {}
    cameras = {}
    for style in args.test_styles:
        own = median_bone_lengths(bandai, [style])
        for p in people:
            name = f"{style}@{p}"
            bodies[name] = {a: retarget(seq, own, person_bones[p]) for a, seq in bandai.positions[style].items()}
            cameras[name] = bandai.cameras_for(style)
    path = save_3d(out / "data_3d_bandai_motion_cross_bodies.npz", bodies, cameras=cameras,
                   metadata={"source": f"bandai17 test styles {args.test_styles} on the median bone lengths of "
                                       f"{people} ({Path(args.cross_body).name})", "licence": licence})
    print(f"wrote {path}: subjects {list(bodies)}")
    print("bone-length ratio to bandai17 (median over the 16 bones; min, max):")
    for p in people:
        r = person_bones[p] / bandai_bones
        print(f"  {p:10s} {np.median(r):.2f} ({r.min():.2f}, {r.max():.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
