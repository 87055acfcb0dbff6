"""Depth priors and the pose-specific initialization H_K, on synthetic camera-frame poses."""
import numpy as np
import pytest
import torch

from diffpose_viz.initialization.depth_prior import ConditionalDepthPrior, DepthPrior, depth_prior_from_dict
from diffpose_viz.initialization.pose_init import (
    InitConfig,
    PoseGMM,
    build_pose_gmm,
    estimate_root_depth,
    modes_from_keypoints,
    pose_gmm_from_keypoints,
)

K = np.array([1145.0, 1144.0, 512.0, 515.0])  # fx, fy, cx, cy (H36M-like)
# Standing pose, camera frame (x right, y down, z away from the camera), metres, pelvis at 0.
TEMPLATE = np.array([
    [0, 0, 0], [-0.13, 0, 0], [-0.13, 0.42, 0], [-0.13, 0.85, 0.03],
    [0.13, 0, 0], [0.13, 0.42, 0], [0.13, 0.85, 0.03],
    [0, -0.22, 0], [0, -0.47, 0], [0, -0.58, -0.06], [0, -0.72, 0],
    [0.17, -0.45, 0], [0.20, -0.2, 0], [0.22, 0.03, 0],
    [-0.17, -0.45, 0], [-0.20, -0.2, 0], [-0.22, 0.03, 0],
])


def _rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.stack([np.stack([c, 0 * a, s], -1), np.stack([0 * a, 1 + 0 * a, 0 * a], -1),
                     np.stack([-s, 0 * a, c], -1)], -2)


def _rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.stack([np.stack([1 + 0 * a, 0 * a, 0 * a], -1), np.stack([0 * a, c, -s], -1),
                     np.stack([0 * a, s, c], -1)], -2)


def synthetic_poses(n, seed=0):
    """Root-relative poses (n,17,3) with arm/leg swings and body yaw, and root positions (n,3)."""
    rng = np.random.default_rng(seed)
    p = np.repeat(TEMPLATE[None], n, 0).copy()
    for shoulder, chain in ((11, [12, 13]), (14, [15, 16]), (1, [2, 3]), (4, [5, 6])):
        lim = 1.4 if shoulder in (11, 14) else 0.6
        R = _rot_x(rng.uniform(-lim, lim, n))
        rel = p[:, chain] - p[:, shoulder : shoulder + 1]
        p[:, chain] = p[:, shoulder : shoulder + 1] + np.einsum("nij,nkj->nki", R, rel)
    p = np.einsum("nij,nkj->nki", _rot_y(rng.uniform(-np.pi, np.pi, n)), p)
    p += rng.normal(0, 0.01, p.shape)
    p -= p[:, :1]
    root = np.stack([rng.uniform(-0.6, 0.6, n), rng.uniform(-0.3, 0.3, n), rng.uniform(4.0, 6.5, n)], 1)
    return p, root


def project(pose_rel, root):
    cam = pose_rel + root[:, None]
    return cam[..., :2] / cam[..., 2:] * K[:2] + K[2:]


@pytest.fixture(scope="module")
def train():
    return synthetic_poses(1500, seed=1)


@pytest.fixture(scope="module")
def prior(train):
    p, root = train
    return DepthPrior.fit(p, 3, root_depth=root[:, 2])


FAST = InitConfig(n_kernels=3, n_samples=64, em_iters=15)


def test_depth_prior_fit_and_round_trip(prior, train, tmp_path):
    p, _ = train
    assert prior.weights.shape == (17, 3) and prior.means.shape == (17, 3)
    np.testing.assert_allclose(prior.weights.sum(-1), 1.0, atol=1e-9)
    assert (prior.means[0] == 0).all() and (prior.variances > 0).all()
    np.testing.assert_allclose(prior.mean_depth(), p[..., 2].mean(0), atol=0.01)
    np.testing.assert_allclose(prior.bone_length_3d[1], 0.42, atol=0.02)  # right thigh
    assert (prior.bone_length_xy <= prior.bone_length_3d + 1e-9).all()
    assert 4.5 < prior.root_depth_mean < 6.0
    np.savez(tmp_path / "prior.npz", **prior.to_dict())
    back = depth_prior_from_dict(dict(np.load(tmp_path / "prior.npz")))
    assert type(back) is DepthPrior
    np.testing.assert_array_equal(back.variances, prior.variances)
    np.testing.assert_array_equal(back.bone_length_xy, prior.bone_length_xy)


def test_depth_prior_rejects_millimetres():
    p, _ = synthetic_poses(20)
    with pytest.raises(ValueError, match="metres"):
        DepthPrior.fit(p * 1000)


def test_conditional_prior_beats_unconditional_on_held_out(train, prior, tmp_path):
    p, root = train
    cond = ConditionalDepthPrior.fit(p, project(p, root), 3, n_clusters=6, min_cluster_frames=30,
                                     root_depth=root[:, 2])
    q, qroot = synthetic_poses(400, seed=7)
    z = q[..., 2]
    lp_c = cond.log_prob(z, project(q, qroot))[:, 1:].mean()
    lp_u = prior.log_prob(z)[:, 1:].mean()
    assert lp_c > lp_u + 0.05  # the body's yaw is visible in 2D, so depth is partly predictable
    back = depth_prior_from_dict(cond.to_dict())
    assert isinstance(back, ConditionalDepthPrior)
    np.testing.assert_array_equal(back.cluster_of(project(q, qroot)), cond.cluster_of(project(q, qroot)))
    pooled = cond.unconditional()
    np.testing.assert_allclose(pooled.weights.sum(-1), 1.0)


def test_root_depth_from_2d_scale(prior):
    p, root = synthetic_poses(200, seed=3)
    kp = project(p, root)
    z, ok = estimate_root_depth(kp, np.ones((200, 17), bool), np.full(200, K[:2].mean()), prior)
    assert ok.all()
    rel = np.abs(z - root[:, 2]) / root[:, 2]
    assert np.median(rel) < 0.08
    # too few visible joints -> prior fallback
    vis = np.zeros((200, 17), bool)
    vis[:, :2] = True
    z, ok = estimate_root_depth(kp, vis, np.full(200, K[:2].mean()), prior)
    assert not ok.any() and np.allclose(z, prior.root_depth_mean)


def test_hk_mean_matches_gt_with_oracle_depth(prior):
    p, root = synthetic_poses(40, seed=4)
    rng = np.random.default_rng(0)
    kp = project(p, root) + rng.normal(0, 2.0, (40, 17, 2))
    H = pose_gmm_from_keypoints(kp, K, prior, pixel_noise_std=2.0, root_depth=root[:, 2], config=FAST)
    assert (H.root_depth_source == PoseGMM.ORACLE).all()
    m = H.mean().numpy()
    xy_err = np.linalg.norm(m[..., :2] - p[..., :2], axis=-1)[:, 1:].mean()
    assert xy_err < 0.04, xy_err  # metres
    z_err = np.abs(m[..., 2] - p[..., 2])[:, 1:].mean()
    assert z_err < 0.2
    np.testing.assert_allclose(m[:, 0], 0.0, atol=1e-6)


def test_hk_estimated_depth_sample_shapes_and_finite(prior):
    p, root = synthetic_poses(10, seed=5)
    H = pose_gmm_from_keypoints(project(p, root), K, prior, pixel_noise_std=3.0, config=FAST)
    assert (H.root_depth_source == PoseGMM.FROM_SCALE).all()
    assert np.median(np.abs(H.root_depth.numpy() - root[:, 2]) / root[:, 2]) < 0.1
    assert H.weights.shape == (10, 17, 3) and H.means.shape == (10, 17, 3, 3)
    torch.testing.assert_close(H.weights.sum(-1), torch.ones(10, 17))
    poses, kernel = H.sample(6, torch.Generator().manual_seed(0))
    assert poses.shape == (10, 6, 17, 3) and kernel.shape == (10, 6, 17)
    assert torch.isfinite(poses).all() and poses[:, :, 0].abs().max() < 1e-3
    assert torch.isfinite(H.log_prob(poses)).all()
    sub = H.select(np.array([1, 3])).to("cpu")
    assert len(sub) == 2
    torch.testing.assert_close(sub.means, H.means[[1, 3]])


def test_missing_and_occluded_joints_get_wider_distributions(prior):
    p, root = synthetic_poses(6, seed=6)
    kp = project(p, root)
    kp[:, 13] = np.nan  # left wrist missing
    conf = np.ones((6, 17))
    conf[:, 16] = 0.0  # right wrist: confidence 0 -> missing
    occ = np.zeros((6, 17), bool)
    occ[:, 5] = True  # left knee occluded but detected
    H = pose_gmm_from_keypoints(kp, K, prior, pixel_noise_std=2.0, confidence=conf, occluded=occ,
                                root_depth=root[:, 2], config=FAST)
    var_xy = H.marginal_variance()[..., :2].sum(-1)  # (B,17)
    assert torch.isfinite(H.means).all() and torch.isfinite(H.variances).all()
    visible = var_xy[:, [2, 12, 15]]
    for j in (13, 16, 5):
        assert (var_xy[:, j : j + 1] > 10 * visible).all(), j
    assert H.missing[:, 13].all() and H.missing[:, 16].all() and not H.missing[:, 5].any()
    # the missing wrist is centred near its parent (the elbow), not at NaN or the image origin
    d = (H.mean()[:, 13] - H.mean()[:, 12]).norm(dim=-1)
    assert (d < 0.3).all()


def test_all_missing_frame_does_not_crash(prior):
    kp = np.full((2, 17, 2), np.nan)
    kp[1] = project(*synthetic_poses(1, seed=8))[0]
    H = pose_gmm_from_keypoints(kp, K, prior, config=FAST)
    assert torch.isfinite(H.means).all() and torch.isfinite(H.variances).all()
    assert H.root_depth_source[0] == PoseGMM.FALLBACK
    assert torch.isfinite(H.sample(3)[0]).all()


def test_bimodal_heatmap_gives_bimodal_joint(prior):
    p, root = synthetic_poses(4, seed=9)
    kp = project(p, root)
    modes = np.concatenate([modes_from_keypoints(kp, 2.0), modes_from_keypoints(kp, 2.0)], 2)
    modes[:, 13, 1, 1] += 80.0  # a second wrist hypothesis 80 px to the right
    modes[:, 13, :, 0] = 0.5
    H = build_pose_gmm(modes, K, prior, root_depth=root[:, 2], config=InitConfig(n_kernels=3, n_samples=128))
    x = H.means[:, 13, :, 0]
    w = H.weights[:, 13]
    # mass-weighted spread of the kernel x-means covers the 80 px (~7 cm at 5 m) separation
    spread = (x * w).sum(-1, keepdim=True)
    assert ((x - spread).abs() * (w > 0.2)).max(-1).values.min() > 0.02


def test_bad_inputs_raise(prior):
    with pytest.raises(ValueError, match=r"\(B, 17, Q, 5\)"):
        build_pose_gmm(np.zeros((2, 17, 5)), K, prior)
    with pytest.raises(ValueError, match="intrinsics"):
        build_pose_gmm(np.zeros((2, 17, 1, 5)), np.ones(3), prior)
    with pytest.raises(ValueError, match="root_depth"):
        pose_gmm_from_keypoints(np.zeros((2, 17, 2)), K, prior, root_depth=np.array([5.0, -1.0]))
