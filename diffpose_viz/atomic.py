"""Atomic file writes: write beside the target, then rename over it, so a killed run never leaves a
half-written checkpoint, results or data file. Folders (a run) are replaced the same way: built beside
the old one and swapped in only once complete."""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    tmp = _temp_beside(path)
    try:
        try:
            yield tmp
        except Exception as err:  # noqa: BLE001 - disk full / read-only while writing: name the target in words
            if (isinstance(err, OSError) and err.filename is not None and Path(err.filename) == tmp) or \
                    disk_full(path, err) is not None:
                raise not_writable(path, err) from None
            raise
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp creates 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _temp_beside(path: Path) -> Path:
    """A new empty temporary file in `path`'s folder (created if needed); errors name `path`, not the temp."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise not_writable(path, err) from None
    os.close(fd)
    return Path(tmp)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` atomically (temp file in the same folder, then rename)."""
    with atomic_target(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """json.dump `obj` to `path` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent))


def clean_stale_temporaries(folder: str | os.PathLike, names: tuple[str, ...] | None = None) -> list[Path]:
    """Remove `.NAME.*.tmp` files that `atomic_target` leaves only when a process is killed mid-write
    (a crash inside Python removes its own). `names` limits it to those targets; returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for tmp in folder.glob(".*.tmp"):
        if names is not None and not any(tmp.name.startswith(f".{n}.") for n in names):
            continue
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


class WriteError(OSError):
    """A file could not be written; the message names the file (never a temporary), and says why in words."""

    def __str__(self) -> str:
        return str(self.strerror or super().__str__())


def write_problem(path: str | os.PathLike, err: BaseException) -> str | None:
    """'no space left on device writing FILE' / 'cannot write FILE (read-only)' / '... (permission denied)' when
    `err` (or an error it was raised from: torch and netCDF wrap the OSError) is one of those; else None."""
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        code = getattr(e, "errno", None)
        if code == errno.ENOSPC or code == errno.EDQUOT:
            return f"no space left on device writing {path}"
        if code == errno.EROFS:
            return f"cannot write {path} (read-only file system)"
        if code in (errno.EACCES, errno.EPERM):
            return f"cannot write {path} (permission denied)"
        e = e.__cause__ or e.__context__
    text = str(err).lower()  # torch/HDF5 keep only a message: "No space left on device", "Read-only file system"
    if "no space left" in text:
        return f"no space left on device writing {path}"
    if "read-only file system" in text:
        return f"cannot write {path} (read-only file system)"
    return None


def disk_full(path: str | os.PathLike, err: BaseException, min_free: int = 1 << 16) -> str | None:
    """`write_problem`, or 'no space left on device writing FILE' when a writer failed with its own message (the
    netCDF library says 'HDF error') and the folder has (almost) no free space left."""
    known = write_problem(path, err)
    if known is not None:
        return known
    try:
        st = os.statvfs(Path(path).parent)
    except OSError:
        return None
    return f"no space left on device writing {path}" if st.f_bavail * st.f_frsize < min_free else None


def not_writable(path: str | os.PathLike, err: BaseException) -> WriteError:
    """The error to raise when `path` cannot be written: it names `path` (and its folder), not a temporary file,
    and says 'no space left on device' / 'read-only' / 'permission denied' in words."""
    path = Path(path)
    code = getattr(err, "errno", None)
    message = disk_full(path, err) or f"{path}: cannot write into folder {path.parent} ({getattr(err, 'strerror', None) or err})"
    return WriteError(code, message) if code is not None else WriteError(message)


def check_writable(path: str | os.PathLike) -> Path:
    """Fail now, naming `path`, if a file cannot be created beside it (before any long computation)."""
    tmp = _temp_beside(Path(path))
    tmp.unlink()
    return Path(path)


@contextmanager
def atomic_targets(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Temporary paths for several files that belong together (a results file and its metrics): all are
    written first, then renamed into place in the given order, so a failure while writing leaves none of
    them new (only the renames are not one step: put the file that marks completion last)."""
    paths = [Path(p) for p in paths]
    tmps: list[Path] = []
    try:
        for p in paths:
            tmps.append(_temp_beside(p))
        try:
            yield list(tmps)
        except Exception as err:  # noqa: BLE001 - disk full / read-only while writing: name the target in words
            named = [p for tmp, p in zip(tmps, paths) if str(tmp) == str(getattr(err, "filename", None))]
            target = named[0] if named else " and ".join(map(str, paths))
            if named or disk_full(paths[0], err) is not None:
                raise not_writable(target, err) from None
            raise
        for tmp in tmps:
            os.chmod(tmp, 0o666 & ~_current_umask())
        for tmp, p in zip(tmps, paths):
            os.replace(tmp, p)
    except BaseException:
        for tmp in tmps:
            if tmp.exists():
                tmp.unlink()
        raise


# --------------------------------------------------------------------------- folders
def staging_dir(target: str | os.PathLike) -> Path:
    """Where the replacement of folder `target` is built (beside it, so the swap is a rename)."""
    target = Path(target)
    return target.parent / f".{target.name}.new"


def _backup_dir(target: Path) -> Path:
    return target.parent / f".{target.name}.old"


def recover_replacement(target: str | os.PathLike) -> bool:
    """Undo a swap that was killed between its two renames: `target` is missing and its `.NAME.old` holds the
    earlier folder, which is put back. True when it did; every reader and writer of a run folder calls this
    first, so a kill never hides (or later deletes) a finished run."""
    target = Path(target)
    backup = _backup_dir(target)
    if backup.is_dir() and not target.exists() and not target.is_symlink():
        os.rename(backup, target)
        return True
    return False


def begin_replacement(target: str | os.PathLike) -> Path:
    """An empty staging folder for a new version of `target` (left untouched until `commit_replacement`).

    A staging folder left by a killed earlier attempt is discarded; a swap that was killed between its two
    renames is undone first, so `target` is back as it was."""
    target = Path(target)
    backup, staging = _backup_dir(target), staging_dir(target)
    if not recover_replacement(target) and backup.exists():
        shutil.rmtree(backup)  # killed after the swap, before the old folder was removed: it is the replaced one
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def commit_replacement(target: str | os.PathLike, *, drop: tuple[str, ...] = ()) -> Path:
    """Swap the staging folder in as `target`. Entries of the old folder that the new one lacks (files a
    user keeps there) are carried over, except the names in `drop`; then the old folder is removed."""
    target = Path(target)
    backup, staging = _backup_dir(target), staging_dir(target)
    if not target.exists():
        os.rename(staging, target)
        return target
    os.rename(target, backup)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(backup, target)
        raise
    for entry in backup.iterdir():
        if entry.name not in drop and not (target / entry.name).exists():
            os.rename(entry, target / entry.name)
    shutil.rmtree(backup, ignore_errors=True)
    return target


def abort_replacement(target: str | os.PathLike) -> None:
    """Discard the staging folder of `target`; `target` itself is left as it was."""
    shutil.rmtree(staging_dir(target), ignore_errors=True)


@contextmanager
def replacing_dir(target: str | os.PathLike, *, drop: tuple[str, ...] = ()) -> Iterator[Path]:
    """Build a new version of folder `target` in the yielded staging folder; on success it replaces
    `target` (`commit_replacement`), on any error it is removed and `target` is untouched."""
    staging = begin_replacement(target)
    try:
        yield staging
    except BaseException:
        abort_replacement(target)
        raise
    commit_replacement(target, drop=drop)
