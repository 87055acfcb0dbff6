"""VideoPose3D npz files: `data_3d_*.npz` (mocap) and `data_2d_*.npz` (keypoints).

Layout (VideoPose3D, github.com/facebookresearch/VideoPose3D, DATASETS.md): each key holds a 0-d object array wrapping a
pickled dict.
- 3D: `positions_3d[subject][action]` -> (T, 32|17, 3) float, world metres.
  Optional `cameras` {subject: [camera dicts]} and `metadata` (fps, ...).
- 2D: `positions_2d[subject][action]` -> list over cameras of (T, 17, 2) pixels,
  plus `metadata`.

Everything read is validated here, so later layers can trust shapes and units.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_target
from ..camera import H36M_SUBJECTS, Camera, h36m_cameras
from ..errors import DataError, data_error_from
from ..safe_io import SafeLoadError, SafeNpzFile
from ..skeleton import H36M17, H36M32_TO_17

#: Typical bone length above which 3D values are taken to be millimetres.
MM_BONE_THRESHOLD = 10.0
#: 2D values all within +-this (and not all zero) are screen-normalised or metric, not pixels.
NORMALISED_2D_LIMIT = 2.0
#: Metres. A frame whose joints all lie within this of each other, or a bone whose median length is below
#: it, is no body: a zero-filled or constant record (lost tracking, a placeholder), refused before training.
MIN_BODY_EXTENT_M = 1e-3


# --------------------------------------------------------------------------- npz helpers
class DataNpz(SafeNpzFile):
    """`SafeNpzFile` whose errors are DataErrors (UnsafeDataError for a refused pickle global)."""

    def __getitem__(self, key: str):
        try:
            return super().__getitem__(key)
        except SafeLoadError as err:
            raise data_error_from(err) from None


def open_npz(path: str | os.PathLike, *, key: str | None = None) -> DataNpz:
    """Open an npz without running code from it (docs/SECURITY.md); every failure is a DataError.

    Object members are rebuilt by `diffpose_viz.safe_io`'s restricted unpickler: numpy arrays and
    plain containers only. `key` (the member the caller is after) is named in errors about the
    archive as a whole, so an empty or truncated file still says what was being read.
    """
    try:
        return DataNpz(path)
    except SafeLoadError as err:
        if err.key is None:
            err.key = key
        raise data_error_from(err) from None


def read_object(npz: SafeNpzFile, key: str, path: str | os.PathLike, *, required: bool = True):
    """The pickled object stored under `key` (a 0-d object array), or None if absent and optional."""
    if key not in npz.files:
        if not required:
            return None
        raise DataError("missing key", path=path, key=key, expected=f"key {key!r}", found=f"keys {npz.files}")
    try:
        arr = npz[key]
    except SafeLoadError as err:
        raise data_error_from(err) from None
    if not isinstance(arr, np.ndarray) or arr.dtype != object or arr.ndim != 0:
        found = (f"array dtype {arr.dtype} shape {arr.shape}" if isinstance(arr, np.ndarray)
                 else type(arr).__name__)
        raise DataError("not a pickled dict", path=path, key=key,
                        expected="0-d object array holding a pickled dict", found=found)
    return arr.item()


def atomic_savez(path: str | os.PathLike, **arrays) -> Path:
    """`np.savez_compressed` to a temporary file next to `path`, then `os.replace`.

    A crash mid-write never leaves a half-written file under the final name.
    """
    path = Path(path)
    with atomic_target(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def wrap_object(obj) -> np.ndarray:
    """A 0-d object array holding `obj`, the form VideoPose3D files store dicts in."""
    arr = np.empty((), dtype=object)
    arr[()] = obj
    return arr


def check_nested(obj, path, key: str) -> dict:
    """`obj` as dict[subject] -> dict[action] -> ..., with at least one subject, else a DataError."""
    if not isinstance(obj, Mapping):
        raise DataError("wrong structure", path=path, key=key, expected="dict[subject] -> dict[action]",
                        found=type(obj).__name__)
    if not obj:
        raise DataError("no subjects", path=path, key=key, expected="at least one subject",
                        found="an empty dict")
    for s, acts in obj.items():
        if not isinstance(acts, Mapping):
            raise DataError(f"wrong structure under subject {s!r}", path=path, key=f"{key}/{s}",
                            expected="dict[action] -> array", found=type(acts).__name__)
    return dict(obj)


def as_numeric_array(seq, path, key: str, expected: str) -> np.ndarray:
    """`seq` as a numeric ndarray, or a DataError saying what it is instead (never a numpy traceback)."""
    if isinstance(seq, np.ndarray):
        arr = seq
    else:
        try:
            arr = np.asarray(seq)
        except (ValueError, TypeError) as err:
            raise DataError("not a regular array", path=path, key=key, expected=expected,
                            found=f"a {type(seq).__name__} numpy cannot stack ({err})") from None
    if arr.dtype.kind not in "fiu":
        raise DataError("non-numeric array", path=path, key=key, expected=f"a float array {expected}",
                        found=f"dtype {arr.dtype}" + (f" ({type(seq).__name__})" if arr.dtype == object else ""))
    return arr


def unit_guess(bone: float) -> str:
    """The unit a median bone length of `bone` (>= MM_BONE_THRESHOLD) most likely means."""
    return "millimetres" if bone >= 100.0 else "centimetres"


def check_no_inf(arr: np.ndarray, path, key: str) -> None:
    """Refuse infinite 2D values (NaN is how a missing joint is written)."""
    if np.isinf(arr).any():
        raise DataError("infinite values", path=path, key=key, expected="finite values or NaN for missing",
                        found="inf")


def check_pixels(arr: np.ndarray, path, key: str, what: str = "2D keypoints") -> None:
    """Refuse 2D values that all lie within +-NORMALISED_2D_LIMIT: screen-normalised or metric, not pixels.

    Looks at up to ~500 evenly spaced frames, so a long sequence costs no copy of itself.
    """
    sample = arr[:: max(1, len(arr) // 500)]
    finite = np.abs(sample[np.isfinite(sample)])
    if finite.size and 0.0 < finite.max() <= NORMALISED_2D_LIMIT:
        raise DataError(f"{what} look screen-normalised or metric, expected pixels", path=path, key=key,
                        expected="pixel coordinates (values of tens to thousands)",
                        found=f"all |values| <= {finite.max():.3g}")


def typical_bone_length(poses17: np.ndarray) -> float:
    """Median H36M-17 bone length over (a sample of) frames, in the poses' units."""
    poses17 = np.asarray(poses17, dtype=np.float64)
    if len(poses17) > 200:
        poses17 = poses17[np.linspace(0, len(poses17) - 1, 200).astype(int)]
    lengths = H36M17.bone_lengths(poses17)
    lengths = lengths[np.isfinite(lengths)]
    return float(np.median(lengths)) if lengths.size else float("nan")


# --------------------------------------------------------------------------- 3D
@dataclass
class Mocap3D:
    """World-frame 17-joint mocap: `positions[subject][action]` (T, 17, 3) float32 metres."""

    positions: dict[str, dict[str, np.ndarray]]
    cameras: dict[str, list[Camera]] = field(default_factory=dict)
    fps: float | None = None
    metadata: dict = field(default_factory=dict)
    path: str | None = None

    @property
    def subjects(self) -> list[str]:
        return list(self.positions)

    def actions(self, subject: str) -> list[str]:
        return list(self._subject(subject))

    def _subject(self, subject: str) -> dict[str, np.ndarray]:
        if subject not in self.positions:
            raise DataError(f"unknown subject {subject!r}", path=self.path, key="positions_3d",
                            expected=f"one of {self.subjects}", found=repr(subject))
        return self.positions[subject]

    def sequence(self, subject: str, action: str) -> np.ndarray:
        acts = self._subject(subject)
        if action not in acts:
            raise DataError(f"unknown action {action!r} for subject {subject!r}", path=self.path,
                            key="positions_3d", expected=f"one of {list(acts)[:20]}"
                            + (" ..." if len(acts) > 20 else ""), found=repr(action))
        return acts[action]

    def cameras_for(self, subject: str) -> list[Camera]:
        self._subject(subject)
        if subject not in self.cameras:
            raise DataError(f"no cameras for subject {subject!r}", path=self.path, key="cameras",
                            expected="a 'cameras' entry or a Human3.6M subject name",
                            found=f"cameras for {sorted(self.cameras)}")
        return self.cameras[subject]

    def num_frames(self, subjects: Iterable[str] | None = None) -> int:
        subjects = self.subjects if subjects is None else list(subjects)
        return int(sum(len(a) for s in subjects for a in self._subject(s).values()))

    def num_sequences(self, subjects: Iterable[str] | None = None) -> int:
        subjects = self.subjects if subjects is None else list(subjects)
        return int(sum(len(self._subject(s)) for s in subjects))

    def select(self, subjects: Iterable[str]) -> "Mocap3D":
        """A view restricted to `subjects` (arrays are shared, not copied)."""
        subjects = list(subjects)
        return Mocap3D(
            positions={s: self._subject(s) for s in subjects},
            cameras={s: self.cameras[s] for s in subjects if s in self.cameras},
            fps=self.fps, metadata=self.metadata, path=self.path,
        )


def _validate_3d(seq, path, subject: str, action: str) -> np.ndarray:
    key = f"positions_3d/{subject}/{action}"
    arr = as_numeric_array(seq, path, key, "(T, 32, 3) or (T, 17, 3)")
    if arr.ndim != 3 or arr.shape[1] not in (17, 32):
        raise DataError("wrong joint count or rank", path=path, key=key,
                        expected="(T, 32, 3) or (T, 17, 3)", found=f"shape {arr.shape}")
    if arr.shape[2] != 3:
        raise DataError("wrong last dimension", path=path, key=key, expected="3 coordinates (x, y, z)",
                        found=f"shape {arr.shape}")
    if arr.shape[1] == 32:
        arr = arr[:, H36M32_TO_17]
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        t, j, _ = np.argwhere(bad)[0]
        raise DataError(f"{int(bad.sum())} NaN/inf values (first at frame {t}, joint {j})", path=path,
                        key=key, expected="finite values", found="NaN/inf")
    return arr


def check_not_degenerate(seq: np.ndarray, path, subject: str, action: str) -> None:
    """Refuse a (T, 17, 3) sequence with a frame whose joints coincide (all-zero or constant pose) or a bone
    of zero length, naming the subject, action and first frame or bone (any unit above millimetres passes)."""
    key = f"positions_3d/{subject}/{action}"
    extent = np.ptp(seq, axis=1).max(-1)  # (T,) the largest extent of the joints in each frame
    flat = np.flatnonzero(extent < MIN_BODY_EXTENT_M)
    if flat.size:
        t = int(flat[0])
        raise DataError(f"{flat.size} of {len(seq)} frames have every joint at one point (an all-zero or constant "
                        f"pose; first at frame {t})", path=path, key=key,
                        expected=f"a body: joints spread over more than {MIN_BODY_EXTENT_M * 1000:g} mm",
                        found=f"frame {t}: joints within {extent[t] * 1000:.3g} mm of each other")
    lengths = np.median(H36M17.bone_lengths(seq.astype(np.float64)), axis=0)  # (bones,)
    short = np.flatnonzero(lengths < MIN_BODY_EXTENT_M)
    if short.size:
        parent, child = H36M17.bones[int(short[0])]
        names = H36M17.joint_names
        raise DataError(f"zero-length bone {names[parent]} -> {names[child]} (a skeleton with joints merged)",
                        path=path, key=key, expected=f"every bone longer than {MIN_BODY_EXTENT_M * 1000:g} mm",
                        found=f"median length {lengths[short[0]] * 1000:.3g} mm")


def _cameras_from_file(obj, path) -> dict[str, list[Camera]]:
    if not isinstance(obj, Mapping):
        raise DataError("wrong structure", path=path, key="cameras",
                        expected="dict[subject] -> list of camera dicts", found=type(obj).__name__)
    out = {}
    for s, cams in obj.items():
        if not isinstance(cams, (list, tuple)) or not all(isinstance(c, Mapping) for c in cams):
            raise DataError(f"bad camera list for subject {s!r}", path=path, key=f"cameras/{s}",
                            expected="a list of camera dicts",
                            found=type(cams).__name__ if not isinstance(cams, (list, tuple))
                            else f"a list of {sorted({type(c).__name__ for c in cams})}")
        out[s] = []
        for i, c in enumerate(cams):
            try:
                # VideoPose3D's own camera dicts keep translations in millimetres; no capture
                # volume has a camera 100 m from the origin, so larger values mean mm.
                unit = "mm" if np.abs(np.asarray(c.get("translation", 0.0), float)).max() > 100 else "m"
                cam = Camera.from_dict(dict(c), translation_units=unit)
            except (KeyError, TypeError, ValueError) as err:
                raise DataError(f"bad camera dict for subject {s!r}: {err}", path=path, key=f"cameras/{s}[{i}]",
                                expected="res_w, res_h, focal, center (+ optional id, distortion, orientation, "
                                "translation)", found=f"keys {sorted(map(str, c))}") from None
            bad = cam.invalid_field()
            if bad is not None:
                field_name, expected, found = bad
                raise DataError(f"camera {cam.id!r} of subject {s!r} has an unusable {field_name}", path=path,
                                key=f"cameras/{s}[{i}].{field_name}", expected=expected, found=found)
            out[s].append(cam)
    return out


def _median_bones(positions: Mapping[str, Mapping[str, np.ndarray]], frames: int = 8) -> dict[tuple[str, str], float]:
    """(subject, action) -> median H36M-17 bone length over `frames` evenly spaced frames, in one batch."""
    keys = [(s, a) for s, acts in positions.items() for a in acts]
    if not keys:
        return {}
    seqs = [positions[s][a] for s, a in keys]
    lengths = np.array([len(q) for q in seqs])
    picks = (np.linspace(0.0, 1.0, frames)[None] * (lengths[:, None] - 1)).round().astype(int)  # short: repeats
    sample = np.stack([q[i] for q, i in zip(seqs, picks)]).astype(np.float64)  # (sequences, frames, 17, 3)
    medians = np.median(H36M17.bone_lengths(sample).reshape(len(keys), -1), axis=1)
    return dict(zip(keys, medians.tolist()))


def load_3d(path: str | os.PathLike, *, subjects: Iterable[str] | None = None) -> Mocap3D:
    """Read a VideoPose3D `data_3d_*.npz`; 32-joint data is reduced to H36M-17.

    Cameras: the file's `cameras` entry where present, else the built-in
    Human3.6M calibration for H36M subject names. Raises DataError on any
    structural, numeric or unit problem, naming the file and key.
    """
    npz = open_npz(path, key="positions_3d")
    with npz:
        raw = check_nested(read_object(npz, "positions_3d", path), path, "positions_3d")
        cam_obj = read_object(npz, "cameras", path, required=False)
        metadata = read_object(npz, "metadata", path, required=False) or {}
    if subjects is not None:
        subjects = list(subjects)
        for s in subjects:
            if s not in raw:
                raise DataError(f"unknown subject {s!r}", path=path, key="positions_3d",
                                expected=f"one of {list(raw)}", found=repr(s))
        raw = {s: raw[s] for s in subjects}
    positions = {s: {a: _validate_3d(seq, path, s, a) for a, seq in acts.items()} for s, acts in raw.items()}

    for s, acts in positions.items():
        if not acts:
            raise DataError(f"subject {s!r} has no actions", path=path, key=f"positions_3d/{s}",
                            expected="at least one action", found="an empty dict")
        for a, seq in acts.items():
            if len(seq) == 0:
                raise DataError("empty sequence", path=path, key=f"positions_3d/{s}/{a}", expected=">= 1 frame",
                                found="0 frames")
            check_not_degenerate(seq, path, s, a)
    for (s, a), bone in _median_bones(positions).items():  # every take, so one in the wrong unit is caught too
        if bone > MM_BONE_THRESHOLD:
            unit = unit_guess(bone)
            raise DataError(f"typical bone length {bone:.1f}: looks like {unit}, expected metres",
                            path=path, key=f"positions_3d/{s}/{a}", expected="bones of ~0.1-0.5 (metres)",
                            found=f"median bone {bone:.1f} ({unit})")

    cameras: dict[str, list[Camera]] = {s: h36m_cameras(s) for s in positions if s in H36M_SUBJECTS}
    if cam_obj is not None:
        cameras.update({s: c for s, c in _cameras_from_file(cam_obj, path).items() if s in positions})
    if not isinstance(metadata, Mapping):
        raise DataError("wrong structure", path=path, key="metadata", expected="a dict (fps, ...)",
                        found=type(metadata).__name__)
    fps = metadata.get("fps")
    if fps is not None:
        try:
            fps = float(fps)
        except (TypeError, ValueError):
            fps = float("nan")
        if not (np.isfinite(fps) and fps > 0):
            raise DataError("bad frame rate", path=path, key="metadata/fps", expected="a positive number",
                            found=repr(metadata.get("fps")))
    return Mocap3D(positions=positions, cameras=cameras, fps=fps, metadata=dict(metadata), path=str(path))


def save_3d(
    path: str | os.PathLike,
    positions: Mapping[str, Mapping[str, np.ndarray]],
    *,
    cameras: Mapping[str, list[Camera | dict]] | None = None,
    metadata: Mapping | None = None,
) -> Path:
    """Write a `data_3d_*.npz` atomically (arrays float32, cameras as dicts)."""
    pos = {s: {a: np.asarray(v, dtype=np.float32) for a, v in acts.items()} for s, acts in positions.items()}
    for s, acts in pos.items():
        for a, v in acts.items():
            _validate_3d(v, path, s, a)
    payload = {"positions_3d": wrap_object(pos)}
    if cameras is not None:
        payload["cameras"] = wrap_object({
            s: [c.to_dict() if isinstance(c, Camera) else dict(c) for c in cams] for s, cams in cameras.items()
        })
    if metadata is not None:
        payload["metadata"] = wrap_object(dict(metadata))
    return atomic_savez(path, **payload)


# --------------------------------------------------------------------------- 2D
@dataclass
class PerCameraSequences:
    """`positions[subject][action]` -> list over cameras of arrays: the nesting of VideoPose3D's 2D files."""

    positions: dict[str, dict[str, list[np.ndarray]]]
    metadata: dict = field(default_factory=dict)
    path: str | None = None

    def __getitem__(self, subject: str) -> dict[str, list[np.ndarray]]:
        if subject not in self.positions:
            raise DataError(f"unknown subject {subject!r}", path=self.path, key="positions_2d",
                            expected=f"one of {list(self.positions)}", found=repr(subject))
        return self.positions[subject]

    def __contains__(self, subject: object) -> bool:
        return subject in self.positions

    def sequence(self, subject: str, action: str) -> list[np.ndarray]:
        acts = self[subject]
        if action not in acts:
            raise DataError(f"unknown action {action!r} for subject {subject!r}", path=self.path,
                            key="positions_2d", expected=f"one of {list(acts)[:20]}", found=repr(action))
        return acts[action]


@dataclass
class Keypoints2D(PerCameraSequences):
    """`positions[subject][action]` -> list over cameras of (T, 17, 2) float32 pixels (NaN = missing)."""


def _validate_2d(seq, path, key: str) -> np.ndarray:
    arr = as_numeric_array(seq, path, key, "(T, 17, 2)")
    if arr.ndim != 3 or arr.shape[1] != 17:
        raise DataError("wrong joint count or rank", path=path, key=key, expected="(T, 17, 2)",
                        found=f"shape {arr.shape}")
    if arr.shape[2] != 2:
        raise DataError("wrong last dimension", path=path, key=key, expected="2 pixel coordinates (u, v)",
                        found=f"shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    check_no_inf(arr, path, key)
    check_pixels(arr, path, key)
    return arr


def load_2d(path: str | os.PathLike, *, key: str = "positions_2d") -> Keypoints2D:
    """Read a VideoPose3D `data_2d_*.npz`. NaN keypoints (missing joints) are kept as NaN."""
    raw, metadata = read_per_camera(path, key)
    positions = validate_per_camera(raw, path, key, "(T, 17, 2)", _validate_2d)
    return Keypoints2D(positions=positions, metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
                       path=str(path))


def read_per_camera(path: str | os.PathLike, key: str) -> tuple[dict, object]:
    """(dict[subject] -> dict[action] -> per-camera arrays as stored under `key`, the metadata member or {}) of a
    per-camera npz (VideoPose3D 2D, DiffPose GMM); the arrays are checked by `validate_per_camera`."""
    npz = open_npz(path, key=key)
    with npz:
        raw = check_nested(read_object(npz, key, path), path, key)
        metadata = read_object(npz, "metadata", path, required=False) or {}
    return raw, metadata


def validate_per_camera(raw: Mapping, path, key: str, shape: str, validate) -> dict[str, dict[str, list[np.ndarray]]]:
    """Every camera's array of `raw` (from `read_per_camera`) through `validate(array, path=, key=)`, each named by
    its place (`key/subject/action[camera]`); `shape` names what one array should be, for a wrong structure."""
    return {s: {a: [validate(c, path=path, key=f"{key}/{s}/{a}[{i}]")
                    for i, c in enumerate(camera_list(cams, path, f"{key}/{s}/{a}", shape))]
                for a, cams in acts.items()}
            for s, acts in raw.items()}


def camera_list(cams, path, key: str, shape: str) -> list:
    """The per-camera arrays of one sequence: a list/tuple, an object array, or one plain array (one camera)."""
    if isinstance(cams, np.ndarray):
        return [cams] if cams.dtype != object else list(cams.reshape(-1))  # one camera / ragged cameras
    if isinstance(cams, (list, tuple)):
        if not cams:
            raise DataError("no cameras", path=path, key=key, expected=f"a list of per-camera {shape} arrays",
                            found="an empty list")
        return list(cams)
    raise DataError("wrong structure", path=path, key=key, expected=f"a list of per-camera {shape} arrays",
                    found=type(cams).__name__)


def save_2d(
    path: str | os.PathLike,
    positions: Mapping[str, Mapping[str, list[np.ndarray]]],
    *,
    metadata: Mapping | None = None,
) -> Path:
    """Write a `data_2d_*.npz` atomically; metadata defaults to the H36M-17 one."""
    pos = {
        s: {a: [_validate_2d(c, path, f"positions_2d/{s}/{a}[{i}]") for i, c in enumerate(cams)]
            for a, cams in acts.items()}
        for s, acts in positions.items()
    }
    meta = dict(metadata) if metadata is not None else {
        "layout_name": "h36m", "num_joints": 17,
        "keypoints_symmetry": [list(H36M17.left), list(H36M17.right)],
    }
    return atomic_savez(path, positions_2d=wrap_object(pos), metadata=wrap_object(meta))


def match_2d_to_3d(
    keypoints: np.ndarray, num_frames: int, *, path: str | None = None, key: str = "positions_2d"
) -> np.ndarray:
    """Trim a 2D sequence longer than its mocap (as the field does); shorter is an error."""
    if len(keypoints) < num_frames:
        raise DataError("2D sequence shorter than its 3D sequence", path=path, key=key,
                        expected=f">= {num_frames} frames", found=f"{len(keypoints)} frames")
    return keypoints[:num_frames]
