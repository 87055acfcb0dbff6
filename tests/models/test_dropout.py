"""The cheaper dropout mask (`train.dropout_mask: bits`, diffpose_viz/models/dropout.py)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diffpose_viz.config import ExperimentConfig
from diffpose_viz.methods import get_method
from diffpose_viz.models.attention import attention
from diffpose_viz.models.dropout import BitsDropout, bits_dropout, keep_mask, use_dropout_mask


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5])
def test_the_mask_drops_at_the_rate_asked_and_keeps_the_mean(p):
    torch.manual_seed(0)
    n = 4_000_000
    keep, p_eff = keep_mask((n,), p, torch.device("cpu"))
    assert keep.dtype == torch.bool and abs(p_eff - p) <= 1 / 65536
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs((~keep).float().mean().item() - p_eff) < 5 * sigma
    y = bits_dropout(torch.ones(n), p)
    assert torch.unique(y).tolist() == [0.0, pytest.approx(1 / (1 - p_eff))]
    assert abs(y.mean().item() - 1.0) < 6 * sigma / (1 - p)


def test_seeded_masks_repeat_and_gradients_follow_the_mask():
    x = torch.randn(64, 17, 32, requires_grad=True)
    torch.manual_seed(3)
    a = bits_dropout(x, 0.25)
    torch.manual_seed(3)
    b = bits_dropout(x, 0.25)
    assert torch.equal(a, b)
    a.sum().backward()
    torch.testing.assert_close(x.grad, (a.detach() / x.detach()).nan_to_num(), rtol=1e-5, atol=1e-6)
    assert bits_dropout(x, 0.25, training=False) is x and bits_dropout(x, 0.0) is x
    assert torch.equal(bits_dropout(x, 1.0), torch.zeros_like(x))
    assert bits_dropout(x.detach().bfloat16(), 0.1).dtype == torch.bfloat16


def test_switching_a_network_changes_no_weight_and_evaluation_is_unchanged():
    cfg = ExperimentConfig(method="lifter")
    cfg.model.hidden, cfg.model.layers, cfg.model.dropout = 32, 2, 0.25
    torch.manual_seed(0)
    net = get_method("lifter").build_network(cfg)
    keys = list(net.state_dict())
    cond = torch.cat([torch.rand(8, 17, 2) * 2 - 1, torch.ones(8, 17, 1)], -1)
    net.eval()
    before = net(cond)
    use_dropout_mask(net, "bits")
    assert sum(isinstance(m, BitsDropout) for m in net.modules()) > 0
    assert all(m.dropout_mask == "bits" for m in net.modules() if hasattr(m, "dropout_mask"))
    assert list(net.state_dict()) == keys
    assert torch.equal(net(cond), before)  # eval: no dropout either way
    net.train()
    torch.manual_seed(1)
    assert not torch.equal(net(cond), before)
    use_dropout_mask(net, "bernoulli")
    assert not any(isinstance(m, BitsDropout) for m in net.modules())
    assert all(type(m) is nn.Dropout for m in net.modules() if isinstance(m, nn.Dropout))
    with pytest.raises(ValueError, match="train.dropout_mask"):
        use_dropout_mask(net, "uniform")


def test_attention_with_the_bits_mask_is_the_textbook_formula():
    torch.manual_seed(0)
    q, k, v = (torch.randn(4, 2, 9, 16) for _ in range(3))
    torch.testing.assert_close(attention(q, k, v, 0.0, "bits"), F.scaled_dot_product_attention(q, k, v))
    torch.manual_seed(5)
    y = attention(q, k, v, 0.3, "bits")
    torch.manual_seed(5)
    w = torch.softmax(q @ k.transpose(-2, -1) / 4.0, -1)
    torch.testing.assert_close(y, bits_dropout(w, 0.3) @ v)
