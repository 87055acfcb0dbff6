"""Forward (noising) processes.

* `gmm_q_sample`: the paper's GMM-based forward diffusion (Gong et al., CVPR 2023, Sec. 3.2). Per joint a kernel is
  drawn from the mixture weights; with its mean mu_G and std sigma_G,
      h_t = mu_G + sqrt(abar_t) (h_0 - mu_G) + sqrt(1 - abar_t) * sigma_G * eps,   eps ~ N(0, I),
  so as abar -> 0 h_t is distributed as the fitted GMM H_K instead of N(0, I).
* `gaussian_q_sample`: the standard-Gaussian baseline (mu = 0, sigma = a constant scale).
* `official_q_sample`: what the released code trains with (notes §2b): no mu shift, noise scaled per
  channel on the 17x5 uvxyz state, the target is the *scaled* noise.

Shapes: h0 (B,17,3), t (B,) integer steps in [0, K-1]. The root joint (0) is kept noise-free by
default (`keep_root`), matching the sampler, which holds it at the origin.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from diffpose_viz.diffusion.schedule import NoiseSchedule

Tensor = torch.Tensor


class ForwardSample(NamedTuple):
    h_t: Tensor  # (B,17,3) noised state
    eps: Tensor  # (B,17,3) standard-normal draw; the noise actually added is std * eps
    mu: Tensor  # (B,17,3) mean of the drawn kernel (0 for the Gaussian forward)
    std: Tensor  # (B,17,3) std of the drawn kernel (the scale for the Gaussian forward)


def _check_state(h0: Tensor, t: Tensor, dim: int, name: str) -> None:
    if h0.ndim != 3 or h0.shape[1:] != (17, dim):
        raise ValueError(f"{name}: h0 must have shape (B, 17, {dim}), found {tuple(h0.shape)}")
    if t.shape != (h0.shape[0],):
        raise ValueError(f"{name}: t must have shape (B,) = ({h0.shape[0]},), found {tuple(t.shape)}")


def _check_gmm(weights: Tensor, means: Tensor, variances: Tensor, name: str) -> None:
    if weights.ndim != 3 or weights.shape[1] != 17:
        raise ValueError(f"{name}: gmm weights must have shape (B, 17, M), found {tuple(weights.shape)}")
    expected = (*weights.shape, 3)
    if means.shape != expected or variances.shape != expected:
        raise ValueError(f"{name}: gmm means/variances must have shape {expected}, found "
                         f"{tuple(means.shape)} and {tuple(variances.shape)}")


def draw_kernels(weights: Tensor, n: int | None = None, generator: torch.Generator | None = None) -> Tensor:
    """One kernel index per joint from Categorical(weights): (B,17) if n is None, else (B,n,17)."""
    B, J, M = weights.shape
    k = 1 if n is None else n
    kernel = torch.multinomial(weights.reshape(B * J, M).float(), k, replacement=True, generator=generator)
    kernel = kernel.view(B, J, k).transpose(1, 2)  # (B,k,17)
    return kernel[:, 0] if n is None else kernel


def kernel_params(means: Tensor, variances: Tensor, kernel: Tensor) -> tuple[Tensor, Tensor]:
    """mu, std of the chosen kernels. kernel (B,17) -> (B,17,3); kernel (B,n,17) -> (B,n,17,3)."""
    if kernel.ndim == 2:
        idx = kernel[..., None, None].expand(*kernel.shape, 1, 3)
        return means.gather(2, idx)[:, :, 0], variances.gather(2, idx)[:, :, 0].clamp_min(0).sqrt()
    B, n, J = kernel.shape
    M = means.shape[2]
    idx = kernel[..., None, None].expand(B, n, J, 1, 3)
    mu = means.unsqueeze(1).expand(B, n, J, M, 3).gather(3, idx)[..., 0, :]
    var = variances.unsqueeze(1).expand(B, n, J, M, 3).gather(3, idx)[..., 0, :]
    return mu, var.clamp_min(0).sqrt()


def _coef(schedule: NoiseSchedule, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    abar = schedule.alpha_bar(t.to(like.device)).to(like.dtype).view(-1, *([1] * (like.ndim - 1)))
    return abar.sqrt(), (1.0 - abar).sqrt()


def shifted_q_sample(h0: Tensor, t: Tensor, mu: Tensor, std: Tensor, eps: Tensor,
                     schedule: NoiseSchedule) -> Tensor:
    """h_t = mu + sqrt(abar_t)(h0 - mu) + sqrt(1 - abar_t) std * eps (the common core)."""
    a, s = _coef(schedule, t, h0)
    return mu + a * (h0 - mu) + s * std * eps


def x0_from_eps(h_t: Tensor, eps: Tensor, abar: Tensor, mu: Tensor | float = 0.0, std: Tensor | float = 1.0,
                clip: float | None = None) -> Tensor:
    """The clean-state estimate from a noise estimate: x0 = mu + (h_t - mu - sqrt(1 - abar) std eps) / sqrt(abar),
    the one inversion of `shifted_q_sample` used by training and sampling. `clip` bounds |x0| (metres):
    near abar ~ 0 the division amplifies any error in eps."""
    x0 = (h_t - mu - (1.0 - abar).sqrt() * (std * eps)) / abar.sqrt() + mu
    return x0 if clip is None else x0.clamp(-clip, clip)


def _zero_root(*tensors: Tensor) -> None:
    for x in tensors:
        x[:, 0] = 0.0


def gmm_q_sample(h0: Tensor, t: Tensor, gmm_weights: Tensor, gmm_means: Tensor, gmm_vars: Tensor,
                 schedule: NoiseSchedule, generator: torch.Generator | None = None, *,
                 kernel: Tensor | None = None, eps: Tensor | None = None, keep_root: bool = True) -> ForwardSample:
    """GMM forward diffusion. gmm_* are H_K of each frame: weights (B,17,M), means/vars (B,17,M,3).

    `kernel` (B,17) and `eps` (B,17,3) may be given to fix the draws. Returns (h_t, eps, mu, std).
    """
    _check_state(h0, t, 3, "gmm_q_sample")
    _check_gmm(gmm_weights, gmm_means, gmm_vars, "gmm_q_sample")
    if gmm_weights.shape[0] != h0.shape[0]:
        raise ValueError(f"gmm_q_sample: GMM batch {gmm_weights.shape[0]} != h0 batch {h0.shape[0]}")
    if kernel is None:
        kernel = draw_kernels(gmm_weights, None, generator)
    mu, std = kernel_params(gmm_means.to(h0.dtype), gmm_vars.to(h0.dtype), kernel)
    if eps is None:
        eps = torch.randn(h0.shape, generator=generator, dtype=h0.dtype, device=h0.device)
    if keep_root:
        mu, std, eps = mu.clone(), std.clone(), eps.clone()
        _zero_root(mu, std, eps)
    return ForwardSample(shifted_q_sample(h0, t, mu, std, eps, schedule), eps, mu, std)


def gaussian_q_sample(h0: Tensor, t: Tensor, schedule: NoiseSchedule, generator: torch.Generator | None = None,
                      *, scale: float = 1.0, eps: Tensor | None = None, keep_root: bool = True) -> ForwardSample:
    """Standard Gaussian diffusion: h_t = sqrt(abar) h0 + sqrt(1 - abar) * scale * eps."""
    _check_state(h0, t, 3, "gaussian_q_sample")
    mu = torch.zeros_like(h0)
    std = torch.full_like(h0, float(scale))
    if eps is None:
        eps = torch.randn(h0.shape, generator=generator, dtype=h0.dtype, device=h0.device)
    if keep_root:
        eps = eps.clone()
        _zero_root(std, eps)
    return ForwardSample(shifted_q_sample(h0, t, mu, std, eps, schedule), eps, mu, std)


def official_q_sample(x0: Tensor, t: Tensor, noise_scale: Tensor, schedule: NoiseSchedule,
                      generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The released code's forward on the uvxyz state: e = N(0, I) * noise_scale,
    x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) e. Returns (x_t, e); e is the eps-prediction target.

    x0 (B,17,5); noise_scale broadcastable to it, e.g. (B,17,5) from the GMM file or (5,) = [.5,.5,1,1,1].
    """
    _check_state(x0, t, 5, "official_q_sample")
    e = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device) * noise_scale
    a, s = _coef(schedule, t, x0)
    return a * x0 + s * e, e


def antithetic_timesteps(batch_size: int, num_steps: int, generator: torch.Generator | None = None,
                         device: torch.device | str | None = None) -> Tensor:
    """Training steps as the official runner draws them: ceil-half uniform in [0, K-1], the rest K-1-t."""
    half = torch.randint(0, num_steps, (batch_size // 2 + 1,), generator=generator, device=device)
    return torch.cat([half, num_steps - 1 - half])[:batch_size]
