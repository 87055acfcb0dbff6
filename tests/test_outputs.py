"""The shared output-path check (`diffpose_viz.outputs`): existing files, one file named twice, folders, suffixes."""
from __future__ import annotations

import pytest

from diffpose_viz.errors import OutputExistsError
from diffpose_viz.outputs import OutputPathError, check_output_file, check_output_files


def test_an_existing_file_is_kept_unless_forced(tmp_path):
    out = tmp_path / "x.json"
    out.write_text("keep")
    with pytest.raises(OutputExistsError, match="--json .*x.json: already exists.*--force"):
        check_output_file(out, label="--json")
    assert out.read_text() == "keep"
    assert check_output_file(out, label="--json", force=True) == out


def test_two_outputs_naming_one_file_are_refused_even_when_forced(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(OutputPathError, match="the same file as --out"):
        check_output_files([("--out", tmp_path / "r.nc"), ("--rows", tmp_path / "sub" / ".." / "r.nc")], force=True)


def test_folders_suffixes_and_unwritable_parents_are_named(tmp_path):
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_files([("--out", tmp_path)])
    with pytest.raises(OutputPathError, match=r"ending in \.nc, found '\.txt'"):
        check_output_files([("--out", tmp_path / "x.txt")], suffixes={"--out": ".nc"})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="cannot write: its folder .* is a file"):
        check_output_files([("--out", blocker / "r.nc")])
    assert check_output_files([("--out", tmp_path / "new" / "r.nc"), ("--rows", None)]) == [tmp_path / "new" / "r.nc"]
