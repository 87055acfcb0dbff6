"""A live what-if lab: take one sample of a results file, edit its 2D input, and sample again.

Notebook use::

    from diffpose_viz import lab
    from diffpose_viz.inference import load_model

    s = lab.open_sample("results/smoke/diffpose.nc", 3)
    model = load_model(s.checkpoint)                 # keep it: every rerun reuses it
    before = lab.rerun(model, s, n_hypotheses=20, n_steps=5, seed=0)
    after = lab.rerun(model, lab.edit_2d(s, hide=["left_wrist"]), n_hypotheses=20, n_steps=5, seed=0)
    after.spread_mm - before.spread_mm               # per joint, mm

`rerun` re-fits H_K for that one frame with `inputs.build_hk` when the method samples from H_K, and runs
the method's own `predict` (record=True) on the edited 2D. Methods without H_K (the lifters, the official
mode) say so in `LabResult.note` and still see the 2D edits.

The 2D uncertainty of the edited input is `std_px` per joint (results files keep keypoints, not heatmap
modes), so "before" and "after" must both be rerun here to be compared like for like.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch
import xarray as xr

from diffpose_viz.camera import Camera, h36m_cameras
from diffpose_viz.checkpoint import check_made_from, current_method_name, load_checkpoint
from diffpose_viz.config import config_diff, parse_config, to_dict
from diffpose_viz.errors import CheckpointError, ConfigError, ProvenanceError
from diffpose_viz.figures.errors import hypothesis_spread_mm
from diffpose_viz.figures.gmm import mixture_std
from diffpose_viz.inference import LoadedModel, SamplingSetting, predict
from diffpose_viz.initialization.pose_init import intrinsics_from_camera
from diffpose_viz.inputs import SPLIT_SEEDS, feed_from_keypoints
from diffpose_viz.methods import get_method
from diffpose_viz.skeleton import H36M17

#: The 2D uncertainty (px, per joint) H_K assumes for a lab sample unless edited (lift_2d's default).
DEFAULT_STD_PX = 5.0
#: Settings that may differ between a results file's config and its checkpoint's (where and how it ran).
IGNORED_KEYS = ("device", "data.path", "train.progress")
REPO_ROOT = Path(__file__).resolve().parents[1]


class LabError(ValueError):
    """A sample the lab cannot work on: a missing or mismatched checkpoint, a bad index or edit."""


@dataclass(frozen=True)
class LabSample:
    """One frame's 2D input and what is known about it (numpy; pixels, metres)."""

    results_path: Path
    index: int
    label: str
    model_name: str  # the results' `model` attribute
    checkpoint: Path
    config: dict
    keypoints: np.ndarray  # (17,2) px, NaN where hidden
    confidence: np.ndarray  # (17,)
    occluded: np.ndarray  # (17,) bool
    std_px: np.ndarray  # (17,) 2D std H_K assumes per joint
    camera: Camera
    gt: np.ndarray | None  # (17,3) m root-relative, when known
    hidden: tuple[str, ...] = ()  # joints hidden by edit_2d
    offsets: dict = field(default_factory=dict)  # {joint name: (dx, dy) px} applied by edit_2d
    ood_model: object | None = None  # diffpose_viz.ood.OODModel from the results' metrics JSON, when stored

    @property
    def res(self) -> np.ndarray:
        return np.array([self.camera.res_w, self.camera.res_h], np.float64)

    @property
    def intrinsics(self) -> np.ndarray:
        return intrinsics_from_camera(self.camera)

    @property
    def edited(self) -> bool:
        return bool(self.hidden or self.offsets)


@dataclass
class LabResult:
    """What one rerun produced for one frame (metres, root-relative camera frame; errors in mm)."""

    method: str
    uses_hk: bool
    note: str
    hypotheses: np.ndarray  # (N,17,3)
    pred: np.ndarray  # (17,3) the method's output (P-Agg unless the method defines its own)
    trajectory: np.ndarray | None  # (N,S,17,3), state 0 = start
    x0_estimate: np.ndarray | None  # (N,S,17,3)
    timesteps: list[int] | None
    gmm: dict[str, np.ndarray] | None  # H_K of the frame: weight (17,M), mean (17,M,3), var (17,M,3), root_depth
    kernel_spread_mm: np.ndarray | None  # (17,) standard deviation of H_K per joint, mm
    spread_mm: np.ndarray  # (17,) mean distance of the hypotheses from their mean, mm
    err_mm: np.ndarray | None  # (17,) error of `pred` against the ground truth, mm
    sample: LabSample
    n_hypotheses: int
    n_steps: int
    seconds: float
    ood_score: float | None = None  # out-of-domain score of this (edited) input; None without an OOD model
    outside_training: bool | None = None  # the score is above the model's validation threshold
    radius_mm: np.ndarray | None = None  # (17,) score-conditional calibrated radius (docs/RESULTS_SCHEMA.md)

    @property
    def mpjpe_mm(self) -> float | None:
        return None if self.err_mm is None else float(self.err_mm.mean())


# --------------------------------------------------------------------------- opening a sample


def _joint(j: int | str) -> int:
    if isinstance(j, (int, np.integer)):
        if not 0 <= int(j) < 17:
            raise LabError(f"joint index {j} out of range 0..16")
        return int(j)
    try:
        return H36M17.index(str(j))
    except KeyError as err:
        raise LabError(str(err.args[0])) from None


def resolve_checkpoint(path: str | Path, results_path: Path) -> Path:
    """The checkpoint a results file names: as given, else relative to the results file, else to the repo."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    for base in (Path.cwd(), results_path.resolve().parent, REPO_ROOT):
        if (base / p).exists():
            return base / p
    return p


def _comparable(cfg: dict) -> dict:
    out = json.loads(json.dumps(cfg))
    for dotted in IGNORED_KEYS:
        *parents, last = dotted.split(".")
        d = out
        for part in parents:
            d = d.get(part, {}) if isinstance(d, dict) else {}
        if isinstance(d, dict):
            d.pop(last, None)
    return out


def check_checkpoint(checkpoint: Path, file_config: dict, results_path: Path, fingerprint: str | None = None,
                     model_name: str | None = None) -> None:
    """LabError unless `checkpoint` exists and is the model that wrote the results file: the same content
    fingerprint (when the file records one: a moved or copied run still matches, a retrained one does not), the
    same model name (the file's `model` attribute) and the same embedded config."""
    if not checkpoint.exists():
        raise LabError(f"{results_path.name}: its checkpoint {checkpoint} does not exist (retrain it, or rerun "
                       f"`diffpose-viz evaluate` with a checkpoint you have)")
    try:
        ckpt = load_checkpoint(checkpoint)
        if fingerprint is not None:
            check_made_from(fingerprint, results_path, checkpoint, "results file")
        if model_name is not None:
            made_by = get_method(current_method_name(ckpt), str(checkpoint)).model_name
            if made_by != model_name:
                raise LabError(f"{results_path.name}: attribute 'model' is {model_name!r} but checkpoint {checkpoint} "
                               f"holds a {made_by!r} model")
        ckpt_cfg = to_dict(parse_config(ckpt["config"], f"{checkpoint} (embedded config)"))
        file_cfg = to_dict(parse_config(file_config, f"{results_path.name} (config attribute)"))
    except LabError:
        raise
    except ProvenanceError as err:
        raise LabError(str(err)) from None
    except (CheckpointError, ValueError, KeyError) as err:
        raise LabError(f"{results_path.name}: cannot compare with checkpoint {checkpoint}: {err}") from None
    diff = config_diff(_comparable(file_cfg), _comparable(ckpt_cfg))
    if diff:
        shown = "; ".join(diff[:5]) + (f"; … ({len(diff)} in all)" if len(diff) > 5 else "")
        raise LabError(f"{results_path.name}: checkpoint {checkpoint} was trained with another config than the one "
                       f"that wrote these results (file != checkpoint: {shown})")


def _camera(ds: xr.Dataset, i: int, cfg: dict) -> Camera:
    """The camera of sample i: the file's own (user input), the data file's, or Human3.6M's calibration."""
    if "camera_json" in ds.attrs:
        return Camera.from_dict(json.loads(ds.attrs["camera_json"]))
    cam_id = str(ds["camera"].values[i]) if "camera" in ds.coords else ""
    subject = str(ds["subject"].values[i]) if "subject" in ds.coords else ""
    bare = cam_id.split("/")[-1]
    cams: list[Camera] = []
    data_path = cfg.get("data", {}).get("path")
    if data_path:
        p = resolve_checkpoint(data_path, Path(ds.encoding.get("source", ".")))
        if p.exists():
            from diffpose_viz.datasets.vp3d import load_3d

            try:
                cams = load_3d(p, subjects=[subject]).cameras_for(subject)
            except Exception:  # noqa: BLE001 - fall back to the built-in calibration below
                cams = []
    if not cams:
        try:
            cams = h36m_cameras(subject)
        except KeyError:
            cams = []
    for c in cams:
        if str(c.id) == bare:
            return c
    raise LabError(f"sample {i}: no calibration for camera {cam_id!r} of subject {subject!r} (data file {data_path})")


def open_sample(results_path: str | Path, index: int, *, check: bool = True) -> LabSample:
    """Sample `index` (position along `sample`) of a results file, with the checkpoint that made it.

    Reads the attributes `checkpoint` and `config`; raises LabError when the checkpoint is missing or was
    trained with another config than the file's (`check=False` skips that comparison)."""
    path = Path(results_path)
    if not path.exists():
        raise LabError(f"results file {path} does not exist")
    try:
        with xr.open_dataset(path) as ds:
            ds = ds.load()
    except (OSError, ValueError) as err:
        raise LabError(f"{path}: cannot read as a netCDF results file ({type(err).__name__}: {err})") from None
    ds.encoding["source"] = str(path)
    n = ds.sizes.get("sample", 0)
    if not 0 <= int(index) < n:
        raise LabError(f"{path.name}: sample {index} out of range (the file holds {n} samples)")
    i = int(index)
    for key in ("checkpoint", "config"):
        if key not in ds.attrs:
            raise LabError(f"{path.name}: no '{key}' attribute, so the lab cannot tell which model made it")
    cfg = json.loads(ds.attrs["config"])
    checkpoint = resolve_checkpoint(ds.attrs["checkpoint"], path)
    if check:
        check_checkpoint(checkpoint, cfg, path, ds.attrs.get("checkpoint_fingerprint"), str(ds.attrs.get("model")))
    kp = ds["input_2d"].values[i].astype(np.float64)
    conf = ds["confidence"].values[i].astype(np.float64) if "confidence" in ds else np.isfinite(kp).all(-1) * 1.0
    occ = ds["occluded"].values[i].astype(bool) if "occluded" in ds else np.zeros(17, bool)
    from diffpose_viz.figures import describe_sample

    return LabSample(path, i, describe_sample(ds, i), str(ds.attrs.get("model", "?")), checkpoint, cfg, kp, conf,
                     occ, np.full(17, DEFAULT_STD_PX), _camera(ds, i, cfg),
                     ds["gt"].values[i].astype(np.float64) if "gt" in ds else None, ood_model=_ood_model(path, ds.attrs.get("checkpoint_fingerprint")))


def _ood_model(results_path: Path, fingerprint: str | None = None):
    """The out-of-domain model `evaluate` stored next to the results, or None (absent or unreadable). One fitted
    for another checkpoint than the results file's (fingerprints differ) is refused: LabError naming both."""
    from diffpose_viz import ood
    from diffpose_viz.checkpoint import short

    metrics = results_path.with_suffix(".metrics.json")
    try:
        text = metrics.read_text() if metrics.exists() else None
    except OSError:
        return None
    try:
        model = ood.model_from_metrics(json.loads(text)) if text is not None else None
    except ValueError as err:  # an edited or broken calibration is named, never silently dropped or used
        raise LabError(f"{metrics.name}: its out-of-domain calibration is not usable ({err})") from None
    if model is not None and fingerprint is not None and model.checkpoint_fingerprint != fingerprint:
        raise LabError(f"{metrics.name}: its calibration was fitted for the checkpoint with fingerprint "
                       f"{short(model.checkpoint_fingerprint)}, but {results_path.name} was made by "
                       f"{short(fingerprint)}; rerun `diffpose-viz evaluate` to pair them")
    return model


# --------------------------------------------------------------------------- editing


def edit_2d(sample: LabSample, hide: Iterable[int | str] = (), offsets: Mapping[int | str, tuple] | None = None,
            std_px: float | Mapping[int | str, float] | None = None) -> LabSample:
    """A copy of `sample` with joints hidden (NaN, confidence 0, occluded), keypoints moved by (dx, dy) px,
    and/or the 2D std H_K assumes changed (a number for every joint, or {joint: std}). Joints by name or index."""
    kp, conf, occ, std = (sample.keypoints.copy(), sample.confidence.copy(), sample.occluded.copy(),
                          sample.std_px.copy())
    moved = dict(sample.offsets)
    for j, d in (offsets or {}).items():
        j = _joint(j)
        dx, dy = (float(v) for v in d)
        if not (np.isfinite(dx) and np.isfinite(dy)):
            raise LabError(f"offset of {H36M17.joint_names[j]}: expected finite pixels, found {d}")
        kp[j] += (dx, dy)
        name = H36M17.joint_names[j]
        px, py = moved.get(name, (0.0, 0.0))
        moved[name] = (px + dx, py + dy)
    hidden = list(sample.hidden)
    for j in hide:
        j = _joint(j)
        kp[j] = np.nan
        conf[j] = 0.0
        occ[j] = True
        if H36M17.joint_names[j] not in hidden:
            hidden.append(H36M17.joint_names[j])
    if std_px is not None:
        items = std_px.items() if isinstance(std_px, Mapping) else [(j, std_px) for j in range(17)]
        for j, s in items:
            if not float(s) > 0:
                raise LabError(f"std_px: expected > 0 pixels, found {s}")
            std[_joint(j)] = float(s)
    return replace(sample, keypoints=kp, confidence=conf, occluded=occ, std_px=std, hidden=tuple(hidden),
                   offsets=moved)


# --------------------------------------------------------------------------- sampling


def _root_depth(depth_source) -> np.ndarray | None:
    """None (root depth from the 2D scale, as at test time) or the given root depth (1,) m."""
    if depth_source in (None, "estimated"):
        return None
    z = float(depth_source)
    if not z > 0:
        raise LabError(f"depth_source: expected 'estimated' or a root depth > 0 m, found {depth_source!r}")
    return np.array([z])


@torch.no_grad()
def rerun(model: LoadedModel, sample: LabSample, n_hypotheses: int | None = None, n_steps: int | None = None,
          seed: int = 0, start_step: int | None = None, depth_source: float | str | None = None,
          sampling: SamplingSetting | None = None) -> LabResult:
    """Sample one frame again with `model` (load it once and keep it): H_K re-fitted for the (edited) 2D
    when the method needs it, then the method's predict with record=True.

    start_step: begin the reverse loop at the start_step-th of the K DDIM timesteps (the H_K draw is the
    state there; DDIM methods only). depth_source: None/'estimated' (root depth from the 2D scale, as at
    test time) or a root depth in metres to back-project H_K at. `sampling`: any other knob of the setting
    (eta, start_t, skip, ...); the arguments above take precedence over its fields."""
    t0 = time.perf_counter()
    method = model.method
    if sample.model_name not in ("?", method.model_name):
        raise LabError(f"the sample comes from a {sample.model_name} results file but the model is {method.name}")
    asked = {"n_hypotheses": n_hypotheses, "n_steps": n_steps, "seed": seed, "start_step": start_step}
    request = replace(sampling or SamplingSetting(), record=True, **{k: v for k, v in asked.items() if v is not None})
    if request.start_step and not method.samples_with_ddim:
        raise LabError(f"start_step: {method.name} does not run DDIM sampling")
    sampling = method.sampling(model.cfg, request)
    n, k = sampling.n_hypotheses, sampling.n_steps
    feed = feed_from_keypoints(sample.keypoints[None], sample.confidence[None], sample.occluded[None],
                               sample.std_px[None], sample.camera, model.cfg, method, device=model.device)
    notes = []
    if feed.windows is not None:
        notes.append(f"video context: the edited frame fills the whole {model.cfg.model.frames}-frame window")
    root_depth = _root_depth(depth_source) if feed.needs_hk else None
    feed = feed.with_hk(model.prior, model.extras, seed=SPLIT_SEEDS["wild"] + seed, root_depth=root_depth)
    gmm = feed.gmm
    if gmm is not None:
        depth_note = ("root depth from the 2D scale" if root_depth is None
                      else f"root depth given: {root_depth[0]:.2f} m")
        z_note = "; per-joint z from phi_ST" if feed.z_from_method else ""
        notes.insert(0, f"H_K re-fitted for this frame ({depth_note}{z_note})")
    else:
        notes.insert(0, f"{method.name} does not sample from H_K: no kernels to show; the 2D edits still change "
                        f"its input")
        if depth_source is not None:
            notes.append("depth_source ignored (no H_K)")
    gen = torch.Generator(device=model.device).manual_seed(sampling.seed)
    if sampling.start_step:
        notes.append(f"reverse loop from step {sampling.start_step} of {k}")
    try:
        p = predict(model, feed.batch(np.zeros(1, np.int64), gen), sampling)
    except ConfigError as err:  # a start step or step count the setting cannot run
        raise LabError(str(err)) from None
    hyps = np.asarray(p.hypotheses[0], np.float64)
    if not np.isfinite(hyps).all():
        raise LabError(f"{model.path}: the model produced NaN/inf hypotheses for this input")
    pred = np.asarray(p.pred[0], np.float64) if p.pred is not None else hyps.mean(0)
    gmm_np = kernel_spread = None
    if gmm is not None:
        g = gmm.to_numpy()
        gmm_np = {"weight": g["weights"][0], "mean": g["means"][0], "var": g["variances"][0],
                  "root_depth": None if g.get("root_depth") is None else float(np.asarray(g["root_depth"])[0])}
        kernel_spread = mixture_std(gmm_np["weight"], gmm_np["mean"], gmm_np["var"]) * 1000.0
    err = None
    if sample.gt is not None:
        err = np.linalg.norm((pred - pred[:1]) - (sample.gt - sample.gt[:1]), axis=-1) * 1000.0
    ood_out = {}
    if sample.ood_model is not None:  # the same score and radius as the results file, for the edited input
        from diffpose_viz import ood

        hk = None if gmm_np is None else {"weights": gmm_np["weight"][None], "means": gmm_np["mean"][None],
                                          "variances": gmm_np["var"][None]}
        sc = ood.score_arrays(sample.ood_model, feed.det.keypoints, feed.det.confidence, pred[None], hyps[None], hk,
                              sample.occluded[None])
        ood_out = {"ood_score": float(sc.score[0]), "outside_training": bool(sc.flag[0]), "radius_mm": sc.radius[0]}
    else:
        notes.append("no out-of-domain model stored with these results (run `diffpose-viz evaluate`)")
    return LabResult(method.name, gmm is not None, "; ".join(notes), hyps, pred,
                     None if p.trajectory is None else p.trajectory[0],
                     None if p.x0_trajectory is None else p.x0_trajectory[0], p.timesteps, gmm_np, kernel_spread,
                     hypothesis_spread_mm(hyps[None])[0], err, sample, n, k, time.perf_counter() - t0, **ood_out)


def compare(before: LabResult, after: LabResult) -> "pd.DataFrame":  # noqa: F821
    """Per joint: spread, H_K spread and error before and after (mm), and their changes."""
    import pandas as pd

    df = pd.DataFrame({"joint": list(H36M17.joint_names), "spread before": before.spread_mm,
                       "spread after": after.spread_mm})
    df["spread change"] = df["spread after"] - df["spread before"]
    if before.kernel_spread_mm is not None and after.kernel_spread_mm is not None:
        df["H_K spread before"] = before.kernel_spread_mm
        df["H_K spread after"] = after.kernel_spread_mm
    if before.err_mm is not None and after.err_mm is not None:
        df["error before"] = before.err_mm
        df["error after"] = after.err_mm
    return df.round(1)


__all__ = ["DEFAULT_STD_PX", "LabError", "LabResult", "LabSample", "check_checkpoint", "compare", "edit_2d",
           "open_sample", "rerun", "resolve_checkpoint"]
