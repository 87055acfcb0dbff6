"""Two-stage DiffPose (methods/two_stage.py): a frozen pre-trained lifter as phi_ST, embedded in the checkpoint,
giving f_ST and (init.depth_source: context) H_K's z; the old jointly trained model loads as diffpose_joint."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diffpose_viz import inputs
from diffpose_viz.checkpoint import load_checkpoint, save_checkpoint
from diffpose_viz.errors import CheckpointError
from diffpose_viz.evaluation.evaluate import EvalData
from diffpose_viz.inference import SamplingSetting, load_model
from diffpose_viz.methods import METHODS, training_order
from diffpose_viz.methods.two_stage import ContextDiffusionNetwork, predict_z
from diffpose_viz.training.trainer import Trainer

from tiny_runs import tiny_config, train_run

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def stage2(tiny_data, lifter_ckpt, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("diffpose")
    cfg = tiny_config(tiny_data, method="diffpose", **{"model.context_checkpoint": str(lifter_ckpt),
                                                       "init.depth_source": "context", "train.max_steps": 6})
    return train_run(cfg, out), out


def _lifter_weights(path: Path) -> dict[str, torch.Tensor]:
    return {k.removeprefix("net."): v for k, v in load_checkpoint(path)["ema"]["module"].items()}


def test_order_and_keys():
    assert METHODS["diffpose"].lifter_checkpoint_key == "model.context_checkpoint"
    assert METHODS["official"].lifter_checkpoint_key == "official.lifter_checkpoint"
    order = training_order(["diffpose", "diffpose_joint", "lifter"])
    assert order.index("lifter") < order.index("diffpose")


def test_phi_st_frozen_and_not_optimised(stage2, lifter_ckpt):
    tr, _ = stage2
    phi = tr.net.phi_st
    assert not phi.training and all(not p.requires_grad for p in phi.parameters())
    ids = {id(p) for g in tr.optimizer.param_groups for p in g["params"]}
    assert not ids & {id(p) for p in phi.parameters()}
    assert not any(k.startswith("phi_st") for k in tr.net.state_dict())
    want = _lifter_weights(lifter_ckpt)
    for module in (tr.net.phi_st, tr.ema.module.phi_st):  # after training, raw and EMA copies
        for k, v in module.state_dict().items():
            assert torch.equal(v, want[k]), k
    tr.net.train()
    assert not tr.net.phi_st.training  # train() keeps dropout off in phi_ST


def test_checkpoint_round_trip(stage2, lifter_ckpt, tmp_path):
    tr, out = stage2
    ckpt = load_checkpoint(out / "best.pt")
    ctx = ckpt["extras"]["context"]
    assert ctx["method"] == "lifter" and set(ctx["z_residual"]) >= {"std_visible", "std_occluded"}
    model = load_model(out / "best.pt")
    assert isinstance(model.network, ContextDiffusionNetwork)
    cond = tr.val_data.cond[:8]
    gmm = tr.val_data.gmm.select(torch.arange(8))
    a = _predict(model, cond, gmm, SamplingSetting(2, 2), torch.Generator().manual_seed(0))
    ref = type(model)(tr.cfg, tr.method, tr.ema.module.eval(), tr.prior, tr.extras)
    b = _predict(ref, cond, gmm, SamplingSetting(2, 2), torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(a.hypotheses, b.hypotheses)


def test_hk_z_mean_is_phi_st_prediction(stage2):
    tr, _ = stage2
    data = tr.val_data
    z = predict_z(tr.extras["phi_st"], data.cond)
    zm, zs = tr.method.hk_depth(tr.cfg, tr.extras, data.cond, data.det.occluded)
    np.testing.assert_array_equal(zm, z)
    spread = tr.extras["z_residual"]
    np.testing.assert_array_equal(zs[~data.det.occluded], np.broadcast_to(spread["std_visible"].numpy(),
                                                                         zs.shape)[~data.det.occluded])
    # H_K with a tiny spread: every kernel's z sits at phi_ST's prediction (x, y still from the 2D modes)
    tiny = np.full_like(zm, 1e-4)
    gmm = inputs.build_hk(data.det, inputs.row_intrinsics(data.poses), tr.prior, tr.cfg.init, seed=1,
                          depth=(zm, tiny))
    np.testing.assert_allclose(gmm.means[:, 1:, :, 2].numpy(), np.broadcast_to(zm[:, 1:, None],
                               gmm.means[:, 1:, :, 2].shape), atol=1e-3)
    prior_gmm = inputs.build_hk(data.det, inputs.row_intrinsics(data.poses), tr.prior, tr.cfg.init, seed=1)
    assert not torch.allclose(prior_gmm.means[..., 2], gmm.means[..., 2], atol=1e-3)  # both sources selectable


def test_wrong_context_checkpoints_refused(tiny_data, lifter_ckpt, stage2, tmp_path):  # noqa: F811
    _, out = stage2
    base = load_checkpoint(lifter_ckpt)

    def variant(name, edit):
        ck = {k: v for k, v in base.items() if k not in ("format", "format_version", "versions")}
        ck["config"] = {**ck["config"], "model": dict(ck["config"]["model"])}
        edit(ck)
        return save_checkpoint(tmp_path / f"{name}.pt", ck)

    def run(path, match):
        cfg = tiny_config(tiny_data, method="diffpose", **{"model.context_checkpoint": str(path)})
        with pytest.raises(CheckpointError, match=match) as err:
            Trainer(cfg, tmp_path / f"run_{path.stem}", progress=False).setup()
        assert str(path) in str(err.value)

    run(out / "best.pt", "must be a 'lifter' checkpoint")  # a diffpose checkpoint is no lifter
    run(variant("video", lambda c: c["config"]["model"].update(context="video")), "frame-context lifter")
    run(variant("norm", lambda c: c.update(normaliser={"2d": "pixels", "version": 0})), "2D normalisation")

    def joints(c):
        c["ema"] = {**c["ema"], "module": {k: (torch.zeros(16, 16) if k.endswith("adjacency.weight") else v)
                                           for k, v in c["ema"]["module"].items()}}
    run(variant("joints", joints), "17-joint")
    # a DiffPose checkpoint without embedded phi_ST
    ck = load_checkpoint(out / "best.pt")
    ck = {k: v for k, v in ck.items() if k not in ("format", "format_version", "versions")}
    ck["extras"] = {}
    with pytest.raises(CheckpointError, match="must embed its context encoder"):
        load_model(save_checkpoint(tmp_path / "no_phi.pt", ck))


def test_old_diffpose_checkpoint_loads_as_joint(tiny_data, tmp_path):  # noqa: F811
    cfg = tiny_config(tiny_data, method="diffpose_joint", **{"train.max_steps": 2})
    train_run(cfg, tmp_path / "joint")
    ck = load_checkpoint(tmp_path / "joint" / "best.pt")
    ck["method"] = "diffpose"
    ck["config"] = {**ck["config"], "method": "diffpose"}
    ck["config"]["model"] = {k: v for k, v in ck["config"]["model"].items() if k != "context_checkpoint"}
    ck["versions"] = {**ck["versions"], "diffpose_viz": "0.1.0"}
    del ck["fingerprint"]  # 0.1.0 wrote none (load_checkpoint computes it)
    path = tmp_path / "old.pt"
    torch.save(ck, path)  # as 0.1.0 wrote it (no re-stamping)
    model = load_model(path)
    assert model.method.name == "diffpose_joint" and model.method.model_name == "diffpose_joint"


def test_start_from_context_at_t0_returns_phi_st_pose_with_residual(tiny_data, lifter_ckpt, tmp_path):  # noqa: F811
    """start_from 'context' + start_t: the chain starts at phi_ST's pose; with the residual denoiser untrained
    (zero correction) and one DDIM step from t = 0, every hypothesis is phi_ST's pose exactly."""
    from diffpose_viz.inference import load_model

    cfg = tiny_config(tiny_data, method="diffpose", **{"model.context_checkpoint": str(lifter_ckpt),
                                                       "model.residual_to_context": True, "train.max_steps": 1,
                                                       "train.lr": 1e-12})
    train_run(cfg, tmp_path / "res")
    model = load_model(tmp_path / "res" / "best.pt")
    cond = torch.rand(4, 17, 3) - 0.5
    cond[..., 2] = 1.0
    asked = SamplingSetting.from_items(["start_t=0", "start_from=context"], SamplingSetting(3, 1))
    pred = _predict(model, cond, _hk_for(model, cond), asked)
    phi = model.network.phi_st(cond)
    np.testing.assert_allclose(pred.hypotheses, (phi - phi[:, :1])[:, None].expand(-1, 3, -1, -1).numpy(),
                               atol=2e-4)


def _predict(model, cond, gmm, setting, generator=None):
    from diffpose_viz.inference import predict
    from diffpose_viz.inputs import FeedBatch

    return predict(model, FeedBatch(cond, gmm, generator), setting)


def _hk_for(model, cond):
    from diffpose_viz.detector_sim import Detections2D
    from diffpose_viz.initialization.pose_init import modes_from_keypoints
    from diffpose_viz.inputs import build_hk

    kp = ((cond[..., :2].numpy() + np.array([1.0, 1.0])) * 500).astype(np.float32)
    det = Detections2D(kp, np.ones((len(kp), 17), np.float32), modes_from_keypoints(kp, 5.0).astype(np.float32),
                       np.zeros((len(kp), 17), bool))
    return build_hk(det, np.tile([[1145.0, 1145.0, 500.0, 500.0]], (len(kp), 1)), model.prior, model.cfg.init, seed=0)


def test_a_sampling_request_changes_how_the_model_samples_not_the_model(stage2):
    from diffpose_viz.inference import load_model

    _, out = stage2
    model = load_model(out / "best.pt")
    changed = model.method.sampling(model.cfg, SamplingSetting.from_items(["diffusion.start_t=12"]))
    assert changed.start_t == 12 and model.cfg.sampling.start_t is None
    with pytest.raises(ValueError, match="'start_t', 'start_from'"):  # the error lists the valid keys
        SamplingSetting.from_items(["model.hidden=8"])
    with pytest.raises(ValueError, match="start_t 12"):  # more steps than fit below the start step
        _predict(model, torch.zeros(1, 17, 3), None, SamplingSetting(2, 14, start_t=12))


def test_evaluate_on_the_validation_split(stage2, tmp_path):
    from diffpose_viz.evaluation.evaluate import evaluate

    _, out = stage2
    res = evaluate(out / "best.pt", tmp_path / "val.nc", data=EvalData(split="val"), progress=False,
                   sampling=SamplingSetting(start_t=12, start_from="context"))
    from diffpose_viz.results import load_results

    ds = load_results(res.results_path)
    assert ds.attrs["split"] == "val" and "validation rows" in ds.attrs["dataset"]
    assert set(np.unique(ds["subject"].values)) <= {"syn_a", "syn_b", "syn_c"}  # training subjects only
    assert res.summary["uncertainty"]["calibration_source"] == "none"


def test_evaluate_on_another_file_calibrates_on_the_training_file(stage2, tiny_data, tmp_path):  # noqa: F811
    """Unseen bodies in another data file: the test rows come from it, the calibration from the training file."""
    import shutil

    from diffpose_viz.evaluation.evaluate import evaluate

    _, out = stage2
    other = tmp_path / "other_people.npz"
    shutil.copy(tiny_data, other)
    res = evaluate(out / "best.pt", tmp_path / "x.nc", data=EvalData(data_path=other, subjects=("syn_t",)),
                   progress=False)
    assert res.summary["uncertainty"]["calibration_source"].startswith("validation split")


def test_gaussian_forward_with_the_same_frozen_phi_st(tiny_data, lifter_ckpt, tmp_path):  # noqa: F811
    """diffusion.forward 'gaussian': the ablation with the same frozen phi_ST and network, N(0, s^2 I) forward
    and start; its hypotheses do not depend on H_K."""
    from diffpose_viz.inference import load_model

    cfg = tiny_config(tiny_data, method="diffpose", **{"model.context_checkpoint": str(lifter_ckpt),
                                                       "diffusion.forward": "gaussian", "train.max_steps": 3})
    train_run(cfg, tmp_path / "g")
    model = load_model(tmp_path / "g" / "best.pt")
    assert model.method.sampler(model, model.method.sampling(model.cfg)).mode == "gaussian"
    cond = torch.rand(2, 17, 3) - 0.5
    cond[..., 2] = 1.0
    gmm = _hk_for(model, cond)
    a = _predict(model, cond, gmm, SamplingSetting(3, 2), torch.Generator().manual_seed(0))
    wide = type(gmm)(gmm.weights, gmm.means + 1.0, gmm.variances * 9, gmm.root_depth, gmm.root_depth_source,
                     gmm.missing)
    b = _predict(model, cond, wide, SamplingSetting(3, 2), torch.Generator().manual_seed(0))
    np.testing.assert_allclose(a.hypotheses, b.hypotheses, atol=1e-6)
