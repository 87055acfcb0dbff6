"""BVH: parse structure, forward kinematics (hand-computed and against scipy), errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from diffpose_viz.errors import DataError
from diffpose_viz.mocap import bvh


FIX = Path(__file__).resolve().parents[1] / "fixtures"


# ----------------------------------------------------------------------------- BVH
def test_bvh_parse_structure():
    m = bvh.read_bvh(FIX / "tiny.bvh")
    assert m.joint_names == ["root", "upper", "upper_end"]
    np.testing.assert_array_equal(m.parents, [-1, 0, 1])
    assert m.channels[0][:3] == ("Xposition", "Yposition", "Zposition") and m.channels[2] == ()
    assert m.num_frames == 4 and m.fps == 2.0
    assert m.is_end_site.tolist() == [False, False, True]


def test_bvh_fk_hand_computed():
    m = bvh.read_bvh(FIX / "tiny.bvh")
    p = bvh.forward_kinematics(m)
    assert p.shape == (4, 3, 3)
    # frame 0: translation only
    np.testing.assert_allclose(p[0], [[1, 2, 3], [1, 12, 3], [1, 17, 3]], atol=1e-9)
    # frame 1: root Zrotation 90 turns +y into -x
    np.testing.assert_allclose(p[1], [[0, 0, 0], [-10, 0, 0], [-15, 0, 0]], atol=1e-9)
    # frame 2: upper Xrotation 90 turns its end site +y into +z
    np.testing.assert_allclose(p[2], [[0, 0, 0], [0, 10, 0], [0, 10, 5]], atol=1e-9)
    # frame 3: root "Zrotation Xrotation" = Rz @ Rx; the reverse order would put upper at (-10, 0, 0)
    np.testing.assert_allclose(p[3], [[0, 0, 0], [0, 0, 10], [0, 0, 15]], atol=1e-9)


def test_bvh_fk_matches_scipy_for_random_angles():
    text = (FIX / "tiny.bvh").read_text()
    head = text.split("MOTION")[0]
    rng = np.random.default_rng(3)
    vals = rng.uniform(-180, 180, (5, 9))
    vals[:, :3] = rng.normal(0, 5, (5, 3))
    body = "MOTION\nFrames: 5\nFrame Time: 0.01\n" + "\n".join(" ".join(f"{v:.6f}" for v in r) for r in vals)
    p = bvh.forward_kinematics(bvh.parse_bvh(head + body))
    r_root = Rotation.from_euler("ZXY", vals[:, 3:6], degrees=True)  # uppercase = intrinsic
    r_up = r_root * Rotation.from_euler("XYZ", vals[:, 6:9], degrees=True)
    want_upper = vals[:, :3] + r_root.apply([0, 10, 0])
    np.testing.assert_allclose(p[:, 1], want_upper, atol=1e-5)
    np.testing.assert_allclose(p[:, 2], want_upper + r_up.apply([0, 5, 0]), atol=1e-5)


def test_bvh_errors(tmp_path):
    text = (FIX / "tiny.bvh").read_text()
    p = tmp_path / "short.bvh"
    p.write_text(text.rsplit("\n", 2)[0])  # drop the last frame
    with pytest.raises(DataError, match="motion value count") as e:
        bvh.read_bvh(p)
    assert str(p) in str(e.value) and "MOTION" in str(e.value)
    p.write_text(text.replace("Zrotation Xrotation Yrotation", "Zrotation Xrotation Wrotation"))
    with pytest.raises(DataError, match="unknown channel"):
        bvh.read_bvh(p)
    with pytest.raises(DataError, match="no MOTION"):
        bvh.parse_bvh(text.split("MOTION")[0], source="x.bvh")
    with pytest.raises(FileNotFoundError):
        bvh.read_bvh(tmp_path / "absent.bvh")
