"""Scaled dot-product attention shared by the GraFormer and MixSTE blocks."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from diffpose_viz.models.dropout import bits_dropout

Tensor = torch.Tensor


def attention(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0, dropout_mask: str = "bernoulli") -> Tensor:
    """softmax(q k^T / sqrt(d)) v over (N, heads, L, d), fused (torch's scaled_dot_product_attention).

    Training on CPU under bf16 autocast, the attention itself runs in float32 and its result is cast back: the
    CPU kernel's bf16 backward is about 6x slower than its float32 one at these sizes (17 joints or T frames,
    d = 16; docs/BENCHMARKS.md, "Training throughput"). Without gradients (sampling, evaluation) and in float32
    nothing changes. dropout_mask 'bits' (training with dropout_p > 0): the attention weights' dropout mask comes
    from models.dropout.bits_dropout (the unfused formula, which is what torch runs on CPU with dropout anyway)."""
    if (q.device.type == "cpu" and torch.is_grad_enabled()
            and (q.dtype == torch.bfloat16 or torch.is_autocast_enabled("cpu"))):
        with torch.autocast("cpu", enabled=False):  # autocast would cast the inputs back to bf16
            y = _attention(q.float(), k.float(), v.float(), dropout_p, dropout_mask)
        return y.to(q.dtype)
    return _attention(q, k, v, dropout_p, dropout_mask)


def _attention(q: Tensor, k: Tensor, v: Tensor, dropout_p: float, dropout_mask: str) -> Tensor:
    if dropout_p > 0.0 and dropout_mask == "bits":
        weights = torch.softmax((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1), -1)
        return bits_dropout(weights, dropout_p) @ v
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
