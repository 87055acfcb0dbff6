"""Video windows (diffpose_viz/inputs/windows.py): strided window centres tile every sequence."""
from __future__ import annotations

import numpy as np
import pytest

from diffpose_viz import inputs


pytestmark = pytest.mark.usefixtures("one_thread")


def test_strided_centres_tile_every_sequence():
    T = 9
    seq = np.repeat(["a", "b", "c"], [40, 5, 27])
    frame = np.concatenate([np.arange(40), np.arange(5), np.arange(27)])[::-1].copy()  # any row order
    seq = seq[::-1].copy()
    centres = inputs.strided_centres(seq, frame, T, T)
    windows = inputs.sequence_windows(seq, frame, T)
    covered = np.zeros(len(seq), bool)
    covered[windows[centres].ravel()] = True
    assert covered.all()  # every frame is supervised at least once per epoch
    assert len(centres) == 5 + 1 + 3  # 40 frames: 4 tiles + the tail's; 5: one; 27: three (ceil(L / T) here)
    np.testing.assert_array_equal(inputs.strided_centres(seq, frame, T, 1), np.arange(len(seq)))
