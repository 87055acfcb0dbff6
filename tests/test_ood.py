"""The out-of-domain score and the error bars conditional on it (diffpose_viz.ood).

Synthetic data with a known shift: hypotheses and truth are Gaussian around one mean, and the truth's spread
grows with a known per-sample "domain shift" s: the truth scatters around the hypotheses' mean with
sigma_truth = sigma_hyp * exp(C * s). Validation rows are in domain
(s around 0), the shifted test rows have s around 3. The score test uses real geometry (the fixture body of
conftest, seen by Human3.6M cameras) and other bodies (shoulders and hips widened) as the shift.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import _world_pose, make_results_dataset
from diffpose_viz import ood
from diffpose_viz import uncertainty as U
from diffpose_viz.augmentation import BODY_GROUPS, bone_scale_matrix, rescale_bones
from diffpose_viz.camera import h36m_cameras
from diffpose_viz.results import add_ood, load_results, write_results

C = 0.5
TOL = 0.04


def shifted(n: int, shift: np.ndarray, seed: int, n_hyp: int = 5):
    rng = np.random.default_rng(seed)
    sigma = np.exp(rng.normal(np.log(0.02), 0.4, (n, 17)))
    mu = rng.normal(0.0, 0.3, (n, 17, 3))
    hyps = mu[:, None] + rng.standard_normal((n, n_hyp, 17, 3)) * sigma[:, None, :, None]
    # the truth scatters around the hypotheses' mean, so error / spread grows exactly as exp(C * shift)
    gt = hyps.mean(1) + rng.standard_normal((n, 17, 3)) * (sigma * np.exp(C * shift)[:, None])[..., None]
    hyps[:, :, 0], gt[:, 0] = 0.0, 0.0
    return hyps, gt


def cov90(cal, hyps, gt, score=None):
    spread, err = U.hypothesis_spread_mm(hyps), U.joint_errors_mm(hyps.mean(1), gt)
    if score is None:
        return cal.coverage(spread, err, None)[0.9]
    return cal.coverage(spread, err, None, score)[0.9]


def test_normalised_conformal_holds_under_a_known_shift_where_split_conformal_under_covers():
    rng = np.random.default_rng(0)
    s_val = rng.normal(0.0, 1.0, 4000)  # validation: in domain only
    s_in, s_out = rng.normal(0.0, 1.0, 2000), rng.normal(3.0, 0.3, 2000)
    val, test_in, test_out = shifted(4000, s_val, 1), shifted(2000, s_in, 2), shifted(2000, s_out, 3)
    plain = U.fit_calibration(*val, by_occlusion=False)
    cond = ood.fit_score_calibration(*val, None, s_val, kind="normalised", by_occlusion=False)
    assert cond.slope == pytest.approx(C, abs=0.05)
    assert cov90(plain, *test_out) < 0.75  # the unconditional radius does not know the shift
    assert abs(cov90(cond, *test_out, s_out) - 0.9) < TOL
    assert abs(cov90(cond, *test_in, s_in) - 0.9) < TOL
    assert abs(cov90(plain, *test_in) - 0.9) < TOL  # in domain both hold


def test_mondrian_holds_on_the_shifted_part_when_validation_holds_some_of_it():
    rng = np.random.default_rng(1)
    s_val = np.concatenate([rng.normal(0.0, 0.5, 3000), rng.normal(3.0, 0.3, 1500)])  # a held-out source
    s_out = rng.normal(3.0, 0.3, 2000)
    val, test_out = shifted(len(s_val), s_val, 4), shifted(2000, s_out, 5)
    plain = U.fit_calibration(*val, by_occlusion=False)
    mondrian = ood.fit_score_calibration(*val, None, s_val, kind="mondrian", by_occlusion=False)
    assert cov90(plain, *test_out) < 0.85
    assert abs(cov90(mondrian, *test_out, s_out) - 0.9) < TOL
    again = ood.ScoreCalibration.from_dict(json.loads(json.dumps(mondrian.to_dict())))
    assert cov90(again, *test_out, s_out) == cov90(mondrian, *test_out, s_out)


def _poses(n: int, seed: int, widen: float = 1.0):
    """(2D px, 3D camera-frame root-relative) of the fixture body; widen > 1 = a broader person."""
    rng = np.random.default_rng(seed)
    cams = h36m_cameras("S9")
    kp, rel = np.empty((n, 17, 2)), np.empty((n, 17, 3))
    scales = {"global": np.ones(1), **{g: np.full(1, widen if g in ("shoulders", "hips") else 1.0)
                                       for g in BODY_GROUPS}}
    k = bone_scale_matrix(scales)
    for i in range(n):
        w = _world_pose(rng)
        w = rescale_bones((w - w[0])[None], k)[0] + w[0]
        cam = cams[i % 4]
        x = cam.world_to_camera(w)
        kp[i], rel[i] = cam.project(x), x - x[0]
    return kp, rel


def test_the_score_ranks_other_bodies_above_the_training_body():
    kp_train, _ = _poses(600, 0)
    kp_val, rel_val = _poses(300, 1)
    kp_in, rel_in = _poses(300, 2)
    kp_out, _ = _poses(300, 3, widen=1.7)
    density = ood.PoseDensity2D.fit(kp_train)
    hyp = lambda rel: np.repeat(rel[:, None], 2, 1)  # noqa: E731 - a lifter that predicts the training body
    raw_val = ood.raw_components(density, kp_val, None, rel_val, hyp(rel_val))
    scorer = ood.fit_scorer(density, raw_val)
    assert set(scorer.components) == {"pose_2d", "reprojection"}  # no H_K here
    s_in = scorer.score(ood.raw_components(density, kp_in, None, rel_in, hyp(rel_in)))[0]
    s_out = scorer.score(ood.raw_components(density, kp_out, None, rel_in, hyp(rel_in)))[0]
    assert ood.auroc(s_in, s_out) > 0.9
    assert np.mean(s_out > scorer.threshold) > 0.5 and np.mean(s_in > scorer.threshold) < 0.1
    # missing joints use the marginal: hiding two joints keeps a typical pose typical
    conf = np.ones((300, 17))
    conf[:, [3, 13]] = 0
    d_hidden = density.distance(kp_in, conf)
    assert np.isfinite(d_hidden).all() and np.median(d_hidden) < 3 * np.median(density.distance(kp_in))


def test_reprojection_residual_is_zero_for_a_consistent_pose_and_grows_with_a_wrong_one():
    kp, rel = _poses(20, 4)
    ortho = rel[..., :2] * 1000 + 500  # an orthographic view of the pose: explained exactly
    assert np.allclose(ood.reprojection_residual(ortho, None, rel), 0, atol=1e-9)
    good = ood.reprojection_residual(kp, None, rel)
    bad = ood.reprojection_residual(kp, None, rel[::-1])
    assert (good < 0.1).all() and np.median(bad) > 3 * np.median(good)


def test_score_and_radius_round_trip_through_the_results_file(tmp_path):
    ds = make_results_dataset(n_clean=40, n_occluded=10, seed=3)
    train = make_results_dataset(n_clean=200, n_occluded=0, seed=4)
    val = make_results_dataset(n_clean=120, n_occluded=20, seed=5)
    model = ood.fit_ood_model(train["input_2d"].values, train["confidence"].values,
                              val_keypoints=val["input_2d"].values, val_confidence=val["confidence"].values,
                              val_hyps=val["hypotheses"].values, val_gt=val["gt"].values,
                              val_occluded=val["occluded"].values.astype(bool), val_gmm=ood.gmm_of(val))
    assert "spread_vs_hk" in model.scorer.components
    scored = ood.score_results(model, ds)
    out = tmp_path / "r.nc"
    write_results(add_ood(ds, scored, model), out)
    back = load_results(out)
    np.testing.assert_allclose(back["ood_score"].values, scored.score, rtol=1e-6)
    np.testing.assert_allclose(back["radius"].values, scored.radius, rtol=1e-6)
    assert (back["ood_flag"].values.astype(bool) == scored.flag).all()
    assert list(back["ood_component"].values) == list(ood.COMPONENTS)
    assert back["radius"].attrs["level"] == pytest.approx(0.9)
    again = ood.OODModel.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_allclose(ood.score_results(again, ds).radius, scored.radius)
    summary = ood.ood_summary(model, back)
    assert set(summary["coverage_conditional"]) == {"normalised", "mondrian", "per_component"}
    json.dumps(summary)


def test_results_without_the_new_fields_still_load(tmp_path):
    ds = make_results_dataset()
    write_results(ds, tmp_path / "old.nc")
    back = load_results(tmp_path / "old.nc")
    assert "ood_score" not in back and "radius" not in back


def test_bad_scale_is_refused():
    hyps, gt = shifted(50, np.zeros(50), 0)
    with pytest.raises(ValueError, match="scale must be"):
        U.fit_calibration(hyps, gt, scale=np.zeros(50))


def test_held_out_domain_validation_rows_choose_the_slope_when_the_score_is_noisy():
    """A noisy score attenuates the in-domain slope; validation rows of a held-out domain fix it."""
    rng = np.random.default_rng(2)
    s_val, s_shift, s_out = rng.normal(0.0, 1.0, 3000), rng.normal(2.0, 0.5, 1500), rng.normal(2.5, 0.5, 2000)
    noisy = lambda s: s + rng.normal(0.0, 1.0, len(s))  # noqa: E731 - what the model can see of the shift
    val, shift, test_out = shifted(3000, s_val, 6), shifted(1500, s_shift, 7), shifted(2000, s_out, 8)
    hyps, gt = np.concatenate([val[0], shift[0]]), np.concatenate([val[1], shift[1]])
    score = np.concatenate([noisy(s_val), noisy(s_shift)])
    rows = np.r_[np.zeros(3000, bool), np.ones(1500, bool)]
    ols = ood.fit_score_calibration(hyps[~rows], gt[~rows], None, score[~rows], by_occlusion=False)
    held = ood.fit_score_calibration(hyps, gt, None, score, shift_rows=rows, by_occlusion=False)
    o = noisy(s_out)
    assert held.slope > ols.slope + 0.1
    assert cov90(ols, *test_out, o) < 0.8 and cov90(held, *test_out, o) > 0.85
    s_in = rng.normal(0.0, 1.0, 2000)
    test_in = shifted(2000, s_in, 9)
    assert cov90(held, *test_in, noisy(s_in)) > 0.88  # in domain it only widens


def test_every_held_out_domain_is_covered_not_just_their_pool():
    rng = np.random.default_rng(3)
    s_val, s1, s2 = rng.normal(0.0, 1.0, 2000), rng.normal(1.0, 0.3, 1500), rng.normal(3.0, 0.3, 300)
    noisy = lambda s: s + rng.normal(0.0, 1.0, len(s))  # noqa: E731
    parts = [shifted(len(s), s, seed) for s, seed in ((s_val, 10), (s1, 11), (s2, 12))]
    hyps, gt = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    score = np.concatenate([noisy(s_val), noisy(s1), noisy(s2)])
    domain = np.r_[np.zeros(2000, int), np.ones(1500, int), np.full(300, 2)]
    pooled = ood.fit_score_calibration(hyps, gt, None, score, shift_rows=domain > 0, by_occlusion=False)
    each = ood.fit_score_calibration(hyps, gt, None, score, shift_rows=domain, by_occlusion=False)
    small = domain == 2
    assert each.slope >= pooled.slope
    assert cov90(each, hyps[small], gt[small], score[small]) >= 0.9


def _two_shifts(n_in: int, n_body: int, n_view: int, seed: int):
    """Rows of three domains with known z's: in domain (z ~ 0); a body-like shift where component 0 is up and the
    error grows as exp(0.8 z0); a view-like shift where component 1 is far up but the error barely grows
    (exp(0.05 z1)). z columns follow ood.COMPONENTS (only the first two used)."""
    rng = np.random.default_rng(seed)
    z = np.full((n_in + n_body + n_view, len(ood.COMPONENTS)), np.nan)
    z[:, :2] = rng.normal(0.0, 1.0, (len(z), 2))
    z[n_in:n_in + n_body, 0] += 2.0
    z[n_in + n_body:, 1] += 3.0
    log_scale = np.r_[0.1 * z[:n_in, 0], 0.8 * z[n_in:n_in + n_body, 0], 0.05 * z[n_in + n_body:, 1]]
    hyps, gt = shifted(len(z), log_scale / C, seed + 100)
    domain = np.r_[np.zeros(n_in, int), np.ones(n_body, int), np.full(n_view, 2)]
    return hyps, gt, z, domain


def test_per_component_scale_covers_two_different_shifts_where_one_slope_over_widens_one():
    hyps, gt, z, domain = _two_shifts(3000, 1500, 1500, 20)
    score = np.nanmean(z, 1)
    single = ood.fit_score_calibration(hyps, gt, None, score, shift_rows=domain, by_occlusion=False)
    comp = ood.fit_score_calibration(hyps, gt, None, score, kind="per_component", z=z, shift_rows=domain,
                                     components=("pose_2d", "reprojection"), by_occlusion=False)
    assert comp.weights["pose_2d"] > 0.5 and comp.weights["reprojection"] < 0.2  # it knows which shift is which
    th, tg, tz, td = _two_shifts(2000, 2000, 2000, 21)  # fresh rows of the same domains
    spread, err = U.hypothesis_spread_mm(th), U.joint_errors_mm(th.mean(1), tg)
    ts = np.nanmean(tz, 1)
    for d in (0, 1, 2):
        rows = td == d
        c = comp.coverage(spread[rows], err[rows], None, ts[rows], [0.9], z=tz[rows])[0.9]
        assert c > 0.86, (d, c)
        assert single.coverage(spread[rows], err[rows], None, ts[rows], [0.9])[0.9] > 0.86
    view = td == 2
    r_single = single.radii(spread[view], None, ts[view])[:, 1:].mean()
    r_comp = comp.radii(spread[view], None, ts[view], z=tz[view])[:, 1:].mean()
    assert r_comp < 0.5 * r_single  # one slope must be steep for the bodies and so over-widens the views
    assert ood.ScoreCalibration.from_dict(json.loads(json.dumps(comp.to_dict()))).weights == comp.weights
    with pytest.raises(ValueError, match="component z"):
        comp.radii(spread[view], None, ts[view])


def test_per_component_without_held_out_domains_is_a_non_negative_regression():
    hyps, gt, z, _ = _two_shifts(4000, 0, 0, 22)
    w = ood.fit_score_calibration(hyps, gt, None, np.nanmean(z, 1), kind="per_component", z=z,
                                  components=("pose_2d", "reprojection"), by_occlusion=False).weights
    assert w["pose_2d"] == pytest.approx(0.1, abs=0.05) and w["reprojection"] == pytest.approx(0.0, abs=0.05)


def test_proportions_component_rises_on_other_bodies_and_not_in_the_mean_score():
    train, body = _poses(400, 30)[1], _poses(400, 31, widen=1.6)[1]
    dens = ood.ProportionDensity.fit(train)
    assert np.median(dens.distance(body)) > 3 * np.median(dens.distance(_poses(400, 32)[1]))
    assert "proportions" in ood.COMPONENTS and "proportions" not in ood.SCORE_COMPONENTS


def test_per_component_fields_round_trip_and_old_model_dicts_still_open(tmp_path):
    ds = make_results_dataset(n_clean=40, n_occluded=10, seed=3)
    train = make_results_dataset(n_clean=200, n_occluded=0, seed=4)
    val = make_results_dataset(n_clean=240, n_occluded=40, seed=5)
    domain = (np.arange(280) >= 140).astype(int)
    model = ood.fit_ood_model(train["input_2d"].values, train["confidence"].values,
                              val_keypoints=val["input_2d"].values, val_confidence=val["confidence"].values,
                              val_hyps=val["hypotheses"].values, val_gt=val["gt"].values,
                              val_occluded=val["occluded"].values.astype(bool), val_gmm=ood.gmm_of(val),
                              shift_rows=domain, radius_from="per_component")
    assert model.per_component is not None and model.radius_from == "per_component"
    assert "proportions" in model.scorer.components
    assert set(model.validation["coverage_90"]) == {"normalised", "mondrian", "per_component"}
    scored = ood.score_results(model, ds)
    summary = ood.ood_summary(model, ds, scored)
    back = ood.model_from_metrics(json.loads(json.dumps({"uncertainty": {"ood": summary}})))
    assert back.radius_from == "per_component" and back.per_component.weights == model.per_component.weights
    assert back.validation == json.loads(json.dumps(model.validation))
    np.testing.assert_allclose(ood.score_results(back, ds).radius, scored.radius)
    write_results(add_ood(ds, scored, model), tmp_path / "r.nc")
    again = load_results(tmp_path / "r.nc")
    np.testing.assert_allclose(again["radius"].values, scored.radius, rtol=1e-6)
    assert again["radius"].attrs["calibration"].startswith("per_component")
    assert list(again["ood_component"].values) == list(ood.COMPONENTS)
    old = model.to_dict()  # a model dict written before round 6: no per_component, radius_from, proportions
    for key in ("per_component", "radius_from", "validation", ood.DIGEST_KEY, "checkpoint_fingerprint"):
        old.pop(key, None)
    old["scorer"].pop("proportions")
    old["scorer"]["centre"].pop("proportions")
    old["scorer"]["scale"].pop("proportions")
    legacy = ood.OODModel.from_dict(json.loads(json.dumps(old)))
    assert legacy.radius_from == "normalised" and legacy.per_component is None
    assert "proportions" not in legacy.scorer.components
    ls = ood.score_results(legacy, ds)
    np.testing.assert_allclose(ls.score, scored.score)  # the score never included the proportions
    assert np.isnan(ls.components[:, ood.COMPONENTS.index("proportions")]).all()
    ood.ood_summary(legacy, ds, ls)


def test_calibration_rows_round_trip(tmp_path):
    val = make_results_dataset(n_clean=30, n_occluded=5, seed=6)
    arrays = dict(train_keypoints=val["input_2d"].values, train_confidence=val["confidence"].values,
                  val_keypoints=val["input_2d"].values, val_confidence=val["confidence"].values,
                  val_hyps=val["hypotheses"].values, val_gt=val["gt"].values, val_occluded=val["occluded"].values,
                  shift_rows=np.zeros(35, int))
    ood.save_calibration_rows(tmp_path / "rows.npz", val_gmm=ood.gmm_of(val), calibrate_with=["a.npz"], **arrays)
    back = ood.load_calibration_rows(tmp_path / "rows.npz")
    for k, v in arrays.items():
        np.testing.assert_array_equal(back[k], v)
    assert back["val_pred"] is None and back["calibrate_with"] == ["a.npz"]
    assert set(back["val_gmm"]) == set(ood.gmm_of(val))


def test_choose_radius_never_takes_a_single_slope_that_widens_in_domain():
    cov = {"normalised": {"domain0": 0.90, "domain1": 0.98, "domain2": 0.89},
           "per_component": {"domain0": 0.90, "domain1": 0.95, "domain2": 0.87}}  # misses domain2 by 2 points
    sane = {"normalised": {"domain0": 150.0, "domain1": 400.0, "domain2": 200.0},
            "per_component": {"domain0": 120.0, "domain1": 800.0, "domain2": 190.0}}
    assert ood.choose_radius({"coverage_90": cov, "mean_radius_mm": sane}) == "normalised"
    blown = {**sane, "normalised": {"domain0": 91445.0, "domain1": 813712.0, "domain2": 2795.0}}  # measured, lifter
    assert ood.choose_radius({"coverage_90": cov, "mean_radius_mm": blown}) == "per_component"
    good = {**cov, "per_component": {"domain0": 0.9, "domain1": 0.95, "domain2": 0.9}}
    assert ood.choose_radius({"coverage_90": good, "mean_radius_mm": sane}) == "normalised"  # larger radius
    assert ood.choose_radius({"coverage_90": good, "mean_radius_mm": blown}) == "per_component"
