"""What the mocap converters (`diffpose-viz data hdm05|cmu_asf|reactidle`) share: cutting a take into camera-
visible clips, the per-source report (people, clips, frames, licence, what was refused), and writing
`data/cache/<name>/data_3d_<name>.npz` + `report.json` + `SOURCES.md` without overwriting a finished conversion
unless `force`.

Output conventions (like `data cmu_bvh` and the demo builder): H36M-17 joints, metres, Z up, feet on the floor,
30 fps, each clip's mean pelvis at the origin, each person its own subject, seen by the Human3.6M S1 cameras.
Joint centres are the rig's (`joints="rig"`) or, per person, the harmonised convention of `mocap.conventions`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_json, atomic_write_text
from ..camera import h36m_cameras
from ..mocap.conventions import JOINT_CONVENTIONS, harmonise_person
from ..skeleton import H36M17
from .demo import FPS, MAX_CLIP_SECONDS, MAX_PELVIS_EXTENT_M, SubjectTotals, cut_clips, fit_clips, resample
from .vp3d import save_3d
from diffpose_viz.errors import DataError

LEG_M = 0.85  # thigh + shin of an adult
LEG_TOLERANCE = 1.5  # a median leg more than this factor off LEG_M: the units are wrong


def data_file(out_dir: str | Path, name: str) -> Path:
    return Path(out_dir) / f"data_3d_{name}.npz"


def refuse_overwrite(out_dir: str | Path, name: str, force: bool) -> None:
    """A finished conversion is never replaced without --force."""
    target = data_file(out_dir, name)
    if target.exists() and not force:
        raise DataError("already converted; pass --force to convert again and replace it", path=target)


def median_leg(p17: np.ndarray) -> float:
    """Median thigh + shin length of H36M-17 poses, in their units."""
    thigh = np.linalg.norm(p17[:, [2, 5]] - p17[:, [1, 4]], axis=-1)
    shin = np.linalg.norm(p17[:, [3, 6]] - p17[:, [2, 5]], axis=-1)
    return float(np.median(thigh + shin))


def check_leg_metres(leg_m: float, where: str, unit: str) -> None:
    """DataError unless a leg of `leg_m` metres (after `unit`) is a human leg."""
    if not 1 / LEG_TOLERANCE < leg_m / LEG_M < LEG_TOLERANCE:
        raise DataError(f"wrong units: the leg (thigh + shin) is {leg_m:.3g} m with {unit}", path=where,
                        expected=f"{LEG_M / LEG_TOLERANCE:.2f}-{LEG_M * LEG_TOLERANCE:.2f} m", found=f"{leg_m:.3g} m")


def check_fps(fps: float, accepted: tuple[float, ...], where: str, how: str) -> float:
    """The accepted frame rate `fps` is (1 % tolerance), else a DataError naming the file."""
    for ok in accepted:
        if abs(fps - ok) / ok < 0.01:
            return ok
    raise DataError(f"wrong frame rate ({how})", path=where, expected=f"one of {list(accepted)} fps",
                    found=f"{fps:.4g} fps")


@dataclass
class Conversion(SubjectTotals):
    """One converter run: per person the takes, clips, frames and rig; what was refused and why."""

    name: str  # e.g. "hdm05": the file is data_3d_<name>.npz
    title: str  # e.g. "HDM05 (Mueller et al. 2007)"
    source: str
    licence: str
    subjects: dict[str, dict] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    out: Path | None = None
    joints: str = "rig"  # one of mocap.conventions.JOINT_CONVENTIONS
    positions: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def people(self) -> int:
        return len(self.subjects)

    def add_take(self, subject: str, action: str, world: np.ndarray, fps: float, rig: str, **info) -> None:
        """A take in world metres (Z up) at `fps`: resampled to 30 fps, cut into camera-visible clips."""
        world = resample(world, fps, FPS) if fps != FPS else world
        cameras = h36m_cameras("S1")
        clips = [piece for a, b in cut_clips(world, int(MAX_CLIP_SECONDS * FPS), MAX_PELVIS_EXTENT_M)
                 for piece in fit_clips(world[a:b], cameras)]
        row = self.subjects.setdefault(subject, {"takes": 0, "clips": 0, "frames": 0, "rig": rig, **info})
        row["takes"] += 1
        for k, clip in enumerate(clips):
            self.positions.setdefault(subject, {})[action if len(clips) == 1 else f"{action} {k + 1}"] = clip
            row["clips"] += 1
            row["frames"] += len(clip)

    def to_dict(self) -> dict:
        return {"source": self.source, "name": self.name, "out": None if self.out is None else str(self.out),
                "people": self.people, "clips": self.clips, "frames": self.frames, "fps": FPS,
                "joints": self.joints, "subjects": self.subjects, "skipped": self.skipped, "notes": self.notes,
                "licence": self.licence}

    def __str__(self) -> str:
        rows = [f"{self.title} from {self.source}: {self.people} people, {self.clips} clips, {self.frames} frames "
                f"at {FPS:g} fps -> {self.out}", f"joint centres: {self.joints}", f"licence: {self.licence}"]
        rows += [f"  {s}: {v['takes']} takes, {v['clips']} clips, {v['frames']} frames ({v['rig']})"
                 for s, v in self.subjects.items()]
        rows += [f"  note: {n}" for n in self.notes]
        rows += [f"  skipped {s}" for s in self.skipped]
        return "\n".join(rows)

    def write(self, out_dir: str | Path, *, reserved: str, log=print) -> "Conversion":
        """data_3d_<name>.npz, report.json and SOURCES.md in `out_dir` (each written atomically)."""
        if not self.positions:
            raise DataError("nothing converted: " + "; ".join(self.skipped[:4] or ["no takes found"]),
                            path=self.source)
        if self.joints not in JOINT_CONVENTIONS:
            raise ValueError(f"joints must be one of {JOINT_CONVENTIONS}, got {self.joints!r}")
        if self.joints == "harmonised":  # per person, from that person's own frames only
            for subject, clips in self.positions.items():
                self.positions[subject], self.subjects[subject]["harmonised"] = harmonise_person(clips)
        self.out = data_file(out_dir, self.name)
        cameras = h36m_cameras("S1")
        metadata = {"fps": FPS, "joint_names": list(H36M17.joint_names), "parents": list(H36M17.parents),
                    "keypoints_symmetry": [list(H36M17.left), list(H36M17.right)], "units": "metres",
                    "world": "Z-up, floor at z = 0, each clip's mean pelvis (x, y) at the origin",
                    "cameras": "Human3.6M intrinsics + subject S1 extrinsics for every subject",
                    "license": self.licence, "joint_convention": self.joints, "sources": self.to_dict(),
                    "reserved": reserved}
        save_3d(self.out, self.positions, cameras={s: cameras for s in self.positions}, metadata=metadata)
        atomic_write_json(self.out.parent / "report.json", self.to_dict())
        atomic_write_text(self.out.parent / "SOURCES.md", (
            f"# {self.title} conversion (not committed: data/cache is git-ignored)\n\n```\n{self}\n```\n\n"
            f"Reserved, never converted: {reserved}\n\nUse: `data.extra_train: [{{path: {self.out}, subjects: "
            f"{json.dumps(list(self.positions))}, name: {self.name}}}]`\n"))
        if log:
            log(str(self))
        return self
