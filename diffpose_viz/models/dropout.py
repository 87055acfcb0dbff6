"""Dropout with a cheaper random mask (`train.dropout_mask: bits`).

torch's CPU dropout draws its mask with `bernoulli_`, one generator call per element into a float tensor; on the
training rows' sizes that was 10-20 % of a training step (docs/BENCHMARKS.md, "Training throughput"). Here the
mask comes from 64-bit random words, each read as four 16-bit integers compared against a threshold: four
elements per generator call, and a one-byte-per-element bool mask. The drop probability is rounded to a multiple
of 1/65536 (0.1 -> 0.100006) and the kept values are scaled by 1 / (1 - that probability), so the output is
unbiased as torch's is. It draws from torch's default generator (seeded runs repeat exactly) but a different
random stream from `bernoulli_`, so the numbers of a run change: opt-in, validated in docs/BENCHMARKS.md.

`use_dropout_mask(net, "bits")` switches every `nn.Dropout` and attention dropout of a network in place (no
parameters or state-dict keys change); "bernoulli" switches them back.
"""
from __future__ import annotations

import math

import torch
from torch import nn

Tensor = torch.Tensor
MASKS = ("bernoulli", "bits")
_LEVELS = 1 << 16


def keep_mask(shape: tuple[int, ...], p: float, device: torch.device) -> tuple[Tensor, float]:
    """A bool mask of `shape`, True with probability 1 - p' (p' = p rounded to 1/65536), and p'."""
    n = math.prod(shape)
    drop = min(max(round(p * _LEVELS), 0), _LEVELS)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(1 << 63), (1 << 63) - 1)
    levels = words.view(torch.int16)[:n].view(shape)  # uniform on [-32768, 32767]
    return levels >= drop - (_LEVELS // 2), drop / _LEVELS


def bits_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """F.dropout(x, p, training) with the cheaper mask above."""
    if not training or p == 0.0:
        return x
    if p >= 1.0:
        return x * 0.0
    keep, p_eff = keep_mask(tuple(x.shape), p, x.device)
    return x * keep.to(x.dtype).mul_(1.0 / (1.0 - p_eff))


class BitsDropout(nn.Dropout):
    """nn.Dropout drawing its mask with `bits_dropout` (same p, same repr, no state)."""

    def forward(self, x: Tensor) -> Tensor:
        if self.inplace:
            return x.mul_(bits_dropout(torch.ones_like(x), self.p, self.training)) if self.training else x
        return bits_dropout(x, self.p, self.training)


def use_dropout_mask(net: nn.Module, mask: str) -> nn.Module:
    """Switch the network's dropout masks to `mask` ('bernoulli': torch's, 'bits': BitsDropout) in place."""
    if mask not in MASKS:
        raise ValueError(f"train.dropout_mask: expected one of {MASKS}, found {mask!r}")
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.__class__ = BitsDropout if mask == "bits" else nn.Dropout
        if hasattr(m, "dropout_mask"):  # attention modules: the dropout on the attention weights
            m.dropout_mask = mask
    return net

