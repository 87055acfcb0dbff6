"""Joint layouts: Human3.6M-17 (the model's layout) and mappings into it.

Metadata is declarative (names, parents, left/right pairs); everything else is
derived from it so there is one source of truth per joint.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    root: int = 0

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if len(self.parents) != n:
            raise ValueError(f"{self.name}: {n} names but {len(self.parents)} parents")
        if len(self.left) != len(self.right):
            raise ValueError(f"{self.name}: left/right lists differ in length")
        for j, p in enumerate(self.parents):
            if p >= j:
                raise ValueError(f"{self.name}: parent of joint {j} is {p}; parents must precede children")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def bones(self) -> list[tuple[int, int]]:
        """(parent, child) pairs, one per non-root joint."""
        return [(p, j) for j, p in enumerate(self.parents) if p >= 0]

    @property
    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps left and right joints (for flip augmentation)."""
        perm = np.arange(self.num_joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm

    def adjacency(self, self_loops: bool = False) -> np.ndarray:
        a = np.zeros((self.num_joints, self.num_joints), dtype=np.float32)
        for p, c in self.bones:
            a[p, c] = a[c, p] = 1.0
        if self_loops:
            a += np.eye(self.num_joints, dtype=np.float32)
        return a

    def index(self, name: str) -> int:
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(f"{self.name} has no joint {name!r}; joints: {list(self.joint_names)}") from None

    def bone_lengths(self, poses: np.ndarray) -> np.ndarray:
        """(..., J, 3) -> (..., J-1) bone lengths in the units of `poses`."""
        par = np.array([p for p, _ in self.bones])
        chi = np.array([c for _, c in self.bones])
        return np.linalg.norm(poses[..., chi, :] - poses[..., par, :], axis=-1)


H36M17 = Skeleton(
    name="h36m17",
    joint_names=(
        "pelvis", "right_hip", "right_knee", "right_ankle",
        "left_hip", "left_knee", "left_ankle",
        "spine", "thorax", "neck_nose", "head_top",
        "left_shoulder", "left_elbow", "left_wrist",
        "right_shoulder", "right_elbow", "right_wrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    left=(4, 5, 6, 11, 12, 13),
    right=(1, 2, 3, 14, 15, 16),
)

#: Indices of the 32-joint Human3.6M layout kept in the 17-joint layout.
H36M32_TO_17 = np.array([0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27])

#: Official MPI-INF-3DHP PCK/AUC uses 14 joints: pelvis, spine and head (neck_nose) excluded.
PCK14_JOINTS = np.array([1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16])

COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

BLAZEPOSE33_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer", "left_ear", "right_ear",
    "mouth_left", "mouth_right", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)

# Each H36M-17 joint as a weighted average of source joints. Joints with no
# direct counterpart are synthesised the way the field does it (pelvis = mean of
# hips, thorax = mean of shoulders, spine = mean of pelvis and thorax).
_COCO_TO_H36M: dict[str, dict[str, float]] = {
    "pelvis": {"left_hip": 0.5, "right_hip": 0.5},
    "right_hip": {"right_hip": 1.0},
    "right_knee": {"right_knee": 1.0},
    "right_ankle": {"right_ankle": 1.0},
    "left_hip": {"left_hip": 1.0},
    "left_knee": {"left_knee": 1.0},
    "left_ankle": {"left_ankle": 1.0},
    "spine": {"left_hip": 0.25, "right_hip": 0.25, "left_shoulder": 0.25, "right_shoulder": 0.25},
    "thorax": {"left_shoulder": 0.5, "right_shoulder": 0.5},
    "neck_nose": {"nose": 1.0},
    # COCO has no head top; the mean of the eyes is the closest stable point.
    "head_top": {"left_eye": 0.5, "right_eye": 0.5},
    "left_shoulder": {"left_shoulder": 1.0},
    "left_elbow": {"left_elbow": 1.0},
    "left_wrist": {"left_wrist": 1.0},
    "right_shoulder": {"right_shoulder": 1.0},
    "right_elbow": {"right_elbow": 1.0},
    "right_wrist": {"right_wrist": 1.0},
}

_BLAZEPOSE_TO_H36M: dict[str, dict[str, float]] = {
    **{k: v for k, v in _COCO_TO_H36M.items() if k not in ("neck_nose", "head_top")},
    "neck_nose": {"nose": 1.0},
    # Head from the ears: their mean sits at the centre of the skull.
    "head_top": {"left_ear": 0.5, "right_ear": 0.5},
}


def _mapping_matrix(table: dict[str, dict[str, float]], source_names: tuple[str, ...]) -> np.ndarray:
    w = np.zeros((H36M17.num_joints, len(source_names)), dtype=np.float64)
    for j, name in enumerate(H36M17.joint_names):
        for src, weight in table[name].items():
            w[j, source_names.index(src)] = weight
    return w


COCO17_TO_H36M17 = _mapping_matrix(_COCO_TO_H36M, COCO17_NAMES)
BLAZEPOSE33_TO_H36M17 = _mapping_matrix(_BLAZEPOSE_TO_H36M, BLAZEPOSE33_NAMES)


def map_keypoints(
    keypoints: np.ndarray, matrix: np.ndarray, confidence: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Map (..., S, D) keypoints to (..., 17, D) with a weight matrix.

    A synthesised joint's confidence is the minimum over its sources, so an
    occluded hip makes the pelvis uncertain too. Returns (keypoints, confidence).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape[-2] != matrix.shape[1]:
        raise ValueError(
            f"expected {matrix.shape[1]} source joints on axis -2, found shape {keypoints.shape}"
        )
    if confidence is None:
        confidence = np.isfinite(keypoints).all(-1).astype(np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    mapped = np.einsum("js,...sd->...jd", matrix, np.nan_to_num(keypoints))
    used = matrix > 0
    conf = np.stack([confidence[..., used[j]].min(-1) for j in range(matrix.shape[0])], axis=-1)
    missing = np.stack([~np.isfinite(keypoints[..., used[j], :]).all((-1, -2)) for j in range(matrix.shape[0])], -1)
    mapped[missing] = np.nan
    conf[missing] = 0.0
    return mapped, conf


def coco17_to_h36m17(keypoints: np.ndarray, confidence: np.ndarray | None = None):
    return map_keypoints(keypoints, COCO17_TO_H36M17, confidence)


def blazepose33_to_h36m17(keypoints: np.ndarray, visibility: np.ndarray | None = None):
    return map_keypoints(keypoints, BLAZEPOSE33_TO_H36M17, visibility)
