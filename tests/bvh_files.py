"""Tiny BVH files for the mocap converter tests: the HIERARCHY part written from (joint, parent, offset) rows."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence


def bvh_hierarchy(joints: Sequence[tuple], ends: Mapping[str, Sequence[float]], channels: Callable[[str, int], str],
                  digits: int, rename: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """(lines from HIERARCHY to the root's closing brace, joint names in file order) for `joints` [(name, parent or
    None, offset)] with the root first, end sites `ends` {joint: offset}, `channels(name, depth)` the words after
    CHANNELS, offsets with `digits` decimals; `rename` changes only the names written."""
    rename = rename or {}
    children: dict = {}
    for name, parent, _ in joints:
        children.setdefault(parent, []).append(name)
    offset = {name: o for name, _, o in joints}
    lines, order = ["HIERARCHY"], []

    def numbers(values) -> str:
        return " ".join(f"{v:.{digits}f}" for v in values)

    def emit(name: str, depth: int) -> None:
        pad = "\t" * depth
        lines.extend([f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {rename.get(name, name)}", pad + "{",
                      pad + "\tOFFSET " + numbers(offset[name]), pad + "\tCHANNELS " + channels(name, depth)])
        order.append(name)
        for child in children.get(name, []):
            emit(child, depth + 1)
        if name in ends:
            lines.extend([pad + "\tEnd Site", pad + "\t{", pad + "\t\tOFFSET " + numbers(ends[name]), pad + "\t}"])
        lines.append(pad + "}")

    emit(joints[0][0], 0)
    return lines, order


#: A standing CMU person in the cmuconvert-mb2 hierarchy (../shared/data/cmu-skeletons format): entry -> rest OFFSET
#: in CMU units (Y up, +x = the person's left). `cmu_mb_offsets` scales the limbs.
_CMU_MB_REST = {
    "Hips": (0, 0, 0), "LHipJoint": (0, 0, 0), "LeftUpLeg": (1.6, -1.8, 0.8), "LeftLeg": (0, -7.0, 0),
    "LeftFoot": (0, -7.5, 0), "LeftToeBase": (0, -0.2, 1.8), "LeftToeBase_end": (0, 0, 0.9),
    "RHipJoint": (0, 0, 0), "RightUpLeg": (-1.6, -1.8, 0.8), "RightLeg": (0, -7.0, 0), "RightFoot": (0, -7.5, 0),
    "RightToeBase": (0, -0.2, 1.8), "RightToeBase_end": (0, 0, 0.9),
    "LowerBack": (0, 0, 0), "Spine": (0, 2.3, 0), "Spine1": (0, 2.3, 0), "Neck": (0, 0, 0), "Neck1": (0, 1.7, 0),
    "Head": (0, 1.7, 0), "Head_end": (0, 1.7, 0),
    "LeftShoulder": (0, 0, 0), "LeftArm": (3.3, 0.7, 0), "LeftForeArm": (5.2, 0, 0), "LeftHand": (3.3, 0, 0),
    "LeftFingerBase": (0, 0, 0), "LeftHandIndex1": (0.8, 0, 0), "LeftHandIndex1_end": (0.6, 0, 0),
    "LThumb": (0, 0, 0), "LThumb_end": (0.6, 0, 0.6),
    "RightShoulder": (0, 0, 0), "RightArm": (-3.3, 0.7, 0), "RightForeArm": (-5.2, 0, 0), "RightHand": (-3.3, 0, 0),
    "RightFingerBase": (0, 0, 0), "RightHandIndex1": (-0.8, 0, 0), "RightHandIndex1_end": (-0.6, 0, 0),
    "RThumb": (0, 0, 0), "RThumb_end": (-0.6, 0, 0.6),
}
CMU_UNIT_M = 0.0254 / 0.45
#: The limb OFFSETs `cmu_mb_offsets` scales, by limb.
CMU_MB_LIMBS = {"thigh": ("LeftLeg", "RightLeg"), "shin": ("LeftFoot", "RightFoot"),
                "upper_arm": ("LeftForeArm", "RightForeArm"), "lower_arm": ("LeftHand", "RightHand")}


def cmu_mb_offsets(**limb_scale: float) -> list[list[float]]:
    """38 x 3 rest OFFSETs (file order) of the standing person with limbs scaled, e.g. thigh=1.1."""
    scale = {name: limb_scale.get(limb, 1.0) for limb, names in CMU_MB_LIMBS.items() for name in names}
    return [[v * scale.get(name, 1.0) for v in offset] for name, offset in _CMU_MB_REST.items()]


def skeleton_bank(people: Mapping[int, list]) -> dict:
    """A skeletons.json document holding `people` {CMU subject number: offsets}."""
    return {"names": list(_CMU_MB_REST), "unit_to_metres": CMU_UNIT_M, "source": "test fixture",
            "subjects": {str(n): {"offsets": o} for n, o in people.items()}}
