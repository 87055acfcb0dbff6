"""GMM 2D files, MPI-INF-3DHP test npz, action names."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffpose_viz.datasets import (
    H36M_ACTIONS,
    MPI3DHP17_NAMES,
    MPI3DHP17_TO_H36M17,
    action_group,
    group_actions,
    load_3dhp_test,
    normalize_h36m_action,
    read_gmm_2d,
    write_gmm_2d,
)
from diffpose_viz.datasets.mpi3dhp import IMAGE_SIZES, save_3dhp_test
from diffpose_viz.errors import DataError
from diffpose_viz.skeleton import H36M17

FIX = Path(__file__).parent / "fixtures"


# ----------------------------------------------------------------------------- GMM
def test_read_gmm_fixture():
    g = read_gmm_2d(FIX / "tiny_gmm.npz")
    arr = g["alpha"]["walk 001"][0]
    assert arr.shape == (8, 17, 3, 5)
    np.testing.assert_allclose(arr[..., 0].sum(-1), 1.0, atol=1e-3)
    assert g.metadata["units"].startswith("pixels")


def _gmm(t=2, k=2):
    a = np.zeros((t, 17, k, 5), np.float32)
    a[..., 0] = 1.0 / k
    a[..., 1:3] = 100.0
    a[..., 3:5] = 2.0
    return a


def _set_weights(a, w):
    a = a.copy()
    a[..., 0] = w
    return a


@pytest.mark.parametrize("mutate,match", [
    (lambda a: a[..., :4], "last dimension"),
    (lambda a: a[:, :16], "joint count"),
    (lambda a: np.where(np.arange(5) == 1, np.nan, a), "NaN/inf"),
    (lambda a: _set_weights(a, [1.2, -0.2]), "outside \\[0, 1\\]"),
    (lambda a: a * np.array([0.9, 1, 1, 1, 1], np.float32), "sum to 1"),
    (lambda a: a * np.array([1, 1, 1, -1, 1], np.float32), "negative spreads"),
])
def test_gmm_validation(tmp_path, mutate, match):
    p = tmp_path / "bad_gmm.npz"
    with pytest.raises(DataError, match=match) as e:
        write_gmm_2d(p, {"S1": {"Walk": [mutate(_gmm())]}})
    assert str(p) in str(e.value) and "positions_2d/S1/Walk[0]" in str(e.value)
    assert not p.exists()


def test_gmm_round_trip(tmp_path):
    p = write_gmm_2d(tmp_path / "g.npz", {"S1": {"Walk": [_gmm(3, 3)]}}, {"detector": "sim"})
    g = read_gmm_2d(p)
    np.testing.assert_array_equal(g["S1"]["Walk"][0], _gmm(3, 3))
    assert g.metadata["detector"] == "sim"


# ----------------------------------------------------------------------------- 3DHP
def test_3dhp_mapping_by_name():
    expected = {  # H36M-17 name -> 3DHP-17 name
        "pelvis": "pelvis", "right_hip": "right_hip", "right_knee": "right_knee", "right_ankle": "right_ankle",
        "left_hip": "left_hip", "left_knee": "left_knee", "left_ankle": "left_ankle", "spine": "spine",
        "thorax": "neck", "neck_nose": "head", "head_top": "head_top", "left_shoulder": "left_shoulder",
        "left_elbow": "left_elbow", "left_wrist": "left_wrist", "right_shoulder": "right_shoulder",
        "right_elbow": "right_elbow", "right_wrist": "right_wrist",
    }
    for j, name in enumerate(H36M17.joint_names):
        assert MPI3DHP17_NAMES[MPI3DHP17_TO_H36M17[j]] == expected[name]
    assert sorted(MPI3DHP17_TO_H36M17) == list(range(17))
    assert MPI3DHP17_NAMES.index("pelvis") == 14
    np.testing.assert_array_equal(MPI3DHP17_TO_H36M17, [14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4])


def test_load_3dhp_fixture():
    data = load_3dhp_test(FIX / "tiny_3dhp_test.npz", units="mm")
    ts1, ts5 = data["TS1"], data["TS5"]
    assert ts1.res == (2048, 2048) and ts5.res == (1920, 1080) and IMAGE_SIZES["TS6"] == (1920, 1080)
    assert ts1.pose3d.shape == (5, 17, 3) and np.all(ts1.pose3d[:, 0] == 0)
    assert ts1.valid.tolist() == [True] * 4 + [False]
    # metres now: the fixture's thigh is 0.43 m
    assert 0.3 < np.linalg.norm(ts1.pose3d[0, 2] - ts1.pose3d[0, 1]) < 0.6
    assert 3.5 < ts1.root[0, 2] < 4.5
    raw = np.load(FIX / "tiny_3dhp_test.npz", allow_pickle=True)["data"].item()["TS1"]
    np.testing.assert_allclose(ts1.root, raw["data_3d"][:, 14] / 1000.0, rtol=1e-6)


def test_3dhp_unit_mismatch(tmp_path):
    with pytest.raises(DataError, match="units look like 'mm'") as e:
        load_3dhp_test(FIX / "tiny_3dhp_test.npz", units="m")
    assert "tiny_3dhp_test.npz" in str(e.value) and "data/TS1/data_3d" in str(e.value)
    raw = np.load(FIX / "tiny_3dhp_test.npz", allow_pickle=True)["data"].item()
    metres = {ts: {**d, "data_3d": d["data_3d"] / 1000.0} for ts, d in raw.items()}
    p = save_3dhp_test(tmp_path / "m.npz", metres)
    assert load_3dhp_test(p, units="m")["TS1"].pose3d.shape == (5, 17, 3)
    with pytest.raises(DataError, match="units look like 'm'"):
        load_3dhp_test(p, units="mm")


def test_3dhp_missing_entry(tmp_path):
    p = save_3dhp_test(tmp_path / "bad.npz", {"TS1": {"data_3d": np.zeros((2, 17, 3))}})
    with pytest.raises(DataError, match="missing key") as e:
        load_3dhp_test(p)
    assert "data/TS1/data_2d" in str(e.value)


# ----------------------------------------------------------------------------- actions
def test_h36m_action_normalisation():
    assert len(H36M_ACTIONS) == 15
    assert normalize_h36m_action("TakingPhoto") == "Photo"
    assert normalize_h36m_action("TakingPhoto 1") == "Photo"
    assert normalize_h36m_action("WalkingDog 1") == "WalkDog"
    assert normalize_h36m_action("Walking 1") == "Walking"
    assert normalize_h36m_action("WalkTogether") == "WalkTogether"
    assert normalize_h36m_action("SittingDown 2") == "SittingDown"
    with pytest.raises(KeyError, match="Dancing"):
        normalize_h36m_action("Dancing")


def test_generic_groups():
    assert action_group("walk 003.2") == "walk"
    assert action_group("walk-turn-left 001") == "walk-turn-left"
    groups = group_actions(["walk 001", "run 002", "walk 003.2"])
    assert groups == {"walk": ["walk 001", "walk 003.2"], "run": ["run 002"]}
    assert group_actions(["Walking 1", "Walking", "TakingPhoto"], h36m=True) == {
        "Walking": ["Walking 1", "Walking"], "Photo": ["TakingPhoto"]}
