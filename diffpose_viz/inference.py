"""Inference: restore a model from one checkpoint and lift 2D input to 3D hypotheses.

`lift()` runs the method's `predict` in batches over a `Feed` (the 2D condition, windows and H_K of one
split, `diffpose_viz.inputs.feed`) under one `SamplingSetting`; `evaluate`, `sample`, `wild`, the dashboard and
the lab lift this way. `results_dataset` turns its arrays into a results Dataset
(docs/RESULTS_SCHEMA.md); `lift_2d` does both for user 2D keypoints (the `sample` command, wild, the
dashboard).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from diffpose_viz import metrics
from diffpose_viz.camera import Camera
from diffpose_viz.checkpoint import FINGERPRINT_KEY, current_method_name, load_checkpoint, load_weights, versions
from diffpose_viz.config import parse_config, to_dict
from diffpose_viz.detector_sim import Detections2D
from diffpose_viz.errors import CheckpointError, InputError
from diffpose_viz.results import Estimates, Inputs2D, Provenance, Samples, build_results
from diffpose_viz.initialization.depth_prior import depth_prior_from_dict
from diffpose_viz.inputs import Feed, FeedBatch, feed_from_keypoints
from diffpose_viz.memory import check_lift_fits
from diffpose_viz.methods import AMP_CHOICES, LoadedModel, Prediction, SamplingSetting, check_config
from diffpose_viz.progress import progress as progress_bar


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Restore a checkpoint written by the trainer (the EMA weights are the ones used)."""
    ckpt = load_checkpoint(path)
    try:
        config = dict(ckpt["config"])
        config["method"] = current_method_name(ckpt)
        cfg = parse_config(config, source=f"{path} (embedded config)")
        method = check_config(cfg, f"{path} (embedded config)", warn=False)
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: its embedded config does not fit this diffpose_viz version: {err}") from None
    device = torch.device(device)
    payload = ckpt.get("extras")
    if payload is None:  # checkpoints written before the method table kept the lifter at the top level
        payload = {"lifter": ckpt.get("lifter")}
    extras = method.restore_extras(cfg, payload, str(path), device)
    net = method.network(cfg, extras)
    if net is not None:
        state = ckpt.get("ema") or {}
        load_weights(net, state.get("module", ckpt["model"]), "EMA", path)
        net = net.to(device).eval()
    prior = depth_prior_from_dict(ckpt["depth_prior"]) if ckpt.get("depth_prior") is not None else None
    if method.needs_depth_prior and prior is None:
        raise CheckpointError(f"{path}: method {method.name} needs H_K but the checkpoint has no depth prior")
    error_model = None
    if ckpt.get("detection_error") is not None:
        from diffpose_viz.initialization.detection_error import DetectionErrorModel

        error_model = DetectionErrorModel.from_dict(ckpt["detection_error"])
    return LoadedModel(cfg, method, net, prior, extras, device, str(path), error_model,
                       fingerprint=ckpt[FINGERPRINT_KEY])


def autocast(device: torch.device | str, amp: str | None):
    """torch.autocast context for `amp` ('bf16'), or a no-op context for None/'none'."""
    if amp not in (None, *AMP_CHOICES):
        raise ValueError(f"amp must be one of {AMP_CHOICES}, found {amp!r}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp == "bf16")


@torch.no_grad()
def predict(model: LoadedModel, batch: FeedBatch, sampling: SamplingSetting) -> Prediction:
    """Hypotheses for one batch of a feed (`Feed.batch`) under `sampling` (resolved by the method here; resolving
    a resolved setting changes nothing).

    amp='bf16': the networks run under torch.autocast in bfloat16 (GPU, or CPUs with bf16 instructions);
    the diffusion state and the DDIM arithmetic stay float32."""
    sampling = model.method.sampling(model.cfg, sampling)
    with autocast(model.device, sampling.amp):
        return model.method.predict(model, batch, sampling)


def run_inference(model: LoadedModel, feed: Feed, rows: np.ndarray, sampling: SamplingSetting, *,
                  progress: bool = False) -> dict[str, np.ndarray | list | None]:
    """Hypotheses (and trajectories) for `rows` of a feed, in batches of `sampling.batch_size`; numpy on the CPU."""
    gen = torch.Generator(device=model.device).manual_seed(sampling.seed)
    out: dict[str, list] = {"hypotheses": [], "trajectory": [], "x0_estimate": [], "pred": []}
    timesteps = None
    bs = sampling.batch_size
    for s in progress_bar(range(0, len(rows), bs), desc=f"sample {model.name}", unit="batch", enabled=progress):
        p = predict(model, feed.batch(rows[s:s + bs], gen), sampling)
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
        raise InputError(f"{model.path}: the model produced NaN/inf hypotheses (check the input and weights)")
    return res


@dataclass
class Lifted:
    """`lift()`'s output for the rows it was given (numpy, metres, root-relative)."""

    hypotheses: np.ndarray  # (R,N,17,3)
    pred: np.ndarray | None  # (R,17,3) when the method defines its output otherwise than P-Agg
    trajectory: np.ndarray | None
    x0_estimate: np.ndarray | None
    timesteps: list[int] | None
    gmm: dict[str, np.ndarray] | None  # H_K of the rows: weights, means, variances, root_depth
    sampling: SamplingSetting  # the resolved setting they were sampled with

    @property
    def n_hypotheses(self) -> int:
        return self.sampling.n_hypotheses

    @property
    def n_steps(self) -> int:
        return self.sampling.n_steps


def lift(model: LoadedModel, feed: Feed, sampling: SamplingSetting | None = None, *, rows: np.ndarray | None = None,
         progress: bool = False) -> Lifted:
    """Hypotheses for `rows` (default: the rows H_K was fitted for, else all) of a feed (`inputs.build_feed`,
    `inputs.feed_from_keypoints`) with H_K fitted when the method needs it (`Feed.with_hk`); windows may reach
    rows outside `rows`. `sampling`: a request, resolved here by the method (None: the config's settings)."""
    sampling = model.method.sampling(model.cfg, sampling)
    if rows is None:
        rows = np.arange(len(feed)) if feed.hk_rows is None else feed.hk_rows
    rows = np.asarray(rows)
    check_lift_fits(len(rows), sampling.n_hypotheses, sampling.n_steps, sampling.record, sampling.batch_size,
                    model.cfg.model.hidden)  # before the hypotheses are allocated
    if feed.needs_hk and feed.gmm is None:
        raise InputError(f"{model.path}: method {model.method.name} samples from H_K; fit it first (Feed.with_hk)")
    out = run_inference(model, feed, rows, sampling, progress=progress)
    gmm_np = None
    if feed.gmm is not None:
        g = feed.gmm.to_numpy()
        gmm_np = {key: g[key] for key in ("weights", "means", "variances", "root_depth")}
    return Lifted(out["hypotheses"], out["pred"], out["trajectory"], out["x0_estimate"], out["timesteps"], gmm_np,
                  sampling)


# --------------------------------------------------------------------------- results Datasets


#: Root depth (m) at which J-Agg back-projects the root keypoint when nothing estimates it (user 2D lifted by a
#: method without H_K). A fixed guess of the order of Human3.6M's camera distances, not read from the training
#: data: the checkpoint of such a method keeps no depth prior. It moves only J-Agg, never P1/P2.
FALLBACK_ROOT_DEPTH_M = 5.5


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


def results_dataset(model: LoadedModel, lifted: Lifted, det: Detections2D, cams: list[Camera], samples: Samples, *,
                    dataset: str, split: str, extra_attrs: dict, gt: np.ndarray | None = None,
                    fallback_root: np.ndarray | None = None):
    """A results Dataset from `lift()`'s output: the aggregates (P-Agg / the method's own output, J-Agg)
    and the attributes every results file carries. gt (sample,17,3) and the true root position `fallback_root`
    (sample,3; J-Agg's reprojection where H_K gives no root depth) when known."""
    gmm = lifted.gmm
    root, root_note = _estimated_root(det.keypoints, None if gmm is None else gmm["root_depth"], cams, fallback_root)
    if root is None:  # no H_K and no ground truth
        root = np.stack([c.back_project(np.nan_to_num(k[0]), FALLBACK_ROOT_DEPTH_M)
                         for c, k in zip(cams, det.keypoints)])
    pred, pred_jagg = _aggregate(lifted.hypotheses, lifted.pred, det.keypoints, root, cams)
    estimates = Estimates(lifted.hypotheses, pred, pred_jagg, lifted.trajectory, lifted.x0_estimate, lifted.timesteps,
                          None if gmm is None else {k: gmm[k] for k in ("weights", "means", "variances")})
    attrs = {"checkpoint": model.path, "n_hypotheses": lifted.n_hypotheses, "n_sampling_steps": lifted.n_steps,
             "sampling": asdict(lifted.sampling), "jagg_root": root_note,
             "pred_definition": "H_K mixture mean" if lifted.pred is not None else "mean of the hypotheses",
             **extra_attrs}
    provenance = Provenance(model.method.model_name, to_dict(model.cfg), versions(), dataset, split, attrs)
    return build_results(Inputs2D(det.keypoints, det.confidence, det.occluded), estimates, samples, provenance, gt)


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


def lift_2d(model: LoadedModel, keypoints_px: np.ndarray, camera: Camera, sampling: SamplingSetting | None = None, *,
            confidence: np.ndarray | None = None, occluded: np.ndarray | None = None,
            std_px: float | np.ndarray = 5.0, frames: np.ndarray | None = None, subject: str = "user",
            action: str = "user", dataset: str = "user 2D keypoints", progress: bool = False):
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
    feed = feed_from_keypoints(kp[rows], conf[rows], occ[rows], std[rows] if std.ndim == 2 else std_px, camera,
                               model.cfg, model.method, device=model.device)
    feed = feed.with_hk(model.prior, model.extras, progress=progress)
    det_u = feed.det
    lifted = lift(model, feed, sampling, progress=progress)
    if len(rows) < F:  # put the lifted frames back among all frames; the others stay NaN
        lifted = Lifted(_scatter(lifted.hypotheses, rows, F), _scatter(lifted.pred, rows, F),
                        _scatter(lifted.trajectory, rows, F), _scatter(lifted.x0_estimate, rows, F),
                        lifted.timesteps,
                        None if lifted.gmm is None else {k: _scatter(v, rows, F) for k, v in lifted.gmm.items()},
                        lifted.sampling)
    modes = np.full((F, 17, *det_u.modes.shape[2:]), np.nan, np.float32)
    modes[rows] = det_u.modes
    det = Detections2D(kp, conf, modes, occ)
    samples = Samples([subject] * F, [action] * F, [camera.id] * F, np.arange(F) if frames is None else frames,
                      missing=~usable, missing_reason=reason)
    return results_dataset(model, lifted, det, [camera] * F, samples, dataset=dataset, split="wild",
                           extra_attrs={"camera_json": json.dumps(camera.to_dict()),
                                        "min_visible_joints": MIN_VISIBLE_JOINTS})


__all__ = ["AMP_CHOICES", "Lifted", "LoadedModel", "Prediction", "SamplingSetting", "autocast", "lift",
           "lift_2d", "load_model", "predict", "results_dataset", "run_inference", "usable_frames"]
