"""Metrics: hand-computed values, alignment invariances, PCK/AUC, multi-hypothesis aggregation."""
import numpy as np
import pytest

from diffpose_viz import metrics as M
from diffpose_viz.camera import Camera
from diffpose_viz.skeleton import PCK14_JOINTS


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


@pytest.fixture
def poses():
    rng = np.random.default_rng(0)
    gt = rng.normal(scale=0.3, size=(8, 17, 3))
    gt[:, 0] = 0.0
    return gt


def test_shift_of_one_joint_by_10mm_gives_10mm_on_that_joint(poses):
    pred = poses.copy()
    pred[:, 5, 0] += 0.010
    err = M.mpjpe_per_joint(pred, poses)
    assert err.shape == (8, 17)
    np.testing.assert_allclose(err[:, 5], 10.0, atol=1e-9)
    np.testing.assert_allclose(np.delete(err, 5, axis=1), 0.0, atol=1e-9)
    assert M.mpjpe(pred, poses) == pytest.approx(10.0 / 17)


def test_whole_pose_shift_is_removed_by_root_centring_but_not_without(poses):
    pred = poses + np.array([0.010, 0.0, 0.0])
    assert M.mpjpe(pred, poses) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(M.mpjpe_per_joint(pred, poses, root=None), 10.0, atol=1e-9)


def test_root_alias_equals_none(poses):
    pred = poses + np.random.default_rng(1).normal(scale=0.02, size=poses.shape)
    np.testing.assert_array_equal(M.mpjpe_per_joint(pred, poses, "root"), M.mpjpe_per_joint(pred, poses, "none"))


def test_rotated_scaled_translated_copy_has_zero_p2_but_large_p1(poses):
    rot = _rotation(np.array([0.3, 1.0, -0.2]), 0.7)
    pred = 1.3 * poses @ rot.T + np.array([0.1, -0.2, 3.0])
    assert M.p_mpjpe(pred, poses) == pytest.approx(0.0, abs=1e-6)
    assert M.mpjpe(pred, poses) > 50.0


def test_p2_does_not_align_a_mirrored_pose(poses):
    mirrored = poses * np.array([-1.0, 1.0, 1.0])
    # Without the reflection fix the mirror image would be matched exactly.
    assert M.p_mpjpe(mirrored, poses) > 20.0
    # A proper rotation of the same pose still aligns to zero, so the fix is not over-applied.
    assert M.p_mpjpe(mirrored @ np.diag([-1.0, -1.0, 1.0]), mirrored) == pytest.approx(0.0, abs=1e-6)


def test_p2_never_exceeds_p1(poses):
    pred = poses + np.random.default_rng(2).normal(scale=0.05, size=poses.shape)
    p1 = M.mpjpe_per_joint(pred, poses).mean(-1)
    assert np.all(M.mpjpe_per_joint(pred, poses, "procrustes").mean(-1) <= p1 + 1e-9)


def test_n_mpjpe_is_scale_invariant_and_hand_computed():
    gt = np.zeros((1, 3, 3))
    gt[0, 1] = [0.1, 0.0, 0.0]
    gt[0, 2] = [0.0, 0.2, 0.0]
    assert M.n_mpjpe(2.5 * gt, gt) == pytest.approx(0.0, abs=1e-9)
    assert M.mpjpe(2.5 * gt, gt) == pytest.approx((150.0 + 300.0) / 3)
    # Scale fit on a pose whose third joint is doubled: s = <p,g>/<p,p> = (0.01+0.08)/(0.01+0.16).
    pred = gt.copy()
    pred[0, 2] *= 2.0
    pred_scaled = (0.09 / 0.17) * pred
    expected = np.linalg.norm(pred_scaled - gt, axis=-1).mean() * 1000
    assert M.n_mpjpe(pred, gt) == pytest.approx(expected)
    assert M.n_mpjpe(pred, gt) < M.mpjpe(pred, gt)


def test_bad_shapes_and_alignment_raise(poses):
    with pytest.raises(ValueError, match="shapes differ"):
        M.mpjpe_per_joint(poses, poses[:, :16])
    with pytest.raises(ValueError, match="align"):
        M.mpjpe_per_joint(poses, poses, align="rigid")
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 3\)"):
        M.mpjpe_per_joint(poses[..., :2], poses[..., :2])


def test_mpjve_constant_velocity_offset():
    t = np.arange(5, dtype=float)
    gt = np.zeros((5, 17, 3))
    gt[:, 3, 0] = 0.01 * t  # joint 3 moves 10 mm per frame
    pred = np.zeros_like(gt)
    pred[:, 3, 0] = 0.012 * t  # 12 mm per frame: velocity error 2 mm/frame on one joint
    v = M.velocity_error_per_joint(pred, gt)
    assert v.shape == (4, 17)
    np.testing.assert_allclose(v[:, 3], 2.0)
    assert M.mpjve(pred, gt) == pytest.approx(2.0 / 17)


def test_mpjve_never_differences_across_sequences():
    gt = np.zeros((6, 17, 3))
    pred = np.zeros_like(gt)
    pred[3:, 5] = 1.0  # a jump of 1 m exactly at the boundary of sequence b, constant inside it
    ids = np.array(["a", "a", "a", "b", "b", "b"])
    assert M.mpjve_by_sequence(pred, gt, ids) == pytest.approx(0.0)
    err, seq = M.velocity_errors_by_sequence(pred, gt, ids)
    assert err.shape == (4, 17) and list(seq) == ["a", "a", "b", "b"]
    # Shuffled rows are put back in order with `frames`.
    order = np.array([4, 0, 2, 5, 1, 3])
    frames = np.array([0, 1, 2, 0, 1, 2])
    assert M.mpjve_by_sequence(pred[order], gt[order], ids[order], frames[order]) == pytest.approx(0.0)
    # Differencing the flat array naively would see the jump.
    assert M.mpjve(pred, gt) > 0


def test_pck_and_auc_on_constructed_errors():
    err = np.zeros((4, 17))
    err[:, PCK14_JOINTS] = np.array([10.0, 100.0, 149.9, 150.0])[:, None]
    err[:, [0, 7, 9]] = 1000.0  # excluded joints must not count
    assert M.pck(err) == pytest.approx(75.0)
    assert M.pck(err, joints=None) == pytest.approx(100.0 * 3 * 14 / (4 * 17))
    # AUC: PCK at thresholds 0..150 (31 values); errors 10, 100, 149.9, 150.
    t = np.arange(0, 151, 5.0)
    expected = np.mean([(np.array([10.0, 100.0, 149.9, 150.0]) < x).mean() for x in t]) * 100
    assert M.auc(err) == pytest.approx(expected)
    assert len(M.AUC_THRESHOLDS_MM) == 31 and M.AUC_THRESHOLDS_MM[-1] == 150.0
    assert M.auc(np.zeros((2, 17))) == pytest.approx(100.0 * 30 / 31)  # threshold 0 counts none (strict <)
    assert "official" in M.pck_name() and "14 joints" in M.pck_name()
    assert "non-official" in M.pck_name(joints=None)


def _hyp_case():
    """Three hypotheses; per joint, exactly one is right, chosen by a fixed pattern."""
    rng = np.random.default_rng(3)
    gt = rng.normal(scale=0.25, size=(4, 17, 3))
    gt[:, 0] = 0.0
    n, h, j = 4, 3, 17
    right = rng.integers(0, h, size=(n, j))
    offsets = rng.normal(scale=0.08, size=(n, h, j, 3))
    hyps = gt[:, None] + offsets
    hyps[np.arange(n)[:, None], right, np.arange(j)[None, :]] = gt  # the right one is exact
    hyps[:, :, 0] = 0.0
    return gt, hyps, right


def test_j_agg_picks_the_hypothesis_that_reprojects_onto_the_2d_input():
    gt, hyps, right = _hyp_case()
    cam = Camera(id="c", res_w=1000, res_h=1000, focal=(1100.0, 1100.0), center=(500.0, 500.0),
                 radial=(-0.2, 0.2, 0.0), tangential=(0.001, -0.001))
    root = np.array([[0.1, -0.2, 5.0]] * 4) + np.arange(4)[:, None] * 0.1
    kp = cam.project(gt + root[:, None])
    pose, idx = M.j_agg(hyps, kp, root, cam, return_index=True)
    np.testing.assert_allclose(pose, gt, atol=1e-12)
    np.testing.assert_array_equal(idx[:, 1:], right[:, 1:])  # the root is identical in all hypotheses
    # Per-row cameras give the same result.
    np.testing.assert_allclose(M.j_agg(hyps, kp, root, [cam] * 4), pose)
    # A NaN 2D joint falls back to the mean of the hypotheses.
    kp_nan = kp.copy()
    kp_nan[2, 7] = np.nan
    pose2, idx2 = M.j_agg(hyps, kp_nan, root, cam, return_index=True)
    assert idx2[2, 7] == -1
    np.testing.assert_allclose(pose2[2, 7], hyps[2, :, 7].mean(0))
    np.testing.assert_allclose(pose2[0], gt[0], atol=1e-12)


def test_oracles_bound_the_aggregates():
    gt, hyps, _ = _hyp_case()
    hyps = hyps + np.random.default_rng(4).normal(scale=0.003, size=hyps.shape)  # roots move too
    cam = Camera(id="c", res_w=1000, res_h=1000, focal=(1100.0, 1100.0), center=(500.0, 500.0))
    root = np.tile([0.0, 0.0, 5.0], (4, 1))
    kp = cam.project(gt + root[:, None])
    errs = M.multi_hypothesis_errors(hyps, gt, kp, root, cam)
    assert set(errs) == {"P-Agg", "J-Agg", "P-Best (ORACLE)", "J-Best (ORACLE)"}
    assert all("ORACLE" in k for k in errs if "Best" in k)
    per_hyp = M.mpjpe_per_joint(hyps, gt[:, None]).mean(-1)  # (N, H)
    # Guaranteed orderings: J-Best <= J-Agg and J-Best <= P-Best per joint; P-Best = best single hypothesis.
    assert np.all(errs["J-Best (ORACLE)"] <= errs["J-Agg"] + 1e-9)
    assert np.all(errs["J-Best (ORACLE)"] <= errs["P-Best (ORACLE)"] + 1e-9)
    np.testing.assert_allclose(errs["P-Best (ORACLE)"].mean(-1), per_hyp.min(-1))
    # Each joint has one near-exact hypothesis, so J-Best beats both aggregates clearly ...
    assert errs["J-Best (ORACLE)"].mean() < 0.25 * errs["P-Agg"].mean()
    # ... while P-Best is NOT bounded by P-Agg: averaging cancels errors no single hypothesis avoids.
    assert errs["P-Best (ORACLE)"].mean() > errs["P-Agg"].mean()
    np.testing.assert_allclose(M.p_agg(hyps), hyps.mean(1))
    assert "ORACLE" in M.p_best.__doc__ and "ORACLE" in M.j_best.__doc__


def test_action_wise_differs_from_frame_wise_on_unbalanced_actions():
    values = np.array([10.0] * 9 + [100.0])
    actions = np.array(["Walking"] * 9 + ["Sitting"])
    avg, per_action = M.action_wise(values, actions)
    assert per_action == {"Sitting": 100.0, "Walking": 10.0}
    assert avg == pytest.approx(55.0)
    assert M.frame_wise(values) == pytest.approx(19.0)
    # (N, J) input is averaged over joints first.
    avg2, _ = M.action_wise(np.repeat(values[:, None], 17, 1), actions)
    assert avg2 == pytest.approx(55.0)


def test_summary_table_rows_and_columns():
    rng = np.random.default_rng(5)
    err = rng.uniform(0, 200, size=(30, 17))
    actions = np.array(["Eating"] * 20 + ["Phoning"] * 10)
    table = M.summary_table(err, actions, err * 0.5)
    assert list(table.index) == ["Eating", "Phoning", M.AVERAGE_ACTION_WISE, M.AVERAGE_FRAME_WISE]
    assert table.loc["Eating", "P1 (mm)"] == pytest.approx(err[:20].mean())
    assert table.loc[M.AVERAGE_ACTION_WISE, "P1 (mm)"] == pytest.approx((err[:20].mean() + err[20:].mean()) / 2)
    assert table.loc[M.AVERAGE_FRAME_WISE, "P1 (mm)"] == pytest.approx(err.mean())
    assert table.loc[M.AVERAGE_FRAME_WISE, "P2 (mm)"] == pytest.approx(err.mean() * 0.5)
    pck_col = [c for c in table.columns if c.startswith("PCK@150")][0]
    assert "14 joints, official" in pck_col
    assert table.loc["Phoning", pck_col] == pytest.approx(M.pck(err[20:]))
    assert table.loc[M.AVERAGE_FRAME_WISE, "frames"] == 30
    nonofficial = M.summary_table(err, actions, pck_joints=None)
    assert any("non-official" in c for c in nonofficial.columns)
