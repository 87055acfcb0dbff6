"""The residual denoiser (model.residual_to_context): its x0 estimate is the context's pose plus a learnt
correction that starts at zero, and the sampling fast path computes the same function."""
import pytest
import torch

from diffpose_viz.models import GraFormerDenoiser


def test_residual_denoiser_starts_at_the_context_pose_and_fast_path_agrees():
    torch.manual_seed(0)
    net = GraFormerDenoiser(3, 12, hidden=16, layers=2, heads=2, dropout=0.0, residual_context=(5, 8)).eval()
    ctx = torch.randn(4, 17, 12)
    h = torch.randn(4, 17, 3)
    out = net(h, torch.tensor([3, 3, 3, 3]), ctx)
    torch.testing.assert_close(out, ctx[..., 5:8])  # zero-initialised correction
    with torch.no_grad():
        for p in net.trunk.output.parameters():
            p.add_(0.1)
    full = net(h.repeat_interleave(2, 0), torch.full((8,), 7), ctx.repeat_interleave(2, 0))
    fast = net.conditioned(ctx)(h.repeat_interleave(2, 0), 7)
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(full, ctx.repeat_interleave(2, 0)[..., 5:8])


def test_residual_needs_x0_and_a_pose_slice():
    with pytest.raises(ValueError, match="residual_context"):
        GraFormerDenoiser(3, 12, prediction="eps", residual_context=(5, 8))
    with pytest.raises(ValueError, match="residual_context"):
        GraFormerDenoiser(3, 12, residual_context=(5, 9))
