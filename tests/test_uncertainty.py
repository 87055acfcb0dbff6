"""The spread as an error bar: raw intervals, validation calibration, conformal guarantee, summary, figures, page.

Synthetic data: every joint has its own sigma (log-normal, so spread and error vary together); the hypotheses and
the truth are independent draws from isotropic Gaussians around the same mean. "Overconfident by k" shrinks the
hypotheses' sigma by k while the truth keeps the full sigma.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import make_results_dataset
from diffpose_viz import uncertainty as U
from diffpose_viz.figures import errors as FE
from diffpose_viz.figures import uncertainty as FU

REPO = Path(__file__).resolve().parents[1]
PAGE = str(REPO / "dashboard" / "pages" / "7_Uncertainty.py")
TIMEOUT = 60
TOL = 0.03


def synth(n_samples: int, n_hyp: int, seed: int = 0, over: float = 1.0, over_occluded: float | None = None,
          p_occluded: float = 0.2, tail_df: float | None = None):
    """hypotheses (S,N,17,3), gt (S,17,3) metres and occluded (S,17); the root is the origin."""
    rng = np.random.default_rng(seed)
    sigma = np.exp(rng.normal(np.log(0.02), 0.5, (n_samples, 17)))
    occ = rng.random((n_samples, 17)) < p_occluded
    occ[:, 0] = False
    shrink = np.where(occ, over if over_occluded is None else over_occluded, over)
    mu = rng.normal(0.0, 0.3, (n_samples, 17, 3))
    hyps = mu[:, None] + rng.standard_normal((n_samples, n_hyp, 17, 3)) * (sigma / shrink)[:, None, :, None]
    noise = rng.standard_normal((n_samples, 17, 3)) if tail_df is None else rng.standard_t(tail_df, (n_samples, 17, 3))
    gt = mu + noise * sigma[..., None]
    hyps[:, :, 0], gt[:, 0] = 0.0, 0.0
    return hyps, gt, occ


def spread_err(hyps, gt):
    return U.hypothesis_spread_mm(hyps), U.joint_errors_mm(hyps.mean(1), gt)


# --------------------------------------------------------------------------- spread, correlation, raw intervals


def test_spread_definitions_and_reuse_of_the_figures_numbers(results_ds):
    hyps = results_ds["hypotheses"].values.astype(np.float64)
    rms, mean = U.hypothesis_spread_mm(hyps), U.hypothesis_spread_mm(hyps, "mean")
    np.testing.assert_allclose(mean, FE.hypothesis_spread_mm(hyps))
    assert (rms >= mean - 1e-9).all() and rms.shape == (results_ds.sizes["sample"], 17)
    d = np.linalg.norm(hyps - hyps.mean(1, keepdims=True), axis=-1)
    np.testing.assert_allclose(rms, np.sqrt((d**2).mean(1)) * 1000)
    assert (U.hypothesis_spread_mm(hyps[:, :1]) == 0).all()
    with pytest.raises(ValueError, match="hypothesis"):
        U.hypothesis_spread_mm(hyps[0])
    with pytest.raises(ValueError, match="kind"):
        U.hypothesis_spread_mm(hyps, "std")
    err = results_ds["err"].values
    mine, theirs = U.spread_error_correlation(mean, err), FE.spread_error_correlation(mean, err)
    assert mine["spearman"] == pytest.approx(theirs["spearman"]) and mine["pearson"] == pytest.approx(theirs["pearson"])
    np.testing.assert_allclose(mine["per_joint_spearman"], theirs["per_joint_spearman"])
    assert np.isnan(mine["per_joint_pearson"][0]) and mine["n"] == err[:, 1:].size


def test_raw_coverage_is_nominal_when_the_truth_is_one_more_draw():
    hyps, gt, _ = synth(2000, 10)
    s, e = spread_err(hyps, gt)
    cov = U.raw_coverage(s, e, n_hypotheses=10)  # exact finite-N form
    for p, c in cov.items():
        assert c == pytest.approx(p, abs=TOL), cov
    # The large-N chi-3 form needs many hypotheses; with 10 it is too narrow (81 % at a nominal 90 %).
    chi10 = U.raw_coverage(s, e)
    assert chi10[0.9] < 0.85 and chi10[0.5] < 0.45
    hyps, gt, _ = synth(800, 100, seed=1)
    s, e = spread_err(hyps, gt)
    for p, c in U.raw_coverage(s, e).items():
        assert c == pytest.approx(p, abs=TOL)
    # radii: the chi form is the limit of the F form
    assert U.raw_radius_mm(10.0, 0.9, 10_000) == pytest.approx(U.raw_radius_mm(10.0, 0.9), rel=1e-3)
    with pytest.raises(ValueError, match="2 hypotheses"):
        U.raw_radius_mm(10.0, 0.9, 1)


def test_binned_error_follows_the_ideal_line_and_the_ratio_is_c():
    hyps, gt, _ = synth(2000, 10, seed=2)
    s, e = spread_err(hyps, gt)
    c = U.ideal_error_per_spread(10)
    m = U.scored_joints(s.shape)
    assert np.mean(e[m] / s[m]) == pytest.approx(c, rel=0.02)
    assert U.ideal_error_per_spread(None) == pytest.approx(0.9213, abs=1e-4)
    assert U.ideal_error_per_spread(10) > U.ideal_error_per_spread(50) > U.ideal_error_per_spread(None)
    b = U.binned_spread_error(s, e, n_bins=8, n_hypotheses=10)
    assert len(b["spread_mm"]) == 8 and sum(b["count"]) == m.sum()
    assert np.all(np.diff(b["spread_mm"]) > 0)
    ratio = np.array(b["error_mm"]) / np.array(b["spread_mm"])
    assert np.all(np.abs(ratio / c - 1) < 0.15), ratio
    over = U.binned_spread_error(*spread_err(*synth(2000, 10, seed=2, over=3)[:2]), n_hypotheses=10)
    assert over["fitted_slope"] > 2.5 * c  # overconfident: errors far above the line
    json.dumps(b, allow_nan=False)


def test_correlation_per_group_and_on_occluded_joints():
    hyps, gt, occ = synth(600, 8, seed=3)
    s, e = spread_err(hyps, gt)
    groups = np.array(["walk", "sit", "eat"])[np.arange(600) % 3]
    per = U.correlation_by_group(s, e, groups)
    assert set(per) == {"walk", "sit", "eat"} and all(v["spearman"] > 0.3 for v in per.values())
    assert sum(v["n"] for v in per.values()) == 600 * 16
    only_occ = U.spread_error_correlation(s, e, occ)
    assert only_occ["n"] == occ[:, 1:].sum() and only_occ["spearman"] > 0.3
    noise = U.spread_error_correlation(np.random.default_rng(0).random((300, 17)), e[:300])
    assert abs(noise["spearman"]) < 0.1


# --------------------------------------------------------------------------- calibration


@pytest.mark.parametrize("method", ["quantile", "conformal"])
def test_overconfident_hypotheses_are_fixed_by_the_validation_calibration(method):
    # visible joints 3x overconfident, occluded ones 6x: a calibration per occlusion state is needed
    val = synth(2000, 10, seed=10, over=3, over_occluded=6)
    test = synth(2000, 10, seed=11, over=3, over_occluded=6)
    s, e = spread_err(*test[:2])
    occ = test[2]
    raw = U.raw_coverage(s, e, n_hypotheses=10)
    assert all(c < p - 0.3 for p, c in raw.items()), raw
    cal = U.fit_calibration(*val, U.DEFAULT_LEVELS, method=method)
    assert cal.score == "scaled" and (cal.source[:, 1:] == 0).all()  # every cell had enough validation joints
    assert cal.source[1, 0] == 2  # the pelvis is never occluded: its own scores over both states
    for mask in (None, occ, ~occ):
        for p, c in cal.coverage(s, e, occ, mask=mask).items():
            assert c == pytest.approx(p, abs=TOL), (method, p, c)
    pooled = U.fit_calibration(*val, U.DEFAULT_LEVELS, method=method, by_occlusion=False)
    assert pooled.coverage(s, e, occ, mask=occ)[0.9] < 0.8  # one scale for both states under-covers the occluded


def test_conformal_quantile_index():
    scores = np.arange(1.0, 20.0)  # n = 19
    assert U.conformal_quantile(scores, 0.9) == 18.0  # ceil(20 * 0.9) = 18, not 19 by rounding
    assert U.conformal_quantile(scores, 0.5) == 10.0
    assert U.conformal_quantile(scores[:5], 0.95) == np.inf  # ceil(6 * 0.95) = 6 > 5
    assert U.conformal_quantile([], 0.5) == np.inf


def test_split_conformal_guarantee_holds_on_exchangeable_data():
    """Few validation joints per cell, heavy-tailed truth: averaged over repetitions, conformal coverage is at least
    nominal and below k/(n+1) + a little, while the plain quantile falls short at 95 %."""
    n_val, n_test, trials = 30, 60, 150
    cov = {m: {p: [] for p in U.DEFAULT_LEVELS} for m in ("conformal", "quantile")}
    for t in range(trials):
        hyps, gt, occ = synth(n_val + n_test, 4, seed=1000 + t, tail_df=4)
        s, e = spread_err(hyps[n_val:], gt[n_val:])
        for method in cov:
            cal = U.fit_calibration(hyps[:n_val], gt[:n_val], occ[:n_val], method=method, by_occlusion=False,
                                    min_count=n_val)
            assert (cal.source == 0).all()
            for p, c in cal.coverage(s, e).items():
                cov[method][p].append(c)
    for p in U.DEFAULT_LEVELS:
        mean = np.mean(cov["conformal"][p])
        upper = np.ceil((n_val + 1) * p - 1e-9) / (n_val + 1)
        assert p - 0.005 <= mean <= upper + 0.01, (p, mean, upper)
    assert np.mean(cov["quantile"][0.95]) < 0.945


def test_deterministic_model_gets_a_per_joint_radius():
    val, test = synth(3000, 1, seed=20), synth(3000, 1, seed=21)
    cal = U.fit_calibration(*val)
    assert cal.score == "absolute" and cal.n_hypotheses == 1
    s, e = spread_err(*test[:2])
    assert (s == 0).all()
    for p, c in cal.coverage(s, e, test[2]).items():
        assert c == pytest.approx(p, abs=TOL)
    r = cal.radius(np.array([0.0, 50.0]), joint=5, occluded=False, level=0.9)
    assert r[0] == r[1] > 0  # no spread: the radius depends on the joint only
    with pytest.raises(ValueError, match="absolute"):
        U.fit_calibration(*val, score="scaled")
    ds = make_results_dataset("deterministic_lifter", n_hypotheses=1, n_kernels=0, with_trajectory=False)
    summ = U.uncertainty_summary(ds, cal)
    assert summ["n_hypotheses"] == 1 and summ["mean_spread_mm"] is None and summ["coverage_raw"] is None
    assert "conformal" in summ["note"] and set(summ["coverage_calibrated"]) == {"50", "68", "80", "90", "95"}
    json.dumps(summ, allow_nan=False)


def test_calibration_json_round_trip_and_radius():
    hyps, gt, occ = synth(200, 6, seed=30, p_occluded=0.05)
    cal = U.fit_calibration(hyps, gt, occ, (0.5, 0.9, 0.99))  # few occluded: pooled cells; 0.99 may be inf
    text = json.dumps(cal.to_dict(), allow_nan=False)
    back = U.Calibration.from_dict(json.loads(text))
    np.testing.assert_array_equal(back.table, cal.table)
    np.testing.assert_array_equal(back.source, cal.source)
    assert back.levels == cal.levels and back.method == cal.method and back.score == "scaled"
    assert (cal.source[1, 1:] == 1).all()  # occluded cells pooled over joints of the same state
    s, _ = spread_err(hyps, gt)
    for p in cal.levels:
        np.testing.assert_array_equal(back.radii(s, occ, p), cal.radii(s, occ, p))
    assert cal.radius(0.0, 3, False, 0.9) == pytest.approx(cal.factor(3, False, 0.9) * U.SPREAD_FLOOR_MM)
    tiny = U.fit_calibration(hyps[:20], gt[:20], None, (0.99,), min_count=5)
    assert np.isinf(tiny.table[0, 0, 1:]).all()
    back = U.Calibration.from_dict(json.loads(json.dumps(tiny.to_dict(), allow_nan=False)))
    assert np.isinf(back.table[0, 0, 1:]).all()
    with pytest.raises(ValueError, match="not calibrated"):
        cal.radius(10.0, 3, False, 0.8)
    with pytest.raises(ValueError, match="calibration"):
        U.Calibration.from_dict({"levels": [0.5]})
    assert U.level_key(0.68) == "68" and U.parse_level("68") == pytest.approx(0.68) and U.parse_level(0.9) == 0.9


# --------------------------------------------------------------------------- summary of a results Dataset


def test_summary_of_a_results_dataset(results_ds):
    summ = U.uncertainty_summary(results_ds)
    json.dumps(summ, allow_nan=False)
    err = results_ds["err"].values
    assert summ["mean_error_mm"] == pytest.approx(err[:, 1:].mean())
    assert summ["n_hypotheses"] == results_ds.sizes["hypothesis"]
    assert 0 <= summ["frac_within_1x_spread"] <= summ["frac_within_2x_spread"] <= 1
    assert set(summ["coverage_raw"]) == {"50", "68", "80", "90", "95"}
    assert set(summ["correlation"]["per_action"]) == set(results_ds["action_group"].values)
    assert "pelvis" not in summ["correlation"]["per_joint"] and len(summ["correlation"]["per_joint"]) == 16
    occ = results_ds["occluded"].values.astype(bool)
    assert summ["occlusion"]["occluded"]["n"] == occ[:, 1:].sum()
    assert summ["occlusion"]["visible"]["n"] + summ["occlusion"]["occluded"]["n"] == err[:, 1:].size
    assert "calibration" not in summ and "coverage_calibrated" not in summ
    # a calibration fitted on a (separately drawn) validation set
    val = make_results_dataset(n_clean=60, n_occluded=30, seed=5)
    with pytest.raises(ValueError, match="split='test'"):
        U.fit_calibration_from_results(val)
    val.attrs["split"] = "validation"
    cal = U.fit_calibration_from_results(val)
    summ = U.uncertainty_summary(results_ds, cal.to_dict())
    json.dumps(summ, allow_nan=False)
    assert U.calibration_from_metrics({"uncertainty": summ}).to_dict() == cal.to_dict()
    assert set(summ["coverage_calibrated"]) == set(summ["coverage_raw"])
    assert "coverage_calibrated" in summ["occlusion"]["occluded"]
    assert U.calibration_from_metrics({"P1": 3.0}) is None
    with pytest.raises(ValueError, match="ground truth"):
        U.uncertainty_summary(results_ds.drop_vars(["err", "gt"]))


def test_figures_from_the_summary(results_ds):
    summ = U.uncertainty_summary(results_ds)
    val = make_results_dataset(n_clean=60, n_occluded=30, seed=5)
    val.attrs["split"] = "validation"
    calibrated = U.uncertainty_summary(results_ds, U.fit_calibration_from_results(val))
    fig = FU.reliability_figure({"a": summ["coverage_raw"], "b": calibrated["coverage_raw"]},
                                {"b": calibrated["coverage_calibrated"]})
    names = [t.name for t in fig.data]
    assert names[1:] == ["a (raw)", "b (raw)", "b (calibrated)"]
    assert list(fig.data[1].x) == [50, 68, 80, 90, 95] and fig.data[1].line.dash == "dash"
    occ = summ["occlusion"]
    fig = FU.spread_error_bins_figure({"all joints": summ["binned"], "occluded": occ["occluded"]["binned"]})
    assert fig.data[-1].name.startswith("ideal: err = ") and fig.layout.meta["ideal_slope"] > 0
    fig = FU.per_joint_correlation_figure(summ["correlation"]["per_joint"], occ["occluded"]["correlation"]["per_joint"])
    assert [t.name for t in fig.data] == ["Spearman, all", "Pearson, all", "Spearman, occluded"]
    assert len(fig.data[0].x) == 16
    fig = FU.occlusion_uncertainty_figure(calibrated["occlusion"])
    assert {"visible (raw)", "occluded (calibrated)"} <= {t.name for t in fig.data}
    table = FU.coverage_table(calibrated)
    assert list(table.index) == ["50 %", "80 %", "90 %", "95 %"]
    assert {"raw, occluded", "calibrated, occluded"} <= set(table.columns)
    assert "calibrated, all joints" not in FU.coverage_table(summ).columns


# --------------------------------------------------------------------------- dashboard page


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _page(folder: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("DIFFPOSE_VIZ_RESULTS", str(folder))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    _ok(at)
    return at


def _store_calibration(folder: Path, name: str, test_ds, n_hypotheses: int = 5) -> None:
    """What `evaluate` is meant to write: the summary, with the validation calibration, under "uncertainty"."""
    val = make_results_dataset(name, n_clean=60, n_occluded=30, seed=7, n_hypotheses=n_hypotheses,
                               n_kernels=0, with_trajectory=False)
    val.attrs["split"] = "validation"
    summ = U.uncertainty_summary(test_ds, U.fit_calibration_from_results(val))
    (folder / f"{name}.metrics.json").write_text(json.dumps({"model": name, "uncertainty": summ}))


def test_page_on_the_fixture_folder(results_dir, monkeypatch):
    at = _page(results_dir, monkeypatch)
    overview = at.dataframe[0].value
    assert list(overview.index) == ["diffpose", "gaussian_diffusion"]  # N > 1 only
    assert (overview["calibration"] == "none").all()
    assert len(at.get("plotly_chart")) == 1 + 3 * 2  # reliability + three per model
    infos = [i.value for i in at.info]
    assert any("calibration needs validation residuals" in i for i in infos)
    assert any("`deterministic_lifter` is deterministic" in i for i in infos)
    cov = at.dataframe[1].value
    assert list(cov.index) == ["50 %", "80 %", "90 %", "95 %"] and "raw, occluded" in cov.columns


def test_page_shows_the_stored_calibration(tmp_path, monkeypatch):
    ds = make_results_dataset()
    ds.to_netcdf(tmp_path / "diffpose.nc")
    _store_calibration(tmp_path, "diffpose", ds)
    lifter = make_results_dataset("deterministic_lifter", n_hypotheses=1, n_kernels=0, with_trajectory=False)
    lifter.to_netcdf(tmp_path / "deterministic_lifter.nc")
    _store_calibration(tmp_path, "deterministic_lifter", lifter, n_hypotheses=1)
    at = _page(tmp_path, monkeypatch)
    assert at.dataframe[0].value.loc["diffpose", "calibration"] == "conformal on validation"
    assert not any("needs validation residuals" in i.value for i in at.info)
    cov = at.dataframe[1].value
    assert {"calibrated, all joints", "calibrated, occluded"} <= set(cov.columns)
    reliability = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "diffpose (calibrated)" in [t["name"] for t in reliability["data"]]
    radius = next(d.value for d in at.dataframe if "radius at 90 % (mm)" in d.value.columns)
    assert len(radius) == 17 and (radius["radius at 90 % (mm)"].iloc[1:] > 0).all()


def test_page_with_only_a_deterministic_model(tmp_path, monkeypatch):
    make_results_dataset("deterministic_lifter", n_hypotheses=1, n_kernels=0, with_trajectory=False).to_netcdf(
        tmp_path / "deterministic_lifter.nc")
    (tmp_path / "deterministic_lifter.metrics.json").write_text('{"uncertainty": {"calibration": {"levels": 3}}}')
    at = _page(tmp_path, monkeypatch)
    assert not at.get("plotly_chart") and not at.dataframe
    infos = [i.value for i in at.info]
    assert any("No model in this folder has more than one hypothesis" in i for i in infos)
    assert any("none is stored for it yet" in i for i in infos)
    assert "calibration not usable" in at.warning[0].value


# --------------------------------------------------------------------------- Streamlit config


_CONFIG_PROBE = """
import os, sys
from streamlit import config
from streamlit.web import bootstrap
if sys.argv[1]:
    config._main_script_path = os.path.abspath(sys.argv[1])  # what `streamlit run <script>` sets first
bootstrap.load_config_options(flag_options={})
print(config.get_option("client.toolbarMode"))
"""


@pytest.mark.parametrize("cwd,script", [("repo", ""), ("elsewhere", "dashboard/Overview.py")])
def test_streamlit_config_hides_the_deploy_button(cwd, script, tmp_path):
    """`streamlit run dashboard/Overview.py` from the repo root reads ./.streamlit/config.toml; started elsewhere (e.g.
    by `diffpose-viz dashboard`) it reads dashboard/.streamlit/config.toml next to the script. Each is checked alone."""
    root, local = REPO / ".streamlit" / "config.toml", REPO / "dashboard" / ".streamlit" / "config.toml"
    assert root.read_text() == local.read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env["HOME"] = str(tmp_path)  # no ~/.streamlit of the machine
    res = subprocess.run([sys.executable, "-c", _CONFIG_PROBE, str(REPO / script) if script else ""],
                         cwd=REPO if cwd == "repo" else tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "minimal"




def test_page_flags_samples_outside_the_training_domain(tmp_path, monkeypatch):
    from diffpose_viz import ood
    from diffpose_viz.results import add_ood

    train = make_results_dataset(n_clean=200, n_occluded=0, seed=4)
    val = make_results_dataset(n_clean=120, n_occluded=20, seed=5)
    model = ood.fit_ood_model(train["input_2d"].values, train["confidence"].values,
                              val_keypoints=val["input_2d"].values, val_confidence=val["confidence"].values,
                              val_hyps=val["hypotheses"].values, val_gt=val["gt"].values, val_gmm=ood.gmm_of(val))
    ds = make_results_dataset(n_clean=30, n_occluded=0, seed=6)
    ds["input_2d"] = ds["input_2d"] * [[[3.0, 0.5]]]  # a squashed, stretched 2D: unlike any training pose
    add_ood(ds, ood.score_results(model, ds), model).to_netcdf(tmp_path / "far.nc")
    make_results_dataset(seed=8).to_netcdf(tmp_path / "old.nc")  # no out-of-domain fields: still shown
    at = _page(tmp_path, monkeypatch)
    table = next(d.value for d in at.dataframe if "outside training (%)" in d.value.columns)
    assert table.loc["far", "outside training (%)"] > 50
    assert "lacks ood_score" in table.loc["old", "note"]
    assert any("outside what this model was trained on" in w.value for w in at.warning)
