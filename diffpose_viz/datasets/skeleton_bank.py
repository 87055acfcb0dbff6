"""A bank of real bodies: the CMU skeletons file -> each person's Human3.6M-17 bone lengths.

    ../shared/data/cmu-skeletons/skeletons.json   (its README: one take's BVH header per CMU subject 12-144)

The file holds, per CMU subject, the 38 rest-pose OFFSETs of the MotionBuilder-friendly BVH conversion
("cmuconvert-mb2"), in CMU length units, Y up. A person's H36M-17 joints are the rest pose's joints mapped with
the same rig table the CMU converters use (`rigs.CMU_BVH_MB`, which follows `rigs.CMU_ASF`), so the lengths are
in the CMU / HDM05 joint conventions. Body augmentation (`augmentation.augment_bodies`) gives training rows these
lengths. Read at run time; nothing converted from the shared file is written or committed.

Refused with the file and key named: a file that is not this format, a hierarchy other than the 38 entries
below, offsets that are not 38 x 3 finite numbers, and a reserved person (CMU 01-10). People named in `exclude`
(test, calibration and validation people) are left out, and so is every other subject with the same skeleton
(CMU recorded some people under two numbers, e.g. 93 = 103): two skeletons whose 16 bones all agree within
`SAME_BODY_M` are one person.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..mocap import rigs
from ..safe_io import SafeLoadError, check_input_file
from ..skeleton import H36M17
from .asf_amc_sources import CMU_RESERVED_SUBJECTS
from diffpose_viz.errors import DataError, data_error_from

#: The hierarchy of every cmuconvert-mb2 file: entry -> its parent (file order; End Sites are "<parent>_end").
CMU_MB_PARENTS: dict[str, str | None] = {
    "Hips": None,
    "LHipJoint": "Hips", "LeftUpLeg": "LHipJoint", "LeftLeg": "LeftUpLeg", "LeftFoot": "LeftLeg",
    "LeftToeBase": "LeftFoot", "LeftToeBase_end": "LeftToeBase",
    "RHipJoint": "Hips", "RightUpLeg": "RHipJoint", "RightLeg": "RightUpLeg", "RightFoot": "RightLeg",
    "RightToeBase": "RightFoot", "RightToeBase_end": "RightToeBase",
    "LowerBack": "Hips", "Spine": "LowerBack", "Spine1": "Spine", "Neck": "Spine1", "Neck1": "Neck",
    "Head": "Neck1", "Head_end": "Head",
    "LeftShoulder": "Spine1", "LeftArm": "LeftShoulder", "LeftForeArm": "LeftArm", "LeftHand": "LeftForeArm",
    "LeftFingerBase": "LeftHand", "LeftHandIndex1": "LeftFingerBase", "LeftHandIndex1_end": "LeftHandIndex1",
    "LThumb": "LeftHand", "LThumb_end": "LThumb",
    "RightShoulder": "Spine1", "RightArm": "RightShoulder", "RightForeArm": "RightArm", "RightHand": "RightForeArm",
    "RightFingerBase": "RightHand", "RightHandIndex1": "RightFingerBase", "RightHandIndex1_end": "RightHandIndex1",
    "RThumb": "RightHand", "RThumb_end": "RThumb",
}
SAME_BODY_M = 0.001  # the README's duplicates agree to 0.1 mm; different people differ by centimetres
_UNIT_RANGE = (0.01, 0.1)  # metres per unit: CMU's is 0.0254 / 0.45 = 0.0564


@dataclass(frozen=True)
class SkeletonBank:
    """Real people's bone lengths, in `H36M17.bones` order."""

    path: str
    people: tuple[int, ...]  # CMU subject numbers drawn from
    bones_m: np.ndarray  # (P, 16) metres
    excluded: tuple[int, ...]  # subjects of the file left out: named in `exclude`, or the same body as one of them
    repeats: tuple[int, ...]  # subjects left out as the same body as a lower-numbered kept subject (one draw each)


def rest_pose_h36m17(offsets: np.ndarray, metres_per_unit: float) -> np.ndarray:
    """(17, 3) H36M-17 joints in metres (file axes) of a cmuconvert-mb2 rest pose given its (38, 3) OFFSETs."""
    names = list(CMU_MB_PARENTS)
    index = {n: i for i, n in enumerate(names)}
    pos = np.zeros((len(names), 3))
    for i, name in enumerate(names):  # parents precede children in file order
        parent = CMU_MB_PARENTS[name]
        pos[i] = offsets[i] + (pos[index[parent]] if parent is not None else 0.0)
    return rigs.to_h36m17(pos, names, rigs.CMU_BVH_MB) * metres_per_unit


def _subject_number(key: str, path) -> int:
    try:
        number = int(key)
    except ValueError:
        raise DataError("a subject key is not a CMU subject number", path=path, key=f"subjects/{key}",
                        expected="a number such as '55'", found=repr(key)) from None
    if number in CMU_RESERVED_SUBJECTS:
        raise DataError(f"CMU subject {number:02d} is reserved for independent evaluation (01-10) and may not be "
                        "used as a training body", path=path, key=f"subjects/{key}")
    return number


def _offsets(entry, key: str, path) -> np.ndarray:
    raw = entry.get("offsets") if isinstance(entry, dict) else None
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape != (len(CMU_MB_PARENTS), 3) or not np.isfinite(arr).all():
        raise DataError("bad rest-pose offsets", path=path, key=f"subjects/{key}/offsets",
                        expected=f"{len(CMU_MB_PARENTS)} x 3 finite numbers (CMU units)",
                        found=f"shape {arr.shape}" if arr.size else repr(raw)[:60])
    return arr


def read_skeleton_bank(path: str | os.PathLike, exclude: Iterable[int] = ()) -> SkeletonBank:
    """The bank of `path` (the skeletons.json format), without the people of `exclude` and their duplicates."""
    try:
        checked = check_input_file(path, "a skeletons.json of real bodies (augmentation.body.bank)")
    except SafeLoadError as err:
        raise data_error_from(err) from None
    try:
        data = json.loads(checked.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"not a JSON file ({err})", path=path) from None
    if not isinstance(data, dict) or not {"names", "unit_to_metres", "subjects"} <= set(data):
        raise DataError("not a skeletons file", path=path, expected="a JSON object with names, unit_to_metres, "
                        "subjects", found=sorted(data) if isinstance(data, dict) else type(data).__name__)
    if data["names"] != list(CMU_MB_PARENTS):
        raise DataError("the hierarchy is not the CMU MotionBuilder-friendly BVH rig", path=path, key="names",
                        expected=f"the {len(CMU_MB_PARENTS)} entries Hips, LHipJoint, ... RThumb_end",
                        found=str(data["names"])[:80])
    unit = data["unit_to_metres"]
    if isinstance(unit, bool) or not isinstance(unit, (int, float)) or not _UNIT_RANGE[0] <= unit <= _UNIT_RANGE[1]:
        raise DataError("implausible length unit", path=path, key="unit_to_metres",
                        expected=f"metres per unit in {list(_UNIT_RANGE)} (CMU: 0.0564)", found=repr(unit))
    subjects = data["subjects"]
    if not isinstance(subjects, dict) or not subjects:
        raise DataError("no people", path=path, key="subjects", expected="a non-empty mapping",
                        found=repr(subjects)[:60])
    numbers = [_subject_number(k, path) for k in subjects]
    bones = np.stack([H36M17.bone_lengths(rest_pose_h36m17(_offsets(v, k, path), unit)) for k, v in subjects.items()])
    order = np.argsort(numbers, kind="stable")
    numbers, bones = [numbers[i] for i in order], bones[order]
    same = np.abs(bones[:, None] - bones[None]).max(-1) < SAME_BODY_M  # (P, P): one person
    named = set(int(e) for e in exclude)
    dropped = same[[i for i, n in enumerate(numbers) if n in named]].any(0)  # an excluded person, any number
    repeat = np.zeros(len(numbers), bool)
    for i in range(len(numbers)):  # the lowest number of a person stays, so each person is drawn equally often
        repeat[i] = not dropped[i] and bool((same[i, :i] & ~dropped[:i] & ~repeat[:i]).any())
    keep = ~dropped & ~repeat
    if not keep.any():
        raise DataError("every person is excluded", path=path, key="subjects",
                        expected="at least one person outside augmentation.body.bank_exclude",
                        found=f"{len(numbers)} people, all excluded")
    pick = lambda mask: tuple(n for n, m in zip(numbers, mask) if m)  # noqa: E731
    return SkeletonBank(str(path), pick(keep), bones[keep], pick(dropped), pick(repeat))
