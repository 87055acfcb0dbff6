"""The video setting: the MixSTE-style temporal lifter as a method (seq2seq loss on every frame of the window,
flip augmentation, flip averaging at test), and the two-stage DiffPose with it frozen as phi_ST."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffpose_viz.errors import CheckpointError
from diffpose_viz.evaluation.evaluate import EvalData, evaluate
from diffpose_viz.inference import SamplingSetting, load_model
from diffpose_viz.inputs import FeedBatch
from diffpose_viz.methods import METHODS
from diffpose_viz.training.trainer import train
from tiny_runs import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")
VIDEO = {"model.context": "video", "model.frames": 5, "augmentation.view.enabled": False, "model.hidden": 16,
         "model.layers": 2, "model.heads": 2}


@pytest.fixture(scope="module")
def video_lifter(tiny_data, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("video_lifter")
    return train(tiny_config(tiny_data, method="video_lifter", **VIDEO, **{"train.max_steps": 6}), out,
                 progress=False)


def test_video_lifter_trains_and_evaluates_on_windows(video_lifter, tmp_path):
    assert METHODS["video_lifter"].uses_windows(load_model(video_lifter.best).cfg)
    res = evaluate(video_lifter.best, tmp_path / "v.nc", progress=False)
    assert np.isfinite(res.summary["P1_mm_action_wise"]) and res.summary["n_hypotheses"] == 1


def test_video_lifter_prediction_is_flip_averaged(video_lifter):
    model = load_model(video_lifter.best)
    cond = torch.rand(3, 5, 17, 3) - 0.5
    cond[..., 2] = 1.0
    pred = METHODS["video_lifter"].predict(model, FeedBatch(cond, None), SamplingSetting()).hypotheses[:, 0]
    from diffpose_viz.models.flip import flip_2d, flip_3d

    net = model.network.net
    with torch.no_grad():
        plain = net(cond)[:, 2]
        mirrored = flip_3d(net(flip_2d(cond)))[:, 2]
    want = (plain + mirrored) / 2
    want = want - want[:, :1]
    np.testing.assert_allclose(pred, want.numpy(), atol=1e-5)


def test_two_stage_diffpose_with_a_video_phi_st(video_lifter, tiny_data, tmp_path):  # noqa: F811
    cfg = tiny_config(tiny_data, method="diffpose", **VIDEO, **{"model.context_checkpoint": str(video_lifter.best),
                                                                "train.max_steps": 4})
    run = train(cfg, tmp_path / "dp", progress=False)
    model = load_model(run.best)
    assert model.method.uses_windows(model.cfg) and model.network.video
    res = evaluate(run.best, tmp_path / "dp.nc", progress=False, calibrate=False)
    assert np.isfinite(res.summary["P1_mm_action_wise"]) and res.summary["n_hypotheses"] == cfg.sampling.n_hypotheses


def test_video_diffpose_refuses_a_frame_lifter_and_another_window(video_lifter, tiny_data, tmp_path):  # noqa: F811
    frame = train(tiny_config(tiny_data, method="lifter", **{"train.max_steps": 2}), tmp_path / "frame",
                  progress=False)
    with pytest.raises(CheckpointError, match="video_lifter"):
        train(tiny_config(tiny_data, method="diffpose", **VIDEO, **{"model.context_checkpoint": str(frame.best)}),
              tmp_path / "a", progress=False)
    with pytest.raises(CheckpointError, match="5-frame windows"):
        train(tiny_config(tiny_data, method="diffpose", **{**VIDEO, "model.frames": 7},
                          **{"model.context_checkpoint": str(video_lifter.best)}), tmp_path / "b", progress=False)


def test_thinned_rows_keep_their_windows_frames(tiny_data):  # noqa: F811
    """Thinning a video split keeps each scored row's window at the data's frame rate (its neighbours stay,
    unscored), so a window never jumps across thinned-away frames."""
    from diffpose_viz.inputs import load_poses, thin_windowed, window_indices

    cfg = tiny_config(tiny_data, **VIDEO)
    poses = load_poses(cfg.data, list(cfg.data.train_subjects))
    wr = thin_windowed(poses, 7, 5)
    assert len(wr.scored) == 7 and len(wr.poses) > 7
    full = window_indices(poses, 5)
    kept = np.unique(np.linspace(0, len(poses) - 1, 7).round().astype(int))
    for pos, orig in zip(wr.scored, kept):
        np.testing.assert_array_equal(wr.poses.frame[wr.windows[pos]], poses.frame[full[orig]])
        assert (wr.poses.sequence_key[wr.windows[pos]] == poses.sequence_key[orig]).all()
    plain = thin_windowed(poses, 7, None)  # frame models: exactly `thin`
    assert plain.windows is None and len(plain.poses) == 7


def test_mpjve_is_reported_for_all_frame_evaluation(video_lifter, tmp_path):
    res = evaluate(video_lifter.best, tmp_path / "all.nc", progress=False, calibrate=False,
                   data=EvalData(max_samples=100_000))
    assert res.summary["MPJVE_mm_per_frame"] > 0


def test_official_video_mode_starts_from_the_temporal_lifter(video_lifter, tiny_data, tmp_path):  # noqa: F811
    """The released video recipe: the frame denoiser on the centre frame, started from the frozen temporal
    lifter's flip-averaged centre-frame pose; a frame lifter is refused."""
    cfg = tiny_config(tiny_data, method="official", **VIDEO,
                      **{"official.lifter_checkpoint": str(video_lifter.best), "train.max_steps": 3})
    run = train(cfg, tmp_path / "off", progress=False)
    model = load_model(run.best)
    assert model.method.uses_windows(model.cfg) and model.method.stage1(model.cfg) == "video_lifter"
    cond = torch.rand(2, 5, 17, 3) - 0.5
    cond[..., 2] = 1.0
    lifter = load_model(video_lifter.best)
    want = METHODS["video_lifter"].predict(lifter, FeedBatch(cond, None), SamplingSetting()).hypotheses[:, 0]
    with torch.no_grad():
        np.testing.assert_allclose(model.extras["lifter"](cond).numpy(), want, atol=1e-5)
    res = evaluate(run.best, tmp_path / "off.nc", progress=False, calibrate=False)
    assert np.isfinite(res.summary["P1_mm_action_wise"]) and res.summary["n_hypotheses"] == 1
    frame = train(tiny_config(tiny_data, method="lifter", **{"train.max_steps": 2}), tmp_path / "frame",
                  progress=False)
    with pytest.raises(CheckpointError, match="official.lifter_checkpoint must be a 'video_lifter'"):
        train(tiny_config(tiny_data, method="official", **VIDEO, **{"official.lifter_checkpoint": str(frame.best)}),
              tmp_path / "bad", progress=False)
