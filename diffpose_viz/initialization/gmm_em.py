"""Batched, weighted EM for many small diagonal-covariance Gaussian mixtures at once.

One call fits B independent mixtures (one per batch row), each with M components in D
dimensions, to P (optionally weighted) points. Everything is a tensor operation over
(B, P, M, D); the only Python loops are over EM iterations and, in k-means++ seeding,
over the M centres. Runs on whatever device the input tensors live on.

Conventions (chosen to match `sklearn.mixture.GaussianMixture(covariance_type="diag")`,
which the tests use as the oracle):
- `reg_covar` is *added* to every variance after each M-step, so it is the variance floor.
- `log_likelihood` is the (weighted) average per-point log-likelihood, like sklearn's `score`.
- Convergence: the change of that average between iterations is below `tol`.

Degenerate cases:
- A component whose total responsibility falls below `dead_mass` ("loses all its mass") is
  by default re-seeded (`on_empty="reseed"`) at the worst-explained point of its mixture
  (lowest log-likelihood; the 2nd-worst for a second dead component, and so on), with the
  mixture's overall variance and the mass of one point as its weight. `on_empty="drop"`
  instead sets its weight to exactly 0 and freezes its mean and variance.
- Zero-variance data: variances become `reg_covar`.
- Non-finite points or weights raise ValueError naming the offending batch indices.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch

Tensor = torch.Tensor
_LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class GMMFit:
    """B fitted diagonal GMMs. Shapes: weights (B,M), means (B,M,D), variances (B,M,D)."""

    weights: Tensor
    means: Tensor
    variances: Tensor
    log_likelihood: Tensor  # (B,) weighted mean log-likelihood per point at the final parameters
    n_iter: int  # EM iterations run
    converged: Tensor  # (B,) bool

    @property
    def n_components(self) -> int:
        return self.weights.shape[-1]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "GMMFit":
        def mv(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return replace(self, weights=mv(self.weights), means=mv(self.means), variances=mv(self.variances),
                       log_likelihood=mv(self.log_likelihood), converged=self.converged.to(device))


def _as_tensor(x, name: str, dtype: torch.dtype | None, device) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor or numpy array, got {type(x).__name__}")
    if not x.is_floating_point():
        x = x.double()
    return x.to(device=device if device is not None else x.device, dtype=dtype or x.dtype)


def _first_indices(mask: Tensor, k: int = 5) -> list[int]:
    return torch.nonzero(mask).flatten()[:k].tolist()


def _validate(points: Tensor, weights: Tensor | None, n_components: int) -> None:
    if points.ndim != 3:
        raise ValueError(f"points: expected shape (B, P, D), found {tuple(points.shape)}")
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    bad = ~torch.isfinite(points).all(dim=2).all(dim=1)
    if bad.any():
        idx = _first_indices(bad)
        raise ValueError(f"points contain NaN/inf in {int(bad.sum())} mixture(s); first batch indices: {idx}")
    if weights is None:
        return
    if weights.shape != points.shape[:2]:
        raise ValueError(f"weights: expected shape {tuple(points.shape[:2])} (B, P), found {tuple(weights.shape)}")
    bad = ~torch.isfinite(weights).all(dim=1) | (weights < 0).any(dim=1)
    if bad.any():
        raise ValueError(f"weights must be finite and >= 0; bad batch indices: {_first_indices(bad)}")
    empty = weights.sum(dim=1) <= 0
    if empty.any():
        raise ValueError(f"weights sum to 0 for batch indices {_first_indices(empty)}: nothing to fit")


def _reg_tensor(reg_covar: float | Tensor, B: int, D: int, like: Tensor) -> Tensor:
    """Variance floor as a (B or 1, 1, D) tensor."""
    reg = torch.as_tensor(reg_covar, dtype=like.dtype, device=like.device)
    if (reg < 0).any():
        raise ValueError("reg_covar must be >= 0")
    if reg.ndim == 0:
        reg = reg.expand(D)
    if reg.ndim == 1:
        if reg.shape[0] != D:
            raise ValueError(f"reg_covar: expected a scalar, ({D},) or ({B}, {D}); found {tuple(reg.shape)}")
        return reg.view(1, 1, D)
    if reg.shape != (B, D):
        raise ValueError(f"reg_covar: expected a scalar, ({D},) or ({B}, {D}); found {tuple(reg.shape)}")
    return reg.view(B, 1, D)


def _component_log_density(x: Tensor, means: Tensor, variances: Tensor) -> Tensor:
    """log N(x_p | mu_m, diag var_m) for x (B,P,D), means/variances (B,M,D) -> (B,P,M)."""
    # Expanded square, so the work is batched matmuls on (B,P,D) x (B,D,M) instead of a
    # (B,P,M,D) temporary; data are centred per mixture, which keeps the cancellation benign.
    prec = 1.0 / variances  # (B,M,D)
    feats = torch.cat([x * x, x], -1)  # (B,P,2D)
    coef = torch.cat([prec, -2.0 * means * prec], -1).transpose(1, 2)  # (B,2D,M)
    maha = (torch.bmm(feats, coef) + (means * means * prec).sum(-1).unsqueeze(1)).clamp_min(0.0)
    log_det = torch.log(variances).sum(-1)  # (B,M)
    return -0.5 * (x.shape[-1] * _LOG_2PI + log_det.unsqueeze(1) + maha)


def _e_step(x: Tensor, log_pi: Tensor, means: Tensor, variances: Tensor) -> tuple[Tensor, Tensor]:
    """Returns (log responsibilities (B,P,M), per-point log-likelihood (B,P))."""
    joint = _component_log_density(x, means, variances) + log_pi.unsqueeze(1)
    point_ll = torch.logsumexp(joint, dim=-1)
    return joint - point_ll.unsqueeze(-1), point_ll


def _m_step(x: Tensor, w: Tensor, resp: Tensor, reg: Tensor, tiny: float) -> tuple[Tensor, Tensor, Tensor]:
    """Weighted M-step. w (B,P) sums to 1 per row, resp (B,P,M). Returns mass (B,M), means, variances."""
    r = resp * w.unsqueeze(-1)  # (B,P,M)
    mass = r.sum(1)  # (B,M), sums to 1
    safe = mass.clamp_min(tiny).unsqueeze(-1)
    moments = torch.bmm(r.transpose(1, 2), torch.cat([x, x * x], -1)) / safe  # (B,M,2D), one matmul
    D = x.shape[-1]
    means, second = moments[..., :D], moments[..., D:]
    variances = (second - means * means).clamp_min(0.0) + reg
    return mass, means, variances


def _sample_index(probs: Tensor, generator: torch.Generator | None) -> Tensor:
    """One categorical draw per row of probs (B,P) (rows need not be normalised)."""
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def _init_centres(x: Tensor, w: Tensor, M: int, init: str, generator: torch.Generator | None) -> Tensor:
    B, P, D = x.shape
    rows = torch.arange(B, device=x.device)
    if init == "random_from_data":
        # Distinct points where possible (sampling without replacement among positive-weight points).
        n_pos = (w > 0).sum(1)
        if bool((n_pos >= M).all()):
            idx = torch.multinomial(w, M, replacement=False, generator=generator)
        else:
            idx = torch.multinomial(w, M, replacement=True, generator=generator)
        return x[rows.unsqueeze(1), idx]
    if init != "kmeans++":
        raise ValueError(f"init must be 'kmeans++' or 'random_from_data', got {init!r}")
    centres = [x[rows, _sample_index(w, generator)]]  # first centre ~ weights
    closest = ((x - centres[0].unsqueeze(1)) ** 2).sum(-1)  # (B,P)
    for _ in range(1, M):
        probs = w * closest
        # All points coincide with the chosen centres: fall back to sampling by weight.
        probs = torch.where(probs.sum(1, keepdim=True) > 0, probs, w)
        c = x[rows, _sample_index(probs, generator)]
        centres.append(c)
        closest = torch.minimum(closest, ((x - c.unsqueeze(1)) ** 2).sum(-1))
    return torch.stack(centres, 1)


def _lloyd(x: Tensor, w: Tensor, centres: Tensor, n_iter: int) -> Tensor:
    """Weighted hard k-means refinement of the seeds; an empty cluster keeps its old centre."""
    M = centres.shape[1]
    for _ in range(n_iter):
        onehot = torch.nn.functional.one_hot(torch.cdist(x, centres).argmin(-1), M).to(x.dtype)
        r = onehot * w.unsqueeze(-1)
        mass = r.sum(1).unsqueeze(-1)
        new = torch.einsum("bpm,bpd->bmd", r, x) / mass.clamp_min(torch.finfo(x.dtype).tiny)
        centres = torch.where(mass > 0, new, centres)
    return centres


def _reseed_dead(x: Tensor, w: Tensor, point_ll: Tensor, mass: Tensor, means: Tensor, variances: Tensor,
                 dead: Tensor, reg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Move dead components onto the worst-explained points (k-th dead -> k-th worst point)."""
    B, P, D = x.shape
    M = mass.shape[1]
    k = min(M, P)
    # Points without weight must never be chosen: give them +inf log-likelihood.
    score = torch.where(w > 0, point_ll, torch.full_like(point_ll, float("inf")))
    worst = torch.topk(score, k, dim=1, largest=False).indices  # (B,k)
    rank = (torch.cumsum(dead.long(), 1) - 1).clamp(0, k - 1)  # (B,M)
    pick = torch.gather(worst, 1, rank)
    new_means = torch.gather(x, 1, pick.unsqueeze(-1).expand(B, M, D))
    mu = (w.unsqueeze(-1) * x).sum(1, keepdim=True)
    data_var = (w.unsqueeze(-1) * (x - mu) ** 2).sum(1, keepdim=True) + reg  # (B,1,D)
    point_mass = torch.full_like(mass, 1.0 / P)  # restart with the mass of one average point
    means = torch.where(dead.unsqueeze(-1), new_means, means)
    variances = torch.where(dead.unsqueeze(-1), data_var.expand(B, M, D), variances)
    mass = torch.where(dead, point_mass, mass)
    return mass / mass.sum(1, keepdim=True), means, variances


def fit_gmm(
    points: Tensor | np.ndarray,
    weights: Tensor | np.ndarray | None,
    n_components: int,
    *,
    n_iter: int = 50,
    tol: float = 1e-4,
    reg_covar: float | Tensor = 1e-6,
    init: Literal["kmeans++", "random_from_data"] = "kmeans++",
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    on_empty: Literal["reseed", "drop"] = "reseed",
    dead_mass: float | None = None,
    kmeans_iters: int = 5,
    n_init: int = 1,
) -> GMMFit:
    """Fit B diagonal GMMs with M = n_components components each, by weighted EM.

    points (B,P,D); weights (B,P) non-negative (None = all equal; they are normalised per row).
    reg_covar: scalar, (D,) or (B,D) variance floor added after every M-step. dtype: compute
    dtype (e.g. torch.float64); default keeps the points' floating dtype. generator must live on
    the points' device. Data are centred per mixture internally for float32 accuracy.
    kmeans_iters: weighted Lloyd iterations after seeding (0 = seeds only, sklearn's
    'k-means++' / 'random_from_data'; sklearn's default 'kmeans' runs Lloyd to convergence).
    n_init: independent initialisations per mixture, run as one bigger batch; the one with the
    highest final log-likelihood is kept (as sklearn's n_init).
    """
    if n_init > 1:
        return _best_of(points, weights, n_components, n_init, n_iter=n_iter, tol=tol, reg_covar=reg_covar,
                        init=init, generator=generator, dtype=dtype, on_empty=on_empty, dead_mass=dead_mass,
                        kmeans_iters=kmeans_iters)
    device = points.device if isinstance(points, torch.Tensor) else None
    x = _as_tensor(points, "points", dtype, device)
    cdtype = x.dtype
    w = None if weights is None else _as_tensor(weights, "weights", cdtype, x.device)
    _validate(x, w, n_components)
    if on_empty not in ("reseed", "drop"):
        raise ValueError(f"on_empty must be 'reseed' or 'drop', got {on_empty!r}")
    B, P, D = x.shape
    M = n_components
    if w is None:
        w = torch.full((B, P), 1.0 / P, dtype=cdtype, device=x.device)
    else:
        w = w / w.sum(1, keepdim=True)
    reg = _reg_tensor(reg_covar, B, D, x)
    tiny = float(torch.finfo(cdtype).tiny) * 1e3
    if dead_mass is None:
        # Far below the mass of a single point but above rounding noise of the dtype.
        dead_mass = min(1e-3 / P, 100 * float(torch.finfo(cdtype).eps))

    shift = (w.unsqueeze(-1) * x).sum(1, keepdim=True)  # weighted centroid, (B,1,D)
    xc = x - shift
    frozen = torch.zeros(B, M, dtype=torch.bool, device=x.device)  # dropped components ("drop" mode)

    def handle_dead(mass, means, variances, point_ll):
        """Apply the on_empty policy; returns the new parameters and which rows changed."""
        dead = (mass < dead_mass) & ~frozen
        changed = dead.any(1)
        if not bool(changed.any()):
            return mass, means, variances, changed
        if on_empty == "drop":
            frozen.logical_or_(dead)
            mass = torch.where(frozen, torch.zeros_like(mass), mass)
            return mass / mass.sum(1, keepdim=True), means, variances, torch.zeros_like(changed)
        return (*_reseed_dead(xc, w, point_ll, mass, means, variances, dead, reg), changed)

    # Initial responsibilities: hard assignment to the nearest seed, then an M-step (as sklearn).
    centres = _lloyd(xc, w, _init_centres(xc, w, M, init, generator), kmeans_iters)
    nearest = torch.cdist(xc, centres).argmin(-1)  # (B,P)
    resp = torch.nn.functional.one_hot(nearest, M).to(cdtype)
    mass, means, variances = _m_step(xc, w, resp, reg, tiny)
    _, point_ll = _e_step(xc, torch.log(mass.clamp_min(tiny)), means, variances)
    mass, means, variances, _ = handle_dead(mass, means, variances, point_ll)
    prev_ll = torch.full((B,), -float("inf"), dtype=cdtype, device=x.device)
    converged = torch.zeros(B, dtype=torch.bool, device=x.device)

    it = 0
    for it in range(1, n_iter + 1):
        log_resp, point_ll = _e_step(xc, torch.log(mass), means, variances)  # log(0) = -inf is fine
        ll = (w * point_ll).sum(1)
        converged = converged | ((ll - prev_ll).abs() < tol)
        prev_ll = ll
        new_mass, new_means, new_vars = _m_step(xc, w, log_resp.exp(), reg, tiny)
        if bool(frozen.any()):  # dropped components keep weight 0 and their last parameters
            new_means = torch.where(frozen.unsqueeze(-1), means, new_means)
            new_vars = torch.where(frozen.unsqueeze(-1), variances, new_vars)
            new_mass = torch.where(frozen, torch.zeros_like(new_mass), new_mass)
        mass, means, variances, reseeded = handle_dead(new_mass, new_means, new_vars, point_ll)
        converged = converged & ~reseeded
        if bool(converged.all()):
            break

    mass = mass / mass.sum(1, keepdim=True)
    _, point_ll = _e_step(xc, torch.log(mass), means, variances)
    final_ll = (w * point_ll).sum(1)
    return GMMFit(weights=mass, means=means + shift, variances=variances, log_likelihood=final_ll,
                  n_iter=it, converged=converged)


def _best_of(points, weights, n_components: int, n_init: int, **kw) -> GMMFit:
    """Run n_init initialisations in one batch (B*n_init rows) and keep the best per mixture."""
    x = _as_tensor(points, "points", kw.get("dtype"), points.device if isinstance(points, torch.Tensor) else None)
    w = None if weights is None else _as_tensor(weights, "weights", x.dtype, x.device)
    _validate(x, w, n_components)  # error messages name the caller's batch indices
    B = x.shape[0]
    if w is not None:
        w = w.repeat_interleave(n_init, 0)
    reg = kw.pop("reg_covar")
    if isinstance(reg, torch.Tensor) and reg.ndim == 2:
        reg = reg.repeat_interleave(n_init, 0)
    fit = fit_gmm(x.repeat_interleave(n_init, 0), w, n_components, reg_covar=reg, n_init=1, **kw)
    best = fit.log_likelihood.view(B, n_init).argmax(1) + torch.arange(B, device=fit.weights.device) * n_init
    return GMMFit(weights=fit.weights[best], means=fit.means[best], variances=fit.variances[best],
                  log_likelihood=fit.log_likelihood[best], n_iter=fit.n_iter, converged=fit.converged[best])


def gmm_log_prob(x: Tensor | np.ndarray, fit: GMMFit) -> Tensor:
    """Log-density of x (B,N,D) under each batch row's mixture -> (B,N)."""
    x = _as_tensor(x, "x", fit.means.dtype, fit.means.device)
    if x.ndim != 3 or x.shape[0] != fit.means.shape[0] or x.shape[2] != fit.means.shape[2]:
        raise ValueError(f"x: expected shape ({fit.means.shape[0]}, N, {fit.means.shape[2]}), found {tuple(x.shape)}")
    joint = _component_log_density(x, fit.means, fit.variances) + torch.log(fit.weights).unsqueeze(1)
    return torch.logsumexp(joint, -1)


def sample_gmm(fit: GMMFit, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Draw n points per mixture -> (samples (B,n,D), kernel_index (B,n))."""
    B, M, D = fit.means.shape
    kernel = torch.multinomial(fit.weights, n, replacement=True, generator=generator)  # (B,n)
    idx = kernel.unsqueeze(-1).expand(B, n, D)
    mu = torch.gather(fit.means, 1, idx)
    std = torch.gather(fit.variances, 1, idx).sqrt()
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + std * eps, kernel


def benchmark_em(B: int = 3400, P: int = 256, M: int = 3, D: int = 2, n_iter: int = 20, *,
                 device: str = "cpu", dtype: torch.dtype = torch.float32, sklearn_fits: int = 20,
                 seed: int = 0, verbose: bool = True) -> dict[str, float]:
    """Time one batched fit of B mixtures against sklearn's per-fit time; returns the figures.

    Data: each mixture gets M random clusters of P points. EM runs exactly n_iter iterations
    (tol = 0) in both implementations so the work is comparable.
    """
    from sklearn.mixture import GaussianMixture

    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(B, M, D, generator=g) * 10
    labels = torch.randint(0, M, (B, P), generator=g)
    pts = torch.gather(centres, 1, labels.unsqueeze(-1).expand(B, P, D)) + torch.randn(B, P, D, generator=g)
    pts = pts.to(device=device, dtype=dtype)
    dev_gen = torch.Generator(device=device).manual_seed(seed)

    def _sync() -> None:
        if pts.device.type == "cuda":
            torch.cuda.synchronize()

    fit_gmm(pts[: min(B, 8)], None, M, n_iter=2, generator=dev_gen)  # warm-up
    _sync()
    t0 = time.perf_counter()
    fit_gmm(pts, None, M, n_iter=n_iter, tol=0.0, generator=dev_gen)
    _sync()
    t_batched = time.perf_counter() - t0

    data = pts[:sklearn_fits].double().cpu().numpy()
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # tol=0 makes sklearn warn that it did not converge
        warnings.simplefilter("ignore")
        for b in range(len(data)):
            GaussianMixture(M, covariance_type="diag", max_iter=n_iter, tol=0.0, init_params="k-means++",
                            random_state=b).fit(data[b])
    t_sk = (time.perf_counter() - t0) / max(len(data), 1)
    out = {
        "mixtures": B, "points": P, "components": M, "dims": D, "iterations": n_iter,
        "batched_seconds": t_batched, "batched_mixtures_per_s": B / t_batched,
        "batched_ms_per_mixture": 1e3 * t_batched / B,
        "sklearn_ms_per_fit": 1e3 * t_sk, "speedup_vs_sklearn": t_sk * B / t_batched,
    }
    if verbose:
        print(f"batched EM ({device}, {str(dtype).replace('torch.', '')}): {B} mixtures x {P} pts, M={M}, "
              f"D={D}, {n_iter} it in {t_batched:.3f} s = {out['batched_mixtures_per_s']:.0f} mixtures/s "
              f"({out['batched_ms_per_mixture']:.3f} ms each); sklearn: {out['sklearn_ms_per_fit']:.2f} ms/fit "
              f"-> {out['speedup_vs_sklearn']:.1f}x")
    return out
