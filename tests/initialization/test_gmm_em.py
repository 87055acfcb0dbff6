"""Batched EM against scikit-learn's diagonal GaussianMixture, plus degenerate cases."""
import warnings

import numpy as np
import pytest
import torch

from diffpose_viz.initialization.gmm_em import GMMFit, benchmark_em, fit_gmm, gmm_log_prob, sample_gmm


def separated_mixtures(B=6, P=300, M=3, D=2, seed=0, offset=0.0):
    """Clusters on a well-separated grid (centres >= 15 apart, stds <= 1.5)."""
    rng = np.random.default_rng(seed)
    X, truth = [], []
    for _ in range(B):
        centres = np.stack([np.arange(M) * 15.0 + rng.normal(0, 1), *(rng.normal(0, 3, M) for _ in range(D - 1))], 1)
        stds = rng.uniform(0.5, 1.5, (M, D))
        n = rng.multinomial(P, rng.dirichlet(np.full(M, 5.0)))
        X.append(np.concatenate([rng.normal(centres[m], stds[m], (n[m], D)) for m in range(M)]))
        truth.append(n / P)
    return np.stack(X) + offset, np.stack(truth)


def sklearn_fit(x, M):
    from sklearn.mixture import GaussianMixture

    with warnings.catch_warnings():  # sklearn warns when its own run stops early
        warnings.simplefilter("ignore")
        return GaussianMixture(M, covariance_type="diag", tol=1e-6, max_iter=200, random_state=0).fit(x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_sklearn_on_separated_data(dtype):
    X, _ = separated_mixtures(offset=300.0)  # offset checks the per-mixture centring in float32
    fit = fit_gmm(torch.tensor(X, dtype=dtype), None, 3, n_iter=200, tol=1e-7,
                  generator=torch.Generator().manual_seed(0))
    assert fit.weights.dtype == dtype and fit.converged.all()
    tol_mean = 1e-3 if dtype == torch.float64 else 1e-2
    log_p = gmm_log_prob(torch.tensor(X), fit.to(dtype=torch.float64))  # (B, P)
    for b in range(len(X)):
        ref = sklearn_fit(X[b], 3)
        o_ref, o_us = np.argsort(ref.means_[:, 0]), np.argsort(fit.means[b, :, 0].numpy())
        np.testing.assert_allclose(fit.means[b, o_us].numpy(), ref.means_[o_ref], atol=tol_mean)
        np.testing.assert_allclose(fit.variances[b, o_us].numpy(), ref.covariances_[o_ref], rtol=1e-2, atol=1e-4)
        np.testing.assert_allclose(fit.weights[b, o_us].numpy(), ref.weights_[o_ref], atol=1e-3)
        assert fit.log_likelihood[b].item() >= ref.score(X[b]) - 0.05
        # gmm_log_prob agrees with sklearn's per-point density
        np.testing.assert_allclose(log_p[b].numpy(), ref.score_samples(X[b]), atol=1e-2)


def test_random_from_data_and_n_init_reach_sklearn_likelihood():
    X, _ = separated_mixtures(B=3, seed=3)
    ref = [sklearn_fit(X[b], 3).score(X[b]) for b in range(len(X))]
    for kw in ({"init": "random_from_data", "n_init": 4}, {"n_init": 3, "kmeans_iters": 0}):
        fit = fit_gmm(torch.tensor(X), None, 3, n_iter=100, tol=1e-7, generator=torch.Generator().manual_seed(1), **kw)
        for b in range(len(X)):
            assert fit.log_likelihood[b].item() >= ref[b] - 0.05, kw


def test_weighted_equals_repeated_points():
    rng = np.random.default_rng(1)
    base = separated_mixtures(B=3, P=60, seed=1)[0]
    counts = rng.integers(1, 4, base.shape[:2])
    repeated = [np.repeat(base[b], counts[b], axis=0) for b in range(3)]
    fw = fit_gmm(torch.tensor(base), torch.tensor(counts, dtype=torch.float64), 3, n_iter=300, tol=1e-10,
                 generator=torch.Generator().manual_seed(0))
    for b in range(3):
        fr = fit_gmm(torch.tensor(repeated[b][None]), None, 3, n_iter=300, tol=1e-10,
                     generator=torch.Generator().manual_seed(0))
        ow, orr = np.argsort(fw.means[b, :, 0].numpy()), np.argsort(fr.means[0, :, 0].numpy())
        np.testing.assert_allclose(fw.means[b, ow].numpy(), fr.means[0, orr].numpy(), atol=1e-6)
        np.testing.assert_allclose(fw.variances[b, ow].numpy(), fr.variances[0, orr].numpy(), atol=1e-6)
        np.testing.assert_allclose(fw.weights[b, ow].numpy(), fr.weights[0, orr].numpy(), atol=1e-6)
        np.testing.assert_allclose(fw.log_likelihood[b].item(), fr.log_likelihood[0].item(), atol=1e-6)


def test_zero_weight_points_are_ignored():
    X, _ = separated_mixtures(B=2, P=100, seed=2)
    junk = np.full((2, 30, 2), 1e4)
    w = np.concatenate([np.ones((2, 100)), np.zeros((2, 30))], 1)
    fit = fit_gmm(torch.tensor(np.concatenate([X, junk], 1)), torch.tensor(w), 3, n_iter=100,
                  generator=torch.Generator().manual_seed(0))
    assert fit.means.abs().max() < 100


def test_zero_variance_data_gets_the_floor():
    x = torch.full((2, 50, 2), 3.0, dtype=torch.float64)
    fit = fit_gmm(x, None, 3, reg_covar=1e-4, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(fit.log_likelihood).all()
    torch.testing.assert_close(fit.variances, torch.full_like(fit.variances, 1e-4))
    torch.testing.assert_close(fit.means, torch.full_like(fit.means, 3.0))
    torch.testing.assert_close(fit.weights.sum(1), torch.ones(2, dtype=torch.float64))


def test_per_dimension_floor():
    x = torch.zeros(1, 20, 2, dtype=torch.float64)
    fit = fit_gmm(x, None, 2, reg_covar=torch.tensor([1.0, 4.0], dtype=torch.float64))
    torch.testing.assert_close(fit.variances[0, :, 1], torch.full((2,), 4.0, dtype=torch.float64))


def test_dead_component_is_reseeded_and_keeps_weight():
    x = torch.tensor(np.concatenate([np.zeros((30, 1)), np.ones((30, 1)) * 5])[None])
    # Same duplicate-seed construction as the drop test below, but with the default policy.
    fit = fit_gmm(x, None, 3, n_iter=20, generator=torch.Generator().manual_seed(0))
    assert (fit.weights > 0).all()
    assert torch.isfinite(fit.means).all() and torch.isfinite(fit.variances).all()
    torch.testing.assert_close(fit.weights.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_reseed_goes_to_worst_explained_points():
    from diffpose_viz.initialization.gmm_em import _e_step, _reseed_dead

    x = torch.tensor([[[0.0], [0.1], [-0.1], [40.0], [20.0]]], dtype=torch.float64)
    w = torch.full((1, 5), 0.2, dtype=torch.float64)
    mass = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    means = torch.zeros(1, 3, 1, dtype=torch.float64)
    var = torch.ones(1, 3, 1, dtype=torch.float64)
    _, point_ll = _e_step(x, torch.log(mass.clamp_min(1e-300)), means, var)
    dead = torch.tensor([[False, True, True]])
    m2, mu2, var2 = _reseed_dead(x, w, point_ll, mass, means, var, dead, torch.zeros(1, 1, 1, dtype=torch.float64))
    assert mu2[0, :, 0].tolist() == [0.0, 40.0, 20.0]  # 1st dead -> worst point, 2nd dead -> 2nd worst
    assert (m2 > 0).all() and abs(m2.sum().item() - 1) < 1e-12
    assert (var2[0, 1:] > 1).all()  # restarted with the data's overall variance


def test_dead_component_is_dropped_with_zero_weight():
    x = torch.tensor(np.concatenate([np.zeros((30, 1)), np.ones((30, 1)) * 5])[None])
    # Two distinct values, three k-means++ seeds: the third seed duplicates one of the first two
    # (all squared distances are 0), so the hard initial assignment leaves it empty.
    fit = fit_gmm(x, None, 3, n_iter=20, on_empty="drop", generator=torch.Generator().manual_seed(0))
    alive = fit.weights[0] > 0
    assert alive.sum() == 2 and (fit.weights[0, ~alive] == 0).all()
    assert torch.isfinite(fit.means).all() and torch.isfinite(fit.variances).all()
    torch.testing.assert_close(fit.weights.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert torch.isfinite(fit.log_likelihood).all()
    s, k = sample_gmm(fit, 200, torch.Generator().manual_seed(0))
    assert alive[k[0]].all()  # never samples a dropped kernel


def test_nan_points_error_names_batch_index():
    x = torch.randn(5, 20, 2)
    x[3, 7, 1] = float("nan")
    with pytest.raises(ValueError, match=r"\[3\]"):
        fit_gmm(x, None, 2)
    with pytest.raises(ValueError, match=r"\[3\]"):
        fit_gmm(x, None, 2, n_init=2)


def test_bad_weights_and_shapes_raise():
    x = torch.randn(2, 10, 2)
    with pytest.raises(ValueError, match="weights sum to 0"):
        fit_gmm(x, torch.zeros(2, 10), 2)
    with pytest.raises(ValueError, match="expected shape"):
        fit_gmm(x, torch.ones(2, 9), 2)
    with pytest.raises(ValueError, match=r"\(B, P, D\)"):
        fit_gmm(torch.randn(10, 2), None, 2)


def test_sampling_shapes_and_moments_cpu():
    fit = GMMFit(weights=torch.tensor([[0.25, 0.75]]), means=torch.tensor([[[0.0, 0.0], [4.0, -2.0]]]),
                 variances=torch.tensor([[[1.0, 1.0], [0.25, 0.25]]]), log_likelihood=torch.zeros(1), n_iter=0,
                 converged=torch.ones(1, dtype=torch.bool))
    s, k = sample_gmm(fit, 5000, torch.Generator(device="cpu").manual_seed(0))
    assert s.shape == (1, 5000, 2) and k.shape == (1, 5000) and s.device.type == "cpu"
    assert abs(k.float().mean().item() - 0.75) < 0.03
    torch.testing.assert_close(s[0].mean(0), torch.tensor([3.0, -1.5]), atol=0.1, rtol=0)
    # refitting the samples recovers the mixture
    refit = fit_gmm(s, None, 2, generator=torch.Generator().manual_seed(0))
    o = torch.argsort(refit.means[0, :, 0])
    torch.testing.assert_close(refit.means[0, o], fit.means[0], atol=0.1, rtol=0)


def test_benchmark_runs_tiny(capsys):
    out = benchmark_em(B=16, P=32, M=3, n_iter=3, sklearn_fits=2)
    assert out["batched_mixtures_per_s"] > 0 and out["sklearn_ms_per_fit"] > 0
    assert "mixtures/s" in capsys.readouterr().out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    X, _ = separated_mixtures(B=4)
    cpu = fit_gmm(torch.tensor(X), None, 3, n_iter=100, tol=1e-8, generator=torch.Generator().manual_seed(0))
    gpu = fit_gmm(torch.tensor(X, device="cuda"), None, 3, n_iter=100, tol=1e-8,
                  generator=torch.Generator(device="cuda").manual_seed(0))
    torch.testing.assert_close(gpu.log_likelihood.cpu(), cpu.log_likelihood, atol=1e-3, rtol=0)
