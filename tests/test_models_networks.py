"""Networks: shapes, parameter counts, masked joints, conditioning."""
import pytest
import torch

from diffpose_viz.models import (
    FrameContextEncoder,
    GraFormerDenoiser,
    GraFormerLifter,
    MartinezBaseline,
    OfficialDenoiser,
    VideoContextEncoder,
    count_parameters,
    sinusoidal_embedding,
)

OFFICIAL_PARAMS = 1_025_674  # counted from the official GCNdiff (github.com/GONGJIA0208/Diffpose)


def _masked_2d(B=3, T=None):
    torch.manual_seed(0)
    shape = (B, 17, 3) if T is None else (B, T, 17, 3)
    x = torch.randn(shape)
    x[..., 2] = x[..., 2].sigmoid()
    x[..., 5, :2] = float("nan")  # missing joint, NaN coordinates
    x[..., 11, 2] = 0.0  # missing joint, confidence 0
    return x


def test_parameter_counts_match_the_official_architecture(capsys):
    official = count_parameters(OfficialDenoiser())
    ours = count_parameters(GraFormerDenoiser(3, 64, hidden=96, layers=5))
    lifter = count_parameters(GraFormerLifter(2))
    with capsys.disabled():
        print(f"\n[params] OfficialDenoiser {official:,}  GraFormerDenoiser(C=64) {ours:,}  "
              f"GraFormerLifter(2D) {lifter:,}  Martinez {count_parameters(MartinezBaseline()):,}")
    assert official == OFFICIAL_PARAMS
    assert abs(ours - OFFICIAL_PARAMS) / OFFICIAL_PARAMS < 0.20
    assert abs(lifter - 650_000) / 650_000 < 0.05  # GCNpose's used parameters, about 0.65 M


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


def test_official_denoiser_is_uvxyz_eps_without_context():
    net = OfficialDenoiser(hidden=16, layers=1, heads=2)
    x = torch.randn(2, 17, 5)
    assert net(x, torch.tensor([3, 12])).shape == (2, 17, 5) and net.prediction == "eps"
    with pytest.raises(ValueError, match="no context"):
        net(x, torch.tensor([3, 12]), torch.zeros(2, 17, 4))


def test_sinusoidal_embedding():
    e = sinusoidal_embedding(torch.tensor([0, 5]), 7)
    assert e.shape == (2, 7) and torch.allclose(e[0, :3], torch.zeros(3)) and torch.allclose(e[0, 3:6], torch.ones(3))


@pytest.mark.parametrize("in_dim", [2, 3])
def test_lifter_shapes_root_and_missing_joints(in_dim):
    net = GraFormerLifter(in_dim, hidden=16, layers=1, heads=2).eval()
    x = _masked_2d()[..., :in_dim]
    out = net(x)
    assert out.shape == (3, 17, 3) and torch.isfinite(out).all() and (out[:, 0] == 0).all()


def test_frame_context_encoder_ignores_coordinates_of_missing_joints():
    enc = FrameContextEncoder(8, hidden=16, layers=1, heads=2).eval()
    x = _masked_2d()
    f = enc(x)
    assert f.shape == (3, 17, 8) and torch.isfinite(f).all()
    x2 = x.clone()
    x2[:, 11, :2] = 123.0  # a missing joint's (garbage) coordinates must not matter
    assert torch.equal(enc(x2), f)
    enc.train()
    enc(x).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)
    assert enc(x[..., :2]).shape == (3, 17, 8)  # (u, v) only: NaN joints count as missing


def test_video_context_encoder_centre_frame_features():
    enc = VideoContextEncoder(num_frames=9, context_dim=8, embed_dim=16, depth=1, heads=2).eval()
    x = _masked_2d(B=2, T=9)
    f = enc(x)
    assert f.shape == (2, 17, 8) and torch.isfinite(f).all()
    x2 = x.clone()
    x2[:, 0, :, :2] += 0.5  # the first frame informs the centre frame's features
    assert not torch.allclose(enc(x2), f)
    with pytest.raises(ValueError, match="9"):
        enc(x[:, :5])


def test_martinez_baseline():
    net = MartinezBaseline(hidden=64)
    x = _masked_2d()[..., :2]
    out = net(x)  # train mode: BatchNorm over the batch
    assert out.shape == (3, 17, 3) and torch.isfinite(out).all() and (out[:, 0] == 0).all()
    full = count_parameters(MartinezBaseline())
    assert 4.2e6 < full < 4.4e6  # Martinez et al. report about 4-5 M
