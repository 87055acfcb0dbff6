"""Forward processes: the GMM forward reaches H_K at abar -> 0 and leaves h_0 alone at t -> 0."""
import pytest
import torch

from diffpose_viz.diffusion.forward import (
    antithetic_timesteps,
    draw_kernels,
    gaussian_q_sample,
    gmm_q_sample,
    kernel_params,
    official_q_sample,
)
from diffpose_viz.diffusion.schedule import NoiseSchedule


def _separated_gmm(B: int, seed: int = 0):
    """3 well-separated kernels per joint (1 m apart, std 2-6 cm), so kernels are identifiable."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.tensor([0.2, 0.5, 0.3]).expand(B, 17, 3).contiguous()
    centres = torch.tensor([-1.0, 0.0, 1.0])[:, None] + 0.05 * torch.randn(3, 3, generator=g)  # (M,3)
    means = centres.expand(B, 17, 3, 3).contiguous()
    std = torch.tensor([0.02, 0.04, 0.06])[:, None].expand(3, 3)
    variances = (std ** 2).expand(B, 17, 3, 3).contiguous()
    return weights, means, variances


def test_h_K_follows_the_gmm_when_abar_vanishes():
    B = 6000
    w, m, v = _separated_gmm(B)
    s = NoiseSchedule("cosine", 100)
    assert float(s.alpha_bar(99)) < 1e-6
    g = torch.Generator().manual_seed(1)
    h0 = 0.3 * torch.randn(B, 17, 3, generator=g)  # arbitrary clean poses, far from the kernels
    h0[:, 0] = 0
    out = gmm_q_sample(h0, torch.full((B,), 99), w, m, v, s, g)
    x = out.h_t[:, 1:].reshape(-1, 3)  # every non-root joint is a draw from the same GMM
    nearest = (x[:, None] - m[0, 0][None]).norm(dim=-1).argmin(-1)
    freq = torch.bincount(nearest, minlength=3).float() / len(x)
    assert torch.allclose(freq, w[0, 0], atol=0.01), freq
    for k in range(3):
        xs = x[nearest == k]
        assert torch.allclose(xs.mean(0), m[0, 0, k], atol=0.003), (k, xs.mean(0))
        assert torch.allclose(xs.var(0), v[0, 0, k], rtol=0.08), (k, xs.var(0))
    # The returned mu/std identify the same kernel the state came from.
    assert torch.equal(out.mu[:, 1:].reshape(-1, 3), m[0, 0][nearest])
    assert torch.allclose(out.h_t, out.mu + out.std * out.eps, atol=2e-3)  # sqrt(abar) <= 1e-3


def test_h_t_is_h0_at_small_t_and_formula_holds():
    B = 64
    w, m, v = _separated_gmm(B)
    g = torch.Generator().manual_seed(2)
    h0 = 0.3 * torch.randn(B, 17, 3, generator=g)
    h0[:, 0] = 0
    s = NoiseSchedule("linear", 1000, 1e-7, 0.02)
    out = gmm_q_sample(h0, torch.zeros(B, dtype=torch.long), w, m, v, s, g)
    assert (out.h_t - h0).abs().max() < 1e-3  # sqrt(1 - abar_0) ~ 3e-4, |h0 - mu| <= ~2 m
    t = torch.randint(0, 1000, (B,), generator=g)
    out = gmm_q_sample(h0, t, w, m, v, s, g)
    a = s.alpha_bar(t)[:, None, None]
    expected = out.mu + a.sqrt() * (h0 - out.mu) + (1 - a).sqrt() * out.std * out.eps
    assert torch.allclose(out.h_t, expected, atol=1e-6)
    assert (out.h_t[:, 0] == 0).all() and (out.eps[:, 0] == 0).all() and (out.std[:, 0] == 0).all()
    full = gmm_q_sample(h0, s.num_steps - 1 + 0 * t, w, m, v, s, g, keep_root=False)
    assert (full.h_t[:, 0] != 0).any()


def test_fixed_kernel_and_eps_are_respected_and_bad_shapes_raise():
    B = 4
    w, m, v = _separated_gmm(B)
    kernel = torch.full((B, 17), 2)
    eps = torch.ones(B, 17, 3)
    s = NoiseSchedule.official()
    out = gmm_q_sample(torch.zeros(B, 17, 3), torch.full((B,), 50), w, m, v, s, kernel=kernel, eps=eps)
    assert torch.equal(out.mu[:, 1:], m[:, 1:, 2])
    assert torch.allclose(out.std[:, 1:], v[:, 1:, 2].sqrt())
    with pytest.raises(ValueError, match=r"\(B, 17, 3\)"):
        gmm_q_sample(torch.zeros(B, 16, 3), torch.zeros(B, dtype=torch.long), w, m, v, s)
    with pytest.raises(ValueError, match="means/variances"):
        gmm_q_sample(torch.zeros(B, 17, 3), torch.zeros(B, dtype=torch.long), w, m[..., :2], v, s)


def test_kernel_draws_follow_weights_for_many_hypotheses():
    w = torch.tensor([0.1, 0.0, 0.9]).expand(2, 17, 3)
    k = draw_kernels(w, 4000, torch.Generator().manual_seed(0))
    assert k.shape == (2, 4000, 17) and not (k == 1).any()
    assert abs((k == 2).float().mean().item() - 0.9) < 0.01
    _, m, v = _separated_gmm(2)
    mu, std = kernel_params(m, v, k[:, :5])
    assert mu.shape == std.shape == (2, 5, 17, 3)


def test_gaussian_forward_has_zero_mean_and_given_scale():
    B = 8
    s = NoiseSchedule("linear", 100, 1e-4, 0.05)
    h0 = torch.randn(B, 17, 3)
    h0[:, 0] = 0
    out = gaussian_q_sample(h0, torch.full((B,), 10), s, scale=0.5)
    assert (out.mu == 0).all() and (out.std[:, 1:] == 0.5).all() and (out.std[:, 0] == 0).all()
    a = s.alpha_bar(10)
    assert torch.allclose(out.h_t, a.sqrt() * h0 + (1 - a).sqrt() * 0.5 * out.eps, atol=1e-6)


def test_official_forward_scales_noise_per_channel():
    B = 5
    s = NoiseSchedule.official()
    x0 = torch.randn(B, 17, 5)
    t = torch.tensor([0, 12, 24, 50, 6])
    scale = torch.tensor([0.5, 0.5, 1.0, 1.0, 1.0])
    x_t, e = official_q_sample(x0, t, scale, s, torch.Generator().manual_seed(0))
    a = s.alpha_bar(t)[:, None, None]
    assert torch.allclose((x_t - (1 - a).sqrt() * e) / a.sqrt(), x0, atol=1e-5)
    x_t0, e0 = official_q_sample(x0, t, torch.zeros(5), s)
    assert (e0 == 0).all() and torch.allclose(x_t0, a.sqrt() * x0)


def test_antithetic_timesteps_pair_up():
    t = antithetic_timesteps(9, 51, torch.Generator().manual_seed(3))
    assert t.shape == (9,) and t.min() >= 0 and t.max() <= 50
    half = 9 // 2 + 1
    assert torch.equal(t[half:], 50 - t[: 9 - half])
