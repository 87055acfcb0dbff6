"""Generator for DiffPose-style 2D GMM files (the script the authors never released).

Output layout per sequence: float32 (T, 17, K, 5) = [weight, mean_u, mean_v, spread_u, spread_v]
in pixels, kernels sorted by weight (kernel 0 = dominant, which is what readers that only use
kernel 0 expect). "spread" is our choice of meaning for the official files' undocumented
columns 3:5: the kernel's standard deviation in pixels (the official loader uses them as a
std multiplier of the noise). Files are nested like VideoPose3D's
`positions_2d[subject][action][camera]`.

Two ways to get the 2D uncertainty that the K kernels summarise:
- `official_gmm_from_modes`: samples from the detector's heatmap modes (Detections2D.modes).
- `official_gmm_from_residuals`: detection minus samples of training-set 2D residuals
  (residual = detection - ground truth, per joint), i.e. an empirical error model.
`degenerate_official_gmm` reproduces the released files' form: weights (1, 0, ..., 0), every
kernel's mean = the 2D keypoint (Diffpose#19).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from diffpose_viz.initialization.gmm_em import fit_gmm
from diffpose_viz.initialization.pose_init import _fallback_centres, clean_modes, sample_modes

N_JOINTS = 17


def _fit_2d(samples: torch.Tensor, n_kernels: int, n_iter: int, reg_covar: float,
            generator: torch.Generator) -> np.ndarray:
    """samples (T,17,S,2) px -> (T,17,K,5) float32 sorted by weight (descending)."""
    T, J, S, _ = samples.shape
    fit = fit_gmm(samples.reshape(T * J, S, 2), None, n_kernels, n_iter=n_iter, tol=1e-4,
                  reg_covar=reg_covar, generator=generator)
    order = torch.argsort(fit.weights, dim=1, descending=True)
    w = torch.gather(fit.weights, 1, order)
    mu = torch.gather(fit.means, 1, order.unsqueeze(-1).expand(-1, -1, 2))
    sd = torch.gather(fit.variances, 1, order.unsqueeze(-1).expand(-1, -1, 2)).sqrt()
    out = torch.cat([w.unsqueeze(-1), mu, sd], -1).view(T, J, n_kernels, 5)
    return out.cpu().numpy().astype(np.float32)


def _chunks(T: int, size: int):
    for s in range(0, T, size):
        yield slice(s, min(s + size, T))


def official_gmm_from_modes(modes, *, confidence=None, n_kernels: int = 3, n_samples: int = 256, n_iter: int = 30,
                            min_std_px: float = 1.0, missing_std_px: float = 40.0, reg_covar: float = 0.25,
                            generator: torch.Generator | None = None, device: str | torch.device = "cpu",
                            chunk_size: int = 512, seed: int = 0, image_center=(0.0, 0.0)) -> np.ndarray:
    """K-kernel 2D GMM per frame and joint, fitted to samples of the heatmap modes (T,17,Q,5) px.

    Missing joints (no valid mode or confidence below 0.05) get one wide mode of std
    missing_std_px around their nearest present ancestor (image_center when a frame has no
    joint at all), so the output never holds NaN.
    reg_covar: px^2 variance floor of the fitted kernels.
    """
    m, kp, missing, _ = clean_modes(modes, confidence, min_std_px=min_std_px)
    centres = _fallback_centres(kp, missing, np.broadcast_to(np.asarray(image_center, np.float64), (len(m), 2)))
    # clean_modes zeroed every weight of a missing joint; its mode 0 becomes the wide fallback.
    m[..., 0, 0] = np.where(missing, 1.0, m[..., 0, 0])
    m[..., 0, 1:3] = np.where(missing[..., None], centres, m[..., 0, 1:3])
    m[..., 0, 3:5] = np.where(missing[..., None], missing_std_px, m[..., 0, 3:5])
    device = torch.device(device)
    generator = generator or torch.Generator(device=device).manual_seed(seed)
    out = np.empty((len(m), N_JOINTS, n_kernels, 5), np.float32)
    for sl in _chunks(len(m), chunk_size):
        modes_t = torch.as_tensor(m[sl], dtype=torch.float64, device=device)
        out[sl] = _fit_2d(sample_modes(modes_t, n_samples, generator), n_kernels, n_iter, reg_covar, generator)
    return out


def official_gmm_from_residuals(keypoints_2d, residuals, *, n_kernels: int = 3, n_samples: int = 256,
                                n_iter: int = 30, reg_covar: float = 0.25, generator: torch.Generator | None = None,
                                device: str | torch.device = "cpu", chunk_size: int = 512, seed: int = 0) -> np.ndarray:
    """K-kernel 2D GMMs of where the true joint lies given a detection: detection - residual.

    keypoints_2d (T,17,2) px detections; residuals (R,17,2) px = detection - ground truth on
    training frames (NaN rows are ignored per joint). NaN detections are an error here.
    """
    kp = np.asarray(keypoints_2d, np.float64)
    res = np.asarray(residuals, np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (N_JOINTS, 2):
        raise ValueError(f"keypoints_2d: expected shape (T, 17, 2) px, found {kp.shape}")
    if res.ndim != 3 or res.shape[1:] != (N_JOINTS, 2):
        raise ValueError(f"residuals: expected shape (R, 17, 2) px, found {res.shape}")
    if not np.isfinite(kp).all():
        bad = np.nonzero(~np.isfinite(kp).all((1, 2)))[0][:5]
        raise ValueError(f"keypoints_2d: NaN/inf in frames {bad.tolist()}; fill or drop missing joints first")
    device = torch.device(device)
    generator = generator or torch.Generator(device=device).manual_seed(seed)
    # Per-joint pools of finite residuals, padded by resampling so they stack into (17, R').
    pools = []
    for j in range(N_JOINTS):
        r = res[:, j][np.isfinite(res[:, j]).all(-1)]
        if len(r) == 0:
            raise ValueError(f"residuals: joint {j} has no finite residual")
        pools.append(r)
    R = max(len(p) for p in pools)
    rng = np.random.default_rng(seed)
    pool = np.stack([p if len(p) == R else p[rng.integers(0, len(p), R)] for p in pools])  # (17,R,2)
    pool_t = torch.as_tensor(pool, dtype=torch.float64, device=device)
    out = np.empty((len(kp), N_JOINTS, n_kernels, 5), np.float32)
    for sl in _chunks(len(kp), chunk_size):
        T = sl.stop - sl.start
        pick = torch.randint(0, R, (T, N_JOINTS, n_samples), generator=generator, device=device)
        r = pool_t[torch.arange(N_JOINTS, device=device).view(1, N_JOINTS, 1), pick]  # (T,17,S,2)
        samples = torch.as_tensor(kp[sl], dtype=torch.float64, device=device).unsqueeze(2) - r
        out[sl] = _fit_2d(samples, n_kernels, n_iter, reg_covar, generator)
    return out


def degenerate_official_gmm(keypoints_2d, spread: float | np.ndarray = 1.0, n_kernels: int = 3) -> np.ndarray:
    """The released files' degenerate form: weights (1,0,..,0), all means = the keypoint, spreads = spread.

    Whether the released files repeat the keypoint in kernels 1..K-1 is unknown; we repeat it.
    """
    kp = np.asarray(keypoints_2d, np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (N_JOINTS, 2):
        raise ValueError(f"keypoints_2d: expected shape (T, 17, 2) px, found {kp.shape}")
    out = np.zeros((len(kp), N_JOINTS, n_kernels, 5), np.float32)
    out[..., 0, 0] = 1.0
    out[..., 1:3] = kp[:, :, None]
    sp = np.asarray(spread, np.float64)
    if sp.ndim == 2:  # (T,17): isotropic per joint
        sp = sp[..., None]
    try:
        sp = np.broadcast_to(sp, kp.shape)
    except ValueError:
        raise ValueError(f"spread: expected a scalar, (T,17) or (T,17,2) px, found {np.shape(spread)}") from None
    if (sp < 0).any():
        raise ValueError("spread must be >= 0")
    out[..., 3:5] = sp[:, :, None]
    return out


def check_official_layout(arr: np.ndarray, name: str = "gmm") -> None:
    """Raise ValueError unless arr is (T,17,K,5), finite, weights >= 0 summing to 1, spreads >= 0."""
    a = np.asarray(arr)
    if a.ndim != 4 or a.shape[1] != N_JOINTS or a.shape[3] != 5:
        raise ValueError(f"{name}: expected shape (T, 17, K, 5), found {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN/inf")
    if (a[..., 0] < 0).any() or not np.allclose(a[..., 0].sum(-1), 1.0, atol=1e-4):
        raise ValueError(f"{name}: kernel weights must be >= 0 and sum to 1 per joint")
    if (a[..., 3:5] < 0).any():
        raise ValueError(f"{name}: spreads (columns 3:5) must be >= 0")


def build_official_gmm_files(inputs: dict[str, dict[str, list]], make: Callable[..., np.ndarray] | None = None,
                             **kwargs) -> dict[str, dict[str, list[np.ndarray]]]:
    """Apply a generator to every sequence of {subject: {action: [per-camera input]}}.

    make defaults to official_gmm_from_modes (inputs are modes arrays); pass e.g.
    `lambda kp: official_gmm_from_residuals(kp, residuals)` or degenerate_official_gmm.
    """
    make = make or official_gmm_from_modes
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    for subject, actions in inputs.items():
        out[subject] = {}
        for action, cams in actions.items():
            arrs = [make(x, **kwargs) for x in cams]
            for c, a in enumerate(arrs):
                check_official_layout(a, f"{subject}/{action}/camera {c}")
            out[subject][action] = arrs
    return out


def write_official_gmm_file(path: str | Path, gmm_2d: dict[str, dict[str, list[np.ndarray]]], **kwargs) -> Path:
    """Write the nested dict with the data layer's `datasets.gmm_files.write_gmm_2d(path, gmm_2d, **kwargs)`.

    Imported lazily: the data layer is a separate module and is not needed to generate the arrays.
    """
    from diffpose_viz.datasets.gmm_files import write_gmm_2d

    result = write_gmm_2d(path, gmm_2d, **kwargs)
    return Path(result) if isinstance(result, (str, Path)) else Path(path)


__all__ = ["official_gmm_from_modes", "official_gmm_from_residuals", "degenerate_official_gmm",
           "check_official_layout", "build_official_gmm_files", "write_official_gmm_file"]
