"""BVH (Biovision hierarchy) reader with vectorised forward kinematics.

Conventions (the ones BVH exporters agree on):
- A joint's rotation channels are applied in the order listed, as intrinsic
  rotations: "Zrotation Yrotation Xrotation" means R = Rz @ Ry @ Rx acting on
  column vectors in the joint's frame. Angles are degrees.
- Position channels give the joint's translation relative to its parent and
  replace the OFFSET component for that axis (Blender and LAFAN1 files write the
  rest offset into these channels for non-root joints).
- Each "End Site" becomes a joint named "<parent>_end" (its position is often
  the only wrist/toe/head-top point a rig has).
Output positions are in the file's units and axes; see `rigs.py` for metres/Z-up.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffpose_viz.errors import DataError

_ROT_CHANNELS = {"Xrotation": "x", "Yrotation": "y", "Zrotation": "z"}
_POS_CHANNELS = {"Xposition": 0, "Yposition": 1, "Zposition": 2}


def axis_rotation(axis: str, angle_rad: np.ndarray) -> np.ndarray:
    """(...,) angles -> (..., 3, 3) rotations about 'x', 'y' or 'z' (right-handed)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    o, z = np.ones_like(c), np.zeros_like(c)
    if axis == "x":
        rows = [[o, z, z], [z, c, -s], [z, s, c]]
    elif axis == "y":
        rows = [[c, z, s], [z, o, z], [-s, z, c]]
    elif axis == "z":
        rows = [[c, -s, z], [s, c, z], [z, z, o]]
    else:
        raise ValueError(f"axis must be 'x', 'y' or 'z', got {axis!r}")
    return np.stack([np.stack(r, -1) for r in rows], -2)


def euler_to_matrix(axes: str, angles_rad: np.ndarray) -> np.ndarray:
    """Intrinsic rotations in the order of `axes` (e.g. 'zyx' -> Rz @ Ry @ Rx); angles (..., len(axes))."""
    angles_rad = np.asarray(angles_rad, dtype=np.float64)
    out = np.broadcast_to(np.eye(3), angles_rad.shape[:-1] + (3, 3)).copy()
    for k, ax in enumerate(axes):
        out = out @ axis_rotation(ax, angles_rad[..., k])
    return out


@dataclass
class BVHMotion:
    """Parsed BVH: per-joint hierarchy plus the motion matrix (T, num_channels)."""

    joint_names: list[str]
    parents: np.ndarray  # (J,) int, -1 for the root; parents precede children
    offsets: np.ndarray  # (J, 3) rest offsets in file units
    channels: list[tuple[str, ...]]  # per joint, () for end sites
    channel_start: np.ndarray  # (J,) column of the joint's first channel in `motion`
    frame_time: float
    motion: np.ndarray  # (T, C) float64
    path: str | None = None

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def num_frames(self) -> int:
        return len(self.motion)

    @property
    def is_end_site(self) -> np.ndarray:
        return np.array([name.endswith("_end") and not ch for name, ch in zip(self.joint_names, self.channels)])


def _tokens(text: str):
    # Braces may share a line with other tokens in hand-written files.
    return text.replace("{", " { ").replace("}", " } ").split()


def parse_bvh(text: str, source: str | None = None) -> BVHMotion:
    """Parse BVH text. Raises DataError (naming `source`) on malformed input."""
    head, sep, motion_text = text.partition("MOTION")
    if not sep:
        raise DataError("no MOTION section", path=source, key="MOTION", expected="HIERARCHY ... MOTION ...",
                        found="no 'MOTION' keyword")
    tok = _tokens(head)
    if not tok or tok[0] != "HIERARCHY":
        raise DataError("does not start with HIERARCHY", path=source, key="HIERARCHY", expected="'HIERARCHY'",
                        found=repr(tok[0] if tok else ""))
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    stack: list[int] = []
    pending: int | None = None  # joint declared, waiting for its '{'
    i = 1

    def need(n: int, what: str) -> list[str]:
        if i + n > len(tok):
            raise DataError(f"file ends inside {what}", path=source, key="HIERARCHY")
        return tok[i:i + n]

    while i < len(tok):
        t = tok[i]
        if t in ("ROOT", "JOINT"):
            (name,) = need(2, t)[1:]
            names.append(name)
            parents.append(stack[-1] if stack else -1)
            offsets.append([0.0, 0.0, 0.0])
            channels.append(())
            pending = len(names) - 1
            i += 2
        elif t == "End":
            if i + 1 >= len(tok) or tok[i + 1] != "Site" or not stack:
                raise DataError("malformed End Site", path=source, key="HIERARCHY", expected="'End Site' in a joint",
                                found=" ".join(tok[i:i + 2]))
            names.append(f"{names[stack[-1]]}_end")
            parents.append(stack[-1])
            offsets.append([0.0, 0.0, 0.0])
            channels.append(())
            pending = len(names) - 1
            i += 2
        elif t == "{":
            if pending is None:
                raise DataError("'{' without a joint", path=source, key="HIERARCHY")
            stack.append(pending)
            pending = None
            i += 1
        elif t == "}":
            if not stack:
                raise DataError("unbalanced '}'", path=source, key="HIERARCHY")
            stack.pop()
            i += 1
        elif t == "OFFSET":
            vals = need(4, "OFFSET")[1:]
            try:
                offsets[stack[-1]] = [float(v) for v in vals]
            except (ValueError, IndexError):
                raise DataError("bad OFFSET", path=source, key="OFFSET", expected="3 numbers", found=vals) from None
            i += 4
        elif t == "CHANNELS":
            try:
                n = int(need(2, "CHANNELS")[1])
            except ValueError:
                raise DataError("bad channel count", path=source, key="CHANNELS", found=tok[i + 1]) from None
            chans = tuple(need(2 + n, "CHANNELS")[2:])
            unknown = [c for c in chans if c not in _ROT_CHANNELS and c not in _POS_CHANNELS]
            if unknown or not stack:
                raise DataError("unknown channel names", path=source, key="CHANNELS",
                                expected=sorted([*_ROT_CHANNELS, *_POS_CHANNELS]), found=unknown)
            channels[stack[-1]] = chans
            i += 2 + n
        else:
            raise DataError(f"unexpected token {t!r}", path=source, key="HIERARCHY")
    if stack or not names:
        raise DataError("unbalanced braces or no joints", path=source, key="HIERARCHY")

    mt = motion_text.split()
    try:
        f_idx = mt.index("Frames:")
        n_frames = int(mt[f_idx + 1])
        ft_idx = mt.index("Time:", f_idx)
        frame_time = float(mt[ft_idx + 1])
        values = np.array(mt[ft_idx + 2:], dtype=np.float64)
    except (ValueError, IndexError) as err:
        raise DataError(f"malformed MOTION header or values: {err}", path=source, key="MOTION",
                        expected="'Frames: N', 'Frame Time: dt', then numbers") from None
    n_channels = sum(len(c) for c in channels)
    if values.size != n_frames * n_channels:
        raise DataError("motion value count does not match", path=source, key="MOTION",
                        expected=f"{n_frames} frames x {n_channels} channels = {n_frames * n_channels}",
                        found=f"{values.size} values")
    if frame_time <= 0:
        raise DataError("non-positive frame time", path=source, key="Frame Time", expected="> 0", found=frame_time)
    starts = np.cumsum([0] + [len(c) for c in channels])[:-1]
    return BVHMotion(joint_names=names, parents=np.array(parents), offsets=np.array(offsets, dtype=np.float64),
                     channels=channels, channel_start=starts, frame_time=frame_time,
                     motion=values.reshape(n_frames, n_channels), path=source)


def read_bvh(path: str | os.PathLike) -> BVHMotion:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return parse_bvh(path.read_text(errors="replace"), source=str(path))


def forward_kinematics(bvh: BVHMotion, frames: slice | np.ndarray | None = None) -> np.ndarray:
    """World joint positions (T, J, 3) in file units, end sites included.

    Vectorised over frames; the only Python loop is over joints.
    """
    motion = bvh.motion if frames is None else bvh.motion[frames]
    t = len(motion)
    j = len(bvh.joint_names)
    glob_rot = np.empty((j, t, 3, 3))
    glob_pos = np.empty((j, t, 3))
    for k in range(j):
        chans = bvh.channels[k]
        cols = motion[:, bvh.channel_start[k]:bvh.channel_start[k] + len(chans)]
        local_pos = np.broadcast_to(bvh.offsets[k], (t, 3)).copy()
        rot_axes = ""
        rot_cols = []
        for c, name in enumerate(chans):
            if name in _POS_CHANNELS:
                local_pos[:, _POS_CHANNELS[name]] = cols[:, c]
            else:
                rot_axes += _ROT_CHANNELS[name]
                rot_cols.append(c)
        local_rot = euler_to_matrix(rot_axes, np.deg2rad(cols[:, rot_cols])) if rot_axes else np.eye(3)
        p = bvh.parents[k]
        if p < 0:
            glob_rot[k] = local_rot
            glob_pos[k] = local_pos
        else:
            glob_rot[k] = glob_rot[p] @ local_rot
            glob_pos[k] = glob_pos[p] + np.einsum("tij,tj->ti", glob_rot[p], local_pos)
    return np.ascontiguousarray(glob_pos.transpose(1, 0, 2))
