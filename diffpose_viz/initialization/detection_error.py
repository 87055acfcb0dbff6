"""The x, y uncertainty of a keypoints-only 2D file: a per-joint Gaussian mixture of detector errors.

VideoPose3D's detection files (e.g. `data_2d_h36m_cpn_ft_h36m_dbb.npz`) hold one point per joint and
no heatmap, while H_K needs a 2D distribution per joint (DiffPose paper: x, y "from the heatmaps of an
off-the-shelf 2D detector"). This module replaces the heatmap by an empirical error model, which is
our reconstruction, not the paper's or the released code's:

1. residuals r = detection - ground-truth projection (pixels), per joint, on the **training split**
   only (the detector's own training subjects S1, S5, S6, S7, S8 for Human3.6M);
2. one M-kernel diagonal 2D Gaussian mixture per joint (default M = 3), fitted with the package's
   batched EM (`gmm_em.fit_gmm`), optionally one per confidence bin when the file has scores;
3. for a new detection d, the true joint lies at d - r, so the modes of that joint are the kernels
   shifted to the detection: weight pi_m, mean d - mu_m, std sigma_m, in the `Detections2D.modes`
   layout (N, 17, M, 5) = [weight, mean_u_px, mean_v_px, std_u_px, std_v_px], kernels sorted by weight.

This is the closed form of what `official_gmm.official_gmm_from_residuals` approximates by sampling
(it fits a GMM per frame to d - r over resampled residuals); use that function to write
DiffPose-layout GMM files, and this model where a per-row mixture is needed without a fit per frame.

The fitted model is a handful of plain arrays; `to_dict()` gives lists, floats and strings only, so it
can sit in a checkpoint read with `torch.load(..., weights_only=True)`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from diffpose_viz.initialization.gmm_em import fit_gmm

N_JOINTS = 17
FORMAT = "diffpose_viz.detection_error/1"


@dataclass
class DetectionErrorModel:
    """Per-joint (and per confidence bin) 2D mixtures of residuals r = detection - ground truth, pixels.

    Slot 0 of the first axis is the unconditional mixture; slots 1..B belong to the confidence bins
    [edges[b-1], edges[b]) (the last bin includes its upper edge). A bin with too few training points
    holds a copy of slot 0 (`fallback` True).
    weights (C,17,M), means (C,17,M,2) px, stds (C,17,M,2) px, n_points (C,17), fallback (C,17) bool.
    """

    weights: np.ndarray
    means: np.ndarray
    stds: np.ndarray
    n_points: np.ndarray
    fallback: np.ndarray
    confidence_edges: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, np.float64)
        self.means = np.asarray(self.means, np.float64)
        self.stds = np.asarray(self.stds, np.float64)
        self.n_points = np.asarray(self.n_points, np.int64)
        self.fallback = np.asarray(self.fallback, bool)
        if self.confidence_edges is not None:
            self.confidence_edges = np.asarray(self.confidence_edges, np.float64)
        C, J, M = self.weights.shape
        expected = {"means": (C, J, M, 2), "stds": (C, J, M, 2), "n_points": (C, J), "fallback": (C, J)}
        if J != N_JOINTS:
            raise ValueError(f"DetectionErrorModel.weights: expected (C, 17, M), found {self.weights.shape}")
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"DetectionErrorModel.{name}: expected shape {shape}, found "
                                 f"{getattr(self, name).shape}")
        n_bins = 0 if self.confidence_edges is None else len(self.confidence_edges) - 1
        if C != 1 + n_bins:
            raise ValueError(f"DetectionErrorModel: {C} mixture slots for {n_bins} confidence bins "
                             f"(expected {1 + n_bins})")
        if not np.allclose(self.weights.sum(-1), 1.0, atol=1e-6) or (self.stds <= 0).any():
            raise ValueError("DetectionErrorModel: weights must sum to 1 per joint and stds be > 0")

    @property
    def n_kernels(self) -> int:
        return self.weights.shape[-1]

    @property
    def conditioned(self) -> bool:
        return self.confidence_edges is not None

    def slot(self, confidence: np.ndarray | None) -> np.ndarray | None:
        """(N,17) mixture slot of each joint: its confidence bin, or 0 (unconditional)."""
        if confidence is None or not self.conditioned:
            return None
        c = np.asarray(confidence, np.float64)
        edges = self.confidence_edges
        b = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, len(edges) - 2)
        return np.where(np.isfinite(c), b + 1, 0)

    def modes_for(self, keypoints: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
        """(N,17,M,5) float32 modes [weight, mean_u, mean_v, std_u, std_v] px around the detections.

        Kernel means are keypoint - residual mean (the residual is detection - truth). Joints with a
        NaN keypoint, or confidence <= 0 when `confidence` is given, get weight 0 everywhere (a
        missing joint, as `pose_init.clean_modes` expects). With a conditioned model, `confidence`
        picks each joint's bin.
        """
        kp = np.asarray(keypoints, np.float32)
        if kp.ndim != 3 or kp.shape[1:] != (N_JOINTS, 2):
            raise ValueError(f"keypoints: expected shape (N, 17, 2) px, found {kp.shape}")
        if confidence is not None and np.shape(confidence) != kp.shape[:2]:
            raise ValueError(f"confidence: expected shape {kp.shape[:2]}, found {np.shape(confidence)}")
        slot = self.slot(confidence)
        w_all, mu_all, sd_all = (a.astype(np.float32) for a in (self.weights, self.means, self.stds))
        if slot is None:  # one mixture per joint: broadcast views, no per-row copies
            w, mu, sd = w_all[0][None], mu_all[0][None], sd_all[0][None]
        else:
            joints = np.arange(N_JOINTS)
            w, mu, sd = w_all[slot, joints], mu_all[slot, joints], sd_all[slot, joints]
        present = np.isfinite(kp).all(-1)
        if confidence is not None:
            present &= np.asarray(confidence, np.float64) > 0
        out = np.empty((len(kp), N_JOINTS, self.n_kernels, 5), np.float32)
        out[..., 0] = np.where(present[..., None], w, np.float32(0.0))
        out[..., 1:3] = kp[:, :, None, :] - mu
        out[..., 3:5] = sd
        return out

    def to_dict(self) -> dict:
        """Plain lists, floats, ints, bools and strings (safe for `torch.load(weights_only=True)`)."""
        return {
            "format": FORMAT,
            "residual": "detection - ground-truth projection, pixels",
            "n_kernels": int(self.n_kernels),
            "confidence_edges": None if self.confidence_edges is None else [float(e) for e in self.confidence_edges],
            "weights": self.weights.tolist(),
            "means": self.means.tolist(),
            "stds": self.stds.tolist(),
            "n_points": self.n_points.tolist(),
            "fallback": self.fallback.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "DetectionErrorModel":
        if d.get("format") != FORMAT:
            raise ValueError(f"not a detection-error model: format {d.get('format')!r}, expected {FORMAT!r}")
        return cls(weights=np.asarray(d["weights"]), means=np.asarray(d["means"]), stds=np.asarray(d["stds"]),
                   n_points=np.asarray(d["n_points"]), fallback=np.asarray(d["fallback"]),
                   confidence_edges=None if d.get("confidence_edges") is None else np.asarray(d["confidence_edges"]))


def residuals(keypoints: np.ndarray, ground_truth: np.ndarray) -> np.ndarray:
    """(N,17,2) detection - ground truth, pixels (NaN where either is missing)."""
    kp = np.asarray(keypoints, np.float64)
    gt = np.asarray(ground_truth, np.float64)
    if kp.shape != gt.shape or kp.ndim != 3 or kp.shape[1:] != (N_JOINTS, 2):
        raise ValueError(f"keypoints and ground_truth: expected equal shapes (N, 17, 2), found {kp.shape}, {gt.shape}")
    return kp - gt


def _bin_edges(conf: np.ndarray, bins: int | Sequence[float]) -> np.ndarray:
    if isinstance(bins, (int, np.integer)):
        if bins < 1:
            raise ValueError(f"confidence_bins must be >= 1, got {bins}")
        finite = conf[np.isfinite(conf)]
        if finite.size == 0:
            raise ValueError("confidence_bins: no finite confidence to place bin edges")
        edges = np.quantile(finite, np.linspace(0, 1, int(bins) + 1))
        edges[0], edges[-1] = min(0.0, edges[0]), max(1.0, edges[-1])
        edges = np.unique(edges)
        if len(edges) < 2:
            edges = np.array([0.0, 1.0])
        return edges
    edges = np.asarray(bins, np.float64)
    if edges.ndim != 1 or len(edges) < 2 or (np.diff(edges) <= 0).any():
        raise ValueError(f"confidence_bins: expected increasing edges, found {edges}")
    return edges


def fit_detection_error(
    keypoints: np.ndarray,
    ground_truth: np.ndarray,
    *,
    confidence: np.ndarray | None = None,
    n_kernels: int = 3,
    confidence_bins: int | Sequence[float] | None = None,
    min_points_per_bin: int = 200,
    max_points: int = 50_000,
    n_iter: int = 100,
    tol: float = 1e-5,
    reg_covar: float = 0.25,
    n_init: int = 4,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> DetectionErrorModel:
    """Fit the error model on TRAINING rows: detections (N,17,2) px against ground truth (N,17,2) px.

    confidence (N,17) and confidence_bins (a bin count, quantiles of the training confidence, or
    explicit edges) give one mixture per bin and joint; bins with fewer than `min_points_per_bin`
    finite residuals fall back to the joint's unconditional mixture. At most `max_points` residuals
    per mixture are used (a seeded random subset). reg_covar: px^2 floor on every kernel variance.
    All mixtures are fitted in one batched EM call (zero-weight padding for unequal point counts).
    """
    res = residuals(keypoints, ground_truth)
    if n_kernels < 1:
        raise ValueError(f"n_kernels must be >= 1, got {n_kernels}")
    edges = None
    conf = None
    if confidence_bins is not None:
        if confidence is None:
            raise ValueError("confidence_bins needs confidence (N,17); a file without scores has none")
        conf = np.asarray(confidence, np.float64)
        if conf.shape != res.shape[:2]:
            raise ValueError(f"confidence: expected shape {res.shape[:2]}, found {conf.shape}")
        edges = _bin_edges(conf, confidence_bins)
    rng = np.random.default_rng(seed)
    valid = np.isfinite(res).all(-1)  # (N,17)
    C = 1 if edges is None else len(edges)
    point_sets: list[np.ndarray] = []
    slots: list[tuple[int, int]] = []
    n_points = np.zeros((C, N_JOINTS), np.int64)
    fallback = np.zeros((C, N_JOINTS), bool)
    for c in range(C):
        for j in range(N_JOINTS):
            mask = valid[:, j]
            if c > 0:
                b = np.clip(np.searchsorted(edges, conf[:, j], side="right") - 1, 0, len(edges) - 2)
                mask = mask & np.isfinite(conf[:, j]) & (b == c - 1)
            idx = np.flatnonzero(mask)
            n_points[c, j] = len(idx)
            if c == 0 and len(idx) < max(n_kernels, 2):
                raise ValueError(f"joint {j}: {len(idx)} finite residuals, need at least {max(n_kernels, 2)}")
            if c > 0 and len(idx) < min_points_per_bin:
                fallback[c, j] = True
                continue
            if len(idx) > max_points:
                idx = np.sort(rng.choice(idx, max_points, replace=False))
            point_sets.append(res[idx, j])
            slots.append((c, j))
    P = max(len(p) for p in point_sets)
    pts = np.zeros((len(point_sets), P, 2))
    wts = np.zeros((len(point_sets), P))
    for k, p in enumerate(point_sets):
        pts[k, :len(p)] = p
        wts[k, :len(p)] = 1.0
    device = torch.device(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    fit = fit_gmm(torch.as_tensor(pts, device=device), torch.as_tensor(wts, device=device), n_kernels,
                  n_iter=n_iter, tol=tol, reg_covar=reg_covar, generator=gen, n_init=n_init, dtype=torch.float64)
    order = torch.argsort(fit.weights, dim=1, descending=True)
    w = torch.gather(fit.weights, 1, order).cpu().numpy()
    mu = torch.gather(fit.means, 1, order.unsqueeze(-1).expand(-1, -1, 2)).cpu().numpy()
    var = torch.gather(fit.variances, 1, order.unsqueeze(-1).expand(-1, -1, 2)).cpu().numpy()

    weights = np.zeros((C, N_JOINTS, n_kernels))
    means = np.zeros((C, N_JOINTS, n_kernels, 2))
    stds = np.ones((C, N_JOINTS, n_kernels, 2))
    for k, (c, j) in enumerate(slots):
        weights[c, j], means[c, j], stds[c, j] = w[k] / w[k].sum(), mu[k], np.sqrt(var[k])
    for c, j in zip(*np.nonzero(fallback)):
        weights[c, j], means[c, j], stds[c, j] = weights[0, j], means[0, j], stds[0, j]
    return DetectionErrorModel(weights=weights, means=means, stds=stds, n_points=n_points, fallback=fallback,
                               confidence_edges=edges)


def fit_from_attached(poses, attached, *, confidence_bins: int | Sequence[float] | None = None,
                      **kwargs) -> DetectionErrorModel:
    """Fit on a training PoseSet and the `datasets.files_2d.attach_2d` result for it.

    The ground truth is `poses.subset(attached.keep).pose2d` (the projection of the mocap); scores are
    used for bins only when the file has them (`attached.has_confidence`).
    """
    gt = poses.subset(attached.keep).pose2d
    use_conf = attached.has_confidence and confidence_bins is not None
    return fit_detection_error(attached.keypoints, gt, confidence=attached.confidence if use_conf else None,
                               confidence_bins=confidence_bins if use_conf else None, **kwargs)


__all__ = ["DetectionErrorModel", "fit_detection_error", "fit_from_attached", "residuals"]
