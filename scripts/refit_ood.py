"""Refit the out-of-domain calibration from saved VALIDATION rows and rescore results files, without sampling.

    diffpose-viz evaluate RUN/best.pt --out o/test.nc --calibrate-with VV --calibrate-with VB \\
        --save-calibration-rows o/calrows.npz
    python scripts/refit_ood.py --rows o/calrows.npz --in-domain o/test.nc --other unseen=o/unseen.nc cross=o/cross.nc

Everything is fitted on the saved validation rows (`diffpose_viz.ood.fit_ood_model`, the same function
`evaluate` runs); the results files are only scored (their `hypotheses`, `pred`, 2D input, `err`/`gt`). Prints,
per calibration kind (normalised single slope, Mondrian, per-component weights): its coverage at 90 % on each
held-out validation domain's half that did not fit the per-component weights, then coverage and mean radius on
each results file (the test numbers are reported, never used to choose). `--shift-fit-half`: the single slope,
too, chosen on the held-out domains' even rows only (a like-for-like validation comparison).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from diffpose_viz import ood
from diffpose_viz.results import load_results
from diffpose_viz.uncertainty import coverage, joint_errors_mm


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", required=True, type=Path, help=".npz of `evaluate --save-calibration-rows`")
    ap.add_argument("--in-domain", type=Path, default=None, help="results file of the in-domain test rows")
    ap.add_argument("--other", nargs="*", default=[], metavar="NAME=RESULTS", help="more results files")
    ap.add_argument("--shift-fit-half", action="store_true", help="the single slope on the held-out domains' "
                    "even rows only")
    ap.add_argument("--radius-from", choices=["auto", "normalised", "per_component"], default="auto",
                    help="as evaluate --ood-radius")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    rows = ood.load_calibration_rows(args.rows)
    rows.pop("calibrate_with")
    model = ood.fit_ood_model(rows.pop("train_keypoints"), rows.pop("train_confidence"),
                              shift_fit_half=args.shift_fit_half,
                              radius_from=None if args.radius_from == "auto" else args.radius_from, **rows)
    out = {"slope": model.normalised.slope,
           "weights": None if model.per_component is None else model.per_component.weights,
           "radius_from": model.radius_from, "validation_heldout_half": {k: model.validation.get(k) for k in ("coverage_90", "mean_radius_mm")}, "sets": {}}
    sets = ([("in-domain", args.in_domain)] if args.in_domain else []) + [tuple(o.split("=", 1)) for o in args.other]
    for name, path in sets:
        ds = load_results(path)
        s = ood.score_results(model, ds)
        err = ds["err"].values.astype(np.float64) if "err" in ds else joint_errors_mm(ds["pred"].values,
                                                                                     ds["gt"].values)
        occ = ds["occluded"].values.astype(bool) if "occluded" in ds else None
        res = {}
        for kind, cal in model.calibrations().items():
            r = cal.radii(s.spread, occ, s.score, ood.RADIUS_LEVEL, s.components)
            res[kind] = {"coverage_90": round(100 * coverage(err, r), 1),
                         "mean_radius_mm": round(float(r[:, 1:][np.isfinite(r[:, 1:])].mean()), 1)}
        out["sets"][name] = res
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
