"""The one check every output path goes through before any work starts (`--out`, its metrics JSON,
`--save-calibration-rows`, exports, a script's `--json`): nothing finished is replaced without `--force`, two
outputs of one command never name the same file, a folder is not a file, and the folder can be written.

    check_output_files([("--out", out), ("--out's metrics JSON", metrics), ("--save-calibration-rows", rows)],
                       force=args.force, suffixes={"--out": ".nc"})
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from diffpose_viz.atomic import WriteError, check_writable
from diffpose_viz.errors import OutputExistsError


class OutputPathError(ValueError):
    """An output path that cannot be used: a folder, the wrong suffix, the same file as another output."""


def _identity(path: Path) -> str:
    """The file a path names, independent of spelling ('a/../b.nc', a symlinked folder, a relative path)."""
    return os.path.join(os.path.realpath(path.parent), path.name)


def check_output_files(outputs: Iterable[tuple[str, str | os.PathLike | None]], *, force: bool = False,
                       suffixes: Mapping[str, str] | None = None, option: str = "--force") -> list[Path]:
    """Check `outputs` ((label, path) pairs, e.g. ("--out", "r.nc"); None paths are skipped) before any work:

    - a path whose label has a required suffix in `suffixes` must end in it;
    - a path must not be a folder, and no two outputs may name the same file (their rows would be lost);
    - an existing file (or a dangling symlink) is refused unless `force` (`option` is how the caller spells it);
    - its folder must be creatable and writable (`atomic.check_writable`: the error names the path).

    Raises OutputPathError or OutputExistsError naming the label and path; returns the paths checked."""
    items = [(label, Path(p)) for label, p in outputs if p is not None]
    suffixes = dict(suffixes or {})
    seen: dict[str, str] = {}
    for label, path in items:
        want = suffixes.get(label)
        if path.is_dir():
            raise OutputPathError(f"{label} {path}: is a folder; give the file to write (e.g. "
                                  f"{path / ('results' + (want or ''))})")
        if want and path.suffix.lower() != want:
            raise OutputPathError(f"{label} {path}: expected a file name ending in {want}, found "
                                  f"{path.suffix or 'no suffix'!r}")
        key = _identity(path)
        if key in seen:
            raise OutputPathError(f"{label} {path}: the same file as {seen[key]}; one would overwrite the other, so "
                                  "give each output its own path")
        seen[key] = f"{label} {path}"
    existing = [f"{label} {path}" for label, path in items if path.exists() or path.is_symlink()]
    if existing and not force:
        raise OutputExistsError(f"{' and '.join(existing)}: already {'exists' if len(existing) == 1 else 'exist'} "
                                f"(an earlier result); choose another path, or replace it with {option}")
    for label, path in items:
        if path.parent.exists() and not path.parent.is_dir():
            raise OutputPathError(f"{label} {path}: cannot write: its folder {path.parent} is a file, not a folder")
        try:
            check_writable(path)
        except WriteError as err:
            raise WriteError(err.errno, f"{label} {err}") from None
    return [p for _, p in items]


def check_output_file(path: str | os.PathLike, *, force: bool = False, label: str = "output",
                      suffix: str | None = None) -> Path:
    """`check_output_files` for one path (exports, a script's --json)."""
    return check_output_files([(label, path)], force=force, suffixes={label: suffix} if suffix else None)[0]
