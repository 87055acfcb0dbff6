"""Test fixtures for the Timeline and the exports: a real H.264 video written with PyAV whose frames carry
their own index (frame i is uniformly grey at level 8 * i), and a results file of one sequence in time order
(the schema-conformant fixture of conftest.py, its rows renamed into one clip). TEST FIXTURES, NOT MODEL OUTPUT."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from conftest import make_results_dataset

GREY_STEP = 8


def write_video(path: Path, n_frames: int = 24, size: tuple[int, int] = (160, 120), fps: int = 24) -> Path:
    """An MP4 of `n_frames` frames; frame i is grey level GREY_STEP * i (so a decoded frame names itself)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "8", "crf": "10"}  # a keyframe every 8 frames: seeking has work to do
        for i in range(n_frames):
            rgb = np.full((size[1], size[0], 3), GREY_STEP * i % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decoded_index(frame: np.ndarray) -> int:
    return int(round(float(frame.mean()) / GREY_STEP))


def sequence_results(n: int = 12, model: str = "diffpose", seed: int = 0, frames=None, clip: str = "clip.mp4",
                     image_size: tuple[int, int] = (160, 120), noise_m: float = 0.03) -> xr.Dataset:
    """One sequence (subject 'wild', action `clip`, camera 'wild') of `n` rows at source `frames` (default
    0..n-1), in shuffled file order; the 2D input moved into an image of `image_size`."""
    ds = make_results_dataset(model, n_clean=n, n_occluded=0, n_hypotheses=4, n_kernels=2, noise_m=noise_m,
                              seed=seed, with_trajectory=True)
    frames = np.arange(n) if frames is None else np.asarray(frames)
    order = np.random.default_rng(1).permutation(n)  # file order is not time order
    ds = ds.isel(sample=order).assign_coords(sample=np.arange(n))
    kp = ds["input_2d"].values
    lo, hi = kp.reshape(-1, 2).min(0), kp.reshape(-1, 2).max(0)
    scaled = (kp - lo) / (hi - lo).max() * (min(image_size) * 0.8) + 5
    ds["input_2d"] = (ds["input_2d"].dims, scaled.astype(np.float32), ds["input_2d"].attrs)
    return ds.assign_coords(subject=("sample", ["wild"] * n), action=("sample", [clip] * n),
                            camera=("sample", ["wild"] * n), frame=("sample", frames[order]),
                            action_group=("sample", ["wild"] * n))


def wild_run_folder(folder: Path, n_frames: int = 24, n_rows: int = 12, video: bool = True) -> Path:
    """A folder shaped like a `wild` run: results.nc and a detections.npz naming its source video."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / "clip.mp4"
    if video:
        write_video(clip, n_frames)
    sequence_results(n_rows).to_netcdf(folder / "results.nc")
    np.savez(folder / "detections.npz", source=np.array(str(clip)))
    return folder


def calibrated_sequence(folder: Path):
    """One clip of 12 rows with a radius, an out-of-domain score, ground truth and trajectories, saved to
    `folder`/res.nc so that exports can fingerprint their source, and its attributes naming a checkpoint."""
    from diffpose_viz.figures import sequence as S

    ds = sequence_results(12)
    ds["radius"] = (("sample", "joint"), np.full((12, 17), 35.0, np.float32), {"units": "mm", "level": 0.9})
    ds["ood_score"] = (("sample",), np.linspace(-1, 3, 12).astype(np.float32))
    ds["ood_flag"] = (("sample",), (np.linspace(-1, 3, 12) > 2).astype(np.int8))
    ds.attrs.update(checkpoint="runs/x/best.pt", checkpoint_fingerprint="abc123")
    path = folder / "res.nc"
    ds.to_netcdf(path)
    return S.select_sequence(ds, 0, source=str(path))


def sports2d_demo_clip(out: Path) -> Path:
    """The sports2d demo clip for a real `wild` run (data/media, else fetched into `out`); skips the test when
    MediaPipe (the `detector` extra) or the clip cannot be had."""
    import pytest

    from diffpose_viz.wild.demo_media import DEMO_NAME, fetch_demo_media
    from diffpose_viz.wild.mediapipe_detector import mediapipe_available

    if not mediapipe_available():
        pytest.skip("mediapipe is not installed (the `detector` extra)")
    repo = Path(__file__).resolve().parents[1]
    clip = repo / "data" / "media" / DEMO_NAME
    if clip.exists():
        return clip
    try:
        return fetch_demo_media(cache_dir=repo / "data" / "cache", out=out)
    except Exception as err:  # offline machine
        pytest.skip(f"demo media unavailable: {err}")
