"""Random access to video frames (PyAV): the right frame after steps, jumps forwards and backwards, and a
clear error for a missing, empty, corrupt or frameless file."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("av")

from diffpose_viz.errors import DataError  # noqa: E402
from diffpose_viz.figures.video_frames import VideoFrames  # noqa: E402
from timeline_fixtures import decoded_index, write_video  # noqa: E402


def test_frames_are_found_in_any_order(tmp_path):
    path = write_video(tmp_path / "v.mp4", 24)
    with VideoFrames(path, max_width=80) as video:
        assert len(video) == 24 and video.fps == 24
        assert (video.width, video.height) == (160, 120) and (video.out_width, video.out_height) == (80, 60)
        for i in [0, 1, 2, 17, 5, 23, 9, 10, 3]:  # steps, jumps forward, jumps back
            frame = video.frame(i)
            assert frame.shape == (60, 80, 3) and frame.dtype == np.uint8
            assert decoded_index(frame) == i
        with pytest.raises(IndexError, match="out of range"):
            video.frame(24)


def test_bad_videos_are_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="video not found"):
        VideoFrames(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        VideoFrames(empty)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(DataError, match="corrupt.mp4"):
        VideoFrames(corrupt)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    with pytest.raises(DataError, match="notes.mp4"):
        VideoFrames(text)


def test_a_video_without_frames_is_refused(tmp_path):
    import av

    path = tmp_path / "zero.mp4"
    with av.open(str(path), mode="w") as container:  # a video stream, no frame in it
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()  # writes the header: a real file with no frame
    assert path.stat().st_size > 0
    with pytest.raises(DataError, match="zero.mp4: (holds no video stream|has no frames)"):
        VideoFrames(path)
