"""Run a checkpoint on the test split (or on user 2D keypoints) and write a results file + metrics.

`evaluate()` uses the test subjects of the checkpoint's own config (never seen in training or model
selection), the EMA weights, and the same 2D-input and H_K construction as training. Under torchrun the
test rows are sharded across ranks and gathered on rank 0, which alone writes the files.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from diffpose_viz import metrics, pipeline
from diffpose_viz.camera import Camera
from diffpose_viz.evaluation.results import build_results, write_results
from diffpose_viz.initialization.pose_init import PoseGMM, modes_from_keypoints
from diffpose_viz.pipeline import LoadedModel, PipelineError
from diffpose_viz.training import distributed as ddp
from diffpose_viz.training.checkpoint import versions
from diffpose_viz.training.config import to_dict

log = logging.getLogger(__name__)

MODEL_NAMES = {"lifter": "deterministic_lifter"}  # results `model` attribute per method


@dataclass
class EvalOutput:
    results_path: Path | None
    metrics_path: Path | None
    summary: dict
    wall_s: float


def _settings(model: LoadedModel, n_hypotheses: int | None, n_steps: int | None) -> tuple[int, int]:
    cfg = model.cfg
    if cfg.method in ("lifter", "martinez", "official"):
        return 1, (cfg.official.test_timesteps if cfg.method == "official" else 0)
    n = cfg.diffusion.n_hypotheses if n_hypotheses is None else int(n_hypotheses)
    k = cfg.diffusion.n_sampling_steps if n_steps is None else int(n_steps)
    if n < 1 or (cfg.method != "init_only" and k < 1):
        raise ValueError(f"--hypotheses and --steps must be >= 1, found {n} and {k}")
    return n, k


def run_inference(model: LoadedModel, cond: torch.Tensor, windows: torch.Tensor | None, gmm: PoseGMM | None,
                  rows: np.ndarray, *, n_hypotheses: int, n_steps: int, record: bool, batch_size: int = 256,
                  seed: int = 0, progress: bool = False, gmm_index: np.ndarray | None = None,
                  amp: str | None = None) -> dict[str, np.ndarray | list | None]:
    """Hypotheses (and trajectories) for `rows`, in batches; results are numpy on the CPU.

    gmm_index: position in `gmm` of each entry of `rows` (default: the rows themselves)."""
    gmm_index = np.asarray(rows if gmm_index is None else gmm_index)
    gen = torch.Generator(device=model.device).manual_seed(seed)
    out: dict[str, list] = {"hypotheses": [], "trajectory": [], "x0_estimate": [], "pred": []}
    timesteps = None
    it = range(0, len(rows), batch_size)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=f"sample {model.method}", unit="batch", total=-(-len(rows) // batch_size))
    for s in it:
        idx = torch.as_tensor(rows[s:s + batch_size], device=model.device)
        g = gmm.select(torch.as_tensor(gmm_index[s:s + batch_size], device=model.device)) if gmm is not None else None
        p = pipeline.predict(model, pipeline.gather_cond(cond, idx, windows), g, n_hypotheses=n_hypotheses,
                             n_steps=n_steps, record=record, generator=gen, amp=amp)
        out["hypotheses"].append(p.hypotheses)
        if p.trajectory is not None:
            out["trajectory"].append(p.trajectory)
            out["x0_estimate"].append(p.x0_trajectory)
            timesteps = p.timesteps
        if p.pred is not None:
            out["pred"].append(p.pred)
    res = {k: (np.concatenate(v) if v else None) for k, v in out.items()}
    res["timesteps"] = timesteps
    if res["hypotheses"] is not None and not np.isfinite(res["hypotheses"]).all():
        raise PipelineError(f"{model.path}: the model produced NaN/inf hypotheses (check the input and weights)")
    return res


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
             print_summary: bool = True, amp: str | None = None) -> EvalOutput:
    """Evaluate `checkpoint` on its config's test subjects -> `out` (results .nc) + `out` .metrics.json."""
    t0 = time.perf_counter()
    info, dev = ddp.init(device)
    model = pipeline.load_model(checkpoint, dev)
    cfg = model.cfg
    if data_path is not None:
        cfg.data.path = str(data_path)
    n_hyp, k = _settings(model, n_hypotheses, n_steps)
    test = pipeline._thin(pipeline.load_poses(cfg.data, list(cfg.data.test_subjects)),
                          max_samples if max_samples is not None else cfg.data.max_test_samples)
    if len(test) == 0:
        raise PipelineError(f"{cfg.data.path}: no test rows for subjects {cfg.data.test_subjects}")
    det = pipeline.make_inputs(test, cfg, "test")
    cond = torch.as_tensor(pipeline.screen_input(det.keypoints, det.confidence, test.res), device=dev)
    windows = None
    if cfg.model.context == "video" and cfg.method in ("diffpose", "gaussian_diffusion"):
        windows = torch.as_tensor(pipeline.window_indices(test, cfg.model.frames), device=dev)
    rows = ddp.shard_indices(np.arange(len(test)), info.rank, info.world_size, pad=False)
    gmm = None
    if model.needs_hk:
        if model.prior is None:
            raise PipelineError(f"{checkpoint}: method {cfg.method} needs H_K but the checkpoint has no depth prior")
        # Each rank fits H_K for its own shard only; a single process caches it next to the checkpoint.
        cache = None
        if not info.enabled:
            cache = Path(checkpoint).parent / "cache" / f"hk_test_{pipeline._hk_key(cfg, 'test', len(test), model.prior)}.pt"
        gmm = pipeline.build_hk(det.subset(rows), pipeline.row_intrinsics(test)[rows], model.prior, cfg.init,
                                seed=pipeline.SPLIT_SEEDS["test"] + 10 * info.rank, device=dev, cache=cache,
                                progress=progress and info.is_main)
    part = run_inference(model, cond, windows, gmm, rows, n_hypotheses=n_hyp, n_steps=k, record=record_trajectory,
                         batch_size=batch_size, seed=cfg.train.seed + 7 * info.rank, progress=progress and info.is_main,
                         gmm_index=np.arange(len(rows)), amp=amp)
    gmm_np = None
    if gmm is not None:
        g = gmm.to_numpy()
        gmm_np = {"weights": g["weights"], "means": g["means"], "variances": g["variances"],
                  "root_depth": g["root_depth"]}
    parts = ddp.gather_objects((rows, part, gmm_np))
    if not info.is_main:
        return EvalOutput(None, None, {}, time.perf_counter() - t0)
    res = _merge([(r, p) for r, p, _ in parts], len(test))
    if gmm_np is not None:
        gmm_np = {key: _merge_rows([(r, g[key]) for r, _, g in parts], len(test)) for key in gmm_np}

    cams = [test.cameras[str(c)] for c in test.camera]
    root, root_note = _estimated_root(det.keypoints, None if gmm_np is None else gmm_np["root_depth"], cams,
                                      test.root.astype(np.float64))
    pred, pred_jagg = _aggregate(res["hypotheses"], res["pred"], det.keypoints, root, cams)
    if gmm_np is not None:
        gmm_np.pop("root_depth")
    ds = build_results(
        input_2d=det.keypoints, confidence=det.confidence, occluded=det.occluded, hypotheses=res["hypotheses"],
        pred=pred, pred_jagg=pred_jagg, gt=test.pose3d, subject=test.subject, action=test.action,
        camera=np.array([test.cameras[str(c)].id for c in test.camera]), frame=test.frame,
        trajectory=res["trajectory"], x0_estimate=res["x0_estimate"], timesteps=res["timesteps"], gmm=gmm_np,
        model=MODEL_NAMES.get(cfg.method, cfg.method), config=to_dict(cfg), versions=versions(),
        dataset=f"{Path(cfg.data.path).name} subjects {list(cfg.data.test_subjects)}", split="test",
        extra_attrs={"checkpoint": str(checkpoint), "n_hypotheses": n_hyp, "n_sampling_steps": k,
                     "input_2d_source": cfg.data.input_2d, "occlusion": int(cfg.data.occlusion),
                     "jagg_root": root_note, "amp": amp or "none",
                     "pred_definition": "H_K mixture mean" if res["pred"] is not None else "mean of the hypotheses"},
    )
    out = Path(out)
    write_results(ds, out)
    summary = summarize(ds)
    summary.update(checkpoint=str(checkpoint), results=str(out), device=str(dev), world_size=info.world_size,
                   wall_s=round(time.perf_counter() - t0, 2))
    metrics_path = out.with_suffix(".metrics.json")
    _write_json(summary, metrics_path)
    if print_summary:
        print(format_summary(summary))
    return EvalOutput(out, metrics_path, summary, time.perf_counter() - t0)


def _merge_rows(chunks: list, n: int) -> np.ndarray | None:
    """Reassemble per-rank arrays (rows, values) into one array over all n rows."""
    chunks = [(r, v) for r, v in chunks if v is not None and len(r)]
    if not chunks:
        return None
    arr = np.empty((n, *chunks[0][1].shape[1:]), chunks[0][1].dtype)
    for r, v in chunks:
        arr[r] = v
    return arr


def _merge(parts: list, n: int) -> dict:
    out: dict = {"timesteps": next((p["timesteps"] for _, p in parts if p["timesteps"] is not None), None)}
    for key in ("hypotheses", "trajectory", "x0_estimate", "pred"):
        out[key] = _merge_rows([(r, p[key]) for r, p in parts], n)
    return out


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
    if "err_step" in ds:
        out["P1_mm_per_step"] = [float(v) for v in ds["err_step"].mean(("sample", "joint")).values]
    return out


def format_summary(s: dict) -> str:
    lines = [f"model {s['model']}: {s['n_samples']} test samples, {s['n_hypotheses']} hypotheses",
             f"  P1 (MPJPE)    action-wise {s['P1_mm_action_wise']:.1f} mm   frame-wise {s['P1_mm_frame_wise']:.1f} mm",
             f"  P2 (PA-MPJPE) action-wise {s['P2_mm_action_wise']:.1f} mm   frame-wise {s['P2_mm_frame_wise']:.1f} mm",
             f"  PCK@150 (14 joints) {s['PCK150_14joints_pct']:.1f} %   AUC (14 joints) {s['AUC_14joints_pct']:.1f} %"]
    for k, v in s["multi_hypothesis_P1_mm_action_wise"].items():
        lines.append(f"  {k:16s} P1 action-wise {v:.1f} mm")
    if "P1_mm_occluded_joints" in s:
        lines.append(f"  occluded joints {s['P1_mm_occluded_joints']:.1f} mm, visible {s['P1_mm_visible_joints']:.1f} mm")
    lines.append(f"  ({s['oracle_note']})")
    table = pd.DataFrame(s["per_action"]).T
    lines.append(table.round(1).to_string())
    return "\n".join(lines)


def _write_json(obj: dict, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- user / in-the-wild 2D


def lift_2d(model: LoadedModel, keypoints_px: np.ndarray, camera: Camera, *, confidence: np.ndarray | None = None,
            occluded: np.ndarray | None = None, std_px: float | np.ndarray = 5.0, n_hypotheses: int | None = None,
            n_steps: int | None = None, record_trajectory: bool = False, frames: np.ndarray | None = None,
            subject: str = "user", action: str = "user", dataset: str = "user 2D keypoints",
            batch_size: int = 256, progress: bool = False):
    """H36M-17 keypoints (F,17,2) px (NaN = missing) seen by `camera` -> results Dataset without ground truth.

    std_px: the 2D uncertainty H_K assumes per joint (scalar or (F,17) px). Video context needs the
    frames in time order (consecutive rows form one sequence).
    """
    kp = np.asarray(keypoints_px, np.float32)
    if kp.ndim != 3 or kp.shape[1:] != (17, 2):
        raise PipelineError(f"2D keypoints: expected (frames, 17, 2) pixels in H36M-17 order, found {kp.shape}")
    F = len(kp)
    conf = np.isfinite(kp).all(-1).astype(np.float32) if confidence is None else np.asarray(confidence, np.float32)
    if conf.shape != (F, 17):
        raise PipelineError(f"confidence: expected ({F}, 17), found {conf.shape}")
    occ = np.zeros((F, 17), bool) if occluded is None else np.asarray(occluded, bool)
    n_hyp, k = _settings(model, n_hypotheses, n_steps)
    res_wh = np.array([[camera.res_w, camera.res_h]] * F)
    cond = torch.as_tensor(pipeline.screen_input(kp, conf, res_wh), device=model.device)
    windows = None
    if model.cfg.model.context == "video" and model.cfg.method in ("diffpose", "gaussian_diffusion"):
        T, half = model.cfg.model.frames, model.cfg.model.frames // 2
        windows = torch.as_tensor(np.clip(np.arange(F)[:, None] + np.arange(-half, half + 1)[None], 0, F - 1),
                                  device=model.device)
    gmm = None
    if model.needs_hk:
        modes = modes_from_keypoints(kp, std_px, conf)
        from diffpose_viz.initialization.pose_init import intrinsics_from_camera
        det = pipeline.Detections2D(kp, conf, modes.astype(np.float32), occ)
        gmm = pipeline.build_hk(det, np.broadcast_to(intrinsics_from_camera(camera), (F, 4)).copy(), model.prior,
                                model.cfg.init, seed=pipeline.SPLIT_SEEDS["wild"], device=model.device)
    res = run_inference(model, cond, windows, gmm, np.arange(F), n_hypotheses=n_hyp, n_steps=k,
                        record=record_trajectory, batch_size=batch_size, seed=model.cfg.train.seed, progress=progress)
    cams = [camera] * F
    root, root_note = _estimated_root(kp, None if gmm is None else gmm.root_depth.cpu().numpy(), cams, None)
    if root is None:  # no H_K: assume the median training root depth of 5.5 m
        root = np.stack([camera.back_project(np.nan_to_num(kp[i, 0]), 5.5) for i in range(F)])
    pred, pred_jagg = _aggregate(res["hypotheses"], res["pred"], kp, root, cams)
    g = gmm.to_numpy() if gmm is not None else None
    return build_results(
        input_2d=kp, confidence=conf, occluded=occ, hypotheses=res["hypotheses"], pred=pred, pred_jagg=pred_jagg,
        subject=[subject] * F, action=[action] * F, camera=[camera.id] * F,
        frame=np.arange(F) if frames is None else frames, trajectory=res["trajectory"],
        x0_estimate=res["x0_estimate"], timesteps=res["timesteps"],
        gmm=None if g is None else {"weights": g["weights"], "means": g["means"], "variances": g["variances"]},
        model=MODEL_NAMES.get(model.method, model.method), config=to_dict(model.cfg), versions=versions(),
        dataset=dataset, split="wild",
        extra_attrs={"checkpoint": model.path, "n_hypotheses": n_hyp, "n_sampling_steps": k,
                     "camera_json": json.dumps(camera.to_dict()), "jagg_root": root_note},
    )
