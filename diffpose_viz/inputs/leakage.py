"""Leakage guards: test rows never reach training, model selection or the error-bar calibration unnoticed.

Rows are compared by content, not by name: two rows are the same when their camera-frame 3D pose and root
position are bit-identical (the same frame of the same take through the same camera), which a renamed subject or a
copied file does not hide. Files are compared by content too (size, then sha256). Each check raises LeakageError
naming the file, the subjects and how many rows overlap; `allow=True` (`--allow-leakage`) turns it into a warning.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from diffpose_viz.config import DataConfig
from diffpose_viz.datasets.poses import PoseSet
from diffpose_viz.errors import LeakageError
from diffpose_viz.inputs.splits import Splits, load_test_poses
from diffpose_viz.safe_io import file_sha256

log = logging.getLogger(__name__)

ALLOW_HINT = "pass --allow-leakage if this is deliberate (the numbers then say nothing about unseen data)"


def _row_keys(poses: PoseSet) -> np.ndarray:
    """One opaque key per row: the bytes of its 3D pose and root (float32)."""
    rows = np.concatenate([np.asarray(poses.pose3d, np.float32).reshape(len(poses), -1),
                           np.asarray(poses.root, np.float32).reshape(len(poses), -1)], 1)
    rows = np.ascontiguousarray(rows)
    return rows.view(np.dtype((np.void, rows.shape[1] * rows.itemsize))).ravel()


def shared_rows(rows: PoseSet, reference: PoseSet) -> dict[str, int]:
    """{subject of `rows`: how many of its rows are also rows of `reference`} (only subjects with any)."""
    if len(rows) == 0 or len(reference) == 0:
        return {}
    hit = np.isin(_row_keys(rows), _row_keys(reference))
    subjects, counts = np.unique(np.asarray(rows.subject, str)[hit], return_counts=True)
    return {str(s): int(c) for s, c in zip(subjects, counts)}


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when `a` and `b` are one file, or two files with the same bytes."""
    a, b = Path(a), Path(b)
    try:
        if os.path.samefile(a, b):
            return True
        if a.stat().st_size != b.stat().st_size:
            return False
    except OSError:
        return False
    return file_sha256(a) == file_sha256(b)


def _refuse(message: str, allow: bool) -> None:
    if allow:
        log.warning("%s (allowed by --allow-leakage)", message)
        return
    raise LeakageError(f"{message}; {ALLOW_HINT}")


def check_training_sources(data: DataConfig, training: PoseSet, seed: int = 0, *, allow: bool = False) -> None:
    """Refuse training (and validation) rows that are test rows of this run: an `extra_train` source that is the
    main data file and lists a test subject, or any training subject whose rows equal test rows."""
    for i, src in enumerate(data.extra_train):
        named = sorted(set(src.subjects) & set(data.test_subjects))
        if named and same_file(src.path, data.path):
            _refuse(f"data.extra_train[{i}] ({src.path}): subjects {named} are test subjects of this run "
                    f"(data.test_subjects of {data.path}, the same file)", allow)
    if data.test_3dhp is None and not Path(data.path).exists():
        return
    test = load_test_poses(data)
    overlap = shared_rows(training, test)
    if overlap:
        shown = ", ".join(f"{s} ({n} rows)" for s, n in sorted(overlap.items()))
        _refuse(f"training rows are test rows of this run: {shown} equal rows of the test subjects "
                f"{list(data.test_subjects)} of {data.test_3dhp or data.path} (data.path / data.extra_train)", allow)


def check_calibration_file(path, rows: PoseSet, data: DataConfig, own: Splits, *, allow: bool = False) -> None:
    """Refuse a `--calibrate-with` file that is the training data file itself, or whose validation rows `rows`
    overlap the rows of the training file's split `own` (they would then count as a held-out domain)."""
    if same_file(path, data.path):
        _refuse(f"--calibrate-with {path}: is the training data file {data.path} itself; its validation rows are "
                "the calibration's own, not a held-out domain", allow)
        return
    for name, reference in (("validation", own.val), ("training", own.train)):
        overlap = shared_rows(rows, reference)
        if overlap:
            shown = ", ".join(f"{s} ({n} rows)" for s, n in sorted(overlap.items()))
            _refuse(f"--calibrate-with {path}: its validation rows {shown} equal {name} rows of the training data "
                    f"{data.path}; a held-out domain must be other takes or views", allow)
            return
