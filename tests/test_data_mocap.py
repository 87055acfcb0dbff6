"""BVH and ASF/AMC forward kinematics, rig tables, world conversion."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from diffpose_viz.errors import DataError
from diffpose_viz.mocap import asf_amc, bvh, rigs
from diffpose_viz.mocap.rigs import RIGS, auto_rig, to_h36m17
from diffpose_viz.skeleton import H36M17

FIX = Path(__file__).parent / "fixtures"


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


# ----------------------------------------------------------------------------- rigs
@pytest.mark.parametrize("rig_name", sorted(RIGS))
def test_rig_mapping_by_name(rig_name):
    rig = RIGS[rig_name]
    names = sorted(rig.required_names) + ["Extra1", "Extra2"]
    names = [names[i] for i in np.random.default_rng(0).permutation(len(names))]
    # joint k sits at (k, 10 k, 100 k): every output is then readable as a name lookup
    pos = np.array([[k, 10 * k, 100 * k] for k in range(len(names))], float)[None]
    assert auto_rig(names) is rig
    out = to_h36m17(pos, names, rig)
    assert out.shape == (1, 17, 3)
    for j, h36m_name in enumerate(H36M17.joint_names):
        want = sum(w * pos[0, names.index(src)] for src, w in rig.table[h36m_name].items())
        np.testing.assert_allclose(out[0, j], want)


def test_rig_table_spot_checks():
    assert RIGS["lafan1"].table["left_knee"] == {"LeftLeg": 1.0}
    assert RIGS["lafan1"].table["right_wrist"] == {"RightHand": 1.0}
    assert RIGS["bandai"].table["spine"] == {"Spine": 0.5, "Chest": 0.5}
    assert RIGS["bandai"].table["left_elbow"] == {"LowerArm_L": 1.0}
    assert RIGS["cmu_asf"].table["right_ankle"] == {"rtibia": 1.0}
    assert RIGS["blender_metarig"].table["left_wrist"] == {"forearm.L_end": 1.0}


def test_auto_rig_lists_missing_names():
    names = sorted(RIGS["lafan1"].required_names - {"LeftForeArm"})
    with pytest.raises(KeyError, match="LeftForeArm"):
        auto_rig(names)


def test_world_conversion():
    # A Y-up cm pose: legs 85 cm long, standing on y = 0.
    p = np.zeros((2, 17, 3))
    p[:, [1, 4], 1] = 90.0
    p[:, [2, 5], 1] = 48.0
    p[:, [3, 6], 1] = 5.0
    p[:, 0, 1] = 90.0
    p[:, 0, 2] = [0.0, 100.0]  # walks 1 m along +z (forward, Y-up)
    assert rigs.guess_metres_per_unit(p) == 0.01
    w = rigs.to_world_metres(p)
    np.testing.assert_allclose(w[:, 0, 2], 0.9)  # height becomes z
    np.testing.assert_allclose(w[:, 0, 1], [0.0, -1.0])  # +z (Y-up) -> -y (Z-up), right-handed
    w = rigs.recentre_horizontally(rigs.place_on_floor(w, ankle_height=0.08))
    assert w[:, [3, 6], 2].min() == pytest.approx(0.08)
    np.testing.assert_allclose(w[:, 0, :2].mean(0), 0.0, atol=1e-12)
