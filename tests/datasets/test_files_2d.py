"""2D keypoint / GMM files attached to PoseSet rows (`datasets.files_2d`), on the Human3.6M-layout fixtures
of tests/fixtures/h36m_layout.py (invented poses, real file layouts and cameras)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from diffpose_viz.camera import h36m_cameras
from diffpose_viz.datasets.actions import group_actions
from diffpose_viz.datasets.files_2d import (
    H36M_CAMERA_ORDER,
    attach_2d,
    drop_damaged_sequences,
    read_2d_file,
)
from diffpose_viz.datasets.mpi3dhp import load_3dhp_test
from diffpose_viz.datasets.poses import build_pose_set
from diffpose_viz.datasets.vp3d import load_3d
from diffpose_viz.errors import DataError
from diffpose_viz.skeleton import COCO17_NAMES, H36M17, H36M32_TO_17

_spec = importlib.util.spec_from_file_location("h36m_layout", Path(__file__).resolve().parents[1] / "fixtures" / "h36m_layout.py")
L = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(L)


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> dict[str, Path]:
    """Every fixture file, written once into a temporary folder."""
    return L.build_h36m_layout(tmp_path_factory.mktemp("h36m_layout"))


@pytest.fixture(scope="module")
def mocap(layout):
    return load_3d(layout["3d"])


@pytest.fixture(scope="module")
def poses(mocap):
    return build_pose_set(mocap, list(mocap.subjects))


def assert_one_line(err: DataError, path: Path, key: str, *parts: str) -> None:
    msg = str(err)
    assert "\n" not in msg
    assert str(path) in msg and key in msg, msg
    assert "expected" in msg and "found" in msg, msg
    for p in parts:
        assert p in msg, f"{p!r} not in {msg!r}"


def _rows(poses, keep, subject, action, camera_index):
    cam_id = H36M_CAMERA_ORDER[camera_index]
    ids = np.array([poses.cameras[str(k)].id for k in poses.camera])
    return keep & (poses.subject == subject) & (poses.action == action) & (ids == cam_id)


# --------------------------------------------------------------------------- layout
def test_32_to_17_mapping_and_fixture_layout(layout, mocap):
    raw = np.load(layout["3d"], allow_pickle=True)["positions_3d"].item()  # test-made file
    assert sorted(raw) == sorted(L.SUBJECTS)
    seq32 = raw["S9"]["Walking"]
    assert seq32.shape[1:] == (32, 3) and seq32.dtype == np.float32
    np.testing.assert_array_equal(mocap.sequence("S9", "Walking"), seq32[:, H36M32_TO_17])
    np.testing.assert_allclose(mocap.sequence("S9", "Walking"), L.body_motion("Walking", 14, seed=100 * 5 + 2))
    assert "Directions" in raw["S11"] and "Directions" not in raw["S9"]
    bones = H36M17.bone_lengths(mocap.sequence("S1", "Sitting 1"))
    assert 0.05 < np.median(bones) < 0.5  # metres
    meta = np.load(layout["cpn"], allow_pickle=True)["metadata"].item()
    assert meta == L.CPN_METADATA
    assert read_2d_file(layout["gt"]).layout == "h36m"  # GT metadata: symmetry only, no layout_name


def test_3dhp_fixture_reads_in_millimetres(layout):
    seqs = load_3dhp_test(layout["3dhp"], units="mm")
    assert sorted(seqs) == [f"TS{i}" for i in range(1, 7)]
    assert seqs["TS5"].res == (1920, 1080) and seqs["TS1"].res == (2048, 2048)
    ts1 = seqs["TS1"]
    assert ts1.valid.dtype == bool and 0 < ts1.valid.sum() < len(ts1.valid)
    np.testing.assert_allclose(ts1.pose3d[:, 0], 0.0, atol=1e-6)  # root (pelvis) first after reordering
    assert 0.05 < np.median(H36M17.bone_lengths(ts1.pose3d)) < 0.5


# --------------------------------------------------------------------------- camera order, projections
def test_gt_file_matches_projection_in_camera_order(layout, mocap, poses):
    res = attach_2d(poses, layout["gt"], mocap=mocap)
    kept = poses.subset(res.keep)
    assert res.kind == "keypoints" and res.modes is None
    assert res.keypoints.shape == (len(kept), 17, 2) and res.keypoints.dtype == np.float32
    # The file uses VideoPose3D's tangential order, the PoseSet the toolbox order: about a pixel apart at most.
    err = np.abs(res.keypoints - kept.pose2d)
    assert err.max() < 1.5 and err.mean() < 0.3
    assert not res.has_confidence and (res.confidence == 1).all()
    assert json.loads(json.dumps(res.metadata()))["has_confidence"] is False

    # The list index is the camera: permuting the lists moves every row far away.
    raw = L.projections(L.h36m_positions())
    rolled = {s: {a: cams[1:] + cams[:1] for a, cams in acts.items()} for s, acts in raw.items()}
    p = L.write_2d(layout["gt"].parent / "rolled.npz", rolled, L.GT_METADATA)
    wrong = attach_2d(poses, p, mocap=mocap)
    assert np.nanmean(np.abs(wrong.keypoints - kept.pose2d)) > 50


def test_without_mocap_uses_h36m_camera_order(layout, mocap, poses):
    a = attach_2d(poses, layout["gt"], mocap=mocap)
    b = attach_2d(poses, layout["gt"])
    np.testing.assert_array_equal(a.keep, b.keep)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    assert [c.id for c in h36m_cameras("S9")] == list(H36M_CAMERA_ORDER)


def test_row_order_follows_the_pose_set(layout, mocap, poses):
    res = attach_2d(poses, layout["gt"], mocap=mocap)
    kept = poses.subset(res.keep)
    perm = np.random.default_rng(0).permutation(len(kept))
    shuffled = attach_2d(kept.subset(perm), layout["gt"], mocap=mocap)
    np.testing.assert_array_equal(shuffled.keypoints, res.keypoints[perm])


# --------------------------------------------------------------------------- trimming, the damaged sequence
def test_longer_2d_is_trimmed_at_its_end(layout, mocap, poses):
    res = attach_2d(poses, layout["cpn"], mocap=mocap)
    assert set(res.trimmed) == {f"positions_2d[S9][Walking][{c}]" for c in range(4)}
    kept = poses.subset(res.keep)
    rows = (kept.subject == "S9") & (kept.action == "Walking")
    assert rows.sum() == 4 * 14
    # Trimmed at the end: frame t of the 2D is frame t of the mocap (CPN-like noise is 3 px per axis).
    diff = res.keypoints[rows] - kept.pose2d[rows]
    assert np.abs(diff.mean()) < 1.0 and 2.0 < diff.std() < 4.0
    last = rows & (kept.frame == 13)
    assert np.abs(res.keypoints[last] - kept.pose2d[last]).mean() < 6.0


def test_shorter_2d_is_an_error_or_trims_the_3d(layout, mocap, poses, tmp_path):
    raw = L.cpn_like(L.h36m_positions())
    raw["S9"]["Walking"][1] = raw["S9"]["Walking"][1][:10]
    p = L.write_2d(tmp_path / "short.npz", raw)
    with pytest.raises(DataError, match="shorter") as e:
        attach_2d(poses, p, mocap=mocap)
    assert_one_line(e.value, p, "positions_2d[S9][Walking][1]", ">= 14 frames", "10 frames")

    res = attach_2d(poses, p, mocap=mocap, short_2d="trim_3d")
    assert res.dropped_3d_frames == {"positions_2d[S9][Walking][1]": 4}
    cam1 = _rows(poses, np.ones(len(poses), bool), "S9", "Walking", 1)
    assert (~res.keep[cam1] == (poses.frame[cam1] >= 10)).all()
    cam0 = _rows(poses, np.ones(len(poses), bool), "S9", "Walking", 0)
    assert res.keep[cam0].all()
    assert len(res) == res.keep.sum()


def test_s11_directions_is_skipped_like_videopose3d(layout, mocap, poses):
    res = attach_2d(poses, layout["cpn"], mocap=mocap)
    damaged = (poses.subject == "S11") & (poses.action == "Directions")
    assert damaged.sum() == 4 * 10
    assert res.skipped == ("S11/Directions",)
    np.testing.assert_array_equal(res.keep, ~damaged)
    assert res.metadata()["skipped_sequences"] == ["S11/Directions"]
    # Its camera-0 array is truncated in the file (the corrupted video): reading it is an error.
    with pytest.raises(DataError, match="shorter") as e:
        attach_2d(poses, layout["cpn"], mocap=mocap, skip_damaged=False)
    assert_one_line(e.value, layout["cpn"], "positions_2d[S11][Directions][0]")
    # Dropping it from the mocap first leaves nothing to skip.
    clean, dropped = drop_damaged_sequences(mocap)
    assert dropped == ["S11/Directions"] and "Directions" not in clean.actions("S11")
    res2 = attach_2d(build_pose_set(clean, clean.subjects), layout["cpn"], mocap=clean)
    assert res2.skipped == () and res2.keep.all() and len(res2) == len(res)


# --------------------------------------------------------------------------- actions
def test_action_aliases_and_grouping(layout, mocap, poses, tmp_path):
    raw = L.cpn_like(L.h36m_positions())
    for s in raw:  # the raw Human3.6M spellings
        if "Photo" in raw[s]:
            raw[s]["TakingPhoto"] = raw[s].pop("Photo")
        if "WalkDog" in raw[s]:
            raw[s]["WalkingDog"] = raw[s].pop("WalkDog")
    p = L.write_2d(tmp_path / "aliases.npz", raw)
    res = attach_2d(poses, p, mocap=mocap)
    ref = attach_2d(poses, layout["cpn"], mocap=mocap)
    np.testing.assert_array_equal(res.keypoints, ref.keypoints)
    kept = poses.subset(res.keep)
    groups = group_actions(np.unique(kept.action).tolist(), h36m=True)
    assert groups["Directions"] == ["Directions 1"] and groups["Photo"] == ["Photo"]
    assert set(groups) == {"Directions", "Discussion", "Walking", "WalkDog", "Sitting", "Photo"}
    groups_all = group_actions(np.unique(poses.action).tolist(), h36m=True)
    assert sorted(groups_all["Directions"]) == ["Directions", "Directions 1"]


# --------------------------------------------------------------------------- confidence, layouts
def test_score_channel_sets_confidence(layout, mocap, poses, tmp_path):
    raw = L.projections(L.h36m_positions())
    rng = np.random.default_rng(0)
    with_score = {s: {a: [np.concatenate([c, rng.uniform(0.2, 1.0, c.shape[:2] + (1,)).astype(np.float32)], -1)
                          for c in cams] for a, cams in acts.items()} for s, acts in raw.items()}
    with_score["S1"]["Walking"][2][5, 7, :2] = np.nan  # a missing joint
    p = L.write_2d(tmp_path / "scores.npz", with_score, L.GT_METADATA)
    res = attach_2d(poses, p, mocap=mocap)
    assert res.has_confidence and res.metadata()["has_confidence"] is True
    kept = poses.subset(res.keep)
    row = np.flatnonzero(_rows(kept, np.ones(len(kept), bool), "S5", "Sitting 1", 3) & (kept.frame == 4))[0]
    np.testing.assert_allclose(res.confidence[row], with_score["S5"]["Sitting 1"][3][4, :, 2])
    miss = np.flatnonzero(_rows(kept, np.ones(len(kept), bool), "S1", "Walking", 2) & (kept.frame == 5))[0]
    assert np.isnan(res.keypoints[miss, 7]).all() and res.confidence[miss, 7] == 0

    bad = {s: {a: [c.copy() for c in cams] for a, cams in acts.items()} for s, acts in with_score.items()}
    bad["S1"]["Walking"][0][:, :, 2] = 3.0
    p = L.write_2d(tmp_path / "bad_scores.npz", bad, L.GT_METADATA)
    with pytest.raises(DataError, match=r"score channel outside \[0, 1\]") as e:
        attach_2d(poses, p, mocap=mocap)
    assert_one_line(e.value, p, "positions_2d[S1][Walking][0]")


def test_coco_layout_is_mapped_to_h36m(layout, mocap, poses, tmp_path):
    raw = L.projections(L.h36m_positions())
    h36m_index = {"nose": 9, "left_eye": 10, "right_eye": 10, "left_ear": 10, "right_ear": 10}
    for j, name in enumerate(H36M17.joint_names):
        h36m_index.setdefault(name, j)
    src = [h36m_index[n] for n in COCO17_NAMES]
    coco = {s: {a: [c[:, src] for c in cams] for a, cams in acts.items()} for s, acts in raw.items()}
    meta = {"layout_name": "coco", "num_joints": 17,
            "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]]}
    res = attach_2d(poses, L.write_2d(tmp_path / "coco.npz", coco, meta), mocap=mocap)
    ref = attach_2d(poses, layout["gt"], mocap=mocap)
    assert res.layout == "coco"
    same = [1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16]  # limbs map one to one
    np.testing.assert_allclose(res.keypoints[:, same], ref.keypoints[:, same], atol=1e-4)
    np.testing.assert_allclose(res.keypoints[:, 0], ref.keypoints[:, [1, 4]].mean(1), atol=1e-3)


# --------------------------------------------------------------------------- GMM files
def test_gmm_modes_in_pixels(layout, mocap, poses):
    res = attach_2d(poses, layout["gmm"], mocap=mocap)
    kept = poses.subset(res.keep)
    assert res.kind == "gmm" and res.gmm_units == "px" and not res.has_confidence
    assert res.modes.shape == (len(kept), 17, 3, 5) and res.modes.dtype == np.float32
    np.testing.assert_allclose(res.modes[..., 0], np.broadcast_to([0.8, 0.15, 0.05], res.modes.shape[:3]), atol=1e-6)
    np.testing.assert_array_equal(res.keypoints, res.modes[:, :, 0, 1:3])  # dominant kernel
    assert np.abs(res.keypoints - kept.pose2d).mean() < 2.0  # 1 px noise in the fixture
    np.testing.assert_allclose(res.modes[:, :, 1, 1:3] - res.modes[:, :, 0, 1:3], np.broadcast_to([6.0, 0.0],
                               res.modes.shape[:2] + (2,)), atol=1e-3)
    np.testing.assert_allclose(res.modes[:, :, :, 3], np.broadcast_to([3.0, 6.0, 12.0], res.modes.shape[:3]))


def test_normalised_gmm_means_are_converted_like_the_official_loader(layout, mocap, poses):
    px = attach_2d(poses, layout["gmm"], mocap=mocap)
    norm = attach_2d(poses, layout["gmm_normalized"], mocap=mocap, gmm_spread_units="normalized")
    assert norm.gmm_units == "normalized" and norm.gmm_spread_units == "normalized"
    # Cameras 0 and 3 are 1000 x 1002: the h/w term of the screen normalisation is exercised.
    np.testing.assert_allclose(norm.modes, px.modes, atol=2e-3)
    with pytest.raises(DataError, match="screen-normalised"):
        attach_2d(poses, layout["gmm_normalized"], mocap=mocap, gmm_units="px")


def test_gmm_weights_must_sum_to_one(mocap, poses, tmp_path):
    raw = L.gmm_like(L.h36m_positions(), weights=(0.8, 0.1, 0.05))
    p = L.write_2d(tmp_path / "bad_gmm.npz", raw)
    with pytest.raises(DataError, match="sum to 1") as e:
        attach_2d(poses, p, mocap=mocap)
    assert_one_line(e.value, p, "positions_2d[S1][Directions 1][0]", "0.001", "0.05")


# --------------------------------------------------------------------------- files that do not match
def _mutated(tmp_path, name, change):
    raw = L.cpn_like(L.h36m_positions())
    change(raw)
    return L.write_2d(tmp_path / name, raw)


def test_other_subject_set(mocap, poses, tmp_path):
    p = _mutated(tmp_path, "no_s9.npz", lambda r: r.pop("S9"))
    with pytest.raises(DataError, match="subject missing") as e:
        attach_2d(poses, p, mocap=mocap)
    assert_one_line(e.value, p, "positions_2d[S9]", "subject 'S9'", "'S11'")


def test_other_action(mocap, poses, tmp_path):
    p = _mutated(tmp_path, "other_action.npz", lambda r: r["S5"].__setitem__("Sitting 2", r["S5"].pop("Sitting 1")))
    with pytest.raises(DataError, match="action missing") as e:
        attach_2d(poses, p, mocap=mocap)
    assert_one_line(e.value, p, "positions_2d[S5][Sitting 1]", "'Sitting 1'", "Sitting 2")


def test_three_cameras_instead_of_four(mocap, poses, tmp_path):
    p = _mutated(tmp_path, "three_cams.npz", lambda r: r["S1"]["Walking"].pop())
    with pytest.raises(DataError, match="camera count") as e:
        attach_2d(poses, p, mocap=mocap)
    assert_one_line(e.value, p, "positions_2d[S1][Walking]", "4 camera arrays", "3 arrays")


def test_wrong_array_shape_and_layout(mocap, poses, tmp_path):
    p = _mutated(tmp_path, "joints.npz", lambda r: r["S6"]["WalkDog"].__setitem__(2, r["S6"]["WalkDog"][2][:, :16]))
    with pytest.raises(DataError, match="wrong shape") as e:
        attach_2d(poses, p, mocap=mocap)
    assert_one_line(e.value, p, "positions_2d[S6][WalkDog][2]", "(T, 17, 2)", "(11, 16, 2)")
    raw = L.cpn_like(L.h36m_positions())
    p = L.write_2d(tmp_path / "mpii.npz", raw, {"layout_name": "mpii", "num_joints": 17})
    with pytest.raises(DataError, match="layout") as e:
        attach_2d(poses, p, mocap=mocap)
    assert_one_line(e.value, p, "metadata['layout_name']", "'h36m' or 'coco'", "'mpii'")
