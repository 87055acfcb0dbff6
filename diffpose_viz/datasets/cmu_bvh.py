"""CMU motion capture as BVH -> a VideoPose3D-style `data_3d` npz for `data.extra_train`.

    diffpose-viz data cmu_bvh --from PATH [--out-dir data/cache/cmu_bvh]

PATH: a folder (searched recursively) or one file, already on this machine: nothing is downloaded. Accepted are
the two public BVH conversions of the CMU Graphics Lab Motion Capture Database that the shared
`docs/mocap-sources.md` lists: the MotionBuilder-friendly one (una-dinosauria/cmu-mocap, `NN_MM.bvh`) and the 3ds-Max-friendly one
(yuki-koyama/bvh11, `131_0N.bvh` in CMU units and `scaled_131_0N.bvh` in metres). Rules, each refused with the file
named and what was expected:
- the CMU subject comes from the file name (`[scaled_]SS_TT.bvh`); **subjects 01-10 are reserved for independent
  evaluation and never converted** (nor is a file whose subject cannot be read from its name);
- rig: one of `rigs.CMU_BVH_RIGS` (joint names);
- units: CMU length units (1 unit = 1/0.45 inch = 0.0564 m, the CMU FAQ) or metres, told apart by the leg length
  (thigh + shin about 0.85 m); anything else is refused;
- frame rate: CMU records 120 fps; 120, 60 and 30 fps files are accepted (resampled to 30 fps like the demo data).
Licence: CMU's terms ("free for use in research and commercial projects", mocap.cs.cmu.edu; acknowledge the
database, do not resell the data) allow the use; the output stays under the git-ignored `data/cache/` anyway.
Each subject becomes `cmuSSS` with one action per take (clips that leave a camera are split, as in the demo
builder), seen by the Human3.6M S1 cameras. A per-source report (people, clips, frames, licence) is printed and
written next to the npz (`SOURCES.md`, `report.json`).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..mocap import bvh, rigs
from .conversion import LEG_M, LEG_TOLERANCE, Conversion, median_leg
from .demo import FPS, resample
from diffpose_viz.errors import DataError

#: CMU subjects reserved for independent evaluation: never converted, trained on, tuned on or evaluated on here.
RESERVED_SUBJECTS = frozenset(range(1, 11))
CMU_METRES_PER_UNIT = 0.0254 / 0.45  # the CMU FAQ: the skeleton's length unit is 1/0.45 inch
ACCEPTED_FPS = (120.0, 60.0, 30.0)
NAME = re.compile(r"^(?:scaled_)?(\d{1,3})_(\d{1,3})\.bvh$", re.IGNORECASE)
LICENCE = ("CMU Graphics Lab Motion Capture Database, http://mocap.cs.cmu.edu/: free for use in research and "
           "commercial projects; acknowledge 'The data used in this project was obtained from mocap.cs.cmu.edu. "
           "The database was created with funding from NSF EIA-0196217.'; do not resell the data")


def cmu_subject(path: Path) -> tuple[int, str]:
    """(subject number, take) from `[scaled_]SS_TT.bvh`; DataError when the name does not say."""
    m = NAME.match(path.name)
    if not m:
        raise DataError(f"{path}: cannot tell the CMU subject from the file name (expected [scaled_]SS_TT.bvh, "
                        f"e.g. 131_01.bvh); not converted (subjects 01-10 are reserved, so the subject must be known)")
    return int(m.group(1)), m.group(2)


def _rig(motion: bvh.BVHMotion, path: Path) -> rigs.Rig:
    names = set(motion.joint_names)
    for rig in rigs.CMU_BVH_RIGS:
        if rig.required_names <= names:
            return rig
    missing = {r.name: sorted(r.required_names - names)[:6] for r in rigs.CMU_BVH_RIGS}
    raise DataError(f"{path}: not a CMU BVH rig; expected the joints of {[r.name for r in rigs.CMU_BVH_RIGS]}, "
                    f"missing per rig: {missing}")


def _metres_per_unit(p17: np.ndarray, path: Path) -> float:
    leg = median_leg(p17)
    choices = {"CMU units": CMU_METRES_PER_UNIT, "metres": 1.0}
    name, scale = min(choices.items(), key=lambda kv: abs(np.log(leg * kv[1] / LEG_M)))
    if not 1 / LEG_TOLERANCE < leg * scale / LEG_M < LEG_TOLERANCE:
        raise DataError(f"{path}: leg length {leg:.3g} file units is {leg * CMU_METRES_PER_UNIT:.2f} m in CMU units "
                        f"and {leg:.2f} m in metres; expected about {LEG_M} m in one of them (wrong units)")
    return scale


def _fps(motion: bvh.BVHMotion, path: Path) -> float:
    fps = float(motion.fps)
    for ok in ACCEPTED_FPS:
        if abs(fps - ok) / ok < 0.01:
            return ok
    raise DataError(f"{path}: {fps:.3g} fps (Frame Time {1 / fps:.6g} s); expected a CMU frame rate "
                    f"{list(ACCEPTED_FPS)} fps")


def read_take(path: Path) -> tuple[np.ndarray, str, float]:
    """(T,17,3) H36M-17 world metres Z-up at FPS, the rig name, and the metres per file unit."""
    motion = bvh.read_bvh(path)
    rig = _rig(motion, path)
    fps = _fps(motion, path)
    p17 = rigs.to_h36m17(bvh.forward_kinematics(motion), motion.joint_names, rig)
    scale = _metres_per_unit(p17, path)
    world = rigs.to_world_metres(p17, metres_per_unit=scale, up_axis=rig.up_axis)
    return (resample(world, fps, FPS) if fps != FPS else world), rig.name, scale


def convert_cmu_bvh(source: str | Path, out_dir: str | Path = "data/cache/cmu_bvh", *,
                    log=print) -> Conversion:
    """Convert every accepted take under `source` (docstring rules) into `out_dir/data_3d_cmu_bvh.npz`."""
    src = Path(source)
    if not src.exists():
        raise DataError(f"--from {src}: no such file or folder (a checkout with CMU `SS_TT.bvh` files)")
    files = [src] if src.is_file() else sorted(src.rglob("*.bvh"), key=lambda p: p.name)
    if not files:
        raise DataError(f"--from {src}: no .bvh files found")
    report = Conversion(name="cmu_bvh", title="CMU BVH", source=str(src), licence=LICENCE)
    seen: set[tuple[str, str]] = set()
    for path in files:
        try:
            number, take = cmu_subject(path)
        except DataError as exc:
            report.skipped.append(f"{path.name}: {exc}")
            continue
        if number in RESERVED_SUBJECTS:
            report.skipped.append(f"{path.name}: CMU subject {number:02d} is reserved for independent evaluation "
                                  "(subjects 01-10): not converted")
            continue
        subject, action = f"cmu{number:03d}", f"{number:02d}_{take}"
        if (subject, action) in seen:  # e.g. both 131_01.bvh and scaled_131_01.bvh: the same take
            report.skipped.append(f"{path.name}: take {action} already converted from another file")
            continue
        seen.add((subject, action))
        world, rig_name, _ = read_take(path)
        report.add_take(subject, action, world, FPS, rig_name)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return report.write(out_dir, reserved="CMU subjects 01-10 are never converted (independent evaluation)", log=log)
