"""Out-of-domain table: calibrated coverage (unconditional vs score-conditional) and the score's AUROC.

    python scripts/ood_report.py --in-domain results/r5/diffpose_plain_test.nc \
        --other unseen=results/r5/diffpose_plain_unseen.nc cross=results/r5/diffpose_plain_cross.nc

Reads each results file and its `.metrics.json` (written by `diffpose-viz evaluate`, calibration fitted on
validation rows only; files written before the per-component calibration show "—" in its columns). AUROC: the `ood_score` of the in-domain test rows against each other set's rows
(1 = every out-of-domain row scores above every in-domain row; 0.5 = no better than chance). Coverage is over the
16 non-root joints at the nominal 90 %.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from diffpose_viz.results import load_results
from diffpose_viz.ood import auroc
from diffpose_viz.atomic import atomic_write_text
from diffpose_viz.entry import read_json, run_script
from diffpose_viz.errors import InputError
from diffpose_viz.outputs import check_output_file


def row(name: str, path: Path, reference=None) -> dict:
    ds = load_results(path)
    metrics = read_json(path.with_suffix(".metrics.json"), "metrics JSON written by `diffpose-viz evaluate`")
    if not isinstance(metrics, dict) or "P1_mm_action_wise" not in metrics:
        raise InputError(f"{path.with_suffix('.metrics.json')}: key 'P1_mm_action_wise': missing (expected the "
                         "metrics JSON of `diffpose-viz evaluate`)")
    unc = metrics.get("uncertainty") or {}
    ood = unc.get("ood") or {}
    cond = ood.get("coverage_conditional") or {}
    pct = lambda v: None if v is None else round(100 * v, 1)  # noqa: E731
    out = {"set": name, "rows": int(ds.sizes["sample"]), "P1": round(metrics["P1_mm_action_wise"], 1),
           "cov90 unconditional": pct((unc.get("coverage_calibrated") or {}).get("90")),
           "cov90 normalised": pct((cond.get("normalised") or {}).get("90")),
           "cov90 mondrian": pct((cond.get("mondrian") or {}).get("90")),
           "cov90 per-component": pct((cond.get("per_component") or {}).get("90")),
           "flagged %": pct(ood.get("frac_flagged")), "radius from": ood.get("radius_from", "normalised"),
           "mean radius (mm)": ood.get("mean_radius_mm"), "AUROC vs in-domain": None}
    by_kind = ood.get("mean_radius_mm_by_kind") or {}
    for kind in ("normalised", "per_component"):
        out[f"mean radius {kind} (mm)"] = None if by_kind.get(kind) is None else round(by_kind[kind], 1)
    if out["mean radius (mm)"] is not None:
        out["mean radius (mm)"] = round(out["mean radius (mm)"], 1)
    if reference is not None and "ood_score" in ds and "ood_score" in reference:
        out["AUROC vs in-domain"] = round(auroc(reference["ood_score"].values, ds["ood_score"].values), 3)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--in-domain", required=True, type=Path, help="results of the in-domain test rows")
    ap.add_argument("--other", nargs="+", default=[], metavar="NAME=RESULTS", help="out-of-domain results files")
    ap.add_argument("--json", type=Path, default=None, help="also write the table as JSON")
    ap.add_argument("--force", action="store_true", help="replace an existing --json file")
    args = ap.parse_args(argv)
    if args.json is not None:
        check_output_file(args.json, force=args.force, label="--json")
    ref = load_results(args.in_domain)
    rows = [row("in-domain", args.in_domain)]
    for item in args.other:
        if "=" not in item:
            raise InputError(f"--other {item!r}: expected NAME=RESULTS")
        name, path = item.split("=", 1)
        rows.append(row(name, Path(path), ref))
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("—" if r[c] is None else str(r[c]) for c in cols) + " |")
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
