"""The exports of a sequence: MP4 frame count and size (read back with PyAV), CSV columns, JSON content,
a Rerun recording read back with Rerun's own reader, the source recorded, existing files refused."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from diffpose_viz.errors import OutputExistsError
from diffpose_viz.exports import FORMATS, export_sequence
from diffpose_viz.exports.tables import JOINTS
from diffpose_viz.figures import sequence as S
from timeline_fixtures import decoded_index, sequence_results, wild_run_folder


@pytest.fixture
def seq(tmp_path):
    ds = sequence_results(12)
    ds["radius"] = (("sample", "joint"), np.full((12, 17), 35.0, np.float32), {"units": "mm", "level": 0.9})
    ds["ood_score"] = (("sample",), np.linspace(-1, 3, 12).astype(np.float32))
    ds["ood_flag"] = (("sample",), (np.linspace(-1, 3, 12) > 2).astype(np.int8))
    ds.attrs.update(checkpoint="runs/x/best.pt", checkpoint_fingerprint="abc123")
    path = tmp_path / "res.nc"
    ds.to_netcdf(path)
    return S.select_sequence(ds, 0, source=str(path))


def test_csv_has_the_documented_columns(seq, tmp_path):
    out = export_sequence("csv", seq, tmp_path / "a.csv").path
    table = pd.read_csv(out)
    expected = (["frame", "time_s", "subject", "action", "camera"]
                + [f"pred_{j}_{a}_m" for j in JOINTS for a in "xyz"] + [f"spread_{j}_mm" for j in JOINTS]
                + [f"radius_{j}_mm" for j in JOINTS] + ["ood_score", "ood_flag", "mpjpe_mm", "mean_confidence"])
    assert list(table.columns) == expected and len(table) == 12
    np.testing.assert_array_equal(table["frame"], np.arange(12))
    np.testing.assert_allclose(table["pred_left_wrist_y_m"], seq.pred[:, 13, 1], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(table["mpjpe_mm"], seq.mpjpe_mm, rtol=1e-5)
    assert table["ood_flag"].tolist() == seq.ood_flag.astype(int).tolist()


def test_json_records_its_source(seq, tmp_path):
    doc = json.loads(export_sequence("json", seq, tmp_path / "a.json").path.read_text())
    meta = doc["metadata"]
    assert meta["model"] == "diffpose" and meta["checkpoint"] == "runs/x/best.pt"
    assert meta["checkpoint_fingerprint"] == "abc123" and len(meta["source_sha256"]) == 64
    assert len(doc["frames"]) == 12 and doc["joint_names"] == list(JOINTS)
    first = doc["frames"][0]
    assert np.array(first["hypotheses"]).shape == (4, 17, 3) and first["radius_mm"][5] == 35.0
    np.testing.assert_allclose(first["pred"], seq.pred[0], atol=1e-6)


def test_existing_file_is_refused_unless_forced(seq, tmp_path):
    out = tmp_path / "a.csv"
    out.write_text("keep me")
    with pytest.raises(OutputExistsError, match="a.csv: already exists"):
        export_sequence("csv", seq, out)
    assert out.read_text() == "keep me"
    export_sequence("csv", seq, out, force=True)
    assert out.read_text().startswith("frame,")
    with pytest.raises(ValueError, match="expected one of mp4, bvh, rrd, csv, json"):
        export_sequence("fbx", seq, tmp_path / "a.fbx")
    assert FORMATS == ("mp4", "bvh", "rrd", "csv", "json")


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


def test_rrd_read_back_with_rerun(seq, tmp_path):
    pytest.importorskip("rerun", reason="the 'rerun' extra (rerun-sdk) is not installed")
    from rerun.chunk import RrdReader

    out = export_sequence("rrd", seq, tmp_path / "a.rrd").path
    chunks = list(RrdReader(out).stream().collect().stream())
    rows: dict[str, int] = {}
    timelines: dict[str, set] = {}
    for chunk in chunks:
        rows[chunk.entity_path] = rows.get(chunk.entity_path, 0) + chunk.num_rows
        timelines.setdefault(chunk.entity_path, set()).update(chunk.timeline_names)
    for entity in ("/input_2d/joints", "/pose/mean", "/pose/hypotheses", "/pose/radius", "/pose/ground_truth",
                   "/scores/ood_score", "/scores/mpjpe_mm"):
        assert rows.get(entity) == 12, (entity, rows)
        assert "frame" in timelines[entity]
    steps = seq.trajectory.shape[2]
    assert rows["/diffusion/state"] == 12 * steps and "diffusion_step" in timelines["/diffusion/state"]
    mean = next(c for c in chunks if c.entity_path == "/pose/mean").to_record_batch()
    frame_col = mean.column(mean.schema.get_field_index("frame")).to_pylist()
    assert sorted(frame_col) == list(range(12))
    props = next(c for c in chunks if c.entity_path == "/__properties/source").to_record_batch()
    assert "diffpose" in str(props.column(props.schema.get_field_index("model")).to_pylist())
