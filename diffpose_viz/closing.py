"""One way to hold something that must be closed (a video container, an npz's zip file, a detector's graph):
`with Thing(...) as thing:` closes it when the block ends, however it ends."""
from __future__ import annotations


class Closing:
    """Mixin for a class with a `close()` method: `with` hands out the object itself and closes it on exit."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
