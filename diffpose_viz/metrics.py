"""3D pose metrics: MPJPE under several alignments, MPJVE, PCK/AUC, multi-hypothesis aggregation.

Conventions (docs/ARCHITECTURE.md; Human3.6M protocols as in VideoPose3D, Pavllo et al. 2019):
- poses are (..., J, 3) arrays in metres; every error is returned in millimetres;
- computation is float64 whatever the input dtype;
- "root-relative" means joint `root` (pelvis, 0) is subtracted from both poses first.

Alignment modes follow mmpose's `alignment` argument:
- 'none' / 'root': root-relative MPJPE, Protocol #1 (P1). 'root' is an alias that names what happens.
- 'procrustes': similarity transform (scale, rotation, translation) fitted per pose by SVD with the
  reflection fixed, Protocol #2 (P2, PA-MPJPE).
- 'scale': scale-only alignment s = <pred, gt> / <pred, pred> after root-centring, N-MPJPE (P3).

Multi-hypothesis helpers take hypotheses shaped (..., H, J, 3). P-Agg and J-Agg are usable at test time;
P-Best and J-Best are ORACLES that use the ground truth and must always be shown next to an aggregate.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from diffpose_viz.camera import Camera
from diffpose_viz.skeleton import PCK14_JOINTS

Alignment = Literal["none", "root", "procrustes", "scale"]
ALIGNMENTS: tuple[str, ...] = ("none", "root", "procrustes", "scale")

#: Same wording as the results-file attribute `oracle_note`.
ORACLE_NOTE = "J-Best and P-Best use ground truth (oracle)"

#: Thresholds of the 3DHP AUC: 0, 5, ..., 150 mm (31 values).
AUC_THRESHOLDS_MM = np.arange(0.0, 150.0 + 1e-9, 5.0)

_M_TO_MM = 1000.0


# --------------------------------------------------------------------------- input checks


def _as_poses(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or x.shape[-1] != 3:
        raise ValueError(f"{name}: expected shape (..., J, 3) in metres, found {x.shape}")
    return x


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = _as_poses(pred, "pred"), _as_poses(gt, "gt")
    if pred.shape[-2:] != gt.shape[-2:]:
        raise ValueError(f"pred and gt shapes differ: pred {pred.shape} vs gt {gt.shape}")
    try:  # leading axes broadcast, e.g. hypotheses (N, H, J, 3) against gt (N, 1, J, 3)
        return tuple(np.broadcast_arrays(pred, gt))  # type: ignore[return-value]
    except ValueError:
        raise ValueError(f"pred and gt shapes do not broadcast: pred {pred.shape} vs gt {gt.shape}") from None


def _check_hyps(hyps: np.ndarray, gt: np.ndarray | None = None) -> np.ndarray:
    hyps = np.asarray(hyps, dtype=np.float64)
    if hyps.ndim < 3 or hyps.shape[-1] != 3:
        raise ValueError(f"hyps: expected shape (..., H, J, 3) in metres, found {hyps.shape}")
    if gt is not None:
        gt = np.asarray(gt)
        if gt.shape != hyps.shape[:-3] + hyps.shape[-2:]:
            raise ValueError(
                f"gt: expected shape {hyps.shape[:-3] + hyps.shape[-2:]} to match hyps {hyps.shape}, found {gt.shape}"
            )
    return hyps


def root_centre(poses: np.ndarray, root: int = 0) -> np.ndarray:
    """Subtract joint `root` from every joint: (..., J, 3) -> (..., J, 3)."""
    poses = np.asarray(poses, dtype=np.float64)
    return poses - poses[..., root : root + 1, :]


# --------------------------------------------------------------------------- alignments


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Apply to `pred` the similarity transform that best maps it onto `gt`, per pose.

    Solves min_{s,R,t} ||s * pred @ R + t - gt||_F with R a proper rotation (det +1): when the
    optimal orthogonal matrix would be a reflection, the smallest singular direction is flipped,
    so a mirrored pose is NOT aligned onto its mirror image.
    """
    pred, gt = _check_pair(pred, gt)
    mu_p = pred.mean(axis=-2, keepdims=True)
    mu_g = gt.mean(axis=-2, keepdims=True)
    x, y = pred - mu_p, gt - mu_g
    # Row-vector form: maximise tr(R^T M) with M = x^T y = U S V^T  ->  R = U D V^T.
    m = np.swapaxes(x, -1, -2) @ y
    u, s, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    d = np.where(d == 0, 1.0, d)
    u[..., :, -1] *= d[..., None]
    s[..., -1] *= d
    rot = u @ vt
    norm_x = (x**2).sum(axis=(-2, -1))
    # A degenerate prediction (all joints at one point) gets scale 0: it collapses onto gt's centroid.
    scale = np.where(norm_x > 0, s.sum(-1) / np.where(norm_x > 0, norm_x, 1.0), 0.0)
    return scale[..., None, None] * (x @ rot) + mu_g


def scale_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Least-squares scale only: s = <pred, gt> / <pred, pred> per pose (inputs already centred)."""
    pred, gt = _check_pair(pred, gt)
    pp = (pred * pred).sum(axis=(-2, -1))
    pg = (pred * gt).sum(axis=(-2, -1))
    scale = np.where(pp > 0, pg / np.where(pp > 0, pp, 1.0), 0.0)
    return scale[..., None, None] * pred


# --------------------------------------------------------------------------- position errors


def mpjpe_per_joint(
    pred: np.ndarray, gt: np.ndarray, align: Alignment = "none", root: int | None = 0
) -> np.ndarray:
    """Per-joint Euclidean error in mm, (..., J, 3) metres -> (..., J).

    Both poses are root-centred at joint `root` first (pass root=None to compare absolute
    positions, which only matters for align='none'/'root'). See the module docstring for `align`.
    """
    pred, gt = _check_pair(pred, gt)
    if align not in ALIGNMENTS:
        raise ValueError(f"align must be one of {ALIGNMENTS}, got {align!r}")
    if root is not None:
        if not -pred.shape[-2] <= root < pred.shape[-2]:
            raise ValueError(f"root joint {root} out of range for {pred.shape[-2]} joints")
        pred, gt = root_centre(pred, root), root_centre(gt, root)
    if align == "procrustes":
        pred = procrustes_align(pred, gt)
    elif align == "scale":
        pred = scale_align(pred, gt)
    return np.linalg.norm(pred - gt, axis=-1) * _M_TO_MM


def mpjpe(pred: np.ndarray, gt: np.ndarray, root: int | None = 0) -> float:
    """Protocol #1: root-relative MPJPE in mm, mean over joints and frames."""
    return float(np.mean(mpjpe_per_joint(pred, gt, "none", root)))


def p_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Protocol #2: Procrustes-aligned MPJPE (PA-MPJPE) in mm."""
    return float(np.mean(mpjpe_per_joint(pred, gt, "procrustes")))


def n_mpjpe(pred: np.ndarray, gt: np.ndarray, root: int | None = 0) -> float:
    """Protocol #3: scale-aligned MPJPE (N-MPJPE) in mm."""
    return float(np.mean(mpjpe_per_joint(pred, gt, "scale", root)))


# --------------------------------------------------------------------------- velocity errors


def velocity_error_per_joint(pred_seq: np.ndarray, gt_seq: np.ndarray, root: int | None = 0) -> np.ndarray:
    """One sequence (..., T, J, 3) metres -> (..., T-1, J) mm per frame: ||Δpred - Δgt|| with Δ the
    first difference along frames (axis -3)."""
    pred, gt = _check_pair(pred_seq, gt_seq)
    if pred.ndim < 3:
        raise ValueError(f"expected a sequence shaped (..., T, J, 3), found {pred.shape}")
    if root is not None:
        pred, gt = root_centre(pred, root), root_centre(gt, root)
    return np.linalg.norm(np.diff(pred, axis=-3) - np.diff(gt, axis=-3), axis=-1) * _M_TO_MM


def mpjve(pred_seq: np.ndarray, gt_seq: np.ndarray, root: int | None = 0) -> float:
    """MPJVE of one sequence (T, J, 3) in mm per frame (not per second)."""
    err = velocity_error_per_joint(pred_seq, gt_seq, root)
    if err.size == 0:
        raise ValueError(f"MPJVE needs at least 2 frames, found shape {np.shape(pred_seq)}")
    return float(err.mean())


def velocity_errors_by_sequence(
    pred: np.ndarray,
    gt: np.ndarray,
    sequence_ids: np.ndarray,
    frames: np.ndarray | None = None,
    root: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Velocity errors for flat (N, J, 3) arrays holding many sequences.

    Differences are only taken between consecutive rows of the same sequence, so they never cross a
    sequence boundary. With `frames`, rows are first sorted by (sequence, frame); without it, rows of
    each sequence must already be contiguous and in time order.
    Returns (errors (P, J) mm per frame, sequence id (P,) of each difference).
    """
    pred, gt = _check_pair(pred, gt)
    ids = np.asarray(sequence_ids)
    if pred.ndim != 3 or ids.shape != pred.shape[:1]:
        raise ValueError(f"expected pred/gt (N, J, 3) and sequence_ids (N,), found {pred.shape} and {ids.shape}")
    if frames is not None:
        frames = np.asarray(frames)
        if frames.shape != ids.shape:
            raise ValueError(f"frames: expected shape {ids.shape}, found {frames.shape}")
        order = np.lexsort((frames, ids))
        pred, gt, ids = pred[order], gt[order], ids[order]
    err = velocity_error_per_joint(pred, gt, root)  # (N-1, J) across all consecutive rows
    same = ids[1:] == ids[:-1]
    return err[same], ids[1:][same]


def mpjve_by_sequence(
    pred: np.ndarray,
    gt: np.ndarray,
    sequence_ids: np.ndarray,
    frames: np.ndarray | None = None,
    root: int | None = 0,
) -> float:
    """MPJVE in mm per frame over many sequences stored flat, never differencing across sequences."""
    err, _ = velocity_errors_by_sequence(pred, gt, sequence_ids, frames, root)
    if err.size == 0:
        raise ValueError("MPJVE needs at least one sequence with 2 or more frames")
    return float(err.mean())


# --------------------------------------------------------------------------- PCK / AUC


def _select_joints(err_mm: np.ndarray, joints: np.ndarray | Sequence[int] | None) -> np.ndarray:
    err_mm = np.asarray(err_mm, dtype=np.float64)
    if err_mm.ndim < 1:
        raise ValueError(f"err_mm: expected shape (..., J), found {err_mm.shape}")
    if joints is None:
        return err_mm
    joints = np.asarray(joints, dtype=int)
    if joints.size and joints.max() >= err_mm.shape[-1]:
        raise ValueError(f"joint index {joints.max()} out of range for err_mm with {err_mm.shape[-1]} joints")
    return err_mm[..., joints]


def pck(
    err_mm: np.ndarray, threshold: float = 150.0, joints: np.ndarray | Sequence[int] | None = PCK14_JOINTS
) -> float:
    """3DPCK in percent: share of joint errors strictly below `threshold` mm.

    Default `joints` is the official MPI-INF-3DHP 14-joint set (pelvis, spine, neck/nose excluded);
    joints=None uses every joint, which is NOT the official number (label it with `pck_name`).
    NaN errors (missing ground truth) are left out of the count.
    """
    e = _select_joints(err_mm, joints)
    valid = np.isfinite(e)
    if not valid.any():
        raise ValueError("pck: no finite errors to evaluate")
    return float(100.0 * (e[valid] < threshold).mean())


def auc(
    err_mm: np.ndarray,
    thresholds: np.ndarray | Sequence[float] = AUC_THRESHOLDS_MM,
    joints: np.ndarray | Sequence[int] | None = PCK14_JOINTS,
) -> float:
    """AUC in percent: mean 3DPCK over `thresholds` (default 0:5:150 mm, 31 values)."""
    e = _select_joints(err_mm, joints)
    e = e[np.isfinite(e)]
    if e.size == 0:
        raise ValueError("auc: no finite errors to evaluate")
    t = np.asarray(thresholds, dtype=np.float64)
    return float(100.0 * (e[None, :] < t[:, None]).mean(axis=1).mean())


def pck_name(metric: str = "PCK", threshold: float | None = 150.0, joints=PCK14_JOINTS) -> str:
    """Column label that says which joint set was used, e.g. 'PCK@150 (14 joints, official)'."""
    head = f"{metric}@{threshold:g}" if threshold is not None else metric
    if joints is None:
        return f"{head} (all joints, non-official)"
    joints = np.asarray(joints)
    official = np.array_equal(np.sort(joints), np.sort(PCK14_JOINTS))
    return f"{head} ({joints.size} joints, {'official' if official else 'non-official'})"


# --------------------------------------------------------------------------- multi-hypothesis


def p_agg(hyps: np.ndarray) -> np.ndarray:
    """P-Agg: mean of the hypotheses, (..., H, J, 3) -> (..., J, 3). Needs no ground truth."""
    return _check_hyps(hyps).mean(axis=-3)


def _project_hyps(hyps_abs: np.ndarray, camera: Camera, distort: bool) -> np.ndarray:
    """Project absolute camera-frame points; points at or behind the camera come back as NaN."""
    z = hyps_abs[..., 2]
    bad = ~(z > 0)
    safe = np.where(bad[..., None], np.array([0.0, 0.0, 1.0]), hyps_abs)
    uv = camera.project(safe, distort=distort)
    uv[bad] = np.nan
    return uv


def j_agg(
    hyps: np.ndarray,
    keypoints_2d_px: np.ndarray,
    root_cam: np.ndarray,
    camera: Camera | Sequence[Camera],
    *,
    distort: bool = True,
    root: int | None = 0,
    return_index: bool = False,
):
    """J-Agg (D3DP's JPMA): per joint, the hypothesis whose reprojection is closest to the 2D input.

    hyps: (N, H, J, 3) or (H, J, 3) root-relative camera-frame metres (re-centred at joint `root`
      unless root=None); keypoints_2d_px: (N, J, 2) pixels;
    root_cam: (N, 3) root position in the camera frame (metres), added back before projecting;
    camera: one `Camera` for all rows, or a sequence of N cameras (one per row).
    A joint whose 2D input is NaN (missing) falls back to the mean of the hypotheses. Hypothesis
    points at or behind the camera are never chosen. Needs intrinsics but no ground truth.
    Returns the pose (N, J, 3) and, with return_index=True, the chosen index (N, J) (-1 = fallback).
    """
    hyps = _check_hyps(hyps)
    if root is not None:  # enforce root-relative hypotheses before adding the root position back
        hyps = root_centre(hyps, root)
    single = hyps.ndim == 3
    if single:
        hyps = hyps[None]
    if hyps.ndim != 4:
        raise ValueError(f"hyps: expected (N, H, J, 3) or (H, J, 3), found {hyps.shape}")
    n, _, j, _ = hyps.shape
    kp = np.asarray(keypoints_2d_px, dtype=np.float64)
    root = np.asarray(root_cam, dtype=np.float64)
    if single:
        kp, root = kp[None], root[None]
    if kp.shape != (n, j, 2):
        raise ValueError(f"keypoints_2d_px: expected {(n, j, 2)} pixels, found {np.shape(keypoints_2d_px)}")
    if root.shape != (n, 3):
        raise ValueError(f"root_cam: expected {(n, 3)} camera-frame metres, found {np.shape(root_cam)}")
    hyps_abs = hyps + root[:, None, None, :]

    if isinstance(camera, Camera):
        uv = _project_hyps(hyps_abs, camera, distort)
    else:
        cams = list(camera)
        if len(cams) != n:
            raise ValueError(f"camera: expected one Camera or {n} cameras (one per row), found {len(cams)}")
        uv = np.empty(hyps.shape[:-1] + (2,))
        # Loop over distinct cameras (a handful), not over frames.
        keys = np.array([id(c) for c in cams])
        for key in np.unique(keys):
            rows = keys == key
            uv[rows] = _project_hyps(hyps_abs[rows], cams[int(np.argmax(rows))], distort)

    dist = np.linalg.norm(uv - kp[:, None], axis=-1)  # (N, H, J)
    dist = np.where(np.isnan(dist), np.inf, dist)
    idx = np.argmin(dist, axis=1)  # (N, J)
    usable = np.isfinite(np.take_along_axis(dist, idx[:, None], axis=1)[:, 0])
    chosen = np.take_along_axis(hyps, idx[:, None, :, None], axis=1)[:, 0]
    pose = np.where(usable[..., None], chosen, hyps.mean(axis=1))
    idx = np.where(usable, idx, -1)
    if single:
        pose, idx = pose[0], idx[0]
    return (pose, idx) if return_index else pose


def p_best(hyps: np.ndarray, gt: np.ndarray, root: int | None = 0) -> np.ndarray:
    """ORACLE (uses ground truth): the single hypothesis with the lowest root-relative MPJPE.

    (..., H, J, 3) -> (..., J, 3). Not a test-time estimate: always report it next to P-Agg/J-Agg.
    """
    hyps = _check_hyps(hyps, gt)
    err = mpjpe_per_joint(hyps, np.asarray(gt, np.float64)[..., None, :, :], "none", root).mean(-1)
    best = np.argmin(err, axis=-1)
    return np.take_along_axis(hyps, best[..., None, None, None], axis=-3)[..., 0, :, :]


def j_best(hyps: np.ndarray, gt: np.ndarray, root: int | None = 0) -> np.ndarray:
    """ORACLE (uses ground truth): per joint, the hypothesis closest to the ground truth.

    (..., H, J, 3) -> (..., J, 3). Its MPJPE is a lower bound, not a test-time estimate.
    """
    hyps = _check_hyps(hyps, gt)
    if root is not None:  # pick joints from root-centred hypotheses, as they were scored
        hyps = root_centre(hyps, root)
    err = mpjpe_per_joint(hyps, np.asarray(gt, np.float64)[..., None, :, :], "none", root)  # (..., H, J)
    best = np.argmin(err, axis=-2)  # (..., J)
    return np.take_along_axis(hyps, best[..., None, :, None], axis=-3)[..., 0, :, :]


#: Names used for multi-hypothesis results; the oracle ones say so.
P_AGG, J_AGG, P_BEST, J_BEST = "P-Agg", "J-Agg", "P-Best (ORACLE)", "J-Best (ORACLE)"


def multi_hypothesis_errors(
    hyps: np.ndarray,
    gt: np.ndarray,
    keypoints_2d_px: np.ndarray | None = None,
    root_cam: np.ndarray | None = None,
    camera: Camera | Sequence[Camera] | None = None,
    align: Alignment = "none",
) -> dict[str, np.ndarray]:
    """Per-joint errors (N, J) mm of every aggregate, keyed 'P-Agg', 'J-Agg' (when 2D input, root and
    camera are given), 'P-Best (ORACLE)', 'J-Best (ORACLE)'."""
    hyps = _check_hyps(hyps, gt)
    out = {P_AGG: mpjpe_per_joint(p_agg(hyps), gt, align)}
    if keypoints_2d_px is not None and root_cam is not None and camera is not None:
        out[J_AGG] = mpjpe_per_joint(j_agg(hyps, keypoints_2d_px, root_cam, camera), gt, align)
    out[P_BEST] = mpjpe_per_joint(p_best(hyps, gt), gt, align)
    out[J_BEST] = mpjpe_per_joint(j_best(hyps, gt), gt, align)
    return out


# --------------------------------------------------------------------------- aggregation


def _per_sample(values: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=np.float64)
    actions = np.asarray(actions)
    if values.ndim < 1 or actions.shape != values.shape[:1]:
        raise ValueError(
            f"values and actions must share the sample axis: values {values.shape}, actions {actions.shape}"
        )
    if values.ndim > 1:  # e.g. (N, J): mean over joints first, so every sample weighs the same
        values = np.nanmean(values.reshape(len(values), -1), axis=1)
    return values, actions


def frame_wise(values_per_sample: np.ndarray) -> float:
    """Mean over all samples (each frame weighs the same). Extra axes are averaged per sample first."""
    v = np.asarray(values_per_sample, dtype=np.float64)
    v = v.reshape(len(v), -1).mean(axis=1) if v.ndim > 1 else v
    return float(np.nanmean(v))


def action_wise(values_per_sample: np.ndarray, actions: np.ndarray) -> tuple[float, dict[str, float]]:
    """The H36M protocol: mean per action, then the mean of those means (each action weighs the same).

    Pass canonical action names (e.g. the results file's `action_group`) so sub-trials
    ("Walking 1") are pooled with their action. Returns (action-wise mean, {action: mean}).
    """
    v, a = _per_sample(values_per_sample, actions)
    names, inverse = np.unique(a, return_inverse=True)
    sums = np.bincount(inverse, weights=np.nan_to_num(v), minlength=len(names))
    counts = np.bincount(inverse, weights=np.isfinite(v).astype(float), minlength=len(names))
    means = sums / np.where(counts > 0, counts, np.nan)
    per_action = {str(k): float(m) for k, m in zip(names, means)}
    return float(np.nanmean(means)), per_action


AVERAGE_ACTION_WISE = "Average (action-wise)"
AVERAGE_FRAME_WISE = "Average (frame-wise)"


def summary_table(
    err_per_sample_joint: np.ndarray,
    actions: np.ndarray,
    err_p2_per_sample_joint: np.ndarray | None = None,
    *,
    pck_threshold: float = 150.0,
    pck_joints: np.ndarray | Sequence[int] | None = PCK14_JOINTS,
    auc_thresholds: np.ndarray | Sequence[float] = AUC_THRESHOLDS_MM,
) -> pd.DataFrame:
    """Table of P1 (MPJPE mm), P2 (PA-MPJPE mm, when given), PCK and AUC (%) per action.

    Rows: one per action (sorted), then 'Average (action-wise)' (mean of the per-action values, the
    H36M convention) and 'Average (frame-wise)' (pooled over all samples). The PCK/AUC column names
    say whether the official 14-joint set was used.
    """
    err = np.asarray(err_per_sample_joint, dtype=np.float64)
    actions = np.asarray(actions)
    if err.ndim != 2 or actions.shape != err.shape[:1]:
        raise ValueError(f"expected err (N, J) mm and actions (N,), found {err.shape} and {actions.shape}")
    errs = {"P1 (mm)": err}
    if err_p2_per_sample_joint is not None:
        p2 = np.asarray(err_p2_per_sample_joint, dtype=np.float64)
        if p2.shape != err.shape:
            raise ValueError(f"err_p2_per_sample_joint: expected shape {err.shape}, found {p2.shape}")
        errs["P2 (mm)"] = p2
    pck_col = pck_name("PCK", pck_threshold, pck_joints) + " (%)"
    auc_col = pck_name("AUC", None, pck_joints) + " (%)"

    def row(mask: np.ndarray) -> dict[str, float]:
        r = {name: float(np.nanmean(e[mask])) for name, e in errs.items()}
        r[pck_col] = pck(err[mask], pck_threshold, pck_joints)
        r[auc_col] = auc(err[mask], auc_thresholds, pck_joints)
        r["frames"] = int(mask.sum())
        return r

    names = np.unique(actions)
    table = pd.DataFrame({str(a): row(actions == a) for a in names}).T
    action_avg = table.drop(columns="frames").mean(axis=0)
    action_avg["frames"] = float(len(err))
    table.loc[AVERAGE_ACTION_WISE] = action_avg
    table.loc[AVERAGE_FRAME_WISE] = pd.Series(row(np.ones(len(err), dtype=bool)))
    table["frames"] = table["frames"].astype(int)
    table.index.name = "action"
    return table
