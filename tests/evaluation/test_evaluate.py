"""evaluate() writes a schema-conforming netCDF that can be reopened; the loader names what is wrong."""
from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from diffpose_viz.errors import ResultsError
from diffpose_viz.evaluation.evaluate import EvalData, evaluate
from diffpose_viz.results import VARIABLES, load_results, write_results
from diffpose_viz.inference import SamplingSetting, lift_2d, load_model
from diffpose_viz.inputs import default_camera
from diffpose_viz.training.trainer import train

from tiny_runs import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def diffpose_run(tiny_data, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("evalrun")
    cfg = tiny_config(tiny_data, **{"method": "diffpose_joint", "train.max_steps": 8, "diffusion.n_hypotheses": 3,
                                    "diffusion.n_sampling_steps": 4})
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(cfg, out, progress=False)
    finally:
        torch.set_num_threads(before)


def test_evaluate_writes_schema_conforming_results(diffpose_run, tmp_path):
    res = evaluate(diffpose_run.best, tmp_path / "diffpose.nc", sampling=SamplingSetting(record=True), progress=False)
    ds = load_results(res.results_path)  # validates
    n = ds.sizes["sample"]
    assert n == 24 and ds.sizes["hypothesis"] == 3 and ds.sizes["joint"] == 17 and ds.sizes["kernel"] == 2
    assert ds.sizes["step"] == 5  # h_K + 4 DDIM states; the last is the final h_0
    assert list(ds["timestep"].values[[0, -1]]) == [49, -1]
    for name, (dims, units, _) in VARIABLES.items():
        assert name in ds, name
        assert ds[name].dims == dims and ds[name].attrs["units"] == units
    np.testing.assert_allclose(ds["pred"].values, ds["hypotheses"].mean("hypothesis").values, atol=1e-6)
    np.testing.assert_allclose(ds["trajectory"].isel(step=-1).values, ds["hypotheses"].values, atol=1e-6)
    err = np.linalg.norm(ds["pred"].values - ds["gt"].values, axis=-1) * 1000
    np.testing.assert_allclose(ds["err"].values, err, rtol=1e-4, atol=1e-3)
    assert np.all(ds["gt"].values[:, 0] == 0) and np.all(ds["hypotheses"].values[:, :, 0] == 0)
    assert json.loads(ds.attrs["config"])["method"] == "diffpose_joint"
    assert {"torch", "numpy", "python", "diffpose_viz"} <= set(json.loads(ds.attrs["versions"]))
    assert "oracle" in ds.attrs["oracle_note"] and ds.attrs["split"] == "test"
    assert set(ds["action_group"].values) == {"walk"}
    summary = json.loads(res.metrics_path.read_text())
    assert summary["P1_mm_frame_wise"] == pytest.approx(float(ds["err"].mean()), rel=1e-4)
    assert "P-Best (ORACLE)" in summary["multi_hypothesis_P1_mm_action_wise"]
    assert len(summary["P1_mm_per_step"]) == 5
    again = xr.open_dataset(res.results_path)  # plain xarray can reopen it too
    assert again.sizes == ds.sizes
    again.close()


def test_loader_names_file_and_missing_variable(diffpose_run, tmp_path):
    res = evaluate(diffpose_run.best, tmp_path / "full.nc", sampling=SamplingSetting(2, 2), progress=False)
    ds = load_results(res.results_path)
    assert "trajectory" not in ds and ds.sizes["hypothesis"] == 2
    broken = tmp_path / "broken.nc"
    write_results(ds.drop_vars("pred"), broken)
    with pytest.raises(ResultsError, match=r"broken\.nc.*'pred'"):
        load_results(broken)
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "absent.nc")


@pytest.mark.parametrize("method", ["lifter", "init_only"])
def test_baselines_evaluate_too(tiny_data, tmp_path, method):  # noqa: F811
    run = train(tiny_config(tiny_data, **{"method": method, "train.max_steps": 3}), tmp_path / method,
                progress=False)
    ds = load_results(evaluate(run.best, tmp_path / f"{method}.nc", progress=False).results_path)
    assert ds.attrs["model"] == {"lifter": "deterministic_lifter"}.get(method, method)
    assert ("gmm_mean" in ds) == (method == "init_only")


def test_lift_user_keypoints_without_ground_truth(diffpose_run, tmp_path):
    model = load_model(diffpose_run.best)
    cam = default_camera(1000, 1000)
    pose = np.array([[0, 0, 4.0]]) + np.random.default_rng(0).normal(0, 0.2, (17, 3))
    kp = np.repeat(cam.project(pose, distort=False)[None], 4, 0)
    kp[1, 13] = np.nan  # a missing wrist
    ds = lift_2d(model, kp, cam, SamplingSetting(2, record=True))
    path = write_results(ds, tmp_path / "wild.nc")
    back = load_results(path)
    assert "gt" not in back and "err" not in back and back.attrs["split"] == "wild"
    assert np.isfinite(back["hypotheses"].values).all()
    assert back["confidence"].values[1, 13] == 0


def test_evaluate_adds_the_out_of_domain_score_and_sample_reuses_it(diffpose_run, tmp_path):
    from diffpose_viz.evaluation.ood_file import annotate, load_ood_model
    from diffpose_viz.errors import InputError

    res = evaluate(diffpose_run.best, tmp_path / "d.nc", progress=False)
    ds = load_results(res.results_path)
    unc = json.loads(res.metrics_path.read_text())["uncertainty"]
    assert {"ood_score", "ood_flag", "radius"} <= set(ds.data_vars) and "ood_threshold" in ds.attrs
    assert np.isfinite(ds["ood_score"].values).all() and (ds["radius"].values[:, 1:] > 0).all()
    assert set(unc["ood"]["coverage_conditional"]["normalised"]) == {"50", "68", "80", "90", "95"}
    model = load_ood_model(res.metrics_path, diffpose_run.best)
    # user 2D: the test rows' own input, and the same input with the body stretched sideways (out of domain)
    kp = ds["input_2d"].values.copy()
    wide = kp.copy()
    wide[..., 0] = kp[:, :1, 0] + 2.5 * (kp[..., 0] - kp[:, :1, 0])
    cam = default_camera(1000, 1000)
    m = load_model(diffpose_run.best)
    lifted, _ = annotate(lift_2d(m, np.concatenate([kp, wide]), cam, confidence=np.ones((2 * len(kp), 17))), model)
    write_results(lifted, tmp_path / "user.nc")
    back = load_results(tmp_path / "user.nc")
    score = back["ood_score"].values
    assert np.median(score[len(kp):]) > np.median(score[:len(kp)])
    twice = evaluate(diffpose_run.best, tmp_path / "d2.nc", progress=False,
                     data=EvalData(calibrate_with=(json.loads(ds.attrs["config"])["data"]["path"],),
                                   allow_leakage=True))  # the training file itself: refused without it
    assert "held-out-domain validation rows" in twice.summary["uncertainty"]["calibration_source"]
    # the unconditional calibration is fitted on the same rows as without them (only sampling noise differs: the
    # hypotheses are drawn in other batches)
    assert twice.summary["uncertainty"]["coverage_calibrated"]["90"] == pytest.approx(
        unc["coverage_calibrated"]["90"], abs=0.05)
    bad = tmp_path / "no_ood.metrics.json"
    bad.write_text(json.dumps({"uncertainty": {}}))
    with pytest.raises(InputError, match="no uncertainty -> ood -> model"):
        load_ood_model(bad)
    # matched by content, not path: a copy is the same model, a retrained one (other weights) is not
    import shutil

    import torch

    from diffpose_viz.checkpoint import save_checkpoint
    from diffpose_viz.errors import ProvenanceError

    shutil.copy(diffpose_run.best, tmp_path / "copy.pt")
    assert load_ood_model(res.metrics_path, tmp_path / "copy.pt").checkpoint_fingerprint == \
        model.checkpoint_fingerprint
    other = torch.load(diffpose_run.best, weights_only=True)
    name = next(k for k, v in other["ema"]["module"].items() if v.is_floating_point())
    other["ema"]["module"][name] = other["ema"]["module"][name] * 1.01
    save_checkpoint(tmp_path / "other.pt", other)
    with pytest.raises(ProvenanceError, match="fingerprint"):
        load_ood_model(res.metrics_path, tmp_path / "other.pt")


def test_evaluate_takes_at_most_eight_parameters():
    """What the command line asks is grouped (SamplingSetting, EvalData), not passed as loose options."""
    import inspect

    assert len(inspect.signature(evaluate).parameters) <= 8
