"""CSV and JSON of a sequence: the 3D poses, the calibrated radius and the scores, one row per frame.

CSV columns (one row per result row, in time order):
  frame, time_s, subject, action, camera,
  pred_<joint>_<x|y|z>_m      P-Agg pose, camera frame (x right, y down, z forward), metres, pelvis = 0
  spread_<joint>_mm           RMS distance of the hypotheses to their mean
  radius_<joint>_mm           calibrated error-bar radius (only with a calibration; inf = too little data)
  ood_score, ood_flag         out-of-domain score and flag (only with a calibration)
  mpjpe_mm                    mean per-joint error (only with ground truth)
  mean_confidence             the 2D detector's mean joint confidence
JSON: {"metadata": {...}, "units": {...}, "joint_names": [...], "frames": [{frame, time_s, pred, hypotheses,
spread_mm, radius_mm, ood_score, ood_flag, mpjpe_mm, confidence}]}; NaN and inf are written as null.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from diffpose_viz.atomic import atomic_target
from diffpose_viz.figures.sequence import Sequence
from diffpose_viz.skeleton import H36M17

JOINTS = H36M17.joint_names


def csv_columns(seq: Sequence) -> dict[str, np.ndarray]:
    """The CSV's columns, in order (see the module docstring)."""
    cols: dict[str, np.ndarray] = {"frame": seq.frames, "time_s": np.round(seq.time_s(), 6)}
    for key in ("subject", "action", "camera"):
        cols[key] = np.full(len(seq), getattr(seq.key, key))
    for j, name in enumerate(JOINTS):
        for a, axis in enumerate("xyz"):
            cols[f"pred_{name}_{axis}_m"] = seq.pred[:, j, a]
    for j, name in enumerate(JOINTS):
        cols[f"spread_{name}_mm"] = seq.spread_mm[:, j]
    if seq.radius_mm is not None:
        for j, name in enumerate(JOINTS):
            cols[f"radius_{name}_mm"] = seq.radius_mm[:, j]
    if seq.ood_score is not None:
        cols["ood_score"] = seq.ood_score
        cols["ood_flag"] = seq.ood_flag.astype(int)
    if seq.mpjpe_mm is not None:
        cols["mpjpe_mm"] = seq.mpjpe_mm
    cols["mean_confidence"] = seq.confidence.mean(-1)
    return cols


def write_csv(seq: Sequence, out: Path) -> int:
    frame = pd.DataFrame(csv_columns(seq))
    with atomic_target(out) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    return len(frame)


def _plain(values) -> object:
    """numpy -> JSON-ready lists, NaN/inf -> None (JSON has neither)."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        v = float(arr)
        return v if math.isfinite(v) else None
    return [_plain(v) for v in arr]


def write_json(seq: Sequence, out: Path, metadata: dict) -> int:
    times = seq.time_s()
    frames = []
    for i in range(len(seq)):
        frames.append({
            "frame": int(seq.frames[i]), "time_s": round(float(times[i]), 6),
            "pred": _plain(np.round(seq.pred[i], 6)), "hypotheses": _plain(np.round(seq.hypotheses[i], 6)),
            "spread_mm": _plain(np.round(seq.spread_mm[i], 3)),
            "radius_mm": None if seq.radius_mm is None else _plain(np.round(seq.radius_mm[i], 3)),
            "ood_score": None if seq.ood_score is None else _plain(seq.ood_score[i]),
            "ood_flag": None if seq.ood_flag is None else bool(seq.ood_flag[i]),
            "mpjpe_mm": None if seq.mpjpe_mm is None else _plain(seq.mpjpe_mm[i]),
            "confidence": _plain(np.round(seq.confidence[i], 4)),
        })
    doc = {"metadata": metadata, "joint_names": list(JOINTS),
           "units": {"pred": "m, camera frame (x right, y down, z forward), pelvis = origin",
                     "hypotheses": "m, as pred", "spread_mm": "mm, RMS distance of the hypotheses to their mean",
                     "radius_mm": f"mm, calibrated radius at level {seq.radius_level}" if seq.radius_mm is not None
                     else None, "time_s": "s from the video's first frame"},
           "frames": frames}
    with atomic_target(out) as tmp:
        tmp.write_text(json.dumps(doc))
    return len(frames)
