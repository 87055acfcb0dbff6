"""Fixtures shared by the tests of the methods that start from a trained stage-1 lifter."""
from __future__ import annotations

from pathlib import Path

import pytest

from tiny_runs import tiny_config, train_run


@pytest.fixture(scope="module")
def lifter_ckpt(tiny_data, tmp_path_factory) -> Path:
    """A frame 'lifter' trained for five steps on the tiny data: its best.pt."""
    out = tmp_path_factory.mktemp("lifter")
    train_run(tiny_config(tiny_data, method="lifter", **{"train.max_steps": 5}), out)
    return out / "best.pt"
