"""`export_sequence`: existing files refused unless forced, unknown formats named."""
from __future__ import annotations

import pytest

from diffpose_viz.errors import OutputExistsError
from diffpose_viz.exports import FORMATS, export_sequence
from timeline_fixtures import calibrated_sequence


@pytest.fixture
def seq(tmp_path):
    return calibrated_sequence(tmp_path)



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


def test_output_path_goes_through_the_shared_check(seq, tmp_path):
    from diffpose_viz.outputs import OutputPathError

    with pytest.raises(OutputPathError, match="a.json: expected a file name ending in .csv"):
        export_sequence("csv", seq, tmp_path / "a.json")
    with pytest.raises(OutputPathError, match="is a folder"):
        export_sequence("bvh", seq, tmp_path)
