"""In-the-wild input: a real 2D detector (MediaPipe Pose) on your own video or image.

Importing this package does not import mediapipe; only running the detector does.
See docs/IN_THE_WILD.md.
"""
from diffpose_viz.wild.demo_media import fetch_demo_media
from diffpose_viz.wild.mediapipe_detector import (
    MediaPipeConfig,
    MediaPipePoseDetector,
    WildDetections,
    build_wild_detections,
    detect_frames,
    mediapipe_available,
)
from diffpose_viz.wild.run import FOCAL_FACTOR, WildRunResult, run_wild, wild_camera
from diffpose_viz.wild.video import MediaInfo, OverlayWriter, draw_skeleton, iter_frames, probe_media
from diffpose_viz.wild.visibility import VisibilityRule, joint_uncertainty, visibility_to_std

__all__ = [
    "FOCAL_FACTOR", "MediaInfo", "MediaPipeConfig", "MediaPipePoseDetector", "OverlayWriter", "VisibilityRule",
    "WildDetections", "WildRunResult", "build_wild_detections", "detect_frames", "draw_skeleton",
    "fetch_demo_media", "iter_frames", "joint_uncertainty", "mediapipe_available", "probe_media", "run_wild",
    "visibility_to_std", "wild_camera",
]
