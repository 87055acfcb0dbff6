"""Simulated 2D detector: error levels, swaps, occlusion, confidence, determinism."""
from dataclasses import replace

import numpy as np
import pytest

from diffpose_viz.detector_sim import NOISE_ONLY as CLEAN  # one effect at a time is switched on below
from diffpose_viz.detector_sim import STANDING_BODY as BODY
from diffpose_viz.detector_sim import SYNTHETIC_CAMERA as CAM
from diffpose_viz.detector_sim import (
    DEFAULT_NOISE_STD_PX,
    DetectorSimConfig,
    Detections2D,
    estimate_focal_px,
    render_heatmaps,
    self_occlusion_mask,
    simulate_detections,
    simulate_from_poseset,
    synthetic_frames,
)
from diffpose_viz.skeleton import H36M17


@pytest.fixture(scope="module")
def frames():
    return synthetic_frames(20_000)


def test_output_contract(frames):
    pose, p2 = frames
    det = simulate_detections(p2[:500], pose[:500], (1000, 1000))
    assert isinstance(det, Detections2D) and len(det) == 500
    assert det.keypoints.shape == (500, 17, 2) and det.keypoints.dtype == np.float32
    assert det.modes.shape == (500, 17, 2, 5) and det.modes.dtype == np.float32
    assert det.confidence.shape == (500, 17) and det.occluded.dtype == bool and det.swapped.dtype == bool
    assert np.all((det.confidence >= 0) & (det.confidence <= 1))
    np.testing.assert_allclose(det.modes[..., 0].sum(-1), 1.0, atol=1e-6)
    # The reported keypoint is the main mode's mean.
    np.testing.assert_array_equal(det.keypoints, det.modes[:, :, 0, 1:3])
    sub = det.subset(np.arange(500) < 10)
    assert len(sub) == 10


def test_error_std_matches_configured_std(frames):
    pose, p2 = frames
    det = simulate_detections(p2, pose, (1000, 1000), CLEAN)
    err = det.keypoints.astype(np.float64) - p2
    std = err.std(axis=0)  # (17, 2)
    expected = np.asarray(DEFAULT_NOISE_STD_PX)[:, None]
    np.testing.assert_allclose(std, np.broadcast_to(expected, std.shape), rtol=0.05)
    assert np.abs(err.mean(0)).max() < 0.2  # unbiased
    # CPN-like mean error on H36M-sized images: 5-10 px.
    assert 5.0 < np.linalg.norm(err, axis=-1).mean() < 10.0


def test_gross_errors_give_heavy_tails(frames):
    pose, p2 = frames
    clean = simulate_detections(p2, pose, (1000, 1000), CLEAN)
    heavy = simulate_detections(p2, pose, (1000, 1000), replace(CLEAN, gross_error_prob=0.02))
    z_clean = np.linalg.norm(clean.keypoints - p2, axis=-1) / np.asarray(DEFAULT_NOISE_STD_PX)
    z_heavy = np.linalg.norm(heavy.keypoints - p2, axis=-1) / np.asarray(DEFAULT_NOISE_STD_PX)
    assert (z_clean > 5).mean() < 0.002
    assert (z_heavy > 5).mean() > 0.01


def test_swaps_happen_at_the_configured_rate_and_make_two_modes(frames):
    pose, p2 = frames
    cfg = replace(CLEAN, swap_prob=0.05)
    det = simulate_detections(p2, pose, (1000, 1000), cfg)
    n = len(p2)
    for l, r in cfg.swap_pairs:
        np.testing.assert_array_equal(det.swapped[:, l], det.swapped[:, r])
        rate = det.swapped[:, l].mean()
        assert abs(rate - 0.05) < 4 * np.sqrt(0.05 * 0.95 / n)
    assert not det.swapped[:, [0, 7, 8, 9, 10]].any()
    rows, joints = np.nonzero(det.swapped)
    partner = np.array(H36M17.flip_permutation)[joints]
    main, second = det.modes[rows, joints, 0], det.modes[rows, joints, 1]
    np.testing.assert_allclose(main[:, 0], 0.7, atol=1e-6)
    np.testing.assert_allclose(second[:, 0], 0.3, atol=1e-6)
    # Main mode near the partner's true position, secondary near the joint's own one.
    near = lambda a, b: np.linalg.norm(a - b, axis=-1) < 40  # noqa: E731
    assert near(main[:, 1:3], p2[rows, partner]).mean() > 0.97
    assert near(second[:, 1:3], p2[rows, joints]).mean() > 0.97
    # Unswapped joints put no weight on the secondary mode.
    assert np.all(det.modes[~det.swapped][:, 1, 0] == 0)
    assert det.confidence[det.swapped].mean() < det.confidence[~det.swapped].mean()


def test_occluded_joints_have_lower_confidence_larger_spread_and_error(frames):
    pose, p2 = frames
    det = simulate_detections(p2, pose, (1000, 1000), replace(CLEAN, occluder_prob=0.5))
    occ = det.occluded
    assert 0.02 < occ.mean() < 0.5
    spread = det.modes[:, :, 0, 3]
    err = np.linalg.norm(det.keypoints - p2, axis=-1)
    assert det.confidence[occ].mean() < 0.5 * det.confidence[~occ].mean()
    assert spread[occ].mean() > 3 * spread[~occ].mean()
    assert err[occ].mean() > 2 * err[~occ].mean()
    # Confidence is a monotone (decreasing) function of the heatmap spread.
    order = np.argsort(spread.ravel())
    assert np.all(np.diff(det.confidence.ravel()[order]) <= 1e-6)


def test_occluded_as_missing_gives_nan_and_zero_confidence(frames):
    pose, p2 = frames
    det = simulate_detections(p2[:2000], pose[:2000], (1000, 1000), replace(CLEAN, occluder_prob=0.5,
                                                                             occluded_as_missing=True))
    occ = det.occluded
    assert occ.any()
    assert np.isnan(det.keypoints[occ]).all() and np.isfinite(det.keypoints[~occ]).all()
    assert np.all(det.confidence[occ] == 0)
    assert np.all(det.modes[occ][..., 0] == 0)


def _frontal(arm_depth_offset: float):
    """One frontal frame with the right forearm folded across the belly, in front (negative offset)
    or behind (positive offset) the torso."""
    pose = BODY.copy()
    pose[15] = [-0.15, -0.20, arm_depth_offset]  # right elbow
    pose[16] = [0.08, -0.22, arm_depth_offset]  # right wrist, past the spine (x = 0)
    pose = pose + np.array([0.0, 0.0, 4.0])
    return pose[None], CAM.project(pose, distort=False)[None]


def test_self_occlusion_marks_a_joint_behind_a_closer_limb():
    pose, p2 = _frontal(-0.25)
    # The forearm (radius 4 cm) crosses x = 0 at y = -0.213 m, 1.7 cm from the spine joint (y = -0.23).
    hidden = self_occlusion_mask(p2, pose, 1145.0)
    assert hidden[0, 7]  # spine behind the forearm
    assert not hidden[0, [0, 1, 4, 8, 10, 11, 13]].any()  # nothing else in the forearm's way
    # The same arm behind the back hides nothing on the torso; the forearm joints are hidden instead.
    pose_b = pose.copy()
    pose_b[0, [15, 16], 2] = 4.0 + 0.30
    hidden_b = self_occlusion_mask(CAM.project(pose_b, distort=False), pose_b, 1145.0)
    assert not hidden_b[0, 7]
    assert hidden_b[0, 16]  # the wrist sits behind the torso now
    # And the full simulator reports it with low confidence.
    det = simulate_detections(p2, pose, (1000, 1000), replace(CLEAN, self_occlusion=True))
    assert det.occluded[0, 7] and det.confidence[0, 7] < det.confidence[0, 8]


def test_truncated_joints_are_occluded(frames):
    pose, p2 = frames
    det = simulate_detections(p2[:100], pose[:100], (1000, 430), replace(CLEAN, truncation=True))
    outside = p2[:100, :, 1] >= 430
    assert outside.any()
    np.testing.assert_array_equal(det.occluded, outside)


def test_focal_estimate_from_2d_and_3d(frames):
    pose, p2 = frames
    np.testing.assert_allclose(estimate_focal_px(p2[:50], pose[:50]), 1145.0, rtol=1e-9)


def test_deterministic_given_seed(frames):
    pose, p2 = frames
    cfg = DetectorSimConfig(seed=7, occluder_prob=0.2, swap_prob=0.05)
    a = simulate_detections(p2[:9000], pose[:9000], (1000, 1000), cfg)  # spans two random blocks
    b = simulate_detections(p2[:9000], pose[:9000], (1000, 1000), cfg)
    c = simulate_detections(p2[:9000], pose[:9000], (1000, 1000), replace(cfg, seed=8))
    for name in ("keypoints", "confidence", "modes", "occluded", "swapped"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.keypoints, c.keypoints)


def test_bad_input_raises(frames):
    pose, p2 = frames
    with pytest.raises(ValueError, match="pose2d_px"):
        simulate_detections(p2[:, :16], pose, (1000, 1000))
    with pytest.raises(ValueError, match="root-relative"):
        simulate_detections(p2[:5], pose[:5] - pose[:5, :1], (1000, 1000))
    with pytest.raises(ValueError, match="swap_prob"):
        DetectorSimConfig(swap_prob=1.5)
    with pytest.raises(ValueError, match="noise_std_px"):
        DetectorSimConfig(noise_std_px=(5.0,) * 16)


def test_render_heatmaps_peaks_at_the_modes(frames):
    pose, p2 = frames
    det = simulate_detections(p2[:2000], pose[:2000], (1000, 1000), replace(CLEAN, swap_prob=0.2))
    row, joint = np.argwhere(det.swapped)[0]
    modes = det.modes[row, joint]
    img, (x0, y0, side) = render_heatmaps(modes, size=64)
    assert img.shape == (64, 64) and img.max() == pytest.approx(1.0)
    i, k = np.unravel_index(img.argmax(), img.shape)
    peak = np.array([x0 + (k + 0.5) * side / 64, y0 + (i + 0.5) * side / 64])
    assert np.linalg.norm(peak - modes[0, 1:3]) < 2 * side / 64  # the main mode is the brightest
    # A second local bump exists at the secondary mode.
    k2 = int((modes[1, 1] - x0) / side * 64)
    i2 = int((modes[1, 2] - y0) / side * 64)
    assert img[np.clip(i2, 0, 63), np.clip(k2, 0, 63)] > 0.2
    all_joints, _ = render_heatmaps(det.modes[row], size=32)
    assert all_joints.shape == (17, 32, 32)


def test_simulate_from_poseset_uses_each_rows_camera(frames):
    from diffpose_viz.datasets.poses import PoseSet

    pose, p2 = frames
    n = 300
    poses = PoseSet(
        pose3d=(pose[:n] - pose[:n, :1]).astype(np.float32), root=pose[:n, 0].astype(np.float32),
        pose2d=p2[:n].astype(np.float32), subject=np.array(["S"] * n), action=np.array(["a"] * n),
        camera=np.array([CAM.id] * n), frame=np.arange(n), cameras={CAM.id: CAM},
        res=np.tile(np.array([1000, 1000], dtype=np.int32), (n, 1)),
    )
    cfg = DetectorSimConfig(seed=3, occluder_prob=0.0)
    det = simulate_from_poseset(poses, cfg)
    direct = simulate_detections(p2[:n], pose[:n], (1000, 1000), cfg, focal_px=1145.0)
    np.testing.assert_array_equal(det.occluded, direct.occluded)
    np.testing.assert_allclose(det.keypoints, direct.keypoints, atol=1e-3)  # float32 inputs
    # rows seen by other cameras (augmented virtual views): their focal lengths replace the cameras'
    focal = np.linspace(900.0, 1400.0, n)
    virtual = simulate_from_poseset(poses, cfg, focal_px=focal)
    absolute = poses.pose3d.astype(np.float64) + poses.root.astype(np.float64)[:, None, :]
    want = simulate_detections(poses.pose2d, absolute, poses.res, cfg, focal_px=focal)
    np.testing.assert_array_equal(virtual.keypoints, want.keypoints)
    assert not np.array_equal(virtual.occluded, det.occluded)  # the focal length decides self-occlusion


def test_config_from_dict_round_trips_yaml_style_lists():
    cfg = DetectorSimConfig.from_dict({"seed": 4, "swap_pairs": [[4, 1], [13, 16]], "occluder_size": [0.1, 0.2]})
    assert cfg.swap_pairs == ((4, 1), (13, 16)) and cfg.occluder_size == (0.1, 0.2) and cfg.seed == 4
    with pytest.raises(KeyError, match="unknown keys"):
        DetectorSimConfig.from_dict({"noise": 1.0})
