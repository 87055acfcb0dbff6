"""Atomic replacement (diffpose_viz/atomic.py): a swap killed between its renames is undone, a replaced folder
is restored on error and swapped on success, an unwritable target is named by itself, never by its temporary."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from diffpose_viz import atomic


pytestmark = pytest.mark.usefixtures("one_thread")


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes), the H_K cache included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_leftovers(run: Path) -> None:
    stray = [p.name for p in run.parent.iterdir() if p.name.startswith(f".{run.name}.")]
    assert not stray, f"staging folders left behind: {stray}"


def test_a_swap_killed_between_its_renames_is_undone(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "best.pt").write_bytes(b"old")
    staging = atomic.begin_replacement(target)
    (staging / "best.pt").write_bytes(b"new")
    os.rename(target, tmp_path / ".run.old")  # the first rename of commit_replacement, then a kill
    assert not target.exists()
    atomic.begin_replacement(target)  # the next run starts
    assert (target / "best.pt").read_bytes() == b"old"


def test_replacing_dir_on_error_and_on_success(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "a.txt").write_text("old a")
    (target / "user.txt").write_text("mine")
    with pytest.raises(ValueError):
        with atomic.replacing_dir(target) as staging:
            (staging / "a.txt").write_text("half")
            raise ValueError("fails")
    assert _snapshot(target) == {"a.txt": b"old a", "user.txt": b"mine"}
    with atomic.replacing_dir(target, drop=("gone.txt",)) as staging:
        (staging / "a.txt").write_text("new a")
    assert _snapshot(target) == {"a.txt": b"new a", "user.txt": b"mine"}
    _no_leftovers(target)


def test_an_unwritable_target_names_itself_not_the_temporary(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError) as err:
        atomic.atomic_write_text(blocker / "config.yaml", "a: 1\n")
    assert str(blocker / "config.yaml") in str(err.value) and ".tmp" not in str(err.value)
