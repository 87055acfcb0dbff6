"""Context encoders phi_ST: 2D input -> per-joint features f_ST (B,17,C) for the denoiser.

Input 2D is screen-normalised (u, v), optionally with a confidence: (..., 17, 2) or (..., 17, 3).
Missing joints (confidence 0 or NaN coordinates) are zeroed and flagged by an explicit mask channel,
so the networks see [u, v, confidence, mask] and never a NaN.
"""
from __future__ import annotations

import torch
from torch import nn

from diffpose_viz.models.graformer import GraFormerTrunk, clean_2d_input

Tensor = torch.Tensor
N_JOINTS = 17


def masked_2d_features(pose2d: Tensor) -> Tensor:
    """(..., 17, 2|3) -> (..., 17, 4) = [u, v, confidence, mask], zeros where a joint is missing."""
    if pose2d.shape[-2:] not in ((N_JOINTS, 2), (N_JOINTS, 3)):
        raise ValueError(f"2D input must end in (17, 2) = (u, v) or (17, 3) = (u, v, confidence), "
                         f"found {tuple(pose2d.shape)}")
    if pose2d.shape[-1] == 2:  # no confidence given: every finite joint counts as seen
        seen = torch.isfinite(pose2d).all(-1, keepdim=True).to(pose2d.dtype)
        pose2d = torch.cat([pose2d, seen], -1)
    uvc = clean_2d_input(pose2d)
    return torch.cat([uvc, (uvc[..., 2:3] > 0).to(uvc.dtype)], -1)


class FrameContextEncoder(nn.Module):
    """A small GraFormer trunk over one frame's 2D pose: (B,17,2|3) -> (B,17,C)."""

    def __init__(self, context_dim: int = 64, *, hidden: int = 64, layers: int = 2, heads: int = 4,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.context_dim = context_dim
        self.trunk = GraFormerTrunk(4, context_dim, hidden=hidden, layers=layers, heads=heads, dropout=dropout,
                                    attn_dropout=dropout, conv_dropout=dropout)

    def forward(self, pose2d: Tensor) -> Tensor:
        if pose2d.ndim != 3:
            raise ValueError(f"FrameContextEncoder: expected (B, 17, 2|3), found {tuple(pose2d.shape)}")
        return self.trunk(masked_2d_features(pose2d))


class VideoContextEncoder(nn.Module):
    """Alternating spatial (over joints) and temporal (over frames) transformer layers over T frames
    of 2D poses (B,T,17,2|3); returns per-joint features of the centre frame (B,17,C)."""

    def __init__(self, num_frames: int = 27, context_dim: int = 64, *, embed_dim: int = 64, depth: int = 2,
                 heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.num_frames, self.context_dim = num_frames, context_dim
        self.embed = nn.Linear(4, embed_dim)
        self.joint_pos = nn.Parameter(torch.zeros(N_JOINTS, embed_dim))
        self.time_pos = nn.Parameter(torch.zeros(num_frames, embed_dim))
        nn.init.trunc_normal_(self.joint_pos, std=0.02)
        nn.init.trunc_normal_(self.time_pos, std=0.02)

        def layer() -> nn.TransformerEncoderLayer:
            return nn.TransformerEncoderLayer(embed_dim, heads, 2 * embed_dim, dropout, batch_first=True,
                                              norm_first=True)

        self.spatial = nn.ModuleList(layer() for _ in range(depth))
        self.temporal = nn.ModuleList(layer() for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, context_dim)

    def forward(self, pose2d_seq: Tensor) -> Tensor:
        if pose2d_seq.ndim != 4 or pose2d_seq.shape[1] != self.num_frames:
            raise ValueError(f"VideoContextEncoder: expected (B, {self.num_frames}, 17, 2|3), "
                             f"found {tuple(pose2d_seq.shape)}")
        B, T = pose2d_seq.shape[:2]
        x = self.embed(masked_2d_features(pose2d_seq)) + self.joint_pos + self.time_pos[:, None]  # (B,T,17,E)
        E = x.shape[-1]
        for spatial, temporal in zip(self.spatial, self.temporal):
            x = spatial(x.reshape(B * T, N_JOINTS, E)).view(B, T, N_JOINTS, E)
            x = temporal(x.transpose(1, 2).reshape(B * N_JOINTS, T, E)).view(B, N_JOINTS, T, E).transpose(1, 2)
        return self.head(self.norm(x[:, T // 2]))
