"""Graph operators on the H36M-17 skeleton."""
import torch

from diffpose_viz.models.graph import (
    ChebConv,
    GraphFeedForward,
    LAMGConv,
    chebyshev_basis,
    graph_laplacian,
    normalized_adjacency,
)
from diffpose_viz.skeleton import H36M17


def test_adjacency_is_row_normalised_over_bones_and_laplacian_is_I_minus_A():
    a = normalized_adjacency()
    assert a.shape == (17, 17)
    assert torch.allclose(a.sum(-1), torch.ones(17))
    assert ((a > 0) == torch.as_tensor(H36M17.adjacency(self_loops=True) > 0)).all()
    assert a[8, 9] == 1 / 5  # thorax: itself, spine, neck, two shoulders
    assert torch.allclose(graph_laplacian(a), torch.eye(17) - a, atol=1e-6)


def test_chebyshev_basis_orders():
    lap = graph_laplacian(normalized_adjacency())
    basis = chebyshev_basis(lap, 3)
    assert torch.equal(basis[0], torch.eye(17)) and torch.equal(basis[1], lap)
    assert torch.allclose(basis[2], 2 * lap @ lap - torch.eye(17), atol=1e-6)
    assert torch.allclose(basis[3], 2 * lap @ basis[2] - lap, atol=1e-6)


def test_cheb_conv_matches_the_sum_over_orders():
    torch.manual_seed(0)
    conv = ChebConv(4, 6, K=2)
    x = torch.randn(3, 17, 4)
    expected = sum(conv.basis[k] @ x @ conv.weight[k] for k in range(3)) + conv.bias
    assert torch.allclose(conv(x), expected, atol=1e-5)
    assert sum(p.numel() for p in conv.parameters()) == 3 * 4 * 6 + 6
    # Locality: order <= 2 means a joint only sees joints within 2 bones.
    x = torch.zeros(1, 17, 4)
    x[0, 3] = 1.0  # right ankle
    y = conv(x) - conv.bias
    assert y[0, 1].abs().sum() > 0 and y[0, 0].abs().sum() == 0  # 2 bones away vs 3 bones away


def test_lam_gconv_starts_as_identity_adjacency_and_learns_it():
    torch.manual_seed(0)
    conv = LAMGConv(5, 7)
    x = torch.randn(2, 17, 5)
    assert torch.allclose(conv(x), conv.linear(x), atol=1e-4)
    conv(x).square().sum().backward()
    assert conv.adjacency.weight.grad is not None and conv.adjacency.weight.grad.abs().sum() > 0
    ffn = GraphFeedForward(8, 16)
    assert ffn(torch.randn(2, 17, 8)).shape == (2, 17, 8)
    assert sum(p.numel() for p in ffn.parameters()) == 8 * 16 + 16 + 16 * 8 + 8 + 17 * 17
