"""ASF/AMC: parse, forward kinematics (hand-computed and against scipy), errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from diffpose_viz.errors import DataError
from diffpose_viz.mocap import asf_amc


FIX = Path(__file__).resolve().parents[1] / "fixtures"


# ----------------------------------------------------------------------------- ASF/AMC
def test_asf_parse():
    s = asf_amc.read_asf(FIX / "tiny.asf")
    assert s.joint_names == ["root", "femur", "foot"]
    assert s.bones["foot"].dof == ("rx", "rz") and s.bones["foot"].axis_order == "xyz"
    assert s.length_scale == 0.45 and s.angle_unit == "deg"
    assert s.metres_per_unit == pytest.approx(0.0254 / 0.45)


def test_asf_amc_fk_hand_computed():
    s = asf_amc.read_asf(FIX / "tiny.asf")
    m = asf_amc.read_amc(FIX / "tiny.amc", s)
    p, names = asf_amc.forward_kinematics(s, m)
    assert names == ["root", "femur", "foot"] and p.shape == (4, 3, 3)
    # frame 1: rest pose shifted by the root translation
    np.testing.assert_allclose(p[0], [[1, 2, 3], [1, -8, 3], [1, -8, 8]], atol=1e-9)
    # frame 2: root RZ 90 then femur rx 90: femur points along -z, foot along +x
    np.testing.assert_allclose(p[1], [[0, 0, 0], [0, 0, -10], [5, 0, -10]], atol=1e-9)
    # frame 3: foot rx 90 in a frame turned 90 deg about z (axis 0 0 90) = a turn about y: +z -> +x
    np.testing.assert_allclose(p[2], [[0, 0, 0], [0, -10, 0], [5, -10, 0]], atol=1e-9)


def test_asf_amc_fk_matches_scipy():
    s = asf_amc.read_asf(FIX / "tiny.asf")
    m = asf_amc.read_amc(FIX / "tiny.amc", s)
    p, _ = asf_amc.forward_kinematics(s, m)
    # frame 4: root RX RY RZ = (10, 20, 30), femur rx 15, foot (rx, rz) = (40, 50), foot axis z 90
    r_root = Rotation.from_euler("xyz", [10, 20, 30], degrees=True)  # lowercase = fixed axes: Rz Ry Rx
    r_femur = r_root * Rotation.from_euler("x", 15, degrees=True)
    c = Rotation.from_euler("xyz", [0, 0, 90], degrees=True)
    r_foot = r_femur * c * Rotation.from_euler("xz", [40, 50], degrees=True) * c.inv()
    femur_end = r_femur.apply([0, -10, 0])
    np.testing.assert_allclose(p[3, 1], femur_end, atol=1e-9)
    np.testing.assert_allclose(p[3, 2], femur_end + r_foot.apply([0, 0, 5]), atol=1e-9)


def test_amc_errors(tmp_path):
    s = asf_amc.read_asf(FIX / "tiny.asf")
    p = tmp_path / "bad.amc"
    p.write_text((FIX / "tiny.amc").read_text().replace("foot 90 0", "foot 90"))
    with pytest.raises(DataError, match="wrong number of values") as e:
        asf_amc.read_amc(p, s)
    assert str(p) in str(e.value) and "'foot'" in str(e.value)
    q = tmp_path / "bad.asf"
    q.write_text((FIX / "tiny.asf").read_text().split(":hierarchy")[0])
    with pytest.raises(DataError, match="missing section") as e:
        asf_amc.read_asf(q)
    assert ":hierarchy" in str(e.value)
