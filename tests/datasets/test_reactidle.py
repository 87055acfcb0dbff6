"""The ReActIdle converter (`diffpose-viz data reactidle --from PATH`) on tiny Rigify-style BVH files this test
writes: 19 joints, metres, Y up, 24 fps, position channels on most joints (as the published files have)."""
from __future__ import annotations

import numpy as np
import pytest

from diffpose_viz.cli import main
from diffpose_viz.datasets import reactidle
from diffpose_viz.datasets.vp3d import load_3d
from diffpose_viz.errors import DataError
from diffpose_viz.mocap import conventions, rigs

from bvh_files import bvh_hierarchy

# (joint, parent, offset in metres); end sites (parent -> offset) below
RIG = [
    ("pelvis", None, (0, 0.9, 0)), ("spine", "pelvis", (0, 0, 0)), ("spine.001", "spine", (0, 0.25, 0.01)),
    ("neck", "spine.001", (0, 0.25, -0.03)), ("face", "neck", (0, 0.2, 0)),
    ("shoulder.L", "spine.001", (0, 0.25, -0.03)), ("upper_arm.L", "shoulder.L", (0.17, 0, 0)),
    ("forearm.L", "upper_arm.L", (0.28, 0, 0)), ("shoulder.R", "spine.001", (0, 0.25, -0.03)),
    ("upper_arm.R", "shoulder.R", (-0.17, 0, 0)), ("forearm.R", "upper_arm.R", (-0.28, 0, 0)),
    ("pelvis.L", "pelvis", (0, 0, 0)), ("pelvis.R", "pelvis", (0, 0, 0)),
    ("thigh.L", "pelvis", (0.1, 0, 0)), ("shin.L", "thigh.L", (0.02, -0.42, 0)), ("foot.L", "shin.L", (0.02, -0.4, 0)),
    ("thigh.R", "pelvis", (-0.1, 0, 0)), ("shin.R", "thigh.R", (-0.02, -0.42, 0)),
    ("foot.R", "shin.R", (-0.02, -0.4, 0)),
]
ENDS = {"face": (0, 0, 0.03), "forearm.L": (0.24, 0, 0), "forearm.R": (-0.24, 0, 0), "pelvis.L": (0.1, 0, 0),
        "pelvis.R": (-0.1, 0, 0), "foot.L": (0, -0.06, 0.15), "foot.R": (0, -0.06, 0.15)}
ROTATION_ONLY = {"spine.001"}  # the published files have position channels on every other joint


def write_bvh(path, *, frames: int = 96, frame_time: float = 1 / 24, scale: float = 1.0, body: float = 1.0,
              rename: dict | None = None):
    joints = [(n, p, np.asarray(o) * scale * (body if p else 1.0)) for n, p, o in RIG]
    offset = {n: o for n, _, o in joints}
    ends = {k: tuple(v * scale * body for v in e) for k, e in ENDS.items()}
    lines, names = bvh_hierarchy(joints, ends, lambda name, depth: "3 Xrotation Yrotation Zrotation" if name in
                                 ROTATION_ONLY else "6 Xposition Yposition Zposition Xrotation Yrotation Zrotation",
                                 digits=6, rename=rename)
    order = [(name, name not in ROTATION_ONLY) for name in names]
    t = np.arange(frames) * frame_time
    rows = []
    for k in range(frames):
        row = []
        for name, pos in order:
            if pos:  # idle sway: the root moves a little; other joints' position channels repeat their offset
                p = offset[name] if name != "pelvis" else np.array([0.02 * np.sin(t[k]), 0, 0.01]) * scale
                row += list(p)
            row += [5.0 * np.sin(2 * t[k]) if name in ("thigh.L", "upper_arm.R") else 0.0, 0.0, 0.0]
        rows.append(" ".join(f"{v:.5f}" for v in row))
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {frame_time:.6f}", *rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_converts_each_person_and_drops_a_borrowed_skeleton(tmp_path):
    src = tmp_path / "reactidle"
    write_bvh(src / "acted" / "007_acted.bvh")
    write_bvh(src / "genuine" / "007_genuine.bvh")
    write_bvh(src / "acted" / "002_acted.bvh", body=0.8)  # a small person (about 1.4 m)
    write_bvh(src / "genuine" / "002_genuine.bvh", body=0.8)
    write_bvh(src / "genuine" / "003_genuine.bvh", body=0.8)  # person 002's skeleton under another id
    write_bvh(src / "acted" / "003_acted.bvh", body=0.78)
    report = reactidle.convert_reactidle(src, tmp_path / "out", log=None)
    assert set(report.subjects) == {"ri002", "ri003", "ri007"}
    assert any(s.startswith("003_genuine.bvh") and "person 002" in s for s in report.skipped)
    # 96 frames at 24 fps span 95/24 s: 119 frames at 30 fps, per take
    assert report.subjects["ri007"]["takes"] == 2 and report.subjects["ri007"]["frames"] == 2 * 119
    assert report.subjects["ri002"]["short"] and not report.subjects["ri007"]["short"]
    pose = load_3d(report.out).positions["ri007"]["acted"]
    thigh = np.linalg.norm(pose[:, 2] - pose[:, 1], axis=-1)
    assert np.allclose(thigh, np.hypot(0.02, 0.42), rtol=1e-3)  # metres, the knee is shin.R's head
    assert np.linalg.norm(pose[:, 12] - pose[:, 11], axis=-1).mean() == pytest.approx(0.28, rel=1e-3)  # upper arm
    assert np.linalg.norm(pose[:, 13] - pose[:, 12], axis=-1).mean() == pytest.approx(0.24, rel=1e-3)  # wrist = end
    assert pose[:, [3, 6], 2].min() == pytest.approx(0.08, abs=1e-3)
    assert (pose[:, 10, 2] > pose[:, 9, 2]).all() and (pose[:, 9, 2] > pose[:, 8, 2]).all()  # head over nose/thorax
    assert "MIT" in (tmp_path / "out" / "SOURCES.md").read_text()


@pytest.mark.parametrize("kwargs, message", [
    ({"rename": {"thigh.L": "Thigh_L"}}, "not the ReActIdle .Rigify-style. rig"),
    ({"scale": 100.0}, "wrong units"),  # centimetres
    ({"frame_time": 0.01}, r"wrong frame rate .*found 100 fps"),
])
def test_bad_files_are_refused_naming_them(tmp_path, kwargs, message):
    write_bvh(tmp_path / "src" / "010_acted.bvh", **kwargs)
    with pytest.raises(DataError, match=message) as err:
        reactidle.convert_reactidle(tmp_path / "src", tmp_path / "out", log=None)
    assert "010_acted.bvh" in str(err.value)


def test_rig_table_and_cli_no_overwrite(tmp_path, capsys):
    assert rigs.REACTIDLE.required_names <= rigs.REACTIDLE_JOINTS | {"forearm.L_end", "forearm.R_end"}
    write_bvh(tmp_path / "src" / "011_acted.bvh")
    out = tmp_path / "out"
    assert main(["data", "reactidle", "--from", str(tmp_path / "src"), "--out-dir", str(out)]) == 0
    assert "1 people" in capsys.readouterr().out
    assert main(["data", "reactidle", "--from", str(tmp_path / "src"), "--out-dir", str(out)]) == 1
    assert "already converted" in capsys.readouterr().err
    assert main(["data", "reactidle", "--from", str(tmp_path / "nothing"), "--out-dir", str(out), "--force"]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_harmonised_joints_per_person(tmp_path):
    """The Rigify-style rig's shoulders and hips (mocap.conventions) at bandai17's proportion of each person's leg;
    the convention is recorded in the file and the report."""
    write_bvh(tmp_path / "src" / "011_acted.bvh")
    write_bvh(tmp_path / "src" / "012_acted.bvh", body=1.1)
    rig = reactidle.convert_reactidle(tmp_path / "src", tmp_path / "rig", log=None)
    report = reactidle.convert_reactidle(tmp_path / "src", tmp_path / "h", joints="harmonised", log=None)
    assert report.to_dict()["joints"] == "harmonised"
    before, after = load_3d(rig.out), load_3d(report.out)
    assert after.metadata["joint_convention"] == "harmonised"
    for person in ("ri011", "ri012"):
        leg = report.subjects[person]["harmonised"]["leg_m"]
        p = after.positions[person]["acted"]
        assert np.allclose(np.linalg.norm(p[:, 1] - p[:, 4], axis=-1), conventions.HIP_WIDTH_PER_LEG * leg, rtol=0.02)
        kept = [j for j in range(17) if j not in conventions.MOVED_JOINTS]
        assert np.allclose(p[:, kept], before.positions[person]["acted"][:, kept])
    with pytest.raises(ValueError, match="joints must be one of"):
        reactidle.convert_reactidle(tmp_path / "src", tmp_path / "bad", joints="anatomical", log=None)
