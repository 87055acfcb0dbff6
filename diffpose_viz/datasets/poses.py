"""`PoseSet`: a flat set of frames, one row per (subject, action, camera, frame).

Built from world-frame mocap by moving every frame into each camera's frame,
splitting off the root (pelvis) position and projecting to pixels. The models
consume `pose3d` (root-relative camera metres) and `pose2d` (pixels).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..camera import Camera
from ..errors import DataError
from .vp3d import Keypoints2D, Mocap3D, atomic_savez, match_2d_to_3d, open_npz

_ARRAY_FIELDS = ("pose3d", "root", "pose2d", "subject", "action", "camera", "frame", "res")


@dataclass
class PoseSet:
    """See docs/ARCHITECTURE.md. `camera` values are keys of `cameras`.

    The key is the plain camera id when every subject in the set shares that
    camera's calibration (bandai17, the demo set), and "<subject>/<id>" when
    extrinsics differ per subject (Human3.6M); `cameras[key].id` is always the
    plain id.
    """

    pose3d: np.ndarray  # (N, 17, 3) float32, camera-frame metres, root-relative (joint 0 = 0)
    root: np.ndarray  # (N, 3) float32, camera-frame root position, metres
    pose2d: np.ndarray  # (N, 17, 2) float32 pixels
    subject: np.ndarray  # (N,) str
    action: np.ndarray  # (N,) str
    camera: np.ndarray  # (N,) str, key into `cameras`
    frame: np.ndarray  # (N,) int64, frame index in the source sequence
    cameras: dict[str, Camera]
    res: np.ndarray  # (N, 2) int32 image width, height
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.pose3d)
        for name in _ARRAY_FIELDS:
            if len(getattr(self, name)) != n:
                raise ValueError(f"PoseSet field {name!r} has {len(getattr(self, name))} rows, expected {n}")
        missing = set(np.unique(self.camera).tolist()) - set(self.cameras)
        if missing:
            raise ValueError(f"PoseSet rows use cameras {sorted(missing)} absent from `cameras`")

    def __len__(self) -> int:
        return len(self.pose3d)

    def subset(self, mask: np.ndarray | Sequence[int]) -> "PoseSet":
        """Rows selected by a boolean mask or an index array."""
        mask = np.asarray(mask)
        if mask.dtype == bool and mask.shape != (len(self),):
            raise ValueError(f"boolean mask has shape {mask.shape}, expected ({len(self)},)")
        kw = {name: getattr(self, name)[mask] for name in _ARRAY_FIELDS}
        used = set(np.unique(kw["camera"]).tolist())
        return PoseSet(**kw, cameras={k: c for k, c in self.cameras.items() if k in used},
                       metadata=dict(self.metadata))

    def thin(self, max_rows: int | None) -> "PoseSet":
        """Evenly spaced rows (every sequence keeps its share); None = all rows."""
        if max_rows is None or len(self) <= max_rows:
            return self
        return self.subset(np.unique(np.linspace(0, len(self) - 1, max_rows).round().astype(int)))

    @property
    def sequence_key(self) -> np.ndarray:
        """(N,) 'subject|action' strings: one sequence of mocap (all cameras together)."""
        return np.char.add(np.char.add(self.subject.astype(str), "|"), self.action.astype(str))

    def world_pose(self) -> np.ndarray:
        """(N, 17, 3) world-frame poses, for plotting with the scene."""
        out = np.empty(self.pose3d.shape, dtype=np.float64)
        absolute = self.pose3d.astype(np.float64) + self.root[:, None, :]
        for key in np.unique(self.camera):
            rows = self.camera == key
            out[rows] = self.cameras[key].camera_to_world(absolute[rows])
        return out

    # ----------------------------------------------------------------- caching
    def save_npz(self, path: str | os.PathLike) -> Path:
        """Atomic, pickle-free cache file (cameras and metadata as JSON)."""
        arrays = {name: getattr(self, name) for name in _ARRAY_FIELDS}
        for name in ("subject", "action", "camera"):
            arrays[name] = np.asarray(arrays[name], dtype=str)
        cams = {k: _jsonable(c.to_dict()) for k, c in self.cameras.items()}
        return atomic_savez(path, **arrays, cameras_json=np.array(json.dumps(cams)),
                            metadata_json=np.array(json.dumps(_jsonable(self.metadata))))

    @classmethod
    def load_npz(cls, path: str | os.PathLike) -> "PoseSet":
        npz = open_npz(path)
        with npz:
            missing = [k for k in (*_ARRAY_FIELDS, "cameras_json") if k not in npz.files]
            if missing:
                raise DataError("not a PoseSet cache", path=path, key=missing[0],
                                expected=f"keys {list(_ARRAY_FIELDS)} + cameras_json", found=f"keys {npz.files}")
            kw = {name: npz[name] for name in _ARRAY_FIELDS}
            for name, arr in kw.items():
                if not isinstance(arr, np.ndarray) or arr.dtype.hasobject:
                    raise DataError("pickled entry in a PoseSet cache", path=path, key=name,
                                    expected="a plain (pickle-free) array",
                                    found="an object array" if isinstance(arr, np.ndarray) else type(arr).__name__)
            texts = {k: str(npz[k]) for k in ("cameras_json", "metadata_json") if k in npz.files}
        parsed = {}
        for k, text in texts.items():
            try:
                parsed[k] = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError("not JSON", path=path, key=k, expected="a JSON string",
                                found=f"{text[:40]!r} ({err})") from None
        cams, meta = parsed["cameras_json"], parsed.get("metadata_json", {})
        for name, shape in (("pose3d", (17, 3)), ("pose2d", (17, 2)), ("root", (3,)), ("res", (2,))):
            if kw[name].shape[1:] != shape:
                raise DataError("wrong shape", path=path, key=name, expected=f"(N, {', '.join(map(str, shape))})",
                                found=str(kw[name].shape))
        return cls(**kw, cameras={k: Camera.from_dict(d) for k, d in cams.items()}, metadata=meta)


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# --------------------------------------------------------------------------- building
def _frame_indices(num_frames: int, stride: int, max_frames: int | None) -> np.ndarray:
    idx = np.arange(0, num_frames, stride)
    if max_frames is not None and len(idx) > max_frames:
        # Evenly spread over the sequence rather than its first seconds.
        idx = idx[np.linspace(0, len(idx) - 1, max_frames).round().astype(int)]
    return idx


def _select_cameras(cams: list[Camera], wanted, subject: str, path) -> list[int]:
    if wanted is None:
        return list(range(len(cams)))
    ids = [c.id for c in cams]
    out = []
    for w in wanted:
        # A config's short all-digit strings are list indices; H36M-style ids are long digit strings.
        if isinstance(w, str) and w.isdigit() and len(w) <= 2:
            w = int(w)
        if isinstance(w, (int, np.integer)):
            if not 0 <= int(w) < len(cams):
                raise DataError(f"camera index {w} out of range for subject {subject!r}", path=path,
                                key="cameras", expected=f"0..{len(cams) - 1}", found=int(w))
            out.append(int(w))
        elif str(w) in ids:
            out.append(ids.index(str(w)))
        else:
            raise DataError(f"unknown camera {w!r} for subject {subject!r}", path=path, key="cameras",
                            expected=f"an index or one of {ids}", found=repr(w))
    return out


def _camera_keys(cams: dict[str, list[Camera]], selected: dict[str, list[int]]) -> dict[tuple[str, int], str]:
    """Plain id when all subjects agree on a camera's calibration, else 'subject/id'."""
    by_id: dict[str, set[Camera]] = {}
    for s, chosen in selected.items():
        for i in chosen:
            by_id.setdefault(cams[s][i].id, set()).add(cams[s][i])
    return {(s, i): cams[s][i].id if len(by_id[cams[s][i].id]) == 1 else f"{s}/{cams[s][i].id}"
            for s, chosen in selected.items() for i in chosen}


def build_pose_set(
    mocap3d: Mocap3D,
    subjects: Iterable[str],
    *,
    cameras: Sequence[int | str] | None = None,
    frame_stride: int = 1,
    max_frames_per_sequence: int | None = None,
    poses_2d: Keypoints2D | Mapping | None = None,
    tangential_order: str = "h36m",
) -> PoseSet:
    """Flatten `subjects` of `mocap3d` into a PoseSet, seen by each selected camera.

    `cameras` picks cameras by list index or id (default: all of the subject's).
    Frames are `range(0, T, frame_stride)`, then thinned evenly to at most
    `max_frames_per_sequence`. 2D is the distorted projection of the 3D unless
    `poses_2d` ({subject: {action: [per-camera (T, 17, 2)]}}, camera order of
    the subject's camera list) is given; longer 2D is trimmed, shorter raises.
    """
    subjects = list(subjects)
    if frame_stride < 1:
        raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
    path = mocap3d.path
    # Each subject's cameras and sequences, read once; everything below works on these.
    cams = {s: mocap3d.cameras_for(s) for s in subjects}
    sequences = {s: {a: mocap3d.sequence(s, a) for a in mocap3d.actions(s)} for s in subjects}
    selected = {s: _select_cameras(cams[s], cameras, s, path) for s in subjects}
    keys = _camera_keys(cams, selected)
    pos2d_src = poses_2d.positions if isinstance(poses_2d, Keypoints2D) else poses_2d
    path2d = poses_2d.path if isinstance(poses_2d, Keypoints2D) else None

    parts: list[PoseSet] = []
    for s in subjects:
        actions = list(sequences[s])
        frame_idx = [_frame_indices(len(sequences[s][a]), frame_stride, max_frames_per_sequence)
                     for a in actions]
        world = np.concatenate([sequences[s][a][f] for a, f in zip(actions, frame_idx)]) \
            if actions else np.zeros((0, 17, 3), np.float32)
        n = len(world)
        action_col = np.repeat(np.asarray(actions, dtype=str), [len(f) for f in frame_idx])
        frame_col = np.concatenate(frame_idx).astype(np.int64) if actions else np.zeros(0, np.int64)
        for ci in selected[s]:
            cam = cams[s][ci]
            cam_xyz = cam.world_to_camera(world)
            root = cam_xyz[:, 0].copy()
            if pos2d_src is None:
                try:
                    pose2d = cam.project(cam_xyz, tangential_order=tangential_order)
                except ValueError as err:
                    raise DataError(f"subject {s!r}: {err}", path=path, key="positions_3d") from None
            else:
                pose2d = _gather_2d(pos2d_src, s, sequences[s], frame_idx, path, ci, path2d)
            key = keys[(s, ci)]
            parts.append(PoseSet(
                pose3d=(cam_xyz - root[:, None, :]).astype(np.float32),
                root=root.astype(np.float32),
                pose2d=np.asarray(pose2d, dtype=np.float32),
                subject=np.full(n, s, dtype=f"<U{max(1, len(s))}"),
                action=action_col,
                camera=np.full(n, key, dtype=f"<U{len(key)}"),
                frame=frame_col,
                cameras={key: cam},
                res=np.tile(np.array([cam.res_w, cam.res_h], np.int32), (n, 1)),
            ))
    out = join_pose_sets(parts)
    out.metadata = {"source": path, "fps": mocap3d.fps, "frame_stride": frame_stride,
                    "pose2d": "ground-truth projection" if poses_2d is None else f"detections from {path2d}"}
    return out


def _gather_2d(src: Mapping, subject: str, sequences: Mapping[str, np.ndarray], frame_idx: list[np.ndarray],
               path3d, cam_index: int, path2d) -> np.ndarray:
    chunks = []
    for a, f in zip(sequences, frame_idx):
        key = f"positions_2d/{subject}/{a}"
        if subject not in src:
            raise DataError(f"no 2D for subject {subject!r} of the 3D file {path3d}", path=path2d,
                            key=f"positions_2d/{subject}", expected="the 3D file's subjects",
                            found=f"subjects {sorted(map(str, src))}")
        if a not in src[subject]:
            have = sorted(map(str, src[subject]))
            raise DataError(f"no 2D for subject {subject!r} action {a!r} of the 3D file {path3d}", path=path2d,
                            key=key, expected="an entry for every 3D sequence",
                            found=f"actions {have[:20]}" + (" ..." if len(have) > 20 else ""))
        cams = src[subject][a]
        if cam_index >= len(cams):
            raise DataError("too few cameras in 2D", path=path2d, key=key,
                            expected=f"> {cam_index} camera arrays (one per 3D camera)",
                            found=f"{len(cams)} camera array(s)")
        seq = match_2d_to_3d(np.asarray(cams[cam_index]), len(sequences[a]), path=path2d,
                             key=f"{key}[{cam_index}]")
        chunks.append(seq[f])
    return np.concatenate(chunks) if chunks else np.zeros((0, 17, 2), np.float32)


# --------------------------------------------------------------------------- splits
def split_by_subject(mocap: Mocap3D, train: Iterable[str], test: Iterable[str]) -> tuple[Mocap3D, Mocap3D]:
    """Two views of `mocap` with disjoint subject lists."""
    train, test = list(train), list(test)
    overlap = sorted(set(train) & set(test))
    if overlap:
        raise ValueError(f"subjects {overlap} are in both the train and the test split")
    return mocap.select(train), mocap.select(test)


def validation_split(poseset: PoseSet, fraction: float, seed: int = 0) -> tuple[PoseSet, PoseSet]:
    """(train, validation) by whole sequences (subject + action, all cameras).

    Sequences are shuffled with `seed` and moved to validation until it holds
    at least `fraction` of the frames, so no validation frame has a training
    neighbour from the same take. At least one sequence stays in training.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    keys, inverse, counts = np.unique(poseset.sequence_key, return_inverse=True, return_counts=True)
    if fraction == 0.0 or len(keys) < 2:
        return poseset, poseset.subset(np.zeros(len(poseset), bool))
    order = np.random.default_rng(seed).permutation(len(keys))
    cum = np.cumsum(counts[order])
    n_val = int(np.searchsorted(cum, fraction * len(poseset)) + 1)
    n_val = min(max(n_val, 1), len(keys) - 1)
    is_val_seq = np.zeros(len(keys), bool)
    is_val_seq[order[:n_val]] = True
    val_rows = is_val_seq[inverse]
    return poseset.subset(~val_rows), poseset.subset(val_rows)


def prefixed(poseset: PoseSet, name: str) -> PoseSet:
    """The same rows with subjects renamed '<name>:<subject>' and camera keys '<name>/<key>' (camera ids kept),
    so rows from another file never share a sequence or a calibration key with the main file's rows."""
    cams = {f"{name}/{k}": c for k, c in poseset.cameras.items()}
    kw = {f: getattr(poseset, f) for f in _ARRAY_FIELDS}
    kw["subject"] = np.char.add(f"{name}:", poseset.subject.astype(str))
    kw["camera"] = np.char.add(f"{name}/", poseset.camera.astype(str))
    return PoseSet(**kw, cameras=cams, metadata=dict(poseset.metadata))


def join_pose_sets(sets: Sequence[PoseSet]) -> PoseSet:
    """Rows of several PoseSets in order; a camera key used by two sets must carry the same calibration."""
    if not sets:
        raise ValueError("concatenate: expected at least one PoseSet")
    cameras: dict[str, Camera] = {}
    for ps in sets:
        for key, cam in ps.cameras.items():
            if key in cameras and cameras[key].to_dict() != cam.to_dict():
                raise ValueError(f"concatenate: camera key {key!r} has two different calibrations; prefix one set")
            cameras[key] = cam
    kw = {f: np.concatenate([getattr(ps, f) for ps in sets]) for f in _ARRAY_FIELDS}
    return PoseSet(**kw, cameras=cameras, metadata=dict(sets[0].metadata))


def reweighted(poseset: PoseSet, weight: float) -> PoseSet:
    """round(weight * N) evenly spaced rows: weight 0.5 keeps every other row, 2 repeats every row twice."""
    n = len(poseset)
    keep = int(round(weight * n))
    if keep == n:
        return poseset
    return poseset.subset(np.floor(np.arange(keep) * (n / max(keep, 1))).astype(np.int64))
