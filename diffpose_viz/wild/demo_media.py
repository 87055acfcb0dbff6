"""Demo media fetched at set-up time from a registry package, never committed.

`sports2d` (BSD-3-Clause, perfanalytics) ships an outdoor clip of real people at
`Sports2D/Demo/demo.mp4` inside its wheel. We pip-download the wheel (no
dependencies, nothing installed) and extract only that file.
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

SPORTS2D_VERSION = "0.8.34"  # checked: its wheel holds Sports2D/Demo/demo.mp4 (3,968,304 bytes, 230 frames 1768x994)
DEMO_MEMBER = "Sports2D/Demo/demo.mp4"
DEMO_NAME = "sports2d_demo.mp4"


def _find_wheel(cache_dir: Path, version: str) -> Path | None:
    hits = sorted(cache_dir.glob(f"sports2d-{version}-*.whl"))
    return hits[0] if hits else None


def fetch_demo_media(cache_dir: str | Path = "data/cache", out: str | Path = "data/media", *,
                     version: str = SPORTS2D_VERSION) -> Path:
    """Return the path of the demo video, downloading the sports2d wheel into `cache_dir` if needed."""
    cache_dir, out = Path(cache_dir), Path(out)
    target = out / DEMO_NAME
    if target.exists() and target.stat().st_size > 0:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = _find_wheel(cache_dir, version)
    if wheel is None:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               f"sports2d=={version}", "-d", str(cache_dir)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheel = _find_wheel(cache_dir, version)
        if proc.returncode != 0 or wheel is None:
            raise RuntimeError(f"could not download the sports2d {version} wheel with `{' '.join(cmd)}`:\n"
                               f"{proc.stderr.strip()[-2000:]}")
    with zipfile.ZipFile(wheel) as z:
        if DEMO_MEMBER not in z.namelist():
            raise KeyError(f"{wheel} has no {DEMO_MEMBER}; pick a sports2d version that ships it")
        out.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(z.read(DEMO_MEMBER))
        tmp.replace(target)
    return target


def main() -> None:
    print(fetch_demo_media())


if __name__ == "__main__":
    main()
