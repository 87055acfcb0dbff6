"""Joint conventions across rigs: where a source puts its shoulder and hip joint centres, and the harmonised
convention the converters can write instead (`diffpose-viz data hdm05|cmu_asf|reactidle --joints harmonised`).

Rigs disagree on joint centres far more than people differ (docs/AUGMENTATION.md, "Joint conventions across
rigs"): HDM05's Vicon fit puts the shoulders at the end of 0.20-0.26 m clavicles, 0.41-0.51 m apart, bandai17's
are 0.20 m apart. The harmonised convention is bandai17's, the source every shipped model trains and is tested on
in domain: each person's shoulder and hip joint spacing is set to bandai17's proportion of the person's own leg
length, by moving each joint along thorax -> shoulder (pelvis -> hip). It is a deterministic function of one
person's own skeleton (no other person, no test data), so a source's training and test people are transformed
alike, and it moves only those four joints: the other thirteen keep the rig's positions, which is what makes
a convention-free comparison possible (`MOVED_JOINTS`).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..skeleton import H36M17

#: What the converters can write: the rig's own joint centres, or the harmonised ones.
JOINT_CONVENTIONS = ("rig", "harmonised")

#: bandai17's shoulder-joint and hip-joint spacing over its leg (thigh + shin), the medians over every frame of its
#: five training styles (one skeleton): 0.198-0.204 m and 0.129 m over 0.801 m (2026-12-08).
SHOULDER_WIDTH_PER_LEG = 0.251
HIP_WIDTH_PER_LEG = 0.162

_J = {name: i for i, name in enumerate(H36M17.joint_names)}
#: (centre, left, right, width per leg): each pair moves along centre -> joint to that spacing.
_PAIRS = {"shoulders": ("thorax", "left_shoulder", "right_shoulder", SHOULDER_WIDTH_PER_LEG),
          "hips": ("pelvis", "left_hip", "right_hip", HIP_WIDTH_PER_LEG)}
#: H36M-17 indices the harmonisation moves; every other joint is the rig's.
MOVED_JOINTS = tuple(sorted(_J[name] for centre, *pair, _ in _PAIRS.values() for name in pair))


def _distance(p: np.ndarray, a: str, b: str) -> np.ndarray:
    return np.linalg.norm(p[..., _J[a], :] - p[..., _J[b], :], axis=-1)


def person_widths(clips: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Median leg (thigh + shin, both sides averaged), shoulder and hip spacing over every frame of one person."""
    p = np.concatenate([np.asarray(c, dtype=np.float64) for c in clips.values()])
    leg = sum(_distance(p, f"{side}_hip", f"{side}_knee") + _distance(p, f"{side}_knee", f"{side}_ankle")
              for side in ("left", "right")) / 2
    return {"leg": float(np.median(leg)), "shoulders": float(np.median(_distance(p, "left_shoulder", "right_shoulder"))),
            "hips": float(np.median(_distance(p, "left_hip", "right_hip")))}


def harmonise_person(clips: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """One person's clips ({action: (T, 17, 3)}) in the harmonised convention, and the per-person factors by which
    the shoulder and hip spacing were multiplied (with the widths they were computed from, metres)."""
    widths = person_widths(clips)
    factors = {pair: rel * widths["leg"] / widths[pair] for pair, (*_, rel) in _PAIRS.items()}
    out = {}
    for action, clip in clips.items():
        p = np.array(clip, dtype=np.float64)
        for pair, (centre, left, right, _) in _PAIRS.items():
            c = p[..., _J[centre], :]
            for joint in (left, right):
                p[..., _J[joint], :] = c + factors[pair] * (p[..., _J[joint], :] - c)
        out[action] = p.astype(np.asarray(clip).dtype)
    info = {f"{pair}_factor": round(f, 4) for pair, f in factors.items()}
    info.update({f"{k}_m": round(v, 4) for k, v in widths.items()})
    return out, info


def convention_errors(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Errors (mm) of root-relative predictions (N, 17, 3, metres) split by what a joint convention decides: P1
    over all 17 joints, over the 13 the harmonisation leaves in place (pelvis included, as in P1) and over the
    four it moves; and the mean predicted and true shoulder and hip spacing, which is where rigs disagree."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    err = np.linalg.norm(pred - gt, axis=-1) * 1000
    kept = [j for j in range(H36M17.num_joints) if j not in MOVED_JOINTS]
    out = {"rows": len(err), "P1_mm": float(err.mean()), "P1_kept_joints_mm": float(err[:, kept].mean()),
           "P1_moved_joints_mm": float(err[:, list(MOVED_JOINTS)].mean())}
    for pair, (_, left, right, _) in _PAIRS.items():
        out[f"{pair}_pred_mm"] = float(_distance(pred, left, right).mean() * 1000)
        out[f"{pair}_true_mm"] = float(_distance(gt, left, right).mean() * 1000)
    return out
