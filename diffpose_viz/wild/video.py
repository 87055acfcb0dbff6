"""Reading frames from a video, an image or a folder of images, and writing overlays.

Frames are handed around as RGB uint8 (H, W, 3) arrays, the order MediaPipe
expects; OpenCV's BGR stays inside this module.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffpose_viz.skeleton import H36M17

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def _cv2():
    try:
        import cv2
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading and writing video needs OpenCV: pip install 'diffpose-viz[detector]' "
            "(or opencv-python-headless)"
        ) from err
    return cv2


@dataclass(frozen=True)
class MediaInfo:
    """What `probe_media` learnt about an input without decoding all of it."""

    path: Path
    kind: str  # "video", "image" or "image_folder"
    width: int
    height: int
    fps: float
    frame_count: int  # exact for images; OpenCV's container estimate for videos
    image_files: tuple[Path, ...] = ()

    def expected_frames(self, max_frames: int | None = None, stride: int = 1) -> int:
        n = -(-self.frame_count // stride)
        return n if max_frames is None else min(n, max_frames)


def _read_image(path: Path) -> np.ndarray:
    cv2 = _cv2()
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ValueError(f"cannot read image {path}: OpenCV could not decode it (corrupt or not an image)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _open_video(path: Path):
    cv2 = _cv2()
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ValueError(f"cannot read video {path}: OpenCV found no decodable video stream (corrupt file or unknown codec)")
    return cap


def probe_media(path: str | Path) -> MediaInfo:
    """Classify `path` and read its size; raise a clear error for missing, unreadable or empty input."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    if path.is_dir():
        files = tuple(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        if not files:
            raise ValueError(f"folder {path} holds no images with suffix {IMAGE_SUFFIXES}")
        h, w = _read_image(files[0]).shape[:2]
        return MediaInfo(path, "image_folder", w, h, 0.0, len(files), files)
    if path.stat().st_size == 0:
        raise ValueError(f"input {path} is empty (0 bytes)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        h, w = _read_image(path).shape[:2]
        return MediaInfo(path, "image", w, h, 0.0, 1, (path,))

    cv2 = _cv2()
    cap = _open_video(path)
    try:
        ok, frame = cap.read()
        if not ok or frame is None:
            raise ValueError(f"video {path} has no readable frames")
        h, w = frame.shape[:2]
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 0.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    return MediaInfo(path, "video", w, h, fps if np.isfinite(fps) else 0.0, max(count, 1))


def iter_frames(info: MediaInfo, *, max_frames: int | None = None, stride: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame_index, RGB frame) for every `stride`-th frame, at most `max_frames` of them."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
    emitted = 0
    if info.kind in ("image", "image_folder"):
        for index in range(0, len(info.image_files), stride):
            if max_frames is not None and emitted >= max_frames:
                return
            frame = _read_image(info.image_files[index])
            if frame.shape[:2] != (info.height, info.width):
                raise ValueError(
                    f"image {info.image_files[index]} is {frame.shape[1]}x{frame.shape[0]}, expected "
                    f"{info.width}x{info.height} like the first image of {info.path}"
                )
            yield index, frame
            emitted += 1
        return

    cv2 = _cv2()
    cap = _open_video(info.path)
    try:
        index = 0
        while max_frames is None or emitted < max_frames:
            if index % stride:
                ok = cap.grab()  # skip without decoding
                frame = None
            else:
                ok, frame = cap.read()
            if not ok:
                # the container declared more frames: a corrupt or truncated file, not the end of the video
                # (one frame of slack: some containers round their estimate up)
                if index + 1 < info.frame_count:
                    raise ValueError(f"video {info.path}: reading stopped at frame {index} of the {info.frame_count} "
                                     f"the file declares (corrupt or truncated video); {emitted} frames were read")
                break
            if frame is not None:
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                emitted += 1
            index += 1
    finally:
        cap.release()
    if emitted == 0:
        raise ValueError(f"video {info.path} has no readable frames")


def confidence_colour(confidence: float) -> tuple[int, int, int]:
    """RGB from red (0) through yellow (0.5) to green (1)."""
    c = float(np.clip(np.nan_to_num(confidence, nan=0.0), 0.0, 1.0))
    return int(255 * min(1.0, 2.0 * (1.0 - c))), int(255 * min(1.0, 2.0 * c)), 0


def draw_skeleton(
    frame_rgb: np.ndarray,
    keypoints: np.ndarray,
    confidence: np.ndarray,
    *,
    person_found: bool = True,
    std_px: np.ndarray | None = None,
    occluded: np.ndarray | None = None,
    label: str | None = None,
) -> np.ndarray:
    """Return a copy of the frame with the H36M-17 skeleton drawn on it.

    Joint colour = confidence (red 0 -> green 1); occluded joints are hollow;
    a thin circle of radius std_px shows the 2D spread handed to the model.
    """
    cv2 = _cv2()
    out = np.ascontiguousarray(frame_rgb.copy())
    h, w = out.shape[:2]
    scale = max(1, round(max(h, w) / 640))
    if not person_found or not np.isfinite(keypoints).any():
        cv2.putText(out, "no person detected", (10 * scale, 30 * scale), cv2.FONT_HERSHEY_SIMPLEX,
                    0.8 * scale, (255, 0, 0), 2 * scale, cv2.LINE_AA)
    else:
        pts = np.nan_to_num(np.asarray(keypoints, dtype=np.float64), nan=-1e4)
        pts = np.clip(pts, -1e4, 1e4).round().astype(int)
        for parent, child in H36M17.bones:
            c = min(confidence[parent], confidence[child])
            cv2.line(out, tuple(pts[parent]), tuple(pts[child]), confidence_colour(c), 2 * scale, cv2.LINE_AA)
        for j in range(len(pts)):
            colour = confidence_colour(confidence[j])
            if std_px is not None and np.isfinite(std_px[j]):
                cv2.circle(out, tuple(pts[j]), int(min(std_px[j], 4 * max(h, w))), colour, 1, cv2.LINE_AA)
            filled = -1 if occluded is None or not occluded[j] else 2 * scale
            cv2.circle(out, tuple(pts[j]), 4 * scale, colour, filled, cv2.LINE_AA)
    if label:
        cv2.putText(out, label, (10 * scale, h - 12 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale,
                    (255, 255, 255), 1 * scale, cv2.LINE_AA)
    return out


class OverlayWriter:
    """Writes RGB frames to an mp4 (OpenCV 'mp4v') or to png files.

    For a png target with several frames, frame i goes to `<stem>_<i:05d>.png`.
    """

    def __init__(self, path: str | Path, *, fps: float = 25.0, single_image: bool = False):
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else 25.0
        self.single_image = single_image
        self.written: list[Path] = []
        self._video = None
        suffix = self.path.suffix.lower()
        if suffix not in (".mp4", ".png"):
            raise ValueError(f"overlay path {self.path} must end in .mp4 or .png, got {suffix!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, frame_rgb: np.ndarray, frame_index: int = 0) -> None:
        cv2 = _cv2()
        bgr = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
        if self.path.suffix.lower() == ".png":
            target = self.path if self.single_image else self.path.with_name(f"{self.path.stem}_{frame_index:05d}.png")
            if not cv2.imwrite(str(target), bgr):
                raise OSError(f"OpenCV could not write {target}")
            self.written.append(target)
            return
        if self._video is None:
            h, w = bgr.shape[:2]
            self._video = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._video.isOpened():
                raise OSError(f"OpenCV could not open {self.path} for writing with codec mp4v")
            self.written.append(self.path)
        self._video.write(bgr)

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None

    def __enter__(self) -> "OverlayWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
