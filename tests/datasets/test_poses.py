"""PoseSet construction, caching and splits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffpose_viz.datasets import PoseSet, build_pose_set, load_3d, split_by_subject, validation_split
from diffpose_viz.datasets.poses import join_pose_sets
from diffpose_viz.errors import DataError

FIX = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def mocap():
    return load_3d(FIX / "tiny_3d_17.npz")


@pytest.fixture(scope="module")
def poseset(mocap):
    return build_pose_set(mocap, ["alpha", "beta", "gamma"])


def test_shapes_and_root_centring(poseset):
    n = 3 * 2 * (8 + 6 + 7)
    assert len(poseset) == n
    assert poseset.pose3d.shape == (n, 17, 3) and poseset.pose3d.dtype == np.float32
    assert poseset.pose2d.shape == (n, 17, 2) and poseset.root.shape == (n, 3)
    assert np.all(poseset.pose3d[:, 0] == 0)
    assert set(poseset.cameras) == {"front", "side"}  # one shared rig -> plain ids
    np.testing.assert_array_equal(np.unique(poseset.res, axis=0), [[640, 480]])


def test_thin_keeps_evenly_spaced_rows_in_order(poseset):
    assert poseset.thin(None) is poseset and poseset.thin(len(poseset)) is poseset
    thinned = poseset.thin(10)
    assert len(thinned) == 10
    kept = np.linspace(0, len(poseset) - 1, 10).round().astype(int)  # first and last row included
    np.testing.assert_array_equal(thinned.frame, poseset.frame[kept])
    np.testing.assert_array_equal(thinned.subject, poseset.subject[kept])
    assert set(np.unique(thinned.subject)) == {"alpha", "beta", "gamma"}  # every sequence keeps its share


def test_camera_transform_round_trip(mocap, poseset):
    world = poseset.world_pose()
    for i in np.random.default_rng(0).choice(len(poseset), 20, replace=False):
        want = mocap.sequence(poseset.subject[i], poseset.action[i])[poseset.frame[i]]
        np.testing.assert_allclose(world[i], want, atol=1e-5)


def test_camera_frame_is_what_the_camera_sees(mocap, poseset):
    # 'front' sits at y = -4 looking along +y: camera depth = world y + 4, camera x = world x.
    i = np.flatnonzero(poseset.camera == "front")[0]
    w = mocap.sequence(poseset.subject[i], poseset.action[i])[poseset.frame[i]]
    absolute = poseset.pose3d[i] + poseset.root[i]
    np.testing.assert_allclose(absolute[:, 2], w[:, 1] + 4.0, atol=1e-5)
    np.testing.assert_allclose(absolute[:, 0], w[:, 0], atol=1e-5)
    # no distortion on 'front': plain pinhole
    uv = absolute[:, :2] / absolute[:, 2:] * 500.0 + [320.0, 240.0]
    np.testing.assert_allclose(poseset.pose2d[i], uv, atol=1e-3)


def test_camera_selection_stride_and_cap(mocap):
    ps = build_pose_set(mocap, ["alpha"], cameras=[1], frame_stride=2, max_frames_per_sequence=3)
    assert set(ps.camera) == {"side"}
    walk = ps.frame[ps.action == "walk 001"]
    np.testing.assert_array_equal(walk, [0, 4, 6])  # range(0, 8, 2) thinned evenly to 3
    assert len(build_pose_set(mocap, ["alpha"], cameras=["front", "side"])) == 2 * 21
    # A config's short digit strings are list indices (data.cameras: ['1']).
    assert set(build_pose_set(mocap, ["alpha"], cameras=["1"]).camera) == {"side"}
    with pytest.raises(DataError, match="unknown camera 'top'"):
        build_pose_set(mocap, ["alpha"], cameras=["top"])
    with pytest.raises(DataError, match="out of range"):
        build_pose_set(mocap, ["alpha"], cameras=[5])


def test_per_subject_extrinsics_get_distinct_keys():
    m = load_3d(FIX / "tiny_3d_h36m32.npz")
    ps = build_pose_set(m, ["S1", "S9"], cameras=[0])
    assert set(ps.cameras) == {"S1/54138969", "S9/54138969"}
    assert {c.id for c in ps.cameras.values()} == {"54138969"}
    np.testing.assert_allclose(ps.world_pose()[0], m.sequence(ps.subject[0], ps.action[0])[ps.frame[0]], atol=1e-5)


def test_subset_and_save_load(tmp_path, poseset):
    sub = poseset.subset(poseset.camera == "side")
    assert len(sub) == len(poseset) // 2 and set(sub.cameras) == {"side"}
    sub2 = poseset.subset(np.arange(5))
    assert len(sub2) == 5
    path = poseset.save_npz(tmp_path / "cache.npz")
    back = PoseSet.load_npz(path)
    for name in ("pose3d", "root", "pose2d", "subject", "action", "camera", "frame", "res"):
        np.testing.assert_array_equal(getattr(back, name), getattr(poseset, name))
    assert back.cameras == poseset.cameras
    with np.load(path, allow_pickle=False) as z:  # the cache needs no pickle
        assert "pose3d" in z.files
    with pytest.raises(DataError, match="not a PoseSet cache"):
        PoseSet.load_npz(FIX / "tiny_3d_17.npz")


def test_concatenate_rejects_conflicting_cameras(poseset):
    import dataclasses
    other = poseset.subset(np.arange(3))
    other.cameras = {k: dataclasses.replace(c, focal=(1.0, 1.0)) for k, c in other.cameras.items()}
    with pytest.raises(ValueError, match="different calibrations"):
        join_pose_sets([poseset, other])


def test_split_by_subject(mocap):
    train, test = split_by_subject(mocap, ["alpha", "beta"], ["gamma"])
    assert train.subjects == ["alpha", "beta"] and test.subjects == ["gamma"]
    with pytest.raises(ValueError, match="both"):
        split_by_subject(mocap, ["alpha"], ["alpha"])
    with pytest.raises(DataError, match="unknown subject"):
        split_by_subject(mocap, ["alpha"], ["omega"])


def test_validation_split_is_by_sequence(poseset):
    train, val = validation_split(poseset, 0.3, seed=1)
    assert len(train) + len(val) == len(poseset)
    assert set(train.sequence_key).isdisjoint(set(val.sequence_key))
    assert len(val) >= 0.3 * len(poseset)
    # every camera of a validation sequence goes with it
    for key in set(val.sequence_key):
        assert (poseset.sequence_key == key).sum() == (val.sequence_key == key).sum()
    again, _ = validation_split(poseset, 0.3, seed=1)
    np.testing.assert_array_equal(again.sequence_key, train.sequence_key)
    other, _ = validation_split(poseset, 0.3, seed=2)
    assert set(other.sequence_key) != set(train.sequence_key)
