"""The error handling every entry point shares: the `diffpose-viz` command line and each script in scripts/.

A foreseeable error (a bad file, option or setting; a full disk; a missing optional package) is one line
`PROG: error: MESSAGE` on stderr naming the file, key and what was expected, and a non-zero exit code; never a
traceback (`--debug` or $DIFFPOSE_VIZ_DEBUG=1 shows one, for bug reports). A real bug in our code is anything
else and keeps its traceback.

    if __name__ == "__main__":
        raise SystemExit(run_script(main))
"""
from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diffpose_viz.atomic import WriteError, write_problem
from diffpose_viz.errors import InputError

#: What a user can cause; everything else is a bug and keeps its traceback.
FORESEEABLE: tuple[type[BaseException], ...] = (OSError, KeyError, ValueError, FloatingPointError, RuntimeError,
                                                ImportError)
#: Scripts exit with this code on a foreseeable error (argparse's usage errors use it too).
SCRIPT_ERROR = 2


def message(err: BaseException) -> str:
    """The user-facing line of `err` (a KeyError's key without repr quotes around the whole message)."""
    if isinstance(err, OSError) and not isinstance(err, WriteError) and err.filename and \
            err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):  # a write outside the atomic writer
        return write_problem(err.filename, err) or str(err)
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(text.split()) if "\n" in text else text


def guarded(call: Callable[[], Any], prog: str, *, code: int = SCRIPT_ERROR, debug: bool | None = None,
            extra: tuple[type[BaseException], ...] = ()) -> int:
    """Run `call()`; its return value (None = 0) is the exit code. A foreseeable error (FORESEEABLE + `extra`) is
    printed as one line `PROG: error: ...` and gives `code`; Ctrl-C gives 130."""
    if debug is None:
        debug = bool(os.environ.get("DIFFPOSE_VIZ_DEBUG"))
    try:
        return int(call() or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except FORESEEABLE + extra as err:
        if debug:
            raise
        print(f"{prog}: error: {message(err)}", file=sys.stderr)
        return code


def run_script(main: Callable[..., Any], argv: list[str] | None = None) -> int:
    """`guarded(main)` for a script in scripts/: `--debug` anywhere in the arguments shows tracebacks."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    prog = Path(sys.argv[0]).name or "script"
    if argv is None:
        sys.argv[1:] = args  # scripts whose main() reads sys.argv itself
        return guarded(main, prog, debug=debug or None)
    return guarded(lambda: main(args), prog, debug=debug or None)


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """json.loads of a file; InputError naming the file (and where the text stops being JSON) otherwise."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: does not exist (expected a {what})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the {what} ({type(err).__name__}: {err})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not a {what} ({err.msg} at line {err.lineno}, column {err.colno})") from None
