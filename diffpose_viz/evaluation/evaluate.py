"""Run a checkpoint on the test split and write a results file + metrics.

`evaluate()` uses the test subjects of the checkpoint's own config (never seen in training or model
selection), the EMA weights, and the same 2D-input and H_K construction as training. Under torchrun the
test rows are sharded across ranks and gathered on rank 0, which alone writes the files. The summary it
writes and prints is `evaluation.summary`; lifting user 2D keypoints is `inference.lift_2d`.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from diffpose_viz import distributed as ddp
from diffpose_viz.config import DataConfig
from diffpose_viz.errors import InputError
from diffpose_viz.outputs import check_output_files
from diffpose_viz.results import Samples, metrics_path_for, write_results_with_metrics
from diffpose_viz.evaluation.summary import summarize
from diffpose_viz.inference import LoadedModel, Lifted, SamplingSetting, lift, load_model, results_dataset
from diffpose_viz.inputs.calibration import CalibrationRows, calibration_rows
from diffpose_viz.inputs.feed import build_feed, scored_rows
from diffpose_viz.inputs.splits import SPLIT_SEEDS, load_splits, load_test_poses

log = logging.getLogger(__name__)


@dataclass
class EvalOutput:
    results_path: Path | None
    metrics_path: Path | None
    summary: dict
    wall_s: float


@dataclass(frozen=True)
class EvalData:
    """Which rows `evaluate` scores; each None keeps the checkpoint's own config.

    `split` 'val': the validation split of the checkpoint's training subjects (held-out sequences), where
    inference-time settings are compared. `data_path` / `subjects`: another data file and its subjects (e.g.
    bodies never seen in training); a subject the checkpoint was trained on is refused. `test_2d`: the test
    rows' 2D from a VideoPose3D data_2d or DiffPose GMM file (data.input_2d 'file'), whatever 2D input the
    model was trained with. `max_samples`: evenly thinned rows (video windows keep their frames).
    `calibrate_with`: more data files whose validation rows of the training subjects join the calibration
    (held-out views); never test rows. `save_calibration_rows`: also write the calibration's validation rows
    (training 2D for the density, validation 2D, hypotheses, ground truth, domain) to this .npz, so that
    `scripts/refit_ood.py` can refit the out-of-domain calibration without sampling again. `ood_radius`: which
    conditional calibration gives the results' `radius` ('auto': `ood.choose_radius` on validation)."""

    split: str = "test"
    data_path: str | None = None
    subjects: tuple[str, ...] | None = None
    test_2d: str | None = None
    max_samples: int | None = None
    calibrate_with: tuple[str, ...] = ()
    save_calibration_rows: str | None = None
    ood_radius: str = "auto"
    allow_leakage: bool = False  # use calibrate_with files that are (or share rows with) the training data

    def __post_init__(self) -> None:
        if self.ood_radius not in ("auto", "normalised", "per_component"):
            raise ValueError(f"--ood-radius: expected auto, normalised or per_component, found {self.ood_radius!r}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"--max-samples: expected an integer >= 1, found {self.max_samples}")
        if self.split not in ("test", "val"):
            raise ValueError(f"--split: expected 'test' or 'val', found {self.split!r}")
        if self.split == "val" and (self.calibrate_with or self.save_calibration_rows):
            raise ValueError(f"{'--calibrate-with' if self.calibrate_with else '--save-calibration-rows'}: does "
                             "nothing with --split val (the validation rows are what is scored, so no calibration is "
                             "fitted); drop it, or evaluate the test split")

    def data_config(self, model: LoadedModel) -> DataConfig:
        """The checkpoint's data settings with these changes (a new value; the model's config is untouched)."""
        data = model.cfg.data
        changes: dict = {}
        if self.data_path is not None:
            changes["path"] = str(self.data_path)
        if self.test_2d is not None:  # detections from the user's own file for the test rows
            from diffpose_viz.datasets.files_2d import read_2d_file

            if model.detection_error is not None:
                rule = "error_model"
            else:
                rule = "file_gmm" if read_2d_file(self.test_2d).kind == "gmm" else "fixed"
            changes.update(input_2d="file", test_2d=str(self.test_2d), uncertainty_2d=rule)
        if self.subjects:
            if self.data_path is None and set(self.subjects) & set(data.train_subjects):
                raise InputError(f"--subjects {sorted(set(self.subjects) & set(data.train_subjects))}: the "
                                 "checkpoint was trained on them; evaluation is on unseen subjects only")
            changes["test_subjects"] = list(self.subjects)
        return replace(data, **changes)


def evaluate(checkpoint: str | Path, out: str | Path, *, device: str = "cpu", sampling: SamplingSetting | None = None,
             data: EvalData | None = None, calibrate: bool = True, progress: bool = True,
             overwrite: bool = False) -> EvalOutput:
    """Evaluate `checkpoint` on its config's test subjects (or the rows `data` names) -> `out` (results .nc) +
    `out` .metrics.json.

    `sampling`: the request (N, K, eta, start_t, batch size, amp, trajectory recording, ...; its None fields keep
    the checkpoint's own setting, `Method.sampling`); None: the checkpoint's setting. `calibrate`: fit the
    error-bar calibration of the hypotheses' spread on the validation split (held-out training sequences,
    never test) and report the calibrated coverage on test in the metrics JSON ("uncertainty"). An existing
    `out` or its metrics JSON (an earlier result) is refused before any work unless `overwrite`; it is then
    replaced only once the new pair is complete. `format_summary(result.summary)` prints the headline."""
    t0 = time.perf_counter()
    out = Path(out)
    data = EvalData() if data is None else data
    check_output_files([("--out", out), ("--out's metrics JSON", metrics_path_for(out)),
                        ("--save-calibration-rows", data.save_calibration_rows)], force=overwrite,
                       suffixes={"--out": ".nc"}, option="overwrite=True (`--force` on the command line)")
    info, dev = ddp.init(device)
    trained = load_model(checkpoint, dev)
    fingerprint = trained.fingerprint  # every file written below records it
    # the scored rows' data, settled first: a refused --subjects or a bad --test-2d file stops before any data is read
    model = replace(trained, cfg=replace(trained.cfg, data=data.data_config(trained)))
    calibration = None  # the calibration's rows come from the training data and 2D input, whatever `data` changes
    if calibrate and data.split == "test" and not info.enabled:  # 'val': its rows are the ones scored
        # read (and its --calibrate-with files refused if they leak) before any lifting
        calibration = calibration_rows(trained.cfg.data, trained.cfg.train.seed, CALIBRATION_ROWS, data.calibrate_with,
                                       allow_leakage=data.allow_leakage)
    cfg, method = model.cfg, model.method
    split = data.split
    if split == "val":
        test = load_splits(cfg.data, cfg.train.seed).val  # thinned below, windows first
    else:
        test = load_test_poses(cfg.data)  # thinned below, windows first
    if len(test) == 0:
        raise InputError(f"{cfg.data.path}: no {split} rows for subjects "
                         f"{cfg.data.test_subjects if split == 'test' else cfg.data.train_subjects}")
    limit = data.max_samples if data.max_samples is not None else cfg.data.max_test_samples
    wr = scored_rows(test, limit, cfg, method)  # video: the scored rows keep their windows' full-rate frames
    feed = build_feed(wr.poses, cfg, split, method, device=model.device, error_model=model.detection_error,
                      windows=wr.windows)
    positions = ddp.shard_indices(np.arange(len(wr.scored)), info.rank, info.world_size, pad=False)
    rows = wr.scored[positions]
    test, det = wr.poses.subset(wr.scored), feed.det.subset(wr.scored)
    # Each rank fits H_K for its own shard only; a single process caches it next to the checkpoint.
    feed = feed.with_hk(model.prior, model.extras, rows=rows, seed=SPLIT_SEEDS[split] + 10 * info.rank,
                        cache=None if info.enabled else Path(checkpoint).parent / "cache", checkpoint=checkpoint,
                        progress=progress and info.is_main)
    setting = method.sampling(cfg, sampling)
    part = lift(model, feed, replace(setting, seed=setting.seed + 7 * info.rank), rows=rows,
                progress=progress and info.is_main)
    parts = ddp.gather_objects((positions, part))
    if not info.is_main:
        return EvalOutput(None, None, {}, time.perf_counter() - t0)
    merged = _merge(parts, len(test))

    cams = [test.cameras[str(c)] for c in test.camera]
    samples = Samples(test.subject, test.action, np.array([c.id for c in cams]), test.frame)
    ds = results_dataset(model, merged, det, cams, samples, gt=test.pose3d, fallback_root=test.root.astype(np.float64),
                         dataset=(f"{Path(cfg.data.path).name} subjects {list(cfg.data.test_subjects)}"
                                  if split == "test" else
                                  f"{Path(cfg.data.path).name} validation rows of {list(cfg.data.train_subjects)}"),
                         split=split,
                         extra_attrs={"checkpoint_fingerprint": fingerprint,
                                      "input_2d_source": cfg.data.input_2d, "occlusion": int(cfg.data.occlusion),
                                      "amp": setting.amp or "none", **_file_input_attrs(cfg, det)})
    summary = summarize(ds)
    # the out-of-domain score and the radius conditional on it join the results before they are written
    summary["uncertainty"], ds = _uncertainty(trained, ds, replace(setting, record=False), calibration,
                                              save_rows=data.save_calibration_rows, ood_radius=data.ood_radius)
    summary.update(checkpoint=str(checkpoint), checkpoint_fingerprint=fingerprint, results=str(out), device=str(dev), world_size=info.world_size,
                   wall_s=round(time.perf_counter() - t0, 2))
    metrics_path = metrics_path_for(out)
    write_results_with_metrics(ds, out, summary, metrics_path)  # both or neither
    return EvalOutput(out, metrics_path, summary, time.perf_counter() - t0)


def _file_input_attrs(cfg, det) -> dict:
    """With input_2d 'file': which file fed the test rows and whether it had confidences (CPN files do not:
    their rows get confidence 1 for present joints, and the results say so)."""
    if cfg.data.input_2d != "file":
        return {}
    has_scores = bool(det.scored)
    return {"input_2d_file": str(cfg.data.test_2d), "uncertainty_2d": cfg.data.uncertainty_2d,
            "confidence_from_file": int(has_scores),
            "confidence_note": "scores read from the file" if has_scores else
            "the file has no scores: present joints get confidence 1"}


#: Validation rows used to fit the spread calibration (evenly thinned).
CALIBRATION_ROWS = 2000


def _uncertainty(model: LoadedModel, ds, sampling: SamplingSetting, rows: CalibrationRows | None, *,
                 save_rows: str | None = None, ood_radius: str = "auto"):
    """(JSON, ds): raw spread-vs-error numbers on test, plus coverage after a calibration fitted on `rows`
    (`inputs.calibration_rows`: the validation split of `model`'s own training data, held-out sequences of the
    training subjects, in the training data file even when test rows come from another file; None: no
    calibration), and the out-of-domain model (`diffpose_viz.ood`: 2D density of the training rows, score and
    conditional calibration on the validation rows) whose per-sample score and radius are added to `ds`."""
    from diffpose_viz import ood, uncertainty
    from diffpose_viz.results import add_ood
    from diffpose_viz.inputs.detections import training_2d

    cal = ood_model = None
    if rows is not None and len(rows.val):
        cfg, val = model.cfg, rows.val
        feed = build_feed(val, cfg, "val", model.method, device=model.device, error_model=model.detection_error)
        feed = feed.with_hk(model.prior, model.extras)
        lifted = lift(model, feed, sampling)
        det = feed.det
        # rows of --calibrate-with files are a held-out domain: they choose the conditional calibration's slope
        # and stay out of the unconditional calibration (which is exactly what it was without them)
        domain = rows.domain  # 0: the training data's own validation rows; i + 1: file i
        shift, own = domain > 0, domain == 0
        cal = uncertainty.fit_calibration(lifted.hypotheses[own], val.pose3d[own], det.occluded[own],
                                          val_pred=None if lifted.pred is None else lifted.pred[own])
        train_kp, train_conf = training_2d(rows.train, cfg, ood.DENSITY_ROWS, model.detection_error)
        ood_model = ood.fit_ood_model(
            train_kp, train_conf, val_keypoints=det.keypoints, val_confidence=det.confidence,
            val_hyps=lifted.hypotheses, val_gt=val.pose3d, val_occluded=det.occluded, val_pred=lifted.pred,
            val_gmm=lifted.gmm, shift_rows=domain, radius_from=None if ood_radius == "auto" else ood_radius)
        ood_model.checkpoint_fingerprint = model.fingerprint  # `--calibration` refuses it for any other model
        if save_rows:
            ood.save_calibration_rows(save_rows, train_keypoints=train_kp, train_confidence=train_conf,
                                      val_keypoints=det.keypoints, val_confidence=det.confidence,
                                      val_hyps=lifted.hypotheses, val_gt=val.pose3d, val_occluded=det.occluded,
                                      val_pred=lifted.pred, val_gmm=lifted.gmm, shift_rows=domain,
                                      calibrate_with=list(rows.specs), checkpoint_fingerprint=model.fingerprint)
    out = uncertainty.uncertainty_summary(ds, cal)
    out["calibration_source"] = (f"validation split ({int(own.sum())} rows of the training subjects)"
                                 + (f"; the score-conditional one also {int(shift.sum())} held-out-domain validation "
                                    f"rows of {list(rows.specs)}" if rows.specs else "")
                                 if cal is not None else "none")
    if ood_model is not None:
        scored = ood.score_results(ood_model, ds)
        ds = add_ood(ds, scored, ood_model)
        out["ood"] = ood.ood_summary(ood_model, ds, scored)
    return out, ds


def _merge_rows(chunks: list, n: int) -> np.ndarray | None:
    """Reassemble per-rank arrays (rows, values) into one array over all n rows."""
    chunks = [(r, v) for r, v in chunks if v is not None and len(r)]
    if not chunks:
        return None
    arr = np.empty((n, *chunks[0][1].shape[1:]), chunks[0][1].dtype)
    for r, v in chunks:
        arr[r] = v
    return arr


def _merge(parts: list[tuple[np.ndarray, Lifted]], n: int) -> Lifted:
    first = parts[0][1]
    arrays = {key: _merge_rows([(r, getattr(p, key)) for r, p in parts], n)
              for key in ("hypotheses", "pred", "trajectory", "x0_estimate")}
    gmm = None
    if first.gmm is not None:
        gmm = {key: _merge_rows([(r, p.gmm[key]) for r, p in parts], n) for key in first.gmm}
    timesteps = next((p.timesteps for _, p in parts if p.timesteps is not None), None)
    return Lifted(**arrays, timesteps=timesteps, gmm=gmm, sampling=first.sampling)
