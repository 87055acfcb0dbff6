"""Skeleton metadata and keypoint mappings into Human3.6M-17."""
import numpy as np
import pytest

from diffpose_viz import skeleton as S
from diffpose_viz.skeleton import H36M17


def test_h36m17_metadata_matches_field_conventions():
    assert H36M17.num_joints == 17
    assert list(H36M17.parents) == [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]
    assert list(H36M17.left) == [4, 5, 6, 11, 12, 13]
    assert list(H36M17.right) == [1, 2, 3, 14, 15, 16]
    assert list(S.H36M32_TO_17) == [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
    assert len(H36M17.bones) == 16
    for j in H36M17.left:
        assert H36M17.joint_names[j].startswith("left_")
    for j in H36M17.right:
        assert H36M17.joint_names[j].startswith("right_")
    assert H36M17.index("thorax") == 8
    with pytest.raises(KeyError, match="no joint"):
        H36M17.index("tail")


def test_pck14_excludes_pelvis_spine_and_head():
    excluded = set(range(17)) - set(S.PCK14_JOINTS.tolist())
    assert len(S.PCK14_JOINTS) == 14
    assert {H36M17.joint_names[j] for j in excluded} == {"pelvis", "spine", "neck_nose"}


def test_flip_permutation_is_an_involution_swapping_sides():
    perm = H36M17.flip_permutation
    np.testing.assert_array_equal(perm[perm], np.arange(17))
    np.testing.assert_array_equal(perm[list(H36M17.left)], H36M17.right)
    for j in (0, 7, 8, 9, 10):
        assert perm[j] == j
    names = [H36M17.joint_names[p] for p in perm]
    for j, name in enumerate(H36M17.joint_names):
        assert names[j] == name.replace("left_", "TMP_").replace("right_", "left_").replace("TMP_", "right_")


def test_adjacency_and_bone_lengths():
    a = H36M17.adjacency()
    np.testing.assert_array_equal(a, a.T)
    assert a.sum() == 2 * 16
    assert np.trace(H36M17.adjacency(self_loops=True)) == 17
    pose = np.zeros((17, 3))
    pose[1] = [0.3, 0.4, 0.0]  # pelvis->right hip has length 0.5
    lengths = H36M17.bone_lengths(pose)
    assert lengths.shape == (16,) and lengths[0] == pytest.approx(0.5)


def test_skeleton_rejects_parents_after_children():
    with pytest.raises(ValueError, match="parents must precede"):
        S.Skeleton(name="bad", joint_names=("a", "b"), parents=(1, -1), left=(), right=())


def _random_source(names, seed=0):
    return np.random.default_rng(seed).normal(size=(3, len(names), 2))


def test_coco17_mapping_by_construction():
    kp = _random_source(S.COCO17_NAMES)
    src = {n: kp[:, i] for i, n in enumerate(S.COCO17_NAMES)}
    out, conf = S.coco17_to_h36m17(kp)
    assert out.shape == (3, 17, 2)
    j = {n: out[:, i] for i, n in enumerate(H36M17.joint_names)}
    np.testing.assert_allclose(j["pelvis"], (src["left_hip"] + src["right_hip"]) / 2)
    np.testing.assert_allclose(j["thorax"], (src["left_shoulder"] + src["right_shoulder"]) / 2)
    np.testing.assert_allclose(j["spine"], (j["pelvis"] + j["thorax"]) / 2)
    np.testing.assert_allclose(j["neck_nose"], src["nose"])
    np.testing.assert_allclose(j["head_top"], (src["left_eye"] + src["right_eye"]) / 2)
    for name in ("left_hip", "right_knee", "left_ankle", "right_shoulder", "left_elbow", "right_wrist"):
        np.testing.assert_allclose(j[name], src[name])
    np.testing.assert_array_equal(conf, 1.0)


def test_blazepose33_mapping_head_from_ears():
    kp = _random_source(S.BLAZEPOSE33_NAMES, seed=1)
    src = {n: kp[:, i] for i, n in enumerate(S.BLAZEPOSE33_NAMES)}
    out, conf = S.blazepose33_to_h36m17(kp)
    j = {n: out[:, i] for i, n in enumerate(H36M17.joint_names)}
    np.testing.assert_allclose(j["head_top"], (src["left_ear"] + src["right_ear"]) / 2)
    np.testing.assert_allclose(j["pelvis"], (src["left_hip"] + src["right_hip"]) / 2)
    np.testing.assert_allclose(j["thorax"], (src["left_shoulder"] + src["right_shoulder"]) / 2)
    np.testing.assert_allclose(j["spine"], (j["pelvis"] + j["thorax"]) / 2)
    np.testing.assert_allclose(j["left_wrist"], src["left_wrist"])
    np.testing.assert_array_equal(conf, 1.0)


def test_missing_source_joint_propagates_to_nan_and_zero_confidence():
    kp = _random_source(S.COCO17_NAMES, seed=2)
    kp[1, S.COCO17_NAMES.index("left_hip")] = np.nan
    out, conf = S.coco17_to_h36m17(kp)
    affected = [H36M17.index(n) for n in ("pelvis", "left_hip", "spine")]
    assert np.isnan(out[1, affected]).all() and np.all(conf[1, affected] == 0)
    others = np.setdiff1d(np.arange(17), affected)
    assert np.isfinite(out[1, others]).all() and np.all(conf[1, others] == 1)
    assert np.isfinite(out[[0, 2]]).all()


def test_given_confidence_is_the_minimum_over_sources():
    kp = _random_source(S.COCO17_NAMES, seed=3)
    conf_in = np.ones((3, 17))
    conf_in[:, S.COCO17_NAMES.index("right_shoulder")] = 0.3
    _, conf = S.coco17_to_h36m17(kp, conf_in)
    for name in ("thorax", "spine", "right_shoulder"):
        np.testing.assert_allclose(conf[:, H36M17.index(name)], 0.3)
    np.testing.assert_allclose(conf[:, H36M17.index("pelvis")], 1.0)


def test_wrong_source_joint_count_raises():
    with pytest.raises(ValueError, match="expected 17 source joints"):
        S.coco17_to_h36m17(np.zeros((2, 33, 2)))
