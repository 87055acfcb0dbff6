"""The errors a user can cause, on the ground floor so that every layer raises the same classes.

Each says which file, key or setting was wrong and what was expected versus found, so a user can fix
the input without reading our code. The file-reading guards' own errors (`safe_io.SafeLoadError`) become
a `DataError` via `data_error_from`; the CLI prints all of these without a traceback.
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


class ConfigError(ValueError):
    """A config value is invalid (wrong type, out of range, inconsistent)."""


class InputError(ValueError):
    """Inputs that cannot be assembled into a run (NaN, wrong shape, missing pieces)."""


class OutputExistsError(FileExistsError):
    """An output would replace an earlier result or run that the caller did not ask to replace."""


class CheckpointError(ValueError):
    """A checkpoint is unreadable, from another format version, or does not fit the model/config."""


class ProvenanceError(ValueError):
    """A derived file (metrics JSON, calibration, calibration rows, results) was made from another checkpoint
    than the one it is used with: the content fingerprints differ (or the file records none)."""


class LeakageError(ValueError):
    """Test rows would reach training or calibration (a test subject in a training source, a calibration file
    that is the training data)."""


class ResultsError(ValueError):
    """A results file does not follow docs/RESULTS_SCHEMA.md.

    Raised with keywords it names the source (the file when loaded from one), the variable or attribute,
    and what was expected versus found; those parts are kept as attributes.
    """

    def __init__(self, problem: str, *, source: str | None = None, variable: str | None = None,
                 attribute: str | None = None, expected: object = None, found: object = None) -> None:
        self.problem, self.source, self.variable, self.attribute = problem, source, variable, attribute
        self.expected, self.found = expected, found
        parts = [p for p in (source, None if variable is None else f"variable '{variable}'",
                             None if attribute is None else f"attribute '{attribute}'") if p]
        message = ": ".join([*parts, problem])
        if expected is not None or found is not None:
            message += f" (expected {expected}, found {found})"
        super().__init__(message)
