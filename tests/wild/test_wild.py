"""In-the-wild input without the detector: mapping, visibility rule, media I/O, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from diffpose_viz.skeleton import BLAZEPOSE33_NAMES, H36M17
from diffpose_viz.wild.mediapipe_detector import WildDetections, build_wild_detections
from diffpose_viz.wild.run import wild_camera
from diffpose_viz.wild.visibility import (
    VisibilityRule,
    distance_outside_frame,
    joint_uncertainty,
    person_size_px,
    visibility_to_std,
)

try:
    import cv2
except ImportError:  # the mapping and the visibility rule need no OpenCV
    cv2 = None
needs_cv2 = pytest.mark.skipif(cv2 is None, reason="OpenCV is not installed (part of the [detector] extra)")

W, H = 640, 480


def _blazepose_at_known_points() -> tuple[np.ndarray, np.ndarray]:
    """Landmark i sits at (100 + 7 i, 50 + 11 i): distinct, all inside a 640x480 frame."""
    i = np.arange(len(BLAZEPOSE33_NAMES), dtype=np.float64)
    kp = np.stack([100 + 7 * i, 50 + 11 * i], -1)
    vis = np.linspace(0.3, 1.0, len(BLAZEPOSE33_NAMES))
    return kp, vis


def _bp(kp: np.ndarray, name: str) -> np.ndarray:
    return kp[BLAZEPOSE33_NAMES.index(name)]


def test_mapping_table_by_name():
    kp, vis = _blazepose_at_known_points()
    det = build_wild_detections(kp[None], vis[None], [0], W, H)
    out = det.keypoints[0].astype(np.float64)
    j = H36M17.index
    pelvis = (_bp(kp, "left_hip") + _bp(kp, "right_hip")) / 2
    thorax = (_bp(kp, "left_shoulder") + _bp(kp, "right_shoulder")) / 2
    np.testing.assert_allclose(out[j("pelvis")], pelvis, atol=1e-3)
    np.testing.assert_allclose(out[j("thorax")], thorax, atol=1e-3)
    np.testing.assert_allclose(out[j("spine")], (pelvis + thorax) / 2, atol=1e-3)
    np.testing.assert_allclose(out[j("head_top")], (_bp(kp, "left_ear") + _bp(kp, "right_ear")) / 2, atol=1e-3)
    np.testing.assert_allclose(out[j("neck_nose")], _bp(kp, "nose"), atol=1e-3)
    for side in ("left", "right"):
        for part in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist"):
            np.testing.assert_allclose(out[j(f"{side}_{part}")], _bp(kp, f"{side}_{part}"), atol=1e-3)
    # A synthesised joint is only as visible as its least visible source.
    v = dict(zip(BLAZEPOSE33_NAMES, vis))
    assert det.confidence[0, j("pelvis")] == pytest.approx(min(v["left_hip"], v["right_hip"]), abs=1e-6)
    assert det.confidence[0, j("left_wrist")] == pytest.approx(v["left_wrist"], abs=1e-6)


def test_visibility_rule_monotonic_and_bounded():
    rule = VisibilityRule()
    vis = np.linspace(0, 1, 101)
    std = visibility_to_std(vis, 400.0, rule)
    assert np.all(np.diff(std) < 0), "spread must shrink as visibility grows"
    assert std[-1] == pytest.approx(rule.min_frac * 400)
    assert std[0] == pytest.approx(rule.max_frac * 400)
    # Scales with the person's size, floored for tiny people, NaN visibility counts as unseen.
    assert visibility_to_std(0.5, 800.0, rule) == pytest.approx(2 * visibility_to_std(0.5, 400.0, rule))
    assert visibility_to_std(1.0, 1.0, rule) == pytest.approx(rule.min_std_px)
    assert visibility_to_std(np.nan, 400.0, rule) == pytest.approx(std[0])
    # Out-of-range visibility is clipped, so the bounds hold.
    assert visibility_to_std(1.7, 400.0, rule) == pytest.approx(std[-1])
    with pytest.raises(ValueError, match="min_frac"):
        VisibilityRule(min_frac=0.3, max_frac=0.1)


def test_low_visibility_gives_wider_modes_and_marks_occlusion():
    kp, vis = _blazepose_at_known_points()
    seen, hidden = vis.copy(), vis.copy()
    seen[:] = 0.99
    hidden[:] = 0.99
    hidden[BLAZEPOSE33_NAMES.index("left_wrist")] = 0.1
    a = build_wild_detections(kp[None], seen[None], [0], W, H)
    b = build_wild_detections(kp[None], hidden[None], [0], W, H)
    lw = H36M17.index("left_wrist")
    assert b.std_px[0, lw] > 5 * a.std_px[0, lw]
    assert b.occluded[0, lw] and not a.occluded[0, lw]
    assert b.modes.shape == (1, 17, 2, 5)
    assert b.modes[0, lw, 0, 0] == 1.0 and b.modes[0, lw, 1, 0] == 0.0
    # The occluded joint stays in the input, at its detected position.
    np.testing.assert_allclose(b.keypoints[0, lw], _bp(kp, "left_wrist"), atol=1e-3)


def test_person_partly_outside_frame_gets_wide_spread():
    kp = np.array([[[100.0, 100.0], [300.0, 100.0], [200.0, 560.0], [200.0, 700.0]]])  # two points below a 480 px image
    vis = np.array([[0.95, 0.95, 0.95, 0.95]])
    rule = VisibilityRule()
    unc = joint_uncertainty(kp, vis, W, H, rule)
    size = person_size_px(kp)[0]
    assert size == pytest.approx(600.0)
    assert unc.outside[0].tolist() == [False, False, True, True]
    dist = distance_outside_frame(kp[0], W, H)
    assert np.all(unc.std_px[0, 2:] >= rule.max_frac * size + dist[2:] - 1e-9)
    assert unc.std_px[0, 3] > unc.std_px[0, 2] > unc.std_px[0, 0]
    assert np.all(unc.confidence[0, 2:] <= rule.outside_confidence)
    assert unc.occluded[0, 2:].all() and not unc.occluded[0, :2].any()
    assert np.isfinite(unc.std_px).all()


def test_frame_without_person_is_marked_and_kept():
    kp, vis = _blazepose_at_known_points()
    kps = np.stack([kp, np.full_like(kp, np.nan), kp])
    viss = np.stack([vis, np.zeros_like(vis), vis])
    det = build_wild_detections(kps, viss, [0, 1, 2], W, H)
    assert len(det) == 3
    assert det.person_found.tolist() == [True, False, True]
    assert np.isnan(det.keypoints[1]).all() and (det.confidence[1] == 0).all() and det.occluded[1].all()
    assert np.isfinite(det.keypoints[[0, 2]]).all()
    assert len(det.subset(det.person_found)) == 2


def test_detections_round_trip_and_package_dataclass(tmp_path):
    kp, vis = _blazepose_at_known_points()
    det = build_wild_detections(np.stack([kp, np.full_like(kp, np.nan)]), np.stack([vis, vis]), [4, 5], W, H, fps=30.0,
                                source="x.mp4")
    back = WildDetections.load_npz(det.save_npz(tmp_path / "d.npz"))
    np.testing.assert_array_equal(back.modes, det.modes)
    np.testing.assert_array_equal(back.person_found, det.person_found)
    assert (back.width, back.height, back.fps, back.source) == (W, H, 30.0, "x.mp4")
    d2 = det.detections2d()
    assert d2.keypoints.shape == (2, 17, 2) and d2.modes.shape == (2, 17, 2, 5) and not d2.swapped.any()
    np.savez(tmp_path / "other.npz", keypoints=np.zeros(3))
    with pytest.raises(KeyError, match="missing keys"):
        WildDetections.load_npz(tmp_path / "other.npz")


def test_wild_camera_focal_from_image_size():
    cam = wild_camera(1920, 1080)
    assert cam.focal == (pytest.approx(1.2 * 1920),) * 2
    assert cam.center == (960.0, 540.0)
    # A point on the optical axis projects to the image centre.
    np.testing.assert_allclose(cam.project(np.array([0.0, 0.0, 4.0])), [960.0, 540.0])


# ----------------------------------------------------------------------------- media I/O


@needs_cv2
@pytest.mark.parametrize("name, content, error", [
    ("nope.mp4", None, FileNotFoundError),  # missing
    ("empty.mp4", b"", ValueError),
    ("garbage.mp4", b"this is not a video at all" * 100, ValueError),
    ("broken.png", b"\x89PNG not really", ValueError),
    ("nothing_here", "folder", ValueError),  # a folder without images
])
def test_unreadable_and_empty_inputs_raise_naming_the_file(tmp_path, name, content, error):
    from diffpose_viz.wild.video import probe_media

    path = tmp_path / name
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=name):
        probe_media(path)


@needs_cv2
def test_a_frame_stride_below_one_is_refused(tmp_path):
    from diffpose_viz.wild.video import iter_frames, probe_media

    with pytest.raises(ValueError, match="stride"):
        next(iter_frames(probe_media(_write_video(tmp_path / "ok.mp4", 2)), stride=0))


def _write_video(path, n: int, w: int = 96, h: int = 64):
    from diffpose_viz.wild.video import OverlayWriter

    with OverlayWriter(path, fps=10) as writer:
        for i in range(n):
            frame = np.zeros((h, w, 3), np.uint8)
            frame[:, : (i + 1) * 8] = 200  # a bar that grows, to tell frames apart
            writer.write(frame, i)
    return path


@needs_cv2
def test_video_round_trip_stride_and_max_frames(tmp_path):
    from diffpose_viz.wild.video import iter_frames, probe_media

    info = probe_media(_write_video(tmp_path / "bars.mp4", 7))
    assert (info.kind, info.width, info.height, info.frame_count) == ("video", 96, 64, 7)
    got = list(iter_frames(info, stride=3))
    assert [i for i, _ in got] == [0, 3, 6]
    # Frame 3's bar is 32 px wide: decoded content matches the written frame, not a neighbour.
    bright = (got[1][1].mean(axis=(0, 2)) > 100).sum()
    assert 30 <= bright <= 34
    assert [i for i, _ in iter_frames(info, max_frames=2)] == [0, 1]
    assert info.expected_frames(max_frames=None, stride=3) == 3


@needs_cv2
def test_overlay_draws_and_marks_missing_person(tmp_path):
    from diffpose_viz.wild.video import OverlayWriter, draw_skeleton

    kp, vis = _blazepose_at_known_points()
    det = build_wild_detections(np.stack([kp, np.full_like(kp, np.nan)]), np.stack([vis, vis]), [0, 1], W, H)
    blank = np.zeros((H, W, 3), np.uint8)
    drawn = draw_skeleton(blank, det.keypoints[0], det.confidence[0], std_px=det.std_px[0], occluded=det.occluded[0])
    assert drawn.any() and not blank.any()
    none = draw_skeleton(blank, det.keypoints[1], det.confidence[1], person_found=False)
    assert none[..., 0].max() == 255 and none[..., 1].max() == 0  # red "no person detected" text only
    with OverlayWriter(tmp_path / "one.png", single_image=True) as w:
        w.write(drawn)
    assert cv2.imread(str(tmp_path / "one.png")).shape == (H, W, 3)
    with pytest.raises(ValueError, match=r"\.mp4 or \.png"):
        OverlayWriter(tmp_path / "x.gif")


def test_run_wild_rejects_missing_checkpoint_and_bad_arguments(tmp_path):
    from diffpose_viz.wild import run_wild

    with pytest.raises(FileNotFoundError, match="no_such.pt"):
        run_wild(tmp_path / "video.mp4", checkpoint=tmp_path / "no_such.pt", out_dir=tmp_path / "out")
    with pytest.raises(ValueError, match="n_hypotheses"):
        run_wild(tmp_path / "video.mp4", out_dir=tmp_path / "out", n_hypotheses=0)
