"""The out-of-domain model of an `evaluate` run, reused by `sample` and `wild` (`--calibration METRICS_JSON`).

`evaluate` fits it on the checkpoint's validation rows and stores it in `<results>.metrics.json` under
`uncertainty` -> `ood` -> `model` (docs/RESULTS_SCHEMA.md); user input has no validation rows of its own.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from diffpose_viz import ood
from diffpose_viz.checkpoint import check_made_from, short
from diffpose_viz.errors import InputError
from diffpose_viz.results import add_ood


def load_ood_model(metrics_path: str | Path, checkpoint: str | Path | None = None) -> ood.OODModel:
    """The OODModel in a metrics JSON written by `evaluate`; InputError naming the file and key otherwise.

    Its parameters are checked (finite, the right signs, shapes of the 17-joint model; a digest written with them
    catches hand edits). With `checkpoint`, the calibration must have been fitted for that checkpoint's content:
    the fingerprints must match (`checkpoint.check_made_from`); where the files lie does not matter."""
    path = Path(metrics_path)
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"--calibration {path}: not a readable metrics JSON ({type(exc).__name__}: {exc})") from None
    try:
        model = ood.model_from_metrics(metrics)
    except ValueError as exc:
        raise InputError(f"--calibration {path}: uncertainty -> ood -> model is not usable ({exc})") from None
    if model is None:
        raise InputError(f"--calibration {path}: no uncertainty -> ood -> model (expected the metrics JSON of "
                         "`diffpose-viz evaluate` with calibration on, i.e. not --split val)")
    if ood.DIGEST_KEY not in metrics["uncertainty"]["ood"]["model"]:
        raise InputError(f"--calibration {path}: uncertainty -> ood -> model has no {ood.DIGEST_KEY} (written before "
                         "calibrations were sealed, or edited); run `diffpose-viz evaluate` on the checkpoint again")
    if checkpoint is not None:
        recorded = model.checkpoint_fingerprint
        if metrics.get("checkpoint_fingerprint") not in (None, recorded):
            raise InputError(f"--calibration {path}: checkpoint_fingerprint {short(metrics['checkpoint_fingerprint'])} "
                             f"disagrees with uncertainty -> ood -> model's {short(recorded)} (an edited file)")
        check_made_from(recorded, path, checkpoint, "calibration (metrics JSON)")
    return model


def annotate(ds, model: ood.OODModel):
    """`ds` with ood_score, ood_flag, ood_components and radius; plus a one-line summary for the terminal."""
    scored = ood.score_results(model, ds)
    rows = ~ds["missing"].values.astype(bool) if "missing" in ds else np.ones(len(scored.flag), bool)
    n_flag = int(scored.flag[rows].sum())
    line = (f"out of domain: {n_flag} of {int(rows.sum())} lifted frames are outside what this model was trained on "
            f"(score > {model.scorer.threshold:.2f}); per-joint {ood.RADIUS_LEVEL:.0%} radius in 'radius'")
    return add_ood(ds, scored, model), line
