"""Progress goes to a bar only on a terminal; elsewhere a short periodic line, so logs stay small."""
import io

from diffpose_viz import progress as P


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self._tty = tty

    def isatty(self):
        return self._tty


def test_not_a_terminal_writes_a_few_lines_not_a_bar(monkeypatch):
    err = _Stream(False)
    monkeypatch.setattr(P.sys, "stderr", err)
    bar = P.Progress(total=10_000, desc="train", unit="step", every_s=3600)
    for _ in range(10_000):
        bar.update(1)
    bar.close()
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train: 10000/10000 step")


def test_iterating_counts_and_disabled_is_silent(monkeypatch):
    err = _Stream(False)
    monkeypatch.setattr(P.sys, "stderr", err)
    assert list(P.progress(range(5), desc="x", enabled=False)) == list(range(5))
    assert err.getvalue() == ""
    assert list(P.progress(range(3), desc="y")) == [0, 1, 2]
    assert err.getvalue().startswith("y: 3/3")
    assert P.on_terminal(_Stream(True)) and not P.on_terminal(_Stream(False))
