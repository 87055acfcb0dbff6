"""One writer per run folder (`diffpose_viz.run_lock`): a second holder is refused naming the first; the OS
releases the lock of a killed process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from diffpose_viz.run_lock import RunLockedError, lock_path, run_lock
from tiny_runs import REPO

HOLD = "import sys, time; from diffpose_viz.run_lock import run_lock\nwith run_lock(sys.argv[1]):\n    " \
       "print('held', flush=True); time.sleep(60)"


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    with run_lock(run):
        text = lock_path(run).read_text()
        assert f"pid {os.getpid()}" in text and "started" in text
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}.*started"):
            with run_lock(run):
                pass
    assert not lock_path(run).exists() and not run.exists()  # released, removed, nothing created
    with run_lock(run):  # free again
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
            with run_lock(run):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_path(run).exists()  # the file stays after a kill; its lock does not
    deadline = time.time() + 10
    while True:
        try:
            with run_lock(run):
                break
        except RunLockedError:
            assert time.time() < deadline
            time.sleep(0.05)
