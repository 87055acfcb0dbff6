"""Rig tables: H36M-17 mapping by joint name, spot checks, missing names, world conversion."""
from __future__ import annotations

import numpy as np
import pytest

from diffpose_viz.mocap import rigs
from diffpose_viz.mocap.rigs import RIGS, auto_rig, to_h36m17
from diffpose_viz.skeleton import H36M17


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
