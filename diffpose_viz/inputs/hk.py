"""H_K: the per-row pose mixture, fitted with the batched EM (chunks of frames) from the 2D modes and the
depth prior, checked, and cached as a plain tensor file under a digest of everything it depends on."""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from diffpose_viz.checkpoint import safe_torch_load
from diffpose_viz.config import ExperimentConfig, to_dict
from diffpose_viz.datasets.poses import PoseSet
from diffpose_viz.detector_sim import Detections2D
from diffpose_viz.errors import InputError
from diffpose_viz.initialization.depth_prior import DepthPrior
from diffpose_viz.initialization.pose_init import InitConfig, PoseGMM, build_pose_gmm, fit_depth_prior
from diffpose_viz.inputs.splits import augmentation_on
from diffpose_viz.progress import progress as progress_bar

log = logging.getLogger(__name__)


def fit_prior(train: PoseSet, init: InitConfig) -> DepthPrior:
    return fit_depth_prior(train.pose3d, init, root_depth=train.root[:, 2])


def hk_cache_key(cfg: ExperimentConfig, split: str, n: int, prior: DepthPrior, extra: str = "",
                 rows: str = "") -> str:
    """A digest of everything H_K of a split depends on: reuse is safe only under the same key. `extra`: what
    else it depends on (e.g. the identity of the checkpoint whose phi_ST gives H_K's z); `rows`: `rows_digest`
    of the inputs, so that runs whose splits differ (another train.seed) may share a cache folder."""
    h = hashlib.sha256()
    sections = to_dict(cfg)
    payload = {"data": sections["data"], "detector": sections["detector"], "init": sections["init"], "split": split,
               "n": n}
    if rows:
        payload["rows"] = rows
    if extra:
        payload["extra"] = extra
    if cfg.init.depth_source != "prior":  # z from a network: which one
        payload["context_checkpoint"] = file_identity(cfg.model.context_checkpoint)
    if split == "train" and augmentation_on(cfg):  # the augmented rows depend on these too
        payload.update(augmentation=sections["augmentation"], seed=cfg.train.seed)
    h.update(json.dumps(payload, sort_keys=True).encode())
    for v in prior.to_dict().values():
        h.update(np.ascontiguousarray(np.asarray(v)).tobytes())
    return h.hexdigest()[:16]


def hk_cache_file(folder: Path, cfg: ExperimentConfig, split: str, n: int, prior: DepthPrior,
                  checkpoint: str | Path | None = None, rows: str = "") -> Path:
    """The one name of a cached H_K: `hk_<split>_<key>.pt` for a training run's splits, `hk_<split>_eval_<key>.pt`
    for an evaluation of `checkpoint` (whose identity is in the key: H_K's z may come from its phi_ST). `rows`:
    see `hk_cache_key`."""
    if checkpoint is None:
        return Path(folder) / f"hk_{split}_{hk_cache_key(cfg, split, n, prior, rows=rows)}.pt"
    key = hk_cache_key(cfg, split, n, prior, extra=file_identity(checkpoint), rows=rows)
    return Path(folder) / f"hk_{split}_eval_{key}.pt"


def file_identity(path) -> str:
    """Path, size and modification time of a file (or the path alone when it does not exist)."""
    if path is None:
        return "none"
    p = Path(path)
    if not p.exists():
        return str(p)
    st = p.stat()
    return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"


HK_FIELDS = ("weights", "means", "variances", "root_depth", "root_depth_source", "missing")


def _read_hk_cache(cache: Path, n: int) -> PoseGMM | None:
    """A cached H_K (tensors only, read with weights_only=True), or None when it is unreadable or does not
    fit; a bad cache is deleted (and refitted by the caller) with a warning, never trusted."""
    try:
        d = safe_torch_load(cache, "cpu", what="H_K cache")  # its messages never advise unsafe loading
        if not isinstance(d, dict) or set(d) != set(HK_FIELDS):
            raise ValueError(f"expected the keys {HK_FIELDS}")
        gmm = PoseGMM(**d)
        if len(gmm.weights) != n:
            raise ValueError(f"expected {n} rows, found {len(gmm.weights)}")
        check_gmm(gmm, f"H_K cache {cache}")
        return gmm
    except Exception as err:  # noqa: BLE001 - any failure means: refit
        log.warning("H_K cache %s is unusable (%s: %s); deleting it and refitting", cache, type(err).__name__, err)
        cache.unlink(missing_ok=True)
        return None


def build_hk(det: Detections2D, intrinsics: np.ndarray, prior: DepthPrior, init: InitConfig, *, seed: int,
             device: torch.device | str = "cpu", cache: Path | None = None, progress: bool = False,
             depth: tuple[np.ndarray, np.ndarray] | None = None, root_depth: np.ndarray | None = None) -> PoseGMM:
    """H_K for every row, fitted with the batched EM (chunks of init.chunk_size frames).

    `cache` (a .pt path): reuse a previous fit of the same inputs; written atomically after fitting.
    `depth`: per-row (z_mean, z_std), each (N,17) metres, replacing the depth prior's z (init.depth_source
    'context'); the cache file name then carries a digest of them. `root_depth` (N,) metres: a given root
    depth instead of the one estimated from the 2D scale (the lab's what-if; never cached).
    """
    n = len(det)
    if root_depth is not None and cache is not None:
        raise ValueError("build_hk: a given root_depth is a what-if, never cached")
    if depth is not None and cache is not None:
        h = hashlib.sha256()
        for a in depth:
            h.update(np.ascontiguousarray(np.asarray(a, np.float64)).tobytes())
        cache = cache.with_name(f"{cache.stem}_z{h.hexdigest()[:12]}{cache.suffix}")
    if cache is not None and cache.exists():
        gmm = _read_hk_cache(cache, n)
        if gmm is not None:
            return gmm.to(device)
    t0 = time.perf_counter()
    gen = torch.Generator(device=torch.device(device)).manual_seed(int(init.seed) * 10 + seed)
    parts = []
    step = max(init.chunk_size * 8, 1)
    for s in progress_bar(range(0, n, step), desc="H_K (batched EM)", unit="chunk", enabled=progress, leave=False):
        sl = slice(s, min(s + step, n))
        zm, zs = (None, None) if depth is None else (depth[0][sl], depth[1][sl])
        z_root = None if root_depth is None else root_depth[sl]
        parts.append(build_pose_gmm(det.modes[sl], intrinsics[sl], prior, confidence=det.confidence[sl],
                                    occluded=det.occluded[sl], config=init, generator=gen, device=device,
                                    z_mean=zm, z_std=zs, root_depth=z_root))
    gmm = concat_gmms(parts)
    check_gmm(gmm, "H_K")
    log.info("H_K for %d frames in %.1f s (%.2f ms/frame)", n, time.perf_counter() - t0,
             1000 * (time.perf_counter() - t0) / max(n, 1))
    if cache is not None:
        from diffpose_viz.checkpoint import atomic_torch_save

        try:
            atomic_torch_save({k: getattr(gmm, k) for k in HK_FIELDS}, cache)
        except OSError as err:  # a cache only saves time: a read-only checkpoint folder must not stop the run
            log.warning("H_K cache not written (%s); it will be refitted next time", err)
    return gmm


def rows_digest(det: Detections2D, intrinsics: np.ndarray, seed: int) -> str:
    """A digest of the inputs H_K is fitted from, row by row (2D modes, confidences, occlusion flags, intrinsics)
    and the EM's seed: two runs whose splits hold other rows (e.g. another train.seed's validation split) never
    share a cached H_K, whatever their configs say."""
    h = hashlib.sha256(str(int(seed)).encode())
    for a in (det.modes, det.confidence, det.occluded, intrinsics):
        h.update(np.ascontiguousarray(np.asarray(a)).tobytes())
    return h.hexdigest()[:12]


def concat_gmms(parts: list[PoseGMM]) -> PoseGMM:
    def cat(name):
        vals = [getattr(p, name) for p in parts]
        return None if any(v is None for v in vals) else torch.cat(vals)

    return PoseGMM(*(cat(name) for name in HK_FIELDS))


def check_gmm(gmm: PoseGMM, what: str) -> None:
    """A fitted mixture with NaN/inf or non-positive variances is an error, never silently used."""
    for name in ("weights", "means", "variances"):
        t = getattr(gmm, name)
        bad = ~torch.isfinite(t)
        if bad.any():
            rows = torch.nonzero(bad.reshape(len(t), -1).any(1)).flatten()[:5].tolist()
            raise InputError(f"{what}: fitted mixture {name} has NaN/inf values (rows {rows}); check the 2D "
                             f"input and the init settings")
    if (gmm.variances <= 0).any():
        raise InputError(f"{what}: fitted mixture has non-positive variances")
