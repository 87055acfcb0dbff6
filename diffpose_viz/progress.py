"""Progress reporting that suits where the output goes.

On a terminal: a tqdm bar. Anywhere else (a log file, CI, a notebook's captured stderr): one short line
every `every_s` seconds and one at the end, so the log of a training run is not megabytes of bars.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any


def on_terminal(stream=None) -> bool:
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """A minimal bar: `update(n)`, `set_postfix(**kw)`, `write(msg)`, `close()`; also iterable over `iterable`."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, enabled: bool = True, every_s: float = 30.0,
                 leave: bool = True) -> None:
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc, self.unit, self.n, self.enabled = desc, unit, initial, enabled
        self.every_s = every_s
        self.postfix: dict[str, Any] = {}
        self._bar = None
        self._t0 = self._last = time.monotonic()
        if enabled and on_terminal():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True,
                             leave=leave)

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.monotonic() - self._last >= self.every_s:
            self._line()

    def set_postfix(self, **kw: Any) -> None:
        self.postfix.update(kw)
        if self._bar is not None:
            self._bar.set_postfix(**kw)

    def write(self, msg: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(msg)
        else:
            print(msg, file=sys.stderr, flush=True)

    def _line(self) -> None:
        self._last = time.monotonic()
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        extra = " ".join(f"{k}={v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {done} {self.unit} ({self._last - self._t0:.0f} s) {extra}".rstrip(), file=sys.stderr,
              flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self.n:
            self._line()
            self.enabled = False


def progress(iterable: Iterable | None = None, **kw: Any) -> Progress:
    return Progress(iterable, **kw)
