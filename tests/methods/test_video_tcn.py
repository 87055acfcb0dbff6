"""The video setting with VideoPose3D's temporal convolutions (`model.video_lifter.kind: tcn`): trained on the
centre frame through the strided model with a decaying BatchNorm momentum, evaluated with the dense model and
test-time flip, and used frozen as phi_ST by the two-stage DiffPose and the official video mode."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffpose_viz.config import to_dict
from diffpose_viz.diffusion import SamplingSetting
from diffpose_viz.errors import ConfigError
from diffpose_viz.evaluation.evaluate import EvalData, evaluate
from diffpose_viz.inference import load_model
from diffpose_viz.inputs import FeedBatch
from diffpose_viz.methods import METHODS, load_config
from diffpose_viz.methods.video import bn_momentum
from diffpose_viz.models import TCNLifter
from diffpose_viz.models.flip import flip_2d, flip_3d
from diffpose_viz.training.trainer import train
from tiny_runs import REPO, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")
TCN = {"model.context": "video", "model.frames": 9, "augmentation.view.enabled": False, "model.hidden": 16,
       "model.layers": 2, "model.heads": 2, "model.video_lifter.kind": "tcn", "model.video_lifter.channels": 16}


@pytest.fixture(scope="module")
def tcn_lifter(tiny_data, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("tcn_lifter")
    return train(tiny_config(tiny_data, method="video_lifter", **TCN, **{"train.epochs": 2}), out, progress=False)


def test_tcn_lifter_trains_and_evaluates(tcn_lifter, tmp_path):
    model = load_model(tcn_lifter.best)
    net = model.network.net
    assert isinstance(net, TCNLifter) and net.receptive_field() == 9 and net.channels == 16
    assert not net.training  # evaluation runs the dense model with running BatchNorm statistics
    losses = [h["loss"] for h in tcn_lifter.history if "loss" in h]
    vals = [h["val_mpjpe_mm"] for h in tcn_lifter.history if "val_mpjpe_mm" in h]
    assert losses and vals and np.isfinite(vals).all()
    res = evaluate(tcn_lifter.best, tmp_path / "t.nc", progress=False, calibrate=False,
                   data=EvalData(max_samples=100_000))
    assert np.isfinite(res.summary["P1_mm_action_wise"]) and res.summary["MPJVE_mm_per_frame"] > 0


def test_tcn_prediction_is_the_flip_averaged_centre_frame(tcn_lifter):
    model = load_model(tcn_lifter.best)
    cond = torch.rand(3, 9, 17, 3) - 0.5
    cond[..., 2] = 1.0
    pred = METHODS["video_lifter"].predict(model, FeedBatch(cond, None), SamplingSetting()).hypotheses[:, 0]
    net = model.network.net
    with torch.no_grad():
        want = (net(cond)[:, 0] + flip_3d(net(flip_2d(cond)))[:, 0]) / 2
    np.testing.assert_allclose(pred, (want - want[:, :1]).numpy(), atol=1e-5)


def test_bn_momentum_follows_videopose3d_and_reaches_the_network(tiny_data, tmp_path):
    assert bn_momentum(0, 80, 0.1, 0.001) == pytest.approx(0.1)
    assert bn_momentum(40, 80, 0.1, 0.001) == pytest.approx(0.01)
    assert bn_momentum(80, 80, 0.1, 0.001) == pytest.approx(0.001)
    cfg = tiny_config(tiny_data, method="video_lifter", **TCN, **{"train.epochs": 4})
    net = METHODS["video_lifter"].build_network(cfg)
    METHODS["video_lifter"].start_epoch(net, cfg, 2)
    assert net.net.expand_bn.momentum == pytest.approx(0.1 * 0.01 ** 0.5)  # the defaults are VideoPose3D's
    assert all(bn.momentum == net.net.expand_bn.momentum for bn in net.net.layers_bn)


def test_the_bn_momentum_schedule_is_read_from_the_config(tiny_data):
    cfg = tiny_config(tiny_data, method="video_lifter", **TCN, **{
        "train.epochs": 4, "model.video_lifter.bn_momentum": 0.2, "model.video_lifter.bn_momentum_final": 0.05})
    net = METHODS["video_lifter"].build_network(cfg)
    assert net.net.expand_bn.momentum == pytest.approx(0.2)  # before the first epoch starts
    METHODS["video_lifter"].start_epoch(net, cfg, 3)
    assert net.net.expand_bn.momentum == pytest.approx(0.2 * 0.25 ** 0.75)  # never below the final value
    assert all(bn.momentum == net.net.expand_bn.momentum for bn in net.net.layers_bn)
    with pytest.raises(ConfigError, match="model.video_lifter.bn_momentum_final.*found 0.0"):
        tiny_config(tiny_data, method="video_lifter", **TCN, **{"model.video_lifter.bn_momentum_final": 0.0})


def test_the_tcn_config_keeps_its_bn_momentum_floor():
    """The shipped stage-1 config ends above VideoPose3D's 0.001 (chosen on validation, docs/BENCHMARKS.md)."""
    cfg = load_config(REPO / "configs" / "bandai_tcn_cpu.yaml")
    v = cfg.model.video_lifter
    assert (v.bn_momentum, v.bn_momentum_final) == (0.1, 0.01)
    assert bn_momentum(cfg.train.epochs - 1, cfg.train.epochs, v.bn_momentum, v.bn_momentum_final) > 0.01


def test_the_window_must_be_the_receptive_field(tiny_data):
    with pytest.raises(ConfigError, match="model.frames.*power of the filter width"):
        tiny_config(tiny_data, method="video_lifter", **{**TCN, "model.frames": 7})
    cfg = tiny_config(tiny_data, method="video_lifter", **{**TCN, "model.frames": 25,
                                                           "model.video_lifter.filter_width": 5})
    assert to_dict(cfg)["model"]["video_lifter"] == {"kind": "tcn", "channels": 16, "filter_width": 5,
                                                     "dropout": 0.25, "bn_momentum": 0.1,
                                                     "bn_momentum_final": 0.001}


def test_two_stage_diffpose_and_official_mode_on_a_frozen_tcn(tcn_lifter, tiny_data, tmp_path):  # noqa: F811
    cfg = tiny_config(tiny_data, method="diffpose", **TCN, **{"model.context_checkpoint": str(tcn_lifter.best),
                                                              "train.max_steps": 4})
    run = train(cfg, tmp_path / "dp", progress=False)
    model = load_model(run.best)
    phi = model.network.phi_st
    assert isinstance(phi, TCNLifter) and not phi.training
    cond = torch.rand(2, 9, 17, 3) - 0.5
    cond[..., 2] = 1.0
    f_st = model.network.encode(cond)
    assert f_st.shape == (2, 17, 16 + 3 + 4)
    with torch.no_grad():
        pose = phi(cond)[:, 0]
    torch.testing.assert_close(f_st[..., 16:19], pose - pose[:, :1])
    res = evaluate(run.best, tmp_path / "dp.nc", progress=False, calibrate=False)
    assert np.isfinite(res.summary["P1_mm_action_wise"])
    cfg = tiny_config(tiny_data, method="official", **TCN, **{"official.lifter_checkpoint": str(tcn_lifter.best),
                                                              "train.max_steps": 3})
    off = load_model(train(cfg, tmp_path / "off", progress=False).best)
    want = METHODS["video_lifter"].predict(load_model(tcn_lifter.best), FeedBatch(cond, None),
                                           SamplingSetting()).hypotheses[:, 0]
    with torch.no_grad():
        np.testing.assert_allclose(off.extras["lifter"](cond).numpy(), want, atol=1e-5)


def test_hk_depth_from_a_temporal_phi_st(tcn_lifter, tiny_data, tmp_path):  # noqa: F811
    """init.depth_source 'context' with a video phi_ST: H_K's z is the TCN's z of each row's window centre, with
    the residual spread measured on validation windows."""
    from diffpose_viz.methods.two_stage import predict_z
    from tiny_runs import train_run

    cfg = tiny_config(tiny_data, method="diffpose", **TCN, **{"model.context_checkpoint": str(tcn_lifter.best),
                                                              "init.depth_source": "context", "train.max_steps": 2})
    tr = train_run(cfg, tmp_path / "ctx")
    spread = tr.extras["z_residual"]
    assert spread["rows"] > 0 and (spread["std_visible"][1:] > 1e-3).all()
    data = tr.val_data
    z = predict_z(tr.extras["phi_st"], data.cond, windows=data.windows)
    phi = tr.extras["phi_st"]
    with torch.no_grad():
        pose = phi(data.cond[data.windows[:4]])[:, 0]
    np.testing.assert_allclose(z[:4], (pose - pose[:, :1])[..., 2].numpy(), atol=1e-6)
    zm, _ = tr.method.hk_depth(tr.cfg, tr.extras, data.cond, data.det.occluded, data.windows)
    np.testing.assert_array_equal(zm, z)
    assert data.z_from_method and tr.train_data.z_from_method
    res = evaluate(tr.out_dir / "best.pt", tmp_path / "ctx.nc", progress=False, calibrate=False)
    assert np.isfinite(res.summary["P1_mm_action_wise"])
