"""DiffPose GMM 2D files: reading, validation, round trip."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffpose_viz.datasets import read_gmm_2d, write_gmm_2d
from diffpose_viz.errors import DataError


FIX = Path(__file__).resolve().parents[1] / "fixtures"


# ----------------------------------------------------------------------------- GMM
def test_read_gmm_fixture():
    g = read_gmm_2d(FIX / "tiny_gmm.npz")
    arr = g["alpha"]["walk 001"][0]
    assert arr.shape == (8, 17, 3, 5)
    np.testing.assert_allclose(arr[..., 0].sum(-1), 1.0, atol=1e-3)
    assert g.metadata["units"].startswith("pixels")


def _gmm(t=2, k=2):
    a = np.zeros((t, 17, k, 5), np.float32)
    a[..., 0] = 1.0 / k
    a[..., 1:3] = 100.0
    a[..., 3:5] = 2.0
    return a


def _set_weights(a, w):
    a = a.copy()
    a[..., 0] = w
    return a


@pytest.mark.parametrize("mutate,match", [
    (lambda a: a[..., :4], "last dimension"),
    (lambda a: a[:, :16], "joint count"),
    (lambda a: np.where(np.arange(5) == 1, np.nan, a), "NaN/inf"),
    (lambda a: _set_weights(a, [1.2, -0.2]), "outside \\[0, 1\\]"),
    (lambda a: a * np.array([0.9, 1, 1, 1, 1], np.float32), "sum to 1"),
    (lambda a: a * np.array([1, 1, 1, -1, 1], np.float32), "negative spreads"),
])
def test_gmm_validation(tmp_path, mutate, match):
    p = tmp_path / "bad_gmm.npz"
    with pytest.raises(DataError, match=match) as e:
        write_gmm_2d(p, {"S1": {"Walk": [mutate(_gmm())]}})
    assert str(p) in str(e.value) and "positions_2d/S1/Walk[0]" in str(e.value)
    assert not p.exists()


def test_gmm_round_trip(tmp_path):
    p = write_gmm_2d(tmp_path / "g.npz", {"S1": {"Walk": [_gmm(3, 3)]}}, {"detector": "sim"})
    g = read_gmm_2d(p)
    np.testing.assert_array_equal(g["S1"]["Walk"][0], _gmm(3, 3))
    assert g.metadata["detector"] == "sim"
