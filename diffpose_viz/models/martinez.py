"""Martinez et al. (ICCV 2017) 'simple baseline': an MLP lifting 17 x 2 to 17 x 3.

Linear(34 -> 1024), BatchNorm, ReLU, Dropout(0.5), then residual blocks of two such layers, then a
linear head for the 16 non-root joints (the root is the origin, as in the original).
"""
from __future__ import annotations

import torch
from torch import nn

from diffpose_viz.models.graformer import clean_2d_input

Tensor = torch.Tensor
N_JOINTS = 17


def _dense(dim_in: int, dim_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, dim_out), nn.BatchNorm1d(dim_out), nn.ReLU(), nn.Dropout(dropout))


class _ResidualBlock(nn.Module):
    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(_dense(dim, dim, dropout), _dense(dim, dim, dropout))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)


class MartinezBaseline(nn.Module):
    """forward(pose2d (B,17,2)) -> (B,17,3) root-relative (joint 0 = 0)."""

    def __init__(self, hidden: int = 1024, n_blocks: int = 2, dropout: float = 0.5, in_dim: int = 2) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.stem = _dense(N_JOINTS * in_dim, hidden, dropout)
        self.blocks = nn.Sequential(*(_ResidualBlock(hidden, dropout) for _ in range(n_blocks)))
        self.head = nn.Linear(hidden, (N_JOINTS - 1) * 3)

    def forward(self, pose2d: Tensor) -> Tensor:
        if pose2d.ndim != 3 or pose2d.shape[1:] != (N_JOINTS, self.in_dim):
            raise ValueError(f"MartinezBaseline: expected (B, 17, {self.in_dim}), found {tuple(pose2d.shape)}")
        B = pose2d.shape[0]
        out = self.head(self.blocks(self.stem(clean_2d_input(pose2d).reshape(B, -1))))
        return torch.cat([out.new_zeros(B, 1, 3), out.view(B, N_JOINTS - 1, 3)], 1)
