"""One writer per run folder: an exclusive OS file lock (fcntl.flock) beside the folder, as git's index lock.

The lock file `.NAME.lock` lies next to run folder NAME (not inside it: `train --force` swaps the folder, and a
refused run must not create the folder). It holds the holder's pid, host and start time, so a second writer is
refused naming them. The OS releases a flock when its process dies (a crash or SIGKILL never leaves a stale
lock); the file itself is removed on a clean release.
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from diffpose_viz.atomic import WriteError


class RunLockedError(RuntimeError):
    """Another process is writing the run folder."""


def lock_path(folder: str | os.PathLike) -> Path:
    """`.NAME.lock` beside run folder NAME (absolute, so that `--out .` and `--out run/` name the same lock)."""
    folder = Path(os.path.abspath(folder))
    return folder.parent / f".{folder.name}.lock"


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "an unknown process"


@contextmanager
def run_lock(folder: str | os.PathLike, what: str = "train") -> Iterator[Path]:
    """Hold the exclusive lock of run folder `folder` for the block; RunLockedError naming the holder (pid, host,
    start time) when another process holds it. Never waits."""
    folder = Path(folder)
    path = lock_path(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WriteError(err.errno, f"--out {folder}: cannot create the folder {path.parent} ({err.strerror}"
                                    f"{': ' + str(err.filename) if err.filename else ''})") from None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLockedError(f"--out {folder}: another {what} is writing this run folder ({_holder(path)}; lock "
                                 f"{path}); wait for it to finish, or write elsewhere") from None
        # the previous holder may have removed the file between our open and our lock: then lock the new one
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode())
        yield path
    finally:
        try:
            os.unlink(path)  # still holding the lock: nobody else can hold this inode now
        except OSError:
            pass
        os.close(fd)
