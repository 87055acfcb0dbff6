"""DiffPose-layout (T,17,K,5) GMM file generator."""
import numpy as np
import pytest
import torch

from diffpose_viz.initialization.official_gmm import (
    build_official_gmm_files,
    check_official_layout,
    degenerate_official_gmm,
    official_gmm_from_modes,
    official_gmm_from_residuals,
    write_official_gmm_file,
)
from diffpose_viz.initialization.pose_init import modes_from_keypoints


def keypoints(T=5, seed=0):
    return np.random.default_rng(seed).uniform(100, 900, (T, 17, 2))


def test_from_modes_layout_and_bimodal_recovery():
    kp = keypoints()
    modes = np.concatenate([modes_from_keypoints(kp, 3.0), modes_from_keypoints(kp + [60.0, 0.0], 3.0)], 2)
    modes[..., 0, 0], modes[..., 1, 0] = 0.7, 0.3
    modes[0, 4] = np.nan  # a missing joint
    out = official_gmm_from_modes(modes, n_kernels=3, n_samples=256)
    assert out.shape == (5, 17, 3, 5) and out.dtype == np.float32
    check_official_layout(out)
    assert (np.diff(out[..., 0], axis=-1) <= 1e-6).all()  # kernel 0 is the dominant one
    # Joint 2 of frame 1: kernel 0 sits on the 0.7 mode, and some heavy kernel on the +60 px mode.
    k = out[1, 2]
    np.testing.assert_allclose(k[0, 1:3], kp[1, 2], atol=3.0)
    assert np.any((np.abs(k[:, 1] - (kp[1, 2, 0] + 60)) < 3.0) & (k[:, 0] > 0.15))
    assert 0.55 < k[np.abs(k[:, 1] - kp[1, 2, 0]) < 5, 0].sum() < 0.85
    # The missing joint falls back to a wide kernel around its parent's (joint 0) mode-weighted mean.
    parent_mean = kp[0, 0] + [0.3 * 60.0, 0.0]
    np.testing.assert_allclose((out[0, 4, :, 0:1] * out[0, 4, :, 1:3]).sum(0), parent_mean, atol=8.0)
    assert (out[0, 4, :, 3:5] > 10).all()


def test_from_residuals_shifts_by_mean_residual():
    kp = keypoints(T=3)
    rng = np.random.default_rng(1)
    res = rng.normal([4.0, -2.0], 1.5, (500, 17, 2))
    res[:10, 3] = np.nan  # ignored
    out = official_gmm_from_residuals(kp, res, n_kernels=2, n_samples=512)
    check_official_layout(out)
    mean = (out[..., 0:1] * out[..., 1:3]).sum(2)
    np.testing.assert_allclose(mean, kp - [4.0, -2.0], atol=0.5)
    with pytest.raises(ValueError, match="NaN"):
        official_gmm_from_residuals(np.full((1, 17, 2), np.nan), res)


def test_degenerate_form():
    kp = keypoints(T=4)
    out = degenerate_official_gmm(kp, spread=np.full((4, 17), 2.5))
    check_official_layout(out)
    assert (out[..., 0, 0] == 1).all() and (out[..., 1:, 0] == 0).all()
    np.testing.assert_allclose(out[..., 1:3], np.repeat(kp[:, :, None], 3, 2).astype(np.float32))
    assert (out[..., 3:5] == 2.5).all()


def test_layout_check_catches_bad_arrays():
    out = degenerate_official_gmm(keypoints(T=2))
    bad = out.copy()
    bad[0, 0, 1, 0] = 0.5
    with pytest.raises(ValueError, match="sum to 1"):
        check_official_layout(bad)
    bad = out.copy()
    bad[..., 3] = -1
    with pytest.raises(ValueError, match="spreads"):
        check_official_layout(bad)


def test_nested_dict_and_writer(tmp_path):
    inputs = {"S9": {"Walking": [keypoints(3, s) for s in range(2)]}}
    files = build_official_gmm_files(inputs, degenerate_official_gmm, spread=1.0)
    assert list(files) == ["S9"] and len(files["S9"]["Walking"]) == 2
    assert files["S9"]["Walking"][1].shape == (3, 17, 3, 5)
    gmm_files = pytest.importorskip("diffpose_viz.datasets.gmm_files", reason="data layer's gmm_files missing")
    modes = {"S9": {"Walking": [modes_from_keypoints(keypoints(3, 5), 2.0)]}}
    fitted = build_official_gmm_files(modes, n_samples=64)
    path = write_official_gmm_file(tmp_path / "data_2d_test_gmm.npz", fitted, metadata={"source": "test"})
    back = gmm_files.read_gmm_2d(path)
    np.testing.assert_array_equal(back["S9"]["Walking"][0], fitted["S9"]["Walking"][0])


def test_device_cpu_generator():
    modes = modes_from_keypoints(keypoints(T=2), 2.0)
    g = torch.Generator(device="cpu").manual_seed(3)
    a = official_gmm_from_modes(modes, generator=g, device="cpu", n_samples=64)
    b = official_gmm_from_modes(modes, generator=torch.Generator().manual_seed(3), n_samples=64)
    np.testing.assert_array_equal(a, b)  # deterministic given the generator
