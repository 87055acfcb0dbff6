"""The released code's denoiser (`GCNdiff` in the official repository github.com/GONGJIA0208/Diffpose, models/gcndiff.py) rebuilt from our GraFormer blocks.

State: 17 x 5 uvxyz (u, v screen-normalised; x, y, z root-relative metres). Output: the scaled noise
(eps-prediction) on all 5 channels. released=True: the released numerics (GraphAttentionLayer), so the
released GCNdiff weights, imported by diffpose_viz.released, give its outputs. No context input: the 2D pose conditions the model only as part
of the diffused state. hidden 96, 5 layers, step embedding 96 -> 384; 1,025,674 parameters.
"""
from __future__ import annotations

import torch
from torch import nn

from diffpose_viz.models.graformer import GraFormerTrunk, TimestepEmbedding, _check_joints

Tensor = torch.Tensor


class OfficialDenoiser(nn.Module):
    """forward(x_t (B,17,5), t (B,), context=None) -> eps_hat (B,17,5)."""

    prediction = "eps"

    def __init__(self, state_dim: int = 5, *, hidden: int = 96, layers: int = 5, heads: int = 4,
                 dropout: float = 0.25, attn_dropout: float = 0.1, conv_dropout: float = 0.1,
                 released: bool = False) -> None:
        super().__init__()
        self.state_dim = state_dim
        self.time_embedding = TimestepEmbedding(hidden)
        self.trunk = GraFormerTrunk(state_dim, state_dim, hidden=hidden, layers=layers, heads=heads,
                                    dropout=dropout, attn_dropout=attn_dropout, conv_dropout=conv_dropout,
                                    temb_dim=self.time_embedding.out_dim, released=released)

    def forward(self, x_t: Tensor, t: Tensor, context: Tensor | None = None) -> Tensor:
        _check_joints(x_t, self.state_dim, "OfficialDenoiser", "x_t")
        if context is not None:
            raise ValueError("OfficialDenoiser takes no context (the official GCNdiff conditions only through "
                             "the uv channels of its state); pass context=None")
        if t.shape != (x_t.shape[0],):
            raise ValueError(f"OfficialDenoiser: t must have shape ({x_t.shape[0]},), found {tuple(t.shape)}")
        return self.trunk(x_t, self.time_embedding(t))
