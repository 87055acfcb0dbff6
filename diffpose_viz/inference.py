"""Inference: restore a model from one checkpoint and lift 2D input to 3D hypotheses.

`lift()` is the one sequence shared by `evaluate`, `sample`, `wild`, the dashboard and the trainer's
validation: screen-normalise the 2D, fit H_K when the method needs it, run the method's `predict` in
batches. It returns arrays; `evaluation/` turns them into results files.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffpose_viz.checkpoint import load_checkpoint, load_weights
from diffpose_viz.config import parse_config
from diffpose_viz.detector_sim import Detections2D
from diffpose_viz.errors import CheckpointError, InputError
from diffpose_viz.initialization.depth_prior import depth_prior_from_dict
from diffpose_viz.initialization.pose_init import PoseGMM
from diffpose_viz.inputs import build_hk, screen_input
from diffpose_viz.memory import check_lift_fits
from diffpose_viz.methods import LoadedModel, Prediction, check_config
from diffpose_viz.progress import progress as progress_bar

AMP_CHOICES = ("none", "bf16")


#: Method names renamed since a checkpoint was written: (old name, writer versions) -> current name.
#: Up to 0.2.0 'diffpose' was the jointly trained model, now 'diffpose_joint' ('diffpose' is the two-stage
#: model with a frozen pre-trained context encoder). A 0.2.0 config has no model.context_checkpoint key,
#: which tells its 'diffpose' checkpoints from the two-stage ones (same version number).
RENAMED_METHODS = {("diffpose", ("0.1.0",)): "diffpose_joint"}


def current_method_name(ckpt: dict) -> str | None:
    """The method a checkpoint's model is today (applies RENAMED_METHODS)."""
    config = ckpt.get("config") or {}
    name = config.get("method", ckpt.get("method"))
    written_by = (ckpt.get("versions") or {}).get("diffpose_viz")
    for (old, old_versions), new in RENAMED_METHODS.items():
        if name == old and (written_by in old_versions or "context_checkpoint" not in (config.get("model") or {})):
            return new
    return name


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
    return LoadedModel(cfg, method, net, prior, extras, device, str(path), error_model)


def autocast(device: torch.device | str, amp: str | None):
    """torch.autocast context for `amp` ('bf16'), or a no-op context for None/'none'."""
    if amp not in (None, *AMP_CHOICES):
        raise ValueError(f"amp must be one of {AMP_CHOICES}, found {amp!r}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp == "bf16")


def gather_cond(cond_all: torch.Tensor, idx: torch.Tensor, windows: torch.Tensor | None) -> torch.Tensor:
    """The network's 2D input for rows idx: (B,17,3), or (B,T,17,3) windows for video context."""
    if windows is None:
        return cond_all[idx]
    return cond_all[windows[idx]]


@torch.no_grad()
def predict(model: LoadedModel, cond: torch.Tensor, gmm: PoseGMM | None, *, n_hypotheses: int, n_steps: int,
            record: bool = False, generator: torch.Generator | None = None, amp: str | None = None,
            **method_options) -> Prediction:
    """Hypotheses for one batch of frames. cond: (B,17,3) or (B,T,17,3) on model.device.

    amp='bf16': the networks run under torch.autocast in bfloat16 (GPU, or CPUs with bf16 instructions);
    the diffusion state and the DDIM arithmetic stay float32."""
    with autocast(model.device, amp):
        return model.method.predict(model, cond, gmm, n_hypotheses=n_hypotheses, n_steps=n_steps, record=record,
                                    generator=generator, **method_options)


def run_inference(model: LoadedModel, cond: torch.Tensor, windows: torch.Tensor | None, gmm: PoseGMM | None,
                  rows: np.ndarray, *, n_hypotheses: int, n_steps: int, record: bool, batch_size: int = 256,
                  seed: int = 0, progress: bool = False, gmm_index: np.ndarray | None = None,
                  amp: str | None = None) -> dict[str, np.ndarray | list | None]:
    """Hypotheses (and trajectories) for `rows`, in batches; results are numpy on the CPU.

    gmm_index: position in `gmm` of each entry of `rows` (default: the rows themselves)."""
    if batch_size < 1:
        raise ValueError(f"--batch-size: expected an integer >= 1, found {batch_size}")
    gmm_index = np.asarray(rows if gmm_index is None else gmm_index)
    gen = torch.Generator(device=model.device).manual_seed(seed)
    out: dict[str, list] = {"hypotheses": [], "trajectory": [], "x0_estimate": [], "pred": []}
    timesteps = None
    starts = range(0, len(rows), batch_size)
    for s in progress_bar(starts, desc=f"sample {model.name}", unit="batch", enabled=progress):
        idx = torch.as_tensor(rows[s:s + batch_size], device=model.device)
        g = gmm.select(torch.as_tensor(gmm_index[s:s + batch_size], device=model.device)) if gmm is not None else None
        p = predict(model, gather_cond(cond, idx, windows), g, n_hypotheses=n_hypotheses, n_steps=n_steps,
                    record=record, generator=gen, amp=amp)
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
    n_hypotheses: int
    n_steps: int


def lift(model: LoadedModel, det: Detections2D, res: np.ndarray, intrinsics: np.ndarray, *,
         rows: np.ndarray | None = None, windows: np.ndarray | None = None, hk_seed: int = 0,
         hk_cache: Path | None = None, n_hypotheses: int | None = None, n_steps: int | None = None,
         record: bool = False, batch_size: int = 256, seed: int | None = None, progress: bool = False,
         amp: str | None = None) -> Lifted:
    """2D detections (all rows; pixels) -> hypotheses for `rows` (default: all).

    res: (N,2) image size per row; intrinsics: (N,4) [fx, fy, cx, cy]; windows: (N,T) row indices when the
    method takes video windows (they may reach rows outside `rows`)."""
    method = model.method
    n_hyp, k = method.settings(model.cfg, n_hypotheses, n_steps)
    rows = np.arange(len(det)) if rows is None else np.asarray(rows)
    check_lift_fits(len(rows), n_hyp, k, record, batch_size, model.cfg.model.hidden)  # before any allocation
    cond = torch.as_tensor(screen_input(det.keypoints, det.confidence, res), device=model.device)
    win = None
    if method.uses_windows(model.cfg):
        if windows is None:
            raise InputError(f"{model.path}: method {method.name} with video context needs frame windows")
        win = torch.as_tensor(windows, device=model.device)
    gmm = None
    if method.hk_at_test:
        sub = det.subset(rows)
        depth = method.hk_depth(model.cfg, model.extras, cond[torch.as_tensor(rows, device=model.device)],
                                sub.occluded)
        gmm = build_hk(sub, np.asarray(intrinsics)[rows], model.prior, model.cfg.init, seed=hk_seed,
                       device=model.device, cache=hk_cache, progress=progress, depth=depth)
    out = run_inference(model, cond, win, gmm, rows, n_hypotheses=n_hyp, n_steps=k, record=record,
                        batch_size=batch_size, seed=model.cfg.train.seed if seed is None else seed,
                        progress=progress, gmm_index=np.arange(len(rows)), amp=amp)
    gmm_np = None
    if gmm is not None:
        g = gmm.to_numpy()
        gmm_np = {key: g[key] for key in ("weights", "means", "variances", "root_depth")}
    return Lifted(out["hypotheses"], out["pred"], out["trajectory"], out["x0_estimate"], out["timesteps"], gmm_np,
                  n_hyp, k)


__all__ = ["AMP_CHOICES", "Lifted", "LoadedModel", "Prediction", "autocast", "gather_cond", "lift", "load_model",
           "predict", "run_inference"]
