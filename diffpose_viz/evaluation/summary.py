"""The metrics summary of a results Dataset (what the metrics JSON holds) and its printed form."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from diffpose_viz import metrics


def summarize(ds) -> dict:
    """P1/P2 action-wise and frame-wise, PCK/AUC (14 joints), multi-hypothesis aggregates (oracles labelled)."""
    actions = ds["action_group"].values
    gt = ds["gt"].values.astype(np.float64)
    pred = ds["pred"].values.astype(np.float64)
    err = ds["err"].values.astype(np.float64)
    err_p2 = metrics.mpjpe_per_joint(pred, gt, "procrustes")
    table = metrics.summary_table(err, actions, err_p2)
    hyps = ds["hypotheses"].values.astype(np.float64)
    agg = {
        metrics.P_AGG: err,
        metrics.J_AGG: metrics.mpjpe_per_joint(ds["pred_jagg"].values.astype(np.float64), gt),
        metrics.P_BEST: metrics.mpjpe_per_joint(metrics.p_best(hyps, gt), gt),
        metrics.J_BEST: metrics.mpjpe_per_joint(metrics.j_best(hyps, gt), gt),
    }
    avg = table.loc[metrics.AVERAGE_ACTION_WISE]
    frame = table.loc[metrics.AVERAGE_FRAME_WISE]
    pck_col = next(c for c in table.columns if c.startswith("PCK"))
    auc_col = next(c for c in table.columns if c.startswith("AUC"))
    out = {
        "model": ds.attrs["model"], "n_samples": int(ds.sizes["sample"]), "n_hypotheses": int(ds.sizes["hypothesis"]),
        "P1_mm_action_wise": float(avg["P1 (mm)"]), "P1_mm_frame_wise": float(frame["P1 (mm)"]),
        "P2_mm_action_wise": float(avg["P2 (mm)"]), "P2_mm_frame_wise": float(frame["P2 (mm)"]),
        "PCK150_14joints_pct": float(frame[pck_col]), "AUC_14joints_pct": float(frame[auc_col]),
        "multi_hypothesis_P1_mm_action_wise": {k: metrics.action_wise(v, actions)[0] for k, v in agg.items()},
        "oracle_note": metrics.ORACLE_NOTE,
        "per_action": json.loads(table.to_json(orient="index")),
    }
    if "occluded" in ds and ds["occluded"].values.any():
        occ = ds["occluded"].values.astype(bool)
        out["P1_mm_occluded_joints"] = float(err[occ].mean())
        out["P1_mm_visible_joints"] = float(err[~occ].mean())
    mpjve = _mpjve(ds)
    if mpjve is not None:
        out["MPJVE_mm_per_frame"] = mpjve
        out["MPJVE_note"] = ("between consecutive evaluated frames of each (subject, action, camera) sequence whose "
                             "frame step is constant; meaningful for all-frame evaluation (video models)")
    if "err_step" in ds:
        out["P1_mm_per_step"] = [float(v) for v in ds["err_step"].mean(("sample", "joint")).values]
    return out


def _mpjve(ds) -> float | None:
    """MPJVE (mm per frame) over the evaluated sequences when every sequence's rows are evenly spaced frames
    (as with all-frame evaluation); None when the rows were thinned unevenly or no sequence has 2 frames."""
    if "gt" not in ds or ds.sizes["sample"] < 2:
        return None
    key = np.char.add(np.char.add(ds["subject"].values.astype(str), "|"),
                      np.char.add(np.char.add(ds["action"].values.astype(str), "|"), ds["camera"].values.astype(str)))
    frame = ds["frame"].values.astype(np.int64)
    order = np.lexsort((frame, key))
    same = key[order][1:] == key[order][:-1]
    steps = np.diff(frame[order])[same]
    if steps.size == 0 or (steps != steps.min()).any():
        return None
    return float(metrics.mpjve_by_sequence(ds["pred"].values.astype(np.float64), ds["gt"].values.astype(np.float64),
                                           key, frame))


def format_summary(s: dict) -> str:
    lines = [f"model {s['model']}: {s['n_samples']} test samples, {s['n_hypotheses']} hypotheses",
             f"  P1 (MPJPE)    action-wise {s['P1_mm_action_wise']:.1f} mm   frame-wise {s['P1_mm_frame_wise']:.1f} mm",
             f"  P2 (PA-MPJPE) action-wise {s['P2_mm_action_wise']:.1f} mm   frame-wise {s['P2_mm_frame_wise']:.1f} mm",
             f"  PCK@150 (14 joints) {s['PCK150_14joints_pct']:.1f} %   AUC (14 joints) {s['AUC_14joints_pct']:.1f} %"]
    for k, v in s["multi_hypothesis_P1_mm_action_wise"].items():
        lines.append(f"  {k:16s} P1 action-wise {v:.1f} mm")
    if "MPJVE_mm_per_frame" in s:
        lines.append(f"  MPJVE {s['MPJVE_mm_per_frame']:.2f} mm per frame")
    if "P1_mm_occluded_joints" in s:
        lines.append(f"  occluded joints {s['P1_mm_occluded_joints']:.1f} mm, visible {s['P1_mm_visible_joints']:.1f} mm")
    lines.append(f"  ({s['oracle_note']})")
    table = pd.DataFrame(s["per_action"]).T
    lines.append(table.round(1).to_string())
    return "\n".join(lines)
