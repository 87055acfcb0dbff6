"""The one exception type for bad data files.

A `DataError` always says which file and which key were wrong and what was
expected versus found, so a user can fix the file without reading our code.
"""
from __future__ import annotations

from os import PathLike


class DataError(ValueError):
    """A data file is missing, malformed, or holds values in the wrong shape or unit."""

    def __init__(
        self,
        problem: str,
        *,
        path: str | PathLike | None = None,
        key: str | None = None,
        expected: object = None,
        found: object = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.key = key
        self.expected = expected
        self.found = found
        self.problem = problem
        parts = []
        if self.path is not None:
            parts.append(f"{self.path}")
        if key is not None:
            parts.append(f"key {key!r}")
        where = ": ".join(parts)
        message = f"{where}: {problem}" if where else problem
        if expected is not None or found is not None:
            message += f" (expected {expected}, found {found})"
        super().__init__(message)


class UnsafeDataError(DataError):
    """A data file's pickled object references code (`refused` = the `module.name` it asked for); nothing ran."""

    def __init__(self, problem: str, *, refused: str, **where) -> None:
        self.refused = refused
        super().__init__(problem, **where)


def data_error_from(err) -> DataError:
    """The DataError (or UnsafeDataError) for a `diffpose_viz.safe_io.SafeLoadError`, same file/key/message parts."""
    where = dict(path=err.path, key=err.key, expected=err.expected, found=err.found)
    refused = getattr(err, "refused", None)
    if refused is not None:
        return UnsafeDataError(err.problem, refused=refused, **where)
    return DataError(err.problem, **where)
