"""DiffPose's GMM 2D keypoint files (`data_2d_*_gmm.npz`).

Same nesting as the VideoPose3D 2D files: `positions_2d[subject][action]` is a
list over cameras of arrays (T, 17, K, 5) whose last axis is
`[weight, mean_u, mean_v, spread_u, spread_v]`, one row per heatmap mode
(K = 3 in the released files).

Units (our choice): means are in **pixels**, like the VideoPose3D 2D files, and
spreads (standard deviations) are in **pixels** too. The official DiffPose files
screen-normalise only `[..., 1:3]` on load and do not document the units of the
spreads, so files written by other tools may need rescaling before use here.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .vp3d import (PerCameraSequences, as_numeric_array, atomic_savez, check_pixels, read_per_camera,
                   validate_per_camera, wrap_object)

WEIGHT_SUM_TOLERANCE = 1e-3


@dataclass
class GMM2D(PerCameraSequences):
    """`positions[subject][action]` -> list over cameras of (T, 17, K, 5) float32."""


def validate_gmm_array(arr, *, path=None, key: str = "positions_2d") -> np.ndarray:
    """Check one (T, 17, K, 5) array; returns it as float32."""
    arr = as_numeric_array(arr, path, key, "(T, 17, K, 5)")
    if arr.ndim != 4 or arr.shape[1] != 17:
        raise DataError("wrong rank or joint count", path=path, key=key, expected="(T, 17, K, 5)",
                        found=f"shape {arr.shape}")
    if arr.shape[3] != 5:
        raise DataError("wrong last dimension", path=path, key=key,
                        expected="5 = [weight, mean_u, mean_v, spread_u, spread_v]", found=f"shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise DataError("NaN/inf values", path=path, key=key, expected="finite values",
                        found=f"{int((~np.isfinite(arr)).sum())} non-finite")
    w = arr[..., 0]
    if (w < 0).any() or (w > 1).any():
        raise DataError("mode weights outside [0, 1]", path=path, key=key, expected="weights in [0, 1]",
                        found=f"range [{w.min():.4g}, {w.max():.4g}]")
    sums = w.astype(np.float64).sum(-1)
    worst = float(np.abs(sums - 1).max()) if sums.size else 0.0
    if worst > WEIGHT_SUM_TOLERANCE:
        raise DataError("mode weights do not sum to 1 per joint", path=path, key=key,
                        expected=f"|sum - 1| <= {WEIGHT_SUM_TOLERANCE}", found=f"max |sum - 1| = {worst:.4g}")
    if (arr[..., 3:5] < 0).any():
        raise DataError("negative spreads", path=path, key=key, expected="spread_u, spread_v >= 0",
                        found=f"min {arr[..., 3:5].min():.4g}")
    check_pixels(arr[..., 1:3], path, key, what="mode means")
    return arr


def read_gmm_2d(path: str | os.PathLike, *, key: str = "positions_2d") -> GMM2D:
    raw, metadata = read_per_camera(path, key)
    if not isinstance(metadata, Mapping):
        raise DataError("wrong structure", path=path, key="metadata", expected="a dict", found=type(metadata).__name__)
    positions = validate_per_camera(raw, path, key, "(T, 17, K, 5)", validate_gmm_array)
    return GMM2D(positions=positions, metadata=dict(metadata), path=str(path))


def write_gmm_2d(
    path: str | os.PathLike,
    data: Mapping[str, Mapping[str, list[np.ndarray]]],
    metadata: Mapping | None = None,
) -> Path:
    """Validate then write atomically; metadata gains `gmm_layout` and `units` entries."""
    pos = {
        s: {a: [validate_gmm_array(c, path=path, key=f"positions_2d/{s}/{a}[{i}]") for i, c in enumerate(cams)]
            for a, cams in acts.items()}
        for s, acts in data.items()
    }
    meta = {"num_joints": 17, "gmm_layout": ["weight", "mean_u", "mean_v", "spread_u", "spread_v"],
            "units": "pixels (means and spreads)"}
    meta.update(dict(metadata or {}))
    return atomic_savez(path, positions_2d=wrap_object(pos), metadata=wrap_object(meta))
