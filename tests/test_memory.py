"""Memory estimates (diffpose_viz/memory.py): the lift estimate grows with what is kept."""
from __future__ import annotations


import pytest


pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_lift_estimate_grows_with_what_is_kept():
    from diffpose_viz.memory import RESULT_COPIES, lift_bytes

    base = lift_bytes(1000, 5, 10, False, 256, 96)
    assert lift_bytes(1000, 10, 10, False, 256, 96) > 1.9 * base
    kept = 1000 * 5 * 17 * 3 * 4 * RESULT_COPIES  # the hypotheses and their copies
    assert lift_bytes(1000, 5, 10, True, 256, 96) - base == 2 * 10 * kept  # every step's state and x0 estimate
    assert lift_bytes(2000, 5, 10, False, 256, 96) - base == kept
