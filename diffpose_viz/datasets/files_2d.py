"""2D keypoint and GMM files attached to the rows of a `PoseSet`.

A `PoseSet` row is one (subject, action, camera, frame) of a 3D mocap file; this module finds that
row's 2D input in a file the user brings and returns arrays in the row order, so the 2D input of
training and evaluation can come from real detections instead of the simulated detector:

- VideoPose3D `data_2d_<dataset>_<detector>.npz` files (`positions_2d[subject][action]` = list over
  cameras of (T, 17, 2) pixels, or (T, 17, 3) with a score in [0, 1]; `metadata` with `layout_name`
  and `keypoints_symmetry`), e.g. `data_2d_h36m_cpn_ft_h36m_dbb.npz` or `data_2d_h36m_gt.npz`;
- DiffPose's GMM files (same nesting, (T, 17, K, 5) = [weight, mean_u, mean_v, spread_u, spread_v]),
  e.g. `data_2d_h36m_cpn_ft_h36m_dbb_gmm.npz` from the DiffPose repository.

Rules, and where they come from:

- **Camera order.** The i-th array of `positions_2d[S][action]` belongs to the i-th camera of the
  subject's camera list (for Human3.6M 54138969, 55011271, 58860488, 60457274, as in VideoPose3D's
  `common/h36m_dataset.py`). The number of arrays must equal the number of cameras of the 3D
  (VideoPose3D `run.py` asserts `len(keypoints[subject][action]) == len(positions_3d)`).
- **Frame counts.** The mocap length is authoritative: a longer 2D sequence is trimmed at its end to
  the 3D length, a shorter one is refused (VideoPose3D `run.py` asserts `>=` "because some videos in
  H3.6M contain extra frames" and then cuts `[:mocap_length]`; DiffPose `common/data_utils.py:
  create_2d_data` does the same). `short_2d="trim_3d"` instead drops the 3D frames the 2D lacks
  (some derivative repositories do this); VideoPose3D itself never trims the 3D.
- **The damaged sequence.** Human3.6M's S11 "Directions" video of camera 54138969 is corrupted.
  VideoPose3D discards the whole S11 "Directions" sequence, all four cameras, when it prepares the
  3D file and the 2D files (`data/prepare_data_h36m.py` and `data/prepare_data_2d_h36m_sh.py`:
  "Discard corrupted video"), so the standard files have no such entry. A 3D file that still has it
  gets the same treatment here (`skip_damaged=True`): its rows are left out (`keep` is False) and
  reported in `skipped`; `drop_damaged_sequences` removes it from the mocap before rows are built.
- **GMM units.** DiffPose's loader (`common/data_utils.py:create_2d_data`) screen-normalises only
  columns 1:3 with each camera's resolution, `normalize_screen_coordinates(kps[..., 1:3], w, h)`,
  so the released files hold pixel means; the repository README says their 2D values are those of
  the VideoPose3D files. `gmm_units="auto"` reads means as pixels unless every mean lies in the
  screen-normalised range, and then inverts that formula exactly (x = (u + 1) w / 2,
  y = (v + h / w) w / 2). The spread columns are undocumented; the official loader uses them as a
  noise multiplier in normalised units. We read them as pixels (`gmm_spread_units="px"`, the
  convention of `datasets.gmm_files`) unless told `"normalized"` (then multiplied by w / 2).
- **Layouts.** H36M-17 files are used as they are; COCO-17 files (`layout_name: 'coco'`) are mapped
  to H36M-17 with `skeleton.coco17_to_h36m17`; other layouts are refused.

Every problem raises a one-line `DataError` naming the 2D file, the key
`positions_2d[S][action][cam]`, and what was expected versus found.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..camera import image_coordinates
from ..errors import DataError
from ..skeleton import COCO17_NAMES, H36M17, coco17_to_h36m17
from .actions import normalize_h36m_action
from .gmm_files import validate_gmm_array
from .poses import PoseSet
from .vp3d import Mocap3D, check_no_inf, open_npz, read_object

#: Human3.6M camera ids in the order of the 2D files' camera lists.
H36M_CAMERA_ORDER: tuple[str, ...] = ("54138969", "55011271", "58860488", "60457274")

#: (subject, action) -> why VideoPose3D leaves the sequence out. Applied only to subjects filmed by the
#: Human3.6M cameras.
DAMAGED_SEQUENCES: dict[tuple[str, str], str] = {
    ("S11", "Directions"): "the video of camera 54138969 is corrupted; VideoPose3D's "
                           "data/prepare_data_h36m.py discards the whole sequence",
}

_H36M_SYMMETRY = [list(H36M17.left), list(H36M17.right)]
_COCO_SYMMETRY = [[COCO17_NAMES.index(n) for n in COCO17_NAMES if n.startswith("left_")],
                  [COCO17_NAMES.index(n) for n in COCO17_NAMES if n.startswith("right_")]]
#: Means whose absolute values all stay below this are taken to be screen-normalised (auto mode).
_NORMALISED_BOUND = 2.0
_SCORE_TOL = 1e-4

ShortPolicy = Literal["error", "trim_3d"]


def seq_key(subject: str, action: str | None = None, camera: int | None = None) -> str:
    """The key named in error messages: positions_2d[S][action][cam]."""
    out = f"positions_2d[{subject}]"
    if action is not None:
        out += f"[{action}]"
    if camera is not None:
        out += f"[{camera}]"
    return out


@dataclass(frozen=True)
class Detections2DFromFile:
    """2D input read from a file for the rows `keep` of a PoseSet (arrays in that row order).

    keypoints (n,17,2) float32 px, NaN = missing; confidence (n,17) float32 in [0,1] (the file's
    score channel if it has one, else 1 for present and 0 for missing joints, with
    `has_confidence=False`); modes (n,17,K,5) float32 [weight, mu_u, mu_v, std_u, std_v] px (the
    `Detections2D.modes` layout) for GMM files, else None. n = keep.sum(); use
    `poses.subset(result.keep)` for the matching PoseSet.
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    modes: np.ndarray | None
    has_confidence: bool
    source: str
    kind: Literal["keypoints", "gmm"]
    keep: np.ndarray
    layout: str = "h36m"
    skipped: tuple[str, ...] = ()
    trimmed: tuple[str, ...] = ()
    dropped_3d_frames: dict[str, int] = field(default_factory=dict)
    gmm_units: str | None = None
    gmm_spread_units: str | None = None

    def __len__(self) -> int:
        return len(self.keypoints)

    def metadata(self) -> dict:
        """JSON-friendly description for run metadata and results attributes."""
        return {
            "input_2d_source": self.source,
            "input_2d_kind": self.kind,
            "has_confidence": bool(self.has_confidence),
            "layout": self.layout,
            "rows": int(len(self.keypoints)),
            "rows_left_out": int((~self.keep).sum()),
            "skipped_sequences": list(self.skipped),
            "trimmed_2d_sequences": len(self.trimmed),
            "dropped_3d_frames": dict(self.dropped_3d_frames),
            "gmm_units": self.gmm_units,
            "gmm_spread_units": self.gmm_spread_units,
        }


# --------------------------------------------------------------------------- file reading
@dataclass
class File2D:
    """A 2D file's nested `positions_2d` (arrays not yet validated), metadata, kind and keypoint layout."""

    path: str
    positions: Mapping
    metadata: dict
    kind: Literal["keypoints", "gmm"]
    layout: str


def _first_array(positions: Mapping):
    for acts in positions.values():
        if not isinstance(acts, Mapping):
            continue
        for cams in acts.values():
            if isinstance(cams, np.ndarray) and cams.dtype != object:
                return cams
            if isinstance(cams, (list, tuple, np.ndarray)):
                for c in cams:
                    arr = np.asarray(c)
                    if arr.dtype != object:
                        return arr
    return None


def _layout(metadata: Mapping, path: str) -> str:
    n = metadata.get("num_joints")
    if n is not None and int(n) != 17:
        raise DataError("unsupported joint count", path=path, key="metadata['num_joints']",
                        expected="17 (H36M-17 or COCO-17 layout)", found=int(n))
    name = metadata.get("layout_name")
    sym = metadata.get("keypoints_symmetry")
    sym = [list(map(int, s)) for s in sym] if sym is not None else None
    if name is not None:
        name = str(name).lower()
        if name in ("h36m", "coco"):
            expected_sym = _H36M_SYMMETRY if name == "h36m" else _COCO_SYMMETRY
            if sym is not None and sym != expected_sym:
                raise DataError(f"keypoints_symmetry contradicts layout_name {name!r}", path=path,
                                key="metadata['keypoints_symmetry']", expected=expected_sym, found=sym)
            return name
        raise DataError("unsupported keypoint layout", path=path, key="metadata['layout_name']",
                        expected="'h36m' or 'coco'", found=repr(name))
    if sym is None or sym == _H36M_SYMMETRY:
        return "h36m"  # VideoPose3D's ground-truth file carries no layout_name, only the H36M symmetry
    if sym == _COCO_SYMMETRY:
        return "coco"
    raise DataError("unknown keypoint layout", path=path, key="metadata['keypoints_symmetry']",
                    expected=f"H36M {_H36M_SYMMETRY} or COCO {_COCO_SYMMETRY}", found=sym)


def read_2d_file(path: str | os.PathLike) -> File2D:
    """Open a VideoPose3D 2D file or a DiffPose GMM file; arrays are validated later, when used."""
    path = str(path)
    npz = open_npz(path)
    with npz:
        raw = read_object(npz, "positions_2d", path)
        metadata = read_object(npz, "metadata", path, required=False) or {}
    if not isinstance(raw, Mapping):
        raise DataError("wrong structure", path=path, key="positions_2d",
                        expected="dict[subject] -> dict[action] -> list over cameras", found=type(raw).__name__)
    if not isinstance(metadata, Mapping):
        raise DataError("wrong structure", path=path, key="metadata", expected="a dict",
                        found=type(metadata).__name__)
    first = _first_array(raw)
    if first is None:
        raise DataError("no sequences", path=path, key="positions_2d", expected="at least one array",
                        found="an empty dict")
    if first.ndim == 3:
        kind = "keypoints"
    elif first.ndim == 4:
        kind = "gmm"
    else:
        raise DataError("unrecognised array rank", path=path, key="positions_2d",
                        expected="(T, 17, 2|3) keypoints or (T, 17, K, 5) GMM kernels", found=f"shape {first.shape}")
    layout = _layout(metadata, path)
    if kind == "gmm" and layout != "h36m":
        raise DataError("GMM files must use the H36M-17 layout", path=path, key="metadata['layout_name']",
                        expected="'h36m'", found=repr(layout))
    return File2D(path=path, positions=raw, metadata=dict(metadata), kind=kind, layout=layout)


def _validate_keypoints(arr, path: str, key: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiu":
        raise DataError("non-numeric array", path=path, key=key, expected="float array", found=str(arr.dtype))
    if arr.ndim != 3 or arr.shape[1] != 17 or arr.shape[2] not in (2, 3):
        raise DataError("wrong shape", path=path, key=key, expected="(T, 17, 2) px or (T, 17, 3) px + score",
                        found=f"shape {arr.shape}")
    arr = np.asarray(arr, dtype=np.float32)
    check_no_inf(arr, path, key)
    xy = np.abs(arr[..., :2][np.isfinite(arr[..., :2])])
    if xy.size and 0.0 < xy.max() <= _NORMALISED_BOUND:
        raise DataError("keypoints look screen-normalised, expected pixels", path=path, key=key,
                        expected="pixel coordinates (VideoPose3D 2D files hold pixels)",
                        found=f"all |values| <= {xy.max():.3g}")
    if arr.shape[2] == 3:
        s = arr[..., 2][np.isfinite(arr[..., 2])]
        if s.size and (s.min() < -_SCORE_TOL or s.max() > 1 + _SCORE_TOL):
            raise DataError("score channel outside [0, 1]", path=path, key=key, expected="scores in [0, 1]",
                            found=f"range [{s.min():.4g}, {s.max():.4g}]")
    return arr


# --------------------------------------------------------------------------- damaged sequences
def is_damaged(subject: str, action: str, camera_ids: Iterable[str]) -> bool:
    """True for a sequence VideoPose3D leaves out (only for subjects filmed by the Human3.6M cameras)."""
    return (str(subject), str(action)) in DAMAGED_SEQUENCES and H36M_CAMERA_ORDER[0] in set(map(str, camera_ids))


def drop_damaged_sequences(mocap: Mocap3D) -> tuple[Mocap3D, list[str]]:
    """A view of `mocap` without the sequences of DAMAGED_SEQUENCES, and their 'S/action' names.

    Call before `build_pose_set` so no rows are built for them.
    """
    positions: dict[str, dict[str, np.ndarray]] = {}
    dropped = []
    for s, acts in mocap.positions.items():
        ids = [c.id for c in mocap.cameras.get(s, [])]
        positions[s] = {}
        for a, seq in acts.items():
            if is_damaged(s, a, ids):
                dropped.append(f"{s}/{a}")
            else:
                positions[s][a] = seq
    return Mocap3D(positions=positions, cameras=dict(mocap.cameras), fps=mocap.fps, metadata=mocap.metadata,
                   path=mocap.path), dropped


# --------------------------------------------------------------------------- matching
def _canonical(action: str) -> str | None:
    """'TakingPhoto 1' -> 'Photo 1'; None for a name that is not a Human3.6M action."""
    parts = str(action).split(" ", 1)
    try:
        base = normalize_h36m_action(parts[0])
    except KeyError:
        return None
    return base if len(parts) == 1 else f"{base} {parts[1]}"


def _find_action(acts: Mapping, subject: str, action: str, path: str) -> str:
    """The 2D file's key for a 3D action: the same name, or the same Human3.6M action under an alias."""
    if action in acts:
        return action
    canon = _canonical(action)
    matches = [a for a in acts if canon is not None and _canonical(a) == canon]
    if len(matches) == 1:
        return matches[0]
    names = sorted(map(str, acts))
    shown = names[:12] + (["..."] if len(names) > 12 else [])
    raise DataError("action missing from the 2D file" if not matches else "ambiguous action aliases", path=path,
                    key=seq_key(subject, action), expected=f"an entry for the 3D sequence {action!r}",
                    found=f"{len(names)} actions for {subject}: {shown}" if not matches else matches)


def _camera_lists(poses: PoseSet, mocap: Mocap3D | None, subjects: Iterable[str]) -> dict[str, list[str]]:
    """Camera ids of every subject, in the order of its camera list (= the 2D files' list order)."""
    out = {}
    for s in subjects:
        if mocap is not None:
            out[s] = [c.id for c in mocap.cameras_for(s)]
        else:
            ids = {poses.cameras[str(k)].id for k in np.unique(poses.camera[poses.subject == s])}
            if not ids <= set(H36M_CAMERA_ORDER):
                raise ValueError(f"subject {s!r}: cameras {sorted(ids)} are not the Human3.6M cameras; pass "
                                 "mocap= so the camera order of the 2D file's lists is known")
            out[s] = list(H36M_CAMERA_ORDER)
    return out


def _gmm_structure(arr, path: str, key: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiu" or arr.ndim != 4 or arr.shape[1] != 17 or arr.shape[3] != 5:
        raise DataError("wrong GMM array", path=path, key=key,
                        expected="numeric (T, 17, K, 5) = [weight, mean_u, mean_v, spread_u, spread_v]",
                        found=f"dtype {arr.dtype} shape {arr.shape}")
    return arr


def _to_pixels_gmm(arr: np.ndarray, w: int, h: int, means: str, spreads: str) -> np.ndarray:
    out = arr.astype(np.float64)
    if means == "normalized":
        out[..., 1:3] = image_coordinates(out[..., 1:3], w, h)
    if spreads == "normalized":
        out[..., 3:5] = out[..., 3:5] * (w / 2.0)
    return out.astype(np.float32)


def attach_2d(
    poses: PoseSet,
    path_2d: str | os.PathLike,
    *,
    mocap: Mocap3D | None = None,
    skip_damaged: bool = True,
    short_2d: ShortPolicy = "error",
    gmm_units: Literal["auto", "px", "normalized"] = "auto",
    gmm_spread_units: Literal["px", "normalized"] = "px",
) -> Detections2DFromFile:
    """The 2D input of every row of `poses` from a VideoPose3D 2D file or a DiffPose GMM file.

    `mocap` is the Mocap3D the rows were built from: it gives each subject's camera order and the 3D
    sequence lengths. Without it, Human3.6M camera order is assumed and the 3D length of a sequence
    is taken as its largest row frame + 1, so a shorter 2D sequence is only detected when rows need
    the missing frames. See the module docstring for the rules. Pure: reads the file, returns arrays.
    """
    if short_2d not in ("error", "trim_3d"):
        raise ValueError(f"short_2d must be 'error' or 'trim_3d', got {short_2d!r}")
    if gmm_units not in ("auto", "px", "normalized") or gmm_spread_units not in ("px", "normalized"):
        raise ValueError(f"gmm_units must be auto|px|normalized and gmm_spread_units px|normalized, got "
                         f"{gmm_units!r}, {gmm_spread_units!r}")
    f = read_2d_file(path_2d)
    path = f.path
    n = len(poses)
    subjects = [str(s) for s in dict.fromkeys(poses.subject.tolist())]
    cam_ids = _camera_lists(poses, mocap, subjects)

    keep = np.ones(n, bool)
    kp = np.full((n, 17, 2), np.nan, np.float32)
    conf = np.zeros((n, 17), np.float32)
    modes: np.ndarray | None = None
    has_score: bool | None = None
    means_units: str | None = None if gmm_units == "auto" else gmm_units
    skipped: list[str] = []
    trimmed: list[str] = []
    dropped: dict[str, int] = {}

    for s in subjects:
        if s not in f.positions:
            shown = sorted(map(str, f.positions))
            raise DataError("subject missing from the 2D file", path=path, key=seq_key(s),
                            expected=f"subject {s!r} (a subject of the 3D rows)", found=f"subjects {shown}")
        if not isinstance(f.positions[s], Mapping):
            raise DataError("wrong structure", path=path, key=seq_key(s), expected="dict[action] -> list",
                            found=type(f.positions[s]).__name__)

    # One group per (subject, action, camera key) of the rows, in first-seen order.
    group_key = np.char.add(np.char.add(poses.sequence_key.astype(str), "|"), poses.camera.astype(str))
    _, first, inverse = np.unique(group_key, return_index=True, return_inverse=True)
    by_group = np.argsort(inverse.reshape(-1), kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(inverse.reshape(-1), minlength=len(first)))]
    for g in np.argsort(first):
        rows = by_group[bounds[g]:bounds[g + 1]]
        r0 = rows[0]
        s, a, cam_key = str(poses.subject[r0]), str(poses.action[r0]), str(poses.camera[r0])
        camera = poses.cameras[cam_key]
        ids = cam_ids[s]
        if skip_damaged and is_damaged(s, a, ids):
            keep[rows] = False
            name = f"{s}/{a}"
            if name not in skipped:
                skipped.append(name)
            continue
        if camera.id not in ids:
            raise DataError(f"camera {camera.id!r} of the rows is not a camera of subject {s!r}", path=path,
                            key=seq_key(s, a), expected=f"one of {ids}", found=repr(camera.id))
        ci = ids.index(camera.id)
        acts = f.positions[s]
        a2 = _find_action(acts, s, a, path)
        cams = acts[a2]
        if isinstance(cams, np.ndarray) and cams.dtype != object:
            cams = [cams]  # one plain array: a single camera
        if not isinstance(cams, (list, tuple, np.ndarray)):
            raise DataError("wrong structure", path=path, key=seq_key(s, a2),
                            expected="a list of per-camera arrays", found=type(cams).__name__)
        if len(cams) != len(ids):
            raise DataError("camera count differs from the 3D", path=path, key=seq_key(s, a2),
                            expected=f"{len(ids)} camera arrays in the order {ids}", found=f"{len(cams)} arrays")
        key = seq_key(s, a2, ci)
        if f.kind == "keypoints":
            arr = _validate_keypoints(cams[ci], path, key)
            score = arr.shape[2] == 3
            if has_score is None:
                has_score = score
            elif has_score != score:
                raise DataError("score channel present in some arrays only", path=path, key=key,
                                expected=f"(T, 17, {3 if has_score else 2}) like the file's other arrays",
                                found=f"shape {arr.shape}")
        else:
            arr = _gmm_structure(cams[ci], path, key)
            mu = np.abs(arr[..., 1:3][np.isfinite(arr[..., 1:3])])
            looks_normalised = bool(mu.size and 0.0 < mu.max() <= _NORMALISED_BOUND)
            if means_units is None:
                means_units = "normalized" if looks_normalised else "px"
            elif gmm_units == "auto" and means_units == "normalized" and not looks_normalised:
                raise DataError("kernel means in mixed units", path=path, key=key,
                                expected=f"screen-normalised means (|value| <= {_NORMALISED_BOUND}) like the "
                                         "file's first array", found="pixel-sized means")
            if means_units == "px" and looks_normalised:
                raise DataError("kernel means look screen-normalised, expected pixels", path=path, key=key,
                                expected="pixel means (or gmm_units='auto' / 'normalized')",
                                found=f"all |values| <= {mu.max():.3g}")
            # Pixels first, then the data layer's checks (weights sum to 1, spreads >= 0, pixel range).
            arr = validate_gmm_array(_to_pixels_gmm(arr, camera.res_w, camera.res_h, means_units, gmm_spread_units),
                                     path=path, key=key)
        t3 = len(mocap.sequence(s, a)) if mocap is not None else int(poses.frame[rows].max()) + 1
        t2 = len(arr)
        frames = poses.frame[rows]
        if t2 > t3:
            arr = arr[:t3]  # VideoPose3D: "Shorten sequence" to the mocap length
            trimmed.append(key)
        elif t2 < t3:
            if short_2d == "error":
                raise DataError("2D sequence shorter than its 3D sequence", path=path, key=key,
                                expected=f">= {t3} frames (the 3D length; longer 2D is trimmed)",
                                found=f"{t2} frames")
            lost = frames >= t2
            keep[rows[lost]] = False
            dropped[key] = t3 - t2
            rows, frames = rows[~lost], frames[~lost]
        sel = arr[frames]
        if f.kind == "keypoints":
            xy = sel[..., :2]
            c = sel[..., 2] if has_score else np.isfinite(xy).all(-1).astype(np.float32)
            if f.layout == "coco":
                xy, c = coco17_to_h36m17(xy, np.nan_to_num(c, nan=0.0))
            present = np.isfinite(xy).all(-1)
            kp[rows] = xy
            conf[rows] = np.where(present, np.nan_to_num(np.clip(c, 0.0, 1.0), nan=0.0), 0.0)
        else:
            m = sel
            if modes is None:
                modes = np.full((n, 17, m.shape[2], 5), np.nan, np.float32)
            elif modes.shape[2] != m.shape[2]:
                raise DataError("kernel count differs between arrays", path=path, key=key,
                                expected=f"K = {modes.shape[2]}", found=f"K = {m.shape[2]}")
            modes[rows] = m
            dominant = m[..., 0].argmax(-1)  # (r, 17)
            kp[rows] = np.take_along_axis(m[..., 1:3], dominant[..., None, None], axis=2)[:, :, 0]
            conf[rows] = 1.0

    return Detections2DFromFile(
        keypoints=kp[keep], confidence=conf[keep], modes=None if modes is None else modes[keep],
        has_confidence=bool(has_score), source=path, kind=f.kind, keep=keep, layout=f.layout,
        skipped=tuple(skipped), trimmed=tuple(trimmed), dropped_3d_frames=dropped,
        gmm_units=means_units if f.kind == "gmm" else None,
        gmm_spread_units=gmm_spread_units if f.kind == "gmm" else None,
    )


__all__ = ["DAMAGED_SEQUENCES", "Detections2DFromFile", "File2D", "H36M_CAMERA_ORDER", "attach_2d",
           "drop_damaged_sequences", "is_damaged", "read_2d_file", "seq_key"]
