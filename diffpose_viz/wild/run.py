"""`run_wild`: video or image in, 2D detections + overlay (+ 3D hypotheses) out.

detect (MediaPipe, BlazePose-33) -> H36M-17 with visibility-driven 2D spread
-> detections.npz -> overlay -> [lift with N hypotheses -> results.nc].
Frames without a person stay in detections.npz and the overlay (marked), and
are left out of the lifting, whose `frame` coordinate keeps the source index.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from diffpose_viz.camera import Camera
from diffpose_viz.diffusion import SamplingSetting
from diffpose_viz.inputs import DEFAULT_FOCAL_FACTOR, default_camera
from diffpose_viz.progress import progress as progress_bar
from diffpose_viz.wild.mediapipe_detector import MediaPipeConfig, WildDetections, detect_frames
from diffpose_viz.wild.video import MediaInfo, OverlayWriter, draw_skeleton, iter_frames, probe_media
from diffpose_viz.wild.visibility import VisibilityRule

log = logging.getLogger(__name__)

#: Assumed focal length as a multiple of the larger image side: the package's one uncalibrated camera.
FOCAL_FACTOR = DEFAULT_FOCAL_FACTOR


def wild_camera(width: int, height: int, focal_factor: float = FOCAL_FACTOR, camera_id: str = "wild") -> Camera:
    """`inputs.default_camera` with this module's id: f = focal_factor * max(w, h), centre = image centre."""
    return default_camera(width, height, camera_id=camera_id, focal_factor=focal_factor)


@dataclass
class WildRunResult:
    out_dir: Path
    detections_path: Path
    overlay_paths: list[Path]
    results_path: Path | None
    n_frames: int
    n_with_person: int
    lift_note: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)


def _overlay_target(info: MediaInfo, out_dir: Path) -> tuple[Path, bool]:
    if info.kind == "video":
        return out_dir / "overlay.mp4", False
    if info.kind == "image":
        return out_dir / "overlay.png", True
    return out_dir / "overlay.png", False  # one overlay_<index>.png per image


def write_overlay(info: MediaInfo, det: WildDetections, out_dir: Path, *, stride: int = 1,
                  progress: bool = True) -> list[Path]:
    """Re-read the frames (they are not kept in memory) and draw the detections on them."""
    target, single = _overlay_target(info, out_dir)
    row_of = {int(f): i for i, f in enumerate(det.frame_index)}
    frames = iter_frames(info, max_frames=len(det), stride=stride)
    with OverlayWriter(target, fps=(info.fps / stride) if info.fps else 25.0, single_image=single) as writer:
        for index, frame in progress_bar(frames, total=len(det), desc="overlay", unit="frame", enabled=progress):
            i = row_of[index]
            label = f"frame {index} | colour: confidence (red 0, green 1) | ring: 2D std | hollow: occluded"
            drawn = draw_skeleton(frame, det.keypoints[i], det.confidence[i], person_found=bool(det.person_found[i]),
                                  std_px=det.std_px[i], occluded=det.occluded[i], label=label)
            writer.write(drawn, frame_index=index)
    return writer.written


def run_wild(
    path: str | Path,
    checkpoint: str | Path | None = None,
    out_dir: str | Path = "runs/wild",
    *,
    n_hypotheses: int = 10,
    sampling: SamplingSetting | None = None,
    device: str = "cpu",
    max_frames: int | None = None,
    stride: int = 1,
    detector: MediaPipeConfig = MediaPipeConfig(),
    rule: VisibilityRule = VisibilityRule(),
    focal_factor: float = FOCAL_FACTOR,
    overlay: bool = True,
    progress: bool = True,
    calibration: str | Path | None = None,
) -> WildRunResult:
    """Detect people in a video, an image or a folder of images and write, under `out_dir`:
    `detections.npz` (WildDetections), `overlay.mp4`/`overlay.png`, and with a
    `checkpoint` `results.nc` (docs/RESULTS_SCHEMA.md, no ground truth). `calibration`: the metrics JSON of an
    `evaluate` run of that checkpoint; the results then carry the out-of-domain score and radius. `sampling`: the
    sampling request (eta, start_t, ...; its n_hypotheses, when given, wins over `n_hypotheses`)."""
    import time
    if n_hypotheses < 1:
        raise ValueError(f"n_hypotheses must be >= 1, got {n_hypotheses}")
    sampling = sampling or SamplingSetting()
    sampling = replace(sampling, n_hypotheses=sampling.n_hypotheses or n_hypotheses)
    if checkpoint is not None and not Path(checkpoint).exists():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = probe_media(path)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    frames = iter_frames(info, max_frames=max_frames, stride=stride)
    frames = progress_bar(frames, total=info.expected_frames(max_frames, stride), desc="detect", unit="frame",
                          enabled=progress)
    det = detect_frames(frames, static_image_mode=info.kind != "video", config=detector, rule=rule,
                        fps=info.fps / stride if info.fps else 0.0, source=str(info.path))
    det.meta.update(focal_factor=focal_factor, stride=stride)
    timings["detect"] = time.perf_counter() - t0
    n_person = int(det.person_found.sum())
    if n_person < len(det):
        log.warning("%s: no person found in %d of %d frames (marked, kept)", info.path, len(det) - n_person, len(det))
    detections_path = det.save_npz(out_dir / "detections.npz")

    overlay_paths: list[Path] = []
    if overlay:  # before lifting, so a failed lift still leaves the 2D outputs
        t0 = time.perf_counter()
        overlay_paths = write_overlay(info, det, out_dir, stride=stride, progress=progress)
        timings["overlay"] = time.perf_counter() - t0

    results_path, note = None, "no checkpoint given: detection and overlay only"
    if checkpoint is not None:
        t0 = time.perf_counter()
        results_path, note = lift_detections(det, checkpoint, out_dir / "results.nc", sampling=sampling,
                                             device=device, focal_factor=focal_factor, calibration=calibration)
        timings["lift"] = time.perf_counter() - t0
    return WildRunResult(out_dir, detections_path, overlay_paths, results_path, len(det), n_person, note, timings)


def lift_detections(
    det: WildDetections,
    checkpoint: str | Path,
    out_path: Path,
    *,
    sampling: SamplingSetting,
    device: str,
    focal_factor: float = FOCAL_FACTOR,
    calibration: str | Path | None = None,
) -> tuple[Path | None, str]:
    """Lift the frames with a person to N 3D hypotheses and write the results file (docs/RESULTS_SCHEMA.md
    without `gt`/`err*`; `frame` = the source frame index, `subject` "wild", `action` the file name).

    Handed on: the keypoints, confidences, occlusion flags and per-joint `std_px` of the frames with a person,
    seen by `wild_camera(det.width, det.height, focal_factor)`. The detector's Q = 2 heatmap modes are not:
    `lift_2d` builds H_K from one mode per joint (the keypoint, spread `std_px`), as for every user 2D input,
    so that the results file (which keeps keypoints, not modes) and the lab can reproduce the lift.
    """
    found = np.flatnonzero(det.person_found)
    if len(found) == 0:
        return None, "no person in any frame: nothing to lift"
    from diffpose_viz.results import write_results
    from diffpose_viz.inference import lift_2d, load_model

    model = load_model(checkpoint, device)
    kept = det.subset(det.person_found)
    d2 = kept.detections2d()
    ds = lift_2d(
        model, d2.keypoints, wild_camera(det.width, det.height, focal_factor), sampling,
        confidence=d2.confidence, occluded=d2.occluded, std_px=kept.std_px, frames=np.asarray(det.frame_index)[found],
        subject="wild", action=Path(str(det.source)).name, dataset="wild", progress=True,
    )
    ood_line = ""
    if calibration is not None:
        from diffpose_viz.evaluation.ood_file import annotate, load_ood_model

        ds, ood_line = annotate(ds, load_ood_model(calibration, checkpoint))
        ood_line = "; " + ood_line
    ds.attrs["checkpoint_fingerprint"] = model.fingerprint  # which model made it, by content
    write_results(ds, out_path)
    return out_path, f"lifted {len(found)} of {len(det.person_found)} frames with {ds.attrs['n_hypotheses']} hypotheses{ood_line}"
