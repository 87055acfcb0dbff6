"""A corrupt or truncated video is an error naming the frame where reading stopped (never a short run that
exits 0)."""
from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from diffpose_viz.wild.video import iter_frames, probe_media  # noqa: E402


def _avi(path, n=30):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for i in range(n):
        writer.write(np.full((48, 64, 3), i * 8, np.uint8))
    writer.release()
    return path


def test_a_whole_video_reads_every_frame(tmp_path):
    info = probe_media(_avi(tmp_path / "v.avi"))
    assert [i for i, _ in iter_frames(info)] == list(range(30))


def test_a_truncated_video_names_the_frame_where_reading_stopped(tmp_path):
    full = _avi(tmp_path / "v.avi").read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full[: len(full) // 2])  # the container still declares 30 frames
    info = probe_media(cut)
    assert info.frame_count == 30
    with pytest.raises(ValueError, match=r"reading stopped at frame \d+ of the 30") as err:
        list(iter_frames(info))
    assert str(cut) in str(err.value) and "truncated" in str(err.value)


def test_max_frames_stops_early_without_an_error(tmp_path):
    full = _avi(tmp_path / "v.avi").read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full[: len(full) // 2])
    assert len(list(iter_frames(probe_media(cut), max_frames=2))) == 2
