"""The Rerun recording, read back with Rerun's own reader (skipped when the `rerun` extra is not installed)."""
from __future__ import annotations

import pytest

from diffpose_viz.exports import export_sequence
from timeline_fixtures import calibrated_sequence


@pytest.fixture
def seq(tmp_path):
    return calibrated_sequence(tmp_path)



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
