"""MPI-INF-3DHP test set in the lifting-paper npz layout (P-STMO / D3DP).

`data_test_3dhp.npz`: key `data` -> {'TS1'..'TS6': {'data_3d': (n, 17, 3),
'data_2d': (n, 17, 2) px, 'valid': (n,)}}. 3D is camera-frame, usually in
millimetres. Joints are in the 3DHP-17 order (the MPI-INF-3DHP test set as released by Mehta et al. 2017), root =
pelvis at index 14; we reorder to H36M-17 so the root becomes joint 0.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..skeleton import H36M17
from .vp3d import as_numeric_array, atomic_savez, check_pixels, open_npz, read_object, typical_bone_length, wrap_object

MPI3DHP17_NAMES: tuple[str, ...] = (
    "head_top", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle", "pelvis", "spine", "head",
)
MPI3DHP17_ROOT = 14

# H36M-17 joint name -> 3DHP-17 joint name. 3DHP's "neck" sits where H36M's
# thorax is, and its "head" (head centre) plays H36M's neck/nose.
_H36M_FROM_3DHP = {
    "pelvis": "pelvis", "right_hip": "right_hip", "right_knee": "right_knee", "right_ankle": "right_ankle",
    "left_hip": "left_hip", "left_knee": "left_knee", "left_ankle": "left_ankle", "spine": "spine",
    "thorax": "neck", "neck_nose": "head", "head_top": "head_top",
    "left_shoulder": "left_shoulder", "left_elbow": "left_elbow", "left_wrist": "left_wrist",
    "right_shoulder": "right_shoulder", "right_elbow": "right_elbow", "right_wrist": "right_wrist",
}
#: `poses_3dhp[..., MPI3DHP17_TO_H36M17, :]` gives H36M-17 order.
MPI3DHP17_TO_H36M17 = np.array([MPI3DHP17_NAMES.index(_H36M_FROM_3DHP[n]) for n in H36M17.joint_names])

#: Image (width, height) per test sequence.
IMAGE_SIZES: dict[str, tuple[int, int]] = {
    "TS1": (2048, 2048), "TS2": (2048, 2048), "TS3": (2048, 2048), "TS4": (2048, 2048),
    "TS5": (1920, 1080), "TS6": (1920, 1080),
}
_UNIT_SCALE = {"mm": 1e-3, "m": 1.0}
#: Left/right limb bones in H36M-17 indices (thigh, shin, upper arm, forearm).
_LIMB_PAIRS = (((4, 5), (1, 2)), ((5, 6), (2, 3)), ((11, 12), (14, 15)), ((12, 13), (15, 16)))
#: Largest relative left/right difference of a limb's median length in a correctly ordered file.
MAX_LIMB_ASYMMETRY = 0.3


@dataclass
class Sequence3DHP:
    """One test sequence, H36M-17 order, camera-frame metres."""

    name: str
    pose3d: np.ndarray  # (n, 17, 3) float32, root-relative (pelvis = 0)
    root: np.ndarray  # (n, 3) float32, camera-frame pelvis position
    pose2d: np.ndarray  # (n, 17, 2) float32 pixels
    valid: np.ndarray  # (n,) bool: frames used by the official evaluation
    res: tuple[int, int]  # (width, height)


def _find_unit(poses: np.ndarray) -> str:
    return "mm" if typical_bone_length(poses) > 10.0 else "m"


def check_joint_order(poses_h36m: np.ndarray, path, key: str) -> None:
    """Refuse poses (already reordered to H36M-17) whose left/right limbs or pelvis do not fit a body.

    A file in another joint order (e.g. already H36M-17) turns into limbs joining unrelated joints:
    left and right "thighs" of very different length, a "pelvis" far from the hips.
    """
    p = np.asarray(poses_h36m, np.float64)
    if len(p) > 200:
        p = p[np.linspace(0, len(p) - 1, 200).astype(int)]

    def length(a: int, b: int) -> float:
        return float(np.median(np.linalg.norm(p[:, a] - p[:, b], axis=-1)))

    for (la, lb), (ra, rb) in _LIMB_PAIRS:
        left, right = length(la, lb), length(ra, rb)
        asym = abs(left - right) / max(left, right, 1e-9)
        if asym > MAX_LIMB_ASYMMETRY:
            names = H36M17.joint_names
            raise DataError(
                f"left/right {names[la].split('_', 1)[1]}-{names[lb].split('_', 1)[1]} lengths differ by "
                f"{100 * asym:.0f}%: the joints are not "
                "in the 3DHP-17 order (head_top, neck, right_shoulder, ..., pelvis=14, spine, head)", path=path,
                key=key, expected=f"3DHP-17 joint order (left/right limbs within {100 * MAX_LIMB_ASYMMETRY:.0f}%)",
                found=f"{names[la]}-{names[lb]} {left:.3g} vs {names[ra]}-{names[rb]} {right:.3g}")
    hip_width = length(1, 4)
    offset = float(np.median(np.linalg.norm(p[:, 0] - (p[:, 1] + p[:, 4]) / 2, axis=-1)))
    if offset > hip_width:
        raise DataError("the pelvis (3DHP index 14) is not between the hips: the joints are not in the 3DHP-17 "
                        "order", path=path, key=key, expected="pelvis within one hip width of the hips' midpoint",
                        found=f"{offset:.3g} from the midpoint, hip width {hip_width:.3g}")


def load_3dhp_test(path: str | os.PathLike, *, units: str = "mm") -> dict[str, Sequence3DHP]:
    """Read `data_test_3dhp.npz`; `units` is what the file holds ('mm' or 'm'). Output is metres.

    A file whose bone lengths contradict `units` raises DataError.
    """
    if units not in _UNIT_SCALE:
        raise ValueError(f"units must be 'mm' or 'm', got {units!r}")
    npz = open_npz(path, key="data")
    with npz:
        data = read_object(npz, "data", path)
    if not isinstance(data, Mapping):
        raise DataError("wrong structure", path=path, key="data", expected="dict['TS1'..'TS6']",
                        found=type(data).__name__)
    if not data:
        raise DataError("no test sequences", path=path, key="data", expected="at least one of 'TS1'..'TS6'",
                        found="an empty dict")
    out = {}
    for ts, entry in data.items():
        key = f"data/{ts}"
        if not isinstance(entry, Mapping):
            raise DataError("wrong structure", path=path, key=key, expected="a dict with data_3d, data_2d, valid",
                            found=type(entry).__name__)
        for sub in ("data_3d", "data_2d", "valid"):
            if sub not in entry:
                raise DataError("missing key", path=path, key=f"{key}/{sub}", expected="data_3d, data_2d, valid",
                                found=f"keys {sorted(map(str, entry))}")
        p3 = as_numeric_array(entry["data_3d"], path, f"{key}/data_3d", "(n, 17, 3)").astype(np.float64)
        p2 = as_numeric_array(entry["data_2d"], path, f"{key}/data_2d", "(n, 17, 2)").astype(np.float64)
        valid = np.asarray(entry["valid"])
        if valid.dtype.kind not in "biuf" or valid.ndim > 2:
            raise DataError("bad valid flags", path=path, key=f"{key}/valid", expected="(n,) 0/1 or bool",
                            found=f"dtype {valid.dtype} shape {valid.shape}")
        valid = valid.reshape(-1).astype(bool)
        if p3.ndim != 3 or p3.shape[1:] != (17, 3):
            raise DataError("wrong shape", path=path, key=f"{key}/data_3d", expected="(n, 17, 3)",
                            found=f"shape {p3.shape}")
        if p2.ndim != 3 or p2.shape[1:] != (17, 2):
            raise DataError("wrong shape", path=path, key=f"{key}/data_2d", expected="(n, 17, 2)",
                            found=f"shape {p2.shape}")
        if not len(p3) == len(p2) == len(valid):
            raise DataError("frame counts differ", path=path, key=key, expected="equal n for data_3d/data_2d/valid",
                            found=f"{len(p3)}/{len(p2)}/{len(valid)}")
        for sub, arr in (("data_3d", p3), ("data_2d", p2)):
            bad = ~np.isfinite(arr[valid]).all(tuple(range(1, arr.ndim)))
            if bad.any():
                frame = int(np.flatnonzero(valid)[np.argmax(bad)])
                raise DataError(f"NaN/inf in {int(bad.sum())} valid frame(s), first at frame {frame}", path=path,
                                key=f"{key}/{sub}", expected="finite values where valid = 1", found="NaN/inf")
        check_pixels(p2[valid], path, f"{key}/data_2d")
        p3 = p3[:, MPI3DHP17_TO_H36M17]
        p2 = p2[:, MPI3DHP17_TO_H36M17]
        check = p3[valid] if valid.any() else p3
        check = check[np.isfinite(check).all((1, 2))]
        if len(check):
            found = _find_unit(check)
            if found != units:
                raise DataError(f"units look like {found!r} but units={units!r} was given", path=path,
                                key=f"{key}/data_3d", expected=f"{units!r} (pass units={found!r} if the file is right)",
                                found=f"median bone {typical_bone_length(check):.3g} ({found!r})")
            check_joint_order(check, path, f"{key}/data_3d")
        p3 = p3 * _UNIT_SCALE[units]
        root = p3[:, 0].copy()
        out[ts] = Sequence3DHP(
            name=ts, pose3d=(p3 - root[:, None]).astype(np.float32), root=root.astype(np.float32),
            pose2d=p2.astype(np.float32), valid=valid, res=IMAGE_SIZES.get(ts, (2048, 2048)),
        )
    return out


def save_3dhp_test(path: str | os.PathLike, data: Mapping[str, Mapping[str, np.ndarray]]):
    """Write the lifting-paper layout (3DHP-17 order, as given) atomically; used for fixtures."""
    payload = {ts: {k: np.asarray(v) for k, v in d.items()} for ts, d in data.items()}
    return atomic_savez(path, data=wrap_object(payload))


def fit_intrinsics(seq: Sequence3DHP) -> tuple[float, float, float, float, float]:
    """Pinhole [fx, fy, cx, cy] of a test sequence fitted by least squares to its own valid 2D/3D pairs
    (x = fx X/Z + cx, y = fy Y/Z + cy), and the RMS reprojection error in pixels. The lifting-paper file
    carries no intrinsics; its 2D is the projection of its 3D, so the fit recovers the camera."""
    rows = seq.valid if seq.valid.any() else np.ones(len(seq.pose3d), bool)
    p3 = (seq.pose3d[rows].astype(np.float64) + seq.root[rows, None].astype(np.float64)).reshape(-1, 3)
    p2 = seq.pose2d[rows].astype(np.float64).reshape(-1, 2)
    ok = np.isfinite(p3).all(1) & np.isfinite(p2).all(1) & (p3[:, 2] > 0)
    if ok.sum() < 4:
        raise DataError("too few valid joints to fit the camera", key=f"data/{seq.name}", expected=">= 4",
                        found=int(ok.sum()))
    q, p2 = p3[ok, :2] / p3[ok, 2:3], p2[ok]
    out, res = [], []
    for axis in (0, 1):
        a = np.stack([q[:, axis], np.ones(len(q))], 1)
        coef, *_ = np.linalg.lstsq(a, p2[:, axis], rcond=None)
        out.append(coef)
        res.append(p2[:, axis] - a @ coef)
    rms = float(np.sqrt(np.mean(np.concatenate(res) ** 2)))
    return float(out[0][0]), float(out[1][0]), float(out[0][1]), float(out[1][1]), rms


def test_pose_set(path: str | os.PathLike, sequences: list[str] | None = None, *, units: str = "mm"):
    """The valid frames of the 3DHP test file as a `PoseSet` (subject = action = camera = the sequence name),
    each sequence with its fitted pinhole camera (camera frame = world frame)."""
    from ..camera import Camera
    from .poses import PoseSet

    data = load_3dhp_test(path, units=units)
    names = list(data) if not sequences else list(sequences)
    missing = [n for n in names if n not in data]
    if missing:
        raise DataError("unknown test sequences", path=path, key="data", expected=sorted(data), found=missing)
    parts, cameras = [], {}
    for name in names:
        seq = data[name]
        fx, fy, cx, cy, rms = fit_intrinsics(seq)
        if rms > 2.0:
            raise DataError(f"its 2D is not a pinhole projection of its 3D (RMS {rms:.1f} px)", path=path,
                            key=f"data/{name}", expected="data_2d = projection of data_3d", found=f"{rms:.1f} px")
        cameras[name] = Camera(id=name, res_w=seq.res[0], res_h=seq.res[1], focal=(fx, fy), center=(cx, cy))
        bad = cameras[name].invalid_field()
        if bad is not None:
            raise DataError(f"the camera fitted to sequence {name!r} has an unusable {bad[0]}", path=path,
                            key=f"data/{name}", expected=bad[1], found=bad[2])
        idx = np.flatnonzero(seq.valid)
        parts.append((name, seq, idx))
    cat = lambda f: np.concatenate([f(name, seq, idx) for name, seq, idx in parts])  # noqa: E731
    return PoseSet(
        pose3d=cat(lambda n, s, i: s.pose3d[i]), root=cat(lambda n, s, i: s.root[i]),
        pose2d=cat(lambda n, s, i: s.pose2d[i]), subject=cat(lambda n, s, i: np.full(len(i), n)),
        action=cat(lambda n, s, i: np.full(len(i), n)), camera=cat(lambda n, s, i: np.full(len(i), n)),
        frame=cat(lambda n, s, i: i.astype(np.int64)), cameras=cameras,
        res=cat(lambda n, s, i: np.tile(np.asarray(s.res, np.int32), (len(i), 1))),
        metadata={"source": str(path), "protocol": "MPI-INF-3DHP test set, valid frames only"})

