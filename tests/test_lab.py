"""The what-if lab (diffpose_viz/lab.py) on the smoke run that `make test` builds first."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from diffpose_viz import lab
from diffpose_viz.config import parse_config
from diffpose_viz.methods import METHODS, LoadedModel

from tiny_runs import SMOKE_RESULTS, SMOKE_RUNS

# The joint-trained variant: at smoke size (three training steps) the two-stage denoiser is too untrained for
# the spread property; the lab code path is the same for every diffusion method.
RESULTS = SMOKE_RESULTS / "diffpose_joint.nc"
CKPT = SMOKE_RUNS / "diffpose_joint" / "best.pt"
WRIST = 13  # left_wrist


@pytest.fixture(scope="module")
def smoke(smoke_run):
    from diffpose_viz.inference import load_model

    sample = lab.open_sample(RESULTS, 3)
    return sample, load_model(sample.checkpoint)


def test_open_sample_reads_the_file_and_its_checkpoint(smoke):
    sample, model = smoke
    assert sample.checkpoint.resolve() == CKPT.resolve()
    assert sample.keypoints.shape == (17, 2) and sample.gt.shape == (17, 3)
    assert sample.camera.res_w > 0 and sample.intrinsics.shape == (4,)
    assert model.name == "diffpose_joint"


def test_hiding_a_joint_grows_its_kernel_and_hypothesis_spread(smoke):
    sample, model = smoke
    before = lab.rerun(model, sample, n_hypotheses=20, n_steps=5, seed=0)
    hidden = lab.edit_2d(sample, hide=["left_wrist"])
    assert np.isnan(hidden.keypoints[WRIST]).all() and hidden.confidence[WRIST] == 0 and hidden.hidden == ("left_wrist",)
    after = lab.rerun(model, hidden, n_hypotheses=20, n_steps=5, seed=0)
    assert before.uses_hk and after.uses_hk and "H_K re-fitted" in after.note
    assert after.hypotheses.shape == (20, 17, 3)
    assert after.trajectory.shape == (20, 6, 17, 3) and after.x0_estimate.shape == (20, 6, 17, 3)
    assert after.gmm["weight"].shape[0] == 17
    assert after.kernel_spread_mm[WRIST] > before.kernel_spread_mm[WRIST]
    assert after.spread_mm[WRIST] > before.spread_mm[WRIST]
    assert after.err_mm.shape == (17,) and np.isfinite(after.err_mm).all()
    table = lab.compare(before, after)
    assert table.loc[WRIST, "spread change"] > 0


def test_rerun_is_reproducible_and_offsets_move_the_input(smoke):
    sample, model = smoke
    a = lab.rerun(model, sample, 5, 3, seed=1)
    b = lab.rerun(model, sample, 5, 3, seed=1)
    np.testing.assert_allclose(a.hypotheses, b.hypotheses)
    moved = lab.edit_2d(sample, offsets={"left_wrist": (40, -25)}, std_px=12.0)
    np.testing.assert_allclose(moved.keypoints[WRIST], sample.keypoints[WRIST] + (40, -25))
    assert moved.offsets == {"left_wrist": (40.0, -25.0)} and (moved.std_px == 12.0).all()
    assert not np.allclose(lab.rerun(model, moved, 5, 3, seed=1).hypotheses, a.hypotheses)


def test_start_step_and_given_depth(smoke):
    sample, model = smoke
    res = lab.rerun(model, sample, 4, 5, seed=0, start_step=2, depth_source=4.0)
    assert res.trajectory.shape == (4, 4, 17, 3)
    assert "4.00 m" in res.note and res.gmm["root_depth"] == pytest.approx(4.0)
    with pytest.raises(lab.LabError, match="start_step"):
        lab.rerun(model, sample, 4, 5, start_step=5)


def test_bench_figure_on_one_frame(smoke):
    """The issue's budget: one frame, N=20, K=5 answers in < 2 s on the CPU (it takes ~10 ms on the smoke net)."""
    sample, model = smoke
    lab.rerun(model, sample, 20, 5)
    assert lab.rerun(model, lab.edit_2d(sample, hide=[WRIST]), 20, 5).seconds < 2.0


def test_lifter_path_says_no_hk_and_sees_the_edits(smoke):
    sample, _ = smoke
    cfg = parse_config({**sample.config, "method": "lifter"})
    method = METHODS["lifter"]
    net = method.build_network(cfg).eval()
    model = LoadedModel(cfg, method, net, None, path="untrained lifter")
    s = replace(sample, model_name=method.model_name)
    res = lab.rerun(model, s, 20, 5)
    assert not res.uses_hk and res.gmm is None and res.kernel_spread_mm is None
    assert "does not sample from H_K" in res.note
    assert res.trajectory is None and res.hypotheses.shape[1:] == (17, 3)
    edited = lab.rerun(model, lab.edit_2d(s, hide=["left_wrist"], offsets={"right_wrist": (30, 30)}), 20, 5)
    assert not np.allclose(edited.pred, res.pred)
    with pytest.raises(lab.LabError, match="the model is lifter"):
        lab.rerun(model, sample, 2, 2)


def _results_with(tmp_path: Path, **attrs) -> Path:
    ds = xr.load_dataset(RESULTS)
    ds.attrs.update(attrs)
    out = tmp_path / "diffpose.nc"
    ds.to_netcdf(out)
    return out


def test_missing_checkpoint_is_a_clear_error(smoke, tmp_path):
    path = _results_with(tmp_path, checkpoint=str(tmp_path / "gone" / "best.pt"))
    with pytest.raises(lab.LabError, match="does not exist"):
        lab.open_sample(path, 0)


def test_checkpoint_of_another_config_is_a_clear_error(smoke, tmp_path):
    cfg = json.loads(xr.load_dataset(RESULTS).attrs["config"])
    cfg["model"]["hidden"] = cfg["model"]["hidden"] * 2
    path = _results_with(tmp_path, checkpoint=str(CKPT), config=json.dumps(cfg))
    with pytest.raises(lab.LabError, match="another config.*model.hidden"):
        lab.open_sample(path, 0)


def test_bad_edits_and_index(smoke):
    sample, _ = smoke
    with pytest.raises(lab.LabError, match="no joint"):
        lab.edit_2d(sample, hide=["tail"])
    with pytest.raises(lab.LabError, match="out of range"):
        lab.open_sample(RESULTS, 10_000)


def test_the_lab_scores_an_edited_input_out_of_domain(smoke):
    sample, model = smoke
    assert sample.ood_model is not None, "evaluate stores the out-of-domain model next to the smoke results"
    before = lab.rerun(model, sample, 5, 2, seed=0)
    wrists_up = {j: (0.0, -300.0) for j in ("left_wrist", "right_wrist", "left_ankle", "right_ankle")}
    after = lab.rerun(model, lab.edit_2d(sample, offsets=wrists_up), 5, 2, seed=0)
    assert before.ood_score is not None and after.ood_score > before.ood_score
    assert after.outside_training and after.radius_mm.shape == (17,)
    bare = lab.rerun(model, replace(sample, ood_model=None), 5, 2, seed=0)
    assert bare.ood_score is None and "no out-of-domain model" in bare.note
