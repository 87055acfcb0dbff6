"""Acclaim ASF (skeleton) + AMC (motion) reader with forward kinematics.

Conventions (those of the CMU mocap database and the Acclaim spec):
- `axis a b c XYZ` gives the bone's local frame C as rotations applied in the
  listed order (XYZ -> C = Rz @ Ry @ Rx); the AMC dof angles (in `dof` order,
  same rule) rotate the bone inside that frame: L = C @ M @ C^-1.
- A bone's global rotation is parent_global @ L; its end point is its start
  plus global @ (direction * length). The root's start is the AMC translation.
- `:units length s`: file lengths are in units of 1/s inches in CMU files
  (`length 0.45` -> 1 unit = 1/0.45 inch); `angle deg|rad`.
Output positions are in file units; `metres_per_unit` converts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .bvh import euler_to_matrix

_INCH = 0.0254


@dataclass
class ASFBone:
    name: str
    direction: np.ndarray  # (3,) unit vector in the parent-independent global rest frame
    length: float
    axis: np.ndarray  # (3,) angles (file angle unit)
    axis_order: str  # e.g. "xyz"
    dof: tuple[str, ...] = ()  # e.g. ("rx", "rz")


@dataclass
class ASFSkeleton:
    bones: dict[str, ASFBone]
    parents: dict[str, str]  # child -> parent, "root" at the top
    root_order: tuple[str, ...] = ("tx", "ty", "tz", "rx", "ry", "rz")
    root_axis: str = "xyz"
    root_position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    root_orientation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    length_scale: float = 1.0
    angle_unit: str = "deg"
    path: str | None = None

    @property
    def joint_names(self) -> list[str]:
        """'root' then every bone in an order where parents precede children."""
        order = ["root"]
        children: dict[str, list[str]] = {}
        for c, p in self.parents.items():
            children.setdefault(p, []).append(c)
        k = 0
        while k < len(order):
            order.extend(children.get(order[k], []))
            k += 1
        return order

    @property
    def metres_per_unit(self) -> float:
        """CMU convention: one file unit is 1/length_scale inches."""
        return _INCH / self.length_scale


@dataclass
class AMCMotion:
    values: dict[str, np.ndarray]  # joint name -> (T, n_dof) in file angle units / length units
    num_frames: int
    path: str | None = None


def _acclaim_rotation(axes: str, angles_rad: np.ndarray) -> np.ndarray:
    """Rotations applied in `axes` order about fixed axes: 'xyz' -> Rz @ Ry @ Rx."""
    angles_rad = np.asarray(angles_rad, dtype=np.float64)
    return euler_to_matrix(axes[::-1], angles_rad[..., ::-1])


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(":"):
            head, _, rest = line[1:].partition(" ")
            current = head.lower()
            out.setdefault(current, [])
            if rest.strip():
                out[current].append(rest.strip())
        elif current is not None:
            out[current].append(line)
    return out


def read_asf(path: str | os.PathLike) -> ASFSkeleton:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return parse_asf(path.read_text(errors="replace"), source=str(path))


def parse_asf(text: str, source: str | None = None) -> ASFSkeleton:
    """Parse ASF text; `source` names the file in errors."""
    path = source
    sec = _sections(text)
    for need in ("bonedata", "hierarchy"):
        if need not in sec:
            raise DataError("missing section", path=path, key=f":{need}", expected=f"a ':{need}' section",
                            found=f"sections {sorted(sec)}")
    skel = ASFSkeleton(bones={}, parents={}, path=source)
    for line in sec.get("units", []):
        k, *v = line.split()
        if k == "length" and v:
            skel.length_scale = float(v[0])
        elif k == "angle" and v:
            skel.angle_unit = "rad" if v[0].lower().startswith("rad") else "deg"
    for line in sec.get("root", []):
        k, *v = line.split()
        k = k.lower()
        if k == "order":
            skel.root_order = tuple(x.lower() for x in v)
        elif k == "axis":
            skel.root_axis = v[0].lower()
        elif k == "position":
            skel.root_position = np.array(v[:3], dtype=np.float64)
        elif k == "orientation":
            skel.root_orientation = np.array(v[:3], dtype=np.float64)

    bone: dict | None = None
    expecting_limits = False
    for line in sec["bonedata"]:
        k, *v = line.split()
        kl = k.lower()
        if kl == "begin":
            bone = {}
            continue
        if bone is None:
            raise DataError("bone data outside begin/end", path=path, key=":bonedata", found=line)
        if kl == "end":
            try:
                b = ASFBone(name=bone["name"], direction=np.array(bone["direction"], dtype=np.float64),
                            length=float(bone["length"][0]), axis=np.array(bone["axis"][:3], dtype=np.float64),
                            axis_order=bone["axis"][3].lower(), dof=tuple(x.lower() for x in bone.get("dof", ())))
            except (KeyError, IndexError, ValueError) as err:
                raise DataError(f"incomplete bone {bone.get('name', '?')!r}: {err}", path=path, key=":bonedata",
                                expected="name, direction, length, axis") from None
            skel.bones[b.name] = b
            bone, expecting_limits = None, False
        elif kl == "name":
            bone["name"] = v[0]
        elif kl in ("direction", "length", "axis", "dof", "id"):
            bone[kl] = v
            expecting_limits = False
        elif kl == "limits" or (expecting_limits and k.startswith("(")):
            expecting_limits = True
        elif k.startswith("("):
            continue  # limit continuation lines
        # other keys (bodymass, cofmass) carry no geometry
    for line in sec["hierarchy"]:
        parts = line.split()
        if parts[0].lower() in ("begin", "end"):
            continue
        for child in parts[1:]:
            skel.parents[child] = parts[0]
    unknown = [c for c in skel.parents if c not in skel.bones]
    if unknown:
        raise DataError("hierarchy names bones without bonedata", path=path, key=":hierarchy",
                        expected="bones defined in :bonedata", found=unknown)
    return skel


def read_amc(path: str | os.PathLike, skeleton: ASFSkeleton) -> AMCMotion:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return parse_amc(path.read_text(errors="replace"), skeleton, source=str(path))


def parse_amc(text: str, skeleton: ASFSkeleton, source: str | None = None) -> AMCMotion:
    """Parse AMC text against `skeleton`; `source` names the file in errors."""
    path = source
    frames: list[dict[str, list[float]]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith(":"):
            continue
        parts = line.split()
        if len(parts) == 1 and parts[0].isdigit():
            frames.append({})
            continue
        if not frames:
            raise DataError("values before the first frame number", path=path, key=parts[0])
        try:
            frames[-1][parts[0]] = [float(x) for x in parts[1:]]
        except ValueError:
            raise DataError("non-numeric value", path=path, key=parts[0], found=line) from None
    if not frames:
        raise DataError("no frames", path=path, key="frames", expected=">= 1 frame", found=0)
    values = {}
    n_dof = {"root": len(skeleton.root_order), **{b.name: len(b.dof) for b in skeleton.bones.values()}}
    for name, n in n_dof.items():
        if n == 0:
            continue
        rows = [f.get(name) for f in frames]
        if any(r is None for r in rows):
            missing = next(i for i, r in enumerate(rows) if r is None)
            raise DataError(f"joint missing in frame {missing + 1}", path=path, key=name,
                            expected=f"{n} values per frame", found="none")
        arr = np.array(rows, dtype=np.float64) if len({len(r) for r in rows}) == 1 else None
        if arr is None or arr.shape[1] != n:
            raise DataError("wrong number of values", path=path, key=name, expected=f"{n} (dof in ASF)",
                            found=sorted({len(r) for r in rows}))
        values[name] = arr
    return AMCMotion(values=values, num_frames=len(frames), path=source)


def forward_kinematics(skeleton: ASFSkeleton, motion: AMCMotion) -> tuple[np.ndarray, list[str]]:
    """(T, J, 3) positions in file length units, and the joint names ('root' + bone end points)."""
    to_rad = (lambda a: np.asarray(a, dtype=np.float64)) if skeleton.angle_unit == "rad" else np.deg2rad
    t = motion.num_frames
    names = skeleton.joint_names
    glob_rot: dict[str, np.ndarray] = {}
    pos: dict[str, np.ndarray] = {}

    root_vals = motion.values.get("root", np.zeros((t, len(skeleton.root_order))))
    trans = np.zeros((t, 3))
    rot_axes, rot_cols = "", []
    for c, ch in enumerate(skeleton.root_order):
        if ch.startswith("t"):
            trans[:, "xyz".index(ch[1])] = root_vals[:, c]
        else:
            rot_axes += ch[1]
            rot_cols.append(c)
    c_root = _acclaim_rotation(skeleton.root_axis, to_rad(skeleton.root_orientation))
    m_root = _acclaim_rotation(rot_axes, to_rad(root_vals[:, rot_cols])) if rot_axes else np.eye(3)
    glob_rot["root"] = c_root @ m_root @ c_root.T
    pos["root"] = trans + skeleton.root_position

    for name in names[1:]:
        b = skeleton.bones[name]
        parent = skeleton.parents[name]
        c = _acclaim_rotation(b.axis_order, to_rad(b.axis))
        rot = [k for k, d in enumerate(b.dof) if d.startswith("r")]  # translation/length dofs are ignored
        if rot:
            axes = "".join(b.dof[k][1] for k in rot)
            m = _acclaim_rotation(axes, to_rad(motion.values[name][:, rot]))
            local = c @ m @ c.T
        else:
            local = np.eye(3)
        glob_rot[name] = glob_rot[parent] @ local
        pos[name] = pos[parent] + glob_rot[name] @ (b.direction * b.length)
    return np.stack([np.broadcast_to(pos[n], (t, 3)) for n in names], axis=1), names
