"""The out-of-domain model of an `evaluate` run, reused by `sample` and `wild` (`--calibration METRICS_JSON`).

`evaluate` fits it on the checkpoint's validation rows and stores it in `<results>.metrics.json` under
`uncertainty` -> `ood` -> `model` (docs/RESULTS_SCHEMA.md); user input has no validation rows of its own.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from diffpose_viz import ood
from diffpose_viz.errors import InputError
from diffpose_viz.results import add_ood


def load_ood_model(metrics_path: str | Path, checkpoint: str | Path | None = None) -> ood.OODModel:
    """The OODModel in a metrics JSON written by `evaluate`; InputError naming the file and key otherwise.
    With `checkpoint`, a file written for another checkpoint is refused (its score and radius mean nothing)."""
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
    written_for = metrics.get("checkpoint")
    if checkpoint is not None and written_for and Path(written_for).resolve() != Path(checkpoint).resolve():
        raise InputError(f"--calibration {path}: fitted for checkpoint {written_for}, not {checkpoint}")
    return model


def annotate(ds, model: ood.OODModel):
    """`ds` with ood_score, ood_flag, ood_components and radius; plus a one-line summary for the terminal."""
    scored = ood.score_results(model, ds)
    rows = ~ds["missing"].values.astype(bool) if "missing" in ds else np.ones(len(scored.flag), bool)
    n_flag = int(scored.flag[rows].sum())
    line = (f"out of domain: {n_flag} of {int(rows.sum())} lifted frames are outside what this model was trained on "
            f"(score > {model.scorer.threshold:.2f}); per-joint {ood.RADIUS_LEVEL:.0%} radius in 'radius'")
    return add_ood(ds, scored, model), line
