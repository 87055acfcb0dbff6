"""`Closing`: `with` hands out the object and closes it however the block ends (the npz reader as the real user)."""
from __future__ import annotations

import numpy as np
import pytest

from diffpose_viz.safe_io import SafeNpzFile


def test_with_closes_the_archive_also_when_the_block_raises(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, x=np.arange(3))
    with SafeNpzFile(path) as archive:
        assert list(archive["x"]) == [0, 1, 2]
    assert archive._zip.fp is None  # closed
    with pytest.raises(KeyError), SafeNpzFile(path) as again:
        again["missing"]
    assert again._zip.fp is None
