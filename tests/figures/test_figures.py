"""Figure builders: the data inside the figures (trace counts, ranges, frames, colours, orientation)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from diffpose_viz import figures as F
from diffpose_viz.figures.skeleton3d import axis_ranges, bone_polyline
from diffpose_viz.skeleton import H36M17

HEAD, PELVIS, ANKLE = H36M17.index("head_top"), H36M17.index("pelvis"), H36M17.index("right_ankle")


def _arr(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)


def test_plot_axes_make_the_person_stand(results_ds):
    gt = results_ds["gt"].values
    p = F.to_plot_axes(gt)
    # Camera y points down, so plot z = -y: head above pelvis above ankles in every sample.
    assert (p[:, HEAD, 2] > p[:, PELVIS, 2] + 0.5).all()
    assert (p[:, ANKLE, 2] < p[:, PELVIS, 2] - 0.6).all()
    np.testing.assert_allclose(p[..., 1], gt[..., 2])  # depth goes into plot y


def test_bone_polyline_has_one_nan_gap_per_bone():
    pose = np.random.default_rng(0).normal(size=(3, 17, 3))
    v = bone_polyline(pose)
    assert v.shape == (3 * 16 * 3, 3)
    assert np.isnan(v[2::3]).all() and np.isfinite(v[0::3]).all()


def test_skeleton_figure_traces_ranges_and_colours(results_ds):
    i = 3
    fig = F.skeleton_from_results(results_ds, i)
    names = [t.name for t in fig.data]
    assert len(fig.data) == 5, names  # hypotheses bones, GT bones, GT joints, pred bones, pred joints
    assert all(isinstance(t, go.Scatter3d) for t in fig.data)
    hyp_bones = fig.data[0]
    assert len(hyp_bones.x) == results_ds.sizes["hypothesis"] * 16 * 3  # every hypothesis in ONE trace
    joints = fig.data[-1]
    np.testing.assert_allclose(_arr(joints.marker.color), results_ds["err"].values[i], rtol=1e-6)
    assert joints.marker.cmin == 0 and joints.marker.cmax >= 100
    scene = fig.layout.scene
    assert scene.aspectmode == "data" and scene.camera.up.z == 1
    for ax, col in ((scene.xaxis, 0), (scene.yaxis, 1), (scene.zaxis, 2)):
        lo, hi = ax.range
        pts = np.concatenate([_arr(t.x if col == 0 else t.y if col == 1 else t.z) for t in fig.data])
        pts = pts[np.isfinite(pts)]
        assert lo <= pts.min() and pts.max() <= hi and ax.autorange is False
    # upright in the figure itself: head above pelvis in plot z
    z = _arr(joints.z)
    assert z[HEAD] > z[PELVIS] + 0.5


def test_skeleton_without_gt_or_hypotheses():
    pose = F.to_plot_axes(np.zeros((17, 3)))
    fig = F.skeleton_figure(np.random.default_rng(1).normal(0, 0.3, (17, 3)))
    assert len(fig.data) == 2 and pose.shape == (17, 3)


def test_trajectory_frames_slider_and_error_curve(results_ds):
    i = 1
    n_steps = results_ds.sizes["step"]
    fig = F.trajectory_from_results(results_ds, i)
    assert len(fig.frames) == n_steps
    assert len(fig.layout.sliders[0].steps) == n_steps
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["▶ play", "❚❚ pause"]
    assert len(fig.data) == 8
    # h_k of every hypothesis at the last frame is the final hypothesis (one bones trace for all of them).
    last = fig.frames[-1]
    assert list(last.traces) == [1, 2, 3, 4, 7]
    hk = np.stack([_arr(last.data[0].x), _arr(last.data[0].y), _arr(last.data[0].z)], -1)
    expect = bone_polyline(F.to_plot_axes(results_ds["hypotheses"].values[i]))
    np.testing.assert_allclose(hk, expect, atol=1e-5)
    # error curve = mean over joints of err_step; frame colours = err_step at that step
    np.testing.assert_allclose(_arr(fig.data[6].y), results_ds["err_step"].values[i].mean(-1), rtol=1e-5)
    for s, frame in enumerate(fig.frames):
        np.testing.assert_allclose(_arr(frame.data[3].marker.color), results_ds["err_step"].values[i, s], rtol=1e-5)
        assert frame.data[4].x[0] == s
    # ranges fixed and covering all frames
    xr_lo, xr_hi = fig.layout.scene.xaxis.range
    for frame in fig.frames:
        for tr in frame.data[:4]:
            x = _arr(tr.x)
            assert np.nanmin(x) >= xr_lo and np.nanmax(x) <= xr_hi
    # upright: mean x0 estimate's head above its pelvis in plot z
    z = _arr(fig.frames[-1].data[3].z)
    assert z[HEAD] > z[PELVIS]


def test_trajectory_subsamples_long_runs():
    traj = np.random.default_rng(0).normal(0, 0.2, (3, 200, 17, 3))
    fig = F.trajectory_figure(traj, max_steps=25)
    assert len(fig.frames) == len(fig.layout.sliders[0].steps) <= 25
    assert fig.frames[0].name == "0" and fig.frames[-1].name == "199"


def test_gmm_figure_shapes_opacity_and_placement(results_ds):
    i, joints = 2, [0, 3, 10, 13]
    fig = F.gmm_from_results(results_ds, i, joints=joints, n_samples=20)
    m = results_ds.sizes["kernel"]
    ellipses = [s for s in fig.layout.shapes if s.type == "circle"]
    bands = [s for s in fig.layout.shapes if s.type == "rect" and s.xref == "x2"]
    assert len(ellipses) == len(bands) == len(joints) * m
    w = results_ds["gmm_weight"].values[i][joints].ravel()
    np.testing.assert_allclose([s.opacity for s in ellipses], np.clip(w, 0.05, 1), rtol=1e-6)
    assert len(fig.data) == 5
    assert len(fig.data[2].x) == len(joints) * 20  # image-plane samples
    # The weak-perspective fit puts kernel centres on the projected keypoints (fixture: few px off).
    centres = np.array([[(s.x0 + s.x1) / 2, (s.y0 + s.y1) / 2] for s in ellipses]).reshape(len(joints), m, 2)
    kp = results_ds["input_2d"].values[i][joints]
    assert np.abs(centres.mean(1) - kp).max() < 30
    # Scale is f / depth for H36M cameras at ~5 m: about 1145 / 5 px per metre.
    assert 150 < fig.layout.meta["weak_perspective_scale_px_per_m"] < 400
    assert fig.layout.yaxis.autorange == "reversed"  # image v grows downwards


def test_sample_gmm_follows_weights():
    w = np.array([[0.9, 0.1]])
    mean = np.array([[[0.0, 0, 0], [10.0, 0, 0]]])
    var = np.full((1, 2, 3), 1e-4)
    s = F.sample_gmm(w, mean, var, 4000, 0)
    assert abs((s[0, :, 0] > 5).mean() - 0.1) < 0.02


def test_spread_vs_error_correlation_detects_informative_uncertainty(results_ds):
    spread = F.hypothesis_spread_mm(results_ds["hypotheses"].values)
    corr = F.spread_error_correlation(spread, results_ds["err"].values)
    assert corr["spearman"] > 0.2  # the fixture's hidden joints are both wider and worse
    rng = np.random.default_rng(0)
    noise = F.spread_error_correlation(rng.random((200, 17)), rng.random((200, 17)))
    assert abs(noise["spearman"]) < 0.1
    fig = F.spread_vs_error_figure(spread, results_ds["err"].values)
    assert len(fig.data) == 3 and len(fig.data[0].x) == results_ds.sizes["sample"] * 16
    assert fig.layout.meta["spearman"] == pytest.approx(corr["spearman"])


def test_per_joint_and_per_action(results_ds):
    err = results_ds["err"].values
    fig = F.per_joint_error_figure(err, occluded=results_ds["occluded"].values)
    assert [t.name for t in fig.data] == ["visible", "occluded"]
    vis = np.where(results_ds["occluded"].values.astype(bool), np.nan, err)
    np.testing.assert_allclose(_arr(fig.data[0].y), np.nanmean(vis, 0), rtol=1e-5)
    fig = F.per_action_error_figure(err, results_ds["action_group"].values)
    groups = np.unique(results_ds["action_group"].values)
    assert len(fig.data[0].x) == len(groups)
    assert list(_arr(fig.data[0].y)) == sorted(_arr(fig.data[0].y))


def test_error_vs_steps_and_hypotheses(results_ds):
    fig = F.error_vs_steps_figure(results_ds["err_step"].values, results_ds["timestep"].values)
    np.testing.assert_allclose(_arr(fig.data[1].y), results_ds["err_step"].values.mean((0, 2)), rtol=1e-5)
    curves = F.error_vs_hypotheses(results_ds["hypotheses"].values, results_ds["gt"].values)
    h = results_ds.sizes["hypothesis"]
    assert curves["P-Agg"].shape == (h,)
    assert curves["P-Agg"][-1] == pytest.approx(results_ds["err"].values.mean(), rel=1e-4)
    # oracles only improve with more hypotheses, and never lose to the aggregate
    assert (np.diff(curves["J-Best (oracle)"]) <= 1e-9).all()
    assert (curves["J-Best (oracle)"] <= curves["P-Best (oracle)"] + 1e-9).all()
    fig = F.error_vs_hypotheses_figure(curves)
    assert [t.line.dash for t in fig.data] == ["solid", "dot", "dot"]


def test_model_comparison(results_dir):
    import xarray as xr
    runs = {p.stem: xr.load_dataset(p) for p in sorted(results_dir.glob("*.nc"))}
    table = F.model_summary_table(runs)
    assert set(table.index) == {"diffpose", "gaussian_diffusion", "deterministic_lifter"}
    assert table.loc["diffpose", "MPJPE P-Agg (mm)"] == pytest.approx(runs["diffpose"]["err"].values.mean())
    per_action = F.per_action_table(runs)
    fig = F.model_comparison_figure(per_action)
    assert len(fig.data) == 3 and len(fig.data[0].x) == len(per_action)
    ea, eb, labels = F.matched_sample_errors(runs["diffpose"], runs["deterministic_lifter"])
    assert len(ea) == runs["diffpose"].sizes["sample"] == len(labels)
    fig = F.paired_error_figure(ea, eb, "diffpose", "deterministic_lifter", labels)
    assert fig.layout.xaxis.range == fig.layout.yaxis.range


def test_occlusion_pairs_widen(results_ds):
    pairs = F.occlusion_pairs(results_ds)
    assert len(pairs) == 4 and all(c < o for c, o in pairs)
    case = F.occlusion_case(results_ds, *pairs[0])
    hidden = case["occluded"]
    assert hidden.sum() == 3
    # hidden joints: H_K and the hypotheses are wider than with the joint visible
    assert (case["initial_spread"][1, hidden] > case["initial_spread"][0, hidden]).all()
    assert case["hypothesis_spread"][1, hidden].mean() > case["hypothesis_spread"][0, hidden].mean()
    fig = F.occlusion_comparison_figure(case)
    assert len(fig.data) == 6
    assert sum(t.endswith("*") for t in fig.data[0].x) == 3
    fig = F.occlusion_summary_figure(results_ds)
    assert len(fig.data) == 4


def test_bad_input_is_named(results_ds):
    with pytest.raises(ValueError, match="hypothesis, step, joint"):
        F.trajectory_figure(np.zeros((5, 17, 3)))
    with pytest.raises(IndexError, match="out of range"):
        F.skeleton_from_results(results_ds, 999)
    with pytest.raises(KeyError, match="trajectory"):
        F.trajectory_from_results(results_ds.drop_vars(["trajectory"]), 0)
    assert axis_ranges(np.full((17, 3), np.nan)) == [[-1.0, 1.0]] * 3
