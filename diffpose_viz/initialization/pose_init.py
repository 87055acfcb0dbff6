"""Pose-specific initialization H_K: a per-joint 3D GMM for every input frame.

Our reconstruction of DiffPose's initialization (the official code never released it; see
docs/INITIALIZATION.md): x, y come from the 2D detector's heatmap modes, z from a depth
prior fitted on training poses. Per frame and joint we draw S samples (u, v) from the 2D
mode mixture and z_rel from the depth prior, back-project them with the pinhole intrinsics
at depth Z_root + z_rel, subtract the back-projected root keypoint (so the state is
camera-frame, root-relative metres), and fit an M-kernel diagonal GMM with the batched EM.

Inputs are plain arrays: `modes` (B,17,Q,5) = [weight, mu_u, mu_v, std_u, std_v] in pixels
(the `Detections2D.modes` layout), intrinsics (4,) or (B,4) = [fx, fy, cx, cy] in pixels.
Lens distortion is ignored (see INITIALIZATION.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from diffpose_viz.skeleton import H36M17
from diffpose_viz.initialization.depth_prior import DepthPrior
from diffpose_viz.initialization.gmm_em import fit_gmm

Tensor = torch.Tensor
N_JOINTS = 17
_PARENTS = np.array(H36M17.parents)
_BONE_PARENTS = np.array([p for p, _ in H36M17.bones])
_BONE_CHILDREN = np.array([c for _, c in H36M17.bones])


@dataclass
class InitConfig:
    n_kernels: int = 5  # M, kernels per joint in H_K (paper: M = 5, unverified)
    n_samples: int = 128  # S, Monte-Carlo samples per joint fed to EM
    em_iters: int = 30
    em_tol: float = 1e-5
    em_n_init: int = 1
    reg_covar: float = 1e-5  # m^2 floor on every 3D variance (about 3 mm std)
    root_variance: float = 1e-8  # m^2; the root is fixed at the origin
    depth_prior_components: int = 3  # used by fit_depth_prior()
    min_std_px: float = 1.0  # floor on every 2D mode std
    occluded_std_px: float = 40.0  # floor on the 2D std of missing/occluded joints ...
    occluded_std_m: float = 0.2  # ... or this many metres at the person's depth, whichever is larger
    widen_occluded: bool = True  # occluded-but-detected joints get the occluded floor too
    confidence_threshold: float = 0.05  # below this a joint counts as missing
    min_bones_for_depth: int = 4  # visible bones needed to estimate Z_root from the 2D scale
    root_depth_range: tuple[float, float] = (0.5, 50.0)  # clamp on estimated root depths, metres
    chunk_size: int = 256  # frames per EM batch (memory ~ chunk*16*S*M*3 floats)
    em_dtype: str = "float32"
    seed: int = 0  # used when no generator is passed
    # Where each joint's root-relative z comes from: "prior" = the depth prior fitted on training poses;
    # "context" = the pre-trained context encoder phi_ST's prediction (mean) with its validation residual
    # spread (method `diffpose` only; see diffpose_viz/methods/two_stage.py).
    depth_source: Literal["prior", "context"] = "prior"


@dataclass
class PoseGMM:
    """H_K: per-frame, per-joint diagonal GMMs in camera-frame root-relative metres.

    weights (B,17,M), means (B,17,M,3), variances (B,17,M,3). root_depth (B,) is the Z_root the
    samples were back-projected at; root_depth_source (B,) int8: 0 = estimated from the 2D
    scale, 1 = prior fallback, 2 = oracle (given by the caller).
    """

    weights: Tensor
    means: Tensor
    variances: Tensor
    root_depth: Tensor | None = None
    root_depth_source: Tensor | None = None
    missing: Tensor | None = None  # (B,17) bool: joint had no usable 2D evidence

    ORACLE, FROM_SCALE, FALLBACK = 2, 0, 1

    def __post_init__(self) -> None:
        B, J, M = self.weights.shape
        if J != N_JOINTS or self.means.shape != (B, J, M, 3) or self.variances.shape != (B, J, M, 3):
            raise ValueError(f"PoseGMM: expected weights (B,17,M), means/variances (B,17,M,3); found "
                             f"{tuple(self.weights.shape)}, {tuple(self.means.shape)}, {tuple(self.variances.shape)}")

    def __len__(self) -> int:
        return self.weights.shape[0]

    @property
    def n_kernels(self) -> int:
        return self.weights.shape[-1]

    @property
    def device(self) -> torch.device:
        return self.means.device

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """n poses per frame, kernels drawn independently per joint -> (poses (B,n,17,3), kernel (B,n,17))."""
        B, J, M = self.weights.shape
        kernel = torch.multinomial(self.weights.reshape(B * J, M), n, replacement=True, generator=generator)
        kernel = kernel.view(B, J, n)
        idx = kernel.unsqueeze(-1).expand(B, J, n, 3)
        mu = torch.gather(self.means, 2, idx)
        std = torch.gather(self.variances, 2, idx).sqrt()
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return (mu + std * eps).permute(0, 2, 1, 3), kernel.permute(0, 2, 1)

    def mean(self) -> Tensor:
        """Mixture mean per joint (B,17,3): the 'initialization only' baseline pose."""
        return (self.weights.unsqueeze(-1) * self.means).sum(2)

    def marginal_variance(self) -> Tensor:
        """Per-joint, per-axis variance of the whole mixture (B,17,3)."""
        w = self.weights.unsqueeze(-1)
        second = (w * (self.variances + self.means ** 2)).sum(2)
        return (second - self.mean() ** 2).clamp_min(0)

    def log_prob(self, poses: Tensor) -> Tensor:
        """Per-joint log-density of poses (B,n,17,3) -> (B,n,17)."""
        x = poses.to(self.means).unsqueeze(3)  # (B,n,17,1,3)
        var = self.variances.unsqueeze(1)
        lp = -0.5 * (torch.log(2 * torch.pi * var) + (x - self.means.unsqueeze(1)) ** 2 / var).sum(-1)
        return torch.logsumexp(lp + torch.log(self.weights).unsqueeze(1), -1)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "PoseGMM":
        def mv(t):
            if t is None:
                return None
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return PoseGMM(mv(self.weights), mv(self.means), mv(self.variances), mv(self.root_depth),
                       mv(self.root_depth_source), mv(self.missing))

    def select(self, idx) -> "PoseGMM":
        """Subset of frames by index array, slice or boolean mask."""
        if isinstance(idx, np.ndarray):
            idx = torch.from_numpy(idx)
        if isinstance(idx, torch.Tensor):
            idx = idx.to(self.weights.device)
        if isinstance(idx, int):
            idx = [idx]
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return PoseGMM(pick(self.weights), pick(self.means), pick(self.variances), pick(self.root_depth),
                       pick(self.root_depth_source), pick(self.missing))

    def to_numpy(self) -> dict[str, np.ndarray]:
        out = {"weights": self.weights, "means": self.means, "variances": self.variances,
               "root_depth": self.root_depth, "root_depth_source": self.root_depth_source, "missing": self.missing}
        return {k: v.detach().cpu().numpy() for k, v in out.items() if v is not None}


# --------------------------------------------------------------------------- 2D preparation


def intrinsics_from_camera(camera) -> np.ndarray:
    """[fx, fy, cx, cy] pixels from a `diffpose_viz.camera.Camera`."""
    return np.array([*camera.focal, *camera.center], dtype=np.float64)


def _intrinsics(intrinsics, B: int) -> np.ndarray:
    k = np.asarray(intrinsics, dtype=np.float64)
    if k.shape == (4,):
        k = np.tile(k, (B, 1))
    if k.shape != (B, 4):
        raise ValueError(f"intrinsics: expected (4,) or ({B}, 4) = [fx, fy, cx, cy] pixels, found {k.shape}")
    if not np.isfinite(k).all() or (k[:, :2] <= 0).any():
        raise ValueError("intrinsics: focal lengths must be finite and > 0")
    return k


@dataclass
class Prepared2D:
    """Cleaned 2D evidence. modes (B,17,Q,5) has no NaN; missing joints carry one wide mode."""

    modes: np.ndarray
    keypoints: np.ndarray  # (B,17,2) mode-weighted mean, or fallback centre for missing joints
    missing: np.ndarray  # (B,17) bool
    visible: np.ndarray  # (B,17) bool: usable for scale and clustering (not missing, not occluded)
    extra: dict = field(default_factory=dict)


def _validate_modes(modes) -> np.ndarray:
    m = np.asarray(modes, dtype=np.float64)
    if m.ndim != 4 or m.shape[1] != N_JOINTS or m.shape[3] != 5:
        raise ValueError(f"modes: expected shape (B, 17, Q, 5) = [weight, mu_u, mu_v, std_u, std_v] px, found {m.shape}")
    return m


def _optional(a, B: int, name: str, dtype, default):
    if a is None:
        return np.full((B, N_JOINTS), default, dtype=dtype)
    a = np.asarray(a)
    if a.shape != (B, N_JOINTS):
        raise ValueError(f"{name}: expected shape ({B}, 17), found {a.shape}")
    return a.astype(dtype)


def clean_modes(modes, confidence=None, occluded=None, *, min_std_px: float = 1.0,
                confidence_threshold: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Zero the weight of unusable modes and flag missing joints.

    Returns (modes (B,17,Q,5) with NaN replaced and weights renormalised, keypoints (B,17,2)
    mode-weighted means with NaN where missing, missing (B,17), visible (B,17)).
    """
    m = _validate_modes(modes).copy()
    B = len(m)
    conf = _optional(confidence, B, "confidence", np.float64, 1.0)
    occ = _optional(occluded, B, "occluded", bool, False)
    w = m[..., 0]
    ok = np.isfinite(m[..., 1:3]).all(-1) & np.isfinite(w) & (w > 0)
    w = np.where(ok, w, 0.0)
    total = w.sum(-1)
    missing = (total <= 0) | ~np.isfinite(conf) | (conf < confidence_threshold)
    w = np.where(missing[..., None], 0.0, w / np.where(total > 0, total, 1.0)[..., None])
    m[..., 0] = w
    m[..., 1:3] = np.where(ok[..., None], m[..., 1:3], 0.0)
    std = np.where(np.isfinite(m[..., 3:5]), np.abs(m[..., 3:5]), 0.0)
    m[..., 3:5] = np.maximum(std, min_std_px)
    kp = (w[..., None] * m[..., 1:3]).sum(2)
    kp[missing] = np.nan
    return m, kp, missing, ~missing & ~occ


def estimate_root_depth(keypoints_px: np.ndarray, visible: np.ndarray, focal_px: np.ndarray, prior: DepthPrior,
                        *, min_bones: int = 4, depth_range: tuple[float, float] = (0.5, 50.0)
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Z_root ~ f * sum(prior xy bone lengths) / sum(2D bone lengths) over bones with both ends visible.

    Returns (Z_root (B,) metres, from_scale (B,) bool); frames with fewer than min_bones usable
    bones get the prior's mean root depth (from_scale False).
    """
    kp = np.asarray(keypoints_px, np.float64)
    vis = np.asarray(visible, bool)
    both = vis[:, _BONE_PARENTS] & vis[:, _BONE_CHILDREN]  # (B,16)
    l2d = np.linalg.norm(kp[:, _BONE_CHILDREN] - kp[:, _BONE_PARENTS], axis=-1)
    l2d = np.where(both, np.nan_to_num(l2d), 0.0).sum(1)
    lxy = (both * prior.bone_length_xy[None]).sum(1)
    ok = (both.sum(1) >= min_bones) & (l2d > 0)
    z = np.where(ok, np.asarray(focal_px, np.float64) * lxy / np.where(ok, l2d, 1.0), prior.root_depth_mean)
    return np.clip(z, *depth_range), ok


def _fallback_centres(kp: np.ndarray, missing: np.ndarray, principal: np.ndarray) -> np.ndarray:
    """Centre for each missing joint: its nearest present ancestor; root: mean of present joints."""
    out = kp.copy()
    present = ~missing
    n = present.sum(1)
    mean_present = np.where(n[:, None] > 0, np.nansum(np.where(present[..., None], kp, 0), 1) / np.maximum(n, 1)[:, None],
                            principal)
    out[:, 0] = np.where(missing[:, :1], mean_present, kp[:, 0])
    for j in range(1, N_JOINTS):  # parents precede children, so one pass resolves chains
        out[:, j] = np.where(missing[:, j:j + 1], out[:, _PARENTS[j]], kp[:, j])
    return out


def prepare_2d(modes, intrinsics, prior: DepthPrior, *, confidence=None, occluded=None, root_depth=None,
               config: InitConfig = InitConfig()) -> tuple[Prepared2D, np.ndarray, np.ndarray, np.ndarray]:
    """Clean the 2D modes, estimate Z_root, and give missing joints a wide fallback mode.

    Returns (Prepared2D, intrinsics (B,4), Z_root (B,), root_depth_source (B,) int8).
    """
    m, kp, missing, visible = clean_modes(modes, confidence, occluded, min_std_px=config.min_std_px,
                                          confidence_threshold=config.confidence_threshold)
    B = len(m)
    K = _intrinsics(intrinsics, B)
    focal = K[:, :2].mean(1)
    if root_depth is not None:
        z_root = np.asarray(root_depth, np.float64).reshape(-1)
        if z_root.shape != (B,) or not np.isfinite(z_root).all() or (z_root <= 0).any():
            raise ValueError(f"root_depth (oracle): expected ({B},) finite positive metres, found {z_root.shape}")
        source = np.full(B, PoseGMM.ORACLE, np.int8)
    else:
        z_root, ok = estimate_root_depth(kp, visible, focal, prior, min_bones=config.min_bones_for_depth,
                                         depth_range=config.root_depth_range)
        source = np.where(ok, PoseGMM.FROM_SCALE, PoseGMM.FALLBACK).astype(np.int8)
    wide = np.maximum(config.occluded_std_px, config.occluded_std_m * focal / z_root)  # (B,) px
    centres = _fallback_centres(kp, missing, K[:, 2:4])
    # Missing joints: a single wide mode around the fallback centre.
    fallback = np.zeros_like(m[:, :, :1])
    fallback[..., 0] = 1.0
    fallback[..., 1:3] = centres[:, :, None]
    fallback[..., 3:5] = wide[:, None, None, None]
    m[:, :, :1] = np.where(missing[:, :, None, None], fallback, m[:, :, :1])
    if config.widen_occluded:
        occ = ~missing & ~visible
        m[..., 3:5] = np.where(occ[:, :, None, None], np.maximum(m[..., 3:5], wide[:, None, None, None]), m[..., 3:5])
    return Prepared2D(m, centres, missing, visible), K, z_root, source


# --------------------------------------------------------------------------- H_K


def sample_modes(modes: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
    """Draw n (u, v) per joint from (B,J,Q,5) mode mixtures -> (B,J,n,2)."""
    B, J, Q, _ = modes.shape
    q = torch.multinomial(modes[..., 0].reshape(B * J, Q), n, replacement=True, generator=generator).view(B, J, n)
    idx = q.unsqueeze(-1).expand(B, J, n, 5)
    picked = torch.gather(modes, 2, idx)
    eps = torch.randn((B, J, n, 2), generator=generator, dtype=modes.dtype, device=modes.device)
    return picked[..., 1:3] + picked[..., 3:5] * eps


def _sample_depth(w: Tensor, mu: Tensor, var: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
    """(B,J,Md) depth mixtures -> (B,J,n) samples."""
    B, J, Md = w.shape
    k = torch.multinomial(w.reshape(B * J, Md), n, replacement=True, generator=generator).view(B, J, n)
    eps = torch.randn((B, J, n), generator=generator, dtype=mu.dtype, device=mu.device)
    return torch.gather(mu, 2, k) + torch.gather(var, 2, k).sqrt() * eps


def build_pose_gmm(modes, intrinsics, prior: DepthPrior, *, confidence=None, occluded=None, root_depth=None,
                   config: InitConfig = InitConfig(), generator: torch.Generator | None = None,
                   device: str | torch.device = "cpu", z_mean=None, z_std=None) -> PoseGMM:
    """H_K for B frames from 2D heatmap modes (B,17,Q,5) px and intrinsics [fx,fy,cx,cy].

    root_depth (B,) metres: the known camera-frame root depth (ORACLE information; flagged in
    PoseGMM.root_depth_source). Without it Z_root is estimated from the 2D scale.
    z_mean, z_std (B,17) metres: when given, each joint's root-relative z is drawn from N(z_mean, z_std^2)
    (e.g. a pre-trained lifter's prediction and its residual spread) instead of the depth prior; x, y
    still come from the 2D modes back-projected at that depth. The prior still gives Z_root.
    generator must live on `device`; without one, a generator seeded with config.seed is used.
    """
    device = torch.device(device)
    prep, K, z_root, source = prepare_2d(modes, intrinsics, prior, confidence=confidence, occluded=occluded,
                                         root_depth=root_depth, config=config)
    if (z_mean is None) != (z_std is None):
        raise ValueError("z_mean and z_std: give both or neither")
    if z_mean is not None:
        z_mean = np.asarray(z_mean, np.float64)
        z_std = np.asarray(z_std, np.float64)
        if z_mean.shape != (len(K), N_JOINTS) or z_std.shape != z_mean.shape:
            raise ValueError(f"z_mean, z_std: expected ({len(K)}, 17) metres, found {z_mean.shape}, {z_std.shape}")
        if not (np.isfinite(z_mean).all() and np.isfinite(z_std).all() and (z_std >= 0).all()):
            raise ValueError("z_mean, z_std: expected finite values and z_std >= 0")
        # One depth kernel per joint: the same sampler as the prior's mixture.
        dw, dmu, dvar = np.ones_like(z_mean)[..., None], z_mean[..., None], (z_std ** 2)[..., None]
    else:
        dw, dmu, dvar = prior.mixture_for(prep.keypoints, prep.visible, n_frames=len(K))
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(config.seed)
    em_dtype = getattr(torch, config.em_dtype)
    B, M, S = len(K), config.n_kernels, config.n_samples
    f64 = dict(dtype=torch.float64, device=device)
    weights = torch.empty(B, N_JOINTS, M, dtype=torch.float32, device=device)
    means = torch.empty(B, N_JOINTS, M, 3, dtype=torch.float32, device=device)
    variances = torch.empty_like(means)
    for s in range(0, B, config.chunk_size):
        sl = slice(s, min(s + config.chunk_size, B))
        b = sl.stop - sl.start
        modes_t = torch.as_tensor(prep.modes[sl], **f64)
        k = torch.as_tensor(K[sl], **f64)
        zr = torch.as_tensor(z_root[sl], **f64)
        uv = sample_modes(modes_t[:, 1:], S, generator)  # (b,16,S,2), root excluded
        z_rel = _sample_depth(torch.as_tensor(np.array(dw[sl, 1:], copy=True), **f64),
                              torch.as_tensor(np.array(dmu[sl, 1:], copy=True), **f64),
                              torch.as_tensor(np.array(dvar[sl, 1:], copy=True), **f64), S, generator)
        depth = (zr.view(b, 1, 1) + z_rel).clamp_min(0.1)  # never behind the camera
        f, c = k[:, None, None, :2], k[:, None, None, 2:]
        ray = (uv - c) / f  # (b,16,S,2) normalised image coordinates
        root_ray = (torch.as_tensor(prep.keypoints[sl, 0], **f64) - k[:, 2:]) / k[:, :2]  # (b,2)
        xy = ray * depth.unsqueeze(-1) - (root_ray * zr.view(b, 1)).view(b, 1, 1, 2)
        pts = torch.cat([xy, (depth - zr.view(b, 1, 1)).unsqueeze(-1)], -1)  # (b,16,S,3)
        fit = fit_gmm(pts.reshape(b * 16, S, 3).to(em_dtype), None, M, n_iter=config.em_iters, tol=config.em_tol,
                      reg_covar=config.reg_covar, generator=generator, n_init=config.em_n_init)
        weights[sl, 1:] = fit.weights.view(b, 16, M).float()
        means[sl, 1:] = fit.means.view(b, 16, M, 3).float()
        variances[sl, 1:] = fit.variances.view(b, 16, M, 3).float()
    weights[:, 0] = 1.0 / M
    means[:, 0] = 0.0
    variances[:, 0] = config.root_variance
    return PoseGMM(weights, means, variances, torch.as_tensor(z_root, dtype=torch.float32, device=device),
                   torch.as_tensor(source, device=device), torch.as_tensor(prep.missing, device=device))


def modes_from_keypoints(keypoints_2d, pixel_noise_std: float | np.ndarray = 5.0, confidence=None,
                         n_modes: int = 1) -> np.ndarray:
    """(B,17,n_modes,5) modes [weight, mean_u, mean_v, std_u, std_v] px from 2D keypoints (B,17,2) px: one
    isotropic peak per joint (mode 0, weight 1); further modes repeat it with weight 0, so every producer
    of this layout (simulated detector, files, MediaPipe) gives consumers the same Q.

    The one convention for a missing joint (NaN keypoint or confidence 0): weight 0 on every mode.
    """
    kp = np.asarray(keypoints_2d, np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (N_JOINTS, 2):
        raise ValueError(f"keypoints_2d: expected shape (B, 17, 2) pixels, found {kp.shape}")
    if n_modes < 1:
        raise ValueError(f"n_modes: expected >= 1, found {n_modes}")
    std = np.broadcast_to(np.asarray(pixel_noise_std, np.float64), kp.shape[:2])
    out = np.zeros((len(kp), N_JOINTS, n_modes, 5))
    present = np.isfinite(kp).all(-1)
    if confidence is not None:
        present &= np.asarray(confidence, np.float64) > 0
    out[..., 0, 0] = present
    out[..., 1:3] = kp[:, :, None, :]
    out[..., 3] = out[..., 4] = std[:, :, None]
    return out


def pose_gmm_from_keypoints(keypoints_2d, intrinsics, prior: DepthPrior, *, pixel_noise_std: float = 5.0,
                            confidence=None, occluded=None, root_depth=None, config: InitConfig = InitConfig(),
                            generator: torch.Generator | None = None, device: str | torch.device = "cpu") -> PoseGMM:
    """H_K from 2D keypoints with a fixed isotropic pixel noise (the GT-2D setting)."""
    modes = modes_from_keypoints(keypoints_2d, pixel_noise_std, confidence)
    return build_pose_gmm(modes, intrinsics, prior, confidence=confidence, occluded=occluded, root_depth=root_depth,
                          config=config, generator=generator, device=device)


def fit_depth_prior(pose3d_cam, config: InitConfig = InitConfig(), *, pose2d_px=None, conditional: bool = False,
                    root_depth=None, **kwargs) -> DepthPrior:
    """Convenience: fit the (conditional) depth prior with config.depth_prior_components kernels."""
    from diffpose_viz.initialization.depth_prior import ConditionalDepthPrior

    if conditional:
        return ConditionalDepthPrior.fit(pose3d_cam, pose2d_px, config.depth_prior_components,
                                         root_depth=root_depth, **kwargs)
    return DepthPrior.fit(pose3d_cam, config.depth_prior_components, root_depth=root_depth, **kwargs)


__all__ = ["InitConfig", "PoseGMM", "Prepared2D", "build_pose_gmm", "pose_gmm_from_keypoints", "modes_from_keypoints",
           "estimate_root_depth", "clean_modes", "prepare_2d", "sample_modes", "intrinsics_from_camera",
           "fit_depth_prior"]
