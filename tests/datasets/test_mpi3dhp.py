"""MPI-INF-3DHP test npz: joint mapping by name, loading, unit and entry checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffpose_viz.datasets import MPI3DHP17_NAMES, MPI3DHP17_TO_H36M17, load_3dhp_test
from diffpose_viz.datasets.mpi3dhp import IMAGE_SIZES, save_3dhp_test
from diffpose_viz.errors import DataError
from diffpose_viz.skeleton import H36M17


FIX = Path(__file__).resolve().parents[1] / "fixtures"


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
