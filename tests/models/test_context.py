"""Context encoders (frame and video): missing joints, centre-frame features."""
import pytest
import torch

from diffpose_viz.models import FrameContextEncoder, VideoContextEncoder

from tiny_runs import masked_2d


def test_frame_context_encoder_ignores_coordinates_of_missing_joints():
    enc = FrameContextEncoder(8, hidden=16, layers=1, heads=2).eval()
    x = masked_2d()
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
    x = masked_2d(B=2, T=9)
    f = enc(x)
    assert f.shape == (2, 17, 8) and torch.isfinite(f).all()
    x2 = x.clone()
    x2[:, 0, :, :2] += 0.5  # the first frame informs the centre frame's features
    assert not torch.allclose(enc(x2), f)
    with pytest.raises(ValueError, match="9"):
        enc(x[:, :5])
