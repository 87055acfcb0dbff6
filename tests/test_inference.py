"""Inference (diffpose_viz/inference.py): one SamplingSetting resolved by the method, `lift` over a feed, user
2D keypoints lifted to a results Dataset with unusable frames flagged."""
from __future__ import annotations

import numpy as np
import pytest

from diffpose_viz.errors import InputError
from diffpose_viz.inference import SamplingSetting, lift, lift_2d, load_model, usable_frames
from diffpose_viz.inputs import default_camera, feed_from_keypoints
from diffpose_viz.methods import METHODS
from diffpose_viz.training.trainer import train

from tiny_runs import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_method_resolves_the_sampling_setting(tiny_data):
    cfg = tiny_config(tiny_data)
    asked = SamplingSetting(batch_size=32, amp="bf16", record=True)
    got = METHODS["diffpose_joint"].sampling(cfg, asked)
    assert (got.n_hypotheses, got.n_steps, got.seed) == (cfg.sampling.n_hypotheses, cfg.sampling.n_steps,
                                                         cfg.train.seed)
    assert (got.eta, got.clip_x0, got.start_t) == (cfg.sampling.eta, cfg.sampling.clip_x0, cfg.sampling.start_t)
    assert (got.batch_size, got.amp, got.record) == (32, "bf16", True)  # the rest passes through untouched
    mine = METHODS["diffpose_joint"].sampling(cfg, SamplingSetting(3, 2, seed=9))
    assert (mine.n_hypotheses, mine.n_steps, mine.seed) == (3, 2, 9)
    lifter = METHODS["lifter"].sampling(cfg, SamplingSetting(5, 7))  # deterministic: one hypothesis, no steps
    assert (lifter.n_hypotheses, lifter.n_steps) == (1, 0)


def test_a_bad_sampling_request_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        SamplingSetting(batch_size=0)
    with pytest.raises(ValueError, match="amp"):
        SamplingSetting(amp="fp8")


def test_usable_frames_need_six_visible_joints_and_a_hip():
    kp = np.tile(np.linspace(300, 700, 34).reshape(1, 17, 2), (3, 1, 1))
    conf = np.ones((3, 17))
    conf[1, 5:] = 0  # five visible joints
    conf[2, [0, 1, 4]] = 0  # no hip, no pelvis
    usable, reason = usable_frames(kp, conf)
    assert usable.tolist() == [True, False, False]
    assert "only 5 visible joints" in reason[1] and reason[2] == "no visible hip or pelvis"


@pytest.fixture(scope="module")
def init_only(tiny_data, tmp_path_factory):
    """init_only: H_K's mean, nothing trained beyond the depth prior (seconds)."""
    run = train(tiny_config(tiny_data, method="init_only"), tmp_path_factory.mktemp("init_only"), progress=False)
    return load_model(run.best)


def test_lift_2d_leaves_unusable_frames_out_and_flags_them(init_only):
    cam = default_camera(1000, 1000)
    kp = np.tile(np.linspace(300, 700, 34).reshape(1, 17, 2), (3, 1, 1)).astype(np.float32)
    kp[1, 3:] = np.nan  # three joints left: not lifted
    ds = lift_2d(init_only, kp, cam, SamplingSetting(4))
    assert ds.sizes["hypothesis"] == 4 and ds["missing"].values.tolist() == [False, True, False]
    assert np.isnan(ds["hypotheses"].values[1]).all() and np.isfinite(ds["hypotheses"].values[[0, 2]]).all()
    with pytest.raises(InputError, match="none of the 1 frames"):
        lift_2d(init_only, kp[1:2], cam)


def test_lift_needs_the_hk_its_method_samples_from(init_only):
    cam = default_camera(1000, 1000)
    kp = np.tile(np.linspace(300, 700, 34).reshape(1, 17, 2), (2, 1, 1))
    feed = feed_from_keypoints(kp, np.ones((2, 17)), np.zeros((2, 17), bool), 5.0, cam, init_only.cfg,
                               init_only.method)
    with pytest.raises(InputError, match="with_hk"):
        lift(init_only, feed)
    out = lift(init_only, feed.with_hk(init_only.prior), SamplingSetting(3))
    assert out.hypotheses.shape == (2, 3, 17, 3) and out.gmm["means"].shape[0] == 2
