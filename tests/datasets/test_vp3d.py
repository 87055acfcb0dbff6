"""VideoPose3D npz loaders/writers: layout, cameras, and every error case."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from diffpose_viz.camera import h36m_cameras
from diffpose_viz.datasets import build_pose_set, load_2d, load_3d, save_2d, save_3d
from diffpose_viz.datasets.vp3d import Mocap3D, atomic_savez, wrap_object
from diffpose_viz.errors import DataError
from diffpose_viz.skeleton import H36M32_TO_17

FIX = Path(__file__).resolve().parents[1] / "fixtures"
BANDAI = Path(os.environ.get("DIFFPOSE_VIZ_BANDAI", Path(__file__).resolve().parents[2].parent / "shared/data/bandai17"))


def test_load_32_joint_file_reduces_to_17_and_uses_builtin_cameras():
    m = load_3d(FIX / "tiny_3d_h36m32.npz")
    assert m.subjects == ["S1", "S9"]
    seq = m.sequence("S1", "Walking 1")
    assert seq.shape == (6, 17, 3) and seq.dtype == np.float32
    raw = np.load(FIX / "tiny_3d_h36m32.npz", allow_pickle=True)["positions_3d"].item()["S1"]["Walking 1"]
    np.testing.assert_array_equal(seq, raw[:, H36M32_TO_17])
    assert m.cameras["S9"] == h36m_cameras("S9")
    assert m.fps == 50.0


def test_file_cameras_override_and_metadata():
    m = load_3d(FIX / "tiny_3d_17.npz")
    assert [c.id for c in m.cameras_for("alpha")] == ["front", "side"]
    assert m.fps == 30.0 and m.metadata["note"] == "synthetic fixture"
    assert m.num_frames() == 3 * (8 + 6 + 7) and m.num_sequences() == 9


def test_save_load_round_trip_is_atomic(tmp_path):
    m = load_3d(FIX / "tiny_3d_17.npz")
    out = save_3d(tmp_path / "copy.npz", m.positions, cameras=m.cameras, metadata=m.metadata)
    assert sorted(os.listdir(tmp_path)) == ["copy.npz"]  # no temp file left behind
    m2 = load_3d(out)
    np.testing.assert_array_equal(m2.sequence("beta", "wave 002.2"), m.sequence("beta", "wave 002.2"))
    assert m2.cameras == m.cameras


def _write(path, **objects):
    atomic_savez(path, **{k: wrap_object(v) for k, v in objects.items()})
    return path


def _good(n=5):
    return np.load(FIX / "tiny_3d_17.npz", allow_pickle=True)["positions_3d"].item()["alpha"]["walk 001"][:n]


def assert_names(err: pytest.ExceptionInfo, path: Path, key: str):
    msg = str(err.value)
    assert str(path) in msg and key in msg, msg


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_3d(tmp_path / "nope.npz")


def test_not_an_npz(tmp_path):
    p = tmp_path / "text.npz"
    p.write_text("hello, I am not numpy")
    with pytest.raises(DataError) as e:
        load_3d(p)
    assert str(p) in str(e.value)


def test_plain_npy_is_not_an_npz(tmp_path):
    p = tmp_path / "plain.npz"
    with open(p, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(DataError, match="not an npz"):
        load_3d(p)


def test_corrupt_npz(tmp_path):
    good = (FIX / "tiny_3d_17.npz").read_bytes()
    p = tmp_path / "cut.npz"
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError) as e:
        load_3d(p)
    assert str(p) in str(e.value)


def test_non_pickled_entry(tmp_path):
    p = tmp_path / "flat.npz"
    np.savez(p, positions_3d=np.zeros((4, 17, 3)))
    with pytest.raises(DataError, match="pickled dict") as e:
        load_3d(p)
    assert_names(e, p, "positions_3d")


def test_missing_key(tmp_path):
    p = _write(tmp_path / "nokey.npz", poses={"S1": {}})
    with pytest.raises(DataError, match="missing key") as e:
        load_3d(p)
    assert_names(e, p, "positions_3d")


def test_wrong_joint_count(tmp_path):
    p = _write(tmp_path / "j.npz", positions_3d={"A": {"act": np.zeros((4, 16, 3))}})
    with pytest.raises(DataError, match=r"\(4, 16, 3\)") as e:
        load_3d(p)
    assert_names(e, p, "positions_3d/A/act")


def test_wrong_last_dim(tmp_path):
    p = _write(tmp_path / "d.npz", positions_3d={"A": {"act": np.zeros((4, 17, 2))}})
    with pytest.raises(DataError, match="last dimension") as e:
        load_3d(p)
    assert_names(e, p, "positions_3d/A/act")


def test_nan_in_3d(tmp_path):
    bad = _good().copy()
    bad[2, 5, 1] = np.nan
    p = _write(tmp_path / "nan.npz", positions_3d={"A": {"act": bad}})
    with pytest.raises(DataError, match="frame 2, joint 5") as e:
        load_3d(p)
    assert_names(e, p, "positions_3d/A/act")


def test_millimetres_detected(tmp_path):
    p = _write(tmp_path / "mm.npz", positions_3d={"A": {"act": _good() * 1000}})
    with pytest.raises(DataError, match="looks like millimetres, expected metres") as e:
        load_3d(p)
    assert_names(e, p, "positions_3d/A")


def test_unknown_subject_and_action():
    p = FIX / "tiny_3d_17.npz"
    with pytest.raises(DataError, match="unknown subject 'zeta'") as e:
        load_3d(p, subjects=["zeta"])
    assert_names(e, p, "positions_3d")
    m = load_3d(p)
    with pytest.raises(DataError, match="unknown action 'fly'") as e:
        m.sequence("alpha", "fly")
    assert_names(e, p, "positions_3d")
    with pytest.raises(DataError, match="unknown subject"):
        m.actions("zeta")


def test_no_cameras_for_custom_subject(tmp_path):
    p = save_3d(tmp_path / "nocam.npz", {"custom": {"a": _good()}})
    m = load_3d(p)
    with pytest.raises(DataError, match="no cameras") as e:
        m.cameras_for("custom")
    assert_names(e, p, "cameras")


# ----------------------------------------------------------------------------- 2D
def test_load_2d_keeps_nan_and_metadata():
    k = load_2d(FIX / "tiny_2d.npz")
    views = k["alpha"]["wave 002.1"]
    assert len(views) == 2 and views[0].shape == (6, 17, 2)
    assert np.isnan(views[0][2, 13]).all() and np.isfinite(views[1]).all()
    assert k.metadata["num_joints"] == 17


def test_2d_wrong_shape_and_missing_key(tmp_path):
    p = _write(tmp_path / "bad2d.npz", positions_2d={"A": {"act": [np.zeros((4, 17, 3))]}})
    with pytest.raises(DataError, match="last dimension") as e:
        load_2d(p)
    assert_names(e, p, "positions_2d/A/act[0]")
    with pytest.raises(DataError, match="missing key") as e:
        load_2d(p, key="positions_2d_vp3d")
    assert_names(e, p, "positions_2d_vp3d")


def test_save_2d_round_trip(tmp_path):
    k = load_2d(FIX / "tiny_2d.npz")
    p = save_2d(tmp_path / "2d.npz", k.positions)
    k2 = load_2d(p)
    np.testing.assert_array_equal(k2["beta"]["walk 001"][1], k["beta"]["walk 001"][1])


def test_2d_longer_is_trimmed_shorter_is_error(tmp_path):
    m = load_3d(FIX / "tiny_3d_17.npz")
    k = load_2d(FIX / "tiny_2d.npz")
    assert len(k["beta"]["walk 001"][0]) == len(m.sequence("beta", "walk 001")) + 2
    ps = build_pose_set(m, ["beta"], poses_2d=k)
    assert len(ps) == 2 * (8 + 6 + 7)
    # the given 2D equals the projection here, so the trimmed rows must match it
    proj = build_pose_set(m, ["beta"])
    np.testing.assert_allclose(ps.pose2d, proj.pose2d, atol=1e-3)

    short = {s: {a: [v[:-1] for v in views] for a, views in acts.items()} for s, acts in k.positions.items()}
    p = save_2d(tmp_path / "short.npz", short)
    with pytest.raises(DataError, match="shorter") as e:
        build_pose_set(m, ["alpha"], poses_2d=load_2d(p))
    assert_names(e, p, "positions_2d/alpha/walk 001[0]")


def test_missing_2d_joints_stay_nan_in_pose_set():
    m = load_3d(FIX / "tiny_3d_17.npz")
    ps = build_pose_set(m, ["alpha"], cameras=["front"], poses_2d=load_2d(FIX / "tiny_2d.npz"))
    row = np.flatnonzero((ps.action == "wave 002.1") & (ps.frame == 2))
    assert len(row) == 1 and np.isnan(ps.pose2d[row[0], 13]).all()
    assert np.isfinite(ps.pose3d).all()


# ----------------------------------------------------------------------------- bandai
@pytest.mark.skipif(not BANDAI.exists(), reason="../shared/data/bandai17 not available on this machine")
@pytest.mark.parametrize("key,order", [("positions_2d", "h36m"), ("positions_2d_vp3d", "vp3d")])
def test_bandai_projection_reproduces_the_2d_sample(key, order):
    full = load_3d(BANDAI / "data_3d_bandai17.npz", subjects=["normal"])
    sample = load_2d(BANDAI / "data_2d_bandai17_gt_sample.npz", key=key)
    actions = list(sample["normal"])
    m = Mocap3D(positions={"normal": {a: full.sequence("normal", a) for a in actions}},
                cameras=full.cameras, path=full.path)
    ps = build_pose_set(m, ["normal"], tangential_order=order)
    for ci, cam in enumerate(m.cameras_for("normal")):
        for a in actions:
            got = ps.pose2d[(ps.action == a) & (ps.camera == cam.id)]
            want = sample["normal"][a][ci]
            assert np.abs(got - want).max() < 1e-3, (a, cam.id, np.abs(got - want).max())


def test_millimetre_camera_translations_are_converted(tmp_path):
    cams = [c.to_dict() for c in h36m_cameras("S1")]
    for c in cams:
        c["translation"] = [v * 1000 for v in c["translation"]]  # VideoPose3D stores mm
    p = save_3d(tmp_path / "mmcam.npz", {"A": {"act": _good()}}, cameras={"A": cams})
    assert load_3d(p).cameras_for("A") == h36m_cameras("S1")
