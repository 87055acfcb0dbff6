"""Mocap files handed to a converter: a folder (a clone), one file, or a `.tar.xz`/`.tar.gz`/`.tar` archive.

Archives are untrusted: members are read into memory one at a time and never extracted, so no member path
(absolute, `..`, a link) can write anywhere. Only regular files are listed; links, devices and folders are
ignored; a member bigger than MAX_MEMBER_BYTES is refused. A truncated file or one that is not an archive is
one DataError line naming it.
"""
from __future__ import annotations

import lzma
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from diffpose_viz.errors import DataError

ARCHIVE_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tar")
MAX_MEMBER_BYTES = 256 * 2**20  # a mocap take is a few MB; a bigger member is not one


@dataclass(frozen=True)
class MocapFile:
    """One file of a source: its path inside the folder/archive (POSIX), and where it came from."""

    name: str  # e.g. "hdm05/train/3/HDM_bd_grabHighR_001_120.amc"
    origin: Path  # the folder or archive

    @property
    def path(self) -> PurePosixPath:
        return PurePosixPath(self.name)

    def __str__(self) -> str:
        return f"{self.origin}:{self.name}" if self.origin.is_file() else str(self.origin / self.name)


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: " + (str(err).strip().splitlines() or [""])[0].rstrip(":")


def _safe_member_name(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts


class MocapSource:
    """The files of `--from PATH`, listed by suffix and read as text, whatever PATH is."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DataError("no such file or folder", path=self.path, key="--from",
                            expected="a folder, a clone or a .tar.xz archive", found="nothing")
        self._members: dict[str, tarfile.TarInfo] = {}
        if is_archive(self.path):
            try:
                with tarfile.open(self.path, "r:*") as tar:
                    for info in tar:  # walks the whole archive: a truncated one fails here, before any work
                        if info.isfile() and _safe_member_name(info.name):
                            self._members[info.name] = info
            except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError) as err:
                raise DataError(f"not a readable archive ({_one_line(err)})", path=self.path,
                                expected="a complete .tar.xz/.tar.gz/.tar", found="a truncated or other file") from None
        elif self.path.is_file() and self.path.name.lower().endswith((".xz", ".gz", ".zip", ".bz2", ".7z")):
            raise DataError("not an archive this converter reads", path=self.path,
                            expected=f"a folder or one of {list(ARCHIVE_SUFFIXES)}", found=self.path.suffix)

    def files(self, *suffixes: str) -> list[MocapFile]:
        """Every regular file whose name ends with one of `suffixes` (case-insensitive), sorted by name."""
        sfx = tuple(s.lower() for s in suffixes)
        if self._members:
            names = [n for n in self._members if n.lower().endswith(sfx)]
            return [MocapFile(n, self.path) for n in sorted(names)]
        if self.path.is_file():
            return [MocapFile(self.path.name, self.path.parent)] if self.path.name.lower().endswith(sfx) else []
        found = [p for p in self.path.rglob("*") if p.is_file() and not p.is_symlink() and p.name.lower().endswith(sfx)]
        return [MocapFile(p.relative_to(self.path).as_posix(), self.path) for p in sorted(found)]

    def read_many(self, files: list[MocapFile]) -> Iterator[tuple[MocapFile, str]]:
        """(file, text) for each of `files`, in one pass over an archive (xz cannot seek, so one pass is fast)."""
        if not self._members:
            for f in files:
                path = f.origin / f.name
                if path.stat().st_size > MAX_MEMBER_BYTES:
                    raise DataError("file too large for a mocap take", path=path,
                                    expected=f"<= {MAX_MEMBER_BYTES} bytes", found=path.stat().st_size)
                yield f, path.read_text(errors="replace")
            return
        wanted = {f.name: f for f in files}
        try:
            with tarfile.open(self.path, "r:*") as tar:
                for info in tar:
                    f = wanted.get(info.name)
                    if f is None or not info.isfile():
                        continue
                    if info.size > MAX_MEMBER_BYTES:
                        raise DataError("member too large for a mocap take", path=str(f),
                                        expected=f"<= {MAX_MEMBER_BYTES} bytes", found=info.size)
                    stream = tar.extractfile(info)
                    yield f, (stream.read() if stream is not None else b"").decode("utf-8", errors="replace")
        except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error) as err:
            raise DataError(f"archive unreadable ({_one_line(err)})", path=self.path) from None
