"""The CMU BVH converter (`diffpose-viz data cmu_bvh --from PATH`) on tiny BVH files this test writes itself.

The fixture hierarchies carry the joint names of the two public CMU BVH conversions (MotionBuilder-friendly
`NN_MM.bvh`, 3ds-Max-friendly `131_0N.bvh`) with CMU-like offsets in CMU units (1 unit = 0.0564 m) and a slow
walk-like motion at 120 fps.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from diffpose_viz.cli import main
from diffpose_viz.config import MotionSource
from diffpose_viz.datasets import cmu_bvh
from diffpose_viz.datasets.vp3d import load_3d
from diffpose_viz.errors import DataError

from bvh_files import bvh_hierarchy
from tiny_runs import tiny_config

# (name, parent, offset in CMU units); end sites get the name "<parent>_end" from the reader
MB = [
    ("Hips", None, (0, 0, 0)), ("LHipJoint", "Hips", (0, 0, 0)), ("LeftUpLeg", "LHipJoint", (1.36, -1.79, 0.84)),
    ("LeftLeg", "LeftUpLeg", (2.45, -6.72, 0)), ("LeftFoot", "LeftLeg", (2.52, -6.92, 0)),
    ("RHipJoint", "Hips", (0, 0, 0)), ("RightUpLeg", "RHipJoint", (-1.31, -1.79, 0.84)),
    ("RightLeg", "RightUpLeg", (-2.54, -6.98, 0)), ("RightFoot", "RightLeg", (-2.57, -7.06, 0)),
    ("LowerBack", "Hips", (0, 0, 0)), ("Spine", "LowerBack", (0.03, 2.04, 0.2)), ("Spine1", "Spine", (0.05, 2.06, 0)),
    ("Neck", "Spine1", (0, 1.8, 0)), ("Neck1", "Neck", (0, 1.6, 0)), ("Head", "Neck1", (0, 1.6, 0)),
    ("LeftShoulder", "Spine1", (0, 0, 0)), ("LeftArm", "LeftShoulder", (3.2, 1.2, 0)),
    ("LeftForeArm", "LeftArm", (5.0, 0, 0)), ("LeftHand", "LeftForeArm", (3.6, 0, 0)),
    ("RightShoulder", "Spine1", (0, 0, 0)), ("RightArm", "RightShoulder", (-3.2, 1.2, 0)),
    ("RightForeArm", "RightArm", (-5.0, 0, 0)), ("RightHand", "RightForeArm", (-3.6, 0, 0)),
]
END = {"Head": (0, 1.6, 0), "LeftFoot": (0, -0.4, 2.2), "RightFoot": (0, -0.4, 2.2), "LeftHand": (0.7, 0, 0),
       "RightHand": (-0.7, 0, 0)}
MAX = {"LeftUpLeg": "LeftHip", "LeftLeg": "LeftKnee", "LeftFoot": "LeftAnkle", "RightUpLeg": "RightHip",
       "RightLeg": "RightKnee", "RightFoot": "RightAnkle", "Spine": "Chest", "Spine1": "Chest2",
       "LeftShoulder": "LeftCollar", "LeftArm": "LeftShoulder", "LeftForeArm": "LeftElbow", "LeftHand": "LeftWrist",
       "RightShoulder": "RightCollar", "RightArm": "RightShoulder", "RightForeArm": "RightElbow",
       "RightHand": "RightWrist", "Neck": "lowerneck", "Neck1": "Neck", "LowerBack": "lowerback"}


def write_bvh(path: Path, *, frames: int = 240, frame_time: float = 1 / 120, scale: float = 1.0,
              naming: str = "mb", rename: dict | None = None) -> Path:
    joints = [(MAX.get(n, n) if naming == "3dsmax" else n, MAX.get(p, p) if (p and naming == "3dsmax") else p, o)
              for n, p, o in MB]
    ends = {(MAX.get(k, k) if naming == "3dsmax" else k): v for k, v in END.items()}
    if rename:
        joints = [(rename.get(n, n), rename.get(p, p) if p else p, o) for n, p, o in joints]
    joints = [(n, p, tuple(v * scale for v in o)) for n, p, o in joints]
    ends = {k: tuple(v * scale for v in e) for k, e in ends.items()}
    lines, _ = bvh_hierarchy(joints, ends, lambda name, depth: "3 Zrotation Yrotation Xrotation" if depth else
                             "6 Xposition Yposition Zposition Zrotation Yrotation Xrotation", digits=5)
    n_chan = 6 + 3 * (len(joints) - 1)
    t = np.arange(frames) * frame_time
    motion = np.zeros((frames, n_chan))
    motion[:, 0] = 10.0 * t * scale  # walk forward slowly
    motion[:, 1] = 17.0 * scale  # pelvis height ~0.96 m
    names = [n for n, _, _ in joints]
    for side, sign in (("Left", 1), ("Right", -1)):  # swing the thighs (X rotation = last channel of each joint)
        thigh = MAX[f"{side}UpLeg"] if naming == "3dsmax" else f"{side}UpLeg"
        thigh = names.index((rename or {}).get(thigh, thigh))
        motion[:, 6 + 3 * (thigh - 1) + 2] = sign * 20.0 * np.sin(2 * np.pi * t)
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {frame_time:.7f}"]
    lines += [" ".join(f"{v:.4f}" for v in row) for row in motion]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_converts_a_take_into_a_data_3d_file_with_a_report(tmp_path):
    src = tmp_path / "cmu"
    src.mkdir()
    write_bvh(src / "131_01.bvh")
    write_bvh(src / "132_04.bvh", naming="3dsmax")
    write_bvh(src / "scaled_131_01.bvh", naming="3dsmax", scale=cmu_bvh.CMU_METRES_PER_UNIT)  # same take, metres
    write_bvh(src / "05_01.bvh")  # reserved subject
    report = cmu_bvh.convert_cmu_bvh(src, tmp_path / "out", log=None)
    assert report.people == 2 and set(report.subjects) == {"cmu131", "cmu132"}
    assert report.subjects["cmu131"]["rig"] == "cmu_bvh_mb" and report.subjects["cmu132"]["rig"] == "cmu_bvh_3dsmax"
    assert report.frames == 2 * 60  # 240 frames at 120 fps -> 60 at 30 fps per take
    assert any("05_01.bvh" in s and "reserved" in s for s in report.skipped)
    assert any("scaled_131_01.bvh" in s and "already converted" in s for s in report.skipped)
    mocap = load_3d(report.out)
    pose = mocap.positions["cmu131"]["131_01"]
    thigh = np.linalg.norm(pose[:, 2] - pose[:, 1], axis=-1)  # right hip -> right knee
    assert np.allclose(thigh, np.hypot(2.54, 6.98) * cmu_bvh.CMU_METRES_PER_UNIT, rtol=1e-3)
    assert pose[:, [3, 6], 2].min() == pytest.approx(0.08, abs=1e-3)  # Z-up, feet on the floor
    assert pose[:, 10, 2].mean() > pose[:, 0, 2].mean() + 0.3  # head above pelvis
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["people"] == 2 and "mocap.cs.cmu.edu" in saved["licence"]
    assert "cmu131" in (tmp_path / "out" / "SOURCES.md").read_text()


def test_the_output_trains_as_an_extra_source(tmp_path, tiny_data):
    write_bvh(tmp_path / "131_01.bvh", frames=1200)
    report = cmu_bvh.convert_cmu_bvh(tmp_path / "131_01.bvh", tmp_path / "out", log=None)
    cfg = tiny_config(tiny_data)
    cfg.data.extra_train = [MotionSource(path=str(report.out), subjects=["cmu131"], name="cmu")]
    from diffpose_viz.inputs import load_splits

    splits = load_splits(cfg.data, 0)
    assert (np.char.startswith(splits.train.subject.astype(str), "cmu:cmu131")).any()


@pytest.mark.parametrize("make, message", [
    (lambda p: write_bvh(p / "07_02.bvh"), "reserved for independent evaluation"),
    (lambda p: write_bvh(p / "walk.bvh"), "cannot tell the CMU subject"),
    (lambda p: write_bvh(p / "140_01.bvh", scale=10.0), "wrong units"),
    (lambda p: write_bvh(p / "140_01.bvh", frame_time=0.04), "expected a CMU frame rate"),
    (lambda p: write_bvh(p / "140_01.bvh", rename={"LeftUpLeg": "Thigh_L"}), "not a CMU BVH rig"),
])
def test_bad_input_is_refused_naming_the_file(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(DataError, match=message):
        cmu_bvh.convert_cmu_bvh(tmp_path, tmp_path / "out", log=None)


def test_cli(tmp_path, capsys):
    write_bvh(tmp_path / "131_01.bvh")
    assert main(["data", "cmu_bvh", "--from", str(tmp_path), "--out-dir", str(tmp_path / "out")]) == 0
    assert "1 people" in capsys.readouterr().out
    assert main(["data", "cmu_bvh"]) == 1
    assert "--from PATH is required" in capsys.readouterr().err
