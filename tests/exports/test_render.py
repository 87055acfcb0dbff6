"""The side-by-side MP4: frame count and size read back with PyAV, the video under the 2D, a drawn 3D panel."""
from __future__ import annotations

import json

import pytest

from diffpose_viz.exports import export_sequence
from diffpose_viz.figures import sequence as S
from timeline_fixtures import decoded_index, wild_run_folder


def test_mp4_frame_count_size_and_frames(tmp_path):
    av = pytest.importorskip("av")
    from diffpose_viz.figures.video_frames import VideoFrames

    run = wild_run_folder(tmp_path / "run", n_frames=24, n_rows=12)
    import xarray as xr

    src = S.open_timeline(xr.load_dataset(run / "results.nc"), run / "results.nc")
    done = export_sequence("mp4", src.seq, tmp_path / "a.mp4", video=src.video)
    with av.open(str(done.path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert json.loads(container.metadata["comment"])["model"] == "diffpose"
    assert len(frames) == 12
    h, w = frames[0].shape[:2]
    assert h == 480 and w == 640 + 480  # 160x120 video scaled to 480 high | the square 3D panel
    assert done.summary == f"12 frames, {w}x{h} px, 24 fps"
    # the left panel is the video frame of each row (grey level = frame index, below the label and skeleton)
    for i in (0, 5, 11):
        assert decoded_index(frames[i][400:470, 20:120]) == i
    # the 3D panel is not blank: the mean pose is drawn in blue
    right = frames[6][:, 640:].astype(int)
    assert ((right[..., 2] > 150) & (right[..., 0] < 80)).sum() > 200
    with VideoFrames(done.path) as back:
        assert len(back) == 12
