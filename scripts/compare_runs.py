#!/usr/bin/env python
"""Bit-for-bit comparison of two `scripts/run_demo.py` outputs (a refactor must not move a number).

    python scripts/compare_runs.py BASE NEW        # BASE/results, BASE/runs vs NEW/results, NEW/runs
    python scripts/compare_runs.py BASE NEW --results-only   # NEW: BASE's checkpoints evaluated by the new code

A folder without results/ is itself the results folder. Bad input (no results, an unreadable file) is one line,
exit 2 (diffpose_viz.entry).

Compares, per method: every array (data variable and coordinate) of the results .nc file exactly (NaN equal to
NaN), every number and string of the metrics JSON except timings and paths (`IGNORED_METRICS`), and the
trained weights (model and EMA state dicts) of each run's best.pt and last.pt. Attributes that differ are listed
but not counted (the config attribute records the config's layout, which a refactor may change). Exit status 1
when anything counted differs.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from diffpose_viz.entry import run_script
from diffpose_viz.errors import InputError

#: Metrics JSON keys that record where and how fast a run went, not what it computed; and the checkpoint's content
#: fingerprint and the digest sealing the out-of-domain model with it: they hash the stored config too, whose layout
#: a refactor may change (the out-of-domain model's numbers themselves are compared).
IGNORED_METRICS = {"wall_s", "results", "checkpoint", "seconds", "elapsed_s", "checkpoint_fingerprint",
                   "content_digest"}


def _arrays_equal(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _open(path: Path) -> xr.Dataset:
    try:
        return xr.load_dataset(path)
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable results file ({type(err).__name__}: {err})") from None


def _folders(root: Path) -> tuple[Path, Path]:
    """(results folder, runs folder) of a run_demo output, or of a folder of results files."""
    return (root / "results", root / "runs") if (root / "results").is_dir() else (root, root / "runs")


def compare_results(a: Path, b: Path) -> tuple[list[str], list[str]]:
    """(differences, attribute differences) of two results files."""
    diffs, attrs = [], []
    da, db = _open(a), _open(b)
    names_a = set(da.variables)
    names_b = set(db.variables)
    for name in sorted(names_a ^ names_b):
        diffs.append(f"{a.name}: variable {name} only in {'base' if name in names_a else 'new'}")
    for name in sorted(names_a & names_b):
        if not _arrays_equal(da[name].values, db[name].values):
            diffs.append(f"{a.name}: {name} differs")
    for key in sorted(set(da.attrs) | set(db.attrs)):
        if str(da.attrs.get(key)) != str(db.attrs.get(key)):
            attrs.append(f"{a.name}: attribute {key}")
    return diffs, attrs


def _walk(a, b, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in IGNORED_METRICS:
                continue
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in {'base' if k in a else 'new'}")
            else:
                _walk(a[k], b[k], f"{where}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: lengths {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            _walk(x, y, f"{where}[{i}]", out)
    elif a != b and not (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b)):
        out.append(f"{where}: {a!r} != {b!r}")


def compare_metrics(a: Path, b: Path) -> list[str]:
    out: list[str] = []
    _walk(json.loads(a.read_text()), json.loads(b.read_text()), a.name, out)
    return out


def compare_weights(a: Path, b: Path) -> list[str]:
    ca = torch.load(a, map_location="cpu", weights_only=True)
    cb = torch.load(b, map_location="cpu", weights_only=True)
    out = []
    for part in ("model", "ema"):
        sa, sb = ca.get(part) or {}, cb.get(part) or {}
        sa, sb = sa.get("module", sa), sb.get("module", sb)
        if set(sa) != set(sb):
            out.append(f"{a}: {part} keys differ")
            continue
        out += [f"{a}: {part}.{k} differs" for k in sa if not torch.equal(sa[k], sb[k])]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--results-only", action="store_true", help="compare results and metrics only (NEW holds no runs)")
    args = ap.parse_args(argv)
    diffs, attrs, counted = [], [], {"results files": 0, "arrays": 0, "metrics files": 0, "checkpoints": 0}
    (base_results, base_runs), (new_results, new_runs) = _folders(args.base), _folders(args.new)
    files = sorted(base_results.glob("*.nc"))
    if not files:
        raise InputError(f"{base_results}: no results .nc files to compare (expected run_demo's --out folder)")
    for nc in files:
        n_arrays = len(_open(nc).variables)  # an unreadable base file is refused before anything is compared
        other = new_results / nc.name
        if not other.exists():
            diffs.append(f"{nc.name}: missing in new")
            continue
        d, a = compare_results(nc, other)
        diffs += d
        attrs += a
        counted["results files"] += 1
        counted["arrays"] += n_arrays
        metrics = nc.with_suffix(".metrics.json")
        if metrics.exists():
            diffs += compare_metrics(metrics, new_results / metrics.name)
            counted["metrics files"] += 1
    for ckpt in [] if args.results_only else sorted(base_runs.glob("*/*.pt")):
        other = new_runs / ckpt.relative_to(base_runs)
        if not other.exists():
            diffs.append(f"{ckpt}: missing in new")
            continue
        diffs += compare_weights(ckpt, other)
        counted["checkpoints"] += 1
    print("compared " + ", ".join(f"{v} {k}" for k, v in counted.items()))
    for line in attrs:
        print(f"  (attribute, not counted) {line}")
    for line in diffs:
        print(f"DIFFERS {line}")
    print("bit for bit: " + ("yes" if not diffs else f"NO ({len(diffs)} differences)"))
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
