"""No dead code in the package: every function, class, method and constant of `diffpose_viz/` is used by the
package, its apps (dashboard, scripts, notebooks) or its tests. Framework hooks and format constants are
listed, with a reason, in dead_code_whitelist.py."""
from __future__ import annotations

from pathlib import Path

import vulture

REPO = Path(__file__).resolve().parents[1]
#: What counts as a use: the package, its apps and the tests.
USERS = ["diffpose_viz", "dashboard", "scripts", "notebooks", "tests"]


def dead_code(paths: list[str], confidence: int = 60) -> list[str]:
    v = vulture.Vulture()
    v.scavenge([str(REPO / p) for p in paths])
    package = str(REPO / "diffpose_viz")
    return [f"{Path(item.filename).relative_to(REPO)}:{item.first_lineno}: {item.message}"
            for item in v.get_unused_code(min_confidence=confidence) if str(item.filename).startswith(package)]


def test_the_package_holds_no_dead_code():
    found = dead_code(USERS)
    assert not found, "unused code (remove it, or list it with a reason in tests/dead_code_whitelist.py):\n" + \
        "\n".join(found)


def test_a_planted_dead_function_is_caught(tmp_path):
    """The check itself can fail: a function nobody calls, added to a copy of a module, is reported."""
    pkg = tmp_path / "diffpose_viz"
    pkg.mkdir()
    (pkg / "camera.py").write_text("def used():\n    return 1\n\n\ndef never_called():\n    return 2\n\n\nused()\n")
    v = vulture.Vulture()
    v.scavenge([str(pkg)])
    names = [item.name for item in v.get_unused_code(min_confidence=60)]
    assert names == ["never_called"]
