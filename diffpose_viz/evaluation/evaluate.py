"""Run a checkpoint on the test split (or on user 2D keypoints) and write a results file + metrics.

`evaluate()` uses the test subjects of the checkpoint's own config (never seen in training or model
selection), the EMA weights, and the same 2D-input and H_K construction as training. Under torchrun the
test rows are sharded across ranks and gathered on rank 0, which alone writes the files.
"""
from __future__ import annotations

import copy
import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from diffpose_viz import distributed as ddp
from diffpose_viz import metrics
from diffpose_viz.camera import Camera
from diffpose_viz.checkpoint import versions
from diffpose_viz.config import to_dict
from diffpose_viz.detector_sim import Detections2D
from diffpose_viz.errors import InputError
from diffpose_viz.evaluation.results import build_results, metrics_path_for, write_results_with_metrics
from diffpose_viz.inference import LoadedModel, Lifted, lift, load_model
from diffpose_viz.initialization.pose_init import intrinsics_from_camera, modes_from_keypoints
from diffpose_viz.inputs import (
    SPLIT_SEEDS,
    file_identity,
    hk_cache_key,
    make_inputs,
    row_intrinsics,
    sequence_windows,
    thin_windowed,
    window_indices,
)

log = logging.getLogger(__name__)

#: Root depth (m) at which J-Agg back-projects the root keypoint when nothing estimates it (user 2D lifted by a
#: method without H_K). A fixed guess of the order of Human3.6M's camera distances, not read from the training
#: data: the checkpoint of such a method keeps no depth prior. It moves only J-Agg, never P1/P2.
FALLBACK_ROOT_DEPTH_M = 5.5


@dataclass
class EvalOutput:
    results_path: Path | None
    metrics_path: Path | None
    summary: dict
    wall_s: float


def _aggregate(hyps: np.ndarray, pred: np.ndarray | None, keypoints: np.ndarray, root: np.ndarray,
               cams: list[Camera]) -> tuple[np.ndarray, np.ndarray]:
    p_agg = metrics.p_agg(hyps) if pred is None else pred
    if hyps.shape[1] == 1:
        return p_agg, hyps[:, 0]
    return p_agg, metrics.j_agg(hyps, keypoints, root, cams)


def _estimated_root(keypoints: np.ndarray, root_depth: np.ndarray | None, cams: list[Camera], fallback: np.ndarray):
    """Root position for J-Agg's reprojection: the root keypoint back-projected at H_K's estimated depth
    (a test-time quantity); rows without it use `fallback`."""
    if root_depth is None:
        return fallback, "ground truth root position" if fallback is not None else "none"
    z = np.asarray(root_depth, np.float64)
    kp = np.where(np.isfinite(keypoints[:, 0]), keypoints[:, 0], np.nan)
    root = np.stack([c.back_project(k, d) for c, k, d in zip(cams, kp, z)])
    bad = ~np.isfinite(root).all(1)
    if bad.any() and fallback is not None:
        root[bad] = fallback[bad]
    return root, "root keypoint back-projected at the H_K root depth (estimated from the 2D scale)"


def evaluate(checkpoint: str | Path, out: str | Path, *, device: str = "cpu", n_hypotheses: int | None = None,
             n_steps: int | None = None, record_trajectory: bool = False, batch_size: int = 256,
             data_path: str | None = None, max_samples: int | None = None, progress: bool = True,
             print_summary: bool = True, amp: str | None = None,
             test_subjects: list[str] | None = None, calibrate: bool = True, split: str = "test",
             sampling: list[str] | None = None, test_2d: str | Path | None = None,
             calibrate_with: list[str] | None = None) -> EvalOutput:
    """Evaluate `checkpoint` on its config's test subjects -> `out` (results .nc) + `out` .metrics.json.

    `data_path` / `test_subjects`: another data file and its subjects (e.g. bodies never seen in training);
    a subject the checkpoint was trained on is refused. `calibrate`: fit the error-bar calibration of the
    hypotheses' spread on the validation split (held-out training sequences, never test) and report the
    calibrated coverage on test in the metrics JSON ("uncertainty").
    `split` 'val': the validation split of the checkpoint's training subjects (held-out sequences), where
    inference-time settings are compared; `sampling`: 'key=value' overrides of the sampling-only settings
    (SAMPLING_KEYS), e.g. ['diffusion.start_t=12']; `test_2d`: the test rows' 2D from a VideoPose3D data_2d or
    DiffPose GMM file (data.input_2d 'file'), whatever 2D input the model was trained with; `calibrate_with`:
    more data files whose validation rows of the training subjects join the calibration (held-out views)."""
    t0 = time.perf_counter()
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"--max-samples: expected an integer >= 1, found {max_samples}")
    info, dev = ddp.init(device)
    model = load_model(checkpoint, dev)
    cfg, method = model.cfg, model.method
    training_data = copy.deepcopy(cfg.data)  # the calibration's validation rows: the training data and 2D input
    if data_path is not None:
        cfg.data.path = str(data_path)
    if test_2d is not None:  # detections from the user's own file for the test rows
        from diffpose_viz.datasets.files_2d import read_2d_file

        cfg.data.input_2d, cfg.data.test_2d = "file", str(test_2d)
        if model.detection_error is not None:
            cfg.data.uncertainty_2d = "error_model"
        else:
            cfg.data.uncertainty_2d = "file_gmm" if read_2d_file(test_2d).kind == "gmm" else "fixed"
    if test_subjects:
        if data_path is None and set(test_subjects) & set(cfg.data.train_subjects):
            raise InputError(f"--subjects {sorted(set(test_subjects) & set(cfg.data.train_subjects))}: the checkpoint "
                             "was trained on them; evaluation is on unseen subjects only")
        cfg.data.test_subjects = list(test_subjects)
    if split not in ("test", "val"):
        raise ValueError(f"--split: expected 'test' or 'val', found {split!r}")
    if sampling:
        model = apply_sampling_settings(model, sampling)
        cfg = model.cfg
    if split == "val":
        from diffpose_viz.inputs import load_splits

        test = load_splits(cfg.data, cfg.train.seed, with_test=False).val  # thinned below, windows first
        calibrate = False  # the calibration is fitted on these very rows
    else:
        from diffpose_viz.inputs import load_test_poses

        data_cfg = copy.deepcopy(cfg.data)
        data_cfg.max_test_samples = None  # thinned below, windows first
        test = load_test_poses(data_cfg)
    if len(test) == 0:
        raise InputError(f"{cfg.data.path}: no {split} rows for subjects "
                         f"{cfg.data.test_subjects if split == 'test' else cfg.data.train_subjects}")
    limit = max_samples if max_samples is not None else cfg.data.max_test_samples
    frames = cfg.model.frames if method.uses_windows(cfg) else None
    wr = thin_windowed(test, limit, frames)  # video: the scored rows keep their windows' full-rate frames
    det_all = make_inputs(wr.poses, cfg, split, error_model=model.detection_error)
    positions = ddp.shard_indices(np.arange(len(wr.scored)), info.rank, info.world_size, pad=False)
    rows = wr.scored[positions]
    test, det = wr.poses.subset(wr.scored), det_all.subset(wr.scored)
    # Each rank fits H_K for its own shard only; a single process caches it next to the checkpoint.
    cache = None
    if method.hk_at_test and not info.enabled:
        key = hk_cache_key(cfg, split, len(test), model.prior, extra=file_identity(checkpoint))
        cache = Path(checkpoint).parent / "cache" / f"hk_{split}_eval_{key}.pt"
    part = lift(model, det_all, wr.poses.res, row_intrinsics(wr.poses), rows=rows, windows=wr.windows,
                hk_seed=SPLIT_SEEDS[split] + 10 * info.rank, hk_cache=cache, n_hypotheses=n_hypotheses,
                n_steps=n_steps, record=record_trajectory, batch_size=batch_size, seed=cfg.train.seed + 7 * info.rank,
                progress=progress and info.is_main, amp=amp)
    parts = ddp.gather_objects((positions, part))
    if not info.is_main:
        return EvalOutput(None, None, {}, time.perf_counter() - t0)
    merged = _merge(parts, len(test))

    cams = [test.cameras[str(c)] for c in test.camera]
    ds = _results(model, merged, det, cams, fallback_root=test.root.astype(np.float64), gt=test.pose3d,
                  subject=test.subject, action=test.action, camera=np.array([c.id for c in cams]), frame=test.frame,
                  dataset=(f"{Path(cfg.data.path).name} subjects {list(cfg.data.test_subjects)}" if split == "test" else
                           f"{Path(cfg.data.path).name} validation rows of {list(cfg.data.train_subjects)}"),
                  split=split,
                  extra_attrs={"input_2d_source": cfg.data.input_2d, "occlusion": int(cfg.data.occlusion),
                               "amp": amp or "none", **_file_input_attrs(cfg, det)})
    out = Path(out)
    summary = summarize(ds)
    # the out-of-domain score and the radius conditional on it join the results before they are written
    summary["uncertainty"], ds = _uncertainty(model, ds, n_hypotheses=part.n_hypotheses, n_steps=part.n_steps,
                                              batch_size=batch_size, amp=amp, enabled=calibrate and not info.enabled,
                                              training_data=training_data, calibrate_with=calibrate_with or ())
    summary.update(checkpoint=str(checkpoint), results=str(out), device=str(dev), world_size=info.world_size,
                   wall_s=round(time.perf_counter() - t0, 2))
    metrics_path = metrics_path_for(out)
    write_results_with_metrics(ds, out, summary, metrics_path)  # both or neither
    if print_summary:
        print(format_summary(summary))
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


#: Settings that change only how a trained model samples, so evaluate may override them.
SAMPLING_KEYS = ("diffusion.start_t", "diffusion.start_from", "diffusion.eta", "diffusion.skip",
                 "diffusion.n_sampling_steps", "diffusion.n_hypotheses")


def apply_sampling_settings(model: LoadedModel, settings: list[str]) -> LoadedModel:
    """The model with sampling-only settings changed ('diffusion.start_t=12'); anything else is refused."""
    from dataclasses import replace

    from diffpose_viz.config import apply_overrides, parse_config
    from diffpose_viz.methods import check_config

    for item in settings:
        key = item.split("=", 1)[0].strip()
        if key not in SAMPLING_KEYS:
            raise ValueError(f"--sampling {item!r}: only the sampling settings {list(SAMPLING_KEYS)} can change "
                             "after training")
    cfg = parse_config(apply_overrides(to_dict(model.cfg), settings, "--sampling"), "--sampling")
    check_config(cfg, "--sampling", warn=False)
    return replace(model, cfg=cfg)


#: Validation rows used to fit the spread calibration (evenly thinned).
CALIBRATION_ROWS = 2000


def _uncertainty(model: LoadedModel, ds, *, n_hypotheses: int, n_steps: int, batch_size: int, amp: str | None,
                 enabled: bool, training_data=None, calibrate_with=()):
    """(JSON, ds): raw spread-vs-error numbers on test, plus coverage after a calibration fitted on the validation
    split (held-out sequences of the training subjects, in the training data file even when test rows come from
    another file), and the out-of-domain model (`diffpose_viz.ood`: 2D density of the training rows, score and
    conditional calibration on the validation rows) whose per-sample score and radius are added to `ds`."""
    from diffpose_viz import ood, uncertainty
    from diffpose_viz.evaluation.results import add_ood
    from diffpose_viz.inputs import calibration_rows, load_splits, training_2d

    cal = ood_model = None
    if enabled:
        cfg = copy.deepcopy(model.cfg)
        if training_data is not None:
            cfg.data = copy.deepcopy(training_data)
        val = calibration_rows(cfg.data, cfg.train.seed, CALIBRATION_ROWS, calibrate_with)
        if len(val):
            det = make_inputs(val, cfg, "val", error_model=model.detection_error)
            windows = window_indices(val, cfg.model.frames) if model.method.uses_windows(cfg) else None
            lifted = lift(model, det, val.res, row_intrinsics(val), windows=windows, hk_seed=SPLIT_SEEDS["val"],
                          n_hypotheses=n_hypotheses, n_steps=n_steps, batch_size=batch_size, amp=amp)
            # rows of --calibrate-with files are a held-out domain: they choose the conditional calibration's slope
            # and stay out of the unconditional calibration (which is exactly what it was without them)
            subject = val.subject.astype(str)
            domain = np.zeros(len(val), np.int64)  # 0: the training data's own validation rows; i + 1: file i
            for i in range(len(calibrate_with)):
                domain[np.char.startswith(subject, f"calib{i}:")] = i + 1
            shift, own = domain > 0, domain == 0
            cal = uncertainty.fit_calibration(lifted.hypotheses[own], val.pose3d[own], det.occluded[own],
                                              val_pred=None if lifted.pred is None else lifted.pred[own])
            train = load_splits(cfg.data, cfg.train.seed, with_test=False).train
            train_kp, train_conf = training_2d(train, cfg, ood.DENSITY_ROWS, model.detection_error)
            ood_model = ood.fit_ood_model(
                train_kp, train_conf, val_keypoints=det.keypoints, val_confidence=det.confidence,
                val_hyps=lifted.hypotheses, val_gt=val.pose3d, val_occluded=det.occluded, val_pred=lifted.pred,
                val_gmm=lifted.gmm, shift_rows=domain)
    out = uncertainty.uncertainty_summary(ds, cal)
    out["calibration_source"] = (f"validation split ({int(own.sum())} rows of the training subjects)"
                                 + (f"; the score-conditional one also {int(shift.sum())} held-out-domain validation "
                                    f"rows of {list(map(str, calibrate_with))}" if calibrate_with else "")
                                 if cal is not None else "none")
    if ood_model is not None:
        scored = ood.score_results(ood_model, ds)
        ds = add_ood(ds, scored, ood_model)
        out["ood"] = ood.ood_summary(ood_model, ds, scored)
    return out, ds


def _results(model: LoadedModel, lifted: Lifted, det: Detections2D, cams: list[Camera], *, fallback_root, gt,
             subject, action, camera, frame, dataset: str, split: str, extra_attrs: dict,
             missing: np.ndarray | None = None, missing_reason: np.ndarray | None = None):
    """A results Dataset from `lift()`'s output: the aggregates (P-Agg / the method's own output, J-Agg)
    and the attributes every results file carries."""
    gmm = lifted.gmm
    root, root_note = _estimated_root(det.keypoints, None if gmm is None else gmm["root_depth"], cams, fallback_root)
    if root is None:  # no H_K and no ground truth (user 2D, a method without H_K): a fixed depth
        root = np.stack([c.back_project(np.nan_to_num(k[0]), FALLBACK_ROOT_DEPTH_M) for c, k in zip(cams, det.keypoints)])
    pred, pred_jagg = _aggregate(lifted.hypotheses, lifted.pred, det.keypoints, root, cams)
    return build_results(
        input_2d=det.keypoints, confidence=det.confidence, occluded=det.occluded, hypotheses=lifted.hypotheses,
        pred=pred, pred_jagg=pred_jagg, gt=gt, subject=subject, action=action, camera=camera, frame=frame,
        trajectory=lifted.trajectory, x0_estimate=lifted.x0_estimate, timesteps=lifted.timesteps,
        gmm=None if gmm is None else {k: gmm[k] for k in ("weights", "means", "variances")},
        model=model.method.model_name, config=to_dict(model.cfg), versions=versions(), dataset=dataset, split=split,
        extra_attrs={"checkpoint": model.path, "n_hypotheses": lifted.n_hypotheses,
                     "n_sampling_steps": lifted.n_steps, "jagg_root": root_note,
                     "pred_definition": "H_K mixture mean" if lifted.pred is not None else "mean of the hypotheses",
                     **extra_attrs},
        missing=missing, missing_reason=missing_reason,
    )


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
    return Lifted(**arrays, timesteps=timesteps, gmm=gmm, n_hypotheses=first.n_hypotheses, n_steps=first.n_steps)


def summarize(ds) -> dict:
    """P1/P2 action-wise and frame-wise, PCK/AUC (14 joints), multi-hypothesis aggregates (oracles labelled)."""
    actions = ds["action_group"].values
    gt = ds["gt"].values.astype(np.float64)
    pred = ds["pred"].values.astype(np.float64)
    err = ds["err"].values.astype(np.float64)
    err_p2 = metrics.mpjpe_per_joint(pred, gt, "procrustes")
    table = metrics.summary_table(err, actions, err_p2)
    hyps = ds["hypotheses"].values.astype(np.float64)
    agg = {
        metrics.P_AGG: err,
        metrics.J_AGG: metrics.mpjpe_per_joint(ds["pred_jagg"].values.astype(np.float64), gt),
        metrics.P_BEST: metrics.mpjpe_per_joint(metrics.p_best(hyps, gt), gt),
        metrics.J_BEST: metrics.mpjpe_per_joint(metrics.j_best(hyps, gt), gt),
    }
    avg = table.loc[metrics.AVERAGE_ACTION_WISE]
    frame = table.loc[metrics.AVERAGE_FRAME_WISE]
    pck_col = next(c for c in table.columns if c.startswith("PCK"))
    auc_col = next(c for c in table.columns if c.startswith("AUC"))
    out = {
        "model": ds.attrs["model"], "n_samples": int(ds.sizes["sample"]), "n_hypotheses": int(ds.sizes["hypothesis"]),
        "P1_mm_action_wise": float(avg["P1 (mm)"]), "P1_mm_frame_wise": float(frame["P1 (mm)"]),
        "P2_mm_action_wise": float(avg["P2 (mm)"]), "P2_mm_frame_wise": float(frame["P2 (mm)"]),
        "PCK150_14joints_pct": float(frame[pck_col]), "AUC_14joints_pct": float(frame[auc_col]),
        "multi_hypothesis_P1_mm_action_wise": {k: metrics.action_wise(v, actions)[0] for k, v in agg.items()},
        "oracle_note": metrics.ORACLE_NOTE,
        "per_action": json.loads(table.to_json(orient="index")),
    }
    if "occluded" in ds and ds["occluded"].values.any():
        occ = ds["occluded"].values.astype(bool)
        out["P1_mm_occluded_joints"] = float(err[occ].mean())
        out["P1_mm_visible_joints"] = float(err[~occ].mean())
    mpjve = _mpjve(ds)
    if mpjve is not None:
        out["MPJVE_mm_per_frame"] = mpjve
        out["MPJVE_note"] = ("between consecutive evaluated frames of each (subject, action, camera) sequence whose "
                             "frame step is constant; meaningful for all-frame evaluation (video models)")
    if "err_step" in ds:
        out["P1_mm_per_step"] = [float(v) for v in ds["err_step"].mean(("sample", "joint")).values]
    return out


def _mpjve(ds) -> float | None:
    """MPJVE (mm per frame) over the evaluated sequences when every sequence's rows are evenly spaced frames
    (as with all-frame evaluation); None when the rows were thinned unevenly or no sequence has 2 frames."""
    if "gt" not in ds or ds.sizes["sample"] < 2:
        return None
    key = np.char.add(np.char.add(ds["subject"].values.astype(str), "|"),
                      np.char.add(np.char.add(ds["action"].values.astype(str), "|"), ds["camera"].values.astype(str)))
    frame = ds["frame"].values.astype(np.int64)
    order = np.lexsort((frame, key))
    same = key[order][1:] == key[order][:-1]
    steps = np.diff(frame[order])[same]
    if steps.size == 0 or (steps != steps.min()).any():
        return None
    return float(metrics.mpjve_by_sequence(ds["pred"].values.astype(np.float64), ds["gt"].values.astype(np.float64),
                                           key, frame))


def format_summary(s: dict) -> str:
    lines = [f"model {s['model']}: {s['n_samples']} test samples, {s['n_hypotheses']} hypotheses",
             f"  P1 (MPJPE)    action-wise {s['P1_mm_action_wise']:.1f} mm   frame-wise {s['P1_mm_frame_wise']:.1f} mm",
             f"  P2 (PA-MPJPE) action-wise {s['P2_mm_action_wise']:.1f} mm   frame-wise {s['P2_mm_frame_wise']:.1f} mm",
             f"  PCK@150 (14 joints) {s['PCK150_14joints_pct']:.1f} %   AUC (14 joints) {s['AUC_14joints_pct']:.1f} %"]
    for k, v in s["multi_hypothesis_P1_mm_action_wise"].items():
        lines.append(f"  {k:16s} P1 action-wise {v:.1f} mm")
    if "MPJVE_mm_per_frame" in s:
        lines.append(f"  MPJVE {s['MPJVE_mm_per_frame']:.2f} mm per frame")
    if "P1_mm_occluded_joints" in s:
        lines.append(f"  occluded joints {s['P1_mm_occluded_joints']:.1f} mm, visible {s['P1_mm_visible_joints']:.1f} mm")
    lines.append(f"  ({s['oracle_note']})")
    table = pd.DataFrame(s["per_action"]).T
    lines.append(table.round(1).to_string())
    return "\n".join(lines)


# --------------------------------------------------------------------------- user / in-the-wild 2D


#: A frame is lifted only with at least this many visible joints (finite 2D, confidence > 0), one of them a hip
#: or the pelvis (H36M-17 joints 0, 1, 4): fewer pin down neither the 2D scale (depth) nor the body's position.
MIN_VISIBLE_JOINTS = 6
HIP_JOINTS = (0, 1, 4)


def usable_frames(keypoints_px: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(usable (F,) bool, reason (F,) str; '' for usable frames) for H36M-17 keypoints and confidences."""
    visible = np.isfinite(keypoints_px).all(-1) & (np.nan_to_num(confidence) > 0)
    n_vis = visible.sum(1)
    hip = visible[:, list(HIP_JOINTS)].any(1)
    reason = np.full(len(keypoints_px), "", dtype=object)
    reason[~hip] = "no visible hip or pelvis"
    reason[collapsed_frames(keypoints_px, visible)] = "visible joints all at one point (a zero-filled or constant pose)"
    reason[n_vis < MIN_VISIBLE_JOINTS] = [f"only {k} visible joints (at least {MIN_VISIBLE_JOINTS} needed)"
                                          for k in n_vis[n_vis < MIN_VISIBLE_JOINTS]]
    reason[n_vis == 0] = "no visible 2D keypoints"
    usable = reason == ""
    return usable, reason.astype(str)


def collapsed_frames(keypoints_px: np.ndarray, visible: np.ndarray, min_extent_px: float = 1.0) -> np.ndarray:
    """(F,) bool: frames whose visible joints all lie within `min_extent_px` of each other (no body to lift)."""
    kp = np.where(visible[..., None], keypoints_px, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames without visible joints: all-NaN
        extent = (np.nanmax(kp, 1) - np.nanmin(kp, 1)).max(-1)
    return visible.any(1) & (np.nan_to_num(extent, nan=np.inf) < min_extent_px)


def _scatter(values: np.ndarray | None, rows: np.ndarray, n: int) -> np.ndarray | None:
    """Values of the lifted rows placed into an array over all n frames (NaN elsewhere)."""
    if values is None:
        return None
    out = np.full((n, *values.shape[1:]), np.nan, dtype=np.result_type(values.dtype, np.float32))
    out[rows] = values
    return out


def lift_2d(model: LoadedModel, keypoints_px: np.ndarray, camera: Camera, *, confidence: np.ndarray | None = None,
            occluded: np.ndarray | None = None, std_px: float | np.ndarray = 5.0, n_hypotheses: int | None = None,
            n_steps: int | None = None, record_trajectory: bool = False, frames: np.ndarray | None = None,
            subject: str = "user", action: str = "user", dataset: str = "user 2D keypoints",
            batch_size: int = 256, progress: bool = False):
    """H36M-17 keypoints (F,17,2) px (NaN = missing) seen by `camera` -> results Dataset without ground truth.

    std_px: the 2D uncertainty H_K assumes per joint (scalar or (F,17) px). Video context needs the
    frames in time order (consecutive rows form one sequence).

    Frames without usable 2D (fewer than MIN_VISIBLE_JOINTS visible joints, or no visible hip/pelvis) are
    not lifted: their hypotheses and predictions are NaN and the results flag them in the `missing` and
    `missing_reason` (sample) variables. InputError when no frame is usable.
    """
    kp = np.asarray(keypoints_px, np.float32)
    if kp.ndim != 3 or kp.shape[1:] != (17, 2):
        raise InputError(f"2D keypoints: expected (frames, 17, 2) pixels in H36M-17 order, found {kp.shape}")
    F = len(kp)
    if F == 0:
        raise InputError("2D keypoints: the input holds no frames")
    conf = np.isfinite(kp).all(-1).astype(np.float32) if confidence is None else np.asarray(confidence, np.float32)
    if conf.shape != (F, 17):
        raise InputError(f"confidence: expected ({F}, 17), found {conf.shape}")
    occ = np.zeros((F, 17), bool) if occluded is None else np.asarray(occluded, bool)
    std = np.asarray(std_px, np.float64)
    usable, reason = usable_frames(kp, conf)
    if not usable.any():
        counts = ", ".join(f"{k} frame(s): {r}" for r, k in zip(*np.unique(reason, return_counts=True)))
        raise InputError(f"2D keypoints: none of the {F} frames has usable 2D (at least {MIN_VISIBLE_JOINTS} visible "
                         f"joints incl. a hip or the pelvis); {counts}")
    rows = np.flatnonzero(usable)
    kp_u, conf_u, occ_u = kp[rows], conf[rows], occ[rows]
    std_u = std[rows] if std.ndim == 2 else std_px
    det_u = Detections2D(kp_u, conf_u, modes_from_keypoints(kp_u, std_u, conf_u).astype(np.float32), occ_u)
    n_u = len(rows)
    windows = None
    if model.method.uses_windows(model.cfg):
        windows = sequence_windows(np.zeros(n_u, np.int64), np.arange(n_u), model.cfg.model.frames)
    lifted = lift(model, det_u, np.array([[camera.res_w, camera.res_h]] * n_u),
                  np.broadcast_to(intrinsics_from_camera(camera), (n_u, 4)).copy(), windows=windows,
                  hk_seed=SPLIT_SEEDS["wild"], n_hypotheses=n_hypotheses, n_steps=n_steps, record=record_trajectory,
                  batch_size=batch_size, progress=progress)
    if n_u < F:  # put the lifted frames back among all frames; the others stay NaN
        lifted = Lifted(_scatter(lifted.hypotheses, rows, F), _scatter(lifted.pred, rows, F),
                        _scatter(lifted.trajectory, rows, F), _scatter(lifted.x0_estimate, rows, F),
                        lifted.timesteps,
                        None if lifted.gmm is None else {k: _scatter(v, rows, F) for k, v in lifted.gmm.items()},
                        lifted.n_hypotheses, lifted.n_steps)
    modes = np.full((F, 17, *det_u.modes.shape[2:]), np.nan, np.float32)
    modes[rows] = det_u.modes
    det = Detections2D(kp, conf, modes, occ)
    return _results(model, lifted, det, [camera] * F, fallback_root=None, gt=None, subject=[subject] * F,
                    action=[action] * F, camera=[camera.id] * F, frame=np.arange(F) if frames is None else frames,
                    dataset=dataset, split="wild", extra_attrs={"camera_json": json.dumps(camera.to_dict()),
                                                                "min_visible_joints": MIN_VISIBLE_JOINTS},
                    missing=~usable, missing_reason=reason)
