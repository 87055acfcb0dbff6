"""The harmonised joint convention (mocap.conventions): each person's shoulder and hip spacing set to bandai17's
proportion of their own leg, the other joints untouched, from that person's frames alone."""
from __future__ import annotations

import numpy as np
import pytest

from diffpose_viz.mocap import conventions
from diffpose_viz.skeleton import H36M17

J = {name: i for i, name in enumerate(H36M17.joint_names)}


def person(shoulders: float, hips: float, frames: int = 30, seed: int = 0) -> np.ndarray:
    """(T, 17, 3) Z-up poses of a standing body with the given joint spacing (thigh 0.4 m, shin 0.42 m), the
    clavicles rising 3 cm from the thorax, swaying and turning a little from frame to frame."""
    base = np.zeros((17, 3))
    for side, sign in (("left", 1), ("right", -1)):
        base[J[f"{side}_hip"]] = (sign * hips / 2, 0, 0.0)
        base[J[f"{side}_knee"]] = (sign * hips / 2, 0, -0.40)
        base[J[f"{side}_ankle"]] = (sign * hips / 2, 0, -0.82)
        base[J[f"{side}_shoulder"]] = (sign * shoulders / 2, 0, 0.53)
        base[J[f"{side}_elbow"]] = (sign * (shoulders / 2 + 0.05), 0, 0.25)
        base[J[f"{side}_wrist"]] = (sign * (shoulders / 2 + 0.08), 0.1, 0.02)
    base[J["spine"]], base[J["thorax"]] = (0, 0, 0.25), (0, 0, 0.50)
    base[J["neck_nose"]], base[J["head_top"]] = (0, 0.05, 0.62), (0, 0, 0.74)
    rng = np.random.default_rng(seed)
    out = []
    for t in range(frames):
        a = 0.3 * np.sin(t / 5)
        rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        out.append(base @ rot.T + rng.normal(0, 0.2, 3) + (0, 0, 0.9))
    return np.stack(out)


def spacing(p: np.ndarray, a: str, b: str) -> np.ndarray:
    return np.linalg.norm(p[:, J[a]] - p[:, J[b]], axis=-1)


def test_widths_become_bandai17_proportions_of_the_leg_and_nothing_else_moves():
    clips = {"walk": person(0.48, 0.12), "squat": person(0.48, 0.12, frames=12, seed=1)}
    out, info = conventions.harmonise_person(clips)
    leg = 0.40 + 0.42
    assert info["leg_m"] == pytest.approx(leg, abs=1e-6)
    assert info["shoulders_factor"] == pytest.approx(conventions.SHOULDER_WIDTH_PER_LEG * leg / 0.48, rel=1e-3)
    assert info["hips_factor"] > 1  # narrow hips are widened, wide shoulders narrowed
    for name, clip in out.items():
        assert clip.shape == clips[name].shape and clip.dtype == clips[name].dtype
        assert np.allclose(spacing(clip, "left_shoulder", "right_shoulder"), conventions.SHOULDER_WIDTH_PER_LEG * leg)
        assert np.allclose(spacing(clip, "left_hip", "right_hip"), conventions.HIP_WIDTH_PER_LEG * leg)
        kept = [j for j in range(17) if j not in conventions.MOVED_JOINTS]
        assert np.array_equal(clip[:, kept], clips[name][:, kept])
        # along thorax -> shoulder: the clavicle keeps its direction
        for side in ("left", "right"):
            before = clips[name][:, J[f"{side}_shoulder"]] - clips[name][:, J["thorax"]]
            after = clip[:, J[f"{side}_shoulder"]] - clip[:, J["thorax"]]
            assert np.allclose(np.cross(before, after), 0, atol=1e-9) and (np.sum(before * after, -1) > 0).all()
    assert sorted(J[n] for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder")) == \
        list(conventions.MOVED_JOINTS)


def test_each_person_from_their_own_frames_only_and_a_bandai17_body_is_unchanged():
    a, b = person(0.48, 0.12), person(0.36, 0.20, seed=3)
    alone, _ = conventions.harmonise_person({"x": a})
    again, _ = conventions.harmonise_person({"x": a.copy()})
    assert np.array_equal(alone["x"], again["x"])  # deterministic
    _, info_b = conventions.harmonise_person({"y": b})
    assert info_b["shoulders_factor"] != pytest.approx(1.0)
    leg = 0.82
    bandai_like = person(conventions.SHOULDER_WIDTH_PER_LEG * leg, conventions.HIP_WIDTH_PER_LEG * leg)
    same, info = conventions.harmonise_person({"z": bandai_like})
    assert info["shoulders_factor"] == pytest.approx(1.0) and info["hips_factor"] == pytest.approx(1.0)
    assert np.allclose(same["z"], bandai_like)


def test_convention_errors_split_moved_from_kept_joints():
    gt = person(0.48, 0.12)
    pred = gt.copy()
    pred[:, J["left_shoulder"], 0] -= 0.10  # 10 cm off at one shoulder only
    pred[:, J["left_wrist"], 2] += 0.017
    e = conventions.convention_errors(pred, gt)
    assert e["rows"] == len(gt)
    assert e["P1_mm"] == pytest.approx((100 + 17) / 17)
    assert e["P1_moved_joints_mm"] == pytest.approx(100 / 4) and e["P1_kept_joints_mm"] == pytest.approx(17 / 13)
    assert e["shoulders_true_mm"] == pytest.approx(480) and e["hips_pred_mm"] == pytest.approx(e["hips_true_mm"])
    assert e["shoulders_pred_mm"] < e["shoulders_true_mm"]
