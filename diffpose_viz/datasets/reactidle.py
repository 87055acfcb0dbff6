"""ReActIdle (Atxa Landa et al. 2025, Enekoassets/ReActIdle; MIT) as BVH -> `data_3d_reactidle.npz`.

    diffpose-viz data reactidle --from ../shared/data/mocap-extra/reactidle.tar.xz [--out-dir data/cache/reactidle]

Idle standing motion of 14 people from markerless capture, as `{acted,genuine}/NNN_<kind>.bvh` (NNN = the
person). Rules, each refusal naming the file and what was expected:
- rig: exactly the 19 Rigify-style joints of `rigs.REACTIDLE_JOINTS` (mapped by `rigs.REACTIDLE`);
- units: metres (the leg, thigh + shin, must be a human leg in metres); frame rate: 24 fps as published
  (30 also accepted), resampled to 30 fps;
- each person is the subject `riNNN`; a take is refused when its skeleton is exactly that of another person's
  take (the published `genuine/003_genuine.bvh` carries person 002's skeleton to the last digit while
  `acted/003_acted.bvh` is a different, shorter body: whose body it is cannot be told, and keeping it would put
  person 002 on both sides of a cross-person split).
Persons 000-004 measure 1.29-1.42 m (estimated stature: the rig's head top above the lower ankle + 0.08 m), the
others 1.46-1.82 m, with adult proportions (leg / trunk, shoulders / leg) either way. Five consecutive ids suggest
a scale problem of the first sessions as much as children; it cannot be told from the files, so the report flags
them (`short`) and configs/people_cpu.yaml leaves them out of training (docs/AUGMENTATION.md).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..mocap import bvh, rigs
from .conversion import Conversion, check_fps, check_leg_metres, median_leg, refuse_overwrite
from .mocap_files import MocapSource
from diffpose_viz.errors import DataError

ACCEPTED_FPS = (24.0, 30.0)
NAME = re.compile(r"^(\d{3})_([a-z]+)$", re.IGNORECASE)
SHORT_STATURE_M = 1.45  # below this, a person is flagged (see the module docstring)
LICENCE = ("ReActIdle (Atxa Landa, Lazkano, Rodriguez, Rodriguez-Moreno, Irigoien, 'Evaluating Idle Animation "
           "Believability: a User Perspective', arXiv 2509.05023, 2025; github.com/Enekoassets/ReActIdle): MIT")


def check_rig(motion: bvh.BVHMotion, where: str) -> None:
    names = {n for n, end in zip(motion.joint_names, motion.is_end_site) if not end}
    if names != rigs.REACTIDLE_JOINTS:
        raise DataError("not the ReActIdle (Rigify-style) rig", path=where, key="HIERARCHY",
                        expected=f"the 19 joints {sorted(rigs.REACTIDLE_JOINTS)}",
                        found=f"missing {sorted(rigs.REACTIDLE_JOINTS - names)[:6]}, "
                              f"extra {sorted(names - rigs.REACTIDLE_JOINTS)[:6]}")


def stature_m(world: np.ndarray) -> float:
    """Estimated standing height: the head top above the lower ankle plus the ankle height, median over frames."""
    head = world[:, 10, 2] - np.minimum(world[:, 3, 2], world[:, 6, 2])
    return float(np.median(head)) + 0.08


def convert_reactidle(source: str | Path, out_dir: str | Path = "data/cache/reactidle", *, force: bool = False,
                      joints: str = "rig", log=print) -> Conversion:
    refuse_overwrite(out_dir, "reactidle", force)
    src = MocapSource(source)
    files = src.files(".bvh")
    if not files:
        raise DataError("no .bvh takes found", path=source, expected="ReActIdle NNN_acted.bvh / NNN_genuine.bvh",
                        found="none")
    report = Conversion("reactidle", "ReActIdle", str(source), LICENCE, joints=joints)
    skeletons: dict[bytes, tuple[str, str]] = {}  # exact offsets -> (person, file) that brought them
    for f, text in sorted(src.read_many(files), key=lambda ft: ft[0].name):
        m = NAME.match(f.path.stem)
        if not m:
            report.skipped.append(f"{f.path.name}: cannot tell the person from the file name (expected "
                                  "NNN_acted.bvh or NNN_genuine.bvh)")
            continue
        person, kind = m.group(1), m.group(2).lower()
        motion = bvh.parse_bvh(text, source=str(f))
        check_rig(motion, str(f))
        fps = check_fps(motion.fps, ACCEPTED_FPS, str(f), f"Frame Time {motion.frame_time:.6g} s")
        key = np.round(motion.offsets, 6).tobytes()
        owner = skeletons.setdefault(key, (person, f.path.name))
        if owner[0] != person:
            report.skipped.append(f"{f.path.name}: its skeleton is exactly person {owner[0]}'s ({owner[1]}); whose "
                                  "body it is cannot be told, so it is not converted")
            continue
        p17 = rigs.to_h36m17(bvh.forward_kinematics(motion), motion.joint_names, rigs.REACTIDLE)
        check_leg_metres(median_leg(p17), str(f), "metres (ReActIdle files are in metres)")
        world = rigs.to_world_metres(p17, metres_per_unit=1.0, up_axis=rigs.REACTIDLE.up_axis)
        report.add_take(f"ri{person}", kind, world, fps, rigs.REACTIDLE.name)
        row = report.subjects[f"ri{person}"]
        row["stature_m"] = round(stature_m(world), 2)
        row["short"] = row["stature_m"] < SHORT_STATURE_M
    short = sorted(s for s, v in report.subjects.items() if v.get("short"))
    if short:
        report.notes.append(f"estimated stature under {SHORT_STATURE_M} m: {short} (a scale problem or children; "
                            "kept, flagged; configs/people_cpu.yaml does not train on them)")
    return report.write(out_dir, reserved="none in this source (Bandai dataset-1, CMU 01-10 and HDM05 'tr' are "
                        "reserved elsewhere)", log=log)
