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

The rows and every results file must come from the same checkpoint (their content fingerprints must match; a file
without one is refused). Bad input is one line naming the file, exit 2 (`diffpose_viz.entry`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from diffpose_viz import ood
from diffpose_viz.atomic import atomic_write_text
from diffpose_viz.checkpoint import short
from diffpose_viz.entry import run_script
from diffpose_viz.errors import InputError, ProvenanceError
from diffpose_viz.outputs import check_output_file
from diffpose_viz.results import load_results
from diffpose_viz.uncertainty import coverage, joint_errors_mm


def _sets(args) -> list[tuple[str, Path]]:
    sets = [("in-domain", args.in_domain)] if args.in_domain else []
    for item in args.other:
        if "=" not in item or not item.split("=", 1)[0] or not item.split("=", 1)[1]:
            raise InputError(f"--other {item!r}: expected NAME=RESULTS (e.g. unseen=o/unseen.nc)")
        name, path = item.split("=", 1)
        sets.append((name, Path(path)))
    return sets


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
    ap.add_argument("--force", action="store_true", help="replace an existing --json file")
    args = ap.parse_args(argv)
    sets = _sets(args)
    if args.json is not None:  # before any work: never overwrite a file without --force
        check_output_file(args.json, force=args.force, label="--json")
    rows = ood.load_calibration_rows(args.rows)
    rows.pop("calibrate_with")
    fingerprint = rows.pop("checkpoint_fingerprint")
    if not fingerprint:
        raise ProvenanceError(f"--rows {args.rows}: records no checkpoint fingerprint (written before fingerprints); "
                              "save the rows again with `diffpose-viz evaluate --save-calibration-rows`")
    loaded = []
    for name, path in sets:
        ds = load_results(path)
        found = ds.attrs.get("checkpoint_fingerprint")
        if found != fingerprint:
            raise ProvenanceError(f"{path}: made by the checkpoint with fingerprint {short(found)}, but the "
                                  f"calibration rows {args.rows} come from {short(fingerprint)}; score results of "
                                  "the model whose rows were saved")
        if "err" not in ds and "gt" not in ds:
            raise InputError(f"{path}: variable 'gt': missing (expected a results file with ground truth, as "
                             "`diffpose-viz evaluate` writes; coverage needs it)")
        loaded.append((name, ds))
    try:
        model = ood.fit_ood_model(rows.pop("train_keypoints"), rows.pop("train_confidence"),
                                  shift_fit_half=args.shift_fit_half,
                                  radius_from=None if args.radius_from == "auto" else args.radius_from, **rows)
    except (ValueError, np.linalg.LinAlgError) as err:
        raise InputError(f"--rows {args.rows}: cannot fit the out-of-domain model on these rows ({err})") from None
    out = {"checkpoint_fingerprint": fingerprint, "slope": model.normalised.slope,
           "weights": None if model.per_component is None else model.per_component.weights,
           "radius_from": model.radius_from,
           "validation_heldout_half": {k: model.validation.get(k) for k in ("coverage_90", "mean_radius_mm")},
           "sets": {}}
    for name, ds in loaded:
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
        atomic_write_text(args.json, json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
