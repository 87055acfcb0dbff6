"""Mocap rigs -> Human3.6M-17 joints, metres, Z-up world.

Each rig maps every H36M-17 joint to an affine combination of named rig joints
(weights sum to 1). Weights between 0 and 1 interpolate (spine = mid of Spine
and Chest); a negative weight extrapolates along a bone, which is how a head
top is made for rigs whose head end site has no length (head_top = Head +
k (Head - Neck)). Joint names are those `bvh.forward_kinematics` and
`asf_amc.forward_kinematics` return (BVH end sites are "<joint>_end").
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..skeleton import H36M17


@dataclass(frozen=True)
class Rig:
    name: str
    table: dict  # H36M-17 joint name -> {rig joint name: weight}
    up_axis: str = "y"  # the file's vertical axis
    notes: str = ""

    def __post_init__(self) -> None:
        missing = set(H36M17.joint_names) - set(self.table)
        if missing:
            raise ValueError(f"rig {self.name}: no entry for H36M joints {sorted(missing)}")
        for j, w in self.table.items():
            if abs(sum(w.values()) - 1.0) > 1e-9:
                raise ValueError(f"rig {self.name}: weights for {j} sum to {sum(w.values())}, expected 1")

    @property
    def required_names(self) -> set[str]:
        return {n for w in self.table.values() for n in w}

    def matrix(self, joint_names: Sequence[str]) -> np.ndarray:
        """(17, J) weights such that `W @ positions[t]` gives H36M-17 joints."""
        names = list(joint_names)
        missing = sorted(self.required_names - set(names))
        if missing:
            raise KeyError(f"rig {self.name!r} needs joints {missing}, absent from {names}")
        w = np.zeros((H36M17.num_joints, len(names)))
        for j, jname in enumerate(H36M17.joint_names):
            for src, weight in self.table[jname].items():
                w[j, names.index(src)] += weight
        return w


def _limbs(left: str, right: str, **parts: str) -> dict:
    """Table entries of both sides from a rig's side naming: `_limbs("Left{}", "Right{}", hip="UpLeg")` ->
    {"left_hip": {"LeftUpLeg": 1.0}, "right_hip": {"RightUpLeg": 1.0}}."""
    out = {}
    for part, name in parts.items():
        out[f"left_{part}"] = {left.format(name): 1.0}
        out[f"right_{part}"] = {right.format(name): 1.0}
    return out


#: The limbs of the MotionBuilder (HumanIK) naming, shared by LAFAN1 and the CMU MotionBuilder conversion.
_HUMANIK_LIMBS = _limbs("Left{}", "Right{}", hip="UpLeg", knee="Leg", ankle="Foot", shoulder="Arm", elbow="ForeArm",
                        wrist="Hand")


#: Ubisoft LAFAN1-style BVH (also the bvhtools test.bvh/test2.bvh rig): Y-up, cm.
LAFAN1 = Rig(
    name="lafan1",
    table={
        "pelvis": {"Hips": 1.0},
        **_HUMANIK_LIMBS,
        # Spine1 is ~34 % and Spine2 ~55 % of the way up to Neck; H36M's spine sits near 50 %.
        "spine": {"Spine1": 0.25, "Spine2": 0.75},
        "thorax": {"Neck": 1.0},
        "neck_nose": {"Head": 1.0},
        # The Head end site has zero length: extend the 12 cm neck bone by its own length.
        "head_top": {"Head": 2.0, "Neck": -1.0},
    },
    notes="Head end site has zero length; head_top extrapolated one neck length above Head.",
)

#: Bandai-Namco-Research-Motiondataset BVH: Y-up, cm.
BANDAI = Rig(
    name="bandai",
    table={
        "pelvis": {"Hips": 1.0},
        **_limbs("{}_L", "{}_R", hip="UpperLeg", knee="LowerLeg", ankle="Foot", shoulder="UpperArm",
                 elbow="LowerArm", wrist="Hand"),
        "spine": {"Spine": 0.5, "Chest": 0.5},
        "thorax": {"Neck": 1.0},
        "neck_nose": {"Head": 1.0},
        # Neck->Head is ~6.5 cm; bandai17 puts the head top 16 cm along the head axis.
        "head_top": {"Head": 3.46, "Neck": -2.46},
    },
    notes="Head end site has zero length; head_top extrapolated ~16 cm along Neck->Head "
          "(bandai17 used the Head joint's own axis, which also follows head pitch).",
)

#: CMU mocap ASF skeleton (joint = bone end point, plus 'root').
CMU_ASF = Rig(
    name="cmu_asf",
    table={
        # The CMU root is ~10 cm above the hip joints; H36M's pelvis is at hip height.
        "pelvis": {"lhipjoint": 0.5, "rhipjoint": 0.5},
        **_limbs("l{}", "r{}", hip="hipjoint", knee="femur", ankle="tibia", shoulder="clavicle", elbow="humerus",
                 wrist="radius"),
        # lowerback's end sits ~49 % of the way from the hips to the thorax end, like H36M's spine.
        "spine": {"lowerback": 1.0},
        "thorax": {"thorax": 1.0},
        # lowerneck ends ~10 cm and upperneck ~20 cm above the thorax; H36M's neck/nose is ~12 cm.
        "neck_nose": {"lowerneck": 0.5, "upperneck": 0.5},
        "head_top": {"head": 1.0},
    },
    notes="Points are bone end points: lfemur = knee, ltibia = ankle, upperneck = base of the skull.",
)

#: Blender 'metarig'-style BVH (the bvhtools test3.bvh rig): Y-up, metres.
BLENDER_METARIG = Rig(
    name="blender_metarig",
    table={
        "pelvis": {"pelvis": 1.0},
        **_limbs("{}.L", "{}.R", hip="thigh", knee="shin", ankle="foot", shoulder="upper_arm", elbow="forearm"),
        **_limbs("{}.L_end", "{}.R_end", wrist="forearm"),  # the forearm end sites
        "spine": {"spine.001": 1.0},
        "thorax": {"neck": 1.0},
        "neck_nose": {"face": 1.0},
        # The face end site is 3 cm long: extend neck->face (17.8 cm) by 65 % for ~11.5 cm.
        "head_top": {"face": 1.65, "neck": -0.65},
    },
    notes="Wrists are the forearm end sites; head_top extrapolated along neck->face.",
)

#: CMU takes as BVH, MotionBuilder-friendly conversion (B. Hahne "cmuconvert-mb2", una-dinosauria/cmu-mocap
#: `NN_MM.bvh`): Y-up, CMU length units. Joints are named for where each CMU bone starts (LeftUpLeg = hip joint,
#: LeftLeg = knee); the spine chain LowerBack -> Spine -> Spine1 -> Neck -> Neck1 -> Head stands for the ASF bones
#: lowerback, upperback, thorax, lowerneck, upperneck, head, but Neck's offset is zero (../shared/data/cmu-skeletons):
#: the thorax bone is gone and Neck (the H36M thorax here) is the upperback end, with the shoulders hung from it.
CMU_BVH_MB = Rig(
    name="cmu_bvh_mb",
    table={
        "pelvis": {"LeftUpLeg": 0.5, "RightUpLeg": 0.5},
        **_HUMANIK_LIMBS,
        "spine": {"Spine": 1.0},
        "thorax": {"Neck": 1.0},
        "neck_nose": {"Neck1": 0.5, "Head": 0.5},
        "head_top": {"Head_end": 1.0},
    },
    notes="CMU bone end points: Spine = lowerback end, Neck = upperback end (this conversion has no ASF thorax "
          "bone: Neck sits at Spine1, so the trunk is about 0.11 m shorter than the same person's ASF), "
          "Head_end = head top.",
)

#: CMU takes as BVH, 3ds-Max-friendly conversion (yuki-koyama/bvh11 `131_0N.bvh`): Y-up, CMU length units
#: (its `scaled_131_0N.bvh` copies are in metres). Joints are named for anatomical points (LeftHip, LeftKnee, ...);
#: Chest2 -> Neck -> Head -> end site are about 9 cm each and the shoulders sit at Neck height.
CMU_BVH_MAX = Rig(
    name="cmu_bvh_3dsmax",
    table={
        "pelvis": {"LeftHip": 0.5, "RightHip": 0.5},
        **_limbs("Left{}", "Right{}", hip="Hip", knee="Knee", ankle="Ankle", shoulder="Shoulder", elbow="Elbow",
                 wrist="Wrist"),
        "spine": {"Chest": 1.0},
        "thorax": {"Neck": 1.0},
        "neck_nose": {"Head": 1.0},
        "head_top": {"Head_end": 1.0},
    },
    notes="Chest = lowerback end (about half-way up the trunk); Neck at shoulder height; Head_end = head top.",
)

#: ReActIdle (Enekoassets/ReActIdle, markerless capture exported from a Rigify-style Blender armature): 19 joints
#: pelvis, spine, spine.001, neck, face, shoulder/upper_arm/forearm .L/.R, pelvis.L/.R, thigh/shin/foot .L/.R;
#: Y-up, metres, 24 fps. Joints are bone heads: thigh = hip joint, spine.001 = mid trunk (half-way from pelvis to
#: neck), neck = base of the neck at shoulder height, face = skull base (neck -> face is 15-24 cm). The wrist is
#: the forearm end site. H36M's neck/nose sits ~11 cm and its head top ~23 cm above the thorax (S1), so both are
#: placed along neck -> face at 0.62 and 1.28 of its length.
REACTIDLE = Rig(
    name="reactidle",
    table={
        **BLENDER_METARIG.table,  # a Rigify armature: the metarig's joints; only the head is placed otherwise
        "neck_nose": {"neck": 0.38, "face": 0.62},
        "head_top": {"face": 1.28, "neck": -0.28},
    },
    notes="Wrists are the forearm end sites; neck/nose and head top placed along neck -> face (no head end).",
)
#: Every joint a ReActIdle file has (the rig check wants exactly these, not just the ones the table reads).
REACTIDLE_JOINTS = frozenset({
    "pelvis", "spine", "spine.001", "neck", "face", "shoulder.L", "upper_arm.L", "forearm.L", "shoulder.R",
    "upper_arm.R", "forearm.R", "pelvis.L", "pelvis.R", "thigh.L", "shin.L", "foot.L", "thigh.R", "shin.R", "foot.R"})

RIGS: dict[str, Rig] = {r.name: r for r in (LAFAN1, BANDAI, CMU_ASF, BLENDER_METARIG, CMU_BVH_MB, CMU_BVH_MAX)}
#: The rigs a CMU BVH converter accepts.
CMU_BVH_RIGS: tuple[Rig, ...] = (CMU_BVH_MB, CMU_BVH_MAX)


def auto_rig(joint_names: Sequence[str]) -> Rig:
    """The rig whose joint names are all present; KeyError listing what each rig misses."""
    names = set(joint_names)
    fits = [r for r in RIGS.values() if r.required_names <= names]
    if fits:
        return max(fits, key=lambda r: len(r.required_names))
    missing = {r.name: sorted(r.required_names - names) for r in RIGS.values()}
    raise KeyError(f"no known rig matches joints {sorted(names)}; missing per rig: {missing}")


def to_h36m17(positions: np.ndarray, joint_names: Sequence[str], rig: Rig | str | None = None) -> np.ndarray:
    """(T, J, 3) rig joints -> (T, 17, 3) H36M-17 joints (same units/axes)."""
    if rig is None:
        rig = auto_rig(joint_names)
    elif isinstance(rig, str):
        rig = RIGS[rig]
    positions = np.asarray(positions, dtype=np.float64)
    if positions.shape[-2] != len(joint_names):
        raise ValueError(f"positions have {positions.shape[-2]} joints but {len(joint_names)} names were given")
    return np.einsum("js,...sd->...jd", rig.matrix(joint_names), positions)


_UNITS_M = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254}
_TYPICAL_LEG_M = 0.85  # thigh + shin of an adult, metres


def guess_metres_per_unit(poses17: np.ndarray) -> float:
    """Metres per file unit from the leg length: picks m, cm, mm or inch on a log scale."""
    p = np.asarray(poses17, dtype=np.float64)
    leg = np.linalg.norm(p[:, [2, 5]] - p[:, [1, 4]], axis=-1) + np.linalg.norm(p[:, [3, 6]] - p[:, [2, 5]], axis=-1)
    leg = float(np.median(leg))
    return min(_UNITS_M.values(), key=lambda m: abs(np.log(leg * m / _TYPICAL_LEG_M)))


def to_z_up(points: np.ndarray, up_axis: str = "y") -> np.ndarray:
    """Right-handed Y-up (x, y, z) -> right-handed Z-up (x, -z, y): a +90 deg turn about x."""
    p = np.asarray(points, dtype=np.float64)
    if up_axis == "z":
        return p.copy()
    if up_axis == "y":
        return np.stack([p[..., 0], -p[..., 2], p[..., 1]], -1)
    raise ValueError(f"up_axis must be 'y' or 'z', got {up_axis!r}")


def place_on_floor(poses17: np.ndarray, ankle_height: float = 0.08) -> np.ndarray:
    """Shift z so the lowest ankle of the clip is `ankle_height` above z = 0 (soles on the floor)."""
    p = np.array(poses17, dtype=np.float64)
    p[..., 2] -= p[:, [3, 6], 2].min() - ankle_height
    return p


def recentre_horizontally(poses17: np.ndarray) -> np.ndarray:
    """Translate so the clip's mean pelvis (x, y) is (0, 0)."""
    p = np.array(poses17, dtype=np.float64)
    p[..., :2] -= p[:, 0, :2].mean(0)
    return p


def to_world_metres(
    poses17: np.ndarray, *, metres_per_unit: float | None = None, up_axis: str = "y",
) -> np.ndarray:
    """H36M-17 poses in file units/axes -> metres, Z-up (no floor or centring; do that per clip)."""
    scale = guess_metres_per_unit(poses17) if metres_per_unit is None else metres_per_unit
    return to_z_up(np.asarray(poses17, dtype=np.float64) * scale, up_axis)
