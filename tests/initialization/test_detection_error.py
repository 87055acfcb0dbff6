"""The per-joint detection-error mixture (`initialization.detection_error`) that gives keypoints-only
2D files their x, y uncertainty."""
from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from diffpose_viz.datasets.files_2d import attach_2d
from diffpose_viz.datasets.poses import build_pose_set
from diffpose_viz.datasets.vp3d import load_3d
from diffpose_viz.detector_sim import Detections2D
from diffpose_viz.initialization.detection_error import (
    DetectionErrorModel,
    fit_detection_error,
    fit_from_attached,
)
from diffpose_viz.initialization.official_gmm import official_gmm_from_residuals
from diffpose_viz.initialization.pose_init import clean_modes

W = np.array([0.6, 0.3, 0.1])
MU = np.array([[0.0, 0.0], [8.0, -3.0], [-15.0, 20.0]])
SD = np.array([[2.0, 2.0], [4.0, 3.0], [10.0, 10.0]])


def synthetic(n: int = 3000, seed: int = 0, scale: np.ndarray | None = None):
    """(detections, ground truth) whose residuals follow the mixture W, MU, SD at every joint."""
    rng = np.random.default_rng(seed)
    k = rng.choice(3, size=(n, 17), p=W)
    r = MU[k] + SD[k] * rng.standard_normal((n, 17, 2))
    if scale is not None:
        r = r * scale[..., None]
    gt = rng.uniform(100, 900, (n, 17, 2))
    return gt + r, gt


@pytest.fixture(scope="module")
def model() -> DetectionErrorModel:
    det, gt = synthetic()
    return fit_detection_error(det, gt, seed=0)


def test_recovers_the_mixture_of_synthetic_residuals(model):
    assert model.n_kernels == 3 and not model.conditioned
    assert model.n_points.tolist() == [[3000] * 17]
    np.testing.assert_allclose(model.weights[0], np.broadcast_to(W, (17, 3)), atol=0.04)
    np.testing.assert_allclose(model.means[0, :, :2], np.broadcast_to(MU[:2], (17, 2, 2)), atol=1.0)
    np.testing.assert_allclose(model.means[0, :, 2], np.broadcast_to(MU[2], (17, 2)), atol=2.5)
    np.testing.assert_allclose(model.stds[0] / SD, 1.0, atol=0.2)


def test_modes_layout(model):
    det, gt = synthetic(50, seed=1)
    det[3, 7] = np.nan
    conf = np.ones((50, 17))
    conf[4, 2] = 0.0
    modes = model.modes_for(det, conf)
    assert modes.shape == (50, 17, 3, 5) and modes.dtype == np.float32
    w = modes[..., 0]
    assert (np.diff(w, axis=-1) <= 1e-7).all()  # sorted by weight, kernel 0 dominant
    ok = np.ones((50, 17), bool)
    ok[3, 7] = ok[4, 2] = False
    np.testing.assert_allclose(w[ok].sum(-1), 1.0, atol=1e-6)
    assert (w[~ok] == 0).all()
    # kernel means = keypoint - residual mean (residual = detection - truth), stds = the kernels'
    np.testing.assert_allclose(modes[0, :, :, 1:3], det[0][:, None] - model.means[0], rtol=1e-6)
    np.testing.assert_allclose(modes[..., 3:5], np.broadcast_to(model.stds[0], (50, 17, 3, 2)), rtol=1e-6)
    # The mixture mean is an unbiased guess of the truth.
    mix = (modes[..., :1] * modes[..., 1:3]).sum(2)
    assert np.abs(np.nanmean(mix[ok] - gt[ok], 0)).max() < 1.5

    m, kp, missing, _ = clean_modes(modes, conf)
    assert missing[3, 7] and missing[4, 2] and missing.sum() == 2
    dets = Detections2D(det.astype(np.float32), conf.astype(np.float32), modes, np.zeros((50, 17), bool))
    assert len(dets) == 50


def test_shape_errors(model):
    with pytest.raises(ValueError, match=r"\(N, 17, 2\)"):
        model.modes_for(np.zeros((4, 16, 2)))
    with pytest.raises(ValueError, match="confidence"):
        model.modes_for(np.zeros((4, 17, 2)), np.ones((4, 16)))
    with pytest.raises(ValueError, match="confidence_bins needs confidence"):
        fit_detection_error(np.zeros((10, 17, 2)), np.zeros((10, 17, 2)), confidence_bins=2)


def test_conditioning_on_confidence_bins():
    conf = np.random.default_rng(12).uniform(0.0, 1.0, (1500, 17))  # a stream independent of synthetic()'s
    scale = np.where(conf < 0.5, 3.0, 1.0)  # low-confidence detections err three times as much
    det, gt = synthetic(1500, seed=2, scale=scale)
    m = fit_detection_error(det, gt, confidence=conf, confidence_bins=[0.0, 0.5, 1.0], seed=0, n_iter=60, n_init=2)
    assert m.conditioned and m.weights.shape == (3, 17, 3)
    assert m.slot(np.array([[0.1, 0.7, np.nan]])).tolist() == [[1, 2, 0]]

    def spread(slot):  # total std of a slot's mixture, per joint
        mean = (m.weights[slot, ..., None] * m.means[slot]).sum(1)
        second = (m.weights[slot, ..., None] * (m.stds[slot] ** 2 + m.means[slot] ** 2)).sum(1)
        return np.sqrt(second - mean**2).mean()

    assert spread(1) > 2.3 * spread(2)
    kp = det[:2]
    low = m.modes_for(kp, np.full((2, 17), 0.2))
    high = m.modes_for(kp, np.full((2, 17), 0.9))
    assert low[..., 3:5].max() > high[..., 3:5].max()

    few = fit_detection_error(det, gt, confidence=conf, confidence_bins=[0.0, 0.02, 1.0], min_points_per_bin=100,
                              n_iter=20, n_init=1)
    assert few.fallback[1].all() and not few.fallback[2].any()
    np.testing.assert_array_equal(few.means[1], few.means[0])


def test_round_trip_through_a_weights_only_checkpoint(model):
    d = model.to_dict()
    json.dumps(d)  # plain lists, floats and strings only
    buf = io.BytesIO()
    torch.save({"detection_error": d, "weights": torch.zeros(3)}, buf)
    buf.seek(0)
    back = DetectionErrorModel.from_dict(torch.load(buf, weights_only=True)["detection_error"])
    det, _ = synthetic(20, seed=3)
    np.testing.assert_array_equal(back.modes_for(det), model.modes_for(det))
    with pytest.raises(ValueError, match="not a detection-error model"):
        DetectionErrorModel.from_dict({"format": "something else"})


def test_agrees_with_the_sampled_official_generator():
    """official_gmm_from_residuals fits d - r per frame by sampling; our closed form has the same moments."""
    det, gt = synthetic(3000, seed=4)
    res = det - gt
    kp = det[:3]
    sampled = official_gmm_from_residuals(kp, res, n_kernels=3, n_samples=4096, seed=0)
    ours = fit_detection_error(det, gt, seed=0).modes_for(kp)

    def moments(modes):
        w = modes[..., :1].astype(np.float64)
        mean = (w * modes[..., 1:3]).sum(2)
        second = (w * (modes[..., 3:5] ** 2 + modes[..., 1:3] ** 2)).sum(2)
        return mean, np.sqrt(second - mean**2)

    (m1, s1), (m2, s2) = moments(sampled), moments(ours)
    assert np.abs(m1 - m2).max() < 1.0
    np.testing.assert_allclose(s1, s2, rtol=0.1)


def test_fit_from_attached_on_the_h36m_fixture(tmp_path):
    spec = importlib.util.spec_from_file_location("h36m_layout", Path(__file__).resolve().parents[1] / "fixtures" / "h36m_layout.py")
    layout = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layout)
    paths = layout.build_h36m_layout(tmp_path)
    mocap = load_3d(paths["3d"], subjects=["S1", "S5", "S6", "S7", "S8"])
    train = build_pose_set(mocap, mocap.subjects)
    attached = attach_2d(train, paths["cpn"], mocap=mocap)
    m = fit_from_attached(train, attached, confidence_bins=3)  # no scores in the file: bins are ignored
    assert not m.conditioned
    # The fixture's CPN-like noise is 3 px per axis around the projection.
    mean = (m.weights[0, ..., None] * m.means[0]).sum(1)
    second = (m.weights[0, ..., None] * (m.stds[0] ** 2 + m.means[0] ** 2)).sum(1)
    total = np.sqrt(second - mean**2)
    assert np.abs(mean).max() < 1.0 and 2.4 < total.mean() < 3.6
    modes = m.modes_for(attached.keypoints, None)
    assert modes.shape == (len(attached), 17, 3, 5)
