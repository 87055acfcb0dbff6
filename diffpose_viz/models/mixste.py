"""MixSTE-style temporal lifter (Zhang et al., CVPR 2022): the video-setting context encoder phi_ST.

Architecture (the released `MixSTE2`, github.com/JinluZhang1126/MixSTE, common/model_cross.py), written for this package:

    (B,T,17,C) screen-normalised 2D -> [u, v, confidence, mask] (masked_2d_features)
    -> Linear(4, D) per joint + learnt spatial positional embedding (17, D)
    -> depth x [spatial block (attention over the 17 joints of each frame) -> shared spatial LayerNorm,
                temporal block (attention over the T frames of each joint) -> shared temporal LayerNorm],
       with a learnt temporal positional embedding (T, D) added before the first temporal block
    -> head LayerNorm(D) -> Linear(D, 3) per joint and frame: (B,T,17,3), root joint set to the origin.

Blocks are pre-LayerNorm transformer blocks (eps 1e-6): multi-head self-attention with a qkv bias, MLP with
GELU and hidden width mlp_ratio x D, stochastic depth rising linearly from 0 to `drop_path` over the depth
(block i of both kinds uses the same rate). Sequence-to-sequence: every one of the T frames gets a pose.

`features(x)` returns the per-joint hidden features (B,T,17,D) that the head reads; DiffPose conditions its
denoiser on the centre frame's features, `centre_features(x)` = features(x)[:, T // 2].

Sizes: the CPU default is D = 64, depth 4, 4 heads; `MixSTELifter.paper(243)` is the published model
(D = 512, depth 8, 8 heads, mlp_ratio 2, drop_path 0.1). T is fixed at construction (the temporal
positional embedding has T rows); longer sequences go through `evaluate_sequence` / `windows`
(diffpose_viz.models.temporal).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from diffpose_viz.models.attention import attention
from diffpose_viz.models.context import N_JOINTS, masked_2d_features

Tensor = torch.Tensor


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample with probability p (training only)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class SelfAttention(nn.Module):
    """Multi-head self-attention over the token axis of (N, L, D), scale head_dim ** -0.5."""

    def __init__(self, dim: int, heads: int, *, qkv_bias: bool = True, attn_dropout: float = 0.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"SelfAttention: dim {dim} is not divisible by heads {heads}")
        self.heads, self.attn_dropout = heads, attn_dropout
        self.dropout_mask = "bernoulli"  # models.dropout.use_dropout_mask
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        N, L, D = x.shape
        q, k, v = self.qkv(x).view(N, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        y = attention(q, k, v, dropout_p=self.attn_dropout if self.training else 0.0, dropout_mask=self.dropout_mask)
        return self.drop(self.proj(y.transpose(1, 2).reshape(N, L, D)))


class TransformerBlock(nn.Module):
    """x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x))); MLP = Linear -> GELU -> Linear."""

    def __init__(self, dim: int, heads: int, *, mlp_ratio: float = 2.0, qkv_bias: bool = True,
                 dropout: float = 0.0, attn_dropout: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, heads, qkv_bias=qkv_bias, attn_dropout=attn_dropout, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class MixSTELifter(nn.Module):
    """Seq2seq 2D -> 3D lifter: forward(pose2d (B,T,17,in_dim)) -> (B,T,17,3) root-relative metres.

    in_dim is 3 = (u, v, confidence) (the package's convention, see pipeline.screen_input) or 2 = (u, v);
    missing joints (confidence 0 or non-finite u, v) are zeroed and flagged by a mask channel, so the
    network reads [u, v, confidence, mask] and never a NaN.
    """

    def __init__(self, num_frames: int = 27, *, in_dim: int = 3, embed_dim: int = 64, depth: int = 4,
                 heads: int = 4, mlp_ratio: float = 2.0, qkv_bias: bool = True, dropout: float = 0.0,
                 attn_dropout: float = 0.0, drop_path: float = 0.0, out_dim: int = 3, released: bool = False) -> None:
        super().__init__()
        if num_frames < 1:
            raise ValueError(f"MixSTELifter: num_frames must be >= 1, found {num_frames}")
        if in_dim not in (2, 3):
            raise ValueError(f"MixSTELifter: in_dim must be 2 (u, v) or 3 (u, v, confidence), found {in_dim}")
        if depth < 1:
            raise ValueError(f"MixSTELifter: depth must be >= 1, found {depth}")
        self.num_frames, self.in_dim, self.embed_dim, self.depth = int(num_frames), in_dim, embed_dim, depth
        # released=True: the released MixSTE2 embeds (u, v) only (missing joints zeroed), so its weights fit
        self.released = released
        self.joint_embed = nn.Linear(2 if released else 4, embed_dim)
        self.joint_pos = nn.Parameter(torch.zeros(N_JOINTS, embed_dim))
        self.time_pos = nn.Parameter(torch.zeros(self.num_frames, embed_dim))
        nn.init.trunc_normal_(self.joint_pos, std=0.02)
        nn.init.trunc_normal_(self.time_pos, std=0.02)
        self.pos_drop = nn.Dropout(dropout)
        rates = torch.linspace(0.0, drop_path, depth).tolist()

        def block(rate: float) -> TransformerBlock:
            return TransformerBlock(embed_dim, heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, dropout=dropout,
                                    attn_dropout=attn_dropout, drop_path=rate)

        self.spatial = nn.ModuleList(block(r) for r in rates)
        self.temporal = nn.ModuleList(block(r) for r in rates)
        self.spatial_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.temporal_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, out_dim))

    @classmethod
    def paper(cls, num_frames: int = 243, **overrides) -> MixSTELifter:
        """The published size: D = 512, depth 8, 8 heads, mlp_ratio 2, qkv bias, drop_path 0.1."""
        kw = dict(embed_dim=512, depth=8, heads=8, mlp_ratio=2.0, qkv_bias=True, drop_path=0.1)
        kw.update(overrides)
        return cls(num_frames, **kw)

    @property
    def feature_dim(self) -> int:
        return self.embed_dim

    def check_input(self, pose2d: Tensor) -> None:
        T, C = self.num_frames, self.in_dim
        if pose2d.ndim != 4 or pose2d.shape[2] != N_JOINTS or pose2d.shape[3] != C:
            raise ValueError(f"MixSTELifter: pose2d must have shape (B, {T}, {N_JOINTS}, {C}), "
                             f"found {tuple(pose2d.shape)}")
        if pose2d.shape[1] != T:
            raise ValueError(f"MixSTELifter: built for T = {T} frames, found T = {pose2d.shape[1]} in "
                             f"{tuple(pose2d.shape)}; split longer sequences with "
                             f"models.temporal.evaluate_sequence or windows")

    def features(self, pose2d: Tensor) -> Tensor:
        """(B,T,17,in_dim) -> (B,T,17,D): per-joint hidden features before the output head."""
        self.check_input(pose2d)
        B, T = pose2d.shape[:2]
        J, D = N_JOINTS, self.embed_dim
        feats = masked_2d_features(pose2d)
        x = self.joint_embed(feats[..., :2] if self.released else feats) + self.joint_pos  # (B,T,J,D)
        x = self.pos_drop(x)
        for i, (spatial, temporal) in enumerate(zip(self.spatial, self.temporal)):
            x = self.spatial_norm(spatial(x.reshape(B * T, J, D)))
            x = x.view(B, T, J, D).transpose(1, 2).reshape(B * J, T, D)
            if i == 0:
                x = self.pos_drop(x + self.time_pos)
            x = self.temporal_norm(temporal(x))
            x = x.view(B, J, T, D).transpose(1, 2)
        return x.contiguous()

    def output_head(self, features: Tensor) -> Tensor:
        """(…,17,D) features -> (…,17,3) root-relative pose (the head, then the root set to zero)."""
        out = self.head(features)
        return out - out[..., :1, :]

    def forward_with_features(self, pose2d: Tensor) -> tuple[Tensor, Tensor]:
        """(B,T,17,in_dim) -> ((B,T,17,3) pose, (B,T,17,D) features) from one pass."""
        feats = self.features(pose2d)
        return self.output_head(feats), feats

    def forward(self, pose2d: Tensor) -> Tensor:
        return self.output_head(self.features(pose2d))

    def centre_features(self, pose2d: Tensor) -> Tensor:
        """(B,T,17,in_dim) -> (B,17,D): the centre frame's (index T // 2) features, DiffPose's f_ST."""
        return self.features(pose2d)[:, self.num_frames // 2]
