"""GraFormer denoiser and lifter: shapes, conditioning, the conditioned fast path, timestep embedding."""
import pytest
import torch

from diffpose_viz.models import GraFormerDenoiser, GraFormerLifter, sinusoidal_embedding

from tiny_runs import masked_2d


def test_denoiser_shapes_and_conditioning():
    torch.manual_seed(0)
    net = GraFormerDenoiser(3, 8, hidden=16, layers=2, heads=2).eval()
    h, ctx = torch.randn(4, 17, 3), torch.randn(4, 17, 8)
    t = torch.tensor([0, 10, 20, 50])
    out = net(h, t, ctx)
    assert out.shape == (4, 17, 3) and net.prediction == "x0"
    assert not torch.allclose(net(h, t + 1, ctx), out)  # the step embedding matters
    assert not torch.allclose(net(h, t, ctx + 1), out)  # the context matters
    with pytest.raises(ValueError, match="context"):
        net(h, t, None)
    with pytest.raises(ValueError, match=r"\(B, 17, 3\)"):
        net(torch.randn(4, 16, 3), t, ctx)
    no_ctx = GraFormerDenoiser(3, 0, hidden=16, layers=1, heads=2, prediction="eps")
    assert no_ctx(h, t).shape == (4, 17, 3)


@pytest.mark.parametrize("context_dim", [8, 0])
def test_conditioned_fast_path_equals_the_module(context_dim):
    """The sampler's fast path (per-frame and per-step terms computed once) is the same function."""
    torch.manual_seed(0)
    net = GraFormerDenoiser(3, context_dim, hidden=16, layers=2, heads=2).eval()
    B, N = 3, 4
    ctx = torch.randn(B, 17, context_dim) if context_dim else None
    h = torch.randn(B * N, 17, 3)
    fast = net.conditioned(ctx, B)
    for t in (0, 7, 49):
        rows_ctx = None if ctx is None else ctx.repeat_interleave(N, 0)
        expected = net(h, torch.full((B * N,), t), rows_ctx)
        assert torch.allclose(fast(h, t), expected, atol=1e-5), t
    with pytest.raises(ValueError, match="whole number of hypotheses"):
        fast(torch.randn(B * N + 1, 17, 3), 0)
    with pytest.raises(RuntimeError, match="eval"):
        net.train().conditioned(ctx, B)


def test_sinusoidal_embedding():
    e = sinusoidal_embedding(torch.tensor([0, 5]), 7)
    assert e.shape == (2, 7) and torch.allclose(e[0, :3], torch.zeros(3)) and torch.allclose(e[0, 3:6], torch.ones(3))


@pytest.mark.parametrize("in_dim", [2, 3])
def test_lifter_shapes_root_and_missing_joints(in_dim):
    net = GraFormerLifter(in_dim, hidden=16, layers=1, heads=2).eval()
    x = masked_2d()[..., :in_dim]
    out = net(x)
    assert out.shape == (3, 17, 3) and torch.isfinite(out).all() and (out[:, 0] == 0).all()
