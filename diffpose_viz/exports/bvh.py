"""A sequence's 3D poses as a BVH file: joint rotations on an H36M-17 skeleton with this person's median
bone lengths, at the video's frame rate, for Blender and other retargeting tools.

What the file holds, exactly:
- Axes and units: BVH's usual Y up, centimetres. A camera-frame point (x right, y down, z forward, metres)
  is written as 100 * (x, -y, -z): the person faces the viewer (+Z), their left is +X.
- The root (`pelvis`) stays at the origin: results are root-relative.
- Bone lengths are fixed over the take (a BVH skeleton cannot change them): each is the median over the
  frames of that bone in the exported pose. So the file reproduces the *bone-length-normalised* pose
  (`normalised_poses`): every bone of the prediction keeps its direction and gets its median length,
  walking out from the pelvis. The round trip `read_bvh` -> `forward_kinematics` gives those positions
  back (tests/exports/test_bvh.py checks <= 1 mm); the difference to the raw prediction is the model's
  own frame-to-frame bone-length variation, which no fixed skeleton can carry.
- The pelvis and thorax each have three children; one rotation cannot point three bones with per-frame
  angles between them, so each of their children hangs under a zero-length joint `<child>_dir` that has
  its own rotation (the pelvis and thorax themselves carry the best common rotation). Leaves (ankles,
  wrists, head top) end in a short End Site along their bone.
- Rotations: "Zrotation Yrotation Xrotation" (R = Rz Ry Rx, degrees), each bone turned from its T-pose
  rest direction by the smallest rotation relative to its parent (no twist is estimated: 17 points
  carry none).
- Rows without an estimate inside the take (a frame with no person) are filled by linear interpolation of
  the neighbouring poses, so the file has one frame per video frame; `BVHExport.interpolated` lists them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from diffpose_viz.skeleton import H36M17

#: camera frame (x right, y down, z forward, m) -> BVH (Y up, person facing +Z, cm)
AXES = np.array([1.0, -1.0, -1.0])
UNIT_SCALE = 100.0
#: T-pose rest direction of the bone that ends in each H36M-17 joint (BVH axes; person's left = +X).
_REST = {
    "right_hip": (-1, 0, 0), "right_knee": (0, -1, 0), "right_ankle": (0, -1, 0),
    "left_hip": (1, 0, 0), "left_knee": (0, -1, 0), "left_ankle": (0, -1, 0),
    "spine": (0, 1, 0), "thorax": (0, 1, 0), "neck_nose": (0, 1, 0), "head_top": (0, 1, 0),
    "left_shoulder": (1, 0, 0), "left_elbow": (1, 0, 0), "left_wrist": (1, 0, 0),
    "right_shoulder": (-1, 0, 0), "right_elbow": (-1, 0, 0), "right_wrist": (-1, 0, 0),
}
END_SITE_CM = 5.0
BRANCH_SUFFIX = "_dir"
ROTATION_CHANNELS = "Zrotation Yrotation Xrotation"


def to_bvh_axes(points_m: np.ndarray) -> np.ndarray:
    return np.asarray(points_m, dtype=np.float64) * AXES * UNIT_SCALE


def from_bvh_axes(points_cm: np.ndarray) -> np.ndarray:
    """BVH positions (cm, Y up) -> camera frame metres (the inverse of `to_bvh_axes`)."""
    return np.asarray(points_cm, dtype=np.float64) / UNIT_SCALE * AXES


def median_bone_lengths(poses: np.ndarray) -> np.ndarray:
    """(T, 17, 3) -> (16,) median length of each bone of `H36M17.bones` (units of `poses`)."""
    return np.median(H36M17.bone_lengths(np.asarray(poses, dtype=np.float64)), axis=0)


def _unit(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > 1e-9, v / np.maximum(n, 1e-12), fallback)


def normalised_poses(poses: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """(T, 17, 3) -> the same poses with every bone at `lengths` (default: its median), directions kept,
    pelvis at the origin: what a fixed skeleton can reproduce. Units of `poses`."""
    poses = np.asarray(poses, dtype=np.float64)
    lengths = median_bone_lengths(poses) if lengths is None else np.asarray(lengths, dtype=np.float64)
    out = np.zeros_like(poses)
    for b, (p, c) in enumerate(H36M17.bones):  # parents precede children
        rest = np.asarray(_REST[H36M17.joint_names[c]], dtype=np.float64)
        d = _unit(poses[:, c] - poses[:, p], rest)
        out[:, c] = out[:, p] + lengths[b] * d
    return out


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {j: [] for j in range(H36M17.num_joints)}
    for p, c in H36M17.bones:
        kids[p].append(c)
    return kids


def _min_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, 3) unit vectors (a may be one (3,) vector) -> (T, 3, 3) the smallest rotations taking a to b."""
    a = np.broadcast_to(a, b.shape)
    v = np.cross(a, b)
    c = np.einsum("ti,ti->t", a, b)
    s = np.linalg.norm(v, axis=-1)
    axis = _unit(v, np.zeros(3))
    anti = s < 1e-9
    if (anti & (c < 0)).any():  # opposite vectors: turn half a circle about any perpendicular axis
        perp = np.cross(a, np.array([1.0, 0.0, 0.0]))
        perp = np.where(np.linalg.norm(perp, axis=-1, keepdims=True) < 1e-6, np.cross(a, np.array([0.0, 1.0, 0.0])),
                        perp)
        axis = np.where((anti & (c < 0))[:, None], _unit(perp, np.zeros(3)), axis)
    angle = np.arctan2(s, c)
    return Rotation.from_rotvec(axis * angle[:, None]).as_matrix()


def _best_rotation(rest: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(K, 3) rest directions and (T, K, 3) targets -> (T, 3, 3) rotations R minimising sum |R rest - target|^2."""
    h = np.einsum("ki,tkj->tij", rest, target)  # sum_k rest_k target_k^T
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("tij,tjk->tik", vt.transpose(0, 2, 1), u.transpose(0, 2, 1))))
    fix = np.tile(np.eye(3), (len(h), 1, 1))
    fix[:, 2, 2] = d
    return np.einsum("tji,tjk,tlk->til", vt, fix, u)


@dataclass
class _Node:
    name: str
    offset: np.ndarray  # cm
    rotations: np.ndarray  # (T, 3, 3) local
    children: list["_Node"]
    end_site: np.ndarray | None = None


@dataclass
class BVHExport:
    text: str
    joint_names: list[str]  # the H36M-17 joints, as named in the file
    lengths_cm: np.ndarray  # (16,) median bone lengths
    frames: np.ndarray  # (F,) source frame index of every BVH frame
    interpolated: np.ndarray  # (F,) bool: filled in between rows


def frame_step(frames: np.ndarray) -> int:
    """The spacing of the source frames (their greatest common difference; 1 for a single row)."""
    diffs = np.diff(np.asarray(frames, dtype=np.int64))
    return int(np.gcd.reduce(diffs)) if len(diffs) and diffs.min() > 0 else 1


def fill_gaps(frames: np.ndarray, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows at source frames `frames` (increasing) -> one pose per step of `frame_step(frames)` from the first
    to the last, the missing ones linearly interpolated; returns (frames, poses, interpolated)."""
    frames = np.asarray(frames, dtype=np.int64)
    full = np.arange(frames[0], frames[-1] + 1, frame_step(frames))
    if len(full) == len(frames):
        return frames, poses, np.zeros(len(frames), bool)
    flat = poses.reshape(len(poses), -1)
    out = np.stack([np.interp(full, frames, flat[:, k]) for k in range(flat.shape[1])], -1)
    return full, out.reshape((len(full),) + poses.shape[1:]), ~np.isin(full, frames)


def build_bvh(poses_m: np.ndarray, frames: np.ndarray, fps: float) -> BVHExport:
    """Camera-frame poses (T, 17, 3) metres at source frames `frames` (increasing) of a video at `fps` ->
    BVH text (see the module docstring); one BVH frame per `frame_step(frames)` source frames."""
    poses_m = np.asarray(poses_m, dtype=np.float64)
    step = frame_step(frames)
    lengths = median_bone_lengths(to_bvh_axes(poses_m))  # of the estimated rows, not the filled ones
    frames, poses_m, interpolated = fill_gaps(frames, poses_m)
    q = to_bvh_axes(poses_m - poses_m[:, :1])
    target = normalised_poses(q, lengths)
    t = len(target)
    kids = _children()
    bone_of = {c: b for b, (_, c) in enumerate(H36M17.bones)}
    rest = {c: np.asarray(_REST[H36M17.joint_names[c]], dtype=np.float64) for c in bone_of}

    def direction(p: int, c: int) -> np.ndarray:
        return _unit(target[:, c] - target[:, p], rest[c])

    def node(j: int, offset: np.ndarray, parent_global: np.ndarray) -> _Node:
        name = H36M17.joint_names[j]
        children = kids[j]
        if not children:  # a leaf: no bone to turn; the End Site continues its own bone
            return _Node(name, offset, np.tile(np.eye(3), (t, 1, 1)), [], end_site=rest[j] * END_SITE_CM)
        if len(children) == 1:
            c = children[0]
            local = _min_rotation(rest[c], np.einsum("tji,tj->ti", parent_global, direction(j, c)))
            glob = parent_global @ local
            return _Node(name, offset, local, [node(c, rest[c] * lengths[bone_of[c]], glob)])
        targets = np.stack([np.einsum("tji,tj->ti", parent_global, direction(j, c)) for c in children], 1)
        local = _best_rotation(np.stack([rest[c] for c in children]), targets)
        glob = parent_global @ local
        branches = []
        for c in children:
            turn = _min_rotation(rest[c], np.einsum("tji,tj->ti", glob, direction(j, c)))
            branches.append(_Node(H36M17.joint_names[c] + BRANCH_SUFFIX, np.zeros(3), turn,
                                  [node(c, rest[c] * lengths[bone_of[c]], glob @ turn)]))
        return _Node(name, offset, local, branches)

    root = node(0, np.zeros(3), np.tile(np.eye(3), (t, 1, 1)))
    lines = ["HIERARCHY"]
    columns: list[np.ndarray] = [np.zeros((t, 3))]  # root position: the pelvis stays at the origin

    def write(n: _Node, depth: int) -> None:
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {n.name}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {n.offset[0]:.6f} {n.offset[1]:.6f} {n.offset[2]:.6f}")
        pos = "Xposition Yposition Zposition " if depth == 0 else ""
        lines.append(f"{pad}  CHANNELS {6 if depth == 0 else 3} {pos}{ROTATION_CHANNELS}")
        columns.append(Rotation.from_matrix(n.rotations).as_euler("ZYX", degrees=True))
        for child in n.children:
            write(child, depth + 1)
        if n.end_site is not None:
            e = n.end_site
            lines.extend([f"{pad}  End Site", pad + "  {", f"{pad}    OFFSET {e[0]:.6f} {e[1]:.6f} {e[2]:.6f}",
                          pad + "  }"])
        lines.append(pad + "}")

    write(root, 0)
    motion = np.concatenate(columns, axis=1)
    lines += ["MOTION", f"Frames: {t}", f"Frame Time: {step / fps:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in motion]
    return BVHExport("\n".join(lines) + "\n", list(H36M17.joint_names), lengths, frames, interpolated)
