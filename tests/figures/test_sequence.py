"""One sequence of a results file in time order, aligned with its video; problems that leave something to show
are one-line notes (no order, another frame count, a missing video), unreadable videos a clear error."""
from __future__ import annotations

import numpy as np
import pytest

from diffpose_viz.figures import sequence as S
from timeline_fixtures import sequence_results, wild_run_folder


def test_rows_come_in_time_order(results_ds):
    ds = sequence_results(12)
    assert not (np.diff(ds["frame"].values) > 0).all()  # the file is shuffled
    seq = S.select_sequence(ds, 0, source="x.nc")
    assert seq.ordered and not seq.notes
    np.testing.assert_array_equal(seq.frames, np.arange(12))
    order = np.argsort(ds["frame"].values)
    np.testing.assert_allclose(seq.pred, ds["pred"].values[order])
    assert seq.spread_mm.shape == (12, 17) and (seq.spread_mm[:, 1:] > 0).all()
    worst, by = seq.worst(3)
    assert by == "MPJPE" and seq.mpjpe_mm[worst[0]] == seq.mpjpe_mm.max()


def test_repeated_frames_are_named_and_shown_in_file_order(results_ds):
    """The fixture repeats frames (occluded copies): no sequence order, one line, nothing dropped."""
    keys = S.sequence_keys(results_ds)
    assert sum(n for _, n in keys) == results_ds.sizes["sample"]
    seq = S.select_sequence(results_ds, 0, source="dir/mine.nc")
    assert not seq.ordered and len(seq) == keys[0][1]
    assert len(seq.notes) == 1 and seq.notes[0].startswith("mine.nc: sequence") and "no sequence order" in seq.notes[0]
    with pytest.raises(ValueError, match="no such sequence"):
        S.select_sequence(results_ds, 99)


def test_b_is_matched_row_by_row():
    seq = S.select_sequence(sequence_results(12), 0)
    other = sequence_results(12, model="lifter", seed=3).isel(sample=slice(0, 9))  # B lacks three rows
    b, line = S.overlay_sequence(seq, other, "dir/lifter.nc")
    assert line == "lifter.nc: 9 of 12 rows matched (the rest left blank)"
    missing = ~np.isin(seq.frames, other["frame"].values)
    assert np.isnan(b.pred[missing]).all() and np.isfinite(b.pred[~missing]).all()
    for row in np.flatnonzero(~missing):
        src = int(np.flatnonzero(other["frame"].values == seq.frames[row])[0])
        np.testing.assert_allclose(b.pred[row], other["pred"].values[src])
    none, line = S.overlay_sequence(seq, other.assign_coords(action=("sample", ["other"] * 9)), "b.nc")
    assert none is None and "no row matches" in line


def test_wild_run_finds_its_video_and_aligns(tmp_path):
    pytest.importorskip("av")
    run = wild_run_folder(tmp_path / "run", n_frames=24, n_rows=12)
    import xarray as xr

    ds = xr.load_dataset(run / "results.nc")
    src = S.open_timeline(ds, run / "results.nc")
    assert src.video is not None and len(src.video) == 24 and src.in_video.all()
    assert src.seq.fps == 24 and src.seq.notes == ["clip.mp4: 24 frames, the results cover frames 0-11"]
    short = wild_run_folder(tmp_path / "short", n_frames=8, n_rows=12)
    src = S.open_timeline(xr.load_dataset(short / "results.nc"), short / "results.nc")
    assert src.in_video.sum() == 8
    assert src.seq.notes == ["clip.mp4: 8 frames, but the results reach frame 11: 4 row(s) shown without video"]


def test_missing_or_corrupt_video_leaves_the_2d(tmp_path):
    pytest.importorskip("av")
    run = wild_run_folder(tmp_path / "run", video=False)
    import xarray as xr

    ds = xr.load_dataset(run / "results.nc")
    src = S.open_timeline(ds, run / "results.nc")
    assert src.video is None and src.video_error is None
    assert len(src.seq.notes) == 1 and "clip.mp4: video not found" in src.seq.notes[0]
    (run / "clip.mp4").write_bytes(b"garbage" * 100)
    src = S.open_timeline(ds, run / "results.nc")
    assert src.video is None and "clip.mp4" in src.video_error and "blank canvas" in src.video_error
    assert S.run_video(tmp_path / "elsewhere" / "results.nc") is None
