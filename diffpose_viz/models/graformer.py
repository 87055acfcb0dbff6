"""GraFormer-style networks: the diffusion denoiser and the deterministic lifter share one trunk.

Trunk (GraFormer, Zhao et al. CVPR 2022; official DiffPose models/GCNdiff.py): ChebConv input projection -> L x [GraphAttentionLayer -> ResChebBlock]
-> ChebConv output projection. A ResChebBlock adds, between its two Chebyshev convolutions, a
projection of the diffusion-step embedding and (optionally) of per-joint context features.
The step embedding is sinusoidal(hidden) -> Linear(hidden, 4 hidden) -> swish -> Linear(4 hidden, 4 hidden).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from diffpose_viz.models.attention import attention
from diffpose_viz.models.graph import ChebConv, GraphFeedForward

Tensor = torch.Tensor
PREDICTIONS = ("x0", "eps")


def sinusoidal_embedding(t: Tensor, dim: int) -> Tensor:
    """DDPM/fairseq sinusoidal embedding of (R,) steps -> (R, dim): [sin(t f_i), cos(t f_i)]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) / max(half - 1, 1) * torch.arange(half, device=t.device, dtype=torch.float32))
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([args.sin(), args.cos()], -1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class TimestepEmbedding(nn.Module):
    """f_D: sinusoidal(dim) -> Linear(dim, 4 dim) -> swish -> Linear(4 dim, 4 dim)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, 4 * dim)

    @property
    def out_dim(self) -> int:
        return 4 * self.dim

    def forward(self, t: Tensor) -> Tensor:
        return self.fc2(F.silu(self.fc1(sinusoidal_embedding(t, self.dim))))


class GraphMultiHeadAttention(nn.Module):
    """Multi-head self-attention over joints (all joints attend to all; no mask)."""

    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"GraphMultiHeadAttention: dim {dim} is not divisible by heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.dropout_mask = "bernoulli"  # models.dropout.use_dropout_mask
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: Tensor) -> Tensor:
        B, J, C = x.shape

        def split(t: Tensor) -> Tensor:
            return t.view(B, J, self.heads, C // self.heads).transpose(1, 2)

        y = attention(split(self.q(x)), split(self.k(x)), split(self.v(x)),
                      dropout_p=self.dropout if self.training else 0.0, dropout_mask=self.dropout_mask)
        return self.out(y.transpose(1, 2).reshape(B, J, C))


class StdLayerNorm(nn.Module):
    """The released GraFormer code's layer norm: weight * (x - mean) / (std + eps) + bias, with the unbiased
    standard deviation outside the epsilon (nn.LayerNorm divides by sqrt(biased variance + eps)); same
    parameter shapes and names as nn.LayerNorm."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(-1, keepdim=True)
        return self.weight * (x - mean) / (x.std(-1, keepdim=True) + self.eps) + self.bias


class GraphAttentionLayer(nn.Module):
    """Pre-LayerNorm residual attention, then a pre-LayerNorm residual LAM-GConv feed-forward.

    released=True: the released GraFormer code's numerics (StdLayerNorm, its learnt-adjacency degrees), so its
    trained weights (parameter names mapped by diffpose_viz.released) give its outputs."""

    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.25, attn_dropout: float = 0.1, *,
                 released: bool = False) -> None:
        super().__init__()
        norm = StdLayerNorm if released else (lambda d: nn.LayerNorm(d, eps=1e-6))
        self.norm1 = norm(dim)
        self.attn = GraphMultiHeadAttention(dim, heads, attn_dropout)
        self.norm2 = norm(dim)
        self.ffn = GraphFeedForward(dim, 2 * dim, released=released)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.ffn(self.norm2(x)))


class ResChebBlock(nn.Module):
    """x + Cheb2(Cheb1(x) + W_t swish(f_D) + W_c context), each Cheb followed by ReLU and dropout."""

    def __init__(self, dim: int, *, temb_dim: int = 0, cond_dim: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        self.conv1 = ChebConv(dim, dim)
        self.conv2 = ChebConv(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.temb_proj = nn.Linear(temb_dim, dim) if temb_dim else None
        self.cond_proj = nn.Linear(cond_dim, dim) if cond_dim else None

    def forward(self, x: Tensor, temb: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        h = self.drop(F.relu(self.conv1(x)))
        if self.temb_proj is not None:
            h = h + self.temb_proj(F.silu(temb))[:, None, :]
        if self.cond_proj is not None:
            h = h + self.cond_proj(cond)
        return x + self.drop(F.relu(self.conv2(h)))


class GraFormerTrunk(nn.Module):
    """ChebConv(in -> hidden) -> layers x [attention layer, ResChebBlock] -> ChebConv(hidden -> out)."""

    def __init__(self, in_dim: int, out_dim: int, *, hidden: int = 96, layers: int = 5, heads: int = 4,
                 dropout: float = 0.25, attn_dropout: float = 0.1, conv_dropout: float = 0.1,
                 temb_dim: int = 0, cond_dim: int = 0, released: bool = False) -> None:
        super().__init__()
        self.temb_dim, self.cond_dim = temb_dim, cond_dim
        self.input = ChebConv(in_dim, hidden)
        self.attention = nn.ModuleList(GraphAttentionLayer(hidden, heads, dropout, attn_dropout, released=released)
                                       for _ in range(layers))
        self.blocks = nn.ModuleList(ResChebBlock(hidden, temb_dim=temb_dim, cond_dim=cond_dim,
                                                 dropout=conv_dropout) for _ in range(layers))
        self.output = ChebConv(hidden, out_dim)

    def forward(self, x: Tensor, temb: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        h = self.input(x)
        for attn, block in zip(self.attention, self.blocks):
            h = block(attn(h), temb, cond)
        return self.output(h)


def clean_2d_input(pose2d: Tensor) -> Tensor:
    """Make 2D input safe for a network: (..., 17, 2) NaN -> 0; (..., 17, 3) = (u, v, confidence):
    u, v zeroed where the confidence is 0 or either is not finite, and the confidence of such joints set
    to 0 (the network sees the confidence as the mask)."""
    if pose2d.shape[-1] == 2:
        return torch.nan_to_num(pose2d, nan=0.0, posinf=0.0, neginf=0.0)
    uv, conf = pose2d[..., :2], pose2d[..., 2:3]
    valid = torch.isfinite(uv).all(-1, keepdim=True) & torch.isfinite(conf) & (conf > 0)
    return torch.cat([torch.where(valid, uv, 0.0), torch.where(valid, conf, 0.0)], -1)


def _check_joints(x: Tensor, dim: int, name: str, what: str) -> None:
    if x.ndim != 3 or x.shape[1] != 17 or x.shape[2] != dim:
        raise ValueError(f"{name}: {what} must have shape (B, 17, {dim}), found {tuple(x.shape)}")


class GraFormerDenoiser(nn.Module):
    """The DiffPose denoiser: forward(h_t (B,17,D), t (B,), context (B,17,C)) -> (B,17,D).

    The context f_ST enters twice: concatenated with the state at the input projection and added in
    every block (as the step embedding f_D is). `prediction` says what the output means ('x0' or 'eps').
    """

    def __init__(self, state_dim: int = 3, context_dim: int = 64, *, hidden: int = 96, layers: int = 5,
                 heads: int = 4, dropout: float = 0.25, attn_dropout: float = 0.1, conv_dropout: float = 0.1,
                 prediction: str = "x0", residual_context: tuple[int, int] | None = None) -> None:
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"GraFormerDenoiser: prediction must be one of {PREDICTIONS}, found {prediction!r}")
        if residual_context is not None and (prediction != "x0" or residual_context[1] - residual_context[0] != state_dim
                                             or residual_context[1] > context_dim):
            raise ValueError(f"GraFormerDenoiser: residual_context needs x0-prediction and a {state_dim}-channel slice "
                             f"of the context, found {residual_context} with prediction {prediction!r}")
        self.state_dim, self.context_dim, self.prediction = state_dim, context_dim, prediction
        # residual_context (a, b): the output is added to context[..., a:b] (a pose estimate carried in the context,
        # e.g. the frozen lifter's), so the network learns a correction; its output layer starts at zero.
        self.residual_context = None if residual_context is None else tuple(residual_context)
        self.time_embedding = TimestepEmbedding(hidden)
        self.trunk = GraFormerTrunk(state_dim + context_dim, state_dim, hidden=hidden, layers=layers, heads=heads,
                                    dropout=dropout, attn_dropout=attn_dropout, conv_dropout=conv_dropout,
                                    temb_dim=self.time_embedding.out_dim, cond_dim=context_dim)
        if self.residual_context is not None:
            for p in self.trunk.output.parameters():
                nn.init.zeros_(p)

    def residual(self, context: Tensor) -> Tensor | None:
        """The context's pose estimate the output is added to (None without residual_context)."""
        if self.residual_context is None:
            return None
        a, b = self.residual_context
        return context[..., a:b]

    def forward(self, h_t: Tensor, t: Tensor, context: Tensor | None = None) -> Tensor:
        _check_joints(h_t, self.state_dim, "GraFormerDenoiser", "h_t")
        if t.shape != (h_t.shape[0],):
            raise ValueError(f"GraFormerDenoiser: t must have shape ({h_t.shape[0]},), found {tuple(t.shape)}")
        x = h_t
        if self.context_dim:
            self.check_context(context)
            x = torch.cat([h_t, context], -1)
        out = self.trunk(x, self.time_embedding(t), context if self.context_dim else None)
        if self.residual_context is not None:
            out = out + self.residual(context).to(out.dtype)
        return out

    def check_context(self, context: Tensor | None) -> None:
        if context is None:
            raise ValueError(f"GraFormerDenoiser: built with context_dim={self.context_dim} but context is None")
        _check_joints(context, self.context_dim, "GraFormerDenoiser", "context")

    def conditioned(self, context: Tensor | None, n_frames: int | None = None) -> ConditionedDenoiser:
        """The sampling fast path for one batch of frames (see ConditionedDenoiser)."""
        return ConditionedDenoiser(self, context, n_frames)


class ConditionedDenoiser:
    """A GraFormerDenoiser (eval mode) specialised to one batch of B frames for sampling.

    Everything that depends only on the frame or only on the step is computed once instead of for
    every (hypothesis, step) row: the context's share of the input projection (ChebConv is linear,
    so Cheb([h, c]) = Cheb_h(h) + Cheb_c(c)), every block's context projection, and the step
    embedding (one row per step, not one per state). Call with states (B*N, 17, D), hypothesis-major
    within each frame, and an int step t. Same function as the module, to float rounding.
    """

    def __init__(self, net: GraFormerDenoiser, context: Tensor | None, n_frames: int | None = None) -> None:
        if net.training:
            raise RuntimeError("ConditionedDenoiser: call net.eval() first (dropout would be skipped silently)")
        trunk, D = net.trunk, net.state_dim
        self.net, self.prediction = net, net.prediction
        if net.context_dim:
            net.check_context(context)
            self.n_frames = context.shape[0]
            self.input_term = (trunk.input.mix_joints(context @ trunk.input.stacked_weight(D).to(context.dtype))
                               + trunk.input.bias).unsqueeze(1)  # (B,1,17,H)
            self.cond_terms = [blk.cond_proj(context).unsqueeze(1) for blk in trunk.blocks]
            res = net.residual(context)
            self.residual_term = None if res is None else res.unsqueeze(1)  # (B,1,17,D)
        else:
            if n_frames is None:
                raise ValueError("ConditionedDenoiser: a model without context needs n_frames")
            self.n_frames = int(n_frames)
            self.input_term = trunk.input.bias
            self.cond_terms = [None] * len(trunk.blocks)
            self.residual_term = None
        self.w_state = trunk.input.stacked_weight(0, D)
        self._step_terms: dict[int, list[Tensor]] = {}

    def step_terms(self, t: int, device: torch.device) -> list[Tensor]:
        """Per block: W_t swish(f_D(t)) (+ W_c context), broadcastable to (B, N, 17, H)."""
        terms = self._step_terms.get(t)
        if terms is None:
            temb = F.silu(self.net.time_embedding(torch.full((1,), t, dtype=torch.long, device=device)))
            terms = []
            for blk, cond in zip(self.net.trunk.blocks, self.cond_terms):
                term = blk.temb_proj(temb).view(1, 1, 1, -1)
                terms.append(term if cond is None else term + cond)
            self._step_terms[t] = terms
        return terms

    def __call__(self, h_t: Tensor, t: int) -> Tensor:
        _check_joints(h_t, self.net.state_dim, "ConditionedDenoiser", "h_t")
        R, B = h_t.shape[0], self.n_frames
        if R % B:
            raise ValueError(f"ConditionedDenoiser: {R} states are not a whole number of hypotheses for {B} frames")
        N, trunk = R // B, self.net.trunk
        h = trunk.input.mix_joints(h_t @ self.w_state)
        H = h.shape[-1]
        h = (h.view(B, N, 17, H) + self.input_term).view(R, 17, H)
        for attn, blk, term in zip(trunk.attention, trunk.blocks, self.step_terms(t, h_t.device)):
            h = attn(h)
            u = (F.relu(blk.conv1(h)).view(B, N, 17, H) + term).view(R, 17, H)
            h = h + F.relu(blk.conv2(u))
        out = trunk.output(h)
        if self.residual_term is not None:
            out = (out.view(B, N, 17, -1) + self.residual_term.to(out.dtype)).view(R, 17, -1)
        return out


class GraFormerLifter(nn.Module):
    """Deterministic 2D -> 3D lifter on the same trunk without a step embedding (GraFormer / the official
    GCNpose): forward(pose2d (B,17,in_dim)) -> (B,17,3), root joint set to the origin.

    A lifter built for in_dim 2 (u, v), as the released GCNpose, also takes the package's (u, v, confidence):
    missing joints are zeroed (clean_2d_input), then the confidence is dropped."""

    def __init__(self, in_dim: int = 2, *, hidden: int = 96, layers: int = 5, heads: int = 4,
                 dropout: float = 0.25, attn_dropout: float = 0.1, conv_dropout: float = 0.1,
                 out_dim: int = 3, released: bool = False) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.trunk = GraFormerTrunk(in_dim, out_dim, hidden=hidden, layers=layers, heads=heads, dropout=dropout,
                                    attn_dropout=attn_dropout, conv_dropout=conv_dropout, released=released)

    def _input(self, pose2d: Tensor) -> Tensor:
        if self.in_dim == 2 and pose2d.ndim == 3 and pose2d.shape[-1] == 3:
            return clean_2d_input(pose2d)[..., :2]
        _check_joints(pose2d, self.in_dim, "GraFormerLifter", "pose2d")
        return clean_2d_input(pose2d)

    def forward(self, pose2d: Tensor) -> Tensor:
        out = self.trunk(self._input(pose2d))
        return out - out[:, :1]

    def features(self, pose2d: Tensor) -> Tensor:
        """(B,17,in_dim) -> (B,17,hidden): the per-joint hidden features that the trunk's output
        projection reads (after the last ResChebBlock)."""
        trunk = self.trunk
        h = trunk.input(self._input(pose2d))
        for attn, block in zip(trunk.attention, trunk.blocks):
            h = block(attn(h))
        return h

    def output_head(self, features: Tensor) -> Tensor:
        """(B,17,hidden) features -> (B,17,out_dim) pose: the output projection, root set to the origin."""
        out = self.trunk.output(features)
        return out - out[:, :1]

    def forward_with_features(self, pose2d: Tensor) -> tuple[Tensor, Tensor]:
        """(B,17,in_dim) -> ((B,17,out_dim) pose, (B,17,hidden) features) from one pass; the pose equals
        forward(pose2d)."""
        feats = self.features(pose2d)
        return self.output_head(feats), feats
