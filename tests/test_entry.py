"""The shared error handling of the CLI and the scripts (`diffpose_viz.entry`), and the words for a full disk."""
from __future__ import annotations

import errno

import pytest

from diffpose_viz.atomic import atomic_write_text
from diffpose_viz.entry import guarded, read_json, run_script
from diffpose_viz.errors import InputError


def test_a_foreseeable_error_is_one_line_with_the_exit_code(capsys):
    def bad():
        raise InputError("data.npz: key 'x': expected (N, 17, 3), found (3,)")
    assert guarded(bad, "tool.py") == 2
    err = capsys.readouterr().err
    assert err == "tool.py: error: data.npz: key 'x': expected (N, 17, 3), found (3,)\n"


def test_a_bug_keeps_its_traceback_and_debug_shows_one(monkeypatch):
    with pytest.raises(TypeError):
        guarded(lambda: None + 1, "tool.py")
    with pytest.raises(InputError):
        run_script(lambda argv: (_ for _ in ()).throw(InputError("x")), ["--debug"])


def test_disk_full_and_read_only_outside_the_atomic_writer_are_worded(capsys):
    def full():
        raise OSError(errno.ENOSPC, "No space left on device", "runs/demo/train_log.jsonl")
    assert guarded(full, "tool.py") == 2
    assert "no space left on device writing runs/demo/train_log.jsonl" in capsys.readouterr().err
    def read_only():
        raise OSError(errno.EROFS, "Read-only file system", "results/x.json")
    guarded(read_only, "tool.py")
    assert "cannot write results/x.json (read-only file system)" in capsys.readouterr().err


def test_disk_full_inside_the_atomic_writer_names_the_target(tmp_path, monkeypatch):
    import pathlib

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(pathlib.Path, "write_text", full)
    with pytest.raises(OSError, match=f"no space left on device writing {tmp_path / 'x.json'}"):
        atomic_write_text(tmp_path / "x.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_read_json_names_the_file(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=f"{bad}: not a metrics JSON .*line 1"):
        read_json(bad, "metrics JSON")
    with pytest.raises(InputError, match="does not exist"):
        read_json(tmp_path / "missing.json")
