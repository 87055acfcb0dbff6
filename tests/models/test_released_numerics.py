"""model.released: the released GraFormer numerics (layer norm, learnt-adjacency degrees) and (u, v) input."""
from __future__ import annotations

import torch

from diffpose_viz.models.graformer import GraFormerLifter, StdLayerNorm
from diffpose_viz.models.graph import LearnableAdjacency
from diffpose_viz.models.mixste import MixSTELifter


def test_std_layer_norm_is_unbiased_std_plus_eps():
    norm = StdLayerNorm(6, eps=1e-3)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2)
        norm.bias.normal_()
    x = torch.randn(4, 6)
    expected = norm.weight * (x - x.mean(-1, keepdim=True)) / (x.std(-1, unbiased=True, keepdim=True) + 1e-3) + norm.bias
    torch.testing.assert_close(norm(x), expected)
    assert not torch.allclose(norm(x), torch.nn.functional.layer_norm(x, (6,), norm.weight, norm.bias, 1e-3))


def test_released_adjacency_degrees_are_column_sums():
    adj = LearnableAdjacency(5, released=True)
    with torch.no_grad():
        adj.weight.copy_(torch.eye(5) + torch.rand(5, 5))
    d = (adj.weight.sum(0) + 1e-5).rsqrt()
    torch.testing.assert_close(adj(), d[:, None] * adj.weight * d[None, :])
    kit = LearnableAdjacency(5)
    kit.load_state_dict(adj.state_dict())
    assert not torch.allclose(kit(), adj())  # an asymmetric adjacency tells the two apart


def test_released_lifters_read_u_v_of_the_package_input():
    lifter = GraFormerLifter(2, hidden=8, layers=1, heads=2, released=True).eval()
    x = torch.randn(3, 17, 3)
    x[..., 2] = 1.0
    torch.testing.assert_close(lifter(x), lifter(x[..., :2]))
    x[1, 5, 2] = 0.0  # a missing joint reads as zeros
    y = x[..., :2].clone()
    y[1, 5] = 0.0
    torch.testing.assert_close(lifter(x), lifter(y))
    mix = MixSTELifter(5, embed_dim=8, depth=1, heads=2, released=True).eval()
    assert mix.joint_embed.in_features == 2
    w = torch.randn(2, 5, 17, 3)
    w[..., 2] = 1.0
    assert torch.isfinite(mix(w)).all()
