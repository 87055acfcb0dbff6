"""Per-joint root-relative depth priors fitted on training poses (the z part of H_K).

`DepthPrior`: one 1D GMM per joint of z_rel = z_joint - z_root (camera frame, metres).
`ConditionalDepthPrior`: the same, but per cluster of 2D pose shape. Clusters are k-means
centroids of normalised 2D poses (root-centred, divided by the pose's RMS radius, so they
are invariant to image position and scale); a frame uses the nearest centroid over its
visible joints. Clusters with too few training frames fall back to the unconditional prior.

Both also store body-scale statistics used to estimate the root depth from the 2D pose:
the mean 3D bone lengths, and the mean length of each bone's projection onto the camera's
xy-plane (the part a pinhole camera sees, so f * sum(xy-lengths) / sum(2D px lengths) is
an estimate of the root depth without the foreshortening bias of full 3D lengths).

Serialisation: `to_dict()` gives a flat dict of numpy arrays (checkpoint-friendly) and
`depth_prior_from_dict()` restores either class.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from diffpose_viz.skeleton import H36M17
from diffpose_viz.initialization.gmm_em import fit_gmm

_BONE_PARENTS = np.array([p for p, _ in H36M17.bones])
_BONE_CHILDREN = np.array([c for _, c in H36M17.bones])
#: Default floor on depth variances: (5 mm)^2.
DEFAULT_DEPTH_REG = 2.5e-5


def _check_poses(pose3d_cam: np.ndarray, name: str = "pose3d_cam") -> np.ndarray:
    p = np.asarray(pose3d_cam, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (17, 3):
        raise ValueError(f"{name}: expected shape (N, 17, 3) in metres, found {p.shape}")
    if not np.isfinite(p).all():
        bad = np.nonzero(~np.isfinite(p).all((1, 2)))[0][:5]
        raise ValueError(f"{name}: non-finite values in frames {bad.tolist()}")
    if len(p) == 0:
        raise ValueError(f"{name}: no frames")
    scale = np.abs(p - p[:, :1]).max()
    if scale > 10:
        raise ValueError(f"{name}: joints up to {scale:.1f} from the root; expected metres (mm given?)")
    return p - p[:, :1]  # make root-relative (no-op for already root-relative input)


def _fit_depth_gmms(z: np.ndarray, mask: np.ndarray | None, M: int, reg: float, seed: int,
                    device: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z (G, N) depth samples per group (optionally weighted by mask) -> weights, means, variances (G, M)."""
    g = torch.Generator(device=device).manual_seed(seed)
    pts = torch.as_tensor(z, dtype=torch.float64, device=device).unsqueeze(-1)
    w = None if mask is None else torch.as_tensor(mask, dtype=torch.float64, device=device)
    fit = fit_gmm(pts, w, M, n_iter=100, tol=1e-6, reg_covar=reg, generator=g, n_init=2)
    order = torch.argsort(fit.means[..., 0], dim=1)  # sort kernels by depth for readability
    take = lambda t: torch.gather(t, 1, order).cpu().numpy()  # noqa: E731
    return take(fit.weights), take(fit.means[..., 0]), take(fit.variances[..., 0])


def _body_stats(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    bones = p[:, _BONE_CHILDREN] - p[:, _BONE_PARENTS]
    return np.linalg.norm(bones, axis=-1).mean(0), np.linalg.norm(bones[..., :2], axis=-1).mean(0)


@dataclass
class DepthPrior:
    """Unconditional per-joint depth GMMs. Arrays: weights/means/variances (17, M) (metres, m^2)."""

    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    bone_length_3d: np.ndarray  # (16,) mean 3D bone length, metres, in H36M17.bones order
    bone_length_xy: np.ndarray  # (16,) mean length of each bone projected onto the camera xy-plane
    root_depth_mean: float  # metres; fallback root depth when the 2D pose gives no scale
    root_depth_std: float

    kind = "unconditional"

    @classmethod
    def fit(cls, pose3d_cam: np.ndarray, n_components: int = 3, *, root_depth: np.ndarray | None = None,
            max_frames: int = 50_000, reg_covar: float = DEFAULT_DEPTH_REG, seed: int = 0,
            device: str = "cpu") -> "DepthPrior":
        """pose3d_cam (N,17,3) camera-frame metres (root-relative or not); root_depth (N,) camera z of
        the root (for the fallback root depth; 5.5 m, the H36M average, when omitted)."""
        p = _check_poses(pose3d_cam)
        rng = np.random.default_rng(seed)
        if len(p) > max_frames:
            p = p[np.sort(rng.choice(len(p), max_frames, replace=False))]
        w, mu, var = _fit_depth_gmms(p[..., 2].T, None, n_components, reg_covar, seed, device)
        w[0], mu[0], var[0] = 1.0 / n_components, 0.0, reg_covar  # the root is exactly 0 by construction
        l3d, lxy = _body_stats(p)
        rd_mean, rd_std = 5.5, 1.0
        if root_depth is not None:
            rd = np.asarray(root_depth, dtype=np.float64).reshape(-1)
            rd_mean, rd_std = float(rd.mean()), float(rd.std())
        return cls(w, mu, var, l3d, lxy, rd_mean, rd_std)

    @property
    def n_components(self) -> int:
        return self.weights.shape[-1]

    def mixture_for(self, pose2d_px: np.ndarray | None = None, visible: np.ndarray | None = None,
                    n_frames: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Depth mixtures for B frames -> weights, means, variances, each (B, 17, M)."""
        B = n_frames if pose2d_px is None else len(pose2d_px)
        if B is None:
            raise ValueError("give pose2d_px or n_frames")
        rep = lambda a: np.broadcast_to(a, (B, *a.shape))  # noqa: E731
        return rep(self.weights), rep(self.means), rep(self.variances)

    def mean_depth(self) -> np.ndarray:
        """(17,) expected root-relative depth per joint."""
        return (self.weights * self.means).sum(-1)

    def log_prob(self, z_rel: np.ndarray, pose2d_px: np.ndarray | None = None) -> np.ndarray:
        """Log-density of z_rel (B,17) under the frame's per-joint mixtures -> (B,17)."""
        z = np.asarray(z_rel, dtype=np.float64)
        w, mu, var = self.mixture_for(pose2d_px, n_frames=len(z))
        lp = -0.5 * (np.log(2 * np.pi * var) + (z[..., None] - mu) ** 2 / var) + np.log(np.maximum(w, 1e-300))
        m = lp.max(-1, keepdims=True)
        return (m + np.log(np.exp(lp - m).sum(-1, keepdims=True)))[..., 0]

    def to_dict(self) -> dict[str, np.ndarray]:
        return {"kind": np.array(self.kind), "weights": self.weights, "means": self.means,
                "variances": self.variances, "bone_length_3d": self.bone_length_3d,
                "bone_length_xy": self.bone_length_xy,
                "root_depth": np.array([self.root_depth_mean, self.root_depth_std])}

    @classmethod
    def from_dict(cls, d: dict) -> "DepthPrior":
        try:
            return cls(np.asarray(d["weights"], np.float64), np.asarray(d["means"], np.float64),
                       np.asarray(d["variances"], np.float64), np.asarray(d["bone_length_3d"], np.float64),
                       np.asarray(d["bone_length_xy"], np.float64), float(d["root_depth"][0]),
                       float(d["root_depth"][1]))
        except KeyError as err:
            raise KeyError(f"depth prior dict lacks key {err}; has {sorted(d)}") from None


def normalise_pose2d(pose2d_px: np.ndarray, visible: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Root-centre and scale-normalise 2D poses (B,17,2) -> ((B,17,2), visible mask (B,17)).

    Centre: the root (joint 0) if visible, else the mean of visible joints. Scale: RMS distance
    of visible joints from that centre. Invisible joints are set to 0 and masked out.
    """
    x = np.asarray(pose2d_px, dtype=np.float64)
    if x.ndim != 3 or x.shape[1:] != (17, 2):
        raise ValueError(f"pose2d_px: expected shape (B, 17, 2) in pixels, found {x.shape}")
    vis = np.isfinite(x).all(-1) if visible is None else (np.asarray(visible, bool) & np.isfinite(x).all(-1))
    xz = np.where(vis[..., None], x, 0.0)
    n = vis.sum(1, keepdims=True)
    centre = np.where(vis[:, :1, None], xz[:, :1], xz.sum(1, keepdims=True) / np.maximum(n, 1)[..., None])
    d = np.where(vis[..., None], xz - centre, 0.0)
    rms = np.sqrt((d ** 2).sum((1, 2)) / np.maximum(n[:, 0], 1))
    return d / np.maximum(rms, 1e-9)[:, None, None], vis


@dataclass
class ConditionalDepthPrior(DepthPrior):
    """Depth GMMs per 2D-shape cluster. weights/means/variances (C, 17, M); centroids (C, 34)."""

    centroids: np.ndarray = None  # type: ignore[assignment]
    cluster_counts: np.ndarray = None  # type: ignore[assignment]

    kind = "conditional"

    @classmethod
    def fit(cls, pose3d_cam: np.ndarray, pose2d_px: np.ndarray | None = None, n_components: int = 3, *,
            n_clusters: int = 16, min_cluster_frames: int = 200, max_cluster_frames: int = 4000,
            root_depth: np.ndarray | None = None,
            max_frames: int = 50_000, reg_covar: float = DEFAULT_DEPTH_REG, seed: int = 0,
            device: str = "cpu") -> "ConditionalDepthPrior":
        """pose2d_px (N,17,2): the frames' 2D poses (pixels). If omitted, a pinhole projection of
        pose3d_cam placed at root_depth (or 5.5 m) is used, which is all the normalised shape needs."""
        from sklearn.cluster import KMeans

        p = _check_poses(pose3d_cam)
        if pose2d_px is None:
            rd = 5.5 if root_depth is None else np.asarray(root_depth, np.float64).reshape(-1, 1)
            z = p[..., 2] + rd
            pose2d_px = p[..., :2] / z[..., None]
        pose2d_px = np.asarray(pose2d_px, np.float64)
        if len(pose2d_px) != len(p):
            raise ValueError(f"pose2d_px has {len(pose2d_px)} frames but pose3d_cam has {len(p)}")
        base = DepthPrior.fit(p, n_components, root_depth=root_depth, max_frames=max_frames,
                              reg_covar=reg_covar, seed=seed, device=device)
        rng = np.random.default_rng(seed)
        if len(p) > max_frames:
            keep = np.sort(rng.choice(len(p), max_frames, replace=False))
            p, pose2d_px = p[keep], pose2d_px[keep]
        feats, _ = normalise_pose2d(pose2d_px)
        km = KMeans(n_clusters, n_init=3, random_state=seed).fit(feats.reshape(len(p), -1))
        labels = km.labels_
        counts = np.bincount(labels, minlength=n_clusters)
        # One batched EM call for all (cluster, joint) pairs. Each cluster's frames (at most
        # max_cluster_frames of them) are padded to a common length with zero-weight points.
        P = int(min(max(counts.max(), 1), max_cluster_frames))
        idx = np.zeros((n_clusters, P), dtype=np.int64)
        mask = np.zeros((n_clusters, P))
        for c in range(n_clusters):
            members = np.nonzero(labels == c)[0]
            if len(members) > P:
                members = rng.choice(members, P, replace=False)
            idx[c, : len(members)] = members
            mask[c, : len(members)] = 1.0
            if len(members) == 0:  # empty cluster: fit on anything, replaced by the base prior below
                mask[c] = 1.0
        z = p[idx][..., 2].transpose(0, 2, 1).reshape(n_clusters * 17, P)  # (C*17, P)
        w, mu, var = (a.reshape(n_clusters, 17, -1) for a in
                      _fit_depth_gmms(z, np.repeat(mask, 17, 0), n_components, reg_covar, seed, device))
        small = counts < min_cluster_frames
        w[small], mu[small], var[small] = base.weights, base.means, base.variances
        w[:, 0], mu[:, 0], var[:, 0] = 1.0 / n_components, 0.0, reg_covar
        return cls(w, mu, var, base.bone_length_3d, base.bone_length_xy, base.root_depth_mean,
                   base.root_depth_std, km.cluster_centers_.astype(np.float64), counts)

    def cluster_of(self, pose2d_px: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
        """Nearest centroid over each frame's visible joints -> (B,) cluster index."""
        f, vis = normalise_pose2d(pose2d_px, visible)
        c = self.centroids.reshape(1, -1, 17, 2)
        d = (((f[:, None] - c) ** 2).sum(-1) * vis[:, None]).sum(-1)  # (B, C)
        return d.argmin(1)

    def mixture_for(self, pose2d_px: np.ndarray | None = None, visible: np.ndarray | None = None,
                    n_frames: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if pose2d_px is None:
            raise ValueError("ConditionalDepthPrior.mixture_for needs the frames' 2D poses (pose2d_px)")
        k = self.cluster_of(pose2d_px, visible)
        return self.weights[k], self.means[k], self.variances[k]

    def unconditional(self) -> DepthPrior:
        """The cluster-count-weighted pooled prior (flattened to 17 x C*M kernels)."""
        pc = self.cluster_counts / self.cluster_counts.sum()
        w = (pc[:, None, None] * self.weights).transpose(1, 0, 2).reshape(17, -1)
        return DepthPrior(w / w.sum(-1, keepdims=True), self.means.transpose(1, 0, 2).reshape(17, -1),
                          self.variances.transpose(1, 0, 2).reshape(17, -1), self.bone_length_3d,
                          self.bone_length_xy, self.root_depth_mean, self.root_depth_std)

    def to_dict(self) -> dict[str, np.ndarray]:
        return {**super().to_dict(), "centroids": self.centroids, "cluster_counts": self.cluster_counts}

    @classmethod
    def from_dict(cls, d: dict) -> "ConditionalDepthPrior":
        base = DepthPrior.from_dict(d)
        if "centroids" not in d:
            raise KeyError(f"conditional depth prior dict lacks 'centroids'; has {sorted(d)}")
        return cls(base.weights, base.means, base.variances, base.bone_length_3d, base.bone_length_xy,
                   base.root_depth_mean, base.root_depth_std, np.asarray(d["centroids"], np.float64),
                   np.asarray(d["cluster_counts"]))


def depth_prior_from_dict(d: dict) -> DepthPrior:
    """Restore a prior saved with `to_dict()` (either kind)."""
    kind = str(np.asarray(d.get("kind", "unconditional")))
    if kind == "conditional":
        return ConditionalDepthPrior.from_dict(d)
    if kind == "unconditional":
        return DepthPrior.from_dict(d)
    raise ValueError(f"depth prior dict: unknown kind {kind!r}; expected 'unconditional' or 'conditional'")
